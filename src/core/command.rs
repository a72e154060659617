//! Commands: every request the router accepts, from agents, supervisors, integrators and channels.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::message::Message;
use super::model::{
    AgentConfig, AgentId, Capacity, InteractionId, InteractionSpec, QueueConfig, QueueId, Skill,
};

/// The state an agent asks for (logging in and out has its own commands).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RequestedState {
    /// Ready for offers. Ends a wrap-up early.
    Available,
    /// Not taking new offers; offers already made stay until accepted, declined or timed out.
    Paused {
        /// Why (shown to supervisors).
        reason: String,
    },
}

/// Where a transfer sends an interaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum TransferTarget {
    /// Into another queue, routed by its rules.
    Queue {
        /// The queue.
        queue: QueueId,
    },
    /// To one agent: offered as soon as that agent is available with room on the channel.
    Agent {
        /// The agent.
        agent: AgentId,
    },
}

/// A request to the router. Each either fails with a [`RouteError`](super::RouteError) and changes
/// nothing, or succeeds and returns the events describing every change it made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Creates an agent or replaces its configuration (skills, capacity, name, device); the
    /// agent's state and current work are kept.
    UpsertAgent {
        /// The new configuration.
        config: AgentConfig,
    },
    /// Removes an agent that handles nothing (logging it out first if needed).
    RemoveAgent {
        /// The agent.
        agent: AgentId,
    },
    /// Replaces an agent's skills; takes effect on the next decision.
    SetAgentSkills {
        /// The agent.
        agent: AgentId,
        /// Every skill held, with its level 1 to 5.
        skills: BTreeMap<Skill, u8>,
    },
    /// Changes an agent's capacity per channel; refused below the current load.
    SetCapacity {
        /// The agent.
        agent: AgentId,
        /// The new capacity.
        capacity: Capacity,
    },
    /// Changes the phone number or SIP URI calls are bridged to.
    SetDevice {
        /// The agent.
        agent: AgentId,
        /// The new device, or none.
        device: Option<String>,
    },
    /// Logs an agent in, available. Logging in again is a no-op.
    Login {
        /// The agent.
        agent: AgentId,
    },
    /// Logs an agent out: pending offers go back to their queues in their original place, wrap-up
    /// ends. Interactions already accepted stay with the agent until completed or transferred.
    Logout {
        /// The agent.
        agent: AgentId,
    },
    /// Makes a logged-in agent available or paused.
    SetState {
        /// The agent.
        agent: AgentId,
        /// The state asked for.
        state: RequestedState,
    },
    /// Creates a queue or replaces its configuration; waiting interactions are re-evaluated at once.
    UpsertQueue {
        /// The new configuration.
        config: QueueConfig,
    },
    /// Removes a queue that has no open interaction and that no other queue refers to.
    RemoveQueue {
        /// The queue.
        queue: QueueId,
    },
    /// Creates an interaction and routes it; idempotent on `external_ref`.
    CreateInteraction {
        /// What to route.
        spec: InteractionSpec,
    },
    /// Adds a message to an open interaction's conversation (a contact's new email, SMS or chat
    /// line; an agent's reply). Refused when the interaction is not open.
    AddMessage {
        /// The interaction.
        interaction: InteractionId,
        /// The message.
        message: Message,
    },
    /// A message Guichet itself sends about an interaction that may already be closed: a
    /// completion notice, a satisfaction survey question, a chat transcript. It must be
    /// outbound and have no agent. It never changes routing state, so the router accepts it
    /// whether the interaction is open or closed; it cannot know a closed interaction, so the
    /// caller checks that the interaction exists (see `Engine::follow_up`).
    FollowUp {
        /// The interaction the message is about.
        interaction: InteractionId,
        /// The message (outbound, no agent).
        message: Message,
    },
    /// A contact's message that starts a conversation or continues the open one: when an open
    /// interaction has the spec's `external_ref` (for SMS, the pair of numbers), the message is
    /// added to it; otherwise the interaction is created from `spec`, then the message added.
    /// Either way the message and the creation are committed together.
    OpenConversation {
        /// The interaction to create when none is open for the spec's external reference.
        spec: InteractionSpec,
        /// The message.
        message: Message,
    },
    /// Ends an open interaction on the creator's request.
    Cancel {
        /// The interaction.
        interaction: InteractionId,
    },
    /// Ends a waiting or offered interaction because the contact left (hung up, closed the chat).
    Abandon {
        /// The interaction.
        interaction: InteractionId,
    },
    /// The agent accepts the interaction offered to it.
    Accept {
        /// The interaction.
        interaction: InteractionId,
        /// The agent it was offered to.
        agent: AgentId,
    },
    /// The agent declines the interaction offered to it: it goes back to its queue in its place.
    Decline {
        /// The interaction.
        interaction: InteractionId,
        /// The agent it was offered to.
        agent: AgentId,
    },
    /// The interaction is done: the agent goes to wrap-up for the queue's wrap-up time.
    Complete {
        /// The interaction.
        interaction: InteractionId,
        /// The agent completing it; `None` when the channel ends it (the caller hung up after
        /// the agent answered).
        agent: Option<AgentId>,
        /// The outcome code chosen by the agent.
        wrap_up_code: Option<String>,
        /// The agent's notes, kept with the interaction for the contact's history.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notes: Option<String>,
    },
    /// Sends an open interaction to another queue or agent (an agent's transfer, or a
    /// supervisor's move of a waiting interaction).
    Transfer {
        /// The interaction.
        interaction: InteractionId,
        /// Where it goes.
        to: TransferTarget,
        /// The agent transferring it; when given it must be the one holding the interaction.
        by: Option<AgentId>,
        /// Why, for the agent who receives it (journaled with the move, shown with its offer).
        note: Option<String>,
    },
    /// Changes an open interaction's priority; a waiting one moves in line at once.
    ChangePriority {
        /// The interaction.
        interaction: InteractionId,
        /// The new priority (higher is served first).
        priority: u32,
    },
    /// The agent holding an interaction consults a colleague before transferring it (a warm
    /// transfer): a named agent, or the first free agent of a queue. The colleague is offered the
    /// consultation and accepts or declines it with `Accept` / `Decline`; the interaction stays
    /// with `by` until `CompleteConsult`.
    StartConsult {
        /// The interaction.
        interaction: InteractionId,
        /// The agent holding it.
        by: AgentId,
        /// Whom to consult.
        to: TransferTarget,
        /// Why, for the consulted agent.
        note: Option<String>,
    },
    /// Completes a warm transfer: the consulted agent, who accepted, takes the interaction over.
    CompleteConsult {
        /// The interaction.
        interaction: InteractionId,
        /// The agent holding it.
        by: AgentId,
    },
    /// Cancels a consultation: the consulted agent is freed, the interaction stays with `by`.
    CancelConsult {
        /// The interaction.
        interaction: InteractionId,
        /// The agent holding it.
        by: AgentId,
    },
}
