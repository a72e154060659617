//! What the routing core's test files share: a router on a settable clock that records every
//! event it produced ([`Center`]), the commands' happy and refused paths, and a replay check.
#![allow(dead_code)]

use guichet::core::{AgentId, Command, Event, InteractionId, RouteError, Router, Timestamp};

/// The start of every test's clock.
pub const T0: Timestamp = Timestamp::from_secs(1_700_000_000);

/// `secs` after [`T0`].
pub fn at(secs: u64) -> Timestamp {
    T0.plus_secs(secs)
}

/// The interaction numbered `n`.
pub fn id(n: u128) -> InteractionId {
    InteractionId::from_u128(n)
}

/// The agent named `name`.
pub fn a(name: &str) -> AgentId {
    AgentId::new(name)
}

/// A router, its clock, and every event it produced so far.
pub struct Center {
    pub router: Router,
    pub now: Timestamp,
    pub events: Vec<Event>,
}

impl Center {
    /// An empty router at [`T0`].
    pub fn new() -> Self {
        Center {
            router: Router::new(),
            now: T0,
            events: Vec::new(),
        }
    }

    /// Ticks, then applies `command`, which must be accepted; the events of both.
    pub fn ok(&mut self, command: Command) -> Vec<Event> {
        let mut events = self.router.tick(self.now);
        events.extend(
            self.router
                .handle(self.now, command.clone())
                .unwrap_or_else(|e| panic!("{command:?} refused: {e}")),
        );
        self.events.extend(events.iter().cloned());
        events
    }

    /// Applies `command`, which must be refused without changing anything; the refusal.
    pub fn err(&mut self, command: Command) -> RouteError {
        let before = self.router.snapshot();
        let e = self
            .router
            .handle(self.now, command)
            .expect_err("command should be refused");
        assert_eq!(
            before,
            self.router.snapshot(),
            "a refused command changed state"
        );
        e
    }

    /// Moves the clock `secs` on and ticks; the events.
    pub fn advance(&mut self, secs: u64) -> Vec<Event> {
        self.now = self.now.plus_secs(secs);
        let events = self.router.tick(self.now);
        self.events.extend(events.iter().cloned());
        events
    }

    /// Replaying every event into an empty router, and restoring a snapshot, give this router.
    pub fn check_replay(&self) {
        let mut replayed = Router::new();
        for e in &self.events {
            replayed.apply(e).expect("replay");
        }
        replayed
            .check_invariants()
            .expect("invariants after replay");
        assert_eq!(replayed.snapshot(), self.router.snapshot());
        let restored = Router::restore(&self.router.snapshot()).expect("restore");
        restored
            .check_invariants()
            .expect("invariants after restore");
        assert_eq!(restored.snapshot(), self.router.snapshot());
        assert_eq!(restored.next_deadline(), self.router.next_deadline());
    }
}

impl Default for Center {
    fn default() -> Self {
        Center::new()
    }
}
