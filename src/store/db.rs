//! [`SqliteStore`]: an opened, migrated database, its process lock, recovery, and the start of the
//! journal's writer.
//!
//! One process at a time owns a data directory: [`SqliteStore::open`] takes an exclusive SQLite lock on
//! `<data_dir>/guichet.lock` (held until the store and its journal are gone; the operating system
//! releases it if the process dies), so a second server on the same directory is refused with
//! [`StoreError::Locked`] instead of interleaving its journal with ours.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::core::Event;

use super::codec::{seq_from_sql, seq_to_sql, Decoder};
use super::error::{SqlContext, StoreError};
use super::journal::Journal;
use super::recovery::{rebuild, replay_on_thread, snapshot_of, Chunk, Recovered, Recovery};
use super::schema::migrate;
use super::writer::SqliteJournal;
use super::{StoreConfig, Synchronous};

/// The database file's name inside the data directory.
pub const DATABASE_FILE: &str = "guichet.db";

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "guichet.lock";

/// Rows decoded per chunk during a replay. Small enough that a chunk (with the channel's few
/// in flight) is still in cache when the applying thread reads it.
const REPLAY_CHUNK: usize = 256;

/// The data directory's process lock: a small SQLite file held in exclusive locking mode.
///
/// SQLite's own locking is used (rather than `flock`) because it is portable and needs nothing
/// beyond what the store already links; within one process SQLite also refuses a second holder.
pub(crate) struct ProcessLock {
    /// Held, never used: the lock lasts as long as the connection (in a mutex only to be `Sync`).
    _conn: Mutex<Connection>,
}

impl ProcessLock {
    fn acquire(dir: &Path) -> Result<ProcessLock, StoreError> {
        let path = dir.join(LOCK_FILE);
        match Self::try_acquire(&path) {
            // A damaged lock file holds nothing: start a new one.
            Err(StoreError::Corrupt { .. }) => {
                std::fs::remove_file(&path).map_err(|source| StoreError::Io {
                    path: path.clone(),
                    source,
                })?;
                Self::try_acquire(&path)
            }
            other => other,
        }
    }

    fn try_acquire(path: &Path) -> Result<ProcessLock, StoreError> {
        let conn = Connection::open(path).at(path)?;
        // A lock held by a running server is an answer, not something to wait for: rusqlite's
        // default busy timeout (5 s) made every `guichet token ...` beside a running server wait
        // 5 s before falling back to the shared opening. A short wait still covers a holder that
        // is just letting go (a restart in the same process).
        conn.busy_timeout(std::time::Duration::from_millis(250))
            .at(path)?;
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
            .at(path)?;
        // The first write takes the exclusive lock, and exclusive locking mode keeps it.
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL); DELETE FROM holder;",
        )
        .map_err(|e| match StoreError::sqlite(path, e) {
            StoreError::Locked { path, .. } => StoreError::Locked {
                path,
                detail: "its lock is held".into(),
            },
            other => other,
        })?;
        conn.execute(
            "INSERT INTO holder (pid) VALUES (?1)",
            params![std::process::id()],
        )
        .at(path)?;
        Ok(ProcessLock {
            _conn: Mutex::new(conn),
        })
    }
}

/// An opened Guichet database: schema migrated, WAL on, the data directory locked.
///
/// `SqliteStore` is `Sync`: share it in an `Arc` to call the configuration-table methods from several
/// threads (they serialise on one connection; each call is short). The journal has its own
/// connection on its own thread ([`SqliteStore::start_journal`]).
pub struct SqliteStore {
    path: PathBuf,
    config: StoreConfig,
    conn: Mutex<Connection>,
    /// `None` when opened beside the server that holds the directory ([`SqliteStore::open_shared`]).
    lock: Option<Arc<ProcessLock>>,
    journal_started: AtomicBool,
    found_version: u32,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database `<data_dir>/guichet.db`.
    ///
    /// Creates the directory, takes the directory's process lock, switches the database to WAL
    /// with the configured `synchronous` level and migrates its schema (one transaction).
    ///
    /// Fails with a message naming the file and saying what to do: [`StoreError::Corrupt`] for a
    /// file that is not a Guichet database, is damaged or is truncated (shorter than its header
    /// says; a page damaged further in shows when recovery reads it, as the same error),
    /// [`StoreError::TooNew`] for a database from a newer Guichet, [`StoreError::Locked`] when
    /// another process uses the directory.
    pub fn open(config: &StoreConfig) -> Result<SqliteStore, StoreError> {
        config.validate()?;
        refuse_postgres(config)?;
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.clone(),
            source,
        })?;
        let lock = Arc::new(ProcessLock::acquire(dir)?);
        let path = dir.join(DATABASE_FILE);
        check_not_truncated(&path)?;
        let mut conn = open_connection(&path, config)?;
        let found_version = migrate(&mut conn, &path)?;
        Ok(SqliteStore {
            path,
            config: config.clone(),
            conn: Mutex::new(conn),
            lock: Some(lock),
            journal_started: AtomicBool::new(false),
            found_version,
        })
    }

    /// Opens the database for its configuration tables only (tokens, IVR versions), without
    /// taking the directory's process lock: this is how `guichet token ...` works while a server
    /// runs on the same directory (SQLite serialises the writes). Nothing is migrated: a database
    /// that does not exist yet, or whose schema is not the current one, is refused (start the
    /// server once, or use [`SqliteStore::open`] while no server runs). The journal cannot be started.
    pub fn open_shared(config: &StoreConfig) -> Result<SqliteStore, StoreError> {
        config.validate()?;
        refuse_postgres(config)?;
        let path = config.data_dir.join(DATABASE_FILE);
        if !path.exists() {
            return Err(StoreError::Invalid(format!(
                "{} does not exist yet: start the server once (or stop it) first",
                path.display()
            )));
        }
        let conn = open_connection(&path, config)?;
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .at(&path)?;
        let found_version = version.and_then(|v| v.parse().ok()).unwrap_or(0);
        if found_version != super::SCHEMA_VERSION {
            return Err(StoreError::Invalid(format!(
                "{} has schema version {found_version}, this guichet expects {}: let the server \
                 upgrade it (restart it) first",
                path.display(),
                super::SCHEMA_VERSION
            )));
        }
        Ok(SqliteStore {
            path,
            config: config.clone(),
            conn: Mutex::new(conn),
            lock: None,
            journal_started: AtomicBool::new(true),
            found_version,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The schema version the file had when opened: 0 for a database created now, less than
    /// [`SCHEMA_VERSION`](super::SCHEMA_VERSION) for one that was upgraded.
    pub fn found_schema_version(&self) -> u32 {
        self.found_version
    }

    /// The configuration connection. A poisoned lock only means another caller panicked between
    /// two statements; SQLite rolled back whatever it left open, so the connection is usable.
    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` inside one transaction on the configuration connection: committed when `f`
    /// returns `Ok`, rolled back (nothing changed) when it fails.
    pub(crate) fn with_tx<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().at(&self.path)?;
        let out = f(&tx)?;
        tx.commit().at(&self.path)?;
        Ok(out)
    }

    /// Reads the latest snapshot and the last sequence number.
    pub fn recover(&self) -> Result<Recovery, StoreError> {
        let conn = self.conn();
        let path = &self.path;
        let snapshot = conn
            .query_row(
                "SELECT seq, payload FROM snapshots ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
            )
            .optional()
            .at(path)?;
        let snapshot = snapshot
            .map(|(seq, payload)| snapshot_of(path.clone(), seq, &payload))
            .transpose()?;
        let last_seq = last_seq(&conn, path)?;
        Ok(Recovery { snapshot, last_seq })
    }

    /// Calls `f` with every journaled event after `after_seq`, in sequence order, and returns how
    /// many there were. Rows are read and decoded on a helper thread (with its own read
    /// connection) while `f` runs, so replaying uses two cores; memory stays bounded (a few
    /// chunks of decoded events).
    ///
    /// Stops at the first error of `f`, or of decoding ([`StoreError::Decode`]).
    pub fn replay<F>(&self, after_seq: u64, f: F) -> Result<u64, StoreError>
    where
        F: FnMut(u64, Event) -> Result<(), StoreError>,
    {
        let reader = open_reader(&self.path, &self.config)?;
        let path = self.path.clone();
        replay_on_thread(
            &self.path,
            16,
            move |tx| read_chunks(&reader, &path, after_seq, tx),
            f,
        )
    }

    /// Rebuilds the router: the latest snapshot restored, then every later event applied with
    /// [`Router::apply`].
    pub fn recover_router(&self) -> Result<Recovered, StoreError> {
        rebuild(self.recover()?, |after, f| self.replay(after, f))
    }

    /// Starts the journal's writer thread, with its own connection, and returns its handle.
    ///
    /// Call it once, after recovery; a second call fails with [`StoreError::JournalStarted`]
    /// (two writers would race for sequence numbers). The store stays usable for the
    /// configuration tables.
    pub fn start_journal(&self) -> Result<Journal, StoreError> {
        let Some(lock) = self.lock.clone() else {
            return Err(StoreError::Invalid(format!(
                "{} is opened beside a running server: its journal belongs to that server",
                self.path.display()
            )));
        };
        if self.journal_started.swap(true, Ordering::SeqCst) {
            return Err(StoreError::JournalStarted {
                path: self.path.clone(),
            });
        }
        let started = (|| {
            let conn = open_connection(&self.path, &self.config)?;
            let last = last_seq(&conn, &self.path)?;
            let snapshot_seq: Option<i64> = conn
                .query_row("SELECT MAX(seq) FROM snapshots", [], |r| r.get(0))
                .at(&self.path)?;
            let since_snapshot = last.saturating_sub(snapshot_seq.map_or(0, seq_from_sql));
            let last_at: Option<i64> = conn
                .query_row(
                    "SELECT at FROM journal ORDER BY seq DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()
                .at(&self.path)?;
            Journal::start(
                Box::new(SqliteJournal {
                    conn,
                    path: self.path.clone(),
                    _lock: lock,
                }),
                self.path.clone(),
                &self.config,
                (last, last_at.unwrap_or(0)),
                since_snapshot,
            )
        })();
        if started.is_err() {
            self.journal_started.store(false, Ordering::SeqCst);
        }
        started
    }

    /// Whether the configuration file has already seeded this database.
    pub fn is_seeded(&self) -> Result<bool, StoreError> {
        Ok(self.meta("seeded")?.as_deref() == Some("1"))
    }

    /// Records that the configuration file seeded this database, so that later starts leave
    /// what supervisors changed alone.
    pub fn mark_seeded(&self) -> Result<(), StoreError> {
        self.set_meta("seeded", "1")
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn()
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .at(&self.path)
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().at(&self.path)?;
        tx.execute("DELETE FROM meta WHERE key = ?1", [key])
            .at(&self.path)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
            params![key, value],
        )
        .at(&self.path)?;
        tx.commit().at(&self.path)
    }
}

/// A configuration asking for PostgreSQL opens [`PgStore`](super::PgStore) (through
/// [`Store::open`](super::Store::open)), never a SQLite file.
fn refuse_postgres(config: &StoreConfig) -> Result<(), StoreError> {
    if config.backend == super::Backend::Postgres {
        return Err(StoreError::Config(
            "backend = \"postgres\": open the store with Store::open, which picks the backend \
             (SqliteStore is SQLite's alone)"
                .into(),
        ));
    }
    Ok(())
}

/// A journal reader's checkpoint (the `meta` value of `key`, 0 when unset) and the journal's
/// end, read in that order: a reader that scans up to the end read here never moves its
/// checkpoint past a row committed after it and not yet seen.
pub(crate) fn checkpoint_and_end(
    conn: &Connection,
    key: &str,
    path: &Path,
) -> Result<(u64, u64), StoreError> {
    let checkpoint: u64 = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| {
            r.get::<_, String>(0)
        })
        .optional()
        .at(path)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let end: i64 = conn
        .query_row("SELECT COALESCE(MAX(seq), 0) FROM journal", [], |r| {
            r.get(0)
        })
        .at(path)?;
    Ok((checkpoint, end.max(0) as u64))
}

/// The last sequence number used, by events or snapshots (retention may have deleted the events
/// up to the latest snapshot).
pub(crate) fn last_seq(conn: &Connection, path: &Path) -> Result<u64, StoreError> {
    let journal: Option<i64> = conn
        .query_row("SELECT MAX(seq) FROM journal", [], |r| r.get(0))
        .at(path)?;
    let snapshots: Option<i64> = conn
        .query_row("SELECT MAX(seq) FROM snapshots", [], |r| r.get(0))
        .at(path)?;
    Ok(journal
        .unwrap_or(0)
        .max(snapshots.unwrap_or(0))
        .try_into()
        .unwrap_or(0))
}

/// Refuses a database file shorter than its own header says (a copy or restore cut short, a
/// full disk): SQLite would open it and only fail, as "malformed", when recovery reads the
/// missing pages. Reads the 100-byte header only; a missing or empty file passes, and so does
/// one whose header does not hold a trustworthy page count (SQLite then sizes it from the file).
///
/// Skipped while a write-ahead log is present: a checkpoint interrupted by a crash may have
/// written page 1 (and its new page count) before the pages that extend the file, and the log
/// still holds them.
fn check_not_truncated(path: &Path) -> Result<(), StoreError> {
    use std::io::Read;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        return Ok(());
    }
    let mut header = [0u8; 100];
    let len = match std::fs::File::open(path) {
        Ok(mut file) => {
            let len = file
                .metadata()
                .map_err(|source| StoreError::Io {
                    path: path.to_owned(),
                    source,
                })?
                .len();
            if len < 100 || file.read_exact(&mut header).is_err() {
                return Ok(());
            }
            len
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(StoreError::Io {
                path: path.to_owned(),
                source,
            })
        }
    };
    if !header.starts_with(b"SQLite format 3\0") {
        // Not SQLite at all: SQLite itself says so ("file is not a database").
        return Ok(());
    }
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    let pages = u64::from(be32(28));
    // The header's page count is valid only when its change counter matches "version valid
    // for" (file format 3.7.0+); otherwise SQLite ignores it.
    let count_valid = pages > 0 && be32(24) == be32(92);
    if count_valid && len < pages * page_size {
        return Err(StoreError::Corrupt {
            path: path.to_owned(),
            detail: format!(
                "the file is truncated: its header counts {pages} pages of {page_size} bytes, \
                 {} bytes, but it holds {len}",
                pages * page_size
            ),
        });
    }
    Ok(())
}

/// Opens a read-write connection to the database with the store's pragmas.
pub(crate) fn open_connection(path: &Path, config: &StoreConfig) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).at(path)?;
    configure(&conn, path, config.synchronous, config)?;
    Ok(conn)
}

fn open_reader(path: &Path, config: &StoreConfig) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .at(path)?;
    conn.busy_timeout(config.busy_timeout()).at(path)?;
    stable_plans(&conn, path)?;
    Ok(conn)
}

/// Turns on SQLite's query planner stability guarantee on `conn`.
///
/// Without it, a statement whose `WHERE col = ?1` is checked against a partial index
/// (`journal_interaction`, `journal_contact` and `journal_message` are `WHERE col IS NOT NULL`)
/// is marked as depending on the value bound to `?1`, and SQLite re-parses and re-plans it on
/// the first step after every new binding: the statement cache saved nothing, and re-preparing
/// was most of the cost of each conversation and contact-history read (about a third of the
/// server's CPU under the gRPC load example). With it, the plan is made once; the partial
/// indexes are still used (`col = ?1` implies `col IS NOT NULL` whatever the value).
fn stable_plans(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .at(path)?;
    Ok(())
}

fn configure(
    conn: &Connection,
    path: &Path,
    synchronous: Synchronous,
    config: &StoreConfig,
) -> Result<(), StoreError> {
    conn.busy_timeout(config.busy_timeout()).at(path)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .at(path)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Invalid(format!(
            "{}: cannot switch to WAL mode (got {mode})",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", synchronous.pragma())
        .at(path)?;
    conn.set_prepared_statement_cache_capacity(32);
    stable_plans(conn, path)
}

/// Reads the journal after `after_seq` in chunks of decoded events and sends them, until the
/// end or until the receiver hangs up.
fn read_chunks(
    conn: &Connection,
    path: &Path,
    after_seq: u64,
    tx: &std::sync::mpsc::SyncSender<Chunk>,
) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare("SELECT seq, at, kind, payload FROM journal WHERE seq > ?1 ORDER BY seq")
        .at(path)?;
    let mut rows = stmt.query(params![seq_to_sql(after_seq)]).at(path)?;
    let mut chunk = Vec::with_capacity(REPLAY_CHUNK);
    let mut decoder = Decoder::default();
    while let Some(row) = rows.next().at(path)? {
        let seq = seq_from_sql(row.get(0).at(path)?);
        let at: i64 = row.get(1).at(path)?;
        let text = |i: usize| -> Result<&str, StoreError> {
            row.get_ref(i)
                .at(path)?
                .as_str()
                .map_err(|e| StoreError::Decode {
                    path: path.to_owned(),
                    table: "journal",
                    seq,
                    detail: e.to_string(),
                })
        };
        let event =
            decoder
                .decode(at, text(2)?, text(3)?)
                .map_err(|detail| StoreError::Decode {
                    path: path.to_owned(),
                    table: "journal",
                    seq,
                    detail,
                })?;
        chunk.push((seq, event));
        if chunk.len() == REPLAY_CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(REPLAY_CHUNK));
            if tx.send(Ok(full)).is_err() {
                return Ok(());
            }
        }
    }
    if !chunk.is_empty() {
        let _ = tx.send(Ok(chunk));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rusqlite::StatementStatus;

    use super::*;
    use crate::core::{ContactId, InteractionId};

    /// Reads keyed by a bound value that a partial index's condition is checked against keep
    /// their prepared plan from one value to the next (no re-preparation per call).
    #[test]
    fn reads_on_partial_indexes_are_not_prepared_again_per_value() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = SqliteStore::open(&StoreConfig::new(dir.path())).expect("store");
        for n in 0..5 {
            store
                .conversation(InteractionId::generate())
                .expect("conversation");
            store
                .contact_history(&ContactId::new(format!("contact-{n}")), 11)
                .expect("history");
        }
        let conn = store.conn();
        for sql in [
            super::super::conversation::CONVERSATION_SQL,
            super::super::history::CREATED_SQL,
        ] {
            let stmt = conn.prepare_cached(sql).expect("cached statement");
            assert_eq!(stmt.get_status(StatementStatus::Run), 5, "{sql}");
            assert_eq!(stmt.get_status(StatementStatus::RePrepare), 0, "{sql}");
        }
        // The partial indexes are still the ones used.
        let plan: Vec<String> = conn
            .prepare(&format!(
                "EXPLAIN QUERY PLAN {}",
                super::super::conversation::CONVERSATION_SQL
            ))
            .and_then(|mut s| {
                s.query_map([InteractionId::generate().to_string()], |r| r.get(3))?
                    .collect()
            })
            .expect("plan");
        assert!(
            plan.iter().any(|p| p.contains("journal_interaction")),
            "{plan:?}"
        );
    }
}
