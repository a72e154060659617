//! The indicator aggregates and the reads of the journal (conversations, a contact's history)
//! on PostgreSQL. The folding and decoding are SQLite's (`indicators.rs`, `conversation.rs`,
//! `history.rs`); only the statements are PostgreSQL's.

use std::collections::HashSet;
use std::sync::Arc;

use postgres::GenericClient;

use crate::core::{
    AgentId, Channel, ContactId, Event, InteractionId, InteractionSpec, Pending, QueueId, Timestamp,
};

use super::super::conversation::{
    conversation_from_rows, interaction_of_message, last_transfer_from_rows, spec_from_row,
    MAX_MOVES_READ,
};
use super::super::history::{history_from_rows, CONTACTS_SQL};
use super::super::indicators::{pending_of, reseed_plan, Batch, CURSOR_KEY, PENDING_SQL};
use super::super::{
    ConversationEntry, HistoryEntry, IndicatorDay, IndicatorState, Reseeded, StoreError,
};
use super::PgStore;

/// The key of the transaction advisory lock that serialises folds into the aggregates.
const INDICATORS_LOCK: i64 = 0x6775_6963_6865_7403;

const DAYS_SQL: &str = "SELECT day, queue, channel, requests, answered, answered_within, \
     abandoned, wait_ms_total, survey_answers, survey_score_total, abandoned_within, cancelled \
     FROM indicator_days WHERE day >= $1 AND day <= $2 ORDER BY day, queue, channel";

fn read_days(
    c: &mut impl GenericClient,
    from: &str,
    to: &str,
) -> Result<Vec<IndicatorDay>, postgres::Error> {
    let rows = c.query(DAYS_SQL, &[&from, &to])?;
    Ok(rows
        .iter()
        .map(|r| {
            let n = |i: usize| r.get::<_, i64>(i).max(0) as u64;
            IndicatorDay {
                day: r.get(0),
                queue: r.get(1),
                channel: r.get(2),
                requests: n(3),
                answered: n(4),
                answered_within: n(5),
                abandoned: n(6),
                wait_ms_total: n(7),
                survey_answers: n(8),
                survey_score_total: n(9),
                abandoned_within: n(10),
                cancelled: n(11),
            }
        })
        .collect())
}

fn read_cursor(c: &mut impl GenericClient) -> Result<u64, postgres::Error> {
    let value: Option<String> = c
        .query_opt("SELECT value FROM meta WHERE key = $1", &[&CURSOR_KEY])?
        .map(|r| r.get(0));
    Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// Stores the indicators' position in the journal.
fn write_cursor(c: &mut impl GenericClient, seq: u64) -> Result<u64, postgres::Error> {
    c.execute(
        "INSERT INTO meta (key, value) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&CURSOR_KEY, &seq.to_string()],
    )
}

fn take_open(
    c: &mut impl GenericClient,
    interaction: &InteractionId,
) -> Result<Option<Pending>, postgres::Error> {
    let row = c.query_opt(
        "DELETE FROM indicator_open WHERE interaction = $1 \
         RETURNING queue, channel, created_at, sla_deadline",
        &[&interaction.to_string()],
    )?;
    let Some(row) = row else {
        return Ok(None);
    };
    let channel: String = row.get(1);
    let Ok(channel) = channel.parse::<Channel>() else {
        return Ok(None);
    };
    let queue: String = row.get(0);
    Ok(Some(Pending {
        queue: QueueId::from(queue),
        channel,
        created: Timestamp(row.get::<_, i64>(2).max(0) as u64),
        sla_deadline: Timestamp(row.get::<_, i64>(3).max(0) as u64),
    }))
}

fn journal_rows(
    c: &mut impl GenericClient,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<Vec<(i64, i64, String)>, postgres::Error> {
    Ok(c.query(sql, params)?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

impl PgStore {
    /// Like [`SqliteStore::last_seq_before`](super::super::SqliteStore::last_seq_before): by
    /// bisection on the sequence numbers (events are journaled in time order).
    pub fn last_seq_before(&self, at: Timestamp) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let err = |e| self.err(e);
        let at = i64::try_from(at.0).unwrap_or(i64::MAX);
        let last: i64 = conn
            .query_one("SELECT COALESCE(MAX(seq), 0) FROM journal", &[])
            .map_err(err)?
            .get(0);
        // The answer is in [lo, hi]: rows up to lo are before `at`, the row after hi is not.
        let (mut lo, mut hi) = (0i64, last);
        while lo < hi {
            let mid = lo + (hi - lo + 1) / 2;
            let row = conn
                .query_opt(
                    "SELECT seq, at FROM journal WHERE seq >= $1 ORDER BY seq LIMIT 1",
                    &[&mid],
                )
                .map_err(err)?;
            match row.map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1))) {
                Some((seq, t)) if t < at => lo = seq.max(mid),
                _ => hi = mid - 1,
            }
        }
        Ok(lo.max(0) as u64)
    }

    /// Like [`SqliteStore::indicators_cursor`](super::super::SqliteStore::indicators_cursor).
    pub fn indicators_cursor(&self) -> Result<u64, StoreError> {
        read_cursor(&mut **self.conn()).map_err(|e| self.err(e))
    }

    /// Like [`SqliteStore::fold_indicator_events`](super::super::SqliteStore::fold_indicator_events):
    /// one transaction with the cursor, serialised with other folds by an advisory lock.
    pub fn fold_indicator_events(
        &self,
        events: &[(u64, Event)],
        day_of: &dyn Fn(Timestamp) -> String,
    ) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let err = |e| self.err(e);
        let mut tx = conn.transaction().map_err(err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&INDICATORS_LOCK])
            .map_err(err)?;
        let mut cursor = read_cursor(&mut tx).map_err(err)?;
        let start = cursor;
        let mut batch = Batch::default();
        for (seq, event) in events {
            if *seq <= cursor {
                continue;
            }
            batch
                .fold_with(event, day_of, |id| take_open(&mut tx, id))
                .map_err(err)?;
            cursor = *seq;
        }
        if cursor != start {
            let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            let add = tx
                .prepare(
                    "INSERT INTO indicator_days \
                     (day, queue, channel, requests, answered, answered_within, abandoned, \
                     wait_ms_total, abandoned_within, cancelled) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (day, queue, channel) DO UPDATE SET \
                     requests = indicator_days.requests + excluded.requests, \
                     answered = indicator_days.answered + excluded.answered, \
                     answered_within = indicator_days.answered_within + excluded.answered_within, \
                     abandoned = indicator_days.abandoned + excluded.abandoned, \
                     wait_ms_total = indicator_days.wait_ms_total + excluded.wait_ms_total, \
                     abandoned_within = indicator_days.abandoned_within + excluded.abandoned_within, \
                     cancelled = indicator_days.cancelled + excluded.cancelled",
                )
                .map_err(err)?;
            for ((day, queue, channel), d) in &batch.days {
                tx.execute(
                    &add,
                    &[
                        day,
                        queue,
                        channel,
                        &n(d.requests),
                        &n(d.answered),
                        &n(d.answered_within),
                        &n(d.abandoned),
                        &n(d.wait_ms_total),
                        &n(d.abandoned_within),
                        &n(d.cancelled),
                    ],
                )
                .map_err(err)?;
            }
            let open = tx
                .prepare(
                    "INSERT INTO indicator_open \
                     (interaction, day, queue, channel, created_at, sla_deadline) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (interaction) DO UPDATE SET \
                     day = excluded.day, queue = excluded.queue, channel = excluded.channel, \
                     created_at = excluded.created_at, sla_deadline = excluded.sla_deadline",
                )
                .map_err(err)?;
            for (id, p) in batch.fold.pending() {
                tx.execute(
                    &open,
                    &[
                        &id.to_string(),
                        &day_of(p.created),
                        &p.queue.as_str(),
                        &p.channel.as_str(),
                        &n(p.created.0),
                        &n(p.sla_deadline.0),
                    ],
                )
                .map_err(err)?;
            }
            write_cursor(&mut tx, cursor).map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(cursor)
    }

    /// Like [`SqliteStore::reseed_indicators`](super::super::SqliteStore::reseed_indicators),
    /// serialised with the folds by their advisory lock.
    pub fn reseed_indicators(
        &self,
        pending: &[(InteractionId, Pending)],
        seq: u64,
        day_of: &dyn Fn(Timestamp) -> String,
    ) -> Result<Reseeded, StoreError> {
        let mut conn = self.conn();
        let err = |e| self.err(e);
        let mut tx = conn.transaction().map_err(err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&INDICATORS_LOCK])
            .map_err(err)?;
        if read_cursor(&mut tx).map_err(err)? >= seq {
            tx.commit().map_err(err)?;
            return Ok(Reseeded::default());
        }
        let followed: HashSet<String> = tx
            .query("SELECT interaction FROM indicator_open", &[])
            .map_err(err)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let (added, dropped) = reseed_plan(pending, &followed);
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        for id in &dropped {
            tx.execute("DELETE FROM indicator_open WHERE interaction = $1", &[id])
                .map_err(err)?;
        }
        for (id, p) in &added {
            let day = day_of(p.created);
            tx.execute(
                "INSERT INTO indicator_days (day, queue, channel, requests) \
                 VALUES ($1, $2, $3, 1) ON CONFLICT (day, queue, channel) DO UPDATE SET \
                 requests = indicator_days.requests + 1",
                &[&day, &p.queue.as_str(), &p.channel.as_str()],
            )
            .map_err(err)?;
            tx.execute(
                "INSERT INTO indicator_open \
                 (interaction, day, queue, channel, created_at, sla_deadline) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (interaction) DO NOTHING",
                &[
                    &id.to_string(),
                    &day,
                    &p.queue.as_str(),
                    &p.channel.as_str(),
                    &n(p.created.0),
                    &n(p.sla_deadline.0),
                ],
            )
            .map_err(err)?;
        }
        write_cursor(&mut tx, seq).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(Reseeded {
            requests_added: added.len() as u64,
            dropped: dropped.len() as u64,
        })
    }

    /// Like [`SqliteStore::indicator_state`](super::super::SqliteStore::indicator_state): one
    /// repeatable-read transaction, so the three reads agree.
    pub fn indicator_state(&self, day: &str) -> Result<IndicatorState, StoreError> {
        let mut conn = self.conn();
        let err = |e| self.err(e);
        let mut tx = conn
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(err)?;
        let cursor = read_cursor(&mut tx).map_err(err)?;
        let days = read_days(&mut tx, day, day).map_err(err)?;
        let rows = tx.query(PENDING_SQL, &[]).map_err(err)?;
        tx.commit().map_err(err)?;
        let pending = rows
            .iter()
            .map(|r| pending_of(r).map_err(|d| self.decode_err("indicator_open", d)))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        Ok(IndicatorState {
            cursor,
            days,
            pending,
        })
    }

    /// Like [`SqliteStore::indicator_days`](super::super::SqliteStore::indicator_days).
    pub fn indicator_days(&self, from: &str, to: &str) -> Result<Vec<IndicatorDay>, StoreError> {
        read_days(&mut **self.conn(), from, to).map_err(|e| self.err(e))
    }

    /// Like [`SqliteStore::conversation`](super::super::SqliteStore::conversation).
    pub fn conversation(
        &self,
        interaction: InteractionId,
    ) -> Result<Vec<ConversationEntry>, StoreError> {
        let rows = journal_rows(
            &mut **self.conn(),
            "SELECT seq, at, payload FROM journal \
             WHERE interaction = $1 AND kind = 'message_added' ORDER BY seq",
            &[&interaction.to_string()],
        )
        .map_err(|e| self.err(e))?;
        conversation_from_rows(&self.target().as_path(), rows)
    }

    /// Like [`SqliteStore::message_interaction`](super::super::SqliteStore::message_interaction).
    pub fn message_interaction(&self, id: &str) -> Result<Option<InteractionId>, StoreError> {
        let found: Option<Option<String>> = self
            .conn()
            .query_opt(
                "SELECT interaction FROM journal WHERE message = $1 LIMIT 1",
                &[&id],
            )
            .map(|r| r.map(|r| r.get(0)))
            .map_err(|e| self.err(e))?;
        interaction_of_message(self.target().as_path(), id, found.flatten())
    }

    /// Like [`SqliteStore::interactions_with_id_prefix`](super::super::SqliteStore::interactions_with_id_prefix).
    pub fn interactions_with_id_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<InteractionId>, StoreError> {
        // COLLATE "C": byte order, as SQLite compares, whatever the database's collation.
        let rows = self
            .conn()
            .query(
                "SELECT DISTINCT interaction FROM journal \
                 WHERE interaction COLLATE \"C\" >= $1 AND interaction COLLATE \"C\" < $2 \
                 AND kind = 'interaction_created'",
                &[&prefix, &format!("{prefix}~")],
            )
            .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .filter_map(|r| r.get::<_, String>(0).parse().ok())
            .collect())
    }

    /// Like [`SqliteStore::interactions_of_contact`](super::super::SqliteStore::interactions_of_contact).
    pub fn interactions_of_contact(
        &self,
        contact: &ContactId,
        limit: usize,
    ) -> Result<Vec<InteractionId>, StoreError> {
        let rows = self
            .conn()
            .query(
                "SELECT interaction FROM journal \
                 WHERE contact = $1 AND kind = 'interaction_created' ORDER BY seq DESC LIMIT $2",
                &[&contact.as_str(), &(limit as i64)],
            )
            .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .filter_map(|r| r.get::<_, String>(0).parse().ok())
            .collect())
    }

    /// Like [`SqliteStore::last_transfer`](super::super::SqliteStore::last_transfer).
    pub fn last_transfer(
        &self,
        interaction: InteractionId,
    ) -> Result<Option<(Timestamp, AgentId, Option<String>)>, StoreError> {
        let rows = journal_rows(
            &mut **self.conn(),
            "SELECT seq, at, payload FROM journal \
             WHERE interaction = $1 AND kind = 'interaction_moved' ORDER BY seq DESC LIMIT $2",
            &[&interaction.to_string(), &(MAX_MOVES_READ as i64)],
        )
        .map_err(|e| self.err(e))?;
        last_transfer_from_rows(&self.target().as_path(), rows)
    }

    /// Like [`SqliteStore::interaction_spec`](super::super::SqliteStore::interaction_spec).
    pub fn interaction_spec(
        &self,
        interaction: InteractionId,
    ) -> Result<Option<(Timestamp, Arc<InteractionSpec>)>, StoreError> {
        let rows = journal_rows(
            &mut **self.conn(),
            "SELECT seq, at, payload FROM journal \
             WHERE interaction = $1 AND kind = 'interaction_created' LIMIT 1",
            &[&interaction.to_string()],
        )
        .map_err(|e| self.err(e))?;
        spec_from_row(&self.target().as_path(), rows.into_iter().next())
    }

    /// Like [`SqliteStore::journal_contacts`](super::super::SqliteStore::journal_contacts).
    pub fn journal_contacts(&self, limit: usize) -> Result<Option<HashSet<ContactId>>, StoreError> {
        let rows = self
            .conn()
            .query(CONTACTS_SQL, &[&(limit.saturating_add(1) as i64)])
            .map_err(|e| self.err(e))?;
        let contacts: HashSet<ContactId> = rows
            .iter()
            .map(|r| ContactId::new(r.get::<_, String>(0)))
            .collect();
        Ok((contacts.len() <= limit).then_some(contacts))
    }

    /// Like [`SqliteStore::contact_history`](super::super::SqliteStore::contact_history).
    pub fn contact_history(
        &self,
        contact: &ContactId,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut conn = self.conn();
        let err = |e| self.err(e);
        let rows = journal_rows(
            &mut **conn,
            "SELECT seq, at, payload FROM journal \
             WHERE contact = $1 AND kind = 'interaction_created' ORDER BY seq DESC LIMIT $2",
            &[&contact.as_str(), &(limit as i64)],
        )
        .map_err(err)?;
        let ends = conn
            .prepare(
                "SELECT seq, at, kind, payload FROM journal WHERE interaction = $1 \
                 AND kind IN ('interaction_completed', 'wrap_up_ended', 'interaction_ended') \
                 ORDER BY seq",
            )
            .map_err(err)?;
        history_from_rows(&self.target().as_path(), rows, |id| {
            Ok(conn
                .query(&ends, &[&id])
                .map_err(err)?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect())
        })
    }
}
