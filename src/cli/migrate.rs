//! `guichet migrate --from-sqlite DATA_DIR`: copies an installation's SQLite database to the
//! PostgreSQL database of the configuration's `[store]` section, and checks the copy (row counts,
//! last sequence number, the same router recovered from both). Stop the server first.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use guichet::store::{copy_from_sqlite, Backend, Store, StoreConfig};

use super::serve::load_config;
use crate::Usage;

/// The arguments of `guichet migrate`.
#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// The data directory holding the SQLite database (guichet.db) to copy.
    #[arg(long, value_name = "DATA_DIR")]
    from_sqlite: PathBuf,
    /// The configuration file whose [store] section (backend = "postgres", url, password_env
    /// or password_file) names the empty PostgreSQL database to copy into.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Runs `guichet migrate`.
pub(crate) fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let (config, source) = load_config(args.config.as_deref())?;
    if config.store.backend != Backend::Postgres {
        return Err(Usage(format!(
            "{source}: [store] backend is not \"postgres\": set backend, url and password_env (or \
             password_file) to the PostgreSQL database to copy into (see docs/storage.md)"
        ))
        .into());
    }
    let file = args.from_sqlite.join(guichet::store::DATABASE_FILE);
    if !file.exists() {
        return Err(Usage(format!("{} does not exist", file.display())).into());
    }
    // Opened as a server would (its calls in a menu from a version before 12 imported), so
    // that the copy carries them.
    let opened = Store::open(&StoreConfig::new(&args.from_sqlite)).with_context(|| {
        format!(
            "cannot open {} (is a server running on it?)",
            file.display()
        )
    })?;
    let sqlite = opened
        .as_sqlite()
        .context("the source is opened as SQLite")?;
    let report = copy_from_sqlite(sqlite, &config.store)?;
    for (table, rows) in &report.tables {
        println!("{table}: {rows} rows");
    }
    println!(
        "copied and checked: every table's row count, last sequence number {}, and the same \
         router recovered from both ({} open interactions)",
        report.last_seq, report.open_interactions
    );
    Ok(())
}
