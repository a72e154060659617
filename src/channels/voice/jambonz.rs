//! The jambonz-style gateway: JSON webhooks under `/voice/jambonz/{step}`, checked with the
//! `jambonz-signature` header (`t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">` with the
//! application's webhook secret), answered with a JSON array of verbs.
//!
//! Steps as for Twilio: `incoming` (the application's calling webhook), `input` (gather
//! `actionHook`; `reason: "timeout"` or no digits and no speech is no input), `continue`,
//! `dial`, `recording`, `status` (the call status webhook: `completed`, `failed`, `busy` and
//! `no-answer` end the call).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::Value;

use crate::ivr::{render_jambonz, Input};

use super::calls::{CallEvent, CallRequest, Calls, Recording};
use super::gateway::{unix_now, Gateway};
use super::sign::timestamped_valid;
use super::{answer_error, body_or_error, json_field, json_response, Refusal};

/// Final call statuses: the call is over.
pub const FINAL_STATUSES: &[&str] = &["completed", "failed", "busy", "no-answer"];

/// `POST /voice/jambonz/{step}`.
pub async fn webhook(
    State(calls): State<Calls>,
    Path(step): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let gateway = Gateway::Jambonz;
    let Some(config) = calls.config().jambonz.clone() else {
        return answer_error(gateway, Refusal::not_served(gateway));
    };
    let body = match body_or_error(gateway, body) {
        Ok(body) => body,
        Err(refusal) => return answer_error(gateway, refusal),
    };
    if config.verify_signature {
        let header = headers
            .get("jambonz-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if let Err(e) = timestamped_valid(&config.webhook_secret, header, &body, unix_now()) {
            return answer_error(gateway, Refusal::forbidden(gateway, e.to_string()));
        }
    }
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return answer_error(
                gateway,
                Refusal::bad_request(None, format!("the body is not JSON: {e}")),
            )
        }
    };
    let Some(sid) = json_field(&value, "call_sid").filter(|s| !s.is_empty()) else {
        return answer_error(gateway, Refusal::missing(None, "call_sid"));
    };
    let turn = uri.query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "t")
            .and_then(|(_, v)| v.parse().ok())
    });
    let event = match step.as_str() {
        "incoming" => match (json_field(&value, "from"), json_field(&value, "to")) {
            (Some(from), Some(to)) if !to.is_empty() => CallEvent::Incoming { from, to },
            _ => return answer_error(gateway, Refusal::missing(Some(&sid), "from or to")),
        },
        "input" => CallEvent::Input(input(&value)),
        "continue" => CallEvent::Continue,
        "dial" => CallEvent::DialEnded,
        "recording" => CallEvent::Recording(Recording {
            url: json_field(&value, "recording_url"),
            duration: json_field(&value, "recording_duration"),
            transcription: json_field(&value, "transcription"),
        }),
        "status" => {
            let status = json_field(&value, "call_status").unwrap_or_default();
            if !FINAL_STATUSES.contains(&status.as_str()) {
                return json_response(StatusCode::OK, Value::Array(Vec::new()));
            }
            CallEvent::Hangup
        }
        other => {
            return answer_error(
                gateway,
                Refusal {
                    status: StatusCode::NOT_FOUND,
                    message: format!("unknown webhook step {other:?}"),
                    call_sid: Some(sid),
                    spoken: false,
                },
            )
        }
    };
    let status_callback = step == "status";
    let request = CallRequest {
        sid: sid.clone(),
        turn,
        event,
        from: json_field(&value, "from"),
        to: json_field(&value, "to"),
    };
    match calls.handle(gateway, request).await {
        Ok(_) if status_callback => json_response(StatusCode::OK, Value::Array(Vec::new())),
        Ok((verbs, _)) => json_response(StatusCode::OK, render_jambonz(&verbs)),
        Err(e) => answer_error(gateway, Refusal::from_call(&sid, e)),
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
