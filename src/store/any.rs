//! [`Store`]: the one store interface the server uses, over two backends. An enum rather than a
//! trait object: the tables' methods take borrowed arguments and closures (`replay`), and the
//! two implementations ([`SqliteStore`], [`PgStore`]) stay plain structs with inherent methods;
//! the `dispatch!` list below is the interface, checked by the compiler against both.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use crate::core::{AgentId, ContactId, Event, InteractionId, InteractionSpec, Message, Timestamp};

use super::db::SqliteStore;
use super::pg::PgStore;
use super::recovery::{apply, Recovered, Recovery};
use super::{
    AnswerRefusal, Backend, CompletedInteraction, ConversationEntry, Delivery, DeliveryChannel,
    DeliveryState, HistoryEntry, IndicatorDay, IndicatorState, IvrActive, IvrAuthor,
    IvrVersionInfo, Journal, OutboxClaim, Role, SessionInfo, StoreConfig, StoreError, SurveyAnswer,
    SurveyQuestion, SurveySummary, SurveyVia, TokenInfo, UserCredentials, UserInfo,
};

/// An opened store: SQLite (the embedded default) or PostgreSQL, as `[store] backend` says.
// One per process, behind an `Arc` (`StoreHandle`): the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Store {
    /// `<data_dir>/guichet.db`.
    Sqlite(SqliteStore),
    /// The database of `[store] url`.
    Postgres(PgStore),
}

impl From<SqliteStore> for Store {
    fn from(s: SqliteStore) -> Store {
        Store::Sqlite(s)
    }
}

impl From<PgStore> for Store {
    fn from(s: PgStore) -> Store {
        Store::Postgres(s)
    }
}

impl Store {
    /// Opens the backend `[store] backend` names, migrating its schema and taking its writer
    /// lock (SQLite: the data directory's lock file; PostgreSQL: the database's advisory lock).
    pub fn open(config: &StoreConfig) -> Result<Store, StoreError> {
        match config.backend {
            Backend::Sqlite => SqliteStore::open(config).map(Store::Sqlite),
            Backend::Postgres => off_runtime(|| PgStore::open(config)).map(Store::from),
        }
        .and_then(|store| {
            // On PostgreSQL too the node's data directory holds the first admin token and the
            // demo passwords (docs/storage.md): created if missing, as SQLite's is.
            let dir = &store.config().data_dir;
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.clone(),
                source,
            })?;
            // Calls in a phone menu from a version before 12 (a file of the node's).
            super::voice::import_legacy(&store)?;
            Ok(store)
        })
    }

    /// Opens the store beside a running server, for its tables only (`guichet token`, `guichet
    /// user`): nothing is migrated and the journal cannot be started.
    pub fn open_shared(config: &StoreConfig) -> Result<Store, StoreError> {
        match config.backend {
            Backend::Sqlite => SqliteStore::open_shared(config).map(Store::Sqlite),
            Backend::Postgres => off_runtime(|| PgStore::open_shared(config)).map(Store::from),
        }
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(_) => Backend::Sqlite,
            Store::Postgres(_) => Backend::Postgres,
        }
    }

    /// The SQLite store, if this is one.
    pub fn as_sqlite(&self) -> Option<&SqliteStore> {
        match self {
            Store::Sqlite(s) => Some(s),
            Store::Postgres(_) => None,
        }
    }

    /// The database as named in messages: the SQLite file, or `postgres://user@host:port/db`.
    pub fn path(&self) -> PathBuf {
        match self {
            Store::Sqlite(s) => s.path().to_owned(),
            Store::Postgres(p) => p.target().as_path(),
        }
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &StoreConfig {
        match self {
            Store::Sqlite(s) => s.config(),
            Store::Postgres(p) => p.config(),
        }
    }

    /// Whether this node may act on the outside world (send a message, ask a survey question):
    /// always without high availability; a leader only until its monotonic deadline
    /// ([`super::Fence::acting`]).
    pub fn acting(&self) -> bool {
        self.config().fence.as_ref().is_none_or(|f| f.acting())
    }

    /// A router followed up to [`Recovered::last_seq`] (a warm standby's), brought to the
    /// journal's end: only the events after it are replayed (`replayed` counts those).
    pub fn catch_up(&self, warm: Recovered) -> Result<Recovered, StoreError> {
        let Recovered {
            mut router,
            snapshot_seq,
            last_seq,
            ..
        } = warm;
        let mut last = last_seq;
        let tail = self.replay(last_seq, |seq, event| {
            last = seq;
            apply(&mut router, seq, &event)
        })?;
        Ok(Recovered {
            router,
            snapshot_seq,
            replayed: tail,
            last_seq: last.max(self.last_committed_seq()?),
        })
    }

    /// Calls `f` with every journaled event after `after_seq`, in sequence order; returns how
    /// many there were.
    pub fn replay<F>(&self, after_seq: u64, f: F) -> Result<u64, StoreError>
    where
        F: FnMut(u64, Event) -> Result<(), StoreError>,
    {
        match self {
            Store::Sqlite(s) => s.replay(after_seq, f),
            Store::Postgres(p) => p.replay(after_seq, f),
        }
    }
}

/// Generates the [`Store`] methods that hand the call to the backend's method of the same name.
macro_rules! dispatch {
    ($( $(#[$meta:meta])* fn $name:ident(&self $(, $arg:ident : $ty:ty)* $(,)?) -> $ret:ty; )*) => {
        impl Store {
            $(
                $(#[$meta])*
                #[allow(clippy::too_many_arguments)]
                pub fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        Store::Sqlite(s) => s.$name($($arg),*),
                        Store::Postgres(p) => off_runtime(|| p.$name($($arg),*)),
                    }
                }
            )*
        }
    };
}

/// Generates [`Store`] methods like `dispatch!`, for calls whose arguments cannot cross threads
/// (a `&dyn Fn`): call them from a blocking thread ([`StoreHandle::run`](super::StoreHandle::run)).
macro_rules! dispatch_local {
    ($( $(#[$meta:meta])* fn $name:ident(&self $(, $arg:ident : $ty:ty)* $(,)?) -> $ret:ty; )*) => {
        impl Store {
            $(
                $(#[$meta])*
                pub fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        Store::Sqlite(s) => s.$name($($arg),*),
                        Store::Postgres(p) => p.$name($($arg),*),
                    }
                }
            )*
        }
    };
}

/// Runs a PostgreSQL call where the synchronous driver may block: it drives its own small
/// runtime, which tokio refuses inside an async task. On a thread of the blocking pool (every
/// [`StoreHandle::run`](super::StoreHandle::run)) or outside tokio it runs as is; called
/// directly from an async task it leaves the runtime first (`block_in_place` on a multi-thread
/// runtime, a scoped thread on a current-thread one), as SQLite's calls simply block there.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Err(_) => f(),
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        Ok(_) => std::thread::scope(|scope| match scope.spawn(f).join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }),
    }
}

dispatch! {
    /// The schema version the database had when opened (0: created now).
    fn found_schema_version(&self) -> u32;
    /// The latest snapshot and the last sequence number.
    fn recover(&self) -> Result<Recovery, StoreError>;
    /// Rebuilds the router: the latest snapshot, then every later event.
    fn recover_router(&self) -> Result<Recovered, StoreError>;
    /// Starts the journal's writer (once, after recovery).
    fn start_journal(&self) -> Result<Journal, StoreError>;
    /// Whether the configuration file has already seeded this database.
    fn is_seeded(&self) -> Result<bool, StoreError>;
    /// Records that the configuration file seeded this database.
    fn mark_seeded(&self) -> Result<(), StoreError>;
    /// The last journal sequence number committed (0: none).
    fn last_committed_seq(&self) -> Result<u64, StoreError>;

    /// Creates an API token; returns it in plaintext (the only time) with its description.
    fn create_token(&self, role: Role, agent: Option<AgentId>, label: &str, created_at: Timestamp) -> Result<(String, TokenInfo), StoreError>;
    /// The token's description, if it exists.
    fn verify_token(&self, token: &str) -> Result<Option<TokenInfo>, StoreError>;
    /// The token whose SHA-256 is `digest`, if any.
    fn verify_token_digest(&self, digest: &[u8; 32]) -> Result<Option<TokenInfo>, StoreError>;
    /// Every token, oldest first.
    fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError>;
    /// Revokes a token; returns whether it existed.
    fn revoke_token(&self, id: &str) -> Result<bool, StoreError>;

    /// Adds a console user.
    fn add_user(&self, login: &str, name: &str, role: Role, agent: Option<AgentId>, password_hash: &str, at: Timestamp) -> Result<UserInfo, StoreError>;
    /// Every user.
    fn list_users(&self) -> Result<Vec<UserInfo>, StoreError>;
    /// A user's credentials, for signing in.
    fn user_credentials(&self, login: &str) -> Result<Option<UserCredentials>, StoreError>;
    /// Sets a user's password hash; returns whether the user exists.
    fn set_user_password(&self, login: &str, password_hash: &str, at: Timestamp) -> Result<bool, StoreError>;
    /// Disables or enables a user; returns whether the user exists.
    fn set_user_disabled(&self, login: &str, disabled: bool, at: Timestamp) -> Result<bool, StoreError>;
    /// Opens a session for `user`.
    fn create_session(&self, user: &UserInfo, now: Timestamp, expires_at: Timestamp) -> Result<(String, SessionInfo), StoreError>;
    /// The open session whose SHA-256 is `digest`.
    fn verify_session_digest(&self, digest: &[u8; 32], now: Timestamp) -> Result<Option<SessionInfo>, StoreError>;
    /// Ends a session; returns whether it was open.
    fn end_session_digest(&self, digest: &[u8; 32]) -> Result<bool, StoreError>;
    /// Logins with open sessions and their counts.
    fn open_sessions(&self, now: Timestamp) -> Result<Vec<(String, u64)>, StoreError>;

    /// Stores a version of an IVR tree.
    fn put_ivr_version(&self, name: &str, version: u32, tree_json: &str, created_at: Timestamp, by: &IvrAuthor) -> Result<(), StoreError>;
    /// The versions of a tree.
    fn ivr_versions(&self, name: &str) -> Result<Vec<IvrVersionInfo>, StoreError>;
    /// The names of the stored trees.
    fn ivr_names(&self) -> Result<Vec<String>, StoreError>;
    /// One version's tree (JSON).
    fn ivr_version(&self, name: &str, version: u32) -> Result<Option<String>, StoreError>;
    /// Activates a version of a tree.
    fn set_active_ivr(&self, name: &str, version: u32, previous: &[u32]) -> Result<(), StoreError>;
    /// The active version of a tree and its history.
    fn ivr_active(&self, name: &str) -> Result<Option<IvrActive>, StoreError>;
    /// The active version of a tree and its JSON.
    fn active_ivr(&self, name: &str) -> Result<Option<(u32, String)>, StoreError>;
    /// Binds a phone number to a tree.
    fn bind_number(&self, number: &str, tree: &str) -> Result<(), StoreError>;
    /// Unbinds a phone number; returns whether it was bound.
    fn unbind_number(&self, number: &str) -> Result<bool, StoreError>;
    /// Every number binding.
    fn number_bindings(&self) -> Result<Vec<(String, String)>, StoreError>;

    /// The last journal event folded into the indicator aggregates.
    fn indicators_cursor(&self) -> Result<u64, StoreError>;
    /// The sequence number of the last journal row committed before a time.
    fn last_seq_before(&self, at: Timestamp) -> Result<u64, StoreError>;
    /// The cursor, one day's rows and the pending interactions.
    fn indicator_state(&self, day: &str) -> Result<IndicatorState, StoreError>;
    /// The aggregate rows of the days `from ..= to`.
    fn indicator_days(&self, from: &str, to: &str) -> Result<Vec<IndicatorDay>, StoreError>;

    /// Records a survey answer.
    fn record_survey_answer(&self, answer: &SurveyAnswer, day: &str) -> Result<(), StoreError>;
    /// The survey answer of an interaction.
    fn survey_answer(&self, interaction: &InteractionId) -> Result<Option<SurveyAnswer>, StoreError>;
    /// Survey figures per agent.
    fn survey_summary_by_agent(&self, from: Timestamp, to: Timestamp) -> Result<Vec<(Option<AgentId>, SurveySummary)>, StoreError>;
    /// Survey comments.
    fn survey_comments(&self, from: Timestamp, to: Timestamp, agent: Option<&AgentId>, limit: usize) -> Result<Vec<SurveyAnswer>, StoreError>;
    /// Whether a contact may be surveyed now.
    fn may_survey(&self, contact: &ContactId, now: Timestamp, period_ms: u64) -> Result<bool, StoreError>;
    /// Records that a survey was sent.
    fn record_survey_sent(&self, contact: &ContactId, interaction: &InteractionId, at: Timestamp) -> Result<(), StoreError>;
    /// Records a contact's survey opt-out.
    fn opt_out(&self, contact: &ContactId, at: Timestamp) -> Result<(), StoreError>;
    /// Removes a contact's survey opt-out.
    fn opt_in(&self, contact: &ContactId) -> Result<bool, StoreError>;
    /// Whether a contact opted out of surveys.
    fn has_opted_out(&self, contact: &ContactId) -> Result<bool, StoreError>;
    /// Claims a survey question (once per interaction).
    fn claim_survey_question(&self, q: &SurveyQuestion) -> Result<bool, StoreError>;
    /// A survey question by token.
    fn survey_question(&self, token: &str) -> Result<Option<SurveyQuestion>, StoreError>;
    /// The survey question of an interaction.
    fn survey_question_of(&self, interaction: InteractionId) -> Result<Option<SurveyQuestion>, StoreError>;
    /// The survey question sent as message `message`.
    fn survey_question_by_message(&self, message: &str) -> Result<Option<SurveyQuestion>, StoreError>;
    /// Whether message `message` answered a survey.
    fn survey_answered_by(&self, message: &str) -> Result<bool, StoreError>;
    /// The survey question message `message` answered.
    fn survey_question_answered_by(&self, message: &str) -> Result<Option<SurveyQuestion>, StoreError>;
    /// The latest unanswered survey sent to an address.
    fn pending_survey_to(&self, via: SurveyVia, address: &str, since: Timestamp) -> Result<Option<SurveyQuestion>, StoreError>;
    /// Answers a survey.
    fn answer_survey(&self, token: &str, score: u8, comment: Option<&str>, answer_message: Option<&str>, at: Timestamp, not_before: Timestamp, day: &str) -> Result<Result<SurveyQuestion, AnswerRefusal>, StoreError>;
    /// Completed interactions after the survey checkpoint.
    fn survey_completions(&self, limit: usize) -> Result<(Vec<CompletedInteraction>, u64), StoreError>;
    /// Moves the survey checkpoint.
    fn set_survey_checkpoint(&self, seq: u64) -> Result<(), StoreError>;

    /// Copies newly journaled outbound messages into the outbox.
    fn outbox_ingest(&self, limit: usize, email_hold_ms: u64) -> Result<(usize, bool), StoreError>;
    /// The pending deliveries of an interaction on a channel, due or not.
    fn outbox_pending_of(&self, interaction: InteractionId, channel: DeliveryChannel, limit: usize) -> Result<Vec<Delivery>, StoreError>;
    /// Deliveries due at `now`.
    fn outbox_due(&self, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError>;
    /// One delivery.
    fn outbox_delivery(&self, message: &str) -> Result<Option<Delivery>, StoreError>;
    /// When the next delivery is due.
    fn outbox_next_due(&self) -> Result<Option<Timestamp>, StoreError>;
    /// The journal sequence number of the oldest message still to deliver.
    fn outbox_oldest_pending(&self) -> Result<Option<u64>, StoreError>;
    /// The journaled message at `seq`.
    fn outbox_message(&self, seq: u64) -> Result<Option<Arc<Message>>, StoreError>;
    /// Claims a delivery before sending it (with the leader's term on PostgreSQL).
    fn outbox_claim(&self, message: &str) -> Result<OutboxClaim, StoreError>;
    /// Records a delivery attempt.
    fn outbox_record(&self, message: &str, state: DeliveryState, attempts: u32, next_attempt_at: Timestamp, last_error: Option<&str>, delivered: Option<(Timestamp, Option<&str>)>) -> Result<(), StoreError>;
    /// Whether a number opted out of SMS.
    fn is_opted_out(&self, number: &str) -> Result<bool, StoreError>;
    /// A number's SMS opt-out state and the message that set it.
    fn sms_opt_out(&self, number: &str) -> Result<Option<(bool, String)>, StoreError>;
    /// Sets a number's SMS opt-out state.
    fn set_sms_opt_out(&self, number: &str, opted_out: bool, at: Timestamp, message: &str) -> Result<(), StoreError>;

    /// Writes a batch of calls-in-the-IVR rows in one transaction.
    fn put_voice_sessions(&self, batch: &[(String, Option<String>)], at: Timestamp) -> Result<(), StoreError>;
    /// The stored state of a call in the IVR.
    fn voice_session(&self, call: &str) -> Result<Option<String>, StoreError>;
    /// Deletes the calls-in-the-IVR rows not written since `before`.
    fn sweep_voice_sessions(&self, before: Timestamp) -> Result<usize, StoreError>;

    /// The secret called `name`, decoded.
    fn signing_secret(&self, name: &str) -> Result<Vec<u8>, StoreError>;
    /// The checkpoint of a view.
    fn view_checkpoint(&self, view: &str) -> Result<Option<u64>, StoreError>;
    /// Moves a view's checkpoint forward.
    fn set_view_checkpoint(&self, view: &str, seq: u64) -> Result<(), StoreError>;

    /// An interaction's conversation, from the journal.
    fn conversation(&self, interaction: InteractionId) -> Result<Vec<ConversationEntry>, StoreError>;
    /// The interaction a message belongs to.
    fn message_interaction(&self, id: &str) -> Result<Option<InteractionId>, StoreError>;
    /// Interactions whose id starts with `prefix`.
    fn interactions_with_id_prefix(&self, prefix: &str) -> Result<Vec<InteractionId>, StoreError>;
    /// A contact's interactions, newest first.
    fn interactions_of_contact(&self, contact: &ContactId, limit: usize) -> Result<Vec<InteractionId>, StoreError>;
    /// An interaction's last transfer.
    fn last_transfer(&self, interaction: InteractionId) -> Result<Option<(Timestamp, AgentId, Option<String>)>, StoreError>;
    /// An interaction's creation time and specification.
    fn interaction_spec(&self, interaction: InteractionId) -> Result<Option<(Timestamp, Arc<InteractionSpec>)>, StoreError>;
    /// The contacts of the journal.
    fn journal_contacts(&self, limit: usize) -> Result<Option<HashSet<ContactId>>, StoreError>;
    /// A contact's history.
    fn contact_history(&self, contact: &ContactId, limit: usize) -> Result<Vec<HistoryEntry>, StoreError>;
}

dispatch_local! {
    /// Folds committed events into the daily aggregates.
    fn fold_indicator_events(&self, events: &[(u64, Event)], day_of: &dyn Fn(Timestamp) -> String) -> Result<u64, StoreError>;
    /// Puts the aggregates back on their feet after purged events (see
    /// [`SqliteStore::reseed_indicators`](super::SqliteStore::reseed_indicators)).
    fn reseed_indicators(&self, pending: &[(InteractionId, crate::core::Pending)], seq: u64, day_of: &dyn Fn(Timestamp) -> String) -> Result<super::Reseeded, StoreError>;
}
