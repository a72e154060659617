//! The store on PostgreSQL: [`PgStore`] opens a database named by `[store] url`, migrates its
//! schema (`schema.rs`), takes the database's writer lock, recovers the router from the latest
//! snapshot and the journal, and starts the same journal writer as SQLite's with a PostgreSQL
//! backend (`journal.rs`). `connect.rs` owns the connection settings and error messages.
//!
//! One writer per database: [`PgStore::open`] takes a session advisory lock
//! ([`WRITER_LOCK`]) on the connection that becomes the writer's, so a second server on the same
//! database is refused with [`StoreError::Locked`] instead of interleaving sequence numbers, and
//! the lock goes with the connection if the process dies. The high-availability issue replaces
//! it with a lease row and a term checked by every append (see `docs/storage.md`).
//!
//! What is here: the journal, snapshots, recovery, the `meta` flags, the tables' schema, the
//! copy of a SQLite installation (`copy.rs`), and every table method of the store interface
//! ([`Store`](super::Store)): tokens, users and sessions, IVR, secrets, checkpoints and SMS
//! opt-outs (`tables.rs`), indicators and the journal's reads (`reads.rs`), the outbox
//! (`outbox.rs`) and surveys (`surveys.rs`).

mod connect;
mod copy;
mod follow;
mod journal;
mod lease;
mod outbox;
mod reads;
mod schema;
mod surveys;
mod tables;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use postgres::Client;

use crate::core::Event;

use super::codec::{seq_from_sql, seq_to_sql, Decoder};
use super::recovery::{rebuild, replay_on_thread, snapshot_of, Chunk, Recovered, Recovery};
use super::{Journal, StoreConfig, StoreError};

use connect::pg_error;
pub use connect::{PgSettings, Target};
pub use copy::{copy_from_sqlite, CopyReport};
pub use follow::{FollowProgress, Follower};
use journal::PgJournal;
pub use lease::LeaseClient;

/// The key of the session advisory lock held by the connection of the database's one writer.
pub const WRITER_LOCK: i64 = 0x6775_6963_6865_7402;

/// A connection of the store's own: the driver's client, closed off the async runtime when it
/// goes (the synchronous driver blocks while it closes, which tokio refuses on its threads).
pub(crate) struct Conn(Option<Client>);

impl std::ops::Deref for Conn {
    type Target = Client;

    fn deref(&self) -> &Client {
        // `None` only inside `drop` or once handed to the journal's writer, after which the
        // `Conn` is never used.
        self.0
            .as_ref()
            .expect("a store connection is present until it is dropped")
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Client {
        self.0
            .as_mut()
            .expect("a store connection is present until it is dropped")
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let Some(client) = self.0.take() else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return drop(client);
        }
        let closing = std::thread::Builder::new()
            .name("guichet-pg-close".into())
            .spawn(move || drop(client));
        if let Err(e) = closing {
            tracing::warn!("cannot close a PostgreSQL connection cleanly: {e}");
        }
    }
}

/// Journal rows read per query during a replay.
const REPLAY_CHUNK: i64 = 4096;

/// An opened, migrated PostgreSQL store holding the database's writer lock.
pub struct PgStore {
    settings: PgSettings,
    config: StoreConfig,
    conn: Mutex<Conn>,
    /// The connection holding [`WRITER_LOCK`]; handed to the journal's writer when it starts.
    writer: Mutex<Option<Conn>>,
    journal_started: AtomicBool,
    found_version: u32,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", self.settings.target())
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the database of `[store] url`, migrates its schema and takes its writer lock.
    ///
    /// Fails with a message saying what to fix: [`StoreError::Config`] for missing or bad
    /// settings, [`StoreError::Postgres`] for an unreachable server, a missing database or a
    /// refused login, [`StoreError::Corrupt`] for a schema holding other tables,
    /// [`StoreError::TooNew`] for a database from a newer Guichet, [`StoreError::Locked`] when
    /// another Guichet writes to this database.
    pub fn open(config: &StoreConfig) -> Result<PgStore, StoreError> {
        config.validate()?;
        let settings = PgSettings::from_store_config(config)?;
        let target = settings.target().clone();
        let mut conn = settings.connect()?;
        let found_version = schema::migrate(&mut conn, &target)?;
        let mut writer = settings.connect()?;
        // With high availability the lease's term fences every append (a paused old leader
        // would keep a session lock forever); without it, the database's writer lock.
        let locked: bool = config.fence.is_some()
            || writer
                .query_one("SELECT pg_try_advisory_lock($1)", &[&WRITER_LOCK])
                .map_err(|e| pg_error(&target, e))?
                .get(0);
        if !locked {
            return Err(StoreError::Locked {
                path: target.as_path(),
                detail: "another Guichet server writes to this database (it holds the writer \
                         lock); stop it, or point [store] url at another database"
                    .into(),
            });
        }
        Ok(PgStore {
            settings,
            config: config.clone(),
            conn: Mutex::new(Conn(Some(conn))),
            writer: Mutex::new(Some(Conn(Some(writer)))),
            journal_started: AtomicBool::new(false),
            found_version,
        })
    }

    /// Creates or upgrades the schema of `[store] url`'s database up to `version` only (10 to
    /// this build's), as the Guichet of that version left it; returns the version found. For
    /// upgrade tests (`tests/store/postgres.rs`): a server always migrates to the current one.
    #[doc(hidden)]
    pub fn migrate_schema_to(config: &StoreConfig, version: u32) -> Result<u32, StoreError> {
        let settings = PgSettings::from_store_config(config)?;
        let mut conn = settings.connect()?;
        schema::migrate_upto(&mut conn, settings.target(), version)
    }

    /// The database, as shown in messages.
    pub fn target(&self) -> &Target {
        self.settings.target()
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The schema version the database had when opened (0 for one created now).
    pub fn found_schema_version(&self) -> u32 {
        self.found_version
    }

    /// The tables' connection, reconnected first if the server closed it (a restart of
    /// PostgreSQL costs the calls in flight, not every later one).
    pub(crate) fn conn(&self) -> MutexGuard<'_, Conn> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if conn.is_closed() {
            match self.settings.connect() {
                Ok(fresh) => *conn = Conn(Some(fresh)),
                Err(e) => tracing::warn!("{e}"),
            }
        }
        conn
    }

    /// Opens the database beside the server that writes to it, for its tables only (`guichet
    /// token`, `guichet user`): nothing is migrated (a schema other than this build's is
    /// refused) and the journal cannot be started.
    pub fn open_shared(config: &StoreConfig) -> Result<PgStore, StoreError> {
        config.validate()?;
        let settings = PgSettings::from_store_config(config)?;
        let target = settings.target().clone();
        let mut conn = settings.connect()?;
        let found_version = schema::current(&mut conn, &target)?;
        if found_version != super::SCHEMA_VERSION {
            return Err(StoreError::Invalid(format!(
                "{target} has schema version {found_version}, this guichet expects {}: let the \
                 server create or upgrade it (start it) first",
                super::SCHEMA_VERSION
            )));
        }
        Ok(PgStore {
            settings,
            config: config.clone(),
            conn: Mutex::new(Conn(Some(conn))),
            writer: Mutex::new(None),
            journal_started: AtomicBool::new(true),
            found_version,
        })
    }

    fn err(&self, e: postgres::Error) -> StoreError {
        pg_error(self.settings.target(), e)
    }

    /// A row of `table` that does not decode (`detail` says why).
    fn decode_err(&self, table: &'static str, detail: String) -> StoreError {
        StoreError::Decode {
            path: self.target().as_path(),
            table,
            seq: 0,
            detail,
        }
    }

    /// Runs `f` inside one transaction on the tables' connection: committed when `f` returns
    /// `Ok`, rolled back (nothing changed) when it fails.
    fn with_tx<T>(
        &self,
        f: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn();
        let mut tx = conn.transaction().map_err(|e| self.err(e))?;
        let out = f(&mut tx)?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(out)
    }

    /// A journal reader's checkpoint (the `meta` value of `key`, 0 when unset) and the
    /// journal's end, read in that order, as SQLite's `checkpoint_and_end`: a reader that scans
    /// up to the end read here never moves its checkpoint past a row committed after it and not
    /// yet seen (the one writer commits sequence numbers in order, without holes).
    fn checkpoint_and_end(&self, conn: &mut Client, key: &str) -> Result<(u64, u64), StoreError> {
        let checkpoint: u64 = conn
            .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
            .map_err(|e| self.err(e))?
            .and_then(|r| r.get::<_, String>(0).parse().ok())
            .unwrap_or(0);
        let end: i64 = conn
            .query_one("SELECT COALESCE(MAX(seq), 0) FROM journal", &[])
            .map_err(|e| self.err(e))?
            .get(0);
        Ok((checkpoint, end.max(0) as u64))
    }

    /// Reads the latest snapshot and the last sequence number.
    pub fn recover(&self) -> Result<Recovery, StoreError> {
        let row = self
            .conn()
            .query_opt(
                "SELECT seq, payload FROM snapshots ORDER BY seq DESC LIMIT 1",
                &[],
            )
            .map_err(|e| self.err(e))?;
        let snapshot = row
            .map(|row| snapshot_of(self.target().as_path(), row.get(0), row.get(1)))
            .transpose()?;
        let last_seq = self.last_committed_seq()?;
        Ok(Recovery { snapshot, last_seq })
    }

    /// The last sequence number used, by events or snapshots.
    pub fn last_committed_seq(&self) -> Result<u64, StoreError> {
        let row = self
            .conn()
            .query_one(
                "SELECT GREATEST(COALESCE((SELECT MAX(seq) FROM journal), 0), \
                 COALESCE((SELECT MAX(seq) FROM snapshots), 0))",
                &[],
            )
            .map_err(|e| self.err(e))?;
        Ok(seq_from_sql(row.get(0)))
    }

    /// Calls `f` with every journaled event after `after_seq`, in sequence order, and returns
    /// how many there were. Rows are read (in chunks of a few thousand, each its own query) and
    /// decoded on a helper thread with its own connection while `f` runs; memory stays bounded.
    pub fn replay<F>(&self, after_seq: u64, f: F) -> Result<u64, StoreError>
    where
        F: FnMut(u64, Event) -> Result<(), StoreError>,
    {
        let mut reader = self.settings.connect()?;
        let target = self.target().clone();
        replay_on_thread(
            &self.target().as_path(),
            8,
            move |tx| read_chunks(&mut reader, &target, after_seq, tx),
            f,
        )
    }

    /// Rebuilds the router: the latest snapshot restored, then every later event applied.
    pub fn recover_router(&self) -> Result<Recovered, StoreError> {
        rebuild(self.recover()?, |after, f| self.replay(after, f))
    }

    /// Starts the journal's writer thread on the connection holding the writer lock. Call it
    /// once, after recovery; a second call fails with [`StoreError::JournalStarted`].
    pub fn start_journal(&self) -> Result<Journal, StoreError> {
        if self.journal_started.swap(true, Ordering::SeqCst) {
            return Err(StoreError::JournalStarted {
                path: self.target().as_path(),
            });
        }
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(client) = writer.and_then(|mut w| w.0.take()) else {
            return Err(StoreError::JournalStarted {
                path: self.target().as_path(),
            });
        };
        let row = self
            .conn()
            .query_one(
                "SELECT (SELECT MAX(seq) FROM snapshots), \
                 (SELECT at FROM journal ORDER BY seq DESC LIMIT 1)",
                &[],
            )
            .map_err(|e| self.err(e))?;
        let snapshot_seq: Option<i64> = row.get(0);
        let last_at: Option<i64> = row.get(1);
        let last = self.last_committed_seq()?;
        let since_snapshot = last.saturating_sub(snapshot_seq.map_or(0, seq_from_sql));
        Journal::start(
            Box::new(PgJournal {
                client,
                target: self.target().clone(),
                insert: None,
                fence: self.config.fence.clone(),
            }),
            self.target().as_path(),
            &self.config,
            (last, last_at.unwrap_or(0)),
            since_snapshot,
        )
    }

    /// Whether the configuration file has already seeded this database.
    pub fn is_seeded(&self) -> Result<bool, StoreError> {
        Ok(self.meta("seeded")?.as_deref() == Some("1"))
    }

    /// Records that the configuration file seeded this database.
    pub fn mark_seeded(&self) -> Result<(), StoreError> {
        self.set_meta("seeded", "1")
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn()
            .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
            .map(|r| r.map(|r| r.get(0)))
            .map_err(|e| self.err(e))
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &value],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}

/// Reads the journal after `after_seq` in chunks of decoded events and sends them, until the
/// end or until the receiver hangs up.
fn read_chunks(
    client: &mut Client,
    target: &Target,
    after_seq: u64,
    tx: &std::sync::mpsc::SyncSender<Chunk>,
) -> Result<(), StoreError> {
    let select = client
        .prepare("SELECT seq, at, kind, payload FROM journal WHERE seq > $1 ORDER BY seq LIMIT $2")
        .map_err(|e| pg_error(target, e))?;
    let mut decoder = Decoder::default();
    let mut cursor = seq_to_sql(after_seq);
    loop {
        let rows = client
            .query(&select, &[&cursor, &REPLAY_CHUNK])
            .map_err(|e| pg_error(target, e))?;
        let full = rows.len() as i64 == REPLAY_CHUNK;
        let mut chunk = Vec::with_capacity(rows.len());
        for row in rows {
            let seq_sql: i64 = row.get(0);
            let seq = seq_from_sql(seq_sql);
            let event = decoder
                .decode(row.get(1), row.get(2), row.get(3))
                .map_err(|detail| StoreError::Decode {
                    path: target.as_path(),
                    table: "journal",
                    seq,
                    detail,
                })?;
            cursor = seq_sql;
            chunk.push((seq, event));
        }
        if !chunk.is_empty() && tx.send(Ok(chunk)).is_err() {
            return Ok(());
        }
        if !full {
            return Ok(());
        }
    }
}
