//! One replication: the simulated world around a real [`Router`], on a virtual clock.
//!
//! The world is an event calendar (a binary heap of future arrivals, acceptances, completions,
//! abandonments and shift changes, ordered by time then by insertion) merged with the router's
//! own timers ([`Router::next_deadline`]). At each instant the router is ticked first, then the
//! next world event is turned into a [`Command`]; the [`Event`]s the router answers update what
//! the world knows (who holds what) and schedule what follows (an offer schedules an
//! acceptance after the answer delay, an acceptance schedules the completion after the drawn
//! handle time). Nothing reads a wall clock and no hash map is iterated, so a seed fixes
//! everything.
//!
//! Random numbers come from ChaCha8 streams of the replication's seed: stream 0 for answer
//! delays, stream `1 + i` for arrival stream `i`, which draws each interaction's arrival time,
//! handle time and patience at its creation. Two runs that differ only in staffing therefore
//! see the same customers (common random numbers), which makes comparisons sharper.
//!
//! A replay ([`super::replay`]) takes its arrivals from the journal instead (one at a time, in
//! time order) with their recorded handle time, answer delay and patience, and its agents follow
//! their recorded logins, breaks and logouts (the [`Step`]s of their plan): it draws no random
//! number at all, and stops where the journal ends.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1};
use rustc_hash::FxHashMap;

use super::error::SimError;
use super::model::{Leaves, Model, Step};
use super::stats::{AgentCounts, GroupCounts, RepCounts, RowCounts};
use crate::core::{
    AgentId, AgentState, Command, Event, EventKind, InteractionId, InteractionSpec, OutcomeFold,
    OverflowAction, RequestedState, Router, Timestamp, MISSED_OFFERS,
};

/// The pause reason of an agent whose shift ended while it still held work.
pub const END_OF_SHIFT: &str = "end_of_shift";

/// Something the simulated world does at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// The next arrival of stream `s`.
    Arrival(u32),
    /// Recorded arrival number `i` of a replay.
    Replayed(u32),
    /// The contact of interaction `ix` runs out of patience.
    Patience(u32),
    /// The agent accepts offer number `offer` of interaction `ix`.
    Accept { ix: u32, agent: u32, offer: u32 },
    /// The agent completes interaction `ix`.
    Complete { ix: u32, agent: u32 },
    /// The contact leaves after an overflow to voicemail or message.
    Deflect(u32),
    /// The creator of replayed interaction `ix` cancels it, as recorded.
    Withdraw(u32),
    /// Step number `step` of an agent's plan (a shift start or end, a recorded pause...).
    Step { agent: u32, step: u32 },
    /// An agent whose shift ended has nothing left: it logs out.
    Logout(u32),
    /// An agent paused for missed offers comes back.
    Resume(u32),
}

const NONE: u64 = u64::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    Offered { agent: u32, offer: u32 },
    Assigned { agent: u32 },
    Done,
}

/// What the world knows of one interaction.
#[derive(Debug, Clone)]
struct Rec {
    /// Its statistics row.
    row: u32,
    created: u64,
    handle_ms: u64,
    /// A replay's recorded delay before the first offer is accepted (later offers, after a
    /// time-out, are accepted at once); `NONE` to draw from the scenario's answer delay.
    answer_ms: u64,
    first_offer: u64,
    offers: u32,
    phase: Phase,
    counted: bool,
}

/// What the world knows of one agent.
#[derive(Debug, Clone, Default)]
struct AgentRt {
    online: bool,
    logged_since: u64,
    busy_since: u64,
    /// Interactions offered, held or in wrap-up.
    work: u32,
    leaving: bool,
    /// On a break of its plan ([`Step::Pause`]).
    paused: bool,
}

/// Runs one replication of `model`; `progress` receives simulated seconds as they pass.
pub(crate) fn run_replication(
    model: &Model,
    replication: u32,
    base_seed: u64,
    progress: &dyn Fn(u64),
) -> Result<RepCounts, SimError> {
    let mut world = World::new(model, base_seed.wrapping_add(u64::from(replication)));
    world.run(progress)?;
    Ok(world.finish())
}

struct World<'m> {
    model: &'m Model,
    router: Router,
    calendar: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    seq: u64,
    now: u64,
    recs: Vec<Rec>,
    agents: Vec<AgentRt>,
    agent_ix: FxHashMap<AgentId, u32>,
    /// Per arrival stream: its random numbers and the exact (fractional) time of its next
    /// arrival.
    stream_rng: Vec<ChaCha8Rng>,
    stream_next: Vec<f64>,
    delay_rng: ChaCha8Rng,
    /// Interactions not yet answered, abandoned or deflected.
    open: u64,
    /// The outcomes of the interactions (the core's fold, as on every screen).
    fold: OutcomeFold,
    counts: RepCounts,
}

impl<'m> World<'m> {
    fn new(model: &'m Model, seed: u64) -> Self {
        let base = ChaCha8Rng::seed_from_u64(seed);
        let stream_rng = (0..model.streams.len())
            .map(|i| {
                let mut r = base.clone();
                r.set_stream(1 + i as u64);
                r
            })
            .collect();
        let mut delay_rng = base;
        delay_rng.set_stream(0);
        let agent_ix = model
            .agents
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id.clone(), i as u32))
            .collect();
        World {
            model,
            router: Router::new(),
            calendar: BinaryHeap::new(),
            seq: 0,
            now: model.start.millis(),
            recs: Vec::new(),
            agents: vec![AgentRt::default(); model.agents.len()],
            agent_ix,
            stream_rng,
            stream_next: vec![0.0; model.streams.len()],
            delay_rng,
            open: 0,
            fold: OutcomeFold::new(),
            counts: RepCounts {
                agents: vec![AgentCounts::default(); model.agents.len()],
                ..RepCounts::new(model.rows.len(), model.groups.len())
            },
        }
    }

    fn schedule(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.calendar.push(Reverse((at, self.seq, ev)));
    }

    fn run(&mut self, progress: &dyn Fn(u64)) -> Result<(), SimError> {
        let start = self.model.start.millis();
        let end = self.model.end.millis();
        for command in self.model.seed_commands.clone() {
            self.command(start, command)?;
        }
        // Each agent's steps share one sequence number, `a`, and come out in step order.
        for (a, plan) in self.model.agents.iter().enumerate() {
            for (k, (at, _)) in plan.steps.iter().enumerate() {
                let ev = Ev::Step {
                    agent: a as u32,
                    step: k as u32,
                };
                self.calendar.push(Reverse((*at, a as u64, ev)));
            }
        }
        self.seq = self.model.agents.len() as u64;
        for s in 0..self.model.streams.len() {
            self.stream_next[s] = start as f64;
            self.schedule_arrival(s);
        }
        if let Some(first) = self.model.replayed.first() {
            self.schedule(first.at_ms, Ev::Replayed(0));
        }

        let horizon = self.model.horizon_secs();
        let mut reported = 0u64;
        let mut steps = 0u32;
        loop {
            let next_world = self.calendar.peek().map(|Reverse((at, _, _))| *at);
            let next_router = self.router.next_deadline().map(Timestamp::as_millis);
            let t = match (next_world, next_router) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => break,
            };
            // A scenario runs until everything open is resolved; a replay stops where its
            // journal ends.
            let done = match self.model.stop_ms {
                None => t >= end && self.open == 0,
                Some(stop) => t > stop,
            };
            if done {
                break;
            }
            self.now = t;
            steps = steps.wrapping_add(1);
            if steps % 4096 == 0 {
                let upto = (t.min(end) - start) / 1000;
                if upto > reported {
                    progress(upto - reported);
                    reported = upto;
                }
            }
            if next_router.is_some_and(|d| d <= t) {
                let events = self.router.tick(Timestamp(t));
                self.absorb(&events);
                continue;
            }
            let Some(Reverse((_, _, ev))) = self.calendar.pop() else {
                break;
            };
            self.world_event(t, ev)?;
        }
        if horizon > reported {
            progress(horizon - reported);
        }
        Ok(())
    }

    fn command(&mut self, t: u64, command: Command) -> Result<(), SimError> {
        let name = command_name(&command);
        match self.router.handle(Timestamp(t), command) {
            Ok(events) => {
                self.absorb(&events);
                Ok(())
            }
            Err(source) => Err(SimError::Router {
                at: Timestamp(t),
                command: name,
                source,
            }),
        }
    }

    fn agent_id(&self, a: u32) -> AgentId {
        self.model.agents[a as usize].id.clone()
    }

    /// Sends the command `end` makes for request `ix` if the request still waits (waiting or
    /// offered): the caller's patience ran out, or the creator withdrew it.
    fn while_waiting(
        &mut self,
        t: u64,
        ix: u32,
        end: impl FnOnce(InteractionId) -> Command,
    ) -> Result<(), SimError> {
        if matches!(
            self.recs[ix as usize].phase,
            Phase::Waiting | Phase::Offered { .. }
        ) {
            self.command(t, end(interaction_id(ix)))?;
        }
        Ok(())
    }

    fn world_event(&mut self, t: u64, ev: Ev) -> Result<(), SimError> {
        match ev {
            Ev::Arrival(s) => self.arrive(t, s as usize)?,
            Ev::Replayed(i) => self.arrive_replayed(t, i as usize)?,
            Ev::Patience(ix) => {
                self.while_waiting(t, ix, |interaction| Command::Abandon { interaction })?
            }
            Ev::Accept { ix, agent, offer } => {
                if self.recs[ix as usize].phase == (Phase::Offered { agent, offer }) {
                    let agent = self.agent_id(agent);
                    self.command(
                        t,
                        Command::Accept {
                            interaction: interaction_id(ix),
                            agent,
                        },
                    )?;
                }
            }
            Ev::Complete { ix, agent } => {
                if self.recs[ix as usize].phase == (Phase::Assigned { agent }) {
                    let agent = self.agent_id(agent);
                    self.command(
                        t,
                        Command::Complete {
                            interaction: interaction_id(ix),
                            agent: Some(agent),
                            wrap_up_code: None,
                            notes: None,
                        },
                    )?;
                }
            }
            Ev::Deflect(ix) => {
                if self.recs[ix as usize].phase == Phase::Waiting {
                    self.command(
                        t,
                        Command::Cancel {
                            interaction: interaction_id(ix),
                        },
                    )?;
                }
            }
            Ev::Withdraw(ix) => {
                self.while_waiting(t, ix, |interaction| Command::Cancel { interaction })?
            }
            Ev::Step { agent: a, step } => self.step(t, a, step as usize)?,
            Ev::Logout(a) => {
                let rt = &self.agents[a as usize];
                if rt.online && rt.leaving && rt.work == 0 {
                    let agent = self.agent_id(a);
                    self.command(t, Command::Logout { agent })?;
                }
            }
            Ev::Resume(a) => {
                let rt = &self.agents[a as usize];
                if rt.online && !rt.leaving && !rt.paused {
                    let agent = self.agent_id(a);
                    self.command(
                        t,
                        Command::SetState {
                            agent,
                            state: RequestedState::Available,
                        },
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Step `k` of agent `a`'s plan.
    fn step(&mut self, t: u64, a: u32, k: usize) -> Result<(), SimError> {
        let model = self.model;
        let Some((_, step)) = model.agents[a as usize].steps.get(k) else {
            return Ok(());
        };
        let rt = &mut self.agents[a as usize];
        let agent = model.agents[a as usize].id.clone();
        match step {
            Step::Login => {
                let was_leaving = std::mem::replace(&mut rt.leaving, false);
                rt.paused = false;
                if !rt.online {
                    self.command(t, Command::Login { agent })?;
                } else if was_leaving {
                    // Still finishing work after leaving: back to taking work.
                    let state = RequestedState::Available;
                    self.command(t, Command::SetState { agent, state })?;
                }
            }
            Step::Leave => {
                if rt.online {
                    rt.leaving = true;
                    if rt.work == 0 {
                        self.command(t, Command::Logout { agent })?;
                    } else {
                        let state = RequestedState::Paused {
                            reason: END_OF_SHIFT.to_owned(),
                        };
                        self.command(t, Command::SetState { agent, state })?;
                    }
                }
            }
            Step::Pause(reason) => {
                if rt.online && !rt.leaving {
                    rt.paused = true;
                    let state = RequestedState::Paused {
                        reason: reason.clone(),
                    };
                    self.command(t, Command::SetState { agent, state })?;
                }
            }
            Step::Resume => {
                if rt.online && !rt.leaving && rt.paused {
                    rt.paused = false;
                    let state = RequestedState::Available;
                    self.command(t, Command::SetState { agent, state })?;
                }
            }
        }
        Ok(())
    }

    /// Draws stream `s`'s next arrival after its current time and schedules it, unless the
    /// horizon ends first. Piecewise-constant rate: an Exp(1) amount of "rate area" is spent
    /// period after period (exact, no thinning).
    fn schedule_arrival(&mut self, s: usize) {
        let plan = &self.model.streams[s];
        let end = self.model.end.millis() as f64;
        let mut t = self.stream_next[s];
        let mut area: f64 = Exp1.sample(&mut self.stream_rng[s]);
        let mut i = plan.periods.partition_point(|p| p.0 <= t).saturating_sub(1);
        loop {
            let Some(&(_, rate)) = plan.periods.get(i) else {
                return;
            };
            let until = plan.periods.get(i + 1).map_or(end, |p| p.0);
            if rate > 0.0 {
                let dt = area / rate;
                if t + dt < until {
                    t += dt;
                    break;
                }
                area -= rate * (until - t);
            }
            t = until;
            i += 1;
            if t >= end {
                return;
            }
        }
        self.stream_next[s] = t;
        // Whole milliseconds, rounded down so that every arrival is before the end.
        self.schedule(t.floor() as u64, Ev::Arrival(s as u32));
    }

    fn arrive(&mut self, t: u64, s: usize) -> Result<(), SimError> {
        let plan = &self.model.streams[s];
        let rng = &mut self.stream_rng[s];
        let handle_ms = plan.handle.sample_millis(rng);
        let patience = plan.patience.as_ref().map(|p| p.sample_millis(rng));
        let ix = self.open_rec(t, plan.row, handle_ms, NONE);
        let mut spec = InteractionSpec::new(interaction_id(ix), plan.channel, plan.queue.clone());
        spec.requirements.clone_from(&plan.requirements);
        spec.priority = plan.priority;
        self.schedule_arrival(s);
        if let Some(p) = patience {
            self.schedule(t.saturating_add(p), Ev::Patience(ix));
        }
        self.command(t, Command::CreateInteraction { spec })
    }

    /// Records a new request created at `t`, waiting (counted in the figures when the measure
    /// has started by then); returns its index.
    fn open_rec(&mut self, t: u64, row: u32, handle_ms: u64, answer_ms: u64) -> u32 {
        let ix = self.recs.len() as u32;
        self.recs.push(Rec {
            row,
            created: t,
            handle_ms,
            answer_ms,
            first_offer: NONE,
            offers: 0,
            phase: Phase::Waiting,
            counted: t >= self.model.measure_from_ms,
        });
        self.open += 1;
        self.counts.interactions += 1;
        ix
    }

    /// Creates recorded interaction `i` of a replay and schedules the next one.
    fn arrive_replayed(&mut self, t: u64, i: usize) -> Result<(), SimError> {
        let model = self.model;
        let r = &model.replayed[i];
        let ix = self.open_rec(t, r.row, r.handle_ms, r.answer_ms);
        if let Some(next) = model.replayed.get(i + 1) {
            self.schedule(next.at_ms.max(t), Ev::Replayed(i as u32 + 1));
        }
        match r.leaves {
            Leaves::Never => {}
            Leaves::Abandons(after) => self.schedule(t.saturating_add(after), Ev::Patience(ix)),
            Leaves::Cancelled(after) => self.schedule(t.saturating_add(after), Ev::Withdraw(ix)),
        }
        let mut spec = r.spec.clone();
        spec.id = interaction_id(ix);
        self.command(t, Command::CreateInteraction { spec })
    }

    fn row_of(&mut self, ix: usize) -> Option<&mut RowCounts> {
        let rec = &self.recs[ix];
        if !rec.counted {
            return None;
        }
        Some(&mut self.counts.rows[rec.row as usize])
    }

    fn target_ms(&self, ix: usize) -> u64 {
        self.model.rows[self.recs[ix].row as usize].target_secs * 1000
    }

    /// Counts what the event did to the outcome of a measured interaction (the core's fold,
    /// judged against the row's threshold).
    fn count_outcome(&mut self, e: &Event) {
        let Some(outcome) = self.fold.apply(e) else {
            return;
        };
        let Some(ix) = self.ix(outcome.interaction()) else {
            return;
        };
        let target = self.target_ms(ix);
        if let Some(row) = self.row_of(ix) {
            row.outcome.add_against(&outcome, target);
        }
    }

    fn absorb(&mut self, events: &[Event]) {
        for e in events {
            self.count_outcome(e);
            let t = e.at.as_millis();
            match &e.kind {
                EventKind::InteractionOffered {
                    interaction, agent, ..
                } => {
                    let (Some(ix), Some(a)) = (self.ix(*interaction), self.agent_of(agent)) else {
                        continue;
                    };
                    let rec = &mut self.recs[ix];
                    rec.offers += 1;
                    rec.phase = Phase::Offered {
                        agent: a,
                        offer: rec.offers,
                    };
                    if rec.first_offer == NONE {
                        rec.first_offer = t;
                    }
                    let offer = rec.offers;
                    let recorded = rec.answer_ms;
                    if recorded != NONE {
                        rec.answer_ms = 0;
                    }
                    self.work_up(a, t);
                    let delay = if recorded == NONE {
                        self.model.answer_delay.sample_millis(&mut self.delay_rng)
                    } else {
                        recorded
                    };
                    self.schedule(
                        t.saturating_add(delay),
                        Ev::Accept {
                            ix: ix as u32,
                            agent: a,
                            offer,
                        },
                    );
                }
                EventKind::OfferAccepted { interaction, agent } => {
                    let (Some(ix), Some(a)) = (self.ix(*interaction), self.agent_of(agent)) else {
                        continue;
                    };
                    let rec = &mut self.recs[ix];
                    rec.phase = Phase::Assigned { agent: a };
                    let queued = rec.first_offer > rec.created;
                    let handle = rec.handle_ms;
                    self.open -= 1;
                    let group = self.model.agents[a as usize].group as usize;
                    let mut counted = false;
                    if let Some(row) = self.row_of(ix) {
                        row.queued += u64::from(queued);
                        row.answered_by[group] += 1;
                        counted = true;
                    }
                    if counted {
                        self.counts.agents[a as usize].answered += 1;
                    }
                    self.schedule(
                        t.saturating_add(handle),
                        Ev::Complete {
                            ix: ix as u32,
                            agent: a,
                        },
                    );
                }
                EventKind::OfferDeclined {
                    interaction, agent, ..
                } => {
                    let (Some(ix), Some(a)) = (self.ix(*interaction), self.agent_of(agent)) else {
                        continue;
                    };
                    self.recs[ix].phase = Phase::Waiting;
                    self.work_down(a, t);
                }
                EventKind::InteractionCompleted {
                    interaction,
                    agent,
                    wrap_up_until,
                    ..
                } => {
                    let (Some(ix), Some(a)) = (self.ix(*interaction), self.agent_of(agent)) else {
                        continue;
                    };
                    self.recs[ix].phase = Phase::Done;
                    if wrap_up_until.is_none() {
                        self.work_down(a, t);
                    }
                }
                EventKind::WrapUpEnded { agent, .. } => {
                    if let Some(a) = self.agent_of(agent) {
                        self.work_down(a, t);
                    }
                }
                EventKind::InteractionEnded { interaction, .. } => {
                    let Some(ix) = self.ix(*interaction) else {
                        continue;
                    };
                    let rec = &mut self.recs[ix];
                    let before = rec.phase;
                    rec.phase = Phase::Done;
                    let queued = rec.first_offer == NONE || rec.first_offer > rec.created;
                    if let Phase::Offered { agent, .. } = before {
                        self.work_down(agent, t);
                    }
                    if matches!(before, Phase::Waiting | Phase::Offered { .. }) {
                        self.open -= 1;
                    }
                    if let Some(row) = self.row_of(ix) {
                        row.queued += u64::from(queued);
                    }
                }
                EventKind::InteractionOverflowed {
                    interaction,
                    action,
                } => {
                    if matches!(action, OverflowAction::Voicemail | OverflowAction::Message) {
                        if let Some(ix) = self.ix(*interaction) {
                            self.schedule(t, Ev::Deflect(ix as u32));
                        }
                    }
                }
                EventKind::AgentStateChanged { agent, state } => {
                    let Some(a) = self.agent_of(agent) else {
                        continue;
                    };
                    self.agent_state(a, state, t);
                }
                _ => {}
            }
        }
    }

    fn agent_state(&mut self, a: u32, state: &AgentState, t: u64) {
        let group = self.model.agents[a as usize].group as usize;
        let (m0, m1) = (self.model.measure_from_ms, self.model.end.millis());
        let rt = &mut self.agents[a as usize];
        let mut resume = false;
        match state {
            AgentState::Offline => {
                if rt.online {
                    rt.online = false;
                    rt.leaving = false;
                    rt.paused = false;
                    let logged = overlap(rt.logged_since, t, m0, m1);
                    self.counts.groups[group].logged_ms += logged;
                    self.counts.agents[a as usize].logged_ms += logged;
                }
            }
            other => {
                if !rt.online {
                    rt.online = true;
                    rt.logged_since = t;
                }
                if let AgentState::Paused { reason } = other {
                    resume = reason == MISSED_OFFERS && !rt.leaving;
                }
            }
        }
        if resume {
            self.schedule(t, Ev::Resume(a));
        }
    }

    fn work_up(&mut self, a: u32, t: u64) {
        let rt = &mut self.agents[a as usize];
        if rt.work == 0 {
            rt.busy_since = t;
        }
        rt.work += 1;
    }

    fn work_down(&mut self, a: u32, t: u64) {
        let group = self.model.agents[a as usize].group as usize;
        let (m0, m1) = (self.model.measure_from_ms, self.model.end.millis());
        let rt = &mut self.agents[a as usize];
        rt.work = rt.work.saturating_sub(1);
        if rt.work == 0 {
            let busy = overlap(rt.busy_since, t, m0, m1);
            self.counts.groups[group].busy_ms += busy;
            self.counts.agents[a as usize].busy_ms += busy;
            if rt.leaving {
                self.schedule(t, Ev::Logout(a));
            }
        }
    }

    fn ix(&self, id: InteractionId) -> Option<usize> {
        let n = id.0 .0;
        (n >= 1 && n <= self.recs.len() as u128).then(|| (n - 1) as usize)
    }

    fn agent_of(&self, id: &AgentId) -> Option<u32> {
        self.agent_ix.get(id).copied()
    }

    /// Closes what is still open at the end of the run and returns the counts.
    fn finish(mut self) -> RepCounts {
        let (m0, m1) = (self.model.measure_from_ms, self.model.end.millis());
        let t = self.now.max(m1);
        for (a, rt) in self.agents.iter().enumerate() {
            let group: &mut GroupCounts =
                &mut self.counts.groups[self.model.agents[a].group as usize];
            let agent = &mut self.counts.agents[a];
            if rt.online {
                let logged = overlap(rt.logged_since, t, m0, m1);
                group.logged_ms += logged;
                agent.logged_ms += logged;
            }
            if rt.work > 0 {
                let busy = overlap(rt.busy_since, t, m0, m1);
                group.busy_ms += busy;
                agent.busy_ms += busy;
            }
        }
        for plan in &self.model.agents {
            self.counts.groups[plan.group as usize].agents += 1;
        }
        for rec in &self.recs {
            if rec.counted && matches!(rec.phase, Phase::Waiting | Phase::Offered { .. }) {
                let row = rec.row as usize;
                self.counts.rows[row].unserved += 1;
                self.counts.rows[row].queued += 1;
            }
        }
        self.counts
    }
}

/// The simulated interaction number `ix` (0-based) as a router id.
fn interaction_id(ix: u32) -> InteractionId {
    InteractionId::from_u128(u128::from(ix) + 1)
}

/// Length of `[a, b)` inside `[m0, m1)`.
fn overlap(a: u64, b: u64, m0: u64, m1: u64) -> u64 {
    b.min(m1).saturating_sub(a.max(m0))
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::UpsertQueue { .. } => "upsert_queue",
        Command::UpsertAgent { .. } => "upsert_agent",
        Command::Login { .. } => "login",
        Command::Logout { .. } => "logout",
        Command::SetState { .. } => "set_state",
        Command::CreateInteraction { .. } => "create_interaction",
        Command::Abandon { .. } => "abandon",
        Command::Accept { .. } => "accept",
        Command::Complete { .. } => "complete",
        Command::Cancel { .. } => "cancel",
        _ => "command",
    }
}
