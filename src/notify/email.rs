//! Email out: an outbound message becomes an RFC 5322 message (Message-ID derived from the
//! message id, In-Reply-To and References from its meta, Subject, Date, a plain-text body and its
//! attachments) handed to the configured SMTP relay with `lettre`.

use std::time::Duration;

use base64::Engine as _;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::core::Message;

use super::config::{EmailRelayConfig, SmtpTls};
use super::{SendError, SendFuture, Sender, Sent, SetupError};

/// Sends email through the `[email.outbound]` relay.
pub struct EmailSender {
    config: EmailRelayConfig,
    /// `[email] domain`: the right-hand side of the Message-IDs it makes.
    domain: String,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for EmailSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSender")
            .field("relay_host", &self.config.relay_host)
            .field("port", &self.config.port())
            .field("tls", &self.config.tls)
            .finish()
    }
}

/// The RFC 5322 Message-ID (with angle brackets) of a message Guichet sends: `email:<ULID>`
/// becomes `<ULID@domain>`; an id of another channel (a chat transcript, `chat:<ULID>`) becomes
/// `<chat.ULID@domain>`.
pub fn message_id_header(id: &str, domain: &str) -> String {
    let local = match id.strip_prefix("email:") {
        Some(rest) => rest.trim_matches(['<', '>']).to_owned(),
        None => id.replace(':', "."),
    };
    let local: String = local
        .chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '@' | '"' | '\\'))
        .collect();
    format!("<{local}@{domain}>")
}

impl EmailSender {
    /// A sender for the relay of `config`, making Message-IDs `<ULID@domain>`; fails when the
    /// relay's name is not usable for TLS.
    pub fn new(config: &EmailRelayConfig, domain: &str) -> Result<Self, SetupError> {
        let host = config.relay_host.as_str();
        let tls = |host: &str| {
            TlsParameters::new(host.to_owned()).map_err(|e| {
                SetupError(format!(
                    "[email.outbound] relay_host {host:?}: cannot set up TLS: {e}"
                ))
            })
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(config.port())
            .timeout(Some(Duration::from_secs(config.timeout_secs)));
        builder = match config.tls {
            SmtpTls::None => builder.tls(Tls::None),
            SmtpTls::Starttls => builder.tls(Tls::Required(tls(host)?)),
            SmtpTls::Tls => builder.tls(Tls::Wrapper(tls(host)?)),
        };
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(EmailSender {
            config: config.clone(),
            domain: domain.to_owned(),
            transport: builder.build(),
        })
    }

    /// The email for `message`; a message that cannot become one (no valid recipient) is a
    /// permanent failure.
    pub fn build(&self, message: &Message) -> Result<lettre::Message, SendError> {
        // Addresses may come bare (`a@b`) or with a display name (`Jeanne <a@b>`).
        let to: Mailbox = message.to.trim().parse().map_err(|_| {
            SendError::Permanent(format!(
                "the recipient {:?} is not an email address",
                message.to
            ))
        })?;
        let from = match message.from.trim().parse::<Mailbox>() {
            Ok(m) if m.name.is_some() => m,
            Ok(m) => Mailbox::new(self.config.from_name.clone(), m.email),
            Err(_) => {
                let address: Address = self.config.from_address.parse().map_err(|_| {
                    SendError::Permanent("[email] from_address is not an email address".into())
                })?;
                Mailbox::new(self.config.from_name.clone(), address)
            }
        };
        let mut builder = lettre::Message::builder()
            .from(from)
            .to(to)
            .subject(message.subject.clone().unwrap_or_default())
            .date_now()
            .message_id(Some(message_id_header(&message.id, &self.domain)));
        if let Some(v) = message.meta.get("in_reply_to").filter(|v| !v.is_empty()) {
            builder = builder.in_reply_to(v.clone());
        }
        if let Some(v) = message.meta.get("references").filter(|v| !v.is_empty()) {
            builder = builder.references(v.clone());
        }
        let stored: Vec<_> = message
            .attachments
            .iter()
            .filter(|a| !a.data_base64.is_empty())
            .collect();
        let built = if stored.is_empty() {
            builder
                .header(ContentType::TEXT_PLAIN)
                .body(message.text.clone())
        } else {
            let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(message.text.clone()));
            for a in stored {
                let data = base64::engine::general_purpose::STANDARD
                    .decode(a.data_base64.as_bytes())
                    .map_err(|e| {
                        SendError::Permanent(format!("attachment {:?} is not base64: {e}", a.name))
                    })?;
                let content_type = ContentType::parse(&a.content_type)
                    .or_else(|_| ContentType::parse("application/octet-stream"))
                    .map_err(|e| SendError::Permanent(format!("attachment {:?}: {e}", a.name)))?;
                parts = parts.singlepart(Attachment::new(a.name.clone()).body(data, content_type));
            }
            builder.multipart(parts)
        };
        built.map_err(|e| SendError::Permanent(format!("cannot build the email: {e}")))
    }
}

impl Sender for EmailSender {
    fn send<'a>(&'a self, message: &'a Message) -> SendFuture<'a> {
        Box::pin(async move {
            let email = self.build(message)?;
            match self.transport.send(email).await {
                Ok(response) => Ok(Sent {
                    provider_ref: response.message().next().map(str::to_owned),
                }),
                Err(e) if e.is_permanent() => Err(SendError::Permanent(format!(
                    "the relay {} refused the message: {e}",
                    self.config.relay_host
                ))),
                Err(e) => Err(SendError::Transient(format!(
                    "relay {}:{}: {e}",
                    self.config.relay_host,
                    self.config.port()
                ))),
            }
        })
    }
}
