//! Voicemail over jambonz: the WebSocket jambonz's `listen` verb streams the caller's audio to.
//!
//! jambonz has no record verb. A voicemail answer on jambonz is a `listen` whose `url` is
//! `ws(s)://{public_url}/voice/jambonz/listen/{call_sid}` ([`stream_url`]) with `wsAuth`
//! credentials ([`credentials`]): user [`USERNAME`] and a password of its own for each call,
//! HMAC-SHA256 of the call id under `[voice.jambonz] listen_secret` (the webhook secret when
//! unset). jambonz presents them as HTTP Basic authentication on the upgrade request; the
//! WebSocket itself is not signed.
//!
//! This file owns that route and its protocol (subprotocol [`SUBPROTOCOL`]):
//! 1. the upgrade: jambonz configured (else 404), a valid call id (400), the credentials
//!    (401, compared in constant time), a call of this gateway recording a voicemail (404; 409
//!    when its audio is already streaming), the subprotocol offered (400), a place among
//!    [`MAX_STREAMS`] streams (503);
//! 2. one text frame of JSON metadata within [`METADATA_WAIT`] (at most
//!    [`MAX_METADATA_BYTES`]): the call's attributes (`callSid`...) with `sampleRate` (one of
//!    [`SAMPLE_RATES`]) and `mixType` (`mono`); anything else closes the socket with 1008 and a
//!    reason saying what was wrong;
//! 3. binary frames of 16-bit little-endian linear PCM, kept up to the node's `max_length_secs`
//!    × sample rate × 2 bytes (and `[voice.jambonz] max_recording_bytes`): at the cap the socket
//!    is closed (1000, "maxLength reached"). Text frames after the metadata (DTMF events) are
//!    ignored. A socket silent for [`IDLE_WAIT`], or open [`OVERTIME`] past `max_length_secs`,
//!    is closed;
//! 4. when the socket ends, whatever the reason (jambonz closes it when `maxLength` is reached,
//!    on `finishOnKey`, or when the caller hangs up), the audio becomes a WAV file and the
//!    voicemail interaction is created with it ([`Calls::voicemail_audio`]): the file is kept in
//!    the store with the message, like an email's attachments, downloaded by the agent through
//!    the signed attachment link, and purged or erased with the interaction.

use std::time::{Duration, Instant};

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::ivr::StreamAuth;
use crate::listen::Gate;

use super::calls::{Calls, RecordedAudio};
use super::gateway::Gateway;

/// The WebSocket subprotocol jambonz asks for.
pub const SUBPROTOCOL: &str = "audio.jambonz.org";
/// The `wsAuth` user name.
pub const USERNAME: &str = "guichet";
/// The sample rates jambonz may announce (its `listen` verb's allowed values).
pub const SAMPLE_RATES: &[u32] = &[8_000, 16_000, 24_000, 48_000, 64_000];
/// Time allowed for the metadata frame after the upgrade.
pub const METADATA_WAIT: Duration = Duration::from_secs(10);
/// Longest silence (no frame at all) before the socket is closed.
pub const IDLE_WAIT: Duration = Duration::from_secs(20);
/// How long a socket may stay open past the node's `max_length_secs`.
pub const OVERTIME: Duration = Duration::from_secs(30);
/// The largest metadata frame.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// The largest frame of any kind (jambonz sends about 20 ms of audio per frame).
pub const MAX_FRAME_BYTES: usize = 256 * 1024;
/// Voicemail streams open at once, at most.
pub const MAX_STREAMS: usize = 256;

/// WebSocket close code: the peer broke the protocol.
const CLOSE_POLICY: u16 = 1008;

/// The `ws://` or `wss://` URL of call `sid`'s audio stream under `base` (the public HTTP URL).
pub fn stream_url(base: &str, sid: &str) -> String {
    let base = base.trim_end_matches('/');
    let ws_base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    };
    let sid: String = form_urlencoded::byte_serialize(sid.as_bytes()).collect();
    format!("{ws_base}/voice/jambonz/listen/{sid}")
}

fn mac(key: &[u8], sid: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(b"guichet jambonz listen\n");
    mac.update(sid.as_bytes());
    mac
}

/// The `wsAuth` credentials of call `sid`, derived from `key`.
pub fn credentials(key: &[u8], sid: &str) -> StreamAuth {
    let digest = mac(key, sid).finalize().into_bytes();
    StreamAuth {
        username: USERNAME.to_owned(),
        password: digest.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// Whether `authorization` (an HTTP `Authorization` header) carries call `sid`'s credentials;
/// the password is compared in constant time.
pub fn authorized(key: &[u8], sid: &str, authorization: Option<&str>) -> bool {
    let Some(encoded) = authorization
        .and_then(|h| h.trim().strip_prefix("Basic "))
        .map(str::trim)
    else {
        return false;
    };
    if encoded.len() > 512 {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return false;
    };
    let Some(colon) = decoded.iter().position(|&b| b == b':') else {
        return false;
    };
    let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
    let Some(digest) = unhex(password) else {
        return false;
    };
    let user_ok = user == USERNAME.as_bytes();
    mac(key, sid).verify_slice(&digest).is_ok() & user_ok
}

fn unhex(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    text.chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

/// What the metadata frame says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    /// Samples per second.
    pub sample_rate: u32,
}

/// Reads the metadata frame of call `sid`'s stream; `Err` says what is wrong, without echoing
/// the frame.
pub fn parse_metadata(text: &str, sid: &str) -> Result<Metadata, String> {
    if text.len() > MAX_METADATA_BYTES {
        return Err(format!(
            "the metadata frame is over {MAX_METADATA_BYTES} bytes"
        ));
    }
    let value: Value =
        serde_json::from_str(text).map_err(|_| "the metadata frame is not JSON".to_owned())?;
    let Some(object) = value.as_object() else {
        return Err("the metadata frame is not a JSON object".into());
    };
    let call = object
        .get("callSid")
        .or_else(|| object.get("call_sid"))
        .and_then(Value::as_str);
    if call.is_some_and(|c| c != sid) {
        return Err("callSid is not the call of this URL".into());
    }
    let rate = object
        .get("sampleRate")
        .and_then(Value::as_u64)
        .ok_or_else(|| "sampleRate is missing or not a number".to_owned())?;
    let Some(&sample_rate) = SAMPLE_RATES.iter().find(|&&r| u64::from(r) == rate) else {
        return Err("sampleRate must be 8000, 16000, 24000, 48000 or 64000".into());
    };
    match object.get("mixType").and_then(Value::as_str) {
        None | Some("mono") => {}
        Some(_) => return Err("mixType must be mono".into()),
    }
    Ok(Metadata { sample_rate })
}

/// The bytes of audio kept for a voicemail of at most `max_length_secs` at `sample_rate`, under
/// the absolute `max_bytes`; always whole samples.
pub fn cap_bytes(max_length_secs: u32, sample_rate: u32, max_bytes: usize) -> usize {
    let by_length = u64::from(max_length_secs) * u64::from(sample_rate) * 2;
    let cap = by_length.min(max_bytes as u64) as usize;
    cap & !1
}

/// A WAV file (RIFF, PCM, one channel, 16 bits) holding `pcm` (little-endian samples).
pub fn wav(pcm: &[u8], sample_rate: u32) -> Vec<u8> {
    let data_len = pcm.len() as u32;
    let mut out = Vec::with_capacity(44 + pcm.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVE");
    out.extend_from_slice(b"fmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // one channel
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&(sample_rate * 2).to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes()); // bytes per frame
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(pcm);
    out
}

/// The state of the route.
#[derive(Debug, Clone)]
pub struct ListenState {
    calls: Calls,
    gate: Gate,
}

impl ListenState {
    /// The route's state over `calls`.
    pub fn new(calls: Calls) -> ListenState {
        ListenState {
            calls,
            gate: Gate::new("http", "voicemail", MAX_STREAMS),
        }
    }
}

fn count(outcome: &'static str) {
    metrics::counter!(crate::obs::metrics::names::VOICEMAIL_STREAMS, "outcome" => outcome)
        .increment(1);
}

fn refuse(status: StatusCode, message: &str) -> Response {
    count("refused");
    tracing::warn!(
        gateway = "jambonz",
        status = status.as_u16(),
        "voicemail stream refused: {message}"
    );
    let mut response = (status, format!("{message}\n")).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"guichet voicemail\""),
        );
    }
    response
}

/// `GET /voice/jambonz/listen/{call_sid}`: checks the upgrade and serves the stream.
pub async fn upgrade(
    State(state): State<ListenState>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let calls = state.calls.clone();
    let Some(config) = calls.config().jambonz.as_ref() else {
        return refuse(
            StatusCode::NOT_FOUND,
            "the jambonz gateway is not configured: add a [voice.jambonz] section",
        );
    };
    if !crate::core::is_valid_id(&sid) {
        return refuse(
            StatusCode::BAD_REQUEST,
            &format!(
                "the call id must be 1 to {} letters, digits and . _ : @ + -",
                crate::core::MAX_ID_BYTES
            ),
        );
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !authorized(config.listen_key(), &sid, authorization) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "the wsAuth credentials of this call's listen verb are required",
        );
    }
    let offered = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL);
    let ws = match ws {
        Ok(ws) => ws,
        Err(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "this URL takes a WebSocket upgrade (GET with Upgrade: websocket)",
            )
        }
    };
    if !offered {
        return refuse(
            StatusCode::BAD_REQUEST,
            "the WebSocket subprotocol audio.jambonz.org is required",
        );
    }
    let Some(max_length_secs) = calls.listen_window(Gateway::Jambonz, &sid).await else {
        return refuse(
            StatusCode::NOT_FOUND,
            "no voicemail is being recorded on this call",
        );
    };
    let Some(stream) = calls.stream_started(Gateway::Jambonz, &sid) else {
        return refuse(
            StatusCode::CONFLICT,
            "this call's voicemail audio is already streaming",
        );
    };
    let Some(ticket) = state.gate.try_enter() else {
        count("refused");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5")],
            "too many voicemail streams: try again in a few seconds\n",
        )
            .into_response();
    };
    let max_bytes = config.max_recording_bytes;
    ws.protocols([SUBPROTOCOL])
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| async move {
            let audio = receive(socket, &sid, max_length_secs, max_bytes).await;
            if let Some(audio) = audio {
                match calls.voicemail_audio(Gateway::Jambonz, &sid, audio).await {
                    Ok(true) => {}
                    Ok(false) => {
                        count("unfiled");
                        tracing::warn!(
                            call_sid = %sid,
                            "voicemail audio arrived after its call moved on: not kept"
                        )
                    }
                    Err(e) => {
                        count("unfiled");
                        tracing::error!(call_sid = %sid, "voicemail not filed: {e}")
                    }
                }
            }
            drop(stream);
            drop(ticket);
        })
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.to_owned().into(),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        socket.send(WsMessage::Close(Some(frame))),
    )
    .await;
}

/// Reads one stream: the metadata, then audio until the socket ends or the cap; `None` when
/// the metadata was missing or wrong (nothing to keep).
async fn receive(
    mut socket: WebSocket,
    sid: &str,
    max_length_secs: u32,
    max_bytes: usize,
) -> Option<RecordedAudio> {
    let started = Instant::now();
    let first = tokio::time::timeout(METADATA_WAIT, socket.recv()).await;
    let metadata = match first {
        Ok(Some(Ok(WsMessage::Text(text)))) => parse_metadata(text.as_str(), sid),
        Ok(Some(Ok(_))) => Err("the first frame must be the JSON metadata (text)".to_owned()),
        Ok(_) => Err("the socket ended before the metadata".to_owned()),
        Err(_) => Err("no metadata frame in time".to_owned()),
    };
    let metadata = match metadata {
        Ok(m) => m,
        Err(why) => {
            count("bad_metadata");
            tracing::warn!(call_sid = %sid, "voicemail stream closed: {why}");
            close(&mut socket, CLOSE_POLICY, &why).await;
            return None;
        }
    };
    let cap = cap_bytes(max_length_secs, metadata.sample_rate, max_bytes);
    let deadline = started + Duration::from_secs(u64::from(max_length_secs)) + OVERTIME;
    let mut pcm: Vec<u8> = Vec::with_capacity(cap.min(1 << 20));
    let mut truncated = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            tracing::warn!(call_sid = %sid, "voicemail stream open past maxLength: closed");
            close(&mut socket, 1000, "maxLength passed").await;
            break;
        }
        let frame = match tokio::time::timeout(left.min(IDLE_WAIT), socket.recv()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(e))) => {
                tracing::warn!(call_sid = %sid, "voicemail stream broken: {e}");
                break;
            }
            Ok(None) => break,
            Err(_) if left <= IDLE_WAIT => continue,
            Err(_) => {
                tracing::warn!(call_sid = %sid, "voicemail stream silent: closed");
                close(&mut socket, 1000, "no audio").await;
                break;
            }
        };
        match frame {
            WsMessage::Binary(data) => {
                let room = cap - pcm.len();
                if data.len() >= room {
                    pcm.extend_from_slice(&data[..room]);
                    truncated = data.len() > room;
                    close(&mut socket, 1000, "maxLength reached").await;
                    break;
                }
                pcm.extend_from_slice(&data);
            }
            WsMessage::Close(_) => break,
            // DTMF events (passDtmf) and pings: nothing to keep.
            WsMessage::Text(_) | WsMessage::Ping(_) | WsMessage::Pong(_) => {}
        }
    }
    if pcm.len() % 2 == 1 {
        pcm.pop();
    }
    let samples = pcm.len() as u64 / 2;
    let duration_ms = samples * 1000 / u64::from(metadata.sample_rate);
    count("received");
    if truncated || pcm.len() >= cap {
        count("capped");
    }
    tracing::info!(
        call_sid = %sid, bytes = pcm.len(), duration_ms, truncated,
        "voicemail audio received"
    );
    Some(RecordedAudio {
        wav: wav(&pcm, metadata.sample_rate),
        sample_rate: metadata.sample_rate,
        duration_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_per_call_and_checked() {
        let auth = credentials(b"0123456789abcdef", "call-1");
        assert_eq!(auth.username, USERNAME);
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", auth.username, auth.password))
        );
        assert!(authorized(b"0123456789abcdef", "call-1", Some(&header)));
        assert!(!authorized(b"0123456789abcdef", "call-2", Some(&header)));
        assert!(!authorized(b"another key 0123", "call-1", Some(&header)));
        assert!(!authorized(b"0123456789abcdef", "call-1", None));
        assert!(!authorized(
            b"0123456789abcdef",
            "call-1",
            Some("Basic !!!")
        ));
        let other_user = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("root:{}", auth.password))
        );
        assert!(!authorized(
            b"0123456789abcdef",
            "call-1",
            Some(&other_user)
        ));
    }

    #[test]
    fn metadata_is_checked() {
        let ok = r#"{"callSid":"c1","sampleRate":8000,"mixType":"mono","from":"+331"}"#;
        assert_eq!(parse_metadata(ok, "c1"), Ok(Metadata { sample_rate: 8000 }));
        assert!(parse_metadata(ok, "c2").is_err());
        assert!(parse_metadata(r#"{"sampleRate":11025}"#, "c1").is_err());
        assert!(parse_metadata(r#"{"sampleRate":8000,"mixType":"stereo"}"#, "c1").is_err());
        assert!(parse_metadata("[]", "c1").is_err());
        assert!(parse_metadata("not json", "c1").is_err());
    }

    #[test]
    fn the_cap_is_max_length_times_rate_times_two() {
        assert_eq!(cap_bytes(60, 8_000, 10 << 20), 960_000);
        assert_eq!(cap_bytes(3_600, 64_000, 10 << 20), 10 << 20);
        assert_eq!(cap_bytes(1, 8_000, 1001), 1000);
    }

    #[test]
    fn wav_header_says_mono_16_bit() {
        let file = wav(&[1, 0, 2, 0], 8_000);
        assert_eq!(&file[..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(file[4..8].try_into().unwrap()), 40);
        assert_eq!(u32::from_le_bytes(file[24..28].try_into().unwrap()), 8_000);
        assert_eq!(&file[36..40], b"data");
        assert_eq!(&file[44..], &[1, 0, 2, 0]);
        assert_eq!(
            stream_url("https://g.example.org/", "c1"),
            "wss://g.example.org/voice/jambonz/listen/c1"
        );
        assert_eq!(
            stream_url("http://127.0.0.1:8080", "a+b"),
            "ws://127.0.0.1:8080/voice/jambonz/listen/a%2Bb"
        );
    }
}
