//! The offer hub: one task reads every committed event and forwards to each connected agent
//! only the events that concern it (a `DashMap` of live sessions), so the cost of an event does
//! not grow with the number of connected agents.
//!
//! The hub also keeps the messages of each interaction it saw created, until its first offer:
//! that offer carries them, so that the stream does not read the conversation back from the
//! journal. The hub sees events in journal order, so an interaction's messages are all there
//! when its offer comes. An interaction created before the hub started (or while it lagged), a
//! later offer of the same interaction, or one with a large message, has its conversation read
//! from the journal as before.

use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::{broadcast, mpsc};

use crate::core::{
    AgentId, ConsultEndCause, DeclineCause, EndReason, EventKind, InteractionId, InteractionPhase,
    OfferContext,
};
use crate::engine::{run_view, Engine, View, ViewBatch, ViewFailed};

/// Something that happened to one of an agent's offers.
#[derive(Debug, Clone)]
pub(super) enum OfferNote {
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
pub(super) struct Known {
    /// The interaction's messages, when the hub saw all of them.
    pub(super) conversation: Option<Conversation>,
    /// What the offer event carries for the desktop.
    pub(super) context: Option<Arc<OfferContext>>,
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

    pub(super) fn register(&self, agent: AgentId) -> (u64, mpsc::Receiver<OfferNote>) {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(256);
        self.sessions.entry(agent).or_default().push((id, tx));
        (id, rx)
    }

    pub(super) fn unregister(&self, agent: &AgentId, id: u64) {
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
