//! The tests that drive the real `guichet` binary over loopback (gRPC, HTTP, SMTP, the chat's
//! WebSocket, the voice webhooks): one test binary, one module per subject, so that the crate is
//! linked once for all of them. Each test starts its own server on a workspace of its own (a
//! temporary data directory, ports chosen by the system, its own PostgreSQL database with
//! `GUICHET_TEST_BACKEND=postgres`), so they run in parallel like the tests of one file did.
//!
//! Support: `api_common` (workspaces, servers, tokens, clients, [`api_common::TestServer`]),
//! `notify_common` (SMTP and SMS stand-ins), `voice_common` (jambonz and Twilio calls).
//! One subject alone: `cargo test --test api -- consult::`; `.ci/run` runs the PostgreSQL
//! subsets that way.

#[path = "../api_common/mod.rs"]
mod api_common;
#[path = "../notify_common/mod.rs"]
mod notify_common;
#[path = "../voice_common/mod.rs"]
mod voice_common;

mod attachments;
mod auth;
mod chat_ws;
mod citizen_notices;
mod colleagues;
mod config_apply;
mod console_assets;
mod console_signin;
mod console_supervisor;
mod consult;
mod conversation;
mod crash;
mod desk_and_privacy;
mod email_inbound;
mod fairness;
mod flow;
mod ha_failover;
mod hardening;
mod http_basics;
mod indicators_public;
mod ivr_history;
mod obs_metrics;
mod offer_context;
mod sms_channel;
mod store_migrate_serve;
mod survey_roundtrip;
mod voice_channel;
mod voice_jambonz_voicemail;
mod voice_warm_transfer;
mod wrapup;
