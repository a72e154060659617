//! The notify outbox on PostgreSQL: the scan of committed outbound messages, the deliveries and
//! their outcomes. The decoding and the choice of deliveries are SQLite's (`outbox.rs`).

use std::sync::Arc;

use crate::core::{InteractionId, Message, Timestamp};

use super::super::codec::{millis_from_sql, millis_to_sql};
use super::super::outbox::{
    completions, delivery_from_parts, delivery_of, message_of, outbound_deliveries, scan_end,
    DELIVERY_COLUMNS,
};
use super::super::{Delivery, DeliveryChannel, DeliveryState, OutboxClaim, StoreError};
use super::PgStore;

impl PgStore {
    /// Like [`SqliteStore::outbox_ingest`](super::super::SqliteStore::outbox_ingest).
    pub fn outbox_ingest(
        &self,
        limit: usize,
        email_hold_ms: u64,
    ) -> Result<(usize, bool), StoreError> {
        let path = self.target().as_path();
        let (checkpoint, end, rows) = {
            let mut conn = self.conn();
            // The journal's end is read after the checkpoint: a row committed later is left for
            // the next scan.
            let (checkpoint, end) = self.checkpoint_and_end(&mut conn, "notify_checkpoint")?;
            let rows: Vec<(i64, i64, String)> = conn
                .query(
                    "SELECT seq, at, payload FROM journal \
                     WHERE seq > $1 AND seq <= $2 AND kind = 'message_added' ORDER BY seq LIMIT $3",
                    &[&(checkpoint as i64), &(end as i64), &(limit as i64)],
                )
                .map_err(|e| self.err(e))?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
            (checkpoint, end, rows)
        };
        let (new_checkpoint, more) = scan_end(&rows, limit, end);
        let found = outbound_deliveries(&path, rows, email_hold_ms, |i| {
            Ok(self.interaction_spec(i)?.map(|(_, s)| s.channel))
        })?;
        if new_checkpoint <= checkpoint && found.is_empty() {
            return Ok((0, false));
        }
        let err = |e| self.err(e);
        let completed: Vec<(i64, i64, String)> = self
            .conn()
            .query(
                "SELECT seq, at, payload FROM journal \
                 WHERE seq > $1 AND seq <= $2 AND kind = 'interaction_completed' ORDER BY seq",
                &[&(checkpoint as i64), &(new_checkpoint as i64)],
            )
            .map_err(err)?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let completed = completions(&path, completed, email_hold_ms)?;
        self.with_tx(|tx| {
            for (id, seq, interaction, channel, at, due) in &found {
                tx.execute(
                    "INSERT INTO outbox (message, seq, interaction, channel, state, attempts, \
                     created_at, next_attempt_at) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $6) \
                     ON CONFLICT (message) DO NOTHING",
                    &[
                        id,
                        seq,
                        &interaction.to_string(),
                        &channel.as_str(),
                        at,
                        due,
                    ],
                )
                .map_err(err)?;
            }
            // A completed interaction's emails not tried yet go `email_hold_ms` after it at the
            // latest, as one.
            for (interaction, due) in &completed {
                tx.execute(
                    "UPDATE outbox SET next_attempt_at = LEAST(next_attempt_at, $1) \
                     WHERE interaction = $2 AND channel = 'email' AND state = 'pending' \
                     AND attempts = 0",
                    &[due, &interaction.to_string()],
                )
                .map_err(err)?;
            }
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('notify_checkpoint', $1) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&new_checkpoint.max(checkpoint).to_string()],
            )
            .map_err(err)?;
            Ok(())
        })?;
        Ok((found.len(), more))
    }

    fn outbox_select(
        &self,
        filter: &str,
        args: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = self
            .conn()
            .query(
                &format!("SELECT {DELIVERY_COLUMNS} FROM outbox {filter}"),
                args,
            )
            .map_err(|e| self.err(e))?;
        let path = self.target().as_path();
        rows.iter()
            .map(|r| {
                let parts = delivery_of(r).map_err(|d| self.decode_err("outbox", d))?;
                delivery_from_parts(&path, parts)
            })
            .collect()
    }

    /// Like [`SqliteStore::outbox_due`](super::super::SqliteStore::outbox_due).
    pub fn outbox_due(&self, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.outbox_select(
            "WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, seq LIMIT $2",
            &[&millis_to_sql(now), &(limit as i64)],
        )
    }

    /// Like [`SqliteStore::outbox_pending_of`](super::super::SqliteStore::outbox_pending_of).
    pub fn outbox_pending_of(
        &self,
        interaction: InteractionId,
        channel: DeliveryChannel,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.outbox_select(
            "WHERE state = 'pending' AND interaction = $1 AND channel = $2 ORDER BY seq LIMIT $3",
            &[&interaction.to_string(), &channel.as_str(), &(limit as i64)],
        )
    }

    /// Like [`SqliteStore::outbox_delivery`](super::super::SqliteStore::outbox_delivery).
    pub fn outbox_delivery(&self, message: &str) -> Result<Option<Delivery>, StoreError> {
        Ok(self.outbox_select("WHERE message = $1", &[&message])?.pop())
    }

    /// Like [`SqliteStore::outbox_next_due`](super::super::SqliteStore::outbox_next_due).
    pub fn outbox_next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let next: Option<i64> = self
            .conn()
            .query_one(
                "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'",
                &[],
            )
            .map_err(|e| self.err(e))?
            .get(0);
        Ok(next.map(millis_from_sql))
    }

    /// Like [`SqliteStore::outbox_oldest_pending`](super::super::SqliteStore::outbox_oldest_pending).
    pub fn outbox_oldest_pending(&self) -> Result<Option<u64>, StoreError> {
        let seq: Option<i64> = self
            .conn()
            .query_one("SELECT MIN(seq) FROM outbox WHERE state = 'pending'", &[])
            .map_err(|e| self.err(e))?
            .get(0);
        Ok(seq.map(|s| s.max(0) as u64))
    }

    /// Like [`SqliteStore::outbox_message`](super::super::SqliteStore::outbox_message).
    pub fn outbox_message(&self, seq: u64) -> Result<Option<Arc<Message>>, StoreError> {
        let row = self
            .conn()
            .query_opt(
                "SELECT at, payload FROM journal WHERE seq = $1 AND kind = 'message_added'",
                &[&(seq as i64)],
            )
            .map_err(|e| self.err(e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        message_of(self.target().as_path(), seq, row.get(0), row.get(1))
    }

    /// Claims a delivery with the leader's term before it is sent (schema version 14's
    /// `claimed_term`), in a transaction that first checks the fence (the lease row `FOR
    /// SHARE`, as a journal append does): a node whose term is over claims nothing
    /// ([`StoreError::Fenced`], and it steps down). A pending delivery claimed by an earlier
    /// term was perhaps sent by that leader just before it went: [`OutboxClaim::InDoubt`].
    /// Without high availability (no fence): [`OutboxClaim::Claimed`] while pending.
    pub fn outbox_claim(&self, message: &str) -> Result<OutboxClaim, StoreError> {
        let fence = self.config.fence.clone();
        let mut conn = self.conn();
        let err = |e| self.err(e);
        let mut tx = conn.transaction().map_err(err)?;
        if let Some(fence) = &fence {
            super::journal::fenced(&mut tx, Some(fence), self.target())?;
        }
        let row = tx
            .query_opt(
                "SELECT state, claimed_term FROM outbox WHERE message = $1 FOR UPDATE",
                &[&message],
            )
            .map_err(err)?;
        let Some(row) = row else {
            return Ok(OutboxClaim::Gone);
        };
        let state: String = row.get(0);
        let claimed: Option<i64> = row.get(1);
        if state != DeliveryState::Pending.as_str() {
            return Ok(OutboxClaim::Gone);
        }
        let Some(fence) = fence else {
            return Ok(OutboxClaim::Claimed);
        };
        let term = fence.term as i64;
        if let Some(earlier) = claimed.filter(|t| *t != term) {
            return Ok(OutboxClaim::InDoubt {
                term: earlier.max(0) as u64,
            });
        }
        tx.execute(
            "UPDATE outbox SET claimed_term = $2 WHERE message = $1",
            &[&message, &term],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(OutboxClaim::Claimed)
    }

    /// Like [`SqliteStore::outbox_record`](super::super::SqliteStore::outbox_record); a
    /// delivery left pending (to be retried) is no longer claimed, so a later term may send it.
    pub fn outbox_record(
        &self,
        message: &str,
        state: DeliveryState,
        attempts: u32,
        next_attempt_at: Timestamp,
        last_error: Option<&str>,
        delivered: Option<(Timestamp, Option<&str>)>,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE outbox SET state = $2, attempts = $3, next_attempt_at = $4, \
                 last_error = COALESCE($5, last_error), delivered_at = $6, provider_ref = $7, \
                 claimed_term = NULL WHERE message = $1",
                &[
                    &message,
                    &state.as_str(),
                    &i64::from(attempts),
                    &millis_to_sql(next_attempt_at),
                    &last_error,
                    &delivered.map(|(at, _)| millis_to_sql(at)),
                    &delivered.and_then(|(_, r)| r),
                ],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}
