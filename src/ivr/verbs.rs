//! Neutral call-control verbs, shared by the whole voice channel (IVR, hold loop, bridging).
//!
//! This file owns [`Verb`] and [`DialTarget`], and the translation of interpreter steps into
//! verbs ([`Step::to_verbs`], [`outcome_verbs`]). Renderers turn verbs into a provider's wire
//! format: [`super::twiml`] for Twilio-style XML, [`super::jambonz`] for jambonz JSON.
//!
//! Conventions for the one `action_url` a step is rendered with:
//! - a prompt step gathers with `action` = `action_url`, followed by a redirect to
//!   [`no_input_url`] (`action_url` plus `no_input=1`) that the gateway follows when the
//!   gather times out without input;
//! - a queue outcome ends with a redirect to `action_url`, where the channel creates the
//!   interaction and starts the hold loop;
//! - a voicemail records with `action` = `action_url` (jambonz: see [`Verb::Record`]);
//! - a transfer dials with `action` = `action_url`, which hears how the transfer ended.

use serde::{Deserialize, Serialize};

use super::interpreter::{Outcome, Step};
use super::model::Utterance;

/// Ring time of a transfer, in seconds.
pub const DEFAULT_DIAL_TIMEOUT_SECS: u32 = 30;

/// One call-control instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verb", rename_all = "snake_case")]
pub enum Verb {
    /// Speak text with a synthesiser.
    Say {
        /// The text.
        text: String,
        /// Language tag for the voice; the gateway's default when `None`.
        language: Option<String>,
        /// Times to repeat; 0 means until the call moves on.
        loop_count: u32,
    },
    /// Play an audio file.
    Play {
        /// The audio URL.
        url: String,
        /// Times to repeat; 0 means until the call moves on.
        loop_count: u32,
    },
    /// Silence.
    Pause {
        /// Seconds of silence.
        secs: u32,
    },
    /// Play `prompts` while listening for keys (and speech), then post the answer to
    /// `action_url`. Only `Say`, `Play` and `Pause` may be nested; renderers skip other verbs.
    Gather {
        /// Where the answer is posted.
        action_url: String,
        /// Stop after this many keys.
        num_digits: Option<u32>,
        /// Key that ends input; empty for none.
        finish_on_key: String,
        /// Seconds to wait for input.
        timeout_secs: u32,
        /// Whether to listen for speech too.
        speech: bool,
        /// Language for speech recognition.
        language: Option<String>,
        /// What to play while listening.
        prompts: Vec<Verb>,
    },
    /// Fetch the next instructions from `url`.
    Redirect {
        /// The URL.
        url: String,
    },
    /// Connect the caller to one of `targets` (called together; the first to answer wins).
    Dial {
        /// Numbers or SIP URIs.
        targets: Vec<DialTarget>,
        /// Number shown to the called party; the gateway's default when `None`.
        caller_id: Option<String>,
        /// Seconds to ring.
        timeout_secs: u32,
        /// Where the result of the dial is posted.
        action_url: Option<String>,
        /// Keep the caller hearing ringback until the target answers.
        answer_on_bridge: bool,
    },
    /// Record the caller (voicemail), then post the result to `action_url`.
    ///
    /// jambonz has no record verb: it streams the audio with `listen` to a WebSocket, which is
    /// `stream_url`, or `action_url` when `stream_url` is `None`. TwiML ignores `stream_url`.
    Record {
        /// Where the recording is posted.
        action_url: String,
        /// Longest recording in seconds.
        max_length_secs: u32,
        /// Beep before recording.
        play_beep: bool,
        /// Key that ends the recording; empty for none.
        finish_on_key: String,
        /// WebSocket URL receiving the audio (jambonz only).
        stream_url: Option<String>,
        /// The credentials the gateway presents on that WebSocket (jambonz `wsAuth`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stream_auth: Option<StreamAuth>,
        /// Transcribe the message while it is recorded (jambonz: a `transcribe` nested in the
        /// `listen`), posting the text to the hook.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transcription: Option<Transcription>,
    },
    /// Join the conference room `room` (Twilio `<Dial><Conference>`, jambonz `conference`): the
    /// caller and the agents of a call in warm transfer. Only Twilio calls are sent there (see
    /// `docs/voice.md`); the SIP API has no conference action and skips it.
    Conference {
        /// The room's name (Guichet's: `guichet-<interaction id>`).
        room: String,
        /// Whether the room closes (every other participant is dropped) when this call leaves it.
        end_on_exit: bool,
        /// Where the end of the conference is posted (the caller's leg).
        action_url: Option<String>,
    },
    /// End the call.
    Hangup,
    /// Refuse an incoming call without answering it.
    Reject {
        /// What the caller's network is told.
        reason: RejectReason,
    },
}

/// HTTP Basic credentials a gateway presents when it opens a [`Verb::Record`]'s audio
/// WebSocket (jambonz `wsAuth`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamAuth {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for StreamAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamAuth")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Where and how a recording's transcription is sent ([`Verb::Record`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transcription {
    /// Where the transcription is posted.
    pub hook: String,
    /// The language spoken.
    pub language: String,
}

/// Where a [`Verb::Dial`] rings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "address", rename_all = "snake_case")]
pub enum DialTarget {
    /// A phone number (E.164).
    Phone(String),
    /// A SIP URI (`sip:agent@pbx.example.org`).
    Sip(String),
}

impl DialTarget {
    /// A SIP target for `sip:`/`sips:` URIs, a phone target otherwise.
    pub fn from_address(address: &str) -> DialTarget {
        let address = address.trim();
        let lower = address.to_ascii_lowercase();
        if lower.starts_with("sip:") || lower.starts_with("sips:") {
            DialTarget::Sip(address.to_owned())
        } else {
            DialTarget::Phone(super::model::normalize_number(address))
        }
    }
}

/// Why a call is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Declined (SIP 603).
    Rejected,
    /// Busy (SIP 486).
    Busy,
}

impl Verb {
    /// A `Say` played once.
    pub fn say(text: impl Into<String>, language: Option<&str>) -> Verb {
        Verb::Say {
            text: text.into(),
            language: language.map(str::to_owned),
            loop_count: 1,
        }
    }

    /// The verb that speaks or plays an utterance once.
    pub fn from_utterance(utterance: &Utterance) -> Verb {
        match utterance {
            Utterance::Say { text, language } => Verb::say(text.clone(), Some(language)),
            Utterance::Play { url } => Verb::Play {
                url: url.clone(),
                loop_count: 1,
            },
        }
    }
}

/// `action_url` with `no_input=1` added to its query string.
pub fn no_input_url(action_url: &str) -> String {
    let separator = if action_url.contains('?') { '&' } else { '?' };
    format!("{action_url}{separator}no_input=1")
}

impl Step {
    /// The verbs that carry out this step, posting the caller's answer (or the outcome's
    /// follow-up) to `action_url`; see the [module docs](super::verbs) for the conventions.
    pub fn to_verbs(&self, action_url: &str) -> Vec<Verb> {
        match self {
            Step::Prompt {
                prompts,
                gather: Some(gather),
            } => vec![
                Verb::Gather {
                    action_url: action_url.to_owned(),
                    num_digits: gather.num_digits,
                    finish_on_key: gather.finish_on_key.clone(),
                    timeout_secs: gather.timeout_secs,
                    speech: gather.speech,
                    language: gather.speech.then(|| gather.language.clone()),
                    prompts: prompts.iter().map(Verb::from_utterance).collect(),
                },
                Verb::Redirect {
                    url: no_input_url(action_url),
                },
            ],
            Step::Prompt {
                prompts,
                gather: None,
            } => {
                let mut verbs: Vec<Verb> = prompts.iter().map(Verb::from_utterance).collect();
                verbs.push(Verb::Redirect {
                    url: action_url.to_owned(),
                });
                verbs
            }
            Step::Outcome(outcome) => outcome_verbs(outcome, action_url),
        }
    }
}

/// The verbs that carry out an outcome: its prompts, then
/// - queue: a redirect to `action_url` (the channel enqueues and starts the hold loop);
/// - voicemail: a record posting to `action_url`, then a hang-up;
/// - callback: a hang-up (the channel files the callback request);
/// - transfer: a dial to the number or SIP URI, posting its result to `action_url`;
/// - hang-up: a hang-up.
pub fn outcome_verbs(outcome: &Outcome, action_url: &str) -> Vec<Verb> {
    let mut verbs: Vec<Verb> = outcome.prompts().iter().map(Verb::from_utterance).collect();
    match outcome {
        Outcome::Queue { .. } => verbs.push(Verb::Redirect {
            url: action_url.to_owned(),
        }),
        Outcome::Voicemail {
            max_length_secs, ..
        } => {
            verbs.push(Verb::Record {
                action_url: action_url.to_owned(),
                max_length_secs: *max_length_secs,
                play_beep: true,
                finish_on_key: "#".to_owned(),
                stream_url: None,
                stream_auth: None,
                transcription: None,
            });
            verbs.push(Verb::Hangup);
        }
        Outcome::Callback { .. } | Outcome::Hangup { .. } => verbs.push(Verb::Hangup),
        Outcome::Transfer { number, .. } => verbs.push(Verb::Dial {
            targets: vec![DialTarget::from_address(number)],
            caller_id: None,
            timeout_secs: DEFAULT_DIAL_TIMEOUT_SECS,
            action_url: Some(action_url.to_owned()),
            answer_on_bridge: true,
        }),
    }
    verbs
}
