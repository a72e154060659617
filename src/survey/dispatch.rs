//! Asking: the task that follows completed interactions in the journal and sends each one's
//! survey question (see the module comment of [`crate::survey`]).
//!
//! Crash safety: the checkpoint moves past a completion only once its question is committed
//! (or it was decided not to ask). A question is recorded (`claim`) before its message is
//! committed; after a crash in between, the next pass finds the recorded question and commits
//! its message then, with the same token and message id, so a question is never sent twice.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::channels::email::intake::reference;
use crate::core::{Channel, ContactId, EventKind, InteractionSpec, Message, MessageDirection};
use crate::engine::{run_wakeups, EngineError};
use crate::obs::page::Lang;
use crate::store::{CompletedInteraction, ConversationEntry, SurveyQuestion, SurveyVia};

use super::text;
use super::{new_token, ChatVisitors, Surveys};

/// Completions read from the journal at a time.
const BATCH: usize = 128;

/// The survey task's name as a view of committed events, and for its retention hold.
const SURVEYS_VIEW: &str = "surveys";

/// The longest wait between two passes when no completion wakes the task.
const IDLE: Duration = Duration::from_secs(30);

use super::{SURVEY_TOKEN, SURVEY_URL};

pub(super) fn spawn(surveys: Surveys, chat: Option<Arc<dyn ChatVisitors>>) -> JoinHandle<()> {
    tokio::spawn(run(surveys, chat).instrument(tracing::info_span!("surveys")))
}

async fn run(surveys: Surveys, chat: Option<Arc<dyn ChatVisitors>>) {
    // The view runner owns the subscription, its lag and the shutdown; the checkpoint is the
    // survey task's own, in the store (a wake-up missed by the broadcast is read back).
    let completed = |e: &EventKind| matches!(e, EventKind::InteractionCompleted { .. });
    // Nothing is purged before the first pass has read the completions after the checkpoint.
    surveys.inner.engine.hold_retention(SURVEYS_VIEW, 0);
    let wakeups = loop {
        match run_wakeups(&surveys.inner.engine, SURVEYS_VIEW, completed).await {
            Ok(w) => break w,
            Err(e) => {
                if surveys.inner.engine.is_stopped() {
                    return;
                }
                tracing::warn!(error = %e, "surveys: store failure, retrying in 5 s");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    };
    tracing::info!("surveys started");
    loop {
        if surveys.inner.engine.is_stopped() {
            break;
        }
        let wait = match pass(&surveys, chat.as_deref()).await {
            Ok(true) => continue,
            Ok(false) => IDLE,
            Err(e) => {
                tracing::warn!(error = %e, "surveys: pass interrupted, retrying in 5 s");
                Duration::from_secs(5)
            }
        };
        if !wakeups.wait(wait).await {
            tracing::info!("surveys stopped");
            return;
        }
    }
}

/// One pass over the completions after the checkpoint; true when more are waiting.
async fn pass(surveys: &Surveys, chat: Option<&dyn ChatVisitors>) -> Result<bool, EngineError> {
    let (found, next) = surveys.blocking(|s| s.survey_completions(BATCH)).await?;
    let more = found.len() >= BATCH;
    for completed in &found {
        let span = tracing::info_span!("survey", interaction_id = %completed.interaction);
        match consider(surveys, chat, completed).instrument(span).await {
            Ok(true) => {}
            // A chat held open for a question that will not come ends now.
            Ok(false) => {
                if let Some(hub) = chat {
                    hub.no_survey(completed.interaction);
                }
            }
            Err(e) => {
                // Not asked yet: the checkpoint stays before it, and the next pass tries again.
                let before = completed.seq.saturating_sub(1);
                surveys
                    .blocking(move |s| s.set_survey_checkpoint(before))
                    .await?;
                surveys.inner.engine.hold_retention(SURVEYS_VIEW, before);
                return Err(e);
            }
        }
    }
    surveys
        .blocking(move |s| s.set_survey_checkpoint(next))
        .await?;
    // Retention may purge up to the checkpoint, never a completion not considered yet.
    surveys.inner.engine.hold_retention(SURVEYS_VIEW, next);
    Ok(more)
}

/// How a question reaches the contact.
struct Route {
    via: SurveyVia,
    /// Where it goes (number or address); none in the chat widget.
    address: Option<String>,
    /// The service's number or address it comes from (empty: the default sender).
    from: String,
    lang: Option<Lang>,
    /// `meta.deliver_via`, when the outbox must deliver by another channel than the
    /// interaction's.
    deliver_via: Option<&'static str>,
    /// The message the email answers (its Message-ID and References).
    thread: Option<(String, String)>,
}

/// Asks about one completed interaction, unless there is no reason to; true when the question
/// went to the chat widget. Errors are the ones worth retrying (the engine or the store
/// failing); everything else is logged and skipped.
async fn consider(
    surveys: &Surveys,
    chat: Option<&dyn ChatVisitors>,
    completed: &CompletedInteraction,
) -> Result<bool, EngineError> {
    let inner = &surveys.inner;
    let now = inner.clock.now();
    if completed.at.0.saturating_add(inner.config.catch_up_ms()) < now.0 {
        tracing::debug!("completed too long ago: not surveyed");
        return Ok(false);
    }
    let interaction = completed.interaction;
    let spec = surveys
        .blocking(move |s| s.interaction_spec(interaction))
        .await?;
    let Some((_, spec)) = spec else {
        return Ok(false);
    };
    if !inner.config.enabled_for(&spec.queue) {
        return Ok(false);
    }
    // The conversation only where the route needs it (an email's thread, an SMS without its
    // numbers in the attributes).
    let needs_conversation = spec.channel == Channel::Email
        || (spec.channel == Channel::Sms && spec.attributes.get("sms_from").is_none());
    let (conversation, existing) = surveys
        .blocking(move |s| {
            let conversation = if needs_conversation {
                s.conversation(interaction)?
            } else {
                Vec::new()
            };
            Ok((conversation, s.survey_question_of(interaction)?))
        })
        .await?;
    let Some(route) = route(surveys, chat, &spec, &conversation) else {
        tracing::info!(
            channel = spec.channel.as_str(),
            "no way to ask this contact: not surveyed"
        );
        return Ok(false);
    };
    let question = match existing {
        Some(q) => q,
        None => {
            let contact = spec
                .contact
                .clone()
                .or_else(|| route.address.as_deref().map(ContactId::new));
            let (c, number) = (
                contact.clone(),
                (route.via == SurveyVia::Sms)
                    .then(|| route.address.clone())
                    .flatten(),
            );
            let period = inner.config.period_ms();
            let allowed = surveys
                .blocking(move |s| {
                    if let Some(c) = &c {
                        if !s.may_survey(c, now, period)? {
                            return Ok(false);
                        }
                    }
                    match &number {
                        Some(n) => Ok(!s.is_opted_out(n)?),
                        None => Ok(true),
                    }
                })
                .await?;
            if !allowed {
                tracing::info!("contact asked recently or opted out: not surveyed");
                return Ok(false);
            }
            let message = match route.via {
                SurveyVia::Sms => format!("sms:{}", ulid::Ulid::new()),
                SurveyVia::Email => format!("email:{}", ulid::Ulid::new()),
                SurveyVia::Chat => format!("chat:{}", ulid::Ulid::new()),
            };
            let question = SurveyQuestion {
                token: new_token(),
                interaction,
                contact,
                agent: Some(completed.agent.clone()),
                queue: spec.queue.clone(),
                channel: spec.channel,
                via: route.via,
                address: route.address.clone(),
                message,
                language: text::language_code(route.lang).to_owned(),
                asked_at: now,
                answered_at: None,
            };
            let q = question.clone();
            // A leader past its lease's deadline asks nothing (high availability).
            if !surveys
                .blocking(move |s| Ok(s.acting() && s.claim_survey_question(&q)?))
                .await?
            {
                return Ok(false);
            }
            question
        }
    };
    let id = question.message.clone();
    if surveys
        .blocking(move |s| s.message_interaction(&id))
        .await?
        .is_some()
    {
        return Ok(false);
    }
    let message = question_message(surveys, &question, &route, &spec);
    match inner.engine.follow_up(interaction, message).await {
        Ok(_) => {
            metrics::counter!(
                "guichet_surveys_sent_total",
                "queue" => spec.queue.to_string(),
                "channel" => spec.channel.as_str(),
                "via" => question.via.as_str()
            )
            .increment(1);
            tracing::info!(via = question.via.as_str(), "survey question committed");
            Ok(question.via == SurveyVia::Chat)
        }
        Err(e @ (EngineError::Overloaded | EngineError::Stopped | EngineError::Store(_))) => Err(e),
        Err(e) => {
            tracing::warn!(error = %e, "survey question refused");
            Ok(false)
        }
    }
}

/// The last message the contact wrote.
fn last_inbound(conversation: &[ConversationEntry]) -> Option<&Message> {
    conversation
        .iter()
        .rev()
        .map(|e| e.message.as_ref())
        .find(|m| m.direction == MessageDirection::Inbound)
}

fn route(
    surveys: &Surveys,
    chat: Option<&dyn ChatVisitors>,
    spec: &InteractionSpec,
    conversation: &[ConversationEntry],
) -> Option<Route> {
    let inner = &surveys.inner;
    let attribute = |name: &str| {
        spec.attributes
            .get(name)
            .map(str::to_owned)
            .filter(|v| !v.is_empty())
    };
    let lang = text::language_of(attribute("language").as_deref());
    match spec.channel {
        Channel::Sms => {
            let last = last_inbound(conversation);
            let address = attribute("sms_from").or_else(|| last.map(|m| m.from.clone()))?;
            let from = attribute("sms_to").or_else(|| last.map(|m| m.to.clone()))?;
            Some(Route {
                via: SurveyVia::Sms,
                address: Some(address),
                from,
                lang,
                deliver_via: None,
                thread: None,
            })
        }
        Channel::Email => {
            let last = last_inbound(conversation)?;
            if last.meta.contains_key("automatic") || last.from.is_empty() {
                return None;
            }
            let thread = last.meta.get("message_id").map(|mid| {
                let mut refs: Vec<&str> = last
                    .meta
                    .get("references")
                    .map(|r| r.split_whitespace().collect())
                    .unwrap_or_default();
                refs.push(mid);
                (mid.clone(), refs.join(" "))
            });
            Some(Route {
                via: SurveyVia::Email,
                address: Some(last.from.clone()),
                from: last.to.clone(),
                lang,
                deliver_via: None,
                thread,
            })
        }
        Channel::Voice => {
            let caller = attribute("caller")?;
            let from = inner.sms_from.clone()?;
            if !inner.config.is_mobile(&caller) {
                return None;
            }
            Some(Route {
                via: SurveyVia::Sms,
                address: Some(caller),
                from,
                lang,
                deliver_via: Some("sms"),
                thread: None,
            })
        }
        Channel::Chat => {
            let in_widget = Route {
                via: SurveyVia::Chat,
                address: None,
                from: String::new(),
                lang,
                deliver_via: None,
                thread: None,
            };
            if chat.is_some_and(|hub| hub.visitor_present(spec.id)) {
                return Some(in_widget);
            }
            if let Some(email) = attribute("email").filter(|_| inner.email_out) {
                return Some(Route {
                    via: SurveyVia::Email,
                    address: Some(email),
                    from: String::new(),
                    lang,
                    deliver_via: Some("email"),
                    thread: None,
                });
            }
            // Disconnected for a moment (a page reload, a network change) and no address:
            // asked in the widget when it resumes.
            chat.is_some_and(|hub| hub.visitor_may_resume(spec.id))
                .then_some(in_widget)
        }
    }
}

/// The question's message, rebuilt the same from a recorded question.
fn question_message(
    surveys: &Surveys,
    question: &SurveyQuestion,
    route: &Route,
    spec: &InteractionSpec,
) -> Message {
    let url = surveys.page_url(&question.token);
    let lang = text::stored_language(&question.language);
    let (subject, body) = match question.via {
        SurveyVia::Sms => (None, text::sms_question(lang, &reference(spec.id), &url)),
        SurveyVia::Email => {
            let (subject, body) = text::email_question(lang, &reference(spec.id), &url);
            (Some(subject), body)
        }
        SurveyVia::Chat => (None, text::chat_question(lang)),
    };
    let mut m = Message::new(question.message.clone(), MessageDirection::Outbound, body);
    m.subject = subject;
    m.from = route.from.clone();
    m.to = question.address.clone().unwrap_or_default();
    m.meta.insert("notice".into(), "survey".into());
    m.meta.insert(SURVEY_TOKEN.into(), question.token.clone());
    m.meta.insert(SURVEY_URL.into(), url);
    if let Some(via) = route.deliver_via {
        m.meta.insert("deliver_via".into(), via.into());
    }
    if question.via == SurveyVia::Email {
        m.meta
            .insert("auto_submitted".into(), "auto-generated".into());
        // Its short form at the end of the agent's last reply (`crate::notify::bundle`).
        let url = m.meta.get(SURVEY_URL).cloned().unwrap_or_default();
        m.meta.insert(
            crate::notify::bundle::META_APPENDIX.into(),
            text::email_appendix(lang, &url),
        );
        if let Some((in_reply_to, references)) = &route.thread {
            m.meta.insert("in_reply_to".into(), in_reply_to.clone());
            m.meta.insert("references".into(), references.clone());
        }
    }
    m
}
