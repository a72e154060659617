//! Sign-in throttling, checked *before* any password is hashed: failed attempts are counted per
//! account and per client address over a window; past a free allowance, each further attempt
//! must wait a delay that doubles with every failure (capped). A flood of wrong passwords then
//! costs a map lookup, not an argon2 hash, so it cannot starve routing.
//!
//! The maps are bounded ([`MAX_TRACKED`] keys each): when full, entries past their window go
//! first, then the oldest; a flood of distinct keys costs memory that stays bounded.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use dashmap::DashMap;

/// Failures remembered for this long after the last one.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures per account allowed without delay.
pub const ACCOUNT_FREE: u32 = 5;
/// Failures per address allowed without delay (an office behind one address has many people).
pub const ADDRESS_FREE: u32 = 20;
/// The longest delay imposed.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Keys tracked at most per map.
pub const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl Failures {
    /// When the next attempt is allowed, given `free` failures without delay: after them, one
    /// second, doubling with each further failure, at most [`MAX_DELAY`].
    fn next_allowed(&self, free: u32) -> Option<Instant> {
        let over = self.count.checked_sub(free)?;
        let secs = 1u64.checked_shl(over.min(20)).unwrap_or(u64::MAX);
        let delay = Duration::from_secs(secs).min(MAX_DELAY);
        Some(self.last + delay)
    }
}

/// Failed sign-ins per account and per address.
#[derive(Debug, Default)]
pub struct Throttle {
    accounts: DashMap<String, Failures>,
    addresses: DashMap<IpAddr, Failures>,
}

/// A refusal: which key is throttled and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// Whole seconds to wait (at least 1).
    pub wait_secs: u64,
    /// Whether the account (else the address) is the reason.
    pub account: bool,
}

impl Throttle {
    /// An empty throttle.
    pub fn new() -> Self {
        Self::default()
    }

    /// `Ok` if an attempt for `account` from `address` may be checked now; the attempt is then
    /// counted as a failure until [`Throttle::succeeded`] says otherwise, so that attempts
    /// running at once count too (a burst cannot slip through before the first failure).
    pub fn begin(
        &self,
        account: &str,
        address: Option<IpAddr>,
        now: Instant,
    ) -> Result<(), Throttled> {
        let wait = |f: Option<Failures>, free: u32| -> Option<u64> {
            let f = f?;
            if now.duration_since(f.last) >= WINDOW {
                return None;
            }
            let next = f.next_allowed(free)?;
            (next > now).then(|| (next - now).as_secs().max(1))
        };
        if let Some(secs) = wait(self.accounts.get(account).map(|f| *f), ACCOUNT_FREE) {
            return Err(Throttled {
                wait_secs: secs,
                account: true,
            });
        }
        if let Some(address) = address {
            if let Some(secs) = wait(self.addresses.get(&address).map(|f| *f), ADDRESS_FREE) {
                return Err(Throttled {
                    wait_secs: secs,
                    account: false,
                });
            }
        }
        bump(&self.accounts, account.to_owned(), now);
        if let Some(address) = address {
            bump(&self.addresses, address, now);
        }
        Ok(())
    }

    /// Records that the attempt begun for `account` from `address` succeeded: the account's
    /// failures are forgotten, and the address's count loses this attempt.
    pub fn succeeded(&self, account: &str, address: Option<IpAddr>) {
        self.accounts.remove(account);
        if let Some(address) = address {
            if let Some(mut f) = self.addresses.get_mut(&address) {
                f.count = f.count.saturating_sub(1);
            }
        }
    }

    /// Keys tracked now (accounts, addresses).
    pub fn tracked(&self) -> (usize, usize) {
        (self.accounts.len(), self.addresses.len())
    }
}

fn bump<K: std::hash::Hash + Eq + Clone>(map: &DashMap<K, Failures>, key: K, now: Instant) {
    if map.len() >= MAX_TRACKED && !map.contains_key(&key) {
        map.retain(|_, f| now.duration_since(f.last) < WINDOW);
        if map.len() >= MAX_TRACKED {
            // Still full: drop the half least recently failed.
            let mut lasts: Vec<Instant> = map.iter().map(|e| e.value().last).collect();
            lasts.sort_unstable();
            if let Some(cut) = lasts.get(lasts.len() / 2).copied() {
                map.retain(|_, f| f.last > cut);
            }
        }
    }
    let mut entry = map.entry(key).or_insert(Failures {
        count: 0,
        last: now,
    });
    if now.duration_since(entry.last) >= WINDOW {
        entry.count = 0;
    }
    entry.count = entry.count.saturating_add(1);
    entry.last = now;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_slowed_after_its_free_failures_and_a_success_resets_it() {
        let t = Throttle::new();
        let now = Instant::now();
        let addr = Some("192.0.2.1".parse().expect("ip"));
        // Attempts running at once count as failures until they succeed.
        for _ in 0..ACCOUNT_FREE {
            assert!(t.begin("marie", addr, now).is_ok());
        }
        let refused = t.begin("marie", addr, now).expect_err("throttled");
        assert!(refused.account);
        assert_eq!(refused.wait_secs, 1);
        // Another account from the same address is not slowed yet.
        assert!(t.begin("paul", addr, now).is_ok());
        t.succeeded("paul", addr);
        assert!(t.begin("marie", addr, now + Duration::from_secs(1)).is_ok());
        t.succeeded("marie", addr);
        assert!(t.begin("marie", addr, now).is_ok());
    }

    #[test]
    fn an_address_is_slowed_across_accounts_and_the_delay_is_capped() {
        let t = Throttle::new();
        let now = Instant::now();
        let addr = Some("192.0.2.9".parse().expect("ip"));
        // Successes from an office behind one address do not add up.
        for i in 0..100 {
            t.begin(&format!("ok{i}"), addr, now).expect("allowed");
            t.succeeded(&format!("ok{i}"), addr);
        }
        for i in 0..ADDRESS_FREE {
            t.begin(&format!("user{i}"), addr, now).expect("allowed");
        }
        let refused = t.begin("newcomer", addr, now).expect_err("throttled");
        assert!(!refused.account);
        assert!(refused.wait_secs <= MAX_DELAY.as_secs());
        // Forgotten after the window.
        assert!(t.begin("user0", addr, now + WINDOW + MAX_DELAY).is_ok());
    }

    #[test]
    fn the_maps_stay_bounded() {
        let t = Throttle::new();
        let now = Instant::now();
        for i in 0..(MAX_TRACKED + 50) {
            let _ = t.begin(
                &format!("u{i}"),
                None,
                now + Duration::from_millis(i as u64),
            );
        }
        assert!(t.tracked().0 <= MAX_TRACKED);
    }
}
