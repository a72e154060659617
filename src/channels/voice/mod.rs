//! The phone channel: telephony gateways push calls as webhooks, Guichet answers with
//! call-control instructions, runs the IVR, queues the call and bridges it to the agent the
//! router chose.
//!
//! Layout:
//! - [`config`]: the `[voice]` section;
//! - [`sign`]: webhook signatures (Twilio, and the `t=...,v1=...` HMAC-SHA256 scheme);
//! - [`trees`]: the live IVR trees, kept in step with the store ([`IvrTrees`]);
//! - [`calls`]: calls in progress and what each request means for them ([`Calls`]);
//! - [`conference`]: warm transfer of a call through a Twilio conference room;
//! - [`persist`]: write-behind of the calls still in the IVR, so that they survive a restart;
//! - [`gateway`]: which gateway a call speaks, URLs, and outbound REST requests;
//! - [`twilio`], [`jambonz`], [`sip`]: the three protocol adapters, each a [`Protocol`] (check
//!   the signature and parse, render); [`drive`] serves a webhook the same way for all three;
//! - [`listen`]: the WebSocket jambonz streams a voicemail's audio to.
//!
//! Routes: `/voice/twilio/{step}`, `/voice/jambonz/{step}` with `step` one of `incoming`,
//! `input`, `continue`, `dial`, `recording`, `status`; `GET /voice/jambonz/listen/{call_sid}`
//! (WebSocket); `/voice/sip/events`. A gateway without a configuration section answers 404.
//!
//! Refusals (see [`Refusal`]): a bad signature gets 403; a missing field 400; an unknown number
//! or call 404; a body over `[limits] webhook_body_bytes` 413; an overloaded router 503. Where the
//! protocol allows, the answer also carries a spoken apology and a hang-up; every refusal is
//! logged, and none creates anything.

pub mod calls;
pub mod conference;
pub mod config;
pub mod gateway;
pub mod jambonz;
pub mod listen;
pub mod persist;
pub mod sign;
pub mod sip;
pub mod trees;
pub mod twilio;

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::engine::{Clock, Engine, SystemClock};
use crate::ivr::{render_jambonz, render_jambonz_with, render_twiml, Verb};

pub use calls::{CallError, CallEvent, CallRequest, Calls};
pub use config::VoiceConfig;
pub use gateway::Gateway;
pub use trees::{IvrTrees, QueueRemoval, Stored, StoredVersion, TreeError};

/// The running phone channel.
#[derive(Debug, Clone)]
pub struct VoiceChannel {
    /// The calls in progress.
    pub calls: Calls,
    /// The live IVR trees (shared with the supervisors' gRPC service).
    pub trees: IvrTrees,
}

impl VoiceChannel {
    /// Loads the IVR trees (seeding them from `[[voice.trees]]` on first start), and starts
    /// following the engine's events (bridging accepted calls) and forgetting ended calls.
    /// `public_base` is the HTTP listener's URL as gateways see it (no trailing slash).
    pub async fn start(
        engine: &Engine,
        voice: &VoiceConfig,
        public_base: String,
    ) -> Result<VoiceChannel, TreeError> {
        let trees = IvrTrees::load(engine, voice, SystemClock.now()).await?;
        let sessions = crate::store::VoiceSessions::open(engine.store())?;
        let sessions =
            persist::SessionLog::start(sessions, Duration::from_millis(voice.persist_window_ms));
        let calls = Calls::new(
            engine.clone(),
            voice.clone(),
            public_base,
            trees.clone(),
            sessions,
        );
        tokio::spawn(calls.clone().follow_events());
        let sweeper = calls.clone();
        let stopped = engine.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(30));
            let mut ticks: u64 = 0;
            while !stopped.is_stopped() {
                every.tick().await;
                sweeper.sweep();
                // Saved IVR states nobody came back for: at start, then every hour.
                if ticks % 120 == 0 {
                    let sessions = sweeper.sessions().clone();
                    let _ = tokio::task::spawn_blocking(move || sessions.sweep()).await;
                }
                ticks += 1;
            }
        });
        Ok(VoiceChannel { calls, trees })
    }

    /// Writes the state of the calls in the IVR that is still pending (graceful shutdown, after
    /// the HTTP listener stopped), so that they carry on after the restart.
    pub async fn shutdown(&self) {
        let sessions = self.calls.sessions().clone();
        if let Err(e) = tokio::task::spawn_blocking(move || sessions.flush()).await {
            tracing::error!("voice sessions not flushed at shutdown: {e}");
        }
    }

    /// The webhook routes of every gateway.
    pub fn routes(&self) -> Router {
        Router::new()
            .route("/voice/twilio/{step}", post(webhook::<twilio::Twilio>))
            .route("/voice/jambonz/{step}", post(webhook::<jambonz::Jambonz>))
            .route("/voice/sip/events", post(sip::events))
            .with_state(self.calls.clone())
            .merge(
                Router::new()
                    .route("/voice/jambonz/listen/{sid}", get(listen::upgrade))
                    .with_state(listen::ListenState::new(self.calls.clone())),
            )
    }
}

/// The longest call id a gateway may send (Twilio's are 34 characters, jambonz's UUIDs 36).
pub const MAX_CALL_ID_BYTES: usize = 128;

/// A webhook as it reached the HTTP listener.
#[derive(Debug)]
pub struct Webhook {
    /// The path's step (`incoming`, `input`...; empty for the generic SIP API's one route).
    pub step: String,
    /// The request's URI (signatures, `?t=` turns).
    pub uri: Uri,
    /// Its headers (signatures).
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
}

/// What a protocol adapter made of a webhook.
#[derive(Debug)]
pub enum Parsed {
    /// A request about a call; `status_callback` when the answer is an empty acknowledgement.
    Call {
        /// The request.
        request: CallRequest,
        /// Whether the gateway only reports (status callbacks): the answer is then empty.
        status_callback: bool,
    },
    /// A status callback that changes nothing (ringing, in progress): acknowledged.
    Ignored,
}

/// One gateway protocol: how its webhooks are checked and parsed, and how answers are
/// written. [`drive`] does the rest, the same for every protocol.
pub trait Protocol {
    /// The gateway.
    const GATEWAY: Gateway;

    /// Whether its `[voice.*]` section is configured.
    fn served(calls: &Calls) -> bool;

    /// Checks the signature and turns the webhook into a request.
    fn parse(calls: &Calls, webhook: &Webhook) -> Result<Parsed, Refusal>;

    /// The answer to a request of call `sid`: `verbs` for turn `turn`.
    fn render(calls: &Calls, verbs: &[Verb], sid: &str, turn: u32) -> Response;

    /// The empty answer to a status callback.
    fn acknowledge() -> Response;
}

/// `POST /voice/twilio/{step}` and `POST /voice/jambonz/{step}`: a webhook of protocol `P`
/// whose URL names the step.
pub async fn webhook<P: Protocol>(
    State(calls): State<Calls>,
    Path(step): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    too_large: Option<axum::Extension<crate::http::body::BodyTooLarge>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = oversize(too_large, body);
    drive::<P>(calls, step, uri, headers, body).await
}

/// Serves one webhook of protocol `P`: configuration, body, signature and parsing, the call
/// table, then the answer (or the refusal, logged, in the protocol's format).
pub async fn drive<P: Protocol>(
    calls: Calls,
    step: String,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, Option<BytesRejection>>,
) -> Response {
    let gateway = P::GATEWAY;
    if !P::served(&calls) {
        return answer_error(&calls, gateway, Refusal::not_served(gateway));
    }
    let body = match body_or_error(gateway, body) {
        Ok(body) => body,
        Err(refusal) => return answer_error(&calls, gateway, refusal),
    };
    let webhook = Webhook {
        step,
        uri,
        headers,
        body,
    };
    let (request, status_callback) = match P::parse(&calls, &webhook) {
        Ok(Parsed::Call {
            request,
            status_callback,
        }) => (request, status_callback),
        Ok(Parsed::Ignored) => return P::acknowledge(),
        Err(refusal) => return answer_error(&calls, gateway, refusal),
    };
    // Call ids become keys and journal references: bounded, printable, no spaces.
    if request.sid.len() > MAX_CALL_ID_BYTES || !request.sid.bytes().all(|b| b.is_ascii_graphic()) {
        return answer_error(
            &calls,
            gateway,
            Refusal::bad_request(
                None,
                format!(
                    "the call id must be at most {MAX_CALL_ID_BYTES} printable ASCII characters \
                     without spaces"
                ),
            ),
        );
    }
    let sid = request.sid.clone();
    match calls.handle(gateway, request).await {
        Ok(_) if status_callback => P::acknowledge(),
        Ok((verbs, turn)) => P::render(&calls, &verbs, &sid, turn),
        Err(e) => answer_error(&calls, gateway, Refusal::from_call(&sid, e)),
    }
}

/// A request turned down: the status, what to fix, and whether to speak an apology.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    message: String,
    call_sid: Option<String>,
    spoken: bool,
}

impl Refusal {
    fn not_served(gateway: Gateway) -> Refusal {
        Refusal {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "the {} gateway is not configured: add a [voice.{}] section",
                gateway.name(),
                gateway.name()
            ),
            call_sid: None,
            spoken: false,
        }
    }

    fn forbidden(gateway: Gateway, why: String) -> Refusal {
        Refusal {
            status: StatusCode::FORBIDDEN,
            message: format!("{} webhook refused: {why}", gateway.name()),
            call_sid: None,
            spoken: false,
        }
    }

    fn bad_request(call_sid: Option<&str>, message: String) -> Refusal {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            message,
            call_sid: call_sid.map(str::to_owned),
            spoken: true,
        }
    }

    /// `sid` as the call's id, if it is one (else the refusal names `field`, not the value).
    fn checked_sid(field: &str, sid: String) -> Result<String, Refusal> {
        if crate::core::is_valid_id(&sid) {
            Ok(sid)
        } else {
            Err(Refusal::bad_request(
                None,
                format!(
                    "{field} must be 1 to {} letters, digits and . _ : @ + -",
                    crate::core::MAX_ID_BYTES
                ),
            ))
        }
    }

    fn missing(call_sid: Option<&str>, field: &str) -> Refusal {
        Refusal::bad_request(call_sid, format!("missing field {field}"))
    }

    fn unknown_step(call_sid: String, step: &str) -> Refusal {
        Refusal {
            status: StatusCode::NOT_FOUND,
            message: format!("unknown webhook step {step:?}"),
            call_sid: Some(call_sid),
            spoken: false,
        }
    }

    fn from_call(call_sid: &str, error: CallError) -> Refusal {
        let status = match &error {
            CallError::UnknownNumber(_) | CallError::UnknownCall(_) => StatusCode::NOT_FOUND,
            CallError::TooManyCalls | CallError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            CallError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
        };
        Refusal {
            status,
            message: error.to_string(),
            call_sid: Some(call_sid.to_owned()),
            spoken: true,
        }
    }
}

/// The response to a refused request, in the gateway's format, logged.
fn answer_error(calls: &Calls, gateway: Gateway, refusal: Refusal) -> Response {
    let sid = refusal.call_sid.as_deref().unwrap_or("-");
    if refusal.status.is_server_error() {
        tracing::error!(
            gateway = gateway.name(),
            call_sid = sid,
            status = refusal.status.as_u16(),
            "{}",
            refusal.message
        );
    } else {
        tracing::warn!(
            gateway = gateway.name(),
            call_sid = sid,
            status = refusal.status.as_u16(),
            "{}",
            refusal.message
        );
    }
    if !refusal.spoken {
        return (refusal.status, format!("{}\n", refusal.message)).into_response();
    }
    let verbs = calls::fallback_verbs();
    match gateway {
        Gateway::Twilio => {
            let mut response = twiml_response(refusal.status, &verbs);
            if let Ok(v) = refusal.message.parse() {
                response.headers_mut().insert("x-guichet-error", v);
            }
            response
        }
        Gateway::Jambonz => {
            let speech = calls.config().jambonz.as_ref().map(|j| &j.speech);
            let verbs = match speech {
                Some(speech) => render_jambonz_with(&verbs, speech),
                None => render_jambonz(&verbs),
            };
            let mut response = json_response(refusal.status, verbs);
            if let Ok(v) = refusal.message.parse() {
                response.headers_mut().insert("x-guichet-error", v);
            }
            response
        }
        Gateway::Sip => json_response(
            refusal.status,
            json!({"error": refusal.message, "actions": sip::render_sip(&verbs)}),
        ),
    }
}

/// The body as extracted, or the HTTP layer's verdict that it was over the webhook limit.
pub fn oversize(
    too_large: Option<axum::Extension<crate::http::body::BodyTooLarge>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, Option<BytesRejection>> {
    match too_large {
        Some(_) => Err(None),
        None => body.map_err(Some),
    }
}

/// The body, or the refusal for an unreadable or oversized one.
fn body_or_error(
    gateway: Gateway,
    body: Result<Bytes, Option<BytesRejection>>,
) -> Result<Bytes, Refusal> {
    body.map_err(|rejection| {
        let Some(rejection) = rejection else {
            return Refusal {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                message: format!(
                    "{} webhook body over the size limit ([limits] webhook_body_bytes)",
                    gateway.name()
                ),
                call_sid: None,
                spoken: true,
            };
        };
        let status = rejection.status();
        Refusal {
            status,
            message: if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!(
                    "{} webhook body over the size limit ([server] max_body_bytes)",
                    gateway.name()
                )
            } else {
                format!("{} webhook body unreadable: {rejection}", gateway.name())
            },
            call_sid: None,
            spoken: true,
        }
    })
}

/// A string field of a JSON object (numbers are accepted and written as text).
fn json_field(value: &Value, name: &str) -> Option<String> {
    match value.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn json_response(status: StatusCode, value: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn twiml_response(status: StatusCode, verbs: &[Verb]) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        render_twiml(verbs),
    )
        .into_response()
}
