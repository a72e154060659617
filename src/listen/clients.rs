//! Client addresses and the caps per address. Who the client is: the TCP peer, or, when the peer
//! is one of `[limits] trusted_proxies`, the address that proxy forwards in `X-Forwarded-For`
//! (read from the right, skipping the trusted hops). What one address may hold at once: at most
//! `[limits] max_per_address` connections (a peer that is not a trusted proxy) or requests in
//! flight (a client behind a trusted proxy, whose connections are the proxy's and never capped).
//! IPv6 clients are counted per /64, the block one subscriber gets.
//!
//! The resolved address replaces the peer's in the request's connection info, so everything
//! downstream that asks for the remote address (the sign-in throttle) sees the client.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::http::{HeaderMap, HeaderValue, Request, Response};
use metrics::counter;
use thiserror::Error;

use crate::obs::metrics::names::CONNECTIONS_REFUSED;

/// The most `X-Forwarded-For` entries read, from the right: a chain of proxies is short.
const MAX_FORWARDED_HOPS: usize = 16;

/// The most entries of `[limits] trusted_proxies`.
pub const MAX_TRUSTED_PROXIES: usize = 64;

/// A `[limits] trusted_proxies` entry that is not an address or a CIDR range.
#[derive(Debug, Clone, Copy, Error, PartialEq, Eq)]
#[error("entry {index} is not an IP address or a CIDR range such as 10.0.0.0/8 or fd00::/8")]
pub struct ProxyListError {
    /// Its place in the list, from 1.
    pub index: usize,
}

/// The reverse proxies whose `X-Forwarded-For` is believed: addresses and CIDR ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    ranges: Vec<(IpAddr, u8)>,
}

impl TrustedProxies {
    /// Parses `[limits] trusted_proxies` (`"192.0.2.7"`, `"10.0.0.0/8"`, `"fd00::/8"`).
    pub fn parse(entries: &[String]) -> Result<TrustedProxies, ProxyListError> {
        let mut ranges = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let bad = ProxyListError { index: i + 1 };
            let (address, bits) = match entry.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (entry.as_str(), None),
            };
            let address: IpAddr = address.trim().parse().map_err(|_| bad)?;
            let address = canonical(address);
            let max = if address.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(b) => b.trim().parse::<u8>().map_err(|_| bad)?,
                None => max,
            };
            if bits > max {
                return Err(bad);
            }
            ranges.push((address, bits));
        }
        Ok(TrustedProxies { ranges })
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether `address` is one of the trusted proxies.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.ranges
            .iter()
            .any(|&(range, bits)| in_range(address, range, bits))
    }

    /// The client behind `peer`: `peer` itself unless it is trusted; then the rightmost
    /// `X-Forwarded-For` entry that is not a trusted proxy (the trusted proxy wrote the entries
    /// to its right, the client may have written any to its left). An unreadable entry ends the
    /// walk at the last trusted hop.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        if !self.contains(client) {
            return client;
        }
        let mut hops = 0;
        for value in headers.get_all("x-forwarded-for").iter().rev() {
            let Ok(text) = value.to_str() else {
                return client;
            };
            for entry in text.rsplit(',') {
                hops += 1;
                if hops > MAX_FORWARDED_HOPS {
                    return client;
                }
                let Some(address) = parse_forwarded(entry) else {
                    return client;
                };
                client = address;
                if !self.contains(client) {
                    return client;
                }
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an address, possibly `[v6]:port` or `v4:port`.
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if entry.len() > 64 {
        return None;
    }
    if let Ok(address) = entry.parse::<IpAddr>() {
        return Some(canonical(address));
    }
    entry.parse::<SocketAddr>().ok().map(|a| canonical(a.ip()))
}

/// IPv4-mapped IPv6 addresses as IPv4.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn in_range(address: IpAddr, range: IpAddr, bits: u8) -> bool {
    match (address, range) {
        (IpAddr::V4(a), IpAddr::V4(r)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            u32::from(a) & mask == u32::from(r) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(r)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            u128::from(a) & mask == u128::from(r) & mask
        }
        _ => false,
    }
}

/// The key an address is counted under: IPv4 as is, IPv6 by its /64.
fn key_of(address: IpAddr) -> IpAddr {
    match canonical(address) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        v4 => v4,
    }
}

/// How many connections or requests each client address holds, with a maximum. Entries live
/// only while a ticket does, so the map is bounded by the listener's own maximum.
#[derive(Debug, Clone)]
pub struct PerAddress {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max: usize,
    listener: &'static str,
}

impl PerAddress {
    /// At most `max` at once per address on `listener` (`0`: no cap).
    pub fn new(listener: &'static str, max: usize) -> PerAddress {
        PerAddress {
            counts: Arc::new(Mutex::new(HashMap::new())),
            max,
            listener,
        }
    }

    /// Whether a cap is set.
    pub fn enabled(&self) -> bool {
        self.max > 0
    }

    /// A ticket for `address` while it holds fewer than the maximum; `None` (counted in
    /// `guichet_connections_refused_total{kind="per_address"}`) otherwise.
    pub fn try_enter(&self, address: IpAddr) -> Option<AddressTicket> {
        if self.max == 0 {
            return Some(AddressTicket {
                counts: None,
                key: address,
            });
        }
        let key = key_of(address);
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let held = counts.entry(key).or_insert(0);
        if *held >= self.max {
            drop(counts);
            counter!(CONNECTIONS_REFUSED, "listener" => self.listener, "kind" => "per_address")
                .increment(1);
            return None;
        }
        *held += 1;
        Some(AddressTicket {
            counts: Some(self.counts.clone()),
            key,
        })
    }

    /// Addresses holding a ticket now.
    pub fn addresses(&self) -> usize {
        self.counts.lock().map(|c| c.len()).unwrap_or(0)
    }
}

/// One connection or request counted for its address; given back when dropped.
#[derive(Debug)]
pub struct AddressTicket {
    counts: Option<Arc<Mutex<HashMap<IpAddr, usize>>>>,
    key: IpAddr,
}

impl Drop for AddressTicket {
    fn drop(&mut self) {
        if let Some(counts) = &self.counts {
            let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(held) = counts.get_mut(&self.key) {
                *held = held.saturating_sub(1);
                if *held == 0 {
                    counts.remove(&self.key);
                }
            }
        }
    }
}

/// What the listeners need to tell clients apart and cap them.
#[derive(Debug, Clone)]
pub struct Clients {
    /// The trusted reverse proxies.
    pub proxies: Arc<TrustedProxies>,
    /// The cap per address.
    pub per_address: PerAddress,
}

impl Clients {
    /// For `listener`, from `[limits]`'s proxies and maximum.
    pub fn new(listener: &'static str, proxies: Arc<TrustedProxies>, max: usize) -> Clients {
        Clients {
            proxies,
            per_address: PerAddress::new(listener, max),
        }
    }

    /// The ticket a new connection from `peer` needs: `None` when `peer` is over its cap. A
    /// trusted proxy's connections are not counted (its clients are, per request).
    pub fn admit_connection(&self, peer: IpAddr) -> Option<Option<AddressTicket>> {
        if !self.per_address.enabled() || self.proxies.contains(peer) {
            return Some(None);
        }
        self.per_address.try_enter(peer).map(Some)
    }
}

/// The layer's service: resolves the client of each request, writes it into the request's
/// connection info, and caps the requests in flight per client behind a trusted proxy
/// (`429`, or `RESOURCE_EXHAUSTED` for gRPC, beyond).
#[derive(Debug, Clone)]
pub struct ClientService<S> {
    inner: S,
    clients: Clients,
}

impl<S> ClientService<S> {
    /// `inner` behind the client resolution and caps of `clients`.
    pub fn new(inner: S, clients: Clients) -> ClientService<S> {
        ClientService { inner, clients }
    }
}

/// A response body that holds its client's ticket until it ends (streams included).
pub struct HeldBody<B> {
    inner: B,
    _ticket: Option<AddressTicket>,
}

impl<B> hyper::body::Body for HeldBody<B>
where
    B: hyper::body::Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// A response body made from a short text: the answer to a client over its cap.
pub trait TextBody {
    /// The body carrying `text` (gRPC answers carry it in `grpc-message` instead).
    fn text(text: &'static str) -> Self;
}

impl TextBody for axum::body::Body {
    fn text(text: &'static str) -> Self {
        axum::body::Body::from(text)
    }
}

impl TextBody for tonic::body::Body {
    fn text(_: &'static str) -> Self {
        tonic::body::Body::default()
    }
}

/// The answer to a client over its cap.
fn over_cap<RB: TextBody>(grpc: bool) -> Response<RB> {
    if grpc {
        let mut response = Response::new(RB::text(""));
        let headers = response.headers_mut();
        headers.insert("content-type", HeaderValue::from_static("application/grpc"));
        headers.insert("grpc-status", HeaderValue::from_static("8"));
        headers.insert(
            "grpc-message",
            HeaderValue::from_static(
                "too%20many%20requests%20in%20flight%20from%20your%20address:%20retry%20later",
            ),
        );
        response
    } else {
        let mut response = Response::new(RB::text(
            "too many requests in flight from your address: try again later\n",
        ));
        *response.status_mut() = axum::http::StatusCode::TOO_MANY_REQUESTS;
        let headers = response.headers_mut();
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        headers.insert("retry-after", HeaderValue::from_static("5"));
        response
    }
}

pin_project_lite::pin_project! {
    /// The future of [`ClientService`]: the inner service's answer with the client's ticket held
    /// in its body, or the refusal of a client over its cap. Not boxed: the layer is on every
    /// gRPC and HTTP request, capped or not. (`Passed`: the inner future and the client's
    /// place under its cap, held until the response body ends; `Refused`: the refusal.)
    #[allow(missing_docs)]
    #[project = ClientFutureProj]
    pub enum ClientFuture<F, RB> {
        /// The request was passed on.
        Passed {
            #[pin]
            inner: F,
            ticket: Option<AddressTicket>,
        },
        /// The client was over its cap: the answer, taken once.
        Refused { response: Option<Response<RB>> },
    }
}

impl<F, RB, E> Future for ClientFuture<F, RB>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = Result<Response<HeldBody<RB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ClientFutureProj::Passed { inner, ticket } => {
                let response = std::task::ready!(inner.poll(cx))?;
                let ticket = ticket.take();
                Poll::Ready(Ok(response.map(|inner| HeldBody {
                    inner,
                    _ticket: ticket,
                })))
            }
            ClientFutureProj::Refused { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response.map(|inner| HeldBody {
                    inner,
                    _ticket: None,
                }))),
                // Polled again after it was ready: a contract breach by the caller.
                None => Poll::Pending,
            },
        }
    }
}

impl<S, B, RB> tower::Service<Request<B>> for ClientService<S>
where
    S: tower::Service<Request<B>, Response = Response<RB>>,
    RB: hyper::body::Body + TextBody + Unpin,
{
    type Response = Response<HeldBody<RB>>;
    type Error = S::Error;
    type Future = ClientFuture<S::Future, RB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let mut ticket = None;
        // Only a trusted proxy's requests are looked into: with no proxy listed, this is the
        // whole cost of the layer.
        if !self.clients.proxies.is_empty() {
            let info = request
                .extensions()
                .get::<tonic::transport::server::TcpConnectInfo>()
                .cloned();
            let peer = info.as_ref().and_then(|i| i.remote_addr);
            if let (Some(info), Some(peer)) = (info, peer) {
                if self.clients.proxies.contains(peer.ip()) {
                    let client = self.clients.proxies.client(peer.ip(), request.headers());
                    if !self.clients.proxies.contains(client) && self.clients.per_address.enabled()
                    {
                        match self.clients.per_address.try_enter(client) {
                            Some(t) => ticket = Some(t),
                            None => {
                                let grpc = request
                                    .headers()
                                    .get("content-type")
                                    .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
                                return ClientFuture::Refused {
                                    response: Some(over_cap::<RB>(grpc)),
                                };
                            }
                        }
                    }
                    request
                        .extensions_mut()
                        .insert(tonic::transport::server::TcpConnectInfo {
                            local_addr: info.local_addr,
                            remote_addr: Some(SocketAddr::new(client, 0)),
                        });
                }
            }
        }
        ClientFuture::Passed {
            inner: self.inner.call(request),
            ticket,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("valid list")
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", v.parse().expect("header value"));
        }
        headers
    }

    #[test]
    fn ranges_and_mapped_addresses_match() {
        let p = proxies(&["10.0.0.0/8", "192.0.2.7", "fd00::/8"]);
        assert!(p.contains("10.1.2.3".parse().unwrap()));
        assert!(p.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(p.contains("192.0.2.7".parse().unwrap()));
        assert!(!p.contains("192.0.2.8".parse().unwrap()));
        assert!(p.contains("fd12::1".parse().unwrap()));
        assert!(!p.contains("2001:db8::1".parse().unwrap()));
        assert!(proxies(&["0.0.0.0/0"]).contains("203.0.113.1".parse().unwrap()));
    }

    #[test]
    fn bad_entries_are_named_by_place_not_echoed() {
        for bad in ["proxy.example", "10.0.0.0/33", "::/129", "10.0.0.0/x", ""] {
            let list = vec!["10.0.0.1".to_string(), bad.to_string()];
            let e = TrustedProxies::parse(&list).expect_err(bad);
            assert_eq!(e.index, 2);
            assert!(!e.to_string().contains(bad) || bad.is_empty());
        }
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let p = proxies(&["10.0.0.0/8"]);
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let outside: IpAddr = "198.51.100.4".parse().unwrap();
        // An untrusted peer's header is ignored.
        let h = forwarded(&["203.0.113.9"]);
        assert_eq!(p.client(outside, &h), outside);
        // The proxy appended the client; whatever the client wrote to the left is ignored.
        let h = forwarded(&["1.2.3.4, 203.0.113.9"]);
        assert_eq!(
            p.client(proxy, &h),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // Two trusted hops, over two header lines, with ports.
        let h = forwarded(&["203.0.113.9:5555", "10.0.0.7"]);
        assert_eq!(
            p.client(proxy, &h),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let h = forwarded(&["[2001:db8::1]:443, 10.0.0.7"]);
        assert_eq!(
            p.client(proxy, &h),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        // Garbage stops at the last trusted hop; no header: the proxy itself.
        let h = forwarded(&["not-an-address"]);
        assert_eq!(p.client(proxy, &h), proxy);
        assert_eq!(p.client(proxy, &HeaderMap::new()), proxy);
        // A long chain of trusted hops is read only so far.
        let chain = vec!["10.0.0.1"; 40].join(",");
        let h = forwarded(&[&format!("203.0.113.9,{chain}")]);
        assert!(p.contains(p.client(proxy, &h)));
    }

    #[test]
    fn each_address_holds_at_most_the_maximum_and_gives_places_back() {
        let caps = PerAddress::new("test", 2);
        let a: IpAddr = "203.0.113.9".parse().unwrap();
        let b: IpAddr = "203.0.113.10".parse().unwrap();
        let first = caps.try_enter(a).expect("first");
        let _second = caps.try_enter(a).expect("second");
        assert!(caps.try_enter(a).is_none());
        assert!(caps.try_enter(b).is_some());
        drop(first);
        let _third = caps.try_enter(a).expect("a place was given back");
        assert_eq!(caps.addresses(), 1, "b's entry left with its ticket");
        // IPv6 clients are counted per /64.
        let caps = PerAddress::new("test", 1);
        let _one = caps.try_enter("2001:db8::1".parse().unwrap()).expect("one");
        assert!(caps.try_enter("2001:db8::2".parse().unwrap()).is_none());
        assert!(caps.try_enter("2001:db8:0:1::1".parse().unwrap()).is_some());
        // No cap: every ticket, nothing counted.
        let open = PerAddress::new("test", 0);
        let tickets: Vec<_> = (0..100).filter_map(|_| open.try_enter(a)).collect();
        assert_eq!(tickets.len(), 100);
        assert_eq!(open.addresses(), 0);
    }
}
