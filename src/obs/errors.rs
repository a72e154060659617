//! Internal error ids: a failure a client cannot fix is logged once, with its details, under a
//! fresh id, and the client is told only the id (gRPC in `api/status.rs`, HTTP in
//! `http/error.rs`), so that an operator finds the cause from what a user reports.

use std::fmt::Display;

/// Logs `error` (what failed: `what`) at `error` level under a fresh id, and returns the id:
/// 12 characters of Crockford base32 (60 random bits).
pub fn log_internal(what: &str, error: &dyn Display) -> String {
    let ulid = ulid::Ulid::new().to_string();
    // The random part of a ULID is its last 16 characters.
    let id = ulid[ulid.len() - 12..].to_owned();
    tracing::error!(error_id = %id, what, error = %error, "internal error");
    id
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_short_and_differ() {
        let a = super::log_internal("a test", &"details");
        let b = super::log_internal("a test", &"details");
        assert_eq!(a.len(), 12);
        assert_ne!(a, b);
    }
}
