//! The simulator: drives the real [`Router`](crate::core::Router) on virtual time.
//!
//! Supervisors ask "how many agents do I need on Monday morning?" and "what happens if I change
//! this routing rule?". Because the routing core is deterministic with time as a parameter, the
//! simulator answers with the very router that runs in production instead of a formula: the
//! same queues, strategies, offer timeouts, wrap-up and escalation.
//!
//! - [`scenario`]: the TOML a supervisor writes ([`Scenario`]): horizon, queues and agents in the
//!   `config/guichet.toml` format, shifts, Poisson arrivals with a piecewise-constant rate,
//!   handle-time and patience distributions;
//! - [`dist`]: duration distributions (exponential, log-normal, constant, uniform);
//! - [`model`]: a scenario checked and compiled for running ([`Model`], [`RunOptions`]);
//! - `engine`: one replication, an event calendar merged with the router's timers;
//! - [`run`]: replications on several threads ([`simulate`]);
//! - [`stats`] and [`report`]: counts, means and 95 % confidence intervals ([`Report`]);
//! - [`staffing`]: the smallest staff meeting a service-level target ([`staff_for`]);
//! - [`replay`](mod@replay): a recorded journal replayed under a new configuration, compared
//!   side by side with what happened ([`replay()`], [`Recording`]).
//!
//! Reproducible: the same scenario and seed give byte-identical reports, whatever the number of
//! threads. Replication `i` uses ChaCha8 seeded with `seed + i`.
//!
//! ```
//! use guichet::sim::{simulate, Model, RunOptions, Scenario, Silent};
//!
//! let scenario = Scenario::from_toml(r#"
//!     end = "02:00"
//!     answer_delay = { dist = "constant", mean_secs = 0 }
//!     [[queues]]
//!     id = "help"
//!     channels = ["voice"]
//!     [[agents]]
//!     id = "agent"
//!     [[staff]]
//!     agent = "agent"
//!     count = 3
//!     [[arrivals]]
//!     queue = "help"
//!     channel = "voice"
//!     per_hour = 30
//!     handle = { mean_secs = 180 }
//! "#, "example.toml".as_ref())?;
//! let mut options = RunOptions::from_scenario(&scenario);
//! options.replications = 2;
//! let report = simulate(&Model::compile(&scenario, &options)?, &options, &Silent)?;
//! assert!(report.queues[0].answered.mean > 0.0);
//! # Ok::<(), guichet::sim::SimError>(())
//! ```

pub mod dist;
mod engine;
mod error;
pub mod model;
pub mod replay;
pub mod report;
pub mod run;
pub mod scenario;
pub mod staffing;
pub mod stats;

pub use dist::{Dist, DistKind, DistSpec};
pub use engine::END_OF_SHIFT;
pub use error::SimError;
pub use model::{Model, RunOptions};
pub use replay::{
    replay, Indicators, Recording, ReplayAgents, ReplayOptions, ReplayReport, ReplayRow,
    SimulatedOccupancy,
};
pub use report::{GroupCount, GroupReport, Report, RowReport, Spread, SpreadReport};
pub use run::{simulate, Progress, Silent};
pub use scenario::{Arrival, ClockTime, Period, Scenario, Staff, Staffing};
pub use staffing::{staff_for, StaffingAnswer, StaffingPoint, StaffingReport, StaffingRequest};
pub use stats::{student_t_975, Estimate};
