//! The routing core: a pure, synchronous, deterministic router.
//!
//! [`Router::handle`] takes a [`Command`] at a given time and returns the [`Event`]s it caused;
//! [`Router::tick`] processes offer timeouts, escalation steps, overflows, lapses of declines
//! (re-offers) and ends of wrap-up;
//! [`Router::next_deadline`] says when to tick next. There is no I/O, no async and no clock here:
//! this is what integrators embed, what the simulator drives and what recovery replays with
//! [`Router::apply`].
//!
//! How it decides (details in `src/core/README.md`):
//! - waiting interactions are ordered by (priority desc, SLA deadline asc, enqueue time asc, id);
//! - an arriving interaction is offered to the best free eligible agent of its routing class under
//!   the queue's strategy (`most_competent` by default; ties go to the agent idle the longest on
//!   the channel), with a preference for the contact's last agent;
//! - an agent who declined or missed an interaction is offered it again after the queue's
//!   `reoffer_after_secs`;
//! - an agent that frees capacity takes the first waiting interaction it is eligible for across
//!   all its queues;
//! - each decision is recorded with why ([`Decision`]) and can be explained ([`Router::explain`]).

mod apply;
mod calendar;
mod command;
mod error;
mod event;
mod handle;
mod index;
mod invariants;
mod message;
mod model;
mod outcome;
pub mod reference;
mod router;
mod snapshot;
mod view;
mod wait;

pub use calendar::WorkCalendar;
pub use command::{Command, RequestedState, TransferTarget};
pub use error::RouteError;
pub use event::{
    Candidate, ConsultEndCause, Decision, DeclineCause, EndReason, Event, EventKind, MoveCause,
    OfferContext, Rule, TransferNote,
};
pub use message::{Attachment, Message, MessageDirection};
pub use model::{is_id_char, is_valid_id, MAX_ID_BYTES};
pub use model::{
    AgentConfig, AgentId, AgentState, AnnouncedDelay, Attributes, Capacity, Channel, ContactId,
    EscalationStep, InteractionId, InteractionSpec, Overflow, OverflowAction, PerChannel,
    QueueConfig, QueueId, Requirement, Skill, SlaTargets, StepAction, Strategy, Timestamp,
    WorkingDayTargets, DEFAULT_REOFFER_AFTER_SECS, MAX_LEVEL, MAX_REOFFER_AFTER_SECS, MIN_LEVEL,
};
pub use outcome::{
    ratio, AgentCounts, AgentWork, AgentWorkFold, Counts, Outcome, OutcomeFold, Pending, Settled,
};
pub use reference::Reference;
pub use router::{Router, DECLINED_OFFERS, MISSED_OFFERS};
pub use snapshot::{AgentSnapshot, Snapshot};
pub use view::{AgentView, ConsultView, Explanation, InteractionPhase, InteractionView, QueueView};
pub use wait::Pace;
