//! `[voice]`: the phone channel's configuration — gateway accounts and secrets, the IVR trees
//! seeded at first start and the numbers bound to them, and the hold loop.
//!
//! Every field is documented here and in docs/voice.md. A gateway whose
//! section is absent is not served: its webhooks answer 404.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[voice]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceConfig {
    /// `[voice.twilio]`: the Twilio-style gateway (webhooks under `/voice/twilio/`).
    #[serde(default)]
    pub twilio: Option<TwilioConfig>,
    /// `[voice.jambonz]`: the jambonz-style gateway (webhooks under `/voice/jambonz/`).
    #[serde(default)]
    pub jambonz: Option<JambonzConfig>,
    /// `[voice.sip]`: the generic SIP-server event API (`POST /voice/sip/events`).
    #[serde(default)]
    pub sip: Option<SipConfig>,
    /// `[[voice.trees]]`: IVR tree files stored and activated at start when the database has
    /// no version of that tree yet (later versions come through gRPC).
    #[serde(default)]
    pub trees: Vec<TreeSeed>,
    /// `[[voice.numbers]]`: which tree answers which dialled number (`To`).
    #[serde(default)]
    pub numbers: Vec<NumberBinding>,
    /// `[voice.hold]`: what a caller hears while waiting.
    #[serde(default)]
    pub hold: HoldConfig,
    /// `[voice.queues.<queue>]`: per-queue overrides of `[voice.hold]`.
    #[serde(default)]
    pub queues: BTreeMap<String, HoldConfig>,
    /// Seconds a call's state is kept after it ended, so that late gateway retries and status
    /// callbacks are still recognised (default 600).
    #[serde(default = "default_ended_ttl_secs")]
    pub ended_ttl_secs: u64,
    /// The most calls followed at once; a new call beyond it gets 503 and an apology (default
    /// 20000).
    #[serde(default = "default_max_calls")]
    pub max_calls: usize,
    /// Seconds an outbound request to a gateway's REST API may take (default 5).
    #[serde(default = "default_api_timeout_secs")]
    pub api_timeout_secs: u64,
    /// Milliseconds the state of calls in the IVR may wait before it is written to the database
    /// (write-behind, in batches; default 50, 1 to 1000). A crash loses at most this window:
    /// such a call restarts at its tree's entry with an apology.
    #[serde(default = "default_persist_window_ms")]
    pub persist_window_ms: u64,
    /// Directory the tree files are read from when relative: the configuration file's own
    /// directory (set when the file is loaded; not a key of the file).
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        VoiceConfig {
            twilio: None,
            jambonz: None,
            sip: None,
            trees: Vec::new(),
            numbers: Vec::new(),
            hold: HoldConfig::default(),
            queues: BTreeMap::new(),
            ended_ttl_secs: default_ended_ttl_secs(),
            max_calls: default_max_calls(),
            api_timeout_secs: default_api_timeout_secs(),
            persist_window_ms: default_persist_window_ms(),
            base_dir: None,
        }
    }
}

fn default_ended_ttl_secs() -> u64 {
    600
}

fn default_max_calls() -> usize {
    20_000
}

fn default_api_timeout_secs() -> u64 {
    5
}

fn default_persist_window_ms() -> u64 {
    50
}

/// `[voice.twilio]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    /// The account SID (`AC...`): checked against the webhooks' `AccountSid` and used in REST
    /// URLs.
    pub account_sid: String,
    /// The auth token: key of `X-Twilio-Signature` and password of the REST API.
    pub auth_token: String,
    /// Base URL of the REST API (default `https://api.twilio.com`); tests point it at a local
    /// stand-in.
    #[serde(default = "default_twilio_api")]
    pub api_base: String,
    /// Whether webhooks must carry a valid signature (default true; turn off only behind a
    /// trusted proxy that checks it).
    #[serde(default = "default_true")]
    pub verify_signature: bool,
}

fn default_twilio_api() -> String {
    "https://api.twilio.com".into()
}

fn default_true() -> bool {
    true
}

/// `[voice.jambonz]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JambonzConfig {
    /// The account SID used in REST URLs.
    pub account_sid: String,
    /// The application's webhook secret: key of the `jambonz-signature` header.
    pub webhook_secret: String,
    /// The API key (bearer token) of the REST API, for live call control.
    pub api_key: String,
    /// Base URL of the REST API, for example `https://jambonz.example.org/api`.
    pub api_base: String,
    /// Whether webhooks must carry a valid signature (default true).
    #[serde(default = "default_true")]
    pub verify_signature: bool,
    /// `[voice.jambonz.speech]`: text-to-speech and speech-to-text vendors and voices per
    /// language (default: none, the jambonz application's defaults apply).
    #[serde(default)]
    pub speech: crate::ivr::JambonzSpeech,
    /// The secret the voicemail WebSocket's credentials (`listen` `wsAuth`, one password per
    /// call) are derived from: at least 16 characters; set it from the environment with
    /// `GUICHET_VOICE__JAMBONZ__LISTEN_SECRET`. Default: the webhook secret.
    #[serde(default)]
    pub listen_secret: Option<String>,
    /// The most bytes of audio kept for one voicemail (default 10 MiB, about 11 minutes of
    /// 8 kHz telephone audio; 64 KiB to 64 MiB), on top of the node's `max_length_secs` ×
    /// sample rate × 2.
    #[serde(default = "default_max_recording_bytes")]
    pub max_recording_bytes: usize,
    /// Whether jambonz transcribes voicemails while they are recorded (a `transcribe` nested
    /// in the `listen`, with the speech-to-text vendor of `[voice.jambonz.speech]` for the
    /// call's language); the text becomes the voicemail message's text. Default false: speech
    /// recognition is billed by the minute.
    #[serde(default)]
    pub transcribe_voicemail: bool,
}

fn default_max_recording_bytes() -> usize {
    10 << 20
}

impl JambonzConfig {
    /// The key the voicemail WebSocket's per-call passwords are derived from.
    pub fn listen_key(&self) -> &[u8] {
        self.listen_secret
            .as_deref()
            .unwrap_or(&self.webhook_secret)
            .as_bytes()
    }
}

/// `[voice.sip]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    /// Shared secret of the `guichet-signature` header (both directions).
    pub secret: String,
    /// Where Guichet posts actions for a call on its own initiative (bridge at once when the
    /// agent accepts, originate a callback); without it, the script's next `call.poll` gets
    /// them.
    #[serde(default)]
    pub control_url: Option<String>,
}

/// `[[voice.trees]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeSeed {
    /// The tree file (JSON), relative to the configuration file's directory.
    pub file: PathBuf,
}

/// `[[voice.numbers]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberBinding {
    /// The dialled number (E.164, separators allowed) or SIP URI.
    pub number: String,
    /// The tree that answers it.
    pub tree: String,
}

/// `[voice.hold]`: the hold loop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldConfig {
    /// Audio played while waiting, one segment per poll (keep it short: 10 to 30 s); silence
    /// of `poll_secs` when absent.
    #[serde(default)]
    pub music_url: Option<String>,
    /// Seconds of silence per poll when there is no music (default 10).
    #[serde(default = "default_poll_secs")]
    pub poll_secs: u32,
    /// Position and expected wait are announced every this many seconds; 0 never (default 60).
    #[serde(default = "default_announce_every_secs")]
    pub announce_every_secs: u32,
    /// Key that asks for a callback while waiting (the call keeps its place); empty disables
    /// it (default `"9"`).
    #[serde(default = "default_callback_key")]
    pub callback_key: String,
}

fn default_poll_secs() -> u32 {
    10
}

fn default_announce_every_secs() -> u32 {
    60
}

fn default_callback_key() -> String {
    "9".into()
}

impl Default for HoldConfig {
    fn default() -> Self {
        HoldConfig {
            music_url: None,
            poll_secs: default_poll_secs(),
            announce_every_secs: default_announce_every_secs(),
            callback_key: default_callback_key(),
        }
    }
}

/// Why a `[voice]` section is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[voice] {key}: {message}")]
pub struct VoiceConfigError {
    /// The key at fault.
    pub key: String,
    /// What to fix.
    pub message: String,
}

impl VoiceConfig {
    /// The hold settings of `queue`: its own section, else `[voice.hold]`.
    pub fn hold_for(&self, queue: &str) -> &HoldConfig {
        self.queues.get(queue).unwrap_or(&self.hold)
    }

    /// Checks the section without reading the tree files.
    pub fn validate(&self) -> Result<(), VoiceConfigError> {
        let err = |key: &str, message: &str| VoiceConfigError {
            key: key.to_owned(),
            message: message.to_owned(),
        };
        if let Some(t) = &self.twilio {
            if t.account_sid.trim().is_empty() || t.auth_token.is_empty() {
                return Err(err(
                    "twilio",
                    "account_sid and auth_token must not be empty",
                ));
            }
            check_url("twilio.api_base", &t.api_base)?;
        }
        if let Some(j) = &self.jambonz {
            if j.webhook_secret.is_empty() {
                return Err(err("jambonz.webhook_secret", "must not be empty"));
            }
            check_url("jambonz.api_base", &j.api_base)?;
            j.speech
                .validate()
                .map_err(|why| err("jambonz.speech", &why))?;
            if j.listen_secret.as_ref().is_some_and(|s| s.len() < 16) {
                return Err(err("jambonz.listen_secret", "use at least 16 characters"));
            }
            if !(64 << 10..=64 << 20).contains(&j.max_recording_bytes) {
                return Err(err(
                    "jambonz.max_recording_bytes",
                    "must be 65536 (64 KiB) to 67108864 (64 MiB)",
                ));
            }
        }
        if let Some(s) = &self.sip {
            if s.secret.len() < 16 {
                return Err(err("sip.secret", "use at least 16 characters"));
            }
            if let Some(url) = &s.control_url {
                check_url("sip.control_url", url)?;
            }
        }
        for (key, hold) in std::iter::once(("hold".to_owned(), &self.hold))
            .chain(self.queues.iter().map(|(q, h)| (format!("queues.{q}"), h)))
        {
            if hold.poll_secs == 0 || hold.poll_secs > 120 {
                return Err(err(&format!("{key}.poll_secs"), "must be 1 to 120"));
            }
            if hold.callback_key.chars().count() > 1
                || !hold
                    .callback_key
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
            {
                return Err(err(
                    &format!("{key}.callback_key"),
                    "one key (0-9, * or #), or empty to disable",
                ));
            }
        }
        if self.max_calls == 0 {
            return Err(err("max_calls", "must be at least 1"));
        }
        if self.api_timeout_secs == 0 {
            return Err(err("api_timeout_secs", "must be at least 1"));
        }
        if !(1..=1000).contains(&self.persist_window_ms) {
            return Err(err("persist_window_ms", "must be 1 to 1000"));
        }
        Ok(())
    }
}

fn check_url(key: &str, url: &str) -> Result<(), VoiceConfigError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(VoiceConfigError {
            key: key.to_owned(),
            message: format!("{url:?} must start with http:// or https://"),
        })
    }
}
