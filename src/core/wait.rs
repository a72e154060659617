//! The expected wait: one definition for every channel (what a caller hears on hold, what a
//! chat visitor reads, what an SMS or email acknowledgement states).
//!
//! A queue's *pace* is the smoothed interval between its acceptances (an agent taking one of
//! the queue's interactions: the line moves up by one), whatever the channel: each new interval
//! weighs one fifth, the past four fifths. The expected wait of the interaction at position `n` (1 is
//! next) is `n` times the pace. With fewer than two acceptances seen the pace, and so the
//! expected wait, is unknown: nothing is announced rather than a guess.
//!
//! Pure: acceptance times come in as [`Timestamp`]s, no clock is read.

use std::collections::HashMap;

use super::model::{QueueId, Timestamp};

/// How much a new interval weighs in the smoothed pace.
const NEW_WEIGHT: f64 = 0.2;

/// The pace of each queue's acceptances.
#[derive(Debug, Clone, Default)]
pub struct Pace {
    queues: HashMap<QueueId, QueuePace>,
}

#[derive(Debug, Clone, Copy)]
struct QueuePace {
    last: Timestamp,
    /// Milliseconds; 0 until two acceptances were seen.
    interval_ms: f64,
}

impl Pace {
    /// No acceptance seen yet.
    pub fn new() -> Pace {
        Pace::default()
    }

    /// An interaction of `queue` was accepted at `at`. Acceptances seen out
    /// of order (an earlier time than the last) only move the last time back to none.
    pub fn accepted(&mut self, queue: &QueueId, at: Timestamp) {
        match self.queues.get_mut(queue) {
            Some(p) => {
                let gap = at.0.saturating_sub(p.last.0) as f64;
                p.interval_ms = if p.interval_ms <= 0.0 {
                    gap
                } else {
                    (1.0 - NEW_WEIGHT) * p.interval_ms + NEW_WEIGHT * gap
                };
                p.last = p.last.max(at);
            }
            None => {
                self.queues.insert(
                    queue.clone(),
                    QueuePace {
                        last: at,
                        interval_ms: 0.0,
                    },
                );
            }
        }
    }

    /// The smoothed interval between acceptances in `queue`, in milliseconds, once known.
    pub fn interval_ms(&self, queue: &QueueId) -> Option<u64> {
        let p = self.queues.get(queue)?;
        (p.interval_ms > 0.0).then_some(p.interval_ms.round() as u64)
    }

    /// The expected wait, in milliseconds, of the interaction at `position` (1: next) in
    /// `queue`; `None` while the pace is unknown or for position 0.
    pub fn expected_wait_ms(&self, queue: &QueueId, position: usize) -> Option<u64> {
        if position == 0 {
            return None;
        }
        let interval = self.interval_ms(queue)?;
        Some(interval.saturating_mul(position as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_until_two_acceptances() {
        let q = QueueId::new("general");
        let mut pace = Pace::new();
        assert_eq!(pace.expected_wait_ms(&q, 1), None);
        pace.accepted(&q, Timestamp(1_000));
        assert_eq!(pace.expected_wait_ms(&q, 1), None);
        pace.accepted(&q, Timestamp(61_000));
        assert_eq!(pace.expected_wait_ms(&q, 1), Some(60_000));
        assert_eq!(pace.expected_wait_ms(&q, 3), Some(180_000));
        assert_eq!(pace.expected_wait_ms(&q, 0), None);
    }

    #[test]
    fn new_intervals_weigh_a_fifth() {
        let q = QueueId::new("general");
        let mut pace = Pace::new();
        pace.accepted(&q, Timestamp(0));
        pace.accepted(&q, Timestamp(10_000));
        pace.accepted(&q, Timestamp(30_000));
        // 0.8 * 10 s + 0.2 * 20 s
        assert_eq!(pace.interval_ms(&q), Some(12_000));
        assert_eq!(pace.interval_ms(&QueueId::new("other")), None);
    }
}
