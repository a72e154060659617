//! The IVR tree model: what a supervisor uploads (as JSON or TOML) and what the interpreter walks.
//!
//! This file owns the data types of a tree ([`IvrTree`], [`Node`] and one struct per node kind),
//! prompts ([`Prompt`], [`Utterance`]), the condition language ([`Predicate`]), opening hours
//! ([`BusinessHoursNode`], [`TimeRange`]) and the phone-number normalisation shared by the
//! interpreter and the registry. Everything here is plain data with small pure helpers; the
//! rules a tree must obey live in [`super::validate`], the walking in [`super::interpreter`].
//!
//! Serialised form: nodes are internally tagged by `type` in `snake_case`
//! (`{"type": "menu", ...}`), prompts are `{"text": {"fr-FR": "..."}}` or
//! `{"audio": {"fr-FR": "https://..."}}`, optional fields are skipped when absent so that the
//! same structures round-trip through TOML (which has no `null`).

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::validate::MAX_PREDICATE_DEPTH;

/// Identifier of a node inside one tree (for example `main_menu`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(String);

impl NodeId {
    /// Wraps a node identifier.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The identifier as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for NodeId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl From<String> for NodeId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl AsRef<str> for NodeId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

// `Borrow<str>` is sound here: `NodeId` derives `Eq`, `Ord` and `Hash` from its only field, so
// they agree with those of `str`. It lets `BTreeMap<NodeId, _>::get` take a `&str`.
impl Borrow<str> for NodeId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// A versioned IVR tree: a graph of [`Node`]s entered at [`IvrTree::entry`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvrTree {
    /// Name of the tree; versions of the same tree share it (for example `accueil`).
    pub name: String,
    /// Version number: 0 in a draft, set by the registry when the draft is stored.
    #[serde(default)]
    pub version: u32,
    /// Languages the tree speaks, as BCP 47 tags (for example `["fr-FR", "en-GB"]`). Every text
    /// prompt must have a text for each of them.
    pub languages: Vec<String>,
    /// Language a call starts in, and the fallback when a prompt lacks the call's language.
    pub default_language: String,
    /// IANA time zone in which business hours are evaluated (for example `Europe/Paris`).
    pub timezone: String,
    /// The node a call starts at.
    pub entry: NodeId,
    /// Every node of the tree, by identifier.
    pub nodes: BTreeMap<NodeId, Node>,
}

impl IvrTree {
    /// Parses a tree from JSON. The result is not validated: call
    /// [`IvrTree::validate`](super::validate) before using it for calls.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The node with this identifier, if the tree has one.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.get(id)
    }

    /// The tree's time zone, or `None` if [`IvrTree::timezone`] is not a known IANA name.
    pub fn tz(&self) -> Option<Tz> {
        self.timezone.parse::<Tz>().ok()
    }
}

/// Something said or played to the caller, per language.
///
/// Either synthesised text (`{"text": {"fr-FR": "Bonjour", "en-GB": "Hello"}}`) or recorded
/// audio (`{"audio": {"fr-FR": "https://.../bonjour.wav"}}`). An audio prompt may carry one URL
/// per language or a single URL under the default language, used for every language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Prompt {
    /// Text to synthesise, by language tag.
    Text(BTreeMap<String, String>),
    /// URL of an audio file (WAV or MP3), by language tag.
    Audio(BTreeMap<String, String>),
}

impl Prompt {
    /// A text prompt with one language (handy in tests and builders).
    pub fn text_in(language: &str, text: &str) -> Self {
        Prompt::Text(BTreeMap::from([(language.to_owned(), text.to_owned())]))
    }

    /// The text for `language`, falling back to `default_language`. `None` for an audio prompt
    /// or when neither language has a text.
    pub fn text(&self, language: &str, default_language: &str) -> Option<&str> {
        match self {
            Prompt::Text(texts) => pick(texts, language, default_language).map(|(_, t)| t),
            Prompt::Audio(_) => None,
        }
    }

    /// What to say or play to a caller speaking `language`, falling back to
    /// `default_language`. A text that falls back is spoken in the default language, so that the
    /// synthesiser uses a voice that can read it.
    pub fn utterance(&self, language: &str, default_language: &str) -> Option<Utterance> {
        match self {
            Prompt::Text(texts) => {
                pick(texts, language, default_language).map(|(lang, text)| Utterance::Say {
                    text: text.to_owned(),
                    language: lang.to_owned(),
                })
            }
            Prompt::Audio(urls) => {
                pick(urls, language, default_language).map(|(_, url)| Utterance::Play {
                    url: url.to_owned(),
                })
            }
        }
    }

    /// The language tags this prompt has an entry for.
    pub fn languages(&self) -> impl Iterator<Item = &str> {
        match self {
            Prompt::Text(map) | Prompt::Audio(map) => map.keys().map(String::as_str),
        }
    }
}

fn pick<'a>(
    map: &'a BTreeMap<String, String>,
    language: &str,
    default_language: &str,
) -> Option<(&'a str, &'a str)> {
    map.get_key_value(language)
        .or_else(|| map.get_key_value(default_language))
        .map(|(k, v)| (k.as_str(), v.as_str()))
}

/// One resolved prompt, ready to be turned into a `Say` or `Play` verb.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Utterance {
    /// Speak `text` with a synthesiser voice for `language`.
    Say {
        /// The text to speak.
        text: String,
        /// The language tag of the text.
        language: String,
    },
    /// Play the audio file at `url`.
    Play {
        /// The audio URL.
        url: String,
    },
}

/// One node of an IVR tree, tagged by `type` in the serialised form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Node {
    /// Plays a prompt and waits for one key (or a spoken keyword).
    Menu(MenuNode),
    /// Speaks a prompt, then goes on.
    Say(SayNode),
    /// Plays an audio file, then goes on.
    Play(PlayNode),
    /// Collects several digits into an attribute.
    Collect(CollectNode),
    /// Branches on facts about the call.
    Condition(ConditionNode),
    /// Branches on the tree's opening hours.
    BusinessHours(BusinessHoursNode),
    /// Sets an attribute on the future interaction.
    SetAttribute(SetAttributeNode),
    /// Adds (or raises) a skill requirement.
    SetRequirement(SetRequirementNode),
    /// Sets the interaction's priority.
    SetPriority(SetPriorityNode),
    /// Switches the language of the rest of the call.
    SetLanguage(SetLanguageNode),
    /// Terminal: hands the call to a routing queue.
    Queue(QueueNode),
    /// Terminal: records a message that becomes an interaction in a queue.
    Voicemail(VoicemailNode),
    /// Offers a callback; accepting ends the IVR, declining goes on.
    CallbackOffer(CallbackOfferNode),
    /// Terminal: transfers the call to a number or SIP URI.
    Transfer(TransferNode),
    /// Terminal: ends the call.
    Hangup(HangupNode),
}

impl Node {
    /// The node's `type` tag as written in the serialised form (for example `business_hours`).
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Menu(_) => "menu",
            Node::Say(_) => "say",
            Node::Play(_) => "play",
            Node::Collect(_) => "collect",
            Node::Condition(_) => "condition",
            Node::BusinessHours(_) => "business_hours",
            Node::SetAttribute(_) => "set_attribute",
            Node::SetRequirement(_) => "set_requirement",
            Node::SetPriority(_) => "set_priority",
            Node::SetLanguage(_) => "set_language",
            Node::Queue(_) => "queue",
            Node::Voicemail(_) => "voicemail",
            Node::CallbackOffer(_) => "callback_offer",
            Node::Transfer(_) => "transfer",
            Node::Hangup(_) => "hangup",
        }
    }

    /// Whether the node waits for the caller (menu, collect, callback offer). A loop in the tree
    /// must pass through such a node.
    pub fn takes_input(&self) -> bool {
        matches!(
            self,
            Node::Menu(_) | Node::Collect(_) | Node::CallbackOffer(_)
        )
    }

    /// Whether the node always ends the IVR (queue, voicemail, transfer, hangup).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Node::Queue(_) | Node::Voicemail(_) | Node::Transfer(_) | Node::Hangup(_)
        )
    }

    /// Whether the IVR can end at this node: a terminal, or a callback offer (accepting it ends
    /// the IVR).
    pub fn can_finish(&self) -> bool {
        self.is_terminal() || matches!(self, Node::CallbackOffer(_))
    }

    /// Every node this one can lead to, with the field that names it (for example
    /// `options.1`, `rules[0].goto`, `on_fail`), in a stable order.
    pub fn targets(&self) -> Vec<(String, &NodeId)> {
        let mut out: Vec<(String, &NodeId)> = Vec::new();
        match self {
            Node::Menu(m) => {
                for (key, target) in &m.options {
                    out.push((format!("options.{key}"), target));
                }
                for (keyword, target) in &m.speech {
                    out.push((format!("speech.{keyword}"), target));
                }
                if let Some(target) = &m.on_no_input {
                    out.push(("on_no_input".to_owned(), target));
                }
                out.push(("on_fail".to_owned(), &m.on_fail));
            }
            Node::Say(n) => out.push(("next".to_owned(), &n.next)),
            Node::Play(n) => out.push(("next".to_owned(), &n.next)),
            Node::Collect(n) => {
                out.push(("next".to_owned(), &n.next));
                out.push(("on_fail".to_owned(), &n.on_fail));
            }
            Node::Condition(n) => {
                for (i, rule) in n.rules.iter().enumerate() {
                    out.push((format!("rules[{i}].goto"), &rule.goto));
                }
                out.push(("otherwise".to_owned(), &n.otherwise));
            }
            Node::BusinessHours(n) => {
                out.push(("open".to_owned(), &n.open));
                out.push(("closed".to_owned(), &n.closed));
            }
            Node::SetAttribute(n) => out.push(("next".to_owned(), &n.next)),
            Node::SetRequirement(n) => out.push(("next".to_owned(), &n.next)),
            Node::SetPriority(n) => out.push(("next".to_owned(), &n.next)),
            Node::SetLanguage(n) => out.push(("next".to_owned(), &n.next)),
            Node::CallbackOffer(n) => out.push(("declined".to_owned(), &n.declined)),
            Node::Queue(_) | Node::Voicemail(_) | Node::Transfer(_) | Node::Hangup(_) => {}
        }
        out
    }

    /// Every prompt the node carries, with the field that holds it.
    pub fn prompts(&self) -> Vec<(&'static str, &Prompt)> {
        let mut out = Vec::new();
        match self {
            Node::Menu(m) => {
                out.push(("prompt", &m.prompt));
                if let Some(p) = &m.invalid_prompt {
                    out.push(("invalid_prompt", p));
                }
            }
            Node::Say(n) => out.push(("prompt", &n.prompt)),
            Node::Collect(n) => {
                out.push(("prompt", &n.prompt));
                if let Some(p) = &n.invalid_prompt {
                    out.push(("invalid_prompt", p));
                }
            }
            Node::Voicemail(n) => out.push(("prompt", &n.prompt)),
            Node::CallbackOffer(n) => {
                out.push(("prompt", &n.prompt));
                if let Some(p) = &n.confirmation {
                    out.push(("confirmation", p));
                }
            }
            Node::Transfer(TransferNode {
                prompt: Some(p), ..
            })
            | Node::Hangup(HangupNode { prompt: Some(p) }) => out.push(("prompt", p)),
            _ => {}
        }
        out
    }
}

fn default_timeout_secs() -> u32 {
    5
}

fn default_max_retries() -> u32 {
    2
}

fn default_finish_on_key() -> String {
    "#".to_owned()
}

fn default_min_digits() -> u32 {
    1
}

fn default_max_length_secs() -> u32 {
    120
}

fn default_accept_key() -> String {
    "1".to_owned()
}

/// A menu: plays its prompt and waits for one DTMF key (or a spoken keyword).
///
/// Invalid input replays the menu, preceded by `invalid_prompt` if set. No input goes to
/// `on_no_input` if set, otherwise replays the menu. Invalid input and no input share one retry
/// counter: after `max_retries` replays the next failure goes to `on_fail`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuNode {
    /// What the menu says (for example "Pour les impôts, tapez 2").
    pub prompt: Prompt,
    /// Target node per key: a single DTMF key `0`-`9`, `*` or `#`.
    pub options: BTreeMap<String, NodeId>,
    /// Target node per spoken keyword (matched as whole words, case-insensitively). When not
    /// empty, the gather also listens for speech.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub speech: BTreeMap<String, NodeId>,
    /// Seconds to wait for a key after the prompt (default 5).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u32,
    /// Replays allowed after invalid or missing input before going to `on_fail` (default 2).
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Said before the replay after an invalid key (for example "Ce choix n'existe pas").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_prompt: Option<Prompt>,
    /// Where to go at once when the caller presses nothing; unset means replay the menu.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_no_input: Option<NodeId>,
    /// Where to go when the retries are used up.
    pub on_fail: NodeId,
}

/// Speaks (or plays) a prompt, then goes to `next`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SayNode {
    /// What to say.
    pub prompt: Prompt,
    /// The next node.
    pub next: NodeId,
}

/// Plays one audio file, whatever the language, then goes to `next`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlayNode {
    /// The audio URL (`http://` or `https://`).
    pub url: String,
    /// The next node.
    pub next: NodeId,
}

/// Collects between `min_digits` and `max_digits` digits and stores them in an attribute.
///
/// Input that is too short, too long or not made of digits replays the prompt (after
/// `invalid_prompt`, if set) up to `max_retries` times, then goes to `on_fail`; so does no
/// input. Set `max_retries` to 0 to go to `on_fail` at the first failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectNode {
    /// What to ask (for example "Tapez votre numéro d'allocataire suivi de dièse").
    pub prompt: Prompt,
    /// Attribute that receives the digits (for example `caf_number`).
    pub attribute: String,
    /// Fewest digits accepted (default 1).
    #[serde(default = "default_min_digits")]
    pub min_digits: u32,
    /// Most digits accepted; the gather ends by itself when this many are typed.
    pub max_digits: u32,
    /// Key that ends the input early: `#` (default), `*`, or empty for none.
    #[serde(default = "default_finish_on_key")]
    pub finish_on_key: String,
    /// Seconds to wait for input (default 5).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u32,
    /// Replays allowed after invalid or missing input (default 2).
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Said before a replay after invalid input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_prompt: Option<Prompt>,
    /// The next node once digits were stored.
    pub next: NodeId,
    /// Where to go when the retries are used up.
    pub on_fail: NodeId,
}

/// One rule of a [`ConditionNode`]: when `when` holds, go to `goto`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The test.
    pub when: Predicate,
    /// Where to go when it holds.
    pub goto: NodeId,
}

/// Goes to the target of the first rule that holds, or to `otherwise`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionNode {
    /// Rules, tried in order.
    pub rules: Vec<Rule>,
    /// Where to go when no rule holds.
    pub otherwise: NodeId,
}

/// A test on the call, written `{"caller_starts_with": "+331"}`, `{"all": [...]}`, ...
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Predicate {
    /// The caller's number equals this one (both normalised, see [`normalize_number`]).
    CallerEquals(String),
    /// The caller's number starts with this prefix (both normalised).
    CallerStartsWith(String),
    /// The attribute `key` is set to `value`.
    AttributeEquals {
        /// Attribute name.
        key: String,
        /// Expected value.
        value: String,
    },
    /// The attribute `key` is set to one of `values`.
    AttributeOneOf {
        /// Attribute name.
        key: String,
        /// Accepted values.
        values: Vec<String>,
    },
    /// The attribute with this name is set.
    AttributeExists(String),
    /// The call's current language is this tag.
    LanguageEquals(String),
    /// Every inner predicate holds (true when empty).
    All(Vec<Predicate>),
    /// At least one inner predicate holds (false when empty).
    Any(Vec<Predicate>),
    /// The inner predicate does not hold.
    Not(Box<Predicate>),
}

/// The facts about a call that a [`Predicate`] can test.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The caller's number, normalised.
    pub caller: &'a str,
    /// The call's current language.
    pub language: &'a str,
    /// Attributes set so far.
    pub attributes: &'a BTreeMap<String, String>,
}

impl Predicate {
    /// Whether the predicate holds for these facts. Nesting deeper than
    /// [`MAX_PREDICATE_DEPTH`] (rejected by validation) evaluates to `false`.
    pub fn matches(&self, facts: &Facts<'_>) -> bool {
        self.matches_at(facts, 0)
    }

    fn matches_at(&self, facts: &Facts<'_>, depth: usize) -> bool {
        if depth > MAX_PREDICATE_DEPTH {
            return false;
        }
        match self {
            Predicate::CallerEquals(number) => facts.caller == normalize_number(number),
            Predicate::CallerStartsWith(prefix) => {
                facts.caller.starts_with(normalize_number(prefix).as_str())
            }
            Predicate::AttributeEquals { key, value } => {
                facts.attributes.get(key).is_some_and(|v| v == value)
            }
            Predicate::AttributeOneOf { key, values } => facts
                .attributes
                .get(key)
                .is_some_and(|v| values.iter().any(|x| x == v)),
            Predicate::AttributeExists(key) => facts.attributes.contains_key(key),
            Predicate::LanguageEquals(language) => facts.language == language,
            Predicate::All(inner) => inner.iter().all(|p| p.matches_at(facts, depth + 1)),
            Predicate::Any(inner) => inner.iter().any(|p| p.matches_at(facts, depth + 1)),
            Predicate::Not(inner) => !inner.matches_at(facts, depth + 1),
        }
    }

    /// How deeply `all`/`any`/`not` nest (1 for a leaf).
    pub fn depth(&self) -> usize {
        match self {
            Predicate::All(inner) | Predicate::Any(inner) => {
                1 + inner.iter().map(Predicate::depth).max().unwrap_or(0)
            }
            Predicate::Not(inner) => 1 + inner.depth(),
            _ => 1,
        }
    }
}

/// A day of the week, written `mon` ... `sun` (full English names are accepted too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    /// Monday.
    #[serde(alias = "monday")]
    Mon,
    /// Tuesday.
    #[serde(alias = "tuesday")]
    Tue,
    /// Wednesday.
    #[serde(alias = "wednesday")]
    Wed,
    /// Thursday.
    #[serde(alias = "thursday")]
    Thu,
    /// Friday.
    #[serde(alias = "friday")]
    Fri,
    /// Saturday.
    #[serde(alias = "saturday")]
    Sat,
    /// Sunday.
    #[serde(alias = "sunday")]
    Sun,
}

impl From<Weekday> for Day {
    fn from(day: Weekday) -> Self {
        match day {
            Weekday::Mon => Day::Mon,
            Weekday::Tue => Day::Tue,
            Weekday::Wed => Day::Wed,
            Weekday::Thu => Day::Thu,
            Weekday::Fri => Day::Fri,
            Weekday::Sat => Day::Sat,
            Weekday::Sun => Day::Sun,
        }
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Day::Mon => "mon",
            Day::Tue => "tue",
            Day::Wed => "wed",
            Day::Thu => "thu",
            Day::Fri => "fri",
            Day::Sat => "sat",
            Day::Sun => "sun",
        })
    }
}

/// An opening range within one day, written `"HH:MM-HH:MM"` in local time (for example
/// `"08:30-17:30"`). The start is included, the end excluded; `24:00` is allowed as an end. A
/// range never crosses midnight: split `22:00-02:00` into two days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TimeRange(pub String);

/// A parsed [`TimeRange`], in minutes since local midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinuteRange {
    /// First open minute (0..1440).
    pub start: u16,
    /// First closed minute (1..=1440).
    pub end: u16,
}

impl MinuteRange {
    /// Whether `minute` (since local midnight) is inside the range.
    pub fn contains(&self, minute: u16) -> bool {
        self.start <= minute && minute < self.end
    }
}

/// Why a [`TimeRange`] does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeRangeError {
    /// Not of the form `HH:MM-HH:MM`.
    #[error("expected \"HH:MM-HH:MM\", for example \"08:30-17:30\"")]
    Malformed,
    /// An hour above 24, a minute above 59, or `24:xx` other than `24:00` at the end.
    #[error("hours go from 00 to 23 (24:00 only as an end) and minutes from 00 to 59")]
    OutOfRange,
    /// The start is not before the end.
    #[error("the start must be before the end; split ranges that cross midnight over two days")]
    NotIncreasing,
}

impl TimeRange {
    /// Parses the range.
    pub fn parse(&self) -> Result<MinuteRange, TimeRangeError> {
        let (start, end) = self.0.split_once('-').ok_or(TimeRangeError::Malformed)?;
        let start = parse_hhmm(start.trim())?;
        let end = parse_hhmm(end.trim())?;
        if start >= 24 * 60 {
            return Err(TimeRangeError::OutOfRange);
        }
        if start >= end {
            return Err(TimeRangeError::NotIncreasing);
        }
        Ok(MinuteRange { start, end })
    }
}

fn parse_hhmm(s: &str) -> Result<u16, TimeRangeError> {
    let (h, m) = s.split_once(':').ok_or(TimeRangeError::Malformed)?;
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || h.len() > 2 || !digits(m) || m.len() != 2 {
        return Err(TimeRangeError::Malformed);
    }
    let h: u16 = h.parse().map_err(|_| TimeRangeError::Malformed)?;
    let m: u16 = m.parse().map_err(|_| TimeRangeError::Malformed)?;
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(TimeRangeError::OutOfRange);
    }
    Ok(h * 60 + m)
}

/// Branches on opening hours, evaluated in the tree's time zone: closed on `holidays` and
/// outside the ranges of the current weekday, open inside them. A day with no entry is closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHoursNode {
    /// Opening ranges per weekday (for example `{"mon": ["08:30-12:00", "13:30-17:30"]}`).
    #[serde(default)]
    pub schedule: BTreeMap<Day, Vec<TimeRange>>,
    /// Local dates on which the service is closed all day (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holidays: Vec<NaiveDate>,
    /// Where to go when open.
    pub open: NodeId,
    /// Where to go when closed.
    pub closed: NodeId,
}

impl BusinessHoursNode {
    /// Whether the service is open at `now`, read as local time in `tz`. Ranges that do not
    /// parse (rejected by validation) are ignored, that is treated as closed.
    pub fn is_open(&self, tz: Tz, now: DateTime<Utc>) -> bool {
        is_open_at(&self.schedule, &self.holidays, tz, now)
    }
}

/// Whether weekly opening hours are open at `now`, read as local time in `tz`: closed on
/// `holidays` and on a weekday without an entry, open inside that day's ranges. Ranges that do
/// not parse (rejected by validation) are ignored, that is treated as closed. The IVR's
/// `business_hours` node and the chat and SMS queues' opening hours both answer with this.
pub fn is_open_at(
    schedule: &BTreeMap<Day, Vec<TimeRange>>,
    holidays: &[NaiveDate],
    tz: Tz,
    now: DateTime<Utc>,
) -> bool {
    let local = now.with_timezone(&tz);
    if holidays.contains(&local.date_naive()) {
        return false;
    }
    let Some(ranges) = schedule.get(&Day::from(local.weekday())) else {
        return false;
    };
    // hour() < 24 and minute() < 60, so this stays below 1440 and fits in u16.
    let minute = (local.hour() * 60 + local.minute()) as u16;
    ranges
        .iter()
        .filter_map(|r| r.parse().ok())
        .any(|r| r.contains(minute))
}

/// Sets attribute `key` to `value` on the future interaction, then goes to `next`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetAttributeNode {
    /// Attribute name (letters, digits, `_`, `-`, `.`, `:`).
    pub key: String,
    /// Attribute value.
    pub value: String,
    /// The next node.
    pub next: NodeId,
}

/// Requires skill `skill` at `min_level` or above, then goes to `next`. Setting a skill that is
/// already required replaces its level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetRequirementNode {
    /// Skill name (for example `lang:fr` or `benefits:housing`).
    pub skill: String,
    /// Minimum level, 1 to 5.
    pub min_level: u8,
    /// The next node.
    pub next: NodeId,
}

/// Sets the interaction's priority (higher is served first), then goes to `next`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetPriorityNode {
    /// The priority.
    pub priority: u32,
    /// The next node.
    pub next: NodeId,
}

/// Switches the call to `language` (one of the tree's languages), then goes to `next`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetLanguageNode {
    /// The language tag.
    pub language: String,
    /// The next node.
    pub next: NodeId,
}

/// Terminal: hands the call to the router in queue `queue`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueNode {
    /// Queue name.
    pub queue: String,
}

/// Terminal: plays `prompt`, records a message of at most `max_length_secs`, and the recording
/// becomes an interaction in `queue`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoicemailNode {
    /// Said before the beep.
    pub prompt: Prompt,
    /// Longest recording in seconds (default 120).
    #[serde(default = "default_max_length_secs")]
    pub max_length_secs: u32,
    /// Queue that receives the recording.
    pub queue: String,
}

/// Offers a callback: pressing `accept_key` ends the IVR with a callback request in `queue`
/// (after `confirmation`, if set); any other key or no input goes to `declined`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackOfferNode {
    /// The offer (for example "Pour être rappelé, tapez 1").
    pub prompt: Prompt,
    /// Queue that receives the callback request.
    pub queue: String,
    /// Key that accepts (default `1`).
    #[serde(default = "default_accept_key")]
    pub accept_key: String,
    /// Seconds to wait for the key (default 5).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u32,
    /// Said after acceptance (for example "Nous vous rappellerons").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<Prompt>,
    /// Where to go when the caller does not accept.
    pub declined: NodeId,
}

/// Terminal: transfers the call to `number` (E.164 number or `sip:` URI), after `prompt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferNode {
    /// Phone number or SIP URI.
    pub number: String,
    /// Said before the transfer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<Prompt>,
}

/// Terminal: ends the call, after `prompt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HangupNode {
    /// Said before hanging up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<Prompt>,
}

/// Normalises a phone number for comparison and lookup: trims it and removes whitespace and
/// the usual visual separators (`-`, `.`, `(`, `)`, `/`), keeping a leading `+`. SIP URIs and
/// anything with a `@` only lose their whitespace.
///
/// ```text
/// " +33 1 23-45.67 89 "          -> "+33123456789"
/// "sip:accueil@pbx.example.org"  -> "sip:accueil@pbx.example.org"
/// ```
pub fn normalize_number(number: &str) -> String {
    let is_uri = number.contains('@') || number.trim_start().starts_with("sip:");
    number
        .chars()
        .filter(|c| !c.is_whitespace() && (is_uri || !matches!(c, '-' | '.' | '(' | ')' | '/')))
        .collect()
}
