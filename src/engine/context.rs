//! [`StartContext`]: what the server gives a component when it starts it (the engine, the URL
//! the outside reaches the HTTP listener at, the shutdown signal and its grace period), so that
//! a component's `start` takes this and its own configuration section, never the whole file.

use std::time::Duration;

use tokio::sync::watch;

use super::Engine;

/// What a component is started with besides its own configuration section. Cheap to clone.
#[derive(Debug, Clone)]
pub struct StartContext {
    /// The running engine.
    pub engine: Engine,
    /// The HTTP listener's URL as gateways, browsers and contacts see it (`[server]
    /// public_url`, else the address actually bound), without a trailing slash: callback URLs,
    /// webhook signatures, links in messages and the chat widget's own origin start with it.
    pub public_base: String,
    /// How long work in flight is given to finish once shutdown is signalled (`[server]
    /// shutdown_grace_secs`).
    pub grace: Duration,
    shutdown: watch::Receiver<bool>,
}

impl StartContext {
    /// A context whose shutdown is signalled when `shutdown` turns `true` (a sender dropped
    /// without sending `true` never signals it).
    pub fn new(
        engine: Engine,
        public_base: impl Into<String>,
        shutdown: watch::Receiver<bool>,
        grace: Duration,
    ) -> StartContext {
        StartContext {
            engine,
            public_base: public_base.into().trim_end_matches('/').to_owned(),
            grace,
            shutdown,
        }
    }

    /// A context that is never told to shut down (components then end with the engine), with a
    /// five-second grace: embedding, tests.
    pub fn standalone(engine: Engine, public_base: impl Into<String>) -> StartContext {
        let (_, rx) = watch::channel(false);
        StartContext::new(engine, public_base, rx, Duration::from_secs(5))
    }

    /// The shutdown signal: `wait_for(|stop| *stop)` returns `Ok` once the server is stopping
    /// (`Err`: it never will).
    pub fn shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }
}
