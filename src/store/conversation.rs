//! Conversations, read from the journal: the messages of an interaction in order, the
//! interaction a message id belongs to (to ignore a provider's retry, or to thread an email
//! reply), and the spec an interaction was created with (its channel, contact and queue, for the
//! channel that sends a reply).
//!
//! Messages are `message_added` journal events (see [`crate::core::Message`]); the journal's
//! `interaction` and `message` columns are indexed, so none of these reads scans the journal.

use std::path::PathBuf;
use std::sync::Arc;

use rusqlite::{params, OptionalExtension};

use crate::core::{EventKind, InteractionId, InteractionSpec, Message, Timestamp};

use super::codec::Decoder;
use super::db::SqliteStore;
use super::error::{SqlContext, StoreError};

/// One message of a conversation, with when it was committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationEntry {
    /// The journal sequence number of the message (increasing within a conversation).
    pub seq: u64,
    /// When it was added.
    pub at: Timestamp,
    /// The message.
    pub message: Arc<Message>,
}

/// How many of an interaction's latest moves [`SqliteStore::last_transfer`] reads.
pub const MAX_MOVES_READ: usize = 20;

/// The messages of one interaction (`?1`), in journal order.
pub(super) const CONVERSATION_SQL: &str = "SELECT seq, at, payload FROM journal \
     WHERE interaction = ?1 AND kind = 'message_added' ORDER BY seq";

impl SqliteStore {
    /// Every message of the interaction, oldest first (empty for an interaction without
    /// messages, such as a call, or one whose journal rows were purged).
    pub fn conversation(
        &self,
        interaction: InteractionId,
    ) -> Result<Vec<ConversationEntry>, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        let mut select = conn.prepare_cached(CONVERSATION_SQL).at(&path)?;
        let rows: Vec<(i64, i64, String)> = select
            .query_map(params![interaction.to_string()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .at(&path)?
            .collect::<Result<_, _>>()
            .at(&path)?;
        drop(select);
        drop(conn);
        conversation_from_rows(&path, rows)
    }

    /// The interaction that holds the message with this id, if any was committed.
    pub fn message_interaction(&self, id: &str) -> Result<Option<InteractionId>, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        let found: Option<Option<String>> = conn
            .prepare_cached("SELECT interaction FROM journal WHERE message = ?1 LIMIT 1")
            .at(&path)?
            .query_row(params![id], |r| r.get(0))
            .optional()
            .at(&path)?;
        interaction_of_message(path, id, found.flatten())
    }

    /// The interactions whose id starts with `prefix` (an email subject's `[#REFERENCE]`),
    /// read from the journal's indexed `interaction` column: a range scan, not a table scan.
    pub fn interactions_with_id_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<InteractionId>, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        let mut select = conn
            .prepare_cached(
                "SELECT DISTINCT interaction FROM journal \
                 WHERE interaction >= ?1 AND interaction < ?2 AND kind = 'interaction_created'",
            )
            .at(&path)?;
        let rows: Vec<String> = select
            .query_map(params![prefix, format!("{prefix}~")], |r| r.get(0))
            .at(&path)?
            .collect::<Result<_, _>>()
            .at(&path)?;
        Ok(rows.iter().filter_map(|t| t.parse().ok()).collect())
    }

    /// The interactions of `contact`, newest first, at most `limit`.
    pub fn interactions_of_contact(
        &self,
        contact: &crate::core::ContactId,
        limit: usize,
    ) -> Result<Vec<InteractionId>, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        let mut select = conn
            .prepare_cached(
                "SELECT interaction FROM journal \
                 WHERE contact = ?1 AND kind = 'interaction_created' ORDER BY seq DESC LIMIT ?2",
            )
            .at(&path)?;
        let rows: Vec<String> = select
            .query_map(params![contact.as_str(), limit as i64], |r| r.get(0))
            .at(&path)?
            .collect::<Result<_, _>>()
            .at(&path)?;
        Ok(rows.iter().filter_map(|t| t.parse().ok()).collect())
    }

    /// The interaction's last transfer by an agent: when, by whom, and its note (a later
    /// overflow move does not hide it; the last [`MAX_MOVES_READ`] moves are looked at).
    pub fn last_transfer(
        &self,
        interaction: InteractionId,
    ) -> Result<Option<(Timestamp, crate::core::AgentId, Option<String>)>, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        let mut select = conn
            .prepare_cached(
                "SELECT seq, at, payload FROM journal \
                 WHERE interaction = ?1 AND kind = 'interaction_moved' ORDER BY seq DESC LIMIT ?2",
            )
            .at(&path)?;
        let rows: Vec<(i64, i64, String)> = select
            .query_map(
                params![interaction.to_string(), MAX_MOVES_READ as i64],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .at(&path)?
            .collect::<Result<_, _>>()
            .at(&path)?;
        drop(select);
        drop(conn);
        last_transfer_from_rows(&path, rows)
    }

    /// The spec the interaction was created with, and when; `None` when the interaction is
    /// unknown (or its journal rows were purged).
    pub fn interaction_spec(
        &self,
        interaction: InteractionId,
    ) -> Result<Option<(Timestamp, Arc<InteractionSpec>)>, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        let row: Option<(i64, i64, String)> = conn
            .prepare_cached(
                "SELECT seq, at, payload FROM journal \
                 WHERE interaction = ?1 AND kind = 'interaction_created' LIMIT 1",
            )
            .at(&path)?
            .query_row(params![interaction.to_string()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
            .at(&path)?;
        drop(conn);
        spec_from_row(&path, row)
    }
}

/// The conversation's entries from its journal rows (`seq, at, payload`).
pub(crate) fn conversation_from_rows(
    path: &std::path::Path,
    rows: Vec<(i64, i64, String)>,
) -> Result<Vec<ConversationEntry>, StoreError> {
    let mut decoder = Decoder::default();
    let mut out = Vec::with_capacity(rows.len());
    for (seq, at, payload) in rows {
        let event = decoder
            .decode(at, "message_added", &payload)
            .map_err(|detail| decode_error(path, seq, detail))?;
        if let EventKind::MessageAdded { message, .. } = event.kind {
            out.push(ConversationEntry {
                seq: seq as u64,
                at: event.at,
                message,
            });
        }
    }
    Ok(out)
}

/// The last transfer by an agent among an interaction's latest moves (`seq, at, payload`,
/// newest first).
pub(crate) fn last_transfer_from_rows(
    path: &std::path::Path,
    rows: Vec<(i64, i64, String)>,
) -> Result<Option<(Timestamp, crate::core::AgentId, Option<String>)>, StoreError> {
    let mut decoder = Decoder::default();
    for (seq, at, payload) in rows {
        let event = decoder
            .decode(at, "interaction_moved", &payload)
            .map_err(|detail| decode_error(path, seq, detail))?;
        if let EventKind::InteractionMoved {
            by: Some(by), note, ..
        } = event.kind
        {
            return Ok(Some((event.at, by, note)));
        }
    }
    Ok(None)
}

/// The spec of an `interaction_created` row (`seq, at, payload`), if any.
pub(crate) fn spec_from_row(
    path: &std::path::Path,
    row: Option<(i64, i64, String)>,
) -> Result<Option<(Timestamp, Arc<InteractionSpec>)>, StoreError> {
    let Some((seq, at, payload)) = row else {
        return Ok(None);
    };
    let event = Decoder::default()
        .decode(at, "interaction_created", &payload)
        .map_err(|detail| decode_error(path, seq, detail))?;
    match event.kind {
        EventKind::InteractionCreated { spec, .. } => Ok(Some((event.at, spec))),
        _ => Ok(None),
    }
}

pub(crate) fn decode_error(path: &std::path::Path, seq: i64, detail: String) -> StoreError {
    StoreError::Decode {
        path: path.to_owned(),
        table: "journal",
        seq: seq as u64,
        detail,
    }
}

/// The interaction of the message `id`, from the journal's `interaction` column (`text`; none
/// when the message is not journaled).
pub(crate) fn interaction_of_message(
    path: PathBuf,
    id: &str,
    text: Option<String>,
) -> Result<Option<InteractionId>, StoreError> {
    match text {
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|e: ulid::DecodeError| StoreError::Decode {
                path,
                table: "journal",
                seq: 0,
                detail: format!("interaction id {text:?} of message {id:?}: {e}"),
            }),
        None => Ok(None),
    }
}
