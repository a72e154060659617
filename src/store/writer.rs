//! The journal's writer thread: group commit, snapshots, and maintenance, in queue order.
//!
//! Loop: block for the first request; if it carries events (or a snapshot), drain whatever else
//! of that sort is already queued, up to `max_batch` events, never splitting an append; encode
//! the events; insert them all in one transaction with explicit, consecutive sequence numbers;
//! commit; then complete every append's acknowledgement with the sequence number of its last
//! event. Snapshots in the batch are written after the commit, in their own transaction, with
//! the sequence number of the last event queued before them.
//!
//! A failed transaction is retried (with backoff) a few times; if it still fails, every append
//! of the batch gets the error and the journal halts: later appends are refused, because the
//! engine has already applied the failed events to its router and committing later ones would
//! leave a hole in the journal that recovery could not replay across.
//!
//! Retention runs as a background job in chunks, each chunk taken only when no request waits.
//!
//! The loop is the same for every backend: what differs (the SQL, the connection, how a commit
//! is made durable) sits behind [`JournalBackend`], implemented here for SQLite and in
//! `pg/journal.rs` for PostgreSQL. Sequence numbers are always assigned here, by this loop, in
//! queue order: never by the database (a `SERIAL` would leave gaps on rollback).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;

use crate::core::{ContactId, Snapshot};

use super::codec::{encode, seq_from_sql, seq_to_sql, Row};
use super::db::ProcessLock;
use super::error::{SqlContext, StoreError};
use super::journal::{bucket, Msg, Shared};
use super::maintenance::{erase_contact, Erasure, RetentionJob, RetentionStep};

/// Pauses before retrying a failed transaction; after the last, the journal halts.
const RETRY_BACKOFF: [Duration; 3] = [
    Duration::from_millis(10),
    Duration::from_millis(100),
    Duration::from_millis(1000),
];

/// How many snapshots are kept.
pub(crate) const SNAPSHOTS_KEPT: i64 = 2;

/// What the writer loop needs from a database. Every method runs on the writer thread, in queue
/// order; each is one transaction (or none).
pub(crate) trait JournalBackend: Send + 'static {
    /// Inserts `rows` with the sequence numbers `base + 1 ..`, in one transaction: all or none.
    fn insert_rows(&mut self, rows: &[Row], base: u64) -> Result<(), StoreError>;
    /// Stores the snapshot `payload` (JSON) at `seq` and keeps only the newest
    /// [`SNAPSHOTS_KEPT`], in one transaction.
    fn write_snapshot(&mut self, seq: u64, at: i64, payload: &str) -> Result<(), StoreError>;
    /// The latest snapshot's sequence number and the journal's first one (retention's bounds).
    fn retention_bounds(&mut self) -> Result<(Option<u64>, Option<u64>), StoreError>;
    /// Deletes the journal rows with `after < seq <= upto` and `at < before`; returns how many.
    fn delete_journal(&mut self, after: u64, upto: u64, before: i64) -> Result<u64, StoreError>;
    /// Erases a contact's personal data (see [`super::Journal::erase_contact`]).
    fn erase_contact(&mut self, contact: &ContactId) -> Result<Erasure, StoreError>;
    /// Closes the connection once everything is written.
    fn close(self: Box<Self>) -> Result<(), StoreError>;
}

/// The SQLite journal: the writer's own connection, and the data directory's process lock
/// (held as long as the writer runs).
pub(crate) struct SqliteJournal {
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
    pub(crate) _lock: Arc<ProcessLock>,
}

impl JournalBackend for SqliteJournal {
    fn insert_rows(&mut self, rows: &[Row], base: u64) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(&self.path)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO journal (seq, at, kind, interaction, agent, contact, payload, \
                     message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .at(&self.path)?;
            for (i, row) in rows.iter().enumerate() {
                insert
                    .execute(params![
                        seq_to_sql(base + 1 + i as u64),
                        row.at,
                        row.kind,
                        row.interaction,
                        row.agent,
                        row.contact,
                        row.payload,
                        row.message,
                    ])
                    .at(&self.path)?;
            }
        }
        tx.commit().at(&self.path)
    }

    fn write_snapshot(&mut self, seq: u64, at: i64, payload: &str) -> Result<(), StoreError> {
        let path = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(path)?;
        tx.execute(
            "DELETE FROM snapshots WHERE seq = ?1",
            params![seq_to_sql(seq)],
        )
        .at(path)?;
        tx.execute(
            "INSERT INTO snapshots (seq, at, payload) VALUES (?1, ?2, ?3)",
            params![seq_to_sql(seq), at, payload],
        )
        .at(path)?;
        let keep_from: Option<i64> = tx
            .query_row(
                "SELECT seq FROM snapshots ORDER BY seq DESC LIMIT 1 OFFSET ?1",
                params![SNAPSHOTS_KEPT - 1],
                |r| r.get(0),
            )
            .optional()
            .at(path)?;
        if let Some(keep_from) = keep_from {
            tx.execute("DELETE FROM snapshots WHERE seq < ?1", params![keep_from])
                .at(path)?;
        }
        tx.commit().at(path)
    }

    fn retention_bounds(&mut self) -> Result<(Option<u64>, Option<u64>), StoreError> {
        let upto: Option<i64> = self
            .conn
            .query_row("SELECT MAX(seq) FROM snapshots", [], |r| r.get(0))
            .at(&self.path)?;
        let first: Option<i64> = self
            .conn
            .query_row("SELECT MIN(seq) FROM journal", [], |r| r.get(0))
            .at(&self.path)?;
        Ok((upto.map(seq_from_sql), first.map(seq_from_sql)))
    }

    fn delete_journal(&mut self, after: u64, upto: u64, before: i64) -> Result<u64, StoreError> {
        self.conn
            .execute(
                "DELETE FROM journal WHERE seq > ?1 AND seq <= ?2 AND at < ?3",
                params![seq_to_sql(after), seq_to_sql(upto), before],
            )
            .at(&self.path)
            .map(|n| n as u64)
    }

    fn erase_contact(&mut self, contact: &ContactId) -> Result<Erasure, StoreError> {
        erase_contact(&mut self.conn, &self.path, contact)
    }

    /// Checkpoints the write-ahead log into the database file so that it starts small next time.
    fn close(self: Box<Self>) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .at(&self.path)?;
        self.conn
            .close()
            .map_err(|(_, e)| StoreError::sqlite(&self.path, e))
    }
}

/// One append of a batch, waiting for the commit.
struct PendingAppend {
    ack: oneshot::Sender<Result<u64, StoreError>>,
    units: usize,
    /// Rows of the batch up to and including this append's.
    rows_end: usize,
}

/// A snapshot of a batch, waiting for the commit.
struct PendingSnapshot {
    ack: oneshot::Sender<Result<u64, StoreError>>,
    snapshot: Box<Snapshot>,
    /// Rows of the batch queued before it.
    rows_before: usize,
}

/// The writer thread's state.
pub(crate) struct Writer {
    backend: Box<dyn JournalBackend>,
    path: PathBuf,
    rx: Receiver<Msg>,
    shared: Arc<Shared>,
    max_batch: usize,
    /// The sequence number of the last event written.
    last_seq: u64,
    /// The time of the last event written (for snapshot rows).
    last_at: i64,
    jobs: VecDeque<RetentionJob>,
}

impl Writer {
    pub(crate) fn new(
        backend: Box<dyn JournalBackend>,
        path: PathBuf,
        rx: Receiver<Msg>,
        shared: Arc<Shared>,
        max_batch: usize,
        (last_seq, last_at): (u64, i64),
    ) -> Writer {
        Writer {
            backend,
            path,
            rx,
            shared,
            max_batch,
            last_seq,
            last_at,
            jobs: VecDeque::new(),
        }
    }

    /// Runs until shutdown or until every handle is dropped; returns how closing went.
    pub(crate) fn run(mut self) -> Result<(), StoreError> {
        let mut carry: Option<Msg> = None;
        loop {
            let msg = match carry.take() {
                Some(msg) => msg,
                None => match self.next_message() {
                    Some(msg) => msg,
                    None => break,
                },
            };
            match msg {
                Msg::Append { .. } | Msg::Snapshot { .. } => {
                    let (batch, rest) = self.gather(msg);
                    carry = rest;
                    self.write_batch(batch);
                }
                Msg::Retention {
                    purge_before,
                    held_at,
                    ack,
                } => match RetentionJob::start(self.backend.as_mut(), purge_before, held_at, ack) {
                    Ok(Some(job)) => self.jobs.push_back(job),
                    Ok(None) => self.shared.release(1),
                    Err((ack, e)) => {
                        self.shared.release(1);
                        let _ = ack.send(Err(e));
                    }
                },
                Msg::Erase { contact, ack } => {
                    let result = self.backend.erase_contact(&contact);
                    self.shared.release(1);
                    let _ = ack.send(result);
                }
                Msg::Shutdown => break,
            }
        }
        while !self.jobs.is_empty() {
            self.retention_step();
        }
        self.close()
    }

    /// The next request; runs retention chunks while none is waiting.
    fn next_message(&mut self) -> Option<Msg> {
        loop {
            if self.jobs.is_empty() {
                return self.rx.recv().ok();
            }
            match self.rx.try_recv() {
                Ok(msg) => return Some(msg),
                Err(TryRecvError::Empty) => self.retention_step(),
                Err(TryRecvError::Disconnected) => return None,
            }
        }
    }

    /// `first` and the appends and snapshots queued behind it, up to `max_batch` events; also
    /// returns the request that ended the batch if it was taken off the queue.
    fn gather(&mut self, first: Msg) -> (Vec<Msg>, Option<Msg>) {
        let mut events = msg_events(&first);
        let mut batch = vec![first];
        while events < self.max_batch {
            match self.rx.try_recv() {
                Ok(msg @ (Msg::Append { .. } | Msg::Snapshot { .. })) => {
                    let n = msg_events(&msg);
                    if events + n > self.max_batch {
                        return (batch, Some(msg));
                    }
                    events += n;
                    batch.push(msg);
                }
                Ok(other) => return (batch, Some(other)),
                Err(_) => break,
            }
        }
        (batch, None)
    }

    /// Encodes, commits and acknowledges one batch, then writes its snapshots.
    fn write_batch(&mut self, batch: Vec<Msg>) {
        let mut rows: Vec<Row> = Vec::new();
        let mut appends: Vec<PendingAppend> = Vec::with_capacity(batch.len());
        let mut snapshots: Vec<PendingSnapshot> = Vec::new();
        for msg in batch {
            match msg {
                Msg::Append { events, units, ack } => {
                    if let Some(e) = self.shared.halted_error() {
                        self.shared.release(units);
                        let _ = ack.send(Err(e));
                        continue;
                    }
                    match events.iter().map(encode).collect::<Result<Vec<Row>, _>>() {
                        Ok(encoded) => {
                            rows.extend(encoded);
                            appends.push(PendingAppend {
                                ack,
                                units,
                                rows_end: rows.len(),
                            });
                        }
                        Err(e) => {
                            self.shared.release(units);
                            let _ = ack.send(Err(e));
                        }
                    }
                }
                Msg::Snapshot { snapshot, ack } => snapshots.push(PendingSnapshot {
                    ack,
                    snapshot,
                    rows_before: rows.len(),
                }),
                // `gather` puts only appends and snapshots in a batch.
                Msg::Retention { ack, .. } => {
                    self.shared.release(1);
                    let _ = ack.send(Err(StoreError::Closed));
                }
                Msg::Erase { ack, .. } => {
                    self.shared.release(1);
                    let _ = ack.send(Err(StoreError::Closed));
                }
                Msg::Shutdown => {}
            }
        }

        let base = self.last_seq;
        let at_before = self.last_at;
        let committed = if rows.is_empty() {
            Ok(())
        } else {
            let started = std::time::Instant::now();
            let result = self.commit_with_retries(&rows, base);
            if result.is_ok() {
                use crate::obs::metrics::names;
                metrics::histogram!(names::JOURNAL_COMMIT_SECONDS)
                    .record(started.elapsed().as_secs_f64());
                metrics::histogram!(names::JOURNAL_BATCH_EVENTS).record(rows.len() as f64);
            }
            result
        };
        match committed {
            Ok(()) => {
                let shared = Arc::clone(&self.shared);
                let s = &*shared;
                if !rows.is_empty() {
                    self.last_seq = base + rows.len() as u64;
                    self.last_at = rows.last().map_or(self.last_at, |r| r.at);
                    s.transactions.fetch_add(1, Ordering::Relaxed);
                    s.events.fetch_add(rows.len() as u64, Ordering::Relaxed);
                    s.batch_sizes[bucket(rows.len())].fetch_add(1, Ordering::Relaxed);
                    s.last_seq.store(self.last_seq, Ordering::Release);
                }
                s.appends.fetch_add(appends.len() as u64, Ordering::Relaxed);
                for append in appends {
                    s.release(append.units);
                    let _ = append.ack.send(Ok(base + append.rows_end as u64));
                }
                for snap in snapshots {
                    let seq = base + snap.rows_before as u64;
                    let at = snap
                        .rows_before
                        .checked_sub(1)
                        .and_then(|i| rows.get(i))
                        .map_or(at_before, |r| r.at);
                    let result = self.write_snapshot(seq, at, &snap.snapshot);
                    if result.is_ok() {
                        s.snapshots.fetch_add(1, Ordering::Relaxed);
                    }
                    s.release(1);
                    let _ = snap.ack.send(result.map(|()| seq));
                }
            }
            Err(detail) => {
                // Halt: the router that produced these events has moved on without them.
                let _ = self.shared.halted.set(detail.clone());
                let halted = || StoreError::Halted {
                    path: self.path.clone(),
                    detail: detail.clone(),
                };
                for append in appends {
                    self.shared.release(append.units);
                    let _ = append.ack.send(Err(halted()));
                }
                for snap in snapshots {
                    self.shared.release(1);
                    let _ = snap.ack.send(Err(halted()));
                }
            }
        }
    }

    /// Inserts the rows with sequence numbers `base + 1 ..` in one transaction, retrying with
    /// backoff; returns the last error's text if every attempt failed.
    fn commit_with_retries(&mut self, rows: &[Row], base: u64) -> Result<(), String> {
        let mut attempt = 0;
        loop {
            match self.backend.insert_rows(rows, base) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.shared
                        .failed_transactions
                        .fetch_add(1, Ordering::Relaxed);
                    // A leader whose term is over never retries (high availability).
                    if matches!(e, StoreError::Fenced { .. }) {
                        return Err(e.to_string());
                    }
                    match RETRY_BACKOFF.get(attempt) {
                        Some(pause) => std::thread::sleep(*pause),
                        None => return Err(e.to_string()),
                    }
                    attempt += 1;
                }
            }
        }
    }

    /// Writes one snapshot and prunes the older ones.
    fn write_snapshot(&mut self, seq: u64, at: i64, snapshot: &Snapshot) -> Result<(), StoreError> {
        let payload = serde_json::to_string(snapshot).map_err(|e| StoreError::Encode {
            what: "snapshot",
            detail: e.to_string(),
        })?;
        self.backend.write_snapshot(seq, at, &payload)
    }

    /// Runs one chunk of the oldest retention job; acknowledges it when done.
    fn retention_step(&mut self) {
        let Some(mut job) = self.jobs.pop_front() else {
            return;
        };
        match job.step(self.backend.as_mut()) {
            RetentionStep::More => self.jobs.push_front(job),
            RetentionStep::Done(result) => {
                self.shared.release(1);
                job.finish(result);
            }
        }
    }

    /// Closes the backend's connection.
    fn close(self) -> Result<(), StoreError> {
        self.backend.close()
    }
}

/// Events carried by a request (a snapshot carries none).
fn msg_events(msg: &Msg) -> usize {
    match msg {
        Msg::Append { events, .. } => events.len(),
        _ => 0,
    }
}
