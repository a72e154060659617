//! The chat's HTTP side: the visitor's WebSocket (`GET /chat/ws`: origin check, the maximum
//! of sockets, frame limits, protocol parsing, one reader/writer loop per socket) and the
//! widget's page and script.
//!
//! A socket must send `start` (or `resume`) within `[limits] ws_start_timeout_secs`; the
//! server pings every `[limits] ws_ping_secs` and closes a socket that has not answered the
//! previous ping (a silent citizen's browser answers pings by itself). A visitor too slow to
//! read (frames piling up, or a write blocked for [`SLOW_WRITE`]) is told `too_slow` and
//! disconnected; the chat stays open for the grace period and `resume` picks it up again.

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::mpsc;

use super::hub::{ChatHub, Outgoing, Refusal, StartRequest};
use super::protocol::{ClientFrame, ServerFrame};

/// WebSocket close code: the frame broke the protocol.
const CLOSE_POLICY: u16 = 1008;
/// WebSocket close code: the frame was too big.
const CLOSE_TOO_BIG: u16 = 1009;
/// WebSocket close code: try again later (too slow, or the server is at its maximum).
const CLOSE_TRY_LATER: u16 = 1013;
/// Frames queued for one socket at most (the hub drops beyond: the socket leaves first).
const OUTBOX: usize = 256;
/// Queued frames at which the visitor counts as too slow to read.
const SLOW_QUEUE: usize = OUTBOX * 3 / 4;
/// How long one write to the visitor may take before the visitor counts as too slow.
pub const SLOW_WRITE: Duration = Duration::from_secs(10);

/// The limits of the chat's sockets (from `[limits]`), shared by every socket.
#[derive(Debug, Clone)]
pub struct SocketLimits {
    /// The maximum of sockets open at once.
    pub gate: crate::listen::Gate,
    /// Time to send `start` or `resume`.
    pub start_timeout: Duration,
    /// Time between the server's pings.
    pub ping_every: Duration,
}

impl SocketLimits {
    /// The limits of `[limits]`, with at most `max` sockets.
    pub fn new(limits: &crate::listen::LimitsConfig, max: usize) -> SocketLimits {
        SocketLimits {
            gate: crate::listen::Gate::new("http", "websocket", max),
            start_timeout: Duration::from_secs(limits.ws_start_timeout_secs),
            ping_every: Duration::from_secs(limits.ws_ping_secs),
        }
    }
}

fn count_timeout(reason: &'static str) {
    metrics::counter!(
        crate::obs::metrics::names::CONNECTION_TIMEOUTS,
        "listener" => "http",
        "reason" => reason
    )
    .increment(1);
}

/// The script that embeds the widget in an iframe.
const WIDGET_JS: &str = include_str!("widget.js");

pub(super) fn routes(hub: ChatHub, limits: SocketLimits) -> Router {
    Router::new()
        .route("/chat/ws", get(upgrade))
        .route("/chat/widget", get(super::page::widget))
        .route(
            "/chat/message",
            axum::routing::post(super::page::leave_message),
        )
        .route("/chat/widget.js", get(widget_js))
        .layer(axum::Extension(limits))
        .with_state(hub)
}

/// `GET /chat/widget.js`: adds the widget to a page in an iframe.
async fn widget_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        WIDGET_JS,
    )
        .into_response()
}

/// `GET /chat/ws`: checks the page's origin and upgrades.
async fn upgrade(
    State(hub): State<ChatHub>,
    axum::Extension(limits): axum::Extension<SocketLimits>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        if !hub.origin_allowed(origin, host) {
            tracing::warn!(origin, "chat socket refused: origin not allowed");
            hub.refused(Refusal::Origin);
            return (
                StatusCode::FORBIDDEN,
                format!(
                    "origin {origin:?} may not open the chat: add it to [chat] allowed_origins\n"
                ),
            )
                .into_response();
        }
    }
    let Some(ticket) = limits.gate.try_enter() else {
        tracing::warn!("chat socket refused: {} sockets open", limits.gate.max());
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5")],
            "too many chat connections: try again in a few seconds\n",
        )
            .into_response();
    };
    let limit = hub.config().max_frame_bytes;
    // Frames a little over the limit are read and refused with a clear error frame; beyond
    // this hard limit the WebSocket library stops reading them at once.
    let hard = limit.saturating_mul(4).max(limit + 64 * 1024);
    ws.max_message_size(hard)
        .max_frame_size(hard)
        .on_upgrade(move |socket| async move {
            serve(hub, socket, &limits).await;
            drop(ticket);
        })
}

/// What the loop does after a frame.
enum Next {
    Continue,
    /// Send this error frame, then close with this code.
    Refuse(ServerFrame, u16, &'static str),
}

/// Sends one message, within [`SLOW_WRITE`]: `false` if the socket is gone or too slow.
async fn send_bounded(socket: &mut WebSocket, message: WsMessage) -> Result<(), bool> {
    match tokio::time::timeout(SLOW_WRITE, socket.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(false),
        Err(_) => Err(true),
    }
}

fn too_slow() -> Next {
    Next::Refuse(
        ServerFrame::error(
            "too_slow",
            "this connection does not read fast enough: reconnect and send resume to carry on",
        ),
        CLOSE_TRY_LATER,
        "too slow to read",
    )
}

/// One visitor's socket: reads frames, hands them to the hub, writes what the hub sends.
async fn serve(hub: ChatHub, mut socket: WebSocket, limits: &SocketLimits) {
    let conn = hub.next_conn();
    let (tx, mut rx) = mpsc::channel::<Outgoing>(OUTBOX);
    let limit = hub.config().max_frame_bytes;
    let mut session: Option<String> = None;
    let mut ended = false;
    let start_deadline = tokio::time::sleep(limits.start_timeout);
    tokio::pin!(start_deadline);
    let mut pings = tokio::time::interval_at(
        tokio::time::Instant::now() + limits.ping_every,
        limits.ping_every,
    );
    let mut awaiting_pong = false;
    loop {
        let next = tokio::select! {
            () = &mut start_deadline, if session.is_none() => {
                count_timeout("start");
                Next::Refuse(
                    ServerFrame::error("start_timeout", format!(
                        "send start or resume within {} seconds of connecting",
                        limits.start_timeout.as_secs()
                    )),
                    CLOSE_POLICY,
                    "no start",
                )
            }
            _ = pings.tick() => {
                if awaiting_pong {
                    count_timeout("pong");
                    tracing::info!(session = ?session, "chat socket closed: no answer to ping");
                    break;
                }
                awaiting_pong = true;
                match send_bounded(&mut socket, WsMessage::Ping(Vec::new().into())).await {
                    Ok(()) => Next::Continue,
                    Err(true) => too_slow(),
                    Err(false) => break,
                }
            }
            out = rx.recv() => match out {
                Some(Outgoing::Frame(frame)) => {
                    if matches!(frame, ServerFrame::Ended { .. }) {
                        ended = true;
                    }
                    if !ended && rx.len() >= SLOW_QUEUE {
                        too_slow()
                    } else {
                        match send_bounded(
                            &mut socket,
                            WsMessage::Text(frame.to_json().into()),
                        ).await {
                            Ok(()) => Next::Continue,
                            Err(true) => too_slow(),
                            Err(false) => break,
                        }
                    }
                }
                Some(Outgoing::Close(code, reason)) => {
                    close(&mut socket, code, reason).await;
                    break;
                }
                None => break,
            },
            incoming = socket.recv() => match incoming {
                None | Some(Ok(WsMessage::Close(_))) => break,
                // The library refuses frames over the hard limit ("Space limit exceeded:
                // Message too long"); any other read error is a lost connection.
                Some(Err(e)) if e.to_string().contains("too long") => Next::Refuse(
                    ServerFrame::error("too_big", format!(
                        "frame refused ({e}): frames may have at most {limit} bytes"
                    )),
                    CLOSE_TOO_BIG,
                    "frame too big",
                ),
                Some(Err(e)) => {
                    tracing::info!(session = ?session, "chat socket lost: {e}");
                    break;
                }
                Some(Ok(WsMessage::Text(text))) if text.len() > limit => Next::Refuse(
                    ServerFrame::error("too_big", format!(
                        "a frame of {} bytes is over the limit of {limit} bytes: send shorter \
                         messages",
                        text.len()
                    )),
                    CLOSE_TOO_BIG,
                    "frame too big",
                ),
                Some(Ok(WsMessage::Text(text))) => {
                    match serde_json::from_str::<ClientFrame>(text.as_str()) {
                        Ok(frame) => {
                            handle(&hub, conn, &tx, &mut session, &mut ended, frame).await
                        }
                        Err(e) => Next::Refuse(
                            ServerFrame::error("bad_frame", format!(
                                "not a chat frame ({e}): send JSON objects with a \"type\" of \
                                 start, resume, message, typing, transcript or end"
                            )),
                            CLOSE_POLICY,
                            "not the chat protocol",
                        ),
                    }
                }
                Some(Ok(WsMessage::Binary(data))) => Next::Refuse(
                    ServerFrame::error("bad_frame", format!(
                        "binary frames ({} bytes) are not part of the chat protocol: send JSON \
                         text frames",
                        data.len()
                    )),
                    if data.len() > limit { CLOSE_TOO_BIG } else { CLOSE_POLICY },
                    "not the chat protocol",
                ),
                Some(Ok(WsMessage::Pong(_))) => {
                    awaiting_pong = false;
                    Next::Continue
                }
                // Pings are answered by the library.
                Some(Ok(_)) => Next::Continue,
            },
        };
        if let Next::Refuse(frame, code, reason) = next {
            if let ServerFrame::Error { code: c, text } = &frame {
                tracing::warn!(session = ?session, code = %c, "chat frame refused: {text}");
                match c.as_str() {
                    "too_slow" => tracing::warn!(
                        session = ?session,
                        "chat visitor too slow to read: disconnected, the chat can be resumed"
                    ),
                    "too_big" => hub.refused(Refusal::TooBig),
                    "bad_frame" => hub.refused(Refusal::BadFrame),
                    _ => {}
                }
            }
            let _ = tokio::time::timeout(SLOW_WRITE, async {
                let _ = socket.send(WsMessage::Text(frame.to_json().into())).await;
                close(&mut socket, code, reason).await;
            })
            .await;
            break;
        }
    }
    if let Some(session) = session {
        if !ended {
            hub.disconnected(&session, conn);
        }
    }
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let _ = socket
        .send(WsMessage::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

/// Hands one frame to the hub; a refusal that keeps the socket open is sent as an error frame.
async fn handle(
    hub: &ChatHub,
    conn: u64,
    tx: &mpsc::Sender<Outgoing>,
    session: &mut Option<String>,
    ended: &mut bool,
    frame: ClientFrame,
) -> Next {
    let result = match (&*session, frame) {
        (
            None,
            ClientFrame::Start {
                name,
                email,
                queue,
                topic,
                language,
            },
        ) => {
            let request = StartRequest {
                name,
                email,
                queue,
                topic,
                language,
            };
            hub.open(conn, tx.clone(), request)
                .await
                .map(|s| *session = Some(s))
        }
        (
            None,
            ClientFrame::Resume {
                session: s,
                token,
                after,
            },
        ) => {
            match hub
                .resume(conn, tx.clone(), &s, &token, after.unwrap_or(0))
                .await
            {
                Ok(s) => {
                    *session = Some(s);
                    Ok(())
                }
                Err(frame) => return Next::Refuse(frame, CLOSE_POLICY, "unknown session"),
            }
        }
        (Some(_), ClientFrame::Start { .. } | ClientFrame::Resume { .. }) => Err(
            ServerFrame::error("bad_request", "this socket already has a chat"),
        ),
        (None, _) => Err(ServerFrame::error(
            "not_started",
            "send start (or resume) first",
        )),
        (Some(s), ClientFrame::Message { text, client_id }) => {
            hub.message(s, conn, text, client_id).await
        }
        (Some(s), ClientFrame::Typing { typing }) => {
            hub.typing(s, typing);
            Ok(())
        }
        (Some(s), ClientFrame::Transcript { email }) => hub.request_transcript(s, &email),
        (Some(s), ClientFrame::End) => {
            let r = hub.end(s, conn).await;
            if r.is_ok() {
                *ended = true;
            }
            r
        }
    };
    if let Err(frame) = result {
        if let ServerFrame::Error { code, .. } = &frame {
            if code == "replaced" || code == "unknown_session" {
                return Next::Refuse(frame, CLOSE_POLICY, "chat no longer here");
            }
        }
        let _ = tx.try_send(Outgoing::Frame(frame));
    }
    Next::Continue
}
