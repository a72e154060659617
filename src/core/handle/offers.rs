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

impl Router {
    /// Handles the `Accept` command.
    pub(in crate::core) fn handle_accept(
        &mut self,
        now: Timestamp,
        interaction: InteractionId,
        agent: AgentId,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        let a = self.agent_idx(&agent)?;
        let slot = self.open_slot(interaction)?;
        if slot
            .consult
            .as_deref()
            .is_some_and(|c| c.agent == a && c.deadline.is_some())
        {
            self.emit(out, now, EventKind::ConsultAccepted { interaction, agent });
            return Ok(());
        }
        if !matches!(slot.phase, Phase::Offered { agent, .. } if agent == a) {
            return Err(RouteError::NotOfferedTo { interaction, agent });
        }
        self.emit(out, now, EventKind::OfferAccepted { interaction, agent });
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
        let a = self.agent_idx(&agent)?;
        let slot = self.open_slot(interaction)?;
        if slot
            .consult
            .as_deref()
            .is_some_and(|c| c.agent == a && c.deadline.is_some())
        {
            self.end_consult(now, interaction, ConsultEndCause::Declined, out);
            self.match_agent(now, a, out);
            return Ok(());
        }
        if !matches!(slot.phase, Phase::Offered { agent, .. } if agent == a) {
            return Err(RouteError::NotOfferedTo { interaction, agent });
        }
        let max_declines = self.queues[slot.queue as usize].config.max_declines;
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
