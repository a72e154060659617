//! API tokens: [`Role`]s, and the token table of [`SqliteStore`].
//!
//! A token is `gch_` followed by 64 hex digits (32 random bytes from the operating system's
//! CSPRNG via `rand`). Only its SHA-256 digest is stored, so a copy of the database does not give
//! access; verification looks the digest up (no secret comparison happens in Rust, so no
//! constant-time compare is needed). The plaintext is returned once, at creation.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::core::{AgentId, Timestamp};

use super::codec::{millis_from_sql, millis_to_sql};
use super::db::SqliteStore;
use super::error::{SqlContext, StoreError};
use super::row::RowRead;

/// What every token starts with (so that leaked tokens are easy to scan for).
pub const TOKEN_PREFIX: &str = "gch_";

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An agent's desktop: bound to one agent id, acts only as that agent.
    Agent,
    /// Supervises queues and agents, edits IVR trees.
    Supervisor,
    /// A system that creates and follows interactions (CRM, website).
    Integrator,
    /// Everything, including tokens.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Agent, Role::Supervisor, Role::Integrator, Role::Admin];

    /// The role's name as written in configuration and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Integrator => "integrator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("unknown role {s:?}: expected agent, supervisor, integrator or admin")
            })
    }
}

/// A token as stored: everything but the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// The token's id (a ULID), used to list and revoke it.
    pub id: String,
    /// What it allows.
    pub role: Role,
    /// The agent it acts as (always present for [`Role::Agent`]).
    pub agent: Option<AgentId>,
    /// A free label (who or what holds it).
    pub label: String,
    /// When it was created.
    pub created_at: Timestamp,
}

/// The SHA-256 digest of `token`, to look it up by; `None` when it is not a token (no
/// [`TOKEN_PREFIX`]).
pub(crate) fn token_digest(token: &str) -> Option<[u8; 32]> {
    token
        .starts_with(TOKEN_PREFIX)
        .then(|| Sha256::digest(token.as_bytes()).into())
}

/// The hex SHA-256 digest of a token, as stored.
pub(crate) fn digest(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// A token's row as read (`id, role, agent, label, created_at`).
pub(crate) type TokenRow = (String, String, Option<String>, String, i64);

/// A new token for `role` (and `agent`, which a [`Role::Agent`] token must name): the token in
/// plaintext and its description, to store with the token's [`digest`].
pub(crate) fn new_token(
    role: Role,
    agent: Option<AgentId>,
    label: &str,
    created_at: Timestamp,
) -> Result<(String, TokenInfo), StoreError> {
    if role == Role::Agent && agent.is_none() {
        return Err(StoreError::Invalid(
            "an agent token must name the agent it acts as".into(),
        ));
    }
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let token = format!("{TOKEN_PREFIX}{}", hex(&secret));
    let info = TokenInfo {
        id: ulid::Ulid::new().to_string(),
        role,
        agent,
        label: label.to_owned(),
        created_at,
    };
    Ok((token, info))
}

/// The statements whose text both backends share (`$n` parameters, in the order they first
/// appear, which SQLite binds by position too).
pub(crate) mod sql {
    /// Stores a token's digest and description.
    pub const INSERT: &str = "INSERT INTO tokens (id, hash, role, agent, label, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)";
    /// The token of a digest (its row, `token_row`'s columns).
    pub const BY_HASH: &str =
        "SELECT id, role, agent, label, created_at FROM tokens WHERE hash = $1";
    /// Every token, oldest first.
    pub const LIST: &str =
        "SELECT id, role, agent, label, created_at FROM tokens ORDER BY created_at, id";
    /// Revokes a token.
    pub const DELETE: &str = "DELETE FROM tokens WHERE id = $1";
}

impl SqliteStore {
    /// Creates a token and returns it in plaintext (the only time it is available) with its
    /// stored description. A [`Role::Agent`] token must name its agent.
    pub fn create_token(
        &self,
        role: Role,
        agent: Option<AgentId>,
        label: &str,
        created_at: Timestamp,
    ) -> Result<(String, TokenInfo), StoreError> {
        let (token, info) = new_token(role, agent, label, created_at)?;
        self.conn()
            .execute(
                sql::INSERT,
                params![
                    info.id,
                    digest(&token),
                    role.as_str(),
                    info.agent.as_ref().map(|a| a.as_str()),
                    info.label,
                    millis_to_sql(created_at),
                ],
            )
            .at(self.path())?;
        Ok((token, info))
    }

    /// The token's description if it exists (and was not revoked).
    pub fn verify_token(&self, token: &str) -> Result<Option<TokenInfo>, StoreError> {
        match token_digest(token) {
            Some(digest) => self.verify_token_digest(&digest),
            None => Ok(None),
        }
    }

    /// The token whose SHA-256 digest is `digest`, if any (the raw token need not be kept).
    pub fn verify_token_digest(&self, digest: &[u8; 32]) -> Result<Option<TokenInfo>, StoreError> {
        let row = self
            .conn()
            .query_row(sql::BY_HASH, params![hex(digest)], |r| {
                r.cells::<TokenRow>()
            })
            .optional()
            .at(self.path())?;
        row.map(|r| self.info_from_row(r)).transpose()
    }

    /// Every token, oldest first.
    pub fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(sql::LIST).at(self.path())?;
        let rows = stmt
            .query_map([], |r| r.cells::<TokenRow>())
            .at(self.path())?;
        let rows: Vec<_> = rows.collect::<Result<_, _>>().at(self.path())?;
        rows.into_iter().map(|r| self.info_from_row(r)).collect()
    }

    /// Revokes (deletes) a token; returns whether it existed.
    pub fn revoke_token(&self, id: &str) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .execute(sql::DELETE, params![id])
            .at(self.path())?;
        Ok(n > 0)
    }

    fn info_from_row(&self, row: TokenRow) -> Result<TokenInfo, StoreError> {
        token_from_row(self.path(), row)
    }
}
/// A token's description from its row (`id, role, agent, label, created_at`).
pub(crate) fn token_from_row(
    path: &std::path::Path,
    (id, role, agent, label, created_at): TokenRow,
) -> Result<TokenInfo, StoreError> {
    let role = role.parse::<Role>().map_err(|detail| StoreError::Decode {
        path: path.to_owned(),
        table: "tokens",
        seq: 0,
        detail: format!("token {id}: {detail}"),
    })?;
    Ok(TokenInfo {
        id,
        role,
        agent: agent.map(AgentId::from),
        label,
        created_at: millis_from_sql(created_at),
    })
}
