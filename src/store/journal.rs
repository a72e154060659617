//! [`Journal`]: the handle the engine appends events through, and the counters it shares with
//! the writer thread.
//!
//! Every request goes into one unbounded channel to the writer, in order, behind an admission
//! counter that makes the queue bounded: an append that would push the number of waiting events
//! past [`StoreConfig::queue_capacity`](super::StoreConfig::queue_capacity) is refused at once
//! with [`StoreError::Overloaded`]. Nothing here blocks: the caller gets an [`Ack`] and awaits
//! it (or not) as it likes. The counter counts events from the moment they are accepted until
//! their transaction ends, so it also bounds the memory held by events in flight.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::core::{ContactId, Event, Snapshot, Timestamp};

use super::error::StoreError;
use super::maintenance::Erasure;
use super::writer::{JournalBackend, Writer};
use super::StoreConfig;

/// Resolves when the writer has done what was asked: for an append, `Ok(seq)` once its events
/// are committed (`seq` is the sequence number of its last event).
///
/// The sender is dropped without a value only if the writer thread died; treat a receive error
/// like [`StoreError::Closed`].
pub type Ack<T> = oneshot::Receiver<Result<T, StoreError>>;

/// How many buckets [`JournalStats::batch_sizes`] has.
pub const BATCH_BUCKETS: usize = 16;

/// A request to the writer thread.
pub(crate) enum Msg {
    /// Events to journal.
    Append {
        events: Vec<Event>,
        units: usize,
        ack: oneshot::Sender<Result<u64, StoreError>>,
    },
    /// The state after every event appended before it.
    Snapshot {
        snapshot: Box<Snapshot>,
        ack: oneshot::Sender<Result<u64, StoreError>>,
    },
    /// Delete old journal rows that recovery no longer needs.
    Retention {
        purge_before: Timestamp,
        /// The last sequence number that may be deleted, whatever the snapshots cover.
        held_at: Option<u64>,
        ack: oneshot::Sender<Result<u64, StoreError>>,
    },
    /// Erase a contact's personal data from ended interactions.
    Erase {
        contact: ContactId,
        ack: oneshot::Sender<Result<Erasure, StoreError>>,
    },
    /// Finish everything queued before, then stop.
    Shutdown,
}

/// State shared by the handles and the writer thread.
pub(crate) struct Shared {
    pub path: PathBuf,
    pub capacity: usize,
    /// Units accepted and not yet finished by the writer.
    pub queued: AtomicUsize,
    pub closed: AtomicBool,
    /// Set once, with the error, when the journal halts.
    pub halted: OnceLock<String>,
    pub snapshot_every: u64,
    /// Events appended since the last snapshot was asked for.
    pub since_snapshot: AtomicU64,
    pub transactions: AtomicU64,
    pub failed_transactions: AtomicU64,
    pub appends: AtomicU64,
    pub events: AtomicU64,
    pub snapshots: AtomicU64,
    pub last_seq: AtomicU64,
    pub batch_sizes: [AtomicU64; BATCH_BUCKETS],
    pub thread: Mutex<Option<JoinHandle<Result<(), StoreError>>>>,
}

impl Shared {
    /// Gives back units the writer has finished with.
    pub fn release(&self, units: usize) {
        self.queued.fetch_sub(units, Ordering::AcqRel);
    }

    /// The error for requests refused because the journal halted.
    pub fn halted_error(&self) -> Option<StoreError> {
        self.halted.get().map(|detail| StoreError::Halted {
            path: self.path.clone(),
            detail: detail.clone(),
        })
    }
}

/// Counters of the journal since it started, for tests and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct JournalStats {
    /// Transactions that committed events (one per group commit).
    pub transactions: u64,
    /// Transactions that failed (each attempt counts).
    pub failed_transactions: u64,
    /// Appends acknowledged as committed.
    pub appends: u64,
    /// Events committed.
    pub events: u64,
    /// Snapshots written.
    pub snapshots: u64,
    /// The sequence number of the last committed event.
    pub last_seq: u64,
    /// Units (events, or one per other request) accepted and not yet finished.
    pub queued: usize,
    /// Committed transactions by number of events: bucket `i` counts those with more than
    /// `2^(i-1)` and at most `2^i` events (bucket 0: one event; the last bucket: the rest).
    pub batch_sizes: [u64; BATCH_BUCKETS],
    /// Whether the journal halted after a failed commit.
    pub halted: bool,
}

impl JournalStats {
    /// The mean number of events per committed transaction.
    pub fn mean_batch(&self) -> f64 {
        if self.transactions == 0 {
            0.0
        } else {
            self.events as f64 / self.transactions as f64
        }
    }
}

/// The histogram bucket of a transaction of `events` events.
pub(crate) fn bucket(events: usize) -> usize {
    let bits = usize::BITS - events.saturating_sub(1).leading_zeros();
    (bits as usize).min(BATCH_BUCKETS - 1)
}

/// A cheap, cloneable handle to the journal's writer thread.
///
/// Requests are handled in the order they are made (across clones, in the order they reach the
/// channel). Dropping every handle lets the writer finish what is queued and stop;
/// [`Journal::shutdown`] does the same and waits for it.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.shared.path)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Journal {
    /// Spawns the writer thread on `backend`. `path` names the database in errors (a file, or a
    /// PostgreSQL URL without its password); `last_seq` is the last sequence number used and
    /// `last_at` the time of the last event journaled.
    pub(crate) fn start(
        backend: Box<dyn JournalBackend>,
        path: PathBuf,
        config: &StoreConfig,
        (last_seq, last_at): (u64, i64),
        since_snapshot: u64,
    ) -> Result<Journal, StoreError> {
        let shared = Arc::new(Shared {
            path: path.clone(),
            capacity: config.queue_capacity,
            queued: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            halted: OnceLock::new(),
            snapshot_every: config.snapshot_every,
            since_snapshot: AtomicU64::new(since_snapshot),
            transactions: AtomicU64::new(0),
            failed_transactions: AtomicU64::new(0),
            appends: AtomicU64::new(0),
            events: AtomicU64::new(0),
            snapshots: AtomicU64::new(0),
            last_seq: AtomicU64::new(last_seq),
            batch_sizes: Default::default(),
            thread: Mutex::new(None),
        });
        let (tx, rx) = mpsc::channel();
        let writer = Writer::new(
            backend,
            path.clone(),
            rx,
            Arc::clone(&shared),
            config.max_batch,
            (last_seq, last_at),
        );
        let handle = std::thread::Builder::new()
            .name("guichet-journal".into())
            .spawn(move || writer.run())
            .map_err(|source| StoreError::Io { path, source })?;
        *shared.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok(Journal { tx, shared })
    }

    /// Queues `events` to be journaled, in order, after everything queued before; never blocks.
    ///
    /// The [`Ack`] resolves with the sequence number of the last event once the transaction
    /// holding them is committed, or with an error if it failed (then none of them is durable).
    /// An empty append is a barrier: it resolves, with the last sequence number used, once
    /// everything queued before it is committed.
    ///
    /// Fails at once with [`StoreError::Overloaded`] when the queue is full (nothing is queued
    /// then), [`StoreError::Halted`] after a failed commit, [`StoreError::Closed`] after
    /// shutdown. An append larger than the whole capacity is accepted when the queue is empty.
    pub fn append(&self, events: Vec<Event>) -> Result<Ack<u64>, StoreError> {
        self.check_open()?;
        let units = events.len().max(1);
        let count = events.len() as u64;
        self.reserve(units)?;
        let (ack, rx) = oneshot::channel();
        self.send(Msg::Append { events, units, ack }, units)?;
        self.shared
            .since_snapshot
            .fetch_add(count, Ordering::Relaxed);
        Ok(rx)
    }

    /// Whether enough events were appended since the last snapshot
    /// ([`StoreConfig::snapshot_every`](super::StoreConfig::snapshot_every)) that the engine
    /// should hand one to [`Journal::snapshot`].
    pub fn snapshot_due(&self) -> bool {
        self.shared.since_snapshot.load(Ordering::Relaxed) >= self.shared.snapshot_every
    }

    /// Queues a snapshot of the router's state after every event appended before this call.
    ///
    /// The writer gives it the sequence number of the last event written before it, writes it
    /// once those events are committed (in its own transaction, so acknowledgements do not wait
    /// for it), and keeps only the last two snapshots. The [`Ack`] resolves with that sequence
    /// number. Snapshotting is an optimisation: a failed snapshot loses nothing, recovery just
    /// replays more events.
    pub fn snapshot(&self, snapshot: Snapshot) -> Result<Ack<u64>, StoreError> {
        self.check_open()?;
        self.reserve(1)?;
        let (ack, rx) = oneshot::channel();
        self.send(
            Msg::Snapshot {
                snapshot: Box::new(snapshot),
                ack,
            },
            1,
        )?;
        self.shared.since_snapshot.store(0, Ordering::Relaxed);
        Ok(rx)
    }

    /// Deletes the journal rows that recovery no longer needs: those whose event happened before
    /// `purge_before` **and** whose sequence number is at or before the latest snapshot's (the
    /// latest snapshot at the time the request is handled). Without a snapshot nothing is
    /// deleted. The [`Ack`] resolves with the number of rows deleted.
    ///
    /// Runs on the writer thread in chunks of a few thousand rows, each its own transaction,
    /// between group commits: appends are not held up while a large purge runs. Snapshots and
    /// later rows are never touched. Freed pages are reused by later rows; the file does not
    /// shrink.
    pub fn retention(&self, purge_before: Timestamp) -> Result<Ack<u64>, StoreError> {
        self.retention_held(purge_before, None)
    }

    /// [`Journal::retention`], deleting no row after `held_at` either (when given): the
    /// position of the slowest view of committed events that still needs the rows after it
    /// (see `engine::Engine::hold_retention`).
    pub fn retention_held(
        &self,
        purge_before: Timestamp,
        held_at: Option<u64>,
    ) -> Result<Ack<u64>, StoreError> {
        self.check_closed()?;
        self.reserve(1)?;
        let (ack, rx) = oneshot::channel();
        self.send(
            Msg::Retention {
                purge_before,
                held_at,
                ack,
            },
            1,
        )?;
        Ok(rx)
    }

    /// Erases a contact's personal data (GDPR right to erasure) from the journal and snapshots,
    /// once every event appended before this call is committed.
    ///
    /// Refused with [`StoreError::ContactHasOpenInteractions`] while the contact has an open
    /// interaction (open in the latest snapshot or created after it, and not ended since). For
    /// each of its ended interactions:
    /// - **erased**: in the `interaction_created` row, the contact id, the attributes (IVR and
    ///   channel data) and the external reference (CallSid, Message-ID...) are removed from the
    ///   payload and the `contact` column is cleared; the agent's notes are removed from the
    ///   `interaction_completed` row; in stored snapshots, the same fields of
    ///   interactions that were open then, and the contact's last-agent entry;
    /// - **kept**: the interaction id, timestamps, channel, queue, requirements, priority, SLA
    ///   deadline, every later event (offers, agents, outcome and wrap-up code), so that the
    ///   aggregate indicators (waits, answer rates, abandonment) stay right.
    ///
    /// The running router still remembers the contact's last agent; it drops it only if the
    /// engine forgets it too (otherwise the next snapshot writes it again).
    pub fn erase_contact(&self, contact: ContactId) -> Result<Ack<Erasure>, StoreError> {
        self.check_closed()?;
        self.reserve(1)?;
        let (ack, rx) = oneshot::channel();
        self.send(Msg::Erase { contact, ack }, 1)?;
        Ok(rx)
    }

    /// The journal's counters.
    pub fn stats(&self) -> JournalStats {
        let s = &self.shared;
        let mut batch_sizes = [0; BATCH_BUCKETS];
        for (out, cell) in batch_sizes.iter_mut().zip(&s.batch_sizes) {
            *out = cell.load(Ordering::Relaxed);
        }
        JournalStats {
            transactions: s.transactions.load(Ordering::Relaxed),
            failed_transactions: s.failed_transactions.load(Ordering::Relaxed),
            appends: s.appends.load(Ordering::Relaxed),
            events: s.events.load(Ordering::Relaxed),
            snapshots: s.snapshots.load(Ordering::Relaxed),
            last_seq: s.last_seq.load(Ordering::Acquire),
            queued: s.queued.load(Ordering::Relaxed),
            batch_sizes,
            halted: s.halted.get().is_some(),
        }
    }

    /// Commits everything queued, stops the writer thread and waits for it (this blocks: from
    /// async code, call it in `spawn_blocking`). Later requests through other clones fail with
    /// [`StoreError::Closed`]. Shutting down twice is harmless.
    pub fn shutdown(self) -> Result<(), StoreError> {
        self.shared.closed.store(true, Ordering::SeqCst);
        // The writer may already be gone (every other handle dropped, or a panic): then there
        // is nothing to tell it, and joining reports how it ended.
        let _ = self.tx.send(Msg::Shutdown);
        let handle = self
            .shared
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match handle {
            None => Ok(()),
            Some(handle) => handle.join().unwrap_or(Err(StoreError::ThreadPanicked {
                path: self.shared.path.clone(),
                thread: "journal writer",
            })),
        }
    }

    fn check_closed(&self) -> Result<(), StoreError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        Ok(())
    }

    fn check_open(&self) -> Result<(), StoreError> {
        self.check_closed()?;
        match self.shared.halted_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn reserve(&self, units: usize) -> Result<(), StoreError> {
        let before = self.shared.queued.fetch_add(units, Ordering::AcqRel);
        if before > 0 && before + units > self.shared.capacity {
            self.shared.release(units);
            return Err(StoreError::Overloaded {
                queued: before,
                capacity: self.shared.capacity,
            });
        }
        Ok(())
    }

    fn send(&self, msg: Msg, units: usize) -> Result<(), StoreError> {
        self.tx.send(msg).map_err(|_| {
            self.shared.release(units);
            StoreError::Closed
        })
    }
}
