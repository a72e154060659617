//! The public indicators page against the real binary: queues by their display names, only the
//! queues marked public, French plurals, a bad `period` answered in the page's language, and
//! the demo's days counted in its own time zone.

use crate::api_common;

use std::time::Duration;

use api_common::{eventually, spec, Workspace};
use guichet::api::proto as pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_public_queues_by_name_in_good_french() {
    let ws = Workspace::new();
    let server = ws
        .server()
        .with("[[queues]]\nid = \"internal\"\nname = \"Back office\"\npublic = false\n")
        .start();
    let (token, _) = ws.token("integrator", None);
    let mut int = server.interactions(&token);
    for (queue, reference) in [("benefits", "pub-1"), ("internal", "int-1")] {
        int.create(spec(queue, pb::Channel::Chat, reference, reference))
            .await
            .expect("Create");
    }
    let client = reqwest::Client::new();
    let base = format!("http://{}", server.http_addr);
    let json: serde_json::Value = eventually(Duration::from_secs(20), "aggregates", || {
        let client = client.clone();
        let url = format!("{base}/indicators?period=day");
        async move {
            let j: serde_json::Value = client.get(url).send().await.ok()?.json().await.ok()?;
            (j["total"]["requests"] == 1).then_some(j)
        }
    })
    .await;
    // The demo counts days in Paris; the internal queue is left out of rows and totals.
    assert_eq!(json["time_zone"], "Europe/Paris");
    let queues: Vec<&str> = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["queue"].as_str().unwrap())
        .collect();
    assert_eq!(queues, ["benefits"]);
    assert_eq!(
        json["queue_names"]["benefits"],
        "Aides au logement / Housing benefits"
    );
    assert!(json["queue_names"].get("internal").is_none());

    let page = client
        .get(format!("{base}/indicators.html?period=day&lang=fr"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Allô Service Public"), "demo service name");
    assert!(
        html.contains("Aides au logement / Housing benefits — Messagerie instantanée : 2 minutes"),
        "display names and announced delays"
    );
    assert!(!html.contains("Back office") && !html.contains("internal"));
    assert!(html.contains("(0 réponse)"), "French singular for zero");
    assert!(!html.contains("(s)"), "no (s) plurals");

    // A bad period: 400, told in the page's language (lang, else Accept-Language).
    let bad = client
        .get(format!("{base}/indicators.html?period=year&lang=fr"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.headers()["content-language"], "fr");
    let body = bad.text().await.unwrap();
    assert!(
        body.contains("La période demandée n&#39;existe pas"),
        "{body}"
    );
    assert!(!body.contains("year"), "the request is not echoed");
    let bad = client
        .get(format!("{base}/indicators.html?period=year"))
        .header("accept-language", "en-GB,en;q=0.9")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("Unknown period"));
}
