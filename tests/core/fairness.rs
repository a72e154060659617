//! Fair routing in the core: idle time per channel restarts when work ends, ties go to the agent
//! offered something on the channel the longest ago, declines lapse after `reoffer_after_secs`
//! and the router re-offers on its own, `max_declines` pauses an agent.

use std::collections::BTreeMap;

use guichet::core::{
    AgentConfig, AgentId, AgentState, Capacity, Channel, Command, Event, EventKind, InteractionId,
    InteractionPhase, InteractionSpec, QueueConfig, RouteError, Router, Strategy, Timestamp,
    DECLINED_OFFERS,
};

const T0: Timestamp = Timestamp::from_secs(1_700_000_000);

fn id(n: u128) -> InteractionId {
    InteractionId::from_u128(n)
}

struct Center {
    router: Router,
    now: Timestamp,
}

impl Center {
    fn new() -> Self {
        Center {
            router: Router::new(),
            now: T0,
        }
    }

    fn ok(&mut self, command: Command) -> Vec<Event> {
        let ticked = self.router.tick(self.now);
        let events = self
            .router
            .handle(self.now, command.clone())
            .unwrap_or_else(|e| panic!("{command:?} refused: {e}"));
        self.router.check_invariants().expect("invariants");
        [ticked, events].concat()
    }

    fn advance_ms(&mut self, ms: u64) -> Vec<Event> {
        self.now = self.now.plus_millis(ms);
        let events = self.router.tick(self.now);
        self.router.check_invariants().expect("invariants");
        events
    }

    fn queue(&mut self, config: QueueConfig) {
        self.ok(Command::UpsertQueue { config });
    }

    /// An agent with skill `s` at level 3, logged in.
    fn agent(&mut self, name: &str, capacity: Capacity) {
        let config = AgentConfig::new(name)
            .with_skill("s", 3)
            .with_capacity(capacity);
        self.ok(Command::UpsertAgent { config });
        self.ok(Command::Login { agent: name.into() });
    }

    fn create(&mut self, n: u128, channel: Channel, queue: &str) -> Vec<Event> {
        self.ok(Command::CreateInteraction {
            spec: InteractionSpec::new(id(n), channel, queue),
        })
    }

    fn holder(&self, n: u128) -> Option<AgentId> {
        self.router
            .interaction(&id(n))
            .and_then(|v| v.phase.agent().cloned())
    }

    /// Accepts and completes interaction `n` (offered), returns who handled it.
    fn handle_fully(&mut self, n: u128) -> AgentId {
        let agent = self.holder(n).expect("offered");
        self.ok(Command::Accept {
            interaction: id(n),
            agent: agent.clone(),
        });
        self.advance_ms(60_000);
        self.ok(Command::Complete {
            interaction: id(n),
            agent: Some(agent.clone()),
            wrap_up_code: None,
            notes: None,
        });
        self.advance_ms(1_000);
        agent
    }
}

fn voice_only() -> Capacity {
    Capacity {
        voice: 1,
        email: 0,
        sms: 0,
        chat: 0,
    }
}

fn chats(n: u16) -> Capacity {
    Capacity {
        voice: 1,
        email: 0,
        sms: 0,
        chat: n,
    }
}

fn queue(name: &str, strategy: Strategy) -> QueueConfig {
    let mut q = QueueConfig::new(name)
        .requiring("s", 1)
        .with_strategy(strategy);
    q.wrap_up_secs = 0;
    q
}

/// Four identical agents logged in one after the other, 40 interactions one at a time.
fn forty_sequential(strategy: Strategy, channel: Channel) -> BTreeMap<AgentId, usize> {
    let mut c = Center::new();
    c.queue(queue("q", strategy));
    for name in ["a1", "a2", "a3", "a4"] {
        c.agent(name, chats(3));
        c.advance_ms(5_000);
    }
    let mut handled = BTreeMap::new();
    for n in 1..=40 {
        c.create(n, channel, "q");
        *handled.entry(c.handle_fully(n)).or_insert(0) += 1;
    }
    handled
}

#[test]
fn idle_time_restarts_when_work_ends_so_identical_agents_share_the_work() {
    for strategy in [
        Strategy::LongestIdle,
        Strategy::MostCompetent,
        Strategy::LeastOccupied,
        Strategy::RoundRobin,
    ] {
        for channel in [Channel::Voice, Channel::Chat] {
            let handled = forty_sequential(strategy, channel);
            assert_eq!(handled.len(), 4, "{strategy:?} {channel}: {handled:?}");
            assert!(
                handled.values().all(|&n| n == 10),
                "{strategy:?} {channel}: {handled:?}"
            );
        }
    }
}

#[test]
fn a_decline_or_a_miss_does_not_restart_idle_time() {
    let mut c = Center::new();
    let mut q = queue("q", Strategy::LongestIdle);
    q.offer_timeout_secs = 10;
    c.queue(q);
    c.agent("first", voice_only());
    c.advance_ms(5_000);
    c.agent("second", voice_only());
    c.advance_ms(5_000);
    c.create(1, Channel::Voice, "q");
    assert_eq!(c.holder(1), Some("first".into()));
    c.ok(Command::Decline {
        interaction: id(1),
        agent: "first".into(),
    });
    assert_eq!(c.holder(1), Some("second".into()));
    // `first` is still the one idle the longest: the next call is hers.
    c.create(2, Channel::Voice, "q");
    assert_eq!(c.holder(2), Some("first".into()));
    // She lets it ring: still hers to take after the timeout when the next call comes.
    c.advance_ms(10_000);
    c.create(3, Channel::Voice, "q");
    assert_eq!(c.holder(3), Some("first".into()));
    let view = c.router.agent(&"first".into()).expect("agent");
    assert_eq!(view.idle_since_by_channel.voice, T0);
}

#[test]
fn concurrent_chats_go_to_the_agent_offered_one_the_longest_ago() {
    let mut c = Center::new();
    c.queue(queue("q", Strategy::LongestIdle));
    // Three agents logged in at the same instant: tied on idle time.
    for name in ["a", "b", "c"] {
        let config = AgentConfig::new(name)
            .with_skill("s", 3)
            .with_capacity(chats(3));
        c.ok(Command::UpsertAgent { config });
    }
    for name in ["a", "b", "c"] {
        c.ok(Command::Login { agent: name.into() });
    }
    for n in 1..=6 {
        c.create(n, Channel::Chat, "q");
    }
    let mut load: BTreeMap<AgentId, usize> = BTreeMap::new();
    for n in 1..=6 {
        *load.entry(c.holder(n).expect("offered")).or_default() += 1;
    }
    assert!(load.values().all(|&n| n == 2), "{load:?}");
}

#[test]
fn the_only_agent_who_declined_is_offered_the_interaction_again_after_the_delay() {
    let mut c = Center::new();
    let mut q = queue("q", Strategy::MostCompetent);
    q.reoffer_after_secs = 30;
    q.offer_timeout_secs = 20;
    c.queue(q);
    c.agent("amelie", voice_only());
    c.create(1, Channel::Voice, "q");
    c.ok(Command::Decline {
        interaction: id(1),
        agent: "amelie".into(),
    });
    let declined_at = c.now;
    let view = c.router.interaction(&id(1)).expect("open");
    assert_eq!(view.phase, InteractionPhase::Waiting);
    assert_eq!(view.declines.len(), 1);
    assert_eq!(c.router.next_deadline(), Some(declined_at.plus_secs(30)));
    c.advance_ms(12_000);
    let why = c.router.explain_at(&id(1), c.now).expect("explain");
    assert!(
        why.summary
            .contains("declined by amelie 12 s ago; offered to amelie again after 30 s"),
        "{}",
        why.summary
    );
    assert!(c.advance_ms(17_999).is_empty());
    let events = c.advance_ms(1);
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.name()).collect();
    assert_eq!(kinds, ["decline_lapsed", "interaction_offered"]);
    assert_eq!(c.holder(1), Some("amelie".into()));
    assert!(c
        .router
        .interaction(&id(1))
        .expect("open")
        .declines
        .is_empty());
}

#[test]
fn an_absent_agent_is_offered_the_same_call_once_per_timeout_and_delay() {
    let mut c = Center::new();
    let mut q = queue("q", Strategy::LongestIdle);
    q.reoffer_after_secs = 30;
    q.offer_timeout_secs = 20;
    q.max_misses = 0;
    c.queue(q);
    c.agent("away", voice_only());
    c.create(1, Channel::Voice, "q");
    let mut offers = vec![c.now];
    for _ in 0..600 {
        for event in c.advance_ms(1_000) {
            if let EventKind::InteractionOffered { .. } = event.kind {
                offers.push(event.at);
            }
        }
    }
    assert_eq!(offers.len(), 13, "{offers:?}");
    for pair in offers.windows(2) {
        assert_eq!(pair[1].millis_since(pair[0]), 50_000, "{offers:?}");
    }
    let agent = c.router.agent(&"away".into()).expect("agent");
    assert_eq!(agent.state, AgentState::Available);
}

#[test]
fn a_busy_agent_whose_decline_lapsed_takes_the_interaction_when_it_frees_up() {
    let mut c = Center::new();
    let mut q = queue("q", Strategy::MostCompetent);
    q.reoffer_after_secs = 5;
    c.queue(q);
    c.agent("amelie", voice_only());
    c.create(1, Channel::Voice, "q");
    c.ok(Command::Decline {
        interaction: id(1),
        agent: "amelie".into(),
    });
    // A more urgent call takes her meanwhile; the first waits.
    let mut urgent = InteractionSpec::new(id(2), Channel::Voice, "q");
    urgent.priority = Some(9);
    c.ok(Command::CreateInteraction { spec: urgent });
    assert_eq!(c.holder(2), Some("amelie".into()));
    c.ok(Command::Accept {
        interaction: id(2),
        agent: "amelie".into(),
    });
    c.advance_ms(10_000);
    assert_eq!(c.holder(1), None);
    assert!(c
        .router
        .interaction(&id(1))
        .expect("open")
        .declines
        .is_empty());
    c.ok(Command::Complete {
        interaction: id(2),
        agent: None,
        wrap_up_code: None,
        notes: None,
    });
    assert_eq!(c.holder(1), Some("amelie".into()));
}

#[test]
fn max_declines_in_a_row_pause_the_agent() {
    let mut c = Center::new();
    let mut q = queue("q", Strategy::MostCompetent);
    q.max_declines = 2;
    c.queue(q);
    c.agent("amelie", voice_only());
    c.agent("bruno", voice_only());
    for n in 1..=2 {
        c.create(n, Channel::Voice, "q");
        let holder = c.holder(n).expect("offered");
        if holder.as_str() == "bruno" {
            c.ok(Command::Accept {
                interaction: id(n),
                agent: holder,
            });
            c.create(n + 10, Channel::Voice, "q");
            continue;
        }
        c.ok(Command::Decline {
            interaction: id(n),
            agent: "amelie".into(),
        });
    }
    let amelie = c.router.agent(&"amelie".into()).expect("agent");
    assert_eq!(
        amelie.state,
        AgentState::Paused {
            reason: DECLINED_OFFERS.into()
        },
        "{amelie:?}"
    );
}

#[test]
fn reoffer_after_secs_must_be_between_one_second_and_a_day() {
    let mut c = Center::new();
    for bad in [0, 86_401] {
        let mut q = queue("q", Strategy::MostCompetent);
        q.reoffer_after_secs = bad;
        let e = c
            .router
            .handle(c.now, Command::UpsertQueue { config: q })
            .expect_err("refused");
        assert!(matches!(e, RouteError::InvalidQueue { .. }), "{e}");
        assert!(e.to_string().contains("reoffer_after_secs"), "{e}");
    }
}

#[test]
fn replay_and_snapshot_keep_declines_and_idle_times() {
    let mut c = Center::new();
    let mut log = Vec::new();
    let mut q = queue("q", Strategy::LongestIdle);
    q.reoffer_after_secs = 30;
    log.extend(c.ok(Command::UpsertQueue { config: q }));
    for name in ["a", "b"] {
        let config = AgentConfig::new(name)
            .with_skill("s", 3)
            .with_capacity(chats(3));
        log.extend(c.ok(Command::UpsertAgent { config }));
        log.extend(c.ok(Command::Login { agent: name.into() }));
        log.extend(c.advance_ms(1_000));
    }
    log.extend(c.create(1, Channel::Voice, "q"));
    let first = c.holder(1).expect("offered");
    log.extend(c.ok(Command::Decline {
        interaction: id(1),
        agent: first,
    }));
    log.extend(c.create(2, Channel::Chat, "q"));
    let mut replayed = Router::new();
    for event in &log {
        replayed.apply(event).expect("replay");
    }
    assert_eq!(replayed.snapshot(), c.router.snapshot());
    let restored = Router::restore(&c.router.snapshot()).expect("restore");
    assert_eq!(restored.snapshot(), c.router.snapshot());
    assert_eq!(restored.next_deadline(), c.router.next_deadline());
}
