//! Routing-core benchmarks: 50 skills, 100 queues, 1k / 10k / 100k agents, 100k waiting.
//!
//! - `create_and_match`: an interaction arrives and is offered to a free agent, then accepted and
//!   completed (the agent frees capacity and looks for waiting work across its queues). 100k
//!   interactions wait meanwhile in backlog queues that these agents do not serve.
//! - `agent_frees_capacity`: every agent is busy and 100k interactions wait for them. An agent
//!   completes; it takes the first waiting interaction it is eligible for across its ~10 queues;
//!   it accepts; a new interaction arrives and waits (steady state).
//! - `skill_change`: a busy agent's skills are replaced (its eligibility for every routing class is
//!   recomputed), with 100k waiting.
//!
//! Run with `cargo bench --bench routing`; the figures are in the README.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use guichet::core::{
    AgentConfig, AgentId, Capacity, Channel, Command, EventKind, InteractionId, InteractionSpec,
    QueueConfig, Router, Skill, Timestamp,
};

const SKILLS: usize = 50;
const QUEUES: usize = 100;
const WAITING: usize = 100_000;

/// Deterministic pseudo-random numbers (xorshift), so that runs compare.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn skill(i: usize) -> Skill {
    Skill::new(format!("skill:{i:02}"))
}

/// Queue i requires skill i % 50, at level 1 for the first 50 queues and 2 for the others.
fn queue(i: usize) -> QueueConfig {
    let mut q = QueueConfig::new(format!("queue-{i:03}"))
        .requiring(skill(i % SKILLS), 1 + (i / SKILLS) as u8);
    q.channels = vec![Channel::Voice];
    q.wrap_up_secs = 0;
    q.offer_timeout_secs = 3600;
    q
}

/// Each agent holds 5 of the 50 skills at levels 1 to 5: about 7 of the 100 queues.
fn agent(i: usize, rng: &mut Rng) -> AgentConfig {
    let mut config = AgentConfig::new(format!("agent-{i:06}")).with_capacity(Capacity {
        voice: 1,
        email: 0,
        sms: 0,
        chat: 0,
    });
    for _ in 0..5 {
        config
            .skills
            .insert(skill(rng.below(SKILLS)), 1 + rng.below(5) as u8);
    }
    config
}

struct Bench {
    router: Router,
    now: Timestamp,
    next_id: u128,
    rng: Rng,
    /// What each busy agent is handling, to complete it later.
    busy: Vec<(AgentId, InteractionId)>,
    cursor: usize,
}

impl Bench {
    fn new(agents: usize) -> Self {
        let mut b = Bench {
            router: Router::new(),
            now: Timestamp::from_secs(1_700_000_000),
            next_id: 1,
            rng: Rng(0x9E37_79B9_7F4A_7C15),
            busy: Vec::new(),
            cursor: 0,
        };
        for i in 0..QUEUES {
            b.run(Command::UpsertQueue { config: queue(i) });
        }
        for i in 0..agents {
            let config = agent(i, &mut b.rng);
            let id = config.id.clone();
            b.run(Command::UpsertAgent { config });
            b.run(Command::Login { agent: id });
        }
        b
    }

    fn run(&mut self, command: Command) -> Vec<guichet::core::Event> {
        self.router
            .handle(self.now, command)
            .expect("bench command")
    }

    fn spec(&mut self, queue_ix: usize) -> InteractionSpec {
        let id = InteractionId::from_u128(self.next_id);
        self.next_id += 1;
        let mut spec = InteractionSpec::new(id, Channel::Voice, format!("queue-{queue_ix:03}"));
        spec.priority = Some(self.rng.below(3) as u32);
        spec.external_ref = Some(format!("CA{:032x}", self.next_id).into());
        spec
    }

    /// Creates an interaction in a random queue; returns the agent it was offered to, if any.
    fn arrive(&mut self, queue_ix: usize) -> Option<(AgentId, InteractionId)> {
        self.now = self.now.plus_millis(1);
        let spec = self.spec(queue_ix);
        let events = self.run(Command::CreateInteraction { spec });
        offered(&events)
    }

    /// Makes every agent busy (each accepts what it is offered), then adds `waiting` interactions.
    fn saturate(&mut self, waiting: usize) {
        let agents = self.router.agents().len();
        let mut attempts = 0;
        while attempts < 50 * agents {
            attempts += 1;
            let q = self.rng.below(QUEUES);
            if let Some((agent, id)) = self.arrive(q) {
                self.run(Command::Accept {
                    interaction: id,
                    agent: agent.clone(),
                });
                self.busy.push((agent, id));
            }
            if self.busy.len() == agents {
                break;
            }
        }
        // Agents never offered anything (no matching queue got an arrival) are logged out so that
        // every remaining agent is busy.
        let idle: Vec<AgentId> = self
            .router
            .agents()
            .into_iter()
            .filter(|a| a.work.is_empty())
            .map(|a| a.config.id)
            .collect();
        for agent in idle {
            self.run(Command::Logout { agent });
        }
        while self.router.waiting_count() < waiting {
            let q = self.rng.below(QUEUES);
            assert!(self.arrive(q).is_none(), "every agent is busy");
        }
    }

    /// One steady-state cycle: an agent completes, pulls the next waiting interaction, accepts it,
    /// and a new interaction arrives and waits.
    fn free_and_pull(&mut self) {
        let i = self.cursor % self.busy.len();
        self.cursor += 1;
        let (agent, id) = self.busy[i].clone();
        self.now = self.now.plus_millis(1);
        let events = self.run(Command::Complete {
            interaction: id,
            agent: Some(agent.clone()),
            wrap_up_code: None,
            notes: None,
        });
        match offered(&events) {
            Some((_, next)) => {
                self.run(Command::Accept {
                    interaction: next,
                    agent: agent.clone(),
                });
                self.busy[i] = (agent, next);
            }
            None => {
                // Nothing it can take: it serves a fresh interaction from one of its queues later.
                let q = self.rng.below(QUEUES);
                if let Some((a, next)) = self.arrive(q) {
                    self.run(Command::Accept {
                        interaction: next,
                        agent: a.clone(),
                    });
                    self.busy[i] = (a, next);
                }
                return;
            }
        }
        let q = self.rng.below(QUEUES);
        black_box(self.arrive(q));
    }
}

fn offered(events: &[guichet::core::Event]) -> Option<(AgentId, InteractionId)> {
    events.iter().find_map(|e| match &e.kind {
        EventKind::InteractionOffered {
            interaction, agent, ..
        } => Some((agent.clone(), *interaction)),
        _ => None,
    })
}

fn agent_counts() -> Vec<usize> {
    match std::env::var("GUICHET_BENCH_AGENTS") {
        Ok(list) => list
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect(),
        Err(_) => vec![1_000, 10_000, 100_000],
    }
}

fn create_and_match(c: &mut Criterion) {
    let mut group = c.benchmark_group("create_and_match");
    for agents in agent_counts() {
        let mut b = Bench::new(agents);
        // The backlog: a queue whose skill nobody holds, with 100k waiting.
        b.run(Command::UpsertQueue {
            config: QueueConfig::new("backlog").requiring("skill:none", 1),
        });
        for _ in 0..WAITING {
            let id = InteractionId::from_u128(b.next_id);
            b.next_id += 1;
            b.run(Command::CreateInteraction {
                spec: InteractionSpec::new(id, Channel::Voice, "backlog"),
            });
        }
        group.bench_with_input(BenchmarkId::from_parameter(agents), &agents, |bench, _| {
            bench.iter(|| {
                let q = b.rng.below(QUEUES);
                if let Some((agent, id)) = b.arrive(q) {
                    b.run(Command::Accept {
                        interaction: id,
                        agent: agent.clone(),
                    });
                    black_box(b.run(Command::Complete {
                        interaction: id,
                        agent: Some(agent),
                        wrap_up_code: None,
                        notes: None,
                    }));
                }
            })
        });
    }
    group.finish();
}

fn agent_frees_capacity(c: &mut Criterion) {
    let mut group = c.benchmark_group("agent_frees_capacity");
    for agents in agent_counts() {
        let mut b = Bench::new(agents);
        b.saturate(WAITING);
        group.bench_with_input(BenchmarkId::from_parameter(agents), &agents, |bench, _| {
            bench.iter(|| b.free_and_pull())
        });
    }
    group.finish();
}

fn skill_change(c: &mut Criterion) {
    let mut group = c.benchmark_group("skill_change");
    for agents in agent_counts() {
        let mut b = Bench::new(agents);
        b.saturate(WAITING);
        let (agent, _) = b.busy[0].clone();
        let sets: [BTreeMap<Skill, u8>; 2] = [
            [(skill(1), 3), (skill(2), 4), (skill(3), 5)]
                .into_iter()
                .collect(),
            [(skill(4), 2), (skill(5), 5), (skill(6), 1)]
                .into_iter()
                .collect(),
        ];
        let mut flip = 0;
        group.bench_with_input(BenchmarkId::from_parameter(agents), &agents, |bench, _| {
            bench.iter(|| {
                flip ^= 1;
                black_box(b.run(Command::SetAgentSkills {
                    agent: agent.clone(),
                    skills: sets[flip].clone(),
                }))
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = create_and_match, agent_frees_capacity, skill_change
}
criterion_main!(benches);
