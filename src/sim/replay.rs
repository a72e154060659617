//! Replaying a recorded day under a new configuration: "what if we had had these queues and
//! these agents?".
//!
//! A [`Recording`] is read from the journal ([`Recording::read`], or event by event with
//! [`Recording::push`]): every interaction created, with what happened to it, and every agent's
//! logins, breaks and logouts. [`replay`] then creates the same interactions at the same instants
//! in a fresh [`Router`](crate::core::Router) seeded with the new configuration's queues and
//! agents, and compares the indicators side by side ([`ReplayReport`]): *recorded* (computed from
//! the journal) and *simulated* (the same arrivals under the new configuration).
//!
//! What is replayed, and the choices made where the journal cannot say:
//! - **arrivals**: time, channel, queue, contact, extra requirements, preferred skills,
//!   priority and SLA deadline as the creator gave them (a priority or deadline the creator
//!   left to the queue comes from the new configuration's queue). Every recorded queue and
//!   channel must exist in the new configuration;
//! - **handle time**: as recorded, from the first acceptance to the (last) completion. An
//!   interaction answered but not completed when the journal ends keeps the time it had held
//!   (a lower bound). One that was never answered has no handle time: if the simulation
//!   answers it, it takes the mean recorded handle time of its queue and channel (of all
//!   interactions when that one has none). Wrap-up comes from the new queue's `wrap_up_secs`.
//!   Transfers are not replayed: the first agent keeps the interaction for its whole handle
//!   time;
//! - **answer delay**: the recorded delay between the accepted offer and its acceptance; for
//!   interactions never answered, the mean recorded delay. An offer that times out under the
//!   new configuration is accepted at once when offered again;
//! - **patience**: a contact who abandoned leaves after the recorded time from creation to
//!   abandonment if still waiting (or offered) then; one who did not abandon waits as long as it
//!   takes. A recorded cancellation by the creator happens again at the same delay, except
//!   after the recorded queue's overflow sent the interaction to voicemail or a message: that
//!   was a routing decision, which the new configuration makes again;
//! - **agents**: the new configuration's agents are the staff. One that appears in the journal
//!   logs in, pauses (breaks with the recorded reason), resumes and logs out at the recorded
//!   times, because that is when the person was there (pauses the router itself made for missed
//!   offers, and wrap-ups, are the router's business and are not replayed). One that does not
//!   appear in the journal is a new hire: logged in from the start of the journal to its end.
//!   Agents of the journal missing from the new configuration do not work. Skills, capacities
//!   and strategies all come from the new configuration;
//! - **the end**: the simulation stops where the journal ends; what is still waiting then is
//!   counted as `unserved` on both sides.
//!
//! Both sides are measured with the same definitions ([`super::report`]) and the same service
//! level threshold per queue and channel: the new configuration's `sla_target_secs`, or
//! `within_secs`. The replay draws no random numbers: it is exactly reproducible.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::dist::DistSpec;
use super::engine::{run_replication, END_OF_SHIFT};
use super::error::SimError;
use super::model::{AgentPlan, Leaves, Model, ReplayedArrival, Row, Step};
use super::report::render;
use super::scenario::ClockTime;
use super::stats::{ratio, RowCounts};
use crate::config::Config;
use crate::core::{
    AgentId, AgentState, Channel, EndReason, Event, EventKind, InteractionId, InteractionSpec,
    Outcome, OutcomeFold, OverflowAction, Pending, QueueId, Settled, Timestamp, MISSED_OFFERS,
};
use crate::store::{Store, StoreError};

/// What the journal says happened to one interaction.
#[derive(Debug, Clone)]
struct Recorded {
    /// The spec as created, without attributes and external reference (routing ignores them).
    spec: InteractionSpec,
    created: u64,
    first_offer: Option<u64>,
    last_offer: Option<u64>,
    accepted: Option<u64>,
    /// Delay from the offer that was accepted to the acceptance.
    answer_ms: Option<u64>,
    completed: Option<u64>,
    ended: Option<(u64, EndReason)>,
    /// How and when it settled, from the core's outcome fold (as on every screen).
    settled: Option<(Settled, u64)>,
    /// The recorded queue's overflow sent it to voicemail or a message.
    deflected_by_router: bool,
}

/// What the journal says of one agent's presence.
#[derive(Debug, Clone, Default)]
struct Presence {
    /// `None` until its first event.
    online: Option<bool>,
    /// On a break (not a pause the router made).
    paused: bool,
    steps: Vec<(u64, Step)>,
}

/// A recorded period of a contact center, read from its journal: the interactions created and
/// what became of them, and the agents' presence.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    interactions: Vec<Recorded>,
    index: FxHashMap<InteractionId, u32>,
    agents: BTreeMap<AgentId, Presence>,
    first_ms: Option<u64>,
    last_ms: u64,
    events: u64,
    /// Events about interactions whose creation is not in the journal (removed by retention).
    orphan_events: u64,
    /// The outcomes of the recorded interactions.
    fold: OutcomeFold,
}

impl Recording {
    /// An empty recording.
    pub fn new() -> Self {
        Recording::default()
    }

    /// Reads every event of the store's journal.
    pub fn read(store: &Store) -> Result<Recording, StoreError> {
        let mut recording = Recording::new();
        store.replay(0, |_, event| {
            recording.push(&event);
            Ok(())
        })?;
        Ok(recording)
    }

    /// The recording of these events, in journal order.
    pub fn from_events<'e>(events: impl IntoIterator<Item = &'e Event>) -> Recording {
        let mut recording = Recording::new();
        for event in events {
            recording.push(event);
        }
        recording
    }

    /// Takes the next journaled event into account (events must come in journal order).
    pub fn push(&mut self, event: &Event) {
        let t = event.at.as_millis();
        let start = *self.first_ms.get_or_insert(t);
        self.last_ms = self.last_ms.max(t);
        self.events += 1;
        if let Some(Outcome::Settled {
            interaction, how, ..
        }) = self.fold.apply(event)
        {
            if let Some(&n) = self.index.get(&interaction) {
                self.interactions[n as usize].settled = Some((how, t));
            }
        }
        match &event.kind {
            EventKind::InteractionCreated { spec, .. } => {
                let mut spec = InteractionSpec::clone(spec);
                spec.attributes = Default::default();
                spec.external_ref = None;
                spec.shrink_to_fit();
                let n = self.interactions.len() as u32;
                match self.index.entry(spec.id) {
                    // The same id created twice cannot come from one router; keep the first.
                    std::collections::hash_map::Entry::Occupied(_) => return,
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(n);
                    }
                }
                self.interactions.push(Recorded {
                    spec,
                    created: t,
                    first_offer: None,
                    last_offer: None,
                    accepted: None,
                    answer_ms: None,
                    completed: None,
                    ended: None,
                    settled: None,
                    deflected_by_router: false,
                });
            }
            EventKind::AgentStateChanged { agent, state } => {
                let p = self.agents.entry(agent.clone()).or_default();
                let router_pause = |reason: &str| reason == MISSED_OFFERS || reason == END_OF_SHIFT;
                match state {
                    AgentState::Offline => {
                        p.seen_online(start);
                        if p.online == Some(true) {
                            p.steps.push((t, Step::Leave));
                        }
                        p.online = Some(false);
                        p.paused = false;
                    }
                    AgentState::Available => {
                        if p.online == Some(true) && p.paused {
                            p.steps.push((t, Step::Resume));
                        }
                        p.logged_in(t);
                        p.paused = false;
                    }
                    AgentState::Paused { reason } if router_pause(reason) => p.seen_online(start),
                    AgentState::Paused { reason } => {
                        p.seen_online(start);
                        p.logged_in(t);
                        p.steps.push((t, Step::Pause(reason.clone())));
                        p.paused = true;
                    }
                    AgentState::WrapUp { .. } => p.seen_online(start),
                }
            }
            kind => {
                if let Some(agent) = kind.agent() {
                    if !matches!(
                        kind,
                        EventKind::AgentUpserted { .. }
                            | EventKind::AgentRemoved { .. }
                            | EventKind::AgentSkillsChanged { .. }
                            | EventKind::AgentCapacityChanged { .. }
                            | EventKind::AgentDeviceChanged { .. }
                            | EventKind::InteractionMoved { .. }
                    ) {
                        // Offered work: the agent was there, logged in before the journal began.
                        self.agents
                            .entry(agent.clone())
                            .or_default()
                            .seen_online(start);
                    }
                }
                let Some(id) = kind.interaction() else {
                    return;
                };
                let Some(&n) = self.index.get(&id) else {
                    self.orphan_events += 1;
                    return;
                };
                let r = &mut self.interactions[n as usize];
                match kind {
                    EventKind::InteractionOffered { .. } => {
                        r.first_offer.get_or_insert(t);
                        r.last_offer = Some(t);
                    }
                    EventKind::OfferAccepted { .. } if r.accepted.is_none() => {
                        r.accepted = Some(t);
                        r.answer_ms = Some(t.saturating_sub(r.last_offer.unwrap_or(t)));
                    }
                    EventKind::InteractionCompleted { .. } => r.completed = Some(t),
                    EventKind::InteractionEnded { reason, .. } => r.ended = Some((t, *reason)),
                    EventKind::InteractionOverflowed { action, .. } => {
                        if matches!(action, OverflowAction::Voicemail | OverflowAction::Message) {
                            r.deflected_by_router = true;
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Interactions created in the journal.
    pub fn interactions(&self) -> usize {
        self.interactions.len()
    }

    /// Events read.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Agents whose presence the journal records.
    pub fn agents(&self) -> impl Iterator<Item = &AgentId> {
        self.agents
            .iter()
            .filter(|(_, p)| !p.steps.is_empty())
            .map(|(id, _)| id)
    }
}

impl Presence {
    /// The agent shows it is logged in; if nothing said so before, it was logged in when the
    /// journal began.
    fn seen_online(&mut self, start: u64) {
        if self.online.is_none() {
            self.steps.push((start, Step::Login));
            self.online = Some(true);
        }
    }

    /// The agent is logged in from `t` if it was not already.
    fn logged_in(&mut self, t: u64) {
        if self.online != Some(true) {
            self.steps.push((t, Step::Login));
            self.online = Some(true);
        }
    }
}

/// How a replay is asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayOptions {
    /// Service-level threshold in seconds for every queue and channel, instead of each queue's
    /// SLA target in the new configuration.
    pub within_secs: Option<u64>,
}

/// The indicators of one queue and channel, on one side of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Indicators {
    /// Interactions created.
    pub offered: u64,
    /// Accepted by an agent.
    pub answered: u64,
    /// The contact left before being answered.
    pub abandoned: u64,
    /// Cancelled by the creator, or sent to voicemail or a message by an overflow.
    pub cancelled: u64,
    /// Still waiting when the journal ends.
    pub unserved: u64,
    /// Average speed of answer in seconds (creation to acceptance, answered only).
    pub asa_secs: Option<f64>,
    /// Answered within the target / (answered + abandoned).
    pub service_level: Option<f64>,
    /// (Answered + abandoned) within the target / (answered + abandoned).
    pub service_level_with_abandons: Option<f64>,
    /// Abandoned / (answered + abandoned).
    pub abandonment_rate: Option<f64>,
}

impl Indicators {
    fn of(c: &RowCounts) -> Self {
        Indicators {
            offered: c.outcome.requests,
            answered: c.outcome.answered,
            abandoned: c.outcome.abandoned,
            cancelled: c.outcome.cancelled,
            unserved: c.unserved,
            asa_secs: c.outcome.average_wait_secs(),
            service_level: c.outcome.service_level(),
            service_level_with_abandons: c.outcome.service_level_with_abandons(),
            abandonment_rate: c.outcome.abandonment_rate(),
        }
    }
}

/// One queue and channel, recorded and simulated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayRow {
    /// The queue (`all` for the total).
    pub queue: QueueId,
    /// The channel (absent for the total).
    pub channel: Option<Channel>,
    /// The service-level threshold in seconds (absent for the total when rows differ).
    pub sl_target_secs: Option<u64>,
    /// From the journal.
    pub recorded: Indicators,
    /// The same arrivals under the new configuration.
    pub simulated: Indicators,
}

/// Who works in the replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayAgents {
    /// Agents of the new configuration present in the journal: they come and go as recorded.
    pub as_recorded: Vec<AgentId>,
    /// Agents of the new configuration absent from the journal: logged in throughout.
    pub added: Vec<AgentId>,
    /// Agents of the journal absent from the new configuration: they do not work.
    pub left_out: Vec<AgentId>,
}

/// A replay's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayReport {
    /// The journal's first event, milliseconds since the epoch.
    pub from_ms: u64,
    /// The journal's last event.
    pub to_ms: u64,
    /// Journal events read.
    pub events: u64,
    /// Interactions replayed.
    pub interactions: u64,
    /// One row per queue and channel with arrivals, in the new configuration's queue order.
    pub rows: Vec<ReplayRow>,
    /// All rows together (present when there are several).
    pub total: Option<ReplayRow>,
    /// Who works.
    pub agents: ReplayAgents,
    /// Simulated occupancy of the agents as recorded, of the added ones, and of all.
    pub occupancy: SimulatedOccupancy,
    /// What the replay had to assume, in words.
    pub notes: Vec<String>,
}

/// Simulated occupancy: time holding work / time logged in, between the journal's first and
/// last events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulatedOccupancy {
    /// Agents present in the journal.
    pub as_recorded: Option<f64>,
    /// Agents added by the new configuration.
    pub added: Option<f64>,
    /// All agents.
    pub all: Option<f64>,
}

impl ReplayReport {
    /// The row of a queue and channel.
    pub fn row(&self, queue: &str, channel: Channel) -> Option<&ReplayRow> {
        self.rows
            .iter()
            .find(|r| r.queue.as_str() == queue && r.channel == Some(channel))
    }

    /// The report as text: two lines per queue and channel, recorded then simulated.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Replay: {} interactions recorded from {} to {} ({} journal events)",
            self.interactions,
            fmt_time(self.from_ms),
            fmt_time(self.to_ms),
            self.events
        );
        let a = &self.agents;
        let _ = writeln!(
            out,
            "Agents of the new configuration: {} as recorded (logins, breaks, logouts), {} added \
             (logged in throughout); {} of the journal not in the new configuration",
            a.as_recorded.len(),
            a.added.len(),
            a.left_out.len()
        );
        let _ = writeln!(
            out,
            "recorded = what the journal says happened; simulated = the same arrivals, handle \
             times and patience under the new configuration."
        );
        let _ = writeln!(
            out,
            "SL = answered within target / offered; other = cancelled or sent to voicemail, or \
             still waiting when the journal ends.\n"
        );
        let mut table = vec![[
            "queue",
            "channel",
            "target",
            "",
            "offered",
            "answered",
            "abandoned",
            "other",
            "ASA (s)",
            "SL",
            "abandon rate",
        ]
        .map(str::to_owned)
        .to_vec()];
        for r in self.rows.iter().chain(&self.total) {
            for (i, (side, ind)) in [("recorded", &r.recorded), ("simulated", &r.simulated)]
                .into_iter()
                .enumerate()
            {
                let first = i == 0;
                table.push(vec![
                    if first {
                        r.queue.to_string()
                    } else {
                        String::new()
                    },
                    match (first, r.channel) {
                        (true, Some(c)) => c.to_string(),
                        _ => String::new(),
                    },
                    match (first, r.sl_target_secs) {
                        (true, Some(s)) => format!("{s}s"),
                        _ => String::new(),
                    },
                    side.to_owned(),
                    ind.offered.to_string(),
                    ind.answered.to_string(),
                    ind.abandoned.to_string(),
                    (ind.cancelled + ind.unserved).to_string(),
                    fmt_opt(ind.asa_secs, 1, false),
                    fmt_opt(ind.service_level, 1, true),
                    fmt_opt(ind.abandonment_rate, 1, true),
                ]);
            }
        }
        render(&mut out, &table, 4);
        let o = &self.occupancy;
        let _ = writeln!(
            out,
            "\nSimulated occupancy: agents as recorded {}, added {}, all {}",
            fmt_opt(o.as_recorded, 1, true),
            fmt_opt(o.added, 1, true),
            fmt_opt(o.all, 1, true)
        );
        if !self.notes.is_empty() {
            let _ = writeln!(out, "\nNotes:");
            for n in &self.notes {
                let _ = writeln!(out, "- {n}");
            }
        }
        out
    }
}

fn fmt_opt(v: Option<f64>, decimals: usize, pct: bool) -> String {
    match v {
        None => "-".into(),
        Some(x) if pct => format!("{:.d$}%", x * 100.0, d = decimals),
        Some(x) => format!("{x:.decimals$}"),
    }
}

/// A journal time as a UTC date and time.
fn fmt_time(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || format!("{ms} ms"),
            |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
}

/// Replays the recording under `config` (its queues and agents) and compares.
///
/// Fails with [`SimError::Invalid`] when the recording is empty of interactions, or has
/// interactions in a queue (or on a channel of a queue) that the new configuration lacks, and
/// with [`SimError::Config`] when the configuration itself is refused.
pub fn replay(
    recording: &Recording,
    config: &Config,
    options: &ReplayOptions,
) -> Result<ReplayReport, SimError> {
    config.validate(std::path::Path::new("the new configuration"))?;
    let Some(from_ms) = recording.first_ms.filter(|_| recording.interactions() > 0) else {
        return Err(SimError::invalid(
            "replay",
            "the journal records no interaction: nothing to replay",
        ));
    };
    let to_ms = recording.last_ms;

    // Rows: every recorded (queue, channel), in the new configuration's queue order.
    let queue_pos: FxHashMap<&QueueId, usize> = config
        .queues
        .iter()
        .enumerate()
        .map(|(i, q)| (&q.id, i))
        .collect();
    let mut per_row: BTreeMap<(usize, Channel), u64> = BTreeMap::new();
    // Per missing (queue, channel): how many interactions, and whether the queue exists.
    let mut missing: BTreeMap<(QueueId, Channel), (u64, bool)> = BTreeMap::new();
    for r in &recording.interactions {
        let (queue, channel) = (&r.spec.queue, r.spec.channel);
        match queue_pos.get(queue) {
            Some(&q) if config.queues[q].channels.contains(&channel) => {
                *per_row.entry((q, channel)).or_default() += 1;
            }
            found => {
                let m = missing.entry((queue.clone(), channel)).or_default();
                m.0 += 1;
                m.1 = found.is_some();
            }
        }
    }
    if !missing.is_empty() {
        let list: Vec<String> = missing
            .iter()
            .map(|((q, c), (n, exists))| {
                if *exists {
                    format!("{n} in queue {q} on {c}, but its queue {q} does not take {c}")
                } else {
                    format!("{n} in queue {q} ({c}), but it has no queue {q}")
                }
            })
            .collect();
        return Err(SimError::invalid(
            "replay",
            format!(
                "the journal has interactions the new configuration cannot take: {}; add the \
                 queue or channel to replay them",
                list.join("; ")
            ),
        ));
    }
    let row_index: BTreeMap<(usize, Channel), u32> = per_row
        .keys()
        .enumerate()
        .map(|(i, k)| (*k, i as u32))
        .collect();
    let rows: Vec<Row> = per_row
        .keys()
        .map(|&(q, channel)| {
            let queue = &config.queues[q];
            Row {
                queue: queue.id.clone(),
                channel,
                target_secs: options
                    .within_secs
                    .unwrap_or(queue.sla_target_secs.get(channel)),
            }
        })
        .collect();
    let row_of = |r: &Recorded| -> u32 {
        let q = queue_pos.get(&r.spec.queue).copied().unwrap_or_default();
        row_index
            .get(&(q, r.spec.channel))
            .copied()
            .unwrap_or_default()
    };

    // Recorded handle times and answer delays, for what the journal cannot say.
    let mut handle_sum = vec![(0u64, 0u64); rows.len()];
    let (mut delay_sum, mut delays) = (0u64, 0u64);
    for r in &recording.interactions {
        if let (Some(a), Some(c)) = (r.accepted, r.completed) {
            let h = &mut handle_sum[row_of(r) as usize];
            h.0 += c.saturating_sub(a);
            h.1 += 1;
        }
        if let Some(d) = r.answer_ms {
            delay_sum += d;
            delays += 1;
        }
    }
    let all_handles = handle_sum
        .iter()
        .fold((0, 0), |acc, h| (acc.0 + h.0, acc.1 + h.1));
    let mean_handle: Vec<u64> = handle_sum
        .iter()
        .map(|&(sum, n)| {
            sum.checked_div(n)
                .or_else(|| all_handles.0.checked_div(all_handles.1))
                .unwrap_or(0)
        })
        .collect();
    let mean_delay = delay_sum.checked_div(delays).unwrap_or(0);

    // Recorded indicators and the arrivals to replay.
    let mut recorded = vec![RowCounts::default(); rows.len()];
    let mut replayed = Vec::with_capacity(recording.interactions.len());
    let (mut open_handled, mut never_answered, mut left_to_router) = (0u64, 0u64, 0u64);
    for r in &recording.interactions {
        let row = row_of(r);
        let target = rows[row as usize].target_secs * 1000;
        let c = &mut recorded[row as usize];
        let pending = Pending {
            queue: r.spec.queue.clone(),
            channel: r.spec.channel,
            created: Timestamp(r.created),
            sla_deadline: Timestamp(r.created.saturating_add(target)),
        };
        let interaction = r.spec.id;
        c.outcome.add_against(
            &Outcome::Created {
                interaction,
                pending: pending.clone(),
            },
            target,
        );
        match r.settled {
            Some((how, at)) => c.outcome.add_against(
                &Outcome::Settled {
                    interaction,
                    pending,
                    how,
                    at: Timestamp(at),
                },
                target,
            ),
            None => c.unserved += 1,
        }
        let handle_ms = match (r.accepted, r.completed) {
            (Some(a), Some(c)) => c.saturating_sub(a),
            (Some(a), None) => {
                open_handled += 1;
                to_ms.saturating_sub(a)
            }
            (None, _) => {
                never_answered += 1;
                mean_handle[row as usize]
            }
        };
        let leaves = match r.ended {
            Some((t, EndReason::Abandoned)) => Leaves::Abandons(t.saturating_sub(r.created)),
            Some((_, EndReason::Cancelled)) if r.deflected_by_router => {
                left_to_router += 1;
                Leaves::Never
            }
            Some((t, EndReason::Cancelled)) => Leaves::Cancelled(t.saturating_sub(r.created)),
            None => Leaves::Never,
        };
        replayed.push(ReplayedArrival {
            at_ms: r.created,
            row,
            spec: r.spec.clone(),
            handle_ms,
            answer_ms: r.answer_ms.unwrap_or(mean_delay),
            leaves,
        });
    }
    replayed.sort_by_key(|a| a.at_ms);

    // Agents: as recorded when the journal knows them, else logged in throughout.
    let mut agents = Vec::with_capacity(config.agents.len());
    let mut who = ReplayAgents {
        as_recorded: Vec::new(),
        added: Vec::new(),
        left_out: Vec::new(),
    };
    for a in &config.agents {
        match recording.agents.get(&a.id).filter(|p| !p.steps.is_empty()) {
            Some(p) => {
                who.as_recorded.push(a.id.clone());
                agents.push(AgentPlan {
                    id: a.id.clone(),
                    group: 0,
                    steps: p.steps.clone(),
                });
            }
            None => {
                who.added.push(a.id.clone());
                agents.push(AgentPlan {
                    id: a.id.clone(),
                    group: 1,
                    steps: vec![(from_ms, Step::Login)],
                });
            }
        }
    }
    who.left_out = recording
        .agents()
        .filter(|id| !config.agents.iter().any(|a| a.id == **id))
        .cloned()
        .collect();

    let start = ClockTime(from_ms / 1000);
    let end = ClockTime(to_ms.div_ceil(1000).max(start.secs() + 1));
    let model = Model {
        name: "replay".into(),
        seed_commands: config.seed_commands(),
        agents,
        groups: vec![AgentId::new("as_recorded"), AgentId::new("added")],
        streams: Vec::new(),
        replayed,
        rows: rows.clone(),
        start,
        end,
        measure_from_ms: start.millis(),
        stop_ms: Some(to_ms),
        answer_delay: DistSpec::constant(0.0).build("answer_delay")?,
        warm_up_secs: 0,
    };
    let counts = run_replication(&model, 0, 0, &|_| {})?;

    let mut notes = Vec::new();
    if recording.orphan_events > 0 {
        notes.push(format!(
            "{} journal events concern interactions created before the journal's first event \
             (removed by retention); they are ignored",
            recording.orphan_events
        ));
    }
    if never_answered > 0 {
        notes.push(format!(
            "{never_answered} interaction(s) were never answered in the recording: when the \
             simulation answers them, they take the mean recorded handle time of their queue and \
             channel"
        ));
    }
    if open_handled > 0 {
        notes.push(format!(
            "{open_handled} interaction(s) were still being handled when the journal ends: their \
             handle time runs to the journal's end"
        ));
    }
    if left_to_router > 0 {
        notes.push(format!(
            "{left_to_router} interaction(s) were sent to voicemail or a message by an overflow: \
             replayed, they wait unless the new configuration's overflow sends them away too"
        ));
    }
    if !who.left_out.is_empty() {
        let shown: Vec<&str> = who.left_out.iter().take(10).map(AgentId::as_str).collect();
        notes.push(format!(
            "agents of the journal absent from the new configuration do not work: {}{}",
            shown.join(", "),
            if who.left_out.len() > 10 { ", ..." } else { "" }
        ));
    }

    let report_rows: Vec<ReplayRow> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| ReplayRow {
            queue: row.queue.clone(),
            channel: Some(row.channel),
            sl_target_secs: Some(row.target_secs),
            recorded: Indicators::of(&recorded[i]),
            simulated: Indicators::of(&counts.rows[i]),
        })
        .collect();
    let total = (report_rows.len() > 1).then(|| {
        let targets: Vec<u64> = rows.iter().map(|r| r.target_secs).collect();
        ReplayRow {
            queue: QueueId::new("all"),
            channel: None,
            sl_target_secs: targets.windows(2).all(|w| w[0] == w[1]).then(|| targets[0]),
            recorded: Indicators::of(&sum(&recorded)),
            simulated: Indicators::of(&sum(&counts.rows)),
        }
    });
    let busy = |g: usize| counts.groups[g].busy_ms;
    let logged = |g: usize| counts.groups[g].logged_ms;
    Ok(ReplayReport {
        from_ms,
        to_ms,
        events: recording.events,
        interactions: recording.interactions.len() as u64,
        rows: report_rows,
        total,
        agents: who,
        occupancy: SimulatedOccupancy {
            as_recorded: ratio(busy(0), logged(0)),
            added: ratio(busy(1), logged(1)),
            all: ratio(busy(0) + busy(1), logged(0) + logged(1)),
        },
        notes,
    })
}

fn sum(rows: &[RowCounts]) -> RowCounts {
    let mut total = RowCounts::default();
    for c in rows {
        total.outcome.merge(&c.outcome);
        total.unserved += c.unserved;
    }
    total
}
