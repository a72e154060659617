//! The notify outbox: delivers every outbound message the engine commits, by the channel of its
//! interaction — email through the SMTP relay (`[email]`), SMS through the provider's REST API
//! (`[sms]`) — durably.
//!
//! The module owns the delivery worker, the [`Sender`] trait and its two senders, and the
//! `[email]` and `[notify]` configuration. How it works:
//!
//! - A message is to be delivered *because* an outbound `MessageAdded` event was committed. The
//!   worker scans the journal's `message_added` rows after its checkpoint (stored in the
//!   database), records a pending row in the `outbox` table for each outbound email or SMS
//!   message (and each message with `meta.deliver_via = "email"`, such as a chat transcript), and
//!   moves the checkpoint, in one transaction. Committed events only wake it up: a server that
//!   crashed, or a subscriber that fell behind, loses nothing, because the journal is the source.
//! - Due rows are sent one after another. A success records when it was delivered and the
//!   provider's id. A failure that may pass (relay or provider down, SMTP 4xx, HTTP 429/5xx) is
//!   retried after `[notify] retry_initial_ms`, doubled at each attempt up to `retry_max_secs`;
//!   after `give_up_after_secs` it is marked failed. A refusal that will not change (SMTP 5xx,
//!   HTTP 4xx, a recipient that is not an address) is marked failed at once, with the reason,
//!   and logged.
//! - SMS to a number that sent STOP are not sent (marked `suppressed`), except the opt-out
//!   channel's own notices.
//! - Emails are held `[notify] email_bundle_ms` (acknowledgements excepted) and an
//!   interaction's pending emails to the same address then go as one email ([`bundle`]): the
//!   agent's last reply with the completion notice and the survey link appended, instead of
//!   three emails within a second. Each message keeps its own row, all recorded delivered
//!   together; a crash before that sends the composed email again after the restart.
//! - Delivery is at least once: a crash between the relay's acceptance and the row's update sends
//!   that message again after the restart.

pub mod bundle;
mod config;
mod email;
mod sms;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::task::JoinHandle;
use tracing::Instrument;

pub use config::{EmailRelayConfig, NotifyConfig, SmtpTls};
pub use email::{message_id_header, EmailSender};
pub use sms::SmsSender;

use crate::channels::sms::SmsConfig;
use crate::core::{EventKind, Message, MessageDirection, Timestamp};
use crate::engine::{run_wakeups, Clock, Engine, SystemClock};
use crate::store::{
    Delivery, DeliveryChannel, DeliveryState, OutboxClaim, Store, StoreError, StoreHandle,
};

/// The meta key that marks an SMS the opt-out handling itself sends (sent even to a number that
/// opted out).
pub const META_OPT_NOTICE: &str = "sms_opt_notice";

/// The events that wake the outbox: an outbound message, or a completion (which makes its
/// interaction's held emails due sooner).
fn outbound(e: &EventKind) -> bool {
    matches!(e, EventKind::MessageAdded { message, .. }
        if message.direction == MessageDirection::Outbound)
        || matches!(e, EventKind::InteractionCompleted { .. })
}

/// What a sender reports for a delivered message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// The relay's or provider's id for it, if it gave one.
    pub provider_ref: Option<String>,
}

/// Why a message was not delivered.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum SendError {
    /// It may work later (relay down, busy, rate-limited): retried with backoff.
    #[error("{0}")]
    Transient(String),
    /// It will not work (refused recipient, bad request): marked failed.
    #[error("{0}")]
    Permanent(String),
}

/// Why a sender could not be set up from its configuration section.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{0}")]
pub struct SetupError(pub String);

/// The future a [`Sender`] returns.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<Sent, SendError>> + Send + 'a>>;

/// Something that delivers a message on one channel (a sink).
pub trait Sender: Send + Sync {
    /// Delivers `message`, or says why not.
    fn send<'a>(&'a self, message: &'a Message) -> SendFuture<'a>;
}

/// The most rows read from the journal, or sent, per round.
const BATCH: usize = 256;

/// The outbox's name as a view of committed events, and for its retention hold.
const OUTBOX_VIEW: &str = "outbox";

/// The longest the worker sleeps without looking at the outbox again.
const MAX_IDLE: Duration = Duration::from_secs(30);

/// The durable outbox's worker.
pub struct Outbox {
    engine: Engine,
    store: StoreHandle,
    config: NotifyConfig,
    email: Option<Box<dyn Sender>>,
    sms: Option<Box<dyn Sender>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("config", &self.config)
            .field("email", &self.email.is_some())
            .field("sms", &self.sms.is_some())
            .finish()
    }
}

impl Outbox {
    /// The outbox of a server (`[notify]`): senders through `email` (the `[email.outbound]`
    /// relay, Message-IDs in `email_domain`) and `sms` (the `[sms]` provider); a channel
    /// without one keeps its messages pending, and logs why.
    pub fn new(
        engine: &Engine,
        config: NotifyConfig,
        email: Option<&EmailRelayConfig>,
        email_domain: &str,
        sms: Option<&SmsConfig>,
    ) -> Result<Self, SetupError> {
        let email = match email {
            Some(c) => Some(Box::new(EmailSender::new(c, email_domain)?) as Box<dyn Sender>),
            None => None,
        };
        let sms = match sms {
            Some(c) => Some(Box::new(SmsSender::new(c)?) as Box<dyn Sender>),
            None => None,
        };
        Ok(Outbox::with_senders(engine, config, email, sms))
    }

    /// An outbox with the given senders (tests, embedding).
    pub fn with_senders(
        engine: &Engine,
        config: NotifyConfig,
        email: Option<Box<dyn Sender>>,
        sms: Option<Box<dyn Sender>>,
    ) -> Self {
        Outbox {
            engine: engine.clone(),
            store: engine.store().clone(),
            config,
            email,
            sms,
            clock: Arc::new(SystemClock),
        }
    }

    /// Runs the worker until the engine stops.
    pub fn start(self) -> JoinHandle<()> {
        tokio::spawn(self.run().instrument(tracing::info_span!("notify")))
    }

    async fn run(self) {
        // Started before the first scan: a message committed in between wakes the loop. The
        // view runner owns the subscription, its lag and the shutdown; the checkpoint is the
        // outbox's own, in the store.
        // Nothing is purged before the first round has read the messages after the
        // outbox's checkpoint.
        self.engine.hold_retention(OUTBOX_VIEW, 0);
        let wakeups = loop {
            match run_wakeups(&self.engine, OUTBOX_VIEW, outbound).await {
                Ok(w) => break w,
                Err(e) => {
                    tracing::error!(error = %e, "outbox: store failure, retrying in 5 s");
                    if self.engine.is_stopped() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        };
        tracing::info!(
            email = self.email.is_some(),
            sms = self.sms.is_some(),
            "outbox started"
        );
        loop {
            let idle = match self.round().await {
                Ok(idle) => idle,
                Err(e) => {
                    tracing::error!(error = %e, "outbox: store failure, retrying in 5 s");
                    Duration::from_secs(5)
                }
            };
            if !wakeups.wait(idle).await {
                tracing::info!("outbox stopped");
                return;
            }
        }
    }

    /// Reads new messages, sends what is due; returns how long to wait before the next round.
    async fn round(&self) -> Result<Duration, StoreError> {
        // Every message committed up to here is recorded once the ingestion below is done:
        // retention may then purge up to here, never what the outbox has not read, nor the
        // message of a delivery still pending (it is read from the journal when sent).
        let read_up_to = self.blocking(|s| s.last_committed_seq()).await?;
        loop {
            let hold = self.config.email_bundle_ms;
            let (_, more) = self.blocking(move |s| s.outbox_ingest(BATCH, hold)).await?;
            if !more {
                break;
            }
        }
        let oldest = self.blocking(|s| s.outbox_oldest_pending()).await?;
        let held = oldest.map_or(read_up_to, |seq| read_up_to.min(seq.saturating_sub(1)));
        self.engine.hold_retention(OUTBOX_VIEW, held);
        loop {
            let now = self.clock.now();
            let due = self.blocking(move |s| s.outbox_due(now, BATCH)).await?;
            if due.is_empty() {
                break;
            }
            // Messages already sent within an email composed this round.
            let mut sent_within = std::collections::HashSet::new();
            for delivery in due {
                if self.engine.is_stopped() {
                    return Ok(MAX_IDLE);
                }
                if sent_within.contains(&delivery.message) {
                    continue;
                }
                let span = tracing::info_span!(
                    "deliver",
                    interaction_id = %delivery.interaction,
                    message = %delivery.message,
                    channel = delivery.channel.as_str()
                );
                sent_within.extend(self.deliver(delivery).instrument(span).await?);
            }
        }
        let next = self.blocking(|s| s.outbox_next_due()).await?;
        let now = self.clock.now();
        Ok(match next {
            Some(at) => Duration::from_millis(at.0.saturating_sub(now.0)).min(MAX_IDLE),
            None => MAX_IDLE,
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.store.run(f).await
    }

    /// One attempt at one delivery (with the emails that go with it), and its outcome
    /// recorded; returns the other messages it sent or tried with it.
    async fn deliver(&self, d: Delivery) -> Result<Vec<String>, StoreError> {
        // A leader past its lease's deadline sends nothing (high availability): it is about to
        // step down, and the delivery stays pending for the next leader.
        if !self.store.acting() {
            return Ok(Vec::new());
        }
        // Claimed with the leader's term (PostgreSQL with high availability): nothing is sent
        // twice across a takeover.
        let id = d.message.clone();
        match self.blocking(move |s| s.outbox_claim(&id)).await? {
            OutboxClaim::Claimed => {}
            OutboxClaim::Gone => return Ok(Vec::new()),
            OutboxClaim::InDoubt { term } => {
                let reason = format!(
                    "in doubt: the leader of term {term} claimed it and stopped before recording                      whether it was sent; not sent again, so that it is never sent twice"
                );
                tracing::error!(%reason, "delivery not attempted");
                self.record(&d, DeliveryState::Failed, d.attempts, Some(&reason), None)
                    .await?;
                return Ok(Vec::new());
            }
        }
        let seq = d.seq;
        let Some(message) = self.blocking(move |s| s.outbox_message(seq)).await? else {
            let reason = "the message was purged from the journal before it could be sent";
            tracing::error!(reason, "delivery failed");
            self.record(&d, DeliveryState::Failed, d.attempts, Some(reason), None)
                .await?;
            return Ok(Vec::new());
        };
        if message.id.starts_with("erased:") {
            let reason = "the contact was erased before the message could be sent";
            tracing::warn!(reason, "delivery dropped");
            self.record(&d, DeliveryState::Failed, d.attempts, Some(reason), None)
                .await?;
            return Ok(Vec::new());
        }
        if d.channel == DeliveryChannel::Sms
            && message.meta.get(META_OPT_NOTICE).map(String::as_str) != Some("true")
        {
            let to = message.to.clone();
            if self.blocking(move |s| s.is_opted_out(&to)).await? {
                let reason = "the contact opted out of SMS (STOP): not sent";
                tracing::warn!(reason, "delivery suppressed");
                self.record(
                    &d,
                    DeliveryState::Suppressed,
                    d.attempts,
                    Some(reason),
                    None,
                )
                .await?;
                return Ok(Vec::new());
            }
        }
        let (message, companions) = self.bundle(&d, message).await?;
        for c in &companions {
            tracing::info!(with = %c.message, "sent in the same email");
        }
        self.attempt(&d, &message, &companions).await?;
        Ok(companions.into_iter().map(|c| c.message).collect())
    }

    /// The email `message` of `d` goes out as, with the interaction's other pending emails to
    /// the same address (and those deliveries); `message` alone for SMS, acknowledgements, or
    /// with bundling off.
    async fn bundle(
        &self,
        d: &Delivery,
        message: Arc<Message>,
    ) -> Result<(Arc<Message>, Vec<Delivery>), StoreError> {
        if d.channel != DeliveryChannel::Email
            || self.config.email_bundle_ms == 0
            || !bundle::may_bundle(&message)
        {
            return Ok((message, Vec::new()));
        }
        let (interaction, own, first) = (d.interaction, d.message.clone(), message.clone());
        let others = self
            .blocking(move |s| {
                let pending =
                    s.outbox_pending_of(interaction, DeliveryChannel::Email, bundle::MAX_PARTS)?;
                let mut found = Vec::new();
                for p in pending.into_iter().filter(|p| p.message != own) {
                    let Some(m) = s.outbox_message(p.seq)? else {
                        continue;
                    };
                    // Sent within this email: claimed too (one in doubt waits for its own turn,
                    // where it is recorded as such).
                    if bundle::may_bundle(&m)
                        && bundle::same_recipient(&m, &first)
                        && s.outbox_claim(&p.message)? == OutboxClaim::Claimed
                    {
                        found.push((p, m));
                    }
                }
                Ok(found)
            })
            .await?;
        let mut parts: Vec<(u64, Arc<Message>, Option<Delivery>)> = vec![(d.seq, message, None)];
        for (p, m) in others {
            if bundle::may_bundle(&m) && bundle::same_recipient(&m, &parts[0].1) {
                parts.push((p.seq, m, Some(p)));
            }
        }
        if parts.len() == 1 {
            let (_, message, _) = parts.remove(0);
            return Ok((message, Vec::new()));
        }
        parts.sort_by_key(|(seq, _, _)| *seq);
        let messages: Vec<&Message> = parts.iter().map(|(_, m, _)| m.as_ref()).collect();
        let Some(email) = bundle::compose(&messages) else {
            // Not reached: `parts` holds at least `message`.
            let (_, message, _) = parts.remove(0);
            return Ok((message, Vec::new()));
        };
        let companions = parts.into_iter().filter_map(|(_, _, p)| p).collect();
        Ok((Arc::new(email), companions))
    }

    /// Sends `message` (for `d` and its `companions`) and records the outcome on every one.
    async fn attempt(
        &self,
        d: &Delivery,
        message: &Message,
        companions: &[Delivery],
    ) -> Result<(), StoreError> {
        let sender = match d.channel {
            DeliveryChannel::Email => self.email.as_deref(),
            DeliveryChannel::Sms => self.sms.as_deref(),
        };
        let attempts = d.attempts.saturating_add(1);
        let outcome = match sender {
            Some(sender) => sender.send(message).await,
            None => Err(SendError::Transient(format!(
                "no [{}] section in the configuration: add it and restart to deliver",
                match d.channel {
                    DeliveryChannel::Email => "email.outbound",
                    DeliveryChannel::Sms => "sms",
                }
            ))),
        };
        let now = self.clock.now();
        let (state, reason, next, delivered) = match outcome {
            Ok(sent) => {
                tracing::info!(attempts, provider_ref = ?sent.provider_ref, "delivered");
                (
                    DeliveryState::Delivered,
                    None,
                    now,
                    Some((now, sent.provider_ref)),
                )
            }
            Err(SendError::Permanent(reason)) => {
                tracing::error!(attempts, %reason, "delivery failed for good");
                (DeliveryState::Failed, Some(reason), now, None)
            }
            Err(SendError::Transient(reason)) => {
                let age_ms = now.0.saturating_sub(d.created_at.0);
                if age_ms >= self.config.give_up_after_secs.saturating_mul(1000) {
                    let reason = format!(
                        "gave up after {attempts} attempts over {} s: {reason}",
                        age_ms / 1000
                    );
                    tracing::error!(attempts, %reason, "delivery failed for good");
                    (DeliveryState::Failed, Some(reason), now, None)
                } else {
                    let wait = self.config.backoff_ms(attempts);
                    tracing::warn!(attempts, retry_in_ms = wait, %reason, "delivery failed, will retry");
                    (
                        DeliveryState::Pending,
                        Some(reason),
                        Timestamp(now.0.saturating_add(wait)),
                        None,
                    )
                }
            }
        };
        let within = format!("sent in one email with {}", message.id);
        let rows: Vec<(String, u32, Option<String>)> =
            std::iter::once((d.message.clone(), attempts, reason.clone()))
                .chain(companions.iter().map(|c| {
                    let why = match state {
                        DeliveryState::Delivered => Some(within.clone()),
                        _ => reason.clone(),
                    };
                    (c.message.clone(), c.attempts.saturating_add(1), why)
                }))
                .collect();
        self.blocking(move |s| {
            let delivered = delivered.as_ref().map(|(t, r)| (*t, r.as_deref()));
            for (id, attempts, reason) in &rows {
                s.outbox_record(id, state, *attempts, next, reason.as_deref(), delivered)?;
            }
            Ok(())
        })
        .await
    }

    async fn record(
        &self,
        d: &Delivery,
        state: DeliveryState,
        attempts: u32,
        reason: Option<&str>,
        delivered: Option<(Timestamp, Option<String>)>,
    ) -> Result<(), StoreError> {
        let id = d.message.clone();
        let reason = reason.map(str::to_owned);
        let at = self.clock.now();
        self.blocking(move |s| {
            let delivered = delivered.as_ref().map(|(t, r)| (*t, r.as_deref()));
            s.outbox_record(&id, state, attempts, at, reason.as_deref(), delivered)
        })
        .await
    }
}
