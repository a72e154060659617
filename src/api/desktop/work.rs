//! What the desktop is given about an agent's work: the offers it is sent (pending, held,
//! consultations) with their context, wrap-up codes and transfer notes, and the one checked path
//! of the calls that name one interaction and act as one agent.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::core::{
    AgentId, Command, InteractionId, InteractionPhase, InteractionView, OfferContext, QueueId,
};

use super::offer_hub::Known;
use super::{agent_for, DesktopService};
use crate::api::bounds::Bounded;
use crate::api::calls;
use crate::api::conversation;
use crate::api::convert::{self, interaction_id};
use crate::api::proto as pb;

impl DesktopService {
    /// The calls that name one interaction and act as one agent (`InteractionAction`): checks
    /// the request, runs the command `make` builds, and answers the interaction as it is after
    /// it, in a span naming the agent and the interaction.
    pub(super) async fn on_interaction(
        &self,
        request: Request<pb::InteractionAction>,
        make: impl FnOnce(InteractionId, AgentId) -> Command,
    ) -> Result<Response<pb::Interaction>, Status> {
        request.get_ref().check_bounds()?;
        let agent = agent_for(&request, &request.get_ref().agent_id)?;
        let id = interaction_id("interaction_id", &request.get_ref().interaction_id)?;
        let span = tracing::info_span!("interaction", agent_id = %agent, interaction_id = %id);
        let command = make(id, agent);
        let view = calls::run_then_interaction(&self.engine, command, id)
            .instrument(span)
            .await?;
        Ok(Response::new(view))
    }

    /// The channel of interaction `id` if `agent` holds it (accepted or in wrap-up, or also
    /// offered when `offered_ok`); a clear refusal otherwise.
    pub(super) async fn held_by(
        &self,
        agent: &AgentId,
        id: InteractionId,
        offered_ok: bool,
    ) -> Result<crate::core::Channel, Status> {
        let view = self
            .engine
            .read(move |r| r.interaction(&id))
            .await
            .map_err(Status::from)?
            .ok_or_else(|| Status::not_found(format!("no open interaction {id}")))?;
        let holds = match &view.phase {
            InteractionPhase::Assigned { agent: a } | InteractionPhase::WrapUp { agent: a, .. } => {
                a == agent
            }
            InteractionPhase::Offered { agent: a, .. } => offered_ok && a == agent,
            InteractionPhase::Waiting => false,
        } || (offered_ok && view.consult.as_ref().is_some_and(|c| c.agent == *agent));
        if !holds {
            return Err(Status::permission_denied(format!(
                "agent {agent} does not handle interaction {id}{}",
                if offered_ok {
                    ""
                } else {
                    ": accept it before writing to the contact"
                }
            )));
        }
        Ok(view.spec.channel)
    }
    /// Before `agent` completes interaction `id`: a call it holds that is still connected is
    /// hung up through the gateway's REST API; without one, the agent is told to hang up first.
    pub(super) async fn hang_up_live_call(
        &self,
        agent: &AgentId,
        id: InteractionId,
    ) -> Result<(), Status> {
        let phase = self
            .engine
            .read(move |r| r.interaction(&id).map(|v| (v.spec.channel, v.phase)))
            .await
            .map_err(Status::from)?;
        let live = matches!(
            &phase,
            Some((crate::core::Channel::Voice, InteractionPhase::Assigned { agent: a })) if a == agent
        );
        if !live {
            return Ok(());
        }
        let Some(calls) = &self.calls else {
            return Err(Status::failed_precondition(format!(
                "interaction {id} is a call still in progress and no gateway REST API is \
                 configured: hang up first, then complete"
            )));
        };
        match calls.hang_up(id).await {
            Ok(_) => Ok(()),
            Err(crate::channels::voice::gateway::OutboundError::NotConfigured(gateway)) => {
                Err(Status::failed_precondition(format!(
                    "interaction {id} is a call still in progress and the {gateway} gateway's \
                     REST API is not configured: hang up first, then complete"
                )))
            }
            Err(e) => {
                tracing::warn!(interaction_id = %id, "hang-up failed: {e}");
                Err(Status::unavailable(format!(
                    "the gateway did not hang up call {id}: hang up first, then complete"
                )))
            }
        }
    }

    /// Interaction `id` as the router holds it, with its queue's wrap-up codes; `None` once it
    /// is over.
    async fn with_codes(
        &self,
        id: InteractionId,
    ) -> Result<Option<(InteractionView, (Vec<String>, Option<String>))>, Status> {
        self.engine
            .read(move |r| {
                r.interaction(&id).map(|v| {
                    let codes = codes_of(r, &v.queue);
                    (v, codes)
                })
            })
            .await
            .map_err(Status::from)
    }

    /// The offer message for a consultation offered to `agent` (read from the router: `None` if
    /// it no longer stands), with the conversation so far and the holder's note.
    pub(super) async fn consult_offer(
        &self,
        agent: &AgentId,
        id: InteractionId,
        deadline: crate::core::Timestamp,
    ) -> Result<Option<pb::Offer>, Status> {
        let Some((view, codes)) = self.with_codes(id).await? else {
            return Ok(None);
        };
        let pending = view
            .consult
            .as_ref()
            .is_some_and(|c| c.agent == *agent && c.deadline == Some(deadline));
        if !pending {
            return Ok(None);
        }
        let conversation =
            conversation::load_for(&self.engine, &view.spec, self.links.as_ref()).await?;
        Ok(Some(
            self.offer_pb(agent, &view, codes, deadline, conversation)
                .await,
        ))
    }

    /// The offers pending for `agent` now, oldest first.
    pub(super) async fn pending_offers(&self, agent: &AgentId) -> Result<Vec<pb::Offer>, Status> {
        self.work_of(agent, false).await
    }

    /// What `agent` is offered (`held` false) or holds, accepted or in wrap-up (`held` true),
    /// consultations included (offered with their deadline, or accepted),
    /// each with its full context: the interaction (contact, attributes, SLA deadline), the
    /// contact's history, the conversation with attachment links, the queue's wrap-up codes,
    /// the last transfer's note, and the offer's deadline or the end of the wrap-up. One read
    /// of the router gives all but the history and the conversation.
    pub(super) async fn work_of(
        &self,
        agent: &AgentId,
        held: bool,
    ) -> Result<Vec<pb::Offer>, Status> {
        let who = agent.clone();
        let work = self
            .engine
            .read(move |r| {
                let Some(a) = r.agent(&who) else {
                    return Vec::new();
                };
                // Consultations count too: offered (with a deadline) or accepted.
                let consulted = a
                    .consults
                    .iter()
                    .filter_map(|id| r.interaction(id))
                    .filter(|v| {
                        v.consult
                            .as_ref()
                            .is_some_and(|c| c.agent == who && c.deadline.is_none() == held)
                    });
                a.work
                    .iter()
                    .filter_map(|id| r.interaction(id))
                    .filter(|v| match &v.phase {
                        InteractionPhase::Offered { agent, .. } => !held && *agent == who,
                        InteractionPhase::Assigned { agent }
                        | InteractionPhase::WrapUp { agent, .. } => held && *agent == who,
                        InteractionPhase::Waiting => false,
                    })
                    .chain(consulted)
                    .map(|v| {
                        let codes = codes_of(r, &v.queue);
                        (v, codes)
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(Status::from)?;
        let mut offers = Vec::with_capacity(work.len());
        for (v, codes) in work {
            let consult_deadline = v
                .consult
                .as_ref()
                .filter(|c| c.agent == *agent)
                .and_then(|c| c.deadline);
            let deadline = match (&v.phase, consult_deadline) {
                (_, Some(deadline)) => deadline,
                (InteractionPhase::Offered { deadline, .. }, _) => *deadline,
                (InteractionPhase::WrapUp { until, .. }, _) => *until,
                _ => crate::core::Timestamp(0),
            };
            let conversation =
                conversation::load_for(&self.engine, &v.spec, self.links.as_ref()).await?;
            offers.push(
                self.offer_pb(agent, &v, codes, deadline, conversation)
                    .await,
            );
        }
        Ok(offers)
    }

    /// The offer message for interaction view `v` (offered to or held by `agent`), with its
    /// queue's wrap-up `codes`, the contact's history and `conversation`.
    async fn offer_pb(
        &self,
        agent: &AgentId,
        v: &InteractionView,
        (wrap_up_codes, default_wrap_up_code): (Vec<String>, Option<String>),
        deadline: crate::core::Timestamp,
        conversation: Vec<pb::ConversationMessage>,
    ) -> pb::Offer {
        let history = self.history.of(v.spec.contact.clone(), v.spec.id).await;
        pb::Offer {
            transfer: v.transfer.as_ref().map(transfer_pb),
            wrap_up_codes,
            default_wrap_up_code: default_wrap_up_code.unwrap_or_default(),
            conversation: crate::api::limits::newest_within(conversation),
            deadline_unix_ms: convert::ms(deadline),
            decision: v
                .decision
                .as_ref()
                .map(|d| convert::decision_pb(Some(agent), d)),
            interaction: Some(convert::interaction_pb(v)),
            history,
        }
    }

    /// The offer message for a new offer. The offer event's context gives the interaction,
    /// the wrap-up codes and the transfer note; only an offer journaled before events carried
    /// them is read from the router (`None` if it no longer stands). The conversation is what
    /// the hub saw, or read from the journal.
    pub(super) async fn offer(
        &self,
        agent: &AgentId,
        id: InteractionId,
        deadline: crate::core::Timestamp,
        decision: &crate::core::Decision,
        known: Known,
    ) -> Result<Option<pb::Offer>, Status> {
        let (view, codes) = match known.context {
            Some(context) => {
                let codes = (
                    context.wrap_up_codes.clone(),
                    context.default_wrap_up_code.clone(),
                );
                (offered_view(&context, agent, deadline, decision), codes)
            }
            None => {
                let Some((view, codes)) = self.with_codes(id).await? else {
                    return Ok(None);
                };
                if !matches!(&view.phase, InteractionPhase::Offered { agent: a, deadline: d } if a == agent && *d == deadline)
                {
                    return Ok(None);
                }
                (view, codes)
            }
        };
        let conversation = match known.conversation {
            Some(messages) => messages
                .iter()
                .map(|(at, message)| {
                    conversation::message_pb(id, *at, message, self.links.as_ref())
                })
                .collect(),
            None => conversation::load_for(&self.engine, &view.spec, self.links.as_ref()).await?,
        };
        let mut offer = self
            .offer_pb(agent, &view, codes, deadline, conversation)
            .await;
        offer.decision = Some(convert::decision_pb(Some(agent), decision));
        Ok(Some(offer))
    }
}

/// The wrap-up codes of `queue` and its default code (none when it has none).
fn codes_of(r: &crate::core::Router, queue: &QueueId) -> (Vec<String>, Option<String>) {
    r.queue(queue)
        .map(|q| (q.config.wrap_up_codes, q.config.default_wrap_up_code))
        .unwrap_or_default()
}

/// The interaction as it was offered, from what the offer event carries.
fn offered_view(
    context: &OfferContext,
    agent: &AgentId,
    deadline: crate::core::Timestamp,
    decision: &crate::core::Decision,
) -> InteractionView {
    InteractionView {
        spec: Arc::clone(&context.spec),
        queue: context.queue.clone(),
        target: context.target.clone(),
        priority: context.priority,
        sla_deadline: context.sla_deadline,
        created_at: context.created_at,
        enqueued_at: context.enqueued_at,
        queue_entered_at: context.enqueued_at,
        step: context.step,
        overflowed: false,
        phase: InteractionPhase::Offered {
            agent: agent.clone(),
            deadline,
        },
        declined_by: Vec::new(),
        declines: Vec::new(),
        decision: Some(decision.clone()),
        wrap_up_code: None,
        transfer: context.transfer.clone(),
        consult: None,
    }
}

/// The protobuf form of a transfer's note.
fn transfer_pb(t: &crate::core::TransferNote) -> pb::TransferNote {
    pb::TransferNote {
        from_agent: t.by.to_string(),
        note: t.note.clone().unwrap_or_default(),
        at_unix_ms: convert::ms(t.at),
    }
}

/// The status telling an agent why the call of interaction `id` cannot be warm-transferred.
pub(super) fn consult_refused(
    id: InteractionId,
    e: crate::channels::voice::conference::ConsultError,
) -> Status {
    use crate::channels::voice::conference::ConsultError;
    match e {
        ConsultError::Unsupported(gateway) => Status::unimplemented(format!(
            "a warm transfer of a call is not supported on the {gateway} gateway (it is on \
             Twilio, and for chat, email and SMS): transfer the call with Transfer instead"
        )),
        ConsultError::NotConnected(_) => Status::failed_precondition(format!(
            "call {id} is not connected to your phone through a gateway: a warm transfer \
             needs the call in progress; transfer it with Transfer instead"
        )),
        ConsultError::Unavailable(_) | ConsultError::Gateway(_) => {
            tracing::warn!(interaction_id = %id, "warm transfer of the call: {e}");
            Status::unavailable(format!(
                "the gateway did not move call {id} into a conference: try again, or \
                 transfer it with Transfer"
            ))
        }
    }
}
