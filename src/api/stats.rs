//! Real-time statistics per queue for supervisors: the day's counts (answered, answered within
//! the announced delay, abandoned) kept from committed events by the core's outcome fold
//! ([`crate::core::OutcomeFold`]), and the live picture (waiting, oldest wait, agents by state)
//! read from the router when an update is due.
//!
//! The definitions are the public indicators' (`docs/figures.md`): an interaction counts in the
//! day (`[indicators] time_zone`) and queue of its creation, so a queue's counts of today are
//! the sum over channels of today's indicator rows. The statistics start from the durable
//! indicator aggregates and their pending interactions, as of the aggregates' cursor, and follow
//! the journal from there as a view of committed events: a restart neither resets nor
//! double-counts the day, and falling behind loses nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;

use crate::core::{AgentState, Channel, Counts, OutcomeFold, QueueId, Router, Timestamp};
use crate::engine::{router_pending, run_view, Engine, View, ViewBatch, ViewFailed, ViewHandle};
use crate::obs::IndicatorsConfig;

use super::proto as pb;

/// One queue's counts for the current day (interactions created that day).
pub type DayCounts = Counts;

#[derive(Debug, Default)]
struct Counters {
    /// Where days start and end.
    config: IndicatorsConfig,
    fold: OutcomeFold,
    /// Counts per creation day, queue and channel: the latest two days seen.
    days: BTreeMap<NaiveDate, HashMap<(QueueId, Channel), Counts>>,
    /// Whether the day's counts come from the durable indicator aggregates (so does a rebuild).
    from_aggregates: bool,
    /// The time of the latest event taken (or of the start): the day a rebuild loads.
    latest: Timestamp,
}

impl Counters {
    fn apply(&mut self, event: &crate::core::Event) {
        self.latest = self.latest.max(event.at);
        let Some(outcome) = self.fold.apply(event) else {
            return;
        };
        let credit = outcome.credit();
        let day = self.config.date_of(credit.created);
        self.days
            .entry(day)
            .or_default()
            .entry((credit.queue.clone(), credit.channel))
            .or_default()
            .add(&outcome);
        while self.days.len() > 2 {
            self.days.pop_first();
        }
    }
}

/// The day's counters, fed by the engine's committed events.
#[derive(Debug, Clone, Default)]
pub struct LiveStats {
    counters: Arc<Mutex<Counters>>,
    view: Option<ViewHandle>,
}

/// The statistics, as a view of committed events.
struct Follower {
    counters: Arc<Mutex<Counters>>,
}

impl View for Follower {
    fn name(&self) -> &'static str {
        "live_stats"
    }

    async fn apply(&mut self, batch: ViewBatch) -> Result<(), ViewFailed> {
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        for event in &batch.events {
            counters.apply(event);
        }
        Ok(())
    }

    async fn rebuild(&mut self, engine: &Engine, seq: u64) -> Result<u64, ViewFailed> {
        // The journal lost events this view needed (up to `seq`): start again as a fresh view
        // does, from the durable aggregates when the journal holds every event after them,
        // else from the router's pending interactions (the day's counts so far are kept).
        let (from_aggregates, config, latest) = {
            let c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
            (c.from_aggregates, c.config.clone(), c.latest)
        };
        if from_aggregates {
            let day = config.day_of(latest);
            let state = engine.store().run(move |s| s.indicator_state(&day)).await?;
            if state.cursor >= seq {
                let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
                c.days.clear();
                c.load_today(&state, latest);
                return Ok(state.cursor);
            }
        }
        let (pending, seq) = router_pending(engine)
            .await
            .map_err(|e| ViewFailed(e.to_string()))?;
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        counters.fold = OutcomeFold::resume(pending);
        Ok(seq)
    }
}

impl Counters {
    /// Takes the day of `now`'s counts and the pending interactions from the aggregates.
    fn load_today(&mut self, state: &crate::store::IndicatorState, now: Timestamp) {
        let date = self.config.date_of(now);
        let today = self.days.entry(date).or_default();
        for row in &state.days {
            let Ok(channel) = row.channel.parse::<Channel>() else {
                continue;
            };
            today
                .entry((QueueId::from(row.queue.clone()), channel))
                .or_default()
                .merge(&row.counts());
        }
        self.fold = OutcomeFold::resume(state.pending.clone());
        self.from_aggregates = true;
        self.latest = self.latest.max(now);
    }
}

impl LiveStats {
    /// Starts counting the engine's committed events from now on, days in UTC, from zero.
    /// Interactions open at start are counted when they are answered or abandoned.
    pub async fn start(engine: &Engine) -> LiveStats {
        LiveStats::start_with(engine, &IndicatorsConfig::default(), None).await
    }

    /// Like [`LiveStats::start`], with the indicators' days; with `now`, the day's counts and
    /// the pending interactions are taken from the durable indicator aggregates (as of their
    /// cursor, the journal's later events being folded in on start).
    pub async fn start_with(
        engine: &Engine,
        config: &IndicatorsConfig,
        now: Option<Timestamp>,
    ) -> LiveStats {
        let counters = Arc::new(Mutex::new(Counters {
            config: config.clone(),
            ..Counters::default()
        }));
        let mut after = None;
        if let Some(now) = now {
            let day = config.day_of(now);
            let state = engine.store().run(move |s| s.indicator_state(&day)).await;
            match state {
                Ok(state) => {
                    counters
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .load_today(&state, now);
                    after = Some(state.cursor);
                }
                Err(e) => tracing::warn!(error = %e, "statistics start from zero today"),
            }
        }
        let after = match after {
            Some(seq) => seq,
            None => match router_pending(engine).await {
                Ok((pending, seq)) => {
                    counters.lock().unwrap_or_else(|e| e.into_inner()).fold =
                        OutcomeFold::resume(pending);
                    seq
                }
                Err(_) => 0,
            },
        };
        let view = run_view(
            engine,
            Follower {
                counters: Arc::clone(&counters),
            },
            after,
        );
        LiveStats {
            counters,
            view: Some(view),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until the statistics have taken every event committed so far.
    pub async fn sync(&self, engine: &Engine) {
        if let Some(view) = &self.view {
            let _ = view.sync(engine).await;
        }
    }

    /// Today's counts for a queue per channel, for the channels that had any, in channel order.
    pub fn today_by_channel(&self, queue: &QueueId, now: Timestamp) -> Vec<(Channel, DayCounts)> {
        let counters = self.lock();
        let day = counters.config.date_of(now);
        let Some(days) = counters.days.get(&day) else {
            return Vec::new();
        };
        Channel::ALL
            .into_iter()
            .filter_map(|c| days.get(&(queue.clone(), c)).map(|counts| (c, *counts)))
            .collect()
    }
}

/// The live part of a queue's statistics, computed on the router.
#[derive(Debug, Clone)]
pub struct LiveQueue {
    /// The queue.
    pub queue: QueueId,
    /// Waiting per channel.
    pub waiting: [u32; 4],
    /// The longest current wait, in milliseconds.
    pub oldest_wait_ms: u64,
    /// Offered or held by agents.
    pub in_progress: u32,
    /// Eligible agents by state: available with room, busy (available but full), paused,
    /// wrap-up, offline.
    pub agents: [u32; 5],
}

/// Computes the live picture of the given queues (all when empty) on the router.
pub fn live_queues(r: &Router, only: &[QueueId], now: Timestamp) -> Vec<LiveQueue> {
    let agents = r.agents();
    let mut out = Vec::new();
    for q in r.queues() {
        if !only.is_empty() && !only.contains(&q.config.id) {
            continue;
        }
        let mut live = LiveQueue {
            queue: q.config.id.clone(),
            waiting: [0; 4],
            oldest_wait_ms: 0,
            in_progress: 0,
            agents: [0; 5],
        };
        for c in Channel::ALL {
            live.waiting[c.index()] = q.waiting.get(c);
        }
        for id in r.waiting_in_queue(&q.config.id) {
            if let Some(v) = r.interaction(&id) {
                live.oldest_wait_ms = live
                    .oldest_wait_ms
                    .max(now.0.saturating_sub(v.queue_entered_at.0));
            }
        }
        let waiting_total: u32 = live.waiting.iter().sum();
        live.in_progress = u32::try_from(q.open)
            .unwrap_or(u32::MAX)
            .saturating_sub(waiting_total);
        for a in &agents {
            let eligible = q.config.requirements.iter().all(|req| {
                a.config
                    .skills
                    .get(&req.skill)
                    .is_some_and(|l| *l >= req.min_level)
            });
            if !eligible {
                continue;
            }
            let slot = match &a.state {
                AgentState::Available => {
                    let room = q
                        .config
                        .channels
                        .iter()
                        .any(|c| a.load.get(*c) < a.config.capacity.get(*c));
                    if room {
                        0
                    } else {
                        1
                    }
                }
                AgentState::Paused { .. } => 2,
                AgentState::WrapUp { .. } => 3,
                AgentState::Offline => 4,
            };
            live.agents[slot] += 1;
        }
        out.push(live);
    }
    out
}

/// The protobuf statistics of a queue, from its live picture and today's counts per channel.
pub fn queue_stats_pb(live: &LiveQueue, by_channel: &[(Channel, DayCounts)]) -> pb::QueueStats {
    let n = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    let mut today = Counts::default();
    for (_, counts) in by_channel {
        today.merge(counts);
    }
    pb::QueueStats {
        queue: live.queue.to_string(),
        waiting: live.waiting.iter().sum(),
        oldest_wait_ms: live.oldest_wait_ms,
        in_progress: live.in_progress,
        agents_available: live.agents[0],
        agents_busy: live.agents[1],
        agents_paused: live.agents[2],
        agents_wrap_up: live.agents[3],
        agents_offline: live.agents[4],
        answered_today: n(today.answered),
        answered_within_target_today: n(today.answered_within),
        abandoned_today: n(today.abandoned),
        service_level_today: today.service_level(),
        abandonment_rate_today: today.abandonment_rate(),
        average_wait_secs_today: today.average_wait_secs(),
        today_by_channel: by_channel
            .iter()
            .map(|(channel, c)| pb::ChannelDayStats {
                channel: super::convert::channel_pb(*channel),
                requests_today: n(c.requests),
                answered_today: n(c.answered),
                answered_within_target_today: n(c.answered_within),
                abandoned_today: n(c.abandoned),
                service_level_today: c.service_level(),
                abandonment_rate_today: c.abandonment_rate(),
                average_wait_secs_today: c.average_wait_secs(),
            })
            .collect(),
        waiting_by_channel: Some(pb::ChannelCounts {
            voice: live.waiting[0],
            email: live.waiting[1],
            sms: live.waiting[2],
            chat: live.waiting[3],
        }),
    }
}
