//! Rebuilding the router from the journal, the same on both backends: what the journal holds
//! at startup ([`Recovery`]), the router rebuilt from it ([`Recovered`]), the snapshot's
//! decoding, and the replay loop that applies the events a backend's reader thread decodes
//! (SQLite's `db.rs`, PostgreSQL's `pg/mod.rs` read the rows; this file does the rest).

use std::path::{Path, PathBuf};
use std::sync::mpsc::SyncSender;

use crate::core::{Event, Router, Snapshot};

use super::codec::seq_from_sql;
use super::error::StoreError;

/// What the journal holds at startup: the latest snapshot and the last sequence number. The
/// events after the snapshot are read with [`SqliteStore::replay`](super::SqliteStore::replay).
#[derive(Debug, Clone)]
pub struct Recovery {
    /// The latest snapshot and the sequence number of the last event it includes.
    pub snapshot: Option<(u64, Snapshot)>,
    /// The last sequence number used (0 for an empty journal).
    pub last_seq: u64,
}

/// A router rebuilt from the journal.
#[derive(Debug)]
pub struct Recovered {
    /// The router, as it was after the last journaled event.
    pub router: Router,
    /// The sequence number of the snapshot it started from, if any.
    pub snapshot_seq: Option<u64>,
    /// Events applied after the snapshot.
    pub replayed: u64,
    /// The last sequence number used (0 for an empty journal).
    pub last_seq: u64,
}

/// A chunk of decoded events, as a replay's reader thread sends it.
pub(crate) type Chunk = Result<Vec<(u64, Event)>, StoreError>;

/// The snapshot of row `seq` (as stored) from its JSON `payload`.
pub(crate) fn snapshot_of(
    path: PathBuf,
    seq: i64,
    payload: &str,
) -> Result<(u64, Snapshot), StoreError> {
    let seq = seq_from_sql(seq);
    let snap: Snapshot = serde_json::from_str(payload).map_err(|e| StoreError::Decode {
        path,
        table: "snapshots",
        seq,
        detail: e.to_string(),
    })?;
    Ok((seq, snap))
}

/// Applies the journaled event `seq` to `router`.
pub(crate) fn apply(router: &mut Router, seq: u64, event: &Event) -> Result<(), StoreError> {
    router
        .apply(event)
        .map_err(|source| StoreError::Replay { seq, source })
}

/// The router that `snapshot` holds (an empty one without), and the snapshot's sequence
/// number.
pub(crate) fn restore(
    snapshot: Option<(u64, Snapshot)>,
) -> Result<(Router, Option<u64>), StoreError> {
    Ok(match snapshot {
        Some((seq, snap)) => (
            Router::restore(&snap).map_err(|source| StoreError::Restore { seq, source })?,
            Some(seq),
        ),
        None => (Router::new(), None),
    })
}

/// The router of `recovery`: its snapshot restored, then every later event applied, as
/// `replay(after_seq, f)` calls `f` with them (a backend's `replay`).
pub(crate) fn rebuild<P>(recovery: Recovery, replay: P) -> Result<Recovered, StoreError>
where
    P: FnOnce(u64, &mut dyn FnMut(u64, Event) -> Result<(), StoreError>) -> Result<u64, StoreError>,
{
    let Recovery { snapshot, last_seq } = recovery;
    let (mut router, snapshot_seq) = restore(snapshot)?;
    let replayed = replay(snapshot_seq.unwrap_or(0), &mut |seq, event| {
        apply(&mut router, seq, &event)
    })?;
    Ok(Recovered {
        router,
        snapshot_seq,
        replayed,
        last_seq,
    })
}

/// Calls `f` with every event that `read` sends, in order, while `read` runs on a helper
/// thread (reading and decoding the rows through at most `depth` chunks in flight); returns
/// how many there were. Stops at the first error of `f` or of `read`.
pub(crate) fn replay_on_thread<R, F>(
    path: &Path,
    depth: usize,
    read: R,
    mut f: F,
) -> Result<u64, StoreError>
where
    R: FnOnce(&SyncSender<Chunk>) -> Result<(), StoreError> + Send + 'static,
    F: FnMut(u64, Event) -> Result<(), StoreError>,
{
    let (tx, rx) = std::sync::mpsc::sync_channel::<Chunk>(depth);
    let decoder = std::thread::Builder::new()
        .name("guichet-replay".into())
        .spawn(move || {
            if let Err(e) = read(&tx) {
                // The receiver may be gone (the caller stopped early): nothing to do then.
                let _ = tx.send(Err(e));
            }
        })
        .map_err(|source| StoreError::Io {
            path: path.to_owned(),
            source,
        })?;
    let mut count = 0u64;
    let mut outcome = Ok(());
    'chunks: for chunk in rx.iter() {
        match chunk {
            Ok(events) => {
                for (seq, event) in events {
                    if let Err(e) = f(seq, event) {
                        outcome = Err(e);
                        break 'chunks;
                    }
                    count += 1;
                }
            }
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    drop(rx);
    if decoder.join().is_err() {
        return Err(StoreError::ThreadPanicked {
            path: path.to_owned(),
            thread: "replay",
        });
    }
    outcome.map(|()| count)
}
