//! Timers: the engine ticks the router at `next_deadline` by itself. Offers that are not accepted
//! go back to their queue in their place and are offered again; an agent who misses `max_misses`
//! offers in a row is paused; wrap-up ends by itself. The real-time tests use one-second
//! timeouts and only guard against hangs; the manual-clock tests check that the engine follows
//! its clock rather than the time it planned to sleep.

use crate::engine_common;

use std::sync::Arc;
use std::time::Duration;

use engine_common::{config_with, spec, ManualClock, Watcher};
use guichet::core::{
    AgentConfig, AgentState, Command, DeclineCause, EventKind, InteractionId, InteractionPhase,
    QueueConfig, Timestamp, MISSED_OFFERS,
};
use guichet::engine::{Engine, EngineConfig};

fn fast_queue() -> QueueConfig {
    let mut queue = QueueConfig::new("fast").requiring("x", 1);
    queue.offer_timeout_secs = 1;
    queue.max_misses = 2;
    queue.wrap_up_secs = 1;
    queue
}

fn agents() -> Vec<AgentConfig> {
    vec![
        AgentConfig::new("ana").with_skill("x", 5),
        AgentConfig::new("ben").with_skill("x", 3),
    ]
}

fn id(n: u128) -> InteractionId {
    InteractionId::from_u128(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_offers_go_back_in_place_the_agent_is_paused_and_wrap_up_ends_by_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = config_with(vec![fast_queue()], agents());
    let (engine, _) = Engine::start(EngineConfig::new(dir.path()), &seed)
        .await
        .expect("start");
    let mut watch = Watcher::new(engine.subscribe());

    // Both wait before Ana logs in, so that her first miss is followed by the second offer
    // whatever the delays between these commands.
    for n in [1, 2] {
        engine
            .send(Command::CreateInteraction {
                spec: spec(n, "fast"),
            })
            .await
            .expect("create");
    }
    let login = engine
        .send(Command::Login {
            agent: "ana".into(),
        })
        .await
        .expect("login");
    assert!(login.iter().any(|e| matches!(
        &e.kind,
        EventKind::InteractionOffered { interaction, agent, .. }
            if *interaction == id(1) && agent.as_str() == "ana"
    )));

    // Nobody sends anything now: the engine must time the offer out by itself.
    let missed = watch
        .until("timeout of offer 1", |k| {
            matches!(k, EventKind::OfferDeclined { interaction, cause: DeclineCause::TimedOut, .. }
            if *interaction == id(1))
        })
        .await;
    // Ana missed once (max 2): still available, so she is offered the next one in line.
    let reoffer = watch
        .until("offer of 2 to ana", |k| {
            matches!(k, EventKind::InteractionOffered { interaction, agent, .. }
            if *interaction == id(2) && agent.as_str() == "ana")
        })
        .await;
    assert_eq!(reoffer.at, missed.at, "decided in the same tick");
    assert!(
        !watch.seen.iter().any(|e| matches!(
            &e.kind,
            EventKind::AgentStateChanged {
                state: AgentState::Paused { .. },
                ..
            }
        )),
        "paused too early: {:#?}",
        watch.seen
    );
    watch
        .until("timeout of offer 2", |k| {
            matches!(k, EventKind::OfferDeclined { interaction, cause: DeclineCause::TimedOut, .. }
            if *interaction == id(2))
        })
        .await;
    watch
        .until("ana paused", |k| {
            matches!(k, EventKind::AgentStateChanged { agent, state: AgentState::Paused { reason } }
            if agent.as_str() == "ana" && reason == MISSED_OFFERS)
        })
        .await;

    // Both wait again, in their original order.
    let (order, ana) = engine
        .read(|r| (r.waiting_in_queue(&"fast".into()), r.agent(&"ana".into())))
        .await
        .expect("read");
    assert_eq!(order, vec![id(1), id(2)]);
    let ana = ana.expect("ana");
    assert_eq!(ana.misses, 2);

    // Ben takes the first in line, accepts and completes it; his wrap-up ends by itself and he
    // is offered the next one. The offer timeout is raised first (a live queue change), so that
    // a slow machine cannot time Ben's offer out before he accepts.
    let mut queue = fast_queue();
    queue.offer_timeout_secs = 3_600;
    engine
        .send(Command::UpsertQueue { config: queue })
        .await
        .expect("queue");
    let login = engine
        .send(Command::Login {
            agent: "ben".into(),
        })
        .await
        .expect("login ben");
    assert!(login.iter().any(|e| matches!(
        &e.kind,
        EventKind::InteractionOffered { interaction, agent, .. }
            if *interaction == id(1) && agent.as_str() == "ben"
    )));
    engine
        .send(Command::Accept {
            interaction: id(1),
            agent: "ben".into(),
        })
        .await
        .expect("accept");
    let completed = engine
        .send(Command::Complete {
            interaction: id(1),
            agent: Some("ben".into()),
            wrap_up_code: Some("resolved".into()),
            notes: None,
        })
        .await
        .expect("complete");
    assert!(completed.iter().any(|e| matches!(
        &e.kind,
        EventKind::InteractionCompleted {
            wrap_up_until: Some(_),
            ..
        }
    )));
    watch
        .until("end of ben's wrap-up", |k| {
            matches!(k, EventKind::WrapUpEnded { interaction, agent, .. }
            if *interaction == id(1) && agent.as_str() == "ben")
        })
        .await;
    watch
        .until("offer of 2 to ben", |k| {
            matches!(k, EventKind::InteractionOffered { interaction, agent, .. }
            if *interaction == id(2) && agent.as_str() == "ben")
        })
        .await;
    let (one, ben) = engine
        .read(|r| (r.interaction(&id(1)), r.agent(&"ben".into())))
        .await
        .expect("read");
    assert!(one.is_none(), "closed after wrap-up");
    assert_eq!(ben.expect("ben").work, vec![id(2)]);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_offer_is_re_offered_to_the_next_agent_by_the_timer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = config_with(vec![fast_queue()], agents());
    let (engine, _) = Engine::start(EngineConfig::new(dir.path()), &seed)
        .await
        .expect("start");
    let mut watch = Watcher::new(engine.subscribe());
    for agent in ["ana", "ben"] {
        engine
            .send(Command::Login {
                agent: agent.into(),
            })
            .await
            .expect("login");
    }
    engine
        .send(Command::CreateInteraction {
            spec: spec(1, "fast"),
        })
        .await
        .expect("create");
    watch
        .until("offer to ben after ana's miss", |k| {
            matches!(k, EventKind::InteractionOffered { interaction, agent, .. }
            if *interaction == id(1) && agent.as_str() == "ben")
        })
        .await;
    let explanation = engine
        .read(|r| r.explain(&id(1)))
        .await
        .expect("read")
        .expect("open");
    // Ben may have missed it too by now, on a slow machine.
    assert_eq!(
        explanation.interaction.declined_by.first(),
        Some(&"ana".into())
    );
    engine.shutdown().await;
}

/// The engine sleeps until the next deadline as its clock predicts, but a clock may jump (a
/// suspended virtual machine, a corrected wall clock, an injected clock): it must notice that a
/// deadline has passed without waiting for the whole planned sleep, and without a command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_passed_by_a_clock_jump_is_ticked_without_any_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut queue = fast_queue();
    queue.offer_timeout_secs = 3_600;
    let seed = config_with(vec![queue], agents());
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_767_254_400)));
    let (engine, _) = Engine::start_with_clock(EngineConfig::new(dir.path()), &seed, clock.clone())
        .await
        .expect("start");
    let mut watch = Watcher::new(engine.subscribe());
    engine
        .send(Command::Login {
            agent: "ana".into(),
        })
        .await
        .expect("login");
    engine
        .send(Command::CreateInteraction {
            spec: spec(1, "fast"),
        })
        .await
        .expect("create");
    // Let the engine go to sleep for the hour, then jump.
    tokio::time::sleep(Duration::from_millis(50)).await;
    clock.advance(Duration::from_secs(3_601));
    watch
        .until("timeout after the jump", |k| {
            matches!(k, EventKind::OfferDeclined { interaction, cause: DeclineCause::TimedOut, .. }
            if *interaction == id(1))
        })
        .await;
    engine.shutdown().await;
}

/// A read is served at the engine's current time: timers already due are processed first, so a
/// reader never sees an offer that has expired (even while requests keep the engine busy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_see_every_timer_due_at_their_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut queue = fast_queue();
    queue.offer_timeout_secs = 3_600;
    let seed = config_with(vec![queue], agents());
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_767_254_400)));
    let (engine, _) = Engine::start_with_clock(EngineConfig::new(dir.path()), &seed, clock.clone())
        .await
        .expect("start");
    engine
        .send(Command::Login {
            agent: "ana".into(),
        })
        .await
        .expect("login");
    engine
        .send(Command::CreateInteraction {
            spec: spec(1, "fast"),
        })
        .await
        .expect("create");
    clock.advance(Duration::from_secs(3_601));
    let phase = engine
        .read(|r| r.interaction(&id(1)).map(|v| v.phase))
        .await
        .expect("read");
    assert_eq!(phase, Some(InteractionPhase::Waiting));
    engine.shutdown().await;
}

/// Deadlines that passed while the engine was down are processed once at start (no busy loop,
/// no lost timer): a waiting interaction whose escalation step is long due is escalated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_due_while_down_fire_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut queue = fast_queue();
    queue.requirements = vec![guichet::core::Requirement::new("x", 4)];
    queue.escalation = vec![guichet::core::EscalationStep {
        after_secs: 60,
        action: guichet::core::StepAction::LowerLevel {
            skill: "x".into(),
            to: 1,
        },
    }];
    let seed = config_with(vec![queue], agents());
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_767_254_400)));
    let config = EngineConfig::new(dir.path());
    let (engine, _) = Engine::start_with_clock(config.clone(), &seed, clock.clone())
        .await
        .expect("start");
    engine
        .send(Command::CreateInteraction {
            spec: spec(1, "fast"),
        })
        .await
        .expect("create");
    engine.shutdown().await;
    drop(engine);

    clock.advance(Duration::from_secs(3_600));
    let (engine, _) = Engine::start_with_clock(config, &seed, clock.clone())
        .await
        .expect("restart");
    let (step, next) = engine
        .read(|r| (r.interaction(&id(1)).map(|v| v.step), r.next_deadline()))
        .await
        .expect("read");
    assert_eq!(step, Some(1));
    assert!(next.is_none_or(|d| d > clock_now(&clock)), "{next:?}");
    engine.shutdown().await;
}

fn clock_now(clock: &ManualClock) -> Timestamp {
    use guichet::engine::Clock;
    clock.now()
}

/// A takeover (or a restart) after an offer's deadline passed while nobody led: the agents are
/// logged out first, so the offer is withdrawn (`revoked`), never counted as a miss, and the
/// interaction waits in its place; then the timers resume (a new offer times out as usual).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_whose_deadline_passed_while_down_is_withdrawn_without_a_miss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = config_with(vec![fast_queue()], agents());
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_767_254_400)));
    let (engine, _) = Engine::start_with_clock(EngineConfig::new(dir.path()), &seed, clock.clone())
        .await
        .expect("start");
    engine
        .send(Command::CreateInteraction {
            spec: spec(1, "fast"),
        })
        .await
        .expect("create");
    let login = engine
        .send(Command::Login {
            agent: "ana".into(),
        })
        .await
        .expect("login");
    assert!(login
        .iter()
        .any(|e| matches!(&e.kind, EventKind::InteractionOffered { interaction, .. } if *interaction == id(1))));
    engine.shutdown().await;
    drop(engine);

    // Down (or no leader) for ten offer timeouts.
    clock.advance(Duration::from_secs(10));
    let (engine, _) = Engine::start_with_clock(EngineConfig::new(dir.path()), &seed, clock.clone())
        .await
        .expect("restart");
    let events = engine
        .store()
        .run(|s| {
            let mut all = Vec::new();
            s.replay(0, |_, e| {
                all.push(e.kind);
                Ok(())
            })?;
            Ok(all)
        })
        .await
        .expect("journal");
    let declines: Vec<_> = events
        .iter()
        .filter_map(|k| match k {
            EventKind::OfferDeclined { cause, .. } => Some(*cause),
            _ => None,
        })
        .collect();
    assert_eq!(declines, vec![DeclineCause::Revoked], "{events:#?}");
    let (phase, misses, state) = engine
        .read(|r| {
            let ana = r.agent(&"ana".into()).expect("ana");
            (
                r.interaction(&id(1)).map(|v| v.phase),
                ana.misses,
                ana.state,
            )
        })
        .await
        .expect("read");
    assert_eq!(phase, Some(InteractionPhase::Waiting));
    assert_eq!(misses, 0, "a withdrawn offer is not a miss");
    assert_eq!(state, AgentState::Offline);

    // The timers run again: offered anew on login, and missed if not answered in time.
    let mut watch = Watcher::new(engine.subscribe());
    engine
        .send(Command::Login {
            agent: "ana".into(),
        })
        .await
        .expect("login again");
    clock.advance(Duration::from_secs(2));
    watch
        .until("the new offer times out", |k| {
            matches!(k, EventKind::OfferDeclined { interaction, cause: DeclineCause::TimedOut, .. }
            if *interaction == id(1))
        })
        .await;
    engine.shutdown().await;
}
