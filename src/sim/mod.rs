//! The simulator: drives the real [`Router`](crate::core::Router) on virtual time.
