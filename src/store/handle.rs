//! [`StoreHandle`]: the store as async code uses it. Every store call blocks (a query, a
//! transaction); the handle runs it on tokio's blocking pool itself, so callers in `api/`,
//! `channels/`, `http/`, `notify/`, `survey/` and `obs/` write `store.run(|s| s.x()).await`
//! instead of cloning an `Arc` into `spawn_blocking` and mapping a `JoinError` each time.
//!
//! The handle is the one seam between the server and the backend behind it: whichever backend
//! the `[store]` section selects is opened behind it (see `docs/storage.md`). Synchronous code
//! (startup, the CLI, tests) reaches the store directly through `Deref`.

use std::ops::Deref;
use std::sync::Arc;

use super::{Store, StoreError};

/// A cheap, cloneable handle to an opened [`Store`] (either backend) that runs blocking calls
/// on the blocking pool ([`StoreHandle::run`]).
#[derive(Clone, Debug)]
pub struct StoreHandle {
    store: Arc<Store>,
}

impl StoreHandle {
    /// Wraps an opened store.
    pub fn new(store: Store) -> StoreHandle {
        StoreHandle {
            store: Arc::new(store),
        }
    }

    /// Runs `f` with the store on tokio's blocking pool and returns its result.
    ///
    /// A call that panics comes back as [`StoreError::ThreadPanicked`] (the panic is logged by
    /// tokio); it never takes the caller down with it.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::ThreadPanicked {
                path: self.store.path(),
                thread: "store call",
            }),
        }
    }

    /// Like [`StoreHandle::run`] for a call that cannot fail.
    pub async fn run_infallible<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> T + Send + 'static,
    {
        self.run(move |s| Ok(f(s))).await
    }
}

impl Deref for StoreHandle {
    type Target = Store;

    fn deref(&self) -> &Store {
        &self.store
    }
}

impl From<Store> for StoreHandle {
    fn from(store: Store) -> StoreHandle {
        StoreHandle::new(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreConfig;

    #[tokio::test]
    async fn runs_calls_off_the_runtime_and_turns_a_panic_into_an_error() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let handle = StoreHandle::new(Store::open(&StoreConfig::new(dir.path())).expect("store"));
        assert!(!handle.run(|s| s.is_seeded()).await.expect("seeded flag"));
        handle.run(|s| s.mark_seeded()).await.expect("mark seeded");
        assert!(handle.is_seeded().expect("seeded flag through Deref"));
        let panicked = handle
            .run(|_| -> Result<(), StoreError> { panic!("a store call that panics") })
            .await;
        assert!(
            matches!(panicked, Err(StoreError::ThreadPanicked { .. })),
            "{panicked:?}"
        );
    }
}
