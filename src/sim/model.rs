//! A scenario checked and compiled for running: every agent clone with its shift, every arrival
//! stream with its rate profile and samplers, the statistics rows, in milliseconds.
//!
//! Compiling once lets the replications share an immutable [`Model`] across threads.

use std::collections::BTreeMap;

use super::dist::Dist;
use super::error::SimError;
use super::scenario::{Arrival, ClockTime, Scenario};
use crate::config::Config;
use crate::core::{AgentConfig, AgentId, Channel, Command, InteractionSpec, QueueId, Requirement};

/// How a run is asked for: what the command line may override in the scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Seed of replication 0; replication `i` uses `seed + i`.
    pub seed: u64,
    /// Independent replications.
    pub replications: u32,
    /// Seconds after the start whose statistics are discarded.
    pub warm_up_secs: u64,
    /// Service-level threshold in seconds for every queue and channel, instead of each queue's
    /// SLA target.
    pub within_secs: Option<u64>,
    /// Threads running replications at once (results do not depend on it).
    pub jobs: usize,
}

impl RunOptions {
    /// The scenario's own settings, on every available core.
    pub fn from_scenario(scenario: &Scenario) -> Self {
        RunOptions {
            seed: scenario.seed,
            replications: scenario.replications,
            warm_up_secs: scenario.warm_up_secs,
            within_secs: None,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// One simulated person: a clone of a template agent with one shift, or a recorded agent with
/// its recorded logins, pauses and logouts.
#[derive(Debug, Clone)]
pub(crate) struct AgentPlan {
    pub(crate) id: AgentId,
    pub(crate) group: u32,
    /// What it does when, in time order. Without a final [`Step::Leave`] it stays until
    /// everything is resolved.
    pub(crate) steps: Vec<(u64, Step)>,
}

/// A change of an agent's presence that the simulated world makes at a given time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Logs in (or, if still finishing work after leaving, becomes available again).
    Login,
    /// Stops taking work, finishes what it holds, then logs out.
    Leave,
    /// Pauses with this reason (a break recorded in the journal).
    Pause(String),
    /// Comes back from such a pause.
    Resume,
}

/// One interaction of a recorded day, as the replay creates it again.
#[derive(Debug, Clone)]
pub(crate) struct ReplayedArrival {
    /// Creation time, in milliseconds since the epoch.
    pub(crate) at_ms: u64,
    /// Index of its statistics row.
    pub(crate) row: u32,
    /// What is created (the id is replaced by the simulation's own).
    pub(crate) spec: InteractionSpec,
    /// Handle time (acceptance to completion).
    pub(crate) handle_ms: u64,
    /// Delay between the offer and the acceptance.
    pub(crate) answer_ms: u64,
    /// Whether and when (after creation) the contact leaves if still waiting.
    pub(crate) leaves: Leaves,
}

/// How a replayed contact leaves the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leaves {
    /// It waits as long as it takes.
    Never,
    /// It abandons after this many milliseconds (its recorded patience).
    Abandons(u64),
    /// Its creator cancels it after this many milliseconds (as recorded).
    Cancelled(u64),
}

/// One arrival stream, compiled.
#[derive(Debug, Clone)]
pub(crate) struct StreamPlan {
    pub(crate) queue: QueueId,
    pub(crate) channel: Channel,
    /// Index of its statistics row.
    pub(crate) row: u32,
    /// `(from_ms, rate per ms)`, sorted, the first starting at the horizon's start.
    pub(crate) periods: Vec<(f64, f64)>,
    pub(crate) handle: Dist,
    pub(crate) patience: Option<Dist>,
    pub(crate) requirements: Vec<Requirement>,
    pub(crate) priority: Option<u32>,
}

/// One statistics row: a queue and a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) queue: QueueId,
    pub(crate) channel: Channel,
    /// Answered (or abandoned) within this many seconds counts for the service level.
    pub(crate) target_secs: u64,
}

/// A scenario ready to run: immutable, shared by every replication.
#[derive(Debug, Clone)]
pub struct Model {
    pub(crate) name: String,
    pub(crate) seed_commands: Vec<Command>,
    pub(crate) agents: Vec<AgentPlan>,
    /// Template ids, in the scenario's order: the agent groups of the report.
    pub(crate) groups: Vec<AgentId>,
    pub(crate) streams: Vec<StreamPlan>,
    /// Recorded arrivals replayed instead of (or besides) the Poisson streams, in time order.
    pub(crate) replayed: Vec<ReplayedArrival>,
    pub(crate) rows: Vec<Row>,
    pub(crate) start: ClockTime,
    pub(crate) end: ClockTime,
    pub(crate) measure_from_ms: u64,
    /// A replay stops here, where its journal ends, instead of running until everything open
    /// is resolved.
    pub(crate) stop_ms: Option<u64>,
    pub(crate) answer_delay: Dist,
    pub(crate) warm_up_secs: u64,
}

impl Model {
    /// Checks the scenario and compiles it. The queues and agents go through the same
    /// validation as `guichet check-config`.
    pub fn compile(scenario: &Scenario, options: &RunOptions) -> Result<Model, SimError> {
        if scenario.config.is_some() {
            return Err(SimError::invalid(
                "config",
                "the configuration file is not merged yet: load the scenario with Scenario::load \
                 or call Scenario::resolve",
            ));
        }
        let start = scenario.start;
        let end = scenario.end;
        if end <= start {
            return Err(SimError::invalid(
                "end",
                format!("{end} is not after start {start}"),
            ));
        }
        let horizon = end.secs() - start.secs();
        if options.warm_up_secs >= horizon {
            return Err(SimError::invalid(
                "warm_up_secs",
                format!(
                    "{}s leaves nothing to measure in a {horizon}s horizon",
                    options.warm_up_secs
                ),
            ));
        }
        if options.replications == 0 {
            return Err(SimError::invalid(
                "replications",
                "at least one replication is needed",
            ));
        }
        let answer_delay = scenario.answer_delay.build("answer_delay")?;

        // Agents: clones of templates, one shift each.
        let groups: Vec<AgentId> = scenario.agents.iter().map(|a| a.id.clone()).collect();
        for (i, st) in scenario.staff.iter().enumerate() {
            if scenario.agent(&st.agent).is_none() {
                return Err(SimError::invalid(
                    format!("staff[{i}]"),
                    format!("unknown agent {} (list it under [[agents]])", st.agent),
                ));
            }
            let (s, e) = (st.start.unwrap_or(start), st.end.unwrap_or(end));
            if e <= s {
                return Err(SimError::invalid(
                    format!("staff[{i}] ({})", st.agent),
                    format!("the shift ends ({e}) before it starts ({s})"),
                ));
            }
            if s >= end {
                return Err(SimError::invalid(
                    format!("staff[{i}] ({})", st.agent),
                    format!("the shift starts at {s}, after the scenario's end {end}"),
                ));
            }
        }
        let mut agents = Vec::new();
        let mut configs: Vec<AgentConfig> = Vec::new();
        for (g, template) in scenario.agents.iter().enumerate() {
            let shifts: Vec<(ClockTime, ClockTime, u32)> = {
                let listed: Vec<_> = scenario
                    .staff
                    .iter()
                    .filter(|st| st.agent == template.id)
                    .map(|st| (st.start.unwrap_or(start), st.end.unwrap_or(end), st.count))
                    .collect();
                if listed.is_empty() {
                    vec![(start, end, 1)]
                } else {
                    listed
                }
            };
            let total: u32 = shifts.iter().map(|s| s.2).sum();
            let mut k = 0u32;
            for (s, e, count) in shifts {
                for _ in 0..count {
                    k += 1;
                    let mut config = template.clone();
                    if total > 1 {
                        config.id = AgentId::new(format!("{}-{k}", template.id));
                        config.name = format!("{} {k}", template.name);
                    }
                    let mut steps = vec![(s.max(start).millis(), Step::Login)];
                    if e < end {
                        steps.push((e.millis(), Step::Leave));
                    }
                    agents.push(AgentPlan {
                        id: config.id.clone(),
                        group: g as u32,
                        steps,
                    });
                    configs.push(config);
                }
            }
        }
        let config = Config {
            queues: scenario.queues.clone(),
            agents: configs,
            ..Config::default()
        };
        config.validate(std::path::Path::new("scenario"))?;
        let seed_commands = config.seed_commands();

        // Arrival streams and their statistics rows (queue order, then channel order).
        let mut row_of: BTreeMap<(usize, Channel), u32> = BTreeMap::new();
        let mut streams = Vec::new();
        for (i, a) in scenario.arrivals.iter().enumerate() {
            let what = format!("arrivals[{i}] ({}/{})", a.queue, a.channel);
            let Some(q) = scenario.queues.iter().position(|q| q.id == a.queue) else {
                return Err(SimError::invalid(
                    what,
                    format!("unknown queue {}", a.queue),
                ));
            };
            if !scenario.queues[q].channels.contains(&a.channel) {
                return Err(SimError::invalid(
                    what,
                    format!("queue {} does not take {}", a.queue, a.channel),
                ));
            }
            row_of.insert((q, a.channel), 0);
            streams.push(compile_stream(a, &what, start, end)?);
        }
        let mut rows = Vec::new();
        for (n, (&(q, channel), row)) in row_of.iter_mut().enumerate() {
            *row = n as u32;
            let queue = &scenario.queues[q];
            rows.push(Row {
                queue: queue.id.clone(),
                channel,
                target_secs: options
                    .within_secs
                    .unwrap_or(queue.sla_target_secs.get(channel)),
            });
        }
        for s in &mut streams {
            let q = scenario
                .queues
                .iter()
                .position(|q| q.id == s.queue)
                .unwrap_or_default();
            s.row = row_of.get(&(q, s.channel)).copied().unwrap_or_default();
        }

        Ok(Model {
            name: scenario.name.clone(),
            seed_commands,
            agents,
            groups,
            streams,
            replayed: Vec::new(),
            rows,
            start,
            end,
            measure_from_ms: start.millis() + options.warm_up_secs * 1000,
            stop_ms: None,
            answer_delay,
            warm_up_secs: options.warm_up_secs,
        })
    }

    /// How many simulated agents (clones) the model has.
    pub fn agent_count(&self) -> usize {
        self.agents.len()
    }

    /// The expected number of arrivals in one replication (over the whole horizon).
    pub fn expected_arrivals(&self) -> f64 {
        let end = self.end.millis() as f64;
        self.replayed.len() as f64
            + self
                .streams
                .iter()
                .map(|s| {
                    s.periods
                        .iter()
                        .enumerate()
                        .map(|(i, &(from, rate))| {
                            let until = s.periods.get(i + 1).map_or(end, |p| p.0);
                            rate * (until - from)
                        })
                        .sum::<f64>()
                })
                .sum::<f64>()
    }

    /// Simulated seconds per replication (from start to end).
    pub fn horizon_secs(&self) -> u64 {
        self.end.secs() - self.start.secs()
    }
}

fn compile_stream(
    a: &Arrival,
    what: &str,
    start: ClockTime,
    end: ClockTime,
) -> Result<StreamPlan, SimError> {
    let rate = |per_hour: f64, field: &str| -> Result<f64, SimError> {
        if per_hour.is_finite() && per_hour >= 0.0 {
            Ok(per_hour / 3_600_000.0)
        } else {
            Err(SimError::invalid(
                what,
                format!("{field} must be a number at least 0, not {per_hour}"),
            ))
        }
    };
    let mut periods = Vec::new();
    match (a.per_hour, a.periods.is_empty()) {
        (Some(_), false) => {
            return Err(SimError::invalid(
                what,
                "give per_hour or periods, not both",
            ));
        }
        (None, true) => {
            return Err(SimError::invalid(what, "give per_hour or periods"));
        }
        (Some(r), true) => periods.push((start.millis() as f64, rate(r, "per_hour")?)),
        (None, false) => {
            let mut previous: Option<ClockTime> = None;
            for (j, p) in a.periods.iter().enumerate() {
                if previous.is_some_and(|prev| p.from <= prev) {
                    return Err(SimError::invalid(
                        what,
                        format!(
                            "periods[{j}] starts at {}: list periods in time order",
                            p.from
                        ),
                    ));
                }
                if p.from < start || p.from >= end {
                    return Err(SimError::invalid(
                        what,
                        format!(
                            "periods[{j}] starts at {}, outside the horizon {start}-{end}",
                            p.from
                        ),
                    ));
                }
                previous = Some(p.from);
                if j == 0 && p.from > start {
                    periods.push((start.millis() as f64, 0.0));
                }
                periods.push((p.from.millis() as f64, rate(p.per_hour, "per_hour")?));
            }
        }
    }
    Ok(StreamPlan {
        queue: a.queue.clone(),
        channel: a.channel,
        row: 0,
        periods,
        handle: a.handle.build(&format!("{what} handle"))?,
        patience: a
            .patience
            .as_ref()
            .map(|p| p.build(&format!("{what} patience")))
            .transpose()?,
        requirements: a.requirements.clone(),
        priority: a.priority,
    })
}
