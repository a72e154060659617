//! The `guichet simulate` command line: byte-identical output for the same scenario and seed,
//! JSON results, the staffing helper, and usage errors (exit code 2). `--replay` has its own
//! tests in `sim_replay.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn guichet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_guichet"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run guichet")
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("guichet-sim-cli-{}-{name}", std::process::id()))
}

const SCENARIO: &str = "config/scenarios/monday_morning.toml";

#[test]
fn same_scenario_and_seed_give_byte_identical_output() {
    let (j1, j2) = (temp("a.json"), temp("b.json"));
    let run = |json: &Path, jobs: &str| {
        guichet(&[
            "simulate",
            "--scenario",
            SCENARIO,
            "--seed",
            "7",
            "--replications",
            "3",
            "--jobs",
            jobs,
            "--json",
            json.to_str().expect("utf-8 path"),
        ])
    };
    let (a, b) = (run(&j1, "1"), run(&j2, "2"));
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert_eq!(a.stdout, b.stdout);
    let (ja, jb) = (
        std::fs::read(&j1).expect("json"),
        std::fs::read(&j2).expect("json"),
    );
    assert_eq!(ja, jb);
    let value: serde_json::Value = serde_json::from_slice(&ja).expect("valid JSON");
    assert_eq!(value["seed"], 7);
    assert_eq!(value["replications"], 3);
    assert!(value["queues"][0]["service_level"]["mean"].is_number());
    let text = String::from_utf8_lossy(&a.stdout);
    assert!(text.contains("seeds 7..9"), "{text}");
    assert!(
        text.contains("benefits") && text.contains("occupancy"),
        "{text}"
    );
    // No progress bar when stderr is not a terminal.
    assert!(
        a.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&a.stderr)
    );

    let c = guichet(&[
        "simulate",
        "--scenario",
        SCENARIO,
        "--seed",
        "8",
        "--replications",
        "3",
    ]);
    assert_ne!(a.stdout, c.stdout);
    let _ = std::fs::remove_file(j1);
    let _ = std::fs::remove_file(j2);
}

#[test]
fn staffing_helper_prints_levels_and_answers() {
    let scenario = temp("staffing.toml");
    std::fs::write(
        &scenario,
        r#"
        end = "04:00"
        [[queues]]
        id = "q"
        channels = ["voice"]
        [[agents]]
        id = "agent"
        [[arrivals]]
        queue = "q"
        channel = "voice"
        per_hour = 100
        handle = { mean_secs = 180 }
        patience = { mean_secs = 300 }
        [staffing]
        template = "agent"
        min_agents = 4
        "#,
    )
    .expect("write scenario");
    let json = temp("staffing.json");
    let out = guichet(&[
        "simulate",
        "--scenario",
        scenario.to_str().expect("utf-8 path"),
        "--replications",
        "3",
        "--staff-for",
        "q",
        "--target-sl",
        "0.8",
        "--within",
        "30",
        "--json",
        json.to_str().expect("utf-8 path"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Staffing: q / voice, service level 80.0% within 30 s"),
        "{text}"
    );
    assert!(text.contains("agents (mean SL meets target)"), "{text}");
    let value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json")).expect("valid JSON");
    assert!(value["answers"][0]["agents_mean"].is_number(), "{value}");
    let _ = std::fs::remove_file(scenario);
    let _ = std::fs::remove_file(json);
}

#[test]
fn usage_and_scenario_errors() {
    let out = guichet(&["simulate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--scenario"));
    let out = guichet(&["simulate", "--scenario", SCENARIO, "--target-sl", "0.8"]);
    assert_eq!(out.status.code(), Some(2), "--target-sl needs --staff-for");
    let out = guichet(&["simulate", "--scenario", "config/scenarios/missing.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}
