//! The web chat channel: a WebSocket endpoint for visitors (`GET /chat/ws`), the embeddable
//! widget page (`GET /chat/widget`, `GET /chat/widget.js`), and the hub that ties chat sessions
//! to interactions.
//!
//! This module owns the chat protocol ([`protocol`]), the `[chat]` configuration
//! ([`ChatConfig`]), the live sessions and their grace periods ([`ChatHub`]), the delivery of
//! agents' lines and typing to visitors, and the chat transcript sent by email (as an outbound
//! message with `meta.deliver_via = "email"`, which the notify module delivers).
//!
//! Every visitor line is committed (`OpenConversation`, then `AddMessage`) before it is
//! acknowledged; agents' lines reach the visitor because their `MessageAdded` event was
//! committed. Sessions live in memory: after a restart, open chat interactions whose visitor
//! never comes back are ended after the grace period like any other disconnected chat.

mod hub;
mod page;
pub mod protocol;
mod socket;
mod transcript;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use hub::{Availability, ChatCounters, ChatHub, LeaveRefused, LeftMessage};
pub use socket::{SocketLimits, SLOW_WRITE};

/// `[chat]`: the web chat's limits and routing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatConfig {
    /// The largest WebSocket frame a visitor may send, in bytes; bigger frames get an error and
    /// the socket is closed with code 1009.
    #[serde(default = "default_max_frame_bytes")]
    pub max_frame_bytes: usize,
    /// Seconds a disconnected visitor has to come back before the chat ends (abandoned if no
    /// agent answered yet, completed otherwise).
    #[serde(default = "default_grace_secs")]
    pub grace_secs: u64,
    /// Origins (`https://www.example.org`) whose pages may open the WebSocket; the widget's own
    /// origin (the host the socket is reached on, and `[server] public_url`) always may; `"*"`
    /// allows any. Clients that send no `Origin` header (not browsers) are not checked.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// The queue of chats started without a topic.
    #[serde(default = "default_queue")]
    pub default_queue: String,
    /// Topics offered to visitors in the widget, each with its queue (`housing = "benefits"`).
    #[serde(default)]
    pub topics: BTreeMap<String, String>,
    /// The widget's language when the page does not ask (`fr` or `en`).
    #[serde(default = "default_language")]
    pub default_language: String,
    /// Each topic's label per language, shown in the widget
    /// (`[chat.topic_labels.impots] fr = "Impôts", en = "Taxes"`); a topic without one shows
    /// its key.
    #[serde(default)]
    pub topic_labels: BTreeMap<String, BTreeMap<String, String>>,
}

fn default_max_frame_bytes() -> usize {
    16 * 1024
}

fn default_grace_secs() -> u64 {
    30
}

fn default_queue() -> String {
    "general".into()
}

fn default_language() -> String {
    "fr".into()
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            max_frame_bytes: default_max_frame_bytes(),
            grace_secs: default_grace_secs(),
            allowed_origins: Vec::new(),
            default_queue: default_queue(),
            topics: BTreeMap::new(),
            default_language: default_language(),
            topic_labels: BTreeMap::new(),
        }
    }
}

impl ChatConfig {
    /// Checks the settings; the message says what to fix.
    pub fn validate(&self) -> Result<(), String> {
        if !(256..=1 << 20).contains(&self.max_frame_bytes) {
            return Err("max_frame_bytes must be between 256 and 1048576".into());
        }
        if self.grace_secs > 3600 {
            return Err("grace_secs must be at most 3600 (one hour)".into());
        }
        for origin in &self.allowed_origins {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(format!(
                    "allowed_origins: {origin:?} must be \"*\" or start with http:// or https://"
                ));
            }
        }
        if self.default_queue.trim().is_empty() {
            return Err("default_queue must name a queue".into());
        }
        Language::parse(&self.default_language)
            .ok_or_else(|| "default_language must be \"fr\" or \"en\"".to_owned())?;
        for (topic, labels) in &self.topic_labels {
            if !self.topics.contains_key(topic) {
                return Err(format!(
                    "topic_labels.{topic}: no such topic in [chat.topics]: add it there or remove \
                     its labels"
                ));
            }
            for (language, label) in labels {
                if language != "fr" && language != "en" {
                    return Err(format!(
                        "topic_labels.{topic}.{language}: labels are given for fr and en"
                    ));
                }
                if label.trim().is_empty() || label.chars().count() > 200 {
                    return Err(format!(
                        "topic_labels.{topic}.{language} must have 1 to 200 characters"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The languages the widget and the transcript speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// French.
    Fr,
    /// English.
    En,
}

impl Language {
    /// `fr` or `en` (case-insensitive, region ignored: `en-GB`).
    pub fn parse(text: &str) -> Option<Language> {
        let base = text.trim().split(['-', '_']).next().unwrap_or_default();
        match base.to_ascii_lowercase().as_str() {
            "fr" => Some(Language::Fr),
            "en" => Some(Language::En),
            _ => None,
        }
    }

    /// `fr` or `en`.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Fr => "fr",
            Language::En => "en",
        }
    }
}

/// The chat's HTTP routes: `/chat/ws`, `/chat/widget`, `/chat/widget.js`, `POST /chat/message`.
pub fn routes(hub: &ChatHub, limits: SocketLimits) -> axum::Router {
    socket::routes(hub.clone(), limits)
}

/// The survey task asks chat visitors in the widget through the hub.
impl crate::survey::ChatVisitors for ChatHub {
    fn visitor_present(&self, interaction: crate::core::InteractionId) -> bool {
        ChatHub::visitor_present(self, interaction)
    }

    fn visitor_may_resume(&self, interaction: crate::core::InteractionId) -> bool {
        ChatHub::visitor_may_resume(self, interaction)
    }

    fn no_survey(&self, interaction: crate::core::InteractionId) {
        ChatHub::no_survey(self, interaction)
    }
}
