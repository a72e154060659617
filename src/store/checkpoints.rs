//! The durable checkpoints of the views of committed events that send something (completion
//! notices): the journal sequence number up to which each has done its work, so that a restart
//! resumes right after it (nothing lost; the view itself makes sure that handing it an event it
//! had handled but not yet checkpointed sends nothing twice).

use rusqlite::{params, OptionalExtension};

use super::db::SqliteStore;
use super::error::{SqlContext, StoreError};

/// The SQL of schema version 8.
pub(crate) const V9_SQL: &str = "
CREATE TABLE view_checkpoints (
    view TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
ALTER TABLE indicator_days ADD COLUMN abandoned_within INTEGER NOT NULL DEFAULT 0;
ALTER TABLE indicator_days ADD COLUMN cancelled INTEGER NOT NULL DEFAULT 0;
";

impl SqliteStore {
    /// The checkpoint of view `view`, if it has one.
    pub fn view_checkpoint(&self, view: &str) -> Result<Option<u64>, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        let seq: Option<i64> = conn
            .prepare_cached("SELECT seq FROM view_checkpoints WHERE view = ?1")
            .and_then(|mut s| s.query_row(params![view], |r| r.get(0)).optional())
            .at(&path)?;
        Ok(seq.map(|s| s.max(0) as u64))
    }

    /// Records that view `view` has done its work up to `seq` (never moves back).
    pub fn set_view_checkpoint(&self, view: &str, seq: u64) -> Result<(), StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        conn.prepare_cached(
            "INSERT INTO view_checkpoints (view, seq) VALUES (?1, ?2) \
             ON CONFLICT (view) DO UPDATE SET seq = max(seq, excluded.seq)",
        )
        .and_then(|mut s| s.execute(params![view, seq]))
        .at(&path)?;
        Ok(())
    }
}
