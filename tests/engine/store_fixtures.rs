//! Databases written by earlier versions recover unchanged.
//!
//! `tests/fixtures/main-before-fair-routing.db` was written by main at d82317a, before fair
//! routing (issue 14) added per-channel idle time, re-offers after a decline and `max_declines`:
//! the test `write_fixture` below, run on that commit (`GUICHET_FIXTURE_DIR=<dir> cargo test
//! --test engine -- store_fixtures:: --ignored`), wrote it and `main-before-fair-routing.snapshot.json`,
//! the router's snapshot just before it stopped. It holds a snapshot and a journal tail after
//! it, calls declined and missed, one assigned, two chats offered at once, and call 2 stranded
//! (declined or missed by every agent, so never offered again before issue 14).

use crate::engine_common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use engine_common::{config_with, spec, spec_on, ManualClock};
use guichet::core::{
    AgentConfig, Capacity, Channel, Command, InteractionId, InteractionPhase, QueueConfig,
    Strategy, Timestamp, DEFAULT_REOFFER_AFTER_SECS,
};
use guichet::engine::{Engine, EngineConfig};
use guichet::store::{Store, StoreConfig};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Asserts that every field of `before` has the same value in `after` (fields added since may
/// exist in `after`), except the agents' `idle_since`, whose meaning changed: it now restarts
/// when work ends, which the replayed tail of the journal applies.
fn assert_kept(before: &Value, after: &Value, path: &str) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (key, value) in b {
                if key == "idle_since" && path.starts_with("/agents") {
                    continue;
                }
                let Some(now) = a.get(key) else {
                    panic!("{path}/{key} lost on recovery");
                };
                assert_kept(value, now, &format!("{path}/{key}"));
            }
        }
        (Value::Array(b), Value::Array(a)) => {
            assert_eq!(b.len(), a.len(), "{path}: length changed");
            for (i, (b, a)) in b.iter().zip(a).enumerate() {
                assert_kept(b, a, &format!("{path}/{i}"));
            }
        }
        (b, a) => assert_eq!(b, a, "{path} changed on recovery"),
    }
}

#[test]
fn a_database_written_before_fair_routing_recovers_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        fixture("main-before-fair-routing.db"),
        dir.path().join("guichet.db"),
    )
    .expect("copy the fixture");
    let store = Store::open(&StoreConfig::new(dir.path())).expect("open");
    let recovered = store.recover_router().expect("recover");
    assert!(
        recovered.snapshot_seq.is_some(),
        "the fixture has a snapshot"
    );
    assert!(recovered.replayed > 0, "and a journal tail after it");
    let mut router = recovered.router;
    router.check_invariants().expect("invariants");

    let before: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("main-before-fair-routing.snapshot.json"))
            .expect("read the snapshot"),
    )
    .expect("json");
    let after = serde_json::to_value(router.snapshot()).expect("json");
    assert_kept(&before, &after, "");
    for queue in router.queues() {
        assert_eq!(queue.config.reoffer_after_secs, DEFAULT_REOFFER_AFTER_SECS);
        assert_eq!(queue.config.max_declines, 0);
    }

    // Call 2, declined or missed by every agent, was stranded; now its declines lapse, and
    // amelie takes it when she finishes call 5.
    let stranded = InteractionId::from_u128(2);
    let view = router.interaction(&stranded).expect("open");
    assert_eq!(view.phase, InteractionPhase::Waiting);
    assert_eq!(view.declined_by.len(), 3, "{view:?}");
    let later = Timestamp::from_secs(1_767_254_400 + 3_600);
    let mut events = router.tick(later);
    assert!(router
        .interaction(&stranded)
        .expect("open")
        .declined_by
        .is_empty());
    events.extend(
        router
            .handle(
                later,
                Command::Complete {
                    interaction: InteractionId::from_u128(5),
                    agent: Some("amelie".into()),
                    wrap_up_code: None,
                    notes: None,
                },
            )
            .expect("complete"),
    );
    router.check_invariants().expect("invariants");
    let view = router.interaction(&stranded).expect("open");
    assert!(
        matches!(&view.phase, InteractionPhase::Offered { agent, .. } if agent.as_str() == "amelie"),
        "{view:?} after {events:?}"
    );
}

/// Writes `$GUICHET_FIXTURE_DIR/guichet.db` and `snapshot.json` (see the module's comment).
#[tokio::test]
#[ignore]
async fn write_fixture() {
    let out = std::path::PathBuf::from(std::env::var("GUICHET_FIXTURE_DIR").expect("dir"));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = EngineConfig::new(dir.path());
    config.store.snapshot_every = 8;
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_767_254_400)));
    let mut desk = QueueConfig::new("desk")
        .requiring("desk", 1)
        .with_strategy(Strategy::LongestIdle);
    desk.wrap_up_secs = 0;
    desk.channels = vec![Channel::Voice, Channel::Chat];
    let mut solo = QueueConfig::new("solo").requiring("solo", 1);
    solo.wrap_up_secs = 10;
    let cap = Capacity {
        voice: 1,
        email: 0,
        sms: 0,
        chat: 3,
    };
    let agents = vec![
        AgentConfig::new("amelie")
            .with_skill("desk", 3)
            .with_skill("solo", 2)
            .with_capacity(cap),
        AgentConfig::new("bruno")
            .with_skill("desk", 3)
            .with_capacity(cap),
        AgentConfig::new("chloe")
            .with_skill("desk", 3)
            .with_capacity(cap),
    ];
    let seed = config_with(vec![desk, solo], agents);
    let (engine, _) = Engine::start_with_clock(config.clone(), &seed, clock.clone())
        .await
        .expect("start");
    let send = |command: Command| {
        let engine = engine.clone();
        async move { engine.send(command).await.expect("command") }
    };
    for a in ["amelie", "bruno", "chloe"] {
        send(Command::Login { agent: a.into() }).await;
        clock.advance(Duration::from_secs(5));
    }
    // Voice calls one at a time in desk: offered, accepted, completed (no wrap-up).
    for n in 1..=6u128 {
        send(Command::CreateInteraction {
            spec: spec(n, "desk"),
        })
        .await;
        let view = engine
            .read(move |r| r.interaction(&guichet::core::InteractionId::from_u128(n)))
            .await
            .expect("read")
            .expect("open");
        let agent = view.phase.agent().cloned().expect("offered");
        if n == 2 {
            // Declined once, then taken by the next agent.
            send(Command::Decline {
                interaction: view.spec.id,
                agent,
            })
            .await;
            clock.advance(Duration::from_secs(2));
            continue;
        }
        send(Command::Accept {
            interaction: view.spec.id,
            agent: agent.clone(),
        })
        .await;
        clock.advance(Duration::from_secs(30));
        if n != 5 {
            send(Command::Complete {
                interaction: view.spec.id,
                agent: Some(agent),
                wrap_up_code: Some("done".into()),
                notes: None,
            })
            .await;
        }
        clock.advance(Duration::from_secs(3));
    }
    // Two chats at once.
    for n in 7..=8u128 {
        send(Command::CreateInteraction {
            spec: spec_on(n, Channel::Chat, "desk"),
        })
        .await;
    }
    // The only agent of solo declines its call: it stays waiting, declined by amelie.
    send(Command::Logout {
        agent: "bruno".into(),
    })
    .await;
    let solo_call = spec(9, "solo");
    let id = solo_call.id;
    send(Command::CreateInteraction { spec: solo_call }).await;
    let view = engine
        .read(move |r| r.interaction(&id))
        .await
        .expect("read")
        .expect("open");
    if let Some(agent) = view.phase.agent().cloned() {
        send(Command::Decline {
            interaction: id,
            agent,
        })
        .await;
    }
    clock.advance(Duration::from_secs(4));
    let snapshot = engine.read(|r| r.snapshot()).await.expect("read");
    engine.shutdown().await;
    drop(engine);
    std::fs::create_dir_all(&out).expect("out dir");
    std::fs::copy(dir.path().join("guichet.db"), out.join("guichet.db")).expect("copy db");
    std::fs::write(
        out.join("snapshot.json"),
        serde_json::to_string_pretty(&snapshot).expect("json"),
    )
    .expect("write json");
}
