//! Calls still inside the IVR, kept so that they survive a restart (`voice_sessions`, schema
//! version 8).
//!
//! The phone channel writes these rows behind the webhook path, in batches (see
//! `channels/voice/persist.rs`): one row per call that is in the IVR or recording a voicemail,
//! keyed by `gateway:call id`, holding the call's state as opaque JSON text that the store does
//! not interpret. A row is deleted when its call leaves the IVR (queued, ended); rows that
//! nobody touched for a while are swept.

use rusqlite::{params, OptionalExtension};

use crate::core::Timestamp;

use super::codec::millis_to_sql;
use super::db::Store;
use super::error::{SqlContext, StoreError};

/// Version 8's table (renumbered at merge if another migration takes 8).
pub(crate) const V8_SQL: &str = "
CREATE TABLE voice_sessions (
    call TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX voice_sessions_updated ON voice_sessions (updated_at);
";

impl Store {
    /// Writes one batch in one transaction: each `(call, Some(state))` replaces the call's row,
    /// each `(call, None)` deletes it.
    pub fn write_voice_sessions(
        &self,
        batch: &[(String, Option<String>)],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().at(self.path())?;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO voice_sessions (call, state, updated_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (call) DO UPDATE SET state = excluded.state, \
                     updated_at = excluded.updated_at",
                )
                .at(self.path())?;
            let mut delete = tx
                .prepare_cached("DELETE FROM voice_sessions WHERE call = ?1")
                .at(self.path())?;
            for (call, state) in batch {
                match state {
                    Some(state) => put
                        .execute(params![call, state, millis_to_sql(at)])
                        .at(self.path())?,
                    None => delete.execute(params![call]).at(self.path())?,
                };
            }
        }
        tx.commit().at(self.path())
    }

    /// The stored state of `call`, if any.
    pub fn voice_session(&self, call: &str) -> Result<Option<String>, StoreError> {
        self.conn()
            .query_row(
                "SELECT state FROM voice_sessions WHERE call = ?1",
                params![call],
                |r| r.get(0),
            )
            .optional()
            .at(self.path())
    }

    /// Deletes the rows not written since `before`; returns how many.
    pub fn sweep_voice_sessions(&self, before: Timestamp) -> Result<usize, StoreError> {
        self.conn()
            .execute(
                "DELETE FROM voice_sessions WHERE updated_at < ?1",
                params![millis_to_sql(before)],
            )
            .at(self.path())
    }
}
