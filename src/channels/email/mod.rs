//! The inbound email channel: an SMTP listener a mail relay delivers to ([`smtp`]) and an
//! inbound-parse webhook ([`webhook`]), both handing parsed messages ([`mime`]) to one intake
//! ([`intake`]) that stores them as conversation messages, threads replies into their
//! interaction, and acknowledges new interactions ([`notice`]); completion notices follow the
//! committed events.
//!
//! Outbound mail (acknowledgements, notices, agents' replies) is only committed here: the notify
//! module delivers it. Configured by `[email]` and `[email.inbound]` ([`InboundConfig`]).

pub mod config;
pub mod intake;
pub mod mime;
pub mod notice;
pub mod smtp;
pub mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{ClosedReplyPolicy, EmailConfig, InboundConfig};
pub use intake::{Intake, Outcome, Refusal};
pub use mime::InboundEmail;

use crate::engine::StartContext;

/// Why the email channel could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmailError {
    /// The SMTP address could not be bound.
    #[error(
        "cannot listen for SMTP on {addr}: {source} (is another server running? change [email.inbound] listen)"
    )]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// The running inbound email channel.
#[derive(Debug)]
pub struct EmailChannel {
    intake: Arc<Intake>,
    smtp_addr: SocketAddr,
    stop: watch::Sender<bool>,
    smtp: JoinHandle<()>,
    notices: JoinHandle<()>,
}

impl EmailChannel {
    /// Binds the SMTP listener and starts it and the completion notices, when `[email.inbound]`
    /// is configured; `None` otherwise. Replies to survey questions go to `surveys`. The
    /// listener stops taking sessions when the context's shutdown is signalled.
    pub async fn start(
        cx: &StartContext,
        config: &EmailConfig,
        surveys: crate::survey::Surveys,
    ) -> Result<Option<Self>, EmailError> {
        let Some(inbound) = config.inbound.clone() else {
            return Ok(None);
        };
        let engine = &cx.engine;
        let bind_error = |source| EmailError::Bind {
            addr: inbound.listen.clone(),
            source,
        };
        let listener = TcpListener::bind(&inbound.listen)
            .await
            .map_err(bind_error)?;
        let smtp_addr = listener.local_addr().map_err(bind_error)?;
        let intake = Arc::new(
            Intake::new(engine.clone(), inbound, config.domain.clone()).with_surveys(surveys),
        );
        let (stop, stop_rx) = watch::channel(false);
        let mut shutdown = cx.shutdown();
        let stop_on_shutdown = stop.clone();
        tokio::spawn(async move {
            // A signal whose sender is gone without stopping (a standalone context) never fires.
            if shutdown.wait_for(|stopping| *stopping).await.is_ok() {
                let _ = stop_on_shutdown.send(true);
            }
        });
        let smtp = tokio::spawn(smtp::run(listener, intake.clone(), stop_rx, cx.grace));
        let notices = notice::spawn_completion_notices(engine.clone()).await;
        Ok(Some(EmailChannel {
            intake,
            smtp_addr,
            stop,
            smtp,
            notices,
        }))
    }

    /// The address the SMTP listener is bound to (useful with port 0).
    pub fn smtp_addr(&self) -> SocketAddr {
        self.smtp_addr
    }

    /// The HTTP routes (`POST /email/inbound`).
    pub fn routes(&self) -> axum::Router {
        webhook::routes(self.intake.clone())
    }

    /// Stops the SMTP listener and waits (at most `grace`) for sessions in flight and the
    /// completion notices to end (they end with the engine).
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(grace, self.smtp).await.is_err() {
            tracing::warn!("SMTP sessions still running after the grace period");
        }
        let mut notices = self.notices;
        if tokio::time::timeout(grace, &mut notices).await.is_err() {
            notices.abort();
        }
    }
}
