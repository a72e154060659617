//! Journal maintenance run by the writer thread: retention (deleting rows recovery no longer
//! needs) and the erasure of a contact's personal data (GDPR).
//!
//! Both run on the writer's connection, in queue order with appends, so they see every event
//! appended before them as committed.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use rusqlite::{params, Connection, TransactionBehavior};
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
    /// The last sequence number that may be deleted (the latest snapshot's, or the position
    /// of the slowest view that holds retention when lower).
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
    /// Plans a retention job, deleting nothing after the latest snapshot nor after `held_at`:
    /// `None` (and the request acknowledged with 0) when there is nothing to do. On error the
    /// acknowledgement is handed back with the error.
    #[allow(clippy::type_complexity)]
    pub(crate) fn start(
        backend: &mut dyn JournalBackend,
        purge_before: Timestamp,
        held_at: Option<u64>,
        ack: oneshot::Sender<Result<u64, StoreError>>,
    ) -> Result<Option<RetentionJob>, (oneshot::Sender<Result<u64, StoreError>>, StoreError)> {
        let bounds = backend
            .retention_bounds()
            .map(|(upto, first)| (upto.map(|u| held_at.map_or(u, |h| u.min(h))), first));
        match bounds {
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

/// Scrubs an offer's context: the interaction's contact details and the transfer note.
fn scrub_context(context: &mut Arc<crate::core::OfferContext>) {
    let context = Arc::make_mut(context);
    scrub(Arc::make_mut(&mut context.spec));
    if let Some(transfer) = &mut context.transfer {
        transfer.note = None;
    }
}

/// Removes what identifies the contact from a spec.
fn scrub(spec: &mut InteractionSpec) {
    spec.contact = None;
    spec.attributes = Attributes::new();
    spec.external_ref = None;
}

/// The statements of an erasure, in the text both backends accept (`$n` parameters, numbered
/// in order of appearance, which SQLite binds by position too).
pub(crate) mod erase_sql {
    /// The latest snapshot.
    pub const LATEST_SNAPSHOT: &str =
        "SELECT seq, payload FROM snapshots ORDER BY seq DESC LIMIT 1";
    /// The contact's creations.
    pub const CREATIONS: &str =
        "SELECT seq, interaction, payload FROM journal WHERE contact = $1 ORDER BY seq";
    /// The events that may close an interaction, after a sequence number.
    pub const CLOSINGS: &str =
        "SELECT seq, kind, interaction, payload FROM journal WHERE seq > $1 \
         AND kind IN ('interaction_ended', 'wrap_up_ended', 'interaction_completed')";
    /// Rewrites a creation and unindexes its contact.
    pub const SET_CREATED: &str = "UPDATE journal SET payload = $1, contact = NULL WHERE seq = $2";
    /// An interaction's events that may hold notes, messages or the offered context.
    pub const RELATED: &str = "SELECT seq, payload FROM journal WHERE interaction = $1 \
         AND kind IN ('interaction_completed', 'wrap_up_ended', 'interaction_moved', \
         'message_added', 'interaction_offered', 'consult_offered')";
    /// Rewrites one of those events and unindexes its message id.
    pub const SET_RELATED: &str = "UPDATE journal SET payload = $1, message = NULL WHERE seq = $2";
    /// Every snapshot.
    pub const SNAPSHOTS: &str = "SELECT seq, payload FROM snapshots ORDER BY seq";
    /// Rewrites a snapshot.
    pub const SET_SNAPSHOT: &str = "UPDATE snapshots SET payload = $1 WHERE seq = $2";
    /// Survey answers and survey history: the contact goes, the answers' figures stay, the
    /// opt-out stays.
    pub const SURVEYS: [&str; 3] = [
        "UPDATE survey_answers SET contact = NULL WHERE contact = $1",
        "DELETE FROM survey_sent WHERE contact = $1",
        "UPDATE survey_questions SET contact = NULL, address = NULL WHERE contact = $1",
    ];
}

/// The reads and writes of an erasure, inside one open transaction of a backend (SQLite's in
/// `writer.rs`'s backend below, PostgreSQL's in `pg/journal.rs`), each one of [`erase_sql`]'s
/// statements. [`erase_in`] holds the rules, the same on both.
pub(crate) trait ErasureTx {
    /// The database, as named in messages.
    fn path(&self) -> &Path;
    /// `(seq, payload)` rows of a query taking one text or integer parameter (or none).
    fn pairs(&mut self, sql: &str, param: Param<'_>) -> Result<Vec<(i64, String)>, StoreError>;
    /// `(seq, interaction, payload)` of the contact's creations.
    fn creations(
        &mut self,
        contact: &str,
    ) -> Result<Vec<(i64, Option<String>, String)>, StoreError>;
    /// `(seq, kind, interaction, payload)` of the closing events after `after`.
    fn closings(&mut self, after: i64) -> Result<Vec<ClosingRow>, StoreError>;
    /// Runs an `UPDATE ... SET payload = $1 ... WHERE seq = $2`.
    fn rewrite(&mut self, sql: &str, payload: &str, seq: i64) -> Result<(), StoreError>;
    /// Runs a statement taking the contact as `$1`.
    fn by_contact(&mut self, sql: &str, contact: &str) -> Result<(), StoreError>;
    /// `(call, state)` of every call inside a phone menu.
    fn voice_calls(&mut self) -> Result<Vec<(String, String)>, StoreError>;
}

/// `(seq, kind, interaction, payload)` of an event that may close an interaction.
pub(crate) type ClosingRow = (i64, String, Option<String>, String);

/// The one parameter of an [`ErasureTx::pairs`] query.
pub(crate) enum Param<'a> {
    /// No parameter.
    None,
    /// A text.
    Text(&'a str),
}

/// Erases `contact` from the journal, the snapshots and the survey tables inside `tx` (see
/// [`Journal::erase_contact`](super::Journal::erase_contact) for what is erased and kept); the
/// caller commits. Refused, changing nothing, while the contact has open interactions.
pub(crate) fn erase_in(tx: &mut dyn ErasureTx, contact: &ContactId) -> Result<Erasure, StoreError> {
    use erase_sql as q;
    let path = tx.path().to_owned();
    let path = path.as_path();
    let latest = tx
        .pairs(q::LATEST_SNAPSHOT, Param::None)?
        .into_iter()
        .next();

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
    for (seq, id, payload) in tx.creations(contact.as_str())? {
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
        ours.push((seq, id, payload));
    }
    if !open.is_empty() {
        for (seq, kind, interaction, payload) in tx.closings(after)? {
            let Some(id) = interaction.and_then(|s| s.parse::<InteractionId>().ok()) else {
                continue;
            };
            if !open.contains(&id) {
                continue;
            }
            let closes = if kind == "interaction_completed" {
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
    for (seq, id, payload) in &ours {
        let mut kind: EventKind =
            serde_json::from_str(payload).map_err(|e| decode_error(path, "journal", *seq, e))?;
        if let EventKind::InteractionCreated { spec, .. } = &mut kind {
            scrub(Arc::make_mut(spec));
        }
        tx.rewrite(q::SET_CREATED, &encode_event(&kind)?, *seq)?;
        erasure.journal_rows += 1;
        erasure.interactions.push(*id);
    }

    // Journal rows: the agents' notes at completion (free text about the contact), and the
    // conversation messages (texts, addresses, attachments; a message id can hold an address
    // too, so it is replaced and unindexed).
    for (_, id, _) in &ours {
        for (seq, payload) in tx.pairs(q::RELATED, Param::Text(&id.to_string()))? {
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
                // An offer carries the interaction's attributes and transfer note for the
                // agent's desktop.
                EventKind::InteractionOffered {
                    context: Some(context),
                    ..
                } => scrub_context(context),
                // A consultation carries its note and the interaction's context.
                EventKind::ConsultOffered { note, context, .. } => {
                    *note = None;
                    if let Some(context) = context {
                        scrub_context(context);
                    }
                }
                _ => continue,
            }
            tx.rewrite(q::SET_RELATED, &encode_event(&kind)?, seq)?;
            erasure.journal_rows += 1;
        }
    }

    // Snapshots: the contact's last agent, and its interactions that were open then.
    let needle = serde_json::to_string(contact).map_err(|e| StoreError::Encode {
        what: "contact",
        detail: e.to_string(),
    })?;
    for (seq, payload) in tx.pairs(q::SNAPSHOTS, Param::None)? {
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
        tx.rewrite(q::SET_SNAPSHOT, &payload, seq)?;
        erasure.snapshots += 1;
    }
    // Survey answers and survey history.
    for sql in q::SURVEYS {
        tx.by_contact(sql, contact.as_str())?;
    }
    // Calls of the contact still in a menu (their state holds the caller's number).
    for (call, state) in tx.voice_calls()? {
        if super::voice::is_from(&state, contact.as_str()) {
            tx.by_contact(super::voice::sql::DELETE, &call)?;
        }
    }
    Ok(erasure)
}

fn encode_event(kind: &EventKind) -> Result<String, StoreError> {
    serde_json::to_string(kind).map_err(|e| StoreError::Encode {
        what: "event",
        detail: e.to_string(),
    })
}

/// SQLite's side of an erasure: a transaction on the writer's connection.
struct SqliteErasure<'a> {
    tx: rusqlite::Transaction<'a>,
    path: &'a Path,
}

impl ErasureTx for SqliteErasure<'_> {
    fn path(&self) -> &Path {
        self.path
    }

    fn pairs(&mut self, sql: &str, param: Param<'_>) -> Result<Vec<(i64, String)>, StoreError> {
        let mut stmt = self.tx.prepare_cached(sql).at(self.path)?;
        let map = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?));
        let rows = match param {
            Param::None => stmt.query_map([], map),
            Param::Text(t) => stmt.query_map(params![t], map),
        }
        .at(self.path)?;
        rows.collect::<Result<_, _>>().at(self.path)
    }

    fn creations(
        &mut self,
        contact: &str,
    ) -> Result<Vec<(i64, Option<String>, String)>, StoreError> {
        let mut stmt = self.tx.prepare_cached(erase_sql::CREATIONS).at(self.path)?;
        let rows = stmt
            .query_map(params![contact], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .at(self.path)?;
        rows.collect::<Result<_, _>>().at(self.path)
    }

    fn closings(&mut self, after: i64) -> Result<Vec<ClosingRow>, StoreError> {
        let mut stmt = self.tx.prepare_cached(erase_sql::CLOSINGS).at(self.path)?;
        let rows = stmt
            .query_map(params![after], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .at(self.path)?;
        rows.collect::<Result<_, _>>().at(self.path)
    }

    fn rewrite(&mut self, sql: &str, payload: &str, seq: i64) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(sql).at(self.path)?;
        stmt.execute(params![payload, seq]).at(self.path)?;
        Ok(())
    }

    fn by_contact(&mut self, sql: &str, contact: &str) -> Result<(), StoreError> {
        self.tx.execute(sql, params![contact]).at(self.path)?;
        Ok(())
    }

    fn voice_calls(&mut self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached(super::voice::sql::ALL)
            .at(self.path)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .at(self.path)?;
        rows.collect::<Result<_, _>>().at(self.path)
    }
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
    let mut erasure = SqliteErasure { tx, path };
    let erased = erase_in(&mut erasure, contact)?;
    erasure.tx.commit().at(path)?;
    Ok(erased)
}
