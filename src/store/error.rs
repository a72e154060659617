//! The store's one error type, [`StoreError`].
//!
//! Every variant that comes from a file names it and says what an operator can do about it, so
//! that `main` can print the message as is. Errors the writer thread reports through an
//! acknowledgement are built per receiver (they carry text, not the SQLite error itself).

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::core::{ContactId, InteractionId, RouteError};

/// What went wrong in the store.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The writer's queue is full: the caller should answer "busy" (or retry later) rather than
    /// wait. Nothing of the refused append was queued.
    #[error("the journal is overloaded: {queued} events are waiting to be committed (capacity {capacity}); retry later")]
    Overloaded {
        /// Events (or empty appends) waiting in the queue when the append was refused.
        queued: usize,
        /// The queue's capacity.
        capacity: usize,
    },
    /// The journal was shut down (or its writer thread stopped): nothing more can be appended.
    #[error("the journal is closed")]
    Closed,
    /// The configuration is unusable.
    #[error("invalid store configuration: {0}")]
    Config(String),
    /// A file or directory operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed on the database.
    #[error("{}: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// PostgreSQL refused a connection or a statement; `detail` says what to check.
    #[error("PostgreSQL {target}: {detail}")]
    Postgres {
        /// The database, as `postgres://user@host:port/dbname` (never with a password).
        target: String,
        /// What went wrong and what to check.
        detail: String,
    },
    /// The file is not a Guichet database, or it is damaged.
    #[error("{} cannot be used as a Guichet database ({detail}): if it is Guichet's, restore it from a backup; otherwise move it aside (with its -wal and -shm files, if any) to start with an empty database, or set [store] data_dir to another directory", path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// Another process (or another store in this process) holds the data directory.
    #[error("{} is in use ({detail}): another Guichet process is using this data directory; stop it (or wait for it to exit), or set [store] data_dir to another directory", path.display())]
    Locked {
        /// The lock file or database that is held.
        path: PathBuf,
        /// What SQLite said, and the other process's id when known.
        detail: String,
    },
    /// The database was written by a newer Guichet.
    #[error("{} has schema version {found} but this Guichet supports up to {supported}: upgrade Guichet, or restore a backup made by this version", path.display())]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// The version found in the file.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// A stored row cannot be decoded.
    #[error("{}: row {seq} of table {table} cannot be decoded ({detail}); the database was damaged or written by an incompatible build", path.display())]
    Decode {
        /// The database file.
        path: PathBuf,
        /// The table.
        table: &'static str,
        /// The row's sequence number or key.
        seq: u64,
        /// The decoding error.
        detail: String,
    },
    /// A value could not be encoded for storage.
    #[error("cannot encode {what}: {detail}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The encoding error.
        detail: String,
    },
    /// A journaled event does not apply to the recovered router.
    #[error("journal event {seq} does not replay: {source}")]
    Replay {
        /// The event's sequence number.
        seq: u64,
        /// Why the router refused it.
        #[source]
        source: RouteError,
    },
    /// The latest snapshot does not restore.
    #[error("snapshot at seq {seq} does not restore: {source}")]
    Restore {
        /// The snapshot's sequence number.
        seq: u64,
        /// Why the router refused it.
        #[source]
        source: RouteError,
    },
    /// A contact cannot be erased while it has open interactions.
    #[error("contact {contact} has {} open interaction(s) ({}): erase it once they have ended", open.len(), list_ids(open))]
    ContactHasOpenInteractions {
        /// The contact.
        contact: ContactId,
        /// Its open interactions.
        open: Vec<InteractionId>,
    },
    /// An IVR tree version already exists (stored versions never change).
    #[error("IVR tree `{name}` already has a version {version}: stored versions are immutable")]
    IvrVersionExists {
        /// The tree.
        name: String,
        /// The version.
        version: u32,
    },
    /// An IVR tree version does not exist.
    #[error("IVR tree `{name}` has no version {version}")]
    UnknownIvrVersion {
        /// The tree.
        name: String,
        /// The version.
        version: u32,
    },
    /// A request to the store is invalid (for example an agent token without an agent).
    #[error("{0}")]
    Invalid(String),
    /// The journal stopped accepting events after a commit failed (even after retries): the
    /// engine's state is ahead of the journal, and only a restart (recovery) reconciles them.
    #[error("{}: the journal halted after a failed commit ({detail}): restart Guichet to recover from the store", path.display())]
    Halted {
        /// The database file.
        path: PathBuf,
        /// The error that halted it.
        detail: String,
    },
    /// A journal write of a leader whose term is over (high availability on PostgreSQL): another
    /// node took the lease; this node must stop and never retry.
    #[error("term {term} superseded: the lease now has term {current} held by {holder:?}; this node no longer leads and writes nothing more")]
    Fenced {
        /// The term this node led with.
        term: u64,
        /// The lease's term now.
        current: u64,
        /// The lease's holder now.
        holder: String,
    },
    /// A store thread (the journal's writer or the replay reader) panicked.
    #[error("{}: the {thread} thread panicked", path.display())]
    ThreadPanicked {
        /// The database file.
        path: PathBuf,
        /// Which thread.
        thread: &'static str,
    },
    /// The journal's writer was already started for this store.
    #[error("the journal of {} is already started", path.display())]
    JournalStarted {
        /// The database file.
        path: PathBuf,
    },
}

fn list_ids(ids: &[InteractionId]) -> String {
    let mut text: Vec<String> = ids.iter().take(5).map(|id| id.to_string()).collect();
    if ids.len() > 5 {
        text.push("...".to_owned());
    }
    text.join(", ")
}

impl StoreError {
    /// Classifies a SQLite error on `path`: a file that is not a database or is damaged becomes
    /// [`StoreError::Corrupt`], a busy or locked database [`StoreError::Locked`], the rest
    /// [`StoreError::Sqlite`].
    pub(crate) fn sqlite(path: &Path, source: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode;
        match source.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => StoreError::Corrupt {
                path: path.to_owned(),
                detail: "file is not a database".to_owned(),
            },
            Some(ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
                path: path.to_owned(),
                detail: format!("database disk image is malformed: {source}"),
            },
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => StoreError::Locked {
                path: path.to_owned(),
                detail: source.to_string(),
            },
            _ => StoreError::Sqlite {
                path: path.to_owned(),
                source,
            },
        }
    }

    /// Whether this is [`StoreError::Overloaded`].
    pub fn is_overloaded(&self) -> bool {
        matches!(self, StoreError::Overloaded { .. })
    }
}

/// Attaches the database path to rusqlite results.
pub(crate) trait SqlContext<T> {
    /// Maps the error with [`StoreError::sqlite`].
    fn at(self, path: &Path) -> Result<T, StoreError>;
}

impl<T> SqlContext<T> for Result<T, rusqlite::Error> {
    fn at(self, path: &Path) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::sqlite(path, e))
    }
}
