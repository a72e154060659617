//! The HTTP listener: one axum router for everything that is not gRPC — telephony gateway and
//! SMS provider webhooks, the web chat, `/metrics`, `/healthz`, the public quality indicators and
//! agents' attachment downloads.
//!
//! This module owns the listener, the routes every deployment has (`/healthz`), the request body
//! limits (`[server] max_body_bytes`, smaller ones per endpoint in [`body`]; 413 beyond) and
//! graceful shutdown. Each channel adapter contributes its own routes, built with its own
//! state, and [`router`] merges them. The connection loop, its timeouts and its maximum of
//! connections are in [`conn`].

pub mod attachments;
pub mod body;
pub mod conn;
pub mod error;
pub mod obs;
pub mod public;
pub mod survey;

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::engine::Engine;

/// Why the HTTP listener could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The listening address could not be bound.
    #[error(
        "cannot listen on {addr}: {source} (is another server running? change [server] http_addr)"
    )]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("HTTP server error: {0}")]
    Serve(std::io::Error),
}

/// Binds the configured HTTP address.
pub async fn bind(config: &Config) -> Result<(TcpListener, SocketAddr), HttpError> {
    let addr = &config.server.http_addr;
    let bind_error = |source| HttpError::Bind {
        addr: addr.clone(),
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}

/// The whole HTTP application: `/healthz`, `/metrics`, the public indicators and every
/// adapter's routes, under the body limit; every matched request is counted in
/// `guichet_http_requests_total` by its first path segment and status.
pub fn router(engine: &Engine, config: &Config, routes: Vec<Router>) -> Router {
    let mut app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(engine.clone())
        .merge(obs::routes(engine, &config.indicators))
        .merge(public::routes(config));
    for r in routes {
        app = app.merge(r);
    }
    let bodies = body::BodyLimits::new(config);
    app.route_layer(axum::middleware::from_fn(crate::obs::metrics::track_http))
        .layer(axum::middleware::from_fn_with_state(bodies, body::bound))
        .layer(DefaultBodyLimit::max(config.server.max_body_bytes))
}

/// `GET /healthz`: 200 `ok` while the engine runs, 503 once it has stopped (shutting down, or
/// the journal halted on a storage failure).
async fn healthz(State(engine): State<Engine>) -> Response {
    if engine.is_stopped() {
        (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response()
    } else {
        (StatusCode::OK, "ok\n").into_response()
    }
}

/// `GET /readyz`: 200 `ready` while this node serves traffic (it leads, or runs on SQLite), 503
/// once it is stopping; a standby answers 503 naming the leader (`src/ha.rs`).
async fn readyz(State(engine): State<Engine>) -> Response {
    if engine.is_stopped() {
        (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response()
    } else {
        (StatusCode::OK, "ready\n").into_response()
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in flight finish;
/// connections are bounded and timed as [`conn::serve`] says.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    settings: conn::ConnSettings,
) -> Result<(), HttpError> {
    conn::serve(listener, app, shutdown, settings).await;
    Ok(())
}
