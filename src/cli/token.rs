//! `guichet token create|list|revoke`: API tokens, stored hashed in the database. Works whether
//! or not a server is running on the data directory.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use guichet::core::AgentId;
use guichet::store::{Role, Store};

use super::serve::now;
use crate::Usage;

/// The arguments of `guichet token`.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// The configuration file whose [store] data_dir holds the database (default as for serve).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// The data directory, instead of the configuration's.
    #[arg(long, value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    action: TokenAction,
}

#[derive(Debug, Subcommand)]
enum TokenAction {
    /// Creates a token and prints it (the only time it is shown).
    Create {
        /// agent (acts only as --agent), supervisor, integrator or admin.
        #[arg(long)]
        role: Role,
        /// The agent an agent token acts as.
        #[arg(long, value_name = "AGENT_ID")]
        agent: Option<String>,
        /// A note to recognise the token by (who or what uses it).
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Lists tokens (ids, roles, agents, labels; never the secrets).
    List,
    /// Revokes a token by its id (as shown by list); calls with it fail within 5 seconds.
    Revoke {
        /// The token's id.
        id: String,
    },
}

/// Refuses an agent token for an agent that does not exist: in the database, or, before the
/// first start has seeded it, in the configuration file.
pub(crate) fn check_agent_exists(
    store: &Store,
    config: &guichet::config::Config,
    agent: &str,
) -> anyhow::Result<()> {
    let id = AgentId::new(agent);
    let known: Vec<AgentId> = if store.is_seeded()? {
        let recovered = store
            .recover_router()
            .context("cannot read the agents from the database")?;
        recovered
            .router
            .agents()
            .into_iter()
            .map(|a| a.config.id)
            .collect()
    } else {
        config.agents.iter().map(|a| a.id.clone()).collect()
    };
    if known.contains(&id) {
        return Ok(());
    }
    let names: Vec<&str> = known.iter().take(20).map(|a| a.as_str()).collect();
    let shown: String = agent.chars().take(64).collect();
    anyhow::bail!(
        "agent {shown:?} does not exist: create it first (Supervisor.UpsertAgent, or [[agents]] in \
         the configuration then `guichet apply`); existing agents: {}",
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    )
}

/// Runs `guichet token ...`.
pub(crate) fn run(args: TokenArgs) -> anyhow::Result<()> {
    // Beside a running server, or alone (then creating or upgrading the database).
    let (store, config) = super::open_store(args.config.as_deref(), args.data_dir)?;
    match args.action {
        TokenAction::Create { role, agent, label } => {
            if role == Role::Agent && agent.is_none() {
                return Err(Usage("an agent token needs --agent AGENT_ID".into()).into());
            }
            if role != Role::Agent && agent.is_some() {
                return Err(Usage("--agent goes only with --role agent".into()).into());
            }
            if let Some(agent) = &agent {
                check_agent_exists(&store, &config, agent)?;
            }
            let (token, info) = store
                .create_token(role, agent.map(AgentId::new), &label, now())
                .context("cannot create the token")?;
            eprintln!("created token {} ({})", info.id, info.role);
            println!("{token}");
        }
        TokenAction::List => {
            println!("{:<26}  {:<10}  {:<16}  label", "id", "role", "agent");
            for t in store.list_tokens()? {
                println!(
                    "{:<26}  {:<10}  {:<16}  {}",
                    t.id,
                    t.role.as_str(),
                    t.agent.as_ref().map(|a| a.as_str()).unwrap_or("-"),
                    t.label
                );
            }
        }
        TokenAction::Revoke { id } => {
            if store.revoke_token(&id)? {
                println!("revoked {id}");
            } else {
                anyhow::bail!("no token with id {id} (see `guichet token list`)");
            }
        }
    }
    Ok(())
}
