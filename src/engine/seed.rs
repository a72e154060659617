//! What the engine takes from the configuration file: its `[engine]` section
//! ([`EngineLimits`]) and the [`Seed`] (the file's queues, agents and working calendar) that an
//! empty database is seeded from and a seeded one is compared with at start.

use serde::{Deserialize, Serialize};

use crate::core::{AgentConfig, Command, QueueConfig, WorkCalendar};

/// `[engine]`: bounds between the APIs and the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineLimits {
    /// Commands waiting for the router at most; beyond, callers are told to retry (gRPC
    /// UNAVAILABLE, HTTP 503).
    #[serde(default = "default_command_queue")]
    pub command_queue: usize,
    /// Committed event batches buffered for each subscriber (offer streams, statistics).
    #[serde(default = "default_event_buffer")]
    pub event_buffer: usize,
}

fn default_command_queue() -> usize {
    10_000
}

fn default_event_buffer() -> usize {
    4_096
}

impl Default for EngineLimits {
    fn default() -> Self {
        EngineLimits {
            command_queue: default_command_queue(),
            event_buffer: default_event_buffer(),
        }
    }
}

/// The contact center a configuration file describes: what seeds an empty database (the file
/// only seeds; once running, the journal wins) and the calendar delays are counted in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seed {
    /// `[[queues]]`.
    pub queues: Vec<QueueConfig>,
    /// `[[agents]]` (they start offline).
    pub agents: Vec<AgentConfig>,
    /// `[calendar]`: the working days that delays in working days are counted in.
    pub calendar: WorkCalendar,
}

impl Seed {
    /// The commands that create this contact center in an empty router: queues first (in two
    /// passes, so that queues may refer to each other in any order), then agents.
    pub fn commands(&self) -> Vec<Command> {
        let mut commands = Vec::with_capacity(self.queues.len() * 2 + self.agents.len());
        for queue in &self.queues {
            let mut bare = queue.clone();
            bare.escalation.clear();
            bare.overflow = None;
            commands.push(Command::UpsertQueue { config: bare });
        }
        for queue in &self.queues {
            commands.push(Command::UpsertQueue {
                config: queue.clone(),
            });
        }
        for agent in &self.agents {
            commands.push(Command::UpsertAgent {
                config: agent.clone(),
            });
        }
        commands
    }
}
