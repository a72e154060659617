//! The generic SIP-server event API (`POST /voice/sip/events`), for FreeSWITCH, Asterisk or
//! Kamailio scripts, and the JSON actions it answers with.
//!
//! Request: `Content-Type: application/json`, header `guichet-signature: t=<unix seconds>,
//! v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`, body:
//!
//! ```json
//! {"event": "call.incoming", "call_id": "abc", "from": "+33612345678", "to": "+33100000000"}
//! ```
//!
//! Events: `call.incoming` (`from`, `to` required; `headers` optional), `call.input` (`digits`,
//! or `speech`, or `"timeout": true`), `call.continue` (after a `continue` action; `call.poll`
//! is a synonym), `call.bridge_ended`, `call.recording` (`recording_url`), `call.hangup`
//! (`cause` optional). Every event after the first may echo `turn` from the last answer: an
//! event for an earlier turn is taken as a retry and gets the same answer again.
//!
//! Answer: `{"call_id": "abc", "turn": 3, "actions": [...]}`, actions in order:
//! `say` (`text`, `language`, `loop`), `play` (`url`, `loop`), `pause` (`secs`), `collect`
//! (`prompts`, `num_digits`, `finish_on_key`, `timeout_secs`, `speech`, `language`: play the
//! prompts while collecting, then send `call.input`), `continue` (send `call.continue`),
//! `bridge` (`targets`: `{"type": "phone", "number"}` or `{"type": "sip", "uri"}`, `caller_id`,
//! `timeout_secs`: send `call.bridge_ended` when it ends), `record` (`max_length_secs`, `beep`,
//! `finish_on_key`: send `call.recording`), `hangup`, `reject` (`status` 603 or 486).
//! `loop` 0 means until the next action is due.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::{json, Value};

use crate::ivr::{DialTarget, Input, RejectReason, Verb};

use super::calls::{CallEvent, CallRequest, Calls, Recording};
use super::gateway::{unix_now, Gateway};
use super::sign::timestamped_valid;
use super::{drive, json_field, json_response, Parsed, Protocol, Refusal, Webhook};

/// Renders verbs as SIP API actions.
pub fn render_sip(verbs: &[Verb]) -> Vec<Value> {
    verbs.iter().filter_map(action).collect()
}

fn action(verb: &Verb) -> Option<Value> {
    Some(match verb {
        Verb::Say {
            text,
            language,
            loop_count,
        } => json!({"action": "say", "text": text, "language": language, "loop": loop_count}),
        Verb::Play { url, loop_count } => json!({"action": "play", "url": url, "loop": loop_count}),
        Verb::Pause { secs } => json!({"action": "pause", "secs": secs}),
        Verb::Gather {
            num_digits,
            finish_on_key,
            timeout_secs,
            speech,
            language,
            prompts,
            ..
        } => json!({
            "action": "collect",
            "prompts": render_sip(prompts),
            "num_digits": num_digits,
            "finish_on_key": finish_on_key,
            "timeout_secs": timeout_secs,
            "speech": speech,
            "language": language,
        }),
        Verb::Redirect { .. } => json!({"action": "continue"}),
        Verb::Dial {
            targets,
            caller_id,
            timeout_secs,
            ..
        } => json!({
            "action": "bridge",
            "targets": targets.iter().map(|t| match t {
                DialTarget::Phone(n) => json!({"type": "phone", "number": n}),
                DialTarget::Sip(u) => json!({"type": "sip", "uri": u}),
            }).collect::<Vec<_>>(),
            "caller_id": caller_id,
            "timeout_secs": timeout_secs,
        }),
        Verb::Record {
            max_length_secs,
            play_beep,
            finish_on_key,
            ..
        } => json!({
            "action": "record",
            "max_length_secs": max_length_secs,
            "beep": play_beep,
            "finish_on_key": finish_on_key,
        }),
        // No conference action in the SIP API: calls on SIP servers are not warm-transferred.
        Verb::Conference { .. } => return None,
        Verb::Hangup => json!({"action": "hangup"}),
        Verb::Reject { reason } => json!({
            "action": "reject",
            "status": match reason { RejectReason::Rejected => 603, RejectReason::Busy => 486 },
        }),
    })
}

/// `POST /voice/sip/events`.
pub async fn events(
    State(calls): State<Calls>,
    uri: Uri,
    headers: HeaderMap,
    too_large: Option<axum::Extension<crate::http::body::BodyTooLarge>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = super::oversize(too_large, body);
    drive::<Sip>(calls, String::new(), uri, headers, body).await
}

/// The generic SIP-server event API.
#[derive(Debug)]
pub struct Sip;

impl Protocol for Sip {
    const GATEWAY: Gateway = Gateway::Sip;

    fn served(calls: &Calls) -> bool {
        calls.config().sip.is_some()
    }

    fn parse(calls: &Calls, webhook: &Webhook) -> Result<Parsed, Refusal> {
        let gateway = Self::GATEWAY;
        let Some(config) = calls.config().sip.as_ref() else {
            return Err(Refusal::not_served(gateway));
        };
        let header = webhook
            .headers
            .get("guichet-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if let Err(e) = timestamped_valid(&config.secret, header, &webhook.body, unix_now()) {
            return Err(Refusal::forbidden(gateway, e.to_string()));
        }
        let value: Value = serde_json::from_slice(&webhook.body)
            .map_err(|e| Refusal::bad_request(None, format!("the body is not JSON: {e}")))?;
        let Some(call_id) = json_field(&value, "call_id") else {
            return Err(Refusal::missing(None, "call_id"));
        };
        let call_id = Refusal::checked_sid("call_id", call_id)?;
        let event_name = json_field(&value, "event").unwrap_or_default();
        let event = match event_name.as_str() {
            "call.incoming" => {
                let (Some(from), Some(to)) = (json_field(&value, "from"), json_field(&value, "to"))
                else {
                    return Err(Refusal::missing(Some(&call_id), "from and to"));
                };
                CallEvent::Incoming { from, to }
            }
            "call.input" => {
                let timeout = value.get("timeout").and_then(Value::as_bool) == Some(true);
                let input = match (json_field(&value, "digits"), json_field(&value, "speech")) {
                    _ if timeout => Input::NoInput,
                    (Some(d), _) if !d.is_empty() => Input::Digits(d),
                    (_, Some(s)) if !s.is_empty() => Input::Speech(s),
                    _ => Input::NoInput,
                };
                CallEvent::Input(input)
            }
            "call.continue" | "call.poll" => CallEvent::Continue,
            "call.bridge_ended" => CallEvent::DialEnded,
            "call.recording" => CallEvent::Recording(Recording {
                url: json_field(&value, "recording_url"),
                duration: json_field(&value, "recording_duration"),
                transcription: json_field(&value, "transcription"),
                ..Recording::default()
            }),
            "call.hangup" => CallEvent::Hangup,
            other => {
                return Err(Refusal::bad_request(
                    Some(&call_id),
                    format!(
                        "unknown event {other:?}: use call.incoming, call.input, call.continue, \
                         call.bridge_ended, call.recording or call.hangup"
                    ),
                ))
            }
        };
        let turn = value
            .get("turn")
            .and_then(Value::as_u64)
            .and_then(|t| u32::try_from(t).ok());
        Ok(Parsed::Call {
            request: CallRequest {
                sid: call_id,
                turn,
                event,
                from: json_field(&value, "from"),
                to: json_field(&value, "to"),
            },
            status_callback: false,
        })
    }

    fn render(_calls: &Calls, verbs: &[Verb], sid: &str, turn: u32) -> Response {
        json_response(
            StatusCode::OK,
            json!({"call_id": sid, "turn": turn, "actions": render_sip(verbs)}),
        )
    }

    fn acknowledge() -> Response {
        json_response(StatusCode::OK, json!({"actions": []}))
    }
}
