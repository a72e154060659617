//! IVR tree versions, the active version of each tree, and dialled numbers bound to trees.
//!
//! The store keeps trees as JSON text and does not interpret them: the `ivr` module validates a
//! tree before it is stored and rebuilds its registry from these rows at startup. A stored
//! version never changes (a second `put` of the same version is refused). Each version keeps
//! who put it and why (author, comment); the active version of a tree keeps the versions active
//! before it, so that a rollback works across restarts.

use rusqlite::{params, OptionalExtension};

use crate::core::Timestamp;

use super::codec::{millis_from_sql, millis_to_sql};
use super::db::SqliteStore;
use super::error::{SqlContext, StoreError};

/// One stored version of an IVR tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IvrVersionInfo {
    /// The tree's name.
    pub name: String,
    /// The version (1, 2, ...).
    pub version: u32,
    /// When it was stored.
    pub created_at: Timestamp,
    /// Whether it is the tree's active version.
    pub active: bool,
    /// Who stored it: the label of the API token (or its agent), empty for versions stored
    /// before authors were recorded.
    pub author: String,
    /// Why it was stored, as its author wrote it (may be empty).
    pub comment: String,
}

/// The active version of a tree and what was active before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IvrActive {
    /// The active version.
    pub version: u32,
    /// Versions active before it, most recent last (what rollback goes back to).
    pub previous: Vec<u32>,
}

/// Who stores a version, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IvrAuthor {
    /// Who: the API token's label or agent.
    pub author: String,
    /// Why (may be empty).
    pub comment: String,
}

impl SqliteStore {
    /// Stores version `version` of tree `name`. Refused with [`StoreError::IvrVersionExists`] if
    /// that version is already stored.
    pub fn put_ivr_version(
        &self,
        name: &str,
        version: u32,
        tree_json: &str,
        created_at: Timestamp,
        by: &IvrAuthor,
    ) -> Result<(), StoreError> {
        self.with_tx(|tx| {
            if self.version_stored(tx, name, version)? {
                return Err(StoreError::IvrVersionExists {
                    name: name.to_owned(),
                    version,
                });
            }
            tx.execute(
                "INSERT INTO ivr_versions (name, version, tree, created_at, author, comment) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    name,
                    version,
                    tree_json,
                    millis_to_sql(created_at),
                    by.author,
                    by.comment
                ],
            )
            .at(self.path())?;
            Ok(())
        })
    }

    /// Whether version `version` of tree `name` is stored.
    fn version_stored(
        &self,
        tx: &rusqlite::Transaction<'_>,
        name: &str,
        version: u32,
    ) -> Result<bool, StoreError> {
        let exists: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM ivr_versions WHERE name = ?1 AND version = ?2",
                params![name, version],
                |r| r.get(0),
            )
            .optional()
            .at(self.path())?;
        Ok(exists.is_some())
    }

    /// The versions of tree `name`, oldest first (empty for an unknown tree).
    pub fn ivr_versions(&self, name: &str) -> Result<Vec<IvrVersionInfo>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT v.version, v.created_at, a.version, v.author, v.comment \
                 FROM ivr_versions v \
                 LEFT JOIN ivr_active a ON a.name = v.name \
                 WHERE v.name = ?1 ORDER BY v.version",
            )
            .at(self.path())?;
        let rows = stmt
            .query_map(params![name], |r| {
                let version: u32 = r.get(0)?;
                let created_at: i64 = r.get(1)?;
                let active: Option<u32> = r.get(2)?;
                Ok(IvrVersionInfo {
                    name: name.to_owned(),
                    version,
                    created_at: millis_from_sql(created_at),
                    active: active == Some(version),
                    author: r.get(3)?,
                    comment: r.get(4)?,
                })
            })
            .at(self.path())?;
        rows.collect::<Result<_, _>>().at(self.path())
    }

    /// The names of every stored tree, in order.
    pub fn ivr_names(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT DISTINCT name FROM ivr_versions ORDER BY name")
            .at(self.path())?;
        let rows = stmt.query_map([], |r| r.get(0)).at(self.path())?;
        rows.collect::<Result<_, _>>().at(self.path())
    }

    /// The JSON of version `version` of tree `name`.
    pub fn ivr_version(&self, name: &str, version: u32) -> Result<Option<String>, StoreError> {
        self.conn()
            .query_row(
                "SELECT tree FROM ivr_versions WHERE name = ?1 AND version = ?2",
                params![name, version],
                |r| r.get(0),
            )
            .optional()
            .at(self.path())
    }

    /// Makes `version` the active version of tree `name`, with `previous` the versions active
    /// before it (most recent last). Refused with [`StoreError::UnknownIvrVersion`] if it is
    /// not stored.
    pub fn set_active_ivr(
        &self,
        name: &str,
        version: u32,
        previous: &[u32],
    ) -> Result<(), StoreError> {
        self.with_tx(|tx| {
            if !self.version_stored(tx, name, version)? {
                return Err(StoreError::UnknownIvrVersion {
                    name: name.to_owned(),
                    version,
                });
            }
            tx.execute("DELETE FROM ivr_active WHERE name = ?1", params![name])
                .at(self.path())?;
            tx.execute(
                "INSERT INTO ivr_active (name, version, previous) VALUES (?1, ?2, ?3)",
                params![name, version, previous_to_sql(previous)],
            )
            .at(self.path())?;
            Ok(())
        })
    }

    /// The active version of tree `name` and the versions active before it, if one is active.
    pub fn ivr_active(&self, name: &str) -> Result<Option<IvrActive>, StoreError> {
        let row: Option<(u32, String)> = self
            .conn()
            .query_row(
                "SELECT version, previous FROM ivr_active WHERE name = ?1",
                params![name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .at(self.path())?;
        Ok(row.map(|(version, previous)| IvrActive {
            version,
            previous: previous_from_sql(&previous),
        }))
    }

    /// The active version of tree `name` and its JSON, if one is active.
    pub fn active_ivr(&self, name: &str) -> Result<Option<(u32, String)>, StoreError> {
        self.conn()
            .query_row(
                "SELECT v.version, v.tree FROM ivr_active a \
                 JOIN ivr_versions v ON v.name = a.name AND v.version = a.version \
                 WHERE a.name = ?1",
                params![name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .at(self.path())
    }

    /// Binds a dialled number (already normalised by the caller) to tree `tree`, replacing any
    /// previous binding of the number.
    pub fn bind_number(&self, number: &str, tree: &str) -> Result<(), StoreError> {
        self.with_tx(|tx| {
            tx.execute("DELETE FROM ivr_numbers WHERE number = ?1", params![number])
                .at(self.path())?;
            tx.execute(
                "INSERT INTO ivr_numbers (number, tree) VALUES (?1, ?2)",
                params![number, tree],
            )
            .at(self.path())?;
            Ok(())
        })
    }

    /// Removes a number's binding; returns whether it existed.
    pub fn unbind_number(&self, number: &str) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .execute("DELETE FROM ivr_numbers WHERE number = ?1", params![number])
            .at(self.path())?;
        Ok(n > 0)
    }

    /// Every `(number, tree)` binding, by number.
    pub fn number_bindings(&self) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT number, tree FROM ivr_numbers ORDER BY number")
            .at(self.path())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .at(self.path())?;
        rows.collect::<Result<_, _>>().at(self.path())
    }
}

/// The most previous versions kept per tree (the IVR registry remembers as many).
pub(crate) const MAX_PREVIOUS: usize = 64;

pub(crate) fn previous_to_sql(previous: &[u32]) -> String {
    let start = previous.len().saturating_sub(MAX_PREVIOUS);
    let list: Vec<String> = previous[start..].iter().map(u32::to_string).collect();
    list.join(",")
}

/// Reads the stored list; an unreadable entry is skipped (it only limits how far back a
/// rollback goes).
pub(crate) fn previous_from_sql(text: &str) -> Vec<u32> {
    text.split(',')
        .filter_map(|v| v.trim().parse().ok())
        .take(MAX_PREVIOUS)
        .collect()
}
