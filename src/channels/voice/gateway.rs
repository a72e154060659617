//! The gateways as seen from Guichet: which one a call came through, the URLs given to it, and
//! the outbound REST requests Guichet makes on its own initiative (live call update to bridge a
//! waiting caller at once, originating a callback).
//!
//! Formats (see `wire-formats.md` and `docs/voice.md`):
//! - Twilio: `POST {api_base}/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` with form
//!   field `Twiml` (live update), `POST .../Calls.json` with `To`, `From`, `Twiml` (callback);
//!   HTTP basic auth `AccountSid:AuthToken`;
//! - jambonz: `PUT {api_base}/v1/Accounts/{sid}/Calls/{call_sid}` with
//!   `{"call_hook": {"url": ..., "method": "POST"}}` (live update), `POST .../Calls` with
//!   `from`, `to`, `call_hook` (callback); bearer API key;
//! - generic SIP: `POST {control_url}` with `{"event": "call.actions", "call_id", "actions"}`
//!   (or `"event": "call.originate"`, `"to"`, `"from"`), signed like the webhooks.

use std::time::Duration;

use serde_json::json;

use crate::ivr::{render_jambonz_with, render_twiml, Verb};

use super::config::VoiceConfig;
use super::sign::timestamped_signature;
use super::sip::render_sip;

/// Which gateway protocol a call speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gateway {
    /// Twilio-style form webhooks and TwiML.
    Twilio,
    /// jambonz-style JSON webhooks and verb arrays.
    Jambonz,
    /// Guichet's generic SIP-server event API.
    Sip,
}

impl Gateway {
    /// The name used in paths and logs (`twilio`, `jambonz`, `sip`).
    pub fn name(self) -> &'static str {
        match self {
            Gateway::Twilio => "twilio",
            Gateway::Jambonz => "jambonz",
            Gateway::Sip => "sip",
        }
    }

    /// The absolute URL of webhook `step` for answers given at `turn`.
    pub fn url(self, base: &str, step: &str, turn: u32) -> String {
        match self {
            Gateway::Sip => format!("{base}/voice/sip/events"),
            _ => format!("{base}/voice/{}/{step}?t={turn}", self.name()),
        }
    }
}

/// Why an outbound request to a gateway failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The gateway has no REST API configured.
    #[error("no REST API configured for the {0} gateway")]
    NotConfigured(&'static str),
    /// The request did not complete.
    #[error("request to the gateway failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The gateway answered with an error status.
    #[error("the gateway answered HTTP {status}: {body}")]
    Status {
        /// The status.
        status: u16,
        /// The start of its body.
        body: String,
    },
}

/// What Guichet asks a gateway to do on its own initiative.
#[derive(Debug, Clone, Copy)]
enum Action<'a> {
    /// Replace what the live call `call_sid` is doing.
    Update {
        /// The gateway's call id.
        call_sid: &'a str,
    },
    /// Place a call to `to` from `from`.
    Originate {
        /// The number called.
        to: &'a str,
        /// The caller id shown.
        from: &'a str,
    },
}

/// The outbound side of the gateways.
#[derive(Debug, Clone)]
pub struct Outbound {
    http: reqwest::Client,
    config: VoiceConfig,
}

impl Outbound {
    /// A client with the configured timeout.
    pub fn new(config: &VoiceConfig) -> Outbound {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.api_timeout_secs))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Outbound {
            http,
            config: config.clone(),
        }
    }

    /// Replaces the live call's instructions with `verbs` (Twilio, SIP) or makes the gateway
    /// fetch `hook_url` (jambonz, whose live update takes a URL). Returns once the gateway
    /// acknowledged it.
    pub async fn update_call(
        &self,
        gateway: Gateway,
        call_sid: &str,
        verbs: &[Verb],
        hook_url: &str,
    ) -> Result<(), OutboundError> {
        let request =
            self.gateway_request(gateway, Action::Update { call_sid }, verbs, hook_url)?;
        check(request.send().await?).await
    }

    /// Ends the live call `call_sid` (the agent completed it from the desktop): a `<Hangup/>`
    /// live update (Twilio, SIP), `call_status: completed` (jambonz).
    pub async fn hang_up(&self, gateway: Gateway, call_sid: &str) -> Result<(), OutboundError> {
        let request = match gateway {
            Gateway::Jambonz => {
                let j = self
                    .config
                    .jambonz
                    .as_ref()
                    .ok_or(OutboundError::NotConfigured("jambonz"))?;
                self.http
                    .put(format!(
                        "{}/v1/Accounts/{}/Calls/{call_sid}",
                        j.api_base.trim_end_matches('/'),
                        j.account_sid
                    ))
                    .json(&json!({ "call_status": "completed" }))
                    .bearer_auth(&j.api_key)
            }
            _ => self.gateway_request(gateway, Action::Update { call_sid }, &[Verb::Hangup], "")?,
        };
        check(request.send().await?).await
    }

    /// Calls `to` back from `from` and connects it to `agent_verbs` (a dial to the agent).
    pub async fn originate(
        &self,
        gateway: Gateway,
        to: &str,
        from: &str,
        verbs: &[Verb],
        hook_url: &str,
    ) -> Result<(), OutboundError> {
        let request =
            self.gateway_request(gateway, Action::Originate { to, from }, verbs, hook_url)?;
        check(request.send().await?).await
    }

    /// The request that asks `gateway` to do `action` with `verbs` (or, for jambonz's live
    /// update, to fetch `hook_url`): its URL, authentication and body.
    fn gateway_request(
        &self,
        gateway: Gateway,
        action: Action<'_>,
        verbs: &[Verb],
        hook_url: &str,
    ) -> Result<reqwest::RequestBuilder, OutboundError> {
        match gateway {
            Gateway::Twilio => {
                let t = self
                    .config
                    .twilio
                    .as_ref()
                    .ok_or(OutboundError::NotConfigured("twilio"))?;
                let calls = format!(
                    "{}/2010-04-01/Accounts/{}/Calls",
                    t.api_base.trim_end_matches('/'),
                    t.account_sid
                );
                let twiml = render_twiml(verbs);
                let request = match action {
                    Action::Update { call_sid } => self
                        .http
                        .post(format!("{calls}/{call_sid}.json"))
                        .form(&[("Twiml", twiml.as_str())]),
                    Action::Originate { to, from } => self
                        .http
                        .post(format!("{calls}.json"))
                        .form(&[("To", to), ("From", from), ("Twiml", twiml.as_str())]),
                };
                Ok(request.basic_auth(&t.account_sid, Some(&t.auth_token)))
            }
            Gateway::Jambonz => {
                let j = self
                    .config
                    .jambonz
                    .as_ref()
                    .ok_or(OutboundError::NotConfigured("jambonz"))?;
                let calls = format!(
                    "{}/v1/Accounts/{}/Calls",
                    j.api_base.trim_end_matches('/'),
                    j.account_sid
                );
                let hook = json!({ "url": hook_url, "method": "POST" });
                let request = match action {
                    Action::Update { call_sid } => self
                        .http
                        .put(format!("{calls}/{call_sid}"))
                        .json(&json!({ "call_hook": hook })),
                    Action::Originate { to, from } => self.http.post(calls).json(&json!({
                        "from": from,
                        "to": { "type": "phone", "number": to },
                        "call_hook": hook,
                        "app_json": render_jambonz_with(verbs, &j.speech).to_string(),
                    })),
                };
                Ok(request.bearer_auth(&j.api_key))
            }
            Gateway::Sip => {
                let body = match action {
                    Action::Update { call_sid } => json!({
                        "event": "call.actions",
                        "call_id": call_sid,
                        "actions": render_sip(verbs),
                    }),
                    Action::Originate { to, from } => json!({
                        "event": "call.originate",
                        "to": to,
                        "from": from,
                        "actions": render_sip(verbs),
                    }),
                };
                self.sip_request(body)
            }
        }
    }

    fn sip_request(
        &self,
        body: serde_json::Value,
    ) -> Result<reqwest::RequestBuilder, OutboundError> {
        let sip = self
            .config
            .sip
            .as_ref()
            .ok_or(OutboundError::NotConfigured("sip"))?;
        let url = sip
            .control_url
            .as_ref()
            .ok_or(OutboundError::NotConfigured("sip"))?;
        let bytes = body.to_string();
        let t = unix_now();
        Ok(self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header(
                "guichet-signature",
                timestamped_signature(&sip.secret, t, bytes.as_bytes()),
            )
            .body(bytes))
    }
}

async fn check(response: reqwest::Response) -> Result<(), OutboundError> {
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    Err(OutboundError::Status {
        status: status.as_u16(),
        body: body.chars().take(200).collect(),
    })
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
