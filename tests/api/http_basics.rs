//! The HTTP listener of a real `guichet serve`: health, unknown paths.

use crate::api_common;

use api_common::{Server, Workspace};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_and_unknown_paths_get_404() {
    let ws = Workspace::new();
    let server = Server::start(&ws.data_dir(), &ws.log());
    let base = format!("http://{}", server.http_addr);
    let client = reqwest::Client::new();

    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok\n");

    let missing = client.get(format!("{base}/nowhere")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

/// `GUICHET_<SECTION>__<KEY>` variables override the file's keys in `guichet serve` (here the
/// demo's text logs become JSON).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_applies_environment_overrides() {
    let ws = Workspace::new();
    let server = ws
        .server()
        .env("GUICHET_LOG__FORMAT", "json")
        .env("RUST_LOG", "info")
        .start();
    let health = reqwest::get(format!("http://{}/healthz", server.http_addr))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let log = ws.log_text();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "the server logged nothing");
    for line in lines {
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(line);
        assert!(parsed.is_ok(), "not a JSON log line: {line}");
    }
}
