//! The `[sms]` configuration section: the provider's REST API and credentials, the service
//! numbers and the queue each one feeds, and the opt-out confirmations.

use serde::{Deserialize, Serialize};

/// One of the service's SMS numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsNumber {
    /// The number in E.164 form (`+33644630000`), as the provider writes it in `To`.
    pub number: String,
    /// The queue that conversations started on this number go to.
    pub queue: String,
}

/// `[sms]`: a Twilio-compatible SMS provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// The provider's API base URL, without trailing slash (default `https://api.twilio.com`);
    /// messages are sent with `POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The account id (`AC…`), the user name of the API's basic authentication.
    pub account_sid: String,
    /// The auth token: the password of the API's basic authentication, and the key of the
    /// webhooks' `X-Twilio-Signature`.
    pub auth_token: String,
    /// The service numbers; inbound messages to other numbers are refused (404).
    pub numbers: Vec<SmsNumber>,
    /// The reply to STOP (and the other opt-out keywords).
    #[serde(default = "default_opt_out_reply")]
    pub opt_out_reply: String,
    /// The reply to START (opting back in).
    #[serde(default = "default_opt_in_reply")]
    pub opt_in_reply: String,
    /// Seconds a call to the provider's API may take before the attempt counts as failed
    /// (default 30).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_base_url() -> String {
    "https://api.twilio.com".into()
}

fn default_opt_out_reply() -> String {
    "Vous ne recevrez plus de SMS de notre part. Envoyez START pour les recevoir à nouveau. \
     / You will receive no more messages from us. Reply START to receive them again."
        .into()
}

fn default_opt_in_reply() -> String {
    "Vous recevrez à nouveau nos SMS. Envoyez STOP pour ne plus les recevoir. \
     / You will receive our messages again. Reply STOP to stop them."
        .into()
}

fn default_timeout_secs() -> u64 {
    30
}

impl SmsConfig {
    /// The queue of a service number, if it is one of ours.
    pub fn queue_of(&self, number: &str) -> Option<&str> {
        self.numbers
            .iter()
            .find(|n| n.number == number)
            .map(|n| n.queue.as_str())
    }

    /// Checks the section; the error names the key and says what to write.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            return Err((
                "[sms] base_url",
                format!(
                    "{:?} must start with http:// or https://, like \"https://api.twilio.com\"",
                    self.base_url
                ),
            ));
        }
        if self.account_sid.trim().is_empty() || self.account_sid.contains(['/', '?', '#', ' ']) {
            return Err((
                "[sms] account_sid",
                "must be the provider's account id (AC…), without spaces or slashes".into(),
            ));
        }
        if self.auth_token.is_empty() {
            return Err((
                "[sms] auth_token",
                "is empty: copy the provider's auth token".into(),
            ));
        }
        if self.numbers.is_empty() {
            return Err((
                "[sms] numbers",
                "is empty: list the service numbers, like [{ number = \"+33644630000\", queue = \"general\" }]".into(),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for n in &self.numbers {
            if !n.number.starts_with('+') || n.number.len() < 4 {
                return Err((
                    "[sms] numbers",
                    format!(
                        "{:?} is not in E.164 form: write it like \"+33644630000\"",
                        n.number
                    ),
                ));
            }
            if !seen.insert(&n.number) {
                return Err(("[sms] numbers", format!("{} is listed twice", n.number)));
            }
        }
        if self.timeout_secs == 0 {
            return Err(("[sms] timeout_secs", "must be at least 1".into()));
        }
        Ok(())
    }
}
