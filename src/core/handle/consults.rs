//! Commands about consultations: an agent holding an interaction asks a colleague, then
//! completes or cancels the consultation.
//!
//! Each function validates its command fully before emitting anything: a refused command
//! changes nothing.

use super::super::command::TransferTarget;
use super::super::error::RouteError;
use super::super::event::{ConsultEndCause, Event, EventKind};
use super::super::index::{ClassKey, Phase};
use super::super::model::{AgentId, InteractionId, Timestamp};
use super::super::router::Router;

impl Router {
    /// Handles the `StartConsult` command.
    pub(in crate::core) fn handle_start_consult(
        &mut self,
        now: Timestamp,
        interaction: InteractionId,
        by: AgentId,
        to: TransferTarget,
        note: Option<String>,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        let b = self.agent_idx(&by)?;
        let slot = self.open_slot(interaction)?;
        if !matches!(slot.phase, Phase::Assigned { agent } if agent == b) {
            return Err(match slot.phase {
                Phase::Assigned { .. } => RouteError::NotAssignedTo {
                    interaction,
                    agent: by,
                },
                phase => RouteError::InvalidPhase {
                    interaction,
                    phase: phase.name(),
                    action: "consult a colleague (only an accepted interaction can be)",
                },
            });
        }
        if let Some(c) = slot.consult() {
            return Err(RouteError::ConsultInProgress {
                interaction,
                agent: self.agent_ref(c.agent).config.id.clone(),
            });
        }
        let channel = slot.spec.channel;
        let queue = slot.queue;
        let consulted = match to {
            TransferTarget::Agent { agent } => {
                let t = self.agent_idx(&agent)?;
                if t == b {
                    return Err(RouteError::InvalidPhase {
                        interaction,
                        phase: "assigned",
                        action: "consult the agent who already has it",
                    });
                }
                if !self.agent_ref(t).can_take(channel) {
                    return Err(RouteError::ConsultantUnavailable { agent, channel });
                }
                agent
            }
            TransferTarget::Queue {
                queue: target_queue,
            } => {
                let q = self.queue_idx(&target_queue)?;
                if !self.queues[q as usize].config.channels.contains(&channel) {
                    return Err(RouteError::ChannelNotAccepted {
                        queue: target_queue,
                        channel,
                    });
                }
                // The first free agent of that queue's class for this interaction, as
                // the queue's strategy ranks them.
                let key = ClassKey {
                    queue: q,
                    channel,
                    step: 0,
                    profile: slot.profile,
                    target: None,
                };
                let c = self.class_for(key);
                let first = self.classes[c as usize]
                    .agents
                    .iter()
                    .find(|k| k.agent != b)
                    .map(|k| self.agent_ref(k.agent).config.id.clone());
                match first {
                    Some(agent) => agent,
                    None => {
                        return Err(RouteError::NoConsultant {
                            queue: target_queue,
                            channel,
                        })
                    }
                }
            }
        };
        let timeout = self.queues[queue as usize].config.offer_timeout_secs;
        let context = self.offer_context(interaction);
        self.emit(
            out,
            now,
            EventKind::ConsultOffered {
                interaction,
                by,
                agent: consulted,
                deadline: now.plus_secs(timeout),
                note,
                context,
            },
        );
        Ok(())
    }

    /// Handles the `CompleteConsult` command.
    pub(in crate::core) fn handle_complete_consult(
        &mut self,
        now: Timestamp,
        interaction: InteractionId,
        by: AgentId,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        let (b, consulted) = self.consult_of(interaction, &by)?;
        let Some(t) = consulted.filter(|c| c.deadline.is_none()).map(|c| c.agent) else {
            return Err(RouteError::ConsultNotAccepted {
                interaction,
                agent: consulted
                    .map(|c| self.agent_ref(c.agent).config.id.clone())
                    .unwrap_or_else(|| by.clone()),
            });
        };
        let to = self.agent_ref(t).config.id.clone();
        self.emit(
            out,
            now,
            EventKind::ConsultCompleted {
                interaction,
                from: by,
                to,
            },
        );
        self.match_agent(now, b, out);
        Ok(())
    }

    /// Handles the `CancelConsult` command.
    pub(in crate::core) fn handle_cancel_consult(
        &mut self,
        now: Timestamp,
        interaction: InteractionId,
        by: AgentId,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        self.consult_of(interaction, &by)?;
        if let Some(c) = self.end_consult(now, interaction, ConsultEndCause::Cancelled, out) {
            self.match_agent(now, c, out);
        }
        Ok(())
    }
}
