//! Undecodable requests: tonic answers a request body that is not the method's protobuf
//! message with `INTERNAL` ("failed to decode Protobuf message"); this layer turns that answer
//! into `INVALID_ARGUMENT` with a message saying what to fix (the client's mistake, not the
//! server's), without echoing the decoder's details.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::{HeaderMap, HeaderValue, Request, Response};

/// The layer's service: passes requests through and rewrites decode failures.
#[derive(Debug, Clone)]
pub struct DecodeStatus<S> {
    inner: S,
}

/// Wraps the gRPC routes.
pub fn layer<S>(inner: S) -> DecodeStatus<S> {
    DecodeStatus { inner }
}

/// Rewrites a trailers-only `INTERNAL` decode failure into `INVALID_ARGUMENT`.
pub fn rewrite(headers: &mut HeaderMap) {
    let internal = headers
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes() == b"13");
    let decode = headers.get("grpc-message").is_some_and(|v| {
        let m = v.as_bytes();
        m.starts_with(b"failed to decode") || m.starts_with(b"failed%20to%20decode")
    });
    if internal && decode {
        headers.insert("grpc-status", HeaderValue::from_static("3"));
        headers.insert(
            "grpc-message",
            HeaderValue::from_static(
                "the%20request%20is%20not%20a%20valid%20protobuf%20message%20for%20this%20method",
            ),
        );
    }
}

impl<S, B, RB> tower::Service<Request<B>> for DecodeStatus<S>
where
    S: tower::Service<Request<B>, Response = Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let future = self.inner.call(request);
        Box::pin(async move {
            let mut response = future.await?;
            rewrite(response.headers_mut());
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_decode_failures_are_rewritten() {
        let mut h = HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from_static("13"));
        h.insert(
            "grpc-message",
            HeaderValue::from_static("failed%20to%20decode%20Protobuf%20message"),
        );
        rewrite(&mut h);
        assert_eq!(h["grpc-status"], "3");
        let mut other = HeaderMap::new();
        other.insert("grpc-status", HeaderValue::from_static("13"));
        other.insert("grpc-message", HeaderValue::from_static("journal"));
        rewrite(&mut other);
        assert_eq!(other["grpc-status"], "13");
    }
}
