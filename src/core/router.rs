//! The router: its state, validation helpers, routing decisions, and the dispatch of each
//! command to its function in `handle/`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::calendar::WorkCalendar;
use super::command::Command;
use super::error::RouteError;
use super::event::{
    Candidate, ConsultEndCause, Decision, DeclineCause, Event, EventKind, MoveCause, OfferContext,
    Rule,
};
use super::index::{
    rank_score, AgentKey, AgentSlot, Class, ClassKey, ExternalRefs, Interner, Phase, Profile,
    QueueSlot, Slot, Slots, Timer, TimerKind, WaitKey,
};
use super::model::{
    AgentId, AgentState, Channel, ContactId, InteractionId, InteractionSpec, OverflowAction,
    QueueConfig, QueueId, Requirement, Skill, StepAction, Strategy, Timestamp, MAX_LEVEL,
    MAX_REOFFER_AFTER_SECS, MIN_LEVEL,
};

/// The routing core: every agent, queue and open interaction of one contact center, and the
/// rules that match them.
///
/// It is synchronous and deterministic: time comes in as a parameter, and the same commands at
/// the same times give the same events. It does no I/O; a runtime persists the events it returns
/// and calls [`Router::tick`] at [`Router::next_deadline`].
///
/// ```
/// use guichet::core::{AgentConfig, Channel, Command, EventKind, InteractionId, InteractionSpec,
///     QueueConfig, Router, Timestamp};
///
/// let mut router = Router::new();
/// let t = Timestamp::from_secs(1_000);
/// router.handle(t, Command::UpsertQueue { config: QueueConfig::new("tax").requiring("tax", 2) })?;
/// router.handle(t, Command::UpsertAgent { config: AgentConfig::new("alice").with_skill("tax", 4) })?;
/// router.handle(t, Command::Login { agent: "alice".into() })?;
///
/// let spec = InteractionSpec::new(InteractionId::from_u128(1), Channel::Voice, "tax");
/// let events = router.handle(t, Command::CreateInteraction { spec })?;
/// assert!(matches!(&events[1].kind,
///     EventKind::InteractionOffered { agent, .. } if agent.as_str() == "alice"));
/// # Ok::<(), guichet::core::RouteError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Router {
    pub(super) skills: Interner<Skill>,
    pub(super) profiles: Interner<Profile>,
    pub(super) queues: Vec<QueueSlot>,
    pub(super) queue_ix: FxHashMap<QueueId, u32>,
    pub(super) agents: Vec<Option<AgentSlot>>,
    pub(super) agent_ix: FxHashMap<AgentId, u32>,
    /// The agents' indexes in id order, to give each agent its [`AgentSlot::order`].
    pub(super) agent_order: BTreeMap<AgentId, u32>,
    pub(super) free_agent_slots: Vec<u32>,
    pub(super) classes: Vec<Class>,
    pub(super) class_ix: FxHashMap<ClassKey, u32>,
    pub(super) interactions: Slots,
    pub(super) external: ExternalRefs,
    pub(super) timers: BTreeSet<(Timestamp, Timer)>,
    pub(super) last_agent: FxHashMap<ContactId, AgentId>,
    pub(super) offer_seq: u64,
    /// Waiting interactions that some agent declined (when zero, no check is needed).
    pub(super) declined_waiting: usize,
    /// The working calendar for delays announced in working days (configuration, not state:
    /// the deadlines it gives are journaled with each creation).
    pub(super) calendar: WorkCalendar,
    /// Agents whose class memberships await [`Router::flush_resyncs`] (empty between commands).
    pub(super) pending_resyncs: Vec<u32>,
}

/// The longest delay announced in working days.
pub(super) const MAX_WORKING_DAYS: u32 = 260;

/// The most objects for which debug builds check every invariant after each command.
pub(super) const DEBUG_CHECK_LIMIT: usize = 2_000;

impl Router {
    /// An empty router: no agent, no queue, no interaction.
    pub fn new() -> Self {
        Router::default()
    }

    /// Sets the working calendar used for queues whose delay is announced in working days
    /// (`sla_working_days`). Configuration, not state: not journaled nor in snapshots, so set
    /// it again after a restore.
    pub fn set_calendar(&mut self, calendar: WorkCalendar) {
        self.calendar = calendar;
    }

    /// The working calendar.
    pub fn calendar(&self) -> &WorkCalendar {
        &self.calendar
    }

    /// Handles one command at time `now`.
    ///
    /// On success, returns every event the command caused, in order (possibly none, for example
    /// when a creation repeats an open interaction's external reference). On error nothing has
    /// changed. Call [`Router::tick`] with the same `now` first, so that due timeouts are
    /// processed before the command.
    pub fn handle(&mut self, now: Timestamp, command: Command) -> Result<Vec<Event>, RouteError> {
        let mut out = Vec::new();
        let result = self.dispatch(now, command, &mut out);
        self.flush_resyncs();
        result?;
        self.debug_check();
        Ok(out)
    }

    /// Processes every timer due at or before `now`: offer timeouts, escalation steps, overflows,
    /// lapses of declines (the interaction is offered again) and the ends of wrap-up. Events carry
    /// the time their timer was due.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some((at, timer)) = self.timers.first().cloned() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, timer.clone()));
            self.fire(at, timer, &mut out);
        }
        self.flush_resyncs();
        self.debug_check();
        out
    }

    /// When [`Router::tick`] next has something to do, if ever.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.timers.first().map(|(at, _)| *at)
    }

    pub(super) fn debug_check(&self) {
        if cfg!(debug_assertions)
            && self.interactions.len() + self.agent_ix.len() <= DEBUG_CHECK_LIMIT
        {
            if let Err(e) = self.check_invariants() {
                panic!("router invariant broken: {e}");
            }
        }
    }

    pub(super) fn emit(&mut self, out: &mut Vec<Event>, at: Timestamp, kind: EventKind) {
        let event = Event { at, kind };
        let applied = self.apply_event(&event);
        debug_assert!(
            applied.is_ok(),
            "router emitted an event it cannot apply: {applied:?} {event:?}"
        );
        out.push(event);
    }

    pub(super) fn dispatch(
        &mut self,
        now: Timestamp,
        command: Command,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        match command {
            Command::UpsertAgent { config } => self.handle_upsert_agent(now, config, out),
            Command::RemoveAgent { agent } => self.handle_remove_agent(now, agent, out),
            Command::SetAgentSkills { agent, skills } => {
                self.handle_set_agent_skills(now, agent, skills, out)
            }
            Command::SetCapacity { agent, capacity } => {
                self.handle_set_capacity(now, agent, capacity, out)
            }
            Command::SetDevice { agent, device } => self.handle_set_device(now, agent, device, out),
            Command::Login { agent } => self.handle_login(now, agent, out),
            Command::Logout { agent } => self.handle_logout(now, agent, out),
            Command::SetState { agent, state } => self.handle_set_state(now, agent, state, out),
            Command::UpsertQueue { config } => self.handle_upsert_queue(now, config, out),
            Command::RemoveQueue { queue } => self.handle_remove_queue(now, queue, out),
            Command::AddMessage {
                interaction,
                message,
            } => self.handle_add_message(now, interaction, message, out),
            Command::FollowUp {
                interaction,
                message,
            } => self.handle_follow_up(now, interaction, message, out),
            Command::OpenConversation { spec, message } => {
                self.handle_open_conversation(now, spec, message, out)
            }
            Command::CreateInteraction { spec } => self.handle_create_interaction(now, spec, out),
            Command::Cancel { interaction } => self.handle_cancel(now, interaction, out),
            Command::Abandon { interaction } => self.handle_abandon(now, interaction, out),
            Command::Accept { interaction, agent } => {
                self.handle_accept(now, interaction, agent, out)
            }
            Command::Decline { interaction, agent } => {
                self.handle_decline(now, interaction, agent, out)
            }
            Command::Complete {
                interaction,
                agent,
                wrap_up_code,
                notes,
            } => self.handle_complete(now, interaction, agent, wrap_up_code, notes, out),
            Command::Transfer {
                interaction,
                to,
                by,
                note,
            } => self.handle_transfer(now, interaction, to, by, note, out),
            Command::StartConsult {
                interaction,
                by,
                to,
                note,
            } => self.handle_start_consult(now, interaction, by, to, note, out),
            Command::CompleteConsult { interaction, by } => {
                self.handle_complete_consult(now, interaction, by, out)
            }
            Command::CancelConsult { interaction, by } => {
                self.handle_cancel_consult(now, interaction, by, out)
            }
            Command::ChangePriority {
                interaction,
                priority,
            } => self.handle_change_priority(now, interaction, priority, out),
        }
    }

    pub(super) fn fire(&mut self, at: Timestamp, timer: Timer, out: &mut Vec<Event>) {
        match timer {
            Timer::OfferTimeout(id) => {
                let Some(slot) = self.interactions.get(&id) else {
                    return;
                };
                let Phase::Offered { agent: a, deadline } = slot.phase else {
                    return;
                };
                if deadline > at {
                    return;
                }
                let max_misses = self.queues[slot.queue as usize].config.max_misses;
                let agent = self.agent_ref(a).config.id.clone();
                self.emit(
                    out,
                    at,
                    EventKind::OfferDeclined {
                        interaction: id,
                        agent: agent.clone(),
                        cause: DeclineCause::TimedOut,
                    },
                );
                let slot = self.agent_ref(a);
                if max_misses > 0
                    && slot.misses >= max_misses
                    && slot.state == AgentState::Available
                {
                    self.emit(
                        out,
                        at,
                        EventKind::AgentStateChanged {
                            agent,
                            state: AgentState::Paused {
                                reason: MISSED_OFFERS.to_owned(),
                            },
                        },
                    );
                }
                self.match_interaction(at, id, out);
                self.match_agent(at, a, out);
            }
            Timer::Wait(id) => {
                let Some(slot) = self.interactions.get_mut(&id) else {
                    return;
                };
                if slot.phase != Phase::Waiting {
                    return;
                }
                // `tick` took the timer out of the set: forget it, so that what follows sets the
                // next one.
                slot.timer = None;
                let Some(slot) = self.interactions.get(&id) else {
                    return;
                };
                let queue = &self.queues[slot.queue as usize].config;
                if slot.target().is_none() {
                    let step_due = queue
                        .escalation
                        .get(slot.step as usize)
                        .is_some_and(|s| slot.queue_entered_at.plus_secs(s.after_secs) <= at);
                    if step_due {
                        let step = slot.step + 1;
                        self.emit(
                            out,
                            at,
                            EventKind::InteractionEscalated {
                                interaction: id,
                                step,
                            },
                        );
                        self.match_interaction(at, id, out);
                        return;
                    }
                    let overflow = queue.overflow.clone().filter(|o| {
                        !slot.overflowed && slot.queue_entered_at.plus_secs(o.after_secs) <= at
                    });
                    if let Some(overflow) = overflow {
                        self.emit(
                            out,
                            at,
                            EventKind::InteractionOverflowed {
                                interaction: id,
                                action: overflow.action.clone(),
                            },
                        );
                        if let OverflowAction::Queue { queue } = overflow.action {
                            self.emit(
                                out,
                                at,
                                EventKind::InteractionMoved {
                                    interaction: id,
                                    queue,
                                    target: None,
                                    cause: MoveCause::Overflow,
                                    restart_wait: false,
                                    by: None,
                                    note: None,
                                },
                            );
                            self.match_interaction(at, id, out);
                        }
                        return;
                    }
                }
                if slot
                    .next_lapse(queue.reoffer_after_secs)
                    .is_some_and(|lapse| lapse <= at)
                {
                    // Lapses the due declines, then offers it (to the agent who declined, if
                    // that agent is free and the best).
                    self.match_interaction(at, id, out);
                } else {
                    // Not due (the queue changed since the timer was set): set it again.
                    let timer = self.wait_deadline(slot).map(|t| (t, TimerKind::Wait));
                    self.set_timer(id, timer);
                }
            }
            Timer::WrapUpEnd(id) => {
                let Some(slot) = self.interactions.get(&id) else {
                    return;
                };
                let Phase::WrapUp { agent: a, until } = slot.phase else {
                    return;
                };
                if until > at {
                    return;
                }
                self.end_wrap_up(at, a, id, None, None, out);
                self.match_agent(at, a, out);
            }
            Timer::ConsultTimeout(id) => {
                let pending = self
                    .interactions
                    .get(&id)
                    .and_then(|s| s.consult())
                    .is_some_and(|c| c.deadline.is_some_and(|d| d <= at));
                if pending {
                    if let Some(c) = self.end_consult(at, id, ConsultEndCause::TimedOut, out) {
                        self.match_agent(at, c, out);
                    }
                }
            }
            Timer::AgentWrapUp(agent) => {
                let Some(a) = self.agent_ix.get(&agent).copied() else {
                    return;
                };
                if !matches!(self.agent_ref(a).state, AgentState::WrapUp { until } if until <= at) {
                    return;
                }
                self.end_wrap_ups(at, a, out);
                self.wrap_up_done(at, a, out);
            }
        }
    }

    /// A code given at completion must be one of the queue's, when it lists some.
    pub(super) fn check_wrap_up_code(
        &self,
        interaction: InteractionId,
        queue: u32,
        code: Option<&str>,
    ) -> Result<(), RouteError> {
        let config = &self.queues[queue as usize].config;
        match code {
            Some(code)
                if !config.wrap_up_codes.is_empty()
                    && !config.wrap_up_codes.iter().any(|c| c == code) =>
            {
                Err(RouteError::UnknownWrapUpCode {
                    interaction,
                    queue: config.id.clone(),
                    code: code.to_owned(),
                    known: config.wrap_up_codes.join(", "),
                })
            }
            _ => Ok(()),
        }
    }

    /// The code a wrap-up of `interaction` ends with when the agent gave none: its queue's
    /// default, `None` when it has a code already or the queue has no default.
    pub(super) fn default_code_for(&self, interaction: InteractionId) -> Option<String> {
        let slot = self.interactions.get(&interaction)?;
        if slot.wrap_up_code().is_some() {
            return None;
        }
        self.queues[slot.queue as usize]
            .config
            .default_wrap_up_code
            .clone()
    }

    /// The holder completes an interaction in wrap-up (a call the caller hung up, or a code
    /// corrected): its wrap-up ends now with the code and notes; an agent left with no other
    /// wrap-up is available again.
    pub(super) fn finish_wrap_up(
        &mut self,
        at: Timestamp,
        interaction: InteractionId,
        a: u32,
        wrap_up_code: Option<String>,
        notes: Option<String>,
        out: &mut Vec<Event>,
    ) {
        self.end_wrap_up(at, a, interaction, wrap_up_code, notes, out);
        self.wrap_up_done(at, a, out);
    }

    /// Ends the wrap-up of `interaction` held by agent `a`, with the agent's code and notes;
    /// without a code, the queue's default is recorded (the one place a wrap-up ends).
    pub(super) fn end_wrap_up(
        &mut self,
        at: Timestamp,
        a: u32,
        interaction: InteractionId,
        wrap_up_code: Option<String>,
        notes: Option<String>,
        out: &mut Vec<Event>,
    ) {
        let agent = self.agent_ref(a).config.id.clone();
        let wrap_up_code = wrap_up_code.or_else(|| self.default_code_for(interaction));
        self.emit(
            out,
            at,
            EventKind::WrapUpEnded {
                interaction,
                agent,
                wrap_up_code,
                notes,
            },
        );
    }

    /// After wrap-ups of agent `a` ended: an agent in wrap-up with none left is available
    /// again, and takes waiting work (the one place wrap-up turns into availability).
    pub(super) fn wrap_up_done(&mut self, at: Timestamp, a: u32, out: &mut Vec<Event>) {
        let other_wrap_up = self.agent_ref(a).work.iter().any(|id| {
            matches!(
                self.interactions.get(id).map(|s| s.phase),
                Some(Phase::WrapUp { .. })
            )
        });
        if matches!(self.agent_ref(a).state, AgentState::WrapUp { .. }) && !other_wrap_up {
            let agent = self.agent_ref(a).config.id.clone();
            self.emit(
                out,
                at,
                EventKind::AgentStateChanged {
                    agent,
                    state: AgentState::Available,
                },
            );
        }
        self.match_agent(at, a, out);
    }

    /// Ends every wrap-up the agent has in progress, each with its queue's default code.
    pub(super) fn end_wrap_ups(&mut self, at: Timestamp, a: u32, out: &mut Vec<Event>) {
        let mut wrapping: Vec<InteractionId> = self
            .agent_ref(a)
            .work
            .iter()
            .copied()
            .filter(|id| {
                matches!(
                    self.interactions.get(id).map(|s| s.phase),
                    Some(Phase::WrapUp { .. })
                )
            })
            .collect();
        wrapping.sort_unstable();
        for interaction in wrapping {
            self.end_wrap_up(at, a, interaction, None, None, out);
        }
    }

    /// Ends the consultation on `id`, if any, with `cause`; returns the consulted agent, whose
    /// capacity is freed (the caller lets it take waiting work).
    pub(super) fn end_consult(
        &mut self,
        at: Timestamp,
        id: InteractionId,
        cause: ConsultEndCause,
        out: &mut Vec<Event>,
    ) -> Option<u32> {
        let c = self.interactions.get(&id)?.consult()?.agent;
        let agent = self.agent_ref(c).config.id.clone();
        self.emit(
            out,
            at,
            EventKind::ConsultEnded {
                interaction: id,
                agent,
                cause,
            },
        );
        Some(c)
    }

    /// The holder `by` of `interaction` and its consultation (refused when `by` does not hold it
    /// or there is none).
    pub(super) fn consult_of(
        &self,
        interaction: InteractionId,
        by: &AgentId,
    ) -> Result<(u32, Option<&super::index::Consult>), RouteError> {
        let b = self.agent_idx(by)?;
        let slot = self.open_slot(interaction)?;
        if !matches!(slot.phase, Phase::Assigned { agent } if agent == b) {
            return Err(RouteError::NotAssignedTo {
                interaction,
                agent: by.clone(),
            });
        }
        match slot.consult() {
            Some(c) => Ok((b, Some(c))),
            None => Err(RouteError::NoConsultation(interaction)),
        }
    }

    /// Ends every consultation agent `a` takes part in, as the holder (`holder_left`) or as the
    /// consulted agent (`consulted_left`), when it logs out or is removed; the other agents
    /// freed take waiting work.
    pub(super) fn end_consults_of(&mut self, at: Timestamp, a: u32, out: &mut Vec<Event>) {
        let mut held: Vec<InteractionId> = self
            .agent_ref(a)
            .work
            .iter()
            .copied()
            .filter(|id| {
                self.interactions
                    .get(id)
                    .is_some_and(|s| s.consult().is_some())
            })
            .collect();
        held.sort_unstable();
        let mut freed = Vec::new();
        for id in held {
            freed.extend(self.end_consult(at, id, ConsultEndCause::HolderLeft, out));
        }
        let mut consulted = self.agent_ref(a).consults.clone();
        consulted.sort_unstable();
        for id in consulted {
            self.end_consult(at, id, ConsultEndCause::ConsultedLeft, out);
        }
        for c in freed {
            self.match_agent(at, c, out);
        }
    }

    pub(super) fn logout(&mut self, at: Timestamp, a: u32, out: &mut Vec<Event>) {
        self.end_consults_of(at, a, out);
        let agent = self.agent_ref(a).config.id.clone();
        let mut offered: Vec<WaitKey> = self
            .agent_ref(a)
            .work
            .iter()
            .filter_map(|id| self.interactions.get(id))
            .filter(|s| matches!(s.phase, Phase::Offered { .. }))
            .map(WaitKey::of)
            .collect();
        // Revoked offers go back in line order, so that they are re-offered in that order.
        offered.sort_unstable();
        for key in &offered {
            self.emit(
                out,
                at,
                EventKind::OfferDeclined {
                    interaction: key.id(),
                    agent: agent.clone(),
                    cause: DeclineCause::Revoked,
                },
            );
        }
        self.end_wrap_ups(at, a, out);
        self.emit(
            out,
            at,
            EventKind::AgentStateChanged {
                agent,
                state: AgentState::Offline,
            },
        );
        for key in offered {
            self.match_interaction(at, key.id(), out);
        }
    }

    /// Lets the agents whose decline of a waiting interaction is `reoffer_after_secs` old by
    /// `at` be offered it again (one `decline_lapsed` event each).
    pub(super) fn lapse_declines(
        &mut self,
        at: Timestamp,
        id: InteractionId,
        out: &mut Vec<Event>,
    ) {
        let Some(slot) = self.interactions.get(&id) else {
            return;
        };
        if slot.phase != Phase::Waiting || slot.declined_by.is_empty() {
            return;
        }
        let reoffer = self.queues[slot.queue as usize].config.reoffer_after_secs;
        let lapsed: Vec<AgentId> = slot
            .declined_by
            .iter()
            .filter(|d| d.at.plus_secs(reoffer) <= at)
            .map(|d| d.agent.clone())
            .collect();
        for agent in lapsed {
            self.emit(
                out,
                at,
                EventKind::DeclineLapsed {
                    interaction: id,
                    agent,
                },
            );
        }
    }

    /// Offers a waiting interaction to the best free eligible agent of its class, if any (after
    /// lapsing the declines that are `reoffer_after_secs` old by `at`).
    pub(super) fn match_interaction(
        &mut self,
        at: Timestamp,
        id: InteractionId,
        out: &mut Vec<Event>,
    ) {
        self.lapse_declines(at, id, out);
        self.flush_resyncs();
        let Some(slot) = self.interactions.get(&id) else {
            return;
        };
        if slot.phase != Phase::Waiting {
            return;
        }
        let class = &self.classes[slot.class as usize];
        let strategy = class.strategy;
        let mut best: Option<&AgentKey> = None;
        let mut runner: Option<&AgentKey> = None;
        for key in class.agents.iter() {
            if !slot.declined_by.is_empty() && slot.declined(&self.agent_ref(key.agent).config.id) {
                continue;
            }
            if best.is_none() {
                best = Some(key);
            } else {
                runner = Some(key);
                break;
            }
        }
        let queue = &self.queues[slot.queue as usize].config;
        let mut rule = if slot.target().is_some() {
            Rule::Targeted
        } else {
            Rule::Strategy { strategy }
        };
        let id_of = |k: &AgentKey| self.agent_ref(k.agent).config.id.clone();
        let mut winner = best.map(|k| (id_of(k), rank_score(strategy, k.rank, at)));
        let mut runner_up = runner.map(|k| Candidate {
            agent: id_of(k),
            score: rank_score(strategy, k.rank, at),
        });
        // The contact's last agent: a bonus under most_competent, preferred outright otherwise.
        if let (Some(contact), None) = (&slot.spec.contact, slot.target()) {
            if let Some(last) = self.last_agent.get(contact) {
                let free = self
                    .agent_ix
                    .get(last)
                    .and_then(|&la| self.agents[la as usize].as_ref())
                    .and_then(|agent| agent.membership(slot.class).map(|m| (agent, m)))
                    .and_then(|(agent, m)| m.key.map(|rank| (agent.order, rank)))
                    .filter(|_| !slot.declined(last));
                if let Some((last_order, rank)) = free {
                    let is_best = best.is_some_and(|k| k.order == last_order);
                    let last_score = rank_score(strategy, rank, at);
                    let take = match strategy {
                        Strategy::MostCompetent => {
                            let with_bonus = last_score + i64::from(queue.last_agent_bonus);
                            match best {
                                Some(k) if !is_best => {
                                    let best_score = rank_score(strategy, k.rank, at);
                                    // Same order as the set: score desc, then the tie-breaks
                                    // (idle asc, last offer asc), then id asc.
                                    (
                                        with_bonus,
                                        std::cmp::Reverse((rank.1, rank.2)),
                                        std::cmp::Reverse(last_order),
                                    ) > (
                                        best_score,
                                        std::cmp::Reverse((k.rank.1, k.rank.2)),
                                        std::cmp::Reverse(k.order),
                                    )
                                }
                                _ => true,
                            }
                        }
                        _ => true,
                    };
                    if take {
                        if !is_best {
                            runner_up = winner
                                .take()
                                .map(|(agent, score)| Candidate { agent, score });
                        }
                        let score = if strategy == Strategy::MostCompetent {
                            last_score + i64::from(queue.last_agent_bonus)
                        } else {
                            last_score
                        };
                        winner = Some((last.clone(), score));
                        rule = Rule::LastAgent { strategy };
                    }
                }
            }
        }
        let Some((agent, score)) = winner else {
            return;
        };
        let decision = Decision {
            rule,
            step: slot.step,
            candidates: class.agents.len() as u32,
            score,
            runner_up,
        };
        let deadline = at.plus_secs(queue.offer_timeout_secs);
        let context = self.offer_context(id);
        self.emit(
            out,
            at,
            EventKind::InteractionOffered {
                interaction: id,
                agent,
                deadline,
                decision,
                context,
            },
        );
    }

    /// What the offer of waiting interaction `id` carries for the agent's desktop: the
    /// interaction as it waits, its queue's wrap-up codes and its last transfer's note.
    pub(super) fn offer_context(&self, id: InteractionId) -> Option<Arc<OfferContext>> {
        let slot = self.interactions.get(&id)?;
        let queue = &self.queues[slot.queue as usize].config;
        Some(Arc::new(OfferContext {
            spec: Arc::clone(&slot.spec),
            queue: queue.id.clone(),
            target: slot.target().cloned(),
            priority: slot.priority,
            sla_deadline: slot.sla_deadline,
            created_at: slot.created_at,
            enqueued_at: slot.enqueued_at,
            step: slot.step,
            wrap_up_codes: queue.wrap_up_codes.clone(),
            default_wrap_up_code: queue.default_wrap_up_code.clone(),
            transfer: slot.transfer().cloned(),
        }))
    }

    /// Lets an agent with free capacity take the first waiting interactions it is eligible for,
    /// across its classes, until it has no room left or nothing is waiting for it.
    pub(super) fn match_agent(&mut self, at: Timestamp, a: u32, out: &mut Vec<Event>) {
        loop {
            let Some(agent) = self.agents[a as usize].as_ref() else {
                return;
            };
            if agent.state != AgentState::Available {
                return;
            }
            let mut best: Option<(WaitKey, u32)> = None;
            let mut compared = 0u32;
            for m in &agent.memberships {
                let class = &self.classes[m.class as usize];
                if class.waiting.is_empty() || !agent.can_take(class.key.channel) {
                    continue;
                }
                let head = if self.declined_waiting == 0 {
                    class.waiting.first().copied()
                } else {
                    class.waiting.iter().copied().find(|k| {
                        self.interactions
                            .get(&k.id())
                            .is_none_or(|s| !s.declined(&agent.config.id))
                    })
                };
                let Some(head) = head else {
                    continue;
                };
                compared += 1;
                if best.is_none_or(|(b, _)| head < b) {
                    best = Some((head, m.competence));
                }
            }
            let Some((head, competence)) = best else {
                return;
            };
            let Some(slot) = self.interactions.get(&head.id()) else {
                return;
            };
            let queue = &self.queues[slot.queue as usize].config;
            let decision = Decision {
                rule: Rule::NextInLine,
                step: slot.step,
                candidates: compared,
                score: i64::from(competence),
                runner_up: None,
            };
            let deadline = at.plus_secs(queue.offer_timeout_secs);
            let agent_id = agent.config.id.clone();
            let context = self.offer_context(head.id());
            self.emit(
                out,
                at,
                EventKind::InteractionOffered {
                    interaction: head.id(),
                    agent: agent_id,
                    deadline,
                    decision,
                    context,
                },
            );
        }
    }

    pub(super) fn match_agent_id(&mut self, at: Timestamp, agent: &AgentId, out: &mut Vec<Event>) {
        if let Some(a) = self.agent_ix.get(agent).copied() {
            self.match_agent(at, a, out);
        }
    }

    /// After a queue changed: the free agents of every class of it (and of the queues widening to
    /// it) that has waiting interactions take what they can, in agent-id order.
    pub(super) fn rematch_queue(&mut self, at: Timestamp, queue: &QueueId, out: &mut Vec<Event>) {
        let Some(&q) = self.queue_ix.get(queue) else {
            return;
        };
        let mut classes = self.queues[q as usize].classes.clone();
        for other in &self.queues {
            if other
                .config
                .escalation
                .iter()
                .any(|s| matches!(&s.action, StepAction::WidenTo { queue: w } if w == queue))
            {
                classes.extend_from_slice(&other.classes);
            }
        }
        if self.declined_waiting > 0 {
            // A shorter `reoffer_after_secs` may have lapsed declines already.
            let mut declined: Vec<InteractionId> = classes
                .iter()
                .flat_map(|&c| self.classes[c as usize].waiting.iter().map(|k| k.id()))
                .filter(|id| {
                    self.interactions
                        .get(id)
                        .is_some_and(|s| !s.declined_by.is_empty())
                })
                .collect();
            // In id order, not class order: a router restored from a snapshot creates its
            // classes in another order, and must emit the same events.
            declined.sort_unstable();
            for id in declined {
                self.lapse_declines(at, id, out);
            }
        }
        // In id order (an agent's order is its id's).
        self.flush_resyncs();
        let mut agents: Vec<(u64, u32)> = classes
            .iter()
            .map(|&c| &self.classes[c as usize])
            .filter(|c| !c.waiting.is_empty())
            .flat_map(|c| c.agents.iter().map(|k| (k.order, k.agent)))
            .collect();
        agents.sort_unstable();
        agents.dedup();
        for (_, a) in agents {
            self.match_agent(at, a, out);
        }
    }

    // ----- validation helpers -----

    pub(super) fn agent_idx(&self, id: &AgentId) -> Result<u32, RouteError> {
        self.agent_ix
            .get(id)
            .copied()
            .ok_or_else(|| RouteError::UnknownAgent(id.clone()))
    }

    pub(super) fn queue_idx(&self, id: &QueueId) -> Result<u32, RouteError> {
        match self.queue_ix.get(id) {
            Some(&q) if !self.queues[q as usize].removed => Ok(q),
            _ => Err(RouteError::UnknownQueue(id.clone())),
        }
    }

    pub(super) fn agent_ref(&self, a: u32) -> &AgentSlot {
        // Agent indexes come from `agent_ix`, which only maps to live slots.
        match self.agents[a as usize].as_ref() {
            Some(slot) => slot,
            None => unreachable!("agent index {a} points to a removed agent"),
        }
    }

    /// Validates `spec` and emits its creation; `None` when an open interaction already has its
    /// external reference (nothing emitted). The caller matches the new interaction.
    pub(super) fn create(
        &mut self,
        now: Timestamp,
        spec: InteractionSpec,
        out: &mut Vec<Event>,
    ) -> Result<Option<InteractionId>, RouteError> {
        if let Some(r) = &spec.external_ref {
            if self.external.contains_key(r) {
                return Ok(None);
            }
        }
        if self.interactions.contains_key(&spec.id) {
            return Err(RouteError::DuplicateInteraction(spec.id));
        }
        let q = self.queue_idx(&spec.queue)?;
        let queue = &self.queues[q as usize].config;
        if !queue.channels.contains(&spec.channel) {
            return Err(RouteError::ChannelNotAccepted {
                queue: spec.queue.clone(),
                channel: spec.channel,
            });
        }
        validate_requirements(&spec.requirements)?;
        let priority = spec.priority.unwrap_or(queue.default_priority);
        let sla_deadline =
            spec.sla_deadline
                .unwrap_or_else(|| match queue.sla_working_days.get(spec.channel) {
                    0 => now.plus_secs(queue.sla_target_secs.get(spec.channel)),
                    days => self.calendar.deadline_after(now, days),
                });
        let id = spec.id;
        let mut spec = spec;
        spec.shrink_to_fit();
        self.emit(
            out,
            now,
            EventKind::InteractionCreated {
                spec: Arc::new(spec),
                priority,
                sla_deadline,
            },
        );
        Ok(Some(id))
    }

    pub(super) fn open_slot(&self, id: InteractionId) -> Result<&Slot, RouteError> {
        self.interactions
            .get(&id)
            .ok_or(RouteError::UnknownInteraction(id))
    }

    pub(super) fn agent_open_count(&self, a: u32) -> usize {
        let agent = self.agent_ref(a);
        let personal: usize = agent
            .memberships
            .iter()
            .map(|m| &self.classes[m.class as usize])
            .filter(|c| c.key.target.is_some())
            .map(|c| c.waiting.len())
            .sum();
        agent.work.len() + agent.consults.len() + personal
    }

    pub(super) fn check_capacity(
        &self,
        a: u32,
        capacity: &super::model::Capacity,
    ) -> Result<(), RouteError> {
        let agent = self.agent_ref(a);
        for ch in Channel::ALL {
            let load = agent.load[ch.index()];
            if capacity.get(ch) < load {
                return Err(RouteError::CapacityBelowLoad {
                    agent: agent.config.id.clone(),
                    channel: ch,
                    capacity: capacity.get(ch),
                    load,
                });
            }
        }
        Ok(())
    }

    /// Another live queue whose escalation or overflow refers to `queue`.
    pub(super) fn queue_referrer(&self, queue: &QueueId) -> Option<QueueId> {
        self.queues
            .iter()
            .filter(|q| !q.removed && q.config.id != *queue)
            .find(|q| queue_refers_to(&q.config, queue))
            .map(|q| q.config.id.clone())
    }

    pub(super) fn validate_queue(&self, config: &QueueConfig) -> Result<(), RouteError> {
        let invalid = |reason: String| RouteError::InvalidQueue {
            queue: config.id.clone(),
            reason,
        };
        if config.id.as_str().is_empty() {
            return Err(invalid("the id must not be empty".into()));
        }
        if config.channels.is_empty() {
            return Err(invalid("it must take at least one channel".into()));
        }
        validate_requirements(&config.requirements)?;
        if config.offer_timeout_secs == 0 {
            return Err(invalid("offer_timeout_secs must be at least 1".into()));
        }
        validate_wrap_up_codes(config).map_err(invalid)?;
        if !(1..=MAX_REOFFER_AFTER_SECS).contains(&config.reoffer_after_secs) {
            return Err(invalid(format!(
                "reoffer_after_secs is {}: it must be 1 to {MAX_REOFFER_AFTER_SECS} (a day)",
                config.reoffer_after_secs
            )));
        }
        if let Some(c) = Channel::ALL
            .into_iter()
            .find(|c| config.sla_working_days.get(*c) > MAX_WORKING_DAYS)
        {
            return Err(invalid(format!(
                "sla_working_days for {c} is {}: at most {MAX_WORKING_DAYS} (a year)",
                config.sla_working_days.get(c)
            )));
        }
        if config.escalation.len() > usize::from(u8::MAX) - 1 {
            return Err(invalid("at most 254 escalation steps".into()));
        }
        let mut previous = 0;
        for (i, step) in config.escalation.iter().enumerate() {
            if step.after_secs < previous {
                return Err(invalid(format!(
                    "escalation step {} ({}s) comes before the step above it ({previous}s): \
                     list steps in increasing after_secs",
                    i + 1,
                    step.after_secs
                )));
            }
            previous = step.after_secs;
            match &step.action {
                StepAction::LowerLevel { skill, to } => {
                    check_level(skill, *to)?;
                }
                StepAction::DropSkill { .. } => {}
                StepAction::WidenTo { queue } => {
                    if *queue == config.id {
                        return Err(invalid(format!(
                            "escalation step {} widens to the queue itself",
                            i + 1
                        )));
                    }
                    self.queue_idx(queue).map_err(|_| {
                        invalid(format!(
                            "escalation step {} widens to unknown queue {queue}",
                            i + 1
                        ))
                    })?;
                }
            }
        }
        if let Some(overflow) = &config.overflow {
            if overflow.after_secs == 0 {
                return Err(invalid("overflow after_secs must be at least 1".into()));
            }
            if let OverflowAction::Queue { queue } = &overflow.action {
                if *queue == config.id {
                    return Err(invalid("it overflows to itself".into()));
                }
                let q = self
                    .queue_idx(queue)
                    .map_err(|_| invalid(format!("it overflows to unknown queue {queue}")))?;
                let target = &self.queues[q as usize].config;
                if let Some(&missing) = config
                    .channels
                    .iter()
                    .find(|c| !target.channels.contains(c))
                {
                    return Err(invalid(format!(
                        "it overflows to queue {queue}, which does not take {missing}"
                    )));
                }
            }
        }
        // Changing the channels must not strand open interactions.
        if let Some(&q) = self.queue_ix.get(&config.id) {
            if let Some(slot) = self
                .interactions
                .values()
                .filter(|s| s.queue == q)
                .find(|s| !config.channels.contains(&s.spec.channel))
            {
                return Err(invalid(format!(
                    "interaction {} is a {} interaction in this queue: keep that channel until it ends",
                    slot.spec.id, slot.spec.channel
                )));
            }
        }
        Ok(())
    }
}

/// The pause reason the router sets after too many missed offers in a row.
pub const MISSED_OFFERS: &str = "missed_offers";

/// The pause reason the router sets after too many declined offers in a row (`max_declines`).
pub const DECLINED_OFFERS: &str = "declined_offers";

pub(super) fn queue_refers_to(config: &QueueConfig, queue: &QueueId) -> bool {
    config
        .escalation
        .iter()
        .any(|s| matches!(&s.action, StepAction::WidenTo { queue: w } if w == queue))
        || matches!(&config.overflow, Some(o) if matches!(&o.action, OverflowAction::Queue { queue: w } if w == queue))
}

pub(super) fn check_level(skill: &Skill, level: u8) -> Result<(), RouteError> {
    if (MIN_LEVEL..=MAX_LEVEL).contains(&level) {
        Ok(())
    } else {
        Err(RouteError::InvalidLevel {
            skill: skill.clone(),
            level,
        })
    }
}

/// The most wrap-up codes a queue may have, and the longest code.
pub(super) const MAX_WRAP_UP_CODES: usize = 50;
pub(super) const MAX_WRAP_UP_CODE_BYTES: usize = 64;

pub(super) fn validate_wrap_up_codes(config: &QueueConfig) -> Result<(), String> {
    if config.wrap_up_codes.len() > MAX_WRAP_UP_CODES {
        return Err(format!(
            "it has {} wrap_up_codes: at most {MAX_WRAP_UP_CODES}",
            config.wrap_up_codes.len()
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for code in &config.wrap_up_codes {
        if code.trim().is_empty() || code.len() > MAX_WRAP_UP_CODE_BYTES {
            return Err(format!(
                "each of wrap_up_codes must have 1 to {MAX_WRAP_UP_CODE_BYTES} bytes"
            ));
        }
        if !seen.insert(code.as_str()) {
            return Err(format!("wrap_up_codes lists {code:?} twice"));
        }
    }
    if let Some(default) = &config.default_wrap_up_code {
        if default.len() > MAX_WRAP_UP_CODE_BYTES {
            return Err(format!(
                "default_wrap_up_code is longer than {MAX_WRAP_UP_CODE_BYTES} bytes"
            ));
        }
        if !config.wrap_up_codes.is_empty() && !seen.contains(default.as_str()) {
            return Err(format!(
                "default_wrap_up_code {default:?} is not one of wrap_up_codes: add it to them"
            ));
        }
    }
    Ok(())
}

pub(super) fn validate_levels(skills: &BTreeMap<Skill, u8>) -> Result<(), RouteError> {
    skills.iter().try_for_each(|(s, &l)| check_level(s, l))
}

pub(super) fn validate_requirements(reqs: &[Requirement]) -> Result<(), RouteError> {
    reqs.iter()
        .try_for_each(|r| check_level(&r.skill, r.min_level))
}
