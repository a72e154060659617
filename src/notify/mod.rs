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
//! - Delivery is at least once: a crash between the relay's acceptance and the row's update sends
//!   that message again after the restart.

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

use crate::config::Config;
use crate::core::{EventKind, Message, MessageDirection, Timestamp};
use crate::engine::{wait_for_event, Clock, Engine, SystemClock};
use crate::store::{Delivery, DeliveryChannel, DeliveryState, Store, StoreError, StoreHandle};

/// The meta key that marks an SMS the opt-out handling itself sends (sent even to a number that
/// opted out).
pub const META_OPT_NOTICE: &str = "sms_opt_notice";

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
    /// The outbox of a server: senders from the `[email.outbound]` and `[sms]` sections (a channel whose
    /// section is absent keeps its messages pending, and logs why).
    pub fn new(engine: &Engine, config: &Config) -> Result<Self, SetupError> {
        let email = match &config.email.outbound {
            Some(c) => {
                Some(Box::new(EmailSender::new(c, &config.email.domain)?) as Box<dyn Sender>)
            }
            None => None,
        };
        let sms = match &config.sms {
            Some(c) => Some(Box::new(SmsSender::new(c)?) as Box<dyn Sender>),
            None => None,
        };
        Ok(Outbox::with_senders(
            engine,
            config.notify.clone(),
            email,
            sms,
        ))
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
        // Subscribed before the first scan: a message committed in between wakes the loop.
        let mut events = self.engine.subscribe();
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
            let outbound = |e: &EventKind| {
                matches!(e, EventKind::MessageAdded { message, .. }
                    if message.direction == MessageDirection::Outbound)
            };
            if !wait_for_event(&mut events, idle, outbound).await {
                tracing::info!("outbox stopped");
                return;
            }
        }
    }

    /// Reads new messages, sends what is due; returns how long to wait before the next round.
    async fn round(&self) -> Result<Duration, StoreError> {
        loop {
            let (_, more) = self.blocking(|s| s.outbox_ingest(BATCH)).await?;
            if !more {
                break;
            }
        }
        loop {
            let now = self.clock.now();
            let due = self.blocking(move |s| s.outbox_due(now, BATCH)).await?;
            if due.is_empty() {
                break;
            }
            for delivery in due {
                if self.engine.is_stopped() {
                    return Ok(MAX_IDLE);
                }
                let span = tracing::info_span!(
                    "deliver",
                    interaction_id = %delivery.interaction,
                    message = %delivery.message,
                    channel = delivery.channel.as_str()
                );
                self.deliver(delivery).instrument(span).await?;
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

    /// One attempt at one delivery, and its outcome recorded.
    async fn deliver(&self, d: Delivery) -> Result<(), StoreError> {
        let seq = d.seq;
        let Some(message) = self.blocking(move |s| s.outbox_message(seq)).await? else {
            let reason = "the message was purged from the journal before it could be sent";
            tracing::error!(reason, "delivery failed");
            return self
                .record(&d, DeliveryState::Failed, d.attempts, Some(reason), None)
                .await;
        };
        if message.id.starts_with("erased:") {
            let reason = "the contact was erased before the message could be sent";
            tracing::warn!(reason, "delivery dropped");
            return self
                .record(&d, DeliveryState::Failed, d.attempts, Some(reason), None)
                .await;
        }
        if d.channel == DeliveryChannel::Sms
            && message.meta.get(META_OPT_NOTICE).map(String::as_str) != Some("true")
        {
            let to = message.to.clone();
            if self.blocking(move |s| s.is_opted_out(&to)).await? {
                let reason = "the contact opted out of SMS (STOP): not sent";
                tracing::warn!(reason, "delivery suppressed");
                return self
                    .record(
                        &d,
                        DeliveryState::Suppressed,
                        d.attempts,
                        Some(reason),
                        None,
                    )
                    .await;
            }
        }
        let sender = match d.channel {
            DeliveryChannel::Email => self.email.as_deref(),
            DeliveryChannel::Sms => self.sms.as_deref(),
        };
        let attempts = d.attempts.saturating_add(1);
        let outcome = match sender {
            Some(sender) => sender.send(&message).await,
            None => Err(SendError::Transient(format!(
                "no [{}] section in the configuration: add it and restart to deliver",
                match d.channel {
                    DeliveryChannel::Email => "email.outbound",
                    DeliveryChannel::Sms => "sms",
                }
            ))),
        };
        let now = self.clock.now();
        match outcome {
            Ok(sent) => {
                tracing::info!(attempts, provider_ref = ?sent.provider_ref, "delivered");
                self.record(
                    &d,
                    DeliveryState::Delivered,
                    attempts,
                    None,
                    Some((now, sent.provider_ref)),
                )
                .await
            }
            Err(SendError::Permanent(reason)) => {
                tracing::error!(attempts, %reason, "delivery failed for good");
                self.record(&d, DeliveryState::Failed, attempts, Some(&reason), None)
                    .await
            }
            Err(SendError::Transient(reason)) => {
                let age_ms = now.0.saturating_sub(d.created_at.0);
                if age_ms >= self.config.give_up_after_secs.saturating_mul(1000) {
                    let reason = format!(
                        "gave up after {attempts} attempts over {} s: {reason}",
                        age_ms / 1000
                    );
                    tracing::error!(attempts, %reason, "delivery failed for good");
                    return self
                        .record(&d, DeliveryState::Failed, attempts, Some(&reason), None)
                        .await;
                }
                let wait = self.config.backoff_ms(attempts);
                tracing::warn!(attempts, retry_in_ms = wait, %reason, "delivery failed, will retry");
                let next = Timestamp(now.0.saturating_add(wait));
                let (id, r) = (d.message.clone(), reason);
                self.blocking(move |s| {
                    s.outbox_record(&id, DeliveryState::Pending, attempts, next, Some(&r), None)
                })
                .await
            }
        }
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
