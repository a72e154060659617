//! The leadership lease of high availability (docs/high-availability.md): the `[ha]` settings,
//! the [`Fence`] a leader's journal carries (its term, checked in every append's transaction),
//! and what `guichet status` reads. The SQL lives in `pg/lease.rs`: high availability exists on
//! PostgreSQL only; on SQLite one node is always the leader.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::recovery::Recovered;
use super::StoreError;

/// The `[ha]` section: the leadership lease on PostgreSQL (ignored on SQLite).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaConfig {
    /// Seconds a lease lasts after each renewal (expiry computed by the database's clock).
    #[serde(default = "default_lease_secs")]
    pub lease_secs: f64,
    /// Seconds between renewals (at most a third of the lease).
    #[serde(default = "default_renew_every_secs")]
    pub renew_every_secs: f64,
    /// The address clients should use to reach this node when it leads (shown by standbys in
    /// `/readyz`, the `guichet-leader` gRPC metadata and SMTP's 421); default: `[server]
    /// grpc_addr`.
    #[serde(default)]
    pub advertise: Option<String>,
    /// This node's name (unique among the nodes of one database); default: the host name.
    #[serde(default)]
    pub node_id: Option<String>,
}

// Validation refuses NaN: the durations compare as numbers.
impl Eq for HaConfig {}

fn default_lease_secs() -> f64 {
    10.0
}

fn default_renew_every_secs() -> f64 {
    2.0
}

impl Default for HaConfig {
    fn default() -> HaConfig {
        HaConfig {
            lease_secs: default_lease_secs(),
            renew_every_secs: default_renew_every_secs(),
            advertise: None,
            node_id: None,
        }
    }
}

/// The longest lease accepted (a day): bounded waits.
const MAX_LEASE_SECS: f64 = 86_400.0;

impl HaConfig {
    /// Checks the durations: a lease of 1 s to a day, renewed at least three times per lease.
    pub fn validate(&self) -> Result<(), StoreError> {
        if !(1.0..=MAX_LEASE_SECS).contains(&self.lease_secs) {
            return Err(StoreError::Config(format!(
                "[ha] lease_secs must be between 1 and {MAX_LEASE_SECS}"
            )));
        }
        if !(self.renew_every_secs >= 0.05 && self.renew_every_secs * 3.0 <= self.lease_secs) {
            return Err(StoreError::Config(
                "[ha] renew_every_secs must be at least 0.05 and at most a third of lease_secs"
                    .into(),
            ));
        }
        if let Some(node) = &self.node_id {
            if node.is_empty()
                || node.len() > 64
                || !node
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(StoreError::Config(
                    "[ha] node_id must be 1 to 64 letters, digits, '-', '_' or '.'".into(),
                ));
            }
        }
        if self.advertise.as_ref().is_some_and(|a| a.len() > 200) {
            return Err(StoreError::Config(
                "[ha] advertise must be at most 200 characters".into(),
            ));
        }
        Ok(())
    }

    /// The lease as a duration.
    pub fn lease(&self) -> Duration {
        Duration::from_secs_f64(self.lease_secs)
    }

    /// The renewal interval as a duration.
    pub fn renew_every(&self) -> Duration {
        Duration::from_secs_f64(self.renew_every_secs)
    }

    /// The margin a leader keeps before its lease's end: it stops acting at `renewal sent +
    /// lease - margin`, a fifth of the lease (2 s of 10 s), so that a clock running slower than
    /// the database's still stops before a successor may start.
    pub fn margin(&self) -> Duration {
        self.lease() / 5
    }

    /// This node's id: `node_id`, else the host name, else `node`.
    pub fn node(&self) -> String {
        if let Some(node) = &self.node_id {
            return node.clone();
        }
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname writes at most that.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        let name = if rc == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            String::from_utf8_lossy(&buf[..end])
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
                .take(64)
                .collect()
        } else {
            String::new()
        };
        if name.is_empty() {
            "node".into()
        } else {
            name
        }
    }
}

/// What a leader does when it learns that its term is over (a refused append, a renewal refused,
/// its deadline passed): the server logs that it steps down and stops (see `ha::Leading`).
pub type OnSuperseded = Arc<dyn Fn(&str) + Send + Sync>;

/// A leader's fence: its term and node, checked against the lease row in the transaction of
/// every journal append, and its own monotonic deadline.
#[derive(Clone)]
pub struct Fence {
    /// The leader's term.
    pub term: u64,
    /// The leader's node id.
    pub node: String,
    deadline: Arc<Mutex<Instant>>,
    retired: Arc<AtomicBool>,
    /// Set once the term is known to be over.
    over: Arc<AtomicBool>,
    on_superseded: OnSuperseded,
    /// A warm standby's router, handed to the new leader's recovery (taken once).
    warm: Arc<Mutex<Option<Recovered>>>,
}

impl std::fmt::Debug for Fence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fence")
            .field("term", &self.term)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Fence {
    fn eq(&self, other: &Fence) -> bool {
        self.term == other.term && self.node == other.node
    }
}

impl Eq for Fence {}

impl Fence {
    /// A fence for `term`, acting until `deadline`.
    pub fn new(term: u64, node: String, deadline: Instant, on_superseded: OnSuperseded) -> Fence {
        Fence {
            term,
            node,
            deadline: Arc::new(Mutex::new(deadline)),
            retired: Arc::new(AtomicBool::new(false)),
            over: Arc::new(AtomicBool::new(false)),
            on_superseded,
            warm: Arc::new(Mutex::new(None)),
        }
    }

    /// Hands a warm standby's router to the recovery of the engine this fence starts: it then
    /// replays only the journal after [`Recovered::last_seq`].
    pub fn with_warm(self, warm: Recovered) -> Fence {
        *self.warm.lock().unwrap_or_else(|e| e.into_inner()) = Some(warm);
        self
    }

    /// The warm router, once (the engine's start takes it).
    pub fn take_warm(&self) -> Option<Recovered> {
        self.warm.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Whether the leader may still act: its term is not known to be over and its monotonic
    /// deadline has not passed.
    pub fn acting(&self) -> bool {
        !self.over.load(Ordering::SeqCst) && Instant::now() < self.deadline()
    }

    /// The monotonic deadline.
    pub fn deadline(&self) -> Instant {
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the deadline (after a renewal), never backwards.
    pub fn extend(&self, to: Instant) {
        let mut d = self.deadline.lock().unwrap_or_else(|e| e.into_inner());
        if to > *d {
            *d = to;
        }
    }

    /// The term is over: the fence stops acting at once ([`Fence::acting`] is false from now
    /// on) and tells the server (which steps down), unless the leader is leaving on its own
    /// ([`Fence::retire`]).
    pub fn superseded(&self, why: &str) {
        self.over.store(true, Ordering::SeqCst);
        if !self.is_retired() {
            (self.on_superseded)(why)
        }
    }

    /// The leader is shutting down and hands the lease back: renewals and the watchdog stop.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
    }

    /// Whether [`Fence::retire`] was called.
    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::SeqCst)
    }
}

/// The lease row as `guichet status` and standbys see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    /// The holder's node id (empty: never held).
    pub holder: String,
    /// The holder's advertised address.
    pub address: String,
    /// The current term (0: never held).
    pub term: u64,
    /// Milliseconds until it expires by the database's clock (negative: expired).
    pub expires_in_ms: i64,
}

impl LeaseInfo {
    /// Whether a node holds it now.
    pub fn live(&self) -> bool {
        !self.holder.is_empty() && self.expires_in_ms > 0
    }
}

/// One node of the `nodes` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Its id.
    pub node: String,
    /// Its advertised address.
    pub address: String,
    /// `leader`, `standby` or `stepped_down`.
    pub role: String,
    /// The term it saw last.
    pub term: u64,
    /// The last journal sequence number its router holds (a cold standby: 0).
    pub applied_seq: u64,
    /// Milliseconds since its last heartbeat, by the database's clock.
    pub heartbeat_age_ms: i64,
    /// Its lag in time at its last heartbeat: how long before that heartbeat the oldest
    /// journal event its router lacked was committed (0: it held everything).
    pub lag_ms: i64,
}

/// What `guichet status` shows.
#[derive(Debug, Clone)]
pub struct HaStatus {
    /// The lease.
    pub lease: LeaseInfo,
    /// The journal's last sequence number.
    pub last_seq: u64,
    /// Every node seen, most recent heartbeat first.
    pub nodes: Vec<NodeInfo>,
}
