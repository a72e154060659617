//! The subcommands of the `guichet` binary, one module each.

pub(crate) mod apply;
pub(crate) mod migrate;
pub(crate) mod serve;
pub(crate) mod simulate;
pub(crate) mod status;
pub(crate) mod token;
pub(crate) mod user;
