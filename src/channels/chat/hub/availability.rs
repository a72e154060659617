//! Whether the chat takes visitors now (opening hours, an agent signed in), the topics'
//! queues, and the message a visitor leaves in the widget when nobody can chat (answered by
//! email).

use std::sync::Arc;

use crate::core::{
    AgentState, Channel, Command, ContactId, InteractionId, InteractionSpec, Message,
    MessageDirection, QueueId,
};

use super::super::Language;
use super::{checked_email, ChatHub, MAX_NAME_CHARS};

/// Whether a queue takes live chats now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Availability {
    /// Inside its opening hours (or it has none).
    pub open: bool,
    /// At least one agent able to take its chats is signed in.
    pub staffed: bool,
    /// Its opening hours, one line per open weekday (empty: none configured).
    pub hours: Vec<String>,
    /// Whether a live chat can start: open, and staffed unless `[citizen] unstaffed_chats =
    /// "wait"`.
    pub live: bool,
}

impl Availability {
    /// Whether a live chat can start.
    pub fn live(&self) -> bool {
        self.live
    }
}

/// A message left in the widget while nobody can chat, answered by email.
#[derive(Debug, Clone)]
pub struct LeftMessage {
    /// The visitor's name.
    pub name: String,
    /// The address to answer.
    pub email: String,
    /// A topic of `[chat.topics]`, or none for `[chat] default_queue`.
    pub topic: Option<String>,
    /// The message.
    pub text: String,
    /// The page's language.
    pub language: Language,
}

/// Why a left message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaveRefused {
    /// The form is wrong: the text says what to fix (in English).
    Invalid(String),
    /// Messages cannot be left (no email relay), or the service is not available now.
    Unavailable,
}

impl ChatHub {
    /// Whether `queue` takes live chats now: inside its `[citizen.hours]` (if any) and with an
    /// agent signed in (not offline) who meets its requirements and takes chats.
    pub async fn availability(&self, queue: &QueueId, language: Language) -> Availability {
        let hours = self.inner.citizen.hours_of(queue.as_str());
        let open = hours
            .is_none_or(|h| h.is_open_at(crate::engine::Clock::now(&crate::engine::SystemClock)));
        let lines = hours
            .map(|h| h.lines(language.as_str()))
            .unwrap_or_default();
        let q = queue.clone();
        let staffed = self
            .inner
            .engine
            .read(move |r| {
                let Some(queue) = r.queue(&q) else {
                    return false;
                };
                r.agents().iter().any(|a| {
                    a.state != AgentState::Offline
                        && a.config.capacity.chat > 0
                        && queue.config.requirements.iter().all(|req| {
                            a.config
                                .skills
                                .get(&req.skill)
                                .is_some_and(|l| *l >= req.min_level)
                        })
                })
            })
            .await
            .unwrap_or(false);
        let waits =
            self.inner.citizen.unstaffed_chats == crate::channels::citizen::UnstaffedChats::Wait;
        Availability {
            open,
            staffed,
            hours: lines,
            live: open && (staffed || waits),
        }
    }

    /// The queue a topic (or none: `[chat] default_queue`) goes to.
    pub fn queue_of_topic(&self, topic: Option<&str>) -> Option<QueueId> {
        let config = &self.inner.config;
        match topic {
            None | Some("") => Some(QueueId::new(config.default_queue.clone())),
            Some(t) => config.topics.get(t).map(|q| QueueId::new(q.clone())),
        }
    }

    /// Whether messages can be left to be answered by email.
    pub fn takes_messages(&self) -> bool {
        self.inner.reply_address.is_some()
    }

    /// Stores a message left while nobody can chat as an email request in the topic's queue,
    /// answered by email from `[email.outbound] from_address`; returns its interaction and the
    /// queue's announced delay for email.
    pub async fn leave_message(
        &self,
        m: LeftMessage,
    ) -> Result<(InteractionId, Option<crate::core::AnnouncedDelay>), LeaveRefused> {
        let Some(reply_address) = self.inner.reply_address.clone() else {
            return Err(LeaveRefused::Unavailable);
        };
        let bad = LeaveRefused::Invalid;
        let name = m.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(bad(format!(
                "name must be 1 to {MAX_NAME_CHARS} characters"
            )));
        }
        let email = checked_email(m.email.trim()).map_err(bad)?;
        let text = m.text.trim().to_owned();
        if text.is_empty() {
            return Err(bad("write your message".into()));
        }
        if text.len() > self.inner.config.max_frame_bytes {
            return Err(bad(format!(
                "the message may have at most {} bytes",
                self.inner.config.max_frame_bytes
            )));
        }
        let topic = m.topic.filter(|t| !t.is_empty());
        let queue = self
            .queue_of_topic(topic.as_deref())
            .ok_or_else(|| bad("unknown topic: choose one of the list".into()))?;
        let mut spec =
            InteractionSpec::new(InteractionId::generate(), Channel::Email, queue.clone());
        spec.external_ref = Some(Arc::from(format!("chat-message:{}", ulid::Ulid::new())));
        spec.contact = Some(ContactId::new(email.to_lowercase()));
        spec.attributes.insert("name", name.clone());
        spec.attributes.insert("language", m.language.as_str());
        spec.attributes.insert("source", "chat_widget");
        if let Some(t) = &topic {
            spec.attributes.insert("topic", t.clone());
        }
        let id = spec.id;
        let mut message = Message::new(
            format!("email:{}", ulid::Ulid::new()),
            MessageDirection::Inbound,
            text,
        );
        message.from = email;
        message.to = reply_address;
        message.subject = Some(match m.language {
            Language::Fr => format!("Message laissé sur le site par {name}"),
            Language::En => format!("Message left on the website by {name}"),
        });
        let q = queue.clone();
        let delay = self
            .inner
            .engine
            .read(move |r| {
                r.queue(&q)
                    .map(|q| q.config.announced_delay(Channel::Email))
            })
            .await
            .ok()
            .flatten();
        match self
            .inner
            .engine
            .send(Command::OpenConversation { spec, message })
            .await
        {
            Ok(_) => {
                tracing::info!(interaction_id = %id, %queue, "message left in the chat widget");
                Ok((id, delay))
            }
            Err(e) => {
                tracing::warn!(%queue, "message left in the chat widget refused: {e}");
                Err(LeaveRefused::Unavailable)
            }
        }
    }
}
