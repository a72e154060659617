//! The engine on a real SQLite file: replies after commit, committed events to subscribers,
//! recovery after a restart with agents logged out and offers back in their queue.

use guichet::config::Config;
use guichet::core::{AgentId, Channel, Command, EventKind, InteractionId, InteractionSpec};
use guichet::engine::{Engine, EngineConfig, EngineError};

fn demo() -> Config {
    Config::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/guichet.toml"
    )))
    .expect("demo config")
}

fn spec(n: u128) -> InteractionSpec {
    let mut spec = InteractionSpec::new(InteractionId::from_u128(n), Channel::Voice, "benefits");
    spec.external_ref = Some(format!("CA{n}").into());
    spec
}

#[tokio::test]
async fn commands_are_committed_published_and_recovered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = EngineConfig::new(dir.path());
    let (engine, report) = Engine::start(config.clone(), &demo()).await.expect("start");
    assert!(report.seeded);
    let mut events = engine.subscribe();

    let amelie = AgentId::new("amelie");
    engine
        .send(Command::Login {
            agent: amelie.clone(),
        })
        .await
        .expect("login");
    let created = engine
        .send(Command::CreateInteraction { spec: spec(1) })
        .await
        .expect("create");
    assert!(created
        .iter()
        .any(|e| matches!(e.kind, EventKind::InteractionOffered { .. })));
    for n in 2..=5 {
        engine
            .send(Command::CreateInteraction { spec: spec(n) })
            .await
            .expect("create");
    }
    // The same external reference again: no new interaction.
    let again = engine
        .send(Command::CreateInteraction { spec: spec(3) })
        .await
        .expect("idempotent");
    assert!(again.is_empty(), "{again:?}");

    let first = events.recv().await.expect("committed batch");
    assert!(first.seq > 0);

    let unknown = engine
        .send(Command::Login {
            agent: AgentId::new("nobody"),
        })
        .await;
    assert!(matches!(unknown, Err(EngineError::Route(_))), "{unknown:?}");

    let waiting_before = engine
        .read(|r| r.waiting_in_queue(&"benefits".into()))
        .await
        .expect("read");
    assert_eq!(waiting_before.len(), 4);
    engine.shutdown().await;
    assert!(matches!(
        engine
            .send(Command::Login {
                agent: amelie.clone()
            })
            .await,
        Err(EngineError::Stopped)
    ));
    // The data directory is released with the last handle.
    drop(engine);

    // Restart: everybody is logged out and the offered interaction is back at the head.
    let (engine, report) = Engine::start(config, &demo()).await.expect("restart");
    assert!(!report.seeded);
    assert_eq!(report.open_interactions, 5);
    let (waiting, amelie_state) = engine
        .read(move |r| {
            (
                r.waiting_in_queue(&"benefits".into()),
                r.agent(&amelie).map(|a| a.state),
            )
        })
        .await
        .expect("read");
    assert_eq!(waiting.len(), 5);
    assert_eq!(waiting[0], InteractionId::from_u128(1));
    assert_eq!(&waiting[1..], &waiting_before[..]);
    assert_eq!(amelie_state, Some(guichet::core::AgentState::Offline));
    engine.shutdown().await;
}
