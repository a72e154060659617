//! The secrets Guichet signs its own links with (schema version 8's `secrets` table): made once
//! by the migration, read at start, the same for every node that shares the database.

use rusqlite::{params, OptionalExtension};

use super::db::SqliteStore;
use super::error::{SqlContext, StoreError};

/// The name of the key that signs attachment download links.
pub const ATTACHMENT_LINKS: &str = "attachment_links";

impl SqliteStore {
    /// The secret called `name`, decoded; a database without it is reported as damaged.
    pub fn signing_secret(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        let value: Option<String> = conn
            .query_row(
                "SELECT value FROM secrets WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .at(&path)?;
        drop(conn);
        let corrupt = |detail: String| StoreError::Corrupt {
            path: path.clone(),
            detail,
        };
        let value = value.ok_or_else(|| corrupt(format!("its secret {name:?} is missing")))?;
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, value.trim())
            .map_err(|_| corrupt(format!("its secret {name:?} is not base64")))
    }
}
