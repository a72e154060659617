//! The journal's writer on PostgreSQL: [`PgJournal`] implements the writer loop's
//! [`JournalBackend`] (`writer.rs`), so group commit, acknowledgement after commit, dense
//! sequence numbers assigned by the writer and halting after a failed commit are the same code
//! as on SQLite.
//!
//! One group commit is one transaction holding one `INSERT ... SELECT FROM unnest(...)` with the
//! batch's rows as arrays: a single round trip whatever the batch size. With PostgreSQL's default
//! `synchronous_commit = on`, `COMMIT` returns once the write-ahead log is flushed, so an
//! acknowledged event survives a crash of the server too.

use postgres::{Client, Statement};

use crate::core::ContactId;

use super::super::codec::{seq_from_sql, seq_to_sql, Row};
use super::super::maintenance::Erasure;
use super::super::writer::{JournalBackend, SNAPSHOTS_KEPT};
use super::super::Fence;
use super::super::StoreError;
use super::connect::{pg_error, Target};
use super::lease::check_fence;

const INSERT_SQL: &str = "INSERT INTO journal \
     (seq, at, kind, interaction, agent, contact, payload, message) \
     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], \
     $6::text[], $7::text[], $8::text[])";

/// The writer's connection and its prepared insert. The connection also holds the database's
/// writer lock (a session advisory lock, see `pg/mod.rs`), released when it closes.
pub(crate) struct PgJournal {
    pub(crate) client: Client,
    pub(crate) target: Target,
    pub(crate) insert: Option<Statement>,
    /// The leader's fence under high availability: checked in every write's transaction.
    pub(crate) fence: Option<Fence>,
}

impl PgJournal {
    fn err(&self, e: postgres::Error) -> StoreError {
        pg_error(&self.target, e)
    }
}

/// Checks the fence inside `tx` (when there is one); a refusal tells the fence's owner, which
/// steps down, and comes back as [`StoreError::Fenced`].
fn fenced(
    tx: &mut postgres::Transaction<'_>,
    fence: Option<&Fence>,
    target: &Target,
) -> Result<(), StoreError> {
    let Some(fence) = fence else { return Ok(()) };
    let checked = check_fence(tx, fence, target);
    if let Err(e @ StoreError::Fenced { .. }) = &checked {
        fence.superseded(&e.to_string());
    }
    checked
}

impl JournalBackend for PgJournal {
    fn insert_rows(&mut self, rows: &[Row], base: u64) -> Result<(), StoreError> {
        let insert = match &self.insert {
            Some(s) => s.clone(),
            None => {
                let s = self.client.prepare(INSERT_SQL).map_err(|e| self.err(e))?;
                self.insert = Some(s.clone());
                s
            }
        };
        let seqs: Vec<i64> = (0..rows.len())
            .map(|i| seq_to_sql(base + 1 + i as u64))
            .collect();
        let ats: Vec<i64> = rows.iter().map(|r| r.at).collect();
        let kinds: Vec<&str> = rows.iter().map(|r| r.kind).collect();
        let interactions: Vec<Option<&str>> =
            rows.iter().map(|r| r.interaction.as_deref()).collect();
        let agents: Vec<Option<&str>> = rows.iter().map(|r| r.agent.as_deref()).collect();
        let contacts: Vec<Option<&str>> = rows.iter().map(|r| r.contact.as_deref()).collect();
        let payloads: Vec<&str> = rows.iter().map(|r| r.payload.as_str()).collect();
        let messages: Vec<Option<&str>> = rows.iter().map(|r| r.message.as_deref()).collect();
        let target = self.target.clone();
        let err = |e| pg_error(&target, e);
        let mut tx = self.client.transaction().map_err(err)?;
        fenced(&mut tx, self.fence.as_ref(), &target)?;
        tx.execute(
            &insert,
            &[
                &seqs,
                &ats,
                &kinds,
                &interactions,
                &agents,
                &contacts,
                &payloads,
                &messages,
            ],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    fn write_snapshot(&mut self, seq: u64, at: i64, payload: &str) -> Result<(), StoreError> {
        let target = self.target.clone();
        let err = |e| pg_error(&target, e);
        let seq = seq_to_sql(seq);
        let mut tx = self.client.transaction().map_err(err)?;
        fenced(&mut tx, self.fence.as_ref(), &target)?;
        tx.execute("DELETE FROM snapshots WHERE seq = $1", &[&seq])
            .map_err(err)?;
        tx.execute(
            "INSERT INTO snapshots (seq, at, payload) VALUES ($1, $2, $3)",
            &[&seq, &at, &payload],
        )
        .map_err(err)?;
        let keep_from: Option<i64> = tx
            .query_opt(
                "SELECT seq FROM snapshots ORDER BY seq DESC LIMIT 1 OFFSET $1",
                &[&(SNAPSHOTS_KEPT - 1)],
            )
            .map_err(err)?
            .map(|r| r.get(0));
        if let Some(keep_from) = keep_from {
            tx.execute("DELETE FROM snapshots WHERE seq < $1", &[&keep_from])
                .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    fn retention_bounds(&mut self) -> Result<(Option<u64>, Option<u64>), StoreError> {
        let row = self
            .client
            .query_one(
                "SELECT (SELECT MAX(seq) FROM snapshots), (SELECT MIN(seq) FROM journal)",
                &[],
            )
            .map_err(|e| self.err(e))?;
        let upto: Option<i64> = row.get(0);
        let first: Option<i64> = row.get(1);
        Ok((upto.map(seq_from_sql), first.map(seq_from_sql)))
    }

    fn delete_journal(&mut self, after: u64, upto: u64, before: i64) -> Result<u64, StoreError> {
        let target = self.target.clone();
        let err = |e| pg_error(&target, e);
        let mut tx = self.client.transaction().map_err(err)?;
        fenced(&mut tx, self.fence.as_ref(), &target)?;
        let n = tx
            .execute(
                "DELETE FROM journal WHERE seq > $1 AND seq <= $2 AND at < $3",
                &[&seq_to_sql(after), &seq_to_sql(upto), &before],
            )
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(n)
    }

    fn erase_contact(&mut self, _contact: &ContactId) -> Result<Erasure, StoreError> {
        Err(StoreError::Invalid(format!(
            "{}: erasing a contact is not available on PostgreSQL in this version; \
             it is on SQLite (docs/storage.md lists what the PostgreSQL backend covers)",
            self.target
        )))
    }

    fn close(self: Box<Self>) -> Result<(), StoreError> {
        let target = self.target.clone();
        self.client.close().map_err(|e| pg_error(&target, e))
    }
}
