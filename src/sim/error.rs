//! The simulator's error type: one enum for everything a scenario or a run can refuse.

use std::path::PathBuf;

use thiserror::Error;

use crate::config::ConfigError;
use crate::core::{RouteError, Timestamp};

/// Why a scenario was refused or a simulation stopped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SimError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The scenario is not valid TOML or does not match the expected shape.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file (or `<scenario>` for text given directly).
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The queues and agents (from the scenario or the configuration file it points to) are
    /// refused by the router, exactly as `guichet check-config` would refuse them.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The scenario parses but cannot be simulated as written.
    #[error("{what}: {message}")]
    Invalid {
        /// The part of the scenario at fault (for example `arrivals[2] handle`).
        what: String,
        /// What to fix.
        message: String,
    },
    /// The router refused a command of the simulated world. This is a bug of the simulator (it
    /// only sends commands that the state it tracks allows), reported rather than hidden.
    #[error("at {at}: the router refused {command}: {source}")]
    Router {
        /// Simulated time of the command.
        at: Timestamp,
        /// The command's name.
        command: &'static str,
        /// The router's answer.
        source: RouteError,
    },
    /// The staffing search cannot answer.
    #[error("staffing: {0}")]
    Staffing(String),
}

impl SimError {
    /// An [`SimError::Invalid`] for `what`.
    pub(crate) fn invalid(what: impl Into<String>, message: impl Into<String>) -> Self {
        SimError::Invalid {
            what: what.into(),
            message: message.into(),
        }
    }
}
