//! `AgentDesktop`: log in, set state, the offer stream, accept / decline / complete / transfer,
//! and the device calls are bridged to.
//!
//! Offer streams do not each read every committed event: one [`OfferHub`] task does, and forwards
//! to each connected agent only the events that concern it (a `DashMap` of live sessions), so the
//! cost of an event does not grow with the number of connected agents.
//!
//! The hub also keeps the messages of each interaction it saw created, until its first offer:
//! that offer carries them, so that the stream does not read the conversation back from the
//! journal. The hub sees events in journal order, so an interaction's messages are all there
//! when its offer comes. An interaction created before the hub started (or while it lagged), a
//! later offer of the same interaction, or one with a large message, has its conversation read
//! from the journal as before.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::channels::chat::ChatHub;
use crate::core::{
    AgentId, Command, ConsultEndCause, DeclineCause, EndReason, EventKind, InteractionId,
    InteractionPhase, InteractionView, OfferContext, QueueId, RequestedState, TransferTarget,
};
use crate::engine::{run_view, Engine, View, ViewBatch, ViewFailed};
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

/// The longest note a transfer may carry.
const MAX_TRANSFER_NOTE_BYTES: usize = 2 * 1024;

/// An offer stream idle this long gets a heartbeat (gRPC-web over HTTP/1.1 has no ping, and
/// proxies and the HTTP listener close connections idle for a minute).
pub const STREAM_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(25);

/// Roles allowed on the desktop methods (an agent token only for its own agent).
const DESKTOP_ROLES: &[Role] = &[Role::Agent, Role::Supervisor, Role::Admin];

/// Something that happened to one of an agent's offers.
#[derive(Debug, Clone)]
enum OfferNote {
    /// A new offer.
    Offered {
        interaction: InteractionId,
        deadline: crate::core::Timestamp,
        decision: crate::core::Decision,
        /// Its messages so far, when the hub saw all of them (else read from the journal).
        conversation: Option<Conversation>,
        /// What the offer event carries for the desktop (absent only from offers journaled
        /// before events carried it: those are read from the router).
        context: Option<Arc<OfferContext>>,
    },
    /// A consultation offer (warm transfer): the interaction, held by a colleague.
    Consult {
        interaction: InteractionId,
        deadline: crate::core::Timestamp,
    },
    /// To the agent holding an interaction: what its consulted colleague did.
    ConsultNews {
        interaction: InteractionId,
        consulted: AgentId,
        kind: &'static str,
        at: crate::core::Timestamp,
    },
    /// The offer no longer stands.
    Withdrawn {
        interaction: InteractionId,
        reason: &'static str,
    },
    /// A message was added to an interaction the agent is offered or holds.
    Message {
        interaction: InteractionId,
        at: crate::core::Timestamp,
        message: Arc<crate::core::Message>,
    },
    /// The contact of an interaction the agent is offered or holds is (or stopped) typing.
    Typing {
        interaction: InteractionId,
        typing: bool,
    },
    /// The hub fell behind: re-read the pending offers.
    Resync,
}

/// Who an interaction is with, as far as the hub knows: the agent, and whether the offer is
/// still pending (not yet accepted).
type Holders = std::collections::HashMap<InteractionId, (AgentId, bool)>;

/// One open offer stream: its id and where its notes go.
type Session = (u64, mpsc::Sender<OfferNote>);

/// An interaction's messages with when each was committed, oldest first.
type Conversation = Vec<(crate::core::Timestamp, Arc<crate::core::Message>)>;

/// Interactions not offered yet at most whose messages the hub keeps; beyond, offers read them
/// from the journal.
const FRESH_MAX: usize = 100_000;

/// A message larger than this (text and attachments) is not kept by the hub: the offer reads
/// the conversation from the journal.
const FRESH_MESSAGE_MAX_BYTES: usize = 64 * 1024;

/// The messages of interactions created since the hub started (or since it last lagged) and
/// not offered yet: complete, because the hub saw their creation.
type Fresh = std::collections::HashMap<InteractionId, Conversation>;

/// What an offer note brings besides the offer itself.
struct Known {
    /// The interaction's messages, when the hub saw all of them.
    conversation: Option<Conversation>,
    /// What the offer event carries for the desktop.
    context: Option<Arc<OfferContext>>,
}

/// What the hub's task knows from the events it routed.
#[derive(Default)]
struct Routing {
    holders: Holders,
    fresh: Fresh,
    /// The consulted agent of each interaction in consultation (it sees the conversation too).
    consulting: std::collections::HashMap<InteractionId, AgentId>,
}

/// Routes committed offer events to the connected agents' streams.
#[derive(Clone, Default)]
pub struct OfferHub {
    sessions: Arc<DashMap<AgentId, Vec<Session>>>,
    next_id: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for OfferHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OfferHub")
            .field("agents", &self.sessions.len())
            .finish()
    }
}

impl OfferHub {
    /// Starts the hub on the engine's committed events.
    pub fn start(engine: &Engine) -> OfferHub {
        OfferHub::start_with_typing(engine, None)
    }

    /// Starts the hub on the engine's committed events, also forwarding contacts' typing
    /// (interaction, typing) to the agent offered or holding each interaction.
    pub fn start_with_typing(
        engine: &Engine,
        typing: Option<broadcast::Receiver<(InteractionId, bool)>>,
    ) -> OfferHub {
        let hub = OfferHub::default();
        let routing: Arc<tokio::sync::Mutex<Routing>> = Arc::default();
        if let Some(mut notes) = typing {
            let (hub, routing) = (hub.clone(), Arc::clone(&routing));
            tokio::spawn(async move {
                loop {
                    match notes.recv().await {
                        Ok((interaction, on)) => {
                            let routing = routing.lock().await;
                            hub.typing(&routing.holders, interaction, on);
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => break,
                    }
                }
            });
        }
        let engine = engine.clone();
        let follower = Follower {
            hub: hub.clone(),
            routing,
        };
        tokio::spawn(async move {
            // Which agent each offered or held interaction is with, as of a sequence number
            // the hub then follows from (events it misses are read back from the journal).
            let after = match holders_at(&engine).await {
                Some((holders, seq)) => {
                    follower.routing.lock().await.holders = holders;
                    seq
                }
                None => return,
            };
            run_view(&engine, follower, after).finished().await;
        });
        hub
    }

    fn route(&self, events: &[crate::core::Event], routing: &mut Routing) {
        let Routing {
            holders,
            fresh,
            consulting,
        } = routing;
        for event in events {
            let (agent, note) = match &event.kind {
                EventKind::InteractionCreated { spec, .. } => {
                    if fresh.len() < FRESH_MAX {
                        fresh.insert(spec.id, Vec::new());
                    }
                    continue;
                }
                EventKind::InteractionOffered {
                    interaction,
                    agent,
                    deadline,
                    decision,
                    context,
                } => {
                    holders.insert(*interaction, (agent.clone(), true));
                    (
                        agent.clone(),
                        OfferNote::Offered {
                            interaction: *interaction,
                            deadline: *deadline,
                            decision: decision.clone(),
                            conversation: fresh.remove(interaction),
                            context: context.clone(),
                        },
                    )
                }
                EventKind::OfferAccepted { interaction, agent } => {
                    holders.insert(*interaction, (agent.clone(), false));
                    continue;
                }
                EventKind::WrapUpEnded { interaction, .. } => {
                    holders.remove(interaction);
                    continue;
                }
                EventKind::MessageAdded {
                    interaction,
                    message,
                } => {
                    if let Some(messages) = fresh.get_mut(interaction) {
                        if message_bytes(message) > FRESH_MESSAGE_MAX_BYTES {
                            fresh.remove(interaction);
                        } else {
                            messages.push((event.at, Arc::clone(message)));
                        }
                    }
                    if let Some(consulted) = consulting.get(interaction) {
                        self.send(
                            consulted,
                            OfferNote::Message {
                                interaction: *interaction,
                                at: event.at,
                                message: Arc::clone(message),
                            },
                        );
                    }
                    match holders.get(interaction) {
                        Some((agent, _)) => (
                            agent.clone(),
                            OfferNote::Message {
                                interaction: *interaction,
                                at: event.at,
                                message: Arc::clone(message),
                            },
                        ),
                        None => continue,
                    }
                }
                EventKind::OfferDeclined {
                    interaction,
                    agent,
                    cause,
                } => {
                    holders.remove(interaction);
                    let reason = match cause {
                        DeclineCause::Declined => "declined",
                        DeclineCause::TimedOut => "timed_out",
                        DeclineCause::Revoked => "revoked",
                    };
                    (
                        agent.clone(),
                        OfferNote::Withdrawn {
                            interaction: *interaction,
                            reason,
                        },
                    )
                }
                EventKind::InteractionEnded {
                    interaction,
                    reason,
                } => {
                    fresh.remove(interaction);
                    match holders.remove(interaction) {
                        Some((agent, true)) => (
                            agent,
                            OfferNote::Withdrawn {
                                interaction: *interaction,
                                reason: match reason {
                                    EndReason::Abandoned => "abandoned",
                                    _ => "cancelled",
                                },
                            },
                        ),
                        _ => continue,
                    }
                }
                EventKind::ConsultOffered {
                    interaction,
                    agent,
                    deadline,
                    ..
                } => {
                    consulting.insert(*interaction, agent.clone());
                    (
                        agent.clone(),
                        OfferNote::Consult {
                            interaction: *interaction,
                            deadline: *deadline,
                        },
                    )
                }
                EventKind::ConsultAccepted { interaction, agent } => {
                    match holders.get(interaction) {
                        Some((holder, false)) => (
                            holder.clone(),
                            OfferNote::ConsultNews {
                                interaction: *interaction,
                                consulted: agent.clone(),
                                kind: "consult_accepted",
                                at: event.at,
                            },
                        ),
                        _ => continue,
                    }
                }
                EventKind::ConsultEnded {
                    interaction,
                    agent,
                    cause,
                } => {
                    consulting.remove(interaction);
                    // The holder hears of its colleague's answer (not of its own cancel).
                    let news = match cause {
                        ConsultEndCause::Declined => Some("consult_declined"),
                        ConsultEndCause::TimedOut => Some("consult_timed_out"),
                        ConsultEndCause::ConsultedLeft => Some("consult_revoked"),
                        _ => None,
                    };
                    if let (Some(kind), Some((holder, false))) = (news, holders.get(interaction)) {
                        self.send(
                            holder,
                            OfferNote::ConsultNews {
                                interaction: *interaction,
                                consulted: agent.clone(),
                                kind,
                                at: event.at,
                            },
                        );
                    }
                    (
                        agent.clone(),
                        OfferNote::Withdrawn {
                            interaction: *interaction,
                            reason: match cause {
                                ConsultEndCause::Declined => "consult_declined",
                                ConsultEndCause::TimedOut => "consult_timed_out",
                                ConsultEndCause::Cancelled => "consult_cancelled",
                                ConsultEndCause::ConsultedLeft => "consult_revoked",
                                ConsultEndCause::HolderLeft => "consult_holder_left",
                                ConsultEndCause::InteractionClosed => "consult_closed",
                            },
                        },
                    )
                }
                EventKind::ConsultCompleted {
                    interaction,
                    from,
                    to,
                } => {
                    consulting.remove(interaction);
                    holders.insert(*interaction, (to.clone(), false));
                    // The consulted agent holds it now: its desktop turns the consultation
                    // into the interaction in hand.
                    self.send(
                        to,
                        OfferNote::Withdrawn {
                            interaction: *interaction,
                            reason: "consult_completed",
                        },
                    );
                    (
                        from.clone(),
                        OfferNote::Withdrawn {
                            interaction: *interaction,
                            reason: "transferred",
                        },
                    )
                }
                EventKind::InteractionMoved { interaction, .. } => {
                    match holders.remove(interaction) {
                        Some((agent, true)) => (
                            agent,
                            OfferNote::Withdrawn {
                                interaction: *interaction,
                                reason: "moved",
                            },
                        ),
                        _ => continue,
                    }
                }
                _ => continue,
            };
            self.send(&agent, note);
        }
    }

    /// Sends `note` to every stream of `agent`.
    fn send(&self, agent: &AgentId, note: OfferNote) {
        if let Some(list) = self.sessions.get(agent) {
            for (_, tx) in list.iter() {
                if tx.try_send(note.clone()).is_err() {
                    // A stream too slow to keep up re-reads its pending offers.
                    let _ = tx.try_send(OfferNote::Resync);
                }
            }
        }
    }

    /// Tells the agent offered or holding `interaction` that its contact is (or stopped) typing.
    fn typing(&self, holders: &Holders, interaction: InteractionId, typing: bool) {
        if let Some((agent, _)) = holders.get(&interaction) {
            if let Some(list) = self.sessions.get(agent) {
                for (_, tx) in list.iter() {
                    // Typing is a hint: dropped rather than waited for when a stream is behind.
                    let _ = tx.try_send(OfferNote::Typing {
                        interaction,
                        typing,
                    });
                }
            }
        }
    }

    fn register(&self, agent: AgentId) -> (u64, mpsc::Receiver<OfferNote>) {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(256);
        self.sessions.entry(agent).or_default().push((id, tx));
        (id, rx)
    }

    fn unregister(&self, agent: &AgentId, id: u64) {
        let empty = match self.sessions.get_mut(agent) {
            Some(mut list) => {
                list.retain(|(i, _)| *i != id);
                list.is_empty()
            }
            None => false,
        };
        if empty {
            self.sessions.remove_if(agent, |_, list| list.is_empty());
        }
    }

    /// Agents with an open offer stream.
    pub fn connected(&self) -> usize {
        self.sessions.len()
    }
}

/// About how many bytes a message holds (text and attachments).
fn message_bytes(message: &crate::core::Message) -> usize {
    message.text.len()
        + message
            .attachments
            .iter()
            .map(|a| a.data_base64.len())
            .sum::<usize>()
}

/// Reads who every open interaction is with from the router (at start, and after the hub fell
/// behind and may have missed offers, acceptances or ends).
/// Who holds or is offered each open interaction, and the sequence number of that picture
/// (`None` once the engine has stopped).
async fn holders_at(engine: &Engine) -> Option<(Holders, u64)> {
    engine
        .read_at(|r| {
            r.interactions()
                .into_iter()
                .filter_map(|v| {
                    let pending = matches!(v.phase, InteractionPhase::Offered { .. });
                    v.phase.agent().map(|a| (v.spec.id, (a.clone(), pending)))
                })
                .collect::<Holders>()
        })
        .await
        .ok()
}

/// The hub, as a view of committed events.
struct Follower {
    hub: OfferHub,
    routing: Arc<tokio::sync::Mutex<Routing>>,
}

impl View for Follower {
    fn name(&self) -> &'static str {
        "offers"
    }

    async fn apply(&mut self, batch: ViewBatch) -> Result<(), ViewFailed> {
        let mut routing = self.routing.lock().await;
        self.hub.route(&batch.events, &mut routing);
        Ok(())
    }

    async fn rebuild(&mut self, engine: &Engine, seq: u64) -> Result<u64, ViewFailed> {
        // Events the hub needed were purged: start again from the router, and every stream
        // re-reads its pending offers.
        let Some((holders, at)) = holders_at(engine).await else {
            return Ok(seq);
        };
        let mut routing = self.routing.lock().await;
        routing.holders = holders;
        routing.fresh.clear();
        routing.consulting.clear();
        for entry in self.hub.sessions.iter() {
            for (_, tx) in entry.value() {
                let _ = tx.try_send(OfferNote::Resync);
            }
        }
        Ok(at)
    }

    async fn finish(&mut self) {
        // The engine stopped: closing every session ends the streams.
        self.hub.sessions.clear();
    }
}

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

impl DesktopService {
    /// The calls that name one interaction and act as one agent (`InteractionAction`): checks
    /// the request, runs the command `make` builds, and answers the interaction as it is after
    /// it, in a span naming the agent and the interaction.
    async fn on_interaction(
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
    async fn held_by(
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
    async fn hang_up_live_call(&self, agent: &AgentId, id: InteractionId) -> Result<(), Status> {
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

    /// The offer message for a consultation offered to `agent` (read from the router: `None` if
    /// it no longer stands), with the conversation so far and the holder's note.
    async fn consult_offer(
        &self,
        agent: &AgentId,
        id: InteractionId,
        deadline: crate::core::Timestamp,
    ) -> Result<Option<pb::Offer>, Status> {
        let read = self
            .engine
            .read(move |r| {
                r.interaction(&id).map(|v| {
                    let codes = codes_of(r, &v.queue);
                    (v, codes)
                })
            })
            .await
            .map_err(Status::from)?;
        let Some((view, codes)) = read else {
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
    async fn pending_offers(&self, agent: &AgentId) -> Result<Vec<pb::Offer>, Status> {
        self.work_of(agent, false).await
    }

    /// What `agent` is offered (`held` false) or holds, accepted or in wrap-up (`held` true),
    /// consultations included (offered with their deadline, or accepted),
    /// each with its full context: the interaction (contact, attributes, SLA deadline), the
    /// contact's history, the conversation with attachment links, the queue's wrap-up codes,
    /// the last transfer's note, and the offer's deadline or the end of the wrap-up. One read
    /// of the router gives all but the history and the conversation.
    async fn work_of(&self, agent: &AgentId, held: bool) -> Result<Vec<pb::Offer>, Status> {
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
            conversation: super::limits::newest_within(conversation),
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
    async fn offer(
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
                let read = self
                    .engine
                    .read(move |r| {
                        r.interaction(&id).map(|v| {
                            let codes = codes_of(r, &v.queue);
                            (v, codes)
                        })
                    })
                    .await
                    .map_err(Status::from)?;
                let Some((view, codes)) = read else {
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
fn consult_refused(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{
        Channel, Decision, Event, InteractionSpec, Message, MessageDirection, Rule, Timestamp,
    };

    fn offered(interaction: InteractionId, agent: &AgentId, at: u64) -> Event {
        Event {
            at: Timestamp(at),
            kind: EventKind::InteractionOffered {
                interaction,
                agent: agent.clone(),
                deadline: Timestamp(at + 30_000),
                decision: Decision {
                    rule: Rule::Targeted,
                    step: 0,
                    candidates: 1,
                    score: 0,
                    runner_up: None,
                },
                context: None,
            },
        }
    }

    /// The first offer of an interaction created since the hub started carries its messages;
    /// a later offer of it (after a decline) leaves them to the journal.
    #[tokio::test]
    async fn first_offer_carries_the_messages_the_hub_saw() {
        let hub = OfferHub::default();
        let agent = AgentId::new("amelie");
        let (_, mut notes) = hub.register(agent.clone());
        let mut routing = Routing::default();
        let id = InteractionId::generate();
        let spec = Arc::new(InteractionSpec::new(id, Channel::Chat, "general"));
        let message = Arc::new(Message::new("chat:1", MessageDirection::Inbound, "Bonjour"));
        let batch = |_seq: u64, events: Vec<Event>| events;
        hub.route(
            &batch(
                2,
                vec![
                    Event {
                        at: Timestamp(1_000),
                        kind: EventKind::InteractionCreated {
                            spec,
                            priority: 0,
                            sla_deadline: Timestamp(60_000),
                        },
                    },
                    Event {
                        at: Timestamp(1_000),
                        kind: EventKind::MessageAdded {
                            interaction: id,
                            message: Arc::clone(&message),
                        },
                    },
                ],
            ),
            &mut routing,
        );
        hub.route(&batch(3, vec![offered(id, &agent, 1_001)]), &mut routing);
        match notes.try_recv() {
            Ok(OfferNote::Offered {
                interaction,
                conversation: Some(conversation),
                ..
            }) => {
                assert_eq!(interaction, id);
                assert_eq!(conversation, vec![(Timestamp(1_000), message)]);
            }
            other => panic!("expected an offer with its conversation, got {other:?}"),
        }
        hub.route(
            &batch(
                5,
                vec![
                    Event {
                        at: Timestamp(2_000),
                        kind: EventKind::OfferDeclined {
                            interaction: id,
                            agent: agent.clone(),
                            cause: DeclineCause::Declined,
                        },
                    },
                    offered(id, &agent, 2_001),
                ],
            ),
            &mut routing,
        );
        assert!(matches!(notes.try_recv(), Ok(OfferNote::Withdrawn { .. })));
        assert!(matches!(
            notes.try_recv(),
            Ok(OfferNote::Offered {
                conversation: None,
                ..
            })
        ));
        assert!(routing.fresh.is_empty());
    }
}
