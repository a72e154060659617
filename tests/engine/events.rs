//! What callers, subscribers and readers see: committed batches in strictly increasing sequence
//! order with no gap, every replied event published (before the reply), reads and refusals
//! answered only after everything before them is committed, explanations that match the
//! decisions published.

use crate::engine_common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use engine_common::{demo, poll_once, spec, spec_on, PATIENCE};
use guichet::core::{Channel, Command, Event, EventKind, InteractionId, InteractionPhase};
use guichet::engine::{Committed, Engine, EngineConfig, EngineError};
use tokio::sync::broadcast::error::TryRecvError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_see_every_committed_batch_in_order_and_every_replied_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (engine, _) = Engine::start(EngineConfig::new(dir.path()), &demo())
        .await
        .expect("start");
    let mut rx = engine.subscribe();

    // Four concurrent callers: logins, creations (some repeated), accepts of what they were
    // offered, completions.
    let mut tasks = Vec::new();
    for (t, agent) in ["amelie", "bruno", "chloe", "david"]
        .into_iter()
        .enumerate()
    {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let mut replies: Vec<Vec<Event>> = Vec::new();
            let login = engine
                .send(Command::Login {
                    agent: agent.into(),
                })
                .await
                .expect("login");
            replies.push(login);
            for i in 0..60u128 {
                let n = 1 + (t as u128) * 1000 + i;
                let queue = ["benefits", "tax", "general"][i as usize % 3];
                let events = engine
                    .send(Command::CreateInteraction {
                        spec: spec_on(n, Channel::Email, queue),
                    })
                    .await
                    .expect("create");
                let mine: Vec<InteractionId> = events
                    .iter()
                    .filter_map(|e| match &e.kind {
                        EventKind::InteractionOffered {
                            interaction,
                            agent: a,
                            ..
                        } if a.as_str() == agent => Some(*interaction),
                        _ => None,
                    })
                    .collect();
                replies.push(events);
                for interaction in mine {
                    match engine
                        .send(Command::Accept {
                            interaction,
                            agent: agent.into(),
                        })
                        .await
                    {
                        Ok(events) => replies.push(events),
                        // Another task's command may have moved it meanwhile.
                        Err(EngineError::Route(_)) => continue,
                        Err(e) => panic!("{e}"),
                    }
                    if let Ok(events) = engine
                        .send(Command::Complete {
                            interaction,
                            agent: Some(agent.into()),
                            wrap_up_code: None,
                            notes: None,
                        })
                        .await
                    {
                        replies.push(events);
                    }
                }
                if i % 10 == 0 {
                    // A repeated creation: acknowledged with no event.
                    let again = engine
                        .send(Command::CreateInteraction {
                            spec: spec_on(n, Channel::Email, queue),
                        })
                        .await
                        .expect("repeat");
                    assert!(again.is_empty());
                }
            }
            replies
        }));
    }
    let mut replied: Vec<Vec<Event>> = Vec::new();
    for task in tasks {
        replied.extend(task.await.expect("task"));
    }
    // Each batch is published before its reply is sent, so all are buffered by now.
    let mut batches: Vec<Committed> = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(batch) => batches.push(batch),
            Err(TryRecvError::Empty) => break,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(!batches.is_empty());
    for pair in batches.windows(2) {
        assert!(
            pair[0].seq < pair[1].seq,
            "{} then {}",
            pair[0].seq,
            pair[1].seq
        );
        assert_eq!(
            pair[1].seq - pair[0].seq,
            pair[1].events.len() as u64,
            "a gap: a committed event was not published"
        );
    }
    assert!(batches.iter().all(|b| !b.events.is_empty()));
    for reply in replied.iter().filter(|r| !r.is_empty()) {
        assert!(
            batches.iter().any(|b| b.events[..] == reply[..]),
            "a reply's events were not published as one batch: {reply:?}"
        );
    }
    engine.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_batch_is_published_before_its_reply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (engine, _) = Engine::start(EngineConfig::new(dir.path()), &demo())
        .await
        .expect("start");
    let mut rx = engine.subscribe();
    for n in 1..=20u128 {
        let reply = engine
            .send(Command::CreateInteraction {
                spec: spec(n, "benefits"),
            })
            .await
            .expect("create");
        let batch = rx.try_recv().expect("published before the reply");
        assert_eq!(batch.events[..], reply[..]);
    }
    engine.shutdown().await;
}

/// A read or a refusal queued behind a command is answered only after that command is
/// committed and answered: nobody is told about state that a crash could still take back.
/// Another connection holds the database's write lock meanwhile, so that the commit cannot
/// happen until the test lets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_refusals_are_answered_after_earlier_commands_are_committed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = EngineConfig::new(dir.path());
    // The journal waits for the lock instead of failing.
    config.store.busy_timeout_ms = 120_000;
    let (engine, _) = Engine::start(config, &demo()).await.expect("start");

    let blocker = rusqlite::Connection::open(dir.path().join(guichet::store::DATABASE_FILE))
        .expect("second connection");
    blocker
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");

    let id = InteractionId::from_u128(1);
    let mut create = Box::pin(engine.send(Command::CreateInteraction {
        spec: spec(1, "benefits"),
    }));
    assert!(poll_once(&mut create).is_pending());
    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    let mut read = Box::pin(engine.read(move |r| {
        flag.store(true, Ordering::SeqCst);
        r.interaction(&id).is_some()
    }));
    assert!(poll_once(&mut read).is_pending());
    // Refused because Amélie is offline: the answer depends on the creation queued before.
    let mut refusal = Box::pin(engine.send(Command::Accept {
        interaction: id,
        agent: "amelie".into(),
    }));
    assert!(poll_once(&mut refusal).is_pending());

    // The router has run the read (and, in order, handled the refused command's predecessor).
    tokio::time::timeout(PATIENCE, async {
        while !ran.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the read runs");
    // Give a wrong engine the chance to answer early; a right one cannot while the lock is held.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(poll_once(&mut create).is_pending(), "replied before commit");
    assert!(
        poll_once(&mut read).is_pending(),
        "a read revealed an uncommitted creation"
    );
    assert!(
        poll_once(&mut refusal).is_pending(),
        "a refusal was answered before the command before it was committed"
    );

    blocker.execute_batch("ROLLBACK").expect("release the lock");
    drop(blocker);
    let seen = tokio::time::timeout(PATIENCE, read)
        .await
        .expect("read answered")
        .expect("read");
    assert!(seen, "the read sees the creation queued before it");
    assert!(
        matches!(poll_once(&mut create), Poll::Ready(Ok(_))),
        "the creation is answered no later than the read behind it"
    );
    let refused = refusal.await;
    assert!(matches!(refused, Err(EngineError::Route(_))), "{refused:?}");
    engine.shutdown().await;
}

#[tokio::test]
async fn explanations_match_the_published_decisions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (engine, _) = Engine::start(EngineConfig::new(dir.path()), &demo())
        .await
        .expect("start");
    for agent in ["amelie", "chloe", "emma"] {
        engine
            .send(Command::Login {
                agent: agent.into(),
            })
            .await
            .expect("login");
    }
    let created = engine
        .send(Command::CreateInteraction {
            spec: spec(1, "benefits"),
        })
        .await
        .expect("create");
    let (agent, decision) = created
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::InteractionOffered {
                agent, decision, ..
            } => Some((agent.clone(), decision.clone())),
            _ => None,
        })
        .expect("offered");
    // Amélie holds benefits:housing at 5, Chloé at 3, Emma at 2.
    assert_eq!(agent.as_str(), "amelie");
    assert_eq!(decision.candidates, 3);
    let explanation = engine
        .read(|r| r.explain(&InteractionId::from_u128(1)))
        .await
        .expect("read")
        .expect("open");
    assert_eq!(explanation.interaction.decision.as_ref(), Some(&decision));
    assert!(matches!(
        &explanation.interaction.phase,
        InteractionPhase::Offered { agent: a, .. } if *a == agent
    ));
    assert!(
        explanation.summary.contains("offered to amelie"),
        "{}",
        explanation.summary
    );
    engine.shutdown().await;
}

/// A read that panics takes down its caller, not the engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_read_does_not_stop_the_engine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (engine, _) = Engine::start(EngineConfig::new(dir.path()), &demo())
        .await
        .expect("start");
    let reader = engine.clone();
    let outcome = tokio::spawn(async move {
        reader
            .read(|r| {
                if r.open_count() == 0 {
                    panic!("a bug in a reader");
                }
            })
            .await
    })
    .await;
    assert!(outcome.expect_err("the reader panics").is_panic());
    assert!(!engine.is_stopped());
    engine
        .send(Command::Login {
            agent: "amelie".into(),
        })
        .await
        .expect("the engine still serves");
    engine.shutdown().await;
}
