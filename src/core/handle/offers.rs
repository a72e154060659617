//! Commands answering an offer: an agent accepts or declines it.
//!
//! Each function validates its command fully before emitting anything: a refused command
//! changes nothing.

use super::super::error::RouteError;
use super::super::event::{ConsultEndCause, DeclineCause, Event, EventKind};
use super::super::index::Phase;
use super::super::model::{AgentId, AgentState, InteractionId, Timestamp};
use super::super::router::Router;
use super::super::router::DECLINED_OFFERS;

/// What an agent's accept or decline of an interaction answers.
enum Answered {
    /// A consultation the interaction's holder asked of this agent.
    Consultation,
    /// The interaction's own offer, in queue `queue`.
    Offer { queue: u32 },
}

impl Router {
    /// The agent's index and what its answer to `interaction` answers: a consultation offered to
    /// it, else the interaction's offer to it; refused when neither stands.
    fn answered(
        &self,
        interaction: InteractionId,
        agent: &AgentId,
    ) -> Result<(u32, Answered), RouteError> {
        let a = self.agent_idx(agent)?;
        let slot = self.open_slot(interaction)?;
        if slot
            .consult()
            .is_some_and(|c| c.agent == a && c.deadline.is_some())
        {
            return Ok((a, Answered::Consultation));
        }
        if !matches!(slot.phase, Phase::Offered { agent, .. } if agent == a) {
            return Err(RouteError::NotOfferedTo {
                interaction,
                agent: agent.clone(),
            });
        }
        Ok((a, Answered::Offer { queue: slot.queue }))
    }

    /// Handles the `Accept` command.
    pub(in crate::core) fn handle_accept(
        &mut self,
        now: Timestamp,
        interaction: InteractionId,
        agent: AgentId,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        let (_, answered) = self.answered(interaction, &agent)?;
        let kind = match answered {
            Answered::Consultation => EventKind::ConsultAccepted { interaction, agent },
            Answered::Offer { .. } => EventKind::OfferAccepted { interaction, agent },
        };
        self.emit(out, now, kind);
        Ok(())
    }

    /// Handles the `Decline` command.
    pub(in crate::core) fn handle_decline(
        &mut self,
        now: Timestamp,
        interaction: InteractionId,
        agent: AgentId,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        let (a, queue) = match self.answered(interaction, &agent)? {
            (a, Answered::Consultation) => {
                self.end_consult(now, interaction, ConsultEndCause::Declined, out);
                self.match_agent(now, a, out);
                return Ok(());
            }
            (a, Answered::Offer { queue }) => (a, queue),
        };
        let max_declines = self.queues[queue as usize].config.max_declines;
        self.emit(
            out,
            now,
            EventKind::OfferDeclined {
                interaction,
                agent: agent.clone(),
                cause: DeclineCause::Declined,
            },
        );
        let slot = self.agent_ref(a);
        if max_declines > 0 && slot.declines >= max_declines && slot.state == AgentState::Available
        {
            self.emit(
                out,
                now,
                EventKind::AgentStateChanged {
                    agent,
                    state: AgentState::Paused {
                        reason: DECLINED_OFFERS.to_owned(),
                    },
                },
            );
        }
        self.match_interaction(now, interaction, out);
        self.match_agent(now, a, out);
        Ok(())
    }
}
