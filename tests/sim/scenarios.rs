//! Whole scenarios: the demo runs and is reproducible, shifts log agents in and out, overflows
//! and offer timeouts behave as in production, configuration files merge, and the staffing
//! helper finds the Erlang C answer.

use std::path::{Path, PathBuf};

use guichet::core::{Channel, QueueId, Strategy};
use guichet::sim::{
    simulate, staff_for, Model, Report, RunOptions, Scenario, Silent, SimError, StaffingRequest,
};

fn demo(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/scenarios")
        .join(name)
}

fn run_text(text: &str, replications: u32, jobs: usize) -> Report {
    let s = Scenario::from_toml(text, "test.toml".as_ref()).expect("scenario");
    let mut options = RunOptions::from_scenario(&s);
    options.replications = replications;
    options.jobs = jobs;
    simulate(
        &Model::compile(&s, &options).expect("model"),
        &options,
        &Silent,
    )
    .expect("run")
}

/// Every offered interaction ends in exactly one outcome.
fn assert_conserved(report: &Report) {
    for r in &report.queues {
        let outcomes = r.answered.mean + r.abandoned.mean + r.deflected.mean + r.unserved.mean;
        assert!(
            (r.offered.mean - outcomes).abs() < 1e-9,
            "{}/{}: offered {} but outcomes {outcomes}",
            r.queue,
            r.channel,
            r.offered.mean
        );
    }
}

#[test]
fn monday_morning_runs_and_is_reproducible_whatever_the_threads() {
    let scenario = Scenario::load(&demo("monday_morning.toml")).expect("scenario");
    let mut options = RunOptions::from_scenario(&scenario);
    options.replications = 4;
    let model = Model::compile(&scenario, &options).expect("model");
    options.jobs = 1;
    let one = simulate(&model, &options, &Silent).expect("run");
    options.jobs = 3;
    let three = simulate(&model, &options, &Silent).expect("run");
    let json = |r: &Report| serde_json::to_string(r).expect("json");
    assert_eq!(json(&one), json(&three));
    assert_eq!(one.to_text(), three.to_text());
    // Another seed, other customers.
    options.seed += 100;
    let other = simulate(&model, &options, &Silent).expect("run");
    assert_ne!(json(&one), json(&other));

    for queue in ["benefits", "tax"] {
        for channel in [Channel::Voice, Channel::Email, Channel::Chat] {
            assert!(one.row(queue, channel).is_some(), "{queue}/{channel}");
        }
    }
    assert!(one.row("general", Channel::Voice).is_some());
    assert_conserved(&one);
    for g in &one.agents {
        let occ = g.occupancy.expect("occupancy").mean;
        assert!(occ > 0.3 && occ <= 1.0, "{}: occupancy {occ}", g.group);
    }
}

#[test]
fn large_center_scenario_is_valid() {
    let scenario = Scenario::load(&demo("large_center.toml")).expect("scenario");
    let model = Model::compile(&scenario, &RunOptions::from_scenario(&scenario)).expect("model");
    assert_eq!(model.agent_count(), 666);
    assert!(model.expected_arrivals() > 60_000.0);
}

#[test]
fn shifts_log_agents_in_and_out_after_their_work() {
    let report = run_text(
        r#"
        start = "08:00"
        end = "10:00"
        [[queues]]
        id = "q"
        channels = ["voice"]
        wrap_up_secs = 5
        [[agents]]
        id = "early"
        [[agents]]
        id = "late"
        [[staff]]
        agent = "early"
        count = 5
        end = "09:00"
        [[staff]]
        agent = "late"
        count = 5
        start = "09:00"
        [[arrivals]]
        queue = "q"
        channel = "voice"
        per_hour = 60
        handle = { mean_secs = 240 }
        "#,
        4,
        2,
    );
    let early = report.group("early").expect("early");
    let late = report.group("late").expect("late");
    assert_eq!((early.agents, late.agents), (5, 5));
    // Late agents work 09:00-10:00; early ones 08:00-09:00 plus the end of their last call.
    assert!((late.logged_in_hours.mean - 5.0).abs() < 1e-9);
    assert!(early.logged_in_hours.mean >= 5.0);
    assert!(early.logged_in_hours.mean < 5.0 + 5.0 * 0.5);
    let row = report.row("q", Channel::Voice).expect("row");
    assert!(row.answered_by("early").expect("early answered") > 10.0);
    assert!(row.answered_by("late").expect("late answered") > 10.0);
    assert_eq!(row.unserved.mean, 0.0);
    assert_conserved(&report);
}

#[test]
fn voicemail_overflow_deflects_and_missed_offers_are_retried() {
    // One agent for 30 calls an hour of 4 minutes: the line grows, and after 2 minutes callers
    // go to voicemail. The agent answers after 0-4 s but offers time out after 2 s: about half
    // the offers are missed, the agent is paused after 3 misses in a row and comes back.
    let report = run_text(
        r#"
        end = "04:00"
        answer_delay = { dist = "uniform", min_secs = 0, max_secs = 4 }
        [[queues]]
        id = "q"
        channels = ["voice"]
        offer_timeout_secs = 2
        overflow = { after_secs = 120, action = "voicemail" }
        [[agents]]
        id = "solo"
        [[arrivals]]
        queue = "q"
        channel = "voice"
        per_hour = 30
        handle = { mean_secs = 240 }
        "#,
        3,
        1,
    );
    let row = report.row("q", Channel::Voice).expect("row");
    assert!(row.deflected.mean > 10.0, "{row:?}");
    assert!(row.answered.mean > 10.0, "{row:?}");
    assert_eq!(row.abandoned.mean, 0.0);
    assert_conserved(&report);
    assert!(report
        .to_text()
        .contains("deflected (voicemail or message)"));
}

#[test]
fn within_overrides_every_queue_target() {
    let text = r#"
        end = "03:00"
        answer_delay = { dist = "constant", mean_secs = 0 }
        [[queues]]
        id = "q"
        channels = ["voice"]
        sla_target_secs = { voice = 20, email = 1, sms = 1, chat = 1 }
        [[agents]]
        id = "a"
        [[staff]]
        agent = "a"
        count = 3
        [[arrivals]]
        queue = "q"
        channel = "voice"
        per_hour = 50
        handle = { mean_secs = 180 }
        "#;
    let s = Scenario::from_toml(text, "t.toml".as_ref()).expect("scenario");
    let mut options = RunOptions::from_scenario(&s);
    options.replications = 3;
    let sl = |options: &RunOptions| {
        let report = simulate(
            &Model::compile(&s, options).expect("model"),
            options,
            &Silent,
        )
        .expect("run");
        let row = report.row("q", Channel::Voice).expect("row").clone();
        (row.sl_target_secs, row.service_level.expect("sl").mean)
    };
    let (t20, sl20) = sl(&options);
    options.within_secs = Some(600);
    let (t600, sl600) = sl(&options);
    assert_eq!((t20, t600), (20, 600));
    assert!(sl600 > sl20);
}

#[test]
fn a_configuration_file_is_merged_and_overridden() {
    let dir = std::env::temp_dir().join(format!("guichet-sim-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(
        dir.join("center.toml"),
        r#"
        [[queues]]
        id = "q"
        channels = ["voice"]
        strategy = "round_robin"
        [[queues]]
        id = "other"
        [[agents]]
        id = "x"
        skills = { s = 3 }
        "#,
    )
    .expect("write config");
    let scenario_text = r#"
        config = "center.toml"
        end = "01:00"
        [[queues]]
        id = "q"
        channels = ["voice"]
        strategy = "longest_idle"
        [[arrivals]]
        queue = "q"
        channel = "voice"
        per_hour = 10
        handle = { mean_secs = 60 }
        "#;
    let s = Scenario::from_toml(scenario_text, &dir.join("scenario.toml")).expect("scenario");
    assert!(s.config.is_none());
    let ids: Vec<&str> = s.queues.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(ids, ["other", "q"]);
    assert_eq!(
        s.queue(&QueueId::new("q")).map(|q| q.strategy),
        Some(Strategy::LongestIdle)
    );
    assert_eq!(s.agents.len(), 1);
    let report = simulate(
        &Model::compile(&s, &RunOptions::from_scenario(&s)).expect("model"),
        &RunOptions::from_scenario(&s),
        &Silent,
    )
    .expect("run");
    assert!(report.group("x").is_some());

    // A configuration the router refuses is reported as such.
    std::fs::write(
        dir.join("center.toml"),
        "[[queues]]\nid = \"q\"\nchannels = []\n",
    )
    .expect("write config");
    let err =
        Scenario::from_toml(scenario_text, &dir.join("scenario.toml")).expect_err("empty channels");
    assert!(matches!(err, SimError::Config(_)), "{err}");
    assert!(err.to_string().contains("at least one channel"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn staffing_finds_the_erlang_c_answer() {
    // 100 calls per 30 minutes, AHT 180 s: Erlang C gives SL(20 s) 79.6 % with 13 agents and
    // 88.8 % with 14, so an 85 % target needs 14.
    let text = r#"
        end = "10:00"
        warm_up_secs = 3600
        answer_delay = { dist = "constant", mean_secs = 0 }
        [[queues]]
        id = "q"
        channels = ["voice"]
        offer_timeout_secs = 86400
        sla_target_secs = { voice = 20, email = 1, sms = 1, chat = 1 }
        [[agents]]
        id = "agent"
        [[staff]]
        agent = "agent"
        count = 3
        [[arrivals]]
        queue = "q"
        channel = "voice"
        per_hour = 200
        handle = { mean_secs = 180 }
        [staffing]
        template = "agent"
        min_agents = 11
        "#;
    let s = Scenario::from_toml(text, "t.toml".as_ref()).expect("scenario");
    let mut options = RunOptions::from_scenario(&s);
    options.replications = 10;
    options.jobs = 2;
    let request = StaffingRequest {
        queue: QueueId::new("q"),
        channel: None,
        target_sl: 0.85,
        template: None,
    };
    let report = staff_for(&s, &request, &options, &Silent).expect("staffing");
    println!("{}", report.to_text());
    assert_eq!(report.agents(), Some(14));
    assert_eq!(report.channel, Channel::Voice);
    assert_eq!(report.within_secs, 20);
    let replications: Vec<u32> = report.answers.iter().map(|a| a.replications).collect();
    assert_eq!(replications, [2, 5, 10]);
    // Levels are reported in order, and the service level grows with staff.
    let sls: Vec<f64> = report
        .evaluated
        .iter()
        .map(|p| p.service_level.mean)
        .collect();
    assert!(sls.windows(2).all(|w| w[0] <= w[1]), "{sls:?}");
    assert!(report.evaluated.iter().any(|p| p.agents == 13));
    for a in &report.answers {
        if let (Some(m), Some(c)) = (a.agents_mean, a.agents_confident) {
            assert!(c >= m);
        }
    }

    // Impossible targets and unknown queues are explained.
    let mut bad = request.clone();
    bad.target_sl = 1.5;
    assert!(staff_for(&s, &bad, &options, &Silent).is_err());
    let mut bad = request;
    bad.queue = QueueId::new("nope");
    let err = staff_for(&s, &bad, &options, &Silent).expect_err("unknown queue");
    assert!(err.to_string().contains("unknown queue nope"));
}
