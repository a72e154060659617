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
//! Definitions: the core's ([`crate::core::Counts`], `docs/figures.md`), per row; totals are
//! sums of the counts, then the same figures. An interaction counts in the day, queue and
//! channel of its creation, whatever happens to it later; the *share within the announced
//! delay* is the service level (answered by the SLA deadline over answered plus abandoned);
//! *satisfaction* is the survey answers received in the period for the queue and channel, their
//! average score (1 to 5).

use chrono::{Datelike, Duration as Days, NaiveDate};
use serde::Serialize;

use crate::core::{ratio, Channel, Counts, Event};
use crate::engine::{run_view, Clock, Engine, View, ViewBatch, ViewFailed, ViewHandle};
use crate::store::{IndicatorDay, Store, StoreError, StoreHandle};

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
    /// The counts the figures come from.
    #[serde(skip)]
    counts: Counts,
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
            counts: Counts::default(),
            score_total: 0,
        }
    }

    fn add(&mut self, d: &IndicatorDay) {
        self.counts.merge(&d.counts());
        self.satisfaction_answers += d.survey_answers;
        self.score_total += d.survey_score_total;
    }

    fn merge(&mut self, other: &IndicatorRow) {
        self.counts.merge(&other.counts);
        self.satisfaction_answers += other.satisfaction_answers;
        self.score_total += other.score_total;
    }

    /// The figures, from the core's definitions ([`Counts`]).
    fn finish(&mut self) {
        let c = &self.counts;
        self.requests = c.requests;
        self.answered = c.answered;
        self.answered_within_delay = c.answered_within;
        self.abandoned = c.abandoned;
        self.average_wait_secs = c.average_wait_secs();
        self.within_delay_rate = c.service_level();
        self.abandonment_rate = c.abandonment_rate();
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
/// A view of committed events ([`crate::engine::View`]) resuming after the store's cursor: on
/// start it folds in every journal event committed since (the whole journal, the first time),
/// then follows the engine; the view runner reads missed events back from the journal, so none
/// is skipped. Folding is idempotent (events at or before the cursor are skipped), so nothing
/// is counted twice.
#[derive(Debug, Clone)]
pub struct Aggregator {
    view: ViewHandle,
}

/// The aggregation, as a view of committed events.
struct Folder {
    engine: Engine,
    store: StoreHandle,
    config: IndicatorsConfig,
}

/// The aggregates' name as a view, and the retention hold it keeps at its cursor.
const VIEW: &str = "indicators";

impl View for Folder {
    fn name(&self) -> &'static str {
        VIEW
    }

    fn gather(&self) -> std::time::Duration {
        GATHER
    }

    async fn apply(&mut self, batch: ViewBatch) -> Result<(), ViewFailed> {
        let config = self.config.clone();
        let last = batch.last_seq();
        self.store
            .run(move |store| {
                let events: Vec<(u64, Event)> =
                    batch.numbered().map(|(seq, e)| (seq, e.clone())).collect();
                store.fold_indicator_events(&events, &|at| config.day_of(at))
            })
            .await?;
        // Retention keeps what the aggregates have not folded in (the cursor just written).
        self.engine.hold_retention(VIEW, last);
        Ok(())
    }

    async fn rebuild(&mut self, engine: &Engine, _seq: u64) -> Result<u64, ViewFailed> {
        // The journal lost events not folded in yet (retention purged them): the router tells
        // which interactions still wait for an answer; the aggregates follow those from here.
        let (pending, seq) = crate::engine::router_pending(engine)
            .await
            .map_err(|e| ViewFailed(e.to_string()))?;
        let config = self.config.clone();
        let done = self
            .store
            .run(move |s| s.reseed_indicators(&pending, seq, &|at| config.day_of(at)))
            .await?;
        tracing::warn!(
            requests_added = done.requests_added,
            outcomes_lost = done.dropped,
            "events purged from the journal before the indicators folded them in: \
             rebuilt from the router"
        );
        self.engine.hold_retention(VIEW, seq);
        Ok(seq)
    }
}

impl Aggregator {
    /// Starts the aggregation; returns once every event committed before the call is folded
    /// in.
    pub async fn start(
        engine: &Engine,
        config: &IndicatorsConfig,
    ) -> Result<Aggregator, StoreError> {
        let store = engine.store().clone();
        let cursor = store.run(|s| s.indicators_cursor()).await?;
        engine.hold_retention(VIEW, cursor);
        let view = run_view(
            engine,
            Folder {
                engine: engine.clone(),
                store: store.clone(),
                config: config.clone(),
            },
            cursor,
        );
        let aggregator = Aggregator { view };
        aggregator.sync(&store).await?;
        Ok(aggregator)
    }

    /// Waits until the aggregator has stopped (it stops once the engine has, after folding
    /// in every event published) and let go of the store.
    pub async fn finished(&self) {
        self.view.finished().await;
    }

    /// The journal sequence number of the last event folded in.
    pub fn applied(&self) -> u64 {
        self.view.applied()
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
        self.view.wait_for(seq).await;
    }
}

/// Today's date in the indicators' time zone on `clock`.
pub fn today(config: &IndicatorsConfig, clock: &dyn Clock) -> NaiveDate {
    config.date_of(clock.now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Timestamp;

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
