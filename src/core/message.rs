//! Conversation messages: what a contact wrote (an email, an SMS, a chat line) and what an agent
//! or Guichet answered, kept with the interaction they belong to.
//!
//! The router does not look inside messages: it only checks that the interaction is open, and
//! journals each message as a [`MessageAdded`](super::EventKind::MessageAdded) event, so that a
//! message is durable exactly when the interaction's other changes are, recovery sees it in
//! order, and retention and erasure treat it like the rest of the interaction's record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::AgentId;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageDirection {
    /// The contact wrote it (received by Guichet).
    Inbound,
    /// An agent or Guichet wrote it (to be sent to the contact).
    Outbound,
}

impl MessageDirection {
    /// `inbound` or `outbound`.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageDirection::Inbound => "inbound",
            MessageDirection::Outbound => "outbound",
        }
    }
}

/// A file that came with a message (an email attachment, an MMS picture).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The file name the sender gave, or a generated one.
    pub name: String,
    /// The MIME type (`application/pdf`).
    pub content_type: String,
    /// The size in bytes of the decoded content.
    pub size: u64,
    /// The content, base64 (standard alphabet, padded); empty when the attachment was over the
    /// configured limit and only listed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub data_base64: String,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// A globally unique id, prefixed by the channel that made it (`email:<Message-ID>`,
    /// `sms:<MessageSid>`, `chat:<ULID>`); channels look messages up by it to ignore a
    /// provider's retry and to thread replies.
    pub id: String,
    /// Who wrote it.
    pub direction: MessageDirection,
    /// The sender's address as the channel knows it (email address, phone number, chat visitor
    /// name); for outbound messages, the service's address.
    #[serde(default)]
    pub from: String,
    /// The recipient's address as the channel knows it.
    #[serde(default)]
    pub to: String,
    /// The agent who wrote an outbound message; none for inbound ones and for Guichet's own
    /// (acknowledgements, notifications, surveys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentId>,
    /// The subject (email only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The text, as plain text (HTML bodies are reduced to text by the channel).
    pub text: String,
    /// Attached files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// Channel data worth keeping: for email `message_id`, `in_reply_to`, `references`,
    /// `html`; for SMS the provider's status; free-form.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
}

impl Message {
    /// A message with only an id, a direction and a text.
    pub fn new(
        id: impl Into<String>,
        direction: MessageDirection,
        text: impl Into<String>,
    ) -> Self {
        Message {
            id: id.into(),
            direction,
            from: String::new(),
            to: String::new(),
            agent: None,
            subject: None,
            text: text.into(),
            attachments: Vec::new(),
            meta: BTreeMap::new(),
        }
    }
}
