//! Every view of committed events tells the journal's truth under load, against the real
//! binary with `[engine] event_buffer = 4` (so that every view falls behind the engine's
//! broadcast again and again): creations from several clients at once, and email interactions
//! answered and completed by an agent while they arrive. Afterwards `/metrics`, `/indicators`,
//! `WatchStats`, the agent's offer stream and the completion notices all match the journal
//! exactly.
//!
//! The default size suits `cargo test` on two cores (2,000 creations, 200 email completions);
//! `GUICHET_TRUTH_FULL=1` runs the size (20,000 creations, 2,000 email completions).

mod api_common;

use std::collections::HashSet;
use std::time::Duration;

use pb::offer_update::Update;
use tonic::Code;

use api_common::{config_with, eventually, logged_in_agent, Bearer, Workspace};
use guichet::api::proto as pb;
use pb::interactions_client::InteractionsClient;

const CREATORS: usize = 4;
const EMAILERS: usize = 2;

fn sizes() -> (usize, usize) {
    if std::env::var_os("GUICHET_TRUTH_FULL").is_some() {
        (20_000, 2_000)
    } else {
        (2_000, 200)
    }
}

/// Retries a creation while the server is overloaded (idempotent on its reference).
async fn create(client: &mut InteractionsClient<api_common::Authed>, req: pb::CreateRequest) {
    loop {
        match client.create(req.clone()).await {
            Ok(_) => return,
            Err(s) if s.code() == Code::Unavailable => {
                tokio::time::sleep(Duration::from_millis(5)).await
            }
            Err(s) => panic!("creation failed: {s:?}"),
        }
    }
}

fn sms(task: usize, i: usize) -> pb::CreateRequest {
    pb::CreateRequest {
        spec: Some(pb::InteractionSpec {
            channel: pb::Channel::Sms as i32,
            queue: "general".into(),
            contact: format!("+3361{task:02}{i:06}"),
            external_ref: format!("load-{task}-{i}"),
            ..Default::default()
        }),
        message: None,
    }
}

fn email(task: usize, i: usize) -> pb::CreateRequest {
    let from = format!("citizen-{task}-{i}@example.org");
    pb::CreateRequest {
        spec: Some(pb::InteractionSpec {
            channel: pb::Channel::Email as i32,
            queue: "tax".into(),
            contact: from.clone(),
            external_ref: format!("mail-{task}-{i}"),
            ..Default::default()
        }),
        message: Some(pb::InboundMessage {
            id: format!("mail-{task}-{i}"),
            from,
            to: "impots@service-public.example".into(),
            subject: "Ma déclaration".into(),
            text: "Bonjour, une question sur ma déclaration.".into(),
        }),
    }
}

/// The sum of a metric's samples over every label set.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            let n = key.split('{').next()?;
            (n == name).then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// What the journal says, read from the database file.
#[derive(Debug, PartialEq, Eq)]
struct Journal {
    created: u64,
    completed: u64,
    accepted: u64,
    offered_to_bruno: HashSet<String>,
    notices: u64,
    noticed: HashSet<String>,
}

fn journal(db: &std::path::Path) -> Journal {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the journal read-only");
    let count = |kind: &str| -> u64 {
        conn.query_row(
            "SELECT count(*) FROM journal WHERE kind = ?1",
            [kind],
            |r| r.get::<_, i64>(0),
        )
        .expect("count") as u64
    };
    let strings = |sql: &str| -> Vec<String> {
        conn.prepare(sql)
            .expect("prepare")
            .query_map([], |r| r.get::<_, String>(0))
            .expect("query")
            .map(|r| r.expect("row"))
            .collect()
    };
    let noticed = strings(
        "SELECT interaction FROM journal WHERE kind = 'message_added' \
         AND payload LIKE '%\"notice\":\"completed\"%'",
    );
    Journal {
        created: count("interaction_created"),
        completed: count("interaction_completed"),
        accepted: count("offer_accepted"),
        offered_to_bruno: strings(
            "SELECT DISTINCT interaction FROM journal \
             WHERE kind = 'interaction_offered' AND agent = 'bruno'",
        )
        .into_iter()
        .collect(),
        notices: noticed.len() as u64,
        noticed: noticed.into_iter().collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_view_matches_the_journal_with_a_tiny_event_buffer() {
    let (creations, emails) = sizes();
    let ws = Workspace::new();
    let config = config_with(ws.path(), "[engine]\nevent_buffer = 4\n");
    // No wrap-up in the tax queue: the agent takes the next email at once.
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(text.contains("wrap_up_secs = 20"), "the demo's tax queue");
    std::fs::write(
        &config,
        text.replace("wrap_up_secs = 20", "wrap_up_secs = 0"),
    )
    .expect("config");
    let mut server = ws.start_with_config(&config);
    let (int_token, _) = ws.token("integrator", None);
    let (sup_token, _) = ws.token("supervisor", None);
    let db = ws.data_dir().join(guichet::store::DATABASE_FILE);

    // Bruno (tax, email capacity 5, no SMS) answers and completes every email offered.
    let (mut desk, mut offers) = logged_in_agent(&ws, &server, "bruno").await;
    let agent = tokio::spawn(async move {
        let mut offered: HashSet<String> = HashSet::new();
        let mut completed = 0;
        while completed < emails {
            let update = tokio::time::timeout(Duration::from_secs(120), offers.message())
                .await
                .expect("an offer within 120 s")
                .expect("the offer stream")
                .expect("the offer stream open");
            let Some(Update::Offer(offer)) = update.update else {
                continue;
            };
            let id = offer.interaction.expect("interaction").id;
            if !offered.insert(id.clone()) {
                continue;
            }
            desk.accept(pb::InteractionAction {
                agent_id: String::new(),
                interaction_id: id.clone(),
            })
            .await
            .expect("Accept");
            desk.complete(pb::CompleteRequest {
                agent_id: "bruno".into(),
                interaction_id: id,
                wrap_up_code: "answered".into(),
                notes: String::new(),
            })
            .await
            .expect("Complete");
            completed += 1;
        }
        (offered, desk, offers)
    });

    // Creations from several clients at once: SMS in `general` (nobody logged in takes SMS)
    // and emails in `tax`.
    let mut tasks = Vec::new();
    for task in 0..CREATORS {
        let mut client =
            InteractionsClient::with_interceptor(server.new_channel(), Bearer::token(&int_token));
        tasks.push(tokio::spawn(async move {
            for i in (task..creations).step_by(CREATORS) {
                create(&mut client, sms(task, i)).await;
            }
        }));
    }
    for task in 0..EMAILERS {
        let mut client =
            InteractionsClient::with_interceptor(server.new_channel(), Bearer::token(&int_token));
        tasks.push(tokio::spawn(async move {
            for i in (task..emails).step_by(EMAILERS) {
                create(&mut client, email(task, i)).await;
            }
        }));
    }
    let started = std::time::Instant::now();
    for t in tasks {
        t.await.expect("creator");
    }
    eprintln!("created in {:?}", started.elapsed());
    let (offered_stream, _desk, _offers) = tokio::time::timeout(Duration::from_secs(900), agent)
        .await
        .expect("every email completed in time")
        .expect("agent task");
    eprintln!("completed after {:?}", started.elapsed());

    // Every notice committed (the notices are a view: they catch up).
    let total = (creations + emails) as u64;
    eventually(Duration::from_secs(300), "every completion noticed", || {
        let db = db.clone();
        async move { (journal(&db).notices >= emails as u64).then_some(()) }
    })
    .await;
    eprintln!("noticed after {:?}", started.elapsed());

    // /metrics and /indicators catch up with the journal, exactly.
    let client = reqwest::Client::new();
    let url = format!("http://{}/metrics", server.http_addr);
    let text = eventually(Duration::from_secs(120), "metrics catch up", || {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let text = client.get(url).send().await.ok()?.text().await.ok()?;
            (metric(&text, "guichet_interactions_completed_total") >= emails as f64
                && metric(&text, "guichet_interactions_created_total") >= total as f64)
                .then_some(text)
        }
    })
    .await;
    let url = format!("http://{}/indicators?period=day", server.http_addr);
    let indicators: serde_json::Value =
        eventually(Duration::from_secs(120), "indicators catch up", || {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let j: serde_json::Value = client.get(url).send().await.ok()?.json().await.ok()?;
                (j["total"]["requests"].as_u64()? >= total).then_some(j)
            }
        })
        .await;
    let mut sup = server.supervisor(&sup_token);
    let mut stats = sup
        .watch_stats(pb::WatchStatsRequest {
            queues: vec!["tax".into()],
            interval_ms: 100,
        })
        .await
        .expect("WatchStats")
        .into_inner();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let tax = loop {
        let update = tokio::time::timeout(Duration::from_secs(20), stats.message())
            .await
            .expect("a statistics update")
            .expect("WatchStats")
            .expect("WatchStats open");
        let q = update
            .queues
            .into_iter()
            .find(|q| q.queue == "tax")
            .expect("tax");
        if q.answered_today as usize >= emails {
            break q;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "live stats never caught up: {q:?}"
        );
    };
    eprintln!("views caught up after {:?}", started.elapsed());
    // A moment for anything late, then the journal is the reference.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let text_after = client
        .get(format!("http://{}/metrics", server.http_addr))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("body");
    let truth = journal(&db);
    assert_eq!(server.terminate().code(), Some(0));

    assert_eq!(truth.created, total);
    assert_eq!(truth.completed, emails as u64);
    // Metrics: counted once each, none missed.
    for t in [&text, &text_after] {
        assert_eq!(
            metric(t, "guichet_interactions_created_total"),
            truth.created as f64
        );
        assert_eq!(
            metric(t, "guichet_interactions_completed_total"),
            truth.completed as f64
        );
        assert_eq!(
            metric(t, "guichet_offers_accepted_total"),
            truth.accepted as f64
        );
        assert_eq!(
            metric(t, "guichet_service_level_met_total")
                + metric(t, "guichet_service_level_missed_total"),
            truth.accepted as f64,
            "every first answer judged once (nothing abandoned)"
        );
    }
    // The public indicators: every request, every answer.
    assert_eq!(
        indicators["total"]["requests"].as_u64(),
        Some(truth.created)
    );
    assert_eq!(
        indicators["total"]["answered"].as_u64(),
        Some(truth.accepted)
    );
    // The supervisors' statistics of the tax queue: the same answers.
    assert_eq!(tax.answered_today as u64, truth.accepted);
    assert_eq!(tax.service_level_today, Some(1.0), "{tax:?}");
    // The offer stream: every offer made to bruno, none missed.
    assert_eq!(offered_stream, truth.offered_to_bruno);
    // One notice per completed email, none twice.
    assert_eq!(truth.notices, emails as u64);
    assert_eq!(truth.noticed.len(), emails);
}
