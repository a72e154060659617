//! The runner of every view of committed events: it owns the subscription, the lag and the
//! shutdown, so that no view writes its own receive loop.
//!
//! A view ([`View`]) is handed every committed event exactly once, in journal order, with its
//! sequence number. The runner follows the engine's broadcast; when the view falls behind (the
//! broadcast dropped batches it had not read, or a batch arrives past a gap), it reads the
//! missed events back from the journal by sequence number ([`Committed::seq`] is exact) and
//! goes on: a view never skips. When the journal no longer holds them (purged by retention), the
//! view rebuilds itself from the router ([`View::rebuild`]) and follows from there. A view whose
//! [`View::apply`] fails is handed the same events again from the journal after a pause.
//!
//! The runner ends once the engine has stopped and the view has been handed every event
//! committed (then [`View::finish`]). The engine keeps a list of the views it runs, so that
//! the server awaits every one of them at its stop ([`Engine::views_ended`]): their last fold
//! and checkpoint are written before the process ends.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::core::Event;
use crate::store::StoreError;

use super::{Committed, Engine};

/// Events handed to a view: consecutive journal events, the first numbered `first_seq`.
#[derive(Debug, Clone)]
pub struct ViewBatch {
    /// The journal sequence number of the first event.
    pub first_seq: u64,
    /// The events, in journal order.
    pub events: Vec<Event>,
    /// Whether the events come from the live broadcast (false: read back from the journal).
    pub live: bool,
}

impl ViewBatch {
    /// The sequence number of the last event (`first_seq - 1` when empty).
    pub fn last_seq(&self) -> u64 {
        (self.first_seq + self.events.len() as u64).saturating_sub(1)
    }

    /// The events with their sequence numbers.
    pub fn numbered(&self) -> impl Iterator<Item = (u64, &Event)> {
        self.events
            .iter()
            .enumerate()
            .map(|(i, e)| (self.first_seq + i as u64, e))
    }
}

/// Why a view could not take a batch: the runner hands it the same events again later.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ViewFailed(pub String);

impl From<StoreError> for ViewFailed {
    fn from(e: StoreError) -> Self {
        ViewFailed(e.to_string())
    }
}

/// A view of committed events, run by [`run_view`].
pub trait View: Send + 'static {
    /// Its name, in logs and metrics.
    fn name(&self) -> &'static str;

    /// How long to let events gather after the first one before handing them over (fewer,
    /// larger batches); none by default.
    fn gather(&self) -> Duration {
        Duration::ZERO
    }

    /// Takes the next events. On failure, nothing of the batch counts as taken: the same
    /// events come again (from the journal).
    fn apply(&mut self, batch: ViewBatch) -> impl Future<Output = Result<(), ViewFailed>> + Send;

    /// The journal no longer holds the events the view missed up to `seq` (retention purged
    /// them; it holds every event after `seq`): the view rebuilds itself (from the router, with
    /// [`Engine::read_at`], or from stored aggregates) and returns the sequence number it is
    /// now up to date with, from which it is handed the journal's events (`seq` itself when it
    /// only needs the events the journal still holds). By default it goes on from the current
    /// end of the journal (the missed events are lost to it, and a warning says how many).
    fn rebuild(
        &mut self,
        engine: &Engine,
        seq: u64,
    ) -> impl Future<Output = Result<u64, ViewFailed>> + Send {
        let store = engine.store().clone();
        let name = self.name();
        async move {
            let last = store.run(|s| s.last_committed_seq()).await?;
            tracing::warn!(
                view = name,
                missed = last.saturating_sub(seq),
                "events purged from the journal before this view read them"
            );
            Ok(last)
        }
    }

    /// The engine stopped and every committed event was handed over.
    fn finish(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// How often, at most, a sending view's checkpoint is written when it sent nothing.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// The durable checkpoint of a view that sends something (notices): the sequence number it
/// has handled, kept in the store under the view's name, so that a restart resumes after it
/// and neither loses nor repeats. Written after every batch that sent something, else at most
/// every second, and at the end. Retention keeps the events after the stored checkpoint
/// ([`Engine::hold_retention`]).
#[derive(Debug)]
pub struct Checkpoint {
    name: &'static str,
    saved: std::time::Instant,
    done: u64,
}

impl Checkpoint {
    /// The checkpoint of view `name`; a view that has none yet (or whose checkpoint cannot be
    /// read, which is logged) starts from the current end of the journal.
    pub async fn load(engine: &Engine, name: &'static str) -> Checkpoint {
        let read = engine
            .store()
            .run(move |s| {
                Ok(match s.view_checkpoint(name)? {
                    Some(seq) => seq,
                    None => s.last_committed_seq()?,
                })
            })
            .await;
        let done = match read {
            Ok(seq) => seq,
            Err(e) => {
                tracing::warn!(
                    view = name,
                    "no checkpoint ({e}): following new events only"
                );
                let store = engine.store().clone();
                store.run(|s| s.last_committed_seq()).await.unwrap_or(0)
            }
        };
        // Retention keeps every event after the checkpoint until the view has acted on it
        // (see `Engine::hold_retention`).
        engine.hold_retention(name, done);
        Checkpoint {
            name,
            saved: std::time::Instant::now(),
            done,
        }
    }

    /// The sequence number the view resumes after.
    pub fn after(&self) -> u64 {
        self.done
    }

    /// Records that the view handled every event up to `seq`; writes it when the batch `sent`
    /// something, or when the last write is a second old.
    pub async fn handled(
        &mut self,
        engine: &Engine,
        seq: u64,
        sent: bool,
    ) -> Result<(), ViewFailed> {
        if sent || self.saved.elapsed() >= CHECKPOINT_EVERY {
            let name = self.name;
            engine
                .store()
                .run(move |s| s.set_view_checkpoint(name, seq))
                .await?;
            self.saved = std::time::Instant::now();
            // Held at the stored checkpoint, not at the last event handled: a restart reads
            // the events after it again, which must still be there.
            engine.hold_retention(name, seq);
        }
        self.done = seq;
        Ok(())
    }

    /// Writes the last event handled, so that a restart does not read the tail again (what
    /// could not be sent is before it, and comes again).
    pub async fn finish(&self, engine: &Engine) {
        let (name, done) = (self.name, self.done);
        let _ = engine
            .store()
            .run(move |s| s.set_view_checkpoint(name, done))
            .await;
    }
}

/// A running view: how far it got, and its end.
#[derive(Debug, Clone)]
pub struct ViewHandle {
    applied: watch::Receiver<u64>,
    task: Arc<tokio::sync::Mutex<Option<JoinHandle<()>>>>,
}

impl ViewHandle {
    /// The sequence number of the last event the view took.
    pub fn applied(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Waits until the view has taken the events up to `seq` (or has stopped).
    pub async fn wait_for(&self, seq: u64) {
        let mut rx = self.applied.clone();
        let _ = rx.wait_for(|applied| *applied >= seq).await;
    }

    /// Waits until the view has taken every event committed so far.
    pub async fn sync(&self, engine: &Engine) -> Result<(), StoreError> {
        let last = engine.store().run(|s| s.last_committed_seq()).await?;
        self.wait_for(last).await;
        Ok(())
    }

    /// Waits until the view has ended, without taking its task (so that [`ViewHandle::stop`]
    /// may still be called meanwhile).
    pub async fn ended(&self) {
        let mut rx = self.applied.clone();
        while rx.changed().await.is_ok() {}
    }

    /// Stops the view now (its reader went away: a client's stream).
    pub async fn stop(&self) {
        if let Some(task) = self.task.lock().await.take() {
            task.abort();
        }
    }

    /// Waits until the view has ended (after the engine stopped, or [`ViewHandle::stop`]).
    pub async fn finished(&self) {
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }
}

/// Events read back from the journal at most per batch handed to a view.
pub const CATCH_UP_CHUNK: usize = 1024;

/// The pause before a failed view is handed its events again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Starts `view` on the events committed after `after` (a sequence number: those up to it are
/// already in the view; [`Engine::read_at`] or the store's last sequence tell where a new view
/// starts). The subscription is taken now, before this returns.
pub fn run_view<V: View>(engine: &Engine, view: V, after: u64) -> ViewHandle {
    let events = engine.subscribe();
    let (tx, rx) = watch::channel(after);
    let runner = Runner {
        engine: engine.clone(),
        events,
        cursor: after,
        applied: tx,
    };
    let name = view.name();
    engine.views.add(name, rx.clone());
    let task = tokio::spawn(tracing::Instrument::instrument(
        runner.run(view),
        tracing::info_span!("view", view = name),
    ));
    ViewHandle {
        applied: rx,
        task: Arc::new(tokio::sync::Mutex::new(Some(task))),
    }
}

/// The views started on an engine ([`run_view`]), by name, each with the end of its progress
/// channel (closed once the view has finished, or was stopped).
#[derive(Debug, Clone, Default)]
pub(super) struct Running(Arc<std::sync::Mutex<Vec<Started>>>);

/// A view's name and the receiving end of its progress.
type Started = (&'static str, watch::Receiver<u64>);

impl Running {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Started>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a view, and forgets those that have ended (a client's stream is a view).
    fn add(&self, name: &'static str, applied: watch::Receiver<u64>) {
        let mut views = self.lock();
        views.retain(|(_, rx)| rx.has_changed().is_ok());
        views.push((name, applied));
    }
}

impl Engine {
    /// Waits, at most `limit` in all, for every view started on this engine to end (they end
    /// once the engine has stopped and they have been handed every committed event: call it
    /// after [`Engine::shutdown`]). A view still running at the limit is logged and left: it
    /// resumes from its durable position at the restart.
    pub async fn views_ended(&self, limit: Duration) {
        let running = std::mem::take(&mut *self.views.lock());
        let deadline = tokio::time::Instant::now() + limit;
        for (name, mut applied) in running {
            let ended = async { while applied.changed().await.is_ok() {} };
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                tracing::warn!(
                    view = name,
                    "view still running after the grace period: it resumes at the restart"
                );
            }
        }
    }
}

/// Starts `view` on the events committed from now on.
pub async fn run_view_from_now<V: View>(
    engine: &Engine,
    view: V,
) -> Result<ViewHandle, StoreError> {
    // Subscribed first: whatever commits in between is read back from the journal or skipped.
    let last = engine.store().run(|s| s.last_committed_seq()).await?;
    Ok(run_view(engine, view, last))
}

struct Runner {
    engine: Engine,
    events: broadcast::Receiver<Committed>,
    cursor: u64,
    applied: watch::Sender<u64>,
}

/// What the live broadcast gave.
enum Received {
    Batch(ViewBatch),
    Behind,
    Closed,
}

impl Runner {
    async fn run<V: View>(mut self, mut view: V) {
        // Whatever the journal holds past the starting point comes first.
        let mut behind = true;
        loop {
            if behind {
                match self.catch_up(&mut view).await {
                    Ok(()) => behind = false,
                    Err(e) => {
                        tracing::warn!(error = %e, "view not caught up yet: retrying");
                        if self.engine.is_stopped() && self.events.is_empty() {
                            // Nothing more will come: one last try at the end.
                            if self.catch_up(&mut view).await.is_err() {
                                tracing::error!("view stopped behind the journal");
                            }
                            break;
                        }
                        tokio::time::sleep(RETRY_AFTER).await;
                        continue;
                    }
                }
            }
            match self.receive(view.gather()).await {
                Received::Closed => {
                    // Batches committed but published after our last read are in the journal.
                    let _ = self.catch_up(&mut view).await;
                    break;
                }
                Received::Behind => {
                    metrics::counter!(
                        crate::obs::metrics::names::VIEW_CATCH_UPS,
                        "view" => view.name()
                    )
                    .increment(1);
                    behind = true;
                }
                Received::Batch(mut batch) => {
                    // Skip what the view already took (read back from the journal meanwhile).
                    let skip = (self.cursor + 1).saturating_sub(batch.first_seq) as usize;
                    if skip >= batch.events.len() {
                        continue;
                    }
                    if skip > 0 {
                        batch.events.drain(..skip);
                        batch.first_seq += skip as u64;
                    }
                    if batch.first_seq != self.cursor + 1 {
                        behind = true;
                        continue;
                    }
                    let last = batch.last_seq();
                    match view.apply(batch).await {
                        Ok(()) => self.advance(last),
                        Err(e) => {
                            tracing::warn!(error = %e, "view failed: its events come again");
                            tokio::time::sleep(RETRY_AFTER).await;
                            behind = true;
                        }
                    }
                }
            }
        }
        view.finish().await;
    }

    fn advance(&mut self, seq: u64) {
        self.cursor = seq;
        self.applied.send_replace(seq);
    }

    /// The next batch of the broadcast, with whatever else is already there (after `gather`).
    async fn receive(&mut self, gather: Duration) -> Received {
        let first = match self.events.recv().await {
            Ok(c) => c,
            Err(broadcast::error::RecvError::Lagged(_)) => return Received::Behind,
            Err(broadcast::error::RecvError::Closed) => return Received::Closed,
        };
        if !gather.is_zero() {
            tokio::time::sleep(gather).await;
        }
        let mut batch = to_batch(&first);
        while batch.events.len() < CATCH_UP_CHUNK {
            match self.events.try_recv() {
                Ok(more) => {
                    let next = to_batch(&more);
                    if next.first_seq != batch.last_seq() + 1 {
                        // Not consecutive: handled on its own next time round, via the journal.
                        return Received::Behind;
                    }
                    batch.events.extend(next.events);
                }
                Err(broadcast::error::TryRecvError::Lagged(_)) => return Received::Behind,
                Err(_) => break,
            }
        }
        Received::Batch(batch)
    }

    /// Reads every event after the cursor back from the journal and hands it over, in chunks;
    /// rebuilds the view when the journal no longer holds the next one.
    async fn catch_up<V: View>(&mut self, view: &mut V) -> Result<(), ViewFailed> {
        loop {
            let (tx, mut rx) = mpsc::channel::<Vec<(u64, Event)>>(2);
            let store = self.engine.store().clone();
            let after = self.cursor;
            let reader = tokio::task::spawn_blocking(move || {
                // Every event up to `last` is committed: the read must hand each one over,
                // unless retention purged it.
                let last = store.last_committed_seq()?;
                let mut chunk = Vec::with_capacity(CATCH_UP_CHUNK);
                let result = store.replay(after, |seq, event| {
                    chunk.push((seq, event));
                    if chunk.len() >= CATCH_UP_CHUNK {
                        let full =
                            std::mem::replace(&mut chunk, Vec::with_capacity(CATCH_UP_CHUNK));
                        if tx.blocking_send(full).is_err() {
                            // The view stopped reading: stop here.
                            return Err(StoreError::Closed);
                        }
                    }
                    Ok(())
                });
                if !chunk.is_empty() {
                    let _ = tx.blocking_send(chunk);
                }
                result.map(|_| last)
            });
            let mut gap = None;
            let mut failed = None;
            while let Some(chunk) = rx.recv().await {
                let Some(&(first_seq, _)) = chunk.first() else {
                    continue;
                };
                if first_seq != self.cursor + 1 {
                    gap = Some(first_seq - 1);
                    break;
                }
                let batch = ViewBatch {
                    first_seq,
                    events: chunk.into_iter().map(|(_, e)| e).collect(),
                    live: false,
                };
                let last = batch.last_seq();
                match view.apply(batch).await {
                    Ok(()) => self.advance(last),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            drop(rx);
            let read = reader.await.map_err(|e| ViewFailed(e.to_string()))?;
            if let Some(e) = failed {
                return Err(e);
            }
            if let Some(held_after) = gap {
                let seq = view.rebuild(&self.engine, held_after).await?;
                self.advance(seq.max(self.cursor));
                continue;
            }
            let last = read?;
            if self.cursor < last {
                // The journal held none of the events up to `last` past the cursor (the last
                // ones were purged too).
                let seq = view.rebuild(&self.engine, last).await?;
                self.advance(seq.max(self.cursor));
                continue;
            }
            return Ok(());
        }
    }
}

fn to_batch(c: &Committed) -> ViewBatch {
    let n = c.events.len() as u64;
    ViewBatch {
        first_seq: (c.seq + 1).saturating_sub(n),
        events: c.events.to_vec(),
        live: true,
    }
}

/// The interactions the router holds that no agent has answered yet (waiting or offered, and
/// never transferred by an agent), as the core's outcome fold follows them, with the journal
/// sequence number of that picture: where a view of the figures starts, or rebuilds from when
/// the journal lost the events it missed.
pub async fn router_pending(
    engine: &Engine,
) -> Result<(Vec<(crate::core::InteractionId, crate::core::Pending)>, u64), super::EngineError> {
    use crate::core::{InteractionPhase, Pending};
    engine
        .read_at(|r| {
            r.interactions()
                .into_iter()
                .filter(|v| {
                    v.transfer.is_none()
                        && matches!(
                            v.phase,
                            InteractionPhase::Waiting | InteractionPhase::Offered { .. }
                        )
                })
                .map(|v| {
                    (
                        v.spec.id,
                        Pending {
                            queue: v.spec.queue.clone(),
                            channel: v.spec.channel,
                            created: v.created_at,
                            sla_deadline: v.sla_deadline,
                        },
                    )
                })
                .collect::<Vec<_>>()
        })
        .await
}

/// A view for the workers that keep their own durable checkpoint in the store and re-read the
/// journal after it (the outbox, the survey task): it tells the worker that an event it cares
/// about was committed. The runner owns the subscription, the lag (events missed by the
/// broadcast are read back from the journal, so no wake-up is lost) and the shutdown.
#[derive(Debug, Clone)]
pub struct Wakeups {
    notify: Arc<tokio::sync::Notify>,
    finished: Arc<std::sync::atomic::AtomicBool>,
    handle: ViewHandle,
}

impl Wakeups {
    /// Waits up to `limit` for a committed event the worker cares about (one committed since
    /// the previous call counts); returns false once the engine has stopped and every event
    /// was handed over.
    pub async fn wait(&self, limit: Duration) -> bool {
        if self.finished.load(std::sync::atomic::Ordering::Acquire) {
            return false;
        }
        let _ = tokio::time::timeout(limit, self.notify.notified()).await;
        !self.finished.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The runner of the view (how far it got).
    pub fn handle(&self) -> &ViewHandle {
        &self.handle
    }
}

struct Waker {
    name: &'static str,
    wanted: fn(&crate::core::EventKind) -> bool,
    notify: Arc<tokio::sync::Notify>,
    finished: Arc<std::sync::atomic::AtomicBool>,
}

impl View for Waker {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn apply(&mut self, batch: ViewBatch) -> Result<(), ViewFailed> {
        if batch.events.iter().any(|e| (self.wanted)(&e.kind)) {
            // A permit is kept when the worker is busy: the wake-up is not lost.
            self.notify.notify_one();
        }
        Ok(())
    }

    async fn rebuild(&mut self, engine: &Engine, _seq: u64) -> Result<u64, ViewFailed> {
        // The worker re-reads the store from its own checkpoint: just wake it.
        self.notify.notify_one();
        Ok(engine.store().run(|s| s.last_committed_seq()).await?)
    }

    async fn finish(&mut self) {
        self.finished
            .store(true, std::sync::atomic::Ordering::Release);
        self.notify.notify_one();
    }
}

/// Starts a [`Wakeups`] view named `name` on the events committed from now on (the worker
/// reads what came before from its own checkpoint); `wanted` picks the events that wake it.
pub async fn run_wakeups(
    engine: &Engine,
    name: &'static str,
    wanted: fn(&crate::core::EventKind) -> bool,
) -> Result<Wakeups, StoreError> {
    let notify = Arc::new(tokio::sync::Notify::new());
    let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let view = Waker {
        name,
        wanted,
        notify: notify.clone(),
        finished: finished.clone(),
    };
    let handle = run_view_from_now(engine, view).await?;
    Ok(Wakeups {
        notify,
        finished,
        handle,
    })
}
