//! Configuration files: the server's addresses and limits, the store's settings, and the TOML
//! that seeds a contact center's queues and agents.
//!
//! The `[[queues]]` and `[[agents]]` only seed an empty database; once running, supervisors
//! change queues and agents live, and those changes (journaled) win over the file. [`Config::validate`] checks a file by applying it to a scratch router, so that what it
//! accepts is exactly what the server accepts.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::core::{AgentConfig, Command, QueueConfig, Router, Timestamp};
use crate::store::StoreConfig;

/// A configuration file's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`: listening addresses and TLS.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[store]`: the data directory and durability settings.
    #[serde(default)]
    pub store: StoreConfig,
    /// `[engine]`: queue limits between the APIs and the router.
    #[serde(default)]
    pub engine: EngineLimits,
    /// Queues to create.
    #[serde(default)]
    pub queues: Vec<QueueConfig>,
    /// Agents to create (they start offline).
    #[serde(default)]
    pub agents: Vec<AgentConfig>,
    /// `[log]`: log format.
    #[serde(default)]
    pub log: crate::obs::LogConfig,
    /// `[indicators]`: the public quality indicators (time zone of a day, service name).
    #[serde(default)]
    pub indicators: crate::obs::IndicatorsConfig,
    /// `[surveys]`: satisfaction surveys.
    #[serde(default)]
    pub surveys: crate::obs::SurveysConfig,
    /// `[calendar]`: the working days (time zone, weekdays, holidays) that delays announced in
    /// working days (`sla_working_days` of a queue) are counted in.
    #[serde(default)]
    pub calendar: crate::core::WorkCalendar,
    /// `[sms]`: the SMS provider (webhook signature, REST API, service numbers); the SMS
    /// channel is off without it.
    #[serde(default)]
    pub sms: Option<crate::channels::sms::SmsConfig>,
    /// `[notify]`: how the outbox retries deliveries.
    #[serde(default)]
    pub notify: crate::notify::NotifyConfig,
    /// `[email]`: the email channel.
    #[serde(default)]
    pub email: EmailConfig,
    /// `[chat]`: the web chat's limits, allowed origins and queues.
    #[serde(default)]
    pub chat: crate::channels::chat::ChatConfig,
    /// `[voice]`: the phone channel (gateways, IVR trees and numbers, hold loop).
    #[serde(default)]
    pub voice: crate::channels::voice::VoiceConfig,
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
    pub inbound: Option<crate::channels::email::InboundConfig>,
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

/// `[server]`: where the server listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The gRPC listener (agent desktops, supervisors, integrators).
    #[serde(default = "default_grpc_addr")]
    pub grpc_addr: String,
    /// TLS for the gRPC listener; plain HTTP/2 when absent (fine on loopback or behind a proxy
    /// that terminates TLS).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// The most bytes a gRPC request message may have.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Seconds given to open streams and pending commits to finish on SIGINT/SIGTERM.
    #[serde(default = "default_shutdown_grace_secs")]
    pub shutdown_grace_secs: u64,
    /// The HTTP listener (gateway and SMS webhooks, web chat, `/metrics`, `/healthz`, the public
    /// quality indicators).
    #[serde(default = "default_http_addr")]
    pub http_addr: String,
    /// The URL gateways and browsers use to reach the HTTP listener (scheme, host, optional
    /// port, no trailing slash), for example `https://guichet.example.org`. Webhook signatures
    /// are computed over it, and callback URLs given to gateways start with it. Defaults to
    /// `http://` + `http_addr`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// The most bytes an HTTP request body may have (webhooks, inbound-parse mail); larger
    /// requests get 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Seconds an attachment download link handed to an agent stays valid (default 900); the
    /// desktop gets fresh links with each offer and each conversation it reads.
    #[serde(default = "default_attachment_link_secs")]
    pub attachment_link_secs: u64,
}

impl ServerConfig {
    /// The base URL of the HTTP listener as seen from outside: `public_url`, or `http://` +
    /// `http_addr`. Never ends with a slash.
    pub fn public_base_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.http_addr),
        }
    }
}

fn default_grpc_addr() -> String {
    "127.0.0.1:50051".into()
}

fn default_http_addr() -> String {
    "127.0.0.1:8080".into()
}

fn default_max_body_bytes() -> usize {
    1 << 20
}

fn default_attachment_link_secs() -> u64 {
    900
}

fn default_max_message_bytes() -> usize {
    1 << 20
}

fn default_shutdown_grace_secs() -> u64 {
    5
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            grpc_addr: default_grpc_addr(),
            tls: None,
            max_message_bytes: default_max_message_bytes(),
            shutdown_grace_secs: default_shutdown_grace_secs(),
            http_addr: default_http_addr(),
            public_url: None,
            max_body_bytes: default_max_body_bytes(),
            attachment_link_secs: default_attachment_link_secs(),
        }
    }
}

/// `[server.tls]`: PEM files for the gRPC listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain (PEM).
    pub cert: PathBuf,
    /// The private key (PEM).
    pub key: PathBuf,
}

/// `[engine]`: bounds between the APIs and the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineLimits {
    /// Commands waiting for the router at most; beyond, callers are told to retry (gRPC
    /// UNAVAILABLE, HTTP 503).
    #[serde(default = "default_command_queue")]
    pub command_queue: usize,
    /// Committed event batches buffered for each subscriber (offer streams, statistics).
    #[serde(default = "default_event_buffer")]
    pub event_buffer: usize,
}

fn default_command_queue() -> usize {
    10_000
}

fn default_event_buffer() -> usize {
    4_096
}

impl Default for EngineLimits {
    fn default() -> Self {
        EngineLimits {
            command_queue: default_command_queue(),
            event_buffer: default_event_buffer(),
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the expected shape.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The file parses but describes something the router refuses.
    #[error("{path}: {what}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The queue or agent at fault.
        what: String,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Parses TOML text; `path` only labels errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let (line, column) = error_position(text, &e);
            ConfigError::Parse {
                path: path.to_owned(),
                line,
                column,
                message: e.message().to_owned(),
            }
        })
    }

    /// Reads, parses and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Config::from_toml(&text, path)?;
        config.voice.base_dir = path.parent().map(Path::to_path_buf);
        config.validate(path)?;
        Ok(config)
    }

    /// The commands that create this configuration in an empty router: queues first (in two
    /// passes, so that queues may refer to each other in any order), then agents.
    pub fn seed_commands(&self) -> Vec<Command> {
        let mut commands = Vec::with_capacity(self.queues.len() * 2 + self.agents.len());
        for queue in &self.queues {
            let mut bare = queue.clone();
            bare.escalation.clear();
            bare.overflow = None;
            commands.push(Command::UpsertQueue { config: bare });
        }
        for queue in &self.queues {
            commands.push(Command::UpsertQueue {
                config: queue.clone(),
            });
        }
        for agent in &self.agents {
            commands.push(Command::UpsertAgent {
                config: agent.clone(),
            });
        }
        commands
    }

    /// Checks the configuration by applying it to a scratch router; `path` labels errors.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |what: &str, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            what: what.to_owned(),
            message,
        };
        self.store
            .validate()
            .map_err(|e| invalid("[store]", e.to_string()))?;
        if self.engine.command_queue == 0 || self.engine.event_buffer == 0 {
            return Err(invalid(
                "[engine]",
                "command_queue and event_buffer must be at least 1".into(),
            ));
        }
        if self
            .server
            .grpc_addr
            .parse::<std::net::SocketAddr>()
            .is_err()
        {
            return Err(invalid(
                "[server] grpc_addr",
                format!(
                    "{:?} is not an address: write IP:PORT, for example \"127.0.0.1:50051\"",
                    self.server.grpc_addr
                ),
            ));
        }
        if self
            .server
            .http_addr
            .parse::<std::net::SocketAddr>()
            .is_err()
        {
            return Err(invalid(
                "[server] http_addr",
                format!(
                    "{:?} is not an address: write IP:PORT, for example \"127.0.0.1:8080\"",
                    self.server.http_addr
                ),
            ));
        }
        if let Some(url) = &self.server.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(
                    "[server] public_url",
                    format!("{url:?} must start with http:// or https://"),
                ));
            }
        }
        if !(1..=7 * 24 * 3600).contains(&self.server.attachment_link_secs) {
            return Err(invalid(
                "[server] attachment_link_secs",
                "must be 1 to 604800 (7 days)".into(),
            ));
        }
        if self.server.max_body_bytes < 1024 {
            return Err(invalid(
                "[server] max_body_bytes",
                "must be at least 1024".into(),
            ));
        }
        let domain = &self.email.domain;
        if domain.trim().is_empty() || domain.contains(['<', '>', '@', ' ']) {
            return Err(invalid(
                "[email] domain",
                format!(
                    "{domain:?} is not a domain: write the domain of your Message-IDs, like \"example.org\""
                ),
            ));
        }
        if let Some(relay) = &self.email.outbound {
            relay
                .validate()
                .map_err(|(what, message)| invalid(what, message))?;
        }
        if let Some(sms) = &self.sms {
            sms.validate()
                .map_err(|(what, message)| invalid(what, message))?;
            for n in &sms.numbers {
                let queue = self.queues.iter().find(|q| q.id.as_str() == n.queue);
                match queue {
                    None if !self.queues.is_empty() => {
                        return Err(invalid(
                            "[sms] numbers",
                            format!(
                                "{} goes to queue {:?}, which this file does not define",
                                n.number, n.queue
                            ),
                        ))
                    }
                    Some(q) if !q.channels.contains(&crate::core::Channel::Sms) => {
                        return Err(invalid(
                            "[sms] numbers",
                            format!(
                                "{} goes to queue {:?}, which does not take sms: add \"sms\" to its channels",
                                n.number, n.queue
                            ),
                        ))
                    }
                    _ => {}
                }
            }
        }
        self.notify
            .validate()
            .map_err(|(what, message)| invalid(what, message))?;
        if let Some(inbound) = &self.email.inbound {
            let queues: Vec<_> = self.queues.iter().map(|q| q.id.clone()).collect();
            inbound
                .validate(&queues)
                .map_err(|(what, message)| invalid(&what, message))?;
        }
        self.chat
            .validate()
            .map_err(|message| invalid("[chat]", message))?;
        self.voice
            .validate()
            .map_err(|e| invalid("[voice]", e.to_string()))?;
        self.surveys
            .validate()
            .map_err(|message| invalid("[surveys]", message))?;
        self.calendar
            .validate()
            .map_err(|message| invalid("[calendar]", message))?;
        let mut seen = std::collections::BTreeSet::new();
        for q in &self.queues {
            if !seen.insert(q.id.clone()) {
                return Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    what: format!("queue {}", q.id),
                    message: "defined twice".into(),
                });
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for a in &self.agents {
            if !seen.insert(a.id.clone()) {
                return Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    what: format!("agent {}", a.id),
                    message: "defined twice".into(),
                });
            }
        }
        if !self.queues.is_empty() {
            if let Some(unknown) = self
                .surveys
                .queues
                .iter()
                .find(|q| !self.queues.iter().any(|c| &c.id == *q))
            {
                return Err(invalid(
                    "[surveys] queues",
                    format!("queue {unknown} is not among the [[queues]] of this file"),
                ));
            }
        }
        let mut router = Router::new();
        for command in self.seed_commands() {
            let what = match &command {
                Command::UpsertQueue { config } => format!("queue {}", config.id),
                Command::UpsertAgent { config } => format!("agent {}", config.id),
                _ => String::new(),
            };
            router
                .handle(Timestamp(0), command)
                .map_err(|e| ConfigError::Invalid {
                    path: path.to_owned(),
                    what,
                    message: e.to_string(),
                })?;
        }
        Ok(())
    }
}

/// The 1-based line and column a TOML error points at (1:1 when it has no position).
pub(crate) fn error_position(text: &str, e: &toml::de::Error) -> (usize, usize) {
    e.span()
        .map(|span| line_col(text, span.start))
        .unwrap_or((1, 1))
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
