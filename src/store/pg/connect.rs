//! Connecting to PostgreSQL: the connection settings from `[store]` (the URL, the password from
//! an environment variable or a file, never from the TOML alone), and the translation of the
//! driver's errors into [`StoreError`]s that say what to fix.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use postgres::config::Host;
use postgres::error::SqlState;
use postgres::{Client, Config, NoTls};

use super::super::{StoreConfig, StoreError};

/// The longest a connection attempt waits for the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest one statement may run before the server cancels it (bounded waits); generous,
/// since a replay or a migration copy reads a whole table.
const STATEMENT_TIMEOUT_MS: u64 = 600_000;

/// The database a store talks to, as shown in messages: `postgres://user@host:port/dbname`,
/// never with a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target(String);

impl Target {
    /// The text shown in messages and logs.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The same, as the `path` of the store's errors (they name a database "file").
    pub(crate) fn as_path(&self) -> PathBuf {
        PathBuf::from(&self.0)
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Connection settings, checked: the driver's configuration with the password filled in.
#[derive(Clone)]
pub struct PgSettings {
    config: Config,
    target: Target,
}

impl std::fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSettings")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl PgSettings {
    /// Reads `[store] url`, `password_env` and `password_file`.
    ///
    /// Refused with [`StoreError::Config`]: no URL, a URL that is not a PostgreSQL URL, a URL
    /// that carries a password (it belongs in the environment or a file), both password sources
    /// set, or a password source that cannot be read. A server that needs no password (trust or
    /// peer authentication on a socket) needs neither source.
    pub fn from_store_config(store: &StoreConfig) -> Result<PgSettings, StoreError> {
        let url = store.url.as_deref().ok_or_else(|| {
            StoreError::Config(
                "backend = \"postgres\" needs [store] url (e.g. postgres://guichet@127.0.0.1:5432/guichet)"
                    .into(),
            )
        })?;
        let mut config = Config::from_str(url).map_err(|e| {
            StoreError::Config(format!(
                "[store] url is not a PostgreSQL connection URL ({e}); expected \
                 postgres://USER@HOST:PORT/DATABASE"
            ))
        })?;
        if config.get_password().is_some() {
            return Err(StoreError::Config(
                "[store] url must not carry the password: put it in the environment variable \
                 named by [store] password_env, or in the file named by [store] password_file"
                    .into(),
            ));
        }
        match (&store.password_env, &store.password_file) {
            (Some(_), Some(_)) => {
                return Err(StoreError::Config(
                    "set [store] password_env or [store] password_file, not both".into(),
                ))
            }
            (Some(var), None) => {
                let value = std::env::var(var).map_err(|_| {
                    StoreError::Config(format!(
                        "[store] password_env names {var}, which is not set (or not UTF-8)"
                    ))
                })?;
                config.password(value.as_bytes());
            }
            (None, Some(file)) => {
                let value = std::fs::read_to_string(file).map_err(|e| {
                    StoreError::Config(format!(
                        "[store] password_file {} cannot be read: {e}",
                        file.display()
                    ))
                })?;
                config.password(value.trim_end_matches(['\n', '\r']).as_bytes());
            }
            (None, None) => {}
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("guichet");
        }
        let timeout = format!("-c statement_timeout={STATEMENT_TIMEOUT_MS}");
        let options = match config.get_options() {
            Some(given) if given.contains("statement_timeout") => given.to_owned(),
            Some(given) => format!("{given} {timeout}"),
            None => timeout,
        };
        config.options(&options);
        let target = target_of(&config);
        Ok(PgSettings { config, target })
    }

    /// The database, as shown in messages.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Opens one connection (plain TCP or a Unix socket: use a loopback address or a socket, or
    /// a network you trust; TLS is not configured by this build).
    pub fn connect(&self) -> Result<Client, StoreError> {
        self.config
            .connect(NoTls)
            .map_err(|e| pg_error(&self.target, e))
    }
}

fn target_of(config: &Config) -> Target {
    let user = config.get_user().unwrap_or("");
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or(user);
    let at = if user.is_empty() {
        String::new()
    } else {
        format!("{user}@")
    };
    Target(format!("postgres://{at}{host}:{port}/{db}"))
}

/// Translates a driver error on `target` into a [`StoreError`] that says what to do: a missing
/// database, a refused login and an unreachable server are told apart; the rest is
/// [`StoreError::Postgres`] with the server's message.
pub(crate) fn pg_error(target: &Target, e: postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let detail = if *code == SqlState::INVALID_CATALOG_NAME {
            format!(
                "the database does not exist ({}): create it (createdb -O USER DATABASE) or fix \
                 the database name in [store] url",
                db.message()
            )
        } else if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            format!(
                "the login was refused ({}): check the user in [store] url and the password \
                 from [store] password_env or password_file",
                db.message()
            )
        } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
            format!(
                "permission denied ({}): the user in [store] url must own the database or be \
                 granted rights on its schema",
                db.message()
            )
        } else {
            format!("{} ({})", db.message(), code.code())
        };
        return StoreError::Postgres {
            target: target.as_str().to_owned(),
            detail,
        };
    }
    let detail = if e.is_closed() {
        "the connection was closed: is the server still running?".to_owned()
    } else {
        // Connection refused, unknown host, timeout, TLS required...
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        format!("{text}: is PostgreSQL running there and reachable, and is [store] url right?")
    };
    StoreError::Postgres {
        target: target.as_str().to_owned(),
        detail,
    }
}
