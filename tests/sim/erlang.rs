//! The simulator against queueing theory: single-skill queues driven through the real router
//! must reproduce the closed forms of Erlang C (M/M/N) and Erlang A (M/M/N+M), computed here
//! from the textbook formulas (`shared/reference/erlang.md`).
//!
//! The router's offer/accept cycle is made transparent: answer delay 0, no wrap-up, offer
//! timeout of a day. Each check asserts |simulated − theory| < max(3 × 95 % half-width, floor)
//! over independent replications; the half-width is Student t over replications, so the
//! tolerance shrinks with simulated time. Debug builds simulate about 300 000 calls per point;
//! `cargo test --release` simulates four times more for sharper checks.

use guichet::sim::{simulate, Estimate, Model, Report, RunOptions, Scenario};

/// Replication length multiplier: release builds afford longer runs.
const SCALE: u64 = if cfg!(debug_assertions) { 1 } else { 4 };
const REPLICATIONS: u32 = 10;

// ----- closed forms -----

/// Erlang B by recursion: B(0) = 1; B(k) = A·B(k−1) / (k + A·B(k−1)).
fn erlang_b(a: f64, n: u32) -> f64 {
    (1..=n).fold(1.0, |b, k| a * b / (f64::from(k) + a * b))
}

/// Erlang C: (probability of waiting, ASA in seconds, service level within `t` seconds).
fn erlang_c(per_hour: f64, aht: f64, n: u32, t: f64) -> (f64, f64, f64) {
    let a = per_hour / 3600.0 * aht;
    let nf = f64::from(n);
    assert!(nf > a, "Erlang C needs N > A");
    let b = erlang_b(a, n);
    let pw = nf * b / (nf - a * (1.0 - b));
    let asa = pw * aht / (nf - a);
    let sl = 1.0 - pw * (-(nf - a) * t / aht).exp();
    (pw, asa, sl)
}

/// Erlang A from the birth-death chain: (probability of waiting, probability of abandoning,
/// occupancy).
fn erlang_a(per_hour: f64, aht: f64, n: u32, patience: f64) -> (f64, f64, f64) {
    let (lambda, mu, theta) = (per_hour / 3600.0, 1.0 / aht, 1.0 / patience);
    let nf = f64::from(n);
    let mut p = vec![1.0f64];
    let mut k = 0usize;
    loop {
        k += 1;
        let kf = k as f64;
        let death = kf.min(nf) * mu + (kf - nf).max(0.0) * theta;
        let next = p[k - 1] * lambda / death;
        p.push(next);
        let total: f64 = p.iter().sum();
        if k > n as usize && next < 1e-15 * total {
            break;
        }
    }
    let total: f64 = p.iter().sum();
    let pw = p[n as usize..].iter().sum::<f64>() / total;
    let queue: f64 = p
        .iter()
        .enumerate()
        .map(|(k, pk)| (k as f64 - nf).max(0.0) * pk)
        .sum::<f64>()
        / total;
    let busy: f64 = p
        .iter()
        .enumerate()
        .map(|(k, pk)| (k as f64).min(nf) * pk)
        .sum::<f64>()
        / total;
    (pw, theta * queue / lambda, busy / nf)
}

// ----- simulation -----

fn run(per_hour: f64, aht: f64, n: u32, sl_secs: u64, patience: Option<f64>, hours: u64) -> Report {
    let patience = patience.map_or(String::new(), |p| {
        format!("patience = {{ mean_secs = {p} }}")
    });
    let text = format!(
        r#"
        name = "erlang"
        end = "{hours}:00"
        warm_up_secs = 3600
        answer_delay = {{ dist = "constant", mean_secs = 0 }}

        [[queues]]
        id = "q"
        channels = ["voice"]
        offer_timeout_secs = 86400
        wrap_up_secs = 0
        sla_target_secs = {{ voice = {sl_secs}, email = 1, sms = 1, chat = 1 }}

        [[agents]]
        id = "agent"

        [[staff]]
        agent = "agent"
        count = {n}

        [[arrivals]]
        queue = "q"
        channel = "voice"
        per_hour = {per_hour}
        handle = {{ mean_secs = {aht} }}
        {patience}
        "#
    );
    let scenario = Scenario::from_toml(&text, "erlang.toml".as_ref()).expect("scenario");
    let mut options = RunOptions::from_scenario(&scenario);
    options.replications = REPLICATIONS;
    options.seed = 20_240_601;
    options.jobs = 2;
    let model = Model::compile(&scenario, &options).expect("model");
    simulate(&model, &options, &guichet::sim::Silent).expect("simulation")
}

/// Asserts the estimate agrees with theory within max(3 half-widths, floor); prints the line
/// of the comparison table.
fn check(label: &str, e: Option<&Estimate>, theory: f64, floor: f64) {
    let e = e.unwrap_or_else(|| panic!("{label}: no estimate"));
    let hw = e.half_width.expect("several replications");
    let tolerance = (3.0 * hw).max(floor);
    println!(
        "{label:<40} theory {theory:>9.4}  simulated {:>9.4} ± {hw:.4}  (|diff| = {:.2} half-widths)",
        e.mean,
        (e.mean - theory).abs() / hw
    );
    assert!(
        (e.mean - theory).abs() < tolerance,
        "{label}: simulated {:.4} ± {hw:.4}, theory {theory:.4}",
        e.mean
    );
}

fn check_erlang_c(per_hour: f64, aht: f64, n: u32, t: u64, hours: u64) {
    let (pw, asa, sl) = erlang_c(per_hour, aht, n, t as f64);
    let report = run(per_hour, aht, n, t, None, hours * SCALE);
    let row = report.row("q", guichet::core::Channel::Voice).expect("row");
    let label = format!("λ={per_hour}/h AHT={aht}s N={n}");
    check(&format!("{label} Pw"), row.queued_share.as_ref(), pw, 0.01);
    check(&format!("{label} ASA (s)"), row.asa_secs.as_ref(), asa, 0.5);
    check(
        &format!("{label} SL{t}"),
        row.service_level.as_ref(),
        sl,
        0.01,
    );
    let occupancy = per_hour / 3600.0 * aht / f64::from(n);
    check(
        &format!("{label} occupancy"),
        report.total_occupancy.as_ref(),
        occupancy,
        0.005,
    );
    assert_eq!(row.abandoned.mean, 0.0);
    assert_eq!(row.unserved.mean, 0.0);
}

#[test]
fn closed_forms_reproduce_the_published_example() {
    // Call Centre Helper: 100 calls per 30 minutes, AHT 180 s.
    let (pw, _, sl) = erlang_c(200.0, 180.0, 14, 20.0);
    assert!((pw - 0.174).abs() < 0.0005, "Pw {pw}");
    assert!((sl - 0.888).abs() < 0.0005, "SL {sl}");
    let (pw, _, sl) = erlang_c(200.0, 180.0, 15, 20.0);
    assert!((pw - 0.102).abs() < 0.0005, "Pw {pw}");
    assert!((sl - 0.941).abs() < 0.0005, "SL {sl}");
    // Erlang A with very patient callers tends to Erlang C.
    let (pw_a, ab, occ) = erlang_a(200.0, 180.0, 14, 1e9);
    let (pw_c, _, _) = erlang_c(200.0, 180.0, 14, 20.0);
    assert!((pw_a - pw_c).abs() < 1e-4 && ab < 1e-4 && (occ - 10.0 / 14.0).abs() < 1e-4);
}

#[test]
fn erlang_c_worked_example_14_agents() {
    check_erlang_c(200.0, 180.0, 14, 20, 150);
}

#[test]
fn erlang_c_worked_example_15_agents() {
    check_erlang_c(200.0, 180.0, 15, 20, 150);
}

#[test]
fn erlang_c_small_group_longer_calls() {
    // A = 8 Erlangs on 10 agents, SL within 30 s.
    check_erlang_c(120.0, 240.0, 10, 30, 250);
}

fn check_erlang_a(per_hour: f64, aht: f64, n: u32, patience: f64, hours: u64) {
    let (pw, ab, occ) = erlang_a(per_hour, aht, n, patience);
    let report = run(per_hour, aht, n, 20, Some(patience), hours * SCALE);
    let row = report.row("q", guichet::core::Channel::Voice).expect("row");
    let label = format!("λ={per_hour}/h AHT={aht}s N={n} patience={patience}s");
    check(&format!("{label} Pw"), row.queued_share.as_ref(), pw, 0.01);
    check(
        &format!("{label} P(abandon)"),
        row.abandonment_rate.as_ref(),
        ab,
        0.005,
    );
    check(
        &format!("{label} occupancy"),
        report.total_occupancy.as_ref(),
        occ,
        0.005,
    );
}

#[test]
fn erlang_a_critically_loaded() {
    // A = 10 Erlangs on 10 agents: only abandonment keeps the queue stable.
    check_erlang_a(200.0, 180.0, 10, 120.0, 150);
}

#[test]
fn erlang_a_patient_callers() {
    check_erlang_a(200.0, 180.0, 12, 300.0, 150);
}
