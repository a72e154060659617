//! The `guichet` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use guichet::config::Config;

/// Guichet: an omnichannel contact-center routing engine.
#[derive(Debug, Parser)]
#[command(name = "guichet", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Check a configuration file: TOML syntax, shape, and every queue and agent as the router
    /// would accept them. Errors name the line, or the queue or agent at fault.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    match try_main(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn try_main(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::CheckConfig { file } => {
            let config = Config::load(&file)?;
            println!(
                "{}: ok ({} queue(s), {} agent(s))",
                file.display(),
                config.queues.len(),
                config.agents.len()
            );
            Ok(())
        }
    }
}
