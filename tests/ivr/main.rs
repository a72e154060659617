//! The IVR: the tree's validation and interpreter, business hours, the demo tree, session state,
//! the registry and the jambonz and TwiML renderings, in-process. One test binary, one module per
//! subject. Support: `ivr_common` (trees, utterances, outcomes).

#[path = "../ivr_common/mod.rs"]
mod ivr_common;

mod business_hours;
mod demo_tree;
mod interpreter;
mod jambonz;
mod properties;
mod registry;
mod session_state;
mod twiml;
mod validation;
