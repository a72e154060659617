//! `/metrics` and the logs of a real `guichet serve` after a scripted scenario over gRPC:
//! counters, gauges and histograms move as they should; `[log] format = "json"` writes JSON
//! lines whose interaction events carry the span's `interaction_id`, `channel` and `queue`.

use crate::api_common;

use std::collections::HashMap;
use std::time::Duration;

use api_common::{eventually, next, spec, Server, Workspace};
use guichet::api::proto as pb;
use pb::offer_update::Update;

const LIMIT: Duration = Duration::from_secs(20);

/// The samples of a Prometheus text exposition: `name{labels}` → value (labels as printed).
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// A sample's value, 0 when absent; `labels` in any order.
fn value(samples: &HashMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(k, _)| {
            let (n, rest) = k.split_once('{').unwrap_or((k.as_str(), ""));
            n == name
                && labels
                    .iter()
                    .all(|(l, v)| rest.contains(&format!("{l}=\"{v}\"")))
        })
        .map(|(_, v)| *v)
        .sum()
}

async fn scrape(client: &reqwest::Client, server: &Server) -> HashMap<String, f64> {
    let resp = client
        .get(format!("http://{}/metrics", server.http_addr))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    samples(&resp.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_a_scripted_scenario() {
    let ws = Workspace::new();
    let server = ws.start();
    let client = reqwest::Client::new();
    let (sup_token, _) = ws.token("supervisor", None);
    let (int_token, _) = ws.token("integrator", None);
    let (amelie_token, _) = ws.token("agent", Some("amelie"));
    let mut sup = server.supervisor(&sup_token);
    let mut int = server.interactions(&int_token);
    let mut desk = server.desktop(&amelie_token);

    let before = scrape(&client, &server).await;
    assert_eq!(
        value(&before, "guichet_agents", &[("state", "offline")]),
        5.0
    );
    assert_eq!(
        value(&before, "guichet_interactions_created_total", &[]),
        0.0
    );

    // No after-contact work, so that amelie takes the next offer at once.
    api_common::no_wrap_up(&mut sup, "benefits").await;
    desk.login(pb::LoginRequest::default())
        .await
        .expect("Login");
    let mut offers = desk
        .offers(pb::OffersRequest::default())
        .await
        .expect("Offers")
        .into_inner();

    // A call offered, accepted and completed.
    let first = int
        .create(spec("benefits", pb::Channel::Voice, "+33600000001", "m-1"))
        .await
        .expect("Create")
        .into_inner();
    let id1 = first.interaction.expect("interaction").id;
    match next(&mut offers).await.update {
        Some(Update::Offer(o)) => assert_eq!(o.interaction.expect("i").id, id1),
        other => panic!("expected an offer, got {other:?}"),
    }
    desk.accept(pb::InteractionAction {
        agent_id: String::new(),
        interaction_id: id1.clone(),
    })
    .await
    .expect("Accept");
    desk.complete(pb::CompleteRequest {
        agent_id: String::new(),
        interaction_id: id1,
        wrap_up_code: "answered".into(),
        notes: String::new(),
    })
    .await
    .expect("Complete");
    // A second call, offered then declined, then cancelled by the integrator.
    let second = int
        .create(spec("benefits", pb::Channel::Voice, "+33600000002", "m-2"))
        .await
        .expect("Create")
        .into_inner();
    let id2 = second.interaction.expect("interaction").id;
    loop {
        if let Some(Update::Offer(o)) = next(&mut offers).await.update {
            if o.interaction.expect("i").id == id2 {
                break;
            }
        }
    }
    desk.decline(pb::InteractionAction {
        agent_id: String::new(),
        interaction_id: id2.clone(),
    })
    .await
    .expect("Decline");
    int.cancel(pb::CancelRequest {
        interaction_id: id2,
    })
    .await
    .expect("Cancel");
    // Logging in again is a no-op command: enough of them for a timed routing decision.
    for _ in 0..guichet::engine::DECISION_SAMPLE {
        desk.login(pb::LoginRequest::default())
            .await
            .expect("Login again");
    }
    // A tax call nobody logged in can take: it waits.
    int.create(spec("tax", pb::Channel::Voice, "+33600000003", "m-3"))
        .await
        .expect("Create tax");

    let bv = [("queue", "benefits"), ("channel", "voice")];
    let after = eventually(LIMIT, "the observer counts every event", || {
        let client = client.clone();
        let server = &server;
        async move {
            let s = scrape(&client, server).await;
            (value(&s, "guichet_interactions_cancelled_total", &bv) == 1.0
                && value(
                    &s,
                    "guichet_interactions_created_total",
                    &[("queue", "tax")],
                ) == 1.0)
                .then_some(s)
        }
    })
    .await;
    let v = |name: &str, labels: &[(&str, &str)]| value(&after, name, labels);
    assert_eq!(v("guichet_interactions_created_total", &bv), 2.0);
    assert_eq!(v("guichet_offers_total", &bv), 2.0);
    assert_eq!(v("guichet_offers_accepted_total", &bv), 1.0);
    assert_eq!(v("guichet_offers_declined_total", &bv), 1.0);
    assert_eq!(v("guichet_offers_timed_out_total", &bv), 0.0);
    assert_eq!(v("guichet_interactions_completed_total", &bv), 1.0);
    assert_eq!(v("guichet_interactions_abandoned_total", &bv), 0.0);
    assert_eq!(v("guichet_wait_seconds_count", &bv), 1.0);
    assert_eq!(v("guichet_handle_seconds_count", &bv), 1.0);
    assert_eq!(v("guichet_service_level_met_total", &bv), 1.0);
    assert_eq!(v("guichet_service_level_missed_total", &bv), 0.0);
    // Gauges read at scrape time.
    assert_eq!(
        v("guichet_waiting", &[("queue", "tax"), ("channel", "voice")]),
        1.0
    );
    assert_eq!(v("guichet_waiting", &bv), 0.0);
    assert_eq!(v("guichet_open_interactions", &[("queue", "tax")]), 1.0);
    assert_eq!(v("guichet_agents", &[("state", "available")]), 1.0);
    assert_eq!(v("guichet_agents", &[("state", "offline")]), 4.0);
    // Engine and journal timings.
    // One command in DECISION_SAMPLE is timed: more than that many were handled.
    assert!(v("guichet_routing_decision_seconds_count", &[]) >= 1.0);
    assert!(v("guichet_journal_commit_seconds_count", &[]) >= 1.0);
    assert!(
        v("guichet_journal_batch_events_sum", &[]) >= 10.0,
        "every committed event is in a batch"
    );
    // HTTP requests by adapter and status.
    let bad = client
        .get(format!(
            "http://{}/indicators?period=year",
            server.http_addr
        ))
        .send()
        .await
        .expect("GET");
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("period=day"));
    let last = scrape(&client, &server).await;
    assert!(
        value(
            &last,
            "guichet_http_requests_total",
            &[("adapter", "metrics"), ("status", "200")]
        ) >= 2.0
    );
    assert_eq!(
        value(
            &last,
            "guichet_http_requests_total",
            &[("adapter", "indicators"), ("status", "400")]
        ),
        1.0
    );

    // The public indicators of today count the same interactions.
    let json: serde_json::Value = eventually(LIMIT, "the aggregates catch up", || {
        let client = client.clone();
        let url = format!("http://{}/indicators?period=day", server.http_addr);
        async move {
            let j: serde_json::Value = client.get(url).send().await.ok()?.json().await.ok()?;
            (j["total"]["requests"] == 3).then_some(j)
        }
    })
    .await;
    let rows = json["rows"].as_array().expect("rows");
    let benefits_voice = rows
        .iter()
        .find(|r| r["queue"] == "benefits" && r["channel"] == "voice")
        .expect("benefits voice row");
    assert_eq!(benefits_voice["requests"], 2);
    assert_eq!(benefits_voice["answered"], 1);
    assert_eq!(benefits_voice["answered_within_delay"], 1);
    assert_eq!(benefits_voice["announced_delay_secs"], 180);
    assert_eq!(benefits_voice["abandonment_rate"], 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_interaction_span() {
    let ws = Workspace::new();
    let config = ws.data_dir().with_extension("toml");
    std::fs::create_dir_all(config.parent().expect("parent")).expect("dir");
    let demo = std::fs::read_to_string(api_common::demo_config()).expect("demo config");
    std::fs::write(&config, format!("[log]\nformat = \"json\"\n\n{demo}")).expect("write");
    let server = ws
        .server()
        .config(&config)
        .env("RUST_LOG", "info,guichet::obs=debug")
        .start();
    let (int_token, _) = ws.token("integrator", None);
    let mut int = server.interactions(&int_token);
    let created = int
        .create(spec("general", pb::Channel::Chat, "c", "log-1"))
        .await
        .expect("Create")
        .into_inner();
    let id = created.interaction.expect("interaction").id;
    let line: serde_json::Value =
        eventually(LIMIT, "a JSON log line about the interaction", || {
            let text = ws.log_text();
            let id = id.clone();
            async move {
                text.lines()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .find(|j| j["span"]["interaction_id"] == id.as_str())
            }
        })
        .await;
    assert_eq!(line["span"]["channel"], "chat", "{line}");
    assert_eq!(line["span"]["queue"], "general", "{line}");
    assert_eq!(line["span"]["name"], "interaction", "{line}");
    // Every line is JSON.
    for l in ws.log_text().lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            serde_json::from_str::<serde_json::Value>(l).is_ok(),
            "not JSON: {l}"
        );
    }
}

/// The first stats update of `queue` on a fresh WatchStats stream.
async fn stats_of(server: &Server, token: &str, queue: &str) -> pb::QueueStats {
    let mut sup = server.supervisor(token);
    let mut stream = sup
        .watch_stats(pb::WatchStatsRequest {
            queues: vec![queue.into()],
            interval_ms: 100,
        })
        .await
        .expect("WatchStats")
        .into_inner();
    let update = next(&mut stream).await;
    update
        .queues
        .into_iter()
        .find(|q| q.queue == queue)
        .expect("the queue's stats")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisors_day_counters_survive_a_restart() {
    let ws = Workspace::new();
    let mut server = ws.start();
    let (sup_token, _) = ws.token("supervisor", None);
    let (int_token, _) = ws.token("integrator", None);
    let (amelie_token, _) = ws.token("agent", Some("amelie"));
    let mut int = server.interactions(&int_token);
    let mut desk = server.desktop(&amelie_token);
    desk.login(pb::LoginRequest::default())
        .await
        .expect("Login");
    let mut offers = desk
        .offers(pb::OffersRequest::default())
        .await
        .expect("Offers")
        .into_inner();
    let created = int
        .create(spec("benefits", pb::Channel::Chat, "+33600000009", "r-1"))
        .await
        .expect("Create")
        .into_inner();
    let id = created.interaction.expect("interaction").id;
    let _ = next(&mut offers).await;
    desk.accept(pb::InteractionAction {
        agent_id: String::new(),
        interaction_id: id,
    })
    .await
    .expect("Accept");
    let abandoned_or_cancelled = int
        .create(spec("benefits", pb::Channel::Voice, "+33600000010", "r-2"))
        .await
        .expect("Create")
        .into_inner();
    assert!(abandoned_or_cancelled.created);
    let before = eventually(LIMIT, "the answer is counted", || {
        let token = sup_token.clone();
        let server = &server;
        async move {
            let s = stats_of(server, &token, "benefits").await;
            (s.answered_today == 1).then_some(s)
        }
    })
    .await;
    assert_eq!(before.answered_within_target_today, 1);
    // The aggregates are written asynchronously: wait until they hold the answer too.
    let client = reqwest::Client::new();
    let url = format!("http://{}/indicators", server.http_addr);
    eventually(LIMIT, "the aggregates hold the answer", || {
        let client = client.clone();
        let url = url.clone();
        async move {
            let j: serde_json::Value = client.get(url).send().await.ok()?.json().await.ok()?;
            (j["total"]["answered"] == 1).then_some(())
        }
    })
    .await;

    assert!(server.terminate().success());
    let server = ws.start();
    let after = stats_of(&server, &sup_token, "benefits").await;
    assert_eq!(after.answered_today, 1, "{after:?}");
    assert_eq!(after.answered_within_target_today, 1, "{after:?}");
    assert_eq!(after.abandoned_today, 0, "{after:?}");
}

/// What `promtool check metrics` and scrapers expect: every family has `# HELP` and `# TYPE`,
/// the standard `process_*` families are there, and `guichet_build_info{version} 1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_is_described_and_the_process_is_measured() {
    let ws = Workspace::new();
    let server = ws.start();
    let client = reqwest::Client::new();
    let (int_token, _) = ws.token("integrator", None);
    let mut int = server.interactions(&int_token);
    int.create(spec("benefits", pb::Channel::Email, "a@example.org", "h-1"))
        .await
        .expect("Create");
    // The counters appear once the observer has folded the creation in.
    let text = eventually(LIMIT, "the creation counted", || {
        let client = client.clone();
        let url = format!("http://{}/metrics", server.http_addr);
        async move {
            let text = client.get(url).send().await.ok()?.text().await.ok()?;
            text.contains("guichet_interactions_created_total{")
                .then_some(text)
        }
    })
    .await;

    let described = |kind: &str| -> std::collections::HashSet<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(kind))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    };
    let helps = described("# HELP ");
    let types = described("# TYPE ");
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name = line.split(['{', ' ']).next().unwrap_or("");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.contains(*f)))
            .unwrap_or(name);
        assert!(helps.contains(family), "no # HELP for {family}");
        assert!(types.contains(family), "no # TYPE for {family}");
    }
    let samples = samples(&text);
    for family in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(
            value(&samples, family, &[]) > 0.0,
            "{family} missing or zero"
        );
    }
    let version = format!(
        "guichet_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(samples.get(&version), Some(&1.0), "{version}");
}
