//! Guichet: an omnichannel contact-center routing engine.
//!
//! Calls, emails, SMS and chats become *interactions*; the router keeps them in skill-based
//! priority queues and offers each to the most competent available agent, with per-channel
//! capacity, offer timeouts, escalation, SLA deadlines and an explanation of every decision.
//!
//! Crate layout:
//! - [`core`]: the pure, deterministic routing core ([`core::Router`]): commands in, events out,
//!   time as a parameter. Embed it directly, drive it from a simulator, or replay a journal into it.
//! - [`config`]: the TOML configuration that seeds agents and queues.
//! - [`reconcile`]: what differs between a configuration file and the running contact center
//!   (the server's warning at start, `guichet apply`).
//! - [`ivr`]: IVR trees (model, validation, a pure interpreter, versioned registry) and the
//!   call-control verbs rendered as TwiML or jambonz JSON.
//! - [`store`]: SQLite persistence: the event journal with group commit, snapshots, recovery,
//!   and the tables for tokens, IVR versions and contacts.
//! - [`http`]: the HTTP listener (webhooks, chat, metrics, indicators) that channel adapters
//!   add their routes to.
//! - [`notify`]: the durable outbox that delivers outbound messages (email through an SMTP
//!   relay, SMS through the provider's REST API).
//! - [`channels`]: the channel adapters that turn what contacts send into conversations (email in
//!   over SMTP and inbound-parse webhooks, SMS provider webhooks, the web chat
//!   over WebSocket, telephony gateway webhooks in [`channels::voice`]).
//! - [`survey`]: satisfaction surveys: the question after completion, by the contact's channel,
//!   and the answers (SMS or email reply, the survey page, the chat widget).
//! - [`server`]: `guichet serve`: the engine with every listener, channel and background task
//!   wired around it.
//! - [`sim`]: the simulator that runs the real router on virtual time.
#![deny(missing_docs)]

pub mod api;
pub mod channels;
pub mod config;
pub mod console;
pub mod core;
pub mod engine;
pub mod ha;
pub mod http;
pub mod ivr;
pub mod listen;
pub mod notify;
pub mod obs;
pub mod reconcile;
pub mod server;
pub mod signin;
pub mod sim;
pub mod store;
pub mod survey;
