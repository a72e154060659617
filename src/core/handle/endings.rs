//! Commands that end work on an interaction: cancellation, abandonment, completion.
//!
//! Each function validates its command fully before emitting anything: a refused command
//! changes nothing.

use super::super::error::RouteError;
use super::super::event::{ConsultEndCause, EndReason, Event, EventKind};
use super::super::index::Phase;
use super::super::model::{AgentId, AgentState, InteractionId, Timestamp};
use super::super::router::Router;

impl Router {
    /// Handles the `Cancel` command.
    pub(in crate::core) fn handle_cancel(
        &mut self,
        now: Timestamp,
        interaction: InteractionId,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        let slot = self.open_slot(interaction)?;
        if let Phase::WrapUp { .. } = slot.phase {
            return Err(RouteError::InvalidPhase {
                interaction,
                phase: slot.phase.name(),
                action: "cancel (it is already completed)",
            });
        }
        let agent = slot.phase.agent();
        let consulted = self.end_consult(now, interaction, ConsultEndCause::InteractionClosed, out);
        self.emit(
            out,
            now,
            EventKind::InteractionEnded {
                interaction,
                reason: EndReason::Cancelled,
            },
        );
        if let Some(a) = agent {
            self.match_agent(now, a, out);
        }
        if let Some(c) = consulted {
            self.match_agent(now, c, out);
        }
        Ok(())
    }

    /// Handles the `Abandon` command.
    pub(in crate::core) fn handle_abandon(
        &mut self,
        now: Timestamp,
        interaction: InteractionId,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        let slot = self.open_slot(interaction)?;
        let agent = match slot.phase {
            Phase::Waiting => None,
            Phase::Offered { agent, .. } => Some(agent),
            phase => {
                return Err(RouteError::InvalidPhase {
                    interaction,
                    phase: phase.name(),
                    action: "abandon (an agent answered: complete it instead)",
                })
            }
        };
        self.emit(
            out,
            now,
            EventKind::InteractionEnded {
                interaction,
                reason: EndReason::Abandoned,
            },
        );
        if let Some(a) = agent {
            self.match_agent(now, a, out);
        }
        Ok(())
    }

    /// Handles the `Complete` command.
    pub(in crate::core) fn handle_complete(
        &mut self,
        now: Timestamp,
        interaction: InteractionId,
        agent: Option<AgentId>,
        wrap_up_code: Option<String>,
        notes: Option<String>,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        let slot = self.open_slot(interaction)?;
        self.check_wrap_up_code(interaction, slot.queue, wrap_up_code.as_deref())?;
        if let (Phase::WrapUp { agent: holder, .. }, Some(id)) = (slot.phase, &agent) {
            if self.agent_ix.get(id) == Some(&holder) {
                self.finish_wrap_up(now, interaction, holder, wrap_up_code, notes, out);
                return Ok(());
            }
        }
        let a = match (slot.phase, &agent) {
            (Phase::Assigned { agent: holder }, None) => holder,
            (Phase::Assigned { agent: holder }, Some(id))
                if self.agent_ix.get(id) == Some(&holder) =>
            {
                holder
            }
            (_, Some(id)) if !self.agent_ix.contains_key(id) => {
                return Err(RouteError::UnknownAgent(id.clone()))
            }
            (Phase::Assigned { .. }, Some(id)) => {
                return Err(RouteError::NotAssignedTo {
                    interaction,
                    agent: id.clone(),
                })
            }
            (phase, _) => {
                return Err(RouteError::InvalidPhase {
                    interaction,
                    phase: phase.name(),
                    action: "complete (only an accepted interaction can be completed)",
                })
            }
        };
        let wrap = self.queues[slot.queue as usize].config.wrap_up_secs;
        let agent_id = self.agent_ref(a).config.id.clone();
        let consulted = self.end_consult(now, interaction, ConsultEndCause::InteractionClosed, out);
        let until = (wrap > 0).then(|| now.plus_secs(wrap));
        // Without a wrap-up, the completion is its end: the default code goes in it.
        let wrap_up_code = match (until, wrap_up_code) {
            (None, None) => self.default_code_for(interaction),
            (_, code) => code,
        };
        self.emit(
            out,
            now,
            EventKind::InteractionCompleted {
                interaction,
                agent: agent_id.clone(),
                wrap_up_code,
                notes,
                wrap_up_until: until,
            },
        );
        if let Some(until) = until {
            let new_state = match self.agent_ref(a).state {
                AgentState::Available => Some(AgentState::WrapUp { until }),
                AgentState::WrapUp { until: current } if current < until => {
                    Some(AgentState::WrapUp { until })
                }
                _ => None,
            };
            if let Some(state) = new_state {
                self.emit(
                    out,
                    now,
                    EventKind::AgentStateChanged {
                        agent: agent_id,
                        state,
                    },
                );
            }
        } else {
            self.match_agent(now, a, out);
        }
        if let Some(c) = consulted {
            self.match_agent(now, c, out);
        }
        Ok(())
    }
}
