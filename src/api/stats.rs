//! Real-time statistics per queue for supervisors: counters of the day kept incrementally from
//! committed events (answered, answered within the SLA target, abandoned), and the live picture
//! (waiting, oldest wait, agents by state) read from the router when an update is due.
//!
//! The day is the indicators' day (`[indicators] time_zone`). A restart does not reset the day's
//! counters: they start from the day's durable indicator aggregates
//! ([`crate::store::Store::indicator_days`]), which count an interaction in the queue it was
//! created in (the live counters then go on counting in the queue that answered it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::core::{
    AgentState, Channel, EndReason, EventKind, InteractionId, InteractionPhase, QueueId, Router,
    Timestamp,
};
use crate::engine::Engine;
use crate::obs::IndicatorsConfig;

use super::proto as pb;

/// One queue's counters for the current day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayCounts {
    /// Offers accepted.
    pub answered: u32,
    /// Offers accepted before the interaction's SLA deadline.
    pub answered_within_target: u32,
    /// Interactions abandoned while open.
    pub abandoned: u32,
}

#[derive(Debug, Default)]
struct Counters {
    /// The day the counts are for, in the indicators' time zone.
    day: Option<chrono::NaiveDate>,
    /// Where days start and end.
    config: IndicatorsConfig,
    queues: HashMap<QueueId, DayCounts>,
    /// Open interactions: their queue and SLA deadline, until answered or ended.
    open: HashMap<InteractionId, (QueueId, Timestamp)>,
}

impl Counters {
    fn roll(&mut self, at: Timestamp) {
        let day = Some(self.config.date_of(at));
        if day != self.day {
            self.day = day;
            self.queues.clear();
        }
    }

    fn apply(&mut self, kind: &EventKind, at: Timestamp) {
        self.roll(at);
        match kind {
            EventKind::InteractionCreated {
                spec, sla_deadline, ..
            } => {
                self.open
                    .insert(spec.id, (spec.queue.clone(), *sla_deadline));
            }
            EventKind::InteractionMoved {
                interaction, queue, ..
            } => {
                if let Some(entry) = self.open.get_mut(interaction) {
                    entry.0 = queue.clone();
                }
            }
            EventKind::OfferAccepted { interaction, .. } => {
                // Counted once: a transferred interaction answered again is not a new answer.
                if let Some((queue, deadline)) = self.open.remove(interaction) {
                    let counts = self.queues.entry(queue).or_default();
                    counts.answered += 1;
                    if at <= deadline {
                        counts.answered_within_target += 1;
                    }
                }
            }
            EventKind::InteractionEnded {
                interaction,
                reason,
            } => {
                if let Some((queue, _)) = self.open.remove(interaction) {
                    if *reason == EndReason::Abandoned {
                        self.queues.entry(queue).or_default().abandoned += 1;
                    }
                }
            }
            _ => {}
        }
    }
}

/// The day's counters, fed by the engine's committed events.
#[derive(Debug, Clone, Default)]
pub struct LiveStats {
    counters: Arc<Mutex<Counters>>,
}

impl LiveStats {
    /// Starts counting the engine's committed events from now on, days in UTC, from zero.
    /// Interactions open at start are counted when they are answered or abandoned.
    pub async fn start(engine: &Engine) -> LiveStats {
        LiveStats::start_with(engine, &IndicatorsConfig::default(), None).await
    }

    /// Like [`LiveStats::start`], with the indicators' days, and the day's counters taken from
    /// the durable aggregates of `now`'s day (start the indicators'
    /// [`Aggregator`](crate::obs::indicators::Aggregator) first, so that they have caught up).
    pub async fn start_with(
        engine: &Engine,
        config: &IndicatorsConfig,
        now: Option<Timestamp>,
    ) -> LiveStats {
        let stats = LiveStats::default();
        stats.lock().config = config.clone();
        if let Some(now) = now {
            let store = std::sync::Arc::clone(engine.store());
            let day = config.day_of(now);
            let rows = tokio::task::spawn_blocking(move || store.indicator_days(&day, &day)).await;
            match rows {
                Ok(Ok(rows)) => {
                    let mut counters = stats.lock();
                    counters.roll(now);
                    for row in rows {
                        let c = counters.queues.entry(QueueId::from(row.queue)).or_default();
                        let n = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
                        c.answered = c.answered.saturating_add(n(row.answered));
                        c.answered_within_target = c
                            .answered_within_target
                            .saturating_add(n(row.answered_within));
                        c.abandoned = c.abandoned.saturating_add(n(row.abandoned));
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "statistics start from zero today"),
                Err(_) => tracing::warn!("statistics start from zero today"),
            }
        }
        let mut events = engine.subscribe();
        if let Ok(open) = engine
            .read(|r| {
                r.interactions()
                    .into_iter()
                    .filter(|v| {
                        matches!(
                            v.phase,
                            InteractionPhase::Waiting | InteractionPhase::Offered { .. }
                        )
                    })
                    .map(|v| (v.spec.id, (v.queue, v.sla_deadline)))
                    .collect::<Vec<_>>()
            })
            .await
        {
            stats.lock().open.extend(open);
        }
        let task_stats = stats.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(batch) => {
                        let mut counters = task_stats.lock();
                        for event in batch.events.iter() {
                            counters.apply(&event.kind, event.at);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "statistics fell behind: some events not counted");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        stats
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Today's counts for a queue (zero on a new day).
    pub fn today(&self, queue: &QueueId, now: Timestamp) -> DayCounts {
        let counters = self.lock();
        if counters.day != Some(counters.config.date_of(now)) {
            return DayCounts::default();
        }
        counters.queues.get(queue).copied().unwrap_or_default()
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

/// The protobuf statistics of a queue.
pub fn queue_stats_pb(live: &LiveQueue, today: DayCounts) -> pb::QueueStats {
    let served = today.answered + today.abandoned;
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
        answered_today: today.answered,
        answered_within_target_today: today.answered_within_target,
        abandoned_today: today.abandoned,
        service_level_today: if served == 0 {
            1.0
        } else {
            f64::from(today.answered_within_target) / f64::from(served)
        },
        waiting_by_channel: Some(pb::ChannelCounts {
            voice: live.waiting[0],
            email: live.waiting[1],
            sms: live.waiting[2],
            chat: live.waiting[3],
        }),
    }
}
