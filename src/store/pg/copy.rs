//! Copying an installation from SQLite to PostgreSQL, and checking the copy: what
//! `guichet migrate --from-sqlite DATA_DIR` does.
//!
//! Every table of the SQLite database (read from its catalogue, so a table added later is
//! copied without a change here) is copied with `COPY ... FROM STDIN` into the table of the same
//! name and columns on PostgreSQL, in one transaction: the copy is whole or absent. The journal is
//! copied in `seq` order with its sequence numbers, so they stay dense. Then the copy is checked:
//! the row count of every table, the last sequence number, and the routers recovered from both
//! databases (snapshot plus replay) must be equal.

use std::io::Write;

use rusqlite::types::ValueRef;

use super::super::{SqliteStore, StoreConfig, StoreError};
use super::connect::pg_error;
use super::PgStore;

/// What a copy moved and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Each table with its row count (the same on both sides).
    pub tables: Vec<(String, u64)>,
    /// The last sequence number (the same on both sides).
    pub last_seq: u64,
    /// Open interactions in the router recovered from both (the same router on both sides).
    pub open_interactions: usize,
}

/// Copies the SQLite store `source` (opened, at the current schema version, with no server
/// running on it) into the empty PostgreSQL database of `dest`, then checks the copy.
///
/// Refused, with nothing written, when the PostgreSQL database already holds journal rows,
/// snapshots or tokens, or lacks a table or column the SQLite one has.
pub fn copy_from_sqlite(
    source: &SqliteStore,
    dest: &StoreConfig,
) -> Result<CopyReport, StoreError> {
    let pg = PgStore::open(dest)?;
    let target = pg.target().clone();
    let err = |e| pg_error(&target, e);
    let tables = sqlite_tables(source)?;
    {
        let mut client = pg.conn();
        let held: i64 = client
            .query_one(
                "SELECT (SELECT COUNT(*) FROM journal) + (SELECT COUNT(*) FROM snapshots) \
                 + (SELECT COUNT(*) FROM tokens)",
                &[],
            )
            .map_err(err)?
            .get(0);
        if held > 0 {
            return Err(StoreError::Invalid(format!(
                "{target} already holds Guichet data ({held} journal rows, snapshots and tokens): \
                 migrate into an empty database"
            )));
        }
        let mut tx = client.transaction().map_err(err)?;
        for (table, columns) in &tables {
            let pg_columns: Vec<String> = tx
                .query(
                    "SELECT column_name FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = $1",
                    &[table],
                )
                .map_err(err)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            if let Some(missing) = columns.iter().find(|c| !pg_columns.contains(c)) {
                return Err(StoreError::Invalid(format!(
                    "table {table} column {missing} has no PostgreSQL counterpart in {target}: \
                     its migration is missing from src/store/pg/schema.rs"
                )));
            }
            // The rows a new PostgreSQL database starts with (meta, the signing secret, the
            // checkpoints) are replaced by the installation's own.
            tx.batch_execute(&format!("DELETE FROM {table}"))
                .map_err(err)?;
            let list = columns.join(", ");
            let mut writer = tx
                .copy_in(&format!("COPY {table} ({list}) FROM STDIN"))
                .map_err(err)?;
            let order = if table == "journal" || table == "snapshots" {
                " ORDER BY seq"
            } else {
                ""
            };
            let conn = source.conn();
            let path = source.path();
            let mut stmt = conn
                .prepare(&format!("SELECT {list} FROM {table}{order}"))
                .map_err(|e| StoreError::sqlite(path, e))?;
            let mut rows = stmt.query([]).map_err(|e| StoreError::sqlite(path, e))?;
            let mut line = Vec::with_capacity(4096);
            while let Some(row) = rows.next().map_err(|e| StoreError::sqlite(path, e))? {
                line.clear();
                for i in 0..columns.len() {
                    if i > 0 {
                        line.push(b'\t');
                    }
                    let value = row.get_ref(i).map_err(|e| StoreError::sqlite(path, e))?;
                    copy_field(&mut line, value);
                }
                line.push(b'\n');
                writer.write_all(&line).map_err(|source| StoreError::Io {
                    path: target.as_path(),
                    source,
                })?;
            }
            writer.finish().map_err(err)?;
        }
        tx.commit().map_err(err)?;
    }
    check_copy(source, &pg, &tables)
}

/// Every table of the SQLite database and its columns.
fn sqlite_tables(source: &SqliteStore) -> Result<Vec<(String, Vec<String>)>, StoreError> {
    let conn = source.conn();
    let path = source.path();
    let at = |e| StoreError::sqlite(path, e);
    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             ORDER BY name",
        )
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(at)?;
    let mut tables = Vec::with_capacity(names.len());
    for name in names {
        let columns: Vec<String> = conn
            .prepare(&format!("PRAGMA table_info({name})"))
            .and_then(|mut s| s.query_map([], |r| r.get(1))?.collect())
            .map_err(at)?;
        tables.push((name, columns));
    }
    Ok(tables)
}

/// One value in `COPY`'s text format.
fn copy_field(out: &mut Vec<u8>, value: ValueRef<'_>) {
    match value {
        ValueRef::Null => out.extend_from_slice(b"\\N"),
        ValueRef::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
        ValueRef::Real(f) => out.extend_from_slice(f.to_string().as_bytes()),
        ValueRef::Text(text) | ValueRef::Blob(text) => {
            for &b in text {
                match b {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    _ => out.push(b),
                }
            }
        }
    }
}

/// Compares the copy with its source: counts, last sequence number, recovered routers.
fn check_copy(
    source: &SqliteStore,
    pg: &PgStore,
    tables: &[(String, Vec<String>)],
) -> Result<CopyReport, StoreError> {
    let target = pg.target().clone();
    let mut counted = Vec::with_capacity(tables.len());
    for (table, _) in tables {
        let lite: i64 = source
            .conn()
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .map_err(|e| StoreError::sqlite(source.path(), e))?;
        let copied: i64 = pg
            .conn()
            .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
            .map_err(|e| pg_error(&target, e))?
            .get(0);
        if lite != copied {
            return Err(StoreError::Invalid(format!(
                "the copy differs: table {table} has {lite} rows in SQLite, {copied} in {target}"
            )));
        }
        counted.push((table.clone(), lite.max(0) as u64));
    }
    let lite_last = source.last_committed_seq()?;
    let pg_last = pg.last_committed_seq()?;
    if lite_last != pg_last {
        return Err(StoreError::Invalid(format!(
            "the copy differs: last sequence number {lite_last} in SQLite, {pg_last} in {target}"
        )));
    }
    let lite_router = source.recover_router()?.router;
    let pg_router = pg.recover_router()?.router;
    if lite_router.snapshot() != pg_router.snapshot() {
        return Err(StoreError::Invalid(format!(
            "the copy differs: the router recovered from {target} is not the one recovered from \
             SQLite"
        )));
    }
    Ok(CopyReport {
        tables: counted,
        last_seq: pg_last,
        open_interactions: pg_router.open_count(),
    })
}
