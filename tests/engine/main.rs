//! The engine in-process on real SQLite files (and PostgreSQL with `GUICHET_TEST_BACKEND`):
//! replies after commit, events, maintenance, overload, recovery, timers, the indicators' views,
//! the survey dispatcher and the upgrade from stored fixtures. One test binary, one module per
//! subject (`cargo test --test engine -- timers::` runs one). Support: `engine_common`.

#[path = "../engine_common/mod.rs"]
mod engine_common;

mod basics;
mod conversation;
mod events;
mod maintenance;
mod obs_indicators;
mod overload;
mod recovery;
mod store_fixtures;
mod survey_dispatch;
mod timers;
