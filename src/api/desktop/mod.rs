//! `AgentDesktop`: log in, set state, the offer stream, accept / decline / complete / transfer,
//! and the device calls are bridged to: the gRPC service, its handlers thin over the engine.
//!
//! The offer streams are fed by one [`OfferHub`] (`offer_hub.rs`); what the desktop is given
//! about an agent's work (offers with their context, the checked path of the calls that name
//! one interaction) is built in `work.rs`.

use std::collections::HashSet;
use std::pin::Pin;

use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::channels::chat::ChatHub;
use crate::core::{
    AgentId, Command, EventKind, InteractionId, InteractionPhase, QueueId, RequestedState,
    TransferTarget,
};
use crate::engine::Engine;
use crate::store::Role;

use super::auth::caller;
use super::bounds::Bounded;
use super::calls;
use super::conversation;
use super::convert::{self, interaction_id, required};
use super::history::History;
use super::proto as pb;
use super::proto::agent_desktop_server::AgentDesktop;
use super::status;

mod offer_hub;
mod work;

pub use offer_hub::OfferHub;
use offer_hub::{Known, OfferNote};
use work::consult_refused;

/// The longest note a transfer may carry.
const MAX_TRANSFER_NOTE_BYTES: usize = 2 * 1024;

/// An offer stream idle this long gets a heartbeat (gRPC-web over HTTP/1.1 has no ping, and
/// proxies and the HTTP listener close connections idle for a minute).
pub const STREAM_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(25);

/// Roles allowed on the desktop methods (an agent token only for its own agent).
const DESKTOP_ROLES: &[Role] = &[Role::Agent, Role::Supervisor, Role::Admin];
/// The `AgentDesktop` service.
#[derive(Debug, Clone)]
pub struct DesktopService {
    engine: Engine,
    hub: OfferHub,
    history: History,
    chat: Option<ChatHub>,
    links: Option<crate::http::attachments::AttachmentLinks>,
    calls: Option<crate::channels::voice::Calls>,
    days: Option<super::agent_day::AgentDays>,
}

impl DesktopService {
    /// The service over `engine`, streaming offers from `hub`.
    pub fn new(engine: Engine, hub: OfferHub, history: History) -> Self {
        DesktopService {
            engine,
            hub,
            history,
            chat: None,
            links: None,
            calls: None,
            days: None,
        }
    }

    /// Serves the agents' own figures of the day from `days`.
    pub fn with_days(mut self, days: super::agent_day::AgentDays) -> Self {
        self.days = Some(days);
        self
    }

    /// Links the phone channel: completing a live call hangs it up through its gateway.
    pub fn with_calls(mut self, calls: crate::channels::voice::Calls) -> Self {
        self.calls = Some(calls);
        self
    }

    /// Signs attachment download links into the offers and conversations it serves.
    pub fn with_links(mut self, links: crate::http::attachments::AttachmentLinks) -> Self {
        self.links = Some(links);
        self
    }

    /// Links the web chat: agents' typing reaches visitors, and a chat transcript the visitor
    /// asked for is committed before the agent completes the chat.
    pub fn with_chat(mut self, chat: ChatHub) -> Self {
        self.chat = Some(chat);
        self
    }

    /// Logs the agent out, refused while it still handles accepted interactions; returns its
    /// status.
    async fn logout(&self, agent: AgentId) -> Result<pb::AgentStatus, Status> {
        let who = agent.clone();
        let held: Vec<InteractionId> = self
            .engine
            .read(move |r| {
                r.agent(&who)
                    .map(|a| {
                        a.work
                            .iter()
                            .filter(|id| {
                                r.interaction(id).is_some_and(|v| {
                                    matches!(v.phase, InteractionPhase::Assigned { .. })
                                })
                            })
                            .copied()
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .await
            .map_err(Status::from)?;
        if !held.is_empty() {
            let list: Vec<String> = held.iter().map(ToString::to_string).collect();
            return Err(Status::failed_precondition(format!(
                "agent {agent} still handles {}: complete or transfer them before logging out",
                list.join(", ")
            )));
        }
        calls::run_then_agent(
            &self.engine,
            Command::Logout {
                agent: agent.clone(),
            },
            agent,
        )
        .await
    }
}

fn agent_for<T>(request: &Request<T>, requested: &str) -> Result<AgentId, Status> {
    let caller = caller(request)?;
    caller.require(DESKTOP_ROLES)?;
    caller.acting_agent(requested)
}

type OfferStream = Pin<Box<dyn Stream<Item = Result<pb::OfferUpdate, Status>> + Send>>;

#[tonic::async_trait]
impl AgentDesktop for DesktopService {
    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        request.get_ref().check_bounds()?;
        let agent = agent_for(&request, &request.get_ref().agent_id)?;
        let device = convert::device(&request.get_ref().device)?;
        let span = tracing::info_span!("login", agent_id = %agent);
        async {
            if let Some(device) = device {
                calls::run(
                    &self.engine,
                    Command::SetDevice {
                        agent: agent.clone(),
                        device: Some(device),
                    },
                )
                .await?;
            }
            let login = Command::Login {
                agent: agent.clone(),
            };
            Ok(Response::new(
                calls::run_then_agent(&self.engine, login, agent).await?,
            ))
        }
        .instrument(span)
        .await
    }

    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        request.get_ref().check_bounds()?;
        let agent = agent_for(&request, &request.get_ref().agent_id)?;
        Ok(Response::new(self.logout(agent).await?))
    }

    async fn set_state(
        &self,
        request: Request<pb::SetStateRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        request.get_ref().check_bounds()?;
        let agent = agent_for(&request, &request.get_ref().agent_id)?;
        let req = request.get_ref();
        use pb::agent_state::Kind;
        let command = match Kind::try_from(req.state) {
            Ok(Kind::Available) => Command::SetState {
                agent: agent.clone(),
                state: RequestedState::Available,
            },
            Ok(Kind::Paused) => {
                let reason = req.pause_reason.trim();
                if reason.is_empty() {
                    return Err(convert::invalid(
                        "pause_reason is required with KIND_PAUSED (for example \"lunch\")",
                    ));
                }
                Command::SetState {
                    agent: agent.clone(),
                    state: RequestedState::Paused {
                        reason: reason.to_owned(),
                    },
                }
            }
            Ok(Kind::Offline) => return Ok(Response::new(self.logout(agent).await?)),
            _ => {
                return Err(convert::invalid(
                    "state must be KIND_AVAILABLE, KIND_PAUSED (with a reason) or KIND_OFFLINE",
                ))
            }
        };
        Ok(Response::new(
            calls::run_then_agent(&self.engine, command, agent).await?,
        ))
    }

    type OffersStream = OfferStream;

    async fn offers(
        &self,
        request: Request<pb::OffersRequest>,
    ) -> Result<Response<Self::OffersStream>, Status> {
        request.get_ref().check_bounds()?;
        let credential = super::auth::credential(&request);
        let agent = agent_for(&request, &request.get_ref().agent_id)?;
        // Known agent? (A stream for nobody would wait forever.)
        calls::agent_status(&self.engine, agent.clone()).await?;
        let (session, mut notes) = self.hub.register(agent.clone());
        let (tx, rx) = mpsc::channel::<Result<pb::OfferUpdate, Status>>(64);
        let service = self.clone();
        let span = tracing::info_span!("offer_stream", agent_id = %agent);
        tokio::spawn(
            async move {
                let mut sent: HashSet<InteractionId> = HashSet::new();
                let mut resync = true;
                let mut first_sync = true;
                let mut heartbeat = tokio::time::interval_at(
                    tokio::time::Instant::now() + STREAM_HEARTBEAT,
                    STREAM_HEARTBEAT,
                );
                heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    if resync {
                        resync = false;
                        match service.pending_offers(&agent).await {
                            Ok(offers) => {
                                let pending: HashSet<InteractionId> = offers
                                    .iter()
                                    .filter_map(|o| o.interaction.as_ref())
                                    .filter_map(|i| i.id.parse().ok())
                                    .collect();
                                // Offers sent earlier that no longer stand: their withdrawal
                                // may have been missed while the stream was behind.
                                let gone: Vec<InteractionId> =
                                    sent.difference(&pending).copied().collect();
                                for id in gone {
                                    sent.remove(&id);
                                    let update = pb::OfferUpdate {
                                        update: Some(pb::offer_update::Update::Withdrawn(
                                            pb::OfferWithdrawn {
                                                interaction_id: id.to_string(),
                                                reason: "no_longer_offered".into(),
                                            },
                                        )),
                                    };
                                    if tx.send(Ok(update)).await.is_err() {
                                        break;
                                    }
                                }
                                // What the agent already holds: a reconnecting desktop
                                // gets its work back with its context.
                                if first_sync {
                                    first_sync = false;
                                    match service.work_of(&agent, true).await {
                                        Ok(held) => {
                                            for h in held {
                                                let update = pb::OfferUpdate {
                                                    update: Some(pb::offer_update::Update::Held(h)),
                                                };
                                                if tx.send(Ok(update)).await.is_err() {
                                                    break;
                                                }
                                            }
                                        }
                                        Err(status) => {
                                            let _ = tx.send(Err(status)).await;
                                            break;
                                        }
                                    }
                                }
                                for offer in offers {
                                    let Ok(id) = offer
                                        .interaction
                                        .as_ref()
                                        .map(|i| i.id.parse::<InteractionId>())
                                        .transpose()
                                    else {
                                        continue;
                                    };
                                    if let Some(id) = id {
                                        if !sent.insert(id) {
                                            continue;
                                        }
                                    }
                                    let update = pb::OfferUpdate {
                                        update: Some(pb::offer_update::Update::Offer(offer)),
                                    };
                                    if tx.send(Ok(update)).await.is_err() {
                                        break;
                                    }
                                }
                            }
                            Err(status) => {
                                let _ = tx.send(Err(status)).await;
                                break;
                            }
                        }
                    }
                    let note = tokio::select! {
                        note = notes.recv() => note,
                        _ = tx.closed() => break,
                        _ = heartbeat.tick() => {
                            let at = crate::engine::Clock::now(&crate::engine::SystemClock);
                            let beat = pb::OfferUpdate {
                                update: Some(pb::offer_update::Update::Heartbeat(pb::Heartbeat {
                                    at_unix_ms: i64::try_from(at.as_millis()).unwrap_or(i64::MAX),
                                })),
                            };
                            if tx.send(Ok(beat)).await.is_err() {
                                break;
                            }
                            continue;
                        }
                    };
                    let update = match note {
                        None => {
                            let _ = tx
                                .send(Err(Status::unavailable(
                                    "the server is shutting down: reconnect to resume",
                                )))
                                .await;
                            break;
                        }
                        Some(OfferNote::Resync) => {
                            resync = true;
                            continue;
                        }
                        Some(OfferNote::Offered {
                            interaction,
                            deadline,
                            decision,
                            conversation,
                            context,
                        }) => {
                            if !sent.insert(interaction) {
                                continue;
                            }
                            let known = Known {
                                conversation,
                                context,
                            };
                            match service
                                .offer(&agent, interaction, deadline, &decision, known)
                                .await
                            {
                                Ok(Some(offer)) => pb::offer_update::Update::Offer(offer),
                                Ok(None) => continue,
                                Err(status) => {
                                    let _ = tx.send(Err(status)).await;
                                    break;
                                }
                            }
                        }
                        Some(OfferNote::Consult {
                            interaction,
                            deadline,
                        }) if sent.insert(interaction) => {
                            match service.consult_offer(&agent, interaction, deadline).await {
                                Ok(Some(offer)) => pb::offer_update::Update::Offer(offer),
                                Ok(None) => {
                                    sent.remove(&interaction);
                                    continue;
                                }
                                Err(status) => {
                                    let _ = tx.send(Err(status)).await;
                                    break;
                                }
                            }
                        }
                        // Sent already (the stream's first read of what is pending).
                        Some(OfferNote::Consult { .. }) => continue,
                        Some(OfferNote::Message {
                            interaction,
                            at,
                            message,
                        }) => pb::offer_update::Update::Message(conversation::message_pb(
                            interaction,
                            at,
                            &message,
                            service.links.as_ref(),
                        )),
                        Some(OfferNote::Typing {
                            interaction,
                            typing,
                        }) => pb::offer_update::Update::Typing(pb::TypingNotice {
                            interaction_id: interaction.to_string(),
                            typing,
                        }),
                        Some(OfferNote::ConsultNews {
                            interaction,
                            consulted,
                            kind,
                            at,
                        }) => pb::offer_update::Update::Consult(pb::ConsultNotice {
                            interaction_id: interaction.to_string(),
                            agent_id: consulted.to_string(),
                            kind: kind.to_owned(),
                            at_unix_ms: at.0 as i64,
                        }),
                        Some(OfferNote::Withdrawn {
                            interaction,
                            reason,
                        }) => {
                            sent.remove(&interaction);
                            pb::offer_update::Update::Withdrawn(pb::OfferWithdrawn {
                                interaction_id: interaction.to_string(),
                                reason: reason.to_owned(),
                            })
                        }
                    };
                    if tx
                        .send(Ok(pb::OfferUpdate {
                            update: Some(update),
                        }))
                        .await
                        .is_err()
                    {
                        break;
                    }
                    heartbeat.reset();
                }
                service.hub.unregister(&agent, session);
                tracing::debug!("offer stream closed");
            }
            .instrument(span),
        );
        Ok(Response::new(super::auth::guard(
            credential,
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn accept(
        &self,
        request: Request<pb::InteractionAction>,
    ) -> Result<Response<pb::Interaction>, Status> {
        self.on_interaction(request, |interaction, agent| Command::Accept {
            interaction,
            agent,
        })
        .await
    }

    async fn decline(
        &self,
        request: Request<pb::InteractionAction>,
    ) -> Result<Response<pb::Interaction>, Status> {
        self.on_interaction(request, |interaction, agent| Command::Decline {
            interaction,
            agent,
        })
        .await
    }

    async fn complete(
        &self,
        request: Request<pb::CompleteRequest>,
    ) -> Result<Response<pb::Interaction>, Status> {
        request.get_ref().check_bounds()?;
        let agent = agent_for(&request, &request.get_ref().agent_id)?;
        let req = request.get_ref();
        let id = interaction_id("interaction_id", &req.interaction_id)?;
        let code = req.wrap_up_code.trim();
        if code.len() > 64 {
            return Err(convert::invalid("wrap_up_code is longer than 64 bytes"));
        }
        if req.notes.len() > 16 * 1024 {
            return Err(convert::invalid("notes are longer than 16 KiB"));
        }
        let span = tracing::info_span!("complete", agent_id = %agent, interaction_id = %id);
        async {
            // A chat transcript goes in before completion closes the conversation.
            if let Some(chat) = self.chat.as_ref().filter(|c| c.transcript_pending(id)) {
                self.held_by(&agent, id, false).await?;
                if let Err(e) = chat.send_transcript(id).await {
                    tracing::warn!("chat transcript not stored: {e}");
                }
            }
            self.hang_up_live_call(&agent, id).await?;
            let view = calls::run_then_interaction(
                &self.engine,
                Command::Complete {
                    interaction: id,
                    agent: Some(agent.clone()),
                    wrap_up_code: (!code.is_empty()).then(|| code.to_owned()),
                    notes: (!req.notes.trim().is_empty()).then(|| req.notes.clone()),
                },
                id,
            )
            .await?;
            Ok(Response::new(view))
        }
        .instrument(span)
        .await
    }

    async fn transfer(
        &self,
        request: Request<pb::TransferRequest>,
    ) -> Result<Response<pb::Interaction>, Status> {
        request.get_ref().check_bounds()?;
        let agent = agent_for(&request, &request.get_ref().agent_id)?;
        let req = request.get_ref();
        let id = interaction_id("interaction_id", &req.interaction_id)?;
        let to = match &req.to {
            Some(pb::transfer_request::To::Queue(q)) => TransferTarget::Queue {
                queue: QueueId::new(required("queue", q)?),
            },
            Some(pb::transfer_request::To::Agent(a)) => TransferTarget::Agent {
                agent: AgentId::new(required("agent", a)?),
            },
            None => return Err(convert::invalid("say where to transfer: queue or agent")),
        };
        // The agent must hold the interaction: the router checks `by`.
        let held = self
            .engine
            .read(move |r| r.interaction(&id).map(|v| v.phase))
            .await
            .map_err(Status::from)?;
        match held {
            Some(InteractionPhase::Assigned { agent: holder }) if holder == agent => {}
            Some(_) => {
                return Err(Status::failed_precondition(format!(
                    "agent {agent} does not handle interaction {id}: accept it before \
                     transferring it"
                )))
            }
            None => return Err(Status::not_found(format!("no open interaction {id}"))),
        }
        let note = req.note.trim();
        if note.len() > MAX_TRANSFER_NOTE_BYTES {
            return Err(convert::invalid(format!(
                "note is longer than {} KiB: shorten it",
                MAX_TRANSFER_NOTE_BYTES / 1024
            )));
        }
        let transfer = Command::Transfer {
            interaction: id,
            to,
            by: Some(agent),
            note: (!note.is_empty()).then(|| note.to_owned()),
        };
        Ok(Response::new(
            calls::run_then_interaction(&self.engine, transfer, id).await?,
        ))
    }

    async fn start_consult(
        &self,
        request: Request<pb::StartConsultRequest>,
    ) -> Result<Response<pb::Interaction>, Status> {
        request.get_ref().check_bounds()?;
        let agent = agent_for(&request, &request.get_ref().agent_id)?;
        let req = request.get_ref();
        let id = interaction_id("interaction_id", &req.interaction_id)?;
        let to = match &req.to {
            Some(pb::start_consult_request::To::Queue(q)) => TransferTarget::Queue {
                queue: QueueId::new(required("queue", q)?),
            },
            Some(pb::start_consult_request::To::Agent(a)) => TransferTarget::Agent {
                agent: AgentId::new(required("agent", a)?),
            },
            None => return Err(convert::invalid("say whom to consult: queue or agent")),
        };
        let read = self
            .engine
            .read(move |r| r.interaction(&id).map(|v| (v.spec.channel, v.phase)))
            .await
            .map_err(Status::from)?;
        match read {
            None => return Err(Status::not_found(format!("no open interaction {id}"))),
            Some((_, InteractionPhase::Assigned { agent: ref holder })) if *holder == agent => {}
            Some(_) => {
                return Err(Status::failed_precondition(format!(
                    "agent {agent} does not handle interaction {id}: accept it before \
                     consulting a colleague"
                )))
            }
        }
        let call = match read {
            Some((crate::core::Channel::Voice, _)) => {
                let Some(calls) = &self.calls else {
                    return Err(consult_refused(
                        id,
                        crate::channels::voice::conference::ConsultError::NotConnected(id),
                    ));
                };
                calls
                    .can_consult(id)
                    .await
                    .map_err(|e| consult_refused(id, e))?;
                Some(calls)
            }
            _ => None,
        };
        let note = req.note.trim();
        let command = Command::StartConsult {
            interaction: id,
            by: agent.clone(),
            to,
            note: (!note.is_empty()).then(|| note.to_owned()),
        };
        let answer = calls::run_then_interaction(&self.engine, command, id).await?;
        if let Some(calls) = call {
            // The call moves into its conference room; if it cannot, the consultation is
            // withdrawn and the call stays as it was.
            if let Err(e) = calls.start_room(id).await {
                let cancel = Command::CancelConsult {
                    interaction: id,
                    by: agent,
                };
                if let Err(c) = self.engine.send(cancel).await {
                    tracing::error!(interaction_id = %id, "cancelling the consultation failed: {c}");
                }
                return Err(consult_refused(id, e));
            }
        }
        Ok(Response::new(answer))
    }

    async fn complete_transfer(
        &self,
        request: Request<pb::InteractionAction>,
    ) -> Result<Response<pb::Interaction>, Status> {
        self.on_interaction(request, |interaction, by| Command::CompleteConsult {
            interaction,
            by,
        })
        .await
    }

    async fn cancel_consult(
        &self,
        request: Request<pb::InteractionAction>,
    ) -> Result<Response<pb::Interaction>, Status> {
        self.on_interaction(request, |interaction, by| Command::CancelConsult {
            interaction,
            by,
        })
        .await
    }

    async fn set_device(
        &self,
        request: Request<pb::SetDeviceRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        request.get_ref().check_bounds()?;
        let agent = agent_for(&request, &request.get_ref().agent_id)?;
        let device = convert::device(&request.get_ref().device)?;
        let command = Command::SetDevice {
            agent: agent.clone(),
            device,
        };
        Ok(Response::new(
            calls::run_then_agent(&self.engine, command, agent).await?,
        ))
    }

    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> Result<Response<pb::ConversationMessage>, Status> {
        request.get_ref().check_bounds()?;
        let agent = agent_for(&request, &request.get_ref().agent_id)?;
        let req = request.get_ref();
        let id = interaction_id("interaction_id", &req.interaction_id)?;
        let span = tracing::info_span!("send_message", agent_id = %agent, interaction_id = %id);
        async {
            let channel = self.held_by(&agent, id, false).await?;
            let so_far = conversation::read(&self.engine, id).await?;
            let message =
                conversation::compose_reply(channel, &agent, &so_far, &req.text, &req.subject)?;
            let (events, _) = self
                .engine
                .send_then_read(
                    Command::AddMessage {
                        interaction: id,
                        message,
                    },
                    |_| (),
                )
                .await
                .map_err(Status::from)?;
            events
                .iter()
                .find_map(|e| match &e.kind {
                    EventKind::MessageAdded { message, .. } => Some(conversation::message_pb(
                        id,
                        e.at,
                        message,
                        self.links.as_ref(),
                    )),
                    _ => None,
                })
                .map(Response::new)
                .ok_or_else(|| {
                    status::internal("send message", &"the committed events hold no message")
                })
        }
        .instrument(span)
        .await
    }

    async fn get_conversation(
        &self,
        request: Request<pb::GetConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        request.get_ref().check_bounds()?;
        let agent = agent_for(&request, &request.get_ref().agent_id)?;
        let id = interaction_id("interaction_id", &request.get_ref().interaction_id)?;
        let page =
            super::limits::Page::new(request.get_ref().page_size, &request.get_ref().page_token)?;
        self.held_by(&agent, id, true).await?;
        let all = conversation::load(&self.engine, id, self.links.as_ref()).await?;
        let (messages, next_page_token) = super::limits::page_of(all.iter(), page);
        Ok(Response::new(pb::Conversation {
            interaction_id: id.to_string(),
            messages,
            next_page_token,
            total: u32::try_from(all.len()).unwrap_or(u32::MAX),
        }))
    }

    async fn set_typing(
        &self,
        request: Request<pb::SetTypingRequest>,
    ) -> Result<Response<pb::SetTypingResponse>, Status> {
        request.get_ref().check_bounds()?;
        let agent = agent_for(&request, &request.get_ref().agent_id)?;
        let req = request.get_ref();
        let id = interaction_id("interaction_id", &req.interaction_id)?;
        let channel = self.held_by(&agent, id, false).await?;
        let delivered = match (&self.chat, channel) {
            (Some(chat), crate::core::Channel::Chat) => chat.agent_typing(id, req.typing),
            _ => false,
        };
        Ok(Response::new(pb::SetTypingResponse { delivered }))
    }

    async fn list_colleagues(
        &self,
        request: Request<pb::ListColleaguesRequest>,
    ) -> Result<Response<pb::ListColleaguesResponse>, Status> {
        let agent = agent_for(&request, &request.get_ref().agent_id)?;
        request.get_ref().check_bounds()?;
        let who = agent.clone();
        let found = self
            .engine
            .read(move |r| {
                r.agent(&who)?;
                let mine = r.queues_of(&who);
                let colleagues: Vec<pb::Colleague> = r
                    .agents()
                    .into_iter()
                    .filter(|a| a.config.id != who)
                    .filter_map(|a| {
                        let shared: Vec<String> = r
                            .queues_of(&a.config.id)
                            .into_iter()
                            .filter(|q| mine.contains(q))
                            .map(|q| q.to_string())
                            .collect();
                        (!shared.is_empty()).then(|| pb::Colleague {
                            agent_id: a.config.id.to_string(),
                            name: a.config.name.clone(),
                            state: Some(convert::state_pb(&a.state)),
                            shared_queues: shared,
                        })
                    })
                    .collect();
                Some((mine, colleagues))
            })
            .await
            .map_err(Status::from)?;
        let Some((queues, colleagues)) = found else {
            return Err(Status::not_found(format!("no agent {agent}")));
        };
        Ok(Response::new(pb::ListColleaguesResponse {
            queues: queues.iter().map(ToString::to_string).collect(),
            colleagues,
        }))
    }

    async fn get_my_day(
        &self,
        request: Request<pb::GetMyDayRequest>,
    ) -> Result<Response<pb::MyDay>, Status> {
        request.get_ref().check_bounds()?;
        let agent = agent_for(&request, &request.get_ref().agent_id)?;
        let Some(days) = &self.days else {
            return Err(Status::unavailable(
                "this server does not keep agents' figures (started without them)",
            ));
        };
        let who = agent.clone();
        let known = self
            .engine
            .read(move |r| r.agent(&who).is_some())
            .await
            .map_err(Status::from)?;
        if !known {
            return Err(Status::not_found(format!("no agent {agent}")));
        }
        days.sync(&self.engine).await;
        let (day, c) = days.today(
            &agent,
            crate::engine::Clock::now(&crate::engine::SystemClock),
        );
        Ok(Response::new(pb::MyDay {
            agent_id: agent.to_string(),
            day: day.format("%Y-%m-%d").to_string(),
            offered: c.offered,
            accepted: c.accepted,
            declined: c.declined,
            missed: c.missed,
            handled: c.handled,
            transferred: c.transferred,
            average_handling_secs: c.average_handling_secs(),
            average_wrap_up_secs: c.average_wrap_up_secs(),
        }))
    }

    async fn get_my_satisfaction(
        &self,
        request: Request<pb::GetMySatisfactionRequest>,
    ) -> Result<Response<pb::MySatisfaction>, Status> {
        let agent = agent_for(&request, &request.get_ref().agent_id)?;
        request.get_ref().check_bounds()?;
        let req = request.into_inner();
        if req.from_unix_ms < 0 || req.to_unix_ms < 0 {
            return Err(convert::invalid(
                "from_unix_ms and to_unix_ms must be Unix milliseconds (0 for the default)",
            ));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let to = match req.to_unix_ms {
            0 => crate::core::Timestamp(now + 1),
            t => crate::core::Timestamp(t as u64),
        };
        let from = match req.from_unix_ms {
            0 => crate::core::Timestamp(to.0.saturating_sub(30 * 86_400_000)),
            f => crate::core::Timestamp(f as u64),
        };
        if from >= to {
            return Err(convert::invalid("from_unix_ms must come before to_unix_ms"));
        }
        let limit = match req.max_comments {
            0 => 20,
            n => n.min(200) as usize,
        };
        let who = agent.clone();
        let (summary, comments) = self
            .engine
            .store()
            .run(move |store| {
                let summary = store
                    .survey_summary_by_agent(from, to)?
                    .into_iter()
                    .find(|(a, _)| a.as_ref() == Some(&who))
                    .map(|(_, s)| s);
                let comments = store.survey_comments(from, to, Some(&who), limit)?;
                Ok((summary, comments))
            })
            .await
            .map_err(Status::from)?;
        Ok(Response::new(pb::MySatisfaction {
            answers: summary.as_ref().map_or(0, |s| s.answers),
            average: summary.as_ref().and_then(|s| s.average()).unwrap_or(0.0),
            comments: comments
                .into_iter()
                .map(|a| pb::MySatisfactionAnswer {
                    interaction_id: a.interaction.to_string(),
                    reference: a.interaction.reference().to_string(),
                    channel: convert::channel_pb(a.channel),
                    score: u32::from(a.score),
                    comment: a.comment.unwrap_or_default(),
                    at_unix_ms: convert::ms(a.at),
                })
                .collect(),
        }))
    }
}
