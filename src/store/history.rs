//! A contact's history, read from the journal: its latest interactions and how each ended, for
//! the agent who is offered the next one ("who is this, and what happened last time?").

use rusqlite::params;

use crate::core::{
    AgentId, Channel, ContactId, EndReason, EventKind, InteractionId, QueueId, Timestamp,
};

use super::codec::Decoder;
use super::db::SqliteStore;
use super::error::{SqlContext, StoreError};

/// How one of a contact's interactions went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The interaction.
    pub interaction: InteractionId,
    /// Its channel.
    pub channel: Channel,
    /// The queue it was created in.
    pub queue: QueueId,
    /// When it was created.
    pub created_at: Timestamp,
    /// `completed`, `cancelled`, `abandoned` or `open`.
    pub outcome: &'static str,
    /// The agent who completed it.
    pub agent: Option<AgentId>,
    /// The wrap-up code given at completion.
    pub wrap_up_code: Option<String>,
    /// The agent's notes.
    pub notes: Option<String>,
    /// When it was completed or ended.
    pub ended_at: Option<Timestamp>,
}

/// A contact's (`?1`) latest creations, newest first, at most `?2`.
pub(super) const CREATED_SQL: &str = "SELECT seq, at, payload FROM journal \
     WHERE contact = ?1 AND kind = 'interaction_created' ORDER BY seq DESC LIMIT ?2";

/// The contacts with an interaction in the journal, at most `$1` (the same text on both
/// backends: SQLite binds `$1` by position too).
pub(crate) const CONTACTS_SQL: &str = "SELECT DISTINCT contact FROM journal \
     WHERE contact IS NOT NULL ORDER BY contact LIMIT $1";

/// How one interaction (`?1`) ended, in journal order.
pub(super) const ENDS_SQL: &str =
    "SELECT seq, at, kind, payload FROM journal WHERE interaction = ?1 \
     AND kind IN ('interaction_completed', 'wrap_up_ended', 'interaction_ended') ORDER BY seq";

impl SqliteStore {
    /// Every contact with an interaction in the journal, or `None` if there are more than
    /// `limit` (reading them would cost more memory than it saves reads).
    pub fn journal_contacts(
        &self,
        limit: usize,
    ) -> Result<Option<std::collections::HashSet<ContactId>>, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        let mut select = conn.prepare(CONTACTS_SQL).at(&path)?;
        let contacts = select
            .query_map(params![limit.saturating_add(1) as i64], |r| {
                r.get::<_, String>(0)
            })
            .at(&path)?
            .map(|c| c.map(ContactId::new))
            .collect::<Result<std::collections::HashSet<_>, _>>()
            .at(&path)?;
        Ok((contacts.len() <= limit).then_some(contacts))
    }

    /// The contact's latest interactions, newest first, at most `limit`. Interactions whose
    /// contact was erased are not found.
    pub fn contact_history(
        &self,
        contact: &ContactId,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        let mut created = conn.prepare_cached(CREATED_SQL).at(&path)?;
        let mut ends = conn.prepare_cached(ENDS_SQL).at(&path)?;
        let rows: Vec<(i64, i64, String)> = created
            .query_map(params![contact.as_str(), limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .at(&path)?
            .collect::<Result<_, _>>()
            .at(&path)?;
        history_from_rows(&path, rows, |id| {
            ends.query_map(params![id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .at(&path)?
            .collect::<Result<Vec<_>, _>>()
            .at(&path)
        })
    }
}

/// A contact's history from its `interaction_created` rows (`seq, at, payload`, newest first),
/// with `ends` reading each interaction's end rows (`seq, at, kind, payload`, by `ENDS_SQL`).
pub(crate) fn history_from_rows(
    path: &std::path::Path,
    rows: Vec<(i64, i64, String)>,
    mut ends: impl FnMut(&str) -> Result<Vec<(i64, i64, String, String)>, StoreError>,
) -> Result<Vec<HistoryEntry>, StoreError> {
    let mut decoder = Decoder::default();
    let mut out = Vec::with_capacity(rows.len());
    for (seq, at, payload) in rows {
        let event = decoder.decode_row(path, seq, at, "interaction_created", &payload)?;
        let EventKind::InteractionCreated { spec, .. } = event.kind else {
            continue;
        };
        let mut entry = HistoryEntry {
            interaction: spec.id,
            channel: spec.channel,
            queue: spec.queue.clone(),
            created_at: event.at,
            outcome: "open",
            agent: None,
            wrap_up_code: None,
            notes: None,
            ended_at: None,
        };
        let end_rows = ends(&spec.id.to_string())?;
        for (seq, at, kind, payload) in end_rows {
            let event = decoder.decode_row(path, seq, at, &kind, &payload)?;
            match event.kind {
                EventKind::InteractionCompleted {
                    agent,
                    wrap_up_code,
                    notes,
                    ..
                } => {
                    entry.outcome = "completed";
                    entry.agent = Some(agent);
                    entry.wrap_up_code = wrap_up_code;
                    entry.notes = notes;
                    entry.ended_at = Some(event.at);
                }
                EventKind::WrapUpEnded {
                    wrap_up_code,
                    notes,
                    ..
                } => {
                    if wrap_up_code.is_some() {
                        entry.wrap_up_code = wrap_up_code;
                    }
                    if notes.is_some() {
                        entry.notes = notes;
                    }
                }
                EventKind::InteractionEnded { reason, .. } if entry.outcome == "open" => {
                    entry.outcome = match reason {
                        EndReason::Abandoned => "abandoned",
                        _ => "cancelled",
                    };
                    entry.ended_at = Some(event.at);
                }
                _ => {}
            }
        }
        out.push(entry);
    }
    Ok(out)
}
