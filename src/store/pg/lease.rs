//! The leadership lease on PostgreSQL: one row of `leader_lease` (holder, its address, term,
//! expiry by the database's clock) and the `nodes` table `guichet status` reads. A node
//! acquires the lease only once it has expired, which increments the term; it renews it only
//! while the row still names its term and itself. Every journal append of a leader locks the
//! row `FOR SHARE` and checks the term in the same transaction ([`check_fence`]), so a takeover
//! (an `UPDATE` of the row) and an append cannot interleave.

use postgres::{Client, GenericClient};

use super::super::codec::seq_from_sql;
use super::super::lease::{Fence, HaConfig, HaStatus, LeaseInfo, NodeInfo};
use super::super::{StoreConfig, StoreError};
use super::connect::{pg_error, PgSettings, Target};
use super::schema;

/// A connection of its own for the lease: acquiring, renewing, reading it, heartbeats.
pub struct LeaseClient {
    settings: PgSettings,
    client: Option<Client>,
    node: String,
    address: String,
    lease_ms: i64,
}

impl std::fmt::Debug for LeaseClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseClient")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// A never-held lease expires at `-infinity`, which PostgreSQL cannot subtract: NULL then.
const READ_SQL: &str = "SELECT holder, address, term, \
     CASE WHEN isfinite(expires_at) THEN (EXTRACT(EPOCH FROM (expires_at - now())) * 1000)::bigint \
     END FROM leader_lease WHERE id = 1";

impl LeaseClient {
    /// Connects (migrating the schema, as a start would) for node `node`, advertised as
    /// `address`.
    pub fn connect(
        store: &StoreConfig,
        ha: &HaConfig,
        node: String,
        address: String,
    ) -> Result<LeaseClient, StoreError> {
        ha.validate()?;
        let settings = PgSettings::from_store_config(store)?;
        let mut client = settings.connect()?;
        schema::migrate(&mut client, settings.target())?;
        let mut lease = LeaseClient {
            settings,
            client: None,
            node,
            address,
            lease_ms: (ha.lease_secs * 1000.0) as i64,
        };
        lease.prepare(client)?;
        Ok(lease)
    }

    /// Connects for reading only (`guichet status`): no migration, no node.
    pub fn connect_reader(store: &StoreConfig) -> Result<LeaseClient, StoreError> {
        let settings = PgSettings::from_store_config(store)?;
        let client = settings.connect()?;
        let mut lease = LeaseClient {
            settings,
            client: None,
            node: String::new(),
            address: String::new(),
            lease_ms: 10_000,
        };
        lease.prepare(client)?;
        Ok(lease)
    }

    fn prepare(&mut self, mut client: Client) -> Result<(), StoreError> {
        // A renewal that waits longer than a lease is worthless: bounded.
        client
            .batch_execute(&format!(
                "SET statement_timeout = {}",
                self.lease_ms.clamp(1000, 600_000)
            ))
            .map_err(|e| pg_error(self.settings.target(), e))?;
        self.client = Some(client);
        Ok(())
    }

    fn target(&self) -> &Target {
        self.settings.target()
    }

    /// The connection, reconnected if it was closed.
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            self.client = None;
            let fresh = self.settings.connect()?;
            self.prepare(fresh)?;
        }
        self.client.as_mut().ok_or_else(|| StoreError::Postgres {
            target: self.settings.target().as_str().to_owned(),
            detail: "no connection".into(),
        })
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Sets the address stored with the lease and the node's row.
    pub fn set_address(&mut self, address: String) {
        self.address = address;
    }

    /// The lease row.
    pub fn read(&mut self) -> Result<LeaseInfo, StoreError> {
        let target = self.target().clone();
        let row = self
            .client()?
            .query_one(READ_SQL, &[])
            .map_err(|e| pg_error(&target, e))?;
        Ok(lease_of(&row))
    }

    /// Takes the lease if it has expired (or was never held): returns the new term.
    pub fn try_acquire(&mut self) -> Result<Option<u64>, StoreError> {
        let (node, address, lease_ms) = (self.node.clone(), self.address.clone(), self.lease_ms);
        let target = self.target().clone();
        let row = self
            .client()?
            .query_opt(
                "UPDATE leader_lease SET holder = $1, address = $2, term = term + 1, \
                 acquired_at = now(), expires_at = now() + make_interval(secs => $3::bigint / 1000.0) \
                 WHERE id = 1 AND expires_at <= now() RETURNING term",
                &[&node, &address, &lease_ms],
            )
            .map_err(|e| pg_error(&target, e))?;
        Ok(row.map(|r| seq_from_sql(r.get(0))))
    }

    /// Renews the lease of `term`: false when the row no longer names this term and node
    /// (another node took over).
    pub fn renew(&mut self, term: u64) -> Result<bool, StoreError> {
        let (node, lease_ms) = (self.node.clone(), self.lease_ms);
        let target = self.target().clone();
        let term = term as i64;
        let n = self
            .client()?
            .execute(
                "UPDATE leader_lease SET expires_at = now() + make_interval(secs => $3::bigint / 1000.0) \
                 WHERE id = 1 AND term = $1 AND holder = $2",
                &[&term, &node, &lease_ms],
            )
            .map_err(|e| pg_error(&target, e))?;
        Ok(n == 1)
    }

    /// Hands the lease of `term` back (a graceful shutdown): it expires now, so a standby takes
    /// over at its next poll instead of waiting for the lease to run out.
    pub fn release(&mut self, term: u64) -> Result<bool, StoreError> {
        let node = self.node.clone();
        let target = self.target().clone();
        let term = term as i64;
        let n = self
            .client()?
            .execute(
                "UPDATE leader_lease SET expires_at = now() WHERE id = 1 AND term = $1 AND holder = $2",
                &[&term, &node],
            )
            .map_err(|e| pg_error(&target, e))?;
        Ok(n == 1)
    }

    /// Records this node's role and the last sequence number its router holds (for `guichet
    /// status`). The leader passes `None`: the journal's end is what it holds.
    pub fn heartbeat(
        &mut self,
        role: &str,
        term: u64,
        applied_seq: Option<u64>,
    ) -> Result<(), StoreError> {
        let (node, address) = (self.node.clone(), self.address.clone());
        let target = self.target().clone();
        let term = term as i64;
        let applied = applied_seq.map(|s| s as i64);
        self.client()?
            .execute(
                "INSERT INTO nodes (node, address, role, term, applied_seq, started_at, heartbeat_at) \
                 VALUES ($1, $2, $3, $4, COALESCE($5, (SELECT COALESCE(MAX(seq), 0) FROM journal)), \
                 now(), now()) \
                 ON CONFLICT (node) DO UPDATE SET address = excluded.address, role = excluded.role, \
                 term = excluded.term, applied_seq = excluded.applied_seq, heartbeat_at = now()",
                &[&node, &address, &role, &term, &applied],
            )
            .map_err(|e| pg_error(&target, e))?;
        Ok(())
    }

    /// The lease, the journal's end and every node.
    pub fn status(&mut self) -> Result<HaStatus, StoreError> {
        let target = self.target().clone();
        let client = self.client()?;
        let lease = lease_of(
            &client
                .query_one(READ_SQL, &[])
                .map_err(|e| pg_error(&target, e))?,
        );
        let last_seq: i64 = client
            .query_one("SELECT COALESCE(MAX(seq), 0) FROM journal", &[])
            .map_err(|e| pg_error(&target, e))?
            .get(0);
        let rows = client
            .query(
                "SELECT node, address, role, term, applied_seq, \
                 (EXTRACT(EPOCH FROM (now() - heartbeat_at)) * 1000)::bigint, \
                 COALESCE((SELECT GREATEST(0, (EXTRACT(EPOCH FROM n.heartbeat_at) * 1000)::bigint \
                 - j.at) FROM journal j WHERE j.seq > n.applied_seq ORDER BY j.seq LIMIT 1), 0) \
                 FROM nodes n ORDER BY heartbeat_at DESC LIMIT 100",
                &[],
            )
            .map_err(|e| pg_error(&target, e))?;
        let nodes = rows
            .iter()
            .map(|r| NodeInfo {
                node: r.get(0),
                address: r.get(1),
                role: r.get(2),
                term: seq_from_sql(r.get(3)),
                applied_seq: seq_from_sql(r.get(4)),
                heartbeat_age_ms: r.get(5),
                lag_ms: r.get(6),
            })
            .collect();
        Ok(HaStatus {
            lease,
            last_seq: seq_from_sql(last_seq),
            nodes,
        })
    }
}

fn lease_of(row: &postgres::Row) -> LeaseInfo {
    LeaseInfo {
        holder: row.get(0),
        address: row.get(1),
        term: seq_from_sql(row.get(2)),
        expires_in_ms: row.get::<_, Option<i64>>(3).unwrap_or(i64::MIN),
    }
}

/// Inside a journal transaction: locks the lease row `FOR SHARE` (a takeover waits for the
/// commit, and a commit after a takeover sees the new term) and checks that it still names the
/// fence's term and node; [`StoreError::Fenced`] otherwise.
pub(crate) fn check_fence(
    tx: &mut impl GenericClient,
    fence: &Fence,
    target: &Target,
) -> Result<(), StoreError> {
    let row = tx
        .query_one(
            "SELECT term, holder FROM leader_lease WHERE id = 1 FOR SHARE",
            &[],
        )
        .map_err(|e| pg_error(target, e))?;
    let term = seq_from_sql(row.get(0));
    let holder: String = row.get(1);
    if term != fence.term || holder != fence.node {
        return Err(StoreError::Fenced {
            term: fence.term,
            current: term,
            holder,
        });
    }
    Ok(())
}
