//! Commands that move an interaction or its place in line: transfers and priority changes.
//!
//! Each function validates its command fully before emitting anything: a refused command
//! changes nothing.

use super::super::command::TransferTarget;
use super::super::error::RouteError;
use super::super::event::{ConsultEndCause, Event, EventKind, MoveCause};
use super::super::index::Phase;
use super::super::model::{AgentId, AgentState, InteractionId, Timestamp};
use super::super::router::Router;

impl Router {
    /// Handles the `Transfer` command.
    pub(in crate::core) fn handle_transfer(
        &mut self,
        now: Timestamp,
        interaction: InteractionId,
        to: TransferTarget,
        by: Option<AgentId>,
        note: Option<String>,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        let by_agent = by.clone();
        let slot = self.open_slot(interaction)?;
        let holder = slot.phase.agent();
        let channel = slot.spec.channel;
        let current_queue = slot.queue;
        if let Phase::WrapUp { .. } = slot.phase {
            return Err(RouteError::InvalidPhase {
                interaction,
                phase: slot.phase.name(),
                action: "transfer (it is already completed)",
            });
        }
        let restart_wait = matches!(slot.phase, Phase::Assigned { .. });
        if let Some(by) = &by {
            let b = self.agent_idx(by)?;
            if holder != Some(b) {
                return Err(RouteError::NotAssignedTo {
                    interaction,
                    agent: by.clone(),
                });
            }
        }
        let (queue, target) = match to {
            TransferTarget::Queue { queue } => {
                let q = self.queue_idx(&queue)?;
                if !self.queues[q as usize].config.channels.contains(&channel) {
                    return Err(RouteError::ChannelNotAccepted { queue, channel });
                }
                (queue, None)
            }
            TransferTarget::Agent { agent } => {
                let t = self.agent_idx(&agent)?;
                if self.agent_ref(t).state == AgentState::Offline {
                    return Err(RouteError::TargetOffline(agent));
                }
                if holder == Some(t) {
                    return Err(RouteError::InvalidPhase {
                        interaction,
                        phase: slot.phase.name(),
                        action: "transfer to the agent who already has it",
                    });
                }
                let queue = self.queues[current_queue as usize].config.id.clone();
                (queue, Some(agent))
            }
        };
        let consulted = self.end_consult(now, interaction, ConsultEndCause::InteractionClosed, out);
        self.emit(
            out,
            now,
            EventKind::InteractionMoved {
                interaction,
                queue,
                target,
                cause: MoveCause::Transfer,
                restart_wait,
                by: by_agent,
                note,
            },
        );
        // The agent it freed takes waiting work in line order first; then the moved
        // interaction goes to the best free agent of its new class.
        if let Some(a) = holder {
            self.match_agent(now, a, out);
        }
        if let Some(c) = consulted {
            self.match_agent(now, c, out);
        }
        self.match_interaction(now, interaction, out);
        Ok(())
    }

    /// Handles the `ChangePriority` command.
    pub(in crate::core) fn handle_change_priority(
        &mut self,
        now: Timestamp,
        interaction: InteractionId,
        priority: u32,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        let slot = self.open_slot(interaction)?;
        if slot.priority != priority {
            self.emit(
                out,
                now,
                EventKind::PriorityChanged {
                    interaction,
                    priority,
                },
            );
        }
        Ok(())
    }
}
