//! End-to-end load over gRPC: N simulated agents and a creation rate, with create-to-offer
//! latency measured in HDR histograms.
//!
//! ```sh
//! cargo run --release --example load                         # 1,000 agents, 10,000/s for 10 s
//! cargo run --release --example load -- --rate 5000 --duration 30
//! cargo run --release --example load -- --addr 127.0.0.1:50051 --data-dir data   # a running server
//! ```
//!
//! What it does:
//!
//! 1. starts a server in this process on a temporary data directory, on its own runtime (or, with
//!    `--addr`, uses a running one: with `--data-dir` it creates its tokens in that server's
//!    database, else `--token` must be a supervisor or admin token, used for everything);
//! 2. creates a queue `load` (chat and email, requiring skill `load`) and N agents holding that
//!    skill with room for several chats and emails each (Supervisor `UpsertQueue`/`UpsertAgent`);
//! 3. logs every agent in with its own agent token and opens its `Offers` stream, spread over a
//!    few HTTP/2 connections; each agent accepts every offer at once and completes it after
//!    `--handle-ms`;
//! 4. an integrator sends `Interactions.Create` at `--rate` per second over `--connections`
//!    connections for `--duration` seconds (after `--warmup` seconds not measured);
//! 5. create-to-offer latency is the time from sending a `Create` to the offer arriving on the
//!    agent's stream, matched by interaction id (the id is chosen here, so it is known before
//!    sending). It prints a line per second, then throughput and percentiles.
//!
//! The load generator shares the machine with the server: on a small machine its own CPU use
//! (encoding, decoding and the agents' calls) limits what it can show.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use dashmap::DashMap;
use hdrhistogram::Histogram;
use tokio::sync::Semaphore;
use tonic::codegen::InterceptedService;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};
use ulid::Ulid;

use guichet::api::proto::agent_desktop_client::AgentDesktopClient;
use guichet::api::proto::interactions_client::InteractionsClient;
use guichet::api::proto::supervisor_client::SupervisorClient;
use guichet::api::proto::{self as pb, offer_update::Update};
use guichet::core::AgentId;
use guichet::engine::{Clock, SystemClock};
use guichet::store::{Role, Store, StoreConfig, StoreHandle};

/// End-to-end gRPC load: agents, a creation rate, create-to-offer latency.
#[derive(Debug, Parser)]
struct Args {
    /// A running server to load instead of one started in this process.
    #[arg(long)]
    addr: Option<String>,
    /// With --addr: the server's data directory, where this creates its tokens.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// With --addr and no --data-dir: a supervisor or admin token used for every call.
    #[arg(long)]
    token: Option<String>,
    /// Simulated agents, each with its own offer stream.
    #[arg(long, default_value_t = 1000)]
    agents: usize,
    /// Interactions created per second.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Seconds measured.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Connections the creations are spread over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Agents (offer streams and their calls) per connection.
    #[arg(long, default_value_t = 100)]
    agents_per_connection: usize,
    /// Creations in flight at most (sent, not yet answered).
    #[arg(long, default_value_t = 4096)]
    max_in_flight: usize,
    /// Milliseconds between accepting an interaction and completing it.
    #[arg(long, default_value_t = 200)]
    handle_ms: u64,
    /// Chats and emails each agent handles at once (each).
    #[arg(long, default_value_t = 4)]
    capacity: u32,
    /// Distinct contacts the interactions come from (each offer carries the contact's history);
    /// 0: no contact.
    #[arg(long, default_value_t = 100_000)]
    contacts: u64,
    /// Server runtime worker threads (in-process server only).
    #[arg(long, default_value_t = 2)]
    server_threads: usize,
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
struct Bearer(MetadataValue<Ascii>);

impl Bearer {
    fn new(token: &str) -> anyhow::Result<Bearer> {
        Ok(Bearer(format!("Bearer {token}").parse()?))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

/// Where the tokens come from.
enum Tokens {
    /// A database: an admin token, an integrator token and one token per agent.
    Store(StoreHandle),
    /// One supervisor or admin token for everything (agents named in each call).
    One(String),
}

impl Tokens {
    fn create(&self, role: Role, agent: Option<&str>) -> anyhow::Result<String> {
        match self {
            Tokens::Store(store) => Ok(store
                .create_token(
                    role,
                    agent.map(AgentId::new),
                    "load example",
                    SystemClock.now(),
                )?
                .0),
            Tokens::One(token) => Ok(token.clone()),
        }
    }
}

/// Counters and histograms shared by every task.
struct Stats {
    /// When measuring starts (creations sent earlier are not measured).
    measure_from: OnceLock<Instant>,
    /// Send time of each creation not yet offered, by interaction id.
    sent: DashMap<u128, Instant>,
    create_to_offer: Mutex<Histogram<u64>>,
    create_rtt: Mutex<Histogram<u64>>,
    created: AtomicU64,
    create_errors: AtomicU64,
    offers: AtomicU64,
    completed: AtomicU64,
    agent_errors: AtomicU64,
    /// Accepts and completions sent again after an `UNAVAILABLE` (overloaded) answer.
    agent_retries: AtomicU64,
    in_flight: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Stats {
    fn new() -> Stats {
        let histogram = || Histogram::new_with_bounds(1, 120_000_000, 3).expect("bounds");
        Stats {
            measure_from: OnceLock::new(),
            sent: DashMap::new(),
            create_to_offer: Mutex::new(histogram()),
            create_rtt: Mutex::new(histogram()),
            created: AtomicU64::new(0),
            create_errors: AtomicU64::new(0),
            offers: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            agent_errors: AtomicU64::new(0),
            agent_retries: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    /// Whether a creation sent at `at` is measured.
    fn measured(&self, at: Instant) -> bool {
        self.measure_from.get().is_some_and(|from| at >= *from)
    }

    fn error(&self, counter: &AtomicU64, status: &Status) {
        counter.fetch_add(1, Relaxed);
        *self.last_error.lock().unwrap() =
            Some(format!("{:?}: {}", status.code(), status.message()));
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros().clamp(1, 120_000_000) as u64
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    if args.agents == 0 || args.rate == 0 || args.connections == 0 {
        bail!("--agents, --rate and --connections must be at least 1");
    }

    // The server, in this process on its own runtime, or the one at --addr.
    let mut local = None;
    let (addr, tokens) = match &args.addr {
        None => {
            let server = LocalServer::start(args.server_threads)?;
            let tokens = Tokens::Store(server.store.clone());
            let addr = server.addr.clone();
            local = Some(server);
            (addr, tokens)
        }
        Some(addr) => {
            let tokens = match (&args.data_dir, &args.token) {
                (Some(dir), _) => Tokens::Store(StoreHandle::new(Store::open_shared(
                    &StoreConfig::new(dir),
                )?)),
                (None, Some(token)) => Tokens::One(token.clone()),
                (None, None) => bail!("with --addr, give --data-dir DIR or --token TOKEN"),
            };
            let addr = if addr.contains("://") {
                addr.clone()
            } else {
                format!("http://{addr}")
            };
            (addr, tokens)
        }
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("load-client")
        .build()?;
    let result = runtime.block_on(run(&args, &addr, &tokens));
    drop(runtime);
    if let Some(server) = local {
        server.stop();
    }
    result
}

async fn connect(addr: &str) -> anyhow::Result<Channel> {
    Endpoint::from_shared(addr.to_owned())?
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("cannot connect to {addr}"))
}

async fn run(args: &Args, addr: &str, tokens: &Tokens) -> anyhow::Result<()> {
    let admin = Bearer::new(&tokens.create(Role::Admin, None)?)?;
    let integrator = Bearer::new(&tokens.create(Role::Integrator, None)?)?;
    let setup_started = Instant::now();
    let supervisor = SupervisorClient::with_interceptor(connect(addr).await?, admin.clone());
    setup(args, &supervisor).await?;
    println!(
        "set up queue `load` and {} agents in {:.1} s",
        args.agents,
        setup_started.elapsed().as_secs_f64()
    );

    // Agents: log in and open the offer streams, a connection per `agents_per_connection`.
    let stats = Arc::new(Stats::new());
    let agents_started = Instant::now();
    let mut channels = Vec::new();
    for _ in 0..args.agents.div_ceil(args.agents_per_connection.max(1)) {
        channels.push(connect(addr).await?);
    }
    let mut agent_tasks = tokio::task::JoinSet::new();
    let ready = Arc::new(Semaphore::new(0));
    let login_gate = Arc::new(Semaphore::new(64));
    for i in 0..args.agents {
        let id = agent_id(i);
        let bearer = Bearer::new(&tokens.create(Role::Agent, Some(&id))?)?;
        let named = match tokens {
            Tokens::Store(_) => String::new(),
            Tokens::One(_) => id.clone(),
        };
        let channel = channels[i / args.agents_per_connection.max(1)].clone();
        let client = AgentDesktopClient::with_interceptor(channel, bearer);
        agent_tasks.spawn(agent(
            client,
            named,
            Duration::from_millis(args.handle_ms),
            stats.clone(),
            ready.clone(),
            login_gate.clone(),
        ));
    }
    // Every stream open (or its task failed).
    let all = u32::try_from(args.agents).context("too many agents")?;
    tokio::select! {
        permit = ready.acquire_many(all) => { permit?.forget(); }
        Some(failed) = agent_tasks.join_next() => {
            failed??;
            bail!("an agent stopped before the load started");
        }
    }
    println!(
        "{} agents logged in with their offer streams open in {:.1} s ({} connections)",
        args.agents,
        agents_started.elapsed().as_secs_f64(),
        channels.len()
    );

    // The integrator: creations at the target rate, spread over the connections.
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup);
    let end = measure_from + Duration::from_secs(args.duration);
    stats.measure_from.set(measure_from).ok();
    let gate = Arc::new(Semaphore::new(args.max_in_flight));
    let mut creators = tokio::task::JoinSet::new();
    let per_connection = args.rate as f64 / args.connections as f64;
    for c in 0..args.connections {
        let client = InteractionsClient::with_interceptor(connect(addr).await?, integrator.clone());
        creators.spawn(creator(
            client,
            c as u64,
            args.connections as u64,
            per_connection,
            start,
            end,
            args.contacts,
            stats.clone(),
            gate.clone(),
        ));
    }
    println!(
        "creating {} interactions/s for {} s ({} s warm-up), handle time {} ms",
        args.rate, args.duration, args.warmup, args.handle_ms
    );
    println!("  time   created/s  offered/s  completed/s  in flight  unoffered  errors");
    let mut last = (0, 0, 0);
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let mut second = 0;
    let mut window = Window::default();
    if args.warmup == 0 {
        window.start = Some(Snapshot::take(&stats));
    }
    while Instant::now() < end + Duration::from_secs(1) {
        tick.tick().await;
        second += 1;
        if second == args.warmup {
            window.start = Some(Snapshot::take(&stats));
        }
        if second == args.warmup + args.duration {
            window.end = Some(Snapshot::take(&stats));
        }
        let now = (
            stats.created.load(Relaxed),
            stats.offers.load(Relaxed),
            stats.completed.load(Relaxed),
        );
        println!(
            "{:>5} s  {:>9}  {:>9}  {:>11}  {:>9}  {:>9}  {:>6}{}",
            second,
            now.0 - last.0,
            now.1 - last.1,
            now.2 - last.2,
            stats.in_flight.load(Relaxed),
            stats.sent.len(),
            stats.create_errors.load(Relaxed) + stats.agent_errors.load(Relaxed),
            if Instant::now() <= measure_from {
                "  (warm-up)"
            } else {
                ""
            }
        );
        last = now;
    }
    while creators.join_next().await.is_some() {}
    // Let the last offers arrive.
    let drain = Instant::now();
    while !stats.sent.is_empty() && drain.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    report(args, &stats, &window);
    agent_tasks.abort_all();
    Ok(())
}

fn agent_id(i: usize) -> String {
    format!("load-{i:05}")
}

async fn setup(args: &Args, supervisor: &SupervisorClient<Authed>) -> anyhow::Result<()> {
    let mut client = supervisor.clone();
    client
        .upsert_queue(pb::UpsertQueueRequest {
            queue: Some(pb::Queue {
                id: "load".into(),
                name: "Load test".into(),
                channels: vec![pb::Channel::Chat as i32, pb::Channel::Email as i32],
                requirements: vec![pb::Requirement {
                    skill: "load".into(),
                    min_level: 1,
                }],
                offer_timeout_secs: 60,
                max_misses: Some(0),
                wrap_up_secs: 0,
                strategy: pb::Strategy::LongestIdle as i32,
                ..Default::default()
            }),
        })
        .await
        .context("UpsertQueue")?;
    let gate = Arc::new(Semaphore::new(32));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.agents {
        let mut client = supervisor.clone();
        let permit = gate.clone().acquire_owned().await?;
        let capacity = args.capacity;
        tasks.spawn(async move {
            let _permit = permit;
            client
                .upsert_agent(pb::UpsertAgentRequest {
                    agent: Some(pb::Agent {
                        id: agent_id(i),
                        name: format!("Load agent {i}"),
                        skills: vec![pb::SkillLevel {
                            skill: "load".into(),
                            level: 3,
                        }],
                        capacity: Some(pb::Capacity {
                            voice: 0,
                            email: capacity,
                            sms: 0,
                            chat: capacity,
                        }),
                        voice_exclusive: Some(false),
                        device: String::new(),
                    }),
                })
                .await
                .map(|_| ())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done?.context("UpsertAgent")?;
    }
    Ok(())
}

/// One simulated agent: logs in, opens its offer stream, accepts every offer at once and
/// completes it after `handle`.
async fn agent(
    mut client: AgentDesktopClient<Authed>,
    named: String,
    handle: Duration,
    stats: Arc<Stats>,
    ready: Arc<Semaphore>,
    login_gate: Arc<Semaphore>,
) -> anyhow::Result<()> {
    let permit = login_gate.acquire().await?;
    client
        .login(pb::LoginRequest {
            agent_id: named.clone(),
            device: String::new(),
        })
        .await
        .context("Login")?;
    let mut stream = client
        .offers(pb::OffersRequest {
            agent_id: named.clone(),
        })
        .await
        .context("Offers")?
        .into_inner();
    drop(permit);
    ready.add_permits(1);
    while let Some(update) = stream.message().await.context("offer stream")? {
        let arrived = Instant::now();
        let Some(Update::Offer(offer)) = update.update else {
            continue;
        };
        let Some(id) = offer.interaction.map(|i| i.id) else {
            continue;
        };
        if let Ok(ulid) = id.parse::<Ulid>() {
            if let Some((_, sent)) = stats.sent.remove(&ulid.0) {
                stats.offers.fetch_add(1, Relaxed);
                if stats.measured(sent) {
                    stats
                        .create_to_offer
                        .lock()
                        .unwrap()
                        .record(micros(arrived - sent))
                        .ok();
                }
            }
        }
        let client = client.clone();
        let named = named.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            let action = pb::InteractionAction {
                agent_id: named.clone(),
                interaction_id: id.clone(),
            };
            let accepted = retry_overloaded(&stats, || {
                let mut client = client.clone();
                let action = action.clone();
                async move { client.accept(action).await }
            })
            .await;
            if let Err(status) = accepted {
                stats.error(&stats.agent_errors, &status);
                return;
            }
            tokio::time::sleep(handle).await;
            let complete = pb::CompleteRequest {
                agent_id: named,
                interaction_id: id,
                wrap_up_code: "done".into(),
                notes: String::new(),
            };
            let completed = retry_overloaded(&stats, || {
                let mut client = client.clone();
                let complete = complete.clone();
                async move { client.complete(complete).await }
            })
            .await;
            match completed {
                Ok(_) => {
                    stats.completed.fetch_add(1, Relaxed);
                }
                Err(status) => stats.error(&stats.agent_errors, &status),
            }
        });
    }
    Ok(())
}

/// Runs `call` again after the 100 ms the server asks for while it answers `UNAVAILABLE`
/// (overloaded), as an agent desktop would, a few times at most.
async fn retry_overloaded<T, F, Fut>(stats: &Stats, mut call: F) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Status>>,
{
    let mut tries = 0;
    loop {
        match call().await {
            Err(status) if status.code() == tonic::Code::Unavailable && tries < 20 => {
                tries += 1;
                stats.agent_retries.fetch_add(1, Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// Sends creations at `rate` per second from `start` to `end`, on one connection.
#[allow(clippy::too_many_arguments)]
async fn creator(
    client: InteractionsClient<Authed>,
    index: u64,
    step: u64,
    rate: f64,
    start: Instant,
    end: Instant,
    contacts: u64,
    stats: Arc<Stats>,
    gate: Arc<Semaphore>,
) {
    let mut sent: u64 = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let now = Instant::now();
        if now >= end {
            break;
        }
        let due = ((now - start).as_secs_f64() * rate) as u64;
        while sent < due && Instant::now() < end {
            let Ok(permit) = gate.clone().acquire_owned().await else {
                return;
            };
            // Interleaved sequence numbers across connections: contact and channel from it.
            let n = sent * step + index;
            sent += 1;
            let id = Ulid::new();
            let spec = pb::InteractionSpec {
                id: id.to_string(),
                channel: if n % 2 == 0 {
                    pb::Channel::Chat as i32
                } else {
                    pb::Channel::Email as i32
                },
                queue: "load".into(),
                contact: if contacts == 0 {
                    String::new()
                } else {
                    format!("contact-{}", n.wrapping_mul(2_654_435_761) % contacts)
                },
                ..Default::default()
            };
            let mut client = client.clone();
            let stats = stats.clone();
            stats.in_flight.fetch_add(1, Relaxed);
            let sent_at = Instant::now();
            stats.sent.insert(id.0, sent_at);
            tokio::spawn(async move {
                let reply = client
                    .create(pb::CreateRequest {
                        spec: Some(spec),
                        message: None,
                    })
                    .await;
                let rtt = sent_at.elapsed();
                stats.in_flight.fetch_sub(1, Relaxed);
                drop(permit);
                match reply {
                    Ok(_) => {
                        stats.created.fetch_add(1, Relaxed);
                        if stats.measured(sent_at) {
                            stats.create_rtt.lock().unwrap().record(micros(rtt)).ok();
                        }
                    }
                    Err(status) => {
                        stats.sent.remove(&id.0);
                        stats.error(&stats.create_errors, &status);
                    }
                }
            });
        }
    }
}

/// Counters and CPU time at one instant.
struct Snapshot {
    at: Instant,
    created: u64,
    offers: u64,
    completed: u64,
    /// CPU seconds used so far, by thread name.
    cpu: Vec<(String, f64)>,
}

impl Snapshot {
    fn take(stats: &Stats) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            created: stats.created.load(Relaxed),
            offers: stats.offers.load(Relaxed),
            completed: stats.completed.load(Relaxed),
            cpu: thread_cpu(),
        }
    }
}

/// The measured window's edges.
#[derive(Default)]
struct Window {
    start: Option<Snapshot>,
    end: Option<Snapshot>,
}

/// CPU seconds (user + system) used by this process's live threads, summed by thread name
/// (Linux only: read from /proc; empty elsewhere).
fn thread_cpu() -> Vec<(String, f64)> {
    let mut by_name: Vec<(String, f64)> = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by_name;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ... utime stime: fields 14 and 15, counted after the ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_owned();
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // Clock ticks are 1/100 s on Linux.
        let secs = (ticks(11) + ticks(12)) / 100.0;
        match by_name.iter_mut().find(|(n, _)| *n == name) {
            Some((_, total)) => *total += secs,
            None => by_name.push((name, secs)),
        }
    }
    by_name
}

fn report(args: &Args, stats: &Stats, window: &Window) {
    println!();
    if let (Some(a), Some(b)) = (&window.start, &window.end) {
        let secs = (b.at - a.at).as_secs_f64();
        let created = b.created - a.created;
        let offered = b.offers - a.offers;
        println!(
            "measured {secs:.1} s: {:.0} created/s (target {}), {:.0} offered/s, {:.0} completed/s",
            created as f64 / secs,
            args.rate,
            offered as f64 / secs,
            (b.completed - a.completed) as f64 / secs,
        );
        if (created as f64) < 0.95 * secs * args.rate as f64 {
            println!(
                "the target rate was not reached: the server or this machine is saturated (the \
                 sender waited for one of the {} creations in flight to be answered); latencies \
                 count from when each Create was sent, not from when it was due",
                args.max_in_flight
            );
        }
        let cpu = |name: &str, snap: &Snapshot| {
            snap.cpu
                .iter()
                .filter(|(n, _)| n.starts_with(name))
                .map(|(_, s)| s)
                .sum::<f64>()
        };
        let per = |name: &str| {
            let used = cpu(name, b) - cpu(name, a);
            format!(
                "{name} {:.2} s ({:.0}% of a core, {:.0} us per interaction)",
                used,
                100.0 * used / secs,
                1e6 * used / (created.max(1) as f64)
            )
        };
        if !b.cpu.is_empty() && args.addr.is_none() {
            println!(
                "CPU in the window: {}; {}; {}",
                per("server"),
                per("guichet-journal"),
                per("load-client")
            );
        }
    }
    let print = |name: &str, h: &Histogram<u64>| {
        let ms = |v: u64| v as f64 / 1000.0;
        println!(
            "{name:<16} n={:<8} p50 {:>8.2} ms  p90 {:>8.2} ms  p99 {:>8.2} ms  p99.9 {:>8.2} ms  max {:>8.2} ms",
            h.len(),
            ms(h.value_at_quantile(0.50)),
            ms(h.value_at_quantile(0.90)),
            ms(h.value_at_quantile(0.99)),
            ms(h.value_at_quantile(0.999)),
            ms(h.max()),
        );
    };
    print("create-to-offer", &stats.create_to_offer.lock().unwrap());
    print("create reply", &stats.create_rtt.lock().unwrap());
    let unoffered = stats.sent.len();
    let create_errors = stats.create_errors.load(Relaxed);
    let agent_errors = stats.agent_errors.load(Relaxed);
    let agent_retries = stats.agent_retries.load(Relaxed);
    println!(
        "never offered within 5 s after the end: {unoffered}; create errors: {create_errors}; \
         accept/complete errors: {agent_errors} (after {agent_retries} retries of overloaded \
         ones)"
    );
    if let Some(e) = stats.last_error.lock().unwrap().as_ref() {
        println!("last error: {e}");
    }
}

/// A server in this process, on its own runtime and a temporary data directory.
struct LocalServer {
    addr: String,
    store: StoreHandle,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl LocalServer {
    fn start(threads: usize) -> anyhow::Result<LocalServer> {
        let dir = tempfile::tempdir()?;
        let mut config = guichet::config::Config::default();
        config.server.grpc_addr = "127.0.0.1:0".into();
        config.server.http_addr = "127.0.0.1:0".into();
        config.store.data_dir = dir.path().to_owned();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads.max(1))
                .thread_name("server")
                .enable_all()
                .build()?;
            runtime.block_on(guichet::server::serve(
                guichet::server::ServeOptions { config },
                async |started: &guichet::server::Started| {
                    let _ = started_tx.send((started.grpc_addr, started.engine.store().clone()));
                },
                async move {
                    let _ = stopped.await;
                },
            ))?;
            Ok(())
        });
        let (addr, store) = started_rx
            .recv()
            .map_err(|_| anyhow::anyhow!("the server did not start"))?;
        println!(
            "server started in this process on {addr} (data {})",
            dir.path().display()
        );
        Ok(LocalServer {
            addr: format!("http://{addr}"),
            store,
            stop,
            thread,
            _dir: dir,
        })
    }

    fn stop(self) {
        let _ = self.stop.send(());
        match self.thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("server error: {e:#}"),
            Err(_) => eprintln!("the server thread panicked"),
        }
    }
}
