//! Request bodies on the HTTP listener: the size limit of each endpoint (telephony and SMS
//! webhooks and messages left in the chat widget a few tens of kilobytes, survey answers less, the inbound email webhook
//! `[server] max_body_bytes`), checked on `Content-Length` before anything is read and again
//! while reading (413 beyond), and the time a client has to send a whole body (408 after
//! `[limits] body_read_timeout_secs`). Handlers then see the body already in memory.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio_stream::StreamExt;

use crate::config::Config;
use crate::obs::metrics::names::CONNECTION_TIMEOUTS;

/// Marks a request whose body was over its endpoint's limit, for handlers that answer in
/// their own format (the telephony webhooks speak an apology before hanging up); the body
/// they see is then empty.
#[derive(Debug, Clone, Copy)]
pub struct BodyTooLarge(pub usize);

/// The body limit of each endpoint, and the time to send one.
#[derive(Debug, Clone)]
pub struct BodyLimits {
    webhook: usize,
    survey: usize,
    default: usize,
    timeout: Duration,
}

impl BodyLimits {
    /// The limits of `config` (`[limits]` and `[server] max_body_bytes`).
    pub fn new(config: &Config) -> BodyLimits {
        let default = config.server.max_body_bytes;
        BodyLimits {
            webhook: config.limits.webhook_body_bytes.min(default),
            survey: config.limits.survey_body_bytes.min(default),
            default,
            timeout: Duration::from_secs(config.limits.body_read_timeout_secs),
        }
    }

    /// The largest body accepted on `path`.
    pub fn limit_for(&self, path: &str) -> usize {
        if path.starts_with("/voice/") || path.starts_with("/sms/") || path == "/chat/message" {
            self.webhook
        } else if path.starts_with("/survey/") {
            self.survey
        } else {
            self.default
        }
    }
}

fn too_large(limit: usize) -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body over the limit of {limit} bytes for this endpoint\n"),
    )
        .into_response()
}

/// Middleware: reads the body within its limit and its time, or answers 413 / 408 / 400.
pub async fn bound(State(limits): State<BodyLimits>, request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let limit = limits.limit_for(request.uri().path());
    let own_format = request.uri().path().starts_with("/voice/");
    let refuse = |request: Request, next: Next| async move {
        if own_format {
            let (mut parts, _) = request.into_parts();
            parts.extensions.insert(BodyTooLarge(limit));
            next.run(Request::from_parts(parts, Body::empty())).await
        } else {
            too_large(limit)
        }
    };
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return refuse(request, next).await;
    }
    let (parts, body) = request.into_parts();
    let read = async {
        let mut stream = body.into_data_stream();
        let mut buffer: Vec<u8> = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| None)?;
            if buffer.len() + chunk.len() > limit {
                return Err(Some(limit));
            }
            buffer.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(buffer))
    };
    match tokio::time::timeout(limits.timeout, read).await {
        Err(_) => {
            metrics::counter!(CONNECTION_TIMEOUTS, "listener" => "http", "reason" => "body")
                .increment(1);
            (
                StatusCode::REQUEST_TIMEOUT,
                [(header::CONNECTION, "close")],
                format!(
                    "request body not received within {} seconds\n",
                    limits.timeout.as_secs()
                ),
            )
                .into_response()
        }
        Ok(Err(Some(_))) => refuse(Request::from_parts(parts, Body::empty()), next).await,
        Ok(Err(None)) => (
            StatusCode::BAD_REQUEST,
            "request body unreadable: send it whole, with a correct length\n",
        )
            .into_response(),
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks_get_the_small_limit() {
        let config = Config::default();
        let limits = BodyLimits::new(&config);
        assert_eq!(limits.limit_for("/voice/jambonz/incoming"), 64 * 1024);
        assert_eq!(limits.limit_for("/sms/twilio"), 64 * 1024);
        assert_eq!(limits.limit_for("/survey/abc"), 16 * 1024);
        assert_eq!(
            limits.limit_for("/email/inbound"),
            config.server.max_body_bytes
        );
    }
}
