//! `guichet status`: high availability at a glance, read from the database of the
//! configuration's `[store]` section: the lease (leader, term, expiry by the database's clock),
//! the journal's end, and every node seen with its role, lag (in events and seconds, as of its
//! last heartbeat) and last heartbeat.

use std::path::PathBuf;

use clap::Args;

use guichet::store::{Backend, LeaseClient};

use super::serve::load_config;

/// The arguments of `guichet status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The configuration file whose [store] names the database (default as for serve).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Runs `guichet status`.
pub(crate) fn run(args: StatusArgs) -> anyhow::Result<()> {
    let (config, source) = load_config(args.config.as_deref())?;
    if config.store.backend != Backend::Postgres {
        println!(
            "{source}: the store is SQLite: one node, always the leader (high availability needs \
             [store] backend = \"postgres\", see docs/high-availability.md)"
        );
        return Ok(());
    }
    let status = LeaseClient::connect_reader(&config.store)?.status()?;
    let lease = &status.lease;
    if lease.term == 0 {
        println!("leader: none yet (no node has held the lease)");
    } else if lease.live() {
        println!(
            "leader: {} at {} (term {}, lease expires in {:.1} s)",
            lease.holder,
            lease.address,
            lease.term,
            lease.expires_in_ms as f64 / 1000.0
        );
    } else {
        println!(
            "leader: none: the lease of {} (term {}) expired {:.1} s ago; a standby takes over",
            lease.holder,
            lease.term,
            lease.expires_in_ms.saturating_neg() as f64 / 1000.0
        );
    }
    println!("journal: last sequence number {}", status.last_seq);
    println!(
        "{:<20} {:<32} {:>6} {:>12} {:>9} {:>10}  address",
        "node", "role", "term", "lag (events)", "lag (s)", "heartbeat"
    );
    for n in &status.nodes {
        // No heartbeat for longer than a lease: stopped, or cut off from the database.
        // A leader of an earlier term was replaced: it leads nothing now.
        let role = if n.role == "leader" && n.term < lease.term {
            format!("replaced (led term {})", n.term)
        } else {
            n.role.clone()
        };
        let role = if n.heartbeat_age_ms as f64 > config.ha.lease_secs * 1000.0 {
            format!("{role} (silent)")
        } else {
            role
        };
        // As of its last heartbeat: the events it lacked then, and how old the oldest was.
        let (lag, lag_s) = if n.role == "leader" {
            (0, 0.0)
        } else {
            (
                status.last_seq.saturating_sub(n.applied_seq),
                n.lag_ms as f64 / 1000.0,
            )
        };
        println!(
            "{:<20} {:<32} {:>6} {:>12} {:>8.1}s {:>9.1}s  {}",
            n.node,
            role,
            n.term,
            lag,
            lag_s,
            n.heartbeat_age_ms as f64 / 1000.0,
            n.address
        );
    }
    Ok(())
}
