//! High availability on PostgreSQL (docs/high-availability.md): this node's side of the
//! leadership lease. [`lead`] returns once this node holds the lease, serving as a standby until
//! then (`/healthz` 200, `/readyz` 503 naming the leader, gRPC health NOT_SERVING and every other
//! gRPC call UNAVAILABLE with the leader's address in `guichet-leader`, SMTP `421`, HTTP 503)
//! while a thread follows the journal into a warm router ([`Follower`]) that the new leader's
//! recovery takes over; once leading, a thread renews the lease and a watchdog stops the node at
//! its own monotonic deadline. A leader whose term is over (a refused append or renewal, a
//! missed deadline) stops acting at once, logs that it steps down and tells [`Leading::stepped_down`]:
//! the server stops, and the binary decides what follows (`guichet serve` exits with
//! [`EXIT_STEPPED_DOWN`]; a service manager restarts it as a standby). The lease's SQL is the
//! store's (`store/pg/lease.rs`), the following's `store/pg/follow.rs`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::obs::metrics::names::{
    HA_LEADER, HA_LEASE_RENEWALS, HA_STANDBY_LAG, HA_STANDBY_LAG_SECONDS, HA_TAKEOVERS,
};
use crate::server::ServeError;
use crate::store::{
    Fence, Follower, LeaseClient, LeaseInfo, OnSuperseded, StoreConfig, StoreError,
};

/// The exit code `guichet serve` uses for a leader that stepped down (its term superseded or its
/// lease not renewed in time): restart it, it comes back as a standby
/// (`RestartForceExitStatus=75` with systemd).
pub const EXIT_STEPPED_DOWN: i32 = 75;

/// This node leads: the fence its journal carries, and how it learns that its term is over.
#[derive(Debug)]
pub struct Leading {
    /// The fence (term, node, monotonic deadline), for `[store] fence`.
    pub fence: Fence,
    /// Turns `Some(why)` once the term is over (a refused append or renewal, a missed
    /// deadline): the node has already stopped acting (the journal refuses, nothing is sent);
    /// the server stops, and the program decides what follows (exit, restart as a standby, or
    /// for one tenant among several, stand by for that tenant only).
    pub stepped_down: watch::Receiver<Option<String>>,
}

/// How often a standby's follower looks at the journal when no notification woke it (and how
/// long a takeover waits for it to stop, at most).
const FOLLOW_POLL: Duration = Duration::from_millis(250);

fn store_error(e: StoreError) -> ServeError {
    ServeError::Engine(crate::engine::EngineError::Store(e))
}

/// Runs a blocking lease call on the blocking pool (the synchronous driver refuses tokio's
/// worker threads), handing the client back.
async fn blocking<T: Send + 'static>(
    client: LeaseClient,
    f: impl FnOnce(&mut LeaseClient) -> T + Send + 'static,
) -> Result<(LeaseClient, T), ServeError> {
    tokio::task::spawn_blocking(move || {
        let mut client = client;
        let out = f(&mut client);
        (client, out)
    })
    .await
    .map_err(|_| store_error(StoreError::Invalid("the lease thread panicked".to_owned())))
}

/// Waits until this node holds the lease, serving as a standby meanwhile (following the
/// journal); returns the fence its journal must carry (with the followed router), or `None`
/// when `stop` turned true first.
pub async fn lead(
    config: &Config,
    mut stop: watch::Receiver<bool>,
) -> Result<Option<Leading>, ServeError> {
    let ha = config.ha.clone();
    let node = ha.node();
    let address = ha
        .advertise
        .clone()
        .unwrap_or_else(|| config.server.grpc_addr.clone());
    let (store, ha_c, node_c) = (config.store.clone(), ha.clone(), node.clone());
    let mut client =
        tokio::task::spawn_blocking(move || LeaseClient::connect(&store, &ha_c, node_c, address))
            .await
            .map_err(|_| store_error(StoreError::Invalid("the lease thread panicked".into())))?
            .map_err(store_error)?;
    let leader = Arc::new(RwLock::new(String::new()));
    let mut standby: Option<Standby> = None;
    let mut following: Option<Following> = None;
    let keep = ha.lease() - ha.margin();
    loop {
        let sent = Instant::now();
        let (c, (acquired, status)) = blocking(client, |c| match c.try_acquire() {
            Ok(None) => {
                let status = c.status();
                (Ok(None), Some(status))
            }
            other => (other, None),
        })
        .await?;
        client = c;
        match acquired {
            Ok(Some(term)) => {
                let (down_tx, stepped_down) = watch::channel(None);
                let mut fence = Fence::new(
                    term,
                    node.clone(),
                    sent + keep,
                    step_down_hook(node, down_tx),
                );
                if let Some(s) = standby.take() {
                    metrics::counter!(HA_TAKEOVERS).increment(1);
                    tracing::warn!(
                        term,
                        "took over the lease as term {term}: the previous leader's lease expired; \
                         recovering from the journal"
                    );
                    s.stop().await;
                }
                if let Some(f) = following.take() {
                    // The old leader can commit nothing more: the follower reads the journal's
                    // end once more and hands its router over.
                    if let Some(warm) = f.finish().await {
                        fence = fence.with_warm(warm);
                    }
                }
                tracing::info!(term, "leading: this node holds the lease, term {term}");
                metrics::gauge!(HA_LEADER).set(1.0);
                metrics::gauge!(HA_STANDBY_LAG).set(0.0);
                metrics::gauge!(HA_STANDBY_LAG_SECONDS).set(0.0);
                spawn_renewals(client, fence.clone(), ha.renew_every(), keep)?;
                spawn_watchdog(fence.clone())?;
                return Ok(Some(Leading {
                    fence,
                    stepped_down,
                }));
            }
            Ok(None) => {
                metrics::gauge!(HA_LEADER).set(0.0);
                if let Some(Ok(status)) = status {
                    let following = following.get_or_insert_with(|| {
                        Following::start(config.store.clone(), node.clone())
                    });
                    // Until the followed router is built, it lacks the whole journal (then
                    // the follower sets the lag).
                    let applied = following.cursor();
                    if applied.is_none() {
                        metrics::gauge!(HA_STANDBY_LAG).set(status.last_seq as f64);
                    }
                    let lease = status.lease;
                    *leader.write().unwrap_or_else(|e| e.into_inner()) = shown(&lease);
                    if standby.is_none() {
                        tracing::warn!(
                            "standby: node {:?} leads (term {}, at {}); this node serves no \
                             traffic and takes over when that lease expires",
                            lease.holder,
                            lease.term,
                            lease.address
                        );
                        standby = Some(Standby::start(config, leader.clone()).await?);
                    }
                    let term = lease.term;
                    let (c, beat) = blocking(client, move |c| {
                        c.heartbeat("standby", term, Some(applied.unwrap_or(0)))
                    })
                    .await?;
                    client = c;
                    if let Err(e) = beat {
                        tracing::warn!("standby heartbeat: {e}");
                    }
                }
            }
            Err(e) => tracing::warn!("the lease could not be read or taken: {e}; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(ha.renew_every()) => {}
            _ = stop.wait_for(|s| *s) => {
                if let Some(s) = standby.take() {
                    s.stop().await;
                }
                if let Some(f) = following.take() {
                    drop(f.finish().await);
                }
                return Ok(None);
            }
        }
    }
}

/// A graceful shutdown of the leader, once its journal is closed: hands the lease back so that a
/// standby takes over at its next poll.
pub async fn release(config: &Config, fence: &Fence) {
    fence.retire();
    let (store, ha, node, term) = (
        config.store.clone(),
        config.ha.clone(),
        fence.node.clone(),
        fence.term,
    );
    let released = tokio::task::spawn_blocking(move || {
        LeaseClient::connect(&store, &ha, node, String::new())?.release(term)
    })
    .await;
    match released {
        Ok(Ok(true)) => tracing::info!(term, "lease handed back: a standby takes over now"),
        Ok(Ok(false)) => {}
        Ok(Err(e)) => tracing::warn!("the lease could not be handed back ({e}): it expires"),
        Err(_) => tracing::warn!("the lease could not be handed back: it expires"),
    }
}

/// The leader as standbys name it to clients.
fn shown(lease: &LeaseInfo) -> String {
    let text: String = if lease.address.is_empty() {
        lease.holder.clone()
    } else {
        lease.address.clone()
    };
    text.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(200)
        .collect()
}

/// What a leader does once its term is over: says so, once, and tells the server (through
/// [`Leading::stepped_down`]); the fence has already stopped acting.
fn step_down_hook(node: String, tell: watch::Sender<Option<String>>) -> OnSuperseded {
    let said = AtomicBool::new(false);
    Arc::new(move |why: &str| {
        if said.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::error!(
            "node {node} steps down: {why}; it stops routing and writing now (restart it: it \
             comes back as a standby)"
        );
        tell.send_replace(Some(why.to_owned()));
    })
}

/// A standby's follower thread: keeps a warm router ([`Follower`]) and the lag figures.
struct Following {
    stop: Arc<AtomicBool>,
    cursor: Arc<Mutex<Option<u64>>>,
    thread: std::thread::JoinHandle<Option<Follower>>,
}

impl Following {
    fn start(store: StoreConfig, node: String) -> Following {
        let stop = Arc::new(AtomicBool::new(false));
        let cursor = Arc::new(Mutex::new(None));
        let (stop_t, cursor_t) = (stop.clone(), cursor.clone());
        let thread = std::thread::Builder::new()
            .name("guichet-follow".into())
            .spawn(move || follow(&store, &node, &stop_t, &cursor_t));
        let thread = match thread {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("standby: cannot start the follower thread ({e}): cold standby");
                std::thread::spawn(|| None)
            }
        };
        Following {
            stop,
            cursor,
            thread,
        }
    }

    /// The last sequence number the followed router holds (`None` until it is built).
    fn cursor(&self) -> Option<u64> {
        *self.cursor.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops following after one last poll; the router, if the follower was sound.
    async fn finish(self) -> Option<crate::store::Recovered> {
        self.stop.store(true, Ordering::SeqCst);
        let thread = self.thread;
        let follower = tokio::task::spawn_blocking(move || thread.join().ok().flatten())
            .await
            .ok()
            .flatten()?;
        tokio::task::spawn_blocking(move || {
            let mut follower = follower;
            match follower.poll() {
                Ok(_) => Some(follower.into_recovered()),
                Err(e) => {
                    tracing::warn!("standby: the followed router is dropped ({e}): cold recovery");
                    None
                }
            }
        })
        .await
        .ok()
        .flatten()
    }
}

/// The follower thread's loop: builds the router, then polls the journal after each
/// notification (or every [`FOLLOW_POLL`]); a failure drops the router and builds it again.
fn follow(
    store: &StoreConfig,
    node: &str,
    stop: &AtomicBool,
    cursor: &Mutex<Option<u64>>,
) -> Option<Follower> {
    let mut follower: Option<Follower> = None;
    let mut warned = false;
    let mut recorded = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let f = match follower.as_mut() {
            Some(f) => f,
            None => match Follower::start(store) {
                Ok(f) => {
                    tracing::info!(
                        seq = f.cursor(),
                        "standby: following the journal from {}",
                        f.cursor()
                    );
                    warned = false;
                    follower.insert(f)
                }
                Err(e) => {
                    if !warned {
                        tracing::warn!("standby: cannot follow the journal ({e}); retrying");
                        warned = true;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            },
        };
        match f.poll() {
            Ok(progress) => {
                *cursor.lock().unwrap_or_else(|e| e.into_inner()) = Some(progress.cursor);
                metrics::gauge!(HA_STANDBY_LAG).set(progress.behind as f64);
                metrics::gauge!(HA_STANDBY_LAG_SECONDS).set(progress.behind_ms as f64 / 1000.0);
                // At most four times a second (the leader may commit far more often).
                if recorded.elapsed() >= FOLLOW_POLL {
                    recorded = Instant::now();
                    if let Err(e) = f.record(node) {
                        tracing::debug!("standby: recording its position: {e}");
                    }
                }
                if progress.rebuilt {
                    tracing::info!(
                        "standby: the followed router was rebuilt (an erasure or a purge)"
                    );
                }
            }
            Err(e) => {
                tracing::warn!("standby: following the journal failed ({e}); rebuilding");
                follower = None;
                *cursor.lock().unwrap_or_else(|e| e.into_inner()) = None;
                continue;
            }
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
        if let Err(e) = f.wait(FOLLOW_POLL) {
            tracing::debug!("standby: waiting for a notification: {e}");
            std::thread::sleep(FOLLOW_POLL);
        }
    }
    follower
}

/// The renewal thread: renews every `every`; each success moves the monotonic deadline to
/// `sent + keep`; a refused renewal (another node holds the term) steps down.
fn spawn_renewals(
    mut client: LeaseClient,
    fence: Fence,
    every: Duration,
    keep: Duration,
) -> Result<(), ServeError> {
    std::thread::Builder::new()
        .name("guichet-lease".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            if fence.is_retired() {
                return;
            }
            let sent = Instant::now();
            match client.renew(fence.term) {
                Ok(true) => {
                    fence.extend(sent + keep);
                    metrics::counter!(HA_LEASE_RENEWALS, "outcome" => "renewed").increment(1);
                    if let Err(e) = client.heartbeat("leader", fence.term, None) {
                        tracing::warn!("leader heartbeat: {e}");
                    }
                }
                Ok(false) => {
                    metrics::counter!(HA_LEASE_RENEWALS, "outcome" => "superseded").increment(1);
                    fence.superseded(&format!(
                        "term {} superseded: another node holds the lease",
                        fence.term
                    ));
                    return;
                }
                Err(e) => {
                    metrics::counter!(HA_LEASE_RENEWALS, "outcome" => "failed").increment(1);
                    tracing::warn!("the lease could not be renewed: {e}");
                }
            }
        })
        .map(|_| ())
        .map_err(|e| store_error(StoreError::Invalid(format!("lease thread: {e}"))))
}

/// The watchdog: steps down when the monotonic deadline passes without a renewal.
fn spawn_watchdog(fence: Fence) -> Result<(), ServeError> {
    std::thread::Builder::new()
        .name("guichet-lease-watchdog".into())
        .spawn(move || loop {
            if fence.is_retired() {
                return;
            }
            let now = Instant::now();
            let deadline = fence.deadline();
            if now >= deadline {
                fence.superseded(&format!(
                    "term {} not renewed before its deadline (the lease may have passed to \
                     another node)",
                    fence.term
                ));
                return;
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
        })
        .map(|_| ())
        .map_err(|e| store_error(StoreError::Invalid(format!("lease watchdog: {e}"))))
}

/// A standby's listeners, on the addresses it will serve on once leading.
struct Standby {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

type Leader = Arc<RwLock<String>>;

fn leader_of(leader: &Leader) -> String {
    leader.read().unwrap_or_else(|e| e.into_inner()).clone()
}

fn leader_header(leader: &str) -> HeaderValue {
    HeaderValue::from_str(leader).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// A gRPC call to a standby: `UNAVAILABLE`, with the leader's address in `guichet-leader`.
fn grpc_unavailable(leader: &str) -> Response {
    let message = format!("standby: not the leader; the leader is at {leader}");
    let encoded: String = message
        .bytes()
        .map(|b| {
            if (0x20..0x7f).contains(&b) && b != b'%' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let mut response = Response::new(axum::body::Body::empty());
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    h.insert("grpc-status", HeaderValue::from_static("14"));
    if let Ok(v) = HeaderValue::from_str(&encoded) {
        h.insert("grpc-message", v);
    }
    h.insert("guichet-leader", leader_header(leader));
    response
}

/// An HTTP request to a standby (other than `/healthz`): 503, naming the leader.
fn http_unavailable(leader: &str) -> Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("standby: not the leader; the leader is at {leader}\n"),
    )
        .into_response();
    let h = response.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    h.insert("guichet-leader", leader_header(leader));
    response
}

impl Standby {
    async fn start(config: &Config, leader: Leader) -> Result<Standby, ServeError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let until = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };

        // gRPC: health says NOT_SERVING; every other call UNAVAILABLE naming the leader.
        let grpc_addr = &config.server.grpc_addr;
        let listener = TcpListener::bind(grpc_addr)
            .await
            .map_err(|source| ServeError::Bind {
                addr: grpc_addr.clone(),
                source,
            })?;
        let (reporter, health) = tonic_health::server::health_reporter();
        for name in crate::api::health_names() {
            reporter
                .set_service_status(name, tonic_health::ServingStatus::NotServing)
                .await;
        }
        let l = leader.clone();
        let router = tonic::service::Routes::new(health)
            .into_axum_router()
            .fallback(move || {
                let leader = leader_of(&l);
                async move { grpc_unavailable(&leader) }
            });
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let grpc = tonic::transport::Server::builder()
            .add_routes(tonic::service::Routes::from(router))
            .serve_with_incoming_shutdown(incoming, until(stop_rx.clone()));
        tasks.push(tokio::spawn(async move {
            let _reporter = reporter;
            if let Err(e) = grpc.await {
                tracing::warn!("standby gRPC listener: {e}");
            }
        }));

        // HTTP: alive, not ready; the rest 503 naming the leader.
        let http_addr = &config.server.http_addr;
        let listener = TcpListener::bind(http_addr).await.map_err(|source| {
            ServeError::Http(crate::http::HttpError::Bind {
                addr: http_addr.clone(),
                source,
            })
        })?;
        let (l1, l2) = (leader.clone(), leader.clone());
        let app = axum::Router::new()
            .route("/healthz", axum::routing::get(|| async { "standby\n" }))
            .route(
                "/readyz",
                axum::routing::get(move || {
                    let leader = leader_of(&l1);
                    async move { http_unavailable(&leader) }
                }),
            )
            .route(
                "/metrics",
                axum::routing::get(|| async { crate::obs::metrics::install().render() }),
            )
            .fallback(move || {
                let leader = leader_of(&l2);
                async move { http_unavailable(&leader) }
            });
        let http = axum::serve(listener, app).with_graceful_shutdown(until(stop_rx.clone()));
        tasks.push(tokio::spawn(async move {
            if let Err(e) = http.await {
                tracing::warn!("standby HTTP listener: {e}");
            }
        }));

        // SMTP: 421, so that relays keep the mail and retry (on the leader, or here later).
        if let Some(inbound) = &config.email.inbound {
            let listener =
                TcpListener::bind(&inbound.listen)
                    .await
                    .map_err(|source| ServeError::Bind {
                        addr: inbound.listen.clone(),
                        source,
                    })?;
            let mut rx = stop_rx.clone();
            let domain = config.email.domain.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        accepted = listener.accept() => {
                            let Ok((mut socket, _)) = accepted else { continue };
                            let line = format!(
                                "421 4.3.2 {domain} standby, not the leader: try again later\r\n"
                            );
                            tokio::spawn(async move {
                                use tokio::io::AsyncWriteExt;
                                let _ = tokio::time::timeout(
                                    Duration::from_secs(5),
                                    socket.write_all(line.as_bytes()),
                                )
                                .await;
                                let _ = socket.shutdown().await;
                            });
                        }
                        _ = rx.wait_for(|s| *s) => return,
                    }
                }
            }));
        }
        Ok(Standby {
            stop: stop_tx,
            tasks,
        })
    }

    /// Stops the listeners (their ports are free again when it returns).
    async fn stop(self) {
        let _ = self.stop.send(true);
        for mut task in self.tasks {
            if tokio::time::timeout(Duration::from_secs(2), &mut task)
                .await
                .is_err()
            {
                task.abort();
                let _ = task.await;
            }
        }
    }
}
