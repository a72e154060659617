//! The staffing helper: the smallest number of clones of a template agent that meets a
//! service-level target for one queue and channel, in simulation.
//!
//! Each staffing level `n` is simulated with the same replications (same seeds, hence the same
//! customers: common random numbers), so that the service level grows with `n` almost surely
//! and comparisons between levels are sharp. The search doubles `n` from `min_agents` until the
//! target is met, then bisects. It answers with two criteria, for a ladder of replication
//! counts (2, 5, 10, 20, 50, ... up to the requested count, using the first replications):
//! the mean service level meets the target, and the lower end of its 95 % confidence interval
//! does (the cautious answer). Every level simulated is cached and reported.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::error::SimError;
use super::model::{Model, RunOptions};
use super::report::{fmt_est, render};
use super::run::{run_replications, Progress};
use super::scenario::Scenario;
use super::stats::{ratio, Estimate, RepCounts};
use crate::core::{AgentId, Channel, QueueId};

/// What to staff for.
#[derive(Debug, Clone, PartialEq)]
pub struct StaffingRequest {
    /// The queue whose service level must meet the target.
    pub queue: QueueId,
    /// Its channel; by default voice if the queue has voice arrivals, else its only channel
    /// with arrivals.
    pub channel: Option<Channel>,
    /// The service level to reach, between 0 and 1 (answered within the threshold / offered).
    pub target_sl: f64,
    /// The agent to clone, instead of the scenario's `[staffing] template`.
    pub template: Option<AgentId>,
}

/// One staffing level simulated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaffingPoint {
    /// Clones of the template.
    pub agents: u32,
    /// Service level of the queue and channel, over all replications.
    pub service_level: Estimate,
    /// Average speed of answer in seconds.
    pub asa_secs: Option<Estimate>,
    /// Abandoned / offered.
    pub abandonment_rate: Option<Estimate>,
    /// Occupancy of all agents.
    pub occupancy: Option<Estimate>,
}

/// The answer for one number of replications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffingAnswer {
    /// Replications used (the first ones).
    pub replications: u32,
    /// Smallest number of clones whose mean service level meets the target.
    pub agents_mean: Option<u32>,
    /// Smallest number whose 95 % lower confidence bound meets the target.
    pub agents_confident: Option<u32>,
}

/// The result of a staffing search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaffingReport {
    /// The scenario's name.
    pub scenario: String,
    /// The queue.
    pub queue: QueueId,
    /// The channel.
    pub channel: Channel,
    /// The template cloned.
    pub template: AgentId,
    /// The service level aimed at.
    pub target_sl: f64,
    /// Its threshold in seconds.
    pub within_secs: u64,
    /// Seed of replication 0.
    pub seed: u64,
    /// Replications per level.
    pub replications: u32,
    /// Every level simulated, in increasing order.
    pub evaluated: Vec<StaffingPoint>,
    /// The answers, per number of replications.
    pub answers: Vec<StaffingAnswer>,
}

impl StaffingReport {
    /// The answer with every replication (mean criterion).
    pub fn agents(&self) -> Option<u32> {
        self.answers.last().and_then(|a| a.agents_mean)
    }

    /// The report as text.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Staffing: {} / {}, service level {:.1}% within {} s, cloning agent {}",
            self.queue,
            self.channel,
            self.target_sl * 100.0,
            self.within_secs,
            self.template
        );
        let _ = writeln!(
            out,
            "{} replication(s) per level, seeds {}..{} (the same customers at every level)\n",
            self.replications,
            self.seed,
            self.seed
                .wrapping_add(u64::from(self.replications.saturating_sub(1)))
        );
        let mut table = vec![vec![
            "agents".to_owned(),
            "SL".into(),
            "ASA (s)".into(),
            "abandon rate".into(),
            "occupancy (all)".into(),
        ]];
        for p in &self.evaluated {
            table.push(vec![
                p.agents.to_string(),
                fmt_est(Some(&p.service_level), 1, true),
                fmt_est(p.asa_secs.as_ref(), 1, false),
                fmt_est(p.abandonment_rate.as_ref(), 1, true),
                fmt_est(p.occupancy.as_ref(), 1, true),
            ]);
        }
        render(&mut out, &table, 0);
        let _ = writeln!(out);
        let mut table = vec![vec![
            "replications".to_owned(),
            "agents (mean SL meets target)".into(),
            "agents (95% lower bound meets target)".into(),
        ]];
        let show = |n: Option<u32>| n.map_or("not reached".to_owned(), |n| n.to_string());
        for a in &self.answers {
            table.push(vec![
                a.replications.to_string(),
                show(a.agents_mean),
                show(a.agents_confident),
            ]);
        }
        render(&mut out, &table, 0);
        out
    }
}

/// Per staffing level, per replication: (service level, ASA, abandonment, occupancy).
type Sample = (Option<f64>, Option<f64>, Option<f64>, Option<f64>);

struct Search<'a> {
    scenario: &'a Scenario,
    options: &'a RunOptions,
    template: AgentId,
    shift: (
        Option<super::scenario::ClockTime>,
        Option<super::scenario::ClockTime>,
    ),
    queue: QueueId,
    channel: Channel,
    progress: &'a dyn Progress,
    cache: BTreeMap<u32, Vec<Sample>>,
}

impl Search<'_> {
    fn samples(&mut self, n: u32) -> Result<&[Sample], SimError> {
        if !self.cache.contains_key(&n) {
            let scenario = self
                .scenario
                .with_staff(&self.template, n, self.shift.0, self.shift.1);
            let model = Model::compile(&scenario, self.options)?;
            let row = model
                .rows
                .iter()
                .position(|r| r.queue == self.queue && r.channel == self.channel)
                .ok_or_else(|| {
                    SimError::Staffing(format!("no arrivals for {}/{}", self.queue, self.channel))
                })?;
            self.progress.begin(
                &format!("{n} agents"),
                model.horizon_secs() * u64::from(self.options.replications),
            );
            let reps = run_replications(
                &model,
                self.options.seed,
                self.options.replications,
                self.options.jobs,
                self.progress,
            )?;
            let samples = reps.iter().map(|c| sample(c, row)).collect();
            self.cache.insert(n, samples);
        }
        Ok(self.cache.get(&n).map_or(&[][..], Vec::as_slice))
    }

    fn meets(
        &mut self,
        n: u32,
        reps: usize,
        cautious: bool,
        target: f64,
    ) -> Result<bool, SimError> {
        let values: Vec<f64> = self
            .samples(n)?
            .iter()
            .take(reps)
            .filter_map(|s| s.0)
            .collect();
        Ok(Estimate::from_samples(&values)
            .is_some_and(|e| if cautious { e.lower() } else { e.mean } >= target))
    }

    /// The smallest `n` in `[lo, max]` meeting the criterion: steps of 1, 2, 4, ... above `lo`
    /// until it is met, then bisection.
    fn smallest(
        &mut self,
        lo: u32,
        max: u32,
        reps: usize,
        cautious: bool,
        target: f64,
    ) -> Result<Option<u32>, SimError> {
        if self.meets(lo, reps, cautious, target)? {
            return Ok(Some(lo));
        }
        let (mut fail, mut hit, mut step) = (lo, lo, 1u32);
        loop {
            if hit >= max {
                return Ok(None);
            }
            hit = fail.saturating_add(step).min(max);
            if self.meets(hit, reps, cautious, target)? {
                break;
            }
            fail = hit;
            step = step.saturating_mul(2);
        }
        while hit - fail > 1 {
            let mid = fail + (hit - fail) / 2;
            if self.meets(mid, reps, cautious, target)? {
                hit = mid;
            } else {
                fail = mid;
            }
        }
        Ok(Some(hit))
    }
}

fn sample(c: &RepCounts, row: usize) -> Sample {
    let r = &c.rows[row];
    let busy = c.groups.iter().map(|g| g.busy_ms).sum();
    let logged = c.groups.iter().map(|g| g.logged_ms).sum();
    (
        r.outcome.service_level(),
        r.outcome.average_wait_secs(),
        r.outcome.abandonment_rate(),
        ratio(busy, logged),
    )
}

/// Searches the smallest number of clones of the template that meets the target.
pub fn staff_for(
    scenario: &Scenario,
    request: &StaffingRequest,
    options: &RunOptions,
    progress: &dyn Progress,
) -> Result<StaffingReport, SimError> {
    if !(request.target_sl > 0.0 && request.target_sl <= 1.0) {
        return Err(SimError::Staffing(format!(
            "the target service level must be in (0, 1], not {}",
            request.target_sl
        )));
    }
    let staffing = scenario.staffing.clone();
    let template = request
        .template
        .clone()
        .or_else(|| staffing.as_ref().map(|s| s.template.clone()))
        .ok_or_else(|| {
            SimError::Staffing(
                "which agent should be cloned? add [staffing] template = \"AGENT\" to the \
                 scenario, or pass --template"
                    .into(),
            )
        })?;
    if scenario.agent(&template).is_none() {
        return Err(SimError::Staffing(format!(
            "template {template} is not an agent of the scenario"
        )));
    }
    let queue = scenario
        .queue(&request.queue)
        .ok_or_else(|| SimError::Staffing(format!("unknown queue {}", request.queue)))?;
    let with_arrivals: Vec<Channel> = {
        let mut v: Vec<Channel> = scenario
            .arrivals
            .iter()
            .filter(|a| a.queue == request.queue)
            .map(|a| a.channel)
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let channel = match request.channel {
        Some(c) => c,
        None if with_arrivals.contains(&Channel::Voice) => Channel::Voice,
        None if with_arrivals.len() == 1 => with_arrivals[0],
        None if with_arrivals.is_empty() => {
            return Err(SimError::Staffing(format!(
                "queue {} has no arrivals in the scenario",
                request.queue
            )))
        }
        None => {
            return Err(SimError::Staffing(format!(
                "queue {} has arrivals on several channels: choose one with --channel",
                request.queue
            )))
        }
    };
    let within_secs = options
        .within_secs
        .unwrap_or(queue.sla_target_secs.get(channel));
    let (min_agents, max_agents) = staffing
        .as_ref()
        .map_or((1, 1000), |s| (s.min_agents, s.max_agents));
    if min_agents > max_agents {
        return Err(SimError::Staffing(format!(
            "min_agents {min_agents} is above max_agents {max_agents}"
        )));
    }
    let mut search = Search {
        scenario,
        options,
        template: template.clone(),
        shift: staffing.as_ref().map_or((None, None), |s| (s.start, s.end)),
        queue: request.queue.clone(),
        channel,
        progress,
        cache: BTreeMap::new(),
    };
    let total = options.replications;
    let mut ladder: Vec<u32> = [2u32, 5, 10, 20, 50, 100, 200, 500, 1000]
        .into_iter()
        .filter(|&r| r < total)
        .collect();
    ladder.push(total);
    let mut answers = Vec::new();
    // The full count first: it decides which levels are simulated; the smaller counts then
    // mostly reuse them.
    for &reps in ladder.iter().rev() {
        let mean = search.smallest(
            min_agents,
            max_agents,
            reps as usize,
            false,
            request.target_sl,
        )?;
        let confident = match mean {
            Some(lo) => search.smallest(lo, max_agents, reps as usize, true, request.target_sl)?,
            None => None,
        };
        answers.push(StaffingAnswer {
            replications: reps,
            agents_mean: mean,
            agents_confident: confident,
        });
    }
    answers.reverse();
    let evaluated = search
        .cache
        .iter()
        .map(|(&agents, s)| {
            let pick = |f: fn(&Sample) -> Option<f64>| {
                let v: Vec<f64> = s.iter().filter_map(f).collect();
                Estimate::from_samples(&v)
            };
            StaffingPoint {
                agents,
                service_level: pick(|s| s.0).unwrap_or(Estimate::ZERO),
                asa_secs: pick(|s| s.1),
                abandonment_rate: pick(|s| s.2),
                occupancy: pick(|s| s.3),
            }
        })
        .collect();
    Ok(StaffingReport {
        scenario: scenario.name.clone(),
        queue: request.queue.clone(),
        channel,
        template,
        target_sl: request.target_sl,
        within_secs,
        seed: options.seed,
        replications: total,
        evaluated,
        answers,
    })
}
