//! Retention holds: the journal positions that the running views which send something to
//! citizens (completion and move notices, the outbox, survey questions) or keep durable
//! figures (the public indicators) have not yet gone past. Retention never deletes a row after
//! the lowest, so such a view never finds the events it still has to act on purged.
//!
//! Holds live in memory, in the process that runs the views: a view that is not running (its
//! channel not configured, or the process a standby) holds nothing, so a stale checkpoint in
//! the database can never stop retention for good.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The positions held, by view name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Holds(Arc<Mutex<BTreeMap<&'static str, u64>>>);

impl Holds {
    /// Holds retention at `seq` for `view` (rows after it are kept), replacing its last hold.
    pub(crate) fn set(&self, view: &'static str, seq: u64) {
        self.lock().insert(view, seq);
    }

    /// Releases `view`'s hold.
    pub(crate) fn release(&self, view: &'static str) {
        self.lock().remove(view);
    }

    /// The lowest position held, and by which view.
    pub(crate) fn lowest(&self) -> Option<(&'static str, u64)> {
        self.lock()
            .iter()
            .min_by_key(|(_, seq)| **seq)
            .map(|(view, seq)| (*view, *seq))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, u64>> {
        // A map of plain numbers cannot be left inconsistent by a panic elsewhere.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_hold_wins_and_a_released_one_counts_no_more() {
        let holds = Holds::default();
        assert_eq!(holds.lowest(), None);
        holds.set("notices", 40);
        holds.set("outbox", 12);
        assert_eq!(holds.lowest(), Some(("outbox", 12)));
        holds.set("outbox", 50);
        assert_eq!(holds.lowest(), Some(("notices", 40)));
        holds.release("notices");
        assert_eq!(holds.lowest(), Some(("outbox", 50)));
    }
}
