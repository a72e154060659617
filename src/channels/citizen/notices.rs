//! Keeping the citizen informed: one short message on its own channel (SMS, email, chat; never
//! a call) when its request is moved into another service (a transfer or an overflow to a queue
//! with `inform_moved`), and when a request still waiting in a queue with `inform_late` passes
//! its announced delay. Each names the reference; the move notice names the new service.
//!
//! Notices are committed as outbound follow-up messages ([`Engine::follow_up`], agent none):
//! the notify outbox delivers SMS and email, the chat hub shows them to a connected visitor.
//! The move notices are a view of committed events resuming after their durable checkpoint
//! (`view_checkpoints`, as the completion notices): none is skipped across a restart, and an
//! event handed over again is not noticed twice (a notice carries the sequence number of its
//! move, `meta.notice_seq`, and one already in the conversation is not sent again). The late
//! notices are found by a timer every `[citizen] late_check_secs` among the requests the view
//! saw created, seeded from the router at start; one already in the conversation
//! (`meta.notice = "late"`) is never sent again, so a restart sends none twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{info, warn};

use crate::core::{
    Channel, EventKind, InteractionId, InteractionPhase, Message, MessageDirection, QueueId,
    Timestamp,
};
use crate::engine::{
    run_view, Checkpoint, Clock, Engine, EngineError, SystemClock, View, ViewBatch, ViewFailed,
};
use crate::store::ConversationEntry;

use super::reference;

/// The name of the move notices' durable checkpoint.
pub const NOTICES_VIEW: &str = "citizen_notices";

/// The most requests followed for the late notice (beyond, the newest are not followed and a
/// warning says so).
const MAX_FOLLOWED: usize = 1_000_000;

/// What a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// Moved to another service.
    Moved,
    /// Past its announced delay.
    Late,
}

impl NoticeKind {
    fn tag(self) -> &'static str {
        match self {
            NoticeKind::Moved => "moved",
            NoticeKind::Late => "late",
        }
    }
}

/// The text of a notice for `channel`, in `language` (`fr`, `en`; both in an email or an SMS
/// whose language is unknown). `service` is the new queue's display name (moves only).
pub fn notice_text(
    kind: NoticeKind,
    channel: Channel,
    language: Option<&str>,
    reference: &str,
    service: &str,
) -> (Option<String>, String) {
    let fr = match kind {
        NoticeKind::Moved => format!(
            "Votre demande {reference} a été transmise au service « {service} », qui vous \
             répondra."
        ),
        NoticeKind::Late => format!(
            "Votre demande {reference} prend plus de temps que le délai annoncé. Nous ne \
             l'oublions pas et vous répondrons dès que possible."
        ),
    };
    let en = match kind {
        NoticeKind::Moved => {
            format!("Your request {reference} was passed to the \"{service}\" service, which will answer you.")
        }
        NoticeKind::Late => format!(
            "Your request {reference} is taking longer than announced. We have not forgotten \
             it and will answer as soon as we can."
        ),
    };
    match channel {
        Channel::Email => {
            let subject = match kind {
                NoticeKind::Moved => {
                    format!("[#{reference}] Demande transmise / Request passed on")
                }
                NoticeKind::Late => {
                    format!("[#{reference}] Délai dépassé / Taking longer than announced")
                }
            };
            (
                Some(subject),
                format!(
                    "Bonjour,\n\n{fr}\n\nCeci est un message automatique.\n\n---\n\nHello,\n\n\
                     {en}\n\nThis is an automatic message.\n"
                ),
            )
        }
        _ => match language {
            Some(l) if l.starts_with("en") => (None, en),
            Some(l) if l.starts_with("fr") => (None, fr),
            _ => (None, format!("{fr} / {en}")),
        },
    }
}

/// Starts the move notices (a view resuming after its checkpoint) and the late notices' timer.
/// Both end when the engine stops.
pub async fn spawn(engine: Engine, late_check: Duration) -> tokio::task::JoinHandle<()> {
    let checkpoint = Checkpoint::load(&engine, NOTICES_VIEW).await;
    let after = checkpoint.after();
    let waiting: Arc<Mutex<HashMap<InteractionId, Timestamp>>> = Arc::default();
    let view = run_view(
        &engine,
        Notices {
            engine: engine.clone(),
            checkpoint,
            waiting: Arc::clone(&waiting),
        },
        after,
    );
    tokio::spawn(async move {
        seed(&engine, &waiting).await;
        let late = tokio::spawn(late_loop(engine, waiting, late_check));
        view.finished().await;
        late.abort();
    })
}

/// The requests waiting in the router when the server starts (those created before the
/// checkpoint are not in the events the view is handed).
async fn seed(engine: &Engine, waiting: &Mutex<HashMap<InteractionId, Timestamp>>) {
    let open = engine
        .read(|r| {
            r.interactions()
                .into_iter()
                .filter(|v| v.spec.channel != Channel::Voice)
                .filter(|v| {
                    matches!(
                        v.phase,
                        InteractionPhase::Waiting | InteractionPhase::Offered { .. }
                    )
                })
                .map(|v| (v.spec.id, v.sla_deadline))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
    let mut map = waiting.lock().unwrap_or_else(|e| e.into_inner());
    for (id, deadline) in open {
        if map.len() < MAX_FOLLOWED {
            map.insert(id, deadline);
        }
    }
}

/// Every `every`, the followed requests past their deadline get their late notice (if still
/// waiting in a queue with `inform_late`) and are no longer followed.
async fn late_loop(
    engine: Engine,
    waiting: Arc<Mutex<HashMap<InteractionId, Timestamp>>>,
    every: Duration,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if engine.is_stopped() {
            return;
        }
        let now = SystemClock.now();
        let due: Vec<InteractionId> = {
            let map = waiting.lock().unwrap_or_else(|e| e.into_inner());
            map.iter()
                .filter(|(_, deadline)| **deadline <= now)
                .map(|(id, _)| *id)
                .take(1000)
                .collect()
        };
        for id in due {
            match notify_late(&engine, id).await {
                Ok(()) => {
                    waiting
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&id);
                }
                // Tried again at the next tick.
                Err(e) => warn!(interaction_id = %id, "late notice not committed yet: {e}"),
            }
        }
    }
}

/// The move notices, as a view of committed events; also follows which requests wait.
struct Notices {
    engine: Engine,
    /// Where a restart resumes.
    checkpoint: Checkpoint,
    waiting: Arc<Mutex<HashMap<InteractionId, Timestamp>>>,
}

impl View for Notices {
    fn name(&self) -> &'static str {
        NOTICES_VIEW
    }

    async fn apply(&mut self, batch: ViewBatch) -> Result<(), ViewFailed> {
        let mut sent = false;
        for (seq, event) in batch.numbered() {
            match &event.kind {
                EventKind::InteractionCreated {
                    spec, sla_deadline, ..
                } if spec.channel != Channel::Voice => {
                    let mut map = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
                    if map.len() < MAX_FOLLOWED {
                        map.insert(spec.id, *sla_deadline);
                    } else {
                        warn!(interaction_id = %spec.id, "too many waiting requests followed: no late notice for this one");
                    }
                }
                EventKind::OfferAccepted { interaction, .. }
                | EventKind::InteractionCompleted { interaction, .. }
                | EventKind::InteractionEnded { interaction, .. } => {
                    self.waiting
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(interaction);
                }
                EventKind::InteractionMoved {
                    interaction, queue, ..
                } => {
                    sent |= notify_moved(&self.engine, seq, *interaction, queue).await?;
                }
                _ => {}
            }
        }
        self.checkpoint
            .handled(&self.engine, batch.last_seq(), sent)
            .await
    }

    async fn rebuild(&mut self, engine: &Engine, seq: u64) -> Result<u64, ViewFailed> {
        // The journal lost events this view had not handled (retention purged them past its
        // checkpoint, up to `seq`): the requests waiting are read again from the router, as at
        // start, and the events the journal still holds follow; a move among the lost events
        // gets no notice (the request's new queue answers it).
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        seed(engine, &self.waiting).await;
        warn!("events purged from the journal before the move notices took them: rebuilt from the router");
        self.checkpoint.handled(engine, seq, true).await?;
        Ok(seq)
    }

    async fn finish(&mut self) {
        self.checkpoint.finish(&self.engine).await;
    }
}

/// The request's channel, language attribute and conversation, read from the store.
async fn read(
    engine: &Engine,
    interaction: InteractionId,
) -> Result<Option<(Channel, Option<String>, Vec<ConversationEntry>)>, ViewFailed> {
    engine
        .store()
        .run(move |store| {
            let Some((_, spec)) = store.interaction_spec(interaction)? else {
                return Ok(None);
            };
            let language = spec.attributes.get("language").map(str::to_owned);
            let conversation = store.conversation(interaction)?;
            Ok(Some((spec.channel, language, conversation)))
        })
        .await
        .map_err(|e| ViewFailed(e.to_string()))
}

/// Commits the move notice of the move at `seq` of `interaction` into `queue`, if the queue
/// informs of moves and the request is an SMS, email or chat one; true when one was committed.
async fn notify_moved(
    engine: &Engine,
    seq: u64,
    interaction: InteractionId,
    queue: &QueueId,
) -> Result<bool, ViewFailed> {
    let q = queue.clone();
    let service = match engine
        .read(move |r| {
            r.queue(&q).map(|q| {
                let name = if q.config.name.trim().is_empty() {
                    q.config.id.to_string()
                } else {
                    q.config.name.clone()
                };
                (q.config.inform_moved, name)
            })
        })
        .await
    {
        Ok(Some((true, name))) => name,
        Ok(_) => return Ok(false),
        Err(e) => return Err(ViewFailed(e.to_string())),
    };
    let Some((channel, language, conversation)) = read(engine, interaction).await? else {
        return Ok(false);
    };
    let tag = seq.to_string();
    if channel == Channel::Voice
        || conversation.iter().any(|e| {
            e.message.meta.get("notice").map(String::as_str) == Some("moved")
                && e.message.meta.get("notice_seq") == Some(&tag)
        })
    {
        return Ok(false);
    }
    let Some(mut message) = compose(
        NoticeKind::Moved,
        channel,
        language.as_deref(),
        interaction,
        &service,
        &conversation,
    ) else {
        return Ok(false);
    };
    message.meta.insert("notice_seq".into(), tag);
    commit(engine, interaction, message, NoticeKind::Moved).await
}

/// Commits the late notice of `interaction` if it still waits in a queue with `inform_late`
/// and has none yet. Fails only when it could not be committed now.
async fn notify_late(engine: &Engine, interaction: InteractionId) -> Result<(), ViewFailed> {
    let waiting = engine
        .read(move |r| {
            let v = r.interaction(&interaction)?;
            let waits = matches!(
                v.phase,
                InteractionPhase::Waiting | InteractionPhase::Offered { .. }
            );
            let informs = r.queue(&v.queue).is_some_and(|q| q.config.inform_late);
            Some(waits && informs)
        })
        .await
        .map_err(|e| ViewFailed(e.to_string()))?;
    if waiting != Some(true) {
        return Ok(());
    }
    let Some((channel, language, conversation)) = read(engine, interaction).await? else {
        return Ok(());
    };
    if channel == Channel::Voice
        || conversation
            .iter()
            .any(|e| e.message.meta.get("notice").map(String::as_str) == Some("late"))
    {
        return Ok(());
    }
    let Some(message) = compose(
        NoticeKind::Late,
        channel,
        language.as_deref(),
        interaction,
        "",
        &conversation,
    ) else {
        return Ok(());
    };
    commit(engine, interaction, message, NoticeKind::Late)
        .await
        .map(|_| ())
}

/// The notice as an outbound message addressed like a reply to the citizen's last message;
/// `None` when the citizen never wrote (nothing to reply to).
fn compose(
    kind: NoticeKind,
    channel: Channel,
    language: Option<&str>,
    interaction: InteractionId,
    service: &str,
    conversation: &[ConversationEntry],
) -> Option<Message> {
    let last = conversation
        .iter()
        .rev()
        .find(|e| e.message.direction == MessageDirection::Inbound)?;
    let r = reference(interaction);
    let (subject, text) = notice_text(kind, channel, language, &r, service);
    let prefix = match channel {
        Channel::Email => "email",
        Channel::Sms => "sms",
        _ => "chat",
    };
    let mut m = Message::new(
        format!("{prefix}:{}", ulid::Ulid::new()),
        MessageDirection::Outbound,
        text,
    );
    m.from = last.message.to.clone();
    m.to = last.message.from.clone();
    m.subject = subject;
    if channel == Channel::Email {
        if let Some(mid) = last.message.meta.get("message_id") {
            let mut refs: Vec<String> = last
                .message
                .meta
                .get("references")
                .map(|r| r.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default();
            refs.push(mid.clone());
            m.meta.insert("in_reply_to".into(), mid.clone());
            m.meta.insert("references".into(), refs.join(" "));
        }
        m.meta
            .insert("auto_submitted".into(), "auto-generated".into());
    }
    m.meta.insert("notice".into(), kind.tag().into());
    Some(m)
}

async fn commit(
    engine: &Engine,
    interaction: InteractionId,
    message: Message,
    kind: NoticeKind,
) -> Result<bool, ViewFailed> {
    match engine.follow_up(interaction, message).await {
        Ok(_) => {
            info!(interaction_id = %interaction, notice = kind.tag(), "citizen notice committed");
            metrics::counter!(crate::obs::metrics::names::CITIZEN_NOTICES, "kind" => kind.tag())
                .increment(1);
            Ok(true)
        }
        Err(e @ (EngineError::Overloaded | EngineError::Stopped | EngineError::Store(_))) => {
            Err(ViewFailed(e.to_string()))
        }
        Err(e) => {
            warn!(interaction_id = %interaction, notice = kind.tag(), "citizen notice not committed: {e}");
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_name_the_reference_and_the_service() {
        let (subject, text) =
            notice_text(NoticeKind::Moved, Channel::Sms, None, "01ABC", "Urbanisme");
        assert!(subject.is_none());
        assert!(text.contains("01ABC") && text.contains("Urbanisme"));
        assert!(text.contains("transmise") && text.contains("passed"));
        let (_, text) = notice_text(NoticeKind::Late, Channel::Chat, Some("en"), "01ABC", "");
        assert!(text.starts_with("Your request 01ABC is taking longer"));
        let (subject, _) = notice_text(NoticeKind::Late, Channel::Email, None, "01ABC", "");
        assert!(subject.is_some_and(|s| s.starts_with("[#01ABC]")));
    }
}
