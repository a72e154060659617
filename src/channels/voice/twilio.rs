//! The Twilio-style gateway: form-encoded webhooks under `/voice/twilio/{step}`, checked with
//! `X-Twilio-Signature`, answered with TwiML.
//!
//! The signed URL is the one the gateway used: `[server] public_url` (or `http://` +
//! `http_addr`) followed by the request's path and query. `AccountSid`, when sent, must be
//! the configured account's. Steps: `incoming` (the number's voice URL), `input` (gather
//! actions; `no_input=1` after a timeout), `continue` (redirects: queueing and the hold loop),
//! `dial` (the dial's action), `recording` (voicemail), `status` (the status callback URL:
//! `completed`, `busy`, `failed`, `no-answer` and `canceled` end the call).

use axum::http::StatusCode;
use axum::response::Response;

use crate::ivr::{Input, Verb};

use super::calls::{CallEvent, CallRequest, Calls, Recording};
use super::gateway::Gateway;
use super::{twiml_response, Parsed, Protocol, Refusal, Webhook};

/// Final call statuses: the call is over.
pub const FINAL_STATUSES: &[&str] = &["completed", "busy", "failed", "no-answer", "canceled"];

/// The Twilio-style protocol.
#[derive(Debug)]
pub struct Twilio;

impl Protocol for Twilio {
    const GATEWAY: Gateway = Gateway::Twilio;

    fn served(calls: &Calls) -> bool {
        calls.config().twilio.is_some()
    }

    fn parse(calls: &Calls, webhook: &Webhook) -> Result<Parsed, Refusal> {
        let gateway = Self::GATEWAY;
        let Some(config) = calls.config().twilio.as_ref() else {
            return Err(Refusal::not_served(gateway));
        };
        let uri = &webhook.uri;
        let params: Vec<(String, String)> =
            form_urlencoded::parse(&webhook.body).into_owned().collect();
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        if let (true, Some(signer)) = (config.verify_signature, calls.twilio_signer()) {
            let url = format!(
                "{}{}",
                calls.base(),
                uri.path_and_query().map_or(uri.path(), |p| p.as_str())
            );
            let signature = webhook
                .headers
                .get("x-twilio-signature")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if signature.is_empty() {
                return Err(Refusal::forbidden(
                    gateway,
                    "no X-Twilio-Signature header".into(),
                ));
            }
            if !signer.valid(&url, &params, signature) {
                return Err(Refusal::forbidden(
                    gateway,
                    format!("X-Twilio-Signature does not match {url} and its parameters"),
                ));
            }
        }
        if let Some(account) = get("AccountSid") {
            if account != config.account_sid {
                return Err(Refusal::forbidden(
                    gateway,
                    format!("unknown AccountSid {account}"),
                ));
            }
        }
        let Some(sid) = get("CallSid").filter(|s| !s.is_empty()) else {
            return Err(Refusal::missing(None, "CallSid"));
        };
        let sid = Refusal::checked_sid("CallSid", sid)?;
        let query: Vec<(String, String)> = uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let query_get = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let turn = query_get("t").and_then(|t| t.parse().ok());
        let event = match webhook.step.as_str() {
            "incoming" => match (get("From"), get("To")) {
                (Some(from), Some(to)) if !to.is_empty() => CallEvent::Incoming { from, to },
                _ => return Err(Refusal::missing(Some(&sid), "From or To")),
            },
            "input" => {
                let input = if query_get("no_input") == Some("1") {
                    Input::NoInput
                } else if let Some(d) = get("Digits").filter(|d| !d.is_empty()) {
                    Input::Digits(d)
                } else if let Some(s) = get("SpeechResult").filter(|s| !s.is_empty()) {
                    Input::Speech(s)
                } else {
                    Input::NoInput
                };
                CallEvent::Input(input)
            }
            "continue" => CallEvent::Continue,
            "dial" => CallEvent::DialEnded,
            "recording" => CallEvent::Recording(Recording {
                url: get("RecordingUrl"),
                duration: get("RecordingDuration"),
                transcription: get("TranscriptionText"),
                ..Recording::default()
            }),
            "status" => {
                let status = get("CallStatus").unwrap_or_default();
                if !FINAL_STATUSES.contains(&status.as_str()) {
                    return Ok(Parsed::Ignored);
                }
                CallEvent::Hangup
            }
            other => return Err(Refusal::unknown_step(sid, other)),
        };
        Ok(Parsed::Call {
            request: CallRequest {
                sid,
                turn,
                event,
                from: get("From"),
                to: get("To"),
            },
            status_callback: webhook.step == "status",
        })
    }

    fn render(_calls: &Calls, verbs: &[Verb], _sid: &str, _turn: u32) -> Response {
        twiml_response(StatusCode::OK, verbs)
    }

    fn acknowledge() -> Response {
        twiml_response(StatusCode::OK, &[])
    }
}
