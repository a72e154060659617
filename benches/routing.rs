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
//! Each cycle is measured beside its floor ([`floor::Floor`]: a bare indexed matcher running the
//! same cycle on the same data), in the same run, so that the figures compare across machines as
//! ratios. Before the criterion groups, a summary prints per agent count: the router's cycle and
//! the floor's (median of interleaved rounds), their ratio, heap allocations per cycle (counted by
//! this bench's allocator) and heap bytes per waiting interaction.
//!
//! `GUICHET_BENCH_AGENTS=1000,100000` chooses the agent counts; `GUICHET_BENCH_WAITING=1000000`
//! the backlog (default 100k, held by a queue requiring a skill nobody has, so that every
//! decision walks past it).
//!
//! `GUICHET_BENCH_COUNT=create:N` runs N router cycles only (`floor-create:N` the floor's), for
//! counting instructions under cachegrind (see [`count_only`]).
//!
//! Run with `cargo bench --bench routing`; the figures and the method are in docs/performance.md.

#[path = "routing/floor.rs"]
mod floor;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The system allocator, counting allocations and live bytes.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call is forwarded to the system allocator with the same arguments.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

use criterion::{criterion_group, BenchmarkId, Criterion};
use guichet::core::{
    AgentConfig, AgentId, Capacity, Channel, Command, EventKind, InteractionId, InteractionSpec,
    QueueConfig, QueueId, Router, Skill, Timestamp,
};

const SKILLS: usize = 50;
const QUEUES: usize = 100;

/// Interactions waiting in the backlog: `GUICHET_BENCH_WAITING`, default 100k.
fn waiting() -> usize {
    std::env::var("GUICHET_BENCH_WAITING")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(100_000)
}

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
    /// The floor's view of the same data: `(skill, level)` per queue, then per agent.
    floor_queues: Vec<(usize, u8)>,
    floor_agents: Vec<Vec<(usize, u8)>>,
    /// The queues' ids, built once.
    queue_ids: Vec<QueueId>,
}

/// The index of `skill:NN` (the backlog's `skill:none`: none).
fn skill_index(skill: &Skill) -> usize {
    skill
        .as_str()
        .strip_prefix("skill:")
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
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
            floor_queues: Vec::new(),
            floor_agents: Vec::new(),
            queue_ids: Vec::new(),
        };
        for i in 0..QUEUES {
            b.floor_queues.push((i % SKILLS, 1 + (i / SKILLS) as u8));
            let config = queue(i);
            b.queue_ids.push(config.id.clone());
            b.run(Command::UpsertQueue { config });
        }
        for i in 0..agents {
            let config = agent(i, &mut b.rng);
            b.floor_agents.push(
                config
                    .skills
                    .iter()
                    .map(|(s, l)| (skill_index(s), *l))
                    .collect(),
            );
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

    /// A new interaction's spec, as a channel hands it to the router: its queue's id (shared,
    /// as a decoded request's would be after the first) and a 34-character external reference
    /// like a Twilio CallSid, in one allocation.
    fn spec(&mut self, queue_ix: usize) -> InteractionSpec {
        let id = InteractionId::from_u128(self.next_id);
        self.next_id += 1;
        let queue = self.queue_ids[queue_ix].clone();
        let mut spec = InteractionSpec::new(id, Channel::Voice, queue);
        spec.priority = Some(self.rng.below(3) as u32);
        spec.external_ref = Some(call_sid(self.next_id));
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

/// `CA` and 32 hexadecimal digits of `n`, as one `Arc<str>` (the formatter's `{:032x}` costs
/// several thousand instructions, more than a routing decision).
fn call_sid(n: u128) -> Arc<str> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 34];
    text[0] = b'C';
    text[1] = b'A';
    for (i, byte) in text[2..].iter_mut().enumerate() {
        *byte = HEX[((n >> (4 * (31 - i))) & 0xf) as usize];
    }
    Arc::from(std::str::from_utf8(&text).unwrap_or_default())
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

/// The router's bench with the backlog of [`waiting`] interactions in a queue nobody serves.
fn with_backlog(agents: usize) -> Bench {
    let mut b = Bench::new(agents);
    b.run(Command::UpsertQueue {
        config: QueueConfig::new("backlog").requiring("skill:none", 1),
    });
    for _ in 0..waiting() {
        let id = InteractionId::from_u128(b.next_id);
        b.next_id += 1;
        b.run(Command::CreateInteraction {
            spec: InteractionSpec::new(id, Channel::Voice, "backlog"),
        });
    }
    b
}

/// One create-and-match cycle of the router: an arrival offered, accepted and completed.
fn router_cycle(b: &mut Bench) {
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
}

/// The floor on the same agents and queues, with the same backlog.
struct FloorBench {
    floor: floor::Floor,
    rng: Rng,
    next_id: u128,
    busy: Vec<u32>,
    cursor: usize,
}

impl FloorBench {
    fn new(b: &Bench) -> FloorBench {
        let mut queues = b.floor_queues.clone();
        queues.push((usize::MAX, 1));
        let mut f = FloorBench {
            floor: floor::Floor::new(&queues, &b.floor_agents),
            rng: Rng(0x2545_F491_4F6C_DD1D),
            next_id: 1,
            busy: Vec::new(),
            cursor: 0,
        };
        for _ in 0..waiting() {
            f.arrive(QUEUES);
        }
        f
    }

    fn arrive(&mut self, queue: usize) -> Option<u32> {
        self.next_id += 1;
        let priority = self.rng.below(3) as u32;
        self.floor.arrive(queue, priority, self.next_id)
    }

    /// The same create-and-match cycle.
    fn cycle(&mut self) {
        let q = self.rng.below(QUEUES);
        if let Some(agent) = self.arrive(q) {
            black_box(self.floor.complete(agent));
        }
    }

    /// Every agent busy, the others out, `waiting` more waiting (as [`Bench::saturate`]).
    fn saturate(&mut self, agents: usize, waiting: usize) {
        let mut attempts = 0;
        while attempts < 50 * agents && self.busy.len() < agents {
            attempts += 1;
            let q = self.rng.below(QUEUES);
            if let Some(agent) = self.arrive(q) {
                self.busy.push(agent);
            }
        }
        self.floor.clear_free();
        while self.floor.waiting() < waiting {
            let q = self.rng.below(QUEUES);
            assert!(self.arrive(q).is_none(), "every agent is busy");
        }
    }

    /// The same steady-state cycle as [`Bench::free_and_pull`].
    fn free_and_pull(&mut self) {
        let i = self.cursor % self.busy.len();
        self.cursor += 1;
        let agent = self.busy[i];
        if self.floor.complete(agent).is_none() {
            let q = self.rng.below(QUEUES);
            if let Some(a) = self.arrive(q) {
                self.busy[i] = a;
            }
            return;
        }
        let q = self.rng.below(QUEUES);
        black_box(self.arrive(q));
    }
}

fn create_and_match(c: &mut Criterion) {
    let mut group = c.benchmark_group("create_and_match");
    for agents in agent_counts() {
        let mut b = with_backlog(agents);
        let mut f = FloorBench::new(&b);
        group.bench_with_input(BenchmarkId::new("router", agents), &agents, |bench, _| {
            bench.iter(|| router_cycle(&mut b))
        });
        group.bench_with_input(BenchmarkId::new("floor", agents), &agents, |bench, _| {
            bench.iter(|| f.cycle())
        });
    }
    group.finish();
}

fn agent_frees_capacity(c: &mut Criterion) {
    let mut group = c.benchmark_group("agent_frees_capacity");
    for agents in agent_counts() {
        let mut b = Bench::new(agents);
        let mut f = FloorBench::new_empty(&b);
        b.saturate(waiting());
        f.saturate(agents, waiting());
        group.bench_with_input(BenchmarkId::new("router", agents), &agents, |bench, _| {
            bench.iter(|| b.free_and_pull())
        });
        group.bench_with_input(BenchmarkId::new("floor", agents), &agents, |bench, _| {
            bench.iter(|| f.free_and_pull())
        });
    }
    group.finish();
}

impl FloorBench {
    /// The floor on `b`'s agents and queues, nothing waiting.
    fn new_empty(b: &Bench) -> FloorBench {
        let mut queues = b.floor_queues.clone();
        queues.push((usize::MAX, 1));
        FloorBench {
            floor: floor::Floor::new(&queues, &b.floor_agents),
            rng: Rng(0x2545_F491_4F6C_DD1D),
            next_id: 1,
            busy: Vec::new(),
            cursor: 0,
        }
    }
}

/// Median nanoseconds per call of `router` and of `floor`, over interleaved rounds of `n` calls
/// each, and the router's allocations per call.
fn compare(n: usize, mut router: impl FnMut(), mut floor: impl FnMut()) -> (f64, f64, f64) {
    for _ in 0..n / 10 {
        router();
        floor();
    }
    let mut r = Vec::new();
    let mut fl = Vec::new();
    let mut allocations = 0;
    for _ in 0..7 {
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let t = Instant::now();
        for _ in 0..n {
            router();
        }
        r.push(t.elapsed().as_nanos() as f64 / n as f64);
        allocations += ALLOCATIONS.load(Ordering::Relaxed) - before;
        let t = Instant::now();
        for _ in 0..n {
            floor();
        }
        fl.push(t.elapsed().as_nanos() as f64 / n as f64);
    }
    r.sort_by(f64::total_cmp);
    fl.sort_by(f64::total_cmp);
    (r[3], fl[3], allocations as f64 / (7 * n) as f64)
}

/// The summary printed before the criterion groups: ratios to the floor, allocations per
/// decision, bytes per waiting interaction.
fn summary() {
    let backlog = waiting();
    eprintln!(
        "routing summary ({backlog} waiting in the backlog; medians of 7 interleaved rounds)"
    );
    eprintln!(
        "an event is {} bytes",
        std::mem::size_of::<guichet::core::Event>()
    );
    eprintln!(
        "{:>8} {:>22} {:>10} {:>10} {:>6} {:>8}",
        "agents", "cycle", "router ns", "floor ns", "ratio", "allocs"
    );
    for agents in agent_counts() {
        let mut b = Bench::new(agents);
        let base = LIVE_BYTES.load(Ordering::Relaxed);
        b.run(Command::UpsertQueue {
            config: QueueConfig::new("backlog").requiring("skill:none", 1),
        });
        for _ in 0..backlog {
            let id = InteractionId::from_u128(b.next_id);
            b.next_id += 1;
            b.run(Command::CreateInteraction {
                spec: InteractionSpec::new(id, Channel::Voice, "backlog"),
            });
        }
        let per_waiting =
            (LIVE_BYTES.load(Ordering::Relaxed) - base) as f64 / backlog.max(1) as f64;
        let mut f = FloorBench::new(&b);
        let (router, floor, allocs) = compare(20_000, || router_cycle(&mut b), || f.cycle());
        eprintln!(
            "{agents:>8} {:>22} {router:>10.0} {floor:>10.0} {:>6.2} {allocs:>8.1}",
            "create_and_match",
            router / floor
        );
        drop(b);
        drop(f);
        let mut b = Bench::new(agents);
        let mut f = FloorBench::new_empty(&b);
        b.saturate(backlog);
        f.saturate(agents, backlog);
        let (router, floor, allocs) = compare(20_000, || b.free_and_pull(), || f.free_and_pull());
        eprintln!(
            "{agents:>8} {:>22} {router:>10.0} {floor:>10.0} {:>6.2} {allocs:>8.1}",
            "agent_frees_capacity",
            router / floor
        );
        eprintln!("{agents:>8} heap bytes per waiting interaction: {per_waiting:.0}");
    }
}

fn skill_change(c: &mut Criterion) {
    let mut group = c.benchmark_group("skill_change");
    for agents in agent_counts() {
        let mut b = Bench::new(agents);
        b.saturate(waiting());
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

/// `GUICHET_BENCH_COUNT=create:N` (or `frees:N`): runs N router cycles of `create_and_match`
/// (or `agent_frees_capacity`) at the first agent count, with no floor, timing or criterion,
/// then exits; `floor-create:N` and `floor-frees:N` run the floor's same cycles instead. For counting instructions under `valgrind --tool=cachegrind`: the difference
/// between two values of N, divided by their difference, is the cost of one steady-state cycle,
/// whatever else the machine is doing (docs/performance.md).
fn count_only() -> bool {
    let Ok(spec) = std::env::var("GUICHET_BENCH_COUNT") else {
        return false;
    };
    let (cycle, n) = spec
        .split_once(':')
        .and_then(|(c, n)| Some((c.to_owned(), n.parse::<usize>().ok()?)))
        .expect("GUICHET_BENCH_COUNT is create:N, frees:N, floor-create:N or floor-frees:N");
    let agents = agent_counts().first().copied().unwrap_or(10_000);
    match cycle.as_str() {
        "create" => {
            let mut b = with_backlog(agents);
            (0..n).for_each(|_| router_cycle(&mut b));
        }
        "frees" => {
            let mut b = Bench::new(agents);
            b.saturate(waiting());
            (0..n).for_each(|_| b.free_and_pull());
        }
        "floor-create" => {
            let b = Bench::new(agents);
            let mut f = FloorBench::new(&b);
            drop(b);
            (0..n).for_each(|_| f.cycle());
        }
        "floor-frees" => {
            let b = Bench::new(agents);
            let mut f = FloorBench::new_empty(&b);
            drop(b);
            f.saturate(agents, waiting());
            (0..n).for_each(|_| f.free_and_pull());
        }
        other => panic!(
            "GUICHET_BENCH_COUNT: unknown cycle {other:?} (create, frees, floor-create or floor-frees)"
        ),
    }
    true
}

fn main() {
    if count_only() {
        return;
    }
    summary();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
