//! People who sign in to the console (`users`) and their sessions (`sessions`), schema 11.
//!
//! A user has a login, a display name, a [`Role`] (an agent user is bound to its agent id, like
//! an agent token), an identity source (`password` today: an argon2id PHC string; room for
//! OpenID Connect, whose users will carry the provider's subject instead) and a disabled flag.
//! Hashing and checking passwords is not done here (see `crate::signin`): this file stores what
//! it is given, in plain SQL so that a PostgreSQL store can run the same statements.
//!
//! A session is `gcs_` followed by 64 hex digits (32 random bytes); only its SHA-256 digest is
//! stored, with the role and agent it was granted and when it expires. A session is valid while
//! its user exists, is enabled, and the expiry is ahead; disabling a user or changing its
//! password deletes its sessions.

use rand::RngCore;
use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::core::{AgentId, Timestamp};

use super::codec::{millis_from_sql, millis_to_sql};
use super::db::SqliteStore;
use super::error::{SqlContext, StoreError};
use super::row::RowRead;
use super::tokens::{hex, Role};

/// What every session token starts with.
pub const SESSION_PREFIX: &str = "gcs_";

/// The longest login accepted.
pub const MAX_LOGIN_LEN: usize = 64;

/// Schema 11: users and their sessions.
pub(super) const V11_SQL: &str = "
CREATE TABLE users (
    login TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    agent TEXT,
    source TEXT NOT NULL,
    password_hash TEXT,
    subject TEXT,
    disabled INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    changed_at INTEGER NOT NULL
);
CREATE TABLE sessions (
    hash TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    login TEXT NOT NULL,
    role TEXT NOT NULL,
    agent TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_login ON sessions (login);
CREATE INDEX sessions_expires ON sessions (expires_at);
";

/// Where a user's identity is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentitySource {
    /// A password hashed with argon2id, kept in the `users` table.
    Password,
    /// An OpenID Connect provider (ProConnect for French public agents): the user is matched by
    /// the provider's subject. Stored and listed, but no provider can be configured yet, so such
    /// a user cannot sign in.
    Oidc,
}

impl IdentitySource {
    /// The name stored in the `source` column.
    pub const fn as_str(self) -> &'static str {
        match self {
            IdentitySource::Password => "password",
            IdentitySource::Oidc => "oidc",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "password" => Some(IdentitySource::Password),
            "oidc" => Some(IdentitySource::Oidc),
            _ => None,
        }
    }
}

/// A user as stored, without the password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The login (lower-case letters, digits and `. _ @ -`).
    pub login: String,
    /// The name shown in the console.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// The agent an agent user acts as.
    pub agent: Option<AgentId>,
    /// Where the identity is checked.
    pub source: IdentitySource,
    /// Whether sign-in is refused.
    pub disabled: bool,
    /// When it was created.
    pub created_at: Timestamp,
}

/// A user with its password hash, for checking a sign-in.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    /// The user.
    pub user: UserInfo,
    /// The argon2id PHC string, for password users.
    pub password_hash: Option<String>,
}

/// A session as stored: what a session token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session's id (a ULID, for logs; not the secret).
    pub id: String,
    /// The user's login.
    pub login: String,
    /// The role granted.
    pub role: Role,
    /// The agent an agent session acts as.
    pub agent: Option<AgentId>,
    /// When the session was opened.
    pub created_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// Whether `login` is acceptable: 1 to [`MAX_LOGIN_LEN`] bytes of lower-case ASCII letters,
/// digits and `. _ @ -`.
pub fn valid_login(login: &str) -> bool {
    !login.is_empty()
        && login.len() <= MAX_LOGIN_LEN
        && login.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'@' | b'-')
        })
}

/// Whether `token` has the form of a session token (`gcs_` and 64 lower-case hex digits).
pub fn plausible_session(token: &str) -> bool {
    token.len() == SESSION_PREFIX.len() + 64
        && token.starts_with(SESSION_PREFIX)
        && token.as_bytes()[SESSION_PREFIX.len()..]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

pub(crate) type UserRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    i64,
    i64,
);

/// The statements whose text both backends share (`$n` parameters, in the order they first
/// appear, which SQLite binds by position too).
pub(crate) mod sql {
    /// Deletes the sessions expired at `$1`.
    pub const PURGE_SESSIONS: &str = "DELETE FROM sessions WHERE expires_at <= $1";
    /// Stores a session's digest and grant.
    pub const INSERT_SESSION: &str = "INSERT INTO sessions \
         (hash, id, login, role, agent, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)";
    /// The session of a digest, unexpired at `$2`, of an enabled user (`SessionRow`).
    pub const VALID_SESSION: &str =
        "SELECT s.id, s.login, s.role, s.agent, s.created_at, s.expires_at \
         FROM sessions s JOIN users u ON u.login = s.login \
         WHERE s.hash = $1 AND s.expires_at > $2 AND u.disabled = 0";
    /// Ends the session of a digest.
    pub const END_SESSION: &str = "DELETE FROM sessions WHERE hash = $1";
    /// Ends every session of a login.
    pub const END_SESSIONS_OF: &str = "DELETE FROM sessions WHERE login = $1";
    /// The sessions open at `$1`, per login.
    pub const OPEN_SESSIONS: &str = "SELECT login, COUNT(*) FROM sessions \
         WHERE expires_at > $1 GROUP BY login ORDER BY login";
}

pub(crate) const USER_COLUMNS: &str =
    "login, name, role, agent, source, password_hash, disabled, created_at FROM users";

/// A session's row as read (`id, login, role, agent, created_at, expires_at`).
pub(crate) type SessionRow = (String, String, String, Option<String>, i64, i64);

/// Refuses ([`StoreError::Invalid`]) a new password user with a malformed login, an agent user
/// without an agent (or another role with one), or an integrator (machines use tokens).
pub(crate) fn check_new_user(
    login: &str,
    role: Role,
    agent: &Option<AgentId>,
) -> Result<(), StoreError> {
    if !valid_login(login) {
        return Err(StoreError::Invalid(format!(
            "a login is 1 to {MAX_LOGIN_LEN} lower-case letters, digits, '.', '_', '@' or '-'"
        )));
    }
    match (role, agent) {
        (Role::Agent, None) => Err(StoreError::Invalid(
            "an agent user must name the agent it acts as".into(),
        )),
        (Role::Agent, Some(_)) => Ok(()),
        (Role::Integrator, _) => Err(StoreError::Invalid(
            "integrators are machines: give them an API token (`guichet token create`)".into(),
        )),
        (_, Some(_)) => Err(StoreError::Invalid(
            "only an agent user is bound to an agent".into(),
        )),
        (_, None) => Ok(()),
    }
}

/// The refusal of a new user whose login is taken.
pub(crate) fn login_taken(login: &str) -> StoreError {
    StoreError::Invalid(format!(
        "the login {login} is taken (change its password with `guichet user passwd`)"
    ))
}

/// A password user as added at `at`.
pub(crate) fn new_password_user(
    login: &str,
    name: &str,
    role: Role,
    agent: Option<AgentId>,
    at: Timestamp,
) -> UserInfo {
    UserInfo {
        login: login.to_owned(),
        name: name.to_owned(),
        role,
        agent,
        source: IdentitySource::Password,
        disabled: false,
        created_at: at,
    }
}

/// A new session for `user` from `now` until `expires_at`: the token in plaintext, its stored
/// digest (hex SHA-256) and the session.
pub(crate) fn new_session(
    user: &UserInfo,
    now: Timestamp,
    expires_at: Timestamp,
) -> (String, String, SessionInfo) {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let token = format!("{SESSION_PREFIX}{}", hex(&secret));
    let digest = hex(&Sha256::digest(token.as_bytes()));
    let info = SessionInfo {
        id: ulid::Ulid::new().to_string(),
        login: user.login.clone(),
        role: user.role,
        agent: user.agent.clone(),
        created_at: now,
        expires_at,
    };
    (token, digest, info)
}

/// A session from its row.
pub(crate) fn session_from_row(
    path: &std::path::Path,
    (id, login, role, agent, created_at, expires_at): SessionRow,
) -> Result<SessionInfo, StoreError> {
    let role = role
        .parse::<Role>()
        .map_err(|d| decode_error(path, "sessions", format!("session {id}: {d}")))?;
    Ok(SessionInfo {
        id,
        login,
        role,
        agent: agent.map(AgentId::from),
        created_at: millis_from_sql(created_at),
        expires_at: millis_from_sql(expires_at),
    })
}

impl SqliteStore {
    fn user_from_row(&self, row: UserRow) -> Result<UserCredentials, StoreError> {
        user_from_row(self.path(), row)
    }

    /// Adds a password user. Refused ([`StoreError::Invalid`]) for a malformed login, an agent
    /// user without an agent (or another role with one), an integrator (machines use tokens),
    /// or a login already taken.
    pub fn add_user(
        &self,
        login: &str,
        name: &str,
        role: Role,
        agent: Option<AgentId>,
        password_hash: &str,
        at: Timestamp,
    ) -> Result<UserInfo, StoreError> {
        check_new_user(login, role, &agent)?;
        let conn = self.conn();
        let taken: Option<String> = conn
            .query_row(
                "SELECT login FROM users WHERE login = ?1",
                params![login],
                |r| r.get(0),
            )
            .optional()
            .at(self.path())?;
        if taken.is_some() {
            return Err(login_taken(login));
        }
        conn.execute(
            "INSERT INTO users (login, name, role, agent, source, password_hash, subject, \
             disabled, created_at, changed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, 0, ?7, ?7)",
            params![
                login,
                name,
                role.as_str(),
                agent.as_ref().map(|a| a.as_str()),
                IdentitySource::Password.as_str(),
                password_hash,
                millis_to_sql(at),
            ],
        )
        .at(self.path())?;
        Ok(new_password_user(login, name, role, agent, at))
    }

    /// Every user, by login.
    pub fn list_users(&self) -> Result<Vec<UserInfo>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!("SELECT {USER_COLUMNS} ORDER BY login"))
            .at(self.path())?;
        let rows: Vec<UserRow> = stmt
            .query_map([], |r| r.cells::<UserRow>())
            .at(self.path())?
            .collect::<Result<_, _>>()
            .at(self.path())?;
        drop(stmt);
        drop(conn);
        rows.into_iter()
            .map(|r| self.user_from_row(r).map(|c| c.user))
            .collect()
    }

    /// The user `login` with its password hash, if it exists.
    pub fn user_credentials(&self, login: &str) -> Result<Option<UserCredentials>, StoreError> {
        let row = self
            .conn()
            .query_row(
                &format!("SELECT {USER_COLUMNS} WHERE login = ?1"),
                params![login],
                |r| r.cells::<UserRow>(),
            )
            .optional()
            .at(self.path())?;
        row.map(|r| self.user_from_row(r)).transpose()
    }

    /// Replaces a user's password hash and ends its sessions; returns whether the user exists.
    pub fn set_user_password(
        &self,
        login: &str,
        password_hash: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.with_tx(|tx| {
            let n = tx
                .execute(
                    "UPDATE users SET password_hash = ?2, source = 'password', changed_at = ?3 \
                     WHERE login = ?1",
                    params![login, password_hash, millis_to_sql(at)],
                )
                .at(self.path())?;
            tx.execute(sql::END_SESSIONS_OF, params![login])
                .at(self.path())?;
            Ok(n > 0)
        })
    }

    /// Disables (or enables again) a user; disabling ends its sessions. Returns whether the
    /// user exists.
    pub fn set_user_disabled(
        &self,
        login: &str,
        disabled: bool,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.with_tx(|tx| {
            let n = tx
                .execute(
                    "UPDATE users SET disabled = ?2, changed_at = ?3 WHERE login = ?1",
                    params![login, i64::from(disabled), millis_to_sql(at)],
                )
                .at(self.path())?;
            if disabled {
                tx.execute(sql::END_SESSIONS_OF, params![login])
                    .at(self.path())?;
            }
            Ok(n > 0)
        })
    }

    /// Opens a session for `user` until `expires_at`; returns the token (the only time it is
    /// available) and the stored session. Expired sessions are purged on the way.
    pub fn create_session(
        &self,
        user: &UserInfo,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(String, SessionInfo), StoreError> {
        let (token, digest, info) = new_session(user, now, expires_at);
        let conn = self.conn();
        conn.execute(sql::PURGE_SESSIONS, params![millis_to_sql(now)])
            .at(self.path())?;
        conn.execute(
            sql::INSERT_SESSION,
            params![
                digest,
                info.id,
                info.login,
                info.role.as_str(),
                info.agent.as_ref().map(|a| a.as_str()),
                millis_to_sql(now),
                millis_to_sql(expires_at),
            ],
        )
        .at(self.path())?;
        Ok((token, info))
    }

    /// The session whose token has SHA-256 digest `digest`, if it exists, has not expired at
    /// `now`, and its user is still enabled.
    pub fn verify_session_digest(
        &self,
        digest: &[u8; 32],
        now: Timestamp,
    ) -> Result<Option<SessionInfo>, StoreError> {
        let row: Option<SessionRow> = self
            .conn()
            .query_row(
                sql::VALID_SESSION,
                params![hex(digest), millis_to_sql(now)],
                |r| r.cells::<SessionRow>(),
            )
            .optional()
            .at(self.path())?;
        row.map(|r| session_from_row(self.path(), r)).transpose()
    }

    /// Ends the session whose token has digest `digest`; returns whether it existed.
    pub fn end_session_digest(&self, digest: &[u8; 32]) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .execute(sql::END_SESSION, params![hex(digest)])
            .at(self.path())?;
        Ok(n > 0)
    }

    /// Sessions open now per login (expired ones not counted).
    pub fn open_sessions(&self, now: Timestamp) -> Result<Vec<(String, u64)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(sql::OPEN_SESSIONS).at(self.path())?;
        let rows = stmt
            .query_map(params![millis_to_sql(now)], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .at(self.path())?
            .collect::<Result<Vec<_>, _>>()
            .at(self.path())?;
        Ok(rows
            .into_iter()
            .map(|(l, n)| (l, u64::try_from(n).unwrap_or(0)))
            .collect())
    }
}

/// A user from its row (`USER_COLUMNS`).
pub(crate) fn user_from_row(
    path: &std::path::Path,
    row: UserRow,
) -> Result<UserCredentials, StoreError> {
    let (login, name, role, agent, source, password_hash, disabled, created_at) = row;
    let role = role
        .parse::<Role>()
        .map_err(|d| decode_error(path, "users", format!("user {login}: {d}")))?;
    let source = IdentitySource::parse(&source).ok_or_else(|| {
        decode_error(
            path,
            "users",
            format!("user {login}: unknown source {source:?}"),
        )
    })?;
    Ok(UserCredentials {
        user: UserInfo {
            login,
            name,
            role,
            agent: agent.map(AgentId::from),
            source,
            disabled: disabled != 0,
            created_at: millis_from_sql(created_at),
        },
        password_hash,
    })
}

pub(crate) fn decode_error(
    path: &std::path::Path,
    table: &'static str,
    detail: String,
) -> StoreError {
    StoreError::Decode {
        path: path.to_owned(),
        table,
        seq: 0,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_and_session_tokens_have_a_form() {
        assert!(valid_login("marie.dupont@mairie-x"));
        assert!(!valid_login(""));
        assert!(!valid_login("Marie"));
        assert!(!valid_login(&"a".repeat(65)));
        assert!(!valid_login("a b"));
        let good = format!("gcs_{}", "0a".repeat(32));
        assert!(plausible_session(&good));
        assert!(!plausible_session(&good[..67]));
        assert!(!plausible_session(&format!("gch_{}", "0a".repeat(32))));
    }
}
