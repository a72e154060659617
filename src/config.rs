//! Configuration files: the TOML that seeds a contact center's queues and agents.
//!
//! The file only seeds an empty database; once running, supervisors change queues and agents
//! live. [`Config::validate`] checks a file by applying it to a scratch router, so that what it
//! accepts is exactly what the server accepts.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::core::{AgentConfig, Command, QueueConfig, Router, Timestamp};

/// A configuration file's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Queues to create.
    #[serde(default)]
    pub queues: Vec<QueueConfig>,
    /// Agents to create (they start offline).
    #[serde(default)]
    pub agents: Vec<AgentConfig>,
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
            let (line, column) = e
                .span()
                .map(|span| line_col(text, span.start))
                .unwrap_or((1, 1));
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
        let config = Config::from_toml(&text, path)?;
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

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
