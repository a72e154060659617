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
//! - Twilio conferences (warm transfer of a call, see `conference.rs`): `GET .../Calls.json?
//!   ParentCallSid=..&Status=in-progress` (the agent's leg of a bridged call), `GET
//!   .../Conferences.json?FriendlyName=..&Status=in-progress` (the room's sid), `POST
//!   .../Conferences/{sid}/Participants/{CallSid}.json` with `EndConferenceOnExit`, `DELETE` of
//!   the same (the first agent leaves);
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
    /// The gateway answered, but without what Guichet asked for (a call or conference sid).
    #[error("the gateway's answer has no {0}")]
    Unexpected(&'static str),
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

    /// Twilio's account base URL (`{api_base}/2010-04-01/Accounts/{sid}`) and a request
    /// builder for `method` on `path` under it, authenticated.
    fn twilio_request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> Result<reqwest::RequestBuilder, OutboundError> {
        let t = self
            .config
            .twilio
            .as_ref()
            .ok_or(OutboundError::NotConfigured("twilio"))?;
        let url = format!(
            "{}/2010-04-01/Accounts/{}/{path}",
            t.api_base.trim_end_matches('/'),
            t.account_sid
        );
        Ok(self
            .http
            .request(method, url)
            .basic_auth(&t.account_sid, Some(&t.auth_token)))
    }

    /// Twilio: the sid of the first call in progress whose parent is `parent` (the agent's
    /// leg of a `<Dial>`), if any.
    pub async fn twilio_child_leg(&self, parent: &str) -> Result<Option<String>, OutboundError> {
        self.twilio_first(
            "Calls.json",
            &[("ParentCallSid", parent), ("Status", "in-progress")],
            "calls",
        )
        .await
    }

    /// Twilio: the sid of the first item of the list `key` that a `GET` of `path` with `query`
    /// answers, if any.
    async fn twilio_first(
        &self,
        path: &str,
        query: &[(&str, &str)],
        key: &str,
    ) -> Result<Option<String>, OutboundError> {
        let request = self
            .twilio_request(reqwest::Method::GET, path)?
            .query(query);
        let body = json_body(request.send().await?).await?;
        Ok(first_sid(&body, key))
    }

    /// Twilio: places a call to `to` from `from` running `verbs`; returns its sid.
    pub async fn twilio_call_out(
        &self,
        to: &str,
        from: &str,
        verbs: &[Verb],
    ) -> Result<String, OutboundError> {
        let request =
            self.gateway_request(Gateway::Twilio, Action::Originate { to, from }, verbs, "")?;
        let body = json_body(request.send().await?).await?;
        body.get("sid")
            .and_then(|s| s.as_str())
            .filter(|s| !s.is_empty() && s.len() <= 64)
            .map(str::to_owned)
            .ok_or(OutboundError::Unexpected("call sid"))
    }

    /// Twilio: the sid of the conference in progress named `room`, if any.
    pub async fn twilio_conference(&self, room: &str) -> Result<Option<String>, OutboundError> {
        self.twilio_first(
            "Conferences.json",
            &[("FriendlyName", room), ("Status", "in-progress")],
            "conferences",
        )
        .await
    }

    /// Twilio: whether the conference `conference` closes when participant `leg` leaves it.
    pub async fn twilio_end_on_exit(
        &self,
        conference: &str,
        leg: &str,
        end: bool,
    ) -> Result<(), OutboundError> {
        let request = self
            .twilio_request(
                reqwest::Method::POST,
                &format!("Conferences/{conference}/Participants/{leg}.json"),
            )?
            .form(&[("EndConferenceOnExit", if end { "true" } else { "false" })]);
        check(request.send().await?).await
    }

    /// Twilio: removes participant `leg` from the conference `conference` (its call ends).
    pub async fn twilio_kick(&self, conference: &str, leg: &str) -> Result<(), OutboundError> {
        let request = self.twilio_request(
            reqwest::Method::DELETE,
            &format!("Conferences/{conference}/Participants/{leg}.json"),
        )?;
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
                let twiml = render_twiml(verbs);
                Ok(match action {
                    Action::Update { call_sid } => self
                        .twilio_request(reqwest::Method::POST, &format!("Calls/{call_sid}.json"))?
                        .form(&[("Twiml", twiml.as_str())]),
                    Action::Originate { to, from } => self
                        .twilio_request(reqwest::Method::POST, "Calls.json")?
                        .form(&[("To", to), ("From", from), ("Twiml", twiml.as_str())]),
                })
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

/// The largest JSON answer read from a gateway.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// The JSON body of a successful answer (at most [`MAX_ANSWER_BYTES`]).
async fn json_body(response: reqwest::Response) -> Result<serde_json::Value, OutboundError> {
    let status = response.status();
    if !status.is_success() {
        return check(response).await.map(|()| serde_json::Value::Null);
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
    {
        return Err(OutboundError::Unexpected("answer of a bounded size"));
    }
    let bytes = response.bytes().await?;
    if bytes.len() > MAX_ANSWER_BYTES {
        return Err(OutboundError::Unexpected("answer of a bounded size"));
    }
    serde_json::from_slice(&bytes).map_err(|_| OutboundError::Unexpected("JSON answer"))
}

/// The `sid` of the first element of the list `key` in a Twilio list answer.
fn first_sid(body: &serde_json::Value, key: &str) -> Option<String> {
    body.get(key)?
        .as_array()?
        .first()?
        .get("sid")?
        .as_str()
        .filter(|s| !s.is_empty() && s.len() <= 64)
        .map(str::to_owned)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
