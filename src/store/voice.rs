//! Calls still inside the IVR, kept so that they survive a restart and so that every node of a
//! highly available installation sees them: the store's `voice_sessions` table (schema version
//! 12, on SQLite and PostgreSQL alike).
//!
//! The phone channel writes these rows behind the webhook path, in batches (see
//! `channels/voice/persist.rs`): one row per call that is in the IVR or recording a voicemail,
//! keyed by `gateway:call id`, holding the call's state as JSON text that the store does not
//! interpret. A row is deleted when its call leaves the IVR (queued, ended); rows that nobody
//! touched for an hour are swept; a contact's erasure deletes the rows of its calls
//! (`maintenance.rs`).
//!
//! Before version 12 the rows lived in a node-local file, `<data_dir>/voice-sessions.db`:
//! [`Store::open`] imports such a file once (its rows, then the file renamed
//! `voice-sessions.db.imported`), so calls in a menu across the upgrade keep their place.
//!
//! Schema:
//! ```text
//! voice_sessions (call TEXT PRIMARY KEY, state TEXT, updated_at INTEGER)  + index on updated_at
//! ```

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use crate::core::Timestamp;

use super::codec::millis_to_sql;
use super::db::SqliteStore;
use super::error::{SqlContext, StoreError};
use super::{Store, StoreHandle};

/// The file the rows lived in before schema version 12, in the data directory.
pub const VOICE_SESSIONS_FILE: &str = "voice-sessions.db";

/// The statements, in the text both backends accept.
pub(crate) mod sql {
    /// Replaces a call's row.
    pub const PUT: &str = "INSERT INTO voice_sessions (call, state, updated_at) \
         VALUES ($1, $2, $3) ON CONFLICT (call) DO UPDATE SET state = excluded.state, \
         updated_at = excluded.updated_at";
    /// Deletes a call's row.
    pub const DELETE: &str = "DELETE FROM voice_sessions WHERE call = $1";
    /// A call's state.
    pub const GET: &str = "SELECT state FROM voice_sessions WHERE call = $1";
    /// Deletes the rows not written since `$1`.
    pub const SWEEP: &str = "DELETE FROM voice_sessions WHERE updated_at < $1";
    /// Every row's call and state (an erasure looks for the caller in the states).
    pub const ALL: &str = "SELECT call, state FROM voice_sessions";
    /// The table (version 12); PostgreSQL's spells `updated_at` `BIGINT`.
    pub const V12: &str = "
CREATE TABLE voice_sessions (
    call TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX voice_sessions_updated ON voice_sessions (updated_at);
";
}

/// The calls-in-the-IVR rows of the store. Its methods block: call them from a thread of their
/// own or a blocking pool.
#[derive(Debug, Clone)]
pub struct VoiceSessions {
    store: StoreHandle,
}

impl VoiceSessions {
    /// The calls-in-the-IVR rows of `store`.
    pub fn open(store: &StoreHandle) -> Result<VoiceSessions, StoreError> {
        Ok(VoiceSessions {
            store: store.clone(),
        })
    }

    /// Writes one batch in one transaction: each `(call, Some(state))` replaces the call's row,
    /// each `(call, None)` deletes it.
    pub fn write(
        &self,
        batch: &[(String, Option<String>)],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.store.put_voice_sessions(batch, at)
    }

    /// The stored state of `call`, if any.
    pub fn get(&self, call: &str) -> Result<Option<String>, StoreError> {
        self.store.voice_session(call)
    }

    /// Deletes the rows not written since `before`; returns how many.
    pub fn sweep(&self, before: Timestamp) -> Result<usize, StoreError> {
        self.store.sweep_voice_sessions(before)
    }
}

impl SqliteStore {
    /// Writes a batch of calls-in-the-IVR rows in one transaction (see [`VoiceSessions::write`]).
    pub fn put_voice_sessions(
        &self,
        batch: &[(String, Option<String>)],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let path = self.path().to_owned();
        let mut conn = self.conn();
        let tx = conn.transaction().at(&path)?;
        {
            let mut put = tx.prepare_cached(sql::PUT).at(&path)?;
            let mut delete = tx.prepare_cached(sql::DELETE).at(&path)?;
            for (call, state) in batch {
                match state {
                    Some(state) => put
                        .execute(params![call, state, millis_to_sql(at)])
                        .at(&path)?,
                    None => delete.execute(params![call]).at(&path)?,
                };
            }
        }
        tx.commit().at(&path)
    }

    /// The stored state of a call in the IVR.
    pub fn voice_session(&self, call: &str) -> Result<Option<String>, StoreError> {
        self.conn()
            .query_row(sql::GET, params![call], |r| r.get(0))
            .optional()
            .at(self.path())
    }

    /// Deletes the calls-in-the-IVR rows not written since `before`; returns how many.
    pub fn sweep_voice_sessions(&self, before: Timestamp) -> Result<usize, StoreError> {
        self.conn()
            .execute(sql::SWEEP, params![millis_to_sql(before)])
            .at(self.path())
    }
}

/// Whether a stored call state is a call from `caller` (its `from`, as given or normalised).
pub(crate) fn is_from(state: &str, caller: &str) -> bool {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(state) else {
        return false;
    };
    let Some(from) = value.get("from").and_then(|f| f.as_str()) else {
        return false;
    };
    from == caller || from == crate::ivr::model::normalize_number(caller)
}

/// Imports a `voice-sessions.db` left in the data directory by a version before 12 into the
/// store (once: the file is renamed `voice-sessions.db.imported` after). Returns how many rows.
pub(crate) fn import_legacy(store: &Store) -> Result<usize, StoreError> {
    let dir = store.config().data_dir.clone();
    let path = dir.join(VOICE_SESSIONS_FILE);
    if !path.exists() {
        return Ok(0);
    }
    let rows = read_legacy(&path)?;
    for (call, state, updated_at) in &rows {
        store.put_voice_sessions(
            &[(call.clone(), Some(state.clone()))],
            Timestamp((*updated_at).max(0) as u64),
        )?;
    }
    // The rows are in the store: the file goes aside (with SQLite's companions), so a later
    // start does not bring back rows the store has since deleted.
    for suffix in ["", "-wal", "-shm"] {
        let from = dir.join(format!("{VOICE_SESSIONS_FILE}{suffix}"));
        if !from.exists() {
            continue;
        }
        let to = dir.join(format!("{VOICE_SESSIONS_FILE}.imported{suffix}"));
        std::fs::rename(&from, &to).map_err(|source| StoreError::Io { path: from, source })?;
    }
    tracing::info!(
        rows = rows.len(),
        "calls inside a phone menu imported from {} into the store",
        path.display()
    );
    Ok(rows.len())
}

fn read_legacy(path: &Path) -> Result<Vec<(String, String, i64)>, StoreError> {
    let conn = Connection::open(path).at(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .at(path)?;
    let has_table: bool = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'voice_sessions'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .at(path)?
        > 0;
    if !has_table {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare("SELECT call, state, updated_at FROM voice_sessions")
        .at(path)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .at(path)?;
    rows.collect::<Result<_, _>>().at(path)
}
