//! A warm standby's copy of the router (docs/high-availability.md): [`Follower`] rebuilds the
//! router from the latest snapshot and the journal, then follows the journal by sequence number
//! (the truth), woken by the leader's `NOTIFY guichet_journal` after each commit (only a
//! wake-up: a lost notification costs one polling interval, never an event). At takeover the
//! new leader recovers only the tail after the follower's last sequence number.
//!
//! The router changes without an event in one case, an erasure (its contact's routing
//! preference is forgotten): erasures are counted in `meta`, and a follower that sees the count
//! change rebuilds from the (scrubbed) snapshot and journal. Retention deletes journal rows only
//! up to the latest snapshot, oldest first: a follower whose next rows were deleted (the
//! journal's first row is beyond its cursor and a snapshot is) rebuilds too.

use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;

use crate::core::Router;

use super::super::codec::{seq_from_sql, seq_to_sql, Decoder};
use super::super::recovery::{apply, restore, Recovered, Recovery};
use super::super::{StoreConfig, StoreError};
use super::{PgStore, REPLAY_CHUNK};

/// Sent by the leader's journal in each commit's transaction (with high availability).
pub(crate) const NOTIFY_SQL: &str = "NOTIFY guichet_journal";

/// Run in each erasure's transaction: counts erasures (see the module's comment).
pub(crate) const COUNT_ERASURE_SQL: &str = "INSERT INTO meta (key, value) VALUES ('erasures', \
     '1') ON CONFLICT (key) DO UPDATE SET value = (meta.value::bigint + 1)::text";

/// Where the journal stands, read before a poll applies its rows.
const STATE_SQL: &str = "SELECT (SELECT value FROM meta WHERE key = 'erasures'), \
     (SELECT MIN(seq) FROM journal), (SELECT MAX(seq) FROM snapshots), \
     (SELECT COALESCE(MAX(seq), 0) FROM journal)";

/// What one [`Follower::poll`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowProgress {
    /// Events applied by this poll.
    pub applied: u64,
    /// The journal's last sequence number when the poll started.
    pub last_seq: u64,
    /// The last sequence number the router holds now.
    pub cursor: u64,
    /// Whether the router was rebuilt from the snapshot (an erasure, or rows purged).
    pub rebuilt: bool,
    /// How many events behind the journal's end the router was when the poll started: the
    /// standby's lag in events.
    pub behind: u64,
    /// Milliseconds between the oldest event this poll applied and the poll's end, by this
    /// node's clock against the leader's timestamps (0 when nothing was behind): the
    /// standby's lag in time.
    pub behind_ms: u64,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A standby's router, kept current by following the journal.
pub struct Follower {
    store: PgStore,
    router: Router,
    snapshot_seq: Option<u64>,
    replayed: u64,
    cursor: u64,
    erasures: Option<String>,
    decoder: Decoder,
    /// The timestamp of the first event applied since the last poll's end.
    oldest_applied: Option<u64>,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower")
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl Follower {
    /// Opens the database for reading (its schema must be this build's: the lease client
    /// migrated it) and rebuilds the router.
    pub fn start(config: &StoreConfig) -> Result<Follower, StoreError> {
        let store = PgStore::open_shared(config)?;
        let mut follower = Follower {
            store,
            router: Router::new(),
            snapshot_seq: None,
            replayed: 0,
            cursor: 0,
            erasures: None,
            decoder: Decoder::default(),
            oldest_applied: None,
        };
        follower.rebuild()?;
        Ok(follower)
    }

    /// The last journal sequence number the router holds.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    fn rebuild(&mut self) -> Result<(), StoreError> {
        // Read first: an erasure committed during the rebuild is seen at the next poll.
        let erasures = self.state()?.0;
        let Recovery { snapshot, .. } = self.store.recover()?;
        let (router, snapshot_seq) = restore(snapshot)?;
        self.router = router;
        self.snapshot_seq = snapshot_seq;
        self.cursor = snapshot_seq.unwrap_or(0);
        self.replayed = 0;
        self.decoder = Decoder::default();
        self.erasures = erasures;
        self.apply_rows(u64::MAX)?;
        Ok(())
    }

    #[allow(clippy::type_complexity)]
    fn state(&self) -> Result<(Option<String>, Option<u64>, Option<u64>, u64), StoreError> {
        let row = self
            .store
            .conn()
            .query_one(STATE_SQL, &[])
            .map_err(|e| self.store.err(e))?;
        Ok((
            row.get(0),
            row.get::<_, Option<i64>>(1).map(seq_from_sql),
            row.get::<_, Option<i64>>(2).map(seq_from_sql),
            seq_from_sql(row.get(3)),
        ))
    }

    /// Applies the journal's rows after the cursor, up to `upto` (inclusive), in chunks;
    /// returns how many.
    fn apply_rows(&mut self, upto: u64) -> Result<u64, StoreError> {
        let mut applied = 0;
        loop {
            let rows = self
                .store
                .conn()
                .query(
                    "SELECT seq, at, kind, payload FROM journal WHERE seq > $1 AND seq <= $2 \
                     ORDER BY seq LIMIT $3",
                    &[
                        &seq_to_sql(self.cursor),
                        &seq_to_sql(upto.min(i64::MAX as u64)),
                        &REPLAY_CHUNK,
                    ],
                )
                .map_err(|e| self.store.err(e))?;
            let full = rows.len() as i64 == REPLAY_CHUNK;
            for row in rows {
                let seq = seq_from_sql(row.get(0));
                let event = self
                    .decoder
                    .decode(row.get(1), row.get(2), row.get(3))
                    .map_err(|detail| StoreError::Decode {
                        path: self.store.target().as_path(),
                        table: "journal",
                        seq,
                        detail,
                    })?;
                apply(&mut self.router, seq, &event)?;
                self.oldest_applied.get_or_insert(event.at.0);
                self.cursor = seq;
                self.replayed += 1;
                applied += 1;
            }
            if !full {
                return Ok(applied);
            }
        }
    }

    /// Brings the router up to the journal's end as of now. An error leaves the follower
    /// unusable (a decode or replay failure): drop it and start another.
    pub fn poll(&mut self) -> Result<FollowProgress, StoreError> {
        let (erasures, first, snapshot, last_seq) = self.state()?;
        let behind = last_seq.saturating_sub(self.cursor);
        let purged =
            first.is_some_and(|f| f > self.cursor + 1) && snapshot.is_some_and(|s| s > self.cursor);
        self.oldest_applied = None;
        let rebuilt = erasures != self.erasures || purged;
        let applied = if rebuilt {
            let before = self.replayed;
            self.rebuild()?;
            self.replayed.saturating_sub(before)
        } else {
            self.apply_rows(last_seq)?
        };
        let behind_ms = match self.oldest_applied.take() {
            Some(at) => now_ms().saturating_sub(at),
            None => 0,
        };
        Ok(FollowProgress {
            applied,
            last_seq,
            cursor: self.cursor,
            rebuilt,
            behind,
            behind_ms,
        })
    }

    /// Records in `nodes` the last sequence number this node's router holds (for `guichet
    /// status`; the lease's heartbeat records the rest).
    pub fn record(&self, node: &str) -> Result<(), StoreError> {
        self.store
            .conn()
            .execute(
                "UPDATE nodes SET applied_seq = $2, heartbeat_at = now() WHERE node = $1",
                &[&node, &seq_to_sql(self.cursor)],
            )
            .map(|_| ())
            .map_err(|e| self.store.err(e))
    }

    /// Waits at most `timeout` for the leader's next commit (a notification); returns early
    /// on one. Errors are the connection's: the caller polls anyway.
    pub fn wait(&mut self, timeout: Duration) -> Result<(), StoreError> {
        let mut conn = self.store.conn();
        // Every time: cheap, and a connection opened again after a failure listens too.
        if let Err(e) = conn.batch_execute("LISTEN guichet_journal") {
            drop(conn);
            return Err(self.store.err(e));
        }
        let mut notifications = conn.notifications();
        let woken = notifications.timeout_iter(timeout).next();
        // Several commits may have notified: one poll reads them all.
        let _ = notifications.iter().count();
        drop(notifications);
        drop(conn);
        woken.map(|_| ()).map_err(|e| self.store.err(e))
    }

    /// The router, for the new leader's start: it recovers only the journal after
    /// [`Recovered::last_seq`] (see `Store::catch_up`).
    pub fn into_recovered(self) -> Recovered {
        Recovered {
            router: self.router,
            snapshot_seq: self.snapshot_seq,
            replayed: self.replayed,
            last_seq: self.cursor,
        }
    }
}
