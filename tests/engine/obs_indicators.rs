//! Public quality indicators computed for a scripted day with known waits, answers and
//! abandonments (engine in process, injected clock, real SQLite on disk), compared with
//! hand-computed figures; the aggregates survive a restart (not counted twice), a journal
//! purge and a GDPR erasure; day boundaries follow the configured time zone.

use crate::engine_common;

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;

use engine_common::{config_with, engine_config, first_seq, spec_on, ManualClock};
use guichet::config::Config;
use guichet::core::{
    AgentConfig, AgentId, Capacity, Channel, Command, ContactId, InteractionId, QueueConfig,
    Timestamp,
};
use guichet::engine::Engine;
use guichet::obs::indicators::{Aggregator, AnnouncedDelay, IndicatorRow, Period, Report};
use guichet::obs::IndicatorsConfig;
use guichet::store::{Store, SurveyAnswer};

/// 2026-03-10 08:00:00 UTC (09:00 in Paris).
const T0: u64 = 1_773_129_600_000;

fn config() -> Config {
    let mut queue = QueueConfig::new("q");
    queue.sla_target_secs.voice = 60;
    queue.sla_target_secs.chat = 120;
    let agent = AgentConfig::new("a1").with_capacity(Capacity {
        voice: 1,
        email: 0,
        sms: 0,
        chat: 2,
    });
    let mut config = config_with(vec![queue], vec![agent]);
    config.indicators = IndicatorsConfig {
        time_zone: chrono_tz::Europe::Paris,
        service_name: "Test".into(),
    };
    config
}

fn id(n: u128) -> InteractionId {
    InteractionId::from_u128(n)
}

fn a1() -> AgentId {
    AgentId::new("a1")
}

async fn create(engine: &Engine, n: u128, channel: Channel, contact: &str) {
    let mut spec = spec_on(n, channel, "q");
    spec.contact = Some(ContactId::new(contact));
    engine
        .send(Command::CreateInteraction { spec })
        .await
        .expect("create");
}

async fn accept(engine: &Engine, n: u128) {
    engine
        .send(Command::Accept {
            interaction: id(n),
            agent: a1(),
        })
        .await
        .expect("accept");
}

async fn complete(engine: &Engine, n: u128) {
    engine
        .send(Command::Complete {
            interaction: id(n),
            agent: Some(a1()),
            wrap_up_code: None,
            notes: None,
        })
        .await
        .expect("complete");
}

fn answer(n: u128, channel: Channel, contact: &str, score: u8, at: Timestamp) -> SurveyAnswer {
    SurveyAnswer {
        interaction: id(n),
        contact: Some(ContactId::new(contact)),
        agent: Some(a1()),
        queue: "q".into(),
        channel,
        score,
        comment: Some("merci".into()),
        at,
    }
}

fn report(store: &Store, cfg: &IndicatorsConfig, period: Period, date: NaiveDate) -> Report {
    Report::build(store, cfg, period, date, &|q, c| match (q, c) {
        ("q", "voice") => Some(AnnouncedDelay::Secs(60)),
        ("q", "chat") => Some(AnnouncedDelay::Secs(120)),
        _ => None,
    })
    .expect("report")
}

fn row<'a>(report: &'a Report, channel: &str) -> &'a IndicatorRow {
    report
        .rows
        .iter()
        .find(|r| r.channel.as_deref() == Some(channel))
        .unwrap_or_else(|| panic!("no {channel} row in {report:#?}"))
}

fn close(actual: Option<f64>, expected: f64) {
    let a = actual.expect("a value");
    assert!((a - expected).abs() < 1e-9, "{a} != {expected}");
}

/// The scripted day: hand-computed figures in the comments.
async fn scripted_day(engine: &Engine, clock: &ManualClock) {
    let s = Duration::from_secs;
    // #1 voice at T0; the agent logs in 30 s later and accepts at +40 s: wait 40 s (within 60).
    create(engine, 1, Channel::Voice, "c1").await;
    clock.advance(s(30));
    engine
        .send(Command::Login { agent: a1() })
        .await
        .expect("login");
    clock.advance(s(10));
    accept(engine, 1).await;
    // #2 voice at +50 s waits for the agent's only voice slot.
    clock.advance(s(10));
    create(engine, 2, Channel::Voice, "c2").await;
    // #1 completed at +200 s; #2 is offered and accepted at +210 s: wait 160 s (missed).
    clock.advance(s(150));
    complete(engine, 1).await;
    clock.advance(s(10));
    accept(engine, 2).await;
    // #3 voice at +220 s, abandoned at +250 s while #2 holds the slot.
    clock.advance(s(10));
    create(engine, 3, Channel::Voice, "c3").await;
    clock.advance(s(30));
    engine
        .send(Command::Abandon { interaction: id(3) })
        .await
        .expect("abandon");
    // #2 completed (a call takes the agent whole).
    complete(engine, 2).await;
    // #4 chat at +300 s, offered at once, accepted at +310 s: wait 10 s (within 120).
    clock.advance(s(50));
    create(engine, 4, Channel::Chat, "c4").await;
    clock.advance(s(10));
    accept(engine, 4).await;
    // #5 chat created and cancelled: a request, neither answered nor abandoned.
    create(engine, 5, Channel::Chat, "c5").await;
    engine
        .send(Command::Cancel { interaction: id(5) })
        .await
        .expect("cancel");
    complete(engine, 4).await;
}

fn check_day(report: &Report) {
    // Voice: 3 requests, 2 answered (waits 40 s and 160 s), 1 within 60 s, 1 abandoned.
    let voice = row(report, "voice");
    assert_eq!(voice.requests, 3);
    assert_eq!(voice.answered, 2);
    assert_eq!(voice.answered_within_delay, 1);
    assert_eq!(voice.abandoned, 1);
    assert_eq!(voice.announced_delay_secs, Some(60));
    close(voice.average_wait_secs, 100.0);
    close(voice.within_delay_rate, 1.0 / 3.0);
    close(voice.abandonment_rate, 1.0 / 3.0);
    close(voice.satisfaction_average, 4.0); // 5 and 3
    assert_eq!(voice.satisfaction_answers, 2);
    // Chat: 2 requests (one cancelled), 1 answered after 10 s, within 120 s.
    let chat = row(report, "chat");
    assert_eq!(chat.requests, 2);
    assert_eq!(chat.answered, 1);
    assert_eq!(chat.answered_within_delay, 1);
    assert_eq!(chat.abandoned, 0);
    close(chat.average_wait_secs, 10.0);
    close(chat.within_delay_rate, 1.0);
    close(chat.abandonment_rate, 0.0);
    close(chat.satisfaction_average, 4.0);
    assert_eq!(chat.satisfaction_answers, 1);
    // Total: 5 requests, waits 40 + 160 + 10 over 3, 2 within over 3 answered + 1 abandoned.
    let t = &report.total;
    assert_eq!((t.requests, t.answered, t.abandoned), (5, 3, 1));
    close(t.average_wait_secs, 70.0);
    close(t.within_delay_rate, 0.5);
    close(t.abandonment_rate, 0.25);
    close(t.satisfaction_average, 4.0);
    assert_eq!(t.satisfaction_answers, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_day_gives_the_hand_computed_indicators_and_they_survive_restart_purge_and_erasure(
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config();
    let cfg = config.indicators.clone();
    let clock = Arc::new(ManualClock::new(Timestamp(T0)));
    let (engine, _) = Engine::start_with_clock(engine_config(dir.path()), &config, clock.clone())
        .await
        .expect("start");
    let aggregator = Aggregator::start(&engine, &cfg).await.expect("aggregator");
    scripted_day(&engine, &clock).await;
    let store = engine.store().clone();
    let at = clock.now_ts();
    store
        .record_survey_answer(&answer(1, Channel::Voice, "c1", 5, at), &cfg.day_of(at))
        .expect("answer 1");
    store
        .record_survey_answer(&answer(2, Channel::Voice, "c2", 3, at), &cfg.day_of(at))
        .expect("answer 2");
    store
        .record_survey_answer(&answer(4, Channel::Chat, "c4", 4, at), &cfg.day_of(at))
        .expect("answer 4");
    // A second answer for the same interaction, or a score out of range, changes nothing.
    let again = store.record_survey_answer(&answer(4, Channel::Chat, "c4", 1, at), "2026-03-10");
    assert!(again.unwrap_err().to_string().contains("already has"));
    let bad = store.record_survey_answer(&answer(5, Channel::Chat, "c5", 6, at), "2026-03-10");
    assert!(bad
        .unwrap_err()
        .to_string()
        .contains("1 (very dissatisfied) to 5"));

    // 23:30 UTC on the 10th is the 11th in Paris: a request of the next day.
    clock.advance(Duration::from_millis(
        T0 + 15 * 3_600_000 + 30 * 60_000 - clock.now_ts().0,
    ));
    create(&engine, 6, Channel::Voice, "c6").await;
    aggregator.sync(&store).await.expect("sync");

    let day = NaiveDate::from_ymd_opt(2026, 3, 10).expect("date");
    let first = report(&store, &cfg, Period::Day, day);
    assert_eq!(first.time_zone, "Europe/Paris");
    check_day(&first);
    let next = report(&store, &cfg, Period::Day, day.succ_opt().expect("date"));
    assert_eq!(next.total.requests, 1, "{next:#?}");
    assert_eq!(next.total.answered, 0);
    // The week (Monday 9 to Sunday 15 March) and the month hold both days.
    let week = report(&store, &cfg, Period::Week, day);
    assert_eq!(
        (week.from.to_string(), week.to.to_string()),
        ("2026-03-09".into(), "2026-03-15".into())
    );
    assert_eq!(week.total.requests, 6);
    let month = report(&store, &cfg, Period::Month, day);
    assert_eq!(month.to.to_string(), "2026-03-31");
    assert_eq!(month.total.requests, 6);

    // GDPR erasure of a contact and a purge of the journal leave the aggregates alone.
    engine
        .erase_contact(ContactId::new("c1"))
        .await
        .expect("erase");
    let erased = store.survey_answer(&id(1)).expect("read").expect("answer");
    assert_eq!(
        erased.contact, None,
        "the answer stays, without its contact"
    );
    assert_eq!(erased.score, 5);
    engine
        .purge_before(Timestamp(T0 + 86_400_000))
        .await
        .expect("purge");
    check_day(&report(&store, &cfg, Period::Day, day));

    // After a restart, the answer of #6 (created the day before in Paris) counts on its day,
    // and nothing from before is counted twice.
    engine.shutdown().await;
    aggregator.finished().await;
    drop((engine, store));
    clock.advance(Duration::from_secs(60));
    let (engine, _) = Engine::start_with_clock(engine_config(dir.path()), &config, clock.clone())
        .await
        .expect("restart");
    let aggregator = Aggregator::start(&engine, &cfg).await.expect("aggregator");
    engine
        .send(Command::Login { agent: a1() })
        .await
        .expect("login");
    accept(&engine, 6).await;
    let store = engine.store().clone();
    aggregator.sync(&store).await.expect("sync");
    check_day(&report(&store, &cfg, Period::Day, day));
    let next = report(&store, &cfg, Period::Day, day.succ_opt().expect("date"));
    assert_eq!((next.total.requests, next.total.answered), (1, 1));
    close(next.total.average_wait_secs, 60.0);
    assert_eq!(next.total.answered_within_delay, 1);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surveys_are_not_sent_twice_in_the_period_and_stop_is_honoured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&guichet::store::StoreConfig::new(dir.path())).expect("open");
    let c = ContactId::new("+33612345678");
    let period = 30 * 86_400_000;
    assert!(store.may_survey(&c, Timestamp(T0), period).expect("may"));
    store
        .record_survey_sent(&c, &id(1), Timestamp(T0))
        .expect("sent");
    assert!(!store
        .may_survey(&c, Timestamp(T0 + 86_400_000), period)
        .expect("may"));
    assert!(store
        .may_survey(&c, Timestamp(T0 + period + 1), period)
        .expect("may"));
    store.opt_out(&c, Timestamp(T0)).expect("stop");
    store
        .opt_out(&c, Timestamp(T0))
        .expect("stop twice is harmless");
    assert!(store.has_opted_out(&c).expect("read"));
    assert!(!store
        .may_survey(&c, Timestamp(T0 + 10 * period), period)
        .expect("may"));
    assert!(store.opt_in(&c).expect("opt in"));
    assert!(store
        .may_survey(&c, Timestamp(T0 + 10 * period), period)
        .expect("may"));
}

/// `ManualClock` as a plain timestamp (the `Clock` trait is not in scope everywhere).
trait NowTs {
    fn now_ts(&self) -> Timestamp;
}

impl NowTs for ManualClock {
    fn now_ts(&self) -> Timestamp {
        guichet::engine::Clock::now(self)
    }
}

#[test]
fn log_indicators_and_surveys_keys_are_read_and_checked() {
    use std::path::Path;
    let text = "[log]\nformat = \"json\"\n[indicators]\ntime_zone = \"Europe/Paris\"\n\
                service_name = \"Allô\"\n[surveys]\nenabled = true\nqueues = [\"q\"]\n\
                period_days = 7\n[[queues]]\nid = \"q\"\n[[queues]]\nid = \"r\"\n";
    let config = Config::from_toml(text, Path::new("o.toml")).expect("parse");
    config.validate(Path::new("o.toml")).expect("valid");
    assert_eq!(config.log.format, guichet::obs::LogFormat::Json);
    assert_eq!(config.indicators.time_zone, chrono_tz::Europe::Paris);
    assert!(config.surveys.enabled_for(&"q".into()));
    assert!(!config.surveys.enabled_for(&"r".into()));
    assert_eq!(config.surveys.period_ms(), 7 * 86_400_000);

    let bad_zone = Config::from_toml(
        "[indicators]\ntime_zone = \"Mars/Olympus\"\n",
        Path::new("z.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(bad_zone.starts_with("z.toml:2:13:"), "{bad_zone}");
    assert!(bad_zone.contains("Mars/Olympus"), "{bad_zone}");
    let bad_format = Config::from_toml("[log]\nformat = \"xml\"\n", Path::new("l.toml"))
        .unwrap_err()
        .to_string();
    assert!(bad_format.contains("`text` or `json`"), "{bad_format}");
    let unknown = "[surveys]\nqueues = [\"nope\"]\n[[queues]]\nid = \"q\"\n";
    let err = Config::from_toml(unknown, Path::new("s.toml"))
        .expect("parse")
        .validate(Path::new("s.toml"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "s.toml: [surveys] queues: queue nope is not among the [[queues]] of this file"
    );
}

/// Views started behind a purge point of the journal (the aggregates' cursor, the start of the
/// day) rebuild from the router and the stored aggregates instead of skipping: the request
/// created in the purged events and still waiting counts, its answer counts with its true wait,
/// and the figures of the views forced behind are those of views started fresh afterwards; the
/// Prometheus counters count the events after the rebuild exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_behind_a_purge_point_rebuild_to_the_figures_of_fresh_ones() {
    use guichet::api::agent_day::AgentDays;
    use guichet::api::stats::LiveStats;
    let s = Duration::from_secs;
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(Timestamp(T0)));
    let config = config();
    let cfg = config.indicators.clone();
    let mut ec = engine_config(dir.path());
    ec.store.snapshot_every = 1;
    let (engine, _) = Engine::start_with_clock(ec, &config, clock.clone())
        .await
        .expect("start");
    // No view runs yet: #1 answered after 20 s, #2 waiting (the agent's voice slot is taken).
    create(&engine, 1, Channel::Voice, "c1").await;
    create(&engine, 2, Channel::Voice, "c2").await;
    clock.advance(s(10));
    engine
        .send(Command::Login { agent: a1() })
        .await
        .expect("login");
    clock.advance(s(10));
    accept(&engine, 1).await;
    clock.advance(s(10));
    // Every row so far is covered by a snapshot and older than now: purged.
    let purged = engine.purge_before(clock.now_ts()).await.expect("purge");
    assert!(purged > 0, "nothing purged");
    let first = first_seq(&engine).await;
    assert!(
        first.is_none_or(|seq| seq > 1),
        "the journal still starts at 1"
    );

    // Started now, each of these is behind the purge point.
    let now = clock.now_ts();
    let stats = LiveStats::start_with(&engine, &cfg, Some(now)).await;
    let days = AgentDays::start(&engine, &cfg, now).await;
    // The metrics start on the aggregates' cursor (0, none folded yet), so before the
    // aggregator, which reseeds it.
    guichet::obs::metrics::Observer::start(&engine).await;
    // Let the metrics' runner find the purge and rebuild before the events below.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let aggregator = Aggregator::start(&engine, &cfg).await.expect("aggregator");

    // #1 completed, #2 accepted 50 s after its creation (within 60), #3 abandoned.
    clock.advance(s(10));
    complete(&engine, 1).await;
    clock.advance(s(10));
    accept(&engine, 2).await;
    create(&engine, 3, Channel::Voice, "c3").await;
    engine
        .send(Command::Abandon { interaction: id(3) })
        .await
        .expect("abandon");
    let store = engine.store().clone();
    aggregator.sync(&store).await.expect("sync");
    stats.sync(&engine).await;
    days.sync(&engine).await;

    // The aggregates: #1 (created and answered in the purged events) is lost to them; #2, created
    // there but still waiting, counts as a request and as answered within the delay; #3 counts.
    let day = NaiveDate::from_ymd_opt(2026, 3, 10).expect("date");
    let voice = report(&store, &cfg, Period::Day, day);
    let voice = row(&voice, "voice");
    assert_eq!(
        (
            voice.requests,
            voice.answered,
            voice.answered_within_delay,
            voice.abandoned
        ),
        (2, 1, 1, 1),
        "{voice:#?}"
    );
    close(voice.average_wait_secs, 50.0);

    // Views started fresh now tell the same as those forced behind.
    let fresh_stats = LiveStats::start_with(&engine, &cfg, Some(clock.now_ts())).await;
    let fresh_days = AgentDays::start(&engine, &cfg, clock.now_ts()).await;
    fresh_stats.sync(&engine).await;
    fresh_days.sync(&engine).await;
    let q = guichet::core::QueueId::from("q");
    let shown = |st: &LiveStats| {
        st.today_by_channel(&q, clock.now_ts())
            .into_iter()
            .map(|(c, n)| {
                (
                    c,
                    n.answered,
                    n.answered_within,
                    n.abandoned,
                    n.wait_ms_total,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(shown(&stats), vec![(Channel::Voice, 1, 1, 1, 50_000)]);
    assert_eq!(shown(&stats), shown(&fresh_stats));
    let (_, behind) = days.today(&a1(), clock.now_ts());
    let (_, fresh) = fresh_days.today(&a1(), clock.now_ts());
    assert_eq!(behind, fresh);
    assert_eq!(behind.accepted, 1, "{behind:?}");
    assert_eq!(behind.handled, 1, "{behind:?}");

    // The metrics, rebuilt from the router: #2 (created in the purged events) answered within
    // its delay, #3 abandoned; #1's creation and answer are not counted. (#1's completion is
    // counted or not depending on whether the runner finds the purge before or after it: the
    // rebuild reads the router as it is then.)
    let expected = [
        ("guichet_interactions_created_total", 1.0),
        ("guichet_offers_accepted_total", 1.0),
        ("guichet_interactions_abandoned_total", 1.0),
        ("guichet_service_level_met_total", 1.0),
        ("guichet_service_level_missed_total", 1.0),
    ];
    let mut text = String::new();
    for _ in 0..100 {
        text = guichet::obs::metrics::render(&engine).await;
        if expected
            .iter()
            .all(|(name, n)| voice_metric(&text, name) == Some(*n))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (name, n) in expected {
        assert_eq!(voice_metric(&text, name), Some(n), "{name} in\n{text}");
    }
    engine.shutdown().await;
}

/// The value of the counter `name` for queue `q` and the voice channel in a Prometheus text.
fn voice_metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| l.contains("queue=\"q\"") && l.contains("channel=\"voice\""))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}
