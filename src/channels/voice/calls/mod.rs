//! Calls in progress: what each gateway request means for a call, whatever the protocol.
//!
//! This file owns [`Calls`] (the table of calls followed, by gateway and call id), the
//! life of one call ([`Phase`]) and the neutral requests the protocol adapters turn webhooks
//! into ([`CallEvent`]). Each request is answered with [`Verb`]s that the adapter renders.
//!
//! A call's life: `Ivr` (the interpreter walks the tree version the call started on; its state
//! is kept between requests) → `Waiting` (the tree reached a queue node: the voice interaction
//! was created through the engine with the call id as external reference, and the caller is
//! in the hold loop) → `Connecting` (an agent accepted: the next instruction is a dial to the
//! agent's device, pushed at once through the gateway's REST API, or served at the next hold
//! poll) → `Bridged` → `Ended`. Side roads: voicemail, transfer, callback request (the caller
//! hangs up, the interaction keeps its place, and Guichet calls back when an agent accepts).
//!
//! Idempotence: the engine ignores a second creation with the same external reference, and
//! every answer carries a turn number (`?t=N` in callback URLs, `turn` in SIP events): a request
//! for an earlier turn is a gateway retry and gets the same answer again, without acting twice.
//! After a restart, a request for an unknown call is served from its open interaction (found
//! by its external reference: queued calls), else from its saved IVR state (calls in a menu,
//! written behind the webhook path by [`SessionLog`]), else, for a menu answer or a redirect
//! that names the dialled number, by starting the tree again with an apology (the state was
//! lost in a crash within the write-behind window).
//!
//! Hold polls: the router is read only when an announcement is due, when a committed event
//! touched the interaction since the last poll (`follow_events` marks it), or when event
//! batches were missed; otherwise the poll is answered from memory.
//!
//! Files: this one holds the table and the neutral requests; [`step`] a call's way through
//! its phases; [`hold`] the hold loop; [`bridge`] connecting accepted calls to agents;
//! [`recovery`] calls across restarts; [`voicemail`] jambonz's voicemail audio and its
//! filing; [`prompts`] what Guichet itself says to callers.
//!
//! Concurrency: each call sits behind its own `tokio::sync::Mutex`, held while one request of
//! that call is handled (including the engine round trip), so that two requests of the same
//! call are handled one after the other; requests of different calls never wait for each
//! other.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use dashmap::DashMap;

use crate::core::{
    Attachment, Channel, Command, ContactId, EventKind, InteractionId, InteractionPhase,
    InteractionSpec, Message, MessageDirection, Timestamp,
};
use crate::engine::{
    run_view, Clock, Engine, EngineError, SystemClock, View, ViewBatch, ViewFailed,
};
use crate::ivr::{
    outcome_verbs, CallContext, CallSession, DialTarget, Input, Outcome, SessionState, Step, Verb,
};

mod bridge;
mod hold;
mod prompts;
mod recovery;
mod step;
mod voicemail;

use bridge::log_bridge;

pub use prompts::fallback_verbs;
use prompts::{
    announcement, apology, callback_confirmation, ended_message, french, lost_apology,
    voicemail_thanks,
};

use super::conference::ConsultStep;
use super::config::{HoldConfig, VoiceConfig};
use super::gateway::{Gateway, Outbound, OutboundError};
use super::persist::{SavedPhase, SessionLog, Snapshot};
use super::sign::TwilioSigner;
use super::trees::IvrTrees;

/// A request from a gateway, in neutral terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// A new call (or the gateway retrying its first request).
    Incoming {
        /// The caller.
        from: String,
        /// The dialled number.
        to: String,
    },
    /// The caller's answer to a gather.
    Input(Input),
    /// The gateway asks what to do next (after a redirect, or a hold segment).
    Continue,
    /// The dial to the agent (or a transfer) ended.
    DialEnded,
    /// A voicemail recording finished.
    Recording(Recording),
    /// A final transcription of the voicemail being recorded (jambonz `transcriptionHook`).
    Transcript(String),
    /// The call ended (final status callback, or the SIP server's hang-up event).
    Hangup,
}

/// A finished voicemail recording, as the gateway describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recording {
    /// Where the recording can be fetched (`RecordingUrl`, `recording_url`).
    pub url: Option<String>,
    /// Its length in seconds, as the gateway wrote it (`RecordingDuration`,
    /// `recording_duration`).
    pub duration: Option<String>,
    /// Its transcription, when the gateway made one (`TranscriptionText`, `transcription`).
    pub transcription: Option<String>,
    /// The audio itself, when Guichet received it (jambonz `listen`): kept in the store.
    pub audio: Option<Box<RecordedAudio>>,
    /// Set by the channel: the call's audio is still streaming (jambonz's `actionHook` came
    /// first); the stream's end files the voicemail.
    pub streaming: bool,
}

/// A voicemail's audio as Guichet received it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RecordedAudio {
    /// The WAV file (16-bit PCM, one channel).
    pub wav: Vec<u8>,
    /// Samples per second.
    pub sample_rate: u32,
    /// Its length in milliseconds.
    pub duration_ms: u64,
}

impl std::fmt::Debug for RecordedAudio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordedAudio")
            .field("bytes", &self.wav.len())
            .field("sample_rate", &self.sample_rate)
            .field("duration_ms", &self.duration_ms)
            .finish()
    }
}

impl Recording {
    /// The voicemail as the first inbound message of its interaction: the transcription (or
    /// a line saying a voicemail was left) as text, the recording as an attachment (its
    /// content when Guichet received the audio, else listed without content: it stays at the
    /// gateway), and `recording_url`, `recording_duration` and `transcription` in the
    /// message's meta.
    fn message(&self, gateway: Gateway, sid: &str, context: &CallContext) -> Message {
        let transcription = self
            .transcription
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let duration = match &self.audio {
            Some(audio) => Some(audio.duration_ms.div_ceil(1000).to_string()),
            None => self.duration.clone(),
        };
        let text = match (transcription, &duration) {
            (Some(t), _) => t.to_owned(),
            (None, Some(d)) if french(&context.language) => format!("Message vocal ({d} s)"),
            (None, Some(d)) => format!("Voicemail ({d} s)"),
            (None, None) if french(&context.language) => "Message vocal".to_owned(),
            (None, None) => "Voicemail".to_owned(),
        };
        let mut message = Message::new(
            format!("voice:{}:{sid}:voicemail", gateway.name()),
            MessageDirection::Inbound,
            text,
        );
        message.from = context.caller.clone();
        message.to = context.called.clone();
        if let Some(audio) = &self.audio {
            message.attachments.push(Attachment {
                name: format!("voicemail-{sid}.wav"),
                content_type: "audio/wav".to_owned(),
                size: audio.wav.len() as u64,
                data_base64: base64::engine::general_purpose::STANDARD.encode(&audio.wav),
            });
            message.meta.insert(
                "recording_sample_rate".into(),
                audio.sample_rate.to_string(),
            );
            message.meta.insert(
                "recording_duration_ms".into(),
                audio.duration_ms.to_string(),
            );
        } else if let Some(url) = &self.url {
            let mp3 = url.to_ascii_lowercase().ends_with(".mp3");
            message.attachments.push(Attachment {
                name: format!("voicemail-{sid}.{}", if mp3 { "mp3" } else { "wav" }),
                content_type: if mp3 { "audio/mpeg" } else { "audio/wav" }.to_owned(),
                size: 0,
                data_base64: String::new(),
            });
            message.meta.insert("recording_url".into(), url.clone());
        }
        if let Some(d) = &duration {
            message.meta.insert("recording_duration".into(), d.clone());
        }
        if let Some(t) = transcription {
            message.meta.insert("transcription".into(), t.to_owned());
        }
        message
    }
}

/// An answer: the verbs of one turn, shared between the response and the call's memory of
/// it (replayed to retries) without copying.
pub type Answer = Arc<[Verb]>;

/// One gateway request about a call, as a protocol adapter parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRequest {
    /// The gateway's call id.
    pub sid: String,
    /// The turn the request answers (from the callback URL or the event), when it says.
    pub turn: Option<u32>,
    /// What happened.
    pub event: CallEvent,
    /// The caller, when the request names it (Twilio and jambonz send it with every request).
    pub from: Option<String>,
    /// The dialled number, when the request names it: lets a call whose state was lost restart
    /// at its tree's entry.
    pub to: Option<String>,
}

impl CallRequest {
    /// A request that names neither number.
    pub fn new(sid: impl Into<String>, turn: Option<u32>, event: CallEvent) -> CallRequest {
        CallRequest {
            sid: sid.into(),
            turn,
            event,
            from: None,
            to: None,
        }
    }
}

/// Why a request could not be served. Each maps to a 4xx or 5xx in the adapters.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No tree answers the dialled number.
    #[error("no IVR tree answers the number {0}")]
    UnknownNumber(String),
    /// The request is about a call Guichet does not know.
    #[error("unknown call {0}: it must start with an incoming-call request")]
    UnknownCall(String),
    /// Too many calls are followed at once.
    #[error("too many calls in progress")]
    TooManyCalls,
    /// The engine is overloaded or stopped.
    #[error("the router is not taking calls right now: {0}")]
    Unavailable(String),
    /// The tree sent the call to something the router refuses (an unknown queue...).
    #[error("the call could not be queued: {0}")]
    Refused(String),
}

/// Where a call stands.
#[derive(Debug, Clone)]
pub enum Phase {
    /// In the IVR, waiting for the caller's answer to the node in the state.
    Ivr(SessionState),
    /// Queued as `interaction`; the caller is in the hold loop.
    Waiting {
        /// The voice interaction.
        interaction: InteractionId,
        /// Its queue (for hold settings).
        queue: String,
        /// The call's language (for announcements).
        language: String,
        /// When the position was last announced.
        announced_at: Option<Instant>,
    },
    /// An agent accepted; the next instruction is a dial to `device`.
    Connecting {
        /// The interaction.
        interaction: InteractionId,
        /// The agent's device.
        device: String,
        /// When the agent accepted (the event's time).
        accepted_at: Timestamp,
    },
    /// The dial to the agent was handed to the gateway.
    Bridged {
        /// The interaction.
        interaction: InteractionId,
        /// The agent's device (a racing request gets the same dial again).
        device: String,
    },
    /// The call is in a conference room for a warm transfer (Twilio, see `conference.rs`):
    /// the caller, the agent holding it and, once it accepted, the consulted agent.
    Conferenced {
        /// The interaction.
        interaction: InteractionId,
        /// The call leg of the agent holding the interaction.
        holder_leg: String,
        /// The call leg of the consulted agent, once dialled.
        consulted_leg: Option<String>,
        /// Whether the caller's leg was answered with the room (its dial to the first agent
        /// ended when that agent's leg moved to the room).
        joined: bool,
    },
    /// The caller asked to be called back and hung up; the interaction keeps its place.
    CallbackRequested {
        /// The interaction.
        interaction: InteractionId,
    },
    /// A voicemail is being recorded; it becomes an interaction when it ends.
    Recording {
        /// The queue that receives it.
        queue: String,
        /// What the IVR learnt.
        context: CallContext,
    },
    /// The voicemail was filed (its interaction created); the gateway's next request hears
    /// the thanks and the hang-up.
    VoicemailLeft {
        /// The call's language.
        language: String,
    },
    /// Over (hung up, transferred, refused).
    Ended,
}

/// One call followed.
#[derive(Debug)]
pub struct Call {
    /// The gateway it came through.
    pub gateway: Gateway,
    /// The gateway's call id.
    pub sid: String,
    /// The caller, normalised.
    pub from: String,
    /// The dialled number, normalised.
    pub to: String,
    /// Where it stands.
    pub phase: Phase,
    /// The turn of the last answer.
    pub turn: u32,
    /// The last answer, replayed to retries.
    pub last: Answer,
    /// Last request or change.
    pub touched: Instant,
    /// Whether its IVR state was handed to the write-behind log (and not removed since).
    pub saved: bool,
    /// The missed-events epoch when the hold loop last read the interaction from the router
    /// (`u64::MAX`: never).
    pub checked: u64,
}

/// The table of calls, and what it needs to act on them.
#[derive(Debug, Clone)]
pub struct Calls {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    engine: Engine,
    config: VoiceConfig,
    base: String,
    trees: IvrTrees,
    outbound: Outbound,
    twilio_signer: Option<TwilioSigner>,
    sessions: SessionLog,
    calls: DashMap<String, Arc<tokio::sync::Mutex<Call>>>,
    by_interaction: DashMap<InteractionId, String>,
    /// Interactions of waiting calls with a committed event since their last hold poll.
    changed: DashMap<InteractionId, ()>,
    /// Bumped whenever `follow_events` cannot see events (purged from the journal before it
    /// read them): every waiting call then reads
    /// its interaction at its next poll.
    lag_epoch: AtomicU64,
    /// Voicemail audio streams in progress (jambonz `listen`), by call key: `true` once the
    /// stream ended and its voicemail was filed.
    streams: DashMap<String, tokio::sync::watch::Receiver<bool>>,
    /// Voicemail audio received, waiting for its transcription, by call key.
    pending_audio: DashMap<String, Box<RecordedAudio>>,
    /// Final transcriptions of voicemails being recorded, by call key (at most
    /// [`MAX_TRANSCRIPT_CHARS`]).
    transcripts: DashMap<String, String>,
    /// Consultation events for the warm-transfer worker ([`super::conference`]), in order.
    consult_steps: tokio::sync::mpsc::Sender<ConsultStep>,
    /// The worker's end of `consult_steps`, until `follow_events` starts it.
    consult_inbox: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<ConsultStep>>>,
}

/// Consultation events waiting for the warm-transfer worker, at most.
const CONSULT_BACKLOG: usize = 1024;

/// How long a voicemail whose audio ended waits for its transcription (jambonz posts it
/// before the listen's `actionHook`, which files the voicemail at once) before it is filed
/// without it.
pub const TRANSCRIPT_WAIT: Duration = Duration::from_secs(5);

/// The longest voicemail transcription kept.
pub const MAX_TRANSCRIPT_CHARS: usize = 4_000;

/// How long jambonz's `actionHook` after a `listen` waits for the audio stream to end.
pub const STREAM_END_WAIT: Duration = Duration::from_secs(10);

/// A voicemail audio stream in progress; dropping it marks the stream ended.
#[derive(Debug)]
pub struct StreamGuard {
    calls: Calls,
    key: String,
    done: tokio::sync::watch::Sender<bool>,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let _ = self.done.send(true);
        self.calls.inner.streams.remove(&self.key);
    }
}

/// The device of the agent an interaction in `phase` is offered to or held by, if any.
fn agent_device(r: &crate::core::Router, phase: &InteractionPhase) -> Option<String> {
    phase
        .agent()
        .and_then(|a| r.agent(a))
        .and_then(|a| a.config.device)
}

fn key(gateway: Gateway, sid: &str) -> String {
    format!("{}:{sid}", gateway.name())
}

fn now_ts() -> Timestamp {
    SystemClock.now()
}

fn chrono_now(ts: Timestamp) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ts.0 as i64).unwrap_or_default()
}

impl Calls {
    /// The call table over `engine`, answering with callback URLs under `base` (the public
    /// base URL of the HTTP listener).
    /// `sessions` keeps the calls in the IVR across restarts.
    pub fn new(
        engine: Engine,
        config: VoiceConfig,
        base: String,
        trees: IvrTrees,
        sessions: SessionLog,
    ) -> Calls {
        let outbound = Outbound::new(&config);
        let (consult_steps, consult_inbox) = tokio::sync::mpsc::channel(CONSULT_BACKLOG);
        let twilio_signer = config
            .twilio
            .as_ref()
            .map(|t| TwilioSigner::new(&t.auth_token));
        Calls {
            inner: Arc::new(Inner {
                engine,
                config,
                base,
                trees,
                outbound,
                twilio_signer,
                sessions,
                calls: DashMap::new(),
                by_interaction: DashMap::new(),
                changed: DashMap::new(),
                lag_epoch: AtomicU64::new(0),
                streams: DashMap::new(),
                pending_audio: DashMap::new(),
                transcripts: DashMap::new(),
                consult_steps,
                consult_inbox: std::sync::Mutex::new(Some(consult_inbox)),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &VoiceConfig {
        &self.inner.config
    }

    /// The public base URL.
    pub fn base(&self) -> &str {
        &self.inner.base
    }

    /// How many calls are followed.
    pub fn len(&self) -> usize {
        self.inner.calls.len()
    }

    /// Whether no call is followed.
    pub fn is_empty(&self) -> bool {
        self.inner.calls.is_empty()
    }

    /// The `X-Twilio-Signature` checker, keyed with `[voice.twilio] auth_token`.
    pub fn twilio_signer(&self) -> Option<&TwilioSigner> {
        self.inner.twilio_signer.as_ref()
    }

    /// The write-behind log of calls in the IVR.
    pub fn sessions(&self) -> &SessionLog {
        &self.inner.sessions
    }

    /// Handles one gateway request; answers with the verbs and the turn they are for.
    ///
    /// A request for a call the table does not know (after a restart) is served, in this
    /// order, from the call's open interaction (queued calls), from its saved IVR state (calls
    /// in a menu), or, for a menu answer or a redirect whose state was lost, by starting the
    /// call again at its tree's entry with an apology.
    pub async fn handle(
        &self,
        gateway: Gateway,
        request: CallRequest,
    ) -> Result<(Answer, u32), CallError> {
        let CallRequest {
            sid,
            turn,
            event,
            from,
            to,
        } = request;
        let sid = sid.as_str();
        let k = key(gateway, sid);
        if let CallEvent::Transcript(text) = &event {
            // Not a turn of the call: the listen's actionHook (same turn) follows.
            self.add_transcript(&k, text);
            return Ok((Arc::from([]), turn.unwrap_or(0)));
        }
        let entry = match self.call(&k) {
            Some(entry) => entry,
            None => match &event {
                CallEvent::Incoming { from, to } => self.admit(gateway, sid, from, to)?,
                CallEvent::Hangup => match self.recover(gateway, sid).await? {
                    Some(entry) => entry,
                    None => match self.restore(gateway, sid).await? {
                        Some(entry) => entry,
                        // A hang-up for a call never seen (or long forgotten): nothing to do.
                        None => return Ok((Arc::from([Verb::Hangup]), 0)),
                    },
                },
                _ => match self.recover(gateway, sid).await? {
                    Some(entry) => entry,
                    None => match self.restore(gateway, sid).await? {
                        Some(entry) => entry,
                        None => {
                            return self
                                .restart(gateway, sid, &event, from.as_deref(), to.as_deref())
                                .await
                        }
                    },
                },
            },
        };
        let mut event = event;
        if let (Gateway::Jambonz, CallEvent::Recording(recording)) = (gateway, &mut event) {
            // jambonz calls the listen's actionHook when the listen ends: the audio stream may
            // still be finishing. Wait for it (bounded), outside the call's lock.
            recording.streaming = self.wait_stream(&k, STREAM_END_WAIT).await;
        }
        let mut call = entry.lock().await;
        call.touched = Instant::now();
        let retry = match (&event, turn) {
            (CallEvent::Incoming { .. }, _) => call.turn > 0,
            (CallEvent::Hangup, _) => false,
            (_, Some(t)) => t < call.turn,
            (_, None) => false,
        };
        if retry {
            tracing::debug!(
                call_sid = sid,
                turn = call.turn,
                "gateway retry: same answer"
            );
            return Ok((call.last.clone(), call.turn));
        }
        let verbs = self.step(&mut call, event).await?;
        Ok(self.next_turn(&mut call, verbs.into()))
    }

    /// Makes `verbs` the call's answer in a new turn, saved for a restart; returns them with
    /// the turn's number.
    pub(super) fn next_turn(&self, call: &mut Call, verbs: Answer) -> (Answer, u32) {
        call.turn = call.turn.saturating_add(1);
        call.last = Arc::clone(&verbs);
        self.save(call);
        (verbs, call.turn)
    }

    /// The call followed for `interaction`, if any.
    pub(super) fn call_of(
        &self,
        interaction: InteractionId,
    ) -> Option<Arc<tokio::sync::Mutex<Call>>> {
        let k = self.inner.by_interaction.get(&interaction)?.clone();
        self.call(&k)
    }

    /// The call under key `k` (see [`key`]), if it is in the table.
    pub(super) fn call(&self, k: &str) -> Option<Arc<tokio::sync::Mutex<Call>>> {
        self.inner.calls.get(k).map(|e| Arc::clone(e.value()))
    }

    /// The outbound side of the gateways.
    pub(super) fn outbound(&self) -> &Outbound {
        &self.inner.outbound
    }

    /// The engine.
    pub(super) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    fn forget(&self, call: &Call) {
        let k = key(call.gateway, &call.sid);
        self.inner.calls.remove(&k);
    }

    /// Forgets ended calls older than `[voice] ended_ttl_secs` and calls silent for a day.
    pub fn sweep(&self) {
        let ttl = Duration::from_secs(self.inner.config.ended_ttl_secs);
        let stale = Duration::from_secs(86_400);
        self.inner.calls.retain(|_, entry| match entry.try_lock() {
            Ok(call) => {
                let idle = call.touched.elapsed();
                let over = matches!(call.phase, Phase::Ended | Phase::VoicemailLeft { .. });
                !(over && idle > ttl || idle > stale)
            }
            Err(_) => true,
        });
        let calls = &self.inner.calls;
        self.inner
            .by_interaction
            .retain(|_, call_key| calls.contains_key(call_key));
        let followed = &self.inner.by_interaction;
        self.inner.changed.retain(|id, _| followed.contains_key(id));
        self.inner.transcripts.retain(|k, _| calls.contains_key(k));
        self.inner
            .pending_audio
            .retain(|k, _| calls.contains_key(k));
    }
}

fn unavailable(e: EngineError) -> CallError {
    CallError::Unavailable(e.to_string())
}
