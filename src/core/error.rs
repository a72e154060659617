//! The errors the router returns for commands it refuses. A refused command changes nothing.

use thiserror::Error;

use super::model::{AgentId, Channel, InteractionId, QueueId, Skill};

/// Why the router refused a command. Each names the agent, queue or interaction at fault and says
/// what is wrong, so that an API can pass it on to the caller.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RouteError {
    /// No agent has this id.
    #[error("unknown agent {0}")]
    UnknownAgent(AgentId),
    /// No queue has this id.
    #[error("unknown queue {0}")]
    UnknownQueue(QueueId),
    /// No open interaction has this id.
    #[error("unknown or ended interaction {0}")]
    UnknownInteraction(InteractionId),
    /// An interaction with this id already exists.
    #[error("interaction {0} already exists")]
    DuplicateInteraction(InteractionId),
    /// A skill level outside 1..=5.
    #[error("skill {skill}: level {level} is outside 1..=5")]
    InvalidLevel {
        /// The skill.
        skill: Skill,
        /// The level given.
        level: u8,
    },
    /// The queue does not take this channel.
    #[error("queue {queue} does not take {channel} interactions")]
    ChannelNotAccepted {
        /// The queue.
        queue: QueueId,
        /// The channel.
        channel: Channel,
    },
    /// The agent must be logged in for this.
    #[error("agent {0} is offline: log in first")]
    AgentOffline(AgentId),
    /// An interaction cannot be transferred or force-assigned to an agent who is offline (it
    /// would wait for someone who may not come back).
    #[error("agent {0} is offline: it cannot take the interaction; choose a logged-in agent or move the interaction to a queue")]
    TargetOffline(AgentId),
    /// The interaction is not currently offered to this agent.
    #[error("interaction {interaction} is not offered to agent {agent}")]
    NotOfferedTo {
        /// The interaction.
        interaction: InteractionId,
        /// The agent.
        agent: AgentId,
    },
    /// The interaction is not currently assigned to this agent.
    #[error("interaction {interaction} is not assigned to agent {agent}")]
    NotAssignedTo {
        /// The interaction.
        interaction: InteractionId,
        /// The agent.
        agent: AgentId,
    },
    /// A wrap-up code that is not one of the queue's.
    #[error("wrap-up code {code:?} is not one of queue {queue}'s codes ({known}): choose one of them and write the rest in the notes")]
    UnknownWrapUpCode {
        /// The interaction.
        interaction: InteractionId,
        /// Its queue.
        queue: QueueId,
        /// The code given.
        code: String,
        /// The queue's codes, comma-separated.
        known: String,
    },
    /// The interaction's phase does not allow the action.
    #[error("interaction {interaction} is {phase}: cannot {action}")]
    InvalidPhase {
        /// The interaction.
        interaction: InteractionId,
        /// Its current phase.
        phase: &'static str,
        /// What was asked.
        action: &'static str,
    },
    /// A capacity below what the agent currently handles.
    #[error(
        "agent {agent} handles {load} {channel} interaction(s): capacity {capacity} is too low"
    )]
    CapacityBelowLoad {
        /// The agent.
        agent: AgentId,
        /// The channel.
        channel: Channel,
        /// The capacity asked for.
        capacity: u16,
        /// The current load.
        load: u16,
    },
    /// The agent still handles or has waiting for it some interactions.
    #[error("agent {agent} still has {open} open interaction(s): complete or transfer them first")]
    AgentBusy {
        /// The agent.
        agent: AgentId,
        /// How many.
        open: usize,
    },
    /// The queue still has open interactions.
    #[error("queue {queue} still has {open} open interaction(s): move or end them first")]
    QueueNotEmpty {
        /// The queue.
        queue: QueueId,
        /// How many.
        open: usize,
    },
    /// Another queue refers to this one (escalation or overflow).
    #[error("queue {queue} is referred to by queue {by}: change that queue first")]
    QueueInUse {
        /// The queue.
        queue: QueueId,
        /// The queue referring to it.
        by: QueueId,
    },
    /// A queue configuration that cannot work.
    #[error("queue {queue}: {reason}")]
    InvalidQueue {
        /// The queue.
        queue: QueueId,
        /// What to fix.
        reason: String,
    },
    /// A follow-up message that is not Guichet's own (inbound, or written by an agent).
    #[error("a follow-up message must be outbound and without an agent: {0}")]
    InvalidFollowUp(String),
    /// No agent of the queue is free to take a consultation now.
    #[error("no agent of queue {queue} is available with room for a {channel} consultation: try again later or consult a named colleague")]
    NoConsultant {
        /// The queue.
        queue: QueueId,
        /// The interaction's channel.
        channel: Channel,
    },
    /// The agent to consult is not available with room on the channel.
    #[error("agent {agent} is not available with room for a {channel} consultation: choose an available colleague")]
    ConsultantUnavailable {
        /// The agent.
        agent: AgentId,
        /// The interaction's channel.
        channel: Channel,
    },
    /// The interaction has no consultation in progress.
    #[error("interaction {0} has no consultation in progress: start one first")]
    NoConsultation(InteractionId),
    /// The interaction is already in consultation.
    #[error("interaction {interaction} is already in consultation with agent {agent}: complete or cancel that one first")]
    ConsultInProgress {
        /// The interaction.
        interaction: InteractionId,
        /// The agent consulted.
        agent: AgentId,
    },
    /// The consulted agent has not accepted yet.
    #[error("agent {agent} has not accepted the consultation on interaction {interaction} yet: wait for it or cancel the consultation")]
    ConsultNotAccepted {
        /// The interaction.
        interaction: InteractionId,
        /// The agent consulted.
        agent: AgentId,
    },
    /// A journaled event that does not fit the router's state (corrupt or foreign journal).
    #[error("event does not apply: {0}")]
    Replay(String),
}
