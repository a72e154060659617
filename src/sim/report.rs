//! The results of a simulation: per queue and channel, per agent group, as data (JSON) and as a
//! text table.
//!
//! Definitions (all per replication, then averaged over replications with a 95 % Student t
//! confidence interval):
//! - `offered`: interactions created after the warm-up and before the end;
//! - `answered`: accepted by an agent; `abandoned`: the contact left while waiting or while
//!   offered; `deflected`: overflowed to voicemail or a message; `unserved`: still waiting when
//!   the run stopped (no one logged in could take them);
//! - ASA, `service_level`, `service_level_with_abandons` and `abandonment_rate` are the core's
//!   figures ([`crate::core::Counts`], `docs/figures.md`), the threshold being the row's target:
//!   ASA (average speed of answer) is the mean time from creation to the first acceptance,
//!   answered only; `service_level` = answered within the target / (answered + abandoned)
//!   (abandons count as misses; deflected and unserved interactions are left out);
//!   `service_level_with_abandons` = (answered + abandoned within the target) / (answered +
//!   abandoned): a contact who left before the target is not held against the service;
//!   `abandonment_rate` = abandoned / (answered + abandoned);
//! - `queued_share`: share of offered interactions not offered to an agent the instant they
//!   arrived (the probability of waiting of Erlang formulas);
//! - occupancy: time agents hold at least one interaction (offered, handled or in wrap-up) /
//!   time logged in, both inside the measured window;
//! - spread across the agents of a group (`spread`): per replication, over the group's agents
//!   logged in during the measured window, the minimum, the maximum and the coefficient of
//!   variation (population standard deviation / mean) of what each answered and of each one's
//!   occupancy; a fair router keeps the coefficient small among identical agents.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::model::Model;
use super::stats::{ratio, Estimate, RepCounts};
use crate::core::{AgentId, Channel, QueueId};

/// Results of all replications of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// Simulated start time.
    pub start: String,
    /// Simulated end of arrivals.
    pub end: String,
    /// Seconds of warm-up discarded.
    pub warm_up_secs: u64,
    /// Seed of replication 0.
    pub seed: u64,
    /// Replications run.
    pub replications: u32,
    /// Interactions created over all replications, warm-up included.
    pub interactions_simulated: u64,
    /// One row per queue and channel with arrivals.
    pub queues: Vec<RowReport>,
    /// One row per agent template.
    pub agents: Vec<GroupReport>,
    /// Occupancy of all agents together.
    pub total_occupancy: Option<Estimate>,
    /// How evenly each agent group's work is spread across its agents.
    #[serde(default)]
    pub spread: Vec<SpreadReport>,
}

/// How evenly one agent group's work is spread across its agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpreadReport {
    /// The agent template.
    pub group: AgentId,
    /// Agents of the group logged in during the measured window.
    pub agents: Estimate,
    /// Interactions answered per agent.
    pub answered: Spread,
    /// Occupancy per agent.
    pub occupancy: Spread,
}

/// The spread of one figure across agents: each field computed per replication, then averaged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// The smallest agent's value.
    pub min: Option<Estimate>,
    /// The largest agent's value.
    pub max: Option<Estimate>,
    /// Coefficient of variation: population standard deviation / mean (none when the mean is 0).
    pub cv: Option<Estimate>,
}

impl Spread {
    /// The spread of one value per agent, per replication.
    fn of(per_rep: &[Vec<f64>]) -> Spread {
        let stat = |f: &dyn Fn(&[f64]) -> Option<f64>| {
            est(per_rep
                .iter()
                .map(|v| (!v.is_empty()).then(|| f(v)).flatten()))
        };
        Spread {
            min: stat(&|v| v.iter().copied().reduce(f64::min)),
            max: stat(&|v| v.iter().copied().reduce(f64::max)),
            cv: stat(&|v| {
                let n = v.len() as f64;
                let mean = v.iter().sum::<f64>() / n;
                let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
                (mean > 0.0).then(|| var.sqrt() / mean)
            }),
        }
    }
}

/// Results for one queue and channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowReport {
    /// The queue.
    pub queue: QueueId,
    /// The channel.
    pub channel: Channel,
    /// The service-level threshold used, in seconds.
    pub sl_target_secs: u64,
    /// Interactions created (per replication).
    pub offered: Estimate,
    /// Interactions accepted by an agent.
    pub answered: Estimate,
    /// Contacts who left before being answered.
    pub abandoned: Estimate,
    /// Overflowed to voicemail or message.
    pub deflected: Estimate,
    /// Still waiting when the run stopped.
    pub unserved: Estimate,
    /// Average speed of answer in seconds (answered only).
    pub asa_secs: Option<Estimate>,
    /// Answered within the target / (answered + abandoned).
    pub service_level: Option<Estimate>,
    /// (Answered + abandoned) within the target / (answered + abandoned).
    pub service_level_with_abandons: Option<Estimate>,
    /// Abandoned / (answered + abandoned).
    pub abandonment_rate: Option<Estimate>,
    /// Share not offered to an agent on arrival.
    pub queued_share: Option<Estimate>,
    /// Answered per agent group.
    pub answered_by: Vec<GroupCount>,
}

/// How many interactions one agent group answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupCount {
    /// The agent template.
    pub group: AgentId,
    /// Answered per replication.
    pub answered: Estimate,
}

/// Results for the clones of one agent template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupReport {
    /// The agent template.
    pub group: AgentId,
    /// How many clones.
    pub agents: u64,
    /// Hours logged in, summed over the clones, in the measured window.
    pub logged_in_hours: Estimate,
    /// Hours holding work, summed over the clones, in the measured window.
    pub busy_hours: Estimate,
    /// Busy / logged in.
    pub occupancy: Option<Estimate>,
}

impl RowReport {
    /// How many the group answered on average, if it answered any.
    pub fn answered_by(&self, group: &str) -> Option<f64> {
        self.answered_by
            .iter()
            .find(|g| g.group.as_str() == group)
            .map(|g| g.answered.mean)
    }
}

fn est(values: impl Iterator<Item = Option<f64>>) -> Option<Estimate> {
    let v: Vec<f64> = values.flatten().collect();
    Estimate::from_samples(&v)
}

fn count(values: impl Iterator<Item = u64>) -> Estimate {
    let v: Vec<f64> = values.map(|x| x as f64).collect();
    Estimate::from_samples(&v).unwrap_or(Estimate::ZERO)
}

impl Report {
    /// Builds the report from each replication's counts, in replication order.
    pub(crate) fn build(model: &Model, seed: u64, reps: &[RepCounts]) -> Report {
        let queues = model
            .rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let r = || reps.iter().map(move |c| &c.rows[i]);
                RowReport {
                    queue: row.queue.clone(),
                    channel: row.channel,
                    sl_target_secs: row.target_secs,
                    offered: count(r().map(|c| c.outcome.requests)),
                    answered: count(r().map(|c| c.outcome.answered)),
                    abandoned: count(r().map(|c| c.outcome.abandoned)),
                    deflected: count(r().map(|c| c.outcome.cancelled)),
                    unserved: count(r().map(|c| c.unserved)),
                    asa_secs: est(r().map(|c| c.outcome.average_wait_secs())),
                    service_level: est(r().map(|c| c.outcome.service_level())),
                    service_level_with_abandons: est(
                        r().map(|c| c.outcome.service_level_with_abandons())
                    ),
                    abandonment_rate: est(r().map(|c| c.outcome.abandonment_rate())),
                    queued_share: est(r().map(|c| ratio(c.queued, c.outcome.requests))),
                    answered_by: model
                        .groups
                        .iter()
                        .enumerate()
                        .map(|(g, id)| GroupCount {
                            group: id.clone(),
                            answered: count(r().map(|c| c.answered_by[g])),
                        })
                        .filter(|g| g.answered.mean > 0.0)
                        .collect(),
                }
            })
            .collect();
        let hours = |ms: u64| ms as f64 / 3_600_000.0;
        let agents = model
            .groups
            .iter()
            .enumerate()
            .map(|(g, id)| {
                let r = || reps.iter().map(move |c| &c.groups[g]);
                GroupReport {
                    group: id.clone(),
                    agents: r().next().map_or(0, |c| c.agents),
                    logged_in_hours: est(r().map(|c| Some(hours(c.logged_ms))))
                        .unwrap_or(Estimate::ZERO),
                    busy_hours: est(r().map(|c| Some(hours(c.busy_ms)))).unwrap_or(Estimate::ZERO),
                    occupancy: est(r().map(|c| ratio(c.busy_ms, c.logged_ms))),
                }
            })
            .filter(|g| g.agents > 0)
            .collect();
        let total_occupancy = est(reps.iter().map(|c| {
            let busy = c.groups.iter().map(|g| g.busy_ms).sum();
            let logged = c.groups.iter().map(|g| g.logged_ms).sum();
            ratio(busy, logged)
        }));
        let spread = spread_of(model, reps);
        Report {
            spread,
            scenario: model.name.clone(),
            start: model.start.to_string(),
            end: model.end.to_string(),
            warm_up_secs: model.warm_up_secs,
            seed,
            replications: reps.len() as u32,
            interactions_simulated: reps.iter().map(|c| c.interactions).sum(),
            queues,
            agents,
            total_occupancy,
        }
    }

    /// The row of a queue and channel.
    pub fn row(&self, queue: &str, channel: Channel) -> Option<&RowReport> {
        self.queues
            .iter()
            .find(|r| r.queue.as_str() == queue && r.channel == channel)
    }

    /// The row of an agent group.
    pub fn group(&self, group: &str) -> Option<&GroupReport> {
        self.agents.iter().find(|g| g.group.as_str() == group)
    }

    /// The report as text tables (deterministic: the same report gives the same bytes).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let name = if self.scenario.is_empty() {
            "(unnamed scenario)"
        } else {
            &self.scenario
        };
        let _ = writeln!(out, "Simulation: {name}");
        let _ = writeln!(
            out,
            "Horizon {}-{}, warm-up {} s discarded; {} replication(s), seeds {}..{}; {} interactions simulated",
            self.start,
            self.end,
            self.warm_up_secs,
            self.replications,
            self.seed,
            self.seed.wrapping_add(u64::from(self.replications.saturating_sub(1))),
            self.interactions_simulated
        );
        let _ = writeln!(
            out,
            "Per replication: mean ± 95% confidence half-width (Student t over replications)."
        );
        let _ = writeln!(
            out,
            "SL = answered within target / (answered + abandoned); SL+ab also counts abandons within target as met.\n"
        );
        let mut table = vec![vec![
            "queue".to_owned(),
            "channel".into(),
            "target".into(),
            "offered".into(),
            "answered".into(),
            "abandoned".into(),
            "ASA (s)".into(),
            "SL".into(),
            "SL+ab".into(),
            "abandon rate".into(),
        ]];
        for r in &self.queues {
            table.push(vec![
                r.queue.to_string(),
                r.channel.to_string(),
                format!("{}s", r.sl_target_secs),
                fmt_est(Some(&r.offered), 1, false),
                fmt_est(Some(&r.answered), 1, false),
                fmt_est(Some(&r.abandoned), 1, false),
                fmt_est(r.asa_secs.as_ref(), 1, false),
                fmt_est(r.service_level.as_ref(), 1, true),
                fmt_est(r.service_level_with_abandons.as_ref(), 1, true),
                fmt_est(r.abandonment_rate.as_ref(), 1, true),
            ]);
        }
        render(&mut out, &table, 3);
        for r in &self.queues {
            if r.deflected.mean > 0.0 || r.unserved.mean > 0.0 {
                let _ = writeln!(
                    out,
                    "  {}/{}: {:.1} deflected (voicemail or message), {:.1} unserved at the end",
                    r.queue, r.channel, r.deflected.mean, r.unserved.mean
                );
            }
        }
        let _ = writeln!(out);
        let mut table = vec![vec![
            "agents".to_owned(),
            "people".into(),
            "logged-in h".into(),
            "occupancy".into(),
        ]];
        for g in &self.agents {
            table.push(vec![
                g.group.to_string(),
                g.agents.to_string(),
                fmt_est(Some(&g.logged_in_hours), 1, false),
                fmt_est(g.occupancy.as_ref(), 1, true),
            ]);
        }
        let people: u64 = self.agents.iter().map(|g| g.agents).sum();
        let logged: f64 = self.agents.iter().map(|g| g.logged_in_hours.mean).sum();
        table.push(vec![
            "all".into(),
            people.to_string(),
            format!("{logged:.1}"),
            fmt_est(self.total_occupancy.as_ref(), 1, true),
        ]);
        render(&mut out, &table, 1);
        self.spread_text(&mut out);
        out
    }

    /// The spread across agents, as a table after the agent groups'.
    fn spread_text(&self, out: &mut String) {
        if self.spread.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\nSpread across the agents of each group logged in (per agent: min, max, coefficient of variation):"
        );
        let mut table = vec![vec![
            "agents".to_owned(),
            "logged in".into(),
            "answered min".into(),
            "max".into(),
            "CV".into(),
            "occupancy min".into(),
            "max".into(),
            "CV".into(),
        ]];
        for g in &self.spread {
            table.push(vec![
                g.group.to_string(),
                fmt_est(Some(&g.agents), 1, false),
                fmt_est(g.answered.min.as_ref(), 1, false),
                fmt_est(g.answered.max.as_ref(), 1, false),
                fmt_est(g.answered.cv.as_ref(), 1, true),
                fmt_est(g.occupancy.min.as_ref(), 1, true),
                fmt_est(g.occupancy.max.as_ref(), 1, true),
                fmt_est(g.occupancy.cv.as_ref(), 1, true),
            ]);
        }
        render(out, &table, 1);
    }

    /// The spread across the agents of a group.
    pub fn spread(&self, group: &str) -> Option<&SpreadReport> {
        self.spread.iter().find(|g| g.group.as_str() == group)
    }
}

/// Per agent group, the spread of answered interactions and occupancy across its agents logged in
/// during the measured window (none for a group without any, or without per-agent counts).
fn spread_of(model: &Model, reps: &[RepCounts]) -> Vec<SpreadReport> {
    model
        .groups
        .iter()
        .enumerate()
        .filter_map(|(g, id)| {
            let mut logged_in = Vec::new();
            let mut answered = Vec::new();
            let mut occupancy = Vec::new();
            for rep in reps {
                let agents: Vec<_> = model
                    .agents
                    .iter()
                    .zip(&rep.agents)
                    .filter(|(plan, c)| plan.group as usize == g && c.logged_ms > 0)
                    .map(|(_, c)| c)
                    .collect();
                logged_in.push(agents.len() as f64);
                answered.push(agents.iter().map(|c| c.answered as f64).collect::<Vec<_>>());
                occupancy.push(
                    agents
                        .iter()
                        .filter_map(|c| ratio(c.busy_ms, c.logged_ms))
                        .collect::<Vec<_>>(),
                );
            }
            let agents = Estimate::from_samples(&logged_in)?;
            (agents.mean > 0.0).then(|| SpreadReport {
                group: id.clone(),
                agents,
                answered: Spread::of(&answered),
                occupancy: Spread::of(&occupancy),
            })
        })
        .collect()
}

/// `mean ± half-width`, as a percentage when `pct`; `-` when there is no value.
pub(crate) fn fmt_est(e: Option<&Estimate>, decimals: usize, pct: bool) -> String {
    let Some(e) = e else {
        return "-".into();
    };
    let (k, unit) = if pct { (100.0, "%") } else { (1.0, "") };
    match e.half_width {
        Some(h) => format!(
            "{:.d$}{unit} ± {:.d$}{unit}",
            e.mean * k,
            h * k,
            d = decimals
        ),
        None => format!("{:.d$}{unit}", e.mean * k, d = decimals),
    }
}

/// Writes a table: the first `left` columns left-aligned, the others right-aligned.
pub(crate) fn render(out: &mut String, rows: &[Vec<String>], left: usize) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            let pad = widths[c].saturating_sub(cell.chars().count());
            if c < left {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            } else {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}
