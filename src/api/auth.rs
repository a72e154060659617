//! Bearer-token authentication and role checks for the gRPC services.
//!
//! Every call carries `authorization: Bearer <token>`. The [`Auth`] interceptor looks the token up
//! (its SHA-256 digest, in SQLite), caches the answer for a few seconds, and attaches the
//! [`Caller`] to the request; a missing or unknown token is `UNAUTHENTICATED`. Handlers then ask
//! [`Caller::require`] for the roles they accept (`PERMISSION_DENIED` otherwise) and, for agent
//! actions, [`Caller::acting_agent`], which binds an agent token to its own agent. No state changes
//! before these checks pass.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::core::AgentId;
use crate::store::{Role, Store, TokenInfo};

/// How long a verified (or refused) token is remembered: a revoked token stops working within
/// this delay.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);

/// Who is calling, as established from the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's role.
    pub role: Role,
    /// The agent an agent token acts as.
    pub agent: Option<AgentId>,
    /// The token's id (not the secret), for logs.
    pub token_id: String,
    /// The token's label (who or what holds it).
    pub label: String,
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

/// The interceptor that authenticates every call of the services it wraps.
#[derive(Clone)]
pub struct Auth {
    store: Arc<Store>,
    cache: Arc<DashMap<String, (Option<Caller>, Instant)>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").finish_non_exhaustive()
    }
}

impl Auth {
    /// Checks tokens against `store`'s token table.
    pub fn new(store: Arc<Store>) -> Self {
        Auth {
            store,
            cache: Arc::new(DashMap::new()),
        }
    }

    fn verify(&self, token: &str) -> Result<Option<Caller>, Status> {
        let now = Instant::now();
        if let Some(entry) = self.cache.get(token) {
            if now.duration_since(entry.1) < TOKEN_CACHE_TTL {
                return Ok(entry.0.clone());
            }
        }
        let found = self.store.verify_token(token).map_err(|e| {
            tracing::error!(error = %e, "token lookup failed");
            Status::internal("cannot check the token now: retry")
        })?;
        let caller = found.map(
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
            },
        );
        if self.cache.len() > 10_000 {
            self.cache
                .retain(|_, (_, at)| now.duration_since(*at) < TOKEN_CACHE_TTL);
        }
        self.cache.insert(token.to_owned(), (caller.clone(), now));
        Ok(caller)
    }
}

impl Interceptor for Auth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| {
                Status::unauthenticated(
                    "missing `authorization: Bearer <token>` metadata (create a token with \
                     `guichet token create`)",
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
        match self.verify(token)? {
            Some(caller) => {
                request.extensions_mut().insert(caller);
                Ok(request)
            }
            None => Err(Status::unauthenticated(
                "unknown or revoked token (list tokens with `guichet token list`)",
            )),
        }
    }
}
