//! The chat hub: live chat sessions, their link to interactions, and the committed events that
//! reach visitors (an agent joined, an agent's line, the end of the chat).
//!
//! A session is created by `start` and keyed by a ULID; the interaction is created with the
//! visitor's first line (external reference `chat:<session>`). When the socket goes away
//! without `end`, the session waits [`ChatConfig::grace_secs`] for a `resume`; then the chat is
//! abandoned (no agent answered yet) or completed without an agent (the agent answered).
//!
//! The committed events forwarded to visitors are in `hub/routing.rs`, the survey question's
//! hold and its asking again in `hub/survey.rs`, whether the chat takes visitors now and the
//! messages left when it does not in `hub/availability.rs`, the place-in-line updates and the
//! ending of chats a previous run left open in `hub/background.rs`.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tracing::Instrument;

use crate::channels::citizen::CitizenConfig;
use crate::core::{
    AgentId, Channel, Command, ContactId, EventKind, InteractionId, InteractionPhase,
    InteractionSpec, Message, MessageDirection, QueueId, Skill,
};
use crate::engine::StartContext;
use crate::engine::{run_view_from_now, Engine, EngineError};
use crate::survey::SurveysConfig;

use super::protocol::{ChatLine, ServerFrame};
use super::transcript::{self, TranscriptJob};
use super::{ChatConfig, Language};

mod availability;
mod background;
mod routing;
mod survey;
pub use availability::{Availability, LeaveRefused, LeftMessage};
use routing::Follower;

/// What a socket's writer is told to do.
#[derive(Debug)]
pub(super) enum Outgoing {
    /// Send this frame.
    Frame(ServerFrame),
    /// Close the socket with this code and reason.
    Close(u16, &'static str),
}

/// Where a connected socket's frames go.
pub(super) type Outbox = mpsc::Sender<Outgoing>;

/// Lines acknowledged per session that a resent `client_id` is recognised against.
const REMEMBERED_ACKS: usize = 1000;

/// Reads of the conversation at most when a socket resumes while lines keep coming.
const MAX_REPLAY_READS: usize = 8;

/// How long a completed chat's socket stays open for the survey question.
const SURVEY_WAIT: Duration = Duration::from_secs(15);

/// The longest visitor name.
const MAX_NAME_CHARS: usize = 100;

/// One visitor's chat.
struct Session {
    token: String,
    name: String,
    email: Option<String>,
    language: Language,
    queue: QueueId,
    topic: Option<String>,
    interaction: Option<InteractionId>,
    agent_name: Option<String>,
    transcript_to: Option<String>,
    /// The connected socket: its connection number and outbox.
    socket: Option<(u64, Outbox)>,
    /// Bumped on every connection change, so that a grace timer knows it is stale.
    epoch: u64,
    /// Why the chat is ending, once the visitor or the grace period ended it.
    ending: Option<&'static str>,
    /// The interaction is completed and the session stays open for the satisfaction survey's
    /// question (at most [`SURVEY_WAIT`]).
    awaiting_survey: bool,
    acked: HashMap<String, (String, u64)>,
    /// The place in line and expected wait last sent.
    last_position: Option<(usize, Option<u64>)>,
    /// The journal sequence number of the last line the socket was given (or that the widget
    /// said it shows, on `resume`): lines up to it are not sent again.
    delivered: u64,
    /// The highest sequence number of a line for the visitor that the hub has seen committed.
    routed: u64,
    /// A resumed socket is being given the lines it missed: live lines wait for that.
    replaying: bool,
    /// A line could not be queued for the socket (the visitor does not read fast enough): no
    /// more lines go to it; it is closed as too slow, and its `resume` gets the rest.
    stalled: bool,
}

impl Session {
    fn send(&self, frame: ServerFrame) {
        if let Some((_, outbox)) = &self.socket {
            if outbox.try_send(Outgoing::Frame(frame)).is_err() {
                tracing::warn!("chat visitor too slow to read: frame dropped");
            }
        }
    }

    /// Sends the line committed at `seq` to the socket, unless it already has it or is being
    /// replayed the lines it missed; lines go in journal order, none skipped, none twice.
    fn send_line(&mut self, seq: u64, frame: ServerFrame) {
        self.routed = self.routed.max(seq);
        if seq <= self.delivered || self.replaying || self.stalled {
            return;
        }
        let Some((_, outbox)) = &self.socket else {
            return;
        };
        if outbox.try_send(Outgoing::Frame(frame)).is_ok() {
            self.delivered = seq;
        } else {
            // The socket leaves as too slow; its `resume` carries on from `delivered`.
            tracing::warn!("chat visitor too slow to read: lines held until it resumes");
            self.stalled = true;
        }
    }

    fn transcript_job(&mut self) -> Option<TranscriptJob> {
        self.transcript_to.take().map(|to| TranscriptJob {
            to,
            visitor: self.name.clone(),
            language: self.language,
        })
    }
}

#[derive(Default)]
struct State {
    sessions: HashMap<String, Session>,
    by_interaction: HashMap<InteractionId, String>,
    /// Chats ended with a survey question not answered yet: a visitor who reconnects (a page
    /// reload) is asked it again. Kept [`SURVEY_RESUMABLE`], at most [`MAX_SURVEYED`].
    surveyed: HashMap<String, Surveyed>,
}

/// A chat ended with its survey question: what a reconnecting visitor gets again.
struct Surveyed {
    token: String,
    interaction: InteractionId,
    question: ServerFrame,
    reason: &'static str,
}

/// How long a visitor whose chat ended with a survey question may reconnect to get it again.
const SURVEY_RESUMABLE: Duration = Duration::from_secs(600);

/// Chats ended with a survey question kept for a reconnection, at most (beyond, the oldest
/// visitors reconnecting are told the chat ended, as before).
const MAX_SURVEYED: usize = 10_000;

impl State {
    /// The session of `interaction`'s visitor, if it is still there.
    fn session_of(&self, interaction: InteractionId) -> Option<&Session> {
        self.by_interaction
            .get(&interaction)
            .and_then(|s| self.sessions.get(s))
    }

    /// Removes a session; its socket is told why and closed.
    fn finish(&mut self, session: &str, reason: &str) {
        if let Some(s) = self.sessions.remove(session) {
            if let Some(id) = s.interaction {
                self.by_interaction.remove(&id);
            }
            s.send(ServerFrame::Ended {
                reason: reason.to_owned(),
            });
            if let Some((_, outbox)) = &s.socket {
                let _ = outbox.try_send(Outgoing::Close(1000, "chat ended"));
            }
        }
    }
}

/// Counts of what the chat did since the server started (for metrics and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChatCounters {
    /// Sessions open now (connected or within their grace period).
    pub sessions: u64,
    /// Sessions started.
    pub started: u64,
    /// Visitor lines committed.
    pub lines: u64,
    /// Frames refused as too big (close code 1009).
    pub refused_too_big: u64,
    /// Frames refused as not the protocol (close code 1008).
    pub refused_bad_frame: u64,
    /// Sockets refused for their origin (HTTP 403).
    pub refused_origin: u64,
    /// Chats abandoned or completed because the visitor did not come back in time.
    pub expired: u64,
}

#[derive(Default)]
struct Counts {
    started: AtomicU64,
    lines: AtomicU64,
    refused_too_big: AtomicU64,
    refused_bad_frame: AtomicU64,
    refused_origin: AtomicU64,
    expired: AtomicU64,
}

/// What a refusal was, for the counters.
#[derive(Debug, Clone, Copy)]
pub(super) enum Refusal {
    TooBig,
    BadFrame,
    Origin,
}

struct Inner {
    counts: Counts,
    engine: Engine,
    config: ChatConfig,
    /// `[surveys]`: which completed chats wait for a survey question.
    surveys: SurveysConfig,
    /// The widget's own origin (`[server] public_url`).
    own_origin: String,
    state: Mutex<State>,
    visitor_typing: broadcast::Sender<(InteractionId, bool)>,
    next_conn: AtomicU64,
    /// `[citizen]`: opening hours.
    citizen: CitizenConfig,
    /// The address messages left in the widget are answered from (`[email.outbound]
    /// from_address`); none: no message can be left.
    reply_address: Option<String>,
    /// Some waiting line may have moved since the positions were last sent.
    positions_dirty: AtomicBool,
}

/// The live chat sessions and their link to the engine. Cheap to clone.
#[derive(Clone)]
pub struct ChatHub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ChatHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatHub")
            .field("sessions", &self.lock().sessions.len())
            .finish()
    }
}

/// A `start` request, as validated by the socket.
pub(super) struct StartRequest {
    pub name: String,
    pub email: Option<String>,
    pub queue: Option<String>,
    pub topic: Option<String>,
    pub language: Option<String>,
}

impl ChatHub {
    /// Starts the hub (`[chat]`) on the engine's committed events; open chat interactions left
    /// by a previous run (whose sessions are gone) are ended after the grace period. `citizen`
    /// gives the opening hours, `surveys` which completed chats wait for the survey question,
    /// `reply_address` the address messages left in the widget are answered from (`[email.
    /// outbound] from_address`; none or empty: no message can be left). Fails only when the
    /// store cannot say where the journal ends.
    pub async fn start(
        cx: &StartContext,
        config: ChatConfig,
        citizen: CitizenConfig,
        surveys: SurveysConfig,
        reply_address: Option<String>,
    ) -> Result<ChatHub, crate::store::StoreError> {
        let engine = &cx.engine;
        let (visitor_typing, _) = broadcast::channel(1024);
        let hub = ChatHub {
            inner: Arc::new(Inner {
                counts: Counts::default(),
                engine: engine.clone(),
                config,
                surveys,
                own_origin: cx.public_base.clone(),
                state: Mutex::new(State::default()),
                visitor_typing,
                next_conn: AtomicU64::new(1),
                citizen,
                reply_address: reply_address.filter(|a| !a.trim().is_empty()),
                positions_dirty: AtomicBool::new(false),
            }),
        };
        let positions = hub.clone();
        tokio::spawn(async move { positions.tell_positions().await });
        let orphans = hub.clone();
        tokio::spawn(async move { orphans.end_orphans().await });
        // Follows the events committed from now on, none skipped.
        run_view_from_now(engine, Follower { hub: hub.clone() }).await?;
        Ok(hub)
    }

    /// What the chat did since the server started.
    pub fn counters(&self) -> ChatCounters {
        let c = &self.inner.counts;
        ChatCounters {
            sessions: self.lock().sessions.len() as u64,
            started: c.started.load(Ordering::Relaxed),
            lines: c.lines.load(Ordering::Relaxed),
            refused_too_big: c.refused_too_big.load(Ordering::Relaxed),
            refused_bad_frame: c.refused_bad_frame.load(Ordering::Relaxed),
            refused_origin: c.refused_origin.load(Ordering::Relaxed),
            expired: c.expired.load(Ordering::Relaxed),
        }
    }

    /// Counts a refusal.
    pub(super) fn refused(&self, what: Refusal) {
        let c = &self.inner.counts;
        let (counter, reason) = match what {
            Refusal::TooBig => (&c.refused_too_big, "too_big"),
            Refusal::BadFrame => (&c.refused_bad_frame, "bad_frame"),
            Refusal::Origin => (&c.refused_origin, "origin"),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        crate::channels::count_refusal("chat", reason);
    }

    /// The `[chat]` settings.
    pub fn config(&self) -> &ChatConfig {
        &self.inner.config
    }

    /// Visitors' typing, as (interaction, typing) pairs, for the agents' offer streams.
    pub fn visitor_typing(&self) -> broadcast::Receiver<(InteractionId, bool)> {
        self.inner.visitor_typing.subscribe()
    }

    /// Tells the visitor of `interaction` that the agent is (or stopped) typing; false when no
    /// visitor is connected to it.
    pub fn agent_typing(&self, interaction: InteractionId, typing: bool) -> bool {
        let state = self.lock();
        match state.session_of(interaction) {
            Some(session) if session.socket.is_some() => {
                session.send(ServerFrame::AgentTyping { typing });
                true
            }
            _ => false,
        }
    }

    /// Whether the visitor of `interaction` asked for the transcript and it is not sent yet.
    pub fn transcript_pending(&self, interaction: InteractionId) -> bool {
        let state = self.lock();
        state
            .session_of(interaction)
            .is_some_and(|s| s.transcript_to.is_some())
    }

    /// Commits the transcript the visitor of `interaction` asked for, if any (before the agent
    /// completes it: a completed interaction without wrap-up takes no more messages).
    pub async fn send_transcript(&self, interaction: InteractionId) -> Result<(), EngineError> {
        let job = {
            let mut state = self.lock();
            let sid = state.by_interaction.get(&interaction).cloned();
            sid.and_then(|sid| state.sessions.get_mut(&sid))
                .and_then(Session::transcript_job)
        };
        match job {
            Some(job) => transcript::commit(&self.inner.engine, interaction, job).await,
            None => Ok(()),
        }
    }

    /// Whether a page from `origin` may open the socket reached as `host` (the `Host` header):
    /// pages of the same origin (the widget itself), of `[server] public_url`, or of
    /// `[chat] allowed_origins`.
    pub(super) fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.trim_end_matches('/');
        let same_host = host.is_some_and(|h| {
            origin
                .split_once("://")
                .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(h))
        });
        same_host
            || origin.eq_ignore_ascii_case(&self.inner.own_origin)
            || self
                .inner
                .config
                .allowed_origins
                .iter()
                .any(|o| o == "*" || o.trim_end_matches('/').eq_ignore_ascii_case(origin))
    }

    /// A new connection number.
    pub(super) fn next_conn(&self) -> u64 {
        self.inner.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps inconsistent for our use.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a session for a connected socket; the error is the frame to send.
    pub(super) async fn open(
        &self,
        conn: u64,
        outbox: Outbox,
        req: StartRequest,
    ) -> Result<String, ServerFrame> {
        let bad = |text: String| ServerFrame::error("bad_request", text);
        let name = req.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(bad(format!(
                "name must be 1 to {MAX_NAME_CHARS} characters"
            )));
        }
        let email = match req.email.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(e) => Some(checked_email(e).map_err(bad)?),
        };
        let config = &self.inner.config;
        let language = match req.language.as_deref() {
            None | Some("") => Language::parse(&config.default_language).unwrap_or(Language::Fr),
            Some(l) => Language::parse(l)
                .ok_or_else(|| bad(format!("language {l:?} is not offered: use fr or en")))?,
        };
        let queue = match (&req.topic, &req.queue) {
            (Some(topic), _) if !topic.is_empty() => config
                .topics
                .get(topic)
                .cloned()
                .ok_or_else(|| bad(format!("unknown topic {topic:?}")))?,
            (_, Some(queue)) if !queue.is_empty() => {
                if *queue != config.default_queue && !config.topics.values().any(|q| q == queue) {
                    return Err(bad(format!(
                        "queue {queue:?} does not take web chats: use a topic of the widget"
                    )));
                }
                queue.clone()
            }
            _ => config.default_queue.clone(),
        };
        let queue = QueueId::new(queue);
        let q = queue.clone();
        let exists = self
            .inner
            .engine
            .read(move |r| r.queue(&q).is_some())
            .await
            .map_err(|_| ServerFrame::error("unavailable", "the service is not available"))?;
        if !exists {
            tracing::warn!(%queue, "chat queue does not exist: check [chat] in the configuration");
            return Err(ServerFrame::error(
                "unavailable",
                "the chat is not available at the moment",
            ));
        }
        let session = ulid::Ulid::new().to_string();
        let token = secret();
        let s = Session {
            token: token.clone(),
            name,
            email: email.clone(),
            language,
            queue,
            topic: req.topic.filter(|t| !t.is_empty()),
            interaction: None,
            agent_name: None,
            transcript_to: None,
            socket: Some((conn, outbox)),
            epoch: 0,
            ending: None,
            awaiting_survey: false,
            acked: HashMap::new(),
            last_position: None,
            delivered: 0,
            routed: 0,
            replaying: false,
            stalled: false,
        };
        let available = self.availability(&s.queue, language).await;
        if !available.live() {
            tracing::info!(queue = %s.queue, open = available.open, "chat not started: nobody available");
            return Err(ServerFrame::Unavailable {
                closed: !available.open,
                hours: available.hours,
                leave_message: self.inner.reply_address.is_some(),
            });
        }
        s.send(ServerFrame::Started {
            session: session.clone(),
            resume_token: token,
            grace_secs: config.grace_secs,
        });
        self.lock().sessions.insert(session.clone(), s);
        self.inner.counts.started.fetch_add(1, Ordering::Relaxed);
        tracing::info!(session = %session, "chat started");
        Ok(session)
    }

    /// Attaches a socket to an existing session and sends it the lines after `after` (the
    /// sequence number of the last line the widget shows; 0: the whole conversation), then
    /// the live lines: each line once, in journal order.
    pub(super) async fn resume(
        &self,
        conn: u64,
        outbox: Outbox,
        session: &str,
        token: &str,
        after: u64,
    ) -> Result<String, ServerFrame> {
        if !self.lock().sessions.contains_key(session) {
            if let Some(done) = self.resume_surveyed(&outbox, session, token, after).await {
                return done;
            }
        }
        let (interaction, agent) = {
            let mut state = self.lock();
            let Some(s) = state.sessions.get_mut(session) else {
                return Err(ServerFrame::error(
                    "unknown_session",
                    "this chat has ended or expired: start a new one",
                ));
            };
            if !crate::channels::same_secret(s.token.as_bytes(), token.as_bytes()) {
                return Err(ServerFrame::error(
                    "unknown_session",
                    "this chat has ended or expired: start a new one",
                ));
            }
            if let Some((_, old)) = s.socket.replace((conn, outbox)) {
                let _ = old.try_send(Outgoing::Frame(ServerFrame::error(
                    "replaced",
                    "this chat continues in another window",
                )));
                let _ = old.try_send(Outgoing::Close(1008, "resumed elsewhere"));
            }
            s.epoch += 1;
            s.last_position = None;
            // The widget's word: it shows the lines up to `after` (never past what exists).
            s.delivered = after;
            s.replaying = true;
            s.stalled = false;
            (s.interaction, s.agent_name.clone())
        };
        self.inner.positions_dirty.store(true, Ordering::Relaxed);
        // The lines committed after `after`, read from the store until the read holds every
        // line the hub has seen committed meanwhile (those wait while `replaying`).
        let mut history: Vec<ChatLine> = Vec::new();
        let mut since = after;
        for _ in 0..MAX_REPLAY_READS {
            if let Some(id) = interaction {
                match self.history(id, since).await {
                    Ok(lines) => history.extend(lines),
                    Err(e) => {
                        tracing::warn!(session, "chat history not read: {e}");
                        self.disconnected(session, conn);
                        return Err(ServerFrame::error(
                            "unavailable",
                            "the conversation could not be read: reconnect in a moment",
                        ));
                    }
                }
            }
            since = history.last().map_or(since, |l| l.seq.max(since));
            let mut state = self.lock();
            let Some(s) = state
                .sessions
                .get_mut(session)
                .filter(|s| s.socket.as_ref().is_some_and(|(c, _)| *c == conn))
            else {
                // Ended or resumed elsewhere meanwhile: that socket was told.
                return Ok(session.to_owned());
            };
            if s.routed > since {
                // A line was committed after the read: read again.
                continue;
            }
            s.delivered = since;
            s.replaying = false;
            s.send(ServerFrame::Resumed {
                session: session.to_owned(),
                agent,
                history,
            });
            tracing::info!(session, after, "chat resumed");
            return Ok(session.to_owned());
        }
        tracing::warn!(
            session,
            "chat history kept changing: the visitor is asked to resume"
        );
        self.disconnected(session, conn);
        Err(ServerFrame::error(
            "unavailable",
            "the conversation is busy: reconnect in a moment",
        ))
    }

    /// The conversation's lines after `after` (a sequence number) for the visitor.
    async fn history(
        &self,
        interaction: InteractionId,
        after: u64,
    ) -> Result<Vec<ChatLine>, crate::store::StoreError> {
        let entries = transcript::read(&self.inner.engine, interaction).await?;
        let entries: Vec<_> = entries.into_iter().filter(|e| e.seq > after).collect();
        let names = transcript::agent_names(&self.inner.engine, &entries).await;
        Ok(entries
            .iter()
            .filter(|e| !transcript::is_email_copy(&e.message))
            .map(|e| {
                let m = &e.message;
                let agent = m.direction == MessageDirection::Outbound;
                ChatLine {
                    seq: e.seq,
                    id: m.id.clone(),
                    from: if agent { "agent" } else { "visitor" },
                    name: if agent {
                        transcript::agent_label(&names, m)
                    } else {
                        m.from.clone()
                    },
                    text: m.text.clone(),
                    at: e.at.0,
                    client_id: if agent {
                        None
                    } else {
                        m.meta.get("client_id").cloned()
                    },
                }
            })
            .collect())
    }

    /// Checks that `conn` still owns `session`; the error is the frame to send before closing.
    fn owned(&self, session: &str, conn: u64) -> Result<(), ServerFrame> {
        match self.lock().sessions.get(session) {
            Some(s) if s.socket.as_ref().is_some_and(|(c, _)| *c == conn) => Ok(()),
            Some(_) => Err(ServerFrame::error(
                "replaced",
                "this chat continues in another window",
            )),
            None => Err(ServerFrame::error("unknown_session", "this chat has ended")),
        }
    }

    /// Stores a visitor line (creating the interaction with the first), then acknowledges it.
    pub(super) async fn message(
        &self,
        session: &str,
        conn: u64,
        text: String,
        client_id: Option<String>,
    ) -> Result<(), ServerFrame> {
        self.owned(session, conn)?;
        let text = text.trim_end().to_owned();
        if text.trim().is_empty() {
            return Err(ServerFrame::error("bad_request", "the message is empty"));
        }
        if client_id.as_ref().is_some_and(|c| c.len() > 100) {
            return Err(ServerFrame::error(
                "bad_request",
                "client_id is longer than 100 bytes",
            ));
        }
        let (command, interaction, first) = {
            let mut state = self.lock();
            let Some(s) = state.sessions.get(session) else {
                return Err(ServerFrame::error("unknown_session", "this chat has ended"));
            };
            if let Some((id, at)) = client_id.as_ref().and_then(|c| s.acked.get(c)) {
                s.send(ServerFrame::Ack {
                    client_id: client_id.clone(),
                    id: id.clone(),
                    at: *at,
                });
                return Ok(());
            }
            let mut message = Message::new(
                format!("chat:{}", ulid::Ulid::new()),
                MessageDirection::Inbound,
                text,
            );
            message.from = s.name.clone();
            message.to = "guichet".into();
            if let Some(c) = &client_id {
                message.meta.insert("client_id".into(), c.clone());
            }
            match s.interaction {
                Some(interaction) => (
                    Command::AddMessage {
                        interaction,
                        message,
                    },
                    interaction,
                    false,
                ),
                None => {
                    let spec = spec_for(session, s);
                    let id = spec.id;
                    // Known before the commit, so that no event of the new interaction is
                    // missed by the hub.
                    state.by_interaction.insert(id, session.to_owned());
                    if let Some(s) = state.sessions.get_mut(session) {
                        s.interaction = Some(id);
                    }
                    (Command::OpenConversation { spec, message }, id, true)
                }
            }
        };
        let span = tracing::info_span!("chat_message", interaction_id = %interaction);
        let result = self.inner.engine.send(command).instrument(span).await;
        let mut state = self.lock();
        let events = match result {
            Ok(events) => events,
            Err(e) => {
                if first {
                    state.by_interaction.remove(&interaction);
                    if let Some(s) = state.sessions.get_mut(session) {
                        s.interaction = None;
                    }
                }
                tracing::warn!(session, interaction_id = %interaction, "chat line refused: {e}");
                return Err(match e {
                    EngineError::Route(e) => ServerFrame::error("refused", e.to_string()),
                    EngineError::Overloaded => ServerFrame::error(
                        "unavailable",
                        "the service is busy: send your message again in a moment",
                    ),
                    _ => ServerFrame::error("unavailable", "the service is not available"),
                });
            }
        };
        let stored = events.iter().find_map(|e| match &e.kind {
            EventKind::MessageAdded { message, .. } => Some((message.id.clone(), e.at.0)),
            _ => None,
        });
        self.inner.counts.lines.fetch_add(1, Ordering::Relaxed);
        let Some(s) = state.sessions.get_mut(session) else {
            return Ok(());
        };
        if let Some((id, at)) = stored {
            if let Some(c) = &client_id {
                if s.acked.len() >= REMEMBERED_ACKS {
                    s.acked.clear();
                }
                s.acked.insert(c.clone(), (id.clone(), at));
            }
            s.send(ServerFrame::Ack { client_id, id, at });
        }
        if first {
            s.send(ServerFrame::Queued {
                reference: interaction.reference().to_string(),
                display_reference: crate::channels::citizen::reference(interaction),
            });
            self.inner.positions_dirty.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The visitor is (or stopped) typing: told to the agent offered or holding the chat.
    pub(super) fn typing(&self, session: &str, typing: bool) {
        let interaction = self
            .lock()
            .sessions
            .get(session)
            .and_then(|s| s.interaction);
        if let Some(id) = interaction {
            let _ = self.inner.visitor_typing.send((id, typing));
        }
    }

    /// Records the transcript request; it is committed when the chat ends.
    pub(super) fn request_transcript(&self, session: &str, email: &str) -> Result<(), ServerFrame> {
        let email = checked_email(email).map_err(|t| ServerFrame::error("bad_request", t))?;
        let mut state = self.lock();
        let Some(s) = state.sessions.get_mut(session) else {
            return Err(ServerFrame::error("unknown_session", "this chat has ended"));
        };
        s.transcript_to = Some(email.clone());
        s.send(ServerFrame::TranscriptRequested { email });
        Ok(())
    }

    /// The visitor ended the chat.
    pub(super) async fn end(&self, session: &str, conn: u64) -> Result<(), ServerFrame> {
        self.owned(session, conn)?;
        self.close(session, "visitor").await;
        Ok(())
    }

    /// The socket went away without `end`: the session waits for a `resume`.
    pub(super) fn disconnected(&self, session: &str, conn: u64) {
        let epoch = {
            let mut state = self.lock();
            let Some(s) = state.sessions.get_mut(session) else {
                return;
            };
            if s.socket.as_ref().is_none_or(|(c, _)| *c != conn) {
                return;
            }
            s.socket = None;
            s.epoch += 1;
            s.epoch
        };
        tracing::info!(session, "chat visitor disconnected: waiting for a resume");
        let hub = self.clone();
        let session = session.to_owned();
        let grace = Duration::from_secs(self.inner.config.grace_secs);
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let expired = hub
                .lock()
                .sessions
                .get(&session)
                .is_some_and(|s| s.socket.is_none() && s.epoch == epoch);
            if expired {
                tracing::info!(session, "chat visitor did not come back: ending the chat");
                hub.inner.counts.expired.fetch_add(1, Ordering::Relaxed);
                hub.close(&session, "expired").await;
            }
        });
    }

    /// Ends a session on the visitor's side: the transcript (if asked) is committed, then the
    /// interaction is abandoned (not answered yet) or completed without an agent (answered).
    async fn close(&self, session: &str, reason: &'static str) {
        let (interaction, job) = {
            let mut state = self.lock();
            let Some(s) = state.sessions.get_mut(session) else {
                return;
            };
            s.ending = Some(reason);
            match s.interaction {
                Some(id) => (id, s.transcript_job()),
                None => {
                    state.finish(session, reason);
                    return;
                }
            }
        };
        if let Some(job) = job {
            if let Err(e) = transcript::commit(&self.inner.engine, interaction, job).await {
                tracing::warn!(interaction_id = %interaction, "chat transcript not stored: {e}");
            }
        }
        let completed = end_interaction(&self.inner.engine, interaction).await;
        // Normally the interaction's end event has finished the session (or holds it for the
        // survey); if it could not be ended (already over), finish it here.
        let mut state = self.lock();
        if !(completed && self.hold_for_survey(&mut state, session, reason)) {
            state.finish(session, reason);
        }
    }
}

/// Abandons (waiting or offered) or completes without an agent (answered) an open chat; does
/// nothing to one already completed or ended.
async fn end_interaction(engine: &Engine, interaction: InteractionId) -> bool {
    // The phase may change between the read and the command (an agent accepts): try again.
    for _ in 0..3 {
        let phase = match engine.read(move |r| r.interaction(&interaction)).await {
            Ok(Some(v)) => v.phase,
            Ok(None) => return false,
            Err(e) => {
                tracing::warn!(interaction_id = %interaction, "chat not ended: {e}");
                return false;
            }
        };
        let completes = matches!(phase, InteractionPhase::Assigned { .. });
        let command = match phase {
            InteractionPhase::Waiting | InteractionPhase::Offered { .. } => {
                Command::Abandon { interaction }
            }
            InteractionPhase::Assigned { .. } => Command::Complete {
                interaction,
                agent: None,
                wrap_up_code: None,
                notes: None,
            },
            InteractionPhase::WrapUp { .. } => return true,
        };
        match engine.send(command).await {
            Ok(_) => return completes,
            Err(EngineError::Route(e)) => {
                tracing::debug!(interaction_id = %interaction, "chat end retried: {e}");
            }
            Err(e) => {
                tracing::warn!(interaction_id = %interaction, "chat not ended: {e}");
                return false;
            }
        }
    }
    false
}

/// The interaction a session's first line creates.
fn spec_for(session: &str, s: &Session) -> InteractionSpec {
    let mut spec = InteractionSpec::new(InteractionId::generate(), Channel::Chat, s.queue.clone());
    spec.external_ref = Some(Arc::from(format!("chat:{session}")));
    spec.contact = s.email.as_ref().map(|e| ContactId::new(e.to_lowercase()));
    spec.preferred = vec![Skill::new(format!("lang:{}", s.language.as_str()))];
    spec.attributes.insert("name", s.name.clone());
    spec.attributes.insert("language", s.language.as_str());
    spec.attributes.insert("chat_session", session);
    if let Some(e) = &s.email {
        spec.attributes.insert("email", e.clone());
    }
    if let Some(t) = &s.topic {
        spec.attributes.insert("topic", t.clone());
    }
    spec
}

/// A plausible email address (one `@`, a dot in the domain, no spaces, at most 254 bytes).
fn checked_email(email: &str) -> Result<String, String> {
    let email = email.trim();
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split('@').count() == 2
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
        });
    if ok {
        Ok(email.to_owned())
    } else {
        Err(format!("{email:?} is not an email address"))
    }
}

/// A random secret: 32 bytes, hex.
fn secret() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Distinct agents who wrote in a conversation.
pub(super) fn agents_of(entries: &[crate::store::ConversationEntry]) -> BTreeSet<AgentId> {
    entries
        .iter()
        .filter_map(|e| e.message.agent.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked() {
        assert!(checked_email("ana@example.org").is_ok());
        assert!(checked_email(" ana@example.org ").is_ok());
        for bad in [
            "ana",
            "ana@",
            "@example.org",
            "a b@example.org",
            "a@b@c.org",
            "a@org",
        ] {
            assert!(checked_email(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn secrets_compare() {
        assert_eq!(secret().len(), 64);
    }
}
