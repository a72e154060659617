//! The store, on SQLite (the embedded default) or PostgreSQL (`pg/`), behind one interface,
//! [`Store`] (`any.rs`), an enum dispatching each call to [`SqliteStore`] or [`PgStore`].
//!
//! The SQLite store: the event journal with group commit, snapshots, recovery, and the
//! configuration tables (API tokens, IVR tree versions and number bindings, meta flags), and
//! the phone channel's calls still inside the IVR (`voice.rs`).
//!
//! Layout:
//! - [`SqliteStore`] (`db.rs`): opens `<data_dir>/guichet.db` (creating the directory, taking the data
//!   directory's process lock, switching to WAL, migrating the schema), recovers the router, and
//!   starts the journal. Its configuration-table methods (`tokens.rs`, `ivr.rs`) are synchronous:
//!   call them at startup or from a blocking pool.
//! - [`Journal`] (`journal.rs`): the cheap, cloneable handle the engine appends through. Appends
//!   never block: they queue to one writer thread (`writer.rs`), or fail at once with
//!   [`StoreError::Overloaded`] when the bounded queue is full. Each append returns an [`Ack`]
//!   that resolves once its events are committed.
//! - The writer thread takes everything queued at that moment (up to
//!   [`StoreConfig::max_batch`] events) and commits it in one transaction: group commit. It also
//!   writes snapshots, applies retention and erases contacts (`maintenance.rs`), in queue order.
//! - `schema.rs` owns the tables and their migrations; `codec.rs` turns events into rows.
//!
//! Schema (version [`SCHEMA_VERSION`]; plain SQL types so that a PostgreSQL store can share it):
//! ```text
//! meta         (key TEXT PRIMARY KEY, value TEXT)                 schema_version, application, seeded
//! journal      (seq INTEGER PRIMARY KEY, at INTEGER, kind TEXT, interaction TEXT NULL,
//!               agent TEXT NULL, payload TEXT, contact TEXT NULL)  + index on contact (v2), on interaction (v3)
//! snapshots    (seq INTEGER PRIMARY KEY, at INTEGER, payload TEXT) the last two are kept
//! tokens       (id TEXT PRIMARY KEY, hash TEXT UNIQUE, role TEXT, agent TEXT NULL, label TEXT,
//!               created_at INTEGER)                                SHA-256 of the token only
//! ivr_versions (name TEXT, version INTEGER, tree TEXT, created_at INTEGER, PK (name, version))
//! ivr_active   (name TEXT PRIMARY KEY, version INTEGER)
//! ivr_numbers  (number TEXT PRIMARY KEY, tree TEXT)
//! indicator_days (day, queue, channel, requests, answered, answered_within, abandoned,
//!               wait_ms_total, survey_answers, survey_score_total,
//!               abandoned_within, cancelled (v8))                  v5, PK (day, queue, channel)
//! indicator_open (interaction PK, day, queue, channel, created_at, sla_deadline)      v5
//! survey_answers (interaction PK, contact NULL, agent NULL, queue, channel, score, comment, at) v5
//! survey_sent  (contact, interaction, at)   survey_opt_out (contact PK, at)            v5
//! outbox       (message TEXT PRIMARY KEY, seq INTEGER, interaction TEXT, channel TEXT,
//!               state TEXT, attempts INTEGER, created_at INTEGER, next_attempt_at INTEGER,
//!               last_error TEXT NULL, delivered_at INTEGER NULL, provider_ref TEXT NULL)  (v6)
//! sms_opt_out  (number TEXT PRIMARY KEY, opted_out INTEGER, changed_at INTEGER, message TEXT) (v6)
//! view_checkpoints (view TEXT PRIMARY KEY, seq INTEGER)          (v9)
//! secrets      (name TEXT PRIMARY KEY, value TEXT, created_at INTEGER)  link signing keys (v10)
//! users        (login TEXT PRIMARY KEY, name, role, agent NULL, source, password_hash NULL,
//!               subject NULL, disabled, created_at, changed_at)    argon2id PHC strings (v11)
//! sessions     (hash TEXT PRIMARY KEY, id UNIQUE, login, role, agent NULL, created_at,
//!               expires_at)                                        SHA-256 of the session (v11)
//! ```
//!
//! Durability: an [`Ack`] resolves with `Ok(seq)` only after the transaction holding the events
//! is committed. With [`Synchronous::Normal`] (the default) a crash of the process loses nothing
//! acknowledged; a power loss or kernel crash may lose the last transactions. With
//! [`Synchronous::Full`] every commit is synced to disk before it is acknowledged.
//!
//! Failure: if a transaction still fails after a few retries, the journal *halts*: that batch
//! and every later append are refused. The engine's router has already applied those events, so
//! journaling later ones would leave a hole that no replay can cross; restarting (recovering from
//! the store) is the way out.

mod any;
mod checkpoints;
mod codec;
mod conversation;
mod created;
mod db;
mod error;
mod handle;
mod history;
mod indicators;
mod ivr;
mod journal;
mod lease;
mod maintenance;
mod outbox;
pub mod pg;
mod recovery;
mod row;
mod schema;
mod secrets;
mod surveys;
mod tokens;
mod users;
mod voice;
mod writer;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use any::Store;
pub use conversation::ConversationEntry;
pub use db::{SqliteStore, DATABASE_FILE, LOCK_FILE};
pub use error::StoreError;
pub use handle::StoreHandle;
pub use history::HistoryEntry;
pub use indicators::{IndicatorDay, IndicatorState, Reseeded};
pub use ivr::{IvrActive, IvrAuthor, IvrVersionInfo};
pub use journal::{Ack, Journal, JournalStats, BATCH_BUCKETS};
pub use lease::{Fence, HaConfig, HaStatus, LeaseInfo, NodeInfo, OnSuperseded};
pub use maintenance::Erasure;
pub use outbox::{Delivery, DeliveryChannel, DeliveryState, OutboxClaim};
pub use pg::{
    copy_from_sqlite, CopyReport, FollowProgress, Follower, LeaseClient, PgSettings, PgStore,
    Target,
};
pub use recovery::{Recovered, Recovery};
pub use schema::SCHEMA_VERSION;
pub use secrets::ATTACHMENT_LINKS;
pub use surveys::{
    AnswerRefusal, CompletedInteraction, SurveyAnswer, SurveyQuestion, SurveySummary, SurveyVia,
    MAX_SURVEY_COMMENT_CHARS,
};
pub use tokens::{Role, TokenInfo, TOKEN_PREFIX};
pub use users::{
    plausible_session, valid_login, IdentitySource, SessionInfo, UserCredentials, UserInfo,
    MAX_LOGIN_LEN, SESSION_PREFIX,
};
pub use voice::{VoiceSessions, VOICE_SESSIONS_FILE};

/// How hard each commit is pushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    /// WAL with `synchronous=NORMAL`: a crash of the process loses nothing committed; a power
    /// loss or operating-system crash may lose the last transactions (never corrupts).
    #[default]
    Normal,
    /// WAL with `synchronous=FULL`: the write-ahead log is synced at every commit, so an
    /// acknowledged event survives a power loss too. Slower (one fsync per group commit).
    Full,
}

impl Synchronous {
    /// The value of SQLite's `synchronous` pragma.
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

/// Which database keeps the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// An embedded SQLite file, `<data_dir>/guichet.db` (the default: nothing to install).
    #[default]
    Sqlite,
    /// A PostgreSQL database named by [`StoreConfig::url`].
    Postgres,
}

/// Where and how the store keeps its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The directory holding `guichet.db` (created if missing).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// How hard each commit is pushed to disk.
    #[serde(default)]
    pub synchronous: Synchronous,
    /// The most events committed in one transaction (one group commit).
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// The most events waiting for the writer (queued or being committed); an append beyond it
    /// fails with [`StoreError::Overloaded`]. Snapshots, retention and erasure requests, and
    /// empty appends, count as one each.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// Events between snapshots: [`Journal::snapshot_due`] turns true after this many appended
    /// events, and the engine then hands a snapshot to [`Journal::snapshot`].
    #[serde(default = "default_snapshot_every")]
    pub snapshot_every: u64,
    /// How long, in milliseconds, a statement waits for a database another connection holds
    /// before it fails (then the writer retries a few times before halting).
    #[serde(default = "default_busy_timeout_ms")]
    pub busy_timeout_ms: u64,
    /// Days the journal keeps the events of ended interactions; older rows are purged every hour
    /// by the engine (aggregate indicators are computed before; open interactions are never
    /// touched). `None` (the default) keeps everything.
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// Which database keeps the journal and the tables: `sqlite` (the default) or `postgres`.
    #[serde(default)]
    pub backend: Backend,
    /// With `backend = "postgres"`: the connection URL, `postgres://USER@HOST:PORT/DATABASE`
    /// (libpq's URL or key=value form), without a password.
    #[serde(default)]
    pub url: Option<String>,
    /// With `backend = "postgres"`: the environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// With `backend = "postgres"`: a file holding the password (its first line; keep it
    /// readable by Guichet's user only).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// On PostgreSQL with high availability: the leader's fence, set by the server once it holds
    /// the lease (never from the file). With it, the journal checks the term in every append's
    /// transaction instead of taking the database's writer lock.
    #[serde(skip)]
    pub fence: Option<Fence>,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

fn default_max_batch() -> usize {
    4096
}

fn default_queue_capacity() -> usize {
    65_536
}

fn default_snapshot_every() -> u64 {
    200_000
}

fn default_busy_timeout_ms() -> u64 {
    5_000
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            data_dir: default_data_dir(),
            synchronous: Synchronous::default(),
            max_batch: default_max_batch(),
            queue_capacity: default_queue_capacity(),
            snapshot_every: default_snapshot_every(),
            busy_timeout_ms: default_busy_timeout_ms(),
            retention_days: None,
            backend: Backend::default(),
            url: None,
            password_env: None,
            password_file: None,
            fence: None,
        }
    }
}

impl StoreConfig {
    /// The defaults, with data in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        StoreConfig {
            data_dir: data_dir.into(),
            ..StoreConfig::default()
        }
    }

    /// Checks the limits: batches, queue and snapshot interval must be at least 1.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.max_batch == 0 {
            return Err(StoreError::Config("max_batch must be at least 1".into()));
        }
        if self.queue_capacity == 0 {
            return Err(StoreError::Config(
                "queue_capacity must be at least 1".into(),
            ));
        }
        if self.retention_days == Some(0) {
            return Err(StoreError::Config(
                "retention_days must be at least 1 (leave it out to keep everything)".into(),
            ));
        }
        if self.snapshot_every == 0 {
            return Err(StoreError::Config(
                "snapshot_every must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The busy timeout as a duration.
    pub(crate) fn busy_timeout(&self) -> Duration {
        Duration::from_millis(self.busy_timeout_ms)
    }
}
