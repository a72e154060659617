//! The Twilio-style gateway: form-encoded webhooks under `/voice/twilio/{step}`, checked with
//! `X-Twilio-Signature`, answered with TwiML.
//!
//! The signed URL is the one the gateway used: `[server] public_url` (or `http://` +
//! `http_addr`) followed by the request's path and query. `AccountSid`, when sent, must be
//! the configured account's. Steps: `incoming` (the number's voice URL), `input` (gather
//! actions; `no_input=1` after a timeout), `continue` (redirects: queueing and the hold loop),
//! `dial` (the dial's action), `recording` (voicemail), `status` (the status callback URL:
//! `completed`, `busy`, `failed`, `no-answer` and `canceled` end the call).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use crate::ivr::Input;

use super::calls::{CallEvent, CallRequest, Calls, Recording};
use super::gateway::Gateway;
use super::sign::twilio_valid;
use super::{answer_error, body_or_error, twiml_response, Refusal};

/// Final call statuses: the call is over.
pub const FINAL_STATUSES: &[&str] = &["completed", "busy", "failed", "no-answer", "canceled"];

/// `POST /voice/twilio/{step}`.
pub async fn webhook(
    State(calls): State<Calls>,
    Path(step): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let gateway = Gateway::Twilio;
    let Some(config) = calls.config().twilio.clone() else {
        return answer_error(gateway, Refusal::not_served(gateway));
    };
    let body = match body_or_error(gateway, body) {
        Ok(body) => body,
        Err(refusal) => return answer_error(gateway, refusal),
    };
    let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if config.verify_signature {
        let url = format!(
            "{}{}",
            calls.base(),
            uri.path_and_query().map_or(uri.path(), |p| p.as_str())
        );
        let signature = headers
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if signature.is_empty() {
            return answer_error(
                gateway,
                Refusal::forbidden(gateway, "no X-Twilio-Signature header".into()),
            );
        }
        if !twilio_valid(&config.auth_token, &url, &params, signature) {
            return answer_error(
                gateway,
                Refusal::forbidden(
                    gateway,
                    format!("X-Twilio-Signature does not match {url} and its parameters"),
                ),
            );
        }
    }
    if let Some(account) = get("AccountSid") {
        if account != config.account_sid {
            return answer_error(
                gateway,
                Refusal::forbidden(gateway, format!("unknown AccountSid {account}")),
            );
        }
    }
    let Some(sid) = get("CallSid").filter(|s| !s.is_empty()) else {
        return answer_error(gateway, Refusal::missing(None, "CallSid"));
    };
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
    let event = match step.as_str() {
        "incoming" => match (get("From"), get("To")) {
            (Some(from), Some(to)) if !to.is_empty() => CallEvent::Incoming { from, to },
            _ => return answer_error(gateway, Refusal::missing(Some(&sid), "From or To")),
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
        }),
        "status" => {
            let status = get("CallStatus").unwrap_or_default();
            if !FINAL_STATUSES.contains(&status.as_str()) {
                return twiml_response(StatusCode::OK, &[]);
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
        from: get("From"),
        to: get("To"),
    };
    match calls.handle(gateway, request).await {
        Ok(_) if status_callback => twiml_response(StatusCode::OK, &[]),
        Ok((verbs, _)) => twiml_response(StatusCode::OK, &verbs),
        Err(e) => answer_error(gateway, Refusal::from_call(&sid, e)),
    }
}
