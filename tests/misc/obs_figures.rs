//! The one fold of figures (`core::OutcomeFold`, `core::Counts`) as every screen uses it, on
//! random journals: the durable daily aggregates give the same counts for any split of the
//! events into batches, and a view resumed after a restart from the stored aggregates and their
//! pending interactions, fed the journal's tail, ends with the same counts as one fold over the
//! whole journal. Real SQLite files.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;

use guichet::core::{
    AgentId, Channel, Counts, EndReason, Event, EventKind, InteractionId, InteractionSpec,
    MoveCause, OutcomeFold, QueueId, Timestamp,
};
use guichet::store::{Store, StoreConfig};

/// One step of a random journal, about interaction `n` (0..8).
#[derive(Debug, Clone)]
enum Op {
    Create {
        n: u8,
        queue: u8,
        channel: u8,
        sla_secs: u16,
    },
    Accept {
        n: u8,
    },
    Abandon {
        n: u8,
    },
    Cancel {
        n: u8,
    },
    Move {
        n: u8,
        queue: u8,
    },
    Complete {
        n: u8,
    },
    Advance {
        secs: u16,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..8, 0u8..2, 0u8..4, 1u16..120)
            .prop_map(|(n, queue, channel, sla_secs)| Op::Create { n, queue, channel, sla_secs }),
        3 => (0u8..8).prop_map(|n| Op::Accept { n }),
        1 => (0u8..8).prop_map(|n| Op::Abandon { n }),
        1 => (0u8..8).prop_map(|n| Op::Cancel { n }),
        1 => (0u8..8, 0u8..2).prop_map(|(n, queue)| Op::Move { n, queue }),
        1 => (0u8..8).prop_map(|n| Op::Complete { n }),
        2 => (1u16..40_000).prop_map(|secs| Op::Advance { secs }),
    ]
}

/// The events of the ops (each interaction number is a fresh id at each creation).
fn journal(ops: &[Op]) -> Vec<(u64, Event)> {
    let mut now = 1_767_225_600_000u64; // 2026-01-01 00:00 UTC
    let mut ids: [Option<InteractionId>; 8] = [None; 8];
    let mut next = 1u128;
    let mut out = Vec::new();
    let agent = AgentId::new("a");
    for op in ops {
        now += 1_000;
        let kind = match *op {
            Op::Advance { secs } => {
                now += u64::from(secs) * 1_000;
                continue;
            }
            Op::Create {
                n,
                queue,
                channel,
                sla_secs,
            } => {
                let id = InteractionId::from_u128(next);
                next += 1;
                ids[n as usize] = Some(id);
                let spec = InteractionSpec::new(
                    id,
                    Channel::ALL[channel as usize],
                    format!("q{queue}").as_str(),
                );
                EventKind::InteractionCreated {
                    spec: Arc::new(spec),
                    priority: 0,
                    sla_deadline: Timestamp(now + u64::from(sla_secs) * 1_000),
                }
            }
            Op::Accept { n } => match ids[n as usize] {
                Some(interaction) => EventKind::OfferAccepted {
                    interaction,
                    agent: agent.clone(),
                },
                None => continue,
            },
            Op::Abandon { n } | Op::Cancel { n } => match ids[n as usize].take() {
                Some(interaction) => EventKind::InteractionEnded {
                    interaction,
                    reason: if matches!(op, Op::Abandon { .. }) {
                        EndReason::Abandoned
                    } else {
                        EndReason::Cancelled
                    },
                },
                None => continue,
            },
            Op::Move { n, queue } => match ids[n as usize] {
                Some(interaction) => EventKind::InteractionMoved {
                    interaction,
                    queue: QueueId::new(format!("q{queue}")),
                    target: None,
                    cause: MoveCause::Overflow,
                    restart_wait: false,
                    by: None,
                    note: None,
                },
                None => continue,
            },
            Op::Complete { n } => match ids[n as usize].take() {
                Some(interaction) => EventKind::InteractionCompleted {
                    interaction,
                    agent: agent.clone(),
                    wrap_up_code: None,
                    notes: None,
                    wrap_up_until: None,
                },
                None => continue,
            },
        };
        let seq = out.len() as u64 + 1;
        out.push((
            seq,
            Event {
                at: Timestamp(now),
                kind,
            },
        ));
    }
    out
}

fn day_of(at: Timestamp) -> String {
    let date = chrono::DateTime::from_timestamp_millis(at.0 as i64).expect("time");
    date.format("%Y-%m-%d").to_string()
}

type Key = (String, String, String);

/// The counts of one fold over the whole journal, per (day, queue, channel) of creation.
fn whole(events: &[(u64, Event)]) -> BTreeMap<Key, Counts> {
    let mut fold = OutcomeFold::new();
    let mut out: BTreeMap<Key, Counts> = BTreeMap::new();
    for (_, e) in events {
        if let Some(o) = fold.apply(e) {
            let c = o.credit();
            out.entry((
                day_of(c.created),
                c.queue.to_string(),
                c.channel.as_str().to_owned(),
            ))
            .or_default()
            .add(&o);
        }
    }
    out
}

/// The rows with something counted.
fn public(counts: &BTreeMap<Key, Counts>) -> BTreeMap<Key, Counts> {
    counts
        .iter()
        .filter(|(_, c)| **c != Counts::default())
        .map(|(k, c)| (k.clone(), *c))
        .collect()
}

fn stored(store: &Store) -> BTreeMap<Key, Counts> {
    store
        .indicator_days("2000-01-01", "2100-01-01")
        .expect("rows")
        .into_iter()
        .map(|d| {
            (
                (d.day.clone(), d.queue.clone(), d.channel.clone()),
                d.counts(),
            )
        })
        .filter(|(_, c)| *c != Counts::default())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_figures_do_not_depend_on_batches_or_restarts(
        ops in proptest::collection::vec(op(), 1..80),
        cuts in proptest::collection::vec(0usize..100, 0..4),
        restart_at in 0usize..100,
    ) {
        let events = journal(&ops);
        let expected = whole(&events);
        let dir = tempfile::tempdir().expect("tempdir");

        // The daily aggregates, folded in random batches (one overlapping the previous), the
        // store closed and opened again at one point.
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c * events.len() / 100).collect();
        bounds.push(events.len());
        bounds.sort_unstable();
        let restart = restart_at * events.len() / 100;
        let mut store = Store::open(&StoreConfig::new(dir.path())).expect("store");
        let mut from = 0;
        let mut restarted = false;
        for to in bounds {
            if !restarted && to >= restart {
                // A restart: a view resumes from what is stored, then folds the tail.
                store.fold_indicator_events(&events[from..restart], &day_of).expect("fold");
                from = restart;
                drop(store);
                store = Store::open(&StoreConfig::new(dir.path())).expect("reopened");
                let state = store.indicator_state("").expect("state");
                prop_assert_eq!(state.cursor as usize, restart);
                let mut fold = OutcomeFold::resume(state.pending.clone());
                let mut resumed: BTreeMap<Key, Counts> = stored(&store);
                for (_, e) in &events[restart..] {
                    if let Some(o) = fold.apply(e) {
                        let c = o.credit();
                        resumed
                            .entry((day_of(c.created), c.queue.to_string(), c.channel.as_str().to_owned()))
                            .or_default()
                            .add(&o);
                    }
                }
                prop_assert_eq!(public(&resumed), public(&expected));
                restarted = true;
            }
            let overlap = from.saturating_sub(2);
            store.fold_indicator_events(&events[overlap..to], &day_of).expect("fold");
            from = from.max(to);
        }
        prop_assert_eq!(stored(&store), public(&expected));
        prop_assert_eq!(store.indicators_cursor().expect("cursor") as usize, events.len());

        // Totals over rows give the same figures as the rows' sum of counts.
        let mut total = Counts::default();
        for c in expected.values() {
            total.merge(c);
        }
        if total.answered + total.abandoned == 0 {
            prop_assert_eq!(total.service_level(), None);
        } else {
            let sl = total.service_level().expect("a rate");
            prop_assert!((0.0..=1.0).contains(&sl));
        }
    }
}
