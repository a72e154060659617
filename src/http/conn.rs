//! The HTTP listener's connection loop: each accepted connection passes the listener's
//! [`Gate`] (over the maximum it gets a plain `503` and is closed), is served by hyper with
//! a bounded request head read within `[limits] header_read_timeout_secs` (which also bounds
//! an idle keep-alive connection), and is closed after `[limits] idle_timeout_secs` without a
//! byte either way. WebSockets leave this loop once upgraded (the chat's ping keeps them
//! alive, its missed pongs end them) but keep their place in the gate until they close.
//! Graceful shutdown: no more accepts, each connection finishes its request in flight.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::listen::clients::{AddressTicket, ClientService, Clients};
use crate::listen::{Gate, LimitsConfig, Ticket};
use crate::obs::metrics::names::CONNECTION_TIMEOUTS;

/// What the connection loop needs: the gate and the timeouts.
#[derive(Debug, Clone)]
pub struct ConnSettings {
    /// The listener's maximum of connections.
    pub gate: Gate,
    /// Time to send a request head.
    pub header_timeout: Duration,
    /// Time without a byte either way before a connection is closed.
    pub idle_timeout: Duration,
    /// The largest request head.
    pub max_header_bytes: usize,
    /// Who the clients are, and the cap per address.
    pub clients: Clients,
}

impl ConnSettings {
    /// The settings of `[limits]` with a gate of `max` connections, and `clients`.
    pub fn new(limits: &LimitsConfig, max: usize, clients: Clients) -> ConnSettings {
        ConnSettings {
            gate: Gate::new("http", "all", max),
            header_timeout: Duration::from_secs(limits.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(limits.idle_timeout_secs),
            max_header_bytes: limits.max_header_bytes,
            clients,
        }
    }
}

/// The answer to a connection over the maximum.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
connection: close\r\nretry-after: 5\r\ncontent-length: 37\r\n\r\ntoo many connections: try again later\n";

/// The answer to a connection over its address's maximum.
const BUSY_ADDRESS: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: text/plain\r\n\
connection: close\r\nretry-after: 5\r\ncontent-length: 56\r\n\r\ntoo many connections from your address: try again later\n";

/// Milliseconds since `epoch` of the last byte read or written.
#[derive(Debug)]
struct Activity {
    epoch: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let now = self.epoch.elapsed();
        now.saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// A connection's stream: records activity, and holds the gate's ticket as long as it lives
/// (after a WebSocket upgrade too).
#[derive(Debug)]
struct Tracked {
    stream: TcpStream,
    activity: Arc<Activity>,
    _ticket: Ticket,
    _address: Option<AddressTicket>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        poll
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Answers a refused connection with `answer` (within a second) and closes it.
fn refuse(stream: TcpStream, answer: &'static [u8]) {
    tokio::spawn(async move {
        let mut stream = stream;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = stream.write_all(answer).await;
            let _ = stream.shutdown().await;
        })
        .await;
    });
}

/// Resolves once `activity` has been idle for `limit`.
async fn idle(activity: &Activity, limit: Duration) {
    loop {
        let quiet = activity.idle_for();
        if quiet >= limit {
            return;
        }
        tokio::time::sleep(limit - quiet).await;
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then waits for the connections'
/// requests in flight.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    settings: ConnSettings,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout)
        .max_buf_size(settings.max_header_bytes.max(8192));
    let builder = Arc::new(builder);
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok((stream, peer)) => (stream, peer),
            Err(e) => {
                // Out of descriptors, most often: pause rather than spin.
                tracing::warn!(listener = "http", "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Webhook answers are small: do not let Nagle's algorithm hold them back.
        let _ = stream.set_nodelay(true);
        let stream_local = stream.local_addr().ok();
        let Some(ticket) = settings.gate.try_enter() else {
            refuse(stream, BUSY);
            continue;
        };
        let Some(address) = settings.clients.admit_connection(peer.ip()) else {
            drop(ticket);
            refuse(stream, BUSY_ADDRESS);
            continue;
        };
        let activity = Arc::new(Activity {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
        });
        let io = TokioIo::new(Tracked {
            stream,
            activity: activity.clone(),
            _ticket: ticket,
            _address: address,
        });
        let builder = builder.clone();
        // The peer's address goes with each request, where tonic's `remote_addr` finds it
        // (the console's sign-ins are throttled per address); behind a trusted proxy the
        // client layer puts the forwarded client's there instead, and caps its requests.
        let info = tonic::transport::server::TcpConnectInfo {
            local_addr: stream_local,
            remote_addr: Some(peer),
        };
        let service = TowerToHyperService::new(tower::util::MapRequest::new(
            ClientService::new(app.clone(), settings.clients.clone()),
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(info.clone());
                request
            },
        ));
        let mut stop = stop_rx.clone();
        let idle_limit = settings.idle_timeout;
        tokio::spawn(async move {
            let conn = builder.serve_connection_with_upgrades(io, service);
            tokio::pin!(conn);
            let mut stopping = *stop.borrow();
            if stopping {
                conn.as_mut().graceful_shutdown();
            }
            loop {
                tokio::select! {
                    _ = conn.as_mut() => break,
                    changed = stop.changed(), if !stopping => {
                        stopping = true;
                        let _ = changed;
                        conn.as_mut().graceful_shutdown();
                    }
                    () = idle(&activity, idle_limit) => {
                        metrics::counter!(
                            CONNECTION_TIMEOUTS, "listener" => "http", "reason" => "idle"
                        )
                        .increment(1);
                        break;
                    }
                }
            }
            drop(stop);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection task holds a receiver: all have ended when none is left (this one
    // included: kept, it made every stop wait for the whole grace period).
    drop(stop_rx);
    stop_tx.closed().await;
}
