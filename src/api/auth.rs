//! Bearer-token authentication and role checks for the gRPC services.
//!
//! Every call carries `authorization: Bearer <token>`, where the token is an API token (`gch_`,
//! for machines) or a console session (`gcs_`, a person signed in through `Sessions.SignIn`):
//! both map onto the same roles. The [`Auth`] interceptor refuses at once what cannot be either
//! (wrong length or characters), looks the rest up (its SHA-256 digest, in SQLite; a session
//! also by its expiry and its user being enabled), caches the answer for a few seconds in a bounded cache keyed by that digest
//! (never the raw token), and attaches the [`Caller`] and its [`Credential`] to the request; a
//! missing or unknown token is `UNAUTHENTICATED`. Handlers then ask [`Caller::require`] for the
//! roles they accept (`PERMISSION_DENIED` otherwise) and, for agent actions,
//! [`Caller::acting_agent`], which binds an agent token to its own agent. No state changes
//! before these checks pass. Streams are wrapped by [`guard`]: a revoked token, or one whose
//! role or agent changed, ends them within [`TOKEN_CACHE_TTL`] plus [`STREAM_CHECK_EVERY`].

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use sha2::{Digest, Sha256};
use tokio_stream::Stream;
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::core::AgentId;
use crate::store::{Role, StoreHandle, TokenInfo};

/// How long a verified (or refused) token is remembered: a revoked token stops working within
/// this delay.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);
/// How often an open stream checks its credential again (through the cache).
pub const STREAM_CHECK_EVERY: Duration = Duration::from_secs(2);
/// Entries the token cache holds at most; when full, expired entries are dropped, then, if
/// still full, refusals, then everything (a flood of distinct tokens costs lookups, not memory).
pub const TOKEN_CACHE_MAX: usize = 10_000;
/// The length of a token: `gch_` and 64 hex digits.
pub const TOKEN_LEN: usize = 68;

/// Whether `token` has the form of a token (`gch_` and 64 lower-case hex digits): anything
/// else is refused before any lookup.
pub fn plausible_token(token: &str) -> bool {
    token.len() == TOKEN_LEN
        && token.starts_with(crate::store::TOKEN_PREFIX)
        && token.as_bytes()[4..]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

/// Who is calling, as established from the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's role.
    pub role: Role,
    /// The agent an agent token acts as.
    pub agent: Option<AgentId>,
    /// The token's id (not the secret), for logs.
    pub token_id: String,
    /// The token's label (who or what holds it); a session's user login.
    pub label: String,
    /// When a session ends (milliseconds since the epoch); `None` for an API token.
    pub expires_unix_ms: Option<u64>,
}

impl Caller {
    /// Who this caller is, for records of who changed what (IVR versions): the token's label,
    /// or its agent, or its role and id when it has neither.
    pub fn author(&self) -> String {
        let label = self.label.trim();
        match (&self.agent, label.is_empty()) {
            (Some(agent), true) => format!("agent {agent}"),
            (Some(agent), false) => format!("{label} (agent {agent})"),
            (None, false) => format!("{label} ({} token)", self.role),
            (None, true) => format!("{} token {}", self.role, self.token_id),
        }
    }

    /// `Ok` if the caller's role is one of `roles`, else `PERMISSION_DENIED` naming them.
    pub fn require(&self, roles: &[Role]) -> Result<(), Status> {
        if roles.contains(&self.role) {
            return Ok(());
        }
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(Status::permission_denied(format!(
            "a {} token cannot call this method: it needs a {} token",
            self.role,
            names.join(" or ")
        )))
    }

    /// The agent a desktop call acts on: `requested` (may be empty) checked against the token.
    /// An agent token acts only on its own agent; supervisors and admins act on any agent and
    /// must name it.
    pub fn acting_agent(&self, requested: &str) -> Result<AgentId, Status> {
        let requested = requested.trim();
        super::limits::id("agent_id", requested)?;
        match self.role {
            Role::Agent => {
                let own = self.agent.as_ref().ok_or_else(|| {
                    Status::permission_denied("this agent token is not bound to an agent")
                })?;
                if requested.is_empty() || requested == own.as_str() {
                    Ok(own.clone())
                } else {
                    Err(Status::permission_denied(format!(
                        "this token acts as agent {own}: it cannot act on agent {requested}"
                    )))
                }
            }
            Role::Supervisor | Role::Admin => {
                if requested.is_empty() {
                    Err(Status::invalid_argument(
                        "agent_id is required with a supervisor or admin token",
                    ))
                } else {
                    Ok(AgentId::new(requested))
                }
            }
            Role::Integrator => Err(Status::permission_denied(
                "an integrator token cannot act for agents: it needs an agent, supervisor or \
                 admin token",
            )),
        }
    }
}

/// The caller attached to a request by [`Auth`].
pub fn caller<T>(request: &Request<T>) -> Result<&Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .ok_or_else(|| Status::unauthenticated("missing credentials"))
}

/// A request's credential: what a stream needs to check it again while it is open.
#[derive(Clone)]
pub struct Credential {
    auth: Auth,
    kind: Kind,
    digest: [u8; 32],
    caller: Caller,
}

/// What kind of bearer credential a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    /// An API token (`gch_`).
    Token,
    /// A console session (`gcs_`).
    Session,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("token_id", &self.caller.token_id)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// `Ok` while the token exists with the same role and agent; else the status that ends
    /// the stream.
    fn still_valid(&self) -> Result<(), Status> {
        match self.auth.verify_digest(self.kind, &self.digest) {
            Err(_) => Ok(()), // a failed lookup is not a revocation: checked again later
            Ok(None) => Err(Status::unauthenticated(
                "the token was revoked or has expired: open the stream again with a valid token",
            )),
            Ok(Some(now)) if now.role != self.caller.role || now.agent != self.caller.agent => {
                Err(Status::permission_denied(
                    "the token's role or agent changed: open the stream again",
                ))
            }
            Ok(Some(_)) => Ok(()),
        }
    }
}

/// A stream ended when its credential is revoked, expires or changes role.
pub struct Guarded<S> {
    inner: S,
    credential: Option<Credential>,
    checks: tokio::time::Interval,
    done: bool,
}

impl<S, T> Stream for Guarded<S>
where
    S: Stream<Item = Result<T, Status>> + Unpin,
{
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        while self.checks.poll_tick(cx).is_ready() {
            let Some(credential) = &self.credential else {
                break;
            };
            if let Err(status) = credential.still_valid() {
                let reason = if status.code() == tonic::Code::Unauthenticated {
                    "revoked"
                } else {
                    "role_changed"
                };
                tracing::warn!(
                    token_id = %credential.caller.token_id,
                    reason,
                    "stream ended: its token is no longer valid"
                );
                metrics::counter!(
                    crate::obs::metrics::names::STREAMS_ENDED_AUTH,
                    "reason" => reason
                )
                .increment(1);
                self.done = true;
                // The inner stream goes now: its producer sees the stream closed.
                self.credential = None;
                return Poll::Ready(Some(Err(status)));
            }
        }
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

/// `stream`, ended with `UNAUTHENTICATED` (revoked or expired token) or `PERMISSION_DENIED`
/// (role or agent changed) once the request's credential no longer holds.
pub fn guard<T, S>(
    request_credential: Option<Credential>,
    stream: S,
) -> Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>
where
    S: Stream<Item = Result<T, Status>> + Send + Unpin + 'static,
    T: Send + 'static,
{
    let mut checks = tokio::time::interval(STREAM_CHECK_EVERY);
    checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    Box::pin(Guarded {
        inner: stream,
        credential: request_credential,
        checks,
        done: false,
    })
}

/// The credential attached to a request by [`Auth`] (none in tests that skip the interceptor).
pub fn credential<T>(request: &Request<T>) -> Option<Credential> {
    request.extensions().get::<Credential>().cloned()
}

/// A cached answer: the caller (none for an unknown token) and when it was looked up.
type CacheEntry = (Option<Caller>, Instant);

fn wall_now() -> crate::core::Timestamp {
    crate::engine::Clock::now(&crate::engine::SystemClock)
}

/// The interceptor that authenticates every call of the services it wraps.
#[derive(Clone)]
pub struct Auth {
    store: StoreHandle,
    cache: Arc<DashMap<[u8; 32], CacheEntry>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").finish_non_exhaustive()
    }
}

impl Auth {
    /// Checks tokens against `store`'s token table.
    pub fn new(store: StoreHandle) -> Self {
        Auth {
            store,
            cache: Arc::new(DashMap::new()),
        }
    }

    /// Entries in the token cache now.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Forgets a credential's cached answer (a session just ended).
    pub fn forget(&self, credential: &Credential) {
        self.cache.remove(&credential.digest);
    }

    fn verify_digest(&self, kind: Kind, digest: &[u8; 32]) -> Result<Option<Caller>, Status> {
        let now = Instant::now();
        let wall = wall_now();
        if let Some(entry) = self.cache.get(digest) {
            let expired = entry
                .0
                .as_ref()
                .and_then(|c| c.expires_unix_ms)
                .is_some_and(|at| wall.as_millis() >= at);
            if now.duration_since(entry.1) < TOKEN_CACHE_TTL && !expired {
                return Ok(entry.0.clone());
            }
        }
        let failed = |e: crate::store::StoreError| super::status::internal("credential lookup", &e);
        let caller = match kind {
            Kind::Token => self.store.verify_token_digest(digest).map_err(failed)?.map(
                |TokenInfo {
                     id,
                     role,
                     agent,
                     label,
                     ..
                 }| Caller {
                    role,
                    agent,
                    token_id: id,
                    label,
                    expires_unix_ms: None,
                },
            ),
            Kind::Session => self
                .store
                .verify_session_digest(digest, wall)
                .map_err(failed)?
                .map(|s| Caller {
                    role: s.role,
                    agent: s.agent,
                    token_id: s.id,
                    label: s.login,
                    expires_unix_ms: Some(s.expires_at.as_millis()),
                }),
        };
        if self.cache.len() >= TOKEN_CACHE_MAX {
            self.cache
                .retain(|_, (_, at)| now.duration_since(*at) < TOKEN_CACHE_TTL);
            if self.cache.len() >= TOKEN_CACHE_MAX {
                self.cache.retain(|_, (caller, _)| caller.is_some());
            }
            if self.cache.len() >= TOKEN_CACHE_MAX {
                self.cache.clear();
            }
        }
        self.cache.insert(*digest, (caller.clone(), now));
        Ok(caller)
    }

    /// Authenticates a call's metadata: its caller and credential, or `UNAUTHENTICATED` saying
    /// what is missing (services that also take unauthenticated calls, such as sign-in, call
    /// this themselves).
    pub fn authenticate(
        &self,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<(Caller, Credential), Status> {
        let header = metadata
            .get("authorization")
            .ok_or_else(|| {
                Status::unauthenticated(
                    "missing `authorization: Bearer <token>` metadata (sign in, or create a \
                     token with `guichet token create`)",
                )
            })?
            .to_str()
            .map_err(|_| Status::unauthenticated("the authorization metadata is not text"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                Status::unauthenticated("the authorization metadata must be `Bearer <token>`")
            })?;
        let kind = if plausible_token(token) {
            Kind::Token
        } else if crate::store::plausible_session(token) {
            Kind::Session
        } else {
            return Err(unknown(None));
        };
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        match self.verify_digest(kind, &digest)? {
            Some(caller) => Ok((
                caller.clone(),
                Credential {
                    auth: self.clone(),
                    kind,
                    digest,
                    caller,
                },
            )),
            None => Err(unknown(Some(kind))),
        }
    }
}

fn unknown(kind: Option<Kind>) -> Status {
    Status::unauthenticated(match kind {
        Some(Kind::Session) => "your session has expired or was ended: sign in again",
        _ => "unknown or revoked token (list tokens with `guichet token list`)",
    })
}

impl Credential {
    /// Whether this is a console session (else an API token).
    pub fn is_session(&self) -> bool {
        self.kind == Kind::Session
    }

    /// The caller it identifies.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Ends this credential if it is a session: deleted from the store and forgotten by the
    /// cache. Returns whether a session was ended.
    pub fn end_session(&self) -> Result<bool, Status> {
        if self.kind != Kind::Session {
            return Ok(false);
        }
        let ended = self
            .auth
            .store
            .end_session_digest(&self.digest)
            .map_err(|e| {
                tracing::error!(error = %e, "ending a session failed");
                Status::internal("cannot end the session now: retry")
            })?;
        self.auth.forget(self);
        Ok(ended)
    }
}

impl Interceptor for Auth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let (caller, credential) = self.authenticate(request.metadata())?;
        request.extensions_mut().insert(credential);
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implausible_tokens_are_recognised() {
        let good = format!("gch_{}", "0a".repeat(32));
        assert!(plausible_token(&good));
        assert!(!plausible_token(&good[..67]));
        assert!(!plausible_token(&format!("gch_{}", "0A".repeat(32))));
        assert!(!plausible_token(&format!("xyz_{}", "0a".repeat(32))));
        assert!(!plausible_token(&"a".repeat(15_000)));
    }
}
