//! The `guichet` command line.
//!
//! Exit codes are decided in one place, [`main`]: 0 on success, 1 when the work failed (a file
//! refused, a simulation error), 2 for a usage error (as clap does for bad arguments), 75 for a
//! high-availability leader that stepped down (restart it: it comes back as a standby).

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use guichet::config::Config;

use cli::apply::ApplyArgs;
use cli::serve::ServeArgs;
use cli::simulate::SimulateArgs;
use cli::token::TokenArgs;
use cli::user::UserArgs;

/// Guichet: an omnichannel contact-center routing engine.
#[derive(Debug, Parser)]
#[command(name = "guichet", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Check a configuration file: TOML syntax, shape, every queue and agent as the router
    /// would accept them, the IVR tree files and what they, the numbers and the chat topics
    /// refer to. Every problem is listed at once, each with where it is.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Simulate a scenario with the real router on virtual time: service level, speed of answer
    /// and abandonment per queue and channel, occupancy per agent group, with 95% confidence
    /// intervals; with --staff-for, the smallest staff that meets a service-level target; with
    /// --replay DATA_DIR --config NEW.toml, a recorded journal replayed under a new configuration.
    Simulate(SimulateArgs),
    /// Run the server: gRPC APIs for agent desktops, supervisors and integrators, on the
    /// configured addresses and data directory, until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Create, list or revoke API tokens.
    Token(TokenArgs),
    /// Add, list, disable people who sign in to the console, or change their passwords
    /// (read from standard input).
    User(UserArgs),
    /// Show how a configuration file differs from the running server (queues, agents, IVR
    /// trees) and, with --yes, apply it as live changes through the server's gRPC API; with
    /// --prune, also remove the queues and agents the file does not have.
    Apply(ApplyArgs),
    /// Copy an installation's SQLite database (--from-sqlite DATA_DIR) into the empty PostgreSQL
    /// database of the configuration's [store] section, and check the copy: row counts, last
    /// sequence number, the same router recovered from both. Stop the server first.
    Migrate(cli::migrate::MigrateArgs),
    /// High availability on PostgreSQL: the leader, its term, and every node with its role, lag
    /// and last heartbeat, read from the configuration's [store] database.
    Status(cli::status::StatusArgs),
}

/// A high-availability leader whose term is over: exit code
/// [`guichet::ha::EXIT_STEPPED_DOWN`] (75), so that a service manager restarts it as a standby.
#[derive(Debug, thiserror::Error)]
#[error("stepped down ({0}): exiting with code 75; restarted, this node comes back as a standby")]
pub(crate) struct SteppedDown(pub(crate) String);

/// A usage error: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Usage(pub(crate) String);

/// Starts the log subscriber (once): to stderr, filtered by `RUST_LOG` (default `info`), as
/// text lines or JSON objects (`[log] format`). `guichet serve` calls it once its configuration
/// is read; the other commands log as text.
pub(crate) fn init_logging(format: guichet::obs::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second call (none is made) would find a subscriber in place: ignored.
    let _ = match format {
        guichet::obs::LogFormat::Text => builder.try_init(),
        guichet::obs::LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Cmd::Serve(_)) {
        init_logging(guichet::obs::LogFormat::Text);
    }
    match try_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<Usage>().is_some() {
                ExitCode::from(2)
            } else if e.downcast_ref::<SteppedDown>().is_some() {
                ExitCode::from(guichet::ha::EXIT_STEPPED_DOWN as u8)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn try_main(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::CheckConfig { file } => {
            let config = Config::load_with(&file, &guichet::config::env::from_process())?;
            println!(
                "{}: ok ({} queue(s), {} agent(s))",
                file.display(),
                config.queues.len(),
                config.agents.len()
            );
            Ok(())
        }
        Cmd::Simulate(args) => cli::simulate::run(args),
        Cmd::Serve(args) => cli::serve::run(args),
        Cmd::Token(args) => cli::token::run(args),
        Cmd::User(args) => cli::user::run(args),
        Cmd::Apply(args) => cli::apply::run(args),
        Cmd::Migrate(args) => cli::migrate::run(args),
        Cmd::Status(args) => cli::status::run(args),
    }
}
