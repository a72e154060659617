//! An agent's own figures for the day (`AgentDesktop.GetMyDay`): offers, answers, handled and
//! transferred interactions, average handling and wrap-up times, kept per agent from committed
//! events by the core's agents' fold ([`crate::core::AgentWorkFold`], definitions in
//! `docs/figures.md`).
//!
//! Work is credited to the day (`[indicators] time_zone`) it happened in. The view starts at the
//! journal's first event of the day, so a restart neither resets nor double-counts the day, and
//! it follows committed events from there (falling behind loses nothing). Only the current and
//! the previous day are kept.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{NaiveDate, TimeZone};

use crate::core::{AgentCounts, AgentId, AgentWorkFold, Event, Timestamp};
use crate::engine::{run_view, Engine, View, ViewBatch, ViewFailed, ViewHandle};
use crate::obs::IndicatorsConfig;

#[derive(Debug, Default)]
struct Days {
    config: IndicatorsConfig,
    fold: AgentWorkFold,
    days: BTreeMap<NaiveDate, HashMap<AgentId, AgentCounts>>,
}

impl Days {
    fn apply(&mut self, event: &Event) {
        let Some((agent, work)) = self.fold.apply(event) else {
            return;
        };
        let day = self.config.date_of(event.at);
        self.days
            .entry(day)
            .or_default()
            .entry(agent)
            .or_default()
            .add(&work);
        while self.days.len() > 2 {
            self.days.pop_first();
        }
    }
}

/// The agents' figures of the day, fed by the engine's committed events.
#[derive(Debug, Clone, Default)]
pub struct AgentDays {
    days: Arc<Mutex<Days>>,
    view: Option<ViewHandle>,
}

struct Follower {
    days: Arc<Mutex<Days>>,
}

impl View for Follower {
    fn name(&self) -> &'static str {
        "agent_days"
    }

    async fn apply(&mut self, batch: ViewBatch) -> Result<(), ViewFailed> {
        let mut days = self.days.lock().unwrap_or_else(|e| e.into_inner());
        for event in &batch.events {
            days.apply(event);
        }
        Ok(())
    }

    async fn rebuild(&mut self, _engine: &Engine, seq: u64) -> Result<u64, ViewFailed> {
        // The journal lost events of the day this view missed: the work they held is not
        // counted; the view goes on with the events it still holds, the work in progress
        // starting again (an interaction accepted in the lost events counts as handled when
        // completed, without a handling time), as a view started now does.
        self.days.lock().unwrap_or_else(|e| e.into_inner()).fold = AgentWorkFold::default();
        tracing::warn!("events purged from the journal before the agents' figures took them");
        Ok(seq)
    }
}

/// The first instant of the day of `now`, in the indicators' time zone.
fn start_of_day(config: &IndicatorsConfig, now: Timestamp) -> Timestamp {
    let date = config.date_of(now);
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    config
        .time_zone
        .from_local_datetime(&midnight)
        .earliest()
        .map(|t| Timestamp(u64::try_from(t.timestamp_millis()).unwrap_or(0)))
        .unwrap_or(now)
}

impl AgentDays {
    /// Starts following the journal from the first event of the day of `now`.
    pub async fn start(engine: &Engine, config: &IndicatorsConfig, now: Timestamp) -> AgentDays {
        let days = Arc::new(Mutex::new(Days {
            config: config.clone(),
            ..Days::default()
        }));
        let from = start_of_day(config, now);
        let after = match engine.store().run(move |s| s.last_seq_before(from)).await {
            Ok(seq) => seq,
            Err(e) => {
                tracing::warn!(error = %e, "agents' figures start from now");
                engine.store().last_committed_seq().unwrap_or(0)
            }
        };
        let view = run_view(
            engine,
            Follower {
                days: Arc::clone(&days),
            },
            after,
        );
        AgentDays {
            days,
            view: Some(view),
        }
    }

    /// Waits until the figures have taken every event committed so far.
    pub async fn sync(&self, engine: &Engine) {
        if let Some(view) = &self.view {
            let _ = view.sync(engine).await;
        }
    }

    /// The agent's counts for the day of `now` (zero on a new day), and that day.
    pub fn today(&self, agent: &AgentId, now: Timestamp) -> (NaiveDate, AgentCounts) {
        let days = self.days.lock().unwrap_or_else(|e| e.into_inner());
        let day = days.config.date_of(now);
        let counts = days
            .days
            .get(&day)
            .and_then(|d| d.get(agent))
            .copied()
            .unwrap_or_default();
        (day, counts)
    }
}
