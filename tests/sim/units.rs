//! Unit checks of the simulator's building blocks: duration distributions (their means and
//! parameter checks), Student t quantiles and confidence intervals, clock times, and the
//! piecewise-constant Poisson arrivals with a warm-up.

use guichet::core::Channel;
use guichet::sim::{
    simulate, student_t_975, ClockTime, Dist, DistKind, DistSpec, Estimate, Model, RunOptions,
    Scenario, Silent, SimError,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Mean and standard deviation of `n` draws.
fn moments(dist: &Dist, n: usize, seed: u64) -> (f64, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let xs: Vec<f64> = (0..n).map(|_| dist.sample_secs(&mut rng)).collect();
    let mean = xs.iter().sum::<f64>() / n as f64;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean, var.sqrt())
}

/// The sample mean is within 4 standard errors of `mean`.
fn assert_mean(dist: &Dist, mean: f64, sd: f64) {
    let n = 200_000;
    let (m, s) = moments(dist, n, 7);
    let se = sd / (n as f64).sqrt();
    assert!(
        (m - mean).abs() <= 4.0 * se,
        "{dist:?}: sample mean {m}, expected {mean} (se {se})"
    );
    if sd > 0.0 {
        assert!(
            (s - sd).abs() / sd < 0.05,
            "{dist:?}: sample sd {s}, expected {sd}"
        );
    }
    assert_eq!(dist.mean_secs(), mean);
}

#[test]
fn exponential_has_its_mean() {
    let d = DistSpec::exponential(180.0).build("t").expect("valid");
    assert_mean(&d, 180.0, 180.0);
}

#[test]
fn lognormal_from_mean_and_sd_has_them() {
    let spec = DistSpec {
        dist: DistKind::LogNormal,
        mean_secs: Some(300.0),
        sd_secs: Some(200.0),
        ..DistSpec::default()
    };
    assert_mean(&spec.build("t").expect("valid"), 300.0, 200.0);
}

#[test]
fn lognormal_from_mean_and_sigma_has_its_mean() {
    let sigma: f64 = 0.5;
    let spec = DistSpec {
        dist: DistKind::LogNormal,
        mean_secs: Some(240.0),
        sigma: Some(sigma),
        ..DistSpec::default()
    };
    // sd = mean * sqrt(exp(sigma²) - 1)
    let sd = 240.0 * ((sigma * sigma).exp() - 1.0).sqrt();
    assert_mean(&spec.build("t").expect("valid"), 240.0, sd);
}

#[test]
fn constant_and_uniform_have_their_means() {
    assert_mean(
        &DistSpec::constant(42.0).build("t").expect("valid"),
        42.0,
        0.0,
    );
    let u = DistSpec::uniform(0.0, 2.0).build("t").expect("valid");
    assert_mean(&u, 1.0, 2.0 / 12f64.sqrt());
    assert_eq!(u.max_secs(), 2.0);
}

#[test]
fn milliseconds_are_rounded_and_never_negative() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    assert_eq!(
        DistSpec::constant(1.2345)
            .build("t")
            .expect("valid")
            .sample_millis(&mut rng),
        1235
    );
    assert_eq!(
        DistSpec::constant(0.0)
            .build("t")
            .expect("valid")
            .sample_millis(&mut rng),
        0
    );
}

#[test]
fn distribution_parameters_are_checked() {
    let parse = |text: &str| -> Result<Dist, SimError> {
        let spec: DistSpec = toml::from_str(text).expect("shape");
        spec.build("handle")
    };
    assert!(parse("mean_secs = 10").is_ok());
    for (text, needle) in [
        ("dist = \"lognormal\"\nmean_secs = 10", "sd_secs or sigma"),
        (
            "dist = \"lognormal\"\nmean_secs = 10\nsd_secs = 1\nsigma = 1",
            "not both",
        ),
        ("mean_secs = -1", "positive"),
        ("mean_secs = 10\nsd_secs = 3", "does not apply"),
        (
            "dist = \"uniform\"\nmin_secs = 3\nmax_secs = 1",
            "min_secs <= max_secs",
        ),
        ("dist = \"constant\"", "needs mean_secs"),
    ] {
        let err = parse(text).expect_err(text).to_string();
        assert!(err.contains(needle), "{text:?}: {err}");
        assert!(err.starts_with("handle: "), "{err}");
    }
    assert!(
        toml::from_str::<DistSpec>("mean = 10").is_err(),
        "unknown field"
    );
    assert!(
        toml::from_str::<DistSpec>("dist = \"gamma\"").is_err(),
        "unknown family"
    );
}

#[test]
fn student_t_quantiles() {
    for (df, t) in [
        (1, 12.7062),
        (2, 4.3027),
        (9, 2.2622),
        (30, 2.0423),
        (40, 2.0211),
        (60, 2.0003),
        (120, 1.9799),
        (1000, 1.9623),
    ] {
        assert!(
            (student_t_975(df) - t).abs() < 2e-4,
            "df {df}: {}",
            student_t_975(df)
        );
    }
    assert!(student_t_975(0).is_infinite());
    // Decreasing towards the normal quantile.
    for df in 1..200 {
        assert!(student_t_975(df) > student_t_975(df + 1));
        assert!(student_t_975(df + 1) > 1.959_96);
    }
}

#[test]
fn confidence_interval_of_known_samples() {
    // Mean 3, sample sd sqrt(2.5), t(0.975, 4) = 2.7764: half-width 2.7764 * 1.5811 / sqrt(5).
    let e = Estimate::from_samples(&[1.0, 2.0, 3.0, 4.0, 5.0]).expect("values");
    assert_eq!(e.mean, 3.0);
    assert_eq!(e.n, 5);
    let hw = e.half_width.expect("n >= 2");
    assert!((hw - 1.963_211).abs() < 1e-5, "half-width {hw}");
    assert!((e.lower() - (3.0 - hw)).abs() < 1e-12 && (e.upper() - (3.0 + hw)).abs() < 1e-12);
    // Constant samples: zero width. One sample: no interval. None: no estimate.
    let c = Estimate::from_samples(&[0.7; 4]).expect("values");
    assert_eq!(c.half_width, Some(0.0));
    let one = Estimate::from_samples(&[2.0]).expect("values");
    assert_eq!((one.mean, one.half_width, one.n), (2.0, None, 1));
    assert!(Estimate::from_samples(&[]).is_none());
}

#[test]
fn confidence_intervals_cover_the_truth_about_95_percent_of_the_time() {
    // 2 000 intervals of 10 normal-ish samples (sums of uniforms) around a known mean.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let u = DistSpec::uniform(0.0, 1.0).build("u").expect("valid");
    let mut covered = 0;
    let trials = 2000;
    for _ in 0..trials {
        let xs: Vec<f64> = (0..10)
            .map(|_| (0..6).map(|_| u.sample_secs(&mut rng)).sum::<f64>())
            .collect();
        let e = Estimate::from_samples(&xs).expect("values");
        if e.lower() <= 3.0 && 3.0 <= e.upper() {
            covered += 1;
        }
    }
    let rate = f64::from(covered) / f64::from(trials);
    assert!((0.93..=0.97).contains(&rate), "coverage {rate}");
}

#[test]
fn clock_times_parse_and_print() {
    let t: ClockTime = "08:30".parse().expect("time");
    assert_eq!(t.secs(), 8 * 3600 + 30 * 60);
    assert_eq!(t.to_string(), "08:30");
    let late: ClockTime = "26:00:05".parse().expect("time");
    assert_eq!(late.secs(), 26 * 3600 + 5);
    assert_eq!(late.to_string(), "26:00:05");
    for bad in ["8h", "08:60", "08", "08:00:00:00", "-1:00", ""] {
        assert!(bad.parse::<ClockTime>().is_err(), "{bad:?}");
    }
}

fn scenario(text: &str) -> Result<Scenario, SimError> {
    Scenario::from_toml(text, "test.toml".as_ref())
}

const BASE: &str = r#"
answer_delay = { dist = "constant", mean_secs = 0 }
[[queues]]
id = "q"
channels = ["voice", "chat"]
[[agents]]
id = "a"
[[staff]]
agent = "a"
count = 40
"#;

#[test]
fn piecewise_arrivals_and_warm_up() {
    // 0/h from 00:00, 600/h from 01:00, 60/h from 02:00 to 03:00. A one-hour warm-up discards
    // the first (empty) hour, so the measured arrivals are 600 + 60 per replication.
    let text = format!(
        r#"
        start = "00:00"
        end = "03:00"
        warm_up_secs = 3600
        {BASE}
        [[arrivals]]
        queue = "q"
        channel = "voice"
        periods = [{{ from = "01:00", per_hour = 600 }}, {{ from = "02:00", per_hour = 60 }}]
        handle = {{ mean_secs = 30 }}
        "#
    );
    let s = scenario(&text).expect("scenario");
    let mut options = RunOptions::from_scenario(&s);
    options.replications = 40;
    let model = Model::compile(&s, &options).expect("model");
    assert!((model.expected_arrivals() - 660.0).abs() < 1e-6);
    let report = simulate(&model, &options, &Silent).expect("run");
    let offered = report.row("q", Channel::Voice).expect("row").offered;
    let hw = offered.half_width.expect("interval");
    assert!((offered.mean - 660.0).abs() < 3.0 * hw, "{offered:?}");
    // Poisson: the variance of the count equals its mean (sd ≈ 25.7).
    let sd = hw / student_t_975(39) * 40f64.sqrt();
    assert!((sd - 660f64.sqrt()).abs() < 8.0, "sd {sd}");

    // Warm-up over the busy hour: only the last hour's arrivals are counted.
    options.warm_up_secs = 7200;
    let model = Model::compile(&s, &options).expect("model");
    let report = simulate(&model, &options, &Silent).expect("run");
    let offered = report.row("q", Channel::Voice).expect("row").offered;
    assert!((offered.mean - 60.0).abs() < 3.0 * offered.half_width.expect("interval"));
}

#[test]
fn scenario_errors_name_what_to_fix() {
    let arrival = |extra: &str| {
        format!(
            "end = \"02:00\"\n{BASE}\n[[arrivals]]\nqueue = \"q\"\nchannel = \"voice\"\nhandle = {{ mean_secs = 30 }}\n{extra}\n"
        )
    };
    let compile = |text: &str| -> String {
        match scenario(text) {
            Err(e) => e.to_string(),
            Ok(s) => Model::compile(&s, &RunOptions::from_scenario(&s))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default(),
        }
    };
    let cases = [
        (arrival(""), "give per_hour or periods"),
        (arrival("per_hour = -3"), "at least 0"),
        (
            arrival("periods = [{ from = \"01:00\", per_hour = 1 }, { from = \"00:30\", per_hour = 2 }]"),
            "time order",
        ),
        (
            arrival("periods = [{ from = \"05:00\", per_hour = 1 }]"),
            "outside the horizon",
        ),
        (
            arrival("per_hour = 1").replace("channel = \"voice\"", "channel = \"email\""),
            "does not take email",
        ),
        (
            arrival("per_hour = 1").replace("queue = \"q\"\nchannel", "queue = \"nope\"\nchannel"),
            "unknown queue nope",
        ),
        (
            arrival("per_hour = 1").replace("agent = \"a\"", "agent = \"b\""),
            "unknown agent b",
        ),
        (arrival("per_hour = 1\nbogus = 1"), "unknown field `bogus`"),
        (
            arrival("per_hour = 1").replace("end = \"02:00\"", "end = \"00:00\""),
            "is not after start",
        ),
        (
            arrival("per_hour = 1").replace("end = \"02:00\"", "end = \"02:00\"\nwarm_up_secs = 7200"),
            "nothing to measure",
        ),
        (
            arrival("per_hour = 1").replace("end = \"02:00\"", "end = \"25:61\""),
            "invalid time",
        ),
    ];
    for (text, needle) in cases {
        let err = compile(&text);
        assert!(err.contains(needle), "expected {needle:?} in {err:?}");
    }
    // Parse errors carry the line.
    let err = compile("end = \"02:00\"\n[[queues]]\nid = 3\n");
    assert!(err.starts_with("test.toml:3:"), "{err}");
}
