//! Outcomes: the one fold of events into what became of each interaction, and the one place the
//! figures (service level, average wait, abandonment rate) are computed from its counts.
//!
//! Every screen reports from here: the public indicators, the supervisors' live statistics, the
//! Prometheus metrics, the simulator and the replay. Definitions (see `docs/figures.md`):
//! - an interaction is *credited* to the queue, channel and time of its **creation**, whatever
//!   happens to it later (a transfer or an overflow does not move it): the public promise is
//!   made by the queue the citizen reached;
//! - *answered*: its first acceptance by an agent (a transferred interaction answered again is
//!   not a new answer);
//! - *answered within the announced delay*: first accepted at or before the SLA deadline the
//!   interaction got at its creation (the creation queue's target for the channel, in seconds
//!   or working days, or the creator's own deadline);
//! - *abandoned*: the contact left before an agent answered; *cancelled*: withdrawn by its
//!   creator (or deflected to voicemail or a message) before an agent answered: neither a
//!   success nor a failure, it is left out of every rate;
//! - *settled* = answered + abandoned: the denominator of every rate below;
//! - *service level* (the "share answered within the announced delay"): answered within the
//!   delay / settled (an abandonment counts as a miss);
//! - *service level of answered*: answered within the delay / answered (abandons left out);
//! - *service level with abandons*: (answered within the delay + abandoned within the delay) /
//!   settled (a contact who left before the delay is not held against the service);
//! - *abandonment rate*: abandoned / settled;
//! - *average wait*: creation to first acceptance, over answered interactions.
//!
//! A rate over nothing (no settled interaction) is absent, never 0 or 1.
//!
//! An agent's own figures (what it handled today and how long it took) come from the same
//! module: [`AgentWorkFold`] turns the same events into [`AgentWork`] items, credited to the
//! agent and to the time the work happened (not the creation), and [`AgentCounts`] adds them up
//! and computes the averages:
//! - *offered*, *accepted*, *declined*, *missed* (the offer timed out): offers to the agent;
//! - *handled*: interactions the agent completed; *transferred*: those it passed on;
//! - *average handling time*: acceptance to completion, over the completions whose acceptance
//!   the fold saw (an interaction accepted before the fold started counts as handled, not in the
//!   average);
//! - *average wrap-up time*: completion to the end of the wrap-up, over the wrap-ups that ended.
//!
//! The fold's state is the set of interactions created and not yet settled ([`Pending`]); it is
//! serialisable, so that a view can store it with its counts and resume after a restart from
//! the stored state and the journal's tail, with the same result as folding the whole journal.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::event::{DeclineCause, EndReason, Event, EventKind};
use super::model::{AgentId, Channel, InteractionId, QueueId, Timestamp};

/// What the fold remembers of an interaction created and not yet answered or ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The queue it was created in (credited with its outcome).
    pub queue: QueueId,
    /// Its channel.
    pub channel: Channel,
    /// When it was created.
    pub created: Timestamp,
    /// The SLA deadline it got at its creation (the announced delay).
    pub sla_deadline: Timestamp,
}

/// How an interaction settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Settled {
    /// Accepted by an agent for the first time.
    Answered,
    /// The contact left before an agent answered.
    Abandoned,
    /// Withdrawn by its creator (or deflected) before an agent answered.
    Cancelled,
}

/// What one event did to the counts: a creation, or an interaction settling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An interaction was created (counted as a request).
    Created {
        /// The interaction.
        interaction: InteractionId,
        /// Where it is credited.
        pending: Pending,
    },
    /// An interaction settled.
    Settled {
        /// The interaction.
        interaction: InteractionId,
        /// Where it is credited.
        pending: Pending,
        /// How.
        how: Settled,
        /// When.
        at: Timestamp,
    },
}

impl Outcome {
    /// Where the outcome is credited: the creation queue, channel and time.
    pub fn credit(&self) -> &Pending {
        match self {
            Outcome::Created { pending, .. } | Outcome::Settled { pending, .. } => pending,
        }
    }

    /// The interaction.
    pub fn interaction(&self) -> InteractionId {
        match self {
            Outcome::Created { interaction, .. } | Outcome::Settled { interaction, .. } => {
                *interaction
            }
        }
    }

    /// For a settlement, the milliseconds from creation to it.
    pub fn waited_ms(&self) -> Option<u64> {
        match self {
            Outcome::Created { .. } => None,
            Outcome::Settled { pending, at, .. } => Some(at.0.saturating_sub(pending.created.0)),
        }
    }

    /// For a settlement, whether it came within the announced delay (at or before the SLA
    /// deadline given at creation).
    pub fn within_delay(&self) -> Option<bool> {
        match self {
            Outcome::Created { .. } => None,
            Outcome::Settled { pending, at, .. } => Some(*at <= pending.sla_deadline),
        }
    }
}

/// The fold: events in, [`Outcome`]s out. Pure and deterministic; folding the same events in
/// any split of batches (or resuming from [`OutcomeFold::pending`]) gives the same outcomes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutcomeFold {
    open: HashMap<InteractionId, Pending>,
}

impl OutcomeFold {
    /// An empty fold (before the first event of a journal).
    pub fn new() -> Self {
        OutcomeFold::default()
    }

    /// A fold resumed from the interactions still pending at some point of the journal.
    pub fn resume(pending: impl IntoIterator<Item = (InteractionId, Pending)>) -> Self {
        OutcomeFold {
            open: pending.into_iter().collect(),
        }
    }

    /// The interactions created and not yet settled.
    pub fn pending(&self) -> impl Iterator<Item = (&InteractionId, &Pending)> {
        self.open.iter()
    }

    /// How many are pending.
    pub fn pending_count(&self) -> usize {
        self.open.len()
    }

    /// Takes the next event into account; returns what it did to the counts, if anything.
    pub fn apply(&mut self, event: &Event) -> Option<Outcome> {
        self.apply_with(event, |_| None)
    }

    /// Like [`OutcomeFold::apply`], asking `load` for a pending interaction the fold does not
    /// hold in memory (a view that keeps its pending set in a database loads it lazily; `load`
    /// must also forget it there, since it settles now).
    pub fn apply_with(
        &mut self,
        event: &Event,
        load: impl FnOnce(&InteractionId) -> Option<Pending>,
    ) -> Option<Outcome> {
        let (interaction, how) = match &event.kind {
            EventKind::InteractionCreated {
                spec, sla_deadline, ..
            } => {
                let pending = Pending {
                    queue: spec.queue.clone(),
                    channel: spec.channel,
                    created: event.at,
                    sla_deadline: *sla_deadline,
                };
                self.open.insert(spec.id, pending.clone());
                return Some(Outcome::Created {
                    interaction: spec.id,
                    pending,
                });
            }
            EventKind::OfferAccepted { interaction, .. } => (*interaction, Some(Settled::Answered)),
            EventKind::InteractionEnded {
                interaction,
                reason,
            } => (
                *interaction,
                Some(match reason {
                    EndReason::Abandoned => Settled::Abandoned,
                    EndReason::Cancelled => Settled::Cancelled,
                }),
            ),
            // Completed without a recorded acceptance cannot happen; forget it if it does.
            EventKind::InteractionCompleted { interaction, .. } => (*interaction, None),
            _ => return None,
        };
        let pending = self
            .open
            .remove(&interaction)
            .or_else(|| load(&interaction))?;
        how.map(|how| Outcome::Settled {
            interaction,
            pending,
            how,
            at: event.at,
        })
    }
}

/// The counts the figures are computed from: sums, so that counts of days, queues or channels
/// add up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Interactions created.
    pub requests: u64,
    /// Answered by an agent (first acceptance).
    pub answered: u64,
    /// Of those, answered within the announced delay.
    pub answered_within: u64,
    /// Abandoned by the contact before an answer.
    pub abandoned: u64,
    /// Of those, abandoned within the announced delay.
    pub abandoned_within: u64,
    /// Cancelled by their creator (or deflected) before an answer.
    pub cancelled: u64,
    /// The sum of the waits before the first acceptance, in milliseconds.
    pub wait_ms_total: u64,
}

impl Counts {
    /// Adds an outcome, "within" meaning by the SLA deadline the interaction got at creation.
    pub fn add(&mut self, outcome: &Outcome) {
        let within = outcome.within_delay().unwrap_or(false);
        self.add_judged(outcome, within);
    }

    /// Adds an outcome, "within" meaning waited at most `delay_ms` (the simulator and the
    /// replay measure every interaction of a row against one threshold).
    pub fn add_against(&mut self, outcome: &Outcome, delay_ms: u64) {
        let within = outcome.waited_ms().is_some_and(|w| w <= delay_ms);
        self.add_judged(outcome, within);
    }

    fn add_judged(&mut self, outcome: &Outcome, within: bool) {
        match outcome {
            Outcome::Created { .. } => self.requests += 1,
            Outcome::Settled { how, .. } => {
                let waited = outcome.waited_ms().unwrap_or(0);
                match how {
                    Settled::Answered => {
                        self.answered += 1;
                        self.answered_within += u64::from(within);
                        self.wait_ms_total = self.wait_ms_total.saturating_add(waited);
                    }
                    Settled::Abandoned => {
                        self.abandoned += 1;
                        self.abandoned_within += u64::from(within);
                    }
                    Settled::Cancelled => self.cancelled += 1,
                }
            }
        }
    }

    /// Adds other counts (of another day, queue or channel).
    pub fn merge(&mut self, other: &Counts) {
        self.requests += other.requests;
        self.answered += other.answered;
        self.answered_within += other.answered_within;
        self.abandoned += other.abandoned;
        self.abandoned_within += other.abandoned_within;
        self.cancelled += other.cancelled;
        self.wait_ms_total = self.wait_ms_total.saturating_add(other.wait_ms_total);
    }

    /// Answered plus abandoned: the denominator of the rates.
    pub fn settled(&self) -> u64 {
        self.answered + self.abandoned
    }

    /// Answered within the announced delay / settled (abandons count as misses).
    pub fn service_level(&self) -> Option<f64> {
        ratio(self.answered_within, self.settled())
    }

    /// Answered within the announced delay / answered (abandons left out).
    pub fn service_level_answered(&self) -> Option<f64> {
        ratio(self.answered_within, self.answered)
    }

    /// (Answered + abandoned) within the announced delay / settled: a contact who left before
    /// the delay is not held against the service.
    pub fn service_level_with_abandons(&self) -> Option<f64> {
        ratio(self.answered_within + self.abandoned_within, self.settled())
    }

    /// Abandoned / settled.
    pub fn abandonment_rate(&self) -> Option<f64> {
        ratio(self.abandoned, self.settled())
    }

    /// The average wait before the first acceptance, in seconds, over answered interactions.
    pub fn average_wait_secs(&self) -> Option<f64> {
        ratio(self.wait_ms_total, self.answered).map(|ms| ms / 1000.0)
    }
}

/// What one event says about an agent's work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentWork {
    /// An interaction was offered to it.
    Offered,
    /// It accepted an offer.
    Accepted,
    /// It declined an offer.
    Declined,
    /// It let an offer time out.
    Missed,
    /// It completed an interaction; `handled_ms` from its acceptance, when the fold saw it.
    Handled {
        /// Acceptance to completion, in milliseconds.
        handled_ms: Option<u64>,
    },
    /// It transferred an interaction it held.
    Transferred,
    /// The wrap-up after one of its completions ended, `wrap_up_ms` after the completion.
    WrapUpEnded {
        /// Completion to the end of the wrap-up, in milliseconds.
        wrap_up_ms: u64,
    },
}

/// The agents' fold: events in, ([`AgentId`], [`AgentWork`]) out. Pure and deterministic; its
/// state is the interactions accepted and not yet completed, and those in wrap-up (bounded by
/// the open interactions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentWorkFold {
    held: HashMap<InteractionId, (AgentId, Timestamp)>,
    wrapping: HashMap<InteractionId, (AgentId, Timestamp)>,
}

impl AgentWorkFold {
    /// An empty fold.
    pub fn new() -> Self {
        AgentWorkFold::default()
    }

    /// Takes the next event into account; returns the agent it credits and what with.
    pub fn apply(&mut self, event: &Event) -> Option<(AgentId, AgentWork)> {
        match &event.kind {
            EventKind::InteractionOffered { agent, .. } => {
                Some((agent.clone(), AgentWork::Offered))
            }
            EventKind::OfferAccepted { interaction, agent } => {
                self.held.insert(*interaction, (agent.clone(), event.at));
                Some((agent.clone(), AgentWork::Accepted))
            }
            EventKind::OfferDeclined { agent, cause, .. } => match cause {
                DeclineCause::Declined => Some((agent.clone(), AgentWork::Declined)),
                DeclineCause::TimedOut => Some((agent.clone(), AgentWork::Missed)),
                DeclineCause::Revoked => None,
            },
            EventKind::InteractionCompleted {
                interaction,
                agent,
                wrap_up_until,
                ..
            } => {
                let handled_ms = self
                    .held
                    .remove(interaction)
                    .filter(|(a, _)| a == agent)
                    .map(|(_, accepted)| event.at.0.saturating_sub(accepted.0));
                if wrap_up_until.is_some() {
                    self.wrapping
                        .insert(*interaction, (agent.clone(), event.at));
                }
                Some((agent.clone(), AgentWork::Handled { handled_ms }))
            }
            EventKind::WrapUpEnded { interaction, .. } => {
                let (agent, completed) = self.wrapping.remove(interaction)?;
                Some((
                    agent,
                    AgentWork::WrapUpEnded {
                        wrap_up_ms: event.at.0.saturating_sub(completed.0),
                    },
                ))
            }
            EventKind::InteractionMoved {
                interaction,
                by: Some(by),
                ..
            } => {
                self.held.remove(interaction);
                Some((by.clone(), AgentWork::Transferred))
            }
            EventKind::InteractionMoved { interaction, .. } => {
                self.held.remove(interaction);
                None
            }
            // A warm transfer: the consulted agent handles it from now on.
            EventKind::ConsultCompleted {
                interaction,
                from,
                to,
            } => {
                self.held.insert(*interaction, (to.clone(), event.at));
                Some((from.clone(), AgentWork::Transferred))
            }
            EventKind::InteractionEnded { interaction, .. } => {
                self.held.remove(interaction);
                self.wrapping.remove(interaction);
                None
            }
            _ => None,
        }
    }
}

/// One agent's counts (of a day): sums, so that counts add up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentCounts {
    /// Offers made to it.
    pub offered: u64,
    /// Offers it accepted.
    pub accepted: u64,
    /// Offers it declined.
    pub declined: u64,
    /// Offers it let time out.
    pub missed: u64,
    /// Interactions it completed.
    pub handled: u64,
    /// Interactions it transferred.
    pub transferred: u64,
    /// Completions whose handling time is known.
    pub timed: u64,
    /// Their handling times' sum, in milliseconds.
    pub handled_ms_total: u64,
    /// Wrap-ups that ended.
    pub wrap_ups: u64,
    /// Their durations' sum, in milliseconds.
    pub wrap_up_ms_total: u64,
}

impl AgentCounts {
    /// Adds what one event said.
    pub fn add(&mut self, work: &AgentWork) {
        match work {
            AgentWork::Offered => self.offered += 1,
            AgentWork::Accepted => self.accepted += 1,
            AgentWork::Declined => self.declined += 1,
            AgentWork::Missed => self.missed += 1,
            AgentWork::Handled { handled_ms } => {
                self.handled += 1;
                if let Some(ms) = handled_ms {
                    self.timed += 1;
                    self.handled_ms_total = self.handled_ms_total.saturating_add(*ms);
                }
            }
            AgentWork::Transferred => self.transferred += 1,
            AgentWork::WrapUpEnded { wrap_up_ms } => {
                self.wrap_ups += 1;
                self.wrap_up_ms_total = self.wrap_up_ms_total.saturating_add(*wrap_up_ms);
            }
        }
    }

    /// The average handling time (acceptance to completion), in seconds.
    pub fn average_handling_secs(&self) -> Option<f64> {
        ratio(self.handled_ms_total, self.timed).map(|ms| ms / 1000.0)
    }

    /// The average wrap-up time, in seconds.
    pub fn average_wrap_up_secs(&self) -> Option<f64> {
        ratio(self.wrap_up_ms_total, self.wrap_ups).map(|ms| ms / 1000.0)
    }

    /// Accepted / offered.
    pub fn acceptance_rate(&self) -> Option<f64> {
        ratio(self.accepted, self.offered)
    }
}

/// `num / den`, absent when `den` is zero.
pub fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::core::{AgentId, InteractionSpec};

    fn created(id: InteractionId, at: u64, deadline: u64) -> Event {
        Event {
            at: Timestamp(at),
            kind: EventKind::InteractionCreated {
                spec: Arc::new(InteractionSpec::new(id, Channel::Voice, "q")),
                priority: 0,
                sla_deadline: Timestamp(deadline),
            },
        }
    }

    fn accepted(id: InteractionId, at: u64) -> Event {
        Event {
            at: Timestamp(at),
            kind: EventKind::OfferAccepted {
                interaction: id,
                agent: AgentId::new("a"),
            },
        }
    }

    fn ended(id: InteractionId, at: u64, reason: EndReason) -> Event {
        Event {
            at: Timestamp(at),
            kind: EventKind::InteractionEnded {
                interaction: id,
                reason,
            },
        }
    }

    #[test]
    fn rates_over_nothing_are_absent_and_answers_count_once() {
        let empty = Counts::default();
        assert_eq!(empty.service_level(), None);
        assert_eq!(empty.abandonment_rate(), None);
        assert_eq!(empty.average_wait_secs(), None);
        let ids: Vec<InteractionId> = (1..=4).map(InteractionId::from_u128).collect();
        let events = [
            created(ids[0], 0, 20_000),
            created(ids[1], 0, 20_000),
            created(ids[2], 0, 20_000),
            created(ids[3], 0, 20_000),
            accepted(ids[0], 10_000),
            accepted(ids[1], 30_000),
            // A second acceptance (after a transfer) is not a new answer.
            accepted(ids[0], 40_000),
            ended(ids[2], 5_000, EndReason::Abandoned),
            ended(ids[3], 6_000, EndReason::Cancelled),
        ];
        let mut fold = OutcomeFold::new();
        let mut c = Counts::default();
        for e in &events {
            if let Some(o) = fold.apply(e) {
                c.add(&o);
            }
        }
        assert_eq!(fold.pending_count(), 0);
        assert_eq!((c.requests, c.answered, c.answered_within), (4, 2, 1));
        assert_eq!((c.abandoned, c.abandoned_within, c.cancelled), (1, 1, 1));
        assert_eq!(c.service_level(), Some(1.0 / 3.0));
        assert_eq!(c.service_level_answered(), Some(0.5));
        assert_eq!(c.service_level_with_abandons(), Some(2.0 / 3.0));
        assert_eq!(c.abandonment_rate(), Some(1.0 / 3.0));
        assert_eq!(c.average_wait_secs(), Some(20.0));
    }

    #[test]
    fn an_agents_work_is_credited_to_it_with_its_handling_and_wrap_up_times() {
        let a = AgentId::new("a");
        let ids: Vec<InteractionId> = (1..=3).map(InteractionId::from_u128).collect();
        let at = |ms: u64, kind: EventKind| Event {
            at: Timestamp(ms),
            kind,
        };
        let offered = |id: InteractionId| EventKind::InteractionOffered {
            interaction: id,
            agent: a.clone(),
            deadline: Timestamp(0),
            decision: crate::core::Decision {
                rule: crate::core::Rule::Targeted,
                step: 0,
                candidates: 1,
                score: 0,
                runner_up: None,
            },
            context: None,
        };
        let completed = |id: InteractionId, wrap: bool| EventKind::InteractionCompleted {
            interaction: id,
            agent: a.clone(),
            wrap_up_code: None,
            notes: None,
            wrap_up_until: wrap.then_some(Timestamp(u64::MAX)),
        };
        let events = [
            at(0, offered(ids[0])),
            at(
                1_000,
                EventKind::OfferDeclined {
                    interaction: ids[0],
                    agent: a.clone(),
                    cause: DeclineCause::TimedOut,
                },
            ),
            at(2_000, offered(ids[0])),
            accepted(ids[0], 3_000),
            at(63_000, completed(ids[0], true)),
            at(
                73_000,
                EventKind::WrapUpEnded {
                    interaction: ids[0],
                    agent: a.clone(),
                    wrap_up_code: None,
                    notes: None,
                },
            ),
            // Accepted before the fold started: handled, not timed.
            at(80_000, completed(ids[1], false)),
            at(90_000, offered(ids[2])),
            accepted(ids[2], 91_000),
            at(
                95_000,
                EventKind::InteractionMoved {
                    interaction: ids[2],
                    queue: QueueId::new("q"),
                    target: None,
                    cause: crate::core::MoveCause::Transfer,
                    restart_wait: true,
                    by: Some(a.clone()),
                    note: None,
                },
            ),
        ];
        let mut fold = AgentWorkFold::new();
        let mut c = AgentCounts::default();
        for e in &events {
            if let Some((who, work)) = fold.apply(e) {
                assert_eq!(who, a);
                c.add(&work);
            }
        }
        assert_eq!((c.offered, c.accepted, c.declined, c.missed), (3, 2, 0, 1));
        assert_eq!((c.handled, c.timed, c.transferred), (2, 1, 1));
        assert_eq!(c.average_handling_secs(), Some(60.0));
        assert_eq!(c.average_wrap_up_secs(), Some(10.0));
        assert_eq!(AgentCounts::default().average_handling_secs(), None);
    }
}
