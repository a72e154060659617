//! The database schema and its migrations, versioned in code.
//!
//! The version lives in the `meta` table (`key = 'schema_version'`), not in a SQLite pragma, so
//! that a PostgreSQL store can keep the same scheme. Opening a database:
//! - with no table at all: every migration runs, in one transaction;
//! - with tables but no `meta` row naming it a Guichet database: refused as
//!   [`StoreError::Corrupt`] ("not a Guichet database");
//! - at an older version: the missing migrations run, in one transaction (all or nothing);
//! - at a newer version than [`SCHEMA_VERSION`]: refused as [`StoreError::TooNew`].
//!
//! Portability: the tables use plain types (`INTEGER`, `TEXT`) and the statements the store runs
//! on them are plain SQL. The one SQLite-specific spelling is `seq INTEGER PRIMARY KEY`, which
//! makes the sequence the table's rowid (PostgreSQL: `BIGINT PRIMARY KEY`); the store always
//! writes `seq` explicitly and never relies on the rowid being assigned.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::error::{SqlContext, StoreError};

/// The schema version this build writes and reads.
/// (Versions 13 and 14 add PostgreSQL's leadership lease and the outbox's claims with a term,
/// `pg/schema.rs`: nothing changes on SQLite, where one node is always the leader.)
pub const SCHEMA_VERSION: u32 = 14;

/// The value of the `application` meta key that marks a Guichet database.
pub(crate) const APPLICATION: &str = "guichet";

/// One migration: brings a database from `version - 1` to `version`.
struct Migration {
    version: u32,
    apply: fn(&Transaction<'_>, &Path) -> Result<(), StoreError>,
}

/// Every migration, in order. Append only: a released migration never changes.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        apply: v1_initial,
    },
    Migration {
        version: 2,
        apply: v2_journal_contact,
    },
    Migration {
        version: 3,
        apply: v3_journal_interaction,
    },
    Migration {
        version: 4,
        apply: v4_journal_message,
    },
    Migration {
        version: 5,
        apply: v5_indicators_and_surveys,
    },
    Migration {
        version: 6,
        apply: v6_notify_outbox,
    },
    Migration {
        version: 7,
        apply: v7_survey_questions,
    },
    Migration {
        version: 8,
        apply: v8_ivr_history,
    },
    Migration {
        version: 9,
        apply: v9_view_checkpoints,
    },
    Migration {
        version: 10,
        apply: v10_signing_secrets,
    },
    Migration {
        version: 11,
        apply: v11_users_and_sessions,
    },
    Migration {
        version: 12,
        apply: v12_voice_sessions,
    },
];

/// Version 1: the journal, snapshots, meta, tokens and IVR tables.
const V1_SQL: &str = "
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE journal (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    interaction TEXT,
    agent TEXT,
    payload TEXT NOT NULL
);
CREATE TABLE snapshots (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    agent TEXT,
    label TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE ivr_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    tree TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE ivr_active (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
CREATE TABLE ivr_numbers (
    number TEXT PRIMARY KEY,
    tree TEXT NOT NULL
);
";

fn v1_initial(tx: &Transaction<'_>, path: &Path) -> Result<(), StoreError> {
    tx.execute_batch(V1_SQL).at(path)?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('application', ?1)",
        params![APPLICATION],
    )
    .at(path)?;
    Ok(())
}

/// Version 2: the contact of each `interaction_created` row in its own indexed column, so that
/// erasing a contact (GDPR) finds its interactions without reading the whole journal. Existing
/// rows are backfilled from their payload.
fn v2_journal_contact(tx: &Transaction<'_>, path: &Path) -> Result<(), StoreError> {
    tx.execute_batch(
        "ALTER TABLE journal ADD COLUMN contact TEXT;
         CREATE INDEX journal_contact ON journal (contact) WHERE contact IS NOT NULL;",
    )
    .at(path)?;
    let mut select = tx
        .prepare("SELECT seq, payload FROM journal WHERE kind = 'interaction_created'")
        .at(path)?;
    let mut update = tx
        .prepare("UPDATE journal SET contact = ?1 WHERE seq = ?2")
        .at(path)?;
    let mut rows = select.query([]).at(path)?;
    while let Some(row) = rows.next().at(path)? {
        let seq: i64 = row.get(0).at(path)?;
        let payload: String = row.get(1).at(path)?;
        let contact = contact_of_created(&payload).map_err(|detail| StoreError::Decode {
            path: path.to_owned(),
            table: "journal",
            seq: seq as u64,
            detail,
        })?;
        if let Some(contact) = contact {
            update.execute(params![contact, seq]).at(path)?;
        }
    }
    Ok(())
}

/// Version 3: an index on the journal's interaction column, so that a contact's history (the
/// outcome of each of its interactions) is read without scanning the journal.
fn v3_journal_interaction(tx: &Transaction<'_>, path: &Path) -> Result<(), StoreError> {
    tx.execute_batch(
        "CREATE INDEX journal_interaction ON journal (interaction) WHERE interaction IS NOT NULL;",
    )
    .at(path)
}

/// Version 5: daily indicator aggregates and satisfaction surveys (see `indicators.rs` and
/// `surveys.rs`).
fn v5_indicators_and_surveys(tx: &Transaction<'_>, path: &Path) -> Result<(), StoreError> {
    tx.execute_batch(super::indicators::V5_SQL).at(path)
}

/// Version 4: conversation messages are journal events; their ids are indexed so that channels
/// can ignore a provider's retry and thread an email reply to its interaction. Older journals
/// have no messages, so there is nothing to fill in.
fn v4_journal_message(tx: &Transaction<'_>, path: &Path) -> Result<(), StoreError> {
    tx.execute_batch(
        "ALTER TABLE journal ADD COLUMN message TEXT;
         CREATE INDEX journal_message ON journal (message) WHERE message IS NOT NULL;",
    )
    .at(path)
}

/// Version 6: the notify outbox (one row per outbound message to deliver, with its attempts,
/// next attempt time, last error and delivery time), its checkpoint in the journal, and the SMS
/// opt-outs (STOP). Outbound messages journaled before this version were never meant to be sent
/// by Guichet: the checkpoint starts after them.
fn v6_notify_outbox(tx: &Transaction<'_>, path: &Path) -> Result<(), StoreError> {
    tx.execute_batch(
        "CREATE TABLE outbox (
            message TEXT PRIMARY KEY,
            seq INTEGER NOT NULL,
            interaction TEXT NOT NULL,
            channel TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            next_attempt_at INTEGER NOT NULL,
            last_error TEXT,
            delivered_at INTEGER,
            provider_ref TEXT
        );
        CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE state = 'pending';
        CREATE TABLE sms_opt_out (
            number TEXT PRIMARY KEY,
            opted_out INTEGER NOT NULL,
            changed_at INTEGER NOT NULL,
            message TEXT NOT NULL
        );",
    )
    .at(path)?;
    checkpoint_at_journal_end(tx, "notify_checkpoint", path)
}

/// Starts the journal reader's checkpoint `key` (a `meta` value) after the journal's last row:
/// what was journaled before the migration is not for that reader.
fn checkpoint_at_journal_end(
    tx: &Transaction<'_>,
    key: &str,
    path: &Path,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO meta (key, value) \
         SELECT ?1, CAST(COALESCE(MAX(seq), 0) AS TEXT) FROM journal",
        params![key],
    )
    .at(path)?;
    Ok(())
}

/// Version 7: the satisfaction survey questions sent (token, where and how each was sent, and
/// whether it was answered), and the survey dispatcher's checkpoint in the journal. Interactions
/// completed before this version are not surveyed: the checkpoint starts after them.
fn v7_survey_questions(tx: &Transaction<'_>, path: &Path) -> Result<(), StoreError> {
    tx.execute_batch(super::surveys::V7_SQL).at(path)?;
    checkpoint_at_journal_end(tx, "survey_checkpoint", path)
}

/// Version 8: IVR history. Each version records who stored it and why (versions stored before
/// get an empty author and comment); the active version of a tree keeps the versions active
/// before it (comma-separated, most recent last), so that a rollback works after a restart
/// (trees active before this version start with nothing to roll back to).
fn v8_ivr_history(tx: &Transaction<'_>, path: &Path) -> Result<(), StoreError> {
    tx.execute_batch(
        "ALTER TABLE ivr_versions ADD COLUMN author TEXT NOT NULL DEFAULT '';
         ALTER TABLE ivr_versions ADD COLUMN comment TEXT NOT NULL DEFAULT '';
         ALTER TABLE ivr_active ADD COLUMN previous TEXT NOT NULL DEFAULT '';",
    )
    .at(path)
}

/// Version 9: the durable checkpoints of the views of committed events that send something
/// (the journal sequence number each has handled), and the daily aggregates' counts of
/// abandons within the announced delay and of cancellations (the core's `Counts` complete).
/// Completions journaled before this version were noticed by the previous one: the completion
/// notices' checkpoint starts after them.
fn v9_view_checkpoints(tx: &Transaction<'_>, path: &Path) -> Result<(), StoreError> {
    tx.execute_batch(super::checkpoints::V9_SQL).at(path)?;
    tx.execute(
        "INSERT INTO view_checkpoints (view, seq) \
         SELECT 'completion_notices', COALESCE(MAX(seq), 0) FROM journal",
        params![],
    )
    .at(path)?;
    Ok(())
}

/// Version 10: the secrets Guichet signs its own links with (`attachment_links`: the agents'
/// attachment downloads), made once here so that every node sharing the database signs and
/// checks with the same key and links survive a restart.
fn v10_signing_secrets(tx: &Transaction<'_>, path: &Path) -> Result<(), StoreError> {
    tx.execute_batch(
        "CREATE TABLE secrets (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            created_at INTEGER NOT NULL
        );",
    )
    .at(path)?;
    let mut key = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut key[..]);
    let created_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    tx.execute(
        "INSERT INTO secrets (name, value, created_at) VALUES ('attachment_links', ?1, ?2)",
        params![
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key),
            created_at
        ],
    )
    .at(path)?;
    Ok(())
}

/// Version 11: the people who sign in to the console (`users`, password hashes only) and their
/// sessions (digests only), so that sessions survive a restart.
fn v11_users_and_sessions(tx: &Transaction<'_>, path: &Path) -> Result<(), StoreError> {
    tx.execute_batch(super::users::V11_SQL).at(path)?;
    Ok(())
}

/// Version 12: calls inside a phone menu (`voice_sessions`), in the store rather than a file
/// of the node's, so that every node sees them (a file left by an older version is imported at
/// start, see `voice.rs`).
fn v12_voice_sessions(tx: &Transaction<'_>, path: &Path) -> Result<(), StoreError> {
    tx.execute_batch(super::voice::sql::V12).at(path)?;
    Ok(())
}

/// The contact named by an `interaction_created` payload, read without decoding the whole event.
pub(crate) fn contact_of_created(payload: &str) -> Result<Option<String>, String> {
    #[derive(serde::Deserialize)]
    struct Created {
        spec: Spec,
    }
    #[derive(serde::Deserialize)]
    struct Spec {
        #[serde(default)]
        contact: Option<String>,
    }
    serde_json::from_str::<Created>(payload)
        .map(|c| c.spec.contact)
        .map_err(|e| e.to_string())
}

/// Brings the database to [`SCHEMA_VERSION`], or refuses it. Returns the version found before.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<u32, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .at(path)?;
    let found = current_version(&tx, path)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(found);
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > found) {
        (migration.apply)(&tx, path)?;
    }
    tx.execute("DELETE FROM meta WHERE key = 'schema_version'", params![])
        .at(path)?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
        params![SCHEMA_VERSION.to_string()],
    )
    .at(path)?;
    tx.commit().at(path)?;
    Ok(found)
}

/// The schema version of an open database: 0 for an empty one.
fn current_version(tx: &Transaction<'_>, path: &Path) -> Result<u32, StoreError> {
    found_version(
        &mut &*tx,
        path.to_owned(),
        |tx, meta_only| {
            let sql = if meta_only {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
            } else {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            };
            tx.query_row(sql, [], |r| r.get(0)).at(path)
        },
        |tx, key| {
            tx.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
                .at(path)
        },
        "it holds other tables and no Guichet metadata",
    )
    .map(|v| v.unwrap_or(0))
}

/// The schema version of a database, on either backend: none without tables (`count_tables(db,
/// false)`), else what its `meta` table says (`read_meta(db, key)`), refused as not Guichet's
/// ([`StoreError::Corrupt`] at `path`) without a `meta` table (`count_tables(db, true)`: then
/// `foreign` says why), without Guichet's `application` or without a numeric `schema_version`.
pub(crate) fn found_version<D>(
    db: &mut D,
    path: std::path::PathBuf,
    count_tables: impl Fn(&mut D, bool) -> Result<i64, StoreError>,
    read_meta: impl Fn(&mut D, &str) -> Result<Option<String>, StoreError>,
    foreign: &str,
) -> Result<Option<u32>, StoreError> {
    if count_tables(db, false)? == 0 {
        return Ok(None);
    }
    let not_ours = |detail: &str| StoreError::Corrupt {
        path: path.clone(),
        detail: detail.to_owned(),
    };
    if count_tables(db, true)? == 0 {
        return Err(not_ours(foreign));
    }
    if read_meta(db, "application")?.as_deref() != Some(APPLICATION) {
        return Err(not_ours("its meta table does not name Guichet"));
    }
    let version =
        read_meta(db, "schema_version")?.ok_or_else(|| not_ours("it has no schema version"))?;
    version
        .parse::<u32>()
        .map(Some)
        .map_err(|_| not_ours(&format!("its schema version {version:?} is not a number")))
}
