//! Connection limits shared by the three listeners (HTTP, gRPC, SMTP): the `[limits]`
//! section, the open-file budget (the soft limit raised at start, then split between the
//! listeners with a reserve, so that one listener's flood cannot starve the others), the
//! per-listener and per-kind connection gates with their metrics, and the gRPC listener's
//! gated accept loop. Client addresses and the caps per address: [`clients`].

pub mod clients;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use metrics::{counter, gauge};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::obs::metrics::names::{CONNECTIONS_OPEN, CONNECTIONS_REFUSED};

/// `[limits]`: timeouts and connection maxima of the listeners. Every maximum is further
/// capped by the process's open-file budget (see [`Budget`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Seconds an HTTP client has to send a request's head, from the connection's start or
    /// the previous response (an idle keep-alive connection is closed after it too).
    pub header_read_timeout_secs: u64,
    /// Seconds an HTTP client has to send a request's whole body.
    pub body_read_timeout_secs: u64,
    /// Seconds an HTTP connection may pass without a byte either way before it is closed.
    pub idle_timeout_secs: u64,
    /// Seconds a chat WebSocket has to send `start` (or `resume`) after it opens.
    pub ws_start_timeout_secs: u64,
    /// Seconds between the server's pings on a chat WebSocket; a socket that has not
    /// answered the previous ping by the next one is closed.
    pub ws_ping_secs: u64,
    /// The largest request head (request line and headers) the HTTP listener reads, in bytes.
    pub max_header_bytes: usize,
    /// The largest body of a telephony or SMS webhook, in bytes (their real payloads are a
    /// few kilobytes); `413` beyond, before the body is read.
    pub webhook_body_bytes: usize,
    /// The largest body of a survey answer, in bytes.
    pub survey_body_bytes: usize,
    /// HTTP connections open at once (WebSockets included).
    pub max_http_connections: usize,
    /// Chat WebSockets open at once (a share of the HTTP connections).
    pub max_websockets: usize,
    /// gRPC connections open at once.
    pub max_grpc_connections: usize,
    /// Open files kept out of the listeners' budget (the journal, SQLite, outbound calls).
    pub reserved_files: usize,
    /// Connections one client address may hold at once on each listener (HTTP, gRPC), and
    /// requests in flight for a client behind a trusted proxy; `0`: no cap per address.
    pub max_per_address: usize,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` names the client;
    /// their own connections are not capped per address.
    pub trusted_proxies: Vec<String>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 20,
            idle_timeout_secs: 60,
            ws_start_timeout_secs: 10,
            ws_ping_secs: 25,
            max_header_bytes: 16 * 1024,
            webhook_body_bytes: 64 * 1024,
            survey_body_bytes: 16 * 1024,
            max_http_connections: 8192,
            max_websockets: 6144,
            max_grpc_connections: 2048,
            reserved_files: 128,
            max_per_address: 0,
            trusted_proxies: Vec::new(),
        }
    }
}

impl LimitsConfig {
    /// What is wrong with the section: `(key, message)`.
    pub fn check(&self) -> Result<(), (String, String)> {
        let positive = [
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("body_read_timeout_secs", self.body_read_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
            ("ws_start_timeout_secs", self.ws_start_timeout_secs),
            ("ws_ping_secs", self.ws_ping_secs),
        ];
        for (key, value) in positive {
            if value == 0 || value > 3600 {
                return Err((
                    format!("[limits] {key}"),
                    "must be between 1 and 3600 seconds".into(),
                ));
            }
        }
        let sizes = [
            ("max_header_bytes", self.max_header_bytes, 4096),
            ("webhook_body_bytes", self.webhook_body_bytes, 4096),
            ("survey_body_bytes", self.survey_body_bytes, 1024),
            ("max_http_connections", self.max_http_connections, 1),
            ("max_websockets", self.max_websockets, 1),
            ("max_grpc_connections", self.max_grpc_connections, 1),
        ];
        for (key, value, min) in sizes {
            if value < min {
                return Err((format!("[limits] {key}"), format!("must be at least {min}")));
            }
        }
        if self.trusted_proxies.len() > clients::MAX_TRUSTED_PROXIES {
            return Err((
                "[limits] trusted_proxies".into(),
                format!(
                    "at most {} entries: use CIDR ranges",
                    clients::MAX_TRUSTED_PROXIES
                ),
            ));
        }
        if let Err(e) = clients::TrustedProxies::parse(&self.trusted_proxies) {
            return Err(("[limits] trusted_proxies".into(), e.to_string()));
        }
        Ok(())
    }
}

/// Raises the process's open-file soft limit to its hard limit (Unix) and returns the soft
/// limit now in force.
pub fn raise_open_files() -> u64 {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return 1024;
            }
            if limit.rlim_cur < limit.rlim_max {
                let wanted = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                    limit.rlim_cur = limit.rlim_max;
                }
            }
        }
        #[allow(clippy::useless_conversion)] // rlim_t is not u64 on every Unix
        u64::try_from(limit.rlim_cur).unwrap_or(u64::MAX)
    }
    #[cfg(not(unix))]
    {
        u64::MAX
    }
}

/// How many connections each listener may hold, from the configured maxima and the open-file
/// limit: after `reserved_files`, HTTP gets at most half, gRPC 35 % and SMTP 15 %, so that a
/// flood on one listener leaves the others their share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// HTTP connections.
    pub http: usize,
    /// Chat WebSockets (within the HTTP connections).
    pub websockets: usize,
    /// gRPC connections.
    pub grpc: usize,
    /// SMTP sessions.
    pub smtp: usize,
}

impl Budget {
    /// The budget for `open_files` descriptors; `smtp_max` is `[email.inbound] max_sessions`.
    pub fn new(limits: &LimitsConfig, open_files: u64, smtp_max: usize) -> Budget {
        let files = usize::try_from(open_files).unwrap_or(usize::MAX);
        let usable = files.saturating_sub(limits.reserved_files).max(32);
        let share = |percent: usize| (usable.saturating_mul(percent) / 100).max(4);
        let http = limits.max_http_connections.min(share(50));
        Budget {
            http,
            websockets: limits.max_websockets.min(http * 3 / 4).max(1),
            grpc: limits.max_grpc_connections.min(share(35)),
            smtp: smtp_max.min(share(15)).max(1),
        }
    }
}

/// A maximum of connections open at once for one listener or kind of traffic; entries are
/// counted in `guichet_connections_open{listener, kind}`, refusals in
/// `guichet_connections_refused_total{listener, kind}`.
#[derive(Debug, Clone)]
pub struct Gate {
    permits: Arc<Semaphore>,
    listener: &'static str,
    kind: &'static str,
    max: usize,
}

impl Gate {
    /// A gate letting `max` connections in at once.
    pub fn new(listener: &'static str, kind: &'static str, max: usize) -> Gate {
        Gate {
            permits: Arc::new(Semaphore::new(max)),
            listener,
            kind,
            max,
        }
    }

    /// The maximum.
    pub fn max(&self) -> usize {
        self.max
    }

    /// A ticket while fewer than the maximum are in; `None` (counted) otherwise.
    pub fn try_enter(&self) -> Option<Ticket> {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                gauge!(CONNECTIONS_OPEN, "listener" => self.listener, "kind" => self.kind)
                    .increment(1.0);
                Some(Ticket {
                    _permit: permit,
                    listener: self.listener,
                    kind: self.kind,
                })
            }
            Err(_) => {
                counter!(CONNECTIONS_REFUSED, "listener" => self.listener, "kind" => self.kind)
                    .increment(1);
                None
            }
        }
    }
}

/// One connection let in by a [`Gate`]; the place is given back when it is dropped.
#[derive(Debug)]
pub struct Ticket {
    _permit: OwnedSemaphorePermit,
    listener: &'static str,
    kind: &'static str,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        gauge!(CONNECTIONS_OPEN, "listener" => self.listener, "kind" => self.kind).decrement(1.0);
    }
}

/// A TCP stream holding its gate's ticket for as long as it lives.
#[derive(Debug)]
pub struct Gated {
    stream: TcpStream,
    _ticket: Ticket,
    _address: Option<clients::AddressTicket>,
}

impl AsyncRead for Gated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Gated {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for Gated {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

/// The gRPC listener's connections, through `gate` and the cap per address of `clients`: a
/// connection over either maximum is closed at once (the client sees `UNAVAILABLE` and
/// retries); accept errors (out of descriptors) pause accepting briefly instead of spinning.
pub fn gated_incoming(
    listener: TcpListener,
    gate: Gate,
    clients: clients::Clients,
) -> tokio_stream::wrappers::ReceiverStream<std::io::Result<Gated>> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = tx.closed() => return,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(listener = "grpc", "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(ticket) = gate.try_enter() else {
                tracing::debug!("gRPC connection refused: {} open", gate.max());
                drop(stream);
                continue;
            };
            let Some(address) = clients.admit_connection(peer.ip()) else {
                tracing::debug!("gRPC connection refused: too many from one address");
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let gated = Gated {
                stream,
                _ticket: ticket,
                _address: address,
            };
            if tx.send(Ok(gated)).await.is_err() {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_keeps_each_listener_a_share() {
        let limits = LimitsConfig::default();
        let small = Budget::new(&limits, 512, 64);
        assert!(small.http + small.grpc + small.smtp + limits.reserved_files <= 512);
        assert!(small.websockets < small.http);
        assert!(small.grpc >= 4 && small.smtp >= 4);
        let large = Budget::new(&limits, 1 << 20, 64);
        assert_eq!(large.http, limits.max_http_connections);
        assert_eq!(large.smtp, 64);
    }

    #[test]
    fn gate_counts_and_gives_back() {
        let gate = Gate::new("test", "test", 2);
        let a = gate.try_enter();
        let b = gate.try_enter();
        assert!(a.is_some() && b.is_some());
        assert!(gate.try_enter().is_none());
        drop(a);
        assert!(gate.try_enter().is_some());
    }
}
