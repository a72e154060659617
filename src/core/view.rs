//! Read-only views of the router for APIs and supervisors: agents, interactions, queues, and the
//! explanation of a routing decision.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::event::{Decision, DeclineCause};
use super::index::{Phase, Slot};
use super::model::{
    AgentConfig, AgentId, AgentState, Channel, ContactId, InteractionId, InteractionSpec,
    PerChannel, QueueConfig, QueueId, Requirement, Strategy, Timestamp,
};
use super::router::Router;

/// Where an interaction stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum InteractionPhase {
    /// In line.
    Waiting,
    /// Offered to an agent who has until `deadline` to accept.
    Offered {
        /// The agent.
        agent: AgentId,
        /// When the offer times out.
        deadline: Timestamp,
    },
    /// Accepted and being handled.
    Assigned {
        /// The agent.
        agent: AgentId,
    },
    /// Completed; the agent's after-contact work runs until `until`.
    WrapUp {
        /// The agent.
        agent: AgentId,
        /// When wrap-up ends.
        until: Timestamp,
    },
}

impl InteractionPhase {
    /// The agent holding the interaction, if any.
    pub fn agent(&self) -> Option<&AgentId> {
        match self {
            InteractionPhase::Waiting => None,
            InteractionPhase::Offered { agent, .. }
            | InteractionPhase::Assigned { agent }
            | InteractionPhase::WrapUp { agent, .. } => Some(agent),
        }
    }
}

/// A consultation in progress on an assigned interaction (a warm transfer not completed yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsultView {
    /// The consulted agent.
    pub agent: AgentId,
    /// The note for the consulted agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When it started.
    pub started_at: Timestamp,
    /// When the consultation offer times out, while the consulted agent has not accepted;
    /// absent once accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Timestamp>,
}

/// An agent who declined or missed an interaction, and when: it is offered the interaction
/// again once the queue's `reoffer_after_secs` has passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decline {
    /// The agent.
    pub agent: AgentId,
    /// When the agent declined or missed the offer.
    pub at: Timestamp,
    /// Declined or timed out.
    pub cause: DeclineCause,
}

/// An open interaction as the router sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionView {
    /// What was asked for at creation.
    pub spec: Arc<InteractionSpec>,
    /// Its queue now (it may have moved).
    pub queue: QueueId,
    /// The agent it waits for, after a transfer to an agent.
    pub target: Option<AgentId>,
    /// Its priority now.
    pub priority: u32,
    /// Its SLA deadline.
    pub sla_deadline: Timestamp,
    /// When it was created.
    pub created_at: Timestamp,
    /// Its place in line (the time it counts as having been enqueued).
    pub enqueued_at: Timestamp,
    /// When it entered its current queue (escalation and overflow count from here).
    pub queue_entered_at: Timestamp,
    /// The escalation steps applied.
    pub step: u8,
    /// Whether the queue's overflow has fired.
    pub overflowed: bool,
    /// Where it stands.
    pub phase: InteractionPhase,
    /// Agents who declined or missed it since its last escalation or move, and may not be
    /// offered it again yet.
    pub declined_by: Vec<AgentId>,
    /// The same agents with when and how they declined (absent from snapshots written before
    /// re-offers existed: see [`Router::restore`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub declines: Vec<Decline>,
    /// Why it was last offered to an agent.
    pub decision: Option<Decision>,
    /// The wrap-up code given at completion.
    pub wrap_up_code: Option<String>,
    /// Its last transfer by an agent, with the note (absent from snapshots written before
    /// transfer notes were kept by the router).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<crate::core::TransferNote>,
    /// The consultation in progress, if any (absent from snapshots written before warm
    /// transfers existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consult: Option<ConsultView>,
}

/// An agent as the router sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentView {
    /// The configuration.
    pub config: AgentConfig,
    /// The state.
    pub state: AgentState,
    /// When the state last changed (`None` when a snapshot written by an older version did
    /// not keep it, until the next change).
    #[serde(default)]
    pub state_since: Option<Timestamp>,
    /// Interactions offered, assigned or in wrap-up, per channel.
    pub load: PerChannel<u16>,
    /// When the agent last became available or finished its work, on any channel.
    pub idle_since: Timestamp,
    /// Per channel, when the agent last became available or finished work on that channel
    /// (what the strategies' tie-breaks compare).
    pub idle_since_by_channel: PerChannel<Timestamp>,
    /// Offers missed in a row.
    pub misses: u32,
    /// Offers declined in a row.
    pub declines: u32,
    /// Interactions offered to, assigned to or wrapping up with the agent.
    pub work: Vec<InteractionId>,
    /// Interactions held by colleagues that the agent is consulted on (offered or accepted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consults: Vec<InteractionId>,
}

/// Why an interaction is where it is: the answer to a supervisor's `Explain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// The interaction.
    pub interaction: InteractionView,
    /// The queue's strategy.
    pub strategy: Strategy,
    /// The requirements in force at its current escalation step: an agent qualifies by meeting
    /// every requirement of any one alternative.
    pub requirements: Vec<Vec<Requirement>>,
    /// Skills that raise an agent's competence for it.
    pub preferred: Vec<String>,
    /// Agents who meet the requirements, whatever their state.
    pub eligible_agents: u32,
    /// Eligible agents available with room on the channel right now.
    pub free_agents: u32,
    /// Interactions ahead of it in its routing class (waiting only).
    pub ahead_in_class: Option<usize>,
    /// A sentence saying why, for people.
    pub summary: String,
}

/// Counts for one queue, computed from the router's indexes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueView {
    /// The configuration.
    pub config: QueueConfig,
    /// Waiting interactions per channel.
    pub waiting: PerChannel<u32>,
    /// Open interactions (waiting, offered, assigned, in wrap-up) in the queue.
    pub open: usize,
}

/// Per-channel values from an array in channel index order.
pub(super) fn per_channel<T: Copy>(values: [T; 4]) -> PerChannel<T> {
    PerChannel {
        voice: values[Channel::Voice.index()],
        email: values[Channel::Email.index()],
        sms: values[Channel::Sms.index()],
        chat: values[Channel::Chat.index()],
    }
}

impl Router {
    fn view_of(&self, slot: &Slot) -> InteractionView {
        let agent_id = |a: u32| self.agent_ref(a).config.id.clone();
        InteractionView {
            spec: slot.spec.clone(),
            queue: self.queues[slot.queue as usize].config.id.clone(),
            target: slot.target().cloned(),
            priority: slot.priority,
            sla_deadline: slot.sla_deadline,
            created_at: slot.created_at,
            enqueued_at: slot.enqueued_at,
            queue_entered_at: slot.queue_entered_at,
            step: slot.step,
            overflowed: slot.overflowed,
            phase: match slot.phase {
                Phase::Waiting => InteractionPhase::Waiting,
                Phase::Offered { agent, deadline } => InteractionPhase::Offered {
                    agent: agent_id(agent),
                    deadline,
                },
                Phase::Assigned { agent } => InteractionPhase::Assigned {
                    agent: agent_id(agent),
                },
                Phase::WrapUp { agent, until } => InteractionPhase::WrapUp {
                    agent: agent_id(agent),
                    until,
                },
            },
            declined_by: slot.declined_by.iter().map(|d| d.agent.clone()).collect(),
            declines: slot.declined_by.to_vec(),
            decision: slot.decision.as_deref().cloned(),
            wrap_up_code: slot.wrap_up_code().map(str::to_owned),
            transfer: slot.transfer().cloned(),
            consult: slot.consult().map(|c| ConsultView {
                agent: agent_id(c.agent),
                note: c.note.clone(),
                started_at: c.started_at,
                deadline: c.deadline,
            }),
        }
    }

    /// An open interaction, or `None` if it is unknown or ended.
    pub fn interaction(&self, id: &InteractionId) -> Option<InteractionView> {
        self.interactions.get(id).map(|s| self.view_of(s))
    }

    /// The open interaction created with this external reference, if any.
    pub fn find_by_external_ref(&self, external_ref: &str) -> Option<InteractionId> {
        self.external.get(external_ref)
    }

    /// Every open interaction, in id order.
    pub fn interactions(&self) -> Vec<InteractionView> {
        let mut all: Vec<InteractionView> = self
            .interactions
            .values()
            .map(|s| self.view_of(s))
            .collect();
        all.sort_by_key(|v| v.spec.id);
        all
    }

    /// The queues `agent` serves: those whose own requirements its skills meet, on a channel
    /// it has capacity for, in id order; empty for an unknown agent.
    pub fn queues_of(&self, agent: &AgentId) -> Vec<QueueId> {
        let Some(&a) = self.agent_ix.get(agent) else {
            return Vec::new();
        };
        let config = &self.agent_ref(a).config;
        let mut queues: Vec<QueueId> = self
            .queues
            .iter()
            .filter(|q| !q.removed)
            .map(|q| &q.config)
            .filter(|q| {
                q.requirements.iter().all(|r| {
                    config
                        .skills
                        .get(&r.skill)
                        .is_some_and(|level| *level >= r.min_level)
                })
            })
            .filter(|q| q.channels.iter().any(|c| config.capacity.get(*c) > 0))
            .map(|q| q.id.clone())
            .collect();
        queues.sort();
        queues
    }

    /// The open interactions whose short reference is `reference` (usually one; two only in
    /// the rare case of a shared reference), by id. A scan of the open interactions (a few
    /// nanoseconds each): references are looked up by people, not on the routing path.
    pub fn find_by_reference(&self, reference: super::Reference) -> Vec<InteractionId> {
        let mut found: Vec<InteractionId> = self
            .interactions
            .values()
            .map(|s| s.spec.id)
            .filter(|id| id.reference() == reference)
            .collect();
        found.sort_unstable();
        found
    }

    /// The open interactions of a contact, by id.
    pub fn open_of_contact(&self, contact: &ContactId) -> Vec<InteractionId> {
        let mut open: Vec<InteractionId> = self
            .interactions
            .values()
            .filter(|s| s.spec.contact.as_ref() == Some(contact))
            .map(|s| s.spec.id)
            .collect();
        open.sort_unstable();
        open
    }

    /// How many interactions are open.
    pub fn open_count(&self) -> usize {
        self.interactions.len()
    }

    /// How many interactions are waiting.
    pub fn waiting_count(&self) -> usize {
        self.classes.iter().map(|c| c.waiting.len()).sum()
    }

    /// A queue's waiting interactions in the order they would be served (priority, deadline,
    /// enqueue time, id), across its routing classes.
    pub fn waiting_in_queue(&self, queue: &QueueId) -> Vec<InteractionId> {
        let Some(&q) = self.queue_ix.get(queue) else {
            return Vec::new();
        };
        let mut keys: Vec<_> = self.queues[q as usize]
            .classes
            .iter()
            .flat_map(|&c| self.classes[c as usize].waiting.iter().copied())
            .collect();
        keys.sort_unstable();
        keys.into_iter().map(|k| k.id()).collect()
    }

    /// An agent, or `None` if unknown.
    pub fn agent(&self, id: &AgentId) -> Option<AgentView> {
        let a = *self.agent_ix.get(id)?;
        let agent = self.agent_ref(a);
        let mut load = PerChannel::all(0);
        for ch in Channel::ALL {
            load.set(ch, agent.load[ch.index()]);
        }
        Some(AgentView {
            config: agent.config.clone(),
            state: agent.state.clone(),
            state_since: agent.state_since,
            load,
            idle_since: agent.idle_since.iter().copied().max().unwrap_or_default(),
            idle_since_by_channel: per_channel(agent.idle_since),
            misses: agent.misses,
            declines: agent.declines,
            work: agent.work.clone(),
            consults: agent.consults.clone(),
        })
    }

    /// Every agent, in id order.
    pub fn agents(&self) -> Vec<AgentView> {
        let mut ids: Vec<&AgentId> = self.agent_ix.keys().collect();
        ids.sort();
        ids.into_iter().filter_map(|id| self.agent(id)).collect()
    }

    /// A queue, or `None` if unknown or removed.
    pub fn queue(&self, id: &QueueId) -> Option<QueueView> {
        let &q = self.queue_ix.get(id)?;
        let slot = &self.queues[q as usize];
        if slot.removed {
            return None;
        }
        let mut waiting = PerChannel::all(0u32);
        for &c in &slot.classes {
            let class = &self.classes[c as usize];
            let ch = class.key.channel;
            waiting.set(ch, waiting.get(ch) + class.waiting.len() as u32);
        }
        Some(QueueView {
            config: slot.config.clone(),
            waiting,
            open: slot.open,
        })
    }

    /// Every live queue, in id order.
    pub fn queues(&self) -> Vec<QueueView> {
        let mut ids: Vec<&QueueId> = self.queue_ix.keys().collect();
        ids.sort();
        ids.into_iter().filter_map(|id| self.queue(id)).collect()
    }

    /// Why an open interaction is where it is: its requirements at its current step, how many
    /// agents qualify and are free, its place in line, the agents who declined it and when they
    /// may be offered it again, and the last decision taken for it. Times of declines are given
    /// as instants; [`Router::explain_at`] gives them relative to now.
    pub fn explain(&self, id: &InteractionId) -> Option<Explanation> {
        self.explain_inner(id, None)
    }

    /// [`Router::explain`] at time `now`: declines read "declined by amelie 12 s ago; offered to
    /// amelie again after 30 s".
    pub fn explain_at(&self, id: &InteractionId, now: Timestamp) -> Option<Explanation> {
        self.explain_inner(id, Some(now))
    }

    fn explain_inner(&self, id: &InteractionId, now: Option<Timestamp>) -> Option<Explanation> {
        let slot = self.interactions.get(id)?;
        let view = self.view_of(slot);
        let class = &self.classes[slot.class as usize];
        let skill_name = |s: u32| {
            self.skills
                .resolve(s)
                .map(|k| k.as_str().to_owned())
                .unwrap_or_default()
        };
        let requirements: Vec<Vec<Requirement>> = class
            .alternatives
            .iter()
            .map(|alt| {
                alt.iter()
                    .map(|&(s, l)| Requirement::new(skill_name(s), l))
                    .collect()
            })
            .collect();
        let preferred = class.preferred.iter().map(|&s| skill_name(s)).collect();
        let ahead = (slot.phase == Phase::Waiting).then(|| {
            let key = super::index::WaitKey::of(slot);
            class.waiting.range(..key).count()
        });
        let free = class.agents.len() as u32;
        let reoffer = self.queues[slot.queue as usize].config.reoffer_after_secs;
        let declines: String = slot
            .declined_by
            .iter()
            .map(|d| {
                let how = match d.cause {
                    DeclineCause::TimedOut => "missed",
                    _ => "declined",
                };
                let when = match now {
                    Some(now) => format!("{} s ago", now.millis_since(d.at) / 1000),
                    None => format!("at {}", d.at),
                };
                format!(
                    "; {how} by {} {when}; offered to {} again after {reoffer} s",
                    d.agent, d.agent
                )
            })
            .collect();
        let summary = match (&view.phase, &view.decision) {
            (InteractionPhase::Waiting, _) if slot.target().is_some() => {
                let target = slot.target().map(|t| t.as_str()).unwrap_or("?");
                let why = match slot.target().and_then(|t| self.agent(t)).map(|a| a.state) {
                    Some(AgentState::Paused { reason }) => format!("who is paused ({reason})"),
                    Some(AgentState::WrapUp { .. }) => "who is in wrap-up".to_owned(),
                    Some(AgentState::Offline) => "who is offline".to_owned(),
                    Some(AgentState::Available) => {
                        "who has no room for it on this channel now".to_owned()
                    }
                    None => "who no longer exists".to_owned(),
                };
                format!(
                    "waiting for agent {target} alone (assigned by a supervisor or transferred), \
                     {why}: it is offered to them as soon as they are available with room"
                )
            }
            (InteractionPhase::Waiting, _) if class.eligible == 0 => format!(
                "waiting at escalation step {}: no agent has the required skills{}",
                slot.step,
                if class.key.target.is_some() {
                    " (it waits for one agent)"
                } else {
                    ""
                }
            ),
            (InteractionPhase::Waiting, _) => format!(
                "waiting at escalation step {} with {} interaction(s) ahead: {} eligible agent(s), \
                 {} free{}",
                slot.step,
                ahead.unwrap_or(0),
                class.eligible,
                free,
                declines
            ),
            (phase, Some(d)) => format!(
                "{} {} by rule {} at step {} with score {} among {} candidate(s){}{}",
                match phase {
                    InteractionPhase::Offered { .. } => "offered to",
                    InteractionPhase::Assigned { .. } => "assigned to",
                    _ => "handled by",
                },
                phase.agent().map(|a| a.as_str()).unwrap_or("?"),
                d.rule,
                d.step,
                d.score,
                d.candidates,
                d.runner_up
                    .as_ref()
                    .map(|r| format!("; runner-up {} with score {}", r.agent, r.score))
                    .unwrap_or_default(),
                declines
            ),
            (phase, None) => format!("with {}", phase.agent().map(|a| a.as_str()).unwrap_or("?")),
        };
        let summary = match &view.consult {
            Some(c) => format!(
                "{summary}; in consultation with {} since {} ({}{})",
                c.agent,
                c.started_at,
                match c.deadline {
                    Some(d) => format!("offered, until {d}"),
                    None => "accepted".to_owned(),
                },
                if c.note.is_some() {
                    ", with a note"
                } else {
                    ""
                }
            ),
            None => summary,
        };
        Some(Explanation {
            interaction: view,
            strategy: class.strategy,
            requirements,
            preferred,
            eligible_agents: class.eligible,
            free_agents: free,
            ahead_in_class: ahead,
            summary,
        })
    }
}
