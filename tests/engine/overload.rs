//! Overload, shutdown and failure: a full command queue refuses at once and changes nothing; every
//! acknowledged command is durable; callers queued when shutdown arrives are either served and
//! committed or told the engine stopped.

use crate::engine_common;

use std::collections::BTreeSet;
use std::task::Poll;

use engine_common::{demo, poll_once, spec, PATIENCE};
use guichet::core::{Command, EventKind, InteractionId, InteractionView};
use guichet::engine::{Engine, EngineConfig, EngineError};

fn open_ids(views: &[InteractionView]) -> BTreeSet<InteractionId> {
    views.iter().map(|v| v.spec.id).collect()
}

/// On one thread nothing else runs between two polls, so the queue's single place is taken by
/// the first send and every other one is refused on its first poll, before any await.
#[tokio::test(flavor = "current_thread")]
async fn a_full_queue_refuses_at_once_and_refused_commands_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = EngineConfig::new(dir.path());
    config.command_queue = 1;
    let (engine, _) = Engine::start(config.clone(), &demo()).await.expect("start");

    let mut sends: Vec<_> = (1..=50u128)
        .map(|n| {
            let engine = engine.clone();
            Box::pin(async move {
                engine
                    .send(Command::CreateInteraction {
                        spec: spec(n, "benefits"),
                    })
                    .await
            })
        })
        .collect();
    let mut waiting = Vec::new();
    let mut refused = BTreeSet::new();
    for (i, send) in sends.iter_mut().enumerate() {
        let id = InteractionId::from_u128(i as u128 + 1);
        match poll_once(send) {
            Poll::Ready(Err(EngineError::Overloaded)) => {
                refused.insert(id);
            }
            Poll::Ready(other) => panic!("send {id} finished at once with {other:?}"),
            Poll::Pending => waiting.push(i),
        }
    }
    assert_eq!(waiting, vec![0], "only the first send fits in the queue");
    assert_eq!(refused.len(), 49);

    let accepted = sends
        .swap_remove(0)
        .await
        .expect("the queued send is served");
    assert!(accepted.iter().any(|e| matches!(
        &e.kind,
        EventKind::InteractionCreated { spec, .. } if spec.id == InteractionId::from_u128(1)
    )));
    drop(sends);

    // The queue has room again.
    engine
        .send(Command::CreateInteraction {
            spec: spec(100, "benefits"),
        })
        .await
        .expect("after the burst");

    let expected: BTreeSet<_> = [1u128, 100]
        .into_iter()
        .map(InteractionId::from_u128)
        .collect();
    let live = engine.read(|r| r.interactions()).await.expect("read");
    assert_eq!(open_ids(&live), expected);
    engine.shutdown().await;
    drop(engine);

    let (engine, report) = Engine::start(config, &demo()).await.expect("restart");
    assert_eq!(report.open_interactions, 2);
    let (recovered, refs) = engine
        .read(move |r| {
            let refused_refs: Vec<_> = (2..=50)
                .filter_map(|n| r.find_by_external_ref(&format!("REF{n}")))
                .collect();
            (r.interactions(), refused_refs)
        })
        .await
        .expect("read");
    assert_eq!(recovered, live, "the same interactions, in the same state");
    assert!(refs.is_empty(), "refused creations left traces: {refs:?}");
    engine.shutdown().await;
}

/// Many tasks on two threads race for a tiny command queue and a tiny journal queue (so that
/// the router task also waits for the journal): each send either is refused at once or is
/// answered after commit, and after a restart exactly the acknowledged creations are back, in
/// the same order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_acknowledged_creations_survive_and_refused_ones_do_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = EngineConfig::new(dir.path());
    config.command_queue = 2;
    config.store.queue_capacity = 4;
    config.store.max_batch = 4;
    let (engine, _) = Engine::start(config.clone(), &demo()).await.expect("start");

    let mut accepted = BTreeSet::new();
    let mut refused = BTreeSet::new();
    let mut next = 1u128;
    for _round in 0..20 {
        let mut tasks = Vec::new();
        for _ in 0..300 {
            let n = next;
            next += 1;
            let engine = engine.clone();
            tasks.push(tokio::spawn(async move {
                let result = engine
                    .send(Command::CreateInteraction {
                        spec: spec(n, "benefits"),
                    })
                    .await;
                (InteractionId::from_u128(n), result)
            }));
        }
        for task in tasks {
            let (id, result) = task.await.expect("sender task");
            match result {
                Ok(events) => {
                    assert!(
                        events.iter().any(|e| matches!(
                            &e.kind,
                            EventKind::InteractionCreated { spec, .. } if spec.id == id
                        )),
                        "{id}: {events:?}"
                    );
                    accepted.insert(id);
                }
                Err(EngineError::Overloaded) => {
                    refused.insert(id);
                }
                Err(e) => panic!("{id}: unexpected {e}"),
            }
        }
        if !refused.is_empty() && !accepted.is_empty() {
            break;
        }
    }
    assert!(!refused.is_empty(), "the tiny queue never overflowed");
    assert!(!accepted.is_empty());

    let (live, order) = engine
        .read(|r| (r.interactions(), r.waiting_in_queue(&"benefits".into())))
        .await
        .expect("read");
    assert_eq!(open_ids(&live), accepted);
    engine.shutdown().await;
    drop(engine);

    let (engine, report) = Engine::start(config, &demo()).await.expect("restart");
    assert_eq!(report.open_interactions, accepted.len());
    let (recovered, recovered_order) = engine
        .read(|r| (r.interactions(), r.waiting_in_queue(&"benefits".into())))
        .await
        .expect("read");
    assert_eq!(open_ids(&recovered), accepted, "acknowledged = recovered");
    assert!(open_ids(&recovered).is_disjoint(&refused));
    assert_eq!(recovered, live);
    assert_eq!(recovered_order, order, "waiting in the same order");
    engine.shutdown().await;
}

/// Shutdown while callers are queued: those ahead of it are served and committed, those behind
/// it (or arriving later) get `Stopped`, nobody hangs, and a restart finds exactly the
/// acknowledged creations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_queued_at_shutdown_are_served_or_told_it_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = EngineConfig::new(dir.path());
    config.command_queue = 64;
    let (engine, _) = Engine::start(config.clone(), &demo()).await.expect("start");

    let mut tasks = Vec::new();
    for n in 1..=400u128 {
        let sender = engine.clone();
        tasks.push(tokio::spawn(async move {
            // Spread the sends around the shutdown.
            if n % 4 == 0 {
                tokio::task::yield_now().await;
            }
            let result = sender
                .send(Command::CreateInteraction {
                    spec: spec(n, "benefits"),
                })
                .await;
            (InteractionId::from_u128(n), result)
        }));
        if n == 200 {
            let engine = engine.clone();
            tasks.push(tokio::spawn(async move {
                engine.shutdown().await;
                (InteractionId::from_u128(0), Err(EngineError::Stopped))
            }));
        }
    }
    let mut accepted = BTreeSet::new();
    let mut stopped = 0;
    for task in tasks {
        let (id, result) = tokio::time::timeout(PATIENCE, task)
            .await
            .expect("no caller hangs")
            .expect("task");
        match result {
            Ok(_) => {
                accepted.insert(id);
            }
            Err(EngineError::Stopped) | Err(EngineError::Overloaded) => stopped += 1,
            Err(e) => panic!("{id}: unexpected {e}"),
        }
    }
    assert!(stopped > 0, "the shutdown task at least");
    engine.shutdown().await;
    assert!(engine.is_stopped());
    assert!(matches!(
        engine
            .send(Command::Login {
                agent: "amelie".into()
            })
            .await,
        Err(EngineError::Stopped)
    ));
    drop(engine);

    let (engine, _) = Engine::start(config, &demo()).await.expect("restart");
    let recovered = engine.read(|r| r.interactions()).await.expect("read");
    assert_eq!(open_ids(&recovered), accepted);
    engine.shutdown().await;
}

/// A second `shutdown` (from another clone) returns only once the engine has really ended:
/// subscribers are closed and the journal is shut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_shutdown_waits_for_the_same_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (engine, _) = Engine::start(EngineConfig::new(dir.path()), &demo())
        .await
        .expect("start");
    let mut events = engine.subscribe();
    engine
        .send(Command::Login {
            agent: "amelie".into(),
        })
        .await
        .expect("login");
    let first = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.shutdown().await })
    };
    tokio::time::timeout(PATIENCE, async {
        while !engine.is_stopped() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("stops");
    engine.shutdown().await;
    // Everything committed was published, then the stream ended.
    let batch = events.try_recv().expect("the login's batch");
    assert!(batch.seq > 0);
    assert!(matches!(
        events.try_recv(),
        Err(tokio::sync::broadcast::error::TryRecvError::Closed)
    ));
    first.await.expect("first shutdown");
    // A subscription taken after the end is closed at once.
    let mut late = engine.subscribe();
    assert!(matches!(
        late.recv().await,
        Err(tokio::sync::broadcast::error::RecvError::Closed)
    ));
}

/// A commit that fails (here another connection holds the database's write lock longer than
/// the journal waits and retries) stops the engine: the caller is told, and so is every caller
/// whose answer depends on it, even one with no event of its own (a repeated creation of the
/// interaction that failed to commit) and a reader. Nothing of it is found after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_stops_the_engine_and_acknowledges_nothing_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = EngineConfig::new(dir.path());
    config.store.busy_timeout_ms = 5;
    let (engine, _) = Engine::start(config.clone(), &demo()).await.expect("start");
    let blocker = rusqlite::Connection::open(dir.path().join(guichet::store::DATABASE_FILE))
        .expect("second connection");
    blocker
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");

    // Queued in this order: the creation; its repeat, which has no event and no commit of its
    // own (the router already knows the interaction); a read.
    let mut create = Box::pin(engine.send(Command::CreateInteraction {
        spec: spec(1, "benefits"),
    }));
    assert!(poll_once(&mut create).is_pending());
    let mut repeat = Box::pin(engine.send(Command::CreateInteraction {
        spec: spec(1, "benefits"),
    }));
    assert!(poll_once(&mut repeat).is_pending());
    let mut read = Box::pin(engine.read(|r| r.open_count()));
    assert!(poll_once(&mut read).is_pending());

    let created = tokio::time::timeout(PATIENCE, create)
        .await
        .expect("answered");
    assert!(matches!(created, Err(EngineError::Stopped)), "{created:?}");
    let repeated = tokio::time::timeout(PATIENCE, repeat)
        .await
        .expect("answered");
    assert!(
        matches!(repeated, Err(EngineError::Stopped)),
        "a repeat of a creation that failed to commit was acknowledged: {repeated:?}"
    );
    let read = tokio::time::timeout(PATIENCE, read)
        .await
        .expect("answered");
    assert!(matches!(read, Err(EngineError::Stopped)), "{read:?}");
    assert!(engine.is_stopped());
    assert!(matches!(
        engine
            .send(Command::Login {
                agent: "amelie".into()
            })
            .await,
        Err(EngineError::Stopped)
    ));
    blocker.execute_batch("ROLLBACK").expect("release");
    drop(blocker);
    tokio::time::timeout(PATIENCE, engine.shutdown())
        .await
        .expect("shutdown after a failure");
    drop(engine);

    let (engine, report) = Engine::start(config, &demo()).await.expect("restart");
    assert_eq!(report.open_interactions, 0);
    engine.shutdown().await;
}
