//! The HTTP listener of a real `guichet serve`: health, unknown paths.

mod api_common;

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
