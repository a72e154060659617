//! The public quality indicators ("Services Publics+"): for a day, an ISO week or a calendar
//! month, per queue and channel: requests, average wait before an agent answered, share
//! answered within the announced delay, abandonment rate, satisfaction average and number of
//! answers.
//!
//! They are computed from the durable daily aggregates of the store
//! ([`crate::store::IndicatorDay`]), which [`Aggregator`] keeps up to date from the engine's
//! committed events: never by scanning the journal per request, and unchanged by retention
//! purges and GDPR erasure.
//!
//! Definitions (per row; totals are sums of the counts, then the same ratios):
//! - *requests*: interactions created in the period (an interaction counts in the day, queue
//!   and channel of its creation, whatever happens to it later);
//! - *average wait*: creation to the first acceptance by an agent, over answered interactions;
//! - *share within the announced delay*: answered by the SLA deadline (the queue's
//!   `sla_target_secs` for the channel), over answered plus abandoned ("served"): an
//!   abandonment counts as a miss, as in the supervisors' live statistics; cancelled or
//!   still-open interactions are not in the denominator;
//! - *abandonment rate*: abandoned before an agent answered, over answered plus abandoned;
//! - *satisfaction*: survey answers received in the period for the queue and channel, their
//!   average score (1 to 5).

use std::sync::Arc;

use chrono::{Datelike, Duration as Days, NaiveDate};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::core::{Channel, Event, Timestamp};
use crate::engine::{Clock, Engine};
use crate::store::{IndicatorDay, Store, StoreError};

use super::IndicatorsConfig;

/// The length of a reporting period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// One day.
    Day,
    /// An ISO week, Monday to Sunday.
    Week,
    /// A calendar month.
    Month,
}

impl Period {
    /// Parses `day`, `week` or `month`.
    pub fn parse(text: &str) -> Result<Period, String> {
        match text {
            "day" => Ok(Period::Day),
            "week" => Ok(Period::Week),
            "month" => Ok(Period::Month),
            other => Err(format!(
                "unknown period {other:?}: use period=day, period=week or period=month"
            )),
        }
    }

    /// Its name in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    /// The first and last days of the period holding `date`.
    pub fn range(self, date: NaiveDate) -> (NaiveDate, NaiveDate) {
        match self {
            Period::Day => (date, date),
            Period::Week => {
                let monday = date - Days::days(i64::from(date.weekday().num_days_from_monday()));
                (monday, monday + Days::days(6))
            }
            Period::Month => {
                let first = date.with_day(1).unwrap_or(date);
                let next = if first.month() == 12 {
                    NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
                };
                (first, next.map_or(date, |n| n - Days::days(1)))
            }
        }
    }
}

/// Parses a `YYYY-MM-DD` date.
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        format!("date {text:?} is not a date: write YYYY-MM-DD, for example 2026-03-31")
    })
}

pub use crate::core::AnnouncedDelay;

/// The indicators of one queue and channel, or of a total.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndicatorRow {
    /// The queue (`None` in totals).
    pub queue: Option<String>,
    /// The channel (`None` in the grand total).
    pub channel: Option<String>,
    /// Interactions created.
    pub requests: u64,
    /// Answered by an agent.
    pub answered: u64,
    /// Answered within the announced delay.
    pub answered_within_delay: u64,
    /// Abandoned before an agent answered.
    pub abandoned: u64,
    /// The announced delay in seconds (the queue's SLA target for the channel; in totals, when
    /// every row agrees); `None` when it is announced in working days.
    pub announced_delay_secs: Option<u64>,
    /// The announced delay in working days (the queue's `sla_working_days` for the channel),
    /// when it is announced so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub announced_delay_working_days: Option<u32>,
    /// The average wait before an agent answered, in seconds (`None`: nothing answered).
    pub average_wait_secs: Option<f64>,
    /// Answered within the delay over answered plus abandoned, 0 to 1 (`None`: neither).
    pub within_delay_rate: Option<f64>,
    /// Abandoned over answered plus abandoned, 0 to 1 (`None`: neither).
    pub abandonment_rate: Option<f64>,
    /// The average satisfaction score, 1 to 5 (`None`: no answer).
    pub satisfaction_average: Option<f64>,
    /// Satisfaction answers.
    pub satisfaction_answers: u64,
    #[serde(skip)]
    wait_ms_total: u64,
    #[serde(skip)]
    score_total: u64,
}

impl IndicatorRow {
    fn empty(queue: Option<String>, channel: Option<String>) -> Self {
        IndicatorRow {
            queue,
            channel,
            requests: 0,
            answered: 0,
            answered_within_delay: 0,
            abandoned: 0,
            announced_delay_secs: None,
            announced_delay_working_days: None,
            average_wait_secs: None,
            within_delay_rate: None,
            abandonment_rate: None,
            satisfaction_average: None,
            satisfaction_answers: 0,
            wait_ms_total: 0,
            score_total: 0,
        }
    }

    fn add(&mut self, d: &IndicatorDay) {
        self.requests += d.requests;
        self.answered += d.answered;
        self.answered_within_delay += d.answered_within;
        self.abandoned += d.abandoned;
        self.wait_ms_total += d.wait_ms_total;
        self.satisfaction_answers += d.survey_answers;
        self.score_total += d.survey_score_total;
    }

    fn merge(&mut self, other: &IndicatorRow) {
        self.requests += other.requests;
        self.answered += other.answered;
        self.answered_within_delay += other.answered_within_delay;
        self.abandoned += other.abandoned;
        self.wait_ms_total += other.wait_ms_total;
        self.satisfaction_answers += other.satisfaction_answers;
        self.score_total += other.score_total;
    }

    fn finish(&mut self) {
        let ratio = |num: u64, den: u64| (den > 0).then(|| num as f64 / den as f64);
        let served = self.answered + self.abandoned;
        self.average_wait_secs = ratio(self.wait_ms_total, self.answered).map(|ms| ms / 1000.0);
        self.within_delay_rate = ratio(self.answered_within_delay, served);
        self.abandonment_rate = ratio(self.abandoned, served);
        self.satisfaction_average = ratio(self.score_total, self.satisfaction_answers);
    }
}

/// The indicators of a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The period's length.
    pub period: Period,
    /// Its first day.
    pub from: NaiveDate,
    /// Its last day.
    pub to: NaiveDate,
    /// The time zone days are counted in.
    pub time_zone: String,
    /// One row per queue and channel that had activity, ordered by queue then channel.
    pub rows: Vec<IndicatorRow>,
    /// One row per channel, every queue together.
    pub channels: Vec<IndicatorRow>,
    /// Everything together.
    pub total: IndicatorRow,
}

impl Report {
    /// Builds the report of the period holding `date` from the store's aggregates;
    /// `delays` gives the announced delay of a queue and channel (from the queues' current
    /// configuration).
    pub fn build(
        store: &Store,
        config: &IndicatorsConfig,
        period: Period,
        date: NaiveDate,
        delays: &dyn Fn(&str, &str) -> Option<AnnouncedDelay>,
    ) -> Result<Report, StoreError> {
        let (from, to) = period.range(date);
        let days = store.indicator_days(
            &from.format("%Y-%m-%d").to_string(),
            &to.format("%Y-%m-%d").to_string(),
        )?;
        Ok(Report::from_days(config, period, from, to, &days, delays))
    }

    /// Builds the report from aggregate rows (already limited to the period).
    pub fn from_days(
        config: &IndicatorsConfig,
        period: Period,
        from: NaiveDate,
        to: NaiveDate,
        days: &[IndicatorDay],
        delays: &dyn Fn(&str, &str) -> Option<AnnouncedDelay>,
    ) -> Report {
        let mut rows: std::collections::BTreeMap<(String, usize), IndicatorRow> =
            Default::default();
        for d in days {
            let order = d
                .channel
                .parse::<Channel>()
                .map_or(usize::MAX, Channel::index);
            rows.entry((d.queue.clone(), order))
                .or_insert_with(|| {
                    let mut row =
                        IndicatorRow::empty(Some(d.queue.clone()), Some(d.channel.clone()));
                    match delays(&d.queue, &d.channel) {
                        Some(AnnouncedDelay::Secs(secs)) => row.announced_delay_secs = Some(secs),
                        Some(AnnouncedDelay::WorkingDays(days)) => {
                            row.announced_delay_working_days = Some(days)
                        }
                        None => {}
                    }
                    row
                })
                .add(d);
        }
        let mut channels: std::collections::BTreeMap<usize, IndicatorRow> = Default::default();
        let mut total = IndicatorRow::empty(None, None);
        for ((_, order), row) in &rows {
            let ch = channels.entry(*order).or_insert_with(|| {
                let mut c = IndicatorRow::empty(None, row.channel.clone());
                c.announced_delay_secs = row.announced_delay_secs;
                c.announced_delay_working_days = row.announced_delay_working_days;
                c
            });
            if ch.announced_delay_secs != row.announced_delay_secs
                || ch.announced_delay_working_days != row.announced_delay_working_days
            {
                ch.announced_delay_secs = None;
                ch.announced_delay_working_days = None;
            }
            ch.merge(row);
            total.merge(row);
        }
        let mut rows: Vec<IndicatorRow> = rows.into_values().collect();
        let mut channels: Vec<IndicatorRow> = channels.into_values().collect();
        for r in rows.iter_mut().chain(channels.iter_mut()) {
            r.finish();
        }
        total.finish();
        Report {
            period,
            from,
            to,
            time_zone: config.time_zone.name().to_owned(),
            rows,
            channels,
            total,
        }
    }
}

/// The announced delays of the router's queues, by (queue, channel name).
pub fn announced_delays(
    router: &crate::core::Router,
) -> std::collections::HashMap<(String, String), AnnouncedDelay> {
    let mut out = std::collections::HashMap::new();
    for q in router.queues() {
        for c in Channel::ALL {
            out.insert(
                (q.config.id.to_string(), c.as_str().to_owned()),
                q.config.announced_delay(c),
            );
        }
    }
    out
}

/// How long the aggregator lets committed events accumulate after the first one before folding
/// them in: an interaction's creation and its answer, a few milliseconds apart, then usually
/// fold in the same transaction (and never touch `indicator_open`), and there are fewer
/// transactions. The indicators lag the journal by about this much.
pub const GATHER: std::time::Duration = std::time::Duration::from_millis(50);

/// Keeps the store's daily aggregates up to date from the engine's committed events.
///
/// It resumes after the store's cursor: on start it folds in every journal event committed
/// since (the whole journal, the first time), then follows the engine's subscription; if the
/// subscription falls behind, it reads the missed events back from the journal. Folding is
/// idempotent (events at or before the cursor are skipped), so nothing is counted twice.
#[derive(Debug, Clone)]
pub struct Aggregator {
    applied: Arc<tokio::sync::watch::Sender<u64>>,
    task: Arc<tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Aggregator {
    /// Subscribes to the engine, catches up from the journal and starts following.
    pub async fn start(
        engine: &Engine,
        config: &IndicatorsConfig,
    ) -> Result<Aggregator, StoreError> {
        let mut events = engine.subscribe();
        let store = Arc::clone(engine.store());
        let cfg = config.clone();
        let cursor = catch_up(Arc::clone(&store), cfg.clone()).await?;
        let (tx, _) = tokio::sync::watch::channel(cursor);
        let applied = Arc::new(tx);
        let task_applied = Arc::clone(&applied);
        let task = tokio::spawn(async move {
            // Set when folding failed: the next round reads the missed events from the journal
            // rather than fold later ones past them.
            let mut behind = false;
            loop {
                let mut batch: Vec<(u64, Event)> = Vec::new();
                let mut lagged = false;
                match events.recv().await {
                    Ok(first) => {
                        push_batch(&mut batch, &first);
                        tokio::time::sleep(GATHER).await;
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => lagged = true,
                    Err(broadcast::error::RecvError::Closed) => break,
                }
                // Whatever else is already there goes into the same transaction.
                loop {
                    match events.try_recv() {
                        Ok(more) => push_batch(&mut batch, &more),
                        Err(broadcast::error::TryRecvError::Lagged(_)) => lagged = true,
                        Err(_) => break,
                    }
                }
                let result = if lagged || behind {
                    if lagged {
                        tracing::warn!("indicators fell behind the engine: reading the journal");
                    }
                    catch_up(Arc::clone(&store), cfg.clone()).await
                } else {
                    let s = Arc::clone(&store);
                    let c = cfg.clone();
                    tokio::task::spawn_blocking(move || {
                        s.fold_indicator_events(&batch, &|at| c.day_of(at))
                    })
                    .await
                    .unwrap_or(Err(StoreError::Closed))
                };
                match result {
                    Ok(seq) => {
                        behind = false;
                        task_applied.send_replace(seq);
                    }
                    Err(e) => {
                        behind = true;
                        // The events stay in the journal: the next start folds them in.
                        tracing::error!(error = %e, "indicators not updated yet: retried with the next events, or at the next start");
                    }
                }
            }
        });
        Ok(Aggregator {
            applied,
            task: Arc::new(tokio::sync::Mutex::new(Some(task))),
        })
    }

    /// Waits until the aggregator has stopped (it stops once the engine has, after folding
    /// in every event published) and let go of the store.
    pub async fn finished(&self) {
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }

    /// The journal sequence number of the last event folded in.
    pub fn applied(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Waits until every event committed so far is folded in (call it once the commands whose
    /// effects should show are acknowledged).
    pub async fn sync(&self, store: &Store) -> Result<(), StoreError> {
        let last = store.last_committed_seq()?;
        self.wait_for(last).await;
        Ok(())
    }

    /// Waits until the events up to `seq` are folded in.
    pub async fn wait_for(&self, seq: u64) {
        let mut rx = self.applied.subscribe();
        let _ = rx.wait_for(|applied| *applied >= seq).await;
    }
}

fn push_batch(out: &mut Vec<(u64, Event)>, committed: &crate::engine::Committed) {
    let n = committed.events.len() as u64;
    let first = committed.seq + 1 - n.min(committed.seq + 1);
    for (i, e) in committed.events.iter().enumerate() {
        out.push((first + i as u64, e.clone()));
    }
}

/// Folds every journal event after the store's cursor, in chunks.
async fn catch_up(store: Arc<Store>, config: IndicatorsConfig) -> Result<u64, StoreError> {
    tokio::task::spawn_blocking(move || {
        const CHUNK: usize = 4096;
        let mut cursor = store.indicators_cursor()?;
        let mut chunk: Vec<(u64, Event)> = Vec::with_capacity(CHUNK);
        let day_of = |at: Timestamp| config.day_of(at);
        store.replay(cursor, |seq, event| {
            chunk.push((seq, event));
            if chunk.len() >= CHUNK {
                cursor = store.fold_indicator_events(&chunk, &day_of)?;
                chunk.clear();
            }
            Ok(())
        })?;
        if !chunk.is_empty() {
            cursor = store.fold_indicator_events(&chunk, &day_of)?;
        }
        Ok(cursor)
    })
    .await
    .unwrap_or(Err(StoreError::Closed))
}

/// Today's date in the indicators' time zone on `clock`.
pub fn today(config: &IndicatorsConfig, clock: &dyn Clock) -> NaiveDate {
    config.date_of(clock.now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("date")
    }

    #[test]
    fn periods_cover_the_day_the_iso_week_and_the_calendar_month() {
        assert_eq!(
            Period::Day.range(d(2026, 3, 10)),
            (d(2026, 3, 10), d(2026, 3, 10))
        );
        // 2026-03-10 is a Tuesday.
        assert_eq!(
            Period::Week.range(d(2026, 3, 10)),
            (d(2026, 3, 9), d(2026, 3, 15))
        );
        assert_eq!(
            Period::Week.range(d(2026, 3, 15)),
            (d(2026, 3, 9), d(2026, 3, 15))
        );
        assert_eq!(
            Period::Month.range(d(2024, 2, 10)),
            (d(2024, 2, 1), d(2024, 2, 29))
        );
        assert_eq!(
            Period::Month.range(d(2026, 12, 31)),
            (d(2026, 12, 1), d(2026, 12, 31))
        );
        assert!(Period::parse("year").unwrap_err().contains("period=week"));
        assert!(parse_date("2026-02-30").is_err());
    }

    #[test]
    fn days_follow_the_configured_time_zone() {
        let paris = IndicatorsConfig {
            time_zone: chrono_tz::Europe::Paris,
            ..IndicatorsConfig::default()
        };
        // 2026-03-10 23:30 UTC is already the 11th in Paris (UTC+1 in winter).
        let late = Timestamp(1_773_185_400_000);
        assert_eq!(IndicatorsConfig::default().day_of(late), "2026-03-10");
        assert_eq!(paris.day_of(late), "2026-03-11");
    }
}
