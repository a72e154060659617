//! Journal throughput and recovery time, measured on real SQLite files.
//!
//! ```text
//! cargo run --release --example journal_throughput            # full run (1M-event recovery)
//! cargo run --release --example journal_throughput -- --quick # a smaller, faster run
//! cargo run --release --example journal_throughput -- --recovery-only --keep /tmp/j
//!     # recovery only; the journal is kept in /tmp/j and reused by the next run with --keep
//! ```
//!
//! 1. Durable creations per second: a real router (one queue, no agent logged in, so each
//!    `CreateInteraction` yields exactly one `interaction_created` event) handles creations
//!    back to back; each creation's events are appended without waiting, as the engine does,
//!    and the acknowledgements are awaited in order only when the queue is full and at the end.
//!    The clock runs from the first creation to the last acknowledgement. Measured at group
//!    commit sizes (`max_batch`) 1, 16 and 256, with `synchronous` normal and full.
//! 2. Recovery: a journal of N events (1,000,000 by default) is written, the store is reopened
//!    and the router rebuilt with `Store::recover_router` (read, decode, `Router::apply` each).
//! 3. Database size per event, after the final checkpoint.
//! 4. Recovery of a served center (`--served-only` runs it alone): every interaction created,
//!    offered, accepted and completed, snapshots as the engine takes them but none in the last
//!    interval, so that recovery restores a snapshot and replays a whole interval after it.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use guichet::core::{
    Channel, Command, ContactId, InteractionId, InteractionSpec, QueueConfig, Requirement, Router,
    Timestamp,
};
use guichet::store::{Ack, Journal, Store, StoreConfig, StoreError, Synchronous};

type Error = Box<dyn std::error::Error>;

const T0: Timestamp = Timestamp::from_secs(1_700_000_000);

/// A creation as a voice gateway would send it: contact, one extra skill, two IVR attributes
/// and a CallSid.
fn spec(n: u64) -> InteractionSpec {
    let mut spec = InteractionSpec::new(
        InteractionId::from_u128(u128::from(n) + 1),
        Channel::Voice,
        "benefits",
    );
    spec.contact = Some(ContactId::new(format!("+3361234{:04}", n % 10_000)));
    spec.requirements.push(Requirement::new(
        if n % 2 == 0 { "lang:fr" } else { "lang:en" },
        2,
    ));
    spec.attributes.insert("menu", "housing");
    spec.attributes.insert("case", format!("C-{n:08}"));
    spec.external_ref = Some(format!("CA{n:032x}").into());
    spec
}

fn router() -> Result<Router, Error> {
    let mut router = Router::new();
    router.handle(
        T0,
        Command::UpsertQueue {
            config: QueueConfig::new("benefits").requiring("benefits", 1),
        },
    )?;
    Ok(router)
}

/// Creates `count` interactions through `router`, appending each one's events without waiting;
/// returns the number acknowledged.
fn create_many(
    router: &mut Router,
    journal: &Journal,
    first: u64,
    count: u64,
) -> Result<u64, Error> {
    let mut pending: VecDeque<Ack<u64>> = VecDeque::new();
    let mut acked = 0u64;
    let mut last_seq = 0u64;
    for n in first..first + count {
        let now = T0.plus_millis(n);
        let events = router.handle(now, Command::CreateInteraction { spec: spec(n) })?;
        let mut events = Some(events);
        while let Some(batch) = events.take() {
            match journal.append(batch.clone()) {
                Ok(ack) => pending.push_back(ack),
                Err(StoreError::Overloaded { .. }) => {
                    // What the engine would do under load: wait for the oldest commit, retry.
                    let ack = pending
                        .pop_front()
                        .ok_or("overloaded with nothing pending")?;
                    let seq = ack.blocking_recv()??;
                    assert!(seq > last_seq, "acks out of order");
                    last_seq = seq;
                    acked += 1;
                    events = Some(batch);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    for ack in pending {
        let seq = ack.blocking_recv()??;
        assert!(seq > last_seq, "acks out of order");
        last_seq = seq;
        acked += 1;
    }
    Ok(acked)
}

struct Throughput {
    per_sec: f64,
    mean_batch: f64,
    transactions: u64,
}

fn throughput(sync: Synchronous, max_batch: usize, count: u64) -> Result<Throughput, Error> {
    let dir = tempfile::tempdir()?;
    let config = StoreConfig {
        synchronous: sync,
        max_batch,
        ..StoreConfig::new(dir.path())
    };
    let store = Store::open(&config)?;
    let journal = store.start_journal()?;
    let mut router = router()?;
    let start = Instant::now();
    let acked = create_many(&mut router, &journal, 0, count)?;
    let elapsed = start.elapsed();
    let stats = journal.stats();
    journal.shutdown()?;
    assert_eq!(acked, count);
    Ok(Throughput {
        per_sec: count as f64 / elapsed.as_secs_f64(),
        mean_batch: stats.mean_batch(),
        transactions: stats.transactions,
    })
}

fn recovery(events: u64, keep: Option<PathBuf>) -> Result<(), Error> {
    let temp;
    let dir: &Path = match &keep {
        Some(dir) => dir,
        None => {
            temp = tempfile::tempdir()?;
            temp.path()
        }
    };
    let config = StoreConfig::new(dir);
    let reuse = dir.join(guichet::store::DATABASE_FILE).exists();
    let write_start = Instant::now();
    if reuse {
        println!("reusing the journal in {}", dir.display());
    } else {
        let store = Store::open(&config)?;
        let journal = store.start_journal()?;
        let mut router = router()?;
        // The queue upsert is journaled first so that the replay starts from an empty router.
        let setup = router::setup_events()?;
        journal.append(setup)?.blocking_recv()??;
        create_many(&mut router, &journal, 0, events)?;
        journal.shutdown()?;
    }
    let write = write_start.elapsed();
    let bytes = std::fs::metadata(dir.join(guichet::store::DATABASE_FILE))?.len();

    let store = Store::open(&config)?;
    let load = load_average();
    let (start, cpu_start) = (Instant::now(), cpu_seconds());
    let recovered = store.recover_router()?;
    let elapsed = start.elapsed();
    let cpu = cpu_seconds().zip(cpu_start).map(|(end, start)| end - start);
    println!();
    println!("recovery of {} journaled events", recovered.replayed);
    if !reuse {
        println!(
            "  written in                         {:>8.2} s",
            write.as_secs_f64()
        );
    }
    println!(
        "  recover_router (read+decode+apply) {:>8.2} s  ({:.2} µs/event, {} open interactions)",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / recovered.replayed.max(1) as f64,
        recovered.router.open_count()
    );
    // The machine may be shared: CPU time (both threads) and load tell what the clock means.
    if let Some(cpu) = cpu {
        println!(
            "  CPU time of the process            {:>8.2} s  (load average before: {})",
            cpu,
            load.unwrap_or_else(|| "unknown".into())
        );
    }
    println!(
        "  database size                      {:>8.1} MB  ({:.0} bytes/event)",
        bytes as f64 / 1e6,
        bytes as f64 / recovered.replayed.max(1) as f64
    );
    // Where the time goes: reading and decoding alone, then applying alone.
    let start = Instant::now();
    let mut decoded = Vec::with_capacity(recovered.replayed as usize);
    store.replay(0, |_, event| {
        decoded.push(event);
        Ok(())
    })?;
    let read = start.elapsed();
    let start = Instant::now();
    let mut router = Router::new();
    for event in &decoded {
        router.apply(event)?;
    }
    let apply = start.elapsed();
    println!(
        "  of which: read+decode alone {:.2} s, Router::apply alone {:.2} s",
        read.as_secs_f64(),
        apply.as_secs_f64()
    );
    if elapsed > Duration::from_secs(3) && events >= 1_000_000 {
        println!("  WARNING: above the 3 s target");
    }
    Ok(())
}

/// User + system CPU time of this process so far (Linux; `None` elsewhere).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ, 100 on Linux
}

/// The 1-minute load average (Linux; `None` elsewhere).
fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next().map(str::to_owned)
}

mod router {
    use super::*;

    /// The events that create the benchmark's queue.
    pub fn setup_events() -> Result<Vec<guichet::core::Event>, Error> {
        let mut router = Router::new();
        Ok(router.handle(
            T0,
            Command::UpsertQueue {
                config: QueueConfig::new("benefits").requiring("benefits", 1),
            },
        )?)
    }
}

fn main() -> Result<(), Error> {
    let quick = std::env::args().any(|a| a == "--quick");
    let recovery_only = std::env::args().any(|a| a == "--recovery-only");
    let recovery_events: u64 = if quick { 100_000 } else { 1_000_000 };
    // `--keep DIR`: write the recovery journal in DIR and keep it; a later run with the same
    // DIR reuses it (to time recovery alone, over and over).
    let keep = std::env::args()
        .skip_while(|a| a != "--keep")
        .nth(1)
        .map(PathBuf::from);
    if recovery_only {
        return recovery(recovery_events, keep);
    }
    if std::env::args().any(|a| a == "--served-only") {
        return served_recovery(recovery_events);
    }
    println!("durable creations per second (append + ack, one interaction_created each)");
    println!(
        "{:<8} {:>9} {:>10} {:>14} {:>12} {:>12}",
        "sync", "max_batch", "creations", "creations/s", "mean batch", "transactions"
    );
    for sync in [Synchronous::Normal, Synchronous::Full] {
        for max_batch in [1usize, 16, 256] {
            let count: u64 = match (sync, max_batch, quick) {
                (_, _, true) => 20_000,
                (Synchronous::Full, 1, false) => 20_000,
                _ => 200_000,
            };
            let t = throughput(sync, max_batch, count)?;
            println!(
                "{:<8} {:>9} {:>10} {:>14.0} {:>12.1} {:>12}",
                format!("{sync:?}").to_lowercase(),
                max_batch,
                count,
                t.per_sec,
                t.mean_batch,
                t.transactions
            );
        }
    }
    recovery(recovery_events, keep)?;
    served_recovery(recovery_events)
}

/// The realistic case: a center where every interaction is offered, accepted and completed
/// (about four events each), with a snapshot every `snapshot_every` events as the engine takes
/// them, except in the last interval; recovery restores the latest snapshot and replays the
/// events after it (a whole interval: the worst case).
fn served_recovery(events: u64) -> Result<(), Error> {
    use guichet::core::{AgentConfig, EventKind};
    let dir = tempfile::tempdir()?;
    let config = StoreConfig::new(dir.path());
    let store = Store::open(&config)?;
    let journal = store.start_journal()?;
    let mut router = router()?;
    let mut pending: VecDeque<Ack<u64>> = VecDeque::new();
    fn append(
        journal: &Journal,
        pending: &mut VecDeque<Ack<u64>>,
        events: Vec<guichet::core::Event>,
    ) -> Result<(), Error> {
        loop {
            match journal.append(events.clone()) {
                Ok(ack) => {
                    pending.push_back(ack);
                    return Ok(());
                }
                Err(StoreError::Overloaded { .. }) => {
                    pending.pop_front().ok_or("overloaded")?.blocking_recv()??;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    // The setup goes to the journal too, so that a replay from the start would work.
    let mut setup = router::setup_events()?;
    for i in 0..50 {
        let name = format!("agent{i:02}");
        let config = AgentConfig::new(name.as_str())
            .with_skill("benefits", 3)
            .with_skill("lang:fr", 3)
            .with_skill("lang:en", 3);
        setup.extend(router.handle(T0, Command::UpsertAgent { config })?);
        setup.extend(router.handle(T0, Command::Login { agent: name.into() })?);
    }
    append(&journal, &mut pending, setup)?;
    let mut written = 0u64;
    let mut n = 0u64;
    let mut snapshots = 0u64;
    while written < events {
        let now = T0.plus_millis(n);
        let created = router.handle(now, Command::CreateInteraction { spec: spec(n) })?;
        let offered = created.iter().find_map(|e| match &e.kind {
            EventKind::InteractionOffered {
                interaction, agent, ..
            } => Some((*interaction, agent.clone())),
            _ => None,
        });
        written += created.len() as u64;
        append(&journal, &mut pending, created)?;
        if let Some((interaction, agent)) = offered {
            for command in [
                Command::Accept {
                    interaction,
                    agent: agent.clone(),
                },
                Command::Complete {
                    interaction,
                    agent: Some(agent),
                    wrap_up_code: Some("resolved".into()),
                    notes: None,
                },
            ] {
                let events = router.handle(now, command)?;
                written += events.len() as u64;
                append(&journal, &mut pending, events)?;
            }
        }
        // No snapshot in the last interval: recovery then replays a full interval after the
        // latest snapshot, the worst case.
        if journal.snapshot_due() && written + config.snapshot_every <= events {
            pending.push_back(journal.snapshot(router.snapshot())?);
            snapshots += 1;
        }
        n += 1;
    }
    for ack in pending.drain(..) {
        ack.blocking_recv()??;
    }
    journal.shutdown()?;
    drop(store);

    let store = Store::open(&config)?;
    let start = Instant::now();
    let recovered = store.recover_router()?;
    let elapsed = start.elapsed();
    println!();
    println!(
        "recovery of a served center: {written} events for {n} interactions \
         (created, offered, accepted, completed), {snapshots} snapshots"
    );
    println!(
        "  recover_router (snapshot + tail)   {:>8.2} s  (snapshot at seq {}, {} events replayed, \
         {} open interactions)",
        elapsed.as_secs_f64(),
        recovered.snapshot_seq.unwrap_or(0),
        recovered.replayed,
        recovered.router.open_count()
    );
    assert_eq!(recovered.router.open_count(), router.open_count());
    Ok(())
}
