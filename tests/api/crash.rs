//! Durability of the real server (issue 3's crash test): creations acknowledged over gRPC survive
//! a SIGKILL in the middle of a stream of creations, in their order and without duplicates; live
//! configuration changes survive a graceful restart; a corrupt database stops start-up with a
//! message naming the file.

use crate::api_common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::Code;

use api_common::{eventually, skip_on_postgres, spec, waiting, Bearer, Workspace};
use guichet::api::proto as pb;
use pb::interactions_client::InteractionsClient;

const TASKS: usize = 8;
const PER_TASK: usize = 500;

/// One acknowledged creation, as the client saw it.
#[derive(Debug, Clone)]
struct Acked {
    task: usize,
    id: String,
    external_ref: String,
    enqueued_at: i64,
    sla_deadline: i64,
}

fn external_ref(task: usize, i: usize) -> String {
    format!("crash-{task}-{i}")
}

fn create_request(task: usize, i: usize) -> pb::CreateRequest {
    spec(
        "general",
        pb::Channel::Voice,
        &format!("+336{task:02}{i:06}"),
        &external_ref(task, i),
    )
}

async fn general_line(
    sup: &mut pb::supervisor_client::SupervisorClient<api_common::Authed>,
) -> Vec<pb::Interaction> {
    // Every page of the line.
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let resp = sup
            .list_waiting(pb::ListWaitingRequest {
                queues: vec!["general".into()],
                page_size: 500,
                page_token: token,
                ..Default::default()
            })
            .await
            .expect("ListWaiting")
            .into_inner();
        assert!(
            resp.lines.iter().all(|l| l.in_progress.is_empty()),
            "nobody is logged in: nothing can be in progress"
        );
        all.extend(waiting(&resp));
        if resp.next_page_token.is_empty() {
            return all;
        }
        token = resp.next_page_token;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_creations_survive_sigkill_and_config_survives_restart() {
    let ws = Workspace::new();
    let mut server = ws.start();
    let (int_token, _) = ws.token("integrator", None);
    let (sup_token, _) = ws.token("supervisor", None);

    // Creations from several tasks, each on its own connection, until the server dies.
    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let mut client =
            InteractionsClient::with_interceptor(server.new_channel(), Bearer::token(&int_token));
        let (acked, count, killed) = (acked.clone(), count.clone(), killed.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while i < PER_TASK {
                match client.create(create_request(task, i)).await {
                    Ok(resp) => {
                        let resp = resp.into_inner();
                        assert!(resp.created, "{} created twice", external_ref(task, i));
                        let it = resp.interaction.expect("interaction");
                        acked.lock().unwrap().push(Acked {
                            task,
                            id: it.id,
                            external_ref: it.external_ref,
                            enqueued_at: it.enqueued_at_unix_ms,
                            sla_deadline: it.sla_deadline_unix_ms,
                        });
                        count.fetch_add(1, Ordering::SeqCst);
                        i += 1;
                    }
                    Err(s) if s.code() == Code::Unavailable && !killed.load(Ordering::SeqCst) => {
                        // Overloaded: retry the same creation (idempotent on its reference).
                        assert!(s.message().contains("overloaded"), "{s:?}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Err(s) => {
                        assert!(
                            killed.load(Ordering::SeqCst),
                            "creation failed before the kill: {s:?}"
                        );
                        // In flight when the server died: committed or not, unknown.
                        return Some(i);
                    }
                }
            }
            None
        }));
    }
    // Kill when about a third is acknowledged.
    let target = TASKS * PER_TASK / 3;
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while count.load(Ordering::SeqCst) < target {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} creations acknowledged in 300 s",
            count.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    killed.store(true, Ordering::SeqCst);
    server.kill(); // SIGKILL
    let mut in_flight = Vec::new();
    for (task, handle) in tasks.into_iter().enumerate() {
        let ended = tokio::time::timeout(Duration::from_secs(60), handle)
            .await
            .expect("creation task ends after the kill")
            .expect("creation task");
        if let Some(i) = ended {
            in_flight.push((task, i));
        }
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() < TASKS * PER_TASK,
        "the kill came after every creation: not a mid-stream crash"
    );
    assert!(
        !in_flight.is_empty(),
        "no creation was in flight at the kill"
    );

    // Restart on the same data directory.
    let mut server = ws.start();
    let mut sup = server.supervisor(&sup_token);
    let line = general_line(&mut sup).await;
    let position: HashMap<&str, usize> = line
        .iter()
        .enumerate()
        .map(|(p, i)| (i.id.as_str(), p))
        .collect();
    assert_eq!(position.len(), line.len(), "an interaction is listed twice");
    let refs: HashSet<&str> = line.iter().map(|i| i.external_ref.as_str()).collect();
    assert_eq!(
        refs.len(),
        line.len(),
        "an external reference is duplicated"
    );
    assert!(
        line.len() <= acked.len() + in_flight.len(),
        "{} recovered, {} acknowledged, {} in flight: something was invented",
        line.len(),
        acked.len(),
        in_flight.len()
    );
    // Every acknowledged creation is back, with its enqueue time and deadline.
    let by_id: HashMap<&str, &pb::Interaction> = line.iter().map(|i| (i.id.as_str(), i)).collect();
    for a in &acked {
        let back = by_id
            .get(a.id.as_str())
            .unwrap_or_else(|| panic!("acknowledged {} ({}) lost", a.id, a.external_ref));
        assert_eq!(back.external_ref, a.external_ref);
        assert_eq!(back.enqueued_at_unix_ms, a.enqueued_at, "{}", a.id);
        assert_eq!(back.sla_deadline_unix_ms, a.sla_deadline, "{}", a.id);
        assert_eq!(back.phase, pb::Phase::Waiting as i32);
    }
    // The line is in serving order: same priority, so by deadline then enqueue time then id.
    for w in line.windows(2) {
        let key = |i: &pb::Interaction| {
            (
                std::cmp::Reverse(i.priority),
                i.sla_deadline_unix_ms,
                i.enqueued_at_unix_ms,
                i.id.clone(),
            )
        };
        assert!(
            key(&w[0]) <= key(&w[1]),
            "out of order: {:?} then {:?}",
            w[0],
            w[1]
        );
        assert!(w[0].enqueued_at_unix_ms <= w[1].enqueued_at_unix_ms);
    }
    // Each task's acknowledgements keep their order in line (ties in the same millisecond are
    // broken by id, which the server generates at random).
    for task in 0..TASKS {
        let mine: Vec<&Acked> = acked.iter().filter(|a| a.task == task).collect();
        for w in mine.windows(2) {
            assert!(w[0].enqueued_at <= w[1].enqueued_at, "{w:?}");
            if w[0].enqueued_at < w[1].enqueued_at {
                assert!(
                    position[w[0].id.as_str()] < position[w[1].id.as_str()],
                    "{} acknowledged before {} but after it in line",
                    w[0].external_ref,
                    w[1].external_ref
                );
            }
        }
    }
    // Clients retry what was in flight: no duplicate, whether or not it had been committed;
    // and creating an acknowledged one again returns it (idempotency keys were recovered).
    let mut int = server.interactions(&int_token);
    for (task, i) in &in_flight {
        int.create(create_request(*task, *i))
            .await
            .expect("retry of an in-flight creation");
    }
    for a in acked.iter().step_by(97) {
        let (task, i) = a
            .external_ref
            .trim_start_matches("crash-")
            .split_once('-')
            .map(|(t, i)| (t.parse().unwrap(), i.parse().unwrap()))
            .unwrap();
        let again = int
            .create(create_request(task, i))
            .await
            .expect("create again")
            .into_inner();
        assert!(
            !again.created,
            "{} created again after restart",
            a.external_ref
        );
        assert_eq!(again.interaction.expect("interaction").id, a.id);
    }
    let line = general_line(&mut sup).await;
    let refs: HashSet<&str> = line.iter().map(|i| i.external_ref.as_str()).collect();
    assert_eq!(refs.len(), line.len(), "a retry duplicated an interaction");
    for (task, i) in &in_flight {
        assert!(refs.contains(external_ref(*task, *i).as_str()));
    }
    let before_term: Vec<String> = line.iter().map(|i| i.id.clone()).collect();

    // Live changes through the API: bruno gets the housing skill, the tax queue a new wrap-up
    // time, and a new queue appears.
    let mut bruno_skills = vec![
        pb::SkillLevel {
            skill: "benefits:housing".into(),
            level: 4,
        },
        pb::SkillLevel {
            skill: "general".into(),
            level: 2,
        },
        pb::SkillLevel {
            skill: "tax:income".into(),
            level: 5,
        },
    ];
    sup.set_agent_skills(pb::SetAgentSkillsRequest {
        agent_id: "bruno".into(),
        skills: bruno_skills.clone(),
    })
    .await
    .expect("SetAgentSkills");
    let queues = sup
        .list_queues(pb::ListQueuesRequest::default())
        .await
        .expect("ListQueues")
        .into_inner()
        .queues;
    let mut tax = queues.iter().find(|q| q.id == "tax").expect("tax").clone();
    tax.wrap_up_secs = 42;
    sup.upsert_queue(pb::UpsertQueueRequest {
        queue: Some(tax.clone()),
    })
    .await
    .expect("UpsertQueue tax");
    let pensions = pb::Queue {
        id: "pensions".into(),
        name: "Retraites / Pensions".into(),
        channels: vec![pb::Channel::Voice as i32, pb::Channel::Email as i32],
        requirements: vec![pb::Requirement {
            skill: "pensions".into(),
            min_level: 2,
        }],
        default_priority: 2,
        ..Default::default()
    };
    let pensions = sup
        .upsert_queue(pb::UpsertQueueRequest {
            queue: Some(pensions),
        })
        .await
        .expect("UpsertQueue pensions")
        .into_inner();

    // Graceful stop: exit code 0.
    let status = server.terminate();
    assert!(
        status.success(),
        "SIGTERM: exit {status:?}\n{}",
        ws.log_text()
    );

    let server = ws.start();
    let mut sup = server.supervisor(&sup_token);
    let agents = sup
        .list_agents(pb::ListAgentsRequest::default())
        .await
        .expect("ListAgents")
        .into_inner()
        .agents;
    let bruno = agents
        .iter()
        .find_map(|a| a.agent.as_ref().filter(|c| c.id == "bruno"))
        .expect("bruno");
    let mut got = bruno.skills.clone();
    got.sort_by(|a, b| a.skill.cmp(&b.skill));
    bruno_skills.sort_by(|a, b| a.skill.cmp(&b.skill));
    assert_eq!(got, bruno_skills, "the live skill change was lost");
    let queues = sup
        .list_queues(pb::ListQueuesRequest::default())
        .await
        .expect("ListQueues")
        .into_inner()
        .queues;
    assert_eq!(
        queues.iter().find(|q| q.id == "tax"),
        Some(&tax),
        "the live change of the tax queue was lost"
    );
    assert_eq!(
        queues.iter().find(|q| q.id == "pensions"),
        Some(&pensions),
        "the queue added live was lost"
    );
    let after_term: Vec<String> = general_line(&mut sup)
        .await
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(
        after_term, before_term,
        "the line changed across a graceful restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_database_stops_start_up_naming_the_file() {
    if skip_on_postgres("a damaged guichet.db") {
        return;
    }
    let ws = Workspace::new();
    let mut server = ws.start();
    let (int_token, _) = ws.token("integrator", None);
    server
        .interactions(&int_token)
        .create(spec("benefits", pb::Channel::Email, "a@example.org", "c-1"))
        .await
        .expect("Create");
    let status = server.terminate();
    assert!(status.success(), "SIGTERM: exit {status:?}");
    drop(server);

    let db = ws.data_dir().join("guichet.db");
    assert!(db.exists());
    let len = std::fs::metadata(&db).expect("metadata").len().max(8192) as usize;
    let garbage: Vec<u8> = (0..len).map(|i| (i * 7 + 13) as u8).collect();
    // Pure garbage, then a valid SQLite header over damaged pages.
    let mut with_header = garbage.clone();
    with_header[..16].copy_from_slice(b"SQLite format 3\0");
    for content in [garbage, with_header] {
        std::fs::write(&db, &content).expect("overwrite the database");
        let out = ws.serve_expecting_failure();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "started on a corrupt database:\n{stdout}\n{stderr}"
        );
        assert!(
            !stdout.lines().any(|l| l.trim() == "ready"),
            "said ready on a corrupt database:\n{stdout}"
        );
        assert!(
            stderr.contains(&db.display().to_string()),
            "the message does not name {}:\n{stderr}",
            db.display()
        );
    }
}

/// The server says what it recovered, and a second server on the same directory is refused
/// while the first runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_server_on_the_same_directory_is_refused() {
    if skip_on_postgres(
        "refusing a second server (on PostgreSQL it stands by: tests/api/ha_failover.rs)",
    ) {
        return;
    }
    let ws = Workspace::new();
    let server = ws.start();
    let out = ws.serve_expecting_failure();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("in use"), "{stderr}");
    // The first one still answers.
    let (sup_token, _) = ws.token("supervisor", None);
    eventually(Duration::from_secs(10), "first server answers", || {
        let mut sup = server.supervisor(&sup_token);
        async move { sup.list_agents(pb::ListAgentsRequest::default()).await.ok() }
    })
    .await;
}

/// SIGTERM with streams open: the server exits 0 without waiting out its grace period, and
/// each stream ends with a status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_open_streams_with_a_status() {
    let ws = Workspace::new();
    let mut server = ws.start();
    let (sup_token, _) = ws.token("supervisor", None);
    let (int_token, _) = ws.token("integrator", None);
    let (amelie_token, _) = ws.token("agent", Some("amelie"));
    let mut desk = server.desktop(&amelie_token);
    desk.login(pb::LoginRequest::default())
        .await
        .expect("Login");
    let mut offers = desk
        .offers(pb::OffersRequest::default())
        .await
        .expect("Offers")
        .into_inner();
    let mut events = server
        .interactions(&int_token)
        .watch_events(pb::WatchEventsRequest::default())
        .await
        .expect("WatchEvents")
        .into_inner();
    let mut stats = server
        .supervisor(&sup_token)
        .watch_stats(pb::WatchStatsRequest {
            queues: vec![],
            interval_ms: 200,
        })
        .await
        .expect("WatchStats")
        .into_inner();
    let mut line = server
        .supervisor(&sup_token)
        .watch_waiting(pb::WatchWaitingRequest::default())
        .await
        .expect("WatchWaiting")
        .into_inner();
    api_common::next(&mut stats).await;
    api_common::next(&mut line).await;

    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate();
        (status, server)
    });
    let (status, _server) = status.await.expect("terminate");
    assert!(
        status.success(),
        "SIGTERM: exit {status:?}\n{}",
        ws.log_text()
    );
    // The listeners stop without waiting out the grace period: nothing was left running.
    let log = ws.log_text();
    assert!(!log.contains("after the grace period"), "{log}");

    /// Reads until the stream ends; returns the status it ended with, if any.
    async fn end<T: std::fmt::Debug>(stream: &mut tonic::Streaming<T>) -> Option<tonic::Status> {
        loop {
            match tokio::time::timeout(api_common::STREAM_LIMIT, stream.message()).await {
                Ok(Ok(Some(_))) => continue,
                Ok(Ok(None)) => return None,
                Ok(Err(status)) => return Some(status),
                Err(_) => panic!("the stream did not end after the server stopped"),
            }
        }
    }
    for (name, status) in [
        ("Offers", end(&mut offers).await),
        ("WatchEvents", end(&mut events).await),
        ("WatchStats", end(&mut stats).await),
        ("WatchWaiting", end(&mut line).await),
    ] {
        let status = status.unwrap_or_else(|| panic!("{name} ended without a status"));
        assert_eq!(status.code(), Code::Unavailable, "{name}: {status:?}");
    }
}
