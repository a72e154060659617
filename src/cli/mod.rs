//! The subcommands of the `guichet` binary, one module each.

pub(crate) mod apply;
pub(crate) mod migrate;
pub(crate) mod serve;
pub(crate) mod simulate;
pub(crate) mod status;
pub(crate) mod token;
pub(crate) mod user;

use std::path::{Path, PathBuf};

use guichet::store::{Store, StoreError};

/// The store of the configuration at `config` (the data directory overridden by `data_dir`),
/// opened beside a running server (shared, when the server holds the lock) or alone (then
/// creating or upgrading the database), with the configuration: for the commands that manage
/// tokens and users.
pub(crate) fn open_store(
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<(Store, guichet::config::Config)> {
    let (mut config, _) = serve::load_config(config)?;
    if let Some(dir) = data_dir {
        config.store.data_dir = dir;
    }
    let store = match Store::open(&config.store) {
        Ok(store) => store,
        Err(StoreError::Locked { .. }) => Store::open_shared(&config.store)?,
        Err(e) => return Err(e.into()),
    };
    Ok((store, config))
}
