//! Validation of IVR trees: the rules a tree must obey before the registry stores it.
//!
//! [`IvrTree::validate`] collects every problem rather than stopping at the first, so that a
//! supervisor fixes an upload in one go. Each [`ValidationError`] names the node (or `None` for
//! the tree itself) and a [`Problem`] whose message says what to fix.
//!
//! Rules:
//! - structure: the entry node exists; every target exists; from every node some path ends the call (queue, voicemail, callback offer,
//!   transfer, hangup); no loop is made only of nodes that take no input (say, play,
//!   condition, business hours, set_*): a loop must pass through a menu, collect or callback
//!   offer, otherwise the interpreter would spin without the caller ever being asked anything;
//! - languages: at least one, no duplicates, `default_language` among them; every text prompt
//!   has a non-empty text per language; an audio prompt has a URL per language or a single one
//!   under the default language; `set_language` and `language_equals` name a configured
//!   language;
//! - values: valid IANA time zone; `HH:MM-HH:MM` ranges with start before end; skill levels 1
//!   to 5; menu keys single DTMF keys; names (node ids, queues, skills, attributes) made of
//!   letters, digits, `_`, `-`, `.`, `:`; timeouts, retries, digits and recording lengths in
//!   sane ranges;
//! - references (with [`IvrTree::check`] given the router's [`KnownQueues`]): every queue a
//!   queue, voicemail or callback-offer node names exists and takes phone calls;
//! - size: the bounds below (nodes, prompt length, rules, ...) so that a tree cannot make the
//!   interpreter, the renderers or the store do unbounded work. The HTTP layer must still cap
//!   the upload's body size: these checks run after parsing.
//!
//! Warnings, which do not refuse a tree (so that a supervisor can cut a branch off quickly):
//! a node that cannot be reached from the entry node.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use chrono_tz::Tz;

use super::model::{IvrTree, Node, NodeId, Predicate, Prompt, TimeRangeError};

/// Most nodes in one tree.
pub const MAX_NODES: usize = 1_000;
/// Most characters in one prompt text.
pub const MAX_PROMPT_CHARS: usize = 4_000;
/// Most characters in one URL.
pub const MAX_URL_CHARS: usize = 2_048;
/// Most languages in one tree.
pub const MAX_LANGUAGES: usize = 16;
/// Most characters in a node id.
pub const MAX_ID_CHARS: usize = 64;
/// Most characters in a tree name, queue, skill or attribute name.
pub const MAX_NAME_CHARS: usize = 128;
/// Most characters in an attribute value or a value tested by a condition.
pub const MAX_VALUE_CHARS: usize = 1_024;
/// Most rules in one condition node.
pub const MAX_RULES: usize = 64;
/// Deepest nesting of `all`/`any`/`not` in one predicate.
pub const MAX_PREDICATE_DEPTH: usize = 8;
/// Most items in one `all`, `any` or `attribute_one_of` list.
pub const MAX_PREDICATE_TERMS: usize = 64;
/// Most holidays in one business-hours node.
pub const MAX_HOLIDAYS: usize = 400;
/// Most ranges on one day of a business-hours node.
pub const MAX_RANGES_PER_DAY: usize = 8;
/// Longest input timeout, in seconds.
pub const MAX_TIMEOUT_SECS: u32 = 60;
/// Most retries of a menu or collect node.
pub const MAX_RETRIES: u32 = 10;
/// Most digits a collect node accepts.
pub const MAX_DIGITS: u32 = 32;
/// Longest voicemail, in seconds.
pub const MAX_RECORDING_SECS: u32 = 3_600;
/// Most spoken keywords in one menu.
pub const MAX_SPEECH_KEYWORDS: usize = 32;
/// Most characters in one spoken keyword.
pub const MAX_KEYWORD_CHARS: usize = 100;
/// Most characters in a transfer number or SIP URI.
pub const MAX_NUMBER_CHARS: usize = 256;

/// What is wrong; the message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The tree has more nodes than [`MAX_NODES`]. Reported alone: no other check runs.
    #[error(
        "the tree has {count} nodes, more than the {max} allowed: split it into several trees"
    )]
    TooManyNodes {
        /// Nodes in the tree.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// `languages` is empty.
    #[error("`languages` is empty: list at least one language, for example [\"fr-FR\"]")]
    NoLanguages,
    /// A language appears twice in `languages`.
    #[error("language `{language}` is listed twice in `languages`: remove the duplicate")]
    DuplicateLanguage {
        /// The language tag.
        language: String,
    },
    /// A language tag is not of the form `xx` or `xx-YY`.
    #[error("`{language}` is not a language tag: use a BCP 47 tag such as fr-FR or en-GB")]
    InvalidLanguageTag {
        /// The offending tag.
        language: String,
    },
    /// `default_language` is not in `languages`.
    #[error(
        "default_language `{language}` is not in `languages`: add it there or pick one of them"
    )]
    DefaultLanguageNotListed {
        /// The default language.
        language: String,
    },
    /// The time zone is not a known IANA name.
    #[error("time zone `{timezone}` is unknown: use an IANA name such as Europe/Paris")]
    InvalidTimezone {
        /// The offending name.
        timezone: String,
    },
    /// The entry node does not exist.
    #[error("entry node `{entry}` does not exist: create it or point `entry` at an existing node")]
    MissingEntry {
        /// The entry id.
        entry: NodeId,
    },
    /// A target names a node that does not exist.
    #[error(
        "`{field}` points to node `{target}`, which does not exist: create it or fix the target"
    )]
    UnknownTarget {
        /// The field holding the target (for example `options.1`).
        field: String,
        /// The missing node.
        target: NodeId,
    },
    /// No path from the entry leads to this node.
    #[error(
        "the node cannot be reached from the entry node: link it from another node or delete it"
    )]
    Unreachable,
    /// A queue, voicemail or callback-offer node names a queue that does not exist.
    #[error("`{field}` names queue `{queue}`, which does not exist: create the queue first or name an existing one")]
    UnknownQueue {
        /// The field (`queue`).
        field: String,
        /// The queue as written (cut to 32 characters).
        queue: String,
    },
    /// A queue, voicemail or callback-offer node names a queue that takes no phone calls.
    #[error("`{field}` names queue `{queue}`, which does not take phone calls: add \"voice\" to its channels or name another queue")]
    QueueWithoutVoice {
        /// The field (`queue`).
        field: String,
        /// The queue.
        queue: String,
    },
    /// No path from this node ends the call.
    #[error("no path from this node ends the call: lead it to a queue, voicemail, callback offer, transfer or hangup")]
    DeadEnd,
    /// A loop made only of nodes that take no caller input.
    #[error("loop without caller input through {}: put a menu, collect or callback offer on the loop, or break it", join_ids(.nodes))]
    InputlessLoop {
        /// The nodes on the loop, sorted.
        nodes: Vec<NodeId>,
    },
    /// A text prompt has no text for a configured language (or an audio prompt no URL for it,
    /// while it is not a single default URL).
    #[error("`{field}` has no {language} version: add one, every configured language needs it")]
    MissingPromptLanguage {
        /// The prompt's field.
        field: String,
        /// The missing language.
        language: String,
    },
    /// A prompt has an entry for a language the tree does not list.
    #[error("`{field}` has a `{language}` version but the tree does not list that language: add it to `languages` or remove the entry")]
    UnknownPromptLanguage {
        /// The prompt's field.
        field: String,
        /// The unlisted language.
        language: String,
    },
    /// A prompt text is empty.
    #[error("`{field}` is empty in {language}: write the text")]
    EmptyPrompt {
        /// The prompt's field.
        field: String,
        /// The language.
        language: String,
    },
    /// A prompt text is longer than [`MAX_PROMPT_CHARS`].
    #[error("`{field}` in {language} is {len} characters long, more than {max}: shorten it")]
    PromptTooLong {
        /// The prompt's field.
        field: String,
        /// The language.
        language: String,
        /// Its length in characters.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A URL is not an `http(s)://` URL, or is too long, or holds spaces or control characters.
    #[error("`{field}` is not a usable audio URL: use an http:// or https:// URL of at most {max} characters, without spaces")]
    InvalidUrl {
        /// The field.
        field: String,
        /// The bound on its length.
        max: usize,
    },
    /// A business-hours range does not parse.
    #[error("`schedule.{day}`: `{range}` is not a valid range: {error}")]
    InvalidTimeRange {
        /// The day.
        day: String,
        /// The range as written (cut to 32 characters).
        range: String,
        /// What is wrong with it.
        error: TimeRangeError,
    },
    /// A skill level outside 1..=5.
    #[error("skill `{skill}` has level {level}: use a level from 1 to 5")]
    SkillLevelOutOfRange {
        /// The skill.
        skill: String,
        /// The level given.
        level: u8,
    },
    /// A menu or accept key that is not a single DTMF key.
    #[error("`{field}` is `{key}`, which is not a single DTMF key: use one of 0-9, * or #")]
    InvalidKey {
        /// The field (for example `options` or `accept_key`).
        field: String,
        /// The key as written (cut to 32 characters).
        key: String,
    },
    /// A menu without options.
    #[error("the menu has no options: add at least one key")]
    EmptyMenu,
    /// A language that the tree does not list.
    #[error("`{field}` names language `{language}`, which is not in the tree's `languages`: add it there or fix it")]
    UnknownLanguage {
        /// The field.
        field: String,
        /// The language.
        language: String,
    },
    /// A required text field is empty.
    #[error("`{field}` is empty: fill it in")]
    EmptyField {
        /// The field.
        field: String,
    },
    /// A text field is too long.
    #[error("`{field}` is {len} characters long, more than {max}: shorten it")]
    TooLong {
        /// The field.
        field: String,
        /// Its length in characters.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A name with characters outside letters, digits, `_`, `-`, `.`, `:`.
    #[error("`{field}` may only hold letters, digits, `_`, `-`, `.` and `:`: rename it")]
    InvalidName {
        /// The field.
        field: String,
    },
    /// A number outside its allowed range.
    #[error("`{field}` is {value}: it must be {expected}")]
    OutOfRange {
        /// The field.
        field: String,
        /// The value given.
        value: u64,
        /// The allowed range, in words.
        expected: String,
    },
    /// A list longer than its bound.
    #[error("`{field}` has {count} entries, more than {max}: remove some")]
    TooMany {
        /// The field.
        field: String,
        /// Entries given.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// A predicate nested deeper than [`MAX_PREDICATE_DEPTH`].
    #[error("`{field}` nests all/any/not {depth} levels deep, more than {max}: flatten it")]
    PredicateTooDeep {
        /// The field.
        field: String,
        /// Its depth.
        depth: usize,
        /// The bound.
        max: usize,
    },
    /// A transfer target that is neither a phone number nor a SIP URI.
    #[error("`number` must be a phone number such as +33140000000 or a SIP URI such as sip:accueil@pbx.example.org")]
    InvalidTransferNumber,
    /// A collect finish key other than `#`, `*` or none.
    #[error("`finish_on_key` is `{key}`: use \"#\", \"*\" or \"\" (none)")]
    InvalidFinishKey {
        /// The key as written (cut to 32 characters).
        key: String,
    },
}

impl Problem {
    /// Whether this is only a warning: the tree is still accepted (an unreachable node).
    pub fn is_warning(&self) -> bool {
        matches!(self, Problem::Unreachable)
    }
}

/// The queues a tree's queue names are checked against: each with whether it takes phone calls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownQueues {
    queues: BTreeMap<String, bool>,
}

impl KnownQueues {
    /// The given `(queue, takes phone calls)` pairs.
    pub fn new(queues: impl IntoIterator<Item = (String, bool)>) -> Self {
        KnownQueues {
            queues: queues.into_iter().collect(),
        }
    }

    /// Whether `queue` exists.
    pub fn contains(&self, queue: &str) -> bool {
        self.queues.contains_key(queue)
    }

    /// Whether `queue` exists and takes phone calls.
    pub fn takes_voice(&self, queue: &str) -> bool {
        self.queues.get(queue).copied().unwrap_or(false)
    }
}

/// Errors and warnings of one tree, as found by [`IvrTree::check`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    /// Problems that refuse the tree, tree-level ones first, then by node.
    pub errors: Vec<ValidationError>,
    /// Problems that do not refuse it (unreachable nodes).
    pub warnings: Vec<ValidationError>,
}

fn join_ids(ids: &[NodeId]) -> String {
    let names: Vec<String> = ids.iter().map(|id| format!("`{id}`")).collect();
    names.join(" -> ")
}

/// One problem, located at a node (or at the tree when `node` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// The node at fault, `None` for tree-level settings.
    pub node: Option<NodeId>,
    /// What is wrong.
    pub reason: Problem,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Some(node) => write!(f, "node `{node}`: {}", self.reason),
            None => write!(f, "tree: {}", self.reason),
        }
    }
}

/// Every problem found in one tree; never empty when returned by [`IvrTree::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationErrors {
    /// The tree's name.
    pub tree: String,
    /// The problems, tree-level ones first, then by node.
    pub errors: Vec<ValidationError>,
}

impl ValidationErrors {
    /// The problems.
    pub fn iter(&self) -> impl Iterator<Item = &ValidationError> {
        self.errors.iter()
    }

    /// How many problems.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Whether there is no problem.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The problems located at `node`.
    pub fn for_node<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Problem> + 'a {
        self.errors
            .iter()
            .filter(move |e| e.node.as_ref().is_some_and(|n| n.as_str() == node))
            .map(|e| &e.reason)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IVR tree `{}` has {} problem{}:",
            self.tree,
            self.errors.len(),
            if self.errors.len() == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            write!(f, "\n- {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

impl IvrTree {
    /// Checks every rule listed in the [module docs](super::validate) except the queue
    /// references, and returns all errors found (warnings do not count: see
    /// [`IvrTree::check`]).
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let checked = self.check(None);
        if checked.errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors {
                tree: self.name.clone(),
                errors: checked.errors,
            })
        }
    }

    /// Like [`IvrTree::validate`], also checking the queues the tree names against `queues`;
    /// returns the warnings when there is no error.
    pub fn validate_with(
        &self,
        queues: &KnownQueues,
    ) -> Result<Vec<ValidationError>, ValidationErrors> {
        let checked = self.check(Some(queues));
        if checked.errors.is_empty() {
            Ok(checked.warnings)
        } else {
            Err(ValidationErrors {
                tree: self.name.clone(),
                errors: checked.errors,
            })
        }
    }

    /// Every problem of the tree, split into errors and warnings; the queue references are
    /// checked when `queues` is given.
    pub fn check(&self, queues: Option<&KnownQueues>) -> Checked {
        let mut v = Validator {
            tree: self,
            errors: Vec::new(),
        };
        v.run();
        if let Some(known) = queues {
            if self.nodes.len() <= MAX_NODES {
                for (id, queue) in self.queue_names() {
                    let reason = if !known.contains(queue) {
                        Problem::UnknownQueue {
                            field: "queue".to_owned(),
                            queue: cut(queue),
                        }
                    } else if !known.takes_voice(queue) {
                        Problem::QueueWithoutVoice {
                            field: "queue".to_owned(),
                            queue: cut(queue),
                        }
                    } else {
                        continue;
                    };
                    v.push(Some(id), reason);
                }
                v.errors.sort_by(|a, b| a.node.cmp(&b.node));
            }
        }
        let (warnings, errors) = v.errors.into_iter().partition(|e| e.reason.is_warning());
        Checked { errors, warnings }
    }

    /// The queues the tree sends calls to: `(node, queue)` for every queue, voicemail and
    /// callback-offer node, in node order.
    pub fn queue_names(&self) -> impl Iterator<Item = (&NodeId, &str)> {
        self.nodes.iter().filter_map(|(id, node)| match node {
            Node::Queue(q) => Some((id, q.queue.as_str())),
            Node::Voicemail(v) => Some((id, v.queue.as_str())),
            Node::CallbackOffer(c) => Some((id, c.queue.as_str())),
            _ => None,
        })
    }
}

struct Validator<'a> {
    tree: &'a IvrTree,
    errors: Vec<ValidationError>,
}

/// Cuts a user-supplied string for inclusion in a message.
fn cut(s: &str) -> String {
    const MAX: usize = 32;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')
}

fn is_dtmf_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(
        (chars.next(), chars.next()),
        (Some('0'..='9' | '*' | '#'), None)
    )
}

fn is_language_tag(tag: &str) -> bool {
    (2..=35).contains(&tag.len())
        && tag.split('-').all(|part| {
            !part.is_empty() && part.len() <= 8 && part.chars().all(|c| c.is_ascii_alphanumeric())
        })
}

fn is_http_url(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() > "https://".len()
        && url.chars().count() <= MAX_URL_CHARS
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn is_transfer_target(number: &str) -> bool {
    let n = super::model::normalize_number(number);
    if let Some(rest) = n.strip_prefix("sip:").or_else(|| n.strip_prefix("sips:")) {
        return !rest.is_empty() && !rest.chars().any(|c| c.is_control());
    }
    let digits = n.strip_prefix('+').unwrap_or(&n);
    (2..=20).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit())
}

impl Validator<'_> {
    fn push(&mut self, node: Option<&NodeId>, reason: Problem) {
        self.errors.push(ValidationError {
            node: node.cloned(),
            reason,
        });
    }

    fn run(&mut self) {
        let tree = self.tree;
        if tree.nodes.len() > MAX_NODES {
            self.push(
                None,
                Problem::TooManyNodes {
                    count: tree.nodes.len(),
                    max: MAX_NODES,
                },
            );
            return;
        }
        self.check_tree_settings();
        for (id, node) in &tree.nodes {
            self.check_node(id, node);
        }
        self.check_graph();
        // Tree-level problems first, then by node id; stable within a node.
        self.errors.sort_by(|a, b| a.node.cmp(&b.node));
    }

    fn check_tree_settings(&mut self) {
        let tree = self.tree;
        self.check_name(None, "name", &tree.name, MAX_NAME_CHARS);
        if tree.languages.is_empty() {
            self.push(None, Problem::NoLanguages);
        }
        if tree.languages.len() > MAX_LANGUAGES {
            self.push(
                None,
                Problem::TooMany {
                    field: "languages".to_owned(),
                    count: tree.languages.len(),
                    max: MAX_LANGUAGES,
                },
            );
        }
        let mut seen = BTreeSet::new();
        for language in &tree.languages {
            if !is_language_tag(language) {
                self.push(
                    None,
                    Problem::InvalidLanguageTag {
                        language: cut(language),
                    },
                );
            }
            if !seen.insert(language.as_str()) {
                self.push(
                    None,
                    Problem::DuplicateLanguage {
                        language: cut(language),
                    },
                );
            }
        }
        if !tree.languages.is_empty() && !tree.languages.contains(&tree.default_language) {
            self.push(
                None,
                Problem::DefaultLanguageNotListed {
                    language: cut(&tree.default_language),
                },
            );
        }
        if tree.timezone.parse::<Tz>().is_err() {
            self.push(
                None,
                Problem::InvalidTimezone {
                    timezone: cut(&tree.timezone),
                },
            );
        }
        if !tree.nodes.contains_key(&tree.entry) {
            self.push(
                None,
                Problem::MissingEntry {
                    entry: NodeId::new(cut(tree.entry.as_str())),
                },
            );
        }
    }

    /// Checks a name made of letters, digits, `_`, `-`, `.`, `:`.
    fn check_name(&mut self, node: Option<&NodeId>, field: &str, value: &str, max: usize) {
        let len = value.chars().count();
        if value.is_empty() {
            self.push(
                node,
                Problem::EmptyField {
                    field: field.to_owned(),
                },
            );
        } else if len > max {
            self.push(
                node,
                Problem::TooLong {
                    field: field.to_owned(),
                    len,
                    max,
                },
            );
        } else if !value.chars().all(is_name_char) {
            self.push(
                node,
                Problem::InvalidName {
                    field: field.to_owned(),
                },
            );
        }
    }

    fn check_range(&mut self, node: &NodeId, field: &str, value: u32, min: u32, max: u32) {
        if value < min || value > max {
            self.push(
                Some(node),
                Problem::OutOfRange {
                    field: field.to_owned(),
                    value: u64::from(value),
                    expected: format!("between {min} and {max}"),
                },
            );
        }
    }

    fn check_len(&mut self, node: &NodeId, field: &str, value: &str, max: usize) {
        let len = value.chars().count();
        if len > max {
            self.push(
                Some(node),
                Problem::TooLong {
                    field: field.to_owned(),
                    len,
                    max,
                },
            );
        }
    }

    fn check_language(&mut self, node: &NodeId, field: &str, language: &str) {
        if !self.tree.languages.iter().any(|l| l == language) {
            self.push(
                Some(node),
                Problem::UnknownLanguage {
                    field: field.to_owned(),
                    language: cut(language),
                },
            );
        }
    }

    fn check_node(&mut self, id: &NodeId, node: &Node) {
        self.check_name(Some(id), "node id", id.as_str(), MAX_ID_CHARS);
        for (field, target) in node.targets() {
            if !self.tree.nodes.contains_key(target) {
                self.push(
                    Some(id),
                    Problem::UnknownTarget {
                        field,
                        target: NodeId::new(cut(target.as_str())),
                    },
                );
            }
        }
        for (field, prompt) in node.prompts() {
            self.check_prompt(id, field, prompt);
        }
        match node {
            Node::Menu(m) => {
                if m.options.is_empty() {
                    self.push(Some(id), Problem::EmptyMenu);
                }
                for key in m.options.keys() {
                    if !is_dtmf_key(key) {
                        self.push(
                            Some(id),
                            Problem::InvalidKey {
                                field: "options".to_owned(),
                                key: cut(key),
                            },
                        );
                    }
                }
                if m.speech.len() > MAX_SPEECH_KEYWORDS {
                    self.push(
                        Some(id),
                        Problem::TooMany {
                            field: "speech".to_owned(),
                            count: m.speech.len(),
                            max: MAX_SPEECH_KEYWORDS,
                        },
                    );
                }
                for keyword in m.speech.keys() {
                    if keyword.trim().is_empty() {
                        self.push(
                            Some(id),
                            Problem::EmptyField {
                                field: "speech keyword".to_owned(),
                            },
                        );
                    }
                    self.check_len(id, "speech keyword", keyword, MAX_KEYWORD_CHARS);
                }
                self.check_range(id, "timeout_secs", m.timeout_secs, 1, MAX_TIMEOUT_SECS);
                self.check_range(id, "max_retries", m.max_retries, 0, MAX_RETRIES);
            }
            Node::Say(_) => {}
            Node::Play(p) => {
                if !is_http_url(&p.url) {
                    self.push(
                        Some(id),
                        Problem::InvalidUrl {
                            field: "url".to_owned(),
                            max: MAX_URL_CHARS,
                        },
                    );
                }
            }
            Node::Collect(c) => {
                self.check_name(Some(id), "attribute", &c.attribute, MAX_NAME_CHARS);
                self.check_range(id, "min_digits", c.min_digits, 1, MAX_DIGITS);
                self.check_range(
                    id,
                    "max_digits",
                    c.max_digits,
                    c.min_digits.max(1),
                    MAX_DIGITS,
                );
                if !matches!(c.finish_on_key.as_str(), "" | "#" | "*") {
                    self.push(
                        Some(id),
                        Problem::InvalidFinishKey {
                            key: cut(&c.finish_on_key),
                        },
                    );
                }
                self.check_range(id, "timeout_secs", c.timeout_secs, 1, MAX_TIMEOUT_SECS);
                self.check_range(id, "max_retries", c.max_retries, 0, MAX_RETRIES);
            }
            Node::Condition(c) => {
                if c.rules.len() > MAX_RULES {
                    self.push(
                        Some(id),
                        Problem::TooMany {
                            field: "rules".to_owned(),
                            count: c.rules.len(),
                            max: MAX_RULES,
                        },
                    );
                }
                for (i, rule) in c.rules.iter().enumerate() {
                    let field = format!("rules[{i}].when");
                    let depth = rule.when.depth();
                    if depth > MAX_PREDICATE_DEPTH {
                        self.push(
                            Some(id),
                            Problem::PredicateTooDeep {
                                field,
                                depth,
                                max: MAX_PREDICATE_DEPTH,
                            },
                        );
                    } else {
                        self.check_predicate(id, &field, &rule.when);
                    }
                }
            }
            Node::BusinessHours(b) => {
                for (day, ranges) in &b.schedule {
                    if ranges.len() > MAX_RANGES_PER_DAY {
                        self.push(
                            Some(id),
                            Problem::TooMany {
                                field: format!("schedule.{day}"),
                                count: ranges.len(),
                                max: MAX_RANGES_PER_DAY,
                            },
                        );
                        continue;
                    }
                    for range in ranges {
                        if let Err(error) = range.parse() {
                            self.push(
                                Some(id),
                                Problem::InvalidTimeRange {
                                    day: day.to_string(),
                                    range: cut(&range.0),
                                    error,
                                },
                            );
                        }
                    }
                }
                if b.holidays.len() > MAX_HOLIDAYS {
                    self.push(
                        Some(id),
                        Problem::TooMany {
                            field: "holidays".to_owned(),
                            count: b.holidays.len(),
                            max: MAX_HOLIDAYS,
                        },
                    );
                }
            }
            Node::SetAttribute(s) => {
                self.check_name(Some(id), "key", &s.key, MAX_NAME_CHARS);
                self.check_len(id, "value", &s.value, MAX_VALUE_CHARS);
            }
            Node::SetRequirement(s) => {
                self.check_name(Some(id), "skill", &s.skill, MAX_NAME_CHARS);
                if !(1..=5).contains(&s.min_level) {
                    self.push(
                        Some(id),
                        Problem::SkillLevelOutOfRange {
                            skill: cut(&s.skill),
                            level: s.min_level,
                        },
                    );
                }
            }
            Node::SetPriority(_) => {}
            Node::SetLanguage(s) => self.check_language(id, "language", &s.language),
            Node::Queue(q) => self.check_name(Some(id), "queue", &q.queue, MAX_NAME_CHARS),
            Node::Voicemail(v) => {
                self.check_name(Some(id), "queue", &v.queue, MAX_NAME_CHARS);
                self.check_range(
                    id,
                    "max_length_secs",
                    v.max_length_secs,
                    1,
                    MAX_RECORDING_SECS,
                );
            }
            Node::CallbackOffer(c) => {
                self.check_name(Some(id), "queue", &c.queue, MAX_NAME_CHARS);
                if !is_dtmf_key(&c.accept_key) {
                    self.push(
                        Some(id),
                        Problem::InvalidKey {
                            field: "accept_key".to_owned(),
                            key: cut(&c.accept_key),
                        },
                    );
                }
                self.check_range(id, "timeout_secs", c.timeout_secs, 1, MAX_TIMEOUT_SECS);
            }
            Node::Transfer(t) => {
                if t.number.chars().count() > MAX_NUMBER_CHARS {
                    self.check_len(id, "number", &t.number, MAX_NUMBER_CHARS);
                } else if !is_transfer_target(&t.number) {
                    self.push(Some(id), Problem::InvalidTransferNumber);
                }
            }
            Node::Hangup(_) => {}
        }
    }

    fn check_prompt(&mut self, id: &NodeId, field: &str, prompt: &Prompt) {
        let tree = self.tree;
        for language in prompt.languages() {
            if !tree.languages.iter().any(|l| l == language) {
                self.push(
                    Some(id),
                    Problem::UnknownPromptLanguage {
                        field: field.to_owned(),
                        language: cut(language),
                    },
                );
            }
        }
        match prompt {
            Prompt::Text(texts) => {
                for language in &tree.languages {
                    match texts.get(language) {
                        None => self.push(
                            Some(id),
                            Problem::MissingPromptLanguage {
                                field: field.to_owned(),
                                language: language.clone(),
                            },
                        ),
                        Some(text) if text.trim().is_empty() => self.push(
                            Some(id),
                            Problem::EmptyPrompt {
                                field: field.to_owned(),
                                language: language.clone(),
                            },
                        ),
                        Some(text) => {
                            let len = text.chars().count();
                            if len > MAX_PROMPT_CHARS {
                                self.push(
                                    Some(id),
                                    Problem::PromptTooLong {
                                        field: field.to_owned(),
                                        language: language.clone(),
                                        len,
                                        max: MAX_PROMPT_CHARS,
                                    },
                                );
                            }
                        }
                    }
                }
            }
            Prompt::Audio(urls) => {
                let single_default = urls.len() == 1 && urls.contains_key(&tree.default_language);
                if !single_default {
                    for language in &tree.languages {
                        if !urls.contains_key(language) {
                            self.push(
                                Some(id),
                                Problem::MissingPromptLanguage {
                                    field: field.to_owned(),
                                    language: language.clone(),
                                },
                            );
                        }
                    }
                }
                if urls.is_empty() && tree.languages.is_empty() {
                    self.push(
                        Some(id),
                        Problem::EmptyField {
                            field: field.to_owned(),
                        },
                    );
                }
                for (language, url) in urls {
                    if !is_http_url(url) {
                        self.push(
                            Some(id),
                            Problem::InvalidUrl {
                                field: format!("{field}.{}", cut(language)),
                                max: MAX_URL_CHARS,
                            },
                        );
                    }
                }
            }
        }
    }

    /// Checks a predicate whose depth is already known to be within bounds.
    fn check_predicate(&mut self, id: &NodeId, field: &str, predicate: &Predicate) {
        match predicate {
            Predicate::CallerEquals(number) | Predicate::CallerStartsWith(number) => {
                if super::model::normalize_number(number).is_empty() {
                    self.push(
                        Some(id),
                        Problem::EmptyField {
                            field: field.to_owned(),
                        },
                    );
                }
                self.check_len(id, field, number, MAX_NUMBER_CHARS);
            }
            Predicate::AttributeEquals { key, value } => {
                self.check_name(Some(id), field, key, MAX_NAME_CHARS);
                self.check_len(id, field, value, MAX_VALUE_CHARS);
            }
            Predicate::AttributeOneOf { key, values } => {
                self.check_name(Some(id), field, key, MAX_NAME_CHARS);
                self.check_terms(id, field, values.len());
                for value in values {
                    self.check_len(id, field, value, MAX_VALUE_CHARS);
                }
            }
            Predicate::AttributeExists(key) => {
                self.check_name(Some(id), field, key, MAX_NAME_CHARS);
            }
            Predicate::LanguageEquals(language) => self.check_language(id, field, language),
            Predicate::All(inner) | Predicate::Any(inner) => {
                self.check_terms(id, field, inner.len());
                for p in inner.iter().take(MAX_PREDICATE_TERMS) {
                    self.check_predicate(id, field, p);
                }
            }
            Predicate::Not(inner) => self.check_predicate(id, field, inner),
        }
    }

    fn check_terms(&mut self, id: &NodeId, field: &str, count: usize) {
        if count > MAX_PREDICATE_TERMS {
            self.push(
                Some(id),
                Problem::TooMany {
                    field: field.to_owned(),
                    count,
                    max: MAX_PREDICATE_TERMS,
                },
            );
        }
    }

    fn check_graph(&mut self) {
        let tree = self.tree;
        let ids: Vec<&NodeId> = tree.nodes.keys().collect();
        let index: BTreeMap<&NodeId, usize> =
            ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let nodes: Vec<&Node> = tree.nodes.values().collect();
        let n = ids.len();

        // Successors over existing targets; a node with a missing target was reported already.
        let mut succ: Vec<Vec<usize>> = Vec::with_capacity(n);
        let mut has_unknown_target = vec![false; n];
        for (i, node) in nodes.iter().enumerate() {
            let mut out = Vec::new();
            for (_, target) in node.targets() {
                match index.get(target) {
                    Some(&j) => out.push(j),
                    None => has_unknown_target[i] = true,
                }
            }
            out.sort_unstable();
            out.dedup();
            succ.push(out);
        }

        // Reachability from the entry (skipped when the entry is missing: already reported).
        if let Some(&entry) = index.get(&tree.entry) {
            let mut seen = vec![false; n];
            let mut queue = VecDeque::from([entry]);
            seen[entry] = true;
            while let Some(u) = queue.pop_front() {
                for &w in &succ[u] {
                    if !seen[w] {
                        seen[w] = true;
                        queue.push_back(w);
                    }
                }
            }
            for (i, reached) in seen.iter().enumerate() {
                if !reached {
                    self.push(Some(ids[i]), Problem::Unreachable);
                }
            }
        }

        // Every node can reach the end of the IVR. A node with a missing target counts as able
        // to, so that one missing node does not flag everything upstream of it.
        let mut pred: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (u, out) in succ.iter().enumerate() {
            for &w in out {
                pred[w].push(u);
            }
        }
        let mut ends = vec![false; n];
        let mut queue: VecDeque<usize> = (0..n)
            .filter(|&i| nodes[i].can_finish() || has_unknown_target[i])
            .collect();
        for &i in &queue {
            ends[i] = true;
        }
        while let Some(w) = queue.pop_front() {
            for &u in &pred[w] {
                if !ends[u] {
                    ends[u] = true;
                    queue.push_back(u);
                }
            }
        }
        for (i, can_end) in ends.iter().enumerate() {
            if !can_end {
                self.push(Some(ids[i]), Problem::DeadEnd);
            }
        }

        // Loops among nodes that take no input: strongly connected components of that subgraph.
        let inputless: Vec<Vec<usize>> = (0..n)
            .map(|u| {
                if nodes[u].takes_input() {
                    Vec::new()
                } else {
                    succ[u]
                        .iter()
                        .copied()
                        .filter(|&w| !nodes[w].takes_input())
                        .collect()
                }
            })
            .collect();
        for component in strongly_connected_components(&inputless) {
            let is_loop = component.len() > 1
                || component
                    .first()
                    .is_some_and(|&u| inputless[u].contains(&u));
            if is_loop {
                let mut members: Vec<NodeId> = component.iter().map(|&i| ids[i].clone()).collect();
                members.sort();
                let first = members.first().cloned();
                self.push(first.as_ref(), Problem::InputlessLoop { nodes: members });
            }
        }
    }
}

/// Tarjan's algorithm, iterative so that its depth does not depend on the tree's shape.
/// Returns the components, each non-empty.
fn strongly_connected_components(adj: &[Vec<usize>]) -> Vec<Vec<usize>> {
    const UNVISITED: usize = usize::MAX;
    let n = adj.len();
    let mut index = vec![UNVISITED; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut next_index = 0usize;
    let mut components = Vec::new();

    for root in 0..n {
        if index[root] != UNVISITED {
            continue;
        }
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        let mut calls: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(frame) = calls.last_mut() {
            let (u, i) = *frame;
            if let Some(&w) = adj[u].get(i) {
                frame.1 += 1;
                if index[w] == UNVISITED {
                    index[w] = next_index;
                    low[w] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    calls.push((w, 0));
                } else if on_stack[w] {
                    low[u] = low[u].min(index[w]);
                }
            } else {
                calls.pop();
                if let Some(&(parent, _)) = calls.last() {
                    low[parent] = low[parent].min(low[u]);
                }
                if low[u] == index[u] {
                    let mut component = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        component.push(w);
                        if w == u {
                            break;
                        }
                    }
                    components.push(component);
                }
            }
        }
    }
    components
}
