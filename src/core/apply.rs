//! Applying events to the router's state.
//!
//! This is the only code that changes the router. [`Router::handle`] and [`Router::tick`] decide
//! and then apply the events they emit through here; recovery applies journaled events through
//! here too, so a replay rebuilds the same state by construction.

use super::error::RouteError;
use super::event::{DeclineCause, Event, EventKind, MoveCause};
use super::index::{
    AgentSlot, Consult, Declines, Phase, QueueSlot, Slot, Timer, TimerKind, WaitKey,
};
use super::message::MessageDirection;
use super::model::{AgentId, AgentState, Channel, ContactId, InteractionId, QueueId, Timestamp};
use super::router::Router;
use super::view::Decline;

fn replay(msg: String) -> RouteError {
    RouteError::Replay(msg)
}

impl Router {
    /// Forgets which agent last served `contact` (the last-agent preference), when the contact's
    /// personal data is erased. This is the one change made without an event, on purpose: an
    /// event would write the erased contact id back into the journal. The erasure of the journal
    /// rows is the durable record; replaying them can no longer rebuild the preference. Returns
    /// whether there was one.
    pub fn forget_contact(&mut self, contact: &ContactId) -> bool {
        self.last_agent.remove(contact).is_some()
    }

    /// Applies one event, as recovery does with journaled events. No decision is taken: replaying
    /// the events a router emitted, in order, into an empty router rebuilds the same state.
    ///
    /// An event that does not fit the state (unknown agent, interaction in another phase) is
    /// refused with [`RouteError::Replay`] and changes nothing.
    pub fn apply(&mut self, event: &Event) -> Result<(), RouteError> {
        let applied = self.apply_event(event);
        self.flush_resyncs();
        applied
    }

    /// [`Router::apply`] without bringing the classes' agent sets up to date: the router's own
    /// commands apply their events through this, and flush once at their end.
    pub(super) fn apply_event(&mut self, event: &Event) -> Result<(), RouteError> {
        let at = event.at;
        match &event.kind {
            EventKind::AgentUpserted { config } => {
                let levels = self.intern_levels(&config.skills);
                match self.agent_ix.get(&config.id).copied() {
                    Some(a) => {
                        let agent = self.agent_mut(a);
                        for ch in Channel::ALL {
                            if config.capacity.get(ch) < agent.load[ch.index()] {
                                return Err(replay(format!(
                                    "agent {}: capacity below load on {ch}",
                                    config.id
                                )));
                            }
                        }
                        agent.config = (**config).clone();
                        agent.levels = levels;
                        self.attach_agent(a);
                    }
                    None => {
                        let slot = AgentSlot {
                            config: (**config).clone(),
                            order: 0,
                            levels,
                            state: AgentState::Offline,
                            state_since: Some(at),
                            load: [0; 4],
                            idle_since: [at; 4],
                            last_offer_seq: 0,
                            last_offer_on: [0; 4],
                            misses: 0,
                            declines: 0,
                            memberships: Vec::new(),
                            work: Vec::new(),
                            consults: Vec::new(),
                        };
                        let a = self.insert_agent_slot(slot);
                        self.attach_agent(a);
                    }
                }
            }
            EventKind::AgentRemoved { agent } => {
                let a = self.agent_for_replay(agent)?;
                if !self.agent_mut(a).work.is_empty() || !self.agent_mut(a).consults.is_empty() {
                    return Err(replay(format!("agent {agent} removed while busy")));
                }
                self.detach_agent(a);
                if let Some(AgentState::WrapUp { until }) =
                    self.agents[a as usize].as_ref().map(|s| s.state.clone())
                {
                    self.timers
                        .remove(&(until, Timer::AgentWrapUp(agent.clone())));
                }
                self.agents[a as usize] = None;
                self.agent_ix.remove(agent);
                self.agent_order.remove(agent);
                self.free_agent_slots.push(a);
            }
            EventKind::AgentSkillsChanged { agent, skills } => {
                let a = self.agent_for_replay(agent)?;
                let levels = self.intern_levels(skills);
                let slot = self.agent_mut(a);
                slot.config.skills = skills.clone();
                slot.levels = levels;
                self.attach_agent(a);
            }
            EventKind::AgentCapacityChanged { agent, capacity } => {
                let a = self.agent_for_replay(agent)?;
                let slot = self.agent_mut(a);
                if Channel::ALL
                    .iter()
                    .any(|&ch| capacity.get(ch) < slot.load[ch.index()])
                {
                    return Err(replay(format!("agent {agent}: capacity below load")));
                }
                slot.config.capacity = *capacity;
                self.resync_agent(a);
            }
            EventKind::AgentDeviceChanged { agent, device } => {
                let a = self.agent_for_replay(agent)?;
                self.agent_mut(a).config.device = device.clone();
            }
            EventKind::AgentStateChanged { agent, state } => {
                let a = self.agent_for_replay(agent)?;
                let slot = self.agent_mut(a);
                let previous = std::mem::replace(&mut slot.state, state.clone());
                if previous != *state {
                    slot.state_since = Some(at);
                }
                if *state == AgentState::Available && previous != AgentState::Available {
                    slot.idle_since = [at; 4];
                    slot.misses = 0;
                    slot.declines = 0;
                }
                if *state == AgentState::Offline {
                    slot.misses = 0;
                    slot.declines = 0;
                }
                if let AgentState::WrapUp { until } = previous {
                    self.timers
                        .remove(&(until, Timer::AgentWrapUp(agent.clone())));
                }
                if let AgentState::WrapUp { until } = state {
                    self.timers
                        .insert((*until, Timer::AgentWrapUp(agent.clone())));
                }
                self.resync_agent(a);
            }
            EventKind::QueueUpserted { config } => {
                let reqs = self.intern_reqs(&config.requirements);
                match self.queue_ix.get(&config.id).copied() {
                    Some(q) => {
                        let slot = &mut self.queues[q as usize];
                        slot.config = (**config).clone();
                        slot.reqs = reqs;
                        slot.removed = false;
                        self.refresh_queue(q);
                    }
                    None => {
                        let q = self.queues.len() as u32;
                        self.queues.push(QueueSlot {
                            config: (**config).clone(),
                            reqs,
                            classes: Vec::new(),
                            open: 0,
                            removed: false,
                        });
                        self.queue_ix.insert(config.id.clone(), q);
                    }
                }
            }
            EventKind::QueueRemoved { queue } => {
                let q = self.queue_for_replay(queue)?;
                if self.queues[q as usize].open > 0 {
                    return Err(replay(format!("queue {queue} removed while not empty")));
                }
                self.queues[q as usize].removed = true;
                self.refresh_queue(q);
            }
            EventKind::InteractionCreated {
                spec,
                priority,
                sla_deadline,
            } => {
                if self.interactions.contains_key(&spec.id) {
                    return Err(replay(format!("interaction {} created twice", spec.id)));
                }
                let q = self.queue_for_replay(&spec.queue)?;
                let profile = self.intern_profile(spec);
                let slot = Slot {
                    spec: spec.clone(),
                    queue: q,
                    priority: *priority,
                    sla_deadline: *sla_deadline,
                    created_at: at,
                    enqueued_at: at,
                    queue_entered_at: at,
                    step: 0,
                    profile,
                    class: 0,
                    phase: Phase::Waiting,
                    declined_by: Declines::default(),
                    overflowed: false,
                    decision: None,
                    timer: None,
                    extra: None,
                };
                if let Some(r) = &spec.external_ref {
                    self.external.insert(r.clone(), spec.id);
                }
                self.queues[q as usize].open += 1;
                self.interactions.insert(spec.id, slot);
                self.enter_waiting(spec.id);
            }
            EventKind::InteractionOffered {
                interaction,
                agent,
                deadline,
                decision,
                ..
            } => {
                let a = self.agent_for_replay(agent)?;
                self.expect_phase(*interaction, |p| p == Phase::Waiting)?;
                self.leave_waiting(*interaction);
                self.offer_seq += 1;
                let seq = self.offer_seq;
                let slot = self.slot_mut(*interaction);
                slot.phase = Phase::Offered {
                    agent: a,
                    deadline: *deadline,
                };
                slot.decision = Some(Box::new(decision.clone()));
                let channel = slot.spec.channel;
                let agent_slot = self.agent_mut(a);
                agent_slot.load[channel.index()] += 1;
                agent_slot.work.push(*interaction);
                agent_slot.last_offer_seq = seq;
                agent_slot.last_offer_on[channel.index()] = seq;
                self.set_timer(*interaction, Some((*deadline, TimerKind::OfferTimeout)));
                self.resync_agent(a);
            }
            EventKind::OfferAccepted { interaction, agent } => {
                let a = self.agent_for_replay(agent)?;
                self.expect_phase(
                    *interaction,
                    |p| matches!(p, Phase::Offered { agent, .. } if agent == a),
                )?;
                self.set_timer(*interaction, None);
                let slot = self.slot_mut(*interaction);
                slot.phase = Phase::Assigned { agent: a };
                let contact = slot.spec.contact.clone();
                let agent_slot = self.agent_mut(a);
                agent_slot.misses = 0;
                agent_slot.declines = 0;
                if let Some(contact) = contact {
                    self.last_agent.insert(contact, agent.clone());
                }
            }
            EventKind::OfferDeclined {
                interaction,
                agent,
                cause,
            } => {
                let a = self.agent_for_replay(agent)?;
                self.expect_phase(
                    *interaction,
                    |p| matches!(p, Phase::Offered { agent, .. } if agent == a),
                )?;
                self.release_agent(*interaction);
                if *cause != DeclineCause::Revoked {
                    let slot = self.slot_mut(*interaction);
                    let decline = Decline {
                        agent: agent.clone(),
                        at,
                        cause: *cause,
                    };
                    match slot.declined_by.iter_mut().find(|d| d.agent == *agent) {
                        Some(d) => *d = decline,
                        None => slot.declined_by.push(decline),
                    }
                }
                match cause {
                    DeclineCause::TimedOut => self.agent_mut(a).misses += 1,
                    DeclineCause::Declined => self.agent_mut(a).declines += 1,
                    DeclineCause::Revoked => {}
                }
                self.enter_waiting(*interaction);
            }
            EventKind::DeclineLapsed { interaction, agent } => {
                self.expect_phase(*interaction, |p| p == Phase::Waiting)?;
                if !self.slot_mut(*interaction).declined(agent) {
                    return Err(replay(format!(
                        "interaction {interaction} was not declined by {agent}"
                    )));
                }
                self.leave_waiting(*interaction);
                self.slot_mut(*interaction)
                    .declined_by
                    .retain(|d| d.agent != *agent);
                self.enter_waiting(*interaction);
            }
            EventKind::InteractionEscalated { interaction, step } => {
                self.expect_phase(*interaction, |p| p == Phase::Waiting)?;
                self.leave_waiting(*interaction);
                let slot = self.slot_mut(*interaction);
                slot.step = *step;
                slot.declined_by.clear();
                self.enter_waiting(*interaction);
            }
            EventKind::InteractionOverflowed { interaction, .. } => {
                self.expect_phase(*interaction, |p| p == Phase::Waiting)?;
                self.slot_mut(*interaction).overflowed = true;
                self.refresh_wait_timer(*interaction);
            }
            EventKind::InteractionMoved {
                interaction,
                queue,
                target,
                restart_wait,
                cause,
                by,
                note,
            } => {
                let q = self.queue_for_replay(queue)?;
                if let Some(t) = target {
                    self.agent_for_replay(t)?;
                }
                let phase = self.expect_phase(*interaction, |_| true)?;
                // The agent who transfers an interaction it holds is not offered it straight back
                // (as after a decline), unless it is the target.
                let holder = phase
                    .agent()
                    .map(|a| self.agent_mut(a).config.id.clone())
                    .filter(|h| *cause == MoveCause::Transfer && target.as_ref() != Some(h))
                    .map(|agent| Decline {
                        agent,
                        at,
                        cause: DeclineCause::Declined,
                    });
                if let Phase::Assigned { agent } = phase {
                    self.work_ended(*interaction, agent, at);
                }
                self.drop_consult(*interaction, at);
                if phase == Phase::Waiting {
                    self.leave_waiting(*interaction);
                } else {
                    self.release_agent(*interaction);
                }
                let slot = self.slot_mut(*interaction);
                let old = slot.queue;
                slot.queue = q;
                slot.set_target(target.clone());
                slot.step = 0;
                slot.declined_by.clear();
                if let Some(holder) = holder {
                    slot.declined_by.push(holder);
                }
                if let Some(by) = by {
                    slot.extra_mut().transfer = Some(crate::core::TransferNote {
                        at,
                        by: by.clone(),
                        note: note.clone(),
                    });
                }
                slot.overflowed = false;
                slot.queue_entered_at = at;
                if *restart_wait {
                    slot.enqueued_at = at;
                }
                self.queues[old as usize].open -= 1;
                self.queues[q as usize].open += 1;
                self.enter_waiting(*interaction);
            }
            EventKind::PriorityChanged {
                interaction,
                priority,
            } => {
                let phase = self.expect_phase(*interaction, |_| true)?;
                if phase == Phase::Waiting {
                    self.leave_waiting(*interaction);
                    self.slot_mut(*interaction).priority = *priority;
                    self.enter_waiting(*interaction);
                } else {
                    self.slot_mut(*interaction).priority = *priority;
                }
            }
            EventKind::InteractionCompleted {
                interaction,
                agent,
                wrap_up_code,
                wrap_up_until,
                ..
            } => {
                let a = self.agent_for_replay(agent)?;
                self.expect_phase(
                    *interaction,
                    |p| matches!(p, Phase::Assigned { agent } if agent == a),
                )?;
                self.drop_consult(*interaction, at);
                match wrap_up_until {
                    Some(until) => {
                        let slot = self.slot_mut(*interaction);
                        slot.phase = Phase::WrapUp {
                            agent: a,
                            until: *until,
                        };
                        slot.set_wrap_up_code(wrap_up_code.as_deref());
                        self.set_timer(*interaction, Some((*until, TimerKind::WrapUpEnd)));
                    }
                    None => {
                        self.work_ended(*interaction, a, at);
                        self.close(*interaction);
                    }
                }
            }
            EventKind::WrapUpEnded {
                interaction, agent, ..
            } => {
                let a = self.agent_for_replay(agent)?;
                self.expect_phase(
                    *interaction,
                    |p| matches!(p, Phase::WrapUp { agent, .. } if agent == a),
                )?;
                self.work_ended(*interaction, a, at);
                self.close(*interaction);
            }
            EventKind::InteractionEnded { interaction, .. } => {
                if let Phase::Assigned { agent } = self.expect_phase(*interaction, |_| true)? {
                    self.work_ended(*interaction, agent, at);
                }
                self.drop_consult(*interaction, at);
                self.close(*interaction);
            }
            EventKind::ConsultOffered {
                interaction,
                by,
                agent,
                deadline,
                note,
                ..
            } => {
                let h = self.agent_for_replay(by)?;
                let a = self.agent_for_replay(agent)?;
                self.expect_phase(
                    *interaction,
                    |p| matches!(p, Phase::Assigned { agent } if agent == h && agent != a),
                )?;
                let slot = self.slot_mut(*interaction);
                if slot.consult().is_some() {
                    return Err(replay(format!(
                        "interaction {interaction} consulted twice at once"
                    )));
                }
                slot.extra_mut().consult = Some(Consult {
                    agent: a,
                    note: note.clone(),
                    started_at: at,
                    deadline: Some(*deadline),
                });
                let channel = slot.spec.channel;
                let agent_slot = self.agent_mut(a);
                agent_slot.load[channel.index()] += 1;
                agent_slot.consults.push(*interaction);
                self.set_timer(*interaction, Some((*deadline, TimerKind::ConsultTimeout)));
                self.resync_agent(a);
            }
            EventKind::ConsultAccepted { interaction, agent } => {
                let a = self.agent_for_replay(agent)?;
                self.expect_consult(*interaction, a, Some(true))?;
                self.set_timer(*interaction, None);
                if let Some(c) = self.slot_mut(*interaction).consult_mut() {
                    c.deadline = None;
                }
            }
            EventKind::ConsultEnded {
                interaction, agent, ..
            } => {
                let a = self.agent_for_replay(agent)?;
                self.expect_consult(*interaction, a, None)?;
                self.drop_consult(*interaction, at);
            }
            EventKind::ConsultCompleted {
                interaction,
                from,
                to,
            } => {
                let f = self.agent_for_replay(from)?;
                let t = self.agent_for_replay(to)?;
                self.expect_phase(
                    *interaction,
                    |p| matches!(p, Phase::Assigned { agent } if agent == f),
                )?;
                self.expect_consult(*interaction, t, Some(false))?;
                self.work_ended(*interaction, f, at);
                self.release_agent(*interaction);
                let slot = self.slot_mut(*interaction);
                let note = slot.take_consult().and_then(|c| c.note);
                slot.phase = Phase::Assigned { agent: t };
                slot.extra_mut().transfer = Some(crate::core::TransferNote {
                    at,
                    by: from.clone(),
                    note,
                });
                let contact = slot.spec.contact.clone();
                let channel = slot.spec.channel;
                let taker = self.agent_mut(t);
                taker.consults.retain(|w| *w != *interaction);
                taker.work.push(*interaction);
                // The load stays: the consultation's unit becomes the interaction's.
                debug_assert!(taker.load[channel.index()] > 0);
                if let Some(contact) = contact {
                    self.last_agent.insert(contact, to.clone());
                }
                self.resync_agent(t);
            }
            EventKind::MessageAdded {
                interaction,
                message,
            } => {
                // Guichet's own follow-ups (outbound, no agent) may concern a closed interaction.
                let follow_up =
                    message.direction == MessageDirection::Outbound && message.agent.is_none();
                if !follow_up {
                    self.expect_phase(*interaction, |_| true)?;
                }
            }
        }
        Ok(())
    }

    /// Checks that `interaction` is in consultation with agent `a`; with `pending`, that the
    /// consultation is (`Some(true)`) or is no longer (`Some(false)`) waiting for its answer.
    fn expect_consult(
        &self,
        interaction: InteractionId,
        a: u32,
        pending: Option<bool>,
    ) -> Result<(), RouteError> {
        let consult = self
            .interactions
            .get(&interaction)
            .and_then(|s| s.consult());
        match consult {
            Some(c) if c.agent == a && pending.is_none_or(|p| p == c.deadline.is_some()) => Ok(()),
            _ => Err(replay(format!(
                "interaction {interaction} has no such consultation: event does not apply"
            ))),
        }
    }

    /// Ends the consultation on `id`, if any: frees the consulted agent's capacity (restarting
    /// its idle time on the channel when it had accepted) and its pending offer's timer.
    fn drop_consult(&mut self, id: InteractionId, at: Timestamp) {
        let Some(slot) = self.interactions.get_mut(&id) else {
            return;
        };
        let Some(consult) = slot.take_consult() else {
            return;
        };
        let channel = slot.spec.channel;
        if consult.deadline.is_some() {
            self.set_timer(id, None);
        }
        let agent = self.agent_mut(consult.agent);
        agent.load[channel.index()] -= 1;
        agent.consults.retain(|w| *w != id);
        if consult.deadline.is_none() {
            agent.idle_since[channel.index()] = at;
        }
        self.resync_agent(consult.agent);
    }

    fn insert_agent_slot(&mut self, slot: AgentSlot) -> u32 {
        let id = slot.config.id.clone();
        let a = match self.free_agent_slots.pop() {
            Some(a) => {
                self.agents[a as usize] = Some(slot);
                a
            }
            None => {
                self.agents.push(Some(slot));
                (self.agents.len() - 1) as u32
            }
        };
        self.agent_ix.insert(id.clone(), a);
        self.agent_order.insert(id, a);
        self.assign_order(a);
        a
    }

    /// Inserts an agent with its live state (used by snapshot restore).
    pub(super) fn restore_agent(&mut self, slot: AgentSlot) -> u32 {
        let wrap = match &slot.state {
            AgentState::WrapUp { until } => {
                Some((*until, Timer::AgentWrapUp(slot.config.id.clone())))
            }
            _ => None,
        };
        let a = self.insert_agent_slot(slot);
        if let Some(t) = wrap {
            self.timers.insert(t);
        }
        self.attach_agent(a);
        a
    }

    fn agent_for_replay(&self, id: &AgentId) -> Result<u32, RouteError> {
        self.agent_ix
            .get(id)
            .copied()
            .ok_or_else(|| replay(format!("unknown agent {id}")))
    }

    fn queue_for_replay(&self, id: &QueueId) -> Result<u32, RouteError> {
        self.queue_ix
            .get(id)
            .copied()
            .ok_or_else(|| replay(format!("unknown queue {id}")))
    }

    fn expect_phase(
        &self,
        id: InteractionId,
        ok: impl Fn(Phase) -> bool,
    ) -> Result<Phase, RouteError> {
        let slot = self
            .interactions
            .get(&id)
            .ok_or_else(|| replay(format!("unknown interaction {id}")))?;
        if ok(slot.phase) {
            Ok(slot.phase)
        } else {
            Err(replay(format!(
                "interaction {id} is {}: event does not apply",
                slot.phase.name()
            )))
        }
    }

    /// The agent slot at `a`, which the caller knows to be live.
    pub(super) fn agent_mut(&mut self, a: u32) -> &mut AgentSlot {
        // Agent indexes come from `agent_ix`, which only maps to live slots.
        match self.agents[a as usize].as_mut() {
            Some(slot) => slot,
            None => unreachable!("agent index {a} points to a removed agent"),
        }
    }

    /// The interaction slot for `id`, which the caller knows to be open.
    pub(super) fn slot_mut(&mut self, id: InteractionId) -> &mut Slot {
        match self.interactions.get_mut(&id) {
            Some(slot) => slot,
            None => unreachable!("interaction {id} is not open"),
        }
    }

    /// Puts an open interaction in line in the class it belongs to now.
    pub(super) fn enter_waiting(&mut self, id: InteractionId) {
        let Some(slot) = self.interactions.get(&id) else {
            return;
        };
        let key = self.class_key_of(slot);
        let c = self.class_for(key);
        let slot = self.slot_mut(id);
        slot.class = c;
        slot.phase = Phase::Waiting;
        let wait_key = WaitKey::of(slot);
        let declined = !slot.declined_by.is_empty();
        self.classes[c as usize].waiting.insert(wait_key);
        if declined {
            self.declined_waiting += 1;
        }
        self.refresh_wait_timer(id);
    }

    /// Takes a waiting interaction out of line.
    pub(super) fn leave_waiting(&mut self, id: InteractionId) {
        let Some(slot) = self.interactions.get(&id) else {
            return;
        };
        let key = WaitKey::of(slot);
        let declined = !slot.declined_by.is_empty();
        self.classes[slot.class as usize].waiting.remove(&key);
        if declined {
            self.declined_waiting -= 1;
        }
    }

    fn refresh_wait_timer(&mut self, id: InteractionId) {
        let Some(slot) = self.interactions.get(&id) else {
            return;
        };
        let timer = self.wait_deadline(slot).map(|t| (t, TimerKind::Wait));
        self.set_timer(id, timer);
    }

    /// Restarts the agent's idle time on the interaction's channel: its work on it ended (the
    /// caller then frees the capacity, which files the agent under its new key).
    fn work_ended(&mut self, id: InteractionId, a: u32, at: Timestamp) {
        let Some(slot) = self.interactions.get(&id) else {
            return;
        };
        let channel = slot.spec.channel;
        self.agent_mut(a).idle_since[channel.index()] = at;
    }

    /// Frees the capacity an offered, assigned or wrapping-up interaction holds on its agent.
    fn release_agent(&mut self, id: InteractionId) {
        let Some(slot) = self.interactions.get(&id) else {
            return;
        };
        let Some(a) = slot.phase.agent() else {
            return;
        };
        let channel = slot.spec.channel;
        let agent = self.agent_mut(a);
        agent.load[channel.index()] -= 1;
        agent.work.retain(|w| *w != id);
        self.resync_agent(a);
    }

    /// Removes an interaction for good.
    fn close(&mut self, id: InteractionId) {
        let Some(slot) = self.interactions.get(&id) else {
            return;
        };
        if slot.phase == Phase::Waiting {
            self.leave_waiting(id);
        } else {
            self.release_agent(id);
        }
        self.set_timer(id, None);
        if let Some(slot) = self.interactions.remove(&id) {
            if let Some(r) = &slot.spec.external_ref {
                self.external.remove(r);
            }
            self.queues[slot.queue as usize].open -= 1;
        }
    }

    /// After a queue's configuration changed: recomputes its classes (and those of queues that
    /// widen to it), then puts its waiting interactions back in line under the new rules.
    fn refresh_queue(&mut self, q: u32) {
        let id = self.queues[q as usize].config.id.clone();
        let mut classes = self.queues[q as usize].classes.clone();
        for other in &self.queues {
            let widens = other.config.escalation.iter().any(|s| {
                matches!(&s.action, super::model::StepAction::WidenTo { queue } if *queue == id)
            });
            if widens {
                classes.extend_from_slice(&other.classes);
            }
        }
        for c in classes {
            self.refresh_class(c);
        }
        let waiting: Vec<InteractionId> = self.queues[q as usize]
            .classes
            .iter()
            .flat_map(|&c| self.classes[c as usize].waiting.iter().map(|k| k.id()))
            .collect();
        for id in waiting {
            self.leave_waiting(id);
            self.enter_waiting(id);
        }
    }
}
