//! The engine: the async shell that owns one [`Router`], makes its decisions durable and tells
//! the world about them.
//!
//! One tokio task owns the router. It takes commands from a bounded queue, handles each at the
//! current time, appends the resulting events to the journal *without waiting*, and goes on with
//! the next command; a second task awaits the journal's acknowledgements in order and only then
//! answers each caller and publishes the events. The journal's writer thread therefore groups
//! whatever is pending into one transaction (group commit), and:
//!
//! - **a command's reply is sent only after its events are committed**: an acknowledged creation
//!   survives a crash;
//! - subscribers (offer streams, statistics, channel adapters) see only committed events, in
//!   journal order;
//! - a full command queue answers [`EngineError::Overloaded`] at once, never unbounded memory;
//! - a refusal ([`EngineError::Route`]) and a [`Engine::read`] result are answered only after
//!   every command before them is committed: nobody is told about state that a crash could still
//!   take back.
//!
//! Before each request, and between requests, the task ticks the router for every timer due at
//! [`Router::next_deadline`] (offer timeouts, escalation, wrap-up ends), so that a command or a
//! read is served at its time. It sleeps until that deadline, but never longer than a second
//! ([`MAX_SLEEP`]): deadlines are read on the engine's [`Clock`], which may jump (a suspended
//! machine, a corrected wall clock) where tokio's timer does not follow.
//!
//! On start it rebuilds the router from the journal (latest snapshot plus later events), seeds
//! an empty database from the configuration file, and logs every agent out: agents log in
//! again, and offers that were pending go back to their queues in their original place.
//!
//! If the journal fails to commit, the router's state is ahead of what is durable: the engine
//! stops (fail-stop) and answers every pending and later command with [`EngineError::Stopped`];
//! a restart recovers the last committed state.
//!
//! [`Engine::shutdown`] serves the requests queued before it, answers those queued after it with
//! [`EngineError::Stopped`], waits for every commit to be answered and published, ends the
//! subscriptions (a subscriber's `recv` returns `Closed` once it has read every batch) and
//! closes the journal.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::core::{
    AgentState, Command, ContactId, Event, EventKind, InteractionId, QueueId, RouteError, Router,
    Timestamp,
};
use crate::store::{Ack, Erasure, Journal, Store, StoreConfig, StoreError, StoreHandle};

mod context;
mod holds;
mod seed;
mod views;

pub use context::StartContext;
pub use seed::{EngineLimits, Seed};

pub use views::{
    router_pending, run_view, run_view_from_now, run_wakeups, Checkpoint, View, ViewBatch,
    ViewFailed, ViewHandle, Wakeups, CATCH_UP_CHUNK,
};

/// Where time comes from (the engine's only clock; tests may inject their own).
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Timestamp(ms)
    }
}

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The database and journal.
    pub store: StoreConfig,
    /// Commands waiting for the engine at most; beyond, callers get [`EngineError::Overloaded`].
    pub command_queue: usize,
    /// Committed event batches buffered per subscriber; a subscriber further behind misses
    /// batches and is told how many (`broadcast` lag).
    pub event_buffer: usize,
}

impl EngineConfig {
    /// Defaults for a data directory: 10,000 queued commands, 4,096 buffered batches.
    pub fn new(data_dir: impl Into<std::path::PathBuf>) -> Self {
        let limits = EngineLimits::default();
        EngineConfig {
            store: StoreConfig::new(data_dir),
            command_queue: limits.command_queue,
            event_buffer: limits.event_buffer,
        }
    }
}

/// Why the engine refused or failed a request.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The router refused the command; nothing changed.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// Too many commands are waiting: retry after a short delay.
    #[error("the engine is overloaded: retry shortly")]
    Overloaded,
    /// The engine has stopped (shut down, or failed to commit).
    #[error("the engine has stopped")]
    Stopped,
    /// The database could not be opened, recovered or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A group of events committed together, with the sequence number of the last one.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The journal sequence number of the last event.
    pub seq: u64,
    /// The events, in order.
    pub events: Arc<[Event]>,
}

/// One command in this many has its routing decision timed (`guichet_routing_decision_seconds`).
pub const DECISION_SAMPLE: u64 = 16;

/// The longest the router task sleeps without looking at its clock again.
pub const MAX_SLEEP: Duration = Duration::from_secs(1);

type ReplyTx = oneshot::Sender<Result<Vec<Event>, EngineError>>;

/// Hands a read's result (or its panic) to its caller, with the journal sequence number of the
/// last event the read saw.
type Deliver = Box<dyn FnOnce(u64) + Send>;

/// Runs a read on the router and returns how to deliver its result.
type ReadFn = Box<dyn FnOnce(&Router) -> Deliver + Send>;

enum Request {
    Command {
        command: Command,
        reply: ReplyTx,
    },
    Read(ReadFn),
    /// A command, then (if accepted) a read of the router right after it.
    CommandThenRead {
        command: Command,
        reply: ReplyTx,
        read: ReadFn,
    },
    Erase {
        contact: ContactId,
        reply: oneshot::Sender<Result<Erasure, EngineError>>,
    },
    Retention {
        purge_before: Timestamp,
        held_at: Option<u64>,
        reply: oneshot::Sender<Result<u64, EngineError>>,
    },
    Shutdown(oneshot::Sender<()>),
}

/// Who is told once a [`Pending`] entry's turn comes, that is once every earlier one is
/// committed.
enum Answer {
    /// Nobody (events of a tick).
    Nobody,
    /// A command's caller, with its events.
    Events(ReplyTx),
    /// A refused command's caller, with the refusal.
    Refused(ReplyTx, RouteError),
    /// A reader, with its result.
    Read(Deliver),
}

/// Events appended to the journal (or none), waiting for their acknowledgement and for every
/// earlier entry's.
struct Pending {
    ack: Option<Ack<u64>>,
    events: Vec<Event>,
    answer: Answer,
}

/// A handle to a running engine. Cheap to clone; every clone talks to the same router.
#[derive(Clone)]
pub struct Engine {
    requests: mpsc::Sender<Request>,
    /// Taken when the engine ends, so that subscriptions end too (a subscription ends once
    /// every sender is gone, and clones of this handle may live on).
    events: Arc<Mutex<Option<broadcast::Sender<Committed>>>>,
    store: StoreHandle,
    stopped: Arc<AtomicBool>,
    task: Arc<tokio::sync::Mutex<Option<JoinHandle<()>>>>,
    /// The pace of each queue's acceptances, for the expected wait every channel states.
    pace: Arc<Mutex<crate::core::Pace>>,
    /// The journal positions running views still need: retention stops before them.
    holds: holds::Holds,
    /// The views started on this engine, awaited at the server's stop.
    views: views::Running,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

/// What [`Engine::start`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartReport {
    /// Events replayed after the snapshot.
    pub replayed: u64,
    /// Whether recovery started from a snapshot.
    pub from_snapshot: bool,
    /// Whether the configuration file seeded the database now.
    pub seeded: bool,
    /// Open interactions found.
    pub open_interactions: usize,
    /// On a database seeded before: how many queues and agents of the configuration file are
    /// missing from it or configured differently (each logged as a warning; `guichet apply`
    /// applies them).
    pub config_differences: usize,
}

impl Engine {
    /// Opens the store, recovers the router, seeds an empty database from `seed` (a seeded one
    /// is compared with it, and the differences logged), logs every agent out, and starts the
    /// engine with the system clock.
    pub async fn start(
        config: EngineConfig,
        seed: impl Into<Seed>,
    ) -> Result<(Engine, StartReport), EngineError> {
        Engine::start_with_clock(config, seed, Arc::new(SystemClock)).await
    }

    /// Like [`Engine::start`], with the given clock.
    pub async fn start_with_clock(
        config: EngineConfig,
        seed: impl Into<Seed>,
        clock: Arc<dyn Clock>,
    ) -> Result<(Engine, StartReport), EngineError> {
        let store_config = config.store.clone();
        let seed: Seed = seed.into();
        let opened = tokio::task::spawn_blocking(move || -> Result<_, EngineError> {
            let store = Store::open(&store_config)?;
            // A warm standby taking over hands its router over: only the tail is replayed.
            let warm = store_config.fence.as_ref().and_then(|f| f.take_warm());
            let recovered = match warm {
                Some(warm) => {
                    let from = warm.last_seq;
                    let recovered = store.catch_up(warm)?;
                    tracing::info!(
                        from,
                        tail = recovered.replayed,
                        "warm takeover: the followed router needed {} event(s) of the tail",
                        recovered.replayed
                    );
                    recovered
                }
                None => store.recover_router()?,
            };
            let seeded = store.is_seeded()?;
            Ok((store, recovered, seeded))
        })
        .await
        .map_err(|_| EngineError::Stopped)??;
        let (store, recovered, already_seeded) = opened;
        let mut router = recovered.router;
        router.set_calendar(seed.calendar.clone());
        let journal = store.start_journal()?;
        let now = clock.now();

        // Startup commands: seed an empty database, then log everybody out.
        let mut startup: Vec<Event> = Vec::new();
        let mut config_differences = 0;
        if !already_seeded {
            for command in seed.commands() {
                startup.extend(router.handle(now, command)?);
            }
        } else {
            let queues: Vec<_> = router.queues().into_iter().map(|q| q.config).collect();
            let agents: Vec<_> = router.agents().into_iter().map(|a| a.config).collect();
            let plan = crate::reconcile::Plan::new(&seed, &queues, &agents, None, false);
            if !plan.is_empty() {
                config_differences = plan.changes.len();
                tracing::warn!(
                    "the configuration file differs from the database, which wins (the file \
                     only seeds an empty database); `guichet apply FILE --yes` applies it:\n{}",
                    plan.summary(50)
                );
            }
        }
        let logged_in: Vec<_> = router
            .agents()
            .into_iter()
            .filter(|a| a.state != AgentState::Offline)
            .map(|a| a.config.id)
            .collect();
        for agent in logged_in {
            startup.extend(router.handle(now, Command::Logout { agent })?);
        }
        startup.extend(router.tick(now));
        if !startup.is_empty() {
            let ack = append_blocking(&journal, &startup).await?;
            ack.await.map_err(|_| EngineError::Stopped)??;
        }
        let store = StoreHandle::new(store);
        if !already_seeded {
            store.run(|s| s.mark_seeded()).await?;
        }
        let report = StartReport {
            replayed: recovered.replayed,
            from_snapshot: recovered.snapshot_seq.is_some(),
            seeded: !already_seeded,
            open_interactions: router.open_count(),
            config_differences,
        };

        let (requests, requests_rx) = mpsc::channel(config.command_queue.max(1));
        let (events_tx, _) = broadcast::channel(config.event_buffer.max(1));
        let events = Arc::new(Mutex::new(Some(events_tx.clone())));
        let stopped = Arc::new(AtomicBool::new(false));
        let (pending_tx, pending_rx) = mpsc::channel(config.command_queue.max(1));
        let first_seq = store.run(|s| s.last_committed_seq()).await?;
        let pace = Arc::new(Mutex::new(crate::core::Pace::new()));
        let committer = tokio::spawn(commit_loop(
            pending_rx,
            events_tx,
            Arc::clone(&stopped),
            first_seq,
        ));
        let retention_clock = Arc::clone(&clock);
        let owner = RouterTask {
            router,
            decision_time: metrics::histogram!(
                crate::obs::metrics::names::ROUTING_DECISION_SECONDS
            ),
            decisions: 0,
            clock,
            journal,
            pending: pending_tx,
            stopped: Arc::clone(&stopped),
            pace: Arc::clone(&pace),
        };
        let publisher = Arc::clone(&events);
        let retention = config
            .store
            .retention_days
            .map(|days| u64::from(days) * 86_400_000);
        let handle = tokio::spawn(async move {
            let journal = owner.run(requests_rx).await;
            // Every pending acknowledgement is answered and published before the journal
            // closes; then the subscriptions end.
            let _ = committer.await;
            take_sender(&publisher);
            let _ = tokio::task::spawn_blocking(move || journal.shutdown()).await;
        });
        let engine = Engine {
            requests,
            events,
            store,
            stopped,
            task: Arc::new(tokio::sync::Mutex::new(Some(handle))),
            pace,
            holds: holds::Holds::default(),
            views: views::Running::default(),
        };
        if let Some(keep_ms) = retention {
            tokio::spawn(retention_loop(engine.clone(), retention_clock, keep_ms));
        }
        Ok((engine, report))
    }

    /// Handles a command; returns its events once they are committed.
    ///
    /// Fails at once with [`EngineError::Overloaded`] when the command queue is full.
    pub async fn send(&self, command: Command) -> Result<Vec<Event>, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.requests
            .try_send(Request::Command { command, reply })
            .map_err(refused)?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// Runs `f` on the router, between two commands, and returns its result: a consistent read
    /// (for example `|r| r.explain(&id)`). Keep `f` short: the router waits for it.
    ///
    /// `f` sees every command queued before it and every timer due by then; the result is
    /// returned once all of that is committed, so a reader never sees state that a crash could
    /// take back. Fails at once with [`EngineError::Overloaded`] when the command queue is full.
    /// If `f` panics, the panic resumes in the caller; the engine goes on.
    pub async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Router) -> R + Send + 'static,
    ) -> Result<R, EngineError> {
        let (read, rx) = boxed_read(f);
        self.requests
            .try_send(Request::Read(read))
            .map_err(refused)?;
        read_result(rx).await
    }

    /// Like [`Engine::read`], with the journal sequence number of the last event the read saw:
    /// a view seeded from the result follows the committed events after that number, exactly.
    pub async fn read_at<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Router) -> R + Send + 'static,
    ) -> Result<(R, u64), EngineError> {
        let (read, rx) = boxed_read_at(f);
        self.requests
            .try_send(Request::Read(read))
            .map_err(refused)?;
        read_result(rx).await
    }

    /// Handles a command and, if the router accepts it, runs `f` on the router right after it
    /// (in the same turn: nothing else happens in between); returns the command's events and
    /// `f`'s result once the events are committed. One trip to the router instead of a
    /// [`send`](Engine::send) then a [`read`](Engine::read).
    pub async fn send_then_read<R: Send + 'static>(
        &self,
        command: Command,
        f: impl FnOnce(&Router) -> R + Send + 'static,
    ) -> Result<(Vec<Event>, R), EngineError> {
        let (reply, events_rx) = oneshot::channel();
        let (read, read_rx) = boxed_read(f);
        self.requests
            .try_send(Request::CommandThenRead {
                command,
                reply,
                read,
            })
            .map_err(refused)?;
        let events = events_rx.await.map_err(|_| EngineError::Stopped)??;
        Ok((events, read_result(read_rx).await?))
    }

    /// Commits one of Guichet's own messages about `interaction`, open or closed (a completion
    /// notice, a survey question, a transcript): see [`Command::FollowUp`]. Refused with
    /// [`RouteError::UnknownInteraction`] when the journal has no such interaction, and with
    /// [`RouteError::InvalidFollowUp`] when the message is inbound or has an agent.
    pub async fn follow_up(
        &self,
        interaction: InteractionId,
        message: crate::core::Message,
    ) -> Result<Vec<Event>, EngineError> {
        let known = self
            .store
            .run(move |s| s.interaction_spec(interaction))
            .await?;
        if known.is_none() {
            return Err(EngineError::Route(RouteError::UnknownInteraction(
                interaction,
            )));
        }
        self.send(Command::FollowUp {
            interaction,
            message,
        })
        .await
    }

    /// Erases a contact's personal data (GDPR right to erasure) from the journal and snapshots,
    /// keeping the anonymous figures (waits, outcomes) that indicators need: see
    /// [`Journal::erase_contact`]. Refused with [`StoreError::ContactHasOpenInteractions`] while
    /// the contact has an open interaction (cancel or complete it first).
    pub async fn erase_contact(&self, contact: ContactId) -> Result<Erasure, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.requests
            .try_send(Request::Erase { contact, reply })
            .map_err(refused)?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// Deletes journal rows older than `purge_before` that recovery no longer needs (see
    /// [`Journal::retention`]) and that no running view holds ([`Engine::hold_retention`]);
    /// returns how many. The engine also runs this every hour when `[store] retention_days`
    /// is set.
    pub async fn purge_before(&self, purge_before: Timestamp) -> Result<u64, EngineError> {
        let held_at = self.holds.lowest().map(|(view, seq)| {
            tracing::debug!(view, seq, "retention held at a view's position");
            seq
        });
        let (reply, rx) = oneshot::channel();
        self.requests
            .try_send(Request::Retention {
                purge_before,
                held_at,
                reply,
            })
            .map_err(refused)?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// Holds retention at `seq` for `view`: no journal row after it is purged until the view
    /// moves its hold on or releases it. The views that send something to citizens or keep
    /// durable figures hold at their checkpoint, so that they never find the events they still
    /// have to act on purged. Replaces `view`'s previous hold.
    pub fn hold_retention(&self, view: &'static str, seq: u64) {
        self.holds.set(view, seq);
    }

    /// Releases `view`'s retention hold.
    pub fn release_retention(&self, view: &'static str) {
        self.holds.release(view);
    }

    /// Committed events from now on, in journal order. The subscription ends (`Closed`, after
    /// the batches still buffered) when the engine stops; one taken after that is closed at once.
    pub fn subscribe(&self) -> broadcast::Receiver<Committed> {
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        match events.as_ref() {
            Some(sender) => sender.subscribe(),
            None => broadcast::channel(1).1,
        }
    }

    /// The expected wait, in milliseconds, of the interaction at `position` (1: next) in
    /// `queue`: the one definition every channel states ([`crate::core::Pace`]); `None` until
    /// two acceptances of the queue's interactions were seen since the server started.
    pub fn expected_wait_ms(&self, queue: &QueueId, position: usize) -> Option<u64> {
        // A panic elsewhere while holding this lock cannot leave the pace inconsistent.
        let pace = self.pace.lock().unwrap_or_else(|e| e.into_inner());
        pace.expected_wait_ms(queue, position)
    }

    /// The store, for its tables (tokens, IVR versions, indicators...): call it from async code
    /// with [`StoreHandle::run`].
    pub fn store(&self) -> &StoreHandle {
        &self.store
    }

    /// Whether the engine has stopped.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Stops taking commands, lets every pending commit finish and be answered, ends the
    /// subscriptions and closes the journal; returns once the database is closed. Requests
    /// queued before the shutdown are served; those queued after it, and later ones, fail with
    /// [`EngineError::Stopped`]. Calling it again (from any clone, even concurrently) just waits
    /// for the same end. The data directory's lock is released when the last clone of the
    /// handle is dropped.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.requests.send(Request::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
        // Held until the task has ended, so that a concurrent or later call waits for the end
        // rather than returning while the first one is still closing the journal.
        let mut task = self.task.lock().await;
        if let Some(handle) = task.take() {
            let _ = handle.await;
        }
    }
}

/// How long after the engine starts the hourly retention first runs.
const RETENTION_FIRST_AFTER: Duration = Duration::from_secs(60);

/// Purges the journal of events older than `keep_ms` every hour, until the engine stops.
async fn retention_loop(engine: Engine, clock: Arc<dyn Clock>, keep_ms: u64) {
    // The first run waits for the views started with the server to have taken their
    // positions (and held retention there).
    let first = tokio::time::Instant::now() + RETENTION_FIRST_AFTER;
    let mut hourly = tokio::time::interval_at(first, Duration::from_secs(3600));
    hourly.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        hourly.tick().await;
        let before = Timestamp(clock.now().0.saturating_sub(keep_ms));
        match engine.purge_before(before).await {
            Ok(rows) => tracing::info!(rows, "retention: old journal rows purged"),
            Err(EngineError::Stopped) => break,
            Err(e) => tracing::warn!(error = %e, "retention postponed"),
        }
    }
}

/// What a read closure hands back: its result, or its panic.
type ReadResult<R> = Result<R, Box<dyn Any + Send>>;

/// Wraps a reader for the router task, and the receiver of its result.
fn boxed_read<R: Send + 'static>(
    f: impl FnOnce(&Router) -> R + Send + 'static,
) -> (ReadFn, oneshot::Receiver<ReadResult<R>>) {
    let (tx, rx) = oneshot::channel::<ReadResult<R>>();
    let read: ReadFn = Box::new(move |router: &Router| {
        // The router is only borrowed: a panicking reader cannot leave it half-changed.
        let result = panic::catch_unwind(AssertUnwindSafe(|| f(router)));
        Box::new(move |_seq| {
            let _ = tx.send(result);
        })
    });
    (read, rx)
}

/// Like [`boxed_read`], the result coming with the sequence number of the last event it saw.
fn boxed_read_at<R: Send + 'static>(
    f: impl FnOnce(&Router) -> R + Send + 'static,
) -> (ReadFn, oneshot::Receiver<ReadResult<(R, u64)>>) {
    let (tx, rx) = oneshot::channel::<ReadResult<(R, u64)>>();
    let read: ReadFn = Box::new(move |router: &Router| {
        // The router is only borrowed: a panicking reader cannot leave it half-changed.
        let result = panic::catch_unwind(AssertUnwindSafe(|| f(router)));
        Box::new(move |seq| {
            let _ = tx.send(result.map(|r| (r, seq)));
        })
    });
    (read, rx)
}

/// A reader's result; its panic resumes in the caller.
async fn read_result<R>(rx: oneshot::Receiver<ReadResult<R>>) -> Result<R, EngineError> {
    match rx.await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(payload)) => panic::resume_unwind(payload),
        Err(_) => Err(EngineError::Stopped),
    }
}

/// The error for a request the engine's queue refused.
fn refused<T>(e: mpsc::error::TrySendError<T>) -> EngineError {
    match e {
        mpsc::error::TrySendError::Full(_) => EngineError::Overloaded,
        mpsc::error::TrySendError::Closed(_) => EngineError::Stopped,
    }
}

/// Appends a copy of `events`, waiting while the journal's queue is full: backpressure reaches
/// callers as a full command queue (the router task stops taking commands meanwhile), never as
/// lost events.
async fn append_blocking(journal: &Journal, events: &[Event]) -> Result<Ack<u64>, EngineError> {
    loop {
        match journal.append(events.to_vec()) {
            Ok(ack) => return Ok(ack),
            Err(e) if e.is_overloaded() => tokio::time::sleep(Duration::from_millis(1)).await,
            Err(e) => return Err(e.into()),
        }
    }
}

struct RouterTask {
    router: Router,
    /// `guichet_routing_decision_seconds` (a no-op unless a metrics recorder is installed).
    decision_time: metrics::Histogram,
    /// Commands handled, for sampling the decision time.
    decisions: u64,
    clock: Arc<dyn Clock>,
    journal: Journal,
    pending: mpsc::Sender<Pending>,
    stopped: Arc<AtomicBool>,
    pace: Arc<Mutex<crate::core::Pace>>,
}

impl RouterTask {
    async fn run(mut self, mut requests: mpsc::Receiver<Request>) -> Journal {
        loop {
            if self.stopped.load(Ordering::SeqCst) {
                break;
            }
            // Timers due now (typically on waking from the sleep below) are processed first.
            let now = self.clock.now();
            let deadline = self.router.next_deadline();
            if deadline.is_some_and(|d| d <= now) {
                let events = self.router.tick(now);
                self.commit(events, Answer::Nobody).await;
                continue;
            }
            // Never sleep past MAX_SLEEP: the deadline is on the engine's clock, which may jump
            // while tokio's timer runs on its own.
            let sleep = deadline.map(|d| Duration::from_millis(d.millis_since(now)).min(MAX_SLEEP));
            let request = tokio::select! {
                biased;
                request = requests.recv() => request,
                _ = sleep_or_forever(sleep) => continue,
            };
            let Some(request) = request else {
                break;
            };
            // The clock may have moved while the task waited: the request is served at `now`,
            // after every timer due by then.
            let now = self.clock.now();
            let ticked = self.router.tick(now);
            self.commit(ticked, Answer::Nobody).await;
            if self.stopped.load(Ordering::SeqCst) {
                // Dropping the request tells its caller the engine stopped.
                break;
            }
            match request {
                Request::Shutdown(done) => {
                    let _ = done.send(());
                    break;
                }
                Request::Read(f) => {
                    let deliver = f(&self.router);
                    self.commit(Vec::new(), Answer::Read(deliver)).await;
                }
                Request::Erase { contact, reply } => self.erase(contact, reply),
                Request::Retention {
                    purge_before,
                    held_at,
                    reply,
                } => forward(self.journal.retention_held(purge_before, held_at), reply),
                Request::CommandThenRead {
                    command,
                    reply,
                    read,
                } => match self.decide(now, command) {
                    // The read is dropped unrun: its caller has the refusal.
                    Err(e) => self.commit(Vec::new(), Answer::Refused(reply, e)).await,
                    Ok(events) => {
                        self.commit(events, Answer::Events(reply)).await;
                        let deliver = read(&self.router);
                        self.commit(Vec::new(), Answer::Read(deliver)).await;
                    }
                },
                Request::Command { command, reply } => match self.decide(now, command) {
                    Err(e) => self.commit(Vec::new(), Answer::Refused(reply, e)).await,
                    Ok(events) => self.commit(events, Answer::Events(reply)).await,
                },
            }
        }
        self.stopped.store(true, Ordering::SeqCst);
        // Callers still queued are told the engine stopped (their sender drops with `requests`).
        self.journal
    }

    /// Handles a command on the router, timing one decision in [`DECISION_SAMPLE`]: reading
    /// the clock twice and recording costs about a tenth of a decision, too much for every one.
    fn decide(&mut self, now: Timestamp, command: Command) -> Result<Vec<Event>, RouteError> {
        self.decisions = self.decisions.wrapping_add(1);
        if self.decisions % DECISION_SAMPLE != 0 {
            return self.router.handle(now, command);
        }
        let started = std::time::Instant::now();
        let result = self.router.handle(now, command);
        self.decision_time.record(started.elapsed().as_secs_f64());
        result
    }

    /// Appends events and hands the acknowledgement to the committer, which answers in order.
    /// An answer without events (a read, a refusal, a repeated creation) still goes through
    /// the committer, so that it is given after every earlier commit: a repeated creation is
    /// acknowledged only once the original is durable, and a read or a refusal never reveals
    /// state that is not.
    async fn commit(&mut self, events: Vec<Event>, answer: Answer) {
        if events.is_empty() && matches!(answer, Answer::Nobody) {
            return;
        }
        let ack = if events.is_empty() {
            None
        } else {
            match append_blocking(&self.journal, &events).await {
                Ok(ack) => Some(ack),
                Err(e) => {
                    tracing_error(&e);
                    self.stopped.store(true, Ordering::SeqCst);
                    // The caller is told the engine stopped (a reader's result is dropped).
                    answer.fail();
                    return;
                }
            }
        };
        if ack.is_some() && self.journal.snapshot_due() {
            // An optimisation only: a refused snapshot is asked for again after the next commit.
            match self.journal.snapshot(self.router.snapshot()) {
                Ok(_ack) => tracing::debug!("snapshot queued"),
                Err(e) => tracing::debug!(error = %e, "snapshot postponed"),
            }
        }
        if events
            .iter()
            .any(|e| matches!(e.kind, EventKind::OfferAccepted { .. }))
        {
            let mut pace = self.pace.lock().unwrap_or_else(|e| e.into_inner());
            for e in &events {
                if let EventKind::OfferAccepted { interaction, .. } = &e.kind {
                    if let Some(view) = self.router.interaction(interaction) {
                        pace.accepted(&view.queue, e.at);
                    }
                }
            }
        }
        if self
            .pending
            .send(Pending {
                ack,
                events,
                answer,
            })
            .await
            .is_err()
        {
            self.stopped.store(true, Ordering::SeqCst);
        }
    }
}

impl RouterTask {
    /// Erases a contact's personal data: refused while the router has an open interaction of
    /// that contact; otherwise the router forgets the contact's last agent and the journal
    /// scrubs its ended interactions (after every earlier append is committed).
    fn erase(&mut self, contact: ContactId, reply: oneshot::Sender<Result<Erasure, EngineError>>) {
        let open = self.router.open_of_contact(&contact);
        if !open.is_empty() {
            let _ = reply.send(Err(EngineError::Store(
                StoreError::ContactHasOpenInteractions { contact, open },
            )));
            return;
        }
        self.router.forget_contact(&contact);
        forward(self.journal.erase_contact(contact), reply);
    }
}

/// Answers `reply` once the journal's acknowledgement comes, without holding up the router.
fn forward<T: Send + 'static>(
    ack: Result<Ack<T>, StoreError>,
    reply: oneshot::Sender<Result<T, EngineError>>,
) {
    match ack {
        Err(e) => {
            let _ = reply.send(Err(e.into()));
        }
        Ok(ack) => {
            tokio::spawn(async move {
                let result = match ack.await {
                    Ok(Ok(value)) => Ok(value),
                    Ok(Err(e)) => Err(EngineError::Store(e)),
                    Err(_) => Err(EngineError::Stopped),
                };
                let _ = reply.send(result);
            });
        }
    }
}

impl Answer {
    /// Tells the caller that the engine stopped before its answer could be made durable.
    fn fail(self) {
        match self {
            Answer::Nobody => {}
            Answer::Events(reply) | Answer::Refused(reply, _) => {
                let _ = reply.send(Err(EngineError::Stopped));
            }
            // Dropping the result drops its sender: the reader gets `Stopped`.
            Answer::Read(deliver) => drop(deliver),
        }
    }
}

async fn sleep_or_forever(duration: Option<Duration>) {
    match duration {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Drops the engine's own event sender; the subscriptions end once the committer's is gone too.
fn take_sender(events: &Mutex<Option<broadcast::Sender<Committed>>>) {
    events.lock().unwrap_or_else(|e| e.into_inner()).take();
}

/// Awaits acknowledgements in journal order; publishes and answers each once committed.
///
/// After a failed commit nothing later is acknowledged, not even an answer without events: it
/// could depend on the events that were lost (a repeated creation of one that failed to commit).
async fn commit_loop(
    mut pending: mpsc::Receiver<Pending>,
    events: broadcast::Sender<Committed>,
    stopped: Arc<AtomicBool>,
    mut last_seq: u64,
) {
    let mut failed = false;
    while let Some(Pending {
        ack,
        events: batch,
        answer,
    }) = pending.recv().await
    {
        let outcome = match ack {
            _ if failed => Err(EngineError::Stopped),
            None => Ok(last_seq),
            Some(ack) => match ack.await {
                Ok(Ok(seq)) => Ok(seq),
                Ok(Err(e)) => Err(EngineError::Store(e)),
                Err(_) => Err(EngineError::Stopped),
            },
        };
        match outcome {
            Ok(seq) => {
                last_seq = seq;
                if !batch.is_empty() {
                    // No subscriber is not an error.
                    let _ = events.send(Committed {
                        seq,
                        events: Arc::from(batch.clone()),
                    });
                }
                match answer {
                    Answer::Nobody => {}
                    Answer::Events(reply) => {
                        let _ = reply.send(Ok(batch));
                    }
                    Answer::Refused(reply, e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                    Answer::Read(deliver) => deliver(last_seq),
                }
            }
            Err(e) => {
                if !failed {
                    tracing_error(&e);
                    failed = true;
                }
                stopped.store(true, Ordering::SeqCst);
                answer.fail();
            }
        }
    }
}

fn tracing_error(e: &EngineError) {
    tracing::error!(error = %e, "journal failure: the engine stops; restart to recover the last committed state");
}
