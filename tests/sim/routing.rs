//! Routing rules compared in simulation: the N-design of `config/scenarios/n_design.toml`.
//!
//! Two queues. Calls A need skill `a`, calls B need skill `b`. Specialists hold `a` at level 5;
//! generalists hold `a` at level 2 and `b` at level 5. So A can be served by everyone and B only
//! by generalists: the "N" of Garnett & Mandelbaum's skill-based routing designs.
//!
//! What theory predicts, and why:
//! - the strategies differ only when a call A arrives and both a specialist and a generalist are
//!   free (when an agent frees up, it takes the next waiting call in line whatever the
//!   strategy);
//! - under `most_competent` the specialist wins (competence 5 against 2), so a generalist takes
//!   a call A only when every specialist is busy. Generalists stay free more often, which is
//!   exactly what B needs: B has no other server. This is the static priority "specialists
//!   first for A" that the N-design literature finds near-optimal (Gans, Koole & Mandelbaum
//!   2003, section on skill-based routing: keep flexible servers for the calls only they can
//!   take);
//! - under `longest_idle` the call A goes to whoever has waited longest, a generalist about as
//!   often as its share of the idle agents, so generalists are busier with A and B waits longer;
//! - A hardly suffers from `most_competent`: when a specialist is free the call A is answered
//!   at once either way, and the generalists it no longer occupies still take A calls from the
//!   line when nothing of B waits.
//!
//! So we assert: under `most_competent`, generalists answer fewer calls A, generalists are less
//! occupied and specialists more, B's service level is higher and its ASA lower, and A's service
//! level is not significantly worse. The queues have 10 s of wrap-up so that `longest_idle`
//! ranks by true idle time (see the scenario file's note).

use guichet::core::{Channel, Strategy};
use guichet::sim::{simulate, Estimate, Model, Report, RowReport, RunOptions, Scenario, Silent};

const REPLICATIONS: u32 = 12;

fn scenario() -> Scenario {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/scenarios/n_design.toml");
    Scenario::load(&path).expect("n_design.toml")
}

/// One replication (seed `seed`) under `strategy` for both queues.
fn run(strategy: Strategy, seed: u64) -> Report {
    let mut scenario = scenario();
    for q in &mut scenario.queues {
        q.strategy = strategy;
    }
    let mut options = RunOptions::from_scenario(&scenario);
    options.replications = 1;
    options.seed = seed;
    options.jobs = 1;
    let model = Model::compile(&scenario, &options).expect("model");
    simulate(&model, &options, &Silent).expect("simulation")
}

fn row<'r>(r: &'r Report, queue: &str) -> &'r RowReport {
    r.row(queue, Channel::Voice).expect("row")
}

fn mean(e: Option<&Estimate>) -> f64 {
    e.expect("estimate").mean
}

fn gen_share_of_a(r: &Report) -> f64 {
    let a = row(r, "a");
    a.answered_by("gen").unwrap_or(0.0) / a.answered.mean
}

fn occupancy(r: &Report, group: &str) -> f64 {
    mean(r.group(group).and_then(|g| g.occupancy.as_ref()))
}

/// A metric of one replication's report.
type Metric = fn(&Report) -> f64;

/// The metrics compared, per replication.
const METRICS: [(&str, Metric); 6] = [
    ("share of A answered by generalists", gen_share_of_a),
    ("generalists occupancy", |r| occupancy(r, "gen")),
    ("specialists occupancy", |r| occupancy(r, "spec")),
    ("B service level (20 s)", |r| {
        mean(row(r, "b").service_level.as_ref())
    }),
    ("B ASA (s)", |r| mean(row(r, "b").asa_secs.as_ref())),
    ("A service level (20 s)", |r| {
        mean(row(r, "a").service_level.as_ref())
    }),
];

#[test]
fn most_competent_keeps_generalists_for_the_calls_only_they_can_take() {
    let seed = scenario().seed;
    // Paired replications: the same seed gives the same customers under both strategies
    // (common random numbers), so the per-replication differences are sharp.
    let pairs: Vec<(Report, Report)> = (0..u64::from(REPLICATIONS))
        .map(|i| {
            (
                run(Strategy::MostCompetent, seed + i),
                run(Strategy::LongestIdle, seed + i),
            )
        })
        .collect();
    let mut diffs = Vec::new();
    for (name, metric) in METRICS {
        let mc: Vec<f64> = pairs.iter().map(|(m, _)| metric(m)).collect();
        let li: Vec<f64> = pairs.iter().map(|(_, l)| metric(l)).collect();
        let d: Vec<f64> = mc.iter().zip(&li).map(|(m, l)| m - l).collect();
        let (mc, li, d) = (
            Estimate::from_samples(&mc).expect("values"),
            Estimate::from_samples(&li).expect("values"),
            Estimate::from_samples(&d).expect("values"),
        );
        println!(
            "{name:<36} most_competent {:>8.4} ± {:.4}  longest_idle {:>8.4} ± {:.4}  \
             paired difference {:>+8.4} ± {:.4}",
            mc.mean,
            mc.half_width.unwrap_or(0.0),
            li.mean,
            li.half_width.unwrap_or(0.0),
            d.mean,
            d.half_width.unwrap_or(0.0)
        );
        diffs.push((name, d));
    }
    let below = |i: usize| {
        let (name, d) = &diffs[i];
        assert!(
            d.upper() < 0.0,
            "{name}: most_competent should be lower: {d:?}"
        );
    };
    let above = |i: usize| {
        let (name, d) = &diffs[i];
        assert!(
            d.lower() > 0.0,
            "{name}: most_competent should be higher: {d:?}"
        );
    };
    below(0); // generalists take fewer calls A
    below(1); // generalists are less occupied
    above(2); // specialists more
    above(3); // B is answered sooner
    below(4);
    // A is not significantly worse: the interval of the difference reaches zero or above.
    let (name, d) = &diffs[5];
    assert!(
        d.upper() >= 0.0,
        "{name}: most_competent should not hurt A: {d:?}"
    );
}
