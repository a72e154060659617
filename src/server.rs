//! The server (`guichet serve`): starts the engine and wires everything around it. The gRPC
//! listener with the three services behind the token interceptor, gRPC health checking and
//! server reflection (unauthenticated, for probes and `grpcurl`) and optional TLS; the HTTP
//! listener with every channel's routes (phone, SMS, chat, inbound email webhook), metrics,
//! indicators, the survey page, the console and the same gRPC services through gRPC-web; the
//! SMTP listener; the notify outbox and the survey task.
//! Graceful shutdown: intake stops, commits finish, streams close with a status.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::config::Config;
use crate::engine::{Engine, EngineError, StartContext, StartReport};

use crate::api::auth::Auth;
use crate::api::desktop::{DesktopService, OfferHub};
use crate::api::history::History;
use crate::api::interactions::InteractionsService;
use crate::api::proto;
use crate::api::stats::LiveStats;
use crate::api::supervisor::SupervisorService;

/// Why the server could not start or stopped with an error.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The engine (database, recovery) failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The listening address could not be bound.
    #[error(
        "cannot listen on {addr}: {source} (is another server running? change [server] grpc_addr)"
    )]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The TLS files could not be read.
    #[error("cannot read TLS file {path}: {source}")]
    Tls {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The gRPC transport failed.
    #[error("gRPC server error: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The HTTP listener failed.
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
    /// `[limits] trusted_proxies` is not a list of addresses and ranges.
    #[error("[limits] trusted_proxies: {0}")]
    Proxies(#[from] crate::listen::clients::ProxyListError),
    /// A channel adapter or the outbox could not start (its configuration is unusable).
    #[error("{0}")]
    Channel(String),
    /// The email channel (SMTP listener) could not start.
    #[error(transparent)]
    Email(#[from] crate::channels::email::EmailError),
    /// The phone channel's IVR trees could not be loaded.
    #[error(transparent)]
    Voice(#[from] crate::channels::voice::TreeError),
}

/// The identity on requests: lets a router serve as one route's service.
fn same_request(request: axum::extract::Request) -> axum::extract::Request {
    request
}

/// What [`serve`] needs besides the configuration.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The configuration (addresses, store, seed).
    pub config: Config,
}

/// A started server: its address and what recovery found.
#[derive(Debug, Clone)]
pub struct Started {
    /// The address the gRPC listener is bound to (useful with port 0).
    pub grpc_addr: SocketAddr,
    /// The address the HTTP listener is bound to (useful with port 0).
    pub http_addr: SocketAddr,
    /// The address the SMTP listener is bound to, when `[email.inbound]` is configured.
    pub smtp_addr: Option<SocketAddr>,
    /// What the engine recovered at start.
    pub report: StartReport,
    /// The engine, for in-process use alongside the APIs.
    pub engine: Engine,
}

/// Why [`serve`] returned. A program running a PostgreSQL node should look at it: after
/// [`Stopped::SteppedDown`] the process must not serve again from its memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// The `shutdown` future resolved (or the node stopped while standing by).
    Shutdown,
    /// High availability: this leader's term is over (the reason given); it stopped routing
    /// and writing at once and the server stopped. `guichet serve` exits with
    /// [`crate::ha::EXIT_STEPPED_DOWN`] so that a service manager restarts it as a standby.
    SteppedDown(String),
}

/// Starts the engine, the gRPC listener and the HTTP listener; `on_start` is called once all
/// are ready, then the server runs until `shutdown` resolves. On shutdown: the listeners stop
/// taking calls, open streams end with `UNAVAILABLE`, every pending commit finishes and is
/// answered, the journal closes.
pub async fn serve(
    options: ServeOptions,
    on_start: impl AsyncFnOnce(&Started),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Stopped, ServeError> {
    let mut config = options.config;
    // Before the engine starts, so that its routing and journal metrics are recorded.
    crate::obs::metrics::install();
    // The shutdown signal, seen by the standby's wait as well as by the server.
    let (signal_tx, signal_rx) = tokio::sync::watch::channel(false);
    let signal = signal_tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = signal.send(true);
    });
    let components_signal = signal_rx.clone();
    let shutdown = {
        let mut rx = signal_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    // High availability: on PostgreSQL this node serves only once it holds the lease (a
    // standby until then); its journal then carries the term, and the end of the term stops
    // the server (the caller decides what follows, see [`Stopped::SteppedDown`]).
    let stepped_down = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    if config.store.backend == crate::store::Backend::Postgres {
        match crate::ha::lead(&config, signal_rx.clone()).await? {
            Some(leading) => {
                config.store.fence = Some(leading.fence);
                let (tx, mut down) = (signal_tx.clone(), leading.stepped_down);
                let why = stepped_down.clone();
                tokio::spawn(async move {
                    if let Ok(reason) = down.wait_for(|d| d.is_some()).await {
                        *why.lock().unwrap_or_else(|e| e.into_inner()) = reason.clone();
                        let _ = tx.send(true);
                    }
                });
            }
            None => {
                tracing::info!("stopped while standing by");
                return Ok(Stopped::Shutdown);
            }
        }
    } else {
        tracing::info!(
            "high availability: on SQLite this single node is always the leader ([ha] applies              on PostgreSQL only)"
        );
    }
    // Descriptors: the soft limit raised to the hard one, then shared between the listeners
    // with a reserve, so that a flood on one cannot starve the others.
    let open_files = crate::listen::raise_open_files();
    let smtp_max = config
        .email
        .inbound
        .as_ref()
        .map_or(64, |inbound| inbound.max_sessions);
    let budget = crate::listen::Budget::new(&config.limits, open_files, smtp_max);
    if let Some(inbound) = config.email.inbound.as_mut() {
        inbound.max_sessions = budget.smtp;
    }
    tracing::info!(
        open_files,
        http = budget.http,
        websockets = budget.websockets,
        grpc = budget.grpc,
        smtp = budget.smtp,
        "connection limits"
    );
    let (engine, report) = Engine::start(config.engine_config(), config.seed()).await?;
    let listener = TcpListener::bind(&config.server.grpc_addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.server.grpc_addr.clone(),
            source,
        })?;
    let grpc_addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: config.server.grpc_addr.clone(),
        source,
    })?;

    let (http_listener, http_addr) = crate::http::bind(&config).await?;
    // Callback URLs, webhook signatures and survey links use the address the outside sees:
    // `public_url`, else the address actually bound (which differs from `http_addr` with port 0).
    let public_base = match &config.server.public_url {
        Some(_) => config.server.public_base_url(),
        None => format!("http://{http_addr}"),
    };
    // Satisfaction surveys: asked after completion (when enabled), answered on their page, by
    // SMS or by email reply.
    // What every component is started with, besides its own section.
    let cx = StartContext::new(
        engine.clone(),
        public_base.clone(),
        components_signal,
        Duration::from_secs(config.server.shutdown_grace_secs),
    );
    let surveys = crate::survey::Surveys::new(
        &cx,
        config.surveys.clone(),
        config.indicators.clone(),
        config.survey_outlets(),
    );
    let email =
        crate::channels::email::EmailChannel::start(&cx, &config.email, surveys.clone()).await?;

    let auth = Auth::new(engine.store().clone());
    let chat = crate::channels::chat::ChatHub::start(
        &cx,
        config.chat.clone(),
        config.citizen.clone(),
        config.surveys.clone(),
        config
            .email
            .outbound
            .as_ref()
            .map(|o| o.from_address.clone()),
    )
    .await
    .map_err(|e| ServeError::Engine(EngineError::Store(e)))?;
    // Moves and passed delays told to the citizen (queues with inform_moved / inform_late).
    crate::channels::citizen::notices::spawn(
        engine.clone(),
        Duration::from_secs(config.citizen.late_check_secs),
    )
    .await;
    let hub = OfferHub::start_with_typing(&engine, Some(chat.visitor_typing()));
    crate::obs::metrics::Observer::start(&engine).await;
    crate::obs::indicators::Aggregator::start(&engine, &config.indicators)
        .await
        .map_err(|e| ServeError::Engine(EngineError::Store(e)))?;
    // After the aggregates have caught up: the day's counters survive a restart.
    let now = crate::engine::Clock::now(&crate::engine::SystemClock);
    let stats = LiveStats::start_with(&engine, &config.indicators, Some(now)).await;
    let days = crate::api::agent_day::AgentDays::start(&engine, &config.indicators, now).await;
    let history = History::start(&engine);
    let voice =
        crate::channels::voice::VoiceChannel::start(&engine, &config.voice, public_base.clone())
            .await?;
    let limit = config.server.max_message_bytes;

    let secret = engine
        .store()
        .run(|s| s.signing_secret(crate::store::ATTACHMENT_LINKS))
        .await
        .map_err(|e| ServeError::Engine(EngineError::Store(e)))?;
    let links = crate::http::attachments::AttachmentLinks::new(
        secret,
        &public_base,
        config.server.attachment_link_secs,
    );
    let desktop = InterceptedService::new(
        proto::agent_desktop_server::AgentDesktopServer::new(
            DesktopService::new(engine.clone(), hub, history.clone())
                .with_chat(chat.clone())
                .with_links(links.clone())
                .with_calls(voice.calls.clone())
                .with_days(days),
        )
        .max_decoding_message_size(limit)
        .max_encoding_message_size(crate::api::limits::MAX_SEND_BYTES),
        auth.clone(),
    );
    let supervisor = InterceptedService::new(
        proto::supervisor_server::SupervisorServer::new(
            SupervisorService::new(engine.clone(), stats, history).with_ivr(voice.trees.clone()),
        )
        .max_decoding_message_size(limit)
        .max_encoding_message_size(crate::api::limits::MAX_SEND_BYTES),
        auth.clone(),
    );
    let interactions = InterceptedService::new(
        proto::interactions_server::InteractionsServer::new(InteractionsService::new(
            engine.clone(),
        ))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(crate::api::limits::MAX_SEND_BYTES),
        auth.clone(),
    );
    // People signing in to the console; the service checks its own metadata.
    let signins = crate::signin::SignIns::new(
        engine.store().clone(),
        Duration::from_secs(config.server.session_secs),
    )
    .map_err(|e| ServeError::Channel(format!("password hashing: {e}")))?;
    let sessions = proto::sessions_server::SessionsServer::new(
        crate::api::sessions::SessionsService::new(signins, auth),
    )
    .max_decoding_message_size(16 * 1024);
    // The same services through gRPC-web on the HTTP listener's own origin, for the console.
    // Only these services' paths: the rest of the listener keeps its own 404s.
    let grpc_web_services = tonic::service::Routes::new(desktop.clone())
        .add_service(supervisor.clone())
        .add_service(interactions.clone())
        .add_service(sessions.clone())
        .into_axum_router()
        .layer(tower::layer::layer_fn(crate::api::decode::layer))
        .layer(tonic_web::GrpcWebLayer::new());
    let mut grpc_web = axum::Router::new();
    for name in crate::api::SERVICES {
        // (Wrapped: axum refuses a bare `Router` as a route's service.)
        grpc_web = grpc_web.route_service(
            &format!("/{name}/{{method}}"),
            tower::util::MapRequest::new(grpc_web_services.clone(), same_request),
        );
    }

    let (health_reporter, health) = tonic_health::server::health_reporter();
    for name in crate::api::health_names() {
        health_reporter
            .set_service_status(name, tonic_health::ServingStatus::Serving)
            .await;
    }
    // Reflection in both versions: v1 for current tools, v1alpha for the many that still ask
    // only for it (Python's grpcio-reflection, Postman, grpcui, Evans, older grpcurl).
    let reflection_builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_error = |e: tonic_reflection::server::Error| {
        ServeError::Engine(EngineError::Store(crate::store::StoreError::Invalid(
            format!("reflection descriptors: {e}"),
        )))
    };
    let reflection = reflection_builder().build_v1().map_err(reflection_error)?;
    let reflection_v1alpha = reflection_builder()
        .build_v1alpha()
        .map_err(reflection_error)?;

    let mut builder = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .tcp_nodelay(true);
    if let Some(tls) = &config.server.tls {
        let read = |path: &std::path::PathBuf| {
            std::fs::read(path).map_err(|source| ServeError::Tls {
                path: path.clone(),
                source,
            })
        };
        let identity = Identity::from_pem(read(&tls.cert)?, read(&tls.key)?);
        builder = builder.tls_config(ServerTlsConfig::new().identity(identity))?;
    }

    // Every channel adapter's HTTP routes.
    let mut http_routes: Vec<axum::Router> = vec![
        crate::channels::chat::routes(
            &chat,
            crate::channels::chat::SocketLimits::new(&config.limits, budget.websockets),
        ),
        voice.routes(),
    ];
    if let Some(email) = &email {
        http_routes.push(email.routes());
    }
    if let Some(sms) = &config.sms {
        http_routes.push(crate::channels::sms::routes(
            &cx,
            sms,
            config.citizen.clone(),
            surveys.clone(),
        ));
    }
    surveys.start(Some(std::sync::Arc::new(chat.clone())));
    http_routes.push(crate::http::survey::routes(surveys));
    http_routes.push(crate::http::attachments::routes(&engine, &config, links));
    http_routes.push(grpc_web);
    http_routes.push(crate::console::routes());
    // The outbox delivers outbound email and SMS; it ends when the engine stops.
    let outbox = crate::notify::Outbox::new(
        &engine,
        config.notify.clone(),
        config.email.outbound.as_ref(),
        &config.email.domain,
        config.sms.as_ref(),
    )
    .map_err(|e| ServeError::Channel(e.to_string()))?;
    outbox.start();
    let http_app = crate::http::router(&engine, &config, http_routes);

    let started = Started {
        grpc_addr,
        http_addr,
        smtp_addr: email.as_ref().map(|e| e.smtp_addr()),
        report,
        engine: engine.clone(),
    };
    on_start(&started).await;
    tracing::info!(%grpc_addr, %http_addr, "listening");

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (http_stop_tx, http_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (force_tx, force_rx) = tokio::sync::oneshot::channel::<()>();
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let engine_for_stop = engine.clone();
    let release_config = config.clone();
    let down = stepped_down.clone();
    tokio::spawn(async move {
        shutdown.await;
        // (The SMTP listener stops on the same signal, through its start context.)
        // A leader that stepped down can commit nothing more: nothing is worth waiting for.
        let grace = if down.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            grace.min(Duration::from_secs(1))
        } else {
            grace
        };
        tracing::info!("shutting down: intake stops, commits finish");
        let reporter = health_reporter;
        for name in crate::api::health_names() {
            reporter
                .set_service_status(name, tonic_health::ServingStatus::NotServing)
                .await;
        }
        // The engine stops first: pending commits are answered, and every stream sees its
        // event source close and ends with UNAVAILABLE; then the listener stops.
        let _ = tokio::time::timeout(grace, engine_for_stop.shutdown()).await;
        // The journal is closed: a standby may take over now.
        if let Some(fence) = &release_config.store.fence {
            crate::ha::release(&release_config, fence).await;
        }
        let _ = stop_tx.send(());
        let _ = http_stop_tx.send(());
        // Streams end once the engine has stopped; a client that stops reading could still
        // hold its connection open: after another grace period the listener is dropped.
        tokio::time::sleep(grace).await;
        let _ = force_tx.send(());
    });

    // Each accepted connection passes the gRPC gate and gets TCP_NODELAY: tonic ignores the builder's
    // `tcp_nodelay` with `serve_with_incoming*`, and with Nagle's algorithm on, a small response
    // written while an earlier segment is unacknowledged waits for the peer's (delayed) ACK:
    // at low rates that added several to tens of milliseconds to replies and offers.
    let proxies = std::sync::Arc::new(crate::listen::clients::TrustedProxies::parse(
        &config.limits.trusted_proxies,
    )?);
    let max_per_address = config.limits.max_per_address;
    let grpc_clients =
        crate::listen::clients::Clients::new("grpc", proxies.clone(), max_per_address);
    let incoming = crate::listen::gated_incoming(
        listener,
        crate::listen::Gate::new("grpc", "all", budget.grpc),
        grpc_clients.clone(),
    );
    let serving = builder
        .layer(tower::layer::layer_fn(move |inner| {
            crate::listen::clients::ClientService::new(inner, grpc_clients.clone())
        }))
        .layer(tower::layer::layer_fn(crate::api::decode::layer))
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(desktop)
        .add_service(supervisor)
        .add_service(interactions)
        .add_service(sessions)
        .serve_with_incoming_shutdown(incoming, async {
            let _ = stop_rx.await;
        });
    let http_settings = crate::http::conn::ConnSettings::new(
        &config.limits,
        budget.http,
        crate::listen::clients::Clients::new("http", proxies, max_per_address),
    );
    let http = tokio::spawn(crate::http::serve(
        http_listener,
        http_app,
        async {
            let _ = http_stop_rx.await;
        },
        http_settings,
    ));
    tokio::select! {
        result = serving => result?,
        Ok(()) = force_rx => {
            tracing::warn!("connections still open after the grace period: closing them");
        }
    }
    engine.shutdown().await;
    // Every view finishes what the engine committed (the aggregates' last fold, the move
    // notices' checkpoint) before the process ends.
    engine.views_ended(grace).await;
    // Requests in flight on the HTTP listener finish (they can no longer reach the engine).
    match tokio::time::timeout(grace, http).await {
        Ok(Ok(result)) => result?,
        Ok(Err(e)) => tracing::warn!("HTTP listener task failed: {e}"),
        Err(_) => tracing::warn!("HTTP requests still running after the grace period"),
    }
    // Calls in the IVR carry on after a restart: what is pending is written now.
    voice.shutdown().await;
    if let Some(email) = email {
        email.shutdown(grace).await;
    }
    let why = stepped_down
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    tracing::info!("stopped");
    Ok(match why {
        Some(why) => Stopped::SteppedDown(why),
        None => Stopped::Shutdown,
    })
}
