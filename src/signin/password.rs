//! Password hashing: argon2id (RFC 9106's second recommended setting as the `argon2` crate's
//! default: 19 MiB, 2 passes, 1 lane) computed on tokio's blocking pool behind a small semaphore,
//! so that a flood of sign-ins takes at most that many threads and never the runtime's workers.

use std::sync::Arc;
use std::time::Duration;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use rand::RngCore;
use tokio::sync::Semaphore;

/// The shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// The longest password accepted, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 256;
/// How long a sign-in waits for a hashing slot before it is refused as busy.
pub const HASH_QUEUE_WAIT: Duration = Duration::from_secs(5);

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// The password does not meet the policy (says which rule).
    #[error("{0}")]
    Policy(String),
    /// Every hashing slot stayed busy for [`HASH_QUEUE_WAIT`].
    #[error("too many sign-ins at once: retry in a few seconds")]
    Busy,
    /// The hash could not be computed (or a stored hash is malformed).
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Checks a new password against the policy: [`MIN_PASSWORD_CHARS`] characters at least,
/// [`MAX_PASSWORD_BYTES`] bytes at most, no control characters.
pub fn check_policy(password: &str) -> Result<(), PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::Policy(format!(
            "a password has at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::Policy(format!(
            "a password has at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    if password.chars().any(char::is_control) {
        return Err(PasswordError::Policy(
            "a password has no control characters (tabs, line breaks)".into(),
        ));
    }
    Ok(())
}

/// Hashes `password` with argon2id and a random salt, as a PHC string (synchronous: call it
/// from the CLI or through [`Hasher`]).
pub fn hash_blocking(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash` (synchronous).
pub fn verify_blocking(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// Hashes and checks passwords on the blocking pool, at most `slots` at once.
#[derive(Debug, Clone)]
pub struct Hasher {
    slots: Arc<Semaphore>,
    /// A hash of a random password, checked when the login is unknown so that an unknown
    /// login costs the same time as a wrong password.
    decoy: Arc<str>,
}

impl Hasher {
    /// A hasher with `slots` concurrent hashes (at least one).
    pub fn new(slots: usize) -> Result<Self, PasswordError> {
        let mut random = [0u8; 24];
        rand::rng().fill_bytes(&mut random);
        let decoy: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let decoy = hash_blocking(&decoy)?;
        Ok(Hasher {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            decoy: decoy.into(),
        })
    }

    /// The number of slots for this machine: half its cores, 1 to 4, so that routing keeps
    /// the other half.
    pub fn default_slots() -> usize {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get() / 2)
            .clamp(1, 4)
    }

    /// Whether `password` matches `hash` (`None`: an unknown login, checked against the decoy
    /// and always false).
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, PasswordError> {
        let known = hash.is_some();
        let hash: String = hash.unwrap_or(&self.decoy).to_owned();
        let password = password.to_owned();
        let ok = self.run(move || verify_blocking(&password, &hash)).await?;
        Ok(ok && known)
    }

    /// Hashes `password` (after [`check_policy`]).
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        check_policy(password)?;
        let password = password.to_owned();
        self.run(move || hash_blocking(&password)).await?
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = tokio::time::timeout(HASH_QUEUE_WAIT, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| PasswordError::Busy)?
            .map_err(|_| PasswordError::Busy)?;
        tokio::task::spawn_blocking(move || {
            let out = work();
            drop(permit);
            out
        })
        .await
        .map_err(|e| PasswordError::Hash(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hash = hash_blocking("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_blocking("correct horse battery", &hash));
        assert!(!verify_blocking("correct horse batterx", &hash));
        assert!(!verify_blocking("x", "not a phc string"));
    }

    #[test]
    fn the_policy_says_what_to_fix() {
        assert!(check_policy("short").is_err());
        assert!(check_policy(&"a".repeat(257)).is_err());
        assert!(check_policy("ten chars\tx").is_err());
        assert!(check_policy("a long enough one").is_ok());
    }

    #[tokio::test]
    async fn an_unknown_login_never_matches() {
        let hasher = Hasher::new(1).expect("hasher");
        assert!(!hasher.verify("anything at all", None).await.expect("ran"));
        let hash = hasher.hash("a long enough one").await.expect("hash");
        assert!(hasher
            .verify("a long enough one", Some(&hash))
            .await
            .expect("ran"));
    }
}
