//! Running replications: in parallel threads, collected in replication order so that the result
//! does not depend on the number of threads or on their timing.

use std::sync::atomic::{AtomicU32, Ordering};

use super::engine::run_replication;
use super::error::SimError;
use super::model::{Model, RunOptions};
use super::report::Report;
use super::stats::RepCounts;

/// Receives progress from a run (the command line draws a progress bar with it).
pub trait Progress: Sync {
    /// A run of `total` units (simulated seconds over all its replications) begins.
    fn begin(&self, _label: &str, _total: u64) {}
    /// `units` more simulated seconds are done.
    fn advance(&self, _units: u64) {}
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}

/// Runs every replication of the model and reports the statistics.
pub fn simulate(
    model: &Model,
    options: &RunOptions,
    progress: &dyn Progress,
) -> Result<Report, SimError> {
    progress.begin(
        "simulating",
        model.horizon_secs() * u64::from(options.replications),
    );
    let reps = run_replications(
        model,
        options.seed,
        options.replications,
        options.jobs,
        progress,
    )?;
    Ok(Report::build(model, options.seed, &reps))
}

/// Runs replications `0..count` on up to `jobs` threads; results come back in replication order.
pub(crate) fn run_replications(
    model: &Model,
    seed: u64,
    count: u32,
    jobs: usize,
    progress: &dyn Progress,
) -> Result<Vec<RepCounts>, SimError> {
    let advance = |units: u64| progress.advance(units);
    let jobs = jobs.clamp(1, count.max(1) as usize);
    let mut results: Vec<(u32, Result<RepCounts, SimError>)> = if jobs == 1 {
        (0..count)
            .map(|i| (i, run_replication(model, i, seed, &advance)))
            .collect()
    } else {
        let next = AtomicU32::new(0);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..jobs)
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= count {
                                break done;
                            }
                            done.push((i, run_replication(model, i, seed, &advance)));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    };
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}
