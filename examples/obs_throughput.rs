//! How fast the observability subscribers keep up, measured on real SQLite files.
//!
//! ```text
//! cargo run --release --example obs_throughput            # 100,000 interactions
//! cargo run --release --example obs_throughput -- 20000   # another count
//! ```
//!
//! 1. Indicator aggregation: the events of N served interactions (created, offered, accepted,
//!    completed; one in ten abandoned instead) over 3 queues, 4 channels and 30 days are folded
//!    into the daily aggregates in chunks of 4,096 events (as the catch-up does) and in batches
//!    of 8 (as under live load, one transaction per batch): events per second.
//! 2. A month's report built from the aggregates (the cost of one `GET /indicators`).
//! 3. The metrics observer: events per second through `Observer::observe` with the Prometheus
//!    recorder installed, and the time to render `/metrics`' text.

use std::sync::Arc;
use std::time::Instant;

use guichet::core::{
    AgentId, Channel, Decision, EndReason, Event, EventKind, InteractionId, InteractionSpec, Rule,
    Strategy, Timestamp,
};
use guichet::obs::indicators::{Period, Report};
use guichet::obs::metrics::Observer;
use guichet::obs::IndicatorsConfig;
use guichet::store::{Store, StoreConfig};

const T0: u64 = 1_773_129_600_000;

fn events(n: u64) -> Vec<(u64, Event)> {
    let queues = ["benefits", "tax", "general"];
    let agent = AgentId::new("a");
    let mut out = Vec::with_capacity(n as usize * 4);
    let mut seq = 0;
    let mut push = |at: u64, kind: EventKind, out: &mut Vec<(u64, Event)>| {
        seq += 1;
        out.push((
            seq,
            Event {
                at: Timestamp(at),
                kind,
            },
        ));
    };
    for i in 0..n {
        let at = T0 + i * (30 * 86_400_000 / n.max(1));
        let id = InteractionId::from_u128(u128::from(i) + 1);
        let channel = Channel::ALL[(i % 4) as usize];
        let spec = InteractionSpec::new(id, channel, queues[(i % 3) as usize]);
        push(
            at,
            EventKind::InteractionCreated {
                spec: Arc::new(spec),
                priority: 0,
                sla_deadline: Timestamp(at + 60_000),
            },
            &mut out,
        );
        if i % 10 == 9 {
            push(
                at + 90_000,
                EventKind::InteractionEnded {
                    interaction: id,
                    reason: EndReason::Abandoned,
                },
                &mut out,
            );
            continue;
        }
        push(
            at + 20_000,
            EventKind::InteractionOffered {
                interaction: id,
                agent: agent.clone(),
                deadline: Timestamp(at + 40_000),
                decision: Decision {
                    rule: Rule::Strategy {
                        strategy: Strategy::MostCompetent,
                    },
                    step: 0,
                    candidates: 1,
                    score: 1,
                    runner_up: None,
                },
                context: None,
            },
            &mut out,
        );
        push(
            at + 20_000 + (i % 80) * 1000,
            EventKind::OfferAccepted {
                interaction: id,
                agent: agent.clone(),
            },
            &mut out,
        );
        push(
            at + 400_000,
            EventKind::InteractionCompleted {
                interaction: id,
                agent: agent.clone(),
                wrap_up_code: None,
                notes: None,
                wrap_up_until: None,
            },
            &mut out,
        );
    }
    out
}

fn fold(
    events: &[(u64, Event)],
    chunk: usize,
    cfg: &IndicatorsConfig,
) -> (f64, Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&StoreConfig::new(dir.path())).expect("open");
    let started = Instant::now();
    for c in events.chunks(chunk) {
        store
            .fold_indicator_events(c, &|at| cfg.day_of(at))
            .expect("fold");
    }
    let rate = events.len() as f64 / started.elapsed().as_secs_f64();
    (rate, store, dir)
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let cfg = IndicatorsConfig {
        time_zone: chrono_tz::Europe::Paris,
        ..IndicatorsConfig::default()
    };
    let evs = events(n);
    println!("{n} interactions, {} events", evs.len());

    let (rate, store, _dir) = fold(&evs, 4096, &cfg);
    println!("aggregation, chunks of 4096 (catch-up): {rate:>10.0} events/s");
    let small = &evs[..evs.len().min(40_000)];
    let (rate8, _, _d8) = fold(small, 8, &cfg);
    println!("aggregation, batches of 8 (live):      {rate8:>10.0} events/s");

    let date = chrono::NaiveDate::from_ymd_opt(2026, 3, 20).expect("date");
    let started = Instant::now();
    let runs = 100;
    let mut requests = 0;
    for _ in 0..runs {
        let report = Report::build(&store, &cfg, Period::Month, date, &|_, _| {
            Some(guichet::obs::indicators::AnnouncedDelay::Secs(60))
        })
        .expect("report");
        requests = report.total.requests;
    }
    println!(
        "month report ({} rows, {requests} requests): {:.2} ms",
        store
            .indicator_days("2026-03-01", "2026-03-31")
            .expect("rows")
            .len(),
        started.elapsed().as_secs_f64() * 1000.0 / f64::from(runs)
    );

    let handle = guichet::obs::metrics::install();
    let mut observer = Observer::default();
    let started = Instant::now();
    for (_, e) in &evs {
        observer.observe(e);
    }
    let rate = evs.len() as f64 / started.elapsed().as_secs_f64();
    println!("metrics observer:                      {rate:>10.0} events/s");
    let started = Instant::now();
    let text = handle.render();
    println!(
        "render /metrics ({} lines): {:.2} ms",
        text.lines().count(),
        started.elapsed().as_secs_f64() * 1000.0
    );
}
