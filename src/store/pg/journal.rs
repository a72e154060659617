//! The journal's writer on PostgreSQL: [`PgJournal`] implements the writer loop's
//! [`JournalBackend`] (`writer.rs`), so group commit, acknowledgement after commit, dense
//! sequence numbers assigned by the writer and halting after a failed commit are the same code
//! as on SQLite.
//!
//! One group commit is one transaction holding one `INSERT ... SELECT FROM unnest(...)` with the
//! batch's rows as arrays: a single round trip whatever the batch size. With PostgreSQL's default
//! `synchronous_commit = on`, `COMMIT` returns once the write-ahead log is flushed, so an
//! acknowledged event survives a crash of the server too.

use std::path::Path;

use postgres::types::ToSql;
use postgres::{Client, Statement, Transaction};

use crate::core::ContactId;

use super::super::codec::{seq_from_sql, seq_to_sql, Row};
use super::super::maintenance::{erase_in, erase_sql, ClosingRow, Erasure, ErasureTx, Param};
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

/// PostgreSQL's side of an erasure: a transaction on the writer's connection (see
/// [`erase_in`] for the rules, shared with SQLite).
struct PgErasure<'a> {
    tx: Transaction<'a>,
    target: &'a Target,
    path: &'a Path,
}

impl PgErasure<'_> {
    fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, StoreError> {
        self.tx
            .query(sql, params)
            .map_err(|e| pg_error(self.target, e))
    }
}

impl ErasureTx for PgErasure<'_> {
    fn path(&self) -> &Path {
        self.path
    }

    fn pairs(&mut self, sql: &str, param: Param<'_>) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = match param {
            Param::None => self.query(sql, &[])?,
            Param::Text(t) => self.query(sql, &[&t])?,
        };
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn creations(
        &mut self,
        contact: &str,
    ) -> Result<Vec<(i64, Option<String>, String)>, StoreError> {
        let rows = self.query(erase_sql::CREATIONS, &[&contact])?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    fn closings(&mut self, after: i64) -> Result<Vec<ClosingRow>, StoreError> {
        let rows = self.query(erase_sql::CLOSINGS, &[&after])?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }

    fn rewrite(&mut self, sql: &str, payload: &str, seq: i64) -> Result<(), StoreError> {
        self.tx
            .execute(sql, &[&payload, &seq])
            .map_err(|e| pg_error(self.target, e))?;
        Ok(())
    }

    fn by_contact(&mut self, sql: &str, contact: &str) -> Result<(), StoreError> {
        self.tx
            .execute(sql, &[&contact])
            .map_err(|e| pg_error(self.target, e))?;
        Ok(())
    }

    fn voice_calls(&mut self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self.query(super::super::voice::sql::ALL, &[])?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}

impl PgJournal {
    fn err(&self, e: postgres::Error) -> StoreError {
        pg_error(&self.target, e)
    }
}

/// Checks the fence inside `tx` (when there is one); a refusal tells the fence's owner, which
/// steps down, and comes back as [`StoreError::Fenced`]. Also the outbox's and the surveys'
/// claims (`outbox.rs`, `surveys.rs`).
pub(super) fn fenced(
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
        if self.fence.is_some() {
            // Wakes the standbys following the journal (delivered at commit; they poll by
            // sequence number anyway, this only shortens their lag).
            tx.batch_execute(super::follow::NOTIFY_SQL).map_err(err)?;
        }
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

    fn erase_contact(&mut self, contact: &ContactId) -> Result<Erasure, StoreError> {
        let target = self.target.clone();
        let path = target.as_path();
        let err = |e| pg_error(&target, e);
        let mut tx = self.client.transaction().map_err(err)?;
        fenced(&mut tx, self.fence.as_ref(), &target)?;
        // Counted, so that a standby following the journal rebuilds its router (the erasure
        // changes the router in memory without an event: see `follow.rs`).
        tx.execute(super::follow::COUNT_ERASURE_SQL, &[])
            .map_err(err)?;
        let mut erasure = PgErasure {
            tx,
            target: &target,
            path: &path,
        };
        let erased = erase_in(&mut erasure, contact)?;
        erasure.tx.commit().map_err(err)?;
        Ok(erased)
    }

    fn close(self: Box<Self>) -> Result<(), StoreError> {
        let target = self.target.clone();
        self.client.close().map_err(|e| pg_error(&target, e))
    }
}
