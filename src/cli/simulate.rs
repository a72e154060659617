//! `guichet simulate`: runs a scenario (or a staffing search, or the replay of a recorded
//! journal under a new configuration) with the simulator and prints the report.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use guichet::config::Config;
use guichet::core::{AgentId, Channel, QueueId};
use guichet::sim::{self, Model, Recording, ReplayOptions, RunOptions, Scenario, StaffingRequest};
use guichet::store::{Store, StoreConfig, StoreError, DATABASE_FILE};

use crate::Usage;

/// The arguments of `guichet simulate`.
#[derive(Debug, Args)]
pub(crate) struct SimulateArgs {
    /// The scenario file (TOML).
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Seed of the first replication (default: the scenario's, else 1). Same scenario and seed,
    /// same output, byte for byte.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Independent replications (default: the scenario's, else 10).
    #[arg(long, value_name = "R")]
    replications: Option<u32>,
    /// Seconds at the start whose statistics are discarded (default: the scenario's).
    #[arg(long, value_name = "SECS")]
    warm_up: Option<u64>,
    /// Service-level threshold in seconds, instead of each queue's SLA target.
    #[arg(long, value_name = "SECS")]
    within: Option<u64>,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "OUT.json")]
    json: Option<PathBuf>,
    /// Threads running replications (default: all cores; results do not depend on it).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Search the smallest number of agents that meets --target-sl for this queue.
    #[arg(long, value_name = "QUEUE", requires = "target_sl")]
    staff_for: Option<String>,
    /// The service level to reach with --staff-for, between 0 and 1 (for example 0.8).
    #[arg(long, value_name = "SHARE", requires = "staff_for")]
    target_sl: Option<f64>,
    /// The channel for --staff-for (default: voice, or the queue's only channel with arrivals).
    #[arg(long, value_name = "CHANNEL", requires = "staff_for")]
    channel: Option<Channel>,
    /// The agent cloned by --staff-for (default: the scenario's [staffing] template).
    #[arg(long, value_name = "AGENT", requires = "staff_for")]
    template: Option<String>,
    /// --replay and --config (boxed: they are rarely given, and keep the command enum small).
    #[command(flatten)]
    replay: Box<ReplayArgs>,
}

/// The arguments of `guichet simulate --replay`.
#[derive(Debug, Args)]
struct ReplayArgs {
    /// Replay the interactions recorded in this data directory's journal (the server's
    /// data_dir, holding guichet.db) under --config, and compare with what happened.
    #[arg(
        long,
        value_name = "DATA_DIR",
        requires = "config",
        conflicts_with_all = ["scenario", "staff_for", "seed", "replications", "warm_up", "jobs"]
    )]
    replay: Option<PathBuf>,
    /// The configuration (queues and agents, as config/guichet.toml) to replay under.
    #[arg(long, value_name = "NEW.toml", requires = "replay")]
    config: Option<PathBuf>,
}

/// Runs `guichet simulate`.
pub(crate) fn run(args: SimulateArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.replay.replay {
        let Some(config) = &args.replay.config else {
            return Err(Usage("--replay needs --config NEW.toml".into()).into());
        };
        return replay(dir, config, &args);
    }
    let Some(path) = &args.scenario else {
        return Err(Usage(
            "simulate needs --scenario FILE (or --replay DATA_DIR --config NEW.toml)".into(),
        )
        .into());
    };
    let scenario = Scenario::load(path)?;
    let mut options = RunOptions::from_scenario(&scenario);
    if let Some(seed) = args.seed {
        options.seed = seed;
    }
    if let Some(r) = args.replications {
        options.replications = r;
    }
    if let Some(w) = args.warm_up {
        options.warm_up_secs = w;
    }
    if let Some(j) = args.jobs {
        options.jobs = j.max(1);
    }
    options.within_secs = args.within;

    if let Some(queue) = args.staff_for {
        let Some(target_sl) = args.target_sl else {
            return Err(Usage("--staff-for needs --target-sl".into()).into());
        };
        let request = StaffingRequest {
            queue: QueueId::new(queue),
            channel: args.channel,
            target_sl,
            template: args.template.map(AgentId::new),
        };
        let bar = Bar::new(true);
        let report = sim::staff_for(&scenario, &request, &options, &bar)
            .with_context(|| format!("{}", path.display()))?;
        bar.finish();
        print!("{}", report.to_text());
        if let Some(out) = &args.json {
            write_json(out, &report)?;
        }
        return Ok(());
    }

    let model =
        Model::compile(&scenario, &options).with_context(|| format!("{}", path.display()))?;
    // A bar only for runs long enough to watch (about a second or more in release builds).
    let work = model.expected_arrivals() * f64::from(options.replications);
    let bar = Bar::new(work >= LONG_RUN_INTERACTIONS);
    let report = sim::simulate(&model, &options, &bar)?;
    bar.finish();
    print!("{}", report.to_text());
    if let Some(out) = &args.json {
        write_json(out, &report)?;
    }
    Ok(())
}

/// `--replay DATA_DIR --config NEW.toml`.
fn replay(dir: &Path, config_path: &Path, args: &SimulateArgs) -> anyhow::Result<()> {
    let config = Config::load(config_path)?;
    if !dir.is_dir() {
        anyhow::bail!(
            "--replay {}: no such directory; give the server's data directory (its [store] \
             data_dir, the one holding {DATABASE_FILE})",
            dir.display()
        );
    }
    if !dir.join(DATABASE_FILE).is_file() {
        anyhow::bail!(
            "--replay {}: no {DATABASE_FILE} in this directory; give the server's data directory \
             (its [store] data_dir), where `guichet serve` keeps its journal",
            dir.display()
        );
    }
    // Read beside a running server when the schema is current (no lock taken, nothing written);
    // otherwise open it normally, which takes the directory's lock and upgrades the schema.
    let recording = {
        let config = StoreConfig::new(dir);
        let store = Store::open_shared(&config)
            .or_else(|_| Store::open(&config))
            .map_err(|e| match e {
                StoreError::Locked { .. } => anyhow::anyhow!(
                    "--replay {}: the data directory is in use by a running Guichet server whose \
                 database needs an upgrade first: stop the server, or replay a copy of the data \
                 directory (for example `sqlite3 {} \".backup COPY_DIR/{DATABASE_FILE}\"`, then \
                 --replay COPY_DIR)",
                    dir.display(),
                    dir.join(DATABASE_FILE).display()
                ),
                other => anyhow::Error::new(other).context(format!("--replay {}", dir.display())),
            })?;
        Recording::read(&store).with_context(|| format!("--replay {}", dir.display()))?
    };
    let options = ReplayOptions {
        within_secs: args.within,
    };
    let report = sim::replay(&recording, &config, &options).with_context(|| {
        format!(
            "--replay {} --config {}",
            dir.display(),
            config_path.display()
        )
    })?;
    print!("{}", report.to_text());
    if let Some(out) = &args.json {
        write_json(out, &report)?;
    }
    Ok(())
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Simulated interactions from which a run shows a progress bar.
const LONG_RUN_INTERACTIONS: f64 = 300_000.0;

/// A progress bar on stderr, hidden when stderr is not a terminal or the run is short.
struct Bar(ProgressBar);

impl Bar {
    fn new(long_run: bool) -> Self {
        let target = if long_run && std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(0), target);
        let style = ProgressStyle::with_template(
            "{msg:>12} [{bar:40}] {percent:>3}% simulated, {elapsed} elapsed, eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        Bar(bar)
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl sim::Progress for Bar {
    fn begin(&self, label: &str, total: u64) {
        self.0.set_message(label.to_owned());
        self.0.set_length(total);
        self.0.set_position(0);
    }

    fn advance(&self, units: u64) {
        self.0.inc(units);
    }
}
