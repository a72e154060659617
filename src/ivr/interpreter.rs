//! The IVR interpreter: walks one call through a tree, one caller input at a time.
//!
//! This file owns [`CallSession`] and what goes in and out of it ([`Input`], [`Step`],
//! [`Outcome`], [`CallContext`]) plus the serialisable [`SessionState`] that lets a call survive
//! between webhook requests. It is pure and deterministic: no I/O, no clock (time is a
//! parameter), no randomness.
//!
//! How a turn works: starting from a node, the interpreter runs every node that takes no input
//! (say, play, condition, business hours, set_*), collecting prompts, until it reaches either a
//! node that waits for the caller (menu, collect, callback offer), which yields
//! [`Step::Prompt`] with a [`GatherSpec`], or a terminal, which yields [`Step::Outcome`]. The
//! caller's answer comes back through [`CallSession::input`].
//!
//! Input rules:
//! - menu: a key (or spoken keyword) with a target goes there; anything else is invalid and
//!   replays the menu after `invalid_prompt`; no input goes to `on_no_input` if set, else
//!   replays the menu. Invalid and missing input share one retry counter, reset whenever the
//!   call enters a node; once `max_retries` replays are used up, the next failure goes to
//!   `on_fail`. `Digits("")` counts as no input.
//! - collect: digits (a trailing finish key is dropped) whose count is within bounds are
//!   stored in the attribute; other input and no input replay with the same retry rule.
//! - callback offer: the accept key ends the IVR with [`Outcome::Callback`]; anything else,
//!   including no input, goes to `declined`.
//!
//! Defences for trees that were never validated (or state that was tampered with): a turn
//! stops after [`MAX_STEPS_PER_TURN`] nodes, a call after [`MAX_TURNS_PER_CALL`] inputs, and a
//! missing node ends the call; each yields [`Outcome::Hangup`] with a [`Fault`].

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::model::{
    normalize_number, CallbackOfferNode, CollectNode, Facts, IvrTree, MenuNode, Node, NodeId,
    Prompt, Utterance,
};

/// Most nodes one turn may run through before the call is hung up with [`Fault::StepLimit`].
pub const MAX_STEPS_PER_TURN: usize = 10_000;

/// Most inputs one call may give before it is hung up with [`Fault::TurnLimit`].
pub const MAX_TURNS_PER_CALL: u32 = 100;

/// What the caller did in answer to a [`Step::Prompt`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Input {
    /// Keys pressed (Twilio `Digits`, jambonz `digits`).
    Digits(String),
    /// Recognised speech (Twilio `SpeechResult`, jambonz `speech`).
    Speech(String),
    /// The gather timed out.
    NoInput,
}

/// How to listen for the caller's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatherSpec {
    /// Stop after this many keys (1 for a menu).
    pub num_digits: Option<u32>,
    /// Key that ends input early; empty for none (menus, so that `#` can be an option).
    pub finish_on_key: String,
    /// Seconds to wait.
    pub timeout_secs: u32,
    /// Whether to listen for speech as well as keys.
    pub speech: bool,
    /// The call's language, for speech recognition.
    pub language: String,
}

/// What the voice channel should do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Say or play `prompts`, then listen as `gather` says and send the answer to
    /// [`CallSession::input`]. The interpreter always sets `gather`; `None` is for callers that
    /// build announcement-only steps, rendered as the prompts then a redirect.
    Prompt {
        /// What to say or play, in order.
        prompts: Vec<Utterance>,
        /// How to listen.
        gather: Option<GatherSpec>,
    },
    /// The IVR is over.
    Outcome(Outcome),
}

impl Step {
    /// The prompts to play, whatever the kind of step.
    pub fn prompts(&self) -> &[Utterance] {
        match self {
            Step::Prompt { prompts, .. } => prompts,
            Step::Outcome(outcome) => outcome.prompts(),
        }
    }

    /// The outcome, if the IVR is over.
    pub fn outcome(&self) -> Option<&Outcome> {
        match self {
            Step::Outcome(outcome) => Some(outcome),
            Step::Prompt { .. } => None,
        }
    }
}

/// A skill the interaction requires: the routing core's own type, so that what the IVR collects
/// goes to the router as it is.
pub use crate::core::Requirement;

/// What the IVR learnt about the call, handed to routing with the outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallContext {
    /// The caller's number, normalised.
    pub caller: String,
    /// The dialled number, normalised.
    pub called: String,
    /// The call's language at the end of the IVR.
    pub language: String,
    /// Attributes set by `set_attribute` and `collect` nodes.
    pub attributes: BTreeMap<String, String>,
    /// Skill requirements, in the order they were first set.
    pub requirements: Vec<Requirement>,
    /// Priority, if a `set_priority` node ran (otherwise the queue's default applies).
    pub priority: Option<u32>,
}

/// How the IVR ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Hand the call to the router in `queue`.
    Queue {
        /// Queue name.
        queue: String,
        /// What the IVR learnt.
        context: CallContext,
        /// Prompts to play before queueing.
        prompts: Vec<Utterance>,
    },
    /// Record a message; the recording becomes an interaction in `queue`.
    Voicemail {
        /// Queue that receives the recording.
        queue: String,
        /// Longest recording in seconds.
        max_length_secs: u32,
        /// What the IVR learnt.
        context: CallContext,
        /// Prompts to play before the beep (the voicemail prompt last).
        prompts: Vec<Utterance>,
    },
    /// The caller asked to be called back at `number`; the request goes to `queue`.
    Callback {
        /// Queue that receives the request.
        queue: String,
        /// Number to call back (the caller's).
        number: String,
        /// What the IVR learnt.
        context: CallContext,
        /// Prompts to play before hanging up (the confirmation, if any).
        prompts: Vec<Utterance>,
    },
    /// Transfer the call to `number` (phone number or SIP URI).
    Transfer {
        /// Target.
        number: String,
        /// What the IVR learnt.
        context: CallContext,
        /// Prompts to play before the transfer.
        prompts: Vec<Utterance>,
    },
    /// Hang up after `prompts`. `fault` is set when the IVR could not go on; the prompts are
    /// then empty and the channel may play its own apology.
    Hangup {
        /// Prompts to play first.
        prompts: Vec<Utterance>,
        /// Why the call was cut, when it was not the tree's choice.
        fault: Option<Fault>,
    },
}

impl Outcome {
    /// The prompts to play before acting on the outcome.
    pub fn prompts(&self) -> &[Utterance] {
        match self {
            Outcome::Queue { prompts, .. }
            | Outcome::Voicemail { prompts, .. }
            | Outcome::Callback { prompts, .. }
            | Outcome::Transfer { prompts, .. }
            | Outcome::Hangup { prompts, .. } => prompts,
        }
    }

    /// What the IVR learnt, except for a hang-up.
    pub fn context(&self) -> Option<&CallContext> {
        match self {
            Outcome::Queue { context, .. }
            | Outcome::Voicemail { context, .. }
            | Outcome::Callback { context, .. }
            | Outcome::Transfer { context, .. } => Some(context),
            Outcome::Hangup { .. } => None,
        }
    }
}

/// Why the interpreter cut a call short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "fault", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Fault {
    /// One turn ran through more than [`MAX_STEPS_PER_TURN`] nodes (a loop without input).
    #[error("the IVR ran through {limit} nodes without asking the caller anything")]
    StepLimit {
        /// The bound.
        limit: usize,
    },
    /// The call gave more than [`MAX_TURNS_PER_CALL`] inputs.
    #[error("the call gave more than {limit} inputs")]
    TurnLimit {
        /// The bound.
        limit: u32,
    },
    /// The tree has no node with this id.
    #[error("node `{node}` does not exist in the tree")]
    UnknownNode {
        /// The missing node.
        node: NodeId,
    },
    /// The session's current node does not take input.
    #[error("node `{node}` does not wait for input")]
    NotWaitingForInput {
        /// The node.
        node: NodeId,
    },
    /// The tree's time zone is not a known IANA name.
    #[error("time zone `{timezone}` is unknown")]
    InvalidTimezone {
        /// The name.
        timezone: String,
    },
    /// Input arrived after the IVR had ended.
    #[error("the IVR is already over for this call")]
    Finished,
}

/// Everything about a call in progress except the tree itself: store it between webhook
/// requests and give it back to [`CallSession::resume`] with the same tree version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    /// Name of the tree the call started on.
    pub tree_name: String,
    /// Version of that tree: the call keeps it even when another version is activated.
    pub tree_version: u32,
    /// The caller's number, normalised.
    pub caller: String,
    /// The dialled number, normalised.
    pub called: String,
    /// The node waiting for input; `None` once the IVR is over.
    pub current: Option<NodeId>,
    /// The call's language.
    pub language: String,
    /// Attributes set so far.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Requirements set so far.
    #[serde(default)]
    pub requirements: Vec<Requirement>,
    /// Priority, if set.
    #[serde(default)]
    pub priority: Option<u32>,
    /// Failed attempts at the current node.
    #[serde(default)]
    pub retries: u32,
    /// Inputs received so far.
    #[serde(default)]
    pub turns: u32,
}

/// Why a stored [`SessionState`] cannot be resumed with a tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// The state belongs to another tree or version.
    #[error(
        "the call runs tree `{state_tree}` version {state_version}, not `{tree}` version {version}"
    )]
    TreeMismatch {
        /// Tree named in the state.
        state_tree: String,
        /// Version named in the state.
        state_version: u32,
        /// Tree given.
        tree: String,
        /// Version given.
        version: u32,
    },
    /// The state's current node is not in the tree.
    #[error("node `{node}` is not in the tree")]
    UnknownNode {
        /// The node.
        node: NodeId,
    },
    /// The state's current node does not wait for input.
    #[error("node `{node}` does not wait for input")]
    NotWaitingForInput {
        /// The node.
        node: NodeId,
    },
    /// The state's language is not one of the tree's.
    #[error("language `{language}` is not one of the tree's languages")]
    UnknownLanguage {
        /// The language.
        language: String,
    },
}

/// One call walking one version of an IVR tree.
#[derive(Debug, Clone)]
pub struct CallSession {
    tree: Arc<IvrTree>,
    state: SessionState,
}

enum Answer {
    Go(NodeId),
    Invalid,
    NoInput,
}

impl CallSession {
    /// Starts a call from `from` to `to` at the tree's entry node and runs its first turn.
    pub fn start(
        tree: Arc<IvrTree>,
        from: &str,
        to: &str,
        now: DateTime<Utc>,
    ) -> (CallSession, Step) {
        let state = SessionState {
            tree_name: tree.name.clone(),
            tree_version: tree.version,
            caller: normalize_number(from),
            called: normalize_number(to),
            current: None,
            language: tree.default_language.clone(),
            attributes: BTreeMap::new(),
            requirements: Vec::new(),
            priority: None,
            retries: 0,
            turns: 0,
        };
        let entry = tree.entry.clone();
        let mut session = CallSession { tree, state };
        let step = session.advance(entry, Vec::new(), now);
        (session, step)
    }

    /// Re-attaches a stored state to its tree. The tree must be the same name and version.
    pub fn resume(tree: Arc<IvrTree>, state: SessionState) -> Result<CallSession, ResumeError> {
        if tree.name != state.tree_name || tree.version != state.tree_version {
            return Err(ResumeError::TreeMismatch {
                state_tree: state.tree_name,
                state_version: state.tree_version,
                tree: tree.name.clone(),
                version: tree.version,
            });
        }
        if let Some(node) = &state.current {
            match tree.nodes.get(node) {
                None => return Err(ResumeError::UnknownNode { node: node.clone() }),
                Some(n) if !n.takes_input() => {
                    return Err(ResumeError::NotWaitingForInput { node: node.clone() })
                }
                Some(_) => {}
            }
        }
        if !tree.languages.contains(&state.language) && tree.default_language != state.language {
            return Err(ResumeError::UnknownLanguage {
                language: state.language,
            });
        }
        Ok(CallSession { tree, state })
    }

    /// The state to store until the next request.
    pub fn state(&self) -> &SessionState {
        &self.state
    }

    /// Gives up the session, keeping its state.
    pub fn into_state(self) -> SessionState {
        self.state
    }

    /// The tree version this call runs.
    pub fn tree(&self) -> &Arc<IvrTree> {
        &self.tree
    }

    /// Whether the IVR is over for this call.
    pub fn is_finished(&self) -> bool {
        self.state.current.is_none()
    }

    /// The node waiting for input, if any.
    pub fn current_node(&self) -> Option<&NodeId> {
        self.state.current.as_ref()
    }

    /// What the IVR learnt so far.
    pub fn context(&self) -> CallContext {
        CallContext {
            caller: self.state.caller.clone(),
            called: self.state.called.clone(),
            language: self.state.language.clone(),
            attributes: self.state.attributes.clone(),
            requirements: self.state.requirements.clone(),
            priority: self.state.priority,
        }
    }

    /// Feeds the caller's answer to the node waiting for it and runs the next turn.
    pub fn input(&mut self, input: Input, now: DateTime<Utc>) -> Step {
        let Some(current) = self.state.current.clone() else {
            return fault(Fault::Finished);
        };
        self.state.turns = self.state.turns.saturating_add(1);
        if self.state.turns > MAX_TURNS_PER_CALL {
            return self.fail(Fault::TurnLimit {
                limit: MAX_TURNS_PER_CALL,
            });
        }
        let tree = Arc::clone(&self.tree);
        match tree.nodes.get(&current) {
            None => self.fail(Fault::UnknownNode { node: current }),
            Some(Node::Menu(menu)) => match (menu_answer(menu, &input), &menu.on_no_input) {
                (Answer::Go(target), _) => self.advance(target, Vec::new(), now),
                (Answer::NoInput, Some(target)) => self.advance(target.clone(), Vec::new(), now),
                (answer, _) => {
                    let invalid = matches!(answer, Answer::Invalid);
                    self.retry(menu.max_retries, &menu.on_fail, now, |s| {
                        let mut prompts = Vec::new();
                        if invalid {
                            s.push_prompt(menu.invalid_prompt.as_ref(), &mut prompts);
                        }
                        s.menu_step(menu, prompts)
                    })
                }
            },
            Some(Node::Collect(collect)) => match collect_answer(collect, &input) {
                Ok(digits) => {
                    self.state
                        .attributes
                        .insert(collect.attribute.clone(), digits);
                    self.advance(collect.next.clone(), Vec::new(), now)
                }
                Err(no_input) => self.retry(collect.max_retries, &collect.on_fail, now, |s| {
                    let mut prompts = Vec::new();
                    if !no_input {
                        s.push_prompt(collect.invalid_prompt.as_ref(), &mut prompts);
                    }
                    s.collect_step(collect, prompts)
                }),
            },
            Some(Node::CallbackOffer(offer)) => {
                let accepted = matches!(&input, Input::Digits(d) if d.trim() == offer.accept_key);
                if accepted {
                    let mut prompts = Vec::new();
                    self.push_prompt(offer.confirmation.as_ref(), &mut prompts);
                    self.finish(Outcome::Callback {
                        queue: offer.queue.clone(),
                        number: self.state.caller.clone(),
                        context: self.context(),
                        prompts,
                    })
                } else {
                    self.advance(offer.declined.clone(), Vec::new(), now)
                }
            }
            Some(_) => self.fail(Fault::NotWaitingForInput { node: current }),
        }
    }

    /// Counts a failed attempt at the current node: replays it (via `replay`) while retries
    /// remain, otherwise goes to `on_fail`.
    fn retry(
        &mut self,
        max_retries: u32,
        on_fail: &NodeId,
        now: DateTime<Utc>,
        replay: impl FnOnce(&Self) -> Step,
    ) -> Step {
        self.state.retries = self.state.retries.saturating_add(1);
        if self.state.retries > max_retries {
            self.advance(on_fail.clone(), Vec::new(), now)
        } else {
            replay(self)
        }
    }

    /// Runs nodes from `at` until one waits for input or ends the IVR.
    fn advance(&mut self, mut at: NodeId, mut prompts: Vec<Utterance>, now: DateTime<Utc>) -> Step {
        let tree = Arc::clone(&self.tree);
        for _ in 0..MAX_STEPS_PER_TURN {
            let Some(node) = tree.nodes.get(&at) else {
                return self.fail(Fault::UnknownNode { node: at });
            };
            at = match node {
                Node::Say(n) => {
                    self.push_prompt(Some(&n.prompt), &mut prompts);
                    n.next.clone()
                }
                Node::Play(n) => {
                    prompts.push(Utterance::Play { url: n.url.clone() });
                    n.next.clone()
                }
                Node::Condition(n) => {
                    let facts = Facts {
                        caller: &self.state.caller,
                        language: &self.state.language,
                        attributes: &self.state.attributes,
                    };
                    n.rules
                        .iter()
                        .find(|rule| rule.when.matches(&facts))
                        .map_or_else(|| n.otherwise.clone(), |rule| rule.goto.clone())
                }
                Node::BusinessHours(n) => {
                    let Some(tz) = tree.tz() else {
                        return self.fail(Fault::InvalidTimezone {
                            timezone: tree.timezone.clone(),
                        });
                    };
                    if n.is_open(tz, now) {
                        n.open.clone()
                    } else {
                        n.closed.clone()
                    }
                }
                Node::SetAttribute(n) => {
                    self.state.attributes.insert(n.key.clone(), n.value.clone());
                    n.next.clone()
                }
                Node::SetRequirement(n) => {
                    match self
                        .state
                        .requirements
                        .iter_mut()
                        .find(|r| r.skill.as_str() == n.skill)
                    {
                        Some(existing) => existing.min_level = n.min_level,
                        None => self
                            .state
                            .requirements
                            .push(Requirement::new(n.skill.as_str(), n.min_level)),
                    }
                    n.next.clone()
                }
                Node::SetPriority(n) => {
                    self.state.priority = Some(n.priority);
                    n.next.clone()
                }
                Node::SetLanguage(n) => {
                    self.state.language = n.language.clone();
                    n.next.clone()
                }
                Node::Menu(menu) => {
                    self.wait_at(at);
                    return self.menu_step(menu, prompts);
                }
                Node::Collect(collect) => {
                    self.wait_at(at);
                    return self.collect_step(collect, prompts);
                }
                Node::CallbackOffer(offer) => {
                    self.wait_at(at);
                    return self.offer_step(offer, prompts);
                }
                Node::Queue(n) => {
                    return self.finish(Outcome::Queue {
                        queue: n.queue.clone(),
                        context: self.context(),
                        prompts,
                    });
                }
                Node::Voicemail(n) => {
                    self.push_prompt(Some(&n.prompt), &mut prompts);
                    return self.finish(Outcome::Voicemail {
                        queue: n.queue.clone(),
                        max_length_secs: n.max_length_secs,
                        context: self.context(),
                        prompts,
                    });
                }
                Node::Transfer(n) => {
                    self.push_prompt(n.prompt.as_ref(), &mut prompts);
                    return self.finish(Outcome::Transfer {
                        number: n.number.clone(),
                        context: self.context(),
                        prompts,
                    });
                }
                Node::Hangup(n) => {
                    self.push_prompt(n.prompt.as_ref(), &mut prompts);
                    return self.finish(Outcome::Hangup {
                        prompts,
                        fault: None,
                    });
                }
            };
        }
        self.fail(Fault::StepLimit {
            limit: MAX_STEPS_PER_TURN,
        })
    }

    fn wait_at(&mut self, node: NodeId) {
        self.state.current = Some(node);
        self.state.retries = 0;
    }

    fn finish(&mut self, outcome: Outcome) -> Step {
        self.state.current = None;
        Step::Outcome(outcome)
    }

    fn fail(&mut self, why: Fault) -> Step {
        self.state.current = None;
        fault(why)
    }

    fn push_prompt(&self, prompt: Option<&Prompt>, prompts: &mut Vec<Utterance>) {
        if let Some(utterance) =
            prompt.and_then(|p| p.utterance(&self.state.language, &self.tree.default_language))
        {
            prompts.push(utterance);
        }
    }

    fn menu_step(&self, menu: &MenuNode, mut prompts: Vec<Utterance>) -> Step {
        self.push_prompt(Some(&menu.prompt), &mut prompts);
        Step::Prompt {
            prompts,
            gather: Some(GatherSpec {
                num_digits: Some(1),
                finish_on_key: String::new(),
                timeout_secs: menu.timeout_secs,
                speech: !menu.speech.is_empty(),
                language: self.state.language.clone(),
            }),
        }
    }

    fn collect_step(&self, collect: &CollectNode, mut prompts: Vec<Utterance>) -> Step {
        self.push_prompt(Some(&collect.prompt), &mut prompts);
        Step::Prompt {
            prompts,
            gather: Some(GatherSpec {
                num_digits: Some(collect.max_digits),
                finish_on_key: collect.finish_on_key.clone(),
                timeout_secs: collect.timeout_secs,
                speech: false,
                language: self.state.language.clone(),
            }),
        }
    }

    fn offer_step(&self, offer: &CallbackOfferNode, mut prompts: Vec<Utterance>) -> Step {
        self.push_prompt(Some(&offer.prompt), &mut prompts);
        Step::Prompt {
            prompts,
            gather: Some(GatherSpec {
                num_digits: Some(1),
                finish_on_key: String::new(),
                timeout_secs: offer.timeout_secs,
                speech: false,
                language: self.state.language.clone(),
            }),
        }
    }
}

fn fault(why: Fault) -> Step {
    Step::Outcome(Outcome::Hangup {
        prompts: Vec::new(),
        fault: Some(why),
    })
}

fn menu_answer(menu: &MenuNode, input: &Input) -> Answer {
    match input {
        Input::NoInput => Answer::NoInput,
        Input::Digits(digits) => {
            let key = digits.trim();
            if key.is_empty() {
                Answer::NoInput
            } else {
                menu.options
                    .get(key)
                    .map_or(Answer::Invalid, |t| Answer::Go(t.clone()))
            }
        }
        Input::Speech(speech) => {
            let heard = words(speech);
            if heard.is_empty() {
                return Answer::NoInput;
            }
            if let Some(target) = menu.options.get(heard.as_str()) {
                return Answer::Go(target.clone());
            }
            let padded = format!(" {heard} ");
            // The longest keyword heard wins ("impôt sur le revenu" over "impôt"); ties go to
            // the first in key order, so the choice is deterministic.
            menu.speech
                .iter()
                .map(|(keyword, target)| (words(keyword), target))
                .filter(|(keyword, _)| {
                    !keyword.is_empty() && padded.contains(&format!(" {keyword} "))
                })
                .fold(
                    None::<(String, &NodeId)>,
                    |best, (keyword, target)| match best {
                        Some((ref b, _)) if b.chars().count() >= keyword.chars().count() => best,
                        _ => Some((keyword, target)),
                    },
                )
                .map_or(Answer::Invalid, |(_, target)| Answer::Go(target.clone()))
        }
    }
}

/// Lower-cases `text` and keeps its words (letters and digits) separated by single spaces.
fn words(text: &str) -> String {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The digits to store, or `Err(true)` for no input and `Err(false)` for invalid input.
fn collect_answer(collect: &CollectNode, input: &Input) -> Result<String, bool> {
    let raw: String = match input {
        Input::NoInput => return Err(true),
        Input::Digits(digits) => {
            let d = digits.trim();
            let d = if collect.finish_on_key.is_empty() {
                d
            } else {
                d.strip_suffix(collect.finish_on_key.as_str()).unwrap_or(d)
            };
            d.to_owned()
        }
        Input::Speech(speech) => speech.chars().filter(|c| !c.is_whitespace()).collect(),
    };
    if raw.is_empty() {
        return Err(true);
    }
    let count = u32::try_from(raw.chars().count()).unwrap_or(u32::MAX);
    if raw.chars().all(|c| c.is_ascii_digit())
        && count >= collect.min_digits
        && count <= collect.max_digits
    {
        Ok(raw)
    } else {
        Err(false)
    }
}
