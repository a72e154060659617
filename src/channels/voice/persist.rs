//! Write-behind of the calls still inside the IVR, so that they survive a restart.
//!
//! This file owns [`SessionLog`] (the batching writer) and [`Saved`] (what is kept of a call:
//! enough to answer its next request as if nothing happened). The webhook path only records
//! the call's latest state in a map ([`SessionLog::put`], [`SessionLog::remove`]: a short lock,
//! no I/O, no serialisation); one thread wakes every `[voice] persist_window_ms`, takes the whole map and writes it
//! to the store's `voice_sessions` table (see `store/voice.rs`) in one transaction. Writes of the same call coalesce:
//! only its latest state is written. [`SessionLog::flush`] writes what is pending at once (at
//! graceful shutdown).
//!
//! What a crash loses: the changes of the last window at most. A call whose state was lost is
//! restarted at its tree's entry with an apology (`calls/recovery.rs`); a call whose stale state was kept
//! (it left the IVR within the window) is found by its open interaction first.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::core::Timestamp;
use crate::engine::{Clock, SystemClock};
use crate::ivr::{CallContext, SessionState, Verb};
use crate::store::{StoreError, VoiceSessions};

use super::gateway::Gateway;

/// Rows not written for this long are swept: no call stays an hour in a menu.
pub const STALE_AFTER_MS: u64 = 3_600_000;

/// What is kept of a call that is in the IVR (or recording a voicemail).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Saved {
    /// The gateway the call came through.
    pub gateway: Gateway,
    /// The caller, normalised.
    pub from: String,
    /// The dialled number, normalised.
    pub to: String,
    /// The turn of the last answer.
    pub turn: u32,
    /// The last answer, replayed to a retry.
    pub last: Vec<Verb>,
    /// Where the call stands.
    pub phase: SavedPhase,
}

/// What the webhook path hands over: [`Saved`] as the call has it (the answer shared, not
/// copied). It is turned into JSON on the writer thread, off the request path.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The gateway the call came through.
    pub gateway: Gateway,
    /// The caller, normalised.
    pub from: String,
    /// The dialled number, normalised.
    pub to: String,
    /// The turn of the last answer.
    pub turn: u32,
    /// The last answer.
    pub last: Arc<[Verb]>,
    /// Where the call stands.
    pub phase: SavedPhase,
}

impl Snapshot {
    fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string(&SavedRef {
            gateway: self.gateway,
            from: &self.from,
            to: &self.to,
            turn: self.turn,
            last: &self.last,
            phase: match &self.phase {
                SavedPhase::Ivr { state } => SavedPhaseRef::Ivr { state },
                SavedPhase::Recording { queue, context } => {
                    SavedPhaseRef::Recording { queue, context }
                }
            },
        })
    }

    fn into_saved(self) -> Saved {
        Saved {
            gateway: self.gateway,
            from: self.from,
            to: self.to,
            turn: self.turn,
            last: self.last.to_vec(),
            phase: self.phase,
        }
    }
}

/// [`Saved`] borrowed, for writing it without copying it first.
#[derive(Debug, Serialize)]
pub struct SavedRef<'a> {
    /// The gateway the call came through.
    pub gateway: Gateway,
    /// The caller, normalised.
    pub from: &'a str,
    /// The dialled number, normalised.
    pub to: &'a str,
    /// The turn of the last answer.
    pub turn: u32,
    /// The last answer.
    pub last: &'a [Verb],
    /// Where the call stands.
    pub phase: SavedPhaseRef<'a>,
}

/// [`SavedPhase`] borrowed.
#[derive(Debug, Serialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum SavedPhaseRef<'a> {
    /// In the IVR.
    Ivr {
        /// The interpreter's state.
        state: &'a SessionState,
    },
    /// Recording a voicemail.
    Recording {
        /// The queue that receives it.
        queue: &'a str,
        /// What the IVR learnt.
        context: &'a CallContext,
    },
}

/// The phases worth keeping.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum SavedPhase {
    /// In the IVR, waiting for the caller's answer.
    Ivr {
        /// The interpreter's state (tree, version, node, language, attributes, turns).
        state: SessionState,
    },
    /// Recording a voicemail for `queue`.
    Recording {
        /// The queue that receives it.
        queue: String,
        /// What the IVR learnt.
        context: CallContext,
    },
}

/// The batching writer. Cloneable handle; the thread ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct SessionLog {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    store: VoiceSessions,
    window: Duration,
    pending: Mutex<Pending>,
    wake: Condvar,
    done: Condvar,
}

#[derive(Debug, Default)]
struct Pending {
    /// Latest state per call key; `None` deletes the row.
    writes: HashMap<String, Option<Snapshot>>,
    /// Flushes asked for / completed (a flush waits until `completed >= its ticket`).
    requested: u64,
    completed: u64,
    /// Set when the last handle is dropped.
    closing: bool,
}

impl SessionLog {
    /// Starts the writer thread over `store`, writing every `window`.
    pub fn start(store: VoiceSessions, window: Duration) -> SessionLog {
        let shared = Arc::new(Shared {
            store,
            window,
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            done: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("voice-sessions".into())
            .spawn(move || run(worker));
        if let Err(e) = spawned {
            tracing::error!("voice session writer could not start: calls in the IVR will not survive a restart: {e}");
        }
        SessionLog { shared }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Records the call's latest state (written within the window).
    pub fn put(&self, key: &str, snapshot: Snapshot) {
        self.record(key, Some(snapshot));
    }

    /// Forgets the call's state (deleted within the window).
    pub fn remove(&self, key: &str) {
        self.record(key, None);
    }

    fn record(&self, key: &str, state: Option<Snapshot>) {
        let mut pending = self.lock();
        let was_idle = pending.writes.is_empty();
        pending.writes.insert(key.to_owned(), state);
        drop(pending);
        // Only the first write of a window wakes the thread; later ones join its batch.
        if was_idle {
            self.shared.wake.notify_one();
        }
    }

    /// The saved state of call `key`: the pending write if there is one, else the stored row.
    /// Blocking (SQLite): call it from a blocking pool.
    pub fn load(&self, key: &str) -> Result<Option<Saved>, StoreError> {
        if let Some(pending) = self.lock().writes.get(key) {
            return Ok(pending.clone().map(Snapshot::into_saved));
        }
        let text = self.shared.store.get(key)?;
        Ok(text.and_then(|t| match serde_json::from_str(&t) {
            Ok(saved) => Some(saved),
            Err(e) => {
                tracing::error!(call = key, "stored voice session unreadable, ignored: {e}");
                None
            }
        }))
    }

    /// Writes everything pending now and returns once it is written. Blocking.
    pub fn flush(&self) {
        let mut pending = self.lock();
        pending.requested += 1;
        let ticket = pending.requested;
        self.shared.wake.notify_one();
        while pending.completed < ticket && !pending.closing {
            let (guard, timeout) = self
                .shared
                .done
                .wait_timeout(pending, Duration::from_secs(10))
                .unwrap_or_else(|e| e.into_inner());
            pending = guard;
            if timeout.timed_out() {
                tracing::error!("voice session flush still not done after 10 s: giving up");
                return;
            }
        }
    }

    /// Deletes rows not written for [`STALE_AFTER_MS`]. Blocking.
    pub fn sweep(&self) {
        let before = Timestamp(SystemClock.now().0.saturating_sub(STALE_AFTER_MS));
        match self.shared.store.sweep(before) {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "stale voice sessions swept"),
            Err(e) => tracing::warn!("voice session sweep failed: {e}"),
        }
    }
}

impl Drop for SessionLog {
    fn drop(&mut self) {
        // The thread holds one more reference: this is the last handle.
        if Arc::strong_count(&self.shared) == 2 {
            let mut pending = self.lock();
            pending.closing = true;
            self.shared.wake.notify_one();
        }
    }
}

fn run(shared: Arc<Shared>) {
    loop {
        let (batch, ticket, closing) = {
            let mut pending = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
            // Sleep until something is pending, then let the window gather more (unless a
            // flush is waiting).
            while pending.writes.is_empty() && pending.requested == pending.completed {
                if pending.closing {
                    return;
                }
                pending = shared.wake.wait(pending).unwrap_or_else(|e| e.into_inner());
            }
            if pending.requested == pending.completed && !pending.closing {
                let (guard, _) = shared
                    .wake
                    .wait_timeout(pending, shared.window)
                    .unwrap_or_else(|e| e.into_inner());
                pending = guard;
            }
            let batch: Vec<(String, Option<Snapshot>)> = pending.writes.drain().collect();
            (batch, pending.requested, pending.closing)
        };
        if !batch.is_empty() {
            let rows: Vec<(String, Option<String>)> = batch
                .into_iter()
                .filter_map(
                    |(key, snapshot)| match snapshot.map(|s| s.to_json()).transpose() {
                        Ok(text) => Some((key, text)),
                        Err(e) => {
                            tracing::error!(call = key, "voice session not saved: {e}");
                            None
                        }
                    },
                )
                .collect();
            write(&shared.store, &rows);
        }
        let mut pending = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.completed = pending.completed.max(ticket);
        shared.done.notify_all();
        if closing && pending.writes.is_empty() {
            return;
        }
    }
}

fn write(store: &VoiceSessions, batch: &[(String, Option<String>)]) {
    let now = SystemClock.now();
    for attempt in 1..=3 {
        match store.write(batch, now) {
            Ok(()) => return,
            Err(e) if attempt < 3 => {
                tracing::warn!(calls = batch.len(), "voice sessions not written (attempt {attempt}), retrying: {e}");
                std::thread::sleep(Duration::from_millis(50 * attempt));
            }
            Err(e) => tracing::error!(
                calls = batch.len(),
                "voice sessions not written: these calls restart at their menu's entry after a restart: {e}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_saved_call_reads_back_as_it_was_written() {
        let state = SessionState {
            tree_name: "t".into(),
            tree_version: 3,
            caller: "+33611111111".into(),
            called: "+33100000001".into(),
            current: Some("housing".into()),
            language: "en-GB".into(),
            attributes: BTreeMap::from([("topic".to_owned(), "housing".to_owned())]),
            requirements: Vec::new(),
            priority: Some(4),
            retries: 1,
            turns: 2,
        };
        let last = vec![Verb::say("Hello", Some("en-GB")), Verb::Hangup];
        let text = serde_json::to_string(&SavedRef {
            gateway: Gateway::Jambonz,
            from: "+33611111111",
            to: "+33100000001",
            turn: 5,
            last: &last,
            phase: SavedPhaseRef::Ivr { state: &state },
        })
        .expect("serialise");
        let saved: Saved = serde_json::from_str(&text).expect("deserialise");
        assert_eq!(saved.gateway, Gateway::Jambonz);
        assert_eq!(saved.turn, 5);
        assert_eq!(saved.last, last);
        assert_eq!(saved.phase, SavedPhase::Ivr { state });
    }
}
