//! The PostgreSQL schema and its migrations, versioned like SQLite's (`schema.rs`): the version
//! lives in the `meta` table, and the numbers are the same on both backends, so that a database
//! at version N holds the same tables whichever backend keeps it.
//!
//! PostgreSQL support starts at version 10: its first migration creates every table of that
//! version at once. A later schema change adds one migration to each list (`schema.rs` and
//! here) under the same number (see `docs/storage.md`, "Adding a table").
//!
//! Types: `BIGINT` where SQLite says `INTEGER` (sequence numbers and milliseconds do not fit in
//! PostgreSQL's 32-bit `INTEGER`), `TEXT` as is. `seq` is a plain `BIGINT PRIMARY KEY`, written by
//! the journal's writer, never a `SERIAL`.

use postgres::{Client, Transaction};

use super::super::schema::{found_version, APPLICATION, SCHEMA_VERSION};
use super::super::StoreError;
use super::connect::{pg_error, Target};

/// SQLite's DDL `sql` in PostgreSQL's types (`BIGINT` for `INTEGER`).
fn pg_types(sql: &str) -> String {
    sql.replace("INTEGER", "BIGINT")
}

/// Serialises concurrent migrations of one database (two nodes starting at once): a
/// transaction-level advisory lock with this key.
const MIGRATION_LOCK: i64 = 0x6775_6963_6865_7401;

/// One migration: brings a database from `version - 1` (or, for the first, from empty) to
/// `version`.
struct Migration {
    version: u32,
    apply: fn(&mut Transaction<'_>, &Target) -> Result<(), StoreError>,
}

/// Every migration, in order. Append only: a released migration never changes.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 10,
        apply: v10_initial,
    },
    Migration {
        version: 11,
        apply: v11_users_and_sessions,
    },
    Migration {
        version: 12,
        apply: v12_voice_sessions,
    },
    Migration {
        version: 13,
        apply: v13_leader_lease,
    },
    Migration {
        version: 14,
        apply: v14_outbox_claims,
    },
];

/// Version 14: each outbox delivery records the term of the leader that claimed it before
/// sending (`pg/outbox.rs`), so that nothing is sent twice across a takeover. PostgreSQL only:
/// on SQLite one node is always the leader, and version 14 changes nothing there.
fn v14_outbox_claims(tx: &mut Transaction<'_>, target: &Target) -> Result<(), StoreError> {
    tx.batch_execute("ALTER TABLE outbox ADD COLUMN claimed_term BIGINT")
        .map_err(|e| pg_error(target, e))
}

/// Version 12: calls inside a phone menu (SQLite's `voice.rs`), seen by every node.
fn v12_voice_sessions(tx: &mut Transaction<'_>, target: &Target) -> Result<(), StoreError> {
    tx.batch_execute(&pg_types(super::super::voice::sql::V12))
        .map_err(|e| pg_error(target, e))
}

/// Version 13: high availability's leadership lease (one row: holder, its address, the term,
/// expiry by the database's clock) and the nodes `guichet status` shows. PostgreSQL only: on
/// SQLite one node is always the leader, and version 13 changes nothing there.
const V13_SQL: &str = "
CREATE TABLE leader_lease (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    holder TEXT NOT NULL,
    address TEXT NOT NULL,
    term BIGINT NOT NULL,
    acquired_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ NOT NULL
);
INSERT INTO leader_lease (id, holder, address, term, acquired_at, expires_at)
    VALUES (1, '', '', 0, NULL, '-infinity');
CREATE TABLE nodes (
    node TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    role TEXT NOT NULL,
    term BIGINT NOT NULL,
    applied_seq BIGINT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL
);
";

fn v13_leader_lease(tx: &mut Transaction<'_>, target: &Target) -> Result<(), StoreError> {
    tx.batch_execute(V13_SQL).map_err(|e| pg_error(target, e))
}

/// Version 11: people who sign in to the console, and their sessions (SQLite's `users.rs`,
/// in PostgreSQL's types).
fn v11_users_and_sessions(tx: &mut Transaction<'_>, target: &Target) -> Result<(), StoreError> {
    tx.batch_execute(&pg_types(super::super::users::V11_SQL))
        .map_err(|e| pg_error(target, e))
}

/// Version 10, the first on PostgreSQL: every table of SQLite's version 10, up to the survey
/// questions (SQLite's `surveys.rs`, whose version 7 is used as is in PostgreSQL's types), then
/// [`V10_SQL_REST`].
const V10_SQL: &str = "
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE journal (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    interaction TEXT,
    agent TEXT,
    payload TEXT NOT NULL,
    contact TEXT,
    message TEXT
);
CREATE INDEX journal_contact ON journal (contact) WHERE contact IS NOT NULL;
CREATE INDEX journal_interaction ON journal (interaction) WHERE interaction IS NOT NULL;
CREATE INDEX journal_message ON journal (message) WHERE message IS NOT NULL;
CREATE TABLE snapshots (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    agent TEXT,
    label TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE ivr_versions (
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    tree TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    author TEXT NOT NULL DEFAULT '',
    comment TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (name, version)
);
CREATE TABLE ivr_active (
    name TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    previous TEXT NOT NULL DEFAULT ''
);
CREATE TABLE ivr_numbers (
    number TEXT PRIMARY KEY,
    tree TEXT NOT NULL
);
CREATE TABLE indicator_days (
    day TEXT NOT NULL,
    queue TEXT NOT NULL,
    channel TEXT NOT NULL,
    requests BIGINT NOT NULL DEFAULT 0,
    answered BIGINT NOT NULL DEFAULT 0,
    answered_within BIGINT NOT NULL DEFAULT 0,
    abandoned BIGINT NOT NULL DEFAULT 0,
    wait_ms_total BIGINT NOT NULL DEFAULT 0,
    survey_answers BIGINT NOT NULL DEFAULT 0,
    survey_score_total BIGINT NOT NULL DEFAULT 0,
    abandoned_within BIGINT NOT NULL DEFAULT 0,
    cancelled BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (day, queue, channel)
);
CREATE TABLE indicator_open (
    interaction TEXT PRIMARY KEY,
    day TEXT NOT NULL,
    queue TEXT NOT NULL,
    channel TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    sla_deadline BIGINT NOT NULL
);
CREATE TABLE survey_answers (
    interaction TEXT PRIMARY KEY,
    contact TEXT,
    agent TEXT,
    queue TEXT NOT NULL,
    channel TEXT NOT NULL,
    score BIGINT NOT NULL,
    comment TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX survey_answers_contact ON survey_answers (contact) WHERE contact IS NOT NULL;
CREATE TABLE survey_sent (
    contact TEXT NOT NULL,
    interaction TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (contact, interaction)
);
CREATE TABLE survey_opt_out (
    contact TEXT PRIMARY KEY,
    at BIGINT NOT NULL
);
CREATE TABLE outbox (
    message TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    interaction TEXT NOT NULL,
    channel TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    delivered_at BIGINT,
    provider_ref TEXT
);
CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE state = 'pending';
CREATE TABLE sms_opt_out (
    number TEXT PRIMARY KEY,
    opted_out BIGINT NOT NULL,
    changed_at BIGINT NOT NULL,
    message TEXT NOT NULL
);
";

/// Version 10, after the survey questions.
const V10_SQL_REST: &str = "
CREATE TABLE view_checkpoints (
    view TEXT PRIMARY KEY,
    seq BIGINT NOT NULL
);
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
";

fn v10_initial(tx: &mut Transaction<'_>, target: &Target) -> Result<(), StoreError> {
    let sql = [
        V10_SQL,
        &pg_types(super::super::surveys::V7_SQL),
        V10_SQL_REST,
    ]
    .concat();
    tx.batch_execute(&sql).map_err(|e| pg_error(target, e))?;
    let mut key = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut key[..]);
    let created_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let secret = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key);
    tx.execute(
        "INSERT INTO secrets (name, value, created_at) VALUES ('attachment_links', $1, $2)",
        &[&secret, &created_at],
    )
    .map_err(|e| pg_error(target, e))?;
    // The views that send something start after the journal's end: nothing yet.
    for key in ["notify_checkpoint", "survey_checkpoint"] {
        tx.execute("INSERT INTO meta (key, value) VALUES ($1, '0')", &[&key])
            .map_err(|e| pg_error(target, e))?;
    }
    tx.execute(
        "INSERT INTO view_checkpoints (view, seq) VALUES ('completion_notices', 0)",
        &[],
    )
    .map_err(|e| pg_error(target, e))?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('application', $1)",
        &[&APPLICATION],
    )
    .map_err(|e| pg_error(target, e))?;
    Ok(())
}

/// Brings the database to [`SCHEMA_VERSION`], or refuses it. Returns the version found before
/// (0 for an empty database).
pub(crate) fn migrate(client: &mut Client, target: &Target) -> Result<u32, StoreError> {
    migrate_upto(client, target, SCHEMA_VERSION)
}

/// Like [`migrate`], stopping at version `upto` (at least 10, at most this build's): the schema
/// an older Guichet left, for upgrade tests.
pub(crate) fn migrate_upto(
    client: &mut Client,
    target: &Target,
    upto: u32,
) -> Result<u32, StoreError> {
    let upto = upto.clamp(MIGRATIONS[0].version, SCHEMA_VERSION);
    let mut tx = client.transaction().map_err(|e| pg_error(target, e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(|e| pg_error(target, e))?;
    let found = current_version(&mut tx, target)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: target.as_path(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found >= upto {
        return Ok(found);
    }
    for migration in MIGRATIONS
        .iter()
        .filter(|m| m.version > found && m.version <= upto)
    {
        (migration.apply)(&mut tx, target)?;
    }
    tx.execute("DELETE FROM meta WHERE key = 'schema_version'", &[])
        .map_err(|e| pg_error(target, e))?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', $1)",
        &[&upto.to_string()],
    )
    .map_err(|e| pg_error(target, e))?;
    tx.commit().map_err(|e| pg_error(target, e))?;
    Ok(found)
}

/// The schema version of the database: 0 for one without tables in the current schema.
fn current_version(tx: &mut Transaction<'_>, target: &Target) -> Result<u32, StoreError> {
    let version = found_version(
        tx,
        target.as_path(),
        |tx, meta_only| {
            let sql = if meta_only {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = 'meta'"
            } else {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema()"
            };
            tx.query_one(sql, &[])
                .map(|r| r.get(0))
                .map_err(|e| pg_error(target, e))
        },
        |tx, key| {
            tx.query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
                .map(|row| row.map(|r| r.get(0)))
                .map_err(|e| pg_error(target, e))
        },
        "its schema holds other tables and no Guichet metadata",
    )?;
    let Some(version) = version else {
        return Ok(0);
    };
    if version < MIGRATIONS[0].version {
        return Err(StoreError::Corrupt {
            path: target.as_path(),
            detail: format!(
                "its schema version {version} predates PostgreSQL support (version {})",
                MIGRATIONS[0].version
            ),
        });
    }
    Ok(version)
}

/// The schema version of the database (0 for an empty one), read in a transaction of its own,
/// without migrating.
pub(crate) fn current(client: &mut Client, target: &Target) -> Result<u32, StoreError> {
    let mut tx = client.transaction().map_err(|e| pg_error(target, e))?;
    let found = current_version(&mut tx, target)?;
    tx.commit().map_err(|e| pg_error(target, e))?;
    Ok(found)
}
