//! Prometheus metrics, rendered on `GET /metrics` of the HTTP listener.
//!
//! One recorder per process ([`install`]), without a listener of its own: the HTTP module
//! renders it from the [`PrometheusHandle`]. Most figures come from one place, the [`Observer`],
//! an engine subscriber that derives them from committed events (so the router's hot path pays
//! nothing); the waiting gauges and agents by state are read from the router when `/metrics`
//! is scraped ([`render`]); routing decision time is measured by the engine, journal commit
//! time and batch size by the journal's writer thread, HTTP requests by [`track_http`].
//!
//! Every name is in [`names`] and documented in `docs/observability.md`.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{counter, gauge, histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::core::{
    AgentState, Channel, DeclineCause, EndReason, Event, EventKind, InteractionId,
    InteractionPhase, Outcome, OutcomeFold, Pending, QueueId, Settled, Timestamp,
};
use crate::engine::{run_view, Engine, View, ViewBatch, ViewFailed};

/// The metric names.
pub mod names {
    /// Counter `{outcome}`: lease renewals by the leader (`renewed`, `failed`, `superseded`),
    /// high availability on PostgreSQL.
    pub const HA_LEASE_RENEWALS: &str = "guichet_ha_lease_renewals_total";
    /// Counter: takeovers of the lease by this node after it served as a standby.
    pub const HA_TAKEOVERS: &str = "guichet_ha_takeovers_total";
    /// Gauge: 1 while this node leads, 0 while it is a standby (PostgreSQL with `[ha]`).
    pub const HA_LEADER: &str = "guichet_ha_leader";
    /// Gauge: journal events a standby's followed router was behind the journal's end at its
    /// last poll (the whole journal's end until the router is built; the leader: 0).
    pub const HA_STANDBY_LAG: &str = "guichet_ha_standby_lag_events";
    /// Gauge: seconds between the oldest event a standby's last poll applied and that poll's
    /// end (0 when it was current; the leader: 0).
    pub const HA_STANDBY_LAG_SECONDS: &str = "guichet_ha_standby_lag_seconds";
    /// Counter `{queue, channel}`: interactions created.
    pub const INTERACTIONS_CREATED: &str = "guichet_interactions_created_total";
    /// Counter `{queue, channel}`: offers made to agents.
    pub const OFFERS: &str = "guichet_offers_total";
    /// Counter `{queue, channel}`: offers accepted.
    pub const OFFERS_ACCEPTED: &str = "guichet_offers_accepted_total";
    /// Counter `{queue, channel}`: offers declined by the agent.
    pub const OFFERS_DECLINED: &str = "guichet_offers_declined_total";
    /// Counter `{queue, channel}`: offers not answered in time.
    pub const OFFERS_TIMED_OUT: &str = "guichet_offers_timed_out_total";
    /// Counter `{queue, channel}`: offers withdrawn because the agent logged out.
    pub const OFFERS_REVOKED: &str = "guichet_offers_revoked_total";
    /// Counter `{queue, channel}`: interactions abandoned by the contact before an answer.
    pub const ABANDONED: &str = "guichet_interactions_abandoned_total";
    /// Counter `{queue, channel}`: interactions cancelled by their creator.
    pub const CANCELLED: &str = "guichet_interactions_cancelled_total";
    /// Counter `{queue, channel}`: interactions completed by an agent.
    pub const COMPLETED: &str = "guichet_interactions_completed_total";
    /// Histogram `{queue, channel}`: seconds from creation to the first acceptance.
    pub const WAIT_SECONDS: &str = "guichet_wait_seconds";
    /// Histogram `{queue, channel}`: seconds from acceptance to completion.
    pub const HANDLE_SECONDS: &str = "guichet_handle_seconds";
    /// Counter `{queue, channel}`: first answers by the SLA deadline.
    pub const SLA_MET: &str = "guichet_service_level_met_total";
    /// Counter `{queue, channel}`: first answers after the SLA deadline, and abandonments.
    pub const SLA_MISSED: &str = "guichet_service_level_missed_total";
    /// Gauge `{queue, channel}`: interactions waiting (not offered), read at scrape time.
    pub const WAITING: &str = "guichet_waiting";
    /// Gauge `{queue}`: open interactions (waiting, offered, assigned, in wrap-up).
    pub const OPEN: &str = "guichet_open_interactions";
    /// Gauge `{state}`: agents by state (`available`, `paused`, `wrap_up`, `offline`).
    pub const AGENTS: &str = "guichet_agents";
    /// Histogram: seconds the router took to handle one command (one command in
    /// [`crate::engine::DECISION_SAMPLE`] is timed).
    pub const ROUTING_DECISION_SECONDS: &str = "guichet_routing_decision_seconds";
    /// Histogram: seconds one journal transaction (group commit) took.
    pub const JOURNAL_COMMIT_SECONDS: &str = "guichet_journal_commit_seconds";
    /// Histogram: events per journal transaction.
    pub const JOURNAL_BATCH_EVENTS: &str = "guichet_journal_batch_events";
    /// Counter `{adapter, status}`: HTTP requests by first path segment and status code.
    pub const HTTP_REQUESTS: &str = "guichet_http_requests_total";
    /// Counter `{scheme}`: HMACs computed to check webhook signatures (`timestamped` for
    /// jambonz and the generic SIP API, `twilio`): at most one (two for Twilio) per request.
    pub const WEBHOOK_HMACS: &str = "guichet_webhook_hmac_total";
    /// Counter `{listener, kind}`: connections refused because a listener or a kind of
    /// traffic was at its maximum of concurrent connections.
    pub const CONNECTIONS_REFUSED: &str = "guichet_connections_refused_total";
    /// Gauge `{listener, kind}`: connections open now.
    pub const CONNECTIONS_OPEN: &str = "guichet_connections_open";
    /// Counter `{listener, reason}`: connections closed by a timeout (`header`, `body`,
    /// `start`, `pong`).
    pub const CONNECTION_TIMEOUTS: &str = "guichet_connection_timeouts_total";
    /// Counter `{reason}`: gRPC streams ended because their credential was revoked, expired
    /// or lost its role.
    pub const STREAMS_ENDED_AUTH: &str = "guichet_streams_ended_by_auth_total";
    /// Counter `{outcome}`: console sign-ins (`signed_in`, `refused`, `disabled`); throttled
    /// attempts are not checked, so not counted here.
    pub const SIGN_INS: &str = "guichet_sign_ins_total";
    /// Counter `{view}`: times a view of committed events fell behind and read the journal
    /// back ([`crate::engine::View`]).
    pub const VIEW_CATCH_UPS: &str = "guichet_view_catch_ups_total";
    /// Counter `{channel, reason}`: contacts a channel refused (closed, full, opted out...).
    pub const CHANNEL_REFUSALS: &str = "guichet_channel_refusals_total";
    /// Counter `{kind}` (`moved`, `late`): messages telling a citizen its request was moved to
    /// another service or passed its announced delay ([`crate::channels::citizen::notices`]).
    pub const CITIZEN_NOTICES: &str = "guichet_citizen_notices_total";
    /// Counter `{queue, channel, via}`: satisfaction questions sent.
    pub const SURVEYS_SENT: &str = "guichet_surveys_sent_total";
    /// Counter `{queue, channel, via}`: satisfaction answers recorded.
    pub const SURVEY_ANSWERS: &str = "guichet_survey_answers_total";
    /// Counter `{outcome}`: jambonz voicemail audio WebSockets
    /// ([`crate::channels::voice::listen`]): `refused` before the upgrade, `bad_metadata`,
    /// `received` (audio kept; `capped` too when cut at the cap), `unfiled` (its call had moved
    /// on, or the voicemail could not be created).
    pub const VOICEMAIL_STREAMS: &str = "guichet_voicemail_streams_total";
}

use names::*;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

const WAIT_BUCKETS: &[f64] = &[
    1.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 1800.0, 3600.0, 14_400.0,
    86_400.0, 432_000.0,
];
const DECISION_BUCKETS: &[f64] = &[
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 1e-2,
];
const COMMIT_BUCKETS: &[f64] = &[
    1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1.0,
];
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];

/// Installs the process's Prometheus recorder (once; later calls return the same handle). If
/// another recorder was installed first (an embedding application's), `/metrics` renders an
/// empty registry and a warning is logged.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let mut builder = PrometheusBuilder::new();
            for (name, buckets) in [
                (WAIT_SECONDS, WAIT_BUCKETS),
                (HANDLE_SECONDS, WAIT_BUCKETS),
                (ROUTING_DECISION_SECONDS, DECISION_BUCKETS),
                (JOURNAL_COMMIT_SECONDS, COMMIT_BUCKETS),
                (JOURNAL_BATCH_EVENTS, BATCH_BUCKETS),
            ] {
                builder = match builder.set_buckets_for_metric(Matcher::Full(name.into()), buckets)
                {
                    Ok(b) => b,
                    // Only refused for an empty list, which these are not.
                    Err(_) => PrometheusBuilder::new(),
                };
            }
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed: /metrics stays empty");
            }
            describe();
            // Histograms keep every sample until upkeep folds them into their buckets: without
            // a scrape, memory would grow with traffic. A small thread does it every 5 seconds.
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("guichet-metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "no metrics upkeep thread: histograms fold at scrapes only");
            }
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(INTERACTIONS_CREATED, "Interactions created");
    describe_counter!(OFFERS, "Offers made to agents");
    describe_counter!(OFFERS_ACCEPTED, "Offers accepted by agents");
    describe_counter!(OFFERS_DECLINED, "Offers declined by agents");
    describe_counter!(OFFERS_TIMED_OUT, "Offers not answered in time");
    describe_counter!(OFFERS_REVOKED, "Offers withdrawn at logout");
    describe_counter!(ABANDONED, "Interactions abandoned before an answer");
    describe_counter!(CANCELLED, "Interactions cancelled by their creator");
    describe_counter!(COMPLETED, "Interactions completed by an agent");
    describe_histogram!(WAIT_SECONDS, Unit::Seconds, "Creation to first acceptance");
    describe_histogram!(HANDLE_SECONDS, Unit::Seconds, "Acceptance to completion");
    describe_counter!(SLA_MET, "First answers by the SLA deadline");
    describe_counter!(
        SLA_MISSED,
        "First answers after the SLA deadline, and abandonments"
    );
    describe_gauge!(WAITING, "Interactions waiting, not offered");
    describe_gauge!(OPEN, "Open interactions");
    describe_gauge!(AGENTS, "Agents by state");
    describe_histogram!(
        ROUTING_DECISION_SECONDS,
        Unit::Seconds,
        "Router time per command, one command in 16 timed"
    );
    describe_histogram!(
        JOURNAL_COMMIT_SECONDS,
        Unit::Seconds,
        "Journal transaction time"
    );
    describe_histogram!(JOURNAL_BATCH_EVENTS, "Events per journal transaction");
    describe_counter!(HTTP_REQUESTS, "HTTP requests by adapter and status");
    describe_counter!(
        VOICEMAIL_STREAMS,
        "jambonz voicemail audio WebSockets by outcome"
    );
    describe_counter!(WEBHOOK_HMACS, "HMACs computed to check webhook signatures");
    describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections refused at a listener's maximum"
    );
    describe_gauge!(CONNECTIONS_OPEN, "Connections open by listener and kind");
    describe_counter!(CONNECTION_TIMEOUTS, "Connections closed by a timeout");
    describe_counter!(SIGN_INS, "Console sign-ins by outcome");
    describe_counter!(
        STREAMS_ENDED_AUTH,
        "gRPC streams ended by revocation, expiry or a role change"
    );
    describe_counter!(
        VIEW_CATCH_UPS,
        "Times a view of committed events fell behind and read the journal back"
    );
    describe_counter!(CHANNEL_REFUSALS, "Contacts refused by a channel, by reason");
    describe_counter!(SURVEYS_SENT, "Satisfaction questions sent");
    describe_counter!(SURVEY_ANSWERS, "Satisfaction answers recorded");
}

/// Renders every metric in the Prometheus text format, after reading the live gauges (waiting
/// per queue and channel, open per queue, agents by state) from the router. When the engine
/// cannot answer (stopped, overloaded), the gauges keep their last values.
pub async fn render(engine: &Engine) -> String {
    let handle = install();
    let live = engine
        .read(|r| {
            let queues: Vec<(QueueId, [u32; 4], usize)> = r
                .queues()
                .into_iter()
                .map(|q| {
                    let mut w = [0; 4];
                    for c in Channel::ALL {
                        w[c.index()] = q.waiting.get(c);
                    }
                    (q.config.id, w, q.open)
                })
                .collect();
            let mut agents = [0u32; 4];
            for a in r.agents() {
                agents[agent_slot(&a.state)] += 1;
            }
            (queues, agents)
        })
        .await;
    if let Ok((queues, agents)) = live {
        for (queue, waiting, open) in queues {
            for c in Channel::ALL {
                gauge!(WAITING, "queue" => queue.to_string(), "channel" => c.as_str())
                    .set(f64::from(waiting[c.index()]));
            }
            gauge!(OPEN, "queue" => queue.to_string()).set(open as f64);
        }
        for (slot, state) in AGENT_STATES.iter().enumerate() {
            gauge!(AGENTS, "state" => *state).set(f64::from(agents[slot]));
        }
    }
    handle.run_upkeep();
    let mut out = handle.render();
    super::process::ProcessFigures::read().render(&mut out);
    super::process::render_build_info(&mut out);
    out
}

const AGENT_STATES: [&str; 4] = ["available", "paused", "wrap_up", "offline"];

fn agent_slot(state: &AgentState) -> usize {
    match state {
        AgentState::Available => 0,
        AgentState::Paused { .. } => 1,
        AgentState::WrapUp { .. } => 2,
        AgentState::Offline => 3,
    }
}

/// Axum middleware (installed with `route_layer`, so that the matched route is known):
/// counts requests by adapter (the route's first path segment: `voice`, `sms`, `email`,
/// `chat`, `metrics`, ...) and status code.
pub async fn track_http(request: Request, next: Next) -> Response {
    let adapter = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| first_segment(p.as_str()));
    let response = next.run(request).await;
    counter!(HTTP_REQUESTS, "adapter" => adapter, "status" => response.status().as_u16().to_string())
        .increment(1);
    response
}

/// The first segment of a route path (`/sms/inbound` → `sms`, `/` → `root`); a file name's
/// extension is dropped (`/indicators.html` → `indicators`).
fn first_segment(path: &str) -> String {
    let segment = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let segment = segment.split('.').next().unwrap_or("");
    if segment.is_empty() {
        "root".to_owned()
    } else {
        segment.to_owned()
    }
}

/// What the observer remembers of an open interaction, for its labels and handle time.
#[derive(Debug, Clone)]
struct Track {
    queue: QueueId,
    channel: Channel,
    accepted_at: Option<Timestamp>,
}

/// Derives the event metrics from the engine's committed events, and logs each interaction's
/// events (at debug level) in a span carrying its `interaction_id`, `channel` and `queue`.
///
/// Every interaction metric is labelled with the queue and channel of the interaction's
/// creation (the queue credited with its outcome, as on every screen: `docs/figures.md`);
/// answers, service level met or missed, waits and abandonments come from the core's outcome
/// fold ([`OutcomeFold`]).
#[derive(Debug, Default)]
pub struct Observer {
    fold: OutcomeFold,
    open: HashMap<InteractionId, Track>,
    /// The metric handles of each (queue, channel) seen, looked up in the recorder once
    /// rather than for every event (building the labels and finding the series cost more than
    /// the rest of observing an event).
    series: HashMap<(QueueId, Channel), Series>,
}

/// The interaction metrics of one (queue, channel).
#[derive(Debug)]
struct Series {
    created: metrics::Counter,
    offers: metrics::Counter,
    accepted: metrics::Counter,
    declined: metrics::Counter,
    timed_out: metrics::Counter,
    revoked: metrics::Counter,
    completed: metrics::Counter,
    abandoned: metrics::Counter,
    cancelled: metrics::Counter,
    sla_met: metrics::Counter,
    sla_missed: metrics::Counter,
    wait: metrics::Histogram,
    handle: metrics::Histogram,
}

impl Series {
    fn new(queue: &QueueId, channel: Channel) -> Series {
        let labels = [
            ("queue", queue.to_string()),
            ("channel", channel.as_str().to_owned()),
        ];
        Series {
            created: counter!(INTERACTIONS_CREATED, &labels),
            offers: counter!(OFFERS, &labels),
            accepted: counter!(OFFERS_ACCEPTED, &labels),
            declined: counter!(OFFERS_DECLINED, &labels),
            timed_out: counter!(OFFERS_TIMED_OUT, &labels),
            revoked: counter!(OFFERS_REVOKED, &labels),
            completed: counter!(COMPLETED, &labels),
            abandoned: counter!(ABANDONED, &labels),
            cancelled: counter!(CANCELLED, &labels),
            sla_met: counter!(SLA_MET, &labels),
            sla_missed: counter!(SLA_MISSED, &labels),
            wait: histogram!(WAIT_SECONDS, &labels),
            handle: histogram!(HANDLE_SECONDS, &labels),
        }
    }
}

impl Observer {
    /// Starts observing as a view of committed events: the pending interactions come from the
    /// indicator aggregates (as of their cursor, the later events being observed on start),
    /// the labels of open interactions from the router.
    pub async fn start(engine: &Engine) {
        install();
        let mut observer = Observer::default();
        let after = observer.load(engine, 0).await;
        run_view(engine, observer, after);
    }

    /// Takes the fold's pending interactions from the indicator aggregates when the journal
    /// holds every event after them, that is after `floor` (else from the router), and the labels of open interactions from the router, as
    /// a fresh view does; returns the sequence number to follow the journal after. The
    /// counters are kept: they count since the process started.
    async fn load(&mut self, engine: &Engine, floor: u64) -> u64 {
        let state = engine.store().run(|s| s.indicator_state("")).await;
        let after = match state {
            Ok(state) if state.cursor >= floor => {
                self.fold = OutcomeFold::resume(state.pending);
                Some(state.cursor)
            }
            _ => None,
        };
        self.open.clear();
        if let Ok((open, seq)) = engine
            .read_at(|r| {
                r.interactions()
                    .into_iter()
                    .map(|v| {
                        let answered = v.transfer.is_some();
                        (
                            v.spec.id,
                            Track {
                                queue: v.spec.queue.clone(),
                                channel: v.spec.channel,
                                accepted_at: None,
                            },
                            v.spec.channel,
                            v.phase.clone(),
                            v.created_at,
                            v.sla_deadline,
                            answered,
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .await
        {
            let mut pending = Vec::new();
            for (id, track, channel, phase, created, deadline, answered) in open {
                let waiting = !answered
                    && matches!(
                        phase,
                        InteractionPhase::Waiting | InteractionPhase::Offered { .. }
                    );
                if after.is_none() && waiting {
                    pending.push((
                        id,
                        Pending {
                            queue: track.queue.clone(),
                            channel,
                            created,
                            sla_deadline: deadline,
                        },
                    ));
                }
                self.open.insert(id, track);
            }
            if after.is_none() {
                self.fold = OutcomeFold::resume(pending);
            }
            after.unwrap_or(seq)
        } else {
            after.unwrap_or(floor)
        }
    }

    /// Counts one committed event.
    pub fn observe(&mut self, event: &Event) {
        let at = event.at;
        let kind = &event.kind;
        if let EventKind::InteractionCreated { spec, .. } = kind {
            self.open.insert(
                spec.id,
                Track {
                    queue: spec.queue.clone(),
                    channel: spec.channel,
                    accepted_at: None,
                },
            );
        }
        let outcome = self.fold.apply(event);
        let Some(id) = kind.interaction() else {
            return;
        };
        let Some(track) = self.open.get_mut(&id) else {
            return;
        };
        let span = tracing::debug_span!(
            "interaction",
            interaction_id = %id,
            channel = %track.channel,
            queue = %track.queue
        );
        let _entered = span.enter();
        tracing::debug!(event = kind.name(), agent_id = ?kind.agent(), "interaction event");
        let m = self
            .series
            .entry((track.queue.clone(), track.channel))
            .or_insert_with(|| Series::new(&track.queue, track.channel));
        if let Some(Outcome::Settled { how, .. }) = &outcome {
            let within = outcome.as_ref().and_then(Outcome::within_delay) == Some(true);
            match how {
                Settled::Answered => {
                    let wait = outcome.as_ref().and_then(Outcome::waited_ms).unwrap_or(0);
                    m.wait.record(wait as f64 / 1000.0);
                    if within {
                        m.sla_met.increment(1);
                    } else {
                        m.sla_missed.increment(1);
                    }
                }
                Settled::Abandoned => {
                    m.abandoned.increment(1);
                    m.sla_missed.increment(1);
                }
                Settled::Cancelled => {}
            }
        }
        match kind {
            EventKind::InteractionCreated { .. } => m.created.increment(1),
            EventKind::InteractionOffered { .. } => m.offers.increment(1),
            EventKind::OfferAccepted { .. } => {
                m.accepted.increment(1);
                track.accepted_at = Some(at);
            }
            EventKind::OfferDeclined { cause, .. } => match cause {
                DeclineCause::Declined => m.declined.increment(1),
                DeclineCause::TimedOut => m.timed_out.increment(1),
                DeclineCause::Revoked => m.revoked.increment(1),
            },
            EventKind::InteractionCompleted { .. } => {
                m.completed.increment(1);
                if let Some(accepted) = track.accepted_at {
                    let handle = at.0.saturating_sub(accepted.0) as f64 / 1000.0;
                    m.handle.record(handle);
                }
                self.open.remove(&id);
            }
            EventKind::InteractionEnded { reason, .. } => {
                if *reason == EndReason::Cancelled {
                    m.cancelled.increment(1);
                }
                self.open.remove(&id);
            }
            _ => {}
        }
    }
}

impl View for Observer {
    fn name(&self) -> &'static str {
        "metrics"
    }

    async fn apply(&mut self, batch: ViewBatch) -> Result<(), ViewFailed> {
        for event in &batch.events {
            self.observe(event);
        }
        Ok(())
    }

    async fn rebuild(&mut self, engine: &Engine, seq: u64) -> Result<u64, ViewFailed> {
        // The journal lost events this view missed: start again as a fresh view does (the
        // events lost are not counted; every interaction open is settled right from here).
        let after = self.load(engine, seq).await;
        if after < seq {
            return Err(ViewFailed("the router could not be read".into()));
        }
        tracing::warn!(
            missed_before = after,
            "events purged from the journal before the metrics counted them: rebuilt"
        );
        Ok(after)
    }
}
