//! SMS out: an outbound message is posted to a Twilio-compatible REST API
//! (`POST {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json`, form fields `To`, `From`,
//! `Body`, HTTP basic authentication). 2xx is delivered (the answer's `sid` is kept); 429 and 5xx
//! are retried; other 4xx are refusals that will not change.

use std::time::Duration;

use serde::Deserialize;

use crate::channels::sms::SmsConfig;
use crate::core::Message;

use super::{SendError, SendFuture, Sender, Sent, SetupError};

/// Sends SMS through the `[sms]` provider.
#[derive(Debug)]
pub struct SmsSender {
    config: SmsConfig,
    client: reqwest::Client,
    url: String,
}

/// The provider's answer, success or error (only the fields Guichet reads).
#[derive(Debug, Default, Deserialize)]
struct ProviderAnswer {
    #[serde(default)]
    sid: Option<String>,
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<String>,
}

impl SmsSender {
    /// A sender for the provider of `config`.
    pub fn new(config: &SmsConfig) -> Result<Self, SetupError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .build()
            .map_err(|e| SetupError(format!("[sms]: cannot build the HTTP client: {e}")))?;
        Ok(SmsSender {
            url: format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                config.base_url.trim_end_matches('/'),
                config.account_sid
            ),
            config: config.clone(),
            client,
        })
    }

    /// The service number a message is sent from: its `from` when that is one of the
    /// configured numbers, the first configured number otherwise.
    fn sender_number<'a>(&'a self, message: &'a Message) -> &'a str {
        if self.config.queue_of(&message.from).is_some() {
            &message.from
        } else {
            self.config
                .numbers
                .first()
                .map(|n| n.number.as_str())
                .unwrap_or_default()
        }
    }
}

impl Sender for SmsSender {
    fn send<'a>(&'a self, message: &'a Message) -> SendFuture<'a> {
        Box::pin(async move {
            let to = message.to.trim();
            if to.is_empty() {
                return Err(SendError::Permanent("the message has no recipient".into()));
            }
            let form = [
                ("To", to),
                ("From", self.sender_number(message)),
                ("Body", message.text.as_str()),
            ];
            let response = self
                .client
                .post(&self.url)
                .basic_auth(&self.config.account_sid, Some(&self.config.auth_token))
                .form(&form)
                .send()
                .await
                .map_err(|e| SendError::Transient(format!("SMS provider {}: {e}", self.url)))?;
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            let answer: ProviderAnswer = serde_json::from_str(&body).unwrap_or_default();
            if status.is_success() {
                return Ok(Sent {
                    provider_ref: answer.sid,
                });
            }
            let detail = match (&answer.code, &answer.message) {
                (Some(code), Some(m)) => format!("error {code}: {m}"),
                (None, Some(m)) => m.clone(),
                _ => body.chars().take(200).collect(),
            };
            let what = format!("SMS provider answered {status}: {detail}");
            if status.as_u16() == 429 || status.is_server_error() {
                Err(SendError::Transient(what))
            } else {
                Err(SendError::Permanent(what))
            }
        })
    }
}
