//! One test per routing rule of the core, named after the rule.

use guichet::core::{
    AgentConfig, AgentId, AgentState, Capacity, Channel, Command, ContactId, DeclineCause,
    EscalationStep, Event, EventKind, InteractionId, InteractionPhase, InteractionSpec, Overflow,
    OverflowAction, QueueConfig, RequestedState, Requirement, RouteError, Rule, Skill, StepAction,
    Strategy, Timestamp, TransferTarget, MISSED_OFFERS,
};

use crate::core_common;

use core_common::{a, at, id, Center, T0};

impl Center {
    fn queue(&mut self, config: QueueConfig) {
        self.ok(Command::UpsertQueue { config });
    }

    fn agent(&mut self, config: AgentConfig) {
        let agent = config.id.clone();
        self.ok(Command::UpsertAgent { config });
        self.ok(Command::Login { agent });
    }

    fn create(&mut self, spec: InteractionSpec) -> Vec<Event> {
        self.ok(Command::CreateInteraction { spec })
    }

    fn call(&mut self, n: u128, queue: &str) -> Vec<Event> {
        self.create(InteractionSpec::new(id(n), Channel::Voice, queue))
    }

    fn phase(&self, n: u128) -> Option<InteractionPhase> {
        self.router.interaction(&id(n)).map(|v| v.phase)
    }

    fn holder(&self, n: u128) -> Option<AgentId> {
        self.phase(n).and_then(|p| p.agent().cloned())
    }

    fn accept(&mut self, n: u128) {
        let agent = self.holder(n).expect("offered");
        self.ok(Command::Accept {
            interaction: id(n),
            agent,
        });
    }

    fn complete(&mut self, n: u128) -> Vec<Event> {
        let agent = self.holder(n).expect("assigned");
        self.ok(Command::Complete {
            interaction: id(n),
            agent: Some(agent),
            wrap_up_code: Some("resolved".into()),
            notes: None,
        })
    }
}

fn offered_to(events: &[Event]) -> Vec<(InteractionId, String)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::InteractionOffered {
                interaction, agent, ..
            } => Some((*interaction, agent.to_string())),
            _ => None,
        })
        .collect()
}

fn voice_only() -> Capacity {
    Capacity {
        voice: 1,
        email: 0,
        sms: 0,
        chat: 0,
    }
}

fn plain_queue(name: &str) -> QueueConfig {
    QueueConfig::new(name)
}

#[test]
fn waiting_order_is_priority_then_deadline_then_enqueue_time_then_id() {
    let mut c = Center::new();
    c.queue(plain_queue("q"));
    c.ok(Command::UpsertAgent {
        config: AgentConfig::new("solo"),
    });
    // Created while nobody is logged in: all wait.
    let mut low = InteractionSpec::new(id(1), Channel::Voice, "q");
    low.priority = Some(1);
    c.create(low);
    c.now = at(1);
    let mut high_late_deadline = InteractionSpec::new(id(2), Channel::Voice, "q");
    high_late_deadline.priority = Some(5);
    high_late_deadline.sla_deadline = Some(at(500));
    c.create(high_late_deadline);
    c.now = at(2);
    let mut high_early_deadline = InteractionSpec::new(id(3), Channel::Voice, "q");
    high_early_deadline.priority = Some(5);
    high_early_deadline.sla_deadline = Some(at(100));
    c.create(high_early_deadline);
    c.now = at(3);
    let mut same_as_3_but_later = InteractionSpec::new(id(4), Channel::Voice, "q");
    same_as_3_but_later.priority = Some(5);
    same_as_3_but_later.sla_deadline = Some(at(100));
    c.create(same_as_3_but_later);
    assert_eq!(
        c.router.waiting_in_queue(&"q".into()),
        vec![id(3), id(4), id(2), id(1)]
    );
    // The agent takes them in that order.
    let mut served = Vec::new();
    c.ok(Command::Login { agent: a("solo") });
    for _ in 0..4 {
        let next = c
            .router
            .agent(&a("solo"))
            .and_then(|v| v.work.first().copied())
            .expect("offered");
        served.push(next);
        c.accept(next.0 .0);
        c.complete(next.0 .0);
    }
    assert_eq!(served, vec![id(3), id(4), id(2), id(1)]);
}

#[test]
fn an_old_email_overtakes_a_fresh_call_only_when_its_deadline_is_nearer() {
    let mut c = Center::new();
    let mut q = plain_queue("q");
    q.sla_target_secs.voice = 180;
    q.sla_target_secs.email = 3600;
    c.queue(q);
    c.ok(Command::UpsertAgent {
        config: AgentConfig::new("x"),
    });
    c.create(InteractionSpec::new(id(1), Channel::Email, "q")); // deadline t0+3600
    c.now = at(3500);
    c.call(2, "q"); // deadline t0+3680: the email's is nearer
    assert_eq!(c.router.waiting_in_queue(&"q".into()), vec![id(1), id(2)]);
    c.now = at(3000);
    let mut c2 = Center::new();
    c2.queue(c.router.queue(&"q".into()).unwrap().config);
    c2.create(InteractionSpec::new(id(1), Channel::Email, "q"));
    c2.now = at(1000);
    c2.call(2, "q"); // deadline t0+1180, nearer than the email's
    assert_eq!(c2.router.waiting_in_queue(&"q".into()), vec![id(2), id(1)]);
}

#[test]
fn most_competent_picks_the_highest_sum_of_levels_on_required_skills() {
    let mut c = Center::new();
    c.queue(
        plain_queue("tax")
            .requiring("tax", 2)
            .requiring("lang:fr", 1),
    );
    c.agent(
        AgentConfig::new("junior")
            .with_skill("tax", 2)
            .with_skill("lang:fr", 5),
    );
    c.agent(
        AgentConfig::new("expert")
            .with_skill("tax", 5)
            .with_skill("lang:fr", 4),
    );
    c.agent(
        AgentConfig::new("unqualified")
            .with_skill("tax", 1)
            .with_skill("lang:fr", 5),
    );
    let events = c.call(1, "tax");
    assert_eq!(offered_to(&events), vec![(id(1), "expert".to_string())]);
    let e = c.router.explain(&id(1)).unwrap();
    let d = e.interaction.decision.unwrap();
    assert_eq!(
        d.rule,
        Rule::Strategy {
            strategy: Strategy::MostCompetent
        }
    );
    assert_eq!(d.score, 9);
    assert_eq!(d.candidates, 2, "junior and expert were free and eligible");
    assert_eq!(d.runner_up.unwrap().agent, a("junior"));
}

#[test]
fn most_competent_ties_are_broken_by_longest_idle_then_by_id() {
    let mut c = Center::new();
    c.queue(plain_queue("q").requiring("s", 1));
    c.agent(AgentConfig::new("b").with_skill("s", 3));
    c.now = at(10);
    c.agent(AgentConfig::new("a").with_skill("s", 3));
    // b has been idle longer.
    assert_eq!(offered_to(&c.call(1, "q"))[0].1, "b");
    // Same idle time: by id.
    let mut c = Center::new();
    c.queue(plain_queue("q").requiring("s", 1));
    c.agent(AgentConfig::new("b").with_skill("s", 3));
    c.agent(AgentConfig::new("a").with_skill("s", 3));
    assert_eq!(offered_to(&c.call(1, "q"))[0].1, "a");
}

#[test]
fn longest_idle_strategy_ignores_levels() {
    let mut c = Center::new();
    c.queue(
        plain_queue("q")
            .requiring("s", 1)
            .with_strategy(Strategy::LongestIdle),
    );
    c.agent(AgentConfig::new("novice").with_skill("s", 1));
    c.now = at(5);
    c.agent(AgentConfig::new("expert").with_skill("s", 5));
    assert_eq!(offered_to(&c.call(1, "q"))[0].1, "novice");
}

#[test]
fn least_occupied_strategy_prefers_the_agent_with_the_most_room() {
    let mut c = Center::new();
    c.queue(plain_queue("chat").with_strategy(Strategy::LeastOccupied));
    let cap = Capacity {
        voice: 0,
        email: 0,
        sms: 0,
        chat: 3,
    };
    c.agent(AgentConfig::new("a").with_capacity(cap));
    c.agent(AgentConfig::new("b").with_capacity(cap));
    let mut got = Vec::new();
    for n in 1..=4 {
        let events = c.create(InteractionSpec::new(id(n), Channel::Chat, "chat"));
        got.push(offered_to(&events)[0].1.clone());
    }
    assert_eq!(got, vec!["a", "b", "a", "b"]);
}

#[test]
fn round_robin_strategy_rotates_through_agents() {
    let mut c = Center::new();
    c.queue(plain_queue("q").with_strategy(Strategy::RoundRobin));
    let cap = Capacity {
        voice: 0,
        email: 0,
        sms: 0,
        chat: 10,
    };
    for name in ["x", "y", "z"] {
        c.agent(AgentConfig::new(name).with_capacity(cap));
    }
    let got: Vec<String> = (1..=6)
        .map(|n| {
            offered_to(&c.create(InteractionSpec::new(id(n), Channel::Chat, "q")))[0]
                .1
                .clone()
        })
        .collect();
    assert_eq!(got, vec!["x", "y", "z", "x", "y", "z"]);
}

#[test]
fn preferred_skills_raise_competence() {
    let mut c = Center::new();
    c.queue(plain_queue("q").requiring("benefits", 1));
    c.agent(AgentConfig::new("a").with_skill("benefits", 4));
    c.agent(
        AgentConfig::new("b")
            .with_skill("benefits", 3)
            .with_skill("housing", 3),
    );
    let mut spec = InteractionSpec::new(id(1), Channel::Voice, "q");
    spec.preferred = vec![Skill::new("housing")];
    assert_eq!(offered_to(&c.create(spec))[0].1, "b");
}

#[test]
fn interaction_requirements_add_to_the_queue_requirements() {
    let mut c = Center::new();
    c.queue(plain_queue("q").requiring("benefits", 1));
    c.agent(
        AgentConfig::new("fr")
            .with_skill("benefits", 5)
            .with_skill("lang:fr", 5),
    );
    c.agent(
        AgentConfig::new("en")
            .with_skill("benefits", 2)
            .with_skill("lang:en", 3),
    );
    let mut spec = InteractionSpec::new(id(1), Channel::Voice, "q");
    spec.requirements = vec![Requirement::new("lang:en", 2)];
    assert_eq!(offered_to(&c.create(spec))[0].1, "en");
}

#[test]
fn last_agent_gets_a_bonus_for_a_returning_contact() {
    let mut c = Center::new();
    c.queue(plain_queue("q").requiring("s", 1));
    c.agent(AgentConfig::new("best").with_skill("s", 5));
    c.agent(AgentConfig::new("usual").with_skill("s", 3));
    // First contact: best is busy, so usual serves them and becomes their last agent.
    c.ok(Command::SetState {
        agent: a("best"),
        state: RequestedState::Paused {
            reason: "meeting".into(),
        },
    });
    let mut spec = InteractionSpec::new(id(1), Channel::Voice, "q");
    spec.contact = Some(ContactId::new("+33612345678"));
    c.create(spec.clone());
    c.accept(1);
    c.complete(1);
    c.ok(Command::SetState {
        agent: a("best"),
        state: RequestedState::Available,
    });
    // Returning: usual scores 3 + bonus 3 = 6 > 5.
    spec.id = id(2);
    let events = c.create(spec);
    assert_eq!(offered_to(&events)[0].1, "usual");
    let d = c.router.interaction(&id(2)).unwrap().decision.unwrap();
    assert_eq!(
        d.rule,
        Rule::LastAgent {
            strategy: Strategy::MostCompetent
        }
    );
    assert_eq!(d.runner_up.unwrap().agent, a("best"));
}

#[test]
fn last_agent_preference_never_makes_a_contact_wait() {
    let mut c = Center::new();
    c.queue(plain_queue("q"));
    c.agent(AgentConfig::new("usual"));
    let mut spec = InteractionSpec::new(id(1), Channel::Voice, "q");
    spec.contact = Some(ContactId::new("c"));
    c.create(spec.clone());
    c.accept(1);
    c.agent(AgentConfig::new("other"));
    // usual is busy with the first call: the second goes to other at once.
    spec.id = id(2);
    assert_eq!(offered_to(&c.create(spec))[0].1, "other");
}

#[test]
fn an_agent_who_frees_capacity_takes_the_first_waiting_interaction_across_its_queues() {
    let mut c = Center::new();
    c.queue(plain_queue("tax").requiring("tax", 1));
    c.queue(plain_queue("benefits").requiring("benefits", 1));
    c.agent(
        AgentConfig::new("both")
            .with_skill("tax", 1)
            .with_skill("benefits", 1)
            .with_capacity(voice_only()),
    );
    c.call(1, "tax");
    c.accept(1);
    c.now = at(1);
    c.call(2, "tax");
    c.now = at(2);
    let mut urgent = InteractionSpec::new(id(3), Channel::Voice, "benefits");
    urgent.priority = Some(2);
    c.create(urgent);
    c.now = at(3);
    let events = c.complete(1);
    let offers = offered_to(&events);
    assert_eq!(offers, vec![(id(3), "both".to_string())]);
    let d = c.router.interaction(&id(3)).unwrap().decision.unwrap();
    assert_eq!(d.rule, Rule::NextInLine);
    assert_eq!(d.candidates, 2, "one head per queue compared");
}

#[test]
fn per_channel_capacity_and_voice_exclusivity() {
    let mut c = Center::new();
    c.queue(plain_queue("q"));
    c.agent(AgentConfig::new("x").with_capacity(Capacity {
        voice: 1,
        email: 0,
        sms: 0,
        chat: 2,
    }));
    c.create(InteractionSpec::new(id(1), Channel::Chat, "q"));
    c.create(InteractionSpec::new(id(2), Channel::Chat, "q"));
    let third = c.create(InteractionSpec::new(id(3), Channel::Chat, "q"));
    assert!(offered_to(&third).is_empty(), "chat capacity is 2");
    // Voice is exclusive of the rest: a call waits while chats are open.
    assert!(offered_to(&c.call(4, "q")).is_empty());
    // Without exclusivity it would be offered at once.
    let mut c = Center::new();
    c.queue(plain_queue("q"));
    let mut config = AgentConfig::new("x").with_capacity(Capacity {
        voice: 1,
        email: 0,
        sms: 0,
        chat: 2,
    });
    config.voice_exclusive = false;
    c.agent(config);
    c.create(InteractionSpec::new(id(1), Channel::Chat, "q"));
    assert_eq!(offered_to(&c.call(4, "q")).len(), 1);
}

#[test]
fn a_declined_offer_goes_back_to_its_original_place() {
    let mut c = Center::new();
    c.queue(plain_queue("q"));
    c.agent(AgentConfig::new("x"));
    c.call(1, "q");
    c.now = at(1);
    c.call(2, "q"); // waits behind the first
    c.agent(AgentConfig::new("y").with_capacity(Capacity {
        voice: 1,
        email: 0,
        sms: 0,
        chat: 0,
    }));
    // y took call 2. x declines call 1: it is back first in line, and not offered to x again.
    assert_eq!(c.holder(2), Some(a("y")));
    let events = c.ok(Command::Decline {
        interaction: id(1),
        agent: a("x"),
    });
    assert!(events.iter().any(|e| matches!(
        e.kind,
        EventKind::OfferDeclined {
            cause: DeclineCause::Declined,
            ..
        }
    )));
    assert_eq!(c.phase(1), Some(InteractionPhase::Waiting));
    let view = c.router.interaction(&id(1)).unwrap();
    assert_eq!(view.enqueued_at, T0, "keeps its place in line");
    assert_eq!(view.declined_by, vec![a("x")]);
    // When y frees capacity it gets call 1 (first in line).
    c.accept(2);
    c.ok(Command::Complete {
        interaction: id(2),
        agent: None,
        wrap_up_code: None,
        notes: None,
    });
    assert_eq!(c.holder(1), Some(a("y")));
}

#[test]
fn a_timed_out_offer_returns_to_the_queue_and_the_agent_is_paused_after_max_misses() {
    let mut c = Center::new();
    let mut q = plain_queue("q");
    q.offer_timeout_secs = 10;
    q.max_misses = 2;
    c.queue(q);
    c.agent(AgentConfig::new("sleepy"));
    c.call(1, "q");
    assert_eq!(c.router.next_deadline(), Some(at(10)));
    let events = c.advance(10);
    assert!(matches!(
        events[0].kind,
        EventKind::OfferDeclined {
            cause: DeclineCause::TimedOut,
            ..
        }
    ));
    assert_eq!(c.phase(1), Some(InteractionPhase::Waiting));
    assert_eq!(c.router.agent(&a("sleepy")).unwrap().misses, 1);
    // A second interaction is offered to sleepy (the first was missed by it) and missed too.
    c.call(2, "q");
    let events = c.advance(10);
    assert!(events.iter().any(|e| matches!(&e.kind,
        EventKind::AgentStateChanged { state: AgentState::Paused { reason }, .. } if reason == MISSED_OFFERS)));
    assert_eq!(c.router.waiting_count(), 2);
}

#[test]
fn wrap_up_follows_completion_then_the_agent_is_available_again() {
    let mut c = Center::new();
    let mut q = plain_queue("q");
    q.wrap_up_secs = 30;
    c.queue(q);
    c.agent(AgentConfig::new("x"));
    c.call(1, "q");
    c.accept(1);
    c.call(2, "q");
    let events = c.complete(1);
    assert!(events.iter().any(|e| matches!(
        e.kind,
        EventKind::AgentStateChanged {
            state: AgentState::WrapUp { .. },
            ..
        }
    )));
    assert!(matches!(c.phase(1), Some(InteractionPhase::WrapUp { .. })));
    assert_eq!(c.phase(2), Some(InteractionPhase::Waiting));
    assert!(c.advance(29).is_empty());
    let events = c.advance(1);
    assert!(events
        .iter()
        .any(|e| matches!(e.kind, EventKind::WrapUpEnded { .. })));
    assert_eq!(
        c.router.agent(&a("x")).unwrap().state,
        AgentState::Available
    );
    assert_eq!(c.holder(2), Some(a("x")));
    assert!(c.phase(1).is_none(), "ended after wrap-up");
}

#[test]
fn setting_available_during_wrap_up_ends_it_early() {
    let mut c = Center::new();
    let mut q = plain_queue("q");
    q.wrap_up_secs = 60;
    c.queue(q);
    c.agent(AgentConfig::new("x"));
    c.call(1, "q");
    c.accept(1);
    c.complete(1);
    c.call(2, "q");
    c.ok(Command::SetState {
        agent: a("x"),
        state: RequestedState::Available,
    });
    assert_eq!(c.holder(2), Some(a("x")));
}

fn escalating_queue() -> QueueConfig {
    let mut q = plain_queue("housing").requiring("housing", 4);
    q.escalation = vec![
        EscalationStep {
            after_secs: 30,
            action: StepAction::LowerLevel {
                skill: "housing".into(),
                to: 2,
            },
        },
        EscalationStep {
            after_secs: 60,
            action: StepAction::DropSkill {
                skill: "housing".into(),
            },
        },
    ];
    q
}

#[test]
fn escalation_lowers_the_minimum_level_after_the_configured_wait() {
    let mut c = Center::new();
    c.queue(escalating_queue());
    c.agent(AgentConfig::new("mid").with_skill("housing", 2));
    c.call(1, "housing");
    assert_eq!(c.phase(1), Some(InteractionPhase::Waiting));
    assert_eq!(c.router.next_deadline(), Some(at(30)));
    let events = c.advance(30);
    assert!(matches!(
        events[0].kind,
        EventKind::InteractionEscalated { step: 1, .. }
    ));
    assert_eq!(c.holder(1), Some(a("mid")));
    assert_eq!(
        c.router.interaction(&id(1)).unwrap().decision.unwrap().step,
        1
    );
}

#[test]
fn escalation_drops_a_requirement() {
    let mut c = Center::new();
    c.queue(escalating_queue());
    c.agent(AgentConfig::new("generalist"));
    c.call(1, "housing");
    c.advance(30);
    assert_eq!(c.phase(1), Some(InteractionPhase::Waiting));
    c.advance(30);
    assert_eq!(c.holder(1), Some(a("generalist")));
}

#[test]
fn escalation_widens_to_another_queues_agents() {
    let mut c = Center::new();
    c.queue(plain_queue("general").requiring("general", 1));
    let mut q = plain_queue("tax").requiring("tax", 1);
    q.escalation = vec![EscalationStep {
        after_secs: 45,
        action: StepAction::WidenTo {
            queue: "general".into(),
        },
    }];
    c.queue(q);
    c.agent(AgentConfig::new("g").with_skill("general", 3));
    c.call(1, "tax");
    assert_eq!(c.advance(44), vec![]);
    c.advance(1);
    assert_eq!(c.holder(1), Some(a("g")));
    let explain = c.router.explain(&id(1)).unwrap();
    assert_eq!(explain.requirements.len(), 2, "tax or general");
}

#[test]
fn overflow_to_another_queue_keeps_the_place_in_line() {
    let mut c = Center::new();
    c.queue(plain_queue("backup").requiring("backup", 1));
    let mut q = plain_queue("main").requiring("main", 1);
    q.overflow = Some(Overflow {
        after_secs: 120,
        action: OverflowAction::Queue {
            queue: "backup".into(),
        },
    });
    c.queue(q);
    c.call(1, "main");
    c.now = at(100);
    c.call(2, "backup");
    let events = c.advance(20);
    let names: Vec<&str> = events.iter().map(|e| e.kind.name()).collect();
    assert_eq!(names, vec!["interaction_overflowed", "interaction_moved"]);
    // Call 1 has waited longer: first in the backup queue's line.
    assert_eq!(
        c.router.waiting_in_queue(&"backup".into()),
        vec![id(1), id(2)]
    );
    c.agent(AgentConfig::new("b").with_skill("backup", 1));
    assert_eq!(c.holder(1), Some(a("b")));
}

#[test]
fn overflow_to_voicemail_or_callback_is_an_event_for_the_channel() {
    let mut c = Center::new();
    let mut q = plain_queue("q");
    q.overflow = Some(Overflow {
        after_secs: 300,
        action: OverflowAction::Voicemail,
    });
    c.queue(q);
    c.call(1, "q");
    let events = c.advance(300);
    assert!(matches!(
        &events[0].kind,
        EventKind::InteractionOverflowed {
            action: OverflowAction::Voicemail,
            ..
        }
    ));
    assert_eq!(
        c.phase(1),
        Some(InteractionPhase::Waiting),
        "the channel decides"
    );
    assert_eq!(c.router.next_deadline(), None, "fires once");
}

#[test]
fn a_skill_change_takes_effect_at_once_and_reevaluates_waiting_interactions() {
    let mut c = Center::new();
    c.queue(plain_queue("q").requiring("lang:de", 3));
    c.agent(AgentConfig::new("x").with_skill("lang:de", 2));
    c.call(1, "q");
    assert_eq!(c.phase(1), Some(InteractionPhase::Waiting));
    let events = c.ok(Command::SetAgentSkills {
        agent: a("x"),
        skills: [(Skill::new("lang:de"), 3)].into_iter().collect(),
    });
    assert_eq!(offered_to(&events), vec![(id(1), "x".to_string())]);
}

#[test]
fn a_queue_requirement_change_reevaluates_waiting_interactions() {
    let mut c = Center::new();
    c.queue(plain_queue("q").requiring("s", 4));
    c.agent(AgentConfig::new("x").with_skill("s", 2));
    c.call(1, "q");
    assert_eq!(c.phase(1), Some(InteractionPhase::Waiting));
    let events = c.ok(Command::UpsertQueue {
        config: plain_queue("q").requiring("s", 2),
    });
    assert_eq!(offered_to(&events), vec![(id(1), "x".to_string())]);
}

#[test]
fn creation_is_idempotent_on_the_external_reference() {
    let mut c = Center::new();
    c.queue(plain_queue("q"));
    let mut spec = InteractionSpec::new(id(1), Channel::Voice, "q");
    spec.external_ref = Some("CA123".into());
    assert_eq!(c.create(spec.clone()).len(), 1);
    spec.id = id(2); // a gateway retry with a fresh id
    assert!(c.create(spec).is_empty());
    assert_eq!(c.router.find_by_external_ref("CA123"), Some(id(1)));
    assert_eq!(c.router.open_count(), 1);
}

#[test]
fn transfer_to_a_queue_and_to_an_agent() {
    let mut c = Center::new();
    c.queue(plain_queue("front"));
    c.queue(plain_queue("experts").requiring("expert", 1));
    c.agent(AgentConfig::new("f"));
    c.call(1, "front");
    c.accept(1);
    c.now = at(60);
    c.ok(Command::Transfer {
        interaction: id(1),
        to: TransferTarget::Queue {
            queue: "experts".into(),
        },
        by: Some(a("f")),
        note: None,
    });
    let view = c.router.interaction(&id(1)).unwrap();
    assert_eq!(view.queue.as_str(), "experts");
    assert_eq!(view.phase, InteractionPhase::Waiting);
    assert_eq!(
        view.enqueued_at,
        at(60),
        "a handled interaction starts a new wait"
    );
    c.agent(AgentConfig::new("e").with_skill("expert", 2));
    assert_eq!(c.holder(1), Some(a("e")));
    c.accept(1);
    // Now to one agent, who is busy: it waits for that agent only.
    c.agent(AgentConfig::new("other").with_skill("expert", 5));
    c.ok(Command::Transfer {
        interaction: id(1),
        to: TransferTarget::Agent { agent: a("f") },
        by: Some(a("e")),
        note: None,
    });
    assert_eq!(c.holder(1), Some(a("f")));
    let d = c.router.interaction(&id(1)).unwrap().decision.unwrap();
    assert_eq!(d.rule, Rule::Targeted);
}

#[test]
fn a_priority_change_moves_a_waiting_interaction_in_line_at_once() {
    let mut c = Center::new();
    c.queue(plain_queue("q"));
    c.call(1, "q");
    c.call(2, "q");
    c.ok(Command::ChangePriority {
        interaction: id(2),
        priority: 9,
    });
    assert_eq!(c.router.waiting_in_queue(&"q".into()), vec![id(2), id(1)]);
}

#[test]
fn logout_returns_pending_offers_to_their_queue() {
    let mut c = Center::new();
    c.queue(plain_queue("q"));
    c.agent(AgentConfig::new("x"));
    c.call(1, "q");
    assert_eq!(c.holder(1), Some(a("x")));
    c.ok(Command::Logout { agent: a("x") });
    assert_eq!(c.phase(1), Some(InteractionPhase::Waiting));
    assert!(c.router.interaction(&id(1)).unwrap().declined_by.is_empty());
    assert_eq!(c.router.agent(&a("x")).unwrap().state, AgentState::Offline);
}

#[test]
fn cancel_and_abandon_end_an_interaction_and_free_the_agent() {
    let mut c = Center::new();
    c.queue(plain_queue("q"));
    c.agent(AgentConfig::new("x"));
    c.call(1, "q");
    c.call(2, "q");
    c.ok(Command::Abandon { interaction: id(1) });
    assert!(c.phase(1).is_none());
    assert_eq!(
        c.holder(2),
        Some(a("x")),
        "freed capacity goes to the next in line"
    );
    c.ok(Command::Cancel { interaction: id(2) });
    assert_eq!(c.router.open_count(), 0);
}

#[test]
fn bad_commands_return_a_typed_error_and_change_nothing() {
    let mut c = Center::new();
    c.queue(plain_queue("q"));
    c.agent(AgentConfig::new("x"));
    c.agent(AgentConfig::new("y"));
    c.call(1, "q");
    let holder = c.holder(1).unwrap();
    let other = if holder == a("x") { a("y") } else { a("x") };
    assert!(matches!(
        c.err(Command::Login { agent: a("ghost") }),
        RouteError::UnknownAgent(_)
    ));
    assert!(matches!(
        c.err(Command::Accept {
            interaction: id(1),
            agent: other.clone()
        }),
        RouteError::NotOfferedTo { .. }
    ));
    c.accept(1);
    c.complete(1);
    assert!(matches!(
        c.err(Command::Complete {
            interaction: id(1),
            agent: Some(holder.clone()),
            wrap_up_code: None,
            notes: None
        }),
        RouteError::UnknownInteraction(_)
    ));
    c.create(InteractionSpec::new(id(2), Channel::Chat, "q"));
    let chat_holder = c.holder(2).unwrap();
    assert!(matches!(
        c.err(Command::SetCapacity {
            agent: chat_holder,
            capacity: voice_only()
        }),
        RouteError::CapacityBelowLoad { .. }
    ));
    assert!(matches!(
        c.err(Command::UpsertAgent {
            config: AgentConfig::new("z").with_skill("s", 6)
        }),
        RouteError::InvalidLevel { level: 6, .. }
    ));
    assert!(matches!(
        c.err(Command::UpsertQueue {
            config: plain_queue("bad").requiring("s", 0)
        }),
        RouteError::InvalidLevel { level: 0, .. }
    ));
    assert!(matches!(
        c.err(Command::CreateInteraction {
            spec: InteractionSpec::new(id(3), Channel::Voice, "nowhere")
        }),
        RouteError::UnknownQueue(_)
    ));
    assert!(matches!(
        c.err(Command::CreateInteraction {
            spec: InteractionSpec::new(id(2), Channel::Voice, "q")
        }),
        RouteError::DuplicateInteraction(_)
    ));
    c.ok(Command::Logout { agent: a("x") });
    assert!(matches!(
        c.err(Command::SetState {
            agent: a("x"),
            state: RequestedState::Available
        }),
        RouteError::AgentOffline(_)
    ));
    assert!(matches!(
        c.err(Command::RemoveQueue { queue: "q".into() }),
        RouteError::QueueNotEmpty { .. }
    ));
    let mut widening = plain_queue("w");
    widening.escalation = vec![EscalationStep {
        after_secs: 1,
        action: StepAction::WidenTo {
            queue: "missing".into(),
        },
    }];
    assert!(matches!(
        c.err(Command::UpsertQueue { config: widening }),
        RouteError::InvalidQueue { .. }
    ));
}

#[test]
fn explain_says_why_an_interaction_waits() {
    let mut c = Center::new();
    c.queue(plain_queue("q").requiring("rare", 5));
    c.agent(AgentConfig::new("x").with_skill("rare", 4));
    c.call(1, "q");
    let e = c.router.explain(&id(1)).unwrap();
    assert_eq!(e.eligible_agents, 0);
    assert_eq!(e.ahead_in_class, Some(0));
    assert!(
        e.summary.contains("no agent has the required skills"),
        "{}",
        e.summary
    );
    assert_eq!(e.requirements, vec![vec![Requirement::new("rare", 5)]]);
}

#[test]
fn a_transferring_agent_takes_the_next_in_line_and_is_not_offered_the_transfer_back() {
    let mut c = Center::new();
    c.queue(plain_queue("q"));
    c.agent(AgentConfig::new("x").with_capacity(voice_only()));
    c.call(1, "q");
    c.accept(1);
    c.now = at(1);
    c.call(2, "q"); // waits for x
    c.now = at(2);
    let events = c.ok(Command::Transfer {
        interaction: id(1),
        to: TransferTarget::Queue { queue: "q".into() },
        by: Some(a("x")),
        note: None,
    });
    // x is freed and takes call 2 (first in line); call 1 waits, not offered back to x.
    assert_eq!(offered_to(&events), vec![(id(2), "x".to_string())]);
    assert_eq!(c.phase(1), Some(InteractionPhase::Waiting));
    assert_eq!(
        c.router.interaction(&id(1)).unwrap().declined_by,
        vec![a("x")]
    );
    // Transferring to the agent who already has it is refused.
    c.accept(2);
    assert!(matches!(
        c.err(Command::Transfer {
            interaction: id(2),
            to: TransferTarget::Agent { agent: a("x") },
            by: Some(a("x")),
            note: None,
        }),
        RouteError::InvalidPhase { .. }
    ));
}

#[test]
fn a_delay_in_working_days_ends_at_midnight_of_the_last_working_day() {
    use guichet::core::WorkCalendar;
    let mut c = Center::new();
    c.router.set_calendar(WorkCalendar {
        time_zone: chrono_tz::Europe::Paris,
        ..WorkCalendar::default()
    });
    let mut queue = QueueConfig::new("letters");
    queue.sla_working_days.email = 5;
    c.ok(Command::UpsertQueue { config: queue });
    // Monday 7 December 2026, 10:00 in Paris (09:00 UTC).
    let monday = Timestamp(1_796_634_000_000);
    c.now = monday;
    c.ok(Command::CreateInteraction {
        spec: InteractionSpec::new(id(1), Channel::Email, "letters"),
    });
    c.ok(Command::CreateInteraction {
        spec: InteractionSpec::new(id(2), Channel::Chat, "letters"),
    });
    let email = c.router.interaction(&id(1)).expect("email");
    // Due by the end of Monday 14th in Paris: 23:00 UTC that day.
    assert_eq!(email.sla_deadline, Timestamp(1_797_289_200_000));
    // Other channels keep their delay in seconds (chat: 120 s).
    let chat = c.router.interaction(&id(2)).expect("chat");
    assert_eq!(chat.sla_deadline, monday.plus_secs(120));

    // More than a year of working days is refused.
    let mut too_long = QueueConfig::new("letters");
    too_long.sla_working_days.email = 400;
    let e = c.err(Command::UpsertQueue { config: too_long });
    assert!(e.to_string().contains("sla_working_days"), "{e}");
}

/// The time an agent's state last changed: set by the event that changed it (not by one that
/// repeats it), the same after replay and after a snapshot, unknown from an older snapshot.
#[test]
fn an_agents_state_since_is_the_time_of_its_last_change() {
    use guichet::core::{AgentConfig, Command, RequestedState, Router, Snapshot, Timestamp};
    let t0 = Timestamp::from_secs(1_700_000_000);
    let mut router = Router::new();
    let mut journal = Vec::new();
    let mut run = |router: &mut Router, at: Timestamp, command: Command| {
        journal.extend(router.handle(at, command).expect("accepted"));
    };
    run(
        &mut router,
        t0,
        Command::UpsertAgent {
            config: AgentConfig::new("ana"),
        },
    );
    let since = |r: &Router| r.agent(&"ana".into()).expect("ana").state_since;
    assert_eq!(since(&router), Some(t0), "created offline at t0");
    run(
        &mut router,
        t0.plus_secs(5),
        Command::Login {
            agent: "ana".into(),
        },
    );
    assert_eq!(since(&router), Some(t0.plus_secs(5)));
    run(
        &mut router,
        t0.plus_secs(9),
        Command::SetState {
            agent: "ana".into(),
            state: RequestedState::Available,
        },
    );
    assert_eq!(
        since(&router),
        Some(t0.plus_secs(5)),
        "no change, no new time"
    );
    run(
        &mut router,
        t0.plus_secs(60),
        Command::SetState {
            agent: "ana".into(),
            state: RequestedState::Paused {
                reason: "lunch".into(),
            },
        },
    );
    assert_eq!(since(&router), Some(t0.plus_secs(60)));

    let mut replayed = Router::new();
    for event in &journal {
        replayed.apply(event).expect("replays");
    }
    assert_eq!(since(&replayed), Some(t0.plus_secs(60)));
    let restored = Router::restore(&router.snapshot()).expect("restores");
    assert_eq!(since(&restored), Some(t0.plus_secs(60)));

    // A snapshot written before the field existed restores with the time unknown.
    let mut old = serde_json::to_value(router.snapshot()).expect("json");
    for agent in old["agents"].as_array_mut().expect("agents") {
        agent.as_object_mut().expect("agent").remove("state_since");
    }
    let old: Snapshot = serde_json::from_value(old).expect("older snapshot");
    assert_eq!(since(&Router::restore(&old).expect("restores")), None);
}
