//! The `[email]` and `[notify]` configuration sections: the SMTP relay outbound email goes
//! through, and how the outbox retries.

use serde::{Deserialize, Serialize};

/// How the connection to the SMTP relay is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP (a relay on loopback or on a trusted network; usually port 25).
    None,
    /// Plain connection upgraded with STARTTLS, which is required (usually port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

/// `[email.outbound]`: the SMTP relay that outbound email (agents' replies, acknowledgements, chat
/// transcripts) is handed to, and how Guichet signs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailRelayConfig {
    /// The relay's host name (also the name its TLS certificate must carry).
    pub relay_host: String,
    /// The relay's port; 25 for `tls = "none"`, 587 for `starttls`, 465 for `tls` when absent.
    #[serde(default)]
    pub relay_port: Option<u16>,
    /// `none`, `starttls` (default) or `tls`.
    #[serde(default)]
    pub tls: SmtpTls,
    /// The user name to authenticate with (no authentication when absent).
    #[serde(default)]
    pub username: Option<String>,
    /// The password that goes with `username`.
    #[serde(default)]
    pub password: Option<String>,
    /// The sender address when a message does not name one (`contact@example.org`).
    pub from_address: String,
    /// The display name shown with the sender address (`Allô Service Public`).
    #[serde(default)]
    pub from_name: Option<String>,
    /// Seconds an SMTP exchange may take before the attempt counts as failed (default 30).
    #[serde(default = "default_smtp_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_smtp_timeout_secs() -> u64 {
    30
}

impl EmailRelayConfig {
    /// The relay's port, given or implied by the TLS mode.
    pub fn port(&self) -> u16 {
        self.relay_port.unwrap_or(match self.tls {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        })
    }

    /// Checks the section; the error names the key and says what to write.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.relay_host.trim().is_empty() {
            return Err((
                "[email.outbound] relay_host",
                "is empty: name the SMTP relay".into(),
            ));
        }
        if self.from_address.parse::<lettre::Address>().is_err() {
            return Err((
                "[email.outbound] from_address",
                format!(
                    "{:?} is not an email address: write one like \"contact@example.org\"",
                    self.from_address
                ),
            ));
        }
        if self.username.is_some() != self.password.is_some() {
            return Err((
                "[email.outbound] username",
                "username and password go together: give both or neither".into(),
            ));
        }
        if self.timeout_secs == 0 {
            return Err(("[email.outbound] timeout_secs", "must be at least 1".into()));
        }
        Ok(())
    }
}

/// `[notify]`: how the outbox retries a delivery that failed for a reason that may pass (a relay
/// or provider that is down, busy or rate-limiting).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// The wait before the first retry, in milliseconds; each further retry waits twice as long
    /// (default 5000).
    #[serde(default = "default_retry_initial_ms")]
    pub retry_initial_ms: u64,
    /// The longest wait between two attempts, in seconds (default 600).
    #[serde(default = "default_retry_max_secs")]
    pub retry_max_secs: u64,
    /// After this many seconds of failed attempts a message is marked failed and no longer
    /// retried (default 259200, three days).
    #[serde(default = "default_give_up_after_secs")]
    pub give_up_after_secs: u64,
    /// How long, in milliseconds, an outbound email waits before it is sent, so that the
    /// interaction's emails committed meanwhile to the same address go with it as one email:
    /// an agent's last reply, the completion notice and the survey link reach the citizen
    /// together (default 3000; 0 sends each at once; at most 60000). Acknowledgements are never
    /// held.
    #[serde(default = "default_email_bundle_ms")]
    pub email_bundle_ms: u64,
}

fn default_email_bundle_ms() -> u64 {
    3_000
}

/// The longest `email_bundle_ms` accepted.
const MAX_EMAIL_BUNDLE_MS: u64 = 60_000;

fn default_retry_initial_ms() -> u64 {
    5_000
}

fn default_retry_max_secs() -> u64 {
    600
}

fn default_give_up_after_secs() -> u64 {
    3 * 24 * 3600
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            retry_initial_ms: default_retry_initial_ms(),
            retry_max_secs: default_retry_max_secs(),
            give_up_after_secs: default_give_up_after_secs(),
            email_bundle_ms: default_email_bundle_ms(),
        }
    }
}

impl NotifyConfig {
    /// Checks the section; the error names the key and says what to write.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.retry_initial_ms == 0 {
            return Err(("[notify] retry_initial_ms", "must be at least 1".into()));
        }
        if self.retry_max_secs == 0 || self.retry_max_secs * 1000 < self.retry_initial_ms {
            return Err((
                "[notify] retry_max_secs",
                "must be at least 1 and at least retry_initial_ms".into(),
            ));
        }
        if self.give_up_after_secs == 0 {
            return Err(("[notify] give_up_after_secs", "must be at least 1".into()));
        }
        if self.email_bundle_ms > MAX_EMAIL_BUNDLE_MS {
            return Err((
                "[notify] email_bundle_ms",
                format!(
                    "must be at most {MAX_EMAIL_BUNDLE_MS} (a minute): emails would wait too long"
                ),
            ));
        }
        Ok(())
    }

    /// The wait after `attempts` failed attempts (1 = the first failed): `retry_initial_ms`
    /// doubled each time, capped at `retry_max_secs`.
    pub fn backoff_ms(&self, attempts: u32) -> u64 {
        let shift = attempts.saturating_sub(1).min(40);
        self.retry_initial_ms
            .saturating_mul(1u64 << shift)
            .min(self.retry_max_secs.saturating_mul(1000))
    }
}
