//! The notify outbox's tables: which outbound messages are to be delivered and how each delivery
//! went (`outbox`), how far the journal has been scanned for new ones (`notify_checkpoint` in
//! `meta`), and the SMS opt-outs (`sms_opt_out`).
//!
//! The outbox never copies a message: a row names the message and its journal sequence number,
//! and the message is read from the journal when it is sent, so that erasure and retention (which
//! work on the journal) also reach messages still waiting to be delivered.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use rusqlite::{params, OptionalExtension};

use crate::core::{Channel, EventKind, InteractionId, Message, MessageDirection, Timestamp};

use super::codec::{millis_from_sql, millis_to_sql, Decoder};
use super::db::{checkpoint_and_end, SqliteStore};
use super::error::{SqlContext, StoreError};
use super::row::RowRead;

/// How a message is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryChannel {
    /// By email, through the SMTP relay.
    Email,
    /// By SMS, through the provider's REST API.
    Sms,
}

impl DeliveryChannel {
    /// `email` or `sms`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryChannel::Email => "email",
            DeliveryChannel::Sms => "sms",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "email" => Some(DeliveryChannel::Email),
            "sms" => Some(DeliveryChannel::Sms),
            _ => None,
        }
    }

    /// How an outbound message of an interaction on `channel` is delivered: email and SMS by
    /// their channel; chat lines live by the chat hub (none here) and calls have nothing to
    /// deliver, unless the message asks for `meta.deliver_via = "email"` (a chat transcript, a
    /// chat's survey) or `"sms"` (a call's survey).
    pub fn of(channel: Channel, message: &Message) -> Option<Self> {
        match message.meta.get("deliver_via").map(String::as_str) {
            Some("email") => return Some(DeliveryChannel::Email),
            Some("sms") => return Some(DeliveryChannel::Sms),
            _ => {}
        }
        match channel {
            Channel::Email => Some(DeliveryChannel::Email),
            Channel::Sms => Some(DeliveryChannel::Sms),
            Channel::Chat | Channel::Voice => None,
        }
    }
}

/// What claiming a delivery before sending it found (high availability: a leader claims each
/// delivery with its term, in a transaction fenced by the lease, so that nothing is sent twice
/// across a takeover).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxClaim {
    /// This node may send it now (always, without high availability).
    Claimed,
    /// No longer pending: nothing to send.
    Gone,
    /// An earlier term claimed it and ended before recording whether it was sent: sending it
    /// again could send it twice, so it is not sent (recorded as failed, in doubt).
    InDoubt {
        /// The term that claimed it.
        term: u64,
    },
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not delivered yet: attempted at `next_attempt_at`.
    Pending,
    /// Handed to the relay or the provider.
    Delivered,
    /// Given up: refused for good, or failing for longer than allowed.
    Failed,
    /// Not sent on purpose (the contact opted out of SMS).
    Suppressed,
}

impl DeliveryState {
    /// `pending`, `delivered`, `failed` or `suppressed`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::Suppressed => "suppressed",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "failed" => Some(DeliveryState::Failed),
            "suppressed" => Some(DeliveryState::Suppressed),
            _ => None,
        }
    }
}

/// One row of the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The message's id.
    pub message: String,
    /// The journal sequence number of its `message_added` event.
    pub seq: u64,
    /// Its interaction.
    pub interaction: InteractionId,
    /// How it is delivered.
    pub channel: DeliveryChannel,
    /// Where the delivery stands.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it was committed.
    pub created_at: Timestamp,
    /// When it is (or was last) due.
    pub next_attempt_at: Timestamp,
    /// Why the last attempt failed, or why it was suppressed.
    pub last_error: Option<String>,
    /// When it was delivered.
    pub delivered_at: Option<Timestamp>,
    /// The provider's id for it (SMS `sid`), when delivered.
    pub provider_ref: Option<String>,
}

pub(crate) const DELIVERY_COLUMNS: &str =
    "message, seq, interaction, channel, state, attempts, created_at, \
     next_attempt_at, last_error, delivered_at, provider_ref";

/// A delivery's row ([`DELIVERY_COLUMNS`]), on either backend: the delivery with its
/// interaction, channel and state still as text (see [`delivery_from_parts`]).
pub(crate) fn delivery_of<R: RowRead>(
    row: &R,
) -> Result<(Delivery, String, String, String), R::Error> {
    let interaction: String = row.cell(2)?;
    let channel: String = row.cell(3)?;
    let state: String = row.cell(4)?;
    Ok((
        Delivery {
            message: row.cell(0)?,
            seq: row.cell::<i64>(1)?.max(0) as u64,
            interaction: InteractionId(ulid::Ulid::nil()),
            channel: DeliveryChannel::Email,
            state: DeliveryState::Pending,
            attempts: u32::try_from(row.cell::<i64>(5)?).unwrap_or(0),
            created_at: millis_from_sql(row.cell(6)?),
            next_attempt_at: millis_from_sql(row.cell(7)?),
            last_error: row.cell(8)?,
            delivered_at: row.cell::<Option<i64>>(9)?.map(millis_from_sql),
            provider_ref: row.cell(10)?,
        },
        interaction,
        channel,
        state,
    ))
}

/// Where the outbox's checkpoint goes after a scan that read `rows` (at most `limit`) up to the
/// journal's `end`, and whether rows remain after them.
pub(crate) fn scan_end(rows: &[(i64, i64, String)], limit: usize, end: u64) -> (u64, bool) {
    let more = rows.len() >= limit;
    let next = match rows.last() {
        Some((seq, _, _)) if more => *seq as u64,
        _ => end,
    };
    (next, more)
}

/// The message of the journal's `message_added` row `seq` (`at`, `payload`); `None` when the
/// row holds another event.
pub(crate) fn message_of(
    path: PathBuf,
    seq: u64,
    at: i64,
    payload: &str,
) -> Result<Option<Arc<Message>>, StoreError> {
    let event = Decoder::default()
        .decode(at, "message_added", payload)
        .map_err(|detail| StoreError::Decode {
            path,
            table: "journal",
            seq,
            detail,
        })?;
    match event.kind {
        EventKind::MessageAdded { message, .. } => Ok(Some(message)),
        _ => Ok(None),
    }
}

impl SqliteStore {
    /// Reads the `message_added` journal rows after the outbox's checkpoint (at most `limit`),
    /// records a pending delivery for each outbound message that is delivered by email or SMS,
    /// and moves the checkpoint past them, in one transaction. An email (other than an
    /// acknowledgement) is first due `email_hold_ms` after its commit, so that the interaction's
    /// emails committed meanwhile go with it as one ([`Store::outbox_pending_of`]). Returns how
    /// many deliveries were recorded and whether rows remain after the ones read.
    pub fn outbox_ingest(
        &self,
        limit: usize,
        email_hold_ms: u64,
    ) -> Result<(usize, bool), StoreError> {
        let path = self.path().to_owned();
        let (checkpoint, end, rows) = {
            let conn = self.conn();
            // The journal's end is read after the checkpoint: rows committed later are left
            // for the next scan, so the checkpoint never passes a message it has not seen.
            let (checkpoint, end) = checkpoint_and_end(&conn, "notify_checkpoint", &path)?;
            let end = end as i64;
            let mut select = conn
                .prepare_cached(
                    "SELECT seq, at, payload FROM journal \
                     WHERE seq > ?1 AND seq <= ?2 AND kind = 'message_added' ORDER BY seq LIMIT ?3",
                )
                .at(&path)?;
            let rows: Vec<(i64, i64, String)> = select
                .query_map(params![checkpoint as i64, end, limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .at(&path)?
                .collect::<Result<_, _>>()
                .at(&path)?;
            (checkpoint, end as u64, rows)
        };
        let (new_checkpoint, more) = scan_end(&rows, limit, end);
        let found = outbound_deliveries(&path, rows, email_hold_ms, |i| {
            Ok(self.interaction_spec(i)?.map(|(_, s)| s.channel))
        })?;
        if new_checkpoint <= checkpoint && found.is_empty() {
            return Ok((0, false));
        }
        let completed = {
            let conn = self.conn();
            let mut select = conn
                .prepare_cached(
                    "SELECT seq, at, payload FROM journal \
                     WHERE seq > ?1 AND seq <= ?2 AND kind = 'interaction_completed' ORDER BY seq",
                )
                .at(&path)?;
            let rows: Vec<(i64, i64, String)> = select
                .query_map(params![checkpoint as i64, new_checkpoint as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .at(&path)?
                .collect::<Result<_, _>>()
                .at(&path)?;
            completions(&path, rows, email_hold_ms)?
        };
        let mut conn = self.conn();
        let tx = conn.transaction().at(&path)?;
        for (id, seq, interaction, channel, at, due) in &found {
            tx.execute(
                "INSERT OR IGNORE INTO outbox (message, seq, interaction, channel, state, \
                 attempts, created_at, next_attempt_at) VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?6)",
                params![id, seq, interaction.to_string(), channel.as_str(), at, due],
            )
            .at(&path)?;
        }
        // A completed interaction's emails not tried yet go `email_hold_ms` after it at the
        // latest, as one.
        for (interaction, due) in &completed {
            tx.execute(
                "UPDATE outbox SET next_attempt_at = MIN(next_attempt_at, ?1) \
                 WHERE interaction = ?2 AND channel = 'email' AND state = 'pending' AND attempts = 0",
                params![due, interaction.to_string()],
            )
            .at(&path)?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('notify_checkpoint', ?1)",
            params![new_checkpoint.max(checkpoint).to_string()],
        )
        .at(&path)?;
        tx.commit().at(&path)?;
        Ok((found.len(), more))
    }

    /// Pending deliveries due at `now`, oldest first (at most `limit`).
    pub fn outbox_due(&self, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.outbox_select(
            "WHERE state = 'pending' AND next_attempt_at <= ?1 ORDER BY next_attempt_at, seq LIMIT ?2",
            params![millis_to_sql(now), limit as i64],
        )
    }

    /// The pending deliveries of `interaction` on `channel`, due or not, in commit order (at
    /// most `limit`): the messages that may go together as one email.
    pub fn outbox_pending_of(
        &self,
        interaction: InteractionId,
        channel: DeliveryChannel,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.outbox_select(
            "WHERE state = 'pending' AND interaction = ?1 AND channel = ?2 ORDER BY seq LIMIT ?3",
            params![interaction.to_string(), channel.as_str(), limit as i64],
        )
    }

    /// The delivery of one message, if it was recorded.
    pub fn outbox_delivery(&self, message: &str) -> Result<Option<Delivery>, StoreError> {
        Ok(self
            .outbox_select("WHERE message = ?1", params![message])?
            .pop())
    }

    /// When the next pending delivery is due, if any is pending.
    pub fn outbox_next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        let next: Option<i64> = conn
            .query_row(
                "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )
            .at(&path)?;
        Ok(next.map(millis_from_sql))
    }

    /// The journal sequence number of the oldest message still to deliver (its row must stay
    /// in the journal: the delivery reads the message there).
    pub fn outbox_oldest_pending(&self) -> Result<Option<u64>, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        let seq: Option<i64> = conn
            .query_row(
                "SELECT MIN(seq) FROM outbox WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )
            .at(&path)?;
        Ok(seq.map(|s| s.max(0) as u64))
    }

    fn outbox_select(
        &self,
        filter: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<Delivery>, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        let mut select = conn
            .prepare_cached(&format!("SELECT {DELIVERY_COLUMNS} FROM outbox {filter}"))
            .at(&path)?;
        let rows: Vec<(Delivery, String, String, String)> = select
            .query_map(args, |r| delivery_of(r))
            .at(&path)?
            .collect::<Result<_, _>>()
            .at(&path)?;
        rows.into_iter()
            .map(|r| delivery_from_parts(&path, r))
            .collect()
    }

    /// The message a delivery sends, read from the journal; `None` when its row was purged by
    /// retention.
    pub fn outbox_message(&self, seq: u64) -> Result<Option<Arc<Message>>, StoreError> {
        let path = self.path().to_owned();
        let row: Option<(i64, String)> = {
            let conn = self.conn();
            let mut select = conn
                .prepare_cached(
                    "SELECT at, payload FROM journal WHERE seq = ?1 AND kind = 'message_added'",
                )
                .at(&path)?;
            let row = select
                .query_row(params![seq as i64], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .at(&path)?;
            drop(select);
            row
        };
        let Some((at, payload)) = row else {
            return Ok(None);
        };
        message_of(path, seq, at, &payload)
    }

    /// Claims a delivery before sending it: on SQLite one node is always the leader, so it is
    /// [`OutboxClaim::Claimed`] while pending (the claims with a term are PostgreSQL's).
    pub fn outbox_claim(&self, message: &str) -> Result<OutboxClaim, StoreError> {
        Ok(match self.outbox_delivery(message)? {
            Some(d) if d.state == DeliveryState::Pending => OutboxClaim::Claimed,
            _ => OutboxClaim::Gone,
        })
    }

    /// Records a delivery's outcome: the new state, the attempt count, when it is next due
    /// (pending only), why it failed, and when and as what it was delivered.
    pub fn outbox_record(
        &self,
        message: &str,
        state: DeliveryState,
        attempts: u32,
        next_attempt_at: Timestamp,
        last_error: Option<&str>,
        delivered: Option<(Timestamp, Option<&str>)>,
    ) -> Result<(), StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        conn.prepare_cached(
            "UPDATE outbox SET state = ?2, attempts = ?3, next_attempt_at = ?4, \
             last_error = COALESCE(?5, last_error), delivered_at = ?6, provider_ref = ?7 \
             WHERE message = ?1",
        )
        .at(&path)?
        .execute(params![
            message,
            state.as_str(),
            attempts as i64,
            millis_to_sql(next_attempt_at),
            last_error,
            delivered.map(|(at, _)| millis_to_sql(at)),
            delivered.and_then(|(_, r)| r),
        ])
        .at(&path)?;
        Ok(())
    }

    /// Whether the number sent STOP (and not START since): no SMS is sent to it.
    pub fn is_opted_out(&self, number: &str) -> Result<bool, StoreError> {
        Ok(matches!(self.sms_opt_out(number)?, Some((true, _))))
    }

    /// The number's opt-out record: whether it is opted out, and the provider's id of the
    /// message that last changed it.
    pub fn sms_opt_out(&self, number: &str) -> Result<Option<(bool, String)>, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        let mut select = conn
            .prepare_cached("SELECT opted_out, message FROM sms_opt_out WHERE number = ?1")
            .at(&path)?;
        let row = select
            .query_row(params![number], |r| {
                Ok((r.get::<_, i64>(0)? != 0, r.get::<_, String>(1)?))
            })
            .optional()
            .at(&path)?;
        Ok(row)
    }

    /// Records that the number opted out (STOP) or back in (START) with the message `message`.
    pub fn set_sms_opt_out(
        &self,
        number: &str,
        opted_out: bool,
        at: Timestamp,
        message: &str,
    ) -> Result<(), StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT OR REPLACE INTO sms_opt_out (number, opted_out, changed_at, message) \
             VALUES (?1, ?2, ?3, ?4)",
        )
        .at(&path)?
        .execute(params![
            number,
            opted_out as i64,
            millis_to_sql(at),
            message
        ])
        .at(&path)?;
        Ok(())
    }
}

/// How long at most an agent's email reply waits for the interaction's completion (with
/// bundling on): past it, the reply goes on its own.
pub const REPLY_HOLD_MS: u64 = 15_000;

/// The completions among `interaction_completed` rows (`seq, at, payload`): each interaction
/// and when its pending emails are due at the latest, `email_hold_ms` after its completion (the
/// notice and the survey question committed meanwhile go with them).
pub(crate) fn completions(
    path: &std::path::Path,
    rows: Vec<(i64, i64, String)>,
    email_hold_ms: u64,
) -> Result<Vec<(InteractionId, i64)>, StoreError> {
    let mut decoder = Decoder::default();
    let mut found = Vec::new();
    for (seq, at, payload) in rows {
        let event = decoder.decode_row(path, seq, at, "interaction_completed", &payload)?;
        if let EventKind::InteractionCompleted { interaction, .. } = event.kind {
            let due = Timestamp(event.at.0.saturating_add(email_hold_ms));
            found.push((interaction, millis_to_sql(due)));
        }
    }
    Ok(found)
}

/// A delivery found by an outbox scan: message id, seq, interaction, channel, created (ms).
pub(crate) type Found = (String, i64, InteractionId, DeliveryChannel, i64, i64);

/// The outbound messages among `message_added` rows (`seq, at, payload`) that email or SMS
/// delivers; `channel_of` gives an interaction's channel (from its creation).
pub(crate) fn outbound_deliveries(
    path: &std::path::Path,
    rows: Vec<(i64, i64, String)>,
    email_hold_ms: u64,
    mut channel_of: impl FnMut(InteractionId) -> Result<Option<Channel>, StoreError>,
) -> Result<Vec<Found>, StoreError> {
    let mut decoder = Decoder::default();
    let mut channels: HashMap<InteractionId, Option<Channel>> = HashMap::new();
    let mut found = Vec::new();
    for (seq, at, payload) in rows {
        let event = decoder.decode_row(path, seq, at, "message_added", &payload)?;
        let EventKind::MessageAdded {
            interaction,
            message,
        } = event.kind
        else {
            continue;
        };
        if message.direction != MessageDirection::Outbound {
            continue;
        }
        let channel = match channels.get(&interaction) {
            Some(c) => *c,
            None => {
                let c = channel_of(interaction)?;
                channels.insert(interaction, c);
                c
            }
        };
        let Some(delivery) = channel.and_then(|c| DeliveryChannel::of(c, &message)) else {
            continue;
        };
        // An email other than an acknowledgement waits `email_hold_ms`, so that the
        // interaction's emails committed meanwhile go with it as one.
        let held = delivery == DeliveryChannel::Email
            && message.meta.get("notice").map(String::as_str) != Some("acknowledgement");
        // An agent's reply waits longer, for the completion that usually follows (which makes
        // it due `email_hold_ms` after the completion, see `completions`): the reply, the
        // completion notice and the survey question then go as one email.
        let hold = if message.agent.is_some() && email_hold_ms > 0 {
            email_hold_ms.max(REPLY_HOLD_MS)
        } else {
            email_hold_ms
        };
        let due = if held {
            Timestamp(event.at.0.saturating_add(hold))
        } else {
            event.at
        };
        found.push((
            message.id.clone(),
            seq,
            interaction,
            delivery,
            millis_to_sql(event.at),
            millis_to_sql(due),
        ));
    }
    Ok(found)
}

/// A delivery from its row's parts (the delivery, then its interaction, channel and state as
/// text), checked.
pub(crate) fn delivery_from_parts(
    path: &std::path::Path,
    (mut d, interaction, channel, state): (Delivery, String, String, String),
) -> Result<Delivery, StoreError> {
    let bad = |detail: String| StoreError::Decode {
        path: path.to_owned(),
        table: "outbox",
        seq: d.seq,
        detail,
    };
    d.interaction = interaction
        .parse()
        .map_err(|e| bad(format!("interaction {interaction:?}: {e}")))?;
    d.channel =
        DeliveryChannel::parse(&channel).ok_or_else(|| bad(format!("channel {channel:?}")))?;
    d.state = DeliveryState::parse(&state).ok_or_else(|| bad(format!("state {state:?}")))?;
    Ok(d)
}
