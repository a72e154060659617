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
//! - a full command queue answers [`EngineError::Overloaded`] at once, never unbounded memory.
//!
//! Between commands the task sleeps until [`Router::next_deadline`] and ticks the router then
//! (offer timeouts, escalation, wrap-up ends). On start it rebuilds the router from the journal
//! (latest snapshot plus later events), seeds an empty database from the configuration file, and
//! logs every agent out: agents log in again, and offers that were pending go back to their
//! queues in their original place.
//!
//! If the journal fails to commit, the router's state is ahead of what is durable: the engine
//! stops (fail-stop) and answers every pending and later command with [`EngineError::Stopped`];
//! a restart recovers the last committed state.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::config::{Config, EngineLimits};
use crate::core::{AgentState, Command, Event, RouteError, Router, Timestamp};
use crate::store::{Ack, Journal, Store, StoreConfig, StoreError};

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

    /// The `[store]` and `[engine]` settings of a configuration file.
    pub fn from_config(config: &Config) -> Self {
        EngineConfig {
            store: config.store.clone(),
            command_queue: config.engine.command_queue,
            event_buffer: config.engine.event_buffer,
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

type ReadFn = Box<dyn FnOnce(&Router) + Send>;

enum Request {
    Command {
        command: Command,
        reply: oneshot::Sender<Result<Vec<Event>, EngineError>>,
    },
    Read(ReadFn),
    Shutdown(oneshot::Sender<()>),
}

/// Events appended to the journal, waiting for their acknowledgement.
struct Pending {
    ack: Option<Ack<u64>>,
    events: Vec<Event>,
    reply: Option<oneshot::Sender<Result<Vec<Event>, EngineError>>>,
}

/// A handle to a running engine. Cheap to clone; every clone talks to the same router.
#[derive(Clone)]
pub struct Engine {
    requests: mpsc::Sender<Request>,
    /// Where subscribers subscribe. The committer owns the other sender; this one is taken
    /// (`None`) when the engine stops, so that every subscriber's stream ends with `Closed` once
    /// it has read the last committed batch. (Were it kept in every clone of the handle, the
    /// channel would never close: streams over it would never end, and a graceful shutdown
    /// would wait for them forever.)
    events: Arc<std::sync::RwLock<Option<broadcast::Sender<Committed>>>>,
    store: Arc<Store>,
    stopped: Arc<AtomicBool>,
    task: Arc<tokio::sync::Mutex<Option<JoinHandle<()>>>>,
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
}

impl Engine {
    /// Opens the store, recovers the router, seeds an empty database from `seed`, logs every
    /// agent out, and starts the engine with the system clock.
    pub async fn start(
        config: EngineConfig,
        seed: &Config,
    ) -> Result<(Engine, StartReport), EngineError> {
        Engine::start_with_clock(config, seed, Arc::new(SystemClock)).await
    }

    /// Like [`Engine::start`], with the given clock.
    pub async fn start_with_clock(
        config: EngineConfig,
        seed: &Config,
        clock: Arc<dyn Clock>,
    ) -> Result<(Engine, StartReport), EngineError> {
        let store_config = config.store.clone();
        let seed = seed.clone();
        let opened = tokio::task::spawn_blocking(move || -> Result<_, EngineError> {
            let store = Store::open(&store_config)?;
            let recovered = store.recover_router()?;
            let seeded = store.is_seeded()?;
            Ok((store, recovered, seeded))
        })
        .await
        .map_err(|_| EngineError::Stopped)??;
        let (store, recovered, already_seeded) = opened;
        let mut router = recovered.router;
        let journal = store.start_journal()?;
        let now = clock.now();

        // Startup commands: seed an empty database, then log everybody out.
        let mut startup: Vec<Event> = Vec::new();
        if !already_seeded {
            for command in seed.seed_commands() {
                startup.extend(router.handle(now, command)?);
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
        let store = Arc::new(store);
        if !already_seeded {
            let s = Arc::clone(&store);
            tokio::task::spawn_blocking(move || s.mark_seeded())
                .await
                .map_err(|_| EngineError::Stopped)??;
        }
        let report = StartReport {
            replayed: recovered.replayed,
            from_snapshot: recovered.snapshot_seq.is_some(),
            seeded: !already_seeded,
            open_interactions: router.open_count(),
        };

        let (requests, requests_rx) = mpsc::channel(config.command_queue.max(1));
        let (events, _) = broadcast::channel(config.event_buffer.max(1));
        let stopped = Arc::new(AtomicBool::new(false));
        let (pending_tx, pending_rx) = mpsc::channel(config.command_queue.max(1));
        let committer = tokio::spawn(commit_loop(
            pending_rx,
            events.clone(),
            Arc::clone(&stopped),
        ));
        let owner = RouterTask {
            router,
            clock,
            journal,
            pending: pending_tx,
            stopped: Arc::clone(&stopped),
        };
        let events = Arc::new(std::sync::RwLock::new(Some(events)));
        let task_events = Arc::clone(&events);
        let handle = tokio::spawn(async move {
            let journal = owner.run(requests_rx).await;
            // Every pending acknowledgement is answered before the journal closes.
            let _ = committer.await;
            // The committer's sender is gone with it; dropping this one closes the channel.
            task_events
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            let _ = tokio::task::spawn_blocking(move || journal.shutdown()).await;
        });
        Ok((
            Engine {
                requests,
                events,
                store,
                stopped,
                task: Arc::new(tokio::sync::Mutex::new(Some(handle))),
            },
            report,
        ))
    }

    /// Handles a command; returns its events once they are committed.
    ///
    /// Fails at once with [`EngineError::Overloaded`] when the command queue is full.
    pub async fn send(&self, command: Command) -> Result<Vec<Event>, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.requests
            .try_send(Request::Command { command, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => EngineError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => EngineError::Stopped,
            })?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// Runs `f` on the router, between two commands, and returns its result: a consistent read
    /// (for example `|r| r.explain(&id)`). Keep `f` short: the router waits for it.
    pub async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Router) -> R + Send + 'static,
    ) -> Result<R, EngineError> {
        let (tx, rx) = oneshot::channel();
        let read: ReadFn = Box::new(move |router: &Router| {
            let _ = tx.send(f(router));
        });
        self.requests
            .try_send(Request::Read(read))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => EngineError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => EngineError::Stopped,
            })?;
        rx.await.map_err(|_| EngineError::Stopped)
    }

    /// Committed events from now on, in journal order. Once the engine has stopped and the
    /// last batch is read, `recv` answers `Closed`.
    pub fn subscribe(&self) -> broadcast::Receiver<Committed> {
        let events = self.events.read().unwrap_or_else(|e| e.into_inner());
        match events.as_ref() {
            Some(sender) => sender.subscribe(),
            // Stopped: a receiver of a channel already closed.
            None => broadcast::channel(1).1,
        }
    }

    /// The store, for its configuration tables (tokens, IVR versions).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Whether the engine has stopped.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Stops taking commands, lets every pending commit finish and be answered, and closes the
    /// journal; returns once the database is closed. Commands sent later fail with
    /// [`EngineError::Stopped`]. Calling it again (from any clone) just waits for the same end.
    /// The data directory's lock is released when the last clone of the handle is dropped.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.requests.send(Request::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
        let handle = self.task.lock().await.take();
        if let Some(handle) = handle {
            let _ = handle.await;
        }
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
    clock: Arc<dyn Clock>,
    journal: Journal,
    pending: mpsc::Sender<Pending>,
    stopped: Arc<AtomicBool>,
}

impl RouterTask {
    async fn run(mut self, mut requests: mpsc::Receiver<Request>) -> Journal {
        loop {
            if self.stopped.load(Ordering::SeqCst) {
                break;
            }
            let sleep = self
                .router
                .next_deadline()
                .map(|deadline| Duration::from_millis(deadline.millis_since(self.clock.now())));
            let request = tokio::select! {
                biased;
                request = requests.recv() => request,
                _ = sleep_or_forever(sleep) => {
                    let events = self.router.tick(self.clock.now());
                    self.commit(events, None).await;
                    continue;
                }
            };
            match request {
                None => break,
                Some(Request::Shutdown(done)) => {
                    let _ = done.send(());
                    break;
                }
                Some(Request::Read(f)) => f(&self.router),
                Some(Request::Command { command, reply }) => {
                    let now = self.clock.now();
                    let ticked = self.router.tick(now);
                    self.commit(ticked, None).await;
                    match self.router.handle(now, command) {
                        Err(e) => {
                            let _ = reply.send(Err(e.into()));
                        }
                        Ok(events) => self.commit(events, Some(reply)).await,
                    }
                }
            }
        }
        self.stopped.store(true, Ordering::SeqCst);
        // Callers still queued are told the engine stopped (their sender drops with `requests`).
        self.journal
    }

    /// Appends events and hands the acknowledgement to the committer, which replies in order.
    /// A result without events still goes through the committer, so that it is answered after
    /// every earlier commit (a repeated creation is acknowledged only once the original is
    /// durable).
    async fn commit(
        &mut self,
        events: Vec<Event>,
        reply: Option<oneshot::Sender<Result<Vec<Event>, EngineError>>>,
    ) {
        if events.is_empty() && reply.is_none() {
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
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(EngineError::Stopped));
                    }
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
        if self
            .pending
            .send(Pending { ack, events, reply })
            .await
            .is_err()
        {
            self.stopped.store(true, Ordering::SeqCst);
        }
    }
}

async fn sleep_or_forever(duration: Option<Duration>) {
    match duration {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Awaits acknowledgements in journal order; publishes and answers each once committed.
async fn commit_loop(
    mut pending: mpsc::Receiver<Pending>,
    events: broadcast::Sender<Committed>,
    stopped: Arc<AtomicBool>,
) {
    let mut last_seq = 0;
    while let Some(Pending {
        ack,
        events: batch,
        reply,
    }) = pending.recv().await
    {
        let outcome = match ack {
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
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(batch));
                }
            }
            Err(e) => {
                tracing_error(&e);
                stopped.store(true, Ordering::SeqCst);
                if let Some(reply) = reply {
                    let _ = reply.send(Err(EngineError::Stopped));
                }
            }
        }
    }
}

fn tracing_error(e: &EngineError) {
    tracing::error!(error = %e, "journal failure: the engine stops; restart to recover the last committed state");
}
