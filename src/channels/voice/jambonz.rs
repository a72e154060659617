//! The jambonz-style gateway: JSON webhooks under `/voice/jambonz/{step}`, checked with the
//! `jambonz-signature` header (`t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">` with the
//! application's webhook secret), answered with a JSON array of verbs.
//!
//! Steps as for Twilio: `incoming` (the application's calling webhook), `input` (gather
//! `actionHook`; `reason: "timeout"` or no digits and no speech is no input), `continue`,
//! `dial`, `recording` (the `listen`'s actionHook), `transcription` (the voicemail's
//! `transcriptionHook`: final results are kept as its text), `status` (the call status webhook:
//! `completed`, `failed`, `busy` and `no-answer` end the call). The voicemail's audio arrives on
//! the WebSocket of [`super::listen`].

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use crate::ivr::{render_jambonz, render_jambonz_with, Input, Verb};

use super::calls::{CallEvent, CallRequest, Calls, Recording};
use super::gateway::{unix_now, Gateway};
use super::sign::timestamped_valid;
use super::{json_field, json_response, Parsed, Protocol, Refusal, Webhook};

/// Final call statuses: the call is over.
pub const FINAL_STATUSES: &[&str] = &["completed", "failed", "busy", "no-answer"];

/// The jambonz-style protocol.
#[derive(Debug)]
pub struct Jambonz;

impl Protocol for Jambonz {
    const GATEWAY: Gateway = Gateway::Jambonz;

    fn served(calls: &Calls) -> bool {
        calls.config().jambonz.is_some()
    }

    fn parse(calls: &Calls, webhook: &Webhook) -> Result<Parsed, Refusal> {
        let gateway = Self::GATEWAY;
        let Some(config) = calls.config().jambonz.as_ref() else {
            return Err(Refusal::not_served(gateway));
        };
        if config.verify_signature {
            let header = webhook
                .headers
                .get("jambonz-signature")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if let Err(e) =
                timestamped_valid(&config.webhook_secret, header, &webhook.body, unix_now())
            {
                return Err(Refusal::forbidden(gateway, e.to_string()));
            }
        }
        let value: Value = serde_json::from_slice(&webhook.body)
            .map_err(|e| Refusal::bad_request(None, format!("the body is not JSON: {e}")))?;
        let Some(sid) = json_field(&value, "call_sid").filter(|s| !s.is_empty()) else {
            return Err(Refusal::missing(None, "call_sid"));
        };
        let sid = Refusal::checked_sid("call_sid", sid)?;
        let turn = webhook.uri.query().and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "t")
                .and_then(|(_, v)| v.parse().ok())
        });
        let event = match webhook.step.as_str() {
            "incoming" => match (json_field(&value, "from"), json_field(&value, "to")) {
                (Some(from), Some(to)) if !to.is_empty() => CallEvent::Incoming { from, to },
                _ => return Err(Refusal::missing(Some(&sid), "from or to")),
            },
            "input" => CallEvent::Input(input(&value)),
            "continue" => CallEvent::Continue,
            "dial" => CallEvent::DialEnded,
            "recording" => CallEvent::Recording(Recording {
                url: json_field(&value, "recording_url"),
                duration: json_field(&value, "recording_duration"),
                transcription: json_field(&value, "transcription"),
                ..Recording::default()
            }),
            "transcription" => {
                // jambonz's transcriptionHook: `speech` as a recognizer result.
                let speech = value.get("speech");
                let is_final = speech
                    .and_then(|s| s.get("is_final"))
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                let text = speech
                    .and_then(|s| s.pointer("/alternatives/0/transcript"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !is_final || text.trim().is_empty() {
                    return Ok(Parsed::Ignored);
                }
                CallEvent::Transcript(text.to_owned())
            }
            "status" => {
                let status = json_field(&value, "call_status").unwrap_or_default();
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
                from: json_field(&value, "from"),
                to: json_field(&value, "to"),
            },
            status_callback: matches!(webhook.step.as_str(), "status" | "transcription"),
        })
    }

    fn render(calls: &Calls, verbs: &[Verb], _sid: &str, _turn: u32) -> Response {
        let speech = calls.config().jambonz.as_ref().map(|j| &j.speech);
        let answer = match speech {
            Some(speech) => render_jambonz_with(verbs, speech),
            None => render_jambonz(verbs),
        };
        json_response(StatusCode::OK, answer)
    }

    fn acknowledge() -> Response {
        json_response(StatusCode::OK, Value::Array(Vec::new()))
    }
}

/// The caller's answer in a gather's action hook.
fn input(value: &Value) -> Input {
    if json_field(value, "reason").as_deref() == Some("timeout") {
        return Input::NoInput;
    }
    if let Some(digits) = json_field(value, "digits").filter(|d| !d.is_empty()) {
        return Input::Digits(digits);
    }
    let speech = match value.get("speech") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(object) => object
            .pointer("/alternatives/0/transcript")
            .and_then(Value::as_str)
            .map(str::to_owned),
        None => None,
    };
    match speech.filter(|s| !s.trim().is_empty()) {
        Some(s) => Input::Speech(s),
        None => Input::NoInput,
    }
}
