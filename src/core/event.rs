//! Events: the record of every state change the router makes.
//!
//! Applying a router's events, in order, to an empty router rebuilds the same router: this is how
//! the journal recovers it. Decisions are taken only when commands and ticks are handled; applying
//! an event never decides anything.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::message::Message;
use super::model::{
    AgentConfig, AgentId, AgentState, Capacity, InteractionId, InteractionSpec, OverflowAction,
    QueueConfig, QueueId, Skill, Strategy, Timestamp,
};

/// One state change, with the time it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When it happened.
    pub at: Timestamp,
    /// What happened.
    pub kind: EventKind,
}

/// Why an offer went back to the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineCause {
    /// The agent declined.
    Declined,
    /// The agent did not answer in time (counts as a miss).
    TimedOut,
    /// The offer was withdrawn because the agent logged out.
    Revoked,
}

/// Why an interaction ended without being completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Cancelled by its creator.
    Cancelled,
    /// The contact left before being served.
    Abandoned,
}

/// Why an interaction moved to another queue or agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveCause {
    /// An agent or supervisor transferred it.
    Transfer,
    /// The queue's maximum wait was reached.
    Overflow,
}

/// Why a consultation ended without the transfer being completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsultEndCause {
    /// The consulted agent declined the consultation offer.
    Declined,
    /// The consulted agent did not answer the consultation offer in time.
    TimedOut,
    /// The agent holding the interaction cancelled the consultation.
    Cancelled,
    /// The consulted agent logged out or was removed.
    ConsultedLeft,
    /// The agent holding the interaction logged out.
    HolderLeft,
    /// The interaction was completed, transferred or ended (the contact hung up or left).
    InteractionClosed,
}

impl ConsultEndCause {
    /// Its name, as journaled (`declined`, `timed_out`...).
    pub fn as_str(self) -> &'static str {
        match self {
            ConsultEndCause::Declined => "declined",
            ConsultEndCause::TimedOut => "timed_out",
            ConsultEndCause::Cancelled => "cancelled",
            ConsultEndCause::ConsultedLeft => "consulted_left",
            ConsultEndCause::HolderLeft => "holder_left",
            ConsultEndCause::InteractionClosed => "interaction_closed",
        }
    }
}

/// The rule that chose an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rule {
    /// The queue's strategy ranked the free eligible agents when the interaction arrived (or came
    /// back to the queue).
    Strategy {
        /// The strategy.
        strategy: Strategy,
    },
    /// The contact's last agent was free and eligible and won with the last-agent preference.
    LastAgent {
        /// The queue's strategy.
        strategy: Strategy,
    },
    /// The interaction was transferred to this very agent.
    Targeted,
    /// An agent freed capacity and took the first waiting interaction it is eligible for, across its
    /// queues, in (priority, deadline, enqueue time, id) order.
    NextInLine,
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::Strategy { strategy } => f.write_str(strategy.as_str()),
            Rule::LastAgent { strategy } => write!(f, "last_agent ({})", strategy.as_str()),
            Rule::Targeted => f.write_str("targeted"),
            Rule::NextInLine => f.write_str("next_in_line"),
        }
    }
}

/// An agent and its score, as ranked by a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The agent.
    pub agent: AgentId,
    /// Its score under the rule (higher is better; for `most_competent` the competence).
    pub score: i64,
}

/// Why an interaction was offered to an agent: what `Explain` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The rule applied.
    pub rule: Rule,
    /// The escalation step the interaction was at (0 before any relaxation).
    pub step: u8,
    /// For an arrival: free eligible agents considered; for `next_in_line`: waiting interactions
    /// compared (one per routing class of the agent).
    pub candidates: u32,
    /// The winner's score.
    pub score: i64,
    /// The best other candidate agent, if there was one.
    pub runner_up: Option<Candidate>,
}

/// The last transfer of an interaction by an agent: who, when, and the note for the agent who
/// receives it. A later overflow move keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferNote {
    /// When it was transferred.
    pub at: Timestamp,
    /// The agent who transferred it.
    pub by: AgentId,
    /// Its note, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What an agent's desktop shows with an offer, carried by the offer event itself so that the
/// offer stream never reads the router or the journal back for it: the interaction (contact,
/// attributes, queue, deadlines), its queue's wrap-up codes, and its last transfer's note.
/// Never the conversation nor attachments (they stay in their own events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferContext {
    /// What was asked for at creation (contact, attributes, requirements).
    pub spec: Arc<InteractionSpec>,
    /// Its queue now.
    pub queue: QueueId,
    /// The agent it waited for, after a transfer to an agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<AgentId>,
    /// Its priority now.
    pub priority: u32,
    /// Its SLA deadline.
    pub sla_deadline: Timestamp,
    /// When it was created.
    pub created_at: Timestamp,
    /// Its place in line.
    pub enqueued_at: Timestamp,
    /// The escalation steps applied.
    #[serde(default)]
    pub step: u8,
    /// The queue's wrap-up codes (empty: any code).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wrap_up_codes: Vec<String>,
    /// The queue's default wrap-up code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_wrap_up_code: Option<String>,
    /// Its last transfer by an agent, with the note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<TransferNote>,
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// An agent was created or its configuration replaced.
    AgentUpserted {
        /// The configuration (boxed, as the queue's: the largest variants set every event's
        /// size, and events are moved at every step from the router to the journal and views).
        config: Box<AgentConfig>,
    },
    /// An agent was removed.
    AgentRemoved {
        /// The agent.
        agent: AgentId,
    },
    /// An agent's skills were replaced.
    AgentSkillsChanged {
        /// The agent.
        agent: AgentId,
        /// The skills now held.
        skills: BTreeMap<Skill, u8>,
    },
    /// An agent's capacity changed.
    AgentCapacityChanged {
        /// The agent.
        agent: AgentId,
        /// The new capacity.
        capacity: Capacity,
    },
    /// An agent's device changed.
    AgentDeviceChanged {
        /// The agent.
        agent: AgentId,
        /// The new device.
        device: Option<String>,
    },
    /// An agent's state changed.
    AgentStateChanged {
        /// The agent.
        agent: AgentId,
        /// The new state.
        state: AgentState,
    },
    /// A queue was created or its configuration replaced.
    QueueUpserted {
        /// The configuration (boxed, see `AgentUpserted`).
        config: Box<QueueConfig>,
    },
    /// A queue was removed.
    QueueRemoved {
        /// The queue.
        queue: QueueId,
    },
    /// An interaction was created and put in line.
    InteractionCreated {
        /// What was asked for.
        spec: Arc<InteractionSpec>,
        /// The priority it got.
        priority: u32,
        /// The SLA deadline it got.
        sla_deadline: Timestamp,
    },
    /// An interaction was offered to an agent, who must accept before `deadline`.
    InteractionOffered {
        /// The interaction.
        interaction: InteractionId,
        /// The agent.
        agent: AgentId,
        /// When the offer times out.
        deadline: Timestamp,
        /// Why this agent.
        decision: Decision,
        /// What the agent's desktop shows with the offer (absent from offers journaled before
        /// it existed). Applying the event does not read it: it is for the views.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<Arc<OfferContext>>,
    },
    /// The agent accepted: the interaction is assigned to it.
    OfferAccepted {
        /// The interaction.
        interaction: InteractionId,
        /// The agent.
        agent: AgentId,
    },
    /// The offer went back: the interaction waits again in its original place.
    OfferDeclined {
        /// The interaction.
        interaction: InteractionId,
        /// The agent.
        agent: AgentId,
        /// Why.
        cause: DeclineCause,
    },
    /// An agent who declined or missed a waiting interaction may be offered it again: the
    /// queue's `reoffer_after_secs` has passed since.
    DeclineLapsed {
        /// The interaction.
        interaction: InteractionId,
        /// The agent.
        agent: AgentId,
    },
    /// A waiting interaction reached an escalation step.
    InteractionEscalated {
        /// The interaction.
        interaction: InteractionId,
        /// The step now applied (1 = the first step of the queue's list).
        step: u8,
    },
    /// A waiting interaction reached its queue's maximum wait.
    InteractionOverflowed {
        /// The interaction.
        interaction: InteractionId,
        /// What the queue says to do (a `queue` action is followed by an `interaction_moved`).
        action: OverflowAction,
    },
    /// An interaction moved to another queue or to one agent, and waits there.
    InteractionMoved {
        /// The interaction.
        interaction: InteractionId,
        /// Its queue from now on.
        queue: QueueId,
        /// The one agent it waits for, if any.
        target: Option<AgentId>,
        /// Why.
        cause: MoveCause,
        /// Whether its wait starts again now (a transfer after being handled) or keeps its place.
        restart_wait: bool,
        /// The agent who transferred it, if an agent did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<AgentId>,
        /// The transfer's note for the agent who receives it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// An interaction's priority changed.
    PriorityChanged {
        /// The interaction.
        interaction: InteractionId,
        /// The new priority.
        priority: u32,
    },
    /// An interaction was completed; it holds the agent's capacity until `wrap_up_until`, or ends
    /// now when that is absent.
    InteractionCompleted {
        /// The interaction.
        interaction: InteractionId,
        /// The agent who handled it.
        agent: AgentId,
        /// The outcome code.
        wrap_up_code: Option<String>,
        /// The agent's notes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notes: Option<String>,
        /// The end of after-contact work.
        wrap_up_until: Option<Timestamp>,
    },
    /// The wrap-up of a completed interaction ended: it is closed and frees the agent's capacity.
    WrapUpEnded {
        /// The interaction.
        interaction: InteractionId,
        /// The agent.
        agent: AgentId,
        /// The outcome code the agent gave when completing during the wrap-up (a call the
        /// caller hung up); replaces the completion's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wrap_up_code: Option<String>,
        /// The notes the agent gave when completing during the wrap-up.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notes: Option<String>,
    },
    /// A message was added to an interaction's conversation.
    MessageAdded {
        /// The interaction.
        interaction: InteractionId,
        /// The message (shared: events are copied to every subscriber).
        message: Arc<Message>,
    },
    /// An interaction ended without being completed.
    InteractionEnded {
        /// The interaction.
        interaction: InteractionId,
        /// Why.
        reason: EndReason,
    },
    /// The agent holding an interaction asked a colleague to consult on it (a warm transfer's
    /// first step): the colleague is offered the consultation, which holds one unit of its
    /// capacity on the interaction's channel until it ends; the interaction stays with `by`.
    ConsultOffered {
        /// The interaction.
        interaction: InteractionId,
        /// The agent holding it, who asked.
        by: AgentId,
        /// The agent consulted.
        agent: AgentId,
        /// When the consultation offer times out.
        deadline: Timestamp,
        /// Why, for the consulted agent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        /// What the consulted agent's desktop shows (the interaction as it is held). Applying
        /// the event does not read it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<Arc<OfferContext>>,
    },
    /// The consulted agent accepted the consultation: both agents are on the interaction.
    ConsultAccepted {
        /// The interaction.
        interaction: InteractionId,
        /// The consulted agent.
        agent: AgentId,
    },
    /// A consultation ended without the transfer: the consulted agent's capacity is freed and the
    /// interaction stays with the agent holding it (if it is still open).
    ConsultEnded {
        /// The interaction.
        interaction: InteractionId,
        /// The consulted agent.
        agent: AgentId,
        /// Why.
        cause: ConsultEndCause,
    },
    /// The agent holding the interaction completed the warm transfer: the interaction is now
    /// assigned to the consulted agent, who continues it (no new wait, no new offer).
    ConsultCompleted {
        /// The interaction.
        interaction: InteractionId,
        /// The agent who held it and transferred it.
        from: AgentId,
        /// The consulted agent, who holds it now.
        to: AgentId,
    },
}

impl EventKind {
    /// The interaction this event is about, if any.
    pub fn interaction(&self) -> Option<InteractionId> {
        match self {
            EventKind::InteractionCreated { spec, .. } => Some(spec.id),
            EventKind::InteractionOffered { interaction, .. }
            | EventKind::OfferAccepted { interaction, .. }
            | EventKind::OfferDeclined { interaction, .. }
            | EventKind::DeclineLapsed { interaction, .. }
            | EventKind::InteractionEscalated { interaction, .. }
            | EventKind::InteractionOverflowed { interaction, .. }
            | EventKind::InteractionMoved { interaction, .. }
            | EventKind::PriorityChanged { interaction, .. }
            | EventKind::InteractionCompleted { interaction, .. }
            | EventKind::WrapUpEnded { interaction, .. }
            | EventKind::MessageAdded { interaction, .. }
            | EventKind::InteractionEnded { interaction, .. }
            | EventKind::ConsultOffered { interaction, .. }
            | EventKind::ConsultAccepted { interaction, .. }
            | EventKind::ConsultEnded { interaction, .. }
            | EventKind::ConsultCompleted { interaction, .. } => Some(*interaction),
            _ => None,
        }
    }

    /// The agent this event is about, if any.
    pub fn agent(&self) -> Option<&AgentId> {
        match self {
            EventKind::AgentUpserted { config } => Some(&config.id),
            EventKind::AgentRemoved { agent }
            | EventKind::AgentSkillsChanged { agent, .. }
            | EventKind::AgentCapacityChanged { agent, .. }
            | EventKind::AgentDeviceChanged { agent, .. }
            | EventKind::AgentStateChanged { agent, .. }
            | EventKind::InteractionOffered { agent, .. }
            | EventKind::OfferAccepted { agent, .. }
            | EventKind::OfferDeclined { agent, .. }
            | EventKind::DeclineLapsed { agent, .. }
            | EventKind::InteractionCompleted { agent, .. }
            | EventKind::WrapUpEnded { agent, .. }
            | EventKind::ConsultOffered { agent, .. }
            | EventKind::ConsultAccepted { agent, .. }
            | EventKind::ConsultEnded { agent, .. } => Some(agent),
            EventKind::ConsultCompleted { to, .. } => Some(to),
            EventKind::InteractionMoved { target, .. } => target.as_ref(),
            EventKind::MessageAdded { message, .. } => message.agent.as_ref(),
            _ => None,
        }
    }

    /// A short name for the event (`interaction_offered`, ...), as used in logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::AgentUpserted { .. } => "agent_upserted",
            EventKind::AgentRemoved { .. } => "agent_removed",
            EventKind::AgentSkillsChanged { .. } => "agent_skills_changed",
            EventKind::AgentCapacityChanged { .. } => "agent_capacity_changed",
            EventKind::AgentDeviceChanged { .. } => "agent_device_changed",
            EventKind::AgentStateChanged { .. } => "agent_state_changed",
            EventKind::QueueUpserted { .. } => "queue_upserted",
            EventKind::QueueRemoved { .. } => "queue_removed",
            EventKind::InteractionCreated { .. } => "interaction_created",
            EventKind::InteractionOffered { .. } => "interaction_offered",
            EventKind::OfferAccepted { .. } => "offer_accepted",
            EventKind::OfferDeclined { .. } => "offer_declined",
            EventKind::DeclineLapsed { .. } => "decline_lapsed",
            EventKind::InteractionEscalated { .. } => "interaction_escalated",
            EventKind::InteractionOverflowed { .. } => "interaction_overflowed",
            EventKind::InteractionMoved { .. } => "interaction_moved",
            EventKind::PriorityChanged { .. } => "priority_changed",
            EventKind::InteractionCompleted { .. } => "interaction_completed",
            EventKind::WrapUpEnded { .. } => "wrap_up_ended",
            EventKind::MessageAdded { .. } => "message_added",
            EventKind::InteractionEnded { .. } => "interaction_ended",
            EventKind::ConsultOffered { .. } => "consult_offered",
            EventKind::ConsultAccepted { .. } => "consult_accepted",
            EventKind::ConsultEnded { .. } => "consult_ended",
            EventKind::ConsultCompleted { .. } => "consult_completed",
        }
    }
}
