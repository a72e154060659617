//! Property tests of the routing core over random command sequences.
//!
//! After every command or tick:
//! - every invariant holds (`Router::check_invariants`: no agent above capacity, each interaction
//!   in exactly one of waiting / offered / assigned / wrap-up, indexes consistent, no free eligible
//!   agent idle while work it has not declined waits);
//! - a refused command changed nothing;
//! - every offer respects the line (checked on a shadow router fed the events one by one);
//! - no interaction is offered or assigned to two agents, none is lost;
//! - declines and misses lapse after the queue's `reoffer_after_secs` (1 to 17 s here) and the
//!   interaction is offered again, by the router's own timer (`Advance`).
//!
//! At the end, the shadow router (pure replay of the events) equals the live one, and a router
//! restored from a snapshot mid-way takes exactly the same decisions as the live one afterwards.

use std::collections::{BTreeMap, BTreeSet};

use guichet::core::{
    AgentConfig, AgentId, Capacity, Channel, Command, ContactId, EscalationStep, Event, EventKind,
    InteractionId, InteractionPhase, InteractionSpec, Overflow, OverflowAction, QueueConfig,
    QueueId, RequestedState, Requirement, Router, Skill, StepAction, Strategy as Routing,
    Timestamp, TransferTarget,
};
use proptest::prelude::*;

const AGENTS: u8 = 5;
const QUEUES: u8 = 3;
const SKILLS: u8 = 4;

fn agent(i: u8) -> AgentId {
    AgentId::new(format!("a{}", i % AGENTS))
}

fn queue(i: u8) -> QueueId {
    QueueId::new(format!("q{}", i % QUEUES))
}

fn skill(i: u8) -> Skill {
    Skill::new(format!("s{}", i % SKILLS))
}

fn channel(i: u8) -> Channel {
    Channel::ALL[(i % 4) as usize]
}

/// One of a few configurations per queue, so that live queue changes are exercised.
fn queue_config(q: u8, variant: u8) -> QueueConfig {
    let (q, variant) = (q % QUEUES, variant % 16);
    let strategies = [
        Routing::MostCompetent,
        Routing::LongestIdle,
        Routing::LeastOccupied,
        Routing::RoundRobin,
    ];
    let mut config = QueueConfig::new(queue(q));
    config.strategy = strategies[((q + variant) % 4) as usize];
    config.requirements = vec![Requirement::new(skill(q), 1 + variant % 3)];
    config.offer_timeout_secs = 5 + u64::from(variant % 3) * 5;
    config.max_misses = u32::from(variant % 3);
    // Declines and misses lapse after 1 to 17 s: re-offers happen within the sequences.
    config.reoffer_after_secs = 1 + u64::from(variant % 5) * 4;
    config.max_declines = u32::from(variant % 4 == 3) * 2;
    config.wrap_up_secs = u64::from(variant % 2) * 7;
    config.escalation = vec![
        EscalationStep {
            after_secs: 10,
            action: StepAction::LowerLevel {
                skill: skill(q),
                to: 1,
            },
        },
        EscalationStep {
            after_secs: 20,
            action: StepAction::DropSkill { skill: skill(q) },
        },
    ];
    if variant % 2 == 1 {
        config.escalation.push(EscalationStep {
            after_secs: 25,
            action: StepAction::WidenTo {
                queue: queue(q + 1),
            },
        });
    }
    config.overflow = match variant % 4 {
        1 => Some(Overflow {
            after_secs: 40,
            action: OverflowAction::Queue {
                queue: queue(q + 2),
            },
        }),
        2 => Some(Overflow {
            after_secs: 30,
            action: OverflowAction::Callback,
        }),
        _ => None,
    };
    config
}

#[derive(Debug, Clone)]
enum Op {
    Login(u8),
    Logout(u8),
    Pause(u8),
    Available(u8),
    Create {
        queue: u8,
        channel: u8,
        priority: u8,
        requirement: Option<(u8, u8)>,
        contact: Option<u8>,
        external: Option<u8>,
    },
    Cancel(u8),
    Abandon(u8),
    AcceptOffered(u8),
    DeclineOffered(u8),
    CompleteAssigned(u8, bool),
    RandomAccept(u8, u8),
    RandomComplete(u8, u8),
    TransferToQueue(u8, u8),
    TransferToAgent(u8, u8),
    Priority(u8, u8),
    SetSkills(u8, Vec<(u8, u8)>),
    SetCapacity(u8, [u8; 4]),
    UpsertQueue(u8, u8),
    RemoveAgent(u8),
    AddAgent(u8),
    Advance(u16),
    /// An agent holding an interaction consults a named colleague.
    ConsultAgent(u8, u8),
    /// An agent holding an interaction consults a queue (its first free agent).
    ConsultQueue(u8, u8),
    /// The consulted agent accepts (true) or declines (false) a pending consultation.
    AnswerConsult(u8, bool),
    /// The holder completes (true) or cancels (false) a consultation.
    FinishConsult(u8, bool),
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    prop_oneof![
        3 => any::<u8>().prop_map(Op::Login),
        1 => any::<u8>().prop_map(Op::Logout),
        1 => any::<u8>().prop_map(Op::Pause),
        2 => any::<u8>().prop_map(Op::Available),
        8 => (
            any::<u8>(),
            any::<u8>(),
            0u8..4,
            proptest::option::of((any::<u8>(), 1u8..6)),
            proptest::option::of(0u8..4),
            proptest::option::of(0u8..6)
        )
            .prop_map(|(queue, channel, priority, requirement, contact, external)| Op::Create {
                queue,
                channel,
                priority,
                requirement,
                contact,
                external
            }),
        1 => any::<u8>().prop_map(Op::Cancel),
        1 => any::<u8>().prop_map(Op::Abandon),
        5 => any::<u8>().prop_map(Op::AcceptOffered),
        3 => any::<u8>().prop_map(Op::DeclineOffered),
        4 => (any::<u8>(), any::<bool>()).prop_map(|(i, by)| Op::CompleteAssigned(i, by)),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(i, a)| Op::RandomAccept(i, a)),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(i, a)| Op::RandomComplete(i, a)),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(i, q)| Op::TransferToQueue(i, q)),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(i, a)| Op::TransferToAgent(i, a)),
        1 => (any::<u8>(), 0u8..5).prop_map(|(i, p)| Op::Priority(i, p)),
        1 => (any::<u8>(), proptest::collection::vec((any::<u8>(), 0u8..7), 0..4))
            .prop_map(|(a, s)| Op::SetSkills(a, s)),
        1 => (any::<u8>(), [0u8..4, 0u8..4, 0u8..4, 0u8..4]).prop_map(|(a, c)| Op::SetCapacity(a, c)),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(q, v)| Op::UpsertQueue(q, v)),
        1 => any::<u8>().prop_map(Op::RemoveAgent),
        1 => any::<u8>().prop_map(Op::AddAgent),
        4 => (1u16..30).prop_map(Op::Advance),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(i, a)| Op::ConsultAgent(i, a)),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(i, q)| Op::ConsultQueue(i, q)),
        2 => (any::<u8>(), any::<bool>()).prop_map(|(i, yes)| Op::AnswerConsult(i, yes)),
        2 => (any::<u8>(), any::<bool>()).prop_map(|(i, done)| Op::FinishConsult(i, done)),
    ]
}

fn agent_config(i: u8) -> AgentConfig {
    let i = i % AGENTS;
    let mut config = AgentConfig::new(agent(i));
    for s in 0..SKILLS {
        if (i + s) % 3 != 0 {
            config.skills.insert(skill(s), 1 + (i * 7 + s * 3) % 5);
        }
    }
    config.capacity = Capacity {
        voice: 1,
        email: 1 + u16::from(i % 3),
        sms: 2,
        chat: 1 + u16::from(i % 2),
    };
    config.voice_exclusive = i % 2 == 0;
    config
}

struct Harness {
    router: Router,
    shadow: Router,
    now: Timestamp,
    created: Vec<InteractionId>,
    next_id: u128,
    events: Vec<Event>,
}

impl Harness {
    fn new() -> Self {
        let mut h = Harness {
            router: Router::new(),
            shadow: Router::new(),
            now: Timestamp::from_secs(1_000_000),
            created: Vec::new(),
            next_id: 1,
            events: Vec::new(),
        };
        for q in 0..QUEUES {
            let mut bare = queue_config(q, 0);
            bare.escalation.clear();
            bare.overflow = None;
            h.must(Command::UpsertQueue { config: bare });
        }
        for q in 0..QUEUES {
            h.must(Command::UpsertQueue {
                config: queue_config(q, 0),
            });
        }
        for a in 0..AGENTS {
            h.must(Command::UpsertAgent {
                config: agent_config(a),
            });
        }
        h
    }

    fn must(&mut self, command: Command) {
        let events = self
            .router
            .handle(self.now, command)
            .expect("setup command");
        self.feed(events);
    }

    fn feed(&mut self, events: Vec<Event>) {
        for event in events {
            if let EventKind::InteractionOffered {
                interaction, agent, ..
            } = &event.kind
            {
                if let Err(e) = self.shadow.audit_offer(interaction, agent) {
                    panic!("line order broken: {e}");
                }
            }
            self.shadow
                .apply(&event)
                .expect("shadow applies every event");
            self.events.push(event);
        }
    }

    fn pick(&self, i: u8) -> Option<InteractionId> {
        if self.created.is_empty() {
            None
        } else {
            Some(self.created[i as usize % self.created.len()])
        }
    }

    fn in_phase(
        &self,
        i: u8,
        want: fn(&InteractionPhase) -> bool,
    ) -> Option<(InteractionId, AgentId)> {
        let matching: Vec<_> = self
            .router
            .interactions()
            .into_iter()
            .filter(|v| want(&v.phase))
            .collect();
        if matching.is_empty() {
            return None;
        }
        let v = &matching[i as usize % matching.len()];
        Some((v.spec.id, v.phase.agent()?.clone()))
    }

    /// An interaction in consultation matching `want`, and its consulted agent.
    fn in_consult(
        &self,
        i: u8,
        want: fn(&guichet::core::ConsultView) -> bool,
    ) -> Option<(InteractionId, AgentId)> {
        let matching: Vec<_> = self
            .router
            .interactions()
            .into_iter()
            .filter(|v| v.consult.as_ref().is_some_and(want))
            .collect();
        let v = matching.get(i as usize % matching.len().max(1))?;
        Some((v.spec.id, v.consult.as_ref()?.agent.clone()))
    }

    fn command(&mut self, op: &Op) -> Option<Command> {
        Some(match op.clone() {
            Op::Login(a) => Command::Login { agent: agent(a) },
            Op::Logout(a) => Command::Logout { agent: agent(a) },
            Op::Pause(a) => Command::SetState {
                agent: agent(a),
                state: RequestedState::Paused {
                    reason: "break".into(),
                },
            },
            Op::Available(a) => Command::SetState {
                agent: agent(a),
                state: RequestedState::Available,
            },
            Op::Create {
                queue: q,
                channel: c,
                priority,
                requirement,
                contact,
                external,
            } => {
                let id = InteractionId::from_u128(self.next_id);
                self.next_id += 1;
                self.created.push(id);
                let mut spec = InteractionSpec::new(id, channel(c), queue(q));
                spec.priority = Some(u32::from(priority));
                spec.requirements = requirement
                    .map(|(s, l)| vec![Requirement::new(skill(s), l)])
                    .unwrap_or_default();
                spec.contact = contact.map(|c| ContactId::new(format!("c{c}")));
                spec.external_ref = external.map(|e| format!("ext-{e}").into());
                if id.0 .0 % 3 == 0 {
                    spec.preferred = vec![skill(q.wrapping_add(1))];
                }
                Command::CreateInteraction { spec }
            }
            Op::Cancel(i) => Command::Cancel {
                interaction: self.pick(i)?,
            },
            Op::Abandon(i) => Command::Abandon {
                interaction: self.pick(i)?,
            },
            Op::AcceptOffered(i) => {
                let (interaction, agent) =
                    self.in_phase(i, |p| matches!(p, InteractionPhase::Offered { .. }))?;
                Command::Accept { interaction, agent }
            }
            Op::DeclineOffered(i) => {
                let (interaction, agent) =
                    self.in_phase(i, |p| matches!(p, InteractionPhase::Offered { .. }))?;
                Command::Decline { interaction, agent }
            }
            Op::CompleteAssigned(i, by) => {
                let (interaction, agent) =
                    self.in_phase(i, |p| matches!(p, InteractionPhase::Assigned { .. }))?;
                Command::Complete {
                    interaction,
                    agent: by.then_some(agent),
                    wrap_up_code: Some("done".into()),
                    notes: None,
                }
            }
            Op::RandomAccept(i, a) => Command::Accept {
                interaction: self.pick(i)?,
                agent: agent(a),
            },
            Op::RandomComplete(i, a) => Command::Complete {
                interaction: self.pick(i)?,
                agent: Some(agent(a)),
                wrap_up_code: None,
                notes: None,
            },
            Op::ConsultAgent(i, a) => {
                let (interaction, by) =
                    self.in_phase(i, |p| matches!(p, InteractionPhase::Assigned { .. }))?;
                Command::StartConsult {
                    interaction,
                    by,
                    to: TransferTarget::Agent { agent: agent(a) },
                    note: Some("please take over".into()),
                }
            }
            Op::ConsultQueue(i, q) => {
                let (interaction, by) =
                    self.in_phase(i, |p| matches!(p, InteractionPhase::Assigned { .. }))?;
                Command::StartConsult {
                    interaction,
                    by,
                    to: TransferTarget::Queue { queue: queue(q) },
                    note: None,
                }
            }
            Op::AnswerConsult(i, yes) => {
                let (interaction, consulted) = self.in_consult(i, |c| c.deadline.is_some())?;
                if yes {
                    Command::Accept {
                        interaction,
                        agent: consulted,
                    }
                } else {
                    Command::Decline {
                        interaction,
                        agent: consulted,
                    }
                }
            }
            Op::FinishConsult(i, done) => {
                let (interaction, _) = self.in_consult(i, |_| true)?;
                let by = self
                    .router
                    .interaction(&interaction)?
                    .phase
                    .agent()?
                    .clone();
                if done {
                    Command::CompleteConsult { interaction, by }
                } else {
                    Command::CancelConsult { interaction, by }
                }
            }
            Op::TransferToQueue(i, q) => Command::Transfer {
                interaction: self.pick(i)?,
                to: TransferTarget::Queue { queue: queue(q) },
                by: None,
                note: None,
            },
            Op::TransferToAgent(i, a) => Command::Transfer {
                interaction: self.pick(i)?,
                to: TransferTarget::Agent { agent: agent(a) },
                by: None,
                note: None,
            },
            Op::Priority(i, p) => Command::ChangePriority {
                interaction: self.pick(i)?,
                priority: u32::from(p),
            },
            Op::SetSkills(a, skills) => Command::SetAgentSkills {
                agent: agent(a),
                skills: skills
                    .into_iter()
                    .map(|(s, l)| (skill(s), l))
                    .collect::<BTreeMap<_, _>>(),
            },
            Op::SetCapacity(a, c) => Command::SetCapacity {
                agent: agent(a),
                capacity: Capacity {
                    voice: u16::from(c[0]),
                    email: u16::from(c[1]),
                    sms: u16::from(c[2]),
                    chat: u16::from(c[3]),
                },
            },
            Op::UpsertQueue(q, v) => Command::UpsertQueue {
                config: queue_config(q, v),
            },
            Op::RemoveAgent(a) => Command::RemoveAgent { agent: agent(a) },
            Op::AddAgent(a) => Command::UpsertAgent {
                config: agent_config(a),
            },
            Op::Advance(_) => return None,
        })
    }

    /// Runs one op; returns the events it produced.
    fn step(&mut self, op: &Op) -> Vec<Event> {
        if let Op::Advance(secs) = op {
            self.now = self.now.plus_secs(u64::from(*secs));
            let events = self.router.tick(self.now);
            self.feed(events.clone());
            return events;
        }
        let Some(command) = self.command(op) else {
            return Vec::new();
        };
        let tick = self.router.tick(self.now);
        self.feed(tick.clone());
        let before = self.router.snapshot();
        match self.router.handle(self.now, command.clone()) {
            Ok(events) => {
                self.feed(events.clone());
                [tick, events].concat()
            }
            Err(e) => {
                assert_eq!(
                    before,
                    self.router.snapshot(),
                    "refused {command:?} ({e}) changed state"
                );
                tick
            }
        }
    }
}

fn check_no_double_assignment(events: &[Event]) {
    // Each interaction is held by at most one agent at a time.
    let mut holder: BTreeMap<InteractionId, AgentId> = BTreeMap::new();
    for event in events {
        match &event.kind {
            EventKind::InteractionOffered {
                interaction, agent, ..
            } => {
                assert!(
                    holder.insert(*interaction, agent.clone()).is_none(),
                    "{interaction} offered while held"
                );
            }
            EventKind::OfferDeclined { interaction, .. }
            | EventKind::InteractionMoved { interaction, .. }
            | EventKind::WrapUpEnded { interaction, .. }
            | EventKind::InteractionEnded { interaction, .. } => {
                holder.remove(interaction);
            }
            EventKind::InteractionCompleted {
                interaction,
                wrap_up_until: None,
                ..
            } => {
                holder.remove(interaction);
            }
            EventKind::OfferAccepted { interaction, agent } => {
                assert_eq!(
                    holder.get(interaction),
                    Some(agent),
                    "accepted by another agent"
                );
            }
            _ => {}
        }
    }
}

fn check_none_lost(router: &Router, events: &[Event]) {
    // Every created interaction is open, or ended by an event that says so.
    let mut created = BTreeSet::new();
    let mut ended = BTreeSet::new();
    for event in events {
        match &event.kind {
            EventKind::InteractionCreated { spec, .. } => {
                created.insert(spec.id);
            }
            EventKind::InteractionEnded { interaction, .. }
            | EventKind::WrapUpEnded { interaction, .. }
            | EventKind::InteractionCompleted {
                interaction,
                wrap_up_until: None,
                ..
            } => {
                ended.insert(*interaction);
            }
            _ => {}
        }
    }
    let open: BTreeSet<InteractionId> = router.interactions().iter().map(|v| v.spec.id).collect();
    for id in &created {
        assert!(
            open.contains(id) != ended.contains(id),
            "{id} is neither open nor ended (or both)"
        );
    }
    assert!(open.is_subset(&created));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_every_invariant(ops in proptest::collection::vec(op(), 1..160)) {
        let mut h = Harness::new();
        let split = ops.len() / 2;
        for op in &ops[..split] {
            h.step(op);
        }
        // A router restored from a snapshot takes the same decisions from here on.
        let mut restored = Harness {
            router: Router::restore(&h.router.snapshot()).expect("restore"),
            shadow: Router::restore(&h.shadow.snapshot()).expect("restore"),
            now: h.now,
            created: h.created.clone(),
            next_id: h.next_id,
            events: Vec::new(),
        };
        prop_assert_eq!(restored.router.snapshot(), h.router.snapshot());
        prop_assert_eq!(restored.router.next_deadline(), h.router.next_deadline());
        for op in &ops[split..] {
            let live = h.step(op);
            let again = restored.step(op);
            prop_assert_eq!(live, again, "restored router diverged on {:?}", op);
        }
        // Draining every timer must not lose anything either, and lapses the declines of every
        // waiting interaction: no one stays excluded longer than `reoffer_after_secs`.
        h.step(&Op::Advance(600));
        for view in h.router.interactions() {
            let reoffer = h
                .router
                .queue(&view.queue)
                .map_or(0, |q| q.config.reoffer_after_secs);
            if view.phase == InteractionPhase::Waiting {
                for d in &view.declines {
                    prop_assert!(d.at.plus_secs(reoffer) > h.now, "not lapsed: {:?}", view);
                }
            }
        }
        check_no_double_assignment(&h.events);
        check_none_lost(&h.router, &h.events);
        // Pure replay of the events rebuilds the same router.
        prop_assert_eq!(h.shadow.snapshot(), h.router.snapshot());
        let mut replayed = Router::new();
        for event in &h.events {
            replayed.apply(event).expect("replay");
        }
        prop_assert_eq!(replayed.snapshot(), h.router.snapshot());
        prop_assert!(replayed.check_invariants().is_ok());
        prop_assert_eq!(replayed.next_deadline(), h.router.next_deadline());
    }
}
