//! Journal maintenance run by the writer thread: retention (deleting rows recovery no longer
//! needs) and the erasure of a contact's personal data (GDPR).
//!
//! Both run on the writer's connection, in queue order with appends, so they see every event
//! appended before them as committed.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Deserialize;
use tokio::sync::oneshot;

use crate::core::{
    Attributes, ContactId, EventKind, InteractionId, InteractionSpec, Message, Snapshot, Timestamp,
};

use super::codec::{millis_to_sql, seq_from_sql};
use super::error::{SqlContext, StoreError};
use super::writer::JournalBackend;

/// Sequence numbers covered by one retention chunk (one short transaction).
const RETENTION_CHUNK: u64 = 20_000;

/// A retention request being carried out chunk by chunk.
pub(crate) struct RetentionJob {
    purge_before: i64,
    /// The last sequence number that may be deleted (the latest snapshot's).
    upto: u64,
    /// Rows at or before this sequence number are done.
    cursor: u64,
    deleted: u64,
    ack: oneshot::Sender<Result<u64, StoreError>>,
}

/// What one chunk of a retention job left.
pub(crate) enum RetentionStep {
    /// More chunks to go.
    More,
    /// Finished, with this outcome.
    Done(Result<(), StoreError>),
}

impl RetentionJob {
    /// Plans a retention job: `None` (and the request acknowledged with 0) when there is nothing
    /// to do. On error the acknowledgement is handed back with the error.
    #[allow(clippy::type_complexity)]
    pub(crate) fn start(
        backend: &mut dyn JournalBackend,
        purge_before: Timestamp,
        ack: oneshot::Sender<Result<u64, StoreError>>,
    ) -> Result<Option<RetentionJob>, (oneshot::Sender<Result<u64, StoreError>>, StoreError)> {
        match backend.retention_bounds() {
            Err(e) => Err((ack, e)),
            Ok((Some(upto), Some(first))) if first <= upto => Ok(Some(RetentionJob {
                purge_before: millis_to_sql(purge_before),
                upto,
                cursor: first.saturating_sub(1),
                deleted: 0,
                ack,
            })),
            Ok(_) => {
                let _ = ack.send(Ok(0));
                Ok(None)
            }
        }
    }

    /// Deletes one chunk.
    pub(crate) fn step(&mut self, backend: &mut dyn JournalBackend) -> RetentionStep {
        let hi = self.cursor.saturating_add(RETENTION_CHUNK).min(self.upto);
        match backend.delete_journal(self.cursor, hi, self.purge_before) {
            Err(e) => RetentionStep::Done(Err(e)),
            Ok(n) => {
                self.deleted += n;
                self.cursor = hi;
                if hi >= self.upto {
                    RetentionStep::Done(Ok(()))
                } else {
                    RetentionStep::More
                }
            }
        }
    }

    /// Acknowledges the request.
    pub(crate) fn finish(self, result: Result<(), StoreError>) {
        let _ = self.ack.send(result.map(|()| self.deleted));
    }
}

/// What erasing a contact changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Erasure {
    /// Ended interactions of the contact found in the journal.
    pub interactions: Vec<InteractionId>,
    /// Journal rows rewritten.
    pub journal_rows: u64,
    /// Snapshots rewritten.
    pub snapshots: u64,
}

/// Just enough of a snapshot to find a contact's open interactions.
#[derive(Deserialize)]
struct SnapshotContacts {
    interactions: Vec<ViewContact>,
}

#[derive(Deserialize)]
struct ViewContact {
    spec: SpecContact,
}

#[derive(Deserialize)]
struct SpecContact {
    id: InteractionId,
    #[serde(default)]
    contact: Option<ContactId>,
}

/// Just enough of an `interaction_completed` payload to know whether it closed the interaction.
#[derive(Deserialize)]
struct Completed {
    #[serde(default)]
    wrap_up_until: Option<Timestamp>,
}

fn decode_error(path: &Path, table: &'static str, seq: i64, e: serde_json::Error) -> StoreError {
    StoreError::Decode {
        path: path.to_owned(),
        table,
        seq: seq_from_sql(seq),
        detail: e.to_string(),
    }
}

/// Removes what identifies the contact from a spec.
fn scrub(spec: &mut InteractionSpec) {
    spec.contact = None;
    spec.attributes = Attributes::new();
    spec.external_ref = None;
}

/// Erases `contact` from the journal and the snapshots, in one transaction (see
/// [`Journal::erase_contact`](super::Journal::erase_contact) for what is erased and kept).
pub(crate) fn erase_contact(
    conn: &mut Connection,
    path: &Path,
    contact: &ContactId,
) -> Result<Erasure, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .at(path)?;
    let latest: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, payload FROM snapshots ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .at(path)?;

    // Open interactions: open in the latest snapshot or created after it, minus those ended
    // after it.
    let mut open = BTreeSet::new();
    let after = match &latest {
        Some((seq, payload)) => {
            let light: SnapshotContacts = serde_json::from_str(payload)
                .map_err(|e| decode_error(path, "snapshots", *seq, e))?;
            open.extend(
                light
                    .interactions
                    .into_iter()
                    .filter(|v| v.spec.contact.as_ref() == Some(contact))
                    .map(|v| v.spec.id),
            );
            *seq
        }
        None => 0,
    };
    let mut ours: Vec<(i64, InteractionId, String)> = Vec::new();
    {
        let mut stmt = tx
            .prepare(
                "SELECT seq, interaction, payload FROM journal WHERE contact = ?1 ORDER BY seq",
            )
            .at(path)?;
        let mut rows = stmt.query(params![contact.as_str()]).at(path)?;
        while let Some(row) = rows.next().at(path)? {
            let seq: i64 = row.get(0).at(path)?;
            let id: Option<String> = row.get(1).at(path)?;
            let id = id
                .as_deref()
                .and_then(|s| s.parse::<InteractionId>().ok())
                .ok_or_else(|| StoreError::Decode {
                    path: path.to_owned(),
                    table: "journal",
                    seq: seq_from_sql(seq),
                    detail: "interaction_created row without a valid interaction id".into(),
                })?;
            if seq > after {
                open.insert(id);
            }
            ours.push((seq, id, row.get(2).at(path)?));
        }
    }
    if !open.is_empty() {
        let mut stmt = tx
            .prepare(
                "SELECT seq, kind, interaction, payload FROM journal WHERE seq > ?1 \
                 AND kind IN ('interaction_ended', 'wrap_up_ended', 'interaction_completed')",
            )
            .at(path)?;
        let mut rows = stmt.query(params![after]).at(path)?;
        while let Some(row) = rows.next().at(path)? {
            let interaction: Option<String> = row.get(2).at(path)?;
            let Some(id) = interaction.and_then(|s| s.parse::<InteractionId>().ok()) else {
                continue;
            };
            if !open.contains(&id) {
                continue;
            }
            let kind: String = row.get(1).at(path)?;
            let closes = if kind == "interaction_completed" {
                let seq: i64 = row.get(0).at(path)?;
                let payload: String = row.get(3).at(path)?;
                let completed: Completed = serde_json::from_str(&payload)
                    .map_err(|e| decode_error(path, "journal", seq, e))?;
                completed.wrap_up_until.is_none()
            } else {
                true
            };
            if closes {
                open.remove(&id);
            }
        }
    }
    if !open.is_empty() {
        return Err(StoreError::ContactHasOpenInteractions {
            contact: contact.clone(),
            open: open.into_iter().collect(),
        });
    }

    // Journal rows: the creations.
    let mut erasure = Erasure::default();
    {
        let mut update = tx
            .prepare("UPDATE journal SET payload = ?1, contact = NULL WHERE seq = ?2")
            .at(path)?;
        for (seq, id, payload) in &ours {
            let mut kind: EventKind = serde_json::from_str(payload)
                .map_err(|e| decode_error(path, "journal", *seq, e))?;
            if let EventKind::InteractionCreated { spec, .. } = &mut kind {
                scrub(Arc::make_mut(spec));
            }
            let payload = serde_json::to_string(&kind).map_err(|e| StoreError::Encode {
                what: "event",
                detail: e.to_string(),
            })?;
            update.execute(params![payload, seq]).at(path)?;
            erasure.journal_rows += 1;
            erasure.interactions.push(*id);
        }
    }

    // Journal rows: the agents' notes at completion (free text about the contact), and the
    // conversation messages (texts, addresses, attachments; a message id can hold an address
    // too, so it is replaced and unindexed).
    {
        let mut select = tx
            .prepare(
                "SELECT seq, payload FROM journal WHERE interaction = ?1 \
                 AND kind IN ('interaction_completed', 'wrap_up_ended', 'interaction_moved', \
                 'message_added', 'interaction_offered', 'consult_offered')",
            )
            .at(path)?;
        let mut update = tx
            .prepare("UPDATE journal SET payload = ?1, message = NULL WHERE seq = ?2")
            .at(path)?;
        for (_, id, _) in &ours {
            let rows: Vec<(i64, String)> = select
                .query_map(params![id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
                .at(path)?
                .collect::<Result<_, _>>()
                .at(path)?;
            for (seq, payload) in rows {
                let mut kind: EventKind = serde_json::from_str(&payload)
                    .map_err(|e| decode_error(path, "journal", seq, e))?;
                match &mut kind {
                    EventKind::InteractionCompleted { notes, .. }
                    | EventKind::WrapUpEnded { notes, .. }
                    | EventKind::InteractionMoved { note: notes, .. } => {
                        if notes.take().is_none() {
                            continue;
                        }
                    }
                    EventKind::MessageAdded { message, .. } => {
                        let mut erased =
                            Message::new(format!("erased:{seq}"), message.direction, String::new());
                        erased.agent = message.agent.clone();
                        *message = std::sync::Arc::new(erased);
                    }
                    // An offer carries the interaction's attributes and transfer note for
                    // the agent's desktop.
                    EventKind::InteractionOffered {
                        context: Some(context),
                        ..
                    } => {
                        let context = Arc::make_mut(context);
                        scrub(Arc::make_mut(&mut context.spec));
                        if let Some(transfer) = &mut context.transfer {
                            transfer.note = None;
                        }
                    }
                    // A consultation carries its note and the interaction's context.
                    EventKind::ConsultOffered { note, context, .. } => {
                        *note = None;
                        if let Some(context) = context {
                            let context = Arc::make_mut(context);
                            scrub(Arc::make_mut(&mut context.spec));
                            if let Some(transfer) = &mut context.transfer {
                                transfer.note = None;
                            }
                        }
                    }
                    _ => continue,
                }
                let payload = serde_json::to_string(&kind).map_err(|e| StoreError::Encode {
                    what: "event",
                    detail: e.to_string(),
                })?;
                update.execute(params![payload, seq]).at(path)?;
                erasure.journal_rows += 1;
            }
        }
    }

    // Snapshots: the contact's last agent, and its interactions that were open then.
    let needle = serde_json::to_string(contact).map_err(|e| StoreError::Encode {
        what: "contact",
        detail: e.to_string(),
    })?;
    let snapshots: Vec<(i64, String)> = {
        let mut stmt = tx
            .prepare("SELECT seq, payload FROM snapshots ORDER BY seq")
            .at(path)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .at(path)?;
        rows.collect::<Result<_, _>>().at(path)?
    };
    for (seq, payload) in snapshots {
        if !payload.contains(&needle) {
            continue;
        }
        let mut snap: Snapshot =
            serde_json::from_str(&payload).map_err(|e| decode_error(path, "snapshots", seq, e))?;
        snap.last_agents.retain(|(c, _)| c != contact);
        for view in &mut snap.interactions {
            if view.spec.contact.as_ref() == Some(contact) {
                scrub(Arc::make_mut(&mut view.spec));
                if let Some(transfer) = &mut view.transfer {
                    transfer.note = None;
                }
                if let Some(consult) = &mut view.consult {
                    consult.note = None;
                }
            }
        }
        let payload = serde_json::to_string(&snap).map_err(|e| StoreError::Encode {
            what: "snapshot",
            detail: e.to_string(),
        })?;
        tx.execute(
            "UPDATE snapshots SET payload = ?1 WHERE seq = ?2",
            params![payload, seq],
        )
        .at(path)?;
        erasure.snapshots += 1;
    }
    // Survey answers and survey history (surveys.rs).
    super::surveys::erase_contact(&tx, contact).at(path)?;
    tx.commit().at(path)?;
    // Calls of the contact still in a menu (their own file; they hold the caller's number).
    super::voice::erase_caller(path, contact.as_str())?;
    Ok(erasure)
}
