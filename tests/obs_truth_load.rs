//! Every view of committed events tells the journal's truth under load, against the real
//! binary with `[engine] event_buffer = 4` (so that every view falls behind the engine's
//! broadcast again and again): creations from several clients at once, email interactions
//! answered and completed by an agent while they arrive, and chat lines written by an agent
//! to several visitors at once (one of whom reconnects halfway, and any the server finds too
//! slow to read). Afterwards `/metrics`, `/indicators`, `WatchStats`, the agent's offer
//! stream, the completion notices and the lines each visitor got all match the journal
//! exactly: every agent line once, in order, none twice.
//!
//! The default size suits `cargo test` on two cores (2,000 creations, 200 email completions,
//! 200 chat lines); `GUICHET_TRUTH_FULL=1` runs the size (20,000 creations, 2,000
//! email completions, 2,000 chat lines).

mod api_common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use pb::offer_update::Update;
use tonic::Code;

use api_common::{config_with, eventually, logged_in_agent, Bearer, Workspace};
use guichet::api::proto as pb;
use pb::interactions_client::InteractionsClient;

const CREATORS: usize = 4;
const EMAILERS: usize = 2;
/// Chat visitors at once (david takes 4 chats).
const VISITORS: usize = 4;

/// Creations, email completions, chat lines.
fn sizes() -> (usize, usize, usize) {
    if std::env::var_os("GUICHET_TRUTH_FULL").is_some() {
        (20_000, 2_000, 2_000)
    } else {
        (2_000, 200, 200)
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_send(socket: &mut Socket, frame: Value) {
    socket
        .send(WsMessage::Text(frame.to_string().into()))
        .await
        .expect("send frame");
}

/// The next JSON frame; none when the socket closed.
async fn ws_next(socket: &mut Socket) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(300), socket.next())
            .await
            .expect("a chat frame within 300 s");
        match msg {
            Some(Ok(WsMessage::Text(t))) => {
                return Some(serde_json::from_str(&t).expect("JSON frame"))
            }
            Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

/// A line shown to visitor `n`: after the last one, in journal order.
fn take(n: usize, l: &Value, last: &mut u64, shown: &mut Vec<String>) {
    let seq = l["seq"].as_u64().expect("seq");
    assert!(seq > *last, "visitor {n}: line {seq} after {last}: {l}");
    *last = seq;
    shown.push(l["id"].as_str().expect("id").to_owned());
}

/// One visitor: starts a chat, then reads the agent's lines until it has `lines` of them,
/// reconnecting (with the last line it shows) when `reconnect_at` lines are in, or when the
/// server closes it as too slow. Returns the ids of the lines shown, in order; the socket
/// stays open, read (pings answered) until the server stops (closing it would end the chat
/// after the grace period).
async fn visitor(
    http: SocketAddr,
    n: usize,
    lines: usize,
    reconnect_at: Option<usize>,
) -> Vec<String> {
    let url = format!("ws://{http}/chat/ws");
    let mut socket = tokio_tungstenite::connect_async(&url)
        .await
        .expect("connect")
        .0;
    ws_send(
        &mut socket,
        json!({"type": "start", "name": format!("Visiteur {n}"), "language": "fr"}),
    )
    .await;
    let started = loop {
        let f = ws_next(&mut socket).await.expect("started");
        if f["type"] == "started" {
            break f;
        }
        assert_ne!(f["type"], "error", "{f}");
    };
    ws_send(
        &mut socket,
        json!({"type": "message", "text": "Bonjour", "client_id": "first"}),
    )
    .await;
    let mut shown: Vec<String> = Vec::new();
    let mut last = 0u64;
    let mut reconnect_at = reconnect_at;
    let mut resumes = 0;
    while shown.len() < lines {
        let frame = if reconnect_at.is_some_and(|at| shown.len() >= at) {
            reconnect_at = None;
            None
        } else {
            ws_next(&mut socket).await
        };
        let Some(f) = frame else {
            // Closed (too slow to read, or on purpose): resume after the last line shown.
            resumes += 1;
            assert!(resumes < 50, "visitor {n} resumed too often");
            socket = tokio_tungstenite::connect_async(&url)
                .await
                .expect("reconnect")
                .0;
            ws_send(
                &mut socket,
                json!({"type": "resume", "session": started["session"],
                       "token": started["resume_token"], "after": last}),
            )
            .await;
            continue;
        };
        match f["type"].as_str() {
            Some("message") => take(n, &f, &mut last, &mut shown),
            Some("resumed") => {
                for l in f["history"].as_array().expect("history") {
                    if l["from"] == "agent" {
                        take(n, l, &mut last, &mut shown);
                    } else {
                        last = last.max(l["seq"].as_u64().expect("seq"));
                    }
                }
            }
            Some("error") if f["code"] == "too_slow" || f["code"] == "unavailable" => {}
            Some("error") | Some("ended") | Some("unavailable") => panic!("visitor {n}: {f}"),
            _ => {}
        }
    }
    tokio::spawn(async move { while let Some(Ok(_)) = socket.next().await {} });
    shown
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
    /// Offers accepted by bruno (the tax queue's emails).
    accepted_by_bruno: u64,
    offered_to_bruno: HashSet<String>,
    notices: u64,
    noticed: HashSet<String>,
    /// The agent's chat lines (message ids), per chat interaction, in journal order.
    chat_lines: HashMap<String, Vec<String>>,
}

/// The first object in `v` (depth first) that has `key`.
fn object_with<'a>(v: &'a Value, key: &str) -> Option<&'a serde_json::Map<String, Value>> {
    match v {
        Value::Object(m) if m.contains_key(key) => Some(m),
        Value::Object(m) => m.values().find_map(|v| object_with(v, key)),
        Value::Array(a) => a.iter().find_map(|v| object_with(v, key)),
        _ => None,
    }
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
    let mut chat_lines: HashMap<String, Vec<String>> = HashMap::new();
    let mut chats = HashSet::new();
    let mut stmt = conn
        .prepare(
            "SELECT interaction, payload FROM journal WHERE kind = 'message_added' ORDER BY seq",
        )
        .expect("prepare");
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .expect("query");
    for row in rows {
        let (interaction, payload) = row.expect("row");
        let v: Value = serde_json::from_str(&payload).expect("payload");
        let m = object_with(&v, "direction").expect("a message");
        let id = m["id"].as_str().expect("id");
        if m["direction"] == "inbound" && id.starts_with("chat:") {
            chats.insert(interaction.clone());
        }
        if m["direction"] == "outbound" && chats.contains(&interaction) {
            chat_lines
                .entry(interaction)
                .or_default()
                .push(id.to_owned());
        }
    }
    drop(stmt);
    Journal {
        chat_lines,
        created: count("interaction_created"),
        completed: count("interaction_completed"),
        accepted: count("offer_accepted"),
        accepted_by_bruno: conn
            .query_row(
                "SELECT count(*) FROM journal WHERE kind = 'offer_accepted' AND agent = 'bruno'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .expect("count") as u64,
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
    let (creations, emails, chat_lines) = sizes();
    let ws = Workspace::new();
    let config = config_with(
        ws.path(),
        "[engine]\nevent_buffer = 4\n[citizen]\nunstaffed_chats = \"wait\"\n",
    );
    // No wrap-up in the tax queue: the agent takes the next email at once.
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(text.contains("wrap_up_secs = 20"), "the demo's tax queue");
    // David answers the chats (general) and takes no SMS (the SMS wait in general).
    let david = "capacity = { voice = 1, email = 8, sms = 5, chat = 4 }";
    assert!(text.contains(david), "the demo's david");
    // Bruno answers the emails only.
    let bruno = "capacity = { voice = 1, email = 5, sms = 0, chat = 2 }";
    assert!(text.contains(bruno), "the demo's bruno");
    std::fs::write(
        &config,
        text.replace("wrap_up_secs = 20", "wrap_up_secs = 0")
            .replace(
                david,
                "capacity = { voice = 1, email = 8, sms = 0, chat = 4 }",
            )
            .replace(
                bruno,
                "capacity = { voice = 1, email = 5, sms = 0, chat = 0 }",
            ),
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

    // An integrator's event stream, read slowly enough to fall behind: every event once, in
    // journal order, none skipped (it catches up from the journal; it is never cut off).
    let mut watch =
        InteractionsClient::with_interceptor(server.new_channel(), Bearer::token(&int_token))
            .watch_events(pb::WatchEventsRequest::default())
            .await
            .expect("WatchEvents")
            .into_inner();
    // Read up to the journal's end, once the test knows it.
    let (target_tx, mut target) = tokio::sync::watch::channel(u64::MAX);
    let watcher = tokio::spawn(async move {
        let mut created = 0u64;
        let mut last = 0u64;
        let mut received = 0u64;
        loop {
            if last >= *target.borrow_and_update() {
                break;
            }
            let event = tokio::select! {
                m = tokio::time::timeout(Duration::from_secs(300), watch.message()) => match m {
                    Ok(Ok(Some(e))) => e,
                    Ok(Ok(None)) => panic!("WatchEvents ended"),
                    Err(_) => panic!("WatchEvents silent for 300 s at {last}"),
                    Ok(Err(s)) => panic!("WatchEvents cut off: {s:?}"),
                },
                _ = target.changed() => continue,
            };
            assert!(
                last == 0 || event.seq == last + 1,
                "event {} after {last}: none skipped",
                event.seq
            );
            last = event.seq;
            received += 1;
            if event.kind == "interaction_created" {
                created += 1;
            }
            if received % 4096 == 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        (created, last)
    });

    // David writes the chat lines, to every visitor at once (a client per chat).
    let per_chat = chat_lines / VISITORS;
    let (mut chat_desk, mut chat_offers) = logged_in_agent(&ws, &server, "david").await;
    let chat_agent = tokio::spawn(async move {
        let mut writers = Vec::new();
        while writers.len() < VISITORS {
            let update = tokio::time::timeout(Duration::from_secs(120), chat_offers.message())
                .await
                .expect("a chat offer within 120 s")
                .expect("the offer stream")
                .expect("the offer stream open");
            let Some(Update::Offer(offer)) = update.update else {
                continue;
            };
            let id = offer.interaction.expect("interaction").id;
            chat_desk
                .accept(pb::InteractionAction {
                    agent_id: String::new(),
                    interaction_id: id.clone(),
                })
                .await
                .expect("Accept a chat");
            let mut desk = chat_desk.clone();
            writers.push(tokio::spawn(async move {
                for i in 0..per_chat {
                    let req = pb::SendMessageRequest {
                        interaction_id: id.clone(),
                        text: format!("ligne {i}"),
                        ..Default::default()
                    };
                    loop {
                        match desk.send_message(req.clone()).await {
                            Ok(_) => break,
                            Err(s) if s.code() == Code::Unavailable => {
                                tokio::time::sleep(Duration::from_millis(5)).await
                            }
                            Err(s) => panic!("SendMessage failed: {s:?}"),
                        }
                    }
                }
            }));
        }
        for w in writers {
            w.await.expect("chat writer");
        }
        (chat_desk, chat_offers)
    });
    let http = server.http_addr;
    let visitors: Vec<_> = (0..VISITORS)
        .map(|n| {
            let reconnect = (n == 0).then_some(per_chat / 2);
            tokio::spawn(visitor(http, n, per_chat, reconnect))
        })
        .collect();

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
    let _chat_agent = tokio::time::timeout(Duration::from_secs(900), chat_agent)
        .await
        .expect("every chat line written in time")
        .expect("chat agent task");
    let mut seen: Vec<Vec<String>> = Vec::new();
    for v in visitors {
        seen.push(
            tokio::time::timeout(Duration::from_secs(300), v)
                .await
                .expect("every chat line shown in time")
                .expect("visitor task"),
        );
    }
    eprintln!("chat lines shown after {:?}", started.elapsed());

    // Every notice committed (the notices are a view: they catch up).
    // Every creation, email and chat.
    let total = (creations + emails + VISITORS) as u64;
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
    let journal_end = {
        let conn =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .expect("open the journal read-only");
        conn.query_row("SELECT max(seq) FROM journal", [], |r| r.get::<_, i64>(0))
            .expect("max seq") as u64
    };
    target_tx.send_replace(journal_end);
    let (watched_created, watched_last) = tokio::time::timeout(Duration::from_secs(600), watcher)
        .await
        .expect("the event stream drained")
        .expect("watcher task");
    assert_eq!(server.terminate().code(), Some(0));
    assert_eq!(
        watched_created, truth.created,
        "WatchEvents: every creation"
    );
    assert!(
        watched_last >= journal_end,
        "WatchEvents reached the journal's end"
    );

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
    assert_eq!(tax.answered_today as u64, truth.accepted_by_bruno);
    assert_eq!(truth.accepted, truth.accepted_by_bruno + VISITORS as u64);
    assert_eq!(tax.service_level_today, Some(1.0), "{tax:?}");
    // The offer stream: every offer made to bruno, none missed.
    assert_eq!(offered_stream, truth.offered_to_bruno);
    // One notice per completed email, none twice.
    assert_eq!(truth.notices, emails as u64);
    assert_eq!(truth.noticed.len(), emails);
    // Each visitor was shown exactly its chat's agent lines, in journal order, once each.
    assert_eq!(truth.chat_lines.len(), VISITORS, "one chat per visitor");
    let mut journal_lines: Vec<Vec<String>> = truth.chat_lines.into_values().collect();
    journal_lines.sort();
    seen.sort();
    assert_eq!(seen, journal_lines);
    assert_eq!(
        seen.iter().map(Vec::len).sum::<usize>(),
        VISITORS * per_chat,
        "every line written, none twice"
    );
}
