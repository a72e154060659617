//! `Interactions`: integrators create, read and cancel interactions and watch their events.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;

use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::core::{Command, EventKind, InteractionId, Message, MessageDirection, QueueId};
use crate::engine::{run_view, Engine, View, ViewBatch, ViewFailed};
use crate::store::Role;

use super::auth::caller;
use super::bounds::Bounded;
use super::conversation;
use super::convert::{self, event_pb, event_queue, interaction_id};
use super::proto as pb;
use super::proto::interactions_server::Interactions;

const INTEGRATOR_ROLES: &[Role] = &[Role::Integrator, Role::Supervisor, Role::Admin];

/// The `Interactions` service.
#[derive(Debug, Clone)]
pub struct InteractionsService {
    engine: Engine,
}

impl InteractionsService {
    /// The service over `engine`.
    pub fn new(engine: Engine) -> Self {
        InteractionsService { engine }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send>>;

impl InteractionsService {
    /// The open interaction with the short `reference` (for an agent: among those it is
    /// offered or holds). A reference shared by several open interactions is refused with the
    /// list of their ids.
    async fn by_reference(
        &self,
        reference: crate::core::Reference,
        agent: Option<&crate::core::AgentId>,
    ) -> Result<crate::core::InteractionView, Status> {
        let mut found = self
            .engine
            .read(move |r| {
                r.find_by_reference(reference)
                    .iter()
                    .filter_map(|id| r.interaction(id))
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(Status::from)?;
        if let Some(agent) = agent {
            if found.len() > 1 {
                found.retain(|v| v.phase.agent() == Some(agent));
            }
        }
        match found.len() {
            0 => Err(Status::not_found(format!(
                "no open interaction with reference {reference}"
            ))),
            1 => Ok(found.remove(0)),
            n => Err(Status::failed_precondition(format!(
                "{n} open interactions share reference {reference}: ask with the interaction \
                 id, one of {}",
                found
                    .iter()
                    .take(10)
                    .map(|v| v.spec.id.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

#[tonic::async_trait]
impl Interactions for InteractionsService {
    async fn create(
        &self,
        request: Request<pb::CreateRequest>,
    ) -> Result<Response<pb::CreateResponse>, Status> {
        caller(&request)?.require(INTEGRATOR_ROLES)?;
        request.get_ref().check_bounds()?;
        let spec = request
            .get_ref()
            .spec
            .as_ref()
            .ok_or_else(|| convert::invalid("spec is required"))?;
        super::limits::spec(spec)?;
        let spec = convert::interaction_spec(spec)?;
        let message = match &request.get_ref().message {
            Some(m) => Some(inbound_message(m)?),
            None => None,
        };
        let id = spec.id;
        let external = spec.external_ref.clone();
        let span = tracing::info_span!(
            "create",
            interaction_id = %id,
            channel = %spec.channel,
            queue = %spec.queue
        );
        async move {
            if let Some(m) = &message {
                // A retry of a message already recorded: answer with its interaction.
                if let Some(known) = self.recorded(&m.id).await? {
                    let view = self
                        .engine
                        .read(move |r| r.interaction(&known))
                        .await
                        .map_err(Status::from)?;
                    return Ok(Response::new(pb::CreateResponse {
                        interaction: Some(convert::interaction_or_ended(known, view.as_ref())),
                        created: false,
                    }));
                }
            }
            let command = match message {
                Some(message) => Command::OpenConversation { spec, message },
                None => Command::CreateInteraction { spec },
            };
            // The view is read in the same turn as the creation: the interaction, or the open
            // one that already had this external reference.
            let (events, view) = self
                .engine
                .send_then_read(command, move |r| {
                    r.interaction(&id).or_else(|| {
                        external
                            .as_deref()
                            .and_then(|x| r.find_by_external_ref(x))
                            .and_then(|known| r.interaction(&known))
                    })
                })
                .await
                .map_err(Status::from)?;
            let created = events.iter().any(
                |e| matches!(&e.kind, EventKind::InteractionCreated { spec, .. } if spec.id == id),
            );
            let interaction = match view {
                Some(v) => convert::interaction_pb(&v),
                // The reference named an open interaction when the command ran, but it ended
                // before this read (references are forgotten when an interaction ends). Its id
                // is unknown here: answering with `id` (freshly generated, never created) would
                // hand the caller an interaction that does not exist.
                None if !created => {
                    return Err(Status::aborted(
                        "the interaction with this spec.external_ref ended just now: retry to \
                         create a new one",
                    ))
                }
                // Created and already ended (an immediate overflow that closes it).
                None => convert::interaction_or_ended(id, None),
            };
            Ok(Response::new(pb::CreateResponse {
                interaction: Some(interaction),
                created,
            }))
        }
        .instrument(span)
        .await
    }

    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::Interaction>, Status> {
        let who = caller(&request)?;
        request.get_ref().check_bounds()?;
        // An agent may read what it is offered or holds; the other roles anything.
        let agent = match who.role {
            crate::store::Role::Agent => Some(who.acting_agent("")?),
            _ => {
                who.require(INTEGRATOR_ROLES)?;
                None
            }
        };
        let asked = request.get_ref().interaction_id.trim();
        let by_reference = (asked.len() != 26)
            .then(|| crate::core::Reference::parse(asked))
            .flatten();
        let view = match by_reference {
            Some(reference) => self.by_reference(reference, agent.as_ref()).await?,
            None => {
                let id = interaction_id("interaction_id", asked).map_err(|_| {
                    convert::invalid(
                        "interaction_id is neither an interaction id (26 characters, as returned \
                         by Create) nor a request's short reference (XXXXX-XXXXX, as shown to \
                         the citizen)",
                    )
                })?;
                let view = self
                    .engine
                    .read(move |r| r.interaction(&id))
                    .await
                    .map_err(Status::from)?;
                view.ok_or_else(|| Status::not_found(format!("no open interaction {id}")))?
            }
        };
        let id = view.spec.id;
        if let Some(agent) = agent {
            let theirs = match &view.phase {
                crate::core::InteractionPhase::Offered { agent: a, .. }
                | crate::core::InteractionPhase::Assigned { agent: a }
                | crate::core::InteractionPhase::WrapUp { agent: a, .. } => *a == agent,
                crate::core::InteractionPhase::Waiting => false,
            };
            if !theirs {
                return Err(Status::permission_denied(format!(
                    "agent {agent} is neither offered nor handling interaction {id}"
                )));
            }
        }
        Ok(Response::new(convert::interaction_pb(&view)))
    }

    async fn cancel(
        &self,
        request: Request<pb::CancelRequest>,
    ) -> Result<Response<pb::CancelResponse>, Status> {
        caller(&request)?.require(INTEGRATOR_ROLES)?;
        request.get_ref().check_bounds()?;
        let id = interaction_id("interaction_id", &request.get_ref().interaction_id)?;
        self.engine
            .send(Command::Cancel { interaction: id })
            .instrument(tracing::info_span!("cancel", interaction_id = %id))
            .await
            .map_err(Status::from)?;
        Ok(Response::new(pb::CancelResponse {}))
    }

    type WatchEventsStream = EventStream;

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let credential = super::auth::credential(&request);
        caller(&request)?.require(INTEGRATOR_ROLES)?;
        request.get_ref().check_bounds()?;
        let req = request.into_inner();
        let queues: HashSet<QueueId> = req.queues.iter().map(QueueId::new).collect();
        let ids: HashSet<InteractionId> = req
            .interaction_ids
            .iter()
            .map(|s| interaction_id("interaction_ids", s))
            .collect::<Result<_, _>>()?;
        // Where the open interactions are, as of a sequence number the stream then follows
        // from: nothing falls between, and the view runner reads back from the journal what
        // the broadcast dropped (a slow client is never cut off, it catches up).
        let (queue_of, after): (HashMap<InteractionId, QueueId>, u64) = self
            .engine
            .read_at(move |r| {
                r.interactions()
                    .into_iter()
                    .map(|v| (v.spec.id, v.queue))
                    .collect()
            })
            .await
            .map_err(Status::from)?;
        let queue_of = if queues.is_empty() {
            HashMap::new()
        } else {
            queue_of
        };
        let (tx, rx) = mpsc::channel::<Result<pb::Event, Status>>(256);
        let view = Watcher {
            queues,
            ids,
            queue_of,
            tx: tx.clone(),
        };
        let handle = run_view(&self.engine, view, after);
        tokio::spawn(async move {
            tokio::select! {
                _ = tx.closed() => handle.stop().await,
                _ = handle.ended() => {}
            }
        });
        Ok(Response::new(super::auth::guard(
            credential,
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

/// One `WatchEvents` stream, as a view of committed events.
struct Watcher {
    queues: HashSet<QueueId>,
    ids: HashSet<InteractionId>,
    queue_of: HashMap<InteractionId, QueueId>,
    tx: mpsc::Sender<Result<pb::Event, Status>>,
}

impl View for Watcher {
    fn name(&self) -> &'static str {
        "watch_events"
    }

    async fn apply(&mut self, batch: ViewBatch) -> Result<(), ViewFailed> {
        for (seq, event) in batch.numbered() {
            let interaction = event.kind.interaction();
            let mut queue = event_queue(&event.kind).cloned();
            if let Some(id) = interaction {
                match (&event.kind, &queue) {
                    (EventKind::InteractionCreated { .. }, Some(q))
                    | (EventKind::InteractionMoved { .. }, Some(q)) => {
                        if !self.queues.is_empty() {
                            self.queue_of.insert(id, q.clone());
                        }
                    }
                    _ => queue = self.queue_of.get(&id).cloned(),
                }
                if matches!(
                    event.kind,
                    EventKind::InteractionEnded { .. }
                        | EventKind::WrapUpEnded { .. }
                        | EventKind::InteractionCompleted {
                            wrap_up_until: None,
                            ..
                        }
                ) {
                    self.queue_of.remove(&id);
                }
            }
            if !self.ids.is_empty() && !interaction.is_some_and(|id| self.ids.contains(&id)) {
                continue;
            }
            if !self.queues.is_empty() && !queue.as_ref().is_some_and(|q| self.queues.contains(q)) {
                continue;
            }
            if self
                .tx
                .send(Ok(event_pb(seq, event, queue.as_ref())))
                .await
                .is_err()
            {
                // The client went away: the stream's task stops this view.
                return Ok(());
            }
        }
        Ok(())
    }

    async fn finish(&mut self) {
        let _ = self
            .tx
            .send(Err(Status::unavailable("the server is shutting down")))
            .await;
    }
}

impl InteractionsService {
    /// The interaction that already holds the message with this id, if any.
    async fn recorded(&self, id: &str) -> Result<Option<InteractionId>, Status> {
        let id = id.to_owned();
        self.engine
            .store()
            .run(move |s| s.message_interaction(&id))
            .await
            .map_err(Status::from)
    }
}

/// Checks an integrator's message and makes it an inbound [`Message`].
fn inbound_message(m: &pb::InboundMessage) -> Result<Message, Status> {
    if m.text.trim().is_empty() {
        return Err(convert::invalid(
            "message.text is empty: give what the contact wrote",
        ));
    }
    if m.text.len() > conversation::MAX_REPLY_BYTES {
        return Err(convert::invalid("message.text is longer than 64 KiB"));
    }
    if m.id.len() > 256 || m.from.len() > 256 || m.to.len() > 256 || m.subject.len() > 1024 {
        return Err(convert::invalid(
            "message.id, from and to are limited to 256 bytes, subject to 1024",
        ));
    }
    let id = if m.id.trim().is_empty() {
        ulid::Ulid::new().to_string()
    } else {
        m.id.trim().to_owned()
    };
    let mut message = Message::new(
        format!("api:{id}"),
        MessageDirection::Inbound,
        m.text.clone(),
    );
    message.from = m.from.clone();
    message.to = m.to.clone();
    message.subject = (!m.subject.trim().is_empty()).then(|| m.subject.clone());
    Ok(message)
}
