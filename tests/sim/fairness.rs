//! The simulator's per-agent spread: `config/scenarios/fair_spread.toml` (ten identical agents,
//! calls and chats, no wrap-up) under `longest_idle` and `round_robin` spreads the work evenly,
//! and the report says so (min, max, coefficient of variation across the group's agents).

use std::path::Path;

use guichet::core::Strategy;
use guichet::sim::{simulate, Model, Report, RunOptions, Scenario, Silent};

fn run(strategy: Strategy) -> Report {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/scenarios/fair_spread.toml");
    let mut scenario = Scenario::load(&path).expect("scenario");
    for queue in &mut scenario.queues {
        queue.strategy = strategy;
    }
    let mut options = RunOptions::from_scenario(&scenario);
    options.replications = 3;
    let model = Model::compile(&scenario, &options).expect("model");
    simulate(&model, &options, &Silent).expect("run")
}

#[test]
fn longest_idle_and_round_robin_spread_the_work_evenly_across_identical_agents() {
    for strategy in [Strategy::LongestIdle, Strategy::RoundRobin] {
        let report = run(strategy);
        let spread = report.spread("clerk").expect("spread of the clerks");
        assert_eq!(spread.agents.mean, 10.0, "{strategy:?}: {spread:?}");
        let answered = &spread.answered;
        let (min, max) = (
            answered.min.expect("min").mean,
            answered.max.expect("max").mean,
        );
        let cv = answered.cv.expect("cv").mean;
        assert!(min > 0.0 && max >= min, "{strategy:?}: {spread:?}");
        assert!(
            cv < 0.12 && min / max > 0.7,
            "{strategy:?}: answered per agent spread unevenly: {spread:?}"
        );
        let occupancy = spread.occupancy.cv.expect("occupancy cv").mean;
        assert!(
            occupancy < 0.12,
            "{strategy:?}: occupancy spread {spread:?}"
        );
        let text = report.to_text();
        assert!(
            text.contains("Spread across the agents") && text.contains("answered min"),
            "{text}"
        );
    }
}
