//! The chat hub as a view of committed events: the events about chat interactions (agent
//! joined, agent lines, moves, completion and end, survey questions) forwarded to their visitors.

use std::sync::atomic::Ordering;

use crate::core::{AgentId, EndReason, EventKind, MessageDirection};
use crate::engine::{Engine, View, ViewBatch, ViewFailed};
use crate::survey::{SURVEY_TOKEN, SURVEY_URL};

use super::super::protocol::ServerFrame;
use super::super::transcript;
use super::{ChatHub, Outgoing, Surveyed};

impl ChatHub {
    /// Committed events about chat interactions, forwarded to their visitors.
    async fn route(&self, batch: &ViewBatch) {
        if batch.events.iter().any(|e| {
            matches!(
                e.kind,
                EventKind::InteractionCreated { .. }
                    | EventKind::InteractionOffered { .. }
                    | EventKind::OfferAccepted { .. }
                    | EventKind::OfferDeclined { .. }
                    | EventKind::InteractionMoved { .. }
                    | EventKind::InteractionEnded { .. }
                    | EventKind::InteractionCompleted { .. }
                    | EventKind::InteractionEscalated { .. }
                    | EventKind::PriorityChanged { .. }
            )
        }) {
            self.inner.positions_dirty.store(true, Ordering::Relaxed);
        }
        for (seq, event) in batch.numbered() {
            let Some(interaction) = event.kind.interaction() else {
                continue;
            };
            let session = {
                let state = self.lock();
                match state.by_interaction.get(&interaction) {
                    Some(s) => s.clone(),
                    None => continue,
                }
            };
            match &event.kind {
                // A warm transfer completed: the consulted agent takes the visitor over.
                EventKind::OfferAccepted { agent, .. }
                | EventKind::ConsultCompleted { to: agent, .. } => {
                    let name = agent_name(&self.inner.engine, agent).await;
                    let mut state = self.lock();
                    if let Some(s) = state.sessions.get_mut(&session) {
                        s.agent_name = Some(name.clone());
                        s.send(ServerFrame::AgentJoined { agent: name });
                    }
                }
                EventKind::InteractionMoved { .. } => {
                    let mut state = self.lock();
                    if let Some(s) = state.sessions.get_mut(&session) {
                        s.agent_name = None;
                        s.last_position = None;
                        s.send(ServerFrame::Queued {
                            reference: interaction.reference().to_string(),
                            display_reference: crate::channels::citizen::reference(interaction),
                        });
                    }
                }
                EventKind::MessageAdded { message, .. }
                    if message.direction == MessageDirection::Outbound
                        && message.meta.contains_key(SURVEY_TOKEN) =>
                {
                    let mut state = self.lock();
                    let Some(s) = state.sessions.get(&session) else {
                        continue;
                    };
                    let mut asked = None;
                    if !message.meta.contains_key("deliver_via") {
                        let question = ServerFrame::Survey {
                            token: message.meta.get(SURVEY_TOKEN).cloned().unwrap_or_default(),
                            question: message.text.clone(),
                            url: message.meta.get(SURVEY_URL).cloned().unwrap_or_default(),
                        };
                        s.send(question.clone());
                        asked = Some(Surveyed {
                            token: s.token.clone(),
                            interaction,
                            question,
                            reason: s.ending.unwrap_or("agent"),
                        });
                    }
                    if s.awaiting_survey {
                        let reason = s.ending.unwrap_or("agent");
                        state.finish(&session, reason);
                        if let Some(asked) = asked {
                            self.keep_surveyed(&mut state, &session, asked);
                        }
                    }
                }
                EventKind::MessageAdded { message, .. }
                    if message.direction == MessageDirection::Outbound
                        && !transcript::is_email_copy(message) =>
                {
                    let mut state = self.lock();
                    if let Some(s) = state.sessions.get_mut(&session) {
                        let from = match &message.agent {
                            Some(_) => s.agent_name.clone().unwrap_or_else(|| "Agent".into()),
                            None => "Guichet".into(),
                        };
                        s.send(ServerFrame::AgentTyping { typing: false });
                        s.send_line(
                            seq,
                            ServerFrame::Message {
                                seq,
                                id: message.id.clone(),
                                from,
                                text: message.text.clone(),
                                at: event.at.0,
                            },
                        );
                    }
                }
                EventKind::InteractionCompleted { .. } => {
                    let job = {
                        let mut state = self.lock();
                        let job = state
                            .sessions
                            .get_mut(&session)
                            .and_then(|s| match s.ending {
                                Some(_) => None,
                                None => s.transcript_job(),
                            });
                        let reason = state
                            .sessions
                            .get(&session)
                            .and_then(|s| s.ending)
                            .unwrap_or("agent");
                        // The visitor still there is asked the survey question next.
                        if !self.hold_for_survey(&mut state, &session, reason) {
                            state.finish(&session, reason);
                        }
                        job
                    };
                    // Completed by the agent by another way than the desktop's Complete (which
                    // commits the transcript first): still possible during wrap-up.
                    if let Some(job) = job {
                        let engine = self.inner.engine.clone();
                        tokio::spawn(async move {
                            if let Err(e) = transcript::commit(&engine, interaction, job).await {
                                tracing::warn!(interaction_id = %interaction, "chat transcript not stored: {e}");
                            }
                        });
                    }
                }
                EventKind::InteractionEnded { reason, .. } => {
                    let mut state = self.lock();
                    let default = match reason {
                        EndReason::Abandoned => "abandoned",
                        EndReason::Cancelled => "cancelled",
                    };
                    let reason = state
                        .sessions
                        .get(&session)
                        .and_then(|s| s.ending)
                        .unwrap_or(default);
                    state.finish(&session, reason);
                }
                _ => {}
            }
        }
    }
}

/// An agent's display name (its id when it has none).
async fn agent_name(engine: &Engine, agent: &AgentId) -> String {
    let who = agent.clone();
    match engine
        .read(move |r| r.agent(&who).map(|a| a.config.name.clone()))
        .await
    {
        Ok(Some(name)) if !name.trim().is_empty() => name,
        _ => agent.to_string(),
    }
}

/// The hub, as a view of committed events.
pub(super) struct Follower {
    pub(super) hub: ChatHub,
}

impl View for Follower {
    fn name(&self) -> &'static str {
        "chat"
    }

    async fn apply(&mut self, batch: ViewBatch) -> Result<(), ViewFailed> {
        self.hub.route(&batch).await;
        Ok(())
    }

    async fn finish(&mut self) {
        // The engine stopped: every visitor is told to come back later.
        let mut state = self.hub.lock();
        for (_, s) in state.sessions.drain() {
            if let Some((_, outbox)) = &s.socket {
                let _ = outbox.try_send(Outgoing::Frame(ServerFrame::error(
                    "unavailable",
                    "the service is restarting: please come back in a moment",
                )));
                let _ = outbox.try_send(Outgoing::Close(1001, "server stopping"));
            }
        }
    }
}
