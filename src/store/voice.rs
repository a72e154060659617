//! Calls still inside the IVR, kept so that they survive a restart: their own small database,
//! `<data_dir>/voice-sessions.db`, beside the journal's.
//!
//! The phone channel writes these rows behind the webhook path, in batches (see
//! `channels/voice/persist.rs`): one row per call that is in the IVR or recording a voicemail,
//! keyed by `gateway:call id`, holding the call's state as JSON text that the store does not
//! interpret. A row is deleted when its call leaves the IVR (queued, ended); rows that nobody
//! touched for an hour are swept.
//!
//! Why a file of its own: SQLite has one writer per database. In `guichet.db` these writes
//! would take turns with the journal's group commits, and a commit that finds the database
//! busy sleeps (milliseconds) before it retries: the requests that wait for a commit (queueing
//! a call, hanging up) would pay for it. The rows are short-lived and hold nothing the journal
//! needs: losing the file loses only where calls stood in their menus. The data directory's
//! process lock covers it.
//!
//! Schema (`meta` holds `schema_version` = 1):
//! ```text
//! voice_sessions (call TEXT PRIMARY KEY, state TEXT, updated_at INTEGER)  + index on updated_at
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};

use crate::core::Timestamp;

use super::codec::millis_to_sql;
use super::error::{SqlContext, StoreError};
use super::Store;

/// The file, in the data directory.
pub const VOICE_SESSIONS_FILE: &str = "voice-sessions.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '1');
CREATE TABLE IF NOT EXISTS voice_sessions (
    call TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS voice_sessions_updated ON voice_sessions (updated_at);
";

/// The calls-in-the-IVR database. Its methods block: call them from a thread of their own or
/// a blocking pool.
#[derive(Debug)]
pub struct VoiceSessions {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl VoiceSessions {
    /// Opens (or creates) `voice-sessions.db` beside `store`'s database, with the store's
    /// durability and busy timeout settings.
    pub fn open(store: &Store) -> Result<VoiceSessions, StoreError> {
        // On SQLite beside the database; on PostgreSQL in the node's own data directory (calls
        // inside a phone menu are the node's own, see docs/storage.md).
        let dir = store.config().data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(VOICE_SESSIONS_FILE);
        let conn = super::db::open_connection(&path, store.config())?;
        conn.execute_batch(SCHEMA).at(&path)?;
        let version: String = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .at(&path)?;
        if version != "1" {
            return Err(StoreError::Invalid(format!(
                "{}: schema version {version}, this build reads version 1",
                path.display()
            )));
        }
        Ok(VoiceSessions {
            path,
            conn: Mutex::new(conn),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes one batch in one transaction: each `(call, Some(state))` replaces the call's row,
    /// each `(call, None)` deletes it.
    pub fn write(
        &self,
        batch: &[(String, Option<String>)],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().at(&self.path)?;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO voice_sessions (call, state, updated_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (call) DO UPDATE SET state = excluded.state, \
                     updated_at = excluded.updated_at",
                )
                .at(&self.path)?;
            let mut delete = tx
                .prepare_cached("DELETE FROM voice_sessions WHERE call = ?1")
                .at(&self.path)?;
            for (call, state) in batch {
                match state {
                    Some(state) => put
                        .execute(params![call, state, millis_to_sql(at)])
                        .at(&self.path)?,
                    None => delete.execute(params![call]).at(&self.path)?,
                };
            }
        }
        tx.commit().at(&self.path)
    }

    /// The stored state of `call`, if any.
    pub fn get(&self, call: &str) -> Result<Option<String>, StoreError> {
        self.conn()
            .query_row(
                "SELECT state FROM voice_sessions WHERE call = ?1",
                params![call],
                |r| r.get(0),
            )
            .optional()
            .at(&self.path)
    }

    /// Deletes the rows not written since `before`; returns how many.
    pub fn sweep(&self, before: Timestamp) -> Result<usize, StoreError> {
        self.conn()
            .execute(
                "DELETE FROM voice_sessions WHERE updated_at < ?1",
                params![millis_to_sql(before)],
            )
            .at(&self.path)
    }
}

/// Deletes the saved states of calls from `caller` (GDPR erasure of a contact): `dir` is the
/// directory of the sessions file (nothing to do when there is none). Returns how many rows
/// were deleted.
pub(crate) fn erase_caller(dir: &Path, caller: &str) -> Result<usize, StoreError> {
    let path = dir.join(VOICE_SESSIONS_FILE);
    if !path.exists() {
        return Ok(0);
    }
    let conn = Connection::open(&path).at(&path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .at(&path)?;
    let normalized = crate::ivr::model::normalize_number(caller);
    conn.execute(
        "DELETE FROM voice_sessions WHERE json_extract(state, '$.from') IN (?1, ?2)",
        params![caller, normalized],
    )
    .at(&path)
}
