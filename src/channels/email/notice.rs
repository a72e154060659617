//! Guichet's own mail to the citizen, in French then English: the acknowledgement of a new
//! interaction (its reference and the queue's announced delay) and the notice that a case was
//! dealt with, committed as outbound messages (agent none) that the notify module delivers.
//!
//! The completion notice is committed as a follow-up ([`Engine::follow_up`]) when the
//! `InteractionCompleted` event of an email interaction is seen, whether the interaction is in
//! wrap-up or already closed (a queue without wrap-up time).

use tracing::{info, warn};

use crate::core::{AnnouncedDelay, Channel, EventKind, InteractionId, Message, MessageDirection};
use crate::engine::{run_view, Checkpoint, Engine, EngineError, View, ViewBatch, ViewFailed};

use super::intake::reference;
use super::mime::InboundEmail;

/// The announced delay in words, French then English: `5 jours` / `5 days`, rounded up to
/// whole days from a day on, to hours from an hour on, else minutes.
pub fn delay_words(secs: u64) -> (String, String) {
    let (n, fr, en) = if secs >= 86_400 {
        (secs.div_ceil(86_400), "jour", "day")
    } else if secs >= 3_600 {
        (secs.div_ceil(3_600), "heure", "hour")
    } else {
        (secs.div_ceil(60).max(1), "minute", "minute")
    };
    let s = if n > 1 { "s" } else { "" };
    (format!("{n} {fr}{s}"), format!("{n} {en}{s}"))
}

fn outbound(to: &str, from: &str, subject: String, text: String) -> Message {
    let mut m = Message::new(
        format!("email:{}", ulid::Ulid::new()),
        MessageDirection::Outbound,
        text,
    );
    m.from = from.to_owned();
    m.to = to.to_owned();
    m.subject = Some(subject);
    m
}

/// A delay in working days, French then English: `5 jours ouvrés` / `5 working days`.
pub fn working_days_words(days: u32) -> (String, String) {
    let s = if days > 1 { "s" } else { "" };
    (
        format!("{days} jour{s} ouvré{s}"),
        format!("{days} working day{s}"),
    )
}

/// Threads `m` under the message with `message_id` and `references`.
fn thread_under(m: &mut Message, message_id: Option<&str>, references: &[String]) {
    if let Some(mid) = message_id {
        let mut refs: Vec<&str> = references.iter().map(String::as_str).collect();
        refs.push(mid);
        m.meta.insert("in_reply_to".into(), mid.to_owned());
        m.meta.insert("references".into(), refs.join(" "));
    }
}

/// The acknowledgement of the new `interaction` opened by `email`; `delay` is the queue's
/// announced delay for email, when known; `expected_secs` the delay to expect from the queue's
/// load when it differs from the announced one
/// ([`crate::channels::citizen::expected_delay`]), said after it.
pub fn acknowledgement(
    interaction: InteractionId,
    email: &InboundEmail,
    delay: Option<AnnouncedDelay>,
    expected_secs: Option<u64>,
) -> Message {
    let r = reference(interaction);
    let subject = match &email.subject {
        Some(s) if s.to_ascii_lowercase().starts_with("re:") => format!("[#{r}] {s}"),
        Some(s) => format!("[#{r}] Re: {s}"),
        None => format!("[#{r}] Votre demande / Your request"),
    };
    let words = match delay {
        Some(AnnouncedDelay::Secs(secs)) => Some(delay_words(secs)),
        Some(AnnouncedDelay::WorkingDays(days)) => Some(working_days_words(days)),
        None => None,
    };
    let (mut fr_delay, mut en_delay) = match words {
        Some((fr, en)) => (
            format!("Nous vous répondrons sous {fr}."),
            format!("We will answer within {en}."),
        ),
        None => (
            "Nous vous répondrons dès que possible.".to_owned(),
            "We will answer as soon as possible.".to_owned(),
        ),
    };
    if let Some(secs) = expected_secs {
        let (fr, en) = delay_words(secs);
        fr_delay.push_str(&format!(
            " Compte tenu des demandes en attente, comptez aujourd'hui environ {fr}."
        ));
        en_delay.push_str(&format!(
            " Given the requests waiting, expect about {en} today."
        ));
    }
    let text = format!(
        "Bonjour,\n\n\
         Nous avons bien reçu votre message, enregistré sous la référence {r}. {fr_delay}\n\
         Pour compléter votre demande, répondez à ce message en gardant [#{r}] dans l'objet.\n\n\
         Ceci est un message automatique.\n\n\
         ---\n\n\
         Hello,\n\n\
         We have received your message and registered it under the reference {r}. {en_delay}\n\
         To add to your request, reply to this message keeping [#{r}] in the subject.\n\n\
         This is an automatic message.\n"
    );
    let mut m = outbound(&email.from, &email.to, subject, text);
    thread_under(&mut m, email.message_id.as_deref(), &email.references);
    m.meta
        .insert("auto_submitted".into(), "auto-replied".into());
    m.meta.insert("notice".into(), "acknowledgement".into());
    m
}

/// The notice that `interaction` was dealt with, addressed like a reply to `last_inbound`.
pub fn completion(interaction: InteractionId, last_inbound: &Message) -> Message {
    let r = reference(interaction);
    let subject = format!("[#{r}] Demande traitée / Request completed");
    let text = format!(
        "Bonjour,\n\n\
         Votre demande {r} a été traitée. Si vous avez encore besoin de nous, répondez à ce \
         message en gardant [#{r}] dans l'objet.\n\n\
         Ceci est un message automatique.\n\n\
         ---\n\n\
         Hello,\n\n\
         Your request {r} has been dealt with. If you still need us, reply to this message \
         keeping [#{r}] in the subject.\n\n\
         This is an automatic message.\n"
    );
    let mut m = outbound(&last_inbound.from, &last_inbound.to, subject, text);
    let references: Vec<String> = last_inbound
        .meta
        .get("references")
        .map(|r| r.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    thread_under(
        &mut m,
        last_inbound.meta.get("message_id").map(String::as_str),
        &references,
    );
    m.meta
        .insert("auto_submitted".into(), "auto-generated".into());
    m.meta.insert("notice".into(), "completed".into());
    // Its short form at the end of the agent's last reply (`crate::notify::bundle`).
    m.meta.insert(
        crate::notify::bundle::META_APPENDIX.into(),
        format!(
            "Votre demande {r} est traitée. Si vous avez encore besoin de nous, répondez à ce \
             message en gardant [#{r}] dans l'objet.\n\
             Your request {r} has been dealt with. If you still need us, reply to this message \
             keeping [#{r}] in the subject."
        ),
    );
    m
}

/// The name of the completion notices' durable checkpoint.
pub const NOTICES_VIEW: &str = "completion_notices";

/// Commits a completion notice for each completed email interaction, as a view of committed
/// events resuming after its durable checkpoint: nothing is skipped when it falls behind or
/// across a restart, and a completion handed over again (handled but not yet checkpointed
/// when the server stopped) is not noticed twice. Ends when the engine stops.
pub async fn spawn_completion_notices(engine: Engine) -> tokio::task::JoinHandle<()> {
    let checkpoint = Checkpoint::load(&engine, NOTICES_VIEW).await;
    let after = checkpoint.after();
    let view = run_view(
        &engine,
        Notices {
            engine: engine.clone(),
            checkpoint,
        },
        after,
    );
    tokio::spawn(async move { view.finished().await })
}

/// The completion notices, as a view of committed events.
struct Notices {
    engine: Engine,
    /// Where a restart resumes.
    checkpoint: Checkpoint,
}

impl View for Notices {
    fn name(&self) -> &'static str {
        NOTICES_VIEW
    }

    async fn apply(&mut self, batch: ViewBatch) -> Result<(), ViewFailed> {
        let mut sent = false;
        for event in &batch.events {
            if let EventKind::InteractionCompleted { interaction, .. } = &event.kind {
                sent |= notify_completed(&self.engine, *interaction).await?;
            }
        }
        self.checkpoint
            .handled(&self.engine, batch.last_seq(), sent)
            .await
    }

    async fn rebuild(&mut self, engine: &Engine, seq: u64) -> Result<u64, ViewFailed> {
        // The journal lost completions this view had not handled (retention purged them past
        // its checkpoint, up to `seq`). Those whose agent is still in wrap-up are in the
        // router: they get their notice (one already sent is not sent again); the others are
        // lost, and said so. The completions the journal still holds follow.
        let (completed, _) = engine
            .read_at(|r| {
                r.interactions()
                    .into_iter()
                    .filter(|v| v.spec.channel == Channel::Email)
                    .filter(|v| matches!(v.phase, crate::core::InteractionPhase::WrapUp { .. }))
                    .map(|v| v.spec.id)
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| ViewFailed(e.to_string()))?;
        let mut sent = false;
        for interaction in completed {
            sent |= notify_completed(engine, interaction).await?;
        }
        warn!("completions purged from the journal before their notice: those still in wrap-up were noticed, earlier ones are lost");
        self.checkpoint.handled(engine, seq, sent).await?;
        Ok(seq)
    }

    async fn finish(&mut self) {
        self.checkpoint.finish(&self.engine).await;
    }
}

/// Commits the completion notice of `interaction` if it is an email interaction whose last
/// inbound message is not already followed by one. Fails (to be tried again) only when the
/// engine could not take the notice now; true when a notice was committed.
async fn notify_completed(engine: &Engine, interaction: InteractionId) -> Result<bool, ViewFailed> {
    let read = engine
        .store()
        .run(move |store| {
            let spec = store.interaction_spec(interaction)?;
            if spec
                .as_ref()
                .is_none_or(|(_, s)| s.channel != Channel::Email)
            {
                return Ok(None);
            }
            store.conversation(interaction).map(Some)
        })
        .await;
    let conversation = match read {
        Ok(Some(c)) => c,
        Ok(None) => return Ok(false),
        Err(e) => {
            warn!(interaction_id = %interaction, "completion notice: cannot read the conversation: {e}");
            return Err(ViewFailed(e.to_string()));
        }
    };
    let Some(last_at) = conversation
        .iter()
        .rposition(|e| e.message.direction == MessageDirection::Inbound)
    else {
        return Ok(false);
    };
    let last = &conversation[last_at].message;
    if last.meta.contains_key("automatic") {
        return Ok(false);
    }
    // Already noticed (the same completion handed over again after a restart or a retry).
    if conversation[last_at..].iter().any(|e| {
        e.message.direction == MessageDirection::Outbound
            && e.message.meta.get("notice").map(String::as_str) == Some("completed")
    }) {
        return Ok(false);
    }
    let message = completion(interaction, last);
    match engine.follow_up(interaction, message).await {
        Ok(_) => {
            info!(interaction_id = %interaction, "completion notice committed");
            Ok(true)
        }
        Err(e @ (EngineError::Overloaded | EngineError::Stopped | EngineError::Store(_))) => {
            warn!(interaction_id = %interaction, "completion notice not committed yet: {e}");
            Err(ViewFailed(e.to_string()))
        }
        Err(e) => {
            warn!(interaction_id = %interaction, "completion notice not committed: {e}");
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_worded_in_days_hours_or_minutes() {
        assert_eq!(delay_words(432_000), ("5 jours".into(), "5 days".into()));
        assert_eq!(delay_words(86_400), ("1 jour".into(), "1 day".into()));
        assert_eq!(delay_words(14_400), ("4 heures".into(), "4 hours".into()));
        assert_eq!(delay_words(90), ("2 minutes".into(), "2 minutes".into()));
        assert_eq!(
            working_days_words(5),
            ("5 jours ouvrés".into(), "5 working days".into())
        );
    }
}
