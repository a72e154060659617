//! Opening a database written by the previous schema version (7), as a Guichet of that version
//! left it: `tests/fixtures/schema_v7_indicators.db` was written by the version-7 code (a queue, an agent,
//! four calls: one answered within its delay, one abandoned, one cancelled, one waiting; the
//! daily aggregates folded up to sequence 9 of 11). Upgraded (versions 8 and 9), it keeps its journal
//! and aggregates, the new columns start at zero, the completion notices' checkpoint starts
//! after the existing journal, and the aggregation resumes exactly at its cursor.

use guichet::core::{EndReason, EventKind, InteractionId};
use guichet::store::{Store, StoreConfig, DATABASE_FILE, SCHEMA_VERSION};

#[test]
fn a_version_7_database_opens_upgraded_and_the_figures_resume_at_the_cursor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/schema_v7_indicators.db");
    std::fs::copy(&fixture, dir.path().join(DATABASE_FILE)).expect("fixture copied");

    let store = Store::open(&StoreConfig::new(dir.path())).expect("opened");
    assert_eq!(store.found_schema_version(), 7);
    const { assert!(SCHEMA_VERSION >= 9) };
    assert_eq!(store.last_committed_seq().expect("last"), 11);
    // Notices for completions of the old journal were the old version's business.
    assert_eq!(
        store.view_checkpoint("completion_notices").expect("read"),
        Some(11)
    );

    let rows = store
        .indicator_days("2026-01-01", "2026-01-01")
        .expect("rows");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let c = rows[0].counts();
    assert_eq!((c.requests, c.answered, c.answered_within), (4, 1, 1));
    assert_eq!((c.abandoned, c.abandoned_within, c.cancelled), (0, 0, 0));
    assert_eq!(c.wait_ms_total, 9_000);

    // The aggregation resumes at its cursor with the pending interactions it stored.
    let state = store.indicator_state("2026-01-01").expect("state");
    assert_eq!(state.cursor, 9);
    let mut pending: Vec<InteractionId> = state.pending.iter().map(|(id, _)| *id).collect();
    pending.sort();
    assert_eq!(
        pending,
        (2..=4).map(InteractionId::from_u128).collect::<Vec<_>>()
    );
    let mut tail = Vec::new();
    store
        .replay(state.cursor, |seq, event| {
            tail.push((seq, event));
            Ok(())
        })
        .expect("tail");
    assert!(matches!(
        tail[0].1.kind,
        EventKind::InteractionEnded {
            reason: EndReason::Abandoned,
            ..
        }
    ));
    let cursor = store
        .fold_indicator_events(&tail, &|_| "2026-01-01".to_owned())
        .expect("folded");
    assert_eq!(cursor, 11);
    let c = store
        .indicator_days("2026-01-01", "2026-01-01")
        .expect("rows")[0]
        .counts();
    assert_eq!(
        (c.requests, c.answered, c.abandoned, c.cancelled),
        (4, 1, 1, 1)
    );
    // Abandoned 10 s after its creation, within its 20 s delay.
    assert_eq!(c.abandoned_within, 1);
    assert_eq!(c.service_level(), Some(0.5));

    // The checkpoints table works.
    store
        .set_view_checkpoint("completion_notices", 12)
        .expect("set");
    store
        .set_view_checkpoint("completion_notices", 5)
        .expect("never back");
    assert_eq!(
        store.view_checkpoint("completion_notices").expect("read"),
        Some(12)
    );
    drop(store);
    let again = Store::open(&StoreConfig::new(dir.path())).expect("reopened");
    assert_eq!(again.found_schema_version(), SCHEMA_VERSION);
}

/// Version 11 to 12: `tests/fixtures/schema_v11_demo.db` was written by a version-11 server
/// (the demo configuration seeded, then stopped). With a version-11 `voice-sessions.db` beside
/// it (the calls inside a phone menu lived in that node-local file), the store opens at version
/// 12 with the calls imported into its `voice_sessions` table, the file set aside so that it is
/// imported once, and the journal unchanged.
#[test]
fn a_version_11_database_opens_upgraded_with_its_calls_in_a_menu_imported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema_v11_demo.db");
    std::fs::copy(&fixture, dir.path().join(DATABASE_FILE)).expect("fixture copied");
    let before = rusqlite::Connection::open(dir.path().join(DATABASE_FILE))
        .expect("open the fixture")
        .query_row("SELECT COUNT(*) FROM journal", [], |r| r.get::<_, i64>(0))
        .expect("journal rows");
    // The file a version-11 node kept (its own schema, version 1).
    let legacy = rusqlite::Connection::open(dir.path().join("voice-sessions.db")).expect("file");
    legacy
        .execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT INTO meta VALUES ('schema_version', '1');
             CREATE TABLE voice_sessions (call TEXT PRIMARY KEY, state TEXT NOT NULL,
                 updated_at INTEGER NOT NULL);
             INSERT INTO voice_sessions VALUES
                 ('twilio:CA1', '{\"from\":\"+33612345678\",\"turn\":2}', 1700000000000);",
        )
        .expect("legacy rows");
    drop(legacy);

    let store = Store::open(&StoreConfig::new(dir.path())).expect("opened");
    assert_eq!(store.found_schema_version(), 11);
    // Version 12 brought the calls in a menu.
    const { assert!(SCHEMA_VERSION >= 12) };
    assert_eq!(
        store.voice_session("twilio:CA1").expect("read"),
        Some("{\"from\":\"+33612345678\",\"turn\":2}".into())
    );
    assert!(!dir.path().join("voice-sessions.db").exists());
    assert!(dir.path().join("voice-sessions.db.imported").exists());
    assert_eq!(store.last_committed_seq().expect("seq"), before as u64);
    assert!(!store.list_tokens().expect("tokens").is_empty());
    drop(store);

    // Opened again: nothing to migrate, nothing imported twice; the table works.
    let store = Store::open(&StoreConfig::new(dir.path())).expect("opened again");
    assert_eq!(store.found_schema_version(), SCHEMA_VERSION);
    store
        .put_voice_sessions(&[("twilio:CA1".into(), None)], guichet::core::Timestamp(1))
        .expect("delete");
    assert_eq!(store.voice_session("twilio:CA1").expect("read"), None);
}
