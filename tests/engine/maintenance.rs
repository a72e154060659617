//! Contact erasure and retention through the engine, on a real SQLite file.

use crate::engine_common;

use engine_common::{config_with, engine_config, first_seq, spec};
use guichet::core::{AgentConfig, Command, ContactId, InteractionId, QueueConfig, Timestamp};
use guichet::engine::{Engine, EngineError};
use guichet::store::StoreError;

fn setup() -> guichet::config::Config {
    config_with(
        vec![QueueConfig::new("benefits").requiring("benefits", 1)],
        vec![AgentConfig::new("amelie").with_skill("benefits", 3)],
    )
}

#[tokio::test]
async fn an_erased_contact_is_scrubbed_and_an_open_one_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (engine, _) = Engine::start(engine_config(dir.path()), &setup())
        .await
        .expect("start");
    let amelie: guichet::core::AgentId = "amelie".into();
    engine
        .send(Command::Login {
            agent: amelie.clone(),
        })
        .await
        .expect("login");
    let contact = ContactId::new("+33612345678");
    let mut first = spec(1, "benefits");
    first.contact = Some(contact.clone());
    first.attributes.insert("case", "C-42");
    engine
        .send(Command::CreateInteraction { spec: first })
        .await
        .expect("create");

    // Open: refused, nothing erased.
    let refused = engine.erase_contact(contact.clone()).await;
    assert!(
        matches!(
            refused,
            Err(EngineError::Store(
                StoreError::ContactHasOpenInteractions { .. }
            ))
        ),
        "{refused:?}"
    );

    for command in [
        Command::Accept {
            interaction: InteractionId::from_u128(1),
            agent: amelie.clone(),
        },
        Command::Complete {
            interaction: InteractionId::from_u128(1),
            agent: Some(amelie.clone()),
            wrap_up_code: Some("answered".into()),
            notes: Some("asked about housing benefits".into()),
        },
    ] {
        engine.send(command).await.expect("handled");
    }
    let history = engine
        .store()
        .contact_history(&contact, 10)
        .expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].outcome, "completed");
    assert_eq!(
        history[0].notes.as_deref(),
        Some("asked about housing benefits")
    );

    let erased = engine.erase_contact(contact.clone()).await.expect("erase");
    assert_eq!(erased.interactions, vec![InteractionId::from_u128(1)]);
    // The journal no longer links the contact to anything.
    let history = engine
        .store()
        .contact_history(&contact, 10)
        .expect("history");
    assert!(history.is_empty(), "{history:?}");
    // The agent's notes about the contact are gone from the journal too (read through the
    // store, on either backend).
    let with_notes = engine
        .store()
        .run(|s| {
            let mut n = 0;
            s.replay(0, |_, event| {
                n += usize::from(format!("{event:?}").contains("housing benefits"));
                Ok(())
            })?;
            Ok(n)
        })
        .await
        .expect("replay");
    assert_eq!(with_notes, 0);

    // Retention: nothing is purged without a snapshot covering the rows; purging far in the
    // past touches nothing either way.
    let purged = engine
        .purge_before(Timestamp::from_secs(1))
        .await
        .expect("purge");
    assert_eq!(purged, 0);
    engine.shutdown().await;
}

#[tokio::test]
async fn erasure_reaches_calls_saved_in_a_menu() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (engine, _) = Engine::start(engine_config(dir.path()), &engine_common::demo())
        .await
        .expect("start");
    let sessions = guichet::store::VoiceSessions::open(engine.store()).expect("open sessions");
    let state = |from: &str| {
        Some(format!(
            r#"{{"gateway":"twilio","from":"{from}","to":"+33100000000","turn":1,"last":[],"phase":{{}}}}"#
        ))
    };
    sessions
        .write(
            &[
                ("twilio:CA1".into(), state("+33612345678")),
                ("twilio:CA2".into(), state("+33698765432")),
            ],
            Timestamp(1),
        )
        .expect("write");
    engine
        .erase_contact(ContactId::new("+33612345678"))
        .await
        .expect("erase");
    assert_eq!(sessions.get("twilio:CA1").expect("read"), None);
    assert!(
        sessions.get("twilio:CA2").expect("read").is_some(),
        "another caller's call stays"
    );
    engine.shutdown().await;
}

/// A running view that sends something (its durable checkpoint loaded) holds retention at its
/// checkpoint: the events after it stay until the view has written a later one, whatever the
/// snapshots cover; once it has, they go.
#[tokio::test]
async fn retention_stops_at_the_checkpoint_of_a_running_view() {
    use guichet::engine::Checkpoint;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = engine_config(dir.path());
    config.store.snapshot_every = 1;
    let (engine, _) = Engine::start(config, &setup()).await.expect("start");
    let create = |n: u128| {
        let engine = engine.clone();
        async move {
            engine
                .send(Command::CreateInteraction {
                    spec: spec(n, "benefits"),
                })
                .await
                .expect("create");
        }
    };
    for n in 1..=3 {
        create(n).await;
    }
    let last = |engine: &Engine| {
        let store = engine.store().clone();
        async move { store.run(|s| s.last_committed_seq()).await.expect("seq") }
    };
    let held = last(&engine).await;
    engine
        .store()
        .run(move |s| s.set_view_checkpoint("test_view", held))
        .await
        .expect("checkpoint");
    let mut checkpoint = Checkpoint::load(&engine, "test_view").await;
    assert_eq!(checkpoint.after(), held);
    for n in 4..=6 {
        create(n).await;
    }
    let end = last(&engine).await;
    // Every row is older than this and covered by a snapshot: only the hold keeps some.
    let far = Timestamp::from_secs(4_000_000_000);
    engine.purge_before(far).await.expect("purge");
    assert_eq!(first_seq(&engine).await, Some(held + 1));

    // The view handled everything (and wrote its checkpoint): retention goes on past it.
    checkpoint
        .handled(&engine, end, true)
        .await
        .expect("handled");
    engine.purge_before(far).await.expect("purge");
    assert!(
        first_seq(&engine)
            .await
            .is_none_or(|first| first > held + 1),
        "the rows the view was done with were kept"
    );
    engine.shutdown().await;
}
