//! The simulator: its units, scenarios, replays, the CLI, the Erlang C checks and the routing
//! strategies compared. One test binary, one module per subject.

mod cli;
mod erlang;
mod fairness;
mod replay;
mod routing;
mod scenarios;
mod units;
