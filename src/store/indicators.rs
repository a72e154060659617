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

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::core::{Channel, Counts, Event, OutcomeFold, Pending, QueueId, Timestamp};

use super::db::SqliteStore;
use super::error::{SqlContext, StoreError};
use super::row::RowRead;

/// The interactions pending in the aggregates, each read by [`pending_of`].
pub(crate) const PENDING_SQL: &str =
    "SELECT interaction, queue, channel, created_at, sla_deadline FROM indicator_open";

/// A pending interaction from its row ([`PENDING_SQL`]), on either backend; `None` for a row
/// whose id or channel this build does not know.
pub(crate) fn pending_of<R: RowRead>(
    r: &R,
) -> Result<Option<(crate::core::InteractionId, Pending)>, R::Error> {
    let id: String = r.cell(0)?;
    let queue: String = r.cell(1)?;
    let channel: String = r.cell(2)?;
    let created: i64 = r.cell(3)?;
    let deadline: i64 = r.cell(4)?;
    let (Ok(id), Ok(channel)) = (id.parse(), channel.parse()) else {
        return Ok(None);
    };
    Ok(Some((
        id,
        Pending {
            queue: QueueId::from(queue),
            channel,
            created: Timestamp(created.max(0) as u64),
            sla_deadline: Timestamp(deadline.max(0) as u64),
        },
    )))
}

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
pub(crate) const CURSOR_KEY: &str = "indicators_seq";

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
    /// Abandoned within the announced delay (schema version 8 on; 0 before).
    pub abandoned_within: u64,
    /// Cancelled by their creator, or deflected, before an answer (schema version 8 on).
    pub cancelled: u64,
    /// Satisfaction answers given that day for the queue and channel.
    pub survey_answers: u64,
    /// The sum of their scores (1 to 5).
    pub survey_score_total: u64,
}

/// The aggregates of one day and the interactions not yet settled, as of one journal sequence
/// number: a view seeded from it and fed the journal's events after `cursor` is exactly where
/// it would be after folding the whole journal.
#[derive(Debug, Clone, Default)]
pub struct IndicatorState {
    /// The last journal event folded in.
    pub cursor: u64,
    /// The day's rows.
    pub days: Vec<IndicatorDay>,
    /// The interactions created and not yet answered or ended.
    pub pending: Vec<(crate::core::InteractionId, Pending)>,
}

impl IndicatorDay {
    /// The row's counts, for the core's figures ([`Counts`]).
    pub fn counts(&self) -> Counts {
        Counts {
            requests: self.requests,
            answered: self.answered,
            answered_within: self.answered_within,
            abandoned: self.abandoned,
            abandoned_within: self.abandoned_within,
            cancelled: self.cancelled,
            wait_ms_total: self.wait_ms_total,
        }
    }
}

/// What [`SqliteStore::reseed_indicators`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reseeded {
    /// Pending interactions created in the purged events, counted as requests now.
    pub requests_added: u64,
    /// Interactions followed that were settled in the purged events (outcome unknown).
    pub dropped: u64,
}

/// Which pending interactions of the router the aggregates do not follow yet, and which
/// followed interactions (ids) the router no longer has pending: the backend-neutral part of
/// a reseed.
#[allow(clippy::type_complexity)]
pub(crate) fn reseed_plan<'a>(
    pending: &'a [(crate::core::InteractionId, Pending)],
    followed: &std::collections::HashSet<String>,
) -> (Vec<&'a (crate::core::InteractionId, Pending)>, Vec<String>) {
    let now: std::collections::HashSet<String> =
        pending.iter().map(|(id, _)| id.to_string()).collect();
    let added = pending
        .iter()
        .filter(|(id, _)| !followed.contains(&id.to_string()))
        .collect();
    let dropped = followed
        .iter()
        .filter(|id| !now.contains(*id))
        .cloned()
        .collect();
    (added, dropped)
}

impl SqliteStore {
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
        let mut batch = Batch::default();
        for (seq, event) in events {
            if *seq <= cursor {
                continue;
            }
            batch.fold(&tx, event, day_of).at(&path)?;
            cursor = *seq;
        }
        if cursor != start {
            batch.write(&tx, day_of).at(&path)?;
            tx.prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut insert| insert.execute(params![CURSOR_KEY, cursor.to_string()]))
            .at(&path)?;
        }
        tx.commit().at(&path)?;
        Ok(cursor)
    }

    /// Puts the aggregates back on their feet after the journal events following their cursor
    /// were purged before being folded in (retention ran while the aggregation was behind):
    /// `pending` are the interactions not yet answered nor ended in the router as of journal
    /// sequence number `seq`. A pending interaction the aggregates did not know (created in the
    /// purged events) is counted as a request on its creation day and followed from now on;
    /// one they followed that is no longer pending was settled in the purged events, with an
    /// outcome nobody can know any more: it is dropped. The cursor moves to `seq`, in the same
    /// transaction. Nothing changes when the cursor is already at or past `seq`.
    pub fn reseed_indicators(
        &self,
        pending: &[(crate::core::InteractionId, Pending)],
        seq: u64,
        day_of: &dyn Fn(crate::core::Timestamp) -> String,
    ) -> Result<Reseeded, StoreError> {
        let path = self.path().to_owned();
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(&path)?;
        if read_cursor(&tx, &path)? >= seq {
            tx.commit().at(&path)?;
            return Ok(Reseeded::default());
        }
        let followed: std::collections::HashSet<String> = tx
            .prepare_cached("SELECT interaction FROM indicator_open")
            .and_then(|mut stmt| {
                stmt.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<_, _>>()
            })
            .at(&path)?;
        let (added, dropped) = reseed_plan(pending, &followed);
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        for id in &dropped {
            tx.prepare_cached("DELETE FROM indicator_open WHERE interaction = ?1")
                .and_then(|mut delete| delete.execute(params![id]))
                .at(&path)?;
        }
        for (id, p) in &added {
            let day = day_of(p.created);
            add_to_day(
                &tx,
                (&day, p.queue.as_str(), p.channel.as_str()),
                &[("requests", 1)],
            )
            .and_then(|()| {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO indicator_open \
                     (interaction, day, queue, channel, created_at, sla_deadline) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    id.to_string(),
                    day,
                    p.queue.as_str(),
                    p.channel.as_str(),
                    n(p.created.0),
                    n(p.sla_deadline.0)
                ])
            })
            .at(&path)?;
        }
        tx.prepare_cached(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .and_then(|mut insert| insert.execute(params![CURSOR_KEY, seq.to_string()]))
        .at(&path)?;
        tx.commit().at(&path)?;
        Ok(Reseeded {
            requests_added: added.len() as u64,
            dropped: dropped.len() as u64,
        })
    }

    /// The cursor, the rows of `day` (`YYYY-MM-DD`) and the pending interactions, read in one
    /// transaction (consistent with each other).
    pub fn indicator_state(&self, day: &str) -> Result<IndicatorState, StoreError> {
        let path = self.path().to_owned();
        let mut conn = self.conn();
        let tx = conn.transaction().at(&path)?;
        let cursor = read_cursor(&tx, &path)?;
        let days = read_days(&tx, day, day).at(&path)?;
        let mut stmt = tx.prepare_cached(PENDING_SQL).at(&path)?;
        let rows = stmt
            .query_map([], |r| pending_of(r))
            .at(&path)?
            .collect::<Result<Vec<_>, _>>()
            .at(&path)?;
        drop(stmt);
        tx.finish().at(&path)?;
        let pending = rows.into_iter().flatten().collect();
        Ok(IndicatorState {
            cursor,
            days,
            pending,
        })
    }

    /// The aggregate rows of the days `from ..= to` (`YYYY-MM-DD`), ordered by day, queue and
    /// channel.
    pub fn indicator_days(&self, from: &str, to: &str) -> Result<Vec<IndicatorDay>, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        read_days(&conn, from, to).at(&path)
    }
}

fn read_days(conn: &Connection, from: &str, to: &str) -> rusqlite::Result<Vec<IndicatorDay>> {
    let mut stmt = conn.prepare_cached(
        "SELECT day, queue, channel, requests, answered, answered_within, abandoned, \
         wait_ms_total, survey_answers, survey_score_total, abandoned_within, cancelled \
         FROM indicator_days WHERE day >= ?1 AND day <= ?2 ORDER BY day, queue, channel",
    )?;
    let rows = stmt.query_map(params![from, to], |r| {
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
            abandoned_within: n(10)?,
            cancelled: n(11)?,
        })
    })?;
    rows.collect()
}

fn read_cursor(conn: &Connection, path: &std::path::Path) -> Result<u64, StoreError> {
    let value: Option<String> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")
        .and_then(|mut select| {
            select
                .query_row(params![CURSOR_KEY], |r| r.get(0))
                .optional()
        })
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

/// What one call of [`SqliteStore::fold_indicator_events`] adds: the counts per (day, queue,
/// channel), from the core's [`OutcomeFold`] (whose pending set lives in `indicator_open`
/// between calls, loaded lazily). Written once at the end (one statement per row touched,
/// rather than several per event), with the same result as applying the events one by one.
#[derive(Default)]
pub(crate) struct Batch {
    pub(crate) days: BTreeMap<(String, String, String), Counts>,
    /// Interactions created in this batch, or loaded from `indicator_open`, and still pending.
    pub(crate) fold: OutcomeFold,
}

impl Batch {
    fn fold(
        &mut self,
        tx: &Transaction<'_>,
        event: &Event,
        day_of: &dyn Fn(crate::core::Timestamp) -> String,
    ) -> rusqlite::Result<()> {
        self.fold_with(event, day_of, |id| take_open(tx, id))
    }

    /// Folds one event, loading a pending interaction with `take` (which removes it from
    /// `indicator_open`): the backend-neutral part of [`Batch::fold`].
    pub(crate) fn fold_with<E>(
        &mut self,
        event: &Event,
        day_of: &dyn Fn(crate::core::Timestamp) -> String,
        mut take: impl FnMut(&crate::core::InteractionId) -> Result<Option<Pending>, E>,
    ) -> Result<(), E> {
        let mut failed = None;
        let outcome = self.fold.apply_with(event, |id| match take(id) {
            Ok(row) => row,
            Err(e) => {
                failed = Some(e);
                None
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        if let Some(outcome) = outcome {
            let credit = outcome.credit();
            self.days
                .entry((
                    day_of(credit.created),
                    credit.queue.as_str().to_owned(),
                    credit.channel.as_str().to_owned(),
                ))
                .or_default()
                .add(&outcome);
        }
        Ok(())
    }

    /// Adds the sums to their rows (created at zero first) and records the interactions still
    /// waiting for an answer.
    fn write(
        self,
        tx: &Transaction<'_>,
        day_of: &dyn Fn(crate::core::Timestamp) -> String,
    ) -> rusqlite::Result<()> {
        let mut add = tx.prepare_cached(
            "INSERT INTO indicator_days \
             (day, queue, channel, requests, answered, answered_within, abandoned, wait_ms_total, \
             abandoned_within, cancelled) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
             ON CONFLICT (day, queue, channel) DO UPDATE SET \
             requests = requests + excluded.requests, \
             answered = answered + excluded.answered, \
             answered_within = answered_within + excluded.answered_within, \
             abandoned = abandoned + excluded.abandoned, \
             wait_ms_total = wait_ms_total + excluded.wait_ms_total, \
             abandoned_within = abandoned_within + excluded.abandoned_within, \
             cancelled = cancelled + excluded.cancelled",
        )?;
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        for ((day, queue, channel), d) in &self.days {
            add.execute(params![
                day,
                queue,
                channel,
                n(d.requests),
                n(d.answered),
                n(d.answered_within),
                n(d.abandoned),
                n(d.wait_ms_total),
                n(d.abandoned_within),
                n(d.cancelled)
            ])?;
        }
        let mut open = tx.prepare_cached(
            "INSERT OR REPLACE INTO indicator_open \
             (interaction, day, queue, channel, created_at, sla_deadline) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (id, p) in self.fold.pending() {
            open.execute(params![
                id.to_string(),
                day_of(p.created),
                p.queue.as_str(),
                p.channel.as_str(),
                n(p.created.0),
                n(p.sla_deadline.0)
            ])?;
        }
        Ok(())
    }
}

/// Removes an interaction from the not-yet-answered table and returns it.
fn take_open(
    tx: &Transaction<'_>,
    interaction: &crate::core::InteractionId,
) -> rusqlite::Result<Option<Pending>> {
    let id = interaction.to_string();
    let row: Option<(String, String, i64, i64)> = tx
        .prepare_cached(
            "SELECT queue, channel, created_at, sla_deadline FROM indicator_open \
             WHERE interaction = ?1",
        )?
        .query_row(params![id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let Some((queue, channel, created, deadline)) = row else {
        return Ok(None);
    };
    tx.prepare_cached("DELETE FROM indicator_open WHERE interaction = ?1")?
        .execute(params![id])?;
    // A channel this version does not know cannot have been written by it: forget the row.
    let Ok(channel) = channel.parse::<Channel>() else {
        return Ok(None);
    };
    Ok(Some(Pending {
        queue: QueueId::from(queue),
        channel,
        created: Timestamp(created.max(0) as u64),
        sla_deadline: Timestamp(deadline.max(0) as u64),
    }))
}

impl SqliteStore {
    /// The last journal sequence number committed (0 for an empty journal): with
    /// [`SqliteStore::indicators_cursor`], tells whether the aggregates have caught up.
    pub fn last_committed_seq(&self) -> Result<u64, StoreError> {
        let conn = self.conn();
        super::db::last_seq(&conn, self.path())
    }

    /// The sequence number of the last journal row committed before `at` (0 when none is):
    /// a view that must see every event from `at` on starts after it. Found by bisection on
    /// the sequence numbers (events are journaled in time order), so it reads a few dozen rows
    /// whatever the journal's length.
    pub fn last_seq_before(&self, at: Timestamp) -> Result<u64, StoreError> {
        use super::error::SqlContext;
        let path = self.path().to_owned();
        let conn = self.conn();
        let mut first_from = conn
            .prepare_cached("SELECT seq, at FROM journal WHERE seq >= ?1 ORDER BY seq LIMIT 1")
            .at(&path)?;
        let mut row_from = |seq: i64| -> Result<Option<(i64, i64)>, StoreError> {
            use rusqlite::OptionalExtension;
            first_from
                .query_row([seq], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .at(&path)
        };
        let at = i64::try_from(at.0).unwrap_or(i64::MAX);
        // The answer is in [lo, hi]: rows up to lo are before `at`, the row after hi is not.
        let (mut lo, mut hi) = (0i64, super::db::last_seq(&conn, &path)? as i64);
        while lo < hi {
            let mid = lo + (hi - lo + 1) / 2;
            match row_from(mid)? {
                Some((seq, t)) if t < at => lo = seq.max(mid),
                _ => hi = mid - 1,
            }
        }
        Ok(lo.max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::core::{
        AgentId, Channel, EndReason, EventKind, InteractionId, InteractionSpec, Timestamp,
    };
    use crate::store::StoreConfig;

    /// Interactions created, answered (in time or late), abandoned, cancelled and completed,
    /// over two days and two channels, as journal (seq, event) pairs.
    fn events() -> Vec<(u64, Event)> {
        let mut out = Vec::new();
        let mut push = |at: u64, kind: EventKind| {
            let seq = out.len() as u64 + 1;
            out.push((
                seq,
                Event {
                    at: Timestamp(at),
                    kind,
                },
            ));
        };
        let agent = AgentId::new("amelie");
        let ids: Vec<InteractionId> = (0..6).map(|_| InteractionId::generate()).collect();
        for (n, id) in ids.iter().enumerate() {
            let channel = if n % 2 == 0 {
                Channel::Chat
            } else {
                Channel::Email
            };
            let spec = Arc::new(InteractionSpec::new(*id, channel, "general"));
            // Three interactions on day 1, three on day 2 (days are 100 s long here).
            let at = if n < 3 {
                10 * n as u64
            } else {
                100_000 + n as u64
            };
            push(
                at,
                EventKind::InteractionCreated {
                    spec,
                    priority: 0,
                    sla_deadline: Timestamp(at + 5_000),
                },
            );
        }
        for (n, at) in [(0, 1_000), (1, 9_000), (3, 100_500), (5, 110_000)] {
            push(
                at,
                EventKind::OfferAccepted {
                    interaction: ids[n],
                    agent: agent.clone(),
                },
            );
        }
        push(
            100_600,
            EventKind::InteractionEnded {
                interaction: ids[2],
                reason: EndReason::Abandoned,
            },
        );
        push(
            100_700,
            EventKind::InteractionEnded {
                interaction: ids[4],
                reason: EndReason::Cancelled,
            },
        );
        push(
            100_800,
            EventKind::InteractionCompleted {
                interaction: ids[0],
                agent,
                wrap_up_code: None,
                notes: None,
                wrap_up_until: None,
            },
        );
        out
    }

    fn day_of(at: Timestamp) -> String {
        format!("2026-01-{:02}", 1 + at.0 / 100_000)
    }

    fn rows_after(chunks: &[&[(u64, Event)]]) -> (Vec<IndicatorDay>, i64) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = SqliteStore::open(&StoreConfig::new(dir.path())).expect("store");
        for chunk in chunks {
            store.fold_indicator_events(chunk, &day_of).expect("folded");
        }
        let open: i64 = store
            .conn()
            .query_row("SELECT count(*) FROM indicator_open", [], |r| r.get(0))
            .expect("open rows");
        (
            store
                .indicator_days("2026-01-01", "2026-01-31")
                .expect("rows"),
            open,
        )
    }

    /// Folding events in one call, one by one, or in uneven chunks (and again, overlapping)
    /// gives the same rows.
    #[test]
    fn the_rows_do_not_depend_on_how_events_are_batched() {
        let all = events();
        let one_call = rows_after(&[&all]);
        let singles: Vec<&[(u64, Event)]> = all.chunks(1).collect();
        assert_eq!(rows_after(&singles), one_call);
        assert_eq!(rows_after(&[&all[..4], &all[2..9], &all[7..]]), one_call);
        let (rows, open) = one_call;
        // Interaction 2 abandoned, 4 cancelled, the others answered: nothing left open.
        assert_eq!(open, 0);
        let requests: u64 = rows.iter().map(|r| r.requests).sum();
        let answered: u64 = rows.iter().map(|r| r.answered).sum();
        let within: u64 = rows.iter().map(|r| r.answered_within).sum();
        let abandoned: u64 = rows.iter().map(|r| r.abandoned).sum();
        assert_eq!((requests, answered, within, abandoned), (6, 4, 2, 1));
        assert_eq!(rows.len(), 4, "{rows:?}");
    }
}
