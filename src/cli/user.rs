//! `guichet user add|list|passwd|disable|enable`: the people who sign in to the console. Passwords
//! are read from standard input (one line; never from the command line, where other users of
//! the machine could see them) and stored as argon2id hashes. Works whether or not a server is
//! running on the data directory.

use std::io::{BufRead, Read};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use guichet::core::AgentId;
use guichet::signin::password;
use guichet::store::{Role, StoreError};

use super::serve::now;
use super::token::check_agent_exists;
use crate::Usage;

/// The arguments of `guichet user`.
#[derive(Debug, Args)]
pub(crate) struct UserArgs {
    /// The configuration file whose [store] data_dir holds the database (default as for serve).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// The data directory, instead of the configuration's.
    #[arg(long, value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    action: UserAction,
}

#[derive(Debug, Subcommand)]
enum UserAction {
    /// Adds a person; the password is read from standard input (at least 10 characters).
    Add {
        /// The login (lower-case letters, digits, '.', '_', '@', '-'; at most 64).
        login: String,
        /// agent (acts only as --agent), supervisor or admin.
        #[arg(long)]
        role: Role,
        /// The agent an agent user acts as.
        #[arg(long, value_name = "AGENT_ID")]
        agent: Option<String>,
        /// The name shown in the console (default: the login).
        #[arg(long)]
        name: Option<String>,
    },
    /// Lists people (logins, roles, agents, whether disabled, open sessions).
    List,
    /// Changes a password (read from standard input) and ends the person's sessions.
    Passwd {
        /// The login.
        login: String,
    },
    /// Refuses a person's sign-ins and ends its sessions (within 5 seconds for open pages).
    Disable {
        /// The login.
        login: String,
    },
    /// Allows a disabled person to sign in again.
    Enable {
        /// The login.
        login: String,
    },
}

/// Reads one line (the password) from standard input, without its line ending.
fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .take(4096)
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    password::check_policy(&password).map_err(|e| Usage(e.to_string()))?;
    Ok(password)
}

/// Runs `guichet user ...`.
pub(crate) fn run(args: UserArgs) -> anyhow::Result<()> {
    // Beside a running server, or alone (then creating or upgrading the database).
    let (store, config) = super::open_store(args.config.as_deref(), args.data_dir)?;
    match args.action {
        UserAction::Add {
            login,
            role,
            agent,
            name,
        } => {
            if role == Role::Agent && agent.is_none() {
                return Err(Usage("an agent user needs --agent AGENT_ID".into()).into());
            }
            if role != Role::Agent && agent.is_some() {
                return Err(Usage("--agent goes only with --role agent".into()).into());
            }
            if !guichet::store::valid_login(&login) {
                return Err(Usage(format!(
                    "a login is 1 to {} lower-case letters, digits, '.', '_', '@' or '-'",
                    guichet::store::MAX_LOGIN_LEN
                ))
                .into());
            }
            if let Some(agent) = &agent {
                check_agent_exists(&store, &config, agent)?;
            }
            let password = read_password()?;
            let hash = password::hash_blocking(&password)?;
            let name = name.unwrap_or_else(|| login.clone());
            let user = store
                .add_user(&login, &name, role, agent.map(AgentId::new), &hash, now())
                .map_err(|e| match e {
                    StoreError::Invalid(m) => anyhow::Error::from(Usage(m)),
                    other => other.into(),
                })?;
            println!("added {} ({})", user.login, user.role);
        }
        UserAction::List => {
            let sessions: std::collections::HashMap<String, u64> =
                store.open_sessions(now())?.into_iter().collect();
            println!(
                "{:<24}  {:<10}  {:<16}  {:<8}  {:>8}  name",
                "login", "role", "agent", "state", "sessions"
            );
            for u in store.list_users()? {
                println!(
                    "{:<24}  {:<10}  {:<16}  {:<8}  {:>8}  {}",
                    u.login,
                    u.role.as_str(),
                    u.agent.as_ref().map(|a| a.as_str()).unwrap_or("-"),
                    if u.disabled { "disabled" } else { "enabled" },
                    sessions.get(&u.login).copied().unwrap_or(0),
                    u.name
                );
            }
        }
        UserAction::Passwd { login } => {
            if store.user_credentials(&login)?.is_none() {
                anyhow::bail!("no user {login:?} (see `guichet user list`)");
            }
            let password = read_password()?;
            let hash = password::hash_blocking(&password)?;
            store.set_user_password(&login, &hash, now())?;
            println!("password changed for {login}; its sessions ended");
        }
        UserAction::Disable { login } => {
            if !store.set_user_disabled(&login, true, now())? {
                anyhow::bail!("no user {login:?} (see `guichet user list`)");
            }
            println!("disabled {login}; its sessions ended");
        }
        UserAction::Enable { login } => {
            if !store.set_user_disabled(&login, false, now())? {
                anyhow::bail!("no user {login:?} (see `guichet user list`)");
            }
            println!("enabled {login}");
        }
    }
    Ok(())
}
