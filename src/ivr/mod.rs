//! Interactive voice response: the tree model, its validation, a pure interpreter, the
//! call-control verbs with their TwiML and jambonz renderers, and a registry of versioned trees.
//!
//! Layout:
//! - [`model`]: [`IvrTree`] and its nodes, prompts, predicates and opening hours;
//! - [`validate`]: [`IvrTree::validate`], which reports every problem with the node at fault;
//! - [`interpreter`]: [`CallSession`], which walks one call through one tree version, one
//!   caller input at a time, and whose [`SessionState`] is stored between webhook requests;
//! - [`verbs`]: the neutral [`Verb`]s of the voice channel and [`Step::to_verbs`];
//! - [`twiml`] and [`jambonz`]: the renderers;
//! - [`registry`]: [`IvrRegistry`], versioned trees with activation, rollback and number
//!   binding.
//!
//! Everything here is synchronous and deterministic: no I/O, no clock (time is a parameter),
//! no randomness. A typical webhook turn:
//!
//! ```text
//! new call:  tree = registry.tree_for_number(to)?
//!            (session, step) = CallSession::start(tree, from, to, now)
//! later:     session = CallSession::resume(registry.get(&state.tree_name, state.tree_version)?, state)?
//!            step = session.input(Input::Digits(d), now)
//! answer:    render_twiml(&step.to_verbs(action_url))  or  render_jambonz(...)
//! store:     session.state()  (serde), until the next request
//! ```

pub mod interpreter;
pub mod jambonz;
pub mod model;
pub mod registry;
pub mod twiml;
pub mod validate;
pub mod verbs;

pub use interpreter::{
    CallContext, CallSession, Fault, GatherSpec, Input, Outcome, Requirement, ResumeError,
    SessionState, Step,
};
pub use jambonz::{
    render_jambonz, render_jambonz_with, JambonzLanguage, JambonzSpeech, LISTEN_SAMPLE_RATE,
};
pub use model::{IvrTree, Node, NodeId, Prompt, Utterance};
pub use registry::{IvrRegistry, RegistryError};
pub use twiml::render_twiml;
pub use validate::{Checked, KnownQueues, Problem, ValidationError, ValidationErrors};
pub use verbs::{outcome_verbs, DialTarget, RejectReason, StreamAuth, Transcription, Verb};
