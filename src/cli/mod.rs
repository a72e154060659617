//! The subcommands of the `guichet` binary, one module each.

pub(crate) mod simulate;
