//! Helpers shared by the engine's integration tests (real SQLite files, real tokio; with
//! `GUICHET_TEST_BACKEND=postgres` and `GUICHET_TEST_POSTGRES_URL`, a real PostgreSQL database
//! per data directory instead).
#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::sync::broadcast;

#[path = "../pg_common/mod.rs"]
mod pg_common;

use guichet::config::Config;
use guichet::core::{
    AgentConfig, Channel, Event, EventKind, InteractionId, InteractionSpec, QueueConfig, Timestamp,
};
use guichet::engine::{Clock, Committed, EngineConfig};

/// A guard against hangs only: nothing in these tests asserts how fast the engine is.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The demo configuration shipped in `config/guichet.toml`.
pub fn demo() -> Config {
    Config::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/guichet.toml"
    )))
    .expect("demo config")
}

/// A configuration with the given queues and agents and default settings otherwise.
pub fn config_with(queues: Vec<QueueConfig>, agents: Vec<AgentConfig>) -> Config {
    Config {
        queues,
        agents,
        ..Config::default()
    }
}

/// Engine settings for a data directory.
///
/// True, after one line saying so, when the suites run on PostgreSQL
/// (`GUICHET_TEST_BACKEND=postgres`) and the test needs what only SQLite has yet (`what`).
pub fn skip_on_postgres(what: &str) -> bool {
    if std::env::var("GUICHET_TEST_BACKEND").is_ok_and(|v| v == "postgres") {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "skipped on PostgreSQL: {what} (see docs/storage.md, what is left)"
        );
        return true;
    }
    false
}

/// With `GUICHET_TEST_BACKEND=postgres`, the store is a PostgreSQL database of `dir`'s own,
/// created at the first call and named in `dir/postgres.url`, so that a restart on the same
/// directory finds the same database (the throwaway cluster is dropped with its databases).
pub fn engine_config(dir: &Path) -> EngineConfig {
    let mut config = EngineConfig::new(dir);
    if std::env::var("GUICHET_TEST_BACKEND").is_ok_and(|v| v == "postgres") {
        let file = dir.join("postgres.url");
        let url = match std::fs::read_to_string(&file) {
            Ok(url) => url.trim().to_owned(),
            Err(_) => {
                let db = pg_common::PgDb::create()
                    .expect("GUICHET_TEST_BACKEND=postgres needs GUICHET_TEST_POSTGRES_URL");
                let url = db.url.clone();
                // Kept for the restarts on this directory: not dropped with the handle.
                std::mem::forget(db);
                std::fs::create_dir_all(dir).expect("data directory");
                std::fs::write(&file, &url).expect("write the database URL");
                url
            }
        };
        config.store.backend = guichet::store::Backend::Postgres;
        config.store.url = Some(url);
    }
    config
}

/// A voice interaction in `queue` with id `n` and external reference `CA<n>`.
pub fn spec(n: u128, queue: &str) -> InteractionSpec {
    spec_on(n, Channel::Voice, queue)
}

/// An interaction on `channel` in `queue` with id `n` and external reference `REF<n>`.
pub fn spec_on(n: u128, channel: Channel, queue: &str) -> InteractionSpec {
    let mut spec = InteractionSpec::new(InteractionId::from_u128(n), channel, queue);
    spec.external_ref = Some(format!("REF{n}").into());
    spec
}

/// Polls a future once, with a waker that does nothing: whether it finished without waiting.
pub fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    Pin::new(future).poll(&mut cx)
}

/// Follows committed events in order: [`Watcher::until`] returns the next event that matches,
/// whether it arrived in an earlier batch or has yet to be committed.
pub struct Watcher {
    rx: broadcast::Receiver<Committed>,
    /// Every event received so far.
    pub seen: Vec<Event>,
    next: usize,
}

impl Watcher {
    /// Watches a subscription.
    pub fn new(rx: broadcast::Receiver<Committed>) -> Self {
        Watcher {
            rx,
            seen: Vec::new(),
            next: 0,
        }
    }

    /// The next event (after the last one returned) matching `pred`.
    pub async fn until(&mut self, what: &str, mut pred: impl FnMut(&EventKind) -> bool) -> Event {
        let found = tokio::time::timeout(PATIENCE, async {
            loop {
                while self.next < self.seen.len() {
                    let event = &self.seen[self.next];
                    self.next += 1;
                    if pred(&event.kind) {
                        return event.clone();
                    }
                }
                let batch = self.rx.recv().await.expect("committed batch");
                self.seen.extend(batch.events.iter().cloned());
            }
        })
        .await;
        match found {
            Ok(event) => event,
            Err(_) => panic!("no {what} within {PATIENCE:?}; saw {:#?}", self.seen),
        }
    }
}

/// A clock the test moves by hand.
#[derive(Debug)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock showing `at`.
    pub fn new(at: Timestamp) -> Self {
        ManualClock(AtomicU64::new(at.as_millis()))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

/// The journal's first sequence number still held (none when it is empty).
pub async fn first_seq(engine: &guichet::engine::Engine) -> Option<u64> {
    engine
        .store()
        .run(|st| {
            let mut first = None;
            st.replay(0, |seq, _| {
                first.get_or_insert(seq);
                Ok(())
            })?;
            Ok(first)
        })
        .await
        .expect("replay")
}
