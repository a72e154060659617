//! The vocabulary of the routing core: time, identifiers, channels, skills, agents, queues and
//! interactions as the outside world describes them (configuration and requests).
//!
//! Everything here is plain data with `serde` support, so that the same types travel in commands,
//! in journaled events, in snapshots and in TOML configuration.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// A point in time: milliseconds since the Unix epoch.
///
/// The core never reads a clock: every command and tick carries the time it happens at.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The instant `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Timestamp(ms)
    }

    /// The instant `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Timestamp(secs.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// This instant plus `secs` seconds (saturating).
    pub const fn plus_secs(self, secs: u64) -> Self {
        Timestamp(self.0.saturating_add(secs.saturating_mul(1000)))
    }

    /// This instant plus `ms` milliseconds (saturating).
    pub const fn plus_millis(self, ms: u64) -> Self {
        Timestamp(self.0.saturating_add(ms))
    }

    /// Milliseconds elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub const fn millis_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}s", self.0 / 1000, self.0 % 1000)
    }
}

/// Reads a string straight into an `Arc<str>`: one allocation, where serde's own `Arc<str>`
/// goes through a `Box<str>` and copies it (this is on the path of every journaled event that
/// recovery decodes). Accepts what `String` accepts: a string, or UTF-8 bytes.
pub(crate) fn deserialize_arc_str<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Arc<str>, D::Error> {
    struct ArcStr;
    impl serde::de::Visitor<'_> for ArcStr {
        type Value = Arc<str>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Arc<str>, E> {
            Ok(Arc::from(v))
        }
        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Arc<str>, E> {
            std::str::from_utf8(v)
                .map(Arc::from)
                .map_err(|_| E::invalid_value(serde::de::Unexpected::Bytes(v), &self))
        }
    }
    deserializer.deserialize_str(ArcStr)
}

/// [`deserialize_arc_str`] for an optional field (`null` or absent is `None`).
fn deserialize_opt_arc_str<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Arc<str>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(transparent)]
    struct Text(#[serde(deserialize_with = "deserialize_arc_str")] Arc<str>);
    Ok(Option::<Text>::deserialize(deserializer)?.map(|t| t.0))
}

macro_rules! name_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Cheap to clone (a reference-counted string), compared and ordered by its text.
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserialize_arc_str(deserializer).map($name)
            }
        }

        impl $name {
            /// Makes an identifier from its text.
            pub fn new(text: impl AsRef<str>) -> Self {
                $name(Arc::from(text.as_ref()))
            }

            /// The identifier's text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", &*self.0)
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                $name::new(text)
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                $name(Arc::from(text))
            }
        }
    };
}

name_id!(
    /// An agent's identifier, chosen by the operator (for example `alice` or an employee number).
    AgentId
);
name_id!(
    /// A queue's identifier (for example `benefits`).
    QueueId
);
name_id!(
    /// A skill's name (for example `lang:fr` or `benefits:housing`).
    Skill
);
name_id!(
    /// The person behind interactions (a normalised phone number, an email address or a CRM id).
    ContactId
);

/// An interaction's identifier: a ULID chosen by whoever creates the interaction, so that the core
/// stays deterministic and a creation can be retried with the same id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct InteractionId(pub Ulid);

impl<'de> Deserialize<'de> for InteractionId {
    /// Parses the text in place (`ulid`'s own impl reads it into a `String` first); same
    /// accepted input and error messages.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = InteractionId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<InteractionId, E> {
                Ulid::from_string(v).map(InteractionId).map_err(E::custom)
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<InteractionId, E> {
                match std::str::from_utf8(v) {
                    Ok(text) => self.visit_str(text),
                    Err(_) => Err(E::invalid_value(serde::de::Unexpected::Bytes(v), &self)),
                }
            }
        }
        deserializer.deserialize_str(Text)
    }
}

impl InteractionId {
    /// A fresh id from the system clock and randomness (for callers outside the core).
    pub fn generate() -> Self {
        InteractionId(Ulid::new())
    }

    /// The id whose 128-bit value is `n` (deterministic ids for tests and simulations).
    pub const fn from_u128(n: u128) -> Self {
        InteractionId(Ulid(n))
    }
}

impl fmt::Display for InteractionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for InteractionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for InteractionId {
    type Err = ulid::DecodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ulid::from_string(s).map(InteractionId)
    }
}

/// The medium an interaction arrives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A phone call.
    Voice,
    /// An email thread.
    Email,
    /// An SMS conversation.
    Sms,
    /// A web chat session.
    Chat,
}

impl Channel {
    /// Every channel, in index order.
    pub const ALL: [Channel; 4] = [Channel::Voice, Channel::Email, Channel::Sms, Channel::Chat];

    /// A dense index 0..4, for per-channel arrays.
    pub const fn index(self) -> usize {
        match self {
            Channel::Voice => 0,
            Channel::Email => 1,
            Channel::Sms => 2,
            Channel::Chat => 3,
        }
    }

    /// The channel's name as written in configuration and APIs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Voice => "voice",
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Chat => "chat",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "voice" => Ok(Channel::Voice),
            "email" => Ok(Channel::Email),
            "sms" => Ok(Channel::Sms),
            "chat" => Ok(Channel::Chat),
            other => Err(format!(
                "unknown channel {other:?}: expected voice, email, sms or chat"
            )),
        }
    }
}

/// One value per channel (capacities, SLA targets, loads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerChannel<T> {
    /// Value for phone calls.
    pub voice: T,
    /// Value for email.
    pub email: T,
    /// Value for SMS.
    pub sms: T,
    /// Value for web chat.
    pub chat: T,
}

impl<T: Copy> PerChannel<T> {
    /// The same value on every channel.
    pub const fn all(value: T) -> Self {
        PerChannel {
            voice: value,
            email: value,
            sms: value,
            chat: value,
        }
    }

    /// The value for `channel`.
    pub const fn get(&self, channel: Channel) -> T {
        match channel {
            Channel::Voice => self.voice,
            Channel::Email => self.email,
            Channel::Sms => self.sms,
            Channel::Chat => self.chat,
        }
    }

    /// Sets the value for `channel`.
    pub fn set(&mut self, channel: Channel, value: T) {
        match channel {
            Channel::Voice => self.voice = value,
            Channel::Email => self.email = value,
            Channel::Sms => self.sms = value,
            Channel::Chat => self.chat = value,
        }
    }
}

/// How many interactions of each channel an agent handles at once.
pub type Capacity = PerChannel<u16>;

impl Default for Capacity {
    /// Voice 1, email 5, SMS 3, chat 3.
    fn default() -> Self {
        PerChannel {
            voice: 1,
            email: 5,
            sms: 3,
            chat: 3,
        }
    }
}

/// Service-level targets in seconds per channel: the delay the service announces to the public.
pub type SlaTargets = PerChannel<u64>;

impl Default for SlaTargets {
    /// Calls within 3 minutes, chats within 2 minutes, SMS within 4 hours, emails within 5 days.
    fn default() -> Self {
        PerChannel {
            voice: 180,
            email: 5 * 24 * 3600,
            sms: 4 * 3600,
            chat: 120,
        }
    }
}

/// Delays announced in working days, per channel; 0 (the default) for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkingDayTargets {
    /// Phone calls.
    pub voice: u32,
    /// Email.
    pub email: u32,
    /// SMS.
    pub sms: u32,
    /// Web chat.
    pub chat: u32,
}

impl WorkingDayTargets {
    /// The working days announced for `channel` (0: none).
    pub const fn get(&self, channel: Channel) -> u32 {
        match channel {
            Channel::Voice => self.voice,
            Channel::Email => self.email,
            Channel::Sms => self.sms,
            Channel::Chat => self.chat,
        }
    }

    /// Whether no channel has a delay in working days.
    pub fn is_none(&self) -> bool {
        *self == WorkingDayTargets::default()
    }
}

/// The lowest skill level.
pub const MIN_LEVEL: u8 = 1;
/// The highest skill level.
pub const MAX_LEVEL: u8 = 5;

/// A required skill: the agent must hold `skill` at `min_level` or above.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    /// The skill.
    pub skill: Skill,
    /// The minimum level, 1 to 5.
    #[serde(default = "default_min_level")]
    pub min_level: u8,
}

fn default_min_level() -> u8 {
    MIN_LEVEL
}

impl Requirement {
    /// A requirement of `skill` at `min_level`.
    pub fn new(skill: impl Into<Skill>, min_level: u8) -> Self {
        Requirement {
            skill: skill.into(),
            min_level,
        }
    }
}

/// An agent as configured by a supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The agent's identifier.
    pub id: AgentId,
    /// The display name.
    #[serde(default)]
    pub name: String,
    /// Skills held, each with a level from 1 to 5.
    #[serde(default)]
    pub skills: BTreeMap<Skill, u8>,
    /// Interactions handled at once per channel.
    #[serde(default)]
    pub capacity: Capacity,
    /// While on a call the agent takes nothing else, and while handling anything else the agent
    /// takes no call.
    #[serde(default = "default_true")]
    pub voice_exclusive: bool,
    /// Where calls are bridged to: a phone number or a SIP URI (changed by agents working from home).
    #[serde(default)]
    pub device: Option<String>,
}

fn default_true() -> bool {
    true
}

impl AgentConfig {
    /// An agent with default capacity, voice exclusive, no skills and no device.
    pub fn new(id: impl Into<AgentId>) -> Self {
        let id = id.into();
        AgentConfig {
            name: id.as_str().to_owned(),
            id,
            skills: BTreeMap::new(),
            capacity: Capacity::default(),
            voice_exclusive: true,
            device: None,
        }
    }

    /// Adds or changes a skill (builder style).
    pub fn with_skill(mut self, skill: impl Into<Skill>, level: u8) -> Self {
        self.skills.insert(skill.into(), level);
        self
    }

    /// Sets the capacity (builder style).
    pub fn with_capacity(mut self, capacity: Capacity) -> Self {
        self.capacity = capacity;
        self
    }
}

/// An agent's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AgentState {
    /// Not logged in: never offered anything.
    Offline,
    /// Logged in and ready: offered interactions while capacity is free.
    Available,
    /// Logged in but not taking new interactions.
    Paused {
        /// Why (for example `lunch`, `training`, or `missed_offers` when the router paused the agent).
        reason: String,
    },
    /// After-contact work following a completion, until the given time.
    WrapUp {
        /// When the wrap-up ends and the agent becomes available again.
        until: Timestamp,
    },
}

impl AgentState {
    /// A short name: `offline`, `available`, `paused` or `wrap_up`.
    pub fn name(&self) -> &'static str {
        match self {
            AgentState::Offline => "offline",
            AgentState::Available => "available",
            AgentState::Paused { .. } => "paused",
            AgentState::WrapUp { .. } => "wrap_up",
        }
    }
}

/// How a queue picks among eligible available agents.
///
/// Every strategy breaks its ties the same way: the agent idle the longest on the interaction's
/// channel (idle time restarts when the agent finishes work on that channel or becomes
/// available), then the agent whose last offer on that channel is the oldest, then agent id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Highest competence (sum of levels on the required skills, plus preferred skills), then
    /// the tie-breaks.
    #[default]
    MostCompetent,
    /// The agent idle the longest on the channel, then the tie-breaks.
    LongestIdle,
    /// The agent with the lowest share of its capacity in use, then the tie-breaks.
    LeastOccupied,
    /// The agent offered something the least recently (on any channel), then the tie-breaks.
    RoundRobin,
}

impl Strategy {
    /// The strategy's name as written in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::MostCompetent => "most_competent",
            Strategy::LongestIdle => "longest_idle",
            Strategy::LeastOccupied => "least_occupied",
            Strategy::RoundRobin => "round_robin",
        }
    }
}

/// What an escalation step relaxes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum StepAction {
    /// Lower the minimum level of a required skill to `to`.
    LowerLevel {
        /// The skill whose minimum is lowered.
        skill: Skill,
        /// The new minimum level.
        to: u8,
    },
    /// Stop requiring a skill.
    DropSkill {
        /// The skill no longer required.
        skill: Skill,
    },
    /// Also accept the agents eligible for another queue (its requirements, plus the interaction's
    /// own requirements).
    WidenTo {
        /// The queue whose agents become eligible.
        queue: QueueId,
    },
}

/// One escalation step: after `after_secs` in the queue, apply `action` (cumulatively with the
/// earlier steps).
// No `deny_unknown_fields` here: serde cannot combine it with `flatten`; the flattened action
// enum refuses unknown fields itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EscalationStep {
    /// Seconds of waiting in the queue after which the step applies.
    pub after_secs: u64,
    /// What the step relaxes.
    #[serde(flatten)]
    pub action: StepAction,
}

/// What happens when an interaction has waited the queue's maximum time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum OverflowAction {
    /// Move the interaction to another queue, keeping its place in line (priority, deadline, age).
    Queue {
        /// The queue to move to.
        queue: QueueId,
    },
    /// Offer the contact to leave a voicemail (the voice channel acts on the event).
    Voicemail,
    /// Offer the contact a callback; the interaction keeps its place (the channel acts on the event).
    Callback,
    /// Send the contact a message (for example a link to the online procedure).
    Message,
}

/// The queue's maximum wait and what happens then.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Overflow {
    /// Seconds in the queue after which the overflow happens (at least 1).
    pub after_secs: u64,
    /// What happens.
    #[serde(flatten)]
    pub action: OverflowAction,
}

/// A routing target, as configured by a supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// The queue's identifier.
    pub id: QueueId,
    /// The display name.
    #[serde(default)]
    pub name: String,
    /// The channels the queue takes.
    #[serde(default = "all_channels")]
    pub channels: Vec<Channel>,
    /// Skills every agent must hold to serve the queue.
    #[serde(default)]
    pub requirements: Vec<Requirement>,
    /// Priority of interactions created without one (higher is served first).
    #[serde(default)]
    pub default_priority: u32,
    /// The delay announced to the public per channel, in seconds: the SLA deadline of an
    /// interaction created without one is its creation time plus this.
    #[serde(default)]
    pub sla_target_secs: SlaTargets,
    /// A delay announced in working days per channel (0: none), which then replaces
    /// `sla_target_secs` for that channel: the deadline is the end of the N-th working day
    /// after the day of creation, in the router's working calendar
    /// ([`WorkCalendar`](super::WorkCalendar)).
    #[serde(default, skip_serializing_if = "WorkingDayTargets::is_none")]
    pub sla_working_days: WorkingDayTargets,
    /// How eligible agents are ranked.
    #[serde(default)]
    pub strategy: Strategy,
    /// Relaxations applied as an interaction waits, in increasing `after_secs` order.
    #[serde(default)]
    pub escalation: Vec<EscalationStep>,
    /// The maximum wait and what happens then.
    #[serde(default)]
    pub overflow: Option<Overflow>,
    /// Seconds an agent has to accept an offer.
    #[serde(default = "default_offer_timeout")]
    pub offer_timeout_secs: u64,
    /// Offers missed in a row (timed out) after which the agent is paused with reason
    /// `missed_offers`; 0 never pauses.
    #[serde(default = "default_max_misses")]
    pub max_misses: u32,
    /// Seconds after which an agent who declined or missed an interaction may be offered it
    /// again (1 to 86,400; default 30). Before, the interaction goes to other agents; after, the
    /// router offers it to that agent again on its own if the agent is free.
    #[serde(default = "default_reoffer_after")]
    pub reoffer_after_secs: u64,
    /// Offers declined in a row after which the agent is paused with reason
    /// `declined_offers`; 0 (the default) never pauses.
    #[serde(default)]
    pub max_declines: u32,
    /// Seconds of after-contact work following a completion; 0 for none.
    #[serde(default)]
    pub wrap_up_secs: u64,
    /// Competence points added for the contact's last agent under `most_competent`; under the other
    /// strategies the last agent is preferred outright when eligible and free.
    #[serde(default = "default_last_agent_bonus")]
    pub last_agent_bonus: u32,
    /// Whether the public quality indicators show the queue (default true); the router does
    /// not use it.
    #[serde(default = "default_true")]
    pub public: bool,
    /// The outcome codes an agent chooses from when completing (empty: any code, free text).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wrap_up_codes: Vec<String>,
    /// The code recorded when a wrap-up ends without one (one of `wrap_up_codes` when they
    /// are set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_wrap_up_code: Option<String>,
    /// Whether the citizen gets one short message on its channel (SMS, email, chat; never a
    /// call) when its request is moved into this queue from another, naming this queue and
    /// the reference (default false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inform_moved: bool,
    /// Whether the citizen gets one short message on its channel (SMS, email, chat; never a
    /// call) when its request, waiting in this queue, passes its announced delay (default
    /// false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inform_late: bool,
}

fn all_channels() -> Vec<Channel> {
    Channel::ALL.to_vec()
}

fn default_offer_timeout() -> u64 {
    20
}

fn default_max_misses() -> u32 {
    3
}

/// The default of [`QueueConfig::reoffer_after_secs`]: 30 seconds.
pub const DEFAULT_REOFFER_AFTER_SECS: u64 = 30;

/// The longest [`QueueConfig::reoffer_after_secs`]: a day.
pub const MAX_REOFFER_AFTER_SECS: u64 = 86_400;

fn default_reoffer_after() -> u64 {
    DEFAULT_REOFFER_AFTER_SECS
}

fn default_last_agent_bonus() -> u32 {
    3
}

/// The delay a queue announces to the public for a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnouncedDelay {
    /// In seconds (`sla_target_secs`).
    Secs(u64),
    /// In working days (`sla_working_days`).
    WorkingDays(u32),
}

impl QueueConfig {
    /// The delay announced for `channel`: in working days when `sla_working_days` sets one,
    /// else `sla_target_secs`.
    pub fn announced_delay(&self, channel: Channel) -> AnnouncedDelay {
        match self.sla_working_days.get(channel) {
            0 => AnnouncedDelay::Secs(self.sla_target_secs.get(channel)),
            days => AnnouncedDelay::WorkingDays(days),
        }
    }

    /// A queue with every default: all channels, no requirements, `most_competent`.
    pub fn new(id: impl Into<QueueId>) -> Self {
        let id = id.into();
        QueueConfig {
            name: id.as_str().to_owned(),
            id,
            channels: all_channels(),
            requirements: Vec::new(),
            default_priority: 0,
            sla_target_secs: SlaTargets::default(),
            sla_working_days: WorkingDayTargets::default(),
            strategy: Strategy::default(),
            escalation: Vec::new(),
            overflow: None,
            offer_timeout_secs: default_offer_timeout(),
            max_misses: default_max_misses(),
            reoffer_after_secs: default_reoffer_after(),
            max_declines: 0,
            wrap_up_secs: 0,
            last_agent_bonus: default_last_agent_bonus(),
            public: true,
            wrap_up_codes: Vec::new(),
            default_wrap_up_code: None,
            inform_moved: false,
            inform_late: false,
        }
    }

    /// Adds a requirement (builder style).
    pub fn requiring(mut self, skill: impl Into<Skill>, min_level: u8) -> Self {
        self.requirements.push(Requirement::new(skill, min_level));
        self
    }

    /// Sets the strategy (builder style).
    pub fn with_strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }
}

/// A request to route one contact: what a channel adapter or an integrator creates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InteractionSpec {
    /// The interaction's id (a ULID chosen by the creator).
    pub id: InteractionId,
    /// The channel it arrived on.
    pub channel: Channel,
    /// The queue it is routed in.
    pub queue: QueueId,
    /// The person behind it, if known (used for the last-agent preference).
    #[serde(default)]
    pub contact: Option<ContactId>,
    /// Skills required on top of the queue's (for example `lang:en` chosen in the IVR).
    #[serde(default)]
    pub requirements: Vec<Requirement>,
    /// Skills that raise an agent's competence for this interaction without being required.
    #[serde(default)]
    pub preferred: Vec<Skill>,
    /// Priority; the queue's default when absent. Higher is served first.
    #[serde(default)]
    pub priority: Option<u32>,
    /// SLA deadline; creation time plus the queue's target for the channel when absent.
    #[serde(default)]
    pub sla_deadline: Option<Timestamp>,
    /// Key/value data from the IVR or the channel (shown to the agent).
    #[serde(default)]
    pub attributes: Attributes,
    /// The channel's reference (CallSid, Message-ID, MessageSid, chat session id) that makes
    /// creation idempotent.
    #[serde(default, deserialize_with = "deserialize_opt_arc_str")]
    pub external_ref: Option<Arc<str>>,
}

impl InteractionSpec {
    /// Releases spare capacity of its lists (the router keeps specs for as long as they wait).
    pub fn shrink_to_fit(&mut self) {
        self.requirements.shrink_to_fit();
        self.preferred.shrink_to_fit();
    }

    /// A spec with only the mandatory fields.
    pub fn new(id: InteractionId, channel: Channel, queue: impl Into<QueueId>) -> Self {
        InteractionSpec {
            id,
            channel,
            queue: queue.into(),
            contact: None,
            requirements: Vec::new(),
            preferred: Vec::new(),
            priority: None,
            sla_deadline: None,
            attributes: Attributes::default(),
            external_ref: None,
        }
    }
}

/// Key/value data attached to an interaction (from the IVR or the channel), sorted by key.
///
/// Packed: the keys and values end to end in one string, with their end offsets in one slice,
/// so that an interaction's attributes cost two allocations however many there are (a waiting
/// interaction should cost little memory, and recovery builds a million of them). Interactions
/// carry a handful of attributes: changing one rebuilds both. Serialised as a map.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Attributes {
    /// Key 0, value 0, key 1, value 1... in key order, keys unique.
    text: Box<str>,
    /// The end of each key and value in `text`: two per pair.
    ends: Box<[u32]>,
}

impl fmt::Debug for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Attributes {
    /// No attributes.
    pub fn new() -> Self {
        Attributes::default()
    }

    /// Packs pairs sorted by key, without repeats.
    fn pack<'a>(pairs: impl ExactSizeIterator<Item = (&'a str, &'a str)> + Clone) -> Self {
        let len: usize = pairs.clone().map(|(k, v)| k.len() + v.len()).sum();
        let mut text = String::with_capacity(len);
        let mut ends = Vec::with_capacity(pairs.len() * 2);
        for (k, v) in pairs {
            for part in [k, v] {
                text.push_str(part);
                ends.push(
                    u32::try_from(text.len())
                        .unwrap_or_else(|_| panic!("an interaction's attributes exceed 4 GiB")),
                );
            }
        }
        Attributes {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }

    /// Packs pairs in any order, a repeated key keeping its last value (as inserting them one by
    /// one would).
    fn from_pairs<'a>(mut pairs: Vec<(&'a str, &'a str)>) -> Self {
        if !pairs.windows(2).all(|w| w[0].0 < w[1].0) {
            // Stable: equal keys stay in input order, and the last of each run is kept.
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            let mut kept: Vec<(&str, &str)> = Vec::with_capacity(pairs.len());
            for pair in pairs {
                match kept.last_mut() {
                    Some(last) if last.0 == pair.0 => *last = pair,
                    _ => kept.push(pair),
                }
            }
            pairs = kept;
        }
        Attributes::pack(pairs.iter().copied())
    }

    /// Attributes from borrowed pairs, in any order (what the journal's reader finds in a stored
    /// interaction: already sorted, so packed at once).
    pub(crate) fn from_strs(pairs: Vec<(&str, &str)>) -> Self {
        Attributes::from_pairs(pairs)
    }

    fn part(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    fn key(&self, i: usize) -> &str {
        self.part(2 * i)
    }

    fn value(&self, i: usize) -> &str {
        self.part(2 * i + 1)
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let mid = (low + high) / 2;
            match self.key(mid).cmp(key) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(low)
    }

    /// Sets `key` to `value`; returns the previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        let key = key.into();
        let value = value.into();
        let mut pairs: Vec<(&str, &str)> = self.iter().collect();
        let previous = match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut pairs[i].1, &value).to_owned()),
            Err(i) => {
                pairs.insert(i, (&key, &value));
                None
            }
        };
        *self = Attributes::pack(pairs.into_iter());
        previous
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.find(key).ok().map(|i| self.value(i))
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let i = self.find(key).ok()?;
        let value = self.value(i).to_owned();
        let mut pairs: Vec<(&str, &str)> = self.iter().collect();
        pairs.remove(i);
        *self = Attributes::pack(pairs.into_iter());
        Some(value)
    }

    /// The pairs, in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + Clone {
        (0..self.len()).map(|i| (self.key(i), self.value(i)))
    }

    /// How many attributes.
    pub fn len(&self) -> usize {
        self.ends.len() / 2
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let owned: Vec<(String, String)> = iter
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Attributes::from_pairs(
            owned
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        )
    }
}

impl Serialize for Attributes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Attributes {
    /// Reads a map straight into the packed form. A repeated key keeps its last value, as a
    /// map would.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> serde::de::Visitor<'de> for Pairs {
            type Value = Attributes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of strings to strings")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Attributes, A::Error> {
                let mut pairs: Vec<(String, String)> =
                    Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some(pair) = map.next_entry::<String, String>()? {
                    pairs.push(pair);
                }
                Ok(pairs.into_iter().collect())
            }
        }
        deserializer.deserialize_map(Pairs)
    }
}

/// The longest identifier accepted from outside (agent, queue and skill ids over the API; call,
/// message and session ids from the channels), in bytes.
pub const MAX_ID_BYTES: usize = 64;

/// Whether `c` may appear in an identifier accepted from outside: ASCII letters, digits and
/// `. _ : @ + -` (the character set the proto documents). Checked at the API's and channels'
/// boundaries only, never on replay, so that journals holding older ids still load.
pub fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '+' | '-')
}

/// A non-empty identifier of at most [`MAX_ID_BYTES`] in the character set of [`is_id_char`].
pub fn is_valid_id(value: &str) -> bool {
    !value.is_empty() && value.len() <= MAX_ID_BYTES && value.chars().all(is_id_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The packed attributes behave as the sorted map they stand for.
    #[test]
    fn attributes_behave_as_a_sorted_map() {
        let mut model = BTreeMap::new();
        let mut attributes = Attributes::new();
        assert!(attributes.is_empty());
        let steps: [(&str, Option<&str>); 9] = [
            ("menu", Some("housing")),
            ("case", Some("C-1")),
            ("", Some("empty key")),
            ("zèbre", Some("")),
            ("case", Some("C-2")),
            ("menu", None),
            ("absent", None),
            ("lang", Some("fr")),
            ("", None),
        ];
        for (key, value) in steps {
            match value {
                Some(v) => assert_eq!(
                    attributes.insert(key, v),
                    model.insert(key.to_owned(), v.to_owned())
                ),
                None => assert_eq!(attributes.remove(key), model.remove(key)),
            }
            let pairs: Vec<(&str, &str)> = attributes.iter().collect();
            let expected: Vec<(&str, &str)> = model
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            assert_eq!(pairs, expected);
            assert_eq!(attributes.len(), model.len());
            for k in ["", "case", "menu", "lang", "zèbre", "nope"] {
                assert_eq!(attributes.get(k), model.get(k).map(String::as_str));
            }
        }
        // From pairs in any order, repeated keys keeping their last value; and through JSON.
        let collected: Attributes = [("b", "1"), ("a", "2"), ("b", "3"), ("c", "4"), ("a", "5")]
            .into_iter()
            .collect();
        let pairs: Vec<(&str, &str)> = collected.iter().collect();
        assert_eq!(pairs, [("a", "5"), ("b", "3"), ("c", "4")]);
        let json = serde_json::to_string(&collected).unwrap_or_default();
        assert_eq!(json, r#"{"a":"5","b":"3","c":"4"}"#);
        let back: Attributes =
            serde_json::from_str(r#"{"c":"4","b":"9","a":"5","b":"3"}"#).unwrap_or_default();
        assert_eq!(back, collected);
        assert_eq!(format!("{back:?}"), r#"{"a": "5", "b": "3", "c": "4"}"#);
    }
}
