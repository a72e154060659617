//! Simulator speed: simulated interactions per CPU second (and per CPU minute) on one thread.
//!
//! ```text
//! cargo run --release --example sim_speed                                   # large_center, 10 replications
//! cargo run --release --example sim_speed -- config/scenarios/n_design.toml 20
//! ```
//!
//! Runs the scenario's replications one after the other on the calling thread (`jobs = 1`), so
//! that the thread's CPU time is the simulation's. CPU time comes from
//! `/proc/thread-self/schedstat` (Linux: nanoseconds this thread ran); elsewhere the example
//! falls back to wall time, which is close on an idle machine, and says so. Loading and
//! compiling the scenario are outside the measure; building the report is inside (it is small).

use std::path::PathBuf;
use std::time::Instant;

use guichet::sim::{simulate, Model, RunOptions, Scenario, Silent};

type Error = Box<dyn std::error::Error>;

/// Nanoseconds of CPU this thread has used, if the platform says.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let path = args.next().map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/scenarios/large_center.toml"),
        PathBuf::from,
    );
    let scenario = Scenario::load(&path)?;
    let mut options = RunOptions::from_scenario(&scenario);
    if let Some(r) = args.next() {
        options.replications = r.parse()?;
    }
    options.jobs = 1;
    let model = Model::compile(&scenario, &options)?;

    let (cpu0, wall0) = (thread_cpu_ns(), Instant::now());
    let report = simulate(&model, &options, &Silent)?;
    let (cpu1, wall) = (thread_cpu_ns(), wall0.elapsed().as_secs_f64());
    let (secs, clock) = match (cpu0, cpu1) {
        (Some(a), Some(b)) => ((b - a) as f64 / 1e9, "CPU"),
        _ => (wall, "wall-clock (no per-thread CPU time on this platform)"),
    };
    let n = report.interactions_simulated as f64;
    println!("scenario: {} ({})", report.scenario, path.display());
    println!(
        "{} replication(s) on one thread, {} agents, {} interactions simulated",
        report.replications,
        model.agent_count(),
        report.interactions_simulated
    );
    println!("{clock} time {secs:.3} s (wall {wall:.3} s)");
    println!(
        "{:.0} interactions per {clock} second = {:.2} million per {clock} minute",
        n / secs,
        n / secs * 60.0 / 1e6
    );
    Ok(())
}
