//! `[email]`: the domain of Guichet's own Message-IDs, and in `[email.inbound]` where the
//! SMTP listener binds, which recipients it accepts and in which
//! queue each lands, the size limits, what a reply to a closed interaction does, and the
//! inbound-parse webhook's secret.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::core::QueueId;

/// What a citizen's reply to a closed (completed or ended) interaction does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosedReplyPolicy {
    /// A new interaction in the closed one's queue, for the same contact, with the attribute
    /// `linked_to` = the closed interaction's id (the agent sees the history).
    #[default]
    ReopenAsNewLinked,
    /// A new interaction, as for a first message (queue from the recipient, no link).
    New,
}

/// `[email.inbound]`: the inbound email channel (SMTP listener and inbound-parse webhook).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundConfig {
    /// The SMTP listener's address (a relay-facing port: no AUTH, no TLS).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Accepted recipients and the queue each lands in: a full address
    /// (`logement@mairie.example.org`) or a whole domain (`@impots.example.org`); an exact
    /// address wins over its domain. Any other recipient is refused (`550 5.1.1`).
    pub recipients: BTreeMap<String, QueueId>,
    /// The largest message accepted, in bytes (advertised with SIZE; `552 5.3.4` beyond).
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Attachments up to this size (decoded bytes) are stored; larger ones are only listed with
    /// their name, type and size.
    #[serde(default = "default_max_attachment_bytes")]
    pub max_attachment_bytes: usize,
    /// What a reply to a closed interaction does.
    #[serde(default)]
    pub closed_reply: ClosedReplyPolicy,
    /// The shared secret of `POST /email/inbound` (given as `?token=` in the URL or as the
    /// basic-auth password); the endpoint refuses every request while it is unset.
    #[serde(default)]
    pub webhook_token: Option<String>,
    /// SMTP sessions at once; more are told `421` and retried by the relay.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
}

fn default_listen() -> String {
    "127.0.0.1:2525".into()
}

fn default_max_message_bytes() -> usize {
    10 << 20
}

fn default_max_attachment_bytes() -> usize {
    2 << 20
}

fn default_max_sessions() -> usize {
    64
}

impl InboundConfig {
    /// The queue a recipient address lands in: its exact entry, else its domain's (`@domain`);
    /// compared without case.
    pub fn queue_for(&self, address: &str) -> Option<&QueueId> {
        let address = address.trim().to_ascii_lowercase();
        let (_, domain) = address.rsplit_once('@')?;
        self.recipients
            .iter()
            .find(|(k, _)| k.to_ascii_lowercase() == address)
            .or_else(|| {
                self.recipients
                    .iter()
                    .find(|(k, _)| k.starts_with('@') && k[1..].eq_ignore_ascii_case(domain))
            })
            .map(|(_, q)| q)
    }

    /// Checks the section; `queues` are the configuration file's queues (when it declares any,
    /// every recipient must land in one of them). Returns the key at fault and what is wrong.
    pub fn validate(&self, queues: &[QueueId]) -> Result<(), (String, String)> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err((
                "[email.inbound] listen".into(),
                format!(
                    "{:?} is not an address: write IP:PORT, for example \"0.0.0.0:25\"",
                    self.listen
                ),
            ));
        }
        if self.recipients.is_empty() {
            return Err((
                "[email.inbound] recipients".into(),
                "no recipient: map at least one address or @domain to a queue".into(),
            ));
        }
        for (key, queue) in &self.recipients {
            let ok = match key.strip_prefix('@') {
                Some(domain) => !domain.is_empty() && !domain.contains('@'),
                None => key
                    .split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@')),
            };
            if !ok {
                return Err((
                    "[email.inbound] recipients".into(),
                    format!("{key:?} is neither an address (name@domain) nor a domain (@domain)"),
                ));
            }
            if !queues.is_empty() && !queues.contains(queue) {
                return Err((
                    "[email.inbound] recipients".into(),
                    format!("{key:?} lands in queue {queue:?}, which the file does not define"),
                ));
            }
        }
        if self.max_message_bytes < 1024 {
            return Err((
                "[email.inbound] max_message_bytes".into(),
                "must be at least 1024".into(),
            ));
        }
        if self.max_sessions == 0 {
            return Err((
                "[email.inbound] max_sessions".into(),
                "must be at least 1".into(),
            ));
        }
        if self.webhook_token.as_deref().is_some_and(|t| t.len() < 16) {
            return Err((
                "[email.inbound] webhook_token".into(),
                "must be at least 16 characters (a long random secret)".into(),
            ));
        }
        Ok(())
    }
}

/// `[email]`: the email channel: the domain of Guichet's own Message-IDs and, in
/// `[email.inbound]`, the SMTP listener and inbound-parse webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The domain of the Message-IDs Guichet gives its outbound mail (`<ULID@domain>`); the
    /// inbound side recognises replies to them by it.
    #[serde(default = "default_email_domain")]
    pub domain: String,
    /// The inbound channel; no SMTP listener and no webhook when absent.
    #[serde(default)]
    pub inbound: Option<InboundConfig>,
    /// `[email.outbound]`: the SMTP relay outbound email is handed to; email is not sent
    /// without it (the outbox keeps it pending).
    #[serde(default)]
    pub outbound: Option<crate::notify::EmailRelayConfig>,
}

fn default_email_domain() -> String {
    "localhost".into()
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            domain: default_email_domain(),
            inbound: None,
            outbound: None,
        }
    }
}
