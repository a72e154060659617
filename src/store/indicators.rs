//! Durable daily aggregates for the public quality indicators: one row per (day, queue, channel)
//! with the counts and sums the indicators are computed from, maintained incrementally from
//! committed journal events (see `crate::obs::indicators`), plus the small table of interactions
//! not yet answered or ended that the aggregation needs to attribute a later answer.
//!
//! The rows hold no personal data: retention purges and GDPR erasure leave them alone, so
//! published figures do not change when the journal is purged. A cursor in `meta`
//! (`indicators_seq`) names the last journal event folded in, in the same transaction as the
//! rows it changed: after a restart, aggregation resumes exactly after it.
//!
//! Attribution: an interaction counts in the day (in the configured time zone), queue and
//! channel of its creation; its first acceptance by an agent, or its abandonment, is added to
//! that same row, whenever it happens.

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::core::{EndReason, Event, EventKind};

use super::db::Store;
use super::error::{SqlContext, StoreError};

/// The SQL of schema version 5 (indicators and surveys).
pub(crate) const V5_SQL: &str = "
CREATE TABLE indicator_days (
    day TEXT NOT NULL,
    queue TEXT NOT NULL,
    channel TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    answered INTEGER NOT NULL DEFAULT 0,
    answered_within INTEGER NOT NULL DEFAULT 0,
    abandoned INTEGER NOT NULL DEFAULT 0,
    wait_ms_total INTEGER NOT NULL DEFAULT 0,
    survey_answers INTEGER NOT NULL DEFAULT 0,
    survey_score_total INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, queue, channel)
);
CREATE TABLE indicator_open (
    interaction TEXT PRIMARY KEY,
    day TEXT NOT NULL,
    queue TEXT NOT NULL,
    channel TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    sla_deadline INTEGER NOT NULL
);
CREATE TABLE survey_answers (
    interaction TEXT PRIMARY KEY,
    contact TEXT,
    agent TEXT,
    queue TEXT NOT NULL,
    channel TEXT NOT NULL,
    score INTEGER NOT NULL,
    comment TEXT,
    at INTEGER NOT NULL
);
CREATE INDEX survey_answers_contact ON survey_answers (contact) WHERE contact IS NOT NULL;
CREATE TABLE survey_sent (
    contact TEXT NOT NULL,
    interaction TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (contact, interaction)
);
CREATE TABLE survey_opt_out (
    contact TEXT PRIMARY KEY,
    at INTEGER NOT NULL
);
";

/// The `meta` key of the aggregation cursor.
const CURSOR_KEY: &str = "indicators_seq";

/// One (day, queue, channel) row of the daily aggregates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndicatorDay {
    /// The day, `YYYY-MM-DD` in the indicators' time zone.
    pub day: String,
    /// The queue the interactions were created in.
    pub queue: String,
    /// The channel (`voice`, `email`, `sms`, `chat`).
    pub channel: String,
    /// Interactions created.
    pub requests: u64,
    /// Of those, answered by an agent (first acceptance).
    pub answered: u64,
    /// Of those answered, answered by their SLA deadline (the announced delay).
    pub answered_within: u64,
    /// Abandoned by the contact before an agent answered.
    pub abandoned: u64,
    /// The sum of the waits before an agent answered, in milliseconds.
    pub wait_ms_total: u64,
    /// Satisfaction answers given that day for the queue and channel.
    pub survey_answers: u64,
    /// The sum of their scores (1 to 5).
    pub survey_score_total: u64,
}

impl Store {
    /// The journal sequence number of the last event folded into the aggregates (0: none).
    pub fn indicators_cursor(&self) -> Result<u64, StoreError> {
        let conn = self.conn();
        read_cursor(&conn, self.path())
    }

    /// Folds committed events (with their journal sequence numbers, in order) into the daily
    /// aggregates, in one transaction with the cursor; events at or before the cursor are
    /// skipped, so handing the same events twice counts them once. `day_of` names the day of a
    /// time (`YYYY-MM-DD`). Returns the cursor after.
    pub fn fold_indicator_events(
        &self,
        events: &[(u64, Event)],
        day_of: &dyn Fn(crate::core::Timestamp) -> String,
    ) -> Result<u64, StoreError> {
        let path = self.path().to_owned();
        let mut conn = self.conn();
        // Immediate: the write lock is taken first, so that a commit of the journal in between
        // cannot make this transaction's read stale (SQLITE_BUSY_SNAPSHOT).
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(&path)?;
        let mut cursor = read_cursor(&tx, &path)?;
        let start = cursor;
        for (seq, event) in events {
            if *seq <= cursor {
                continue;
            }
            fold(&tx, event, day_of).at(&path)?;
            cursor = *seq;
        }
        if cursor != start {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![CURSOR_KEY, cursor.to_string()],
            )
            .at(&path)?;
        }
        tx.commit().at(&path)?;
        Ok(cursor)
    }

    /// The aggregate rows of the days `from ..= to` (`YYYY-MM-DD`), ordered by day, queue and
    /// channel.
    pub fn indicator_days(&self, from: &str, to: &str) -> Result<Vec<IndicatorDay>, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT day, queue, channel, requests, answered, answered_within, abandoned, \
                 wait_ms_total, survey_answers, survey_score_total FROM indicator_days \
                 WHERE day >= ?1 AND day <= ?2 ORDER BY day, queue, channel",
            )
            .at(&path)?;
        let rows = stmt
            .query_map(params![from, to], |r| {
                let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
                Ok(IndicatorDay {
                    day: r.get(0)?,
                    queue: r.get(1)?,
                    channel: r.get(2)?,
                    requests: n(3)?,
                    answered: n(4)?,
                    answered_within: n(5)?,
                    abandoned: n(6)?,
                    wait_ms_total: n(7)?,
                    survey_answers: n(8)?,
                    survey_score_total: n(9)?,
                })
            })
            .at(&path)?;
        rows.collect::<Result<Vec<_>, _>>().at(&path)
    }
}

fn read_cursor(conn: &Connection, path: &std::path::Path) -> Result<u64, StoreError> {
    let value: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            params![CURSOR_KEY],
            |r| r.get(0),
        )
        .optional()
        .at(path)?;
    Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// Adds `deltas` to a (day, queue, channel) row, creating it at zero first.
pub(crate) fn add_to_day(
    tx: &Connection,
    key: (&str, &str, &str),
    column_deltas: &[(&str, i64)],
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO indicator_days (day, queue, channel) VALUES (?1, ?2, ?3) \
         ON CONFLICT (day, queue, channel) DO NOTHING",
    )?
    .execute(params![key.0, key.1, key.2])?;
    for (column, delta) in column_deltas {
        // Column names come from this module's constants only, never from input.
        let sql = format!(
            "UPDATE indicator_days SET {column} = {column} + ?4 \
             WHERE day = ?1 AND queue = ?2 AND channel = ?3"
        );
        tx.prepare_cached(&sql)?
            .execute(params![key.0, key.1, key.2, delta])?;
    }
    Ok(())
}

fn fold(
    tx: &Transaction<'_>,
    event: &Event,
    day_of: &dyn Fn(crate::core::Timestamp) -> String,
) -> rusqlite::Result<()> {
    match &event.kind {
        EventKind::InteractionCreated {
            spec, sla_deadline, ..
        } => {
            let day = day_of(event.at);
            let channel = spec.channel.as_str();
            add_to_day(tx, (&day, spec.queue.as_str(), channel), &[("requests", 1)])?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO indicator_open \
                 (interaction, day, queue, channel, created_at, sla_deadline) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                spec.id.to_string(),
                day,
                spec.queue.as_str(),
                channel,
                event.at.0 as i64,
                sla_deadline.0.min(i64::MAX as u64) as i64,
            ])?;
        }
        EventKind::OfferAccepted { interaction, .. } => {
            if let Some((day, queue, channel, created, deadline)) = take_open(tx, interaction)? {
                let wait = (event.at.0 as i64).saturating_sub(created).max(0);
                let within = i64::from(event.at.0 as i64 <= deadline);
                add_to_day(
                    tx,
                    (&day, &queue, &channel),
                    &[
                        ("answered", 1),
                        ("answered_within", within),
                        ("wait_ms_total", wait),
                    ],
                )?;
            }
        }
        EventKind::InteractionEnded {
            interaction,
            reason,
        } => {
            if let Some((day, queue, channel, _, _)) = take_open(tx, interaction)? {
                if *reason == EndReason::Abandoned {
                    add_to_day(tx, (&day, &queue, &channel), &[("abandoned", 1)])?;
                }
            }
        }
        // Completed without a recorded acceptance cannot happen; drop the row if it does.
        EventKind::InteractionCompleted { interaction, .. } => {
            take_open(tx, interaction)?;
        }
        _ => {}
    }
    Ok(())
}

type OpenRow = (String, String, String, i64, i64);

/// Removes an interaction from the not-yet-answered table and returns its row.
fn take_open(
    tx: &Transaction<'_>,
    interaction: &crate::core::InteractionId,
) -> rusqlite::Result<Option<OpenRow>> {
    let id = interaction.to_string();
    let row = tx
        .prepare_cached(
            "SELECT day, queue, channel, created_at, sla_deadline FROM indicator_open \
             WHERE interaction = ?1",
        )?
        .query_row(params![id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    if row.is_some() {
        tx.prepare_cached("DELETE FROM indicator_open WHERE interaction = ?1")?
            .execute(params![id])?;
    }
    Ok(row)
}

impl Store {
    /// The last journal sequence number committed (0 for an empty journal): with
    /// [`Store::indicators_cursor`], tells whether the aggregates have caught up.
    pub fn last_committed_seq(&self) -> Result<u64, StoreError> {
        let conn = self.conn();
        super::db::last_seq(&conn, self.path())
    }
}
