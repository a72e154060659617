//! The journal on real SQLite files: round trip through a restart, snapshots, group commit,
//! back-pressure, halting after a failed commit, retention and contact erasure; opening a
//! database of an older schema, a damaged or truncated one, and one held by another process.

use std::path::Path;
use std::time::Duration;

use guichet::core::{
    AgentConfig, Channel, Command, ContactId, Event, EventKind, InteractionId, InteractionSpec,
    QueueConfig, Router, Snapshot, Timestamp,
};
use guichet::store::{Ack, Journal, Store, StoreConfig, StoreError};

const T0: Timestamp = Timestamp::from_secs(1_700_000_000);

fn id(n: u128) -> InteractionId {
    InteractionId::from_u128(n)
}

fn spec(n: u128, contact: &str) -> InteractionSpec {
    let mut spec = InteractionSpec::new(id(n), Channel::Voice, "benefits");
    spec.contact = Some(ContactId::new(contact));
    spec.attributes.insert("menu", "housing");
    spec.attributes
        .insert("secret", format!("case-of-{contact}"));
    spec.external_ref = Some(format!("CA-{contact}-{n}").into());
    spec
}

/// A router and its clock; every event it produces goes to the journal.
struct Center {
    router: Router,
    now: Timestamp,
    acks: Vec<Ack<u64>>,
    /// Every event appended, in order.
    appended: Vec<Event>,
}

impl Center {
    fn new() -> Self {
        Center {
            router: Router::new(),
            now: T0,
            acks: Vec::new(),
            appended: Vec::new(),
        }
    }

    fn run(&mut self, journal: &Journal, command: Command) -> Vec<Event> {
        let mut events = self.router.tick(self.now);
        events.extend(
            self.router
                .handle(self.now, command.clone())
                .unwrap_or_else(|e| panic!("{command:?}: {e}")),
        );
        self.appended.extend(events.iter().cloned());
        self.acks
            .push(journal.append(events.clone()).expect("append"));
        events
    }

    fn advance(&mut self, journal: &Journal, secs: u64) {
        self.now = self.now.plus_secs(secs);
        let events = self.router.tick(self.now);
        self.appended.extend(events.iter().cloned());
        self.acks.push(journal.append(events).expect("append"));
    }

    /// Waits for every acknowledgement; returns the seqs, checked increasing.
    fn wait(&mut self) -> Vec<u64> {
        let seqs: Vec<u64> = self
            .acks
            .drain(..)
            .map(|ack| {
                ack.blocking_recv()
                    .expect("writer alive")
                    .expect("committed")
            })
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "{seqs:?}");
        seqs
    }

    fn setup(&mut self, journal: &Journal) {
        let mut queue = QueueConfig::new("benefits").requiring("benefits", 1);
        queue.wrap_up_secs = 10;
        self.run(journal, Command::UpsertQueue { config: queue });
        for name in ["alice", "bob"] {
            let config = AgentConfig::new(name).with_skill("benefits", 3);
            self.run(journal, Command::UpsertAgent { config });
            self.run(journal, Command::Login { agent: name.into() });
        }
    }

    fn holder(&self, n: u128) -> Option<guichet::core::AgentId> {
        self.router
            .interaction(&id(n))
            .and_then(|v| v.phase.agent().cloned())
    }

    /// Accepts and completes interaction `n` (offered to someone).
    fn serve(&mut self, journal: &Journal, n: u128) {
        let agent = self.holder(n).expect("offered");
        self.run(
            journal,
            Command::Accept {
                interaction: id(n),
                agent: agent.clone(),
            },
        );
        self.run(
            journal,
            Command::Complete {
                interaction: id(n),
                agent: Some(agent),
                wrap_up_code: Some("resolved".into()),
                notes: None,
            },
        );
    }

    /// A first stretch of activity: creations, a decline, services, wrap-ups.
    fn first_half(&mut self, journal: &Journal) {
        for n in 1..=4 {
            self.run(
                journal,
                Command::CreateInteraction {
                    spec: spec(n, "c1"),
                },
            );
        }
        let agent = self.holder(1).expect("offered");
        self.run(
            journal,
            Command::Decline {
                interaction: id(1),
                agent,
            },
        );
        self.serve(journal, 2);
        self.advance(journal, 30);
    }

    /// More activity, with another contact.
    fn second_half(&mut self, journal: &Journal) {
        for n in 5..=7 {
            self.run(
                journal,
                Command::CreateInteraction {
                    spec: spec(n, "c2"),
                },
            );
        }
        for n in 1..=7 {
            if self.holder(n).is_some() {
                self.serve(journal, n);
            }
        }
        self.advance(journal, 30);
        self.run(journal, Command::Abandon { interaction: id(6) });
    }
}

fn config(dir: &Path) -> StoreConfig {
    StoreConfig::new(dir)
}

fn all_events(store: &Store) -> Vec<(u64, Event)> {
    let mut out = Vec::new();
    store
        .replay(0, |seq, event| {
            out.push((seq, event));
            Ok(())
        })
        .expect("replay");
    out
}

#[test]
fn appended_events_come_back_in_order_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (journaled, live) = {
        let store = Store::open(&config(dir.path())).unwrap();
        assert_eq!(store.found_schema_version(), 0);
        let journal = store.start_journal().unwrap();
        let mut center = Center::new();
        center.setup(&journal);
        center.first_half(&journal);
        center.second_half(&journal);
        let seqs = center.wait();
        assert_eq!(*seqs.last().unwrap(), center.appended.len() as u64);
        journal.shutdown().unwrap();
        (center.appended, center.router.snapshot())
    };
    assert!(journaled.len() > 30, "{}", journaled.len());
    let store = Store::open(&config(dir.path())).unwrap();
    let recovery = store.recover().unwrap();
    assert!(recovery.snapshot.is_none());
    assert_eq!(recovery.last_seq, journaled.len() as u64);
    let events = all_events(&store);
    let seqs: Vec<u64> = events.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=journaled.len() as u64).collect::<Vec<_>>());
    let events: Vec<Event> = events.into_iter().map(|(_, e)| e).collect();
    assert_eq!(events, journaled);
    let recovered = store.recover_router().unwrap();
    assert_eq!(recovered.router.snapshot(), live);
    assert_eq!(recovered.replayed, journaled.len() as u64);
}

#[test]
fn recovery_restores_the_latest_snapshot_and_replays_only_later_events() {
    let dir = tempfile::tempdir().unwrap();
    let (live, snapshot_seq, total): (Snapshot, u64, u64);
    {
        let store = Store::open(&config(dir.path())).unwrap();
        let journal = store.start_journal().unwrap();
        let mut center = Center::new();
        center.setup(&journal);
        center.first_half(&journal);
        // Queued right behind the first half: it gets the seq of the first half's last event.
        let snap_ack = journal.snapshot(center.router.snapshot()).unwrap();
        let first = *center.wait().last().unwrap();
        snapshot_seq = snap_ack.blocking_recv().unwrap().unwrap();
        assert_eq!(snapshot_seq, first);
        center.second_half(&journal);
        total = *center.wait().last().unwrap();
        live = center.router.snapshot();
        assert_eq!(journal.stats().snapshots, 1);
        journal.shutdown().unwrap();
    }
    let store = Store::open(&config(dir.path())).unwrap();
    let recovery = store.recover().unwrap();
    let (seq, snapshot) = recovery.snapshot.expect("a snapshot");
    assert_eq!(seq, snapshot_seq);
    assert_eq!(recovery.last_seq, total);

    // Restore + the later events only...
    let mut restored = Router::restore(&snapshot).unwrap();
    let later = store
        .replay(seq, |s, event| {
            assert!(s > seq);
            restored
                .apply(&event)
                .map_err(|source| StoreError::Replay { seq: s, source })
        })
        .unwrap();
    assert_eq!(later, total - seq);
    // ...equals every event applied from scratch, and the live router.
    let mut from_scratch = Router::new();
    for (_, event) in all_events(&store) {
        from_scratch.apply(&event).unwrap();
    }
    assert_eq!(restored.snapshot(), from_scratch.snapshot());
    assert_eq!(restored.snapshot(), live);
    let recovered = store.recover_router().unwrap();
    assert_eq!(recovered.snapshot_seq, Some(seq));
    assert_eq!(recovered.replayed, total - seq);
    assert_eq!(recovered.router.snapshot(), live);
}

#[test]
fn only_the_last_two_snapshots_are_kept_and_snapshot_due_follows_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreConfig {
        snapshot_every: 5,
        ..config(dir.path())
    })
    .unwrap();
    let journal = store.start_journal().unwrap();
    let mut center = Center::new();
    assert!(!journal.snapshot_due());
    center.setup(&journal); // 5 events
    assert!(journal.snapshot_due());
    let mut seqs = Vec::new();
    for n in 1..=3 {
        center.run(&journal, Command::CreateInteraction { spec: spec(n, "c") });
        seqs.push(journal.snapshot(center.router.snapshot()).unwrap());
        assert!(!journal.snapshot_due());
    }
    let seqs: Vec<u64> = seqs
        .into_iter()
        .map(|a| a.blocking_recv().unwrap().unwrap())
        .collect();
    center.wait();
    journal.shutdown().unwrap();
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let kept: Vec<i64> = conn
        .prepare("SELECT seq FROM snapshots ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(kept, vec![seqs[1] as i64, seqs[2] as i64]);
}

/// Holds the database's write lock from another connection, as a stalled disk would.
fn hold_write_lock(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    conn
}

fn creation(router: &mut Router, n: u128) -> Vec<Event> {
    router
        .handle(
            T0.plus_millis(n as u64),
            Command::CreateInteraction { spec: spec(n, "c") },
        )
        .unwrap()
}

fn queue_only_router() -> (Router, Vec<Event>) {
    let mut router = Router::new();
    let events = router
        .handle(
            T0,
            Command::UpsertQueue {
                config: QueueConfig::new("benefits"),
            },
        )
        .unwrap();
    (router, events)
}

#[test]
fn appends_queued_while_the_writer_is_busy_share_few_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).unwrap();
    let journal = store.start_journal().unwrap();
    let (mut router, setup) = queue_only_router();
    journal
        .append(setup)
        .unwrap()
        .blocking_recv()
        .unwrap()
        .unwrap();
    let before = journal.stats().transactions;

    let lock = hold_write_lock(&store.path());
    let acks: Vec<Ack<u64>> = (1..=1000)
        .map(|n| journal.append(creation(&mut router, n)).unwrap())
        .collect();
    drop(lock);
    let seqs: Vec<u64> = acks
        .into_iter()
        .map(|a| a.blocking_recv().unwrap().unwrap())
        .collect();
    assert_eq!(seqs, (2..=1001).collect::<Vec<u64>>());
    let stats = journal.stats();
    // The first append may have been taken alone before the others arrived.
    let transactions = stats.transactions - before;
    assert!(
        transactions <= 3,
        "{transactions} transactions for 1000 appends"
    );
    assert_eq!(stats.events, 1001);
    assert_eq!(stats.appends, 1001);
    assert_eq!(stats.queued, 0);
    assert!(stats.mean_batch() > 100.0, "{stats:?}");
    journal.shutdown().unwrap();
}

#[test]
fn a_full_queue_refuses_appends_at_once_and_loses_nothing_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreConfig {
        queue_capacity: 8,
        ..config(dir.path())
    })
    .unwrap();
    let journal = store.start_journal().unwrap();
    let (mut router, setup) = queue_only_router();
    journal
        .append(setup)
        .unwrap()
        .blocking_recv()
        .unwrap()
        .unwrap();

    let lock = hold_write_lock(&store.path());
    let mut accepted = Vec::new();
    let mut refused = 0;
    for n in 1..=20 {
        match journal.append(creation(&mut router, n)) {
            Ok(ack) => accepted.push((n, ack)),
            Err(StoreError::Overloaded { queued, capacity }) => {
                assert_eq!((queued, capacity), (8, 8));
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(accepted.len(), 8);
    assert_eq!(refused, 12);
    let message = journal.append(Vec::new()).unwrap_err().to_string();
    assert!(message.contains("overloaded"), "{message}");
    drop(lock);
    for (_, ack) in accepted {
        ack.blocking_recv().unwrap().unwrap();
    }
    journal.shutdown().unwrap();
    drop(store);

    let store = Store::open(&config(dir.path())).unwrap();
    let created: Vec<InteractionId> = all_events(&store)
        .into_iter()
        .filter_map(|(_, e)| match e.kind {
            EventKind::InteractionCreated { spec, .. } => Some(spec.id),
            _ => None,
        })
        .collect();
    assert_eq!(created, (1..=8).map(id).collect::<Vec<_>>());
}

#[test]
fn a_commit_that_keeps_failing_halts_the_journal_and_keeps_it_a_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreConfig {
        busy_timeout_ms: 20,
        ..config(dir.path())
    })
    .unwrap();
    let journal = store.start_journal().unwrap();
    let (mut router, setup) = queue_only_router();
    journal
        .append(setup)
        .unwrap()
        .blocking_recv()
        .unwrap()
        .unwrap();
    journal
        .append(creation(&mut router, 1))
        .unwrap()
        .blocking_recv()
        .unwrap()
        .unwrap();

    let lock = hold_write_lock(&store.path());
    let failed = journal.append(creation(&mut router, 2)).unwrap();
    let error = failed.blocking_recv().unwrap().unwrap_err();
    assert!(matches!(error, StoreError::Halted { .. }), "{error}");
    drop(lock);
    // Later appends are refused: they would depend on the lost one.
    let error = journal.append(creation(&mut router, 3)).unwrap_err();
    assert!(error.to_string().contains("restart"), "{error}");
    let stats = journal.stats();
    assert!(stats.halted);
    assert_eq!(stats.failed_transactions, 4);
    journal.shutdown().unwrap();
    drop(store);

    let store = Store::open(&config(dir.path())).unwrap();
    let recovered = store.recover_router().unwrap();
    assert_eq!(recovered.last_seq, 2);
    assert_eq!(recovered.router.open_count(), 1);
}

#[test]
fn an_empty_append_is_a_barrier_and_shutdown_closes_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).unwrap();
    let journal = store.start_journal().unwrap();
    assert_eq!(
        journal
            .append(Vec::new())
            .unwrap()
            .blocking_recv()
            .unwrap()
            .unwrap(),
        0
    );
    let (mut router, setup) = queue_only_router();
    let first = journal.append(setup).unwrap();
    let second = journal.append(creation(&mut router, 1)).unwrap();
    let barrier = journal.append(Vec::new()).unwrap();
    assert_eq!(barrier.blocking_recv().unwrap().unwrap(), 2);
    assert_eq!(first.blocking_recv().unwrap().unwrap(), 1);
    assert_eq!(second.blocking_recv().unwrap().unwrap(), 2);

    let clone = journal.clone();
    journal.shutdown().unwrap();
    assert!(matches!(clone.append(Vec::new()), Err(StoreError::Closed)));
    clone.shutdown().unwrap();
    // The journal can be started only once per store.
    assert!(matches!(
        store.start_journal(),
        Err(StoreError::JournalStarted { .. })
    ));
}

#[tokio::test]
async fn acknowledgements_can_be_awaited_from_async_code() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).unwrap();
    let journal = store.start_journal().unwrap();
    let (mut router, setup) = queue_only_router();
    let mut acks = vec![journal.append(setup).unwrap()];
    for n in 1..=100 {
        acks.push(journal.append(creation(&mut router, n)).unwrap());
    }
    let mut last = 0;
    for ack in acks {
        let seq = ack.await.unwrap().unwrap();
        assert!(seq > last);
        last = seq;
    }
    assert_eq!(last, 101);
    tokio::task::spawn_blocking(move || journal.shutdown())
        .await
        .unwrap()
        .unwrap();
}

fn journal_rows(path: &Path) -> Vec<(i64, i64, String, Option<String>, String)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT seq, at, kind, contact, payload FROM journal ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .map(|r| r.unwrap())
    .collect()
}

#[test]
fn retention_deletes_only_old_rows_covered_by_the_latest_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).unwrap();
    let journal = store.start_journal().unwrap();
    let mut center = Center::new();
    center.setup(&journal);
    center.first_half(&journal);
    // Nothing to purge without a snapshot.
    let deleted = journal.retention(T0.plus_secs(3600)).unwrap();
    assert_eq!(deleted.blocking_recv().unwrap().unwrap(), 0);

    center.now = center.now.plus_secs(100);
    center.second_half(&journal);
    let snap = journal.snapshot(center.router.snapshot()).unwrap();
    let snapshot_seq = snap.blocking_recv().unwrap().unwrap();
    center.now = center.now.plus_secs(100);
    center.run(
        &journal,
        Command::CreateInteraction {
            spec: spec(8, "c3"),
        },
    );
    center.wait();
    let live = center.router.snapshot();

    // Cut off in the middle: rows before the cutoff go, later ones (and everything after the
    // snapshot) stay.
    let cutoff = T0.plus_secs(100);
    let before = journal_rows(&store.path());
    let deleted = journal
        .retention(cutoff)
        .unwrap()
        .blocking_recv()
        .unwrap()
        .unwrap();
    let after = journal_rows(&store.path());
    let expected: Vec<_> = before
        .iter()
        .filter(|(seq, at, ..)| !(*seq as u64 <= snapshot_seq && (*at as u64) < cutoff.as_millis()))
        .cloned()
        .collect();
    assert!(deleted > 0);
    assert_eq!(deleted as usize, before.len() - expected.len());
    assert_eq!(after, expected);
    assert!(after.iter().any(|(seq, ..)| *seq as u64 > snapshot_seq));

    // Purge everything the snapshot covers: recovery still rebuilds the same router, and new
    // events get later sequence numbers.
    journal
        .retention(T0.plus_secs(1_000_000))
        .unwrap()
        .blocking_recv()
        .unwrap()
        .unwrap();
    assert!(journal_rows(&store.path())
        .iter()
        .all(|(seq, ..)| *seq as u64 > snapshot_seq));
    journal.shutdown().unwrap();
    drop(store);
    let store = Store::open(&config(dir.path())).unwrap();
    let recovered = store.recover_router().unwrap();
    assert_eq!(recovered.router.snapshot(), live);
    let journal = store.start_journal().unwrap();
    let seq = journal
        .append(Vec::new())
        .unwrap()
        .blocking_recv()
        .unwrap()
        .unwrap();
    assert_eq!(seq, recovered.last_seq);
    journal.shutdown().unwrap();
}

#[test]
fn erasing_a_contact_scrubs_its_ended_interactions_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).unwrap();
    let journal = store.start_journal().unwrap();
    let mut center = Center::new();
    center.setup(&journal);
    center.first_half(&journal); // c1: interactions 1..=4, 2 served
    let snap = journal.snapshot(center.router.snapshot()).unwrap();
    snap.blocking_recv().unwrap().unwrap();
    center.second_half(&journal); // c2: 5..=7, most served
    center.wait();

    // c1 still has interactions open (waiting or offered).
    let refused = journal
        .erase_contact(ContactId::new("c1"))
        .unwrap()
        .blocking_recv()
        .unwrap()
        .unwrap_err();
    match &refused {
        StoreError::ContactHasOpenInteractions { open, .. } => assert!(!open.is_empty()),
        other => panic!("{other}"),
    }
    assert!(
        refused.to_string().contains("open interaction"),
        "{refused}"
    );

    // End them all, then erase.
    for n in 1..=7 {
        if center.router.interaction(&id(n)).is_some() {
            center.run(&journal, Command::Cancel { interaction: id(n) });
        }
    }
    center.advance(&journal, 60);
    center.wait();
    let erasure = journal
        .erase_contact(ContactId::new("c1"))
        .unwrap()
        .blocking_recv()
        .unwrap()
        .unwrap();
    assert_eq!(erasure.interactions, (1..=4).map(id).collect::<Vec<_>>());
    // The four creations, and every offer of them (an offer carries the attributes for the
    // agent's desktop).
    let offers_of_c1: i64 = rusqlite::Connection::open(store.path())
        .unwrap()
        .query_row(
            "SELECT count(*) FROM journal WHERE kind = 'interaction_offered' AND interaction <= ?1",
            [id(4).to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert!(offers_of_c1 > 0);
    assert_eq!(erasure.journal_rows, 4 + offers_of_c1 as u64);
    assert_eq!(erasure.snapshots, 1);
    journal.shutdown().unwrap();

    let rows = journal_rows(&store.path());
    for (_, _, kind, contact, payload) in &rows {
        assert_ne!(contact.as_deref(), Some("c1"));
        assert!(!payload.contains("\"c1\""), "{payload}");
        assert!(!payload.contains("case-of-c1"), "{payload}");
        assert!(!payload.contains("CA-c1-"), "{payload}");
        if kind == "interaction_completed" {
            assert!(payload.contains("resolved"), "outcome kept: {payload}");
        }
    }
    // Another contact is untouched.
    assert!(rows.iter().any(|(_, _, _, c, p)| c.as_deref() == Some("c2")
        && p.contains("case-of-c2")
        && p.contains("CA-c2-")));
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let snapshots: Vec<String> = conn
        .prepare("SELECT payload FROM snapshots")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert!(snapshots
        .iter()
        .all(|s| !s.contains("\"c1\"") && !s.contains("case-of-c1")));

    // What the aggregate indicators need is still there, and the journal still replays.
    let created: Vec<InteractionSpec> = all_events(&store)
        .into_iter()
        .filter_map(|(_, e)| match e.kind {
            EventKind::InteractionCreated { spec, .. } if spec.id <= id(4) => Some((*spec).clone()),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 4);
    for spec in &created {
        assert_eq!(spec.contact, None);
        assert!(spec.attributes.is_empty());
        assert_eq!(spec.external_ref, None);
        assert_eq!(spec.channel, Channel::Voice);
        assert_eq!(spec.queue.as_str(), "benefits");
    }
    let recovered = store.recover_router().unwrap();
    assert!(recovered
        .router
        .snapshot()
        .last_agents
        .iter()
        .all(|(c, _)| c.as_str() != "c1"));
    assert_eq!(recovered.router.open_count(), 0);
}

#[test]
fn a_slow_writer_does_not_block_appends() {
    // Appends return at once even while the writer waits on the database.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).unwrap();
    let journal = store.start_journal().unwrap();
    let (mut router, setup) = queue_only_router();
    let lock = hold_write_lock(&store.path());
    let start = std::time::Instant::now();
    let mut acks = vec![journal.append(setup).unwrap()];
    for n in 1..=100 {
        acks.push(journal.append(creation(&mut router, n)).unwrap());
    }
    assert!(start.elapsed() < Duration::from_millis(500));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(journal.stats().events, 0);
    drop(lock);
    for ack in acks {
        ack.blocking_recv().unwrap().unwrap();
    }
    journal.shutdown().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Opening old, damaged and busy databases.

/// The DDL of schema version 1, as `schema.rs` released it (migrations are append-only, so this
/// never changes): no `contact` column in the journal yet.
const V1_DDL: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE journal (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL,
    interaction TEXT, agent TEXT, payload TEXT NOT NULL);
CREATE TABLE snapshots (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, payload TEXT NOT NULL);
CREATE TABLE tokens (id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, role TEXT NOT NULL,
    agent TEXT, label TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE ivr_versions (name TEXT NOT NULL, version INTEGER NOT NULL, tree TEXT NOT NULL,
    created_at INTEGER NOT NULL, PRIMARY KEY (name, version));
CREATE TABLE ivr_active (name TEXT PRIMARY KEY, version INTEGER NOT NULL);
CREATE TABLE ivr_numbers (number TEXT PRIMARY KEY, tree TEXT NOT NULL);
INSERT INTO meta (key, value) VALUES ('application', 'guichet'), ('schema_version', '1');
";

/// Writes a version-1 database by hand, as a Guichet of that version left it: a queue, three
/// interactions of contacts c1, c2 and c1, the first one cancelled. Returns the events.
fn write_v1_database(path: &Path) -> Vec<Event> {
    let (mut router, mut events) = queue_only_router();
    for (n, contact) in [(1, "c1"), (2, "c2"), (3, "c1")] {
        events.extend(
            router
                .handle(
                    T0.plus_secs(n as u64),
                    Command::CreateInteraction {
                        spec: spec(n, contact),
                    },
                )
                .unwrap(),
        );
    }
    events.extend(
        router
            .handle(T0.plus_secs(9), Command::Cancel { interaction: id(1) })
            .unwrap(),
    );
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(V1_DDL).unwrap();
    for (seq, event) in events.iter().enumerate() {
        conn.execute(
            "INSERT INTO journal (seq, at, kind, interaction, agent, payload)
             VALUES (?1, ?2, ?3, ?4, NULL, ?5)",
            rusqlite::params![
                seq as i64 + 1,
                event.at.as_millis() as i64,
                event.kind.name(),
                event.kind.interaction().map(|i| i.to_string()),
                serde_json::to_string(&event.kind).unwrap(),
            ],
        )
        .unwrap();
    }
    events
}

#[test]
fn a_version_1_database_opens_upgraded_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(guichet::store::DATABASE_FILE);
    let events = write_v1_database(&path);

    let store = Store::open(&config(dir.path())).unwrap();
    assert_eq!(store.found_schema_version(), 1);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: String = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, guichet::store::SCHEMA_VERSION.to_string());
    // Version 2's contact column, backfilled from the payloads, and its index.
    let contacts: Vec<(i64, Option<String>)> = conn
        .prepare("SELECT seq, contact FROM journal ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let expected: Vec<(i64, Option<String>)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let contact = match &e.kind {
                EventKind::InteractionCreated { spec, .. } => {
                    spec.contact.as_ref().map(|c| c.as_str().to_owned())
                }
                _ => None,
            };
            (i as i64 + 1, contact)
        })
        .collect();
    assert_eq!(contacts, expected);
    let index: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'journal_contact'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(index, 1);
    drop(conn);

    // The old journal replays: the same events, the same open interactions.
    let replayed: Vec<Event> = all_events(&store).into_iter().map(|(_, e)| e).collect();
    assert_eq!(replayed, events);
    let recovered = store.recover_router().unwrap();
    let open: Vec<InteractionId> = recovered
        .router
        .interactions()
        .iter()
        .map(|v| v.spec.id)
        .collect();
    assert_eq!(open, vec![id(2), id(3)]);
    assert_eq!(recovered.last_seq, events.len() as u64);

    // The new column works: erasing c1 finds its ended interaction through it.
    let journal = store.start_journal().unwrap();
    let erasure = journal
        .erase_contact(ContactId::new("c1"))
        .unwrap()
        .blocking_recv()
        .unwrap();
    // c1 still has interaction 3 open: refused, naming it.
    match erasure {
        Err(StoreError::ContactHasOpenInteractions { open, .. }) => assert_eq!(open, vec![id(3)]),
        other => panic!("{other:?}"),
    }
    journal.shutdown().unwrap();
    drop(store);

    // Opened again: nothing left to migrate.
    let store = Store::open(&config(dir.path())).unwrap();
    assert_eq!(store.found_schema_version(), guichet::store::SCHEMA_VERSION);
}

#[test]
fn a_database_from_a_newer_guichet_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(guichet::store::DATABASE_FILE);
    drop(Store::open(&config(dir.path())).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
        [],
    )
    .unwrap();
    drop(conn);
    let err = Store::open(&config(dir.path())).unwrap_err();
    assert!(
        matches!(err, StoreError::TooNew { found: 99, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("upgrade Guichet"), "{message}");
}

/// Checks that `err` is a corruption error whose message names `path` and says what to do.
fn assert_corrupt_and_explained(err: &StoreError, path: &Path) {
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&path.display().to_string()),
        "names the file: {message}"
    );
    assert!(
        message.contains("restore it from a backup"),
        "says what to do: {message}"
    );
    assert!(message.contains("move it aside"), "{message}");
}

#[test]
fn a_file_of_garbage_is_refused_with_a_message_naming_it_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(guichet::store::DATABASE_FILE);
    let garbage: Vec<u8> = (0..16_384u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &garbage).unwrap();
    let err = Store::open(&config(dir.path())).unwrap_err();
    assert_corrupt_and_explained(&err, &path);
    // Nothing was written over it.
    assert_eq!(std::fs::read(&path).unwrap(), garbage);

    // A SQLite database of another application is refused too, not migrated into.
    let other = tempfile::tempdir().unwrap();
    let path = other.path().join(guichet::store::DATABASE_FILE);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
        .unwrap();
    let err = Store::open(&config(other.path())).unwrap_err();
    assert_corrupt_and_explained(&err, &path);
    assert!(err.to_string().contains("no Guichet metadata"), "{err}");
}

/// A journal of `n` creations, closed (checkpointed, no write-ahead log left).
fn write_journal(dir: &Path, n: u128) -> std::path::PathBuf {
    let store = Store::open(&config(dir)).unwrap();
    let journal = store.start_journal().unwrap();
    let (mut router, setup) = queue_only_router();
    journal
        .append(setup)
        .unwrap()
        .blocking_recv()
        .unwrap()
        .unwrap();
    for i in 1..=n {
        journal.append(creation(&mut router, i)).unwrap();
    }
    journal
        .append(Vec::new())
        .unwrap()
        .blocking_recv()
        .unwrap()
        .unwrap();
    journal.shutdown().unwrap();
    let path = store.path().to_owned();
    drop(store);
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "the log was checkpointed on close"
    );
    path
}

#[test]
fn a_truncated_database_is_refused_with_a_message_naming_it_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), 2_000);
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 64 * 1024, "{len}");
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len / 2).unwrap();
    drop(file);
    let err = Store::open(&config(dir.path())).unwrap_err();
    assert_corrupt_and_explained(&err, &path);
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn a_damaged_page_stops_recovery_with_a_message_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), 2_000);
    // Overwrite the root page of the journal's table (an interior page, since the table spans
    // many pages) with noise: opening reads only the schema and meta, recovery reads the table.
    let (root, page_size): (i64, i64) = {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let root = conn
            .query_row(
                "SELECT rootpage FROM sqlite_master WHERE name = 'journal'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let page_size = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        (root, page_size)
    };
    assert!(root > 1);
    let mut bytes = std::fs::read(&path).unwrap();
    let start = ((root - 1) * page_size) as usize;
    for (i, b) in bytes[start..start + page_size as usize]
        .iter_mut()
        .enumerate()
    {
        *b = (i as u8).wrapping_mul(37) ^ 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = Store::open(&config(dir.path()))
        .and_then(|store| store.recover_router().map(|_| ()))
        .unwrap_err();
    assert_corrupt_and_explained(&err, &path);
}

#[test]
fn a_second_store_on_the_same_directory_is_refused_while_the_first_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(&config(dir.path())).unwrap();
    let err = Store::open(&config(dir.path())).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    drop(first);
    Store::open(&config(dir.path())).unwrap();
}

/// The environment variable that turns [`helper_process_holding_a_store`] into a lock holder.
const HOLD_STORE_IN: &str = "GUICHET_TEST_HOLD_STORE_IN";

/// What the holder prints once it holds the store.
const HOLDING: &str = "guichet-test: holding the store";

/// Not a test by itself: run as a child process by the test below (with `HOLD_STORE_IN` set),
/// it opens a store in that directory, prints [`HOLDING`], and keeps it until its stdin closes.
#[test]
fn helper_process_holding_a_store() {
    let Some(dir) = std::env::var_os(HOLD_STORE_IN) else {
        return;
    };
    let store = Store::open(&config(Path::new(&dir))).unwrap();
    // On a line of its own: libtest has already printed "test ... " without a newline.
    println!("\n{HOLDING}");
    use std::io::Write;
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    drop(store);
}

/// Starts a child process holding a store on `dir`, and waits until it holds it.
fn spawn_holder(dir: &Path) -> std::process::Child {
    use std::io::BufRead;
    // The helper's name as libtest lists it: its module path without the test binary's name.
    let helper = match module_path!().split_once("::") {
        Some((_, module)) => format!("{module}::helper_process_holding_a_store"),
        None => "helper_process_holding_a_store".to_owned(),
    };
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &helper, "--nocapture", "--test-threads=1"])
        .env(HOLD_STORE_IN, dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.trim() == HOLDING => break,
            Some(Ok(_)) => continue,
            other => {
                let _ = child.kill();
                panic!("the holder stopped before holding the store: {other:?}");
            }
        }
    }
    // Keep reading what it prints, so that it can finish writing and exit cleanly.
    std::thread::spawn(move || lines.for_each(drop));
    child
}

#[test]
fn a_database_held_by_another_process_is_refused_clearly_until_it_exits() {
    let dir = tempfile::tempdir().unwrap();
    let mut holder = spawn_holder(dir.path());
    let err = Store::open(&config(dir.path())).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    let message = err.to_string();
    let lock = dir.path().join(guichet::store::LOCK_FILE);
    assert!(
        message.contains(&lock.display().to_string()),
        "names the file: {message}"
    );
    assert!(
        message.contains("another Guichet process is using this data directory"),
        "{message}"
    );
    assert!(message.contains("stop it"), "says what to do: {message}");

    // The holder exits normally: the directory is free.
    drop(holder.stdin.take());
    assert!(holder.wait().unwrap().success());
    drop(Store::open(&config(dir.path())).unwrap());

    // A holder killed outright (SIGKILL) leaves no stale lock behind either.
    let mut holder = spawn_holder(dir.path());
    assert!(Store::open(&config(dir.path())).is_err());
    holder.kill().unwrap();
    holder.wait().unwrap();
    let store = Store::open(&config(dir.path())).unwrap();
    assert_eq!(store.recover_router().unwrap().replayed, 0);
}
