//! IVR tree versions, the active version of each tree, and dialled numbers bound to trees.
//!
//! The store keeps trees as JSON text and does not interpret them: the `ivr` module validates a
//! tree before it is stored and rebuilds its registry from these rows at startup. A stored
//! version never changes (a second `put` of the same version is refused).

use rusqlite::{params, OptionalExtension};

use crate::core::Timestamp;

use super::codec::{millis_from_sql, millis_to_sql};
use super::db::Store;
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
}

impl Store {
    /// Stores version `version` of tree `name`. Refused with [`StoreError::IvrVersionExists`] if
    /// that version is already stored.
    pub fn put_ivr_version(
        &self,
        name: &str,
        version: u32,
        tree_json: &str,
        created_at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().at(self.path())?;
        let exists: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM ivr_versions WHERE name = ?1 AND version = ?2",
                params![name, version],
                |r| r.get(0),
            )
            .optional()
            .at(self.path())?;
        if exists.is_some() {
            return Err(StoreError::IvrVersionExists {
                name: name.to_owned(),
                version,
            });
        }
        tx.execute(
            "INSERT INTO ivr_versions (name, version, tree, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![name, version, tree_json, millis_to_sql(created_at)],
        )
        .at(self.path())?;
        tx.commit().at(self.path())
    }

    /// The versions of tree `name`, oldest first (empty for an unknown tree).
    pub fn ivr_versions(&self, name: &str) -> Result<Vec<IvrVersionInfo>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT v.version, v.created_at, a.version FROM ivr_versions v \
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

    /// Makes `version` the active version of tree `name`. Refused with
    /// [`StoreError::UnknownIvrVersion`] if it is not stored.
    pub fn set_active_ivr(&self, name: &str, version: u32) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().at(self.path())?;
        let exists: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM ivr_versions WHERE name = ?1 AND version = ?2",
                params![name, version],
                |r| r.get(0),
            )
            .optional()
            .at(self.path())?;
        if exists.is_none() {
            return Err(StoreError::UnknownIvrVersion {
                name: name.to_owned(),
                version,
            });
        }
        tx.execute("DELETE FROM ivr_active WHERE name = ?1", params![name])
            .at(self.path())?;
        tx.execute(
            "INSERT INTO ivr_active (name, version) VALUES (?1, ?2)",
            params![name, version],
        )
        .at(self.path())?;
        tx.commit().at(self.path())
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
        let mut conn = self.conn();
        let tx = conn.transaction().at(self.path())?;
        tx.execute("DELETE FROM ivr_numbers WHERE number = ?1", params![number])
            .at(self.path())?;
        tx.execute(
            "INSERT INTO ivr_numbers (number, tree) VALUES (?1, ?2)",
            params![number, tree],
        )
        .at(self.path())?;
        tx.commit().at(self.path())
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
