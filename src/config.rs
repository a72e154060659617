//! Configuration files: the server's addresses and limits, the store's settings, and the TOML
//! that seeds a contact center's queues and agents.
//!
//! The `[[queues]]` and `[[agents]]` seed an empty database; once running, supervisors change
//! queues and agents live, and those changes (journaled) win over the file. The server warns at
//! start when the file and the database differ, and `guichet apply FILE` applies the file's
//! queues, agents and trees as live changes. [`Config::validate`] checks a file by applying it
//! to a scratch router, so that what it accepts is exactly what the server accepts, then checks
//! the references between sections (trees of `[[voice.numbers]]`, tree files, queues named by
//! trees and chat topics) and reports every problem at once.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::core::{AgentConfig, Command, QueueConfig, Router, Timestamp};
use crate::store::StoreConfig;

pub use crate::channels::email::EmailConfig;
pub use crate::engine::{EngineLimits, Seed};

pub mod env;

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
    pub surveys: crate::survey::SurveysConfig,
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
    /// `[limits]`: the listeners' timeouts and maxima of connections.
    #[serde(default)]
    pub limits: crate::listen::LimitsConfig,
    /// `[citizen]`: opening hours for chat and SMS, the SMS acknowledgement, how often
    /// requests past their announced delay are looked for.
    #[serde(default)]
    pub citizen: crate::channels::citizen::CitizenConfig,
    /// `[accessibility]`: the accessibility statement page (`/accessibility`).
    #[serde(default)]
    pub accessibility: crate::http::public::AccessibilityConfig,
    /// `[ha]`: high availability on PostgreSQL (the leadership lease); ignored on SQLite.
    #[serde(default)]
    pub ha: crate::store::HaConfig,
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
    /// Seconds a console session (a person signed in with a password) lasts before signing in
    /// again is needed (default 28800: a working day of 8 hours; 60 to 86400).
    #[serde(default = "default_session_secs")]
    pub session_secs: u64,
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

fn default_session_secs() -> u64 {
    8 * 3600
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
            session_secs: default_session_secs(),
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
    /// A `GUICHET_<SECTION>__<KEY>` environment variable cannot be applied (see [`env`]).
    #[error("environment variable {variable}: {message}")]
    Environment {
        /// The variable's name.
        variable: String,
        /// What is wrong (never the value).
        message: String,
    },
    /// The file has several problems, each with where it is (`what: message`).
    #[error("{path}: {} problems:{}", .problems.len(), list(.problems))]
    Several {
        /// The file.
        path: PathBuf,
        /// Each problem as `(where, what is wrong)`.
        problems: Vec<(String, String)>,
    },
}

impl ConfigError {
    /// A TOML error in `text`, with its line and column.
    fn parse(text: &str, path: &Path, e: &toml::de::Error) -> ConfigError {
        let (line, column) = error_position(text, e);
        ConfigError::Parse {
            path: path.to_owned(),
            line,
            column,
            message: e.message().to_owned(),
        }
    }
}

fn list(problems: &[(String, String)]) -> String {
    problems
        .iter()
        .map(|(what, message)| format!("\n- {what}: {message}"))
        .collect()
}

/// Most problems listed for one file (the rest are counted).
const MAX_PROBLEMS: usize = 100;

impl Config {
    /// Parses TOML text; `path` only labels errors.
    /// Queues and agents without a `name` are named after their id, as over gRPC.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::parse(text, path, &e))?;
        Ok(config.named())
    }

    /// Parses TOML text, then applies the environment `overrides` (see [`env`]) in order. The
    /// file must be valid on its own, so that its errors keep their line and column; an
    /// override that does not fit names its variable.
    pub fn from_toml_with(
        text: &str,
        path: &Path,
        overrides: &[env::Override],
    ) -> Result<Config, ConfigError> {
        let config = Config::from_toml(text, path)?;
        if overrides.is_empty() {
            return Ok(config);
        }
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::parse(text, path, &e))?;
        let file = table.clone();
        for o in overrides {
            env::apply(&mut table, o).map_err(|message| ConfigError::Environment {
                variable: o.variable.clone(),
                message,
            })?;
        }
        // Values read as numbers where the file has nothing may have been meant as strings: try
        // the combinations, the values as read first.
        let guesses: Vec<&env::Override> = overrides
            .iter()
            .filter(|o| env::inferred(&file, o))
            .take(6)
            .collect();
        let mut first_error = None;
        for mask in 0u32..(1 << guesses.len()) {
            let mut attempt = table.clone();
            for (bit, o) in guesses.iter().enumerate() {
                if mask & (1 << bit) != 0 {
                    env::as_string(&mut attempt, o);
                }
            }
            match toml::Value::Table(attempt).try_into::<Config>() {
                Ok(config) => return Ok(config.named()),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let mut message = first_error
            .map(|e| e.message().to_owned())
            .unwrap_or_default();
        for o in overrides.iter().filter(|o| !o.value.is_empty()) {
            message = message.replace(o.value.as_str(), "(the value)");
        }
        // Blame the variable whose key the message names, else every override.
        let named = overrides.iter().find(|o| {
            o.path
                .last()
                .is_some_and(|key| message.contains(&format!("`{key}`")))
        });
        let variable = match named {
            Some(o) => o.variable.clone(),
            None => overrides
                .iter()
                .map(|o| o.variable.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        };
        Err(ConfigError::Environment { variable, message })
    }

    /// Queues and agents without a `name` named after their id.
    fn named(mut self) -> Config {
        for q in &mut self.queues {
            if q.name.trim().is_empty() {
                q.name = q.id.to_string();
            }
        }
        for a in &mut self.agents {
            if a.name.trim().is_empty() {
                a.name = a.id.to_string();
            }
        }
        self
    }

    /// Reads, parses and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(path, &[])
    }

    /// Reads and parses a file, applies the environment `overrides` (see [`env`]), validates.
    pub fn load_with(path: &Path, overrides: &[env::Override]) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Config::from_toml_with(&text, path, overrides)?;
        config.voice.base_dir = path.parent().map(Path::to_path_buf);
        config.validate(path)?;
        Ok(config)
    }

    /// The commands that create this configuration in an empty router: queues first (in two
    /// passes, so that queues may refer to each other in any order), then agents.
    pub fn seed_commands(&self) -> Vec<Command> {
        self.seed().commands()
    }

    /// The contact center this file describes, for [`crate::engine::Engine::start`]: its
    /// queues, agents and working calendar.
    pub fn seed(&self) -> Seed {
        Seed {
            queues: self.queues.clone(),
            agents: self.agents.clone(),
            calendar: self.calendar.clone(),
        }
    }

    /// How survey questions can leave by SMS and email: `[surveys] sms_from`, else the first
    /// of `[sms] numbers` (none without `[sms]`), and whether `[email.outbound]` is set.
    pub fn survey_outlets(&self) -> crate::survey::Outlets {
        crate::survey::Outlets {
            sms_from: self.sms.as_ref().and_then(|sms| {
                self.surveys
                    .sms_from
                    .clone()
                    .or_else(|| sms.numbers.first().map(|n| n.number.clone()))
            }),
            email: self.email.outbound.is_some(),
        }
    }

    /// The engine's settings from the `[store]` and `[engine]` sections.
    pub fn engine_config(&self) -> crate::engine::EngineConfig {
        crate::engine::EngineConfig {
            store: self.store.clone(),
            command_queue: self.engine.command_queue,
            event_buffer: self.engine.event_buffer,
        }
    }

    /// Checks the configuration: its settings, then its queues and agents by applying them to
    /// a scratch router, then the references between sections (see
    /// [`Config::reference_problems`]). Every problem is reported at once (as
    /// [`ConfigError::Several`] when there are more than one); `path` labels them.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let mut problems = self.settings_problems();
        problems.extend(self.reference_problems());
        if problems.len() > MAX_PROBLEMS {
            let more = problems.len() - MAX_PROBLEMS;
            problems.truncate(MAX_PROBLEMS);
            problems.push(("...".to_owned(), format!("{more} more problem(s)")));
        }
        match problems.len() {
            0 => Ok(()),
            1 => {
                let (what, message) = problems.remove(0);
                Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    what,
                    message,
                })
            }
            _ => Err(ConfigError::Several {
                path: path.to_owned(),
                problems,
            }),
        }
    }

    /// The IVR tree files of `[[voice.trees]]`, read and parsed: for each, where it is in the
    /// file and the tree or why it cannot be used.
    pub fn voice_trees(&self) -> Vec<(String, Result<crate::ivr::IvrTree, String>)> {
        self.voice
            .trees
            .iter()
            .enumerate()
            .map(|(i, seed)| {
                let what = format!("[[voice.trees]] #{} ({})", i + 1, seed.file.display());
                let path = match &self.voice.base_dir {
                    Some(dir) if seed.file.is_relative() => dir.join(&seed.file),
                    _ => seed.file.clone(),
                };
                let text = match std::fs::read_to_string(&path) {
                    Ok(text) => Ok(text),
                    Err(e) => match crate::channels::voice::trees::embedded_tree(&seed.file) {
                        Some(json) if self.voice.base_dir.is_none() => Ok(json.to_owned()),
                        _ => Err(format!("cannot read the tree file {}: {e}", path.display())),
                    },
                };
                let tree = text.and_then(|json| {
                    crate::ivr::IvrTree::from_json(&json)
                        .map_err(|e| format!("the file is not a valid IVR tree: {e}"))
                });
                (what, tree)
            })
            .collect()
    }

    /// The problems between sections, each with where it is: `[[voice.trees]]` files that
    /// cannot be read, parsed or validated; trees naming queues the file does not define (or
    /// that take no calls); `[[voice.numbers]]` naming trees no file defines; `[chat] topics`
    /// naming queues the file does not define. Queue names are checked only when the file
    /// defines queues.
    pub fn reference_problems(&self) -> Vec<(String, String)> {
        use crate::core::Channel;
        let mut problems = Vec::new();
        let check_queues = !self.queues.is_empty();
        let known = crate::ivr::KnownQueues::new(
            self.queues
                .iter()
                .map(|q| (q.id.to_string(), q.channels.contains(&Channel::Voice))),
        );
        let mut tree_names = std::collections::BTreeSet::new();
        for (what, tree) in self.voice_trees() {
            match tree {
                Err(message) => problems.push((what, message)),
                Ok(tree) => {
                    let checked = tree.check(check_queues.then_some(&known));
                    for e in checked.errors {
                        problems.push((format!("{what}, tree `{}`", tree.name), e.to_string()));
                    }
                    tree_names.insert(tree.name);
                }
            }
        }
        for (i, b) in self.voice.numbers.iter().enumerate() {
            if !tree_names.contains(&b.tree) {
                problems.push((
                    format!("[[voice.numbers]] #{} ({})", i + 1, cut(&b.number)),
                    format!(
                        "names tree `{}`, which no [[voice.trees]] file defines: add the tree's \
                         file or name one of {}",
                        cut(&b.tree),
                        names(tree_names.iter().map(String::as_str))
                    ),
                ));
            }
        }
        if check_queues {
            for queue in self.citizen.hours.keys() {
                if !known.contains(queue) {
                    problems.push((
                        format!("[citizen] hours.{}", cut(queue)),
                        format!(
                            "names queue `{}`, which this file does not define: name one of {}",
                            cut(queue),
                            names(self.queues.iter().map(|q| q.id.as_str()))
                        ),
                    ));
                }
            }
            for (topic, queue) in &self.chat.topics {
                if !known.contains(queue) {
                    problems.push((
                        format!("[chat] topics.{}", cut(topic)),
                        format!(
                            "names queue `{}`, which this file does not define: name one of {}",
                            cut(queue),
                            names(self.queues.iter().map(|q| q.id.as_str()))
                        ),
                    ));
                }
            }
        }
        problems
    }

    /// Every problem of the settings, queues and agents, each as `(where, what is wrong)`.
    fn settings_problems(&self) -> Vec<(String, String)> {
        let invalid = |what: &str, message: String| (what.to_owned(), message);
        let mut problems: Vec<(String, String)> = Vec::new();
        if let Err(e) = self.store.validate() {
            problems.push(invalid("[store]", e.to_string()));
        }
        if let Err(e) = self.ha.validate() {
            problems.push(invalid("[ha]", e.to_string()));
        }
        if self.engine.command_queue == 0 || self.engine.event_buffer == 0 {
            problems.push(invalid(
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
            problems.push(invalid(
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
            problems.push(invalid(
                "[server] http_addr",
                format!(
                    "{:?} is not an address: write IP:PORT, for example \"127.0.0.1:8080\"",
                    self.server.http_addr
                ),
            ));
        }
        if let Some(url) = &self.server.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                problems.push(invalid(
                    "[server] public_url",
                    format!("{url:?} must start with http:// or https://"),
                ));
            }
        }
        if let Err((what, message)) = self.limits.check() {
            problems.push(invalid(&what, message));
        }
        if !(1..=7 * 24 * 3600).contains(&self.server.attachment_link_secs) {
            problems.push(invalid(
                "[server] attachment_link_secs",
                "must be 1 to 604800 (7 days)".into(),
            ));
        }
        if !(60..=24 * 3600).contains(&self.server.session_secs) {
            problems.push(invalid(
                "[server] session_secs",
                "must be 60 to 86400 (a day)".into(),
            ));
        }
        if self.server.max_body_bytes < 1024 {
            problems.push(invalid(
                "[server] max_body_bytes",
                "must be at least 1024".into(),
            ));
        }
        let domain = &self.email.domain;
        if domain.trim().is_empty() || domain.contains(['<', '>', '@', ' ']) {
            problems.push(invalid(
                "[email] domain",
                format!(
                    "{domain:?} is not a domain: write the domain of your Message-IDs, like \"example.org\""
                ),
            ));
        }
        if let Some(relay) = &self.email.outbound {
            if let Err((what, message)) = relay.validate() {
                problems.push(invalid(what, message));
            }
        }
        if let Some(sms) = &self.sms {
            if let Err((what, message)) = sms.validate() {
                problems.push(invalid(what, message));
            }
            for n in &sms.numbers {
                let queue = self.queues.iter().find(|q| q.id.as_str() == n.queue);
                match queue {
                    None if !self.queues.is_empty() => {
                        problems.push(invalid(
                            "[sms] numbers",
                            format!(
                                "{} goes to queue {:?}, which this file does not define",
                                n.number, n.queue
                            ),
                        ))
                    }
                    Some(q) if !q.channels.contains(&crate::core::Channel::Sms) => {
                        problems.push(invalid(
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
        if let Err((what, message)) = self.notify.validate() {
            problems.push(invalid(what, message));
        }
        if let Some(inbound) = &self.email.inbound {
            let queues: Vec<_> = self.queues.iter().map(|q| q.id.clone()).collect();
            if let Err((what, message)) = inbound.validate(&queues) {
                problems.push(invalid(&what, message));
            }
        }
        if let Err(message) = self.chat.validate() {
            problems.push(invalid("[chat]", message));
        }
        if let Err(message) = self.citizen.validate() {
            problems.push(invalid("[citizen]", message));
        }
        if let Err(message) = self.accessibility.validate() {
            problems.push(invalid("[accessibility]", message));
        }
        if let Err(e) = self.voice.validate() {
            problems.push(invalid("[voice]", e.to_string()));
        }
        if let Err(message) = self.surveys.validate() {
            problems.push(invalid("[surveys]", message));
        }
        if let Err(message) = self.calendar.validate() {
            problems.push(invalid("[calendar]", message));
        }
        let mut seen = std::collections::BTreeSet::new();
        for q in &self.queues {
            if !seen.insert(q.id.clone()) {
                problems.push((format!("queue {}", q.id), "defined twice".into()));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for a in &self.agents {
            if !seen.insert(a.id.clone()) {
                problems.push((format!("agent {}", a.id), "defined twice".into()));
            }
        }
        if !self.queues.is_empty() {
            if let Some(unknown) = self
                .surveys
                .queues
                .iter()
                .find(|q| !self.queues.iter().any(|c| &c.id == *q))
            {
                problems.push(invalid(
                    "[surveys] queues",
                    format!("queue {unknown} is not among the [[queues]] of this file"),
                ));
            }
        }
        // The router reports one problem per queue or agent: a queue refused in the first
        // pass is not tried again in the second.
        let mut router = Router::new();
        let mut refused = std::collections::BTreeSet::new();
        for command in self.seed_commands() {
            let what = match &command {
                Command::UpsertQueue { config } => format!("queue {}", config.id),
                Command::UpsertAgent { config } => format!("agent {}", config.id),
                _ => String::new(),
            };
            if refused.contains(&what) {
                continue;
            }
            if let Err(e) = router.handle(Timestamp(0), command) {
                refused.insert(what.clone());
                problems.push((what, e.to_string()));
            }
        }
        problems
    }
}

/// Cuts a name taken from the file for a message.
fn cut(text: &str) -> String {
    if text.chars().count() <= 64 {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(64).collect();
        out.push('…');
        out
    }
}

/// `a, b, c` (backquoted), or `none` for an empty list; at most 20 names.
fn names<'a>(list: impl Iterator<Item = &'a str>) -> String {
    let all: Vec<String> = list.take(20).map(|n| format!("`{}`", cut(n))).collect();
    if all.is_empty() {
        "none".to_owned()
    } else {
        all.join(", ")
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

impl From<&Config> for Seed {
    fn from(config: &Config) -> Seed {
        config.seed()
    }
}
