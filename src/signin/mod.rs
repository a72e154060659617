//! People signing in to the console: passwords checked against the `users` table, sessions
//! opened in the `sessions` table, mapped onto the API's roles (see `crate::api::auth`).
//!
//! Order of a sign-in, cheapest first: the inputs' sizes; the [`throttle`] (per account and per
//! address, before any hashing); the user looked up; the password checked by argon2id on the
//! blocking pool behind a small semaphore ([`password::Hasher`]), against a decoy hash when the
//! login is unknown so that both cost the same; then the session opened. Where the identity is
//! checked is the user's [`IdentitySource`]: passwords today, with room for OpenID Connect
//! (ProConnect) as another source.

pub mod password;
pub mod throttle;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::core::Timestamp;
use crate::store::{IdentitySource, SessionInfo, StoreHandle, UserInfo, MAX_LOGIN_LEN};

pub use password::{Hasher, PasswordError};
pub use throttle::{Throttle, Throttled};

/// Why a sign-in was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignInError {
    /// Login or password malformed (too long, empty).
    #[error("{0}")]
    Invalid(String),
    /// Unknown login or wrong password (never says which).
    #[error("wrong login or password")]
    Wrong,
    /// Too many failures for this account or address.
    #[error("too many failed sign-ins for this {}: wait {} s and try again", if .0.account { "account" } else { "address" }, .0.wait_secs)]
    Throttled(Throttled),
    /// The password was right but the account is disabled.
    #[error("this account is disabled: ask an administrator")]
    Disabled,
    /// Hashing is saturated.
    #[error("too many sign-ins at once: retry in a few seconds")]
    Busy,
    /// The store or the hasher failed.
    #[error("sign-in failed: {0}")]
    Internal(String),
}

impl From<SignInError> for tonic::Status {
    fn from(e: SignInError) -> Self {
        match &e {
            SignInError::Invalid(_) => tonic::Status::invalid_argument(e.to_string()),
            SignInError::Wrong => tonic::Status::unauthenticated(e.to_string()),
            SignInError::Throttled(_) | SignInError::Busy => {
                tonic::Status::resource_exhausted(e.to_string())
            }
            SignInError::Disabled => tonic::Status::permission_denied(e.to_string()),
            SignInError::Internal(detail) => {
                tracing::error!(%detail, "sign-in failed");
                tonic::Status::internal("sign-in failed on the server: retry")
            }
        }
    }
}

/// Checks sign-ins and opens sessions; cheap to clone.
#[derive(Debug, Clone)]
pub struct SignIns {
    store: StoreHandle,
    hasher: Hasher,
    throttle: Arc<Throttle>,
    session: Duration,
}

impl SignIns {
    /// Sign-ins against `store`'s users, sessions lasting `session`.
    pub fn new(store: StoreHandle, session: Duration) -> Result<Self, PasswordError> {
        Ok(SignIns {
            store,
            hasher: Hasher::new(Hasher::default_slots())?,
            throttle: Arc::new(Throttle::new()),
            session,
        })
    }

    /// Checks `login` and `password` coming from `address` at `now`; opens a session.
    pub async fn sign_in(
        &self,
        login: &str,
        password: &str,
        address: Option<IpAddr>,
        now: Timestamp,
    ) -> Result<(String, SessionInfo, UserInfo), SignInError> {
        let login = login.trim();
        if login.is_empty() || password.is_empty() {
            return Err(SignInError::Invalid(
                "login and password are both required".into(),
            ));
        }
        if login.len() > MAX_LOGIN_LEN || password.len() > password::MAX_PASSWORD_BYTES {
            return Err(SignInError::Invalid(format!(
                "a login has at most {MAX_LOGIN_LEN} bytes and a password at most {} bytes",
                password::MAX_PASSWORD_BYTES
            )));
        }
        // Logins are stored in lower case: "Marie.Dupont" is "marie.dupont".
        let login = login.to_ascii_lowercase();
        let started = Instant::now();
        self.throttle
            .begin(&login, address, started)
            .map_err(SignInError::Throttled)?;
        let lookup = login.clone();
        let found = self
            .store
            .run(move |s| s.user_credentials(&lookup))
            .await
            .map_err(|e| SignInError::Internal(e.to_string()))?;
        // Only password users have a hash to check; others (OpenID Connect) check against the
        // decoy and are refused like a wrong password.
        let hash = found.as_ref().and_then(|c| match c.user.source {
            IdentitySource::Password => c.password_hash.as_deref(),
            _ => None,
        });
        let ok = self
            .hasher
            .verify(password, hash)
            .await
            .map_err(|e| match e {
                PasswordError::Busy => SignInError::Busy,
                other => SignInError::Internal(other.to_string()),
            })?;
        let Some(found) = found.filter(|_| ok) else {
            metrics::counter!(crate::obs::metrics::names::SIGN_INS, "outcome" => "refused")
                .increment(1);
            return Err(SignInError::Wrong);
        };
        if found.user.disabled {
            metrics::counter!(crate::obs::metrics::names::SIGN_INS, "outcome" => "disabled")
                .increment(1);
            return Err(SignInError::Disabled);
        }
        self.throttle.succeeded(&login, address);
        let expires = Timestamp::from_millis(
            now.as_millis()
                .saturating_add(u64::try_from(self.session.as_millis()).unwrap_or(u64::MAX)),
        );
        let user = found.user;
        let (token, session) = self
            .store
            .run({
                let user = user.clone();
                move |s| s.create_session(&user, now, expires)
            })
            .await
            .map_err(|e| SignInError::Internal(e.to_string()))?;
        metrics::counter!(crate::obs::metrics::names::SIGN_INS, "outcome" => "signed_in")
            .increment(1);
        tracing::info!(login = %user.login, role = %user.role, session = %session.id, "signed in");
        Ok((token, session, user))
    }

    /// The user `login`, for showing its name.
    pub fn user(&self, login: &str) -> Option<UserInfo> {
        self.store
            .user_credentials(login)
            .ok()
            .flatten()
            .map(|c| c.user)
    }
}
