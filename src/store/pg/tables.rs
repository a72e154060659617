//! The configuration tables on PostgreSQL: API tokens, console users and sessions, IVR tree
//! versions and number bindings, the link-signing secret, view checkpoints and SMS opt-outs.
//! The same methods, rules and results as SQLite's (`tokens.rs`, `users.rs`, `ivr.rs`,
//! `secrets.rs`, `checkpoints.rs`, `outbox.rs`), in PostgreSQL's SQL; the row decoding is shared.

use crate::core::{AgentId, Timestamp};

use super::super::codec::millis_to_sql;
use super::super::ivr::{previous_from_sql, previous_to_sql};
use super::super::row::RowRead;
use super::super::tokens::{
    digest, hex, new_token, sql as token_sql, token_digest, token_from_row, TokenRow,
};
use super::super::users::{
    check_new_user, login_taken, new_password_user, new_session, session_from_row, sql as user_sql,
    user_from_row, SessionRow, UserRow, USER_COLUMNS,
};
use super::super::voice::sql as voice_sql;
use super::super::{
    IdentitySource, IvrActive, IvrAuthor, IvrVersionInfo, Role, SessionInfo, StoreError, TokenInfo,
    UserCredentials, UserInfo,
};
use super::PgStore;

impl PgStore {
    /// A token from its row.
    fn token_of(&self, r: &postgres::Row) -> Result<TokenInfo, StoreError> {
        let row = r
            .cells::<TokenRow>()
            .map_err(|d| self.decode_err("tokens", d))?;
        token_from_row(&self.target().as_path(), row)
    }

    /// A user from its row.
    fn user_of(&self, r: &postgres::Row) -> Result<UserCredentials, StoreError> {
        let row = r
            .cells::<UserRow>()
            .map_err(|d| self.decode_err("users", d))?;
        user_from_row(&self.target().as_path(), row)
    }

    /// Like [`SqliteStore::create_token`](super::super::SqliteStore::create_token).
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
                token_sql::INSERT,
                &[
                    &info.id,
                    &digest(&token),
                    &role.as_str(),
                    &info.agent.as_ref().map(|a| a.as_str()),
                    &info.label,
                    &millis_to_sql(created_at),
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok((token, info))
    }

    /// Like [`SqliteStore::verify_token`](super::super::SqliteStore::verify_token).
    pub fn verify_token(&self, token: &str) -> Result<Option<TokenInfo>, StoreError> {
        match token_digest(token) {
            Some(digest) => self.verify_token_digest(&digest),
            None => Ok(None),
        }
    }

    /// Like [`SqliteStore::verify_token_digest`](super::super::SqliteStore::verify_token_digest).
    pub fn verify_token_digest(&self, digest: &[u8; 32]) -> Result<Option<TokenInfo>, StoreError> {
        let row = self
            .conn()
            .query_opt(token_sql::BY_HASH, &[&hex(digest)])
            .map_err(|e| self.err(e))?;
        row.map(|r| self.token_of(&r)).transpose()
    }

    /// Like [`SqliteStore::list_tokens`](super::super::SqliteStore::list_tokens).
    pub fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = self
            .conn()
            .query(token_sql::LIST, &[])
            .map_err(|e| self.err(e))?;
        rows.iter().map(|r| self.token_of(r)).collect()
    }

    /// Like [`SqliteStore::revoke_token`](super::super::SqliteStore::revoke_token).
    pub fn revoke_token(&self, id: &str) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .execute(token_sql::DELETE, &[&id])
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    /// Like [`SqliteStore::add_user`](super::super::SqliteStore::add_user).
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
        let mut conn = self.conn();
        let at_sql = millis_to_sql(at);
        let inserted = conn
            .execute(
                "INSERT INTO users (login, name, role, agent, source, password_hash, subject, \
                 disabled, created_at, changed_at) VALUES ($1, $2, $3, $4, $5, $6, NULL, 0, $7, $7) \
                 ON CONFLICT (login) DO NOTHING",
                &[
                    &login,
                    &name,
                    &role.as_str(),
                    &agent.as_ref().map(|a| a.as_str()),
                    &IdentitySource::Password.as_str(),
                    &password_hash,
                    &at_sql,
                ],
            )
            .map_err(|e| self.err(e))?;
        if inserted == 0 {
            return Err(login_taken(login));
        }
        Ok(new_password_user(login, name, role, agent, at))
    }

    /// Like [`SqliteStore::list_users`](super::super::SqliteStore::list_users).
    pub fn list_users(&self) -> Result<Vec<UserInfo>, StoreError> {
        let rows = self
            .conn()
            .query(&format!("SELECT {USER_COLUMNS} ORDER BY login"), &[])
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| self.user_of(r).map(|c| c.user))
            .collect()
    }

    /// Like [`SqliteStore::user_credentials`](super::super::SqliteStore::user_credentials).
    pub fn user_credentials(&self, login: &str) -> Result<Option<UserCredentials>, StoreError> {
        let row = self
            .conn()
            .query_opt(
                &format!("SELECT {USER_COLUMNS} WHERE login = $1"),
                &[&login],
            )
            .map_err(|e| self.err(e))?;
        row.map(|r| self.user_of(&r)).transpose()
    }

    /// Like [`SqliteStore::set_user_password`](super::super::SqliteStore::set_user_password).
    pub fn set_user_password(
        &self,
        login: &str,
        password_hash: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.with_tx(|tx| {
            let n = tx
                .execute(
                    "UPDATE users SET password_hash = $2, source = 'password', changed_at = $3 \
                     WHERE login = $1",
                    &[&login, &password_hash, &millis_to_sql(at)],
                )
                .map_err(|e| self.err(e))?;
            tx.execute(user_sql::END_SESSIONS_OF, &[&login])
                .map_err(|e| self.err(e))?;
            Ok(n > 0)
        })
    }

    /// Like [`SqliteStore::set_user_disabled`](super::super::SqliteStore::set_user_disabled).
    pub fn set_user_disabled(
        &self,
        login: &str,
        disabled: bool,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.with_tx(|tx| {
            let n = tx
                .execute(
                    "UPDATE users SET disabled = $2, changed_at = $3 WHERE login = $1",
                    &[&login, &i64::from(disabled), &millis_to_sql(at)],
                )
                .map_err(|e| self.err(e))?;
            if disabled {
                tx.execute(user_sql::END_SESSIONS_OF, &[&login])
                    .map_err(|e| self.err(e))?;
            }
            Ok(n > 0)
        })
    }

    /// Like [`SqliteStore::create_session`](super::super::SqliteStore::create_session).
    pub fn create_session(
        &self,
        user: &UserInfo,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(String, SessionInfo), StoreError> {
        let (token, digest, info) = new_session(user, now, expires_at);
        self.with_tx(|tx| {
            tx.execute(user_sql::PURGE_SESSIONS, &[&millis_to_sql(now)])
                .map_err(|e| self.err(e))?;
            tx.execute(
                user_sql::INSERT_SESSION,
                &[
                    &digest,
                    &info.id,
                    &info.login,
                    &info.role.as_str(),
                    &info.agent.as_ref().map(|a| a.as_str()),
                    &millis_to_sql(now),
                    &millis_to_sql(expires_at),
                ],
            )
            .map_err(|e| self.err(e))
        })?;
        Ok((token, info))
    }

    /// Like [`SqliteStore::verify_session_digest`](super::super::SqliteStore::verify_session_digest).
    pub fn verify_session_digest(
        &self,
        digest: &[u8; 32],
        now: Timestamp,
    ) -> Result<Option<SessionInfo>, StoreError> {
        let row = self
            .conn()
            .query_opt(
                user_sql::VALID_SESSION,
                &[&hex(digest), &millis_to_sql(now)],
            )
            .map_err(|e| self.err(e))?;
        let path = self.target().as_path();
        row.map(|r| {
            let row = r
                .cells::<SessionRow>()
                .map_err(|d| self.decode_err("sessions", d))?;
            session_from_row(&path, row)
        })
        .transpose()
    }

    /// Like [`SqliteStore::end_session_digest`](super::super::SqliteStore::end_session_digest).
    pub fn end_session_digest(&self, digest: &[u8; 32]) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .execute(user_sql::END_SESSION, &[&hex(digest)])
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    /// Like [`SqliteStore::open_sessions`](super::super::SqliteStore::open_sessions).
    pub fn open_sessions(&self, now: Timestamp) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = self
            .conn()
            .query(user_sql::OPEN_SESSIONS, &[&millis_to_sql(now)])
            .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| {
                let n: i64 = r.get(1);
                (r.get(0), u64::try_from(n).unwrap_or(0))
            })
            .collect())
    }

    /// Like [`SqliteStore::put_ivr_version`](super::super::SqliteStore::put_ivr_version).
    pub fn put_ivr_version(
        &self,
        name: &str,
        version: u32,
        tree_json: &str,
        created_at: Timestamp,
        by: &IvrAuthor,
    ) -> Result<(), StoreError> {
        let n = self
            .conn()
            .execute(
                "INSERT INTO ivr_versions (name, version, tree, created_at, author, comment) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name, version) DO NOTHING",
                &[
                    &name,
                    &i64::from(version),
                    &tree_json,
                    &millis_to_sql(created_at),
                    &by.author,
                    &by.comment,
                ],
            )
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(StoreError::IvrVersionExists {
                name: name.to_owned(),
                version,
            });
        }
        Ok(())
    }

    /// Like [`SqliteStore::ivr_versions`](super::super::SqliteStore::ivr_versions).
    pub fn ivr_versions(&self, name: &str) -> Result<Vec<IvrVersionInfo>, StoreError> {
        let rows = self
            .conn()
            .query(
                "SELECT v.version, v.created_at, a.version, v.author, v.comment \
                 FROM ivr_versions v \
                 LEFT JOIN ivr_active a ON a.name = v.name \
                 WHERE v.name = $1 ORDER BY v.version",
                &[&name],
            )
            .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| {
                let version = version_from_sql(r.get(0));
                let active: Option<i64> = r.get(2);
                IvrVersionInfo {
                    name: name.to_owned(),
                    version,
                    created_at: super::super::codec::millis_from_sql(r.get(1)),
                    active: active.map(version_from_sql) == Some(version),
                    author: r.get(3),
                    comment: r.get(4),
                }
            })
            .collect())
    }

    /// Like [`SqliteStore::ivr_names`](super::super::SqliteStore::ivr_names).
    pub fn ivr_names(&self) -> Result<Vec<String>, StoreError> {
        let rows = self
            .conn()
            .query("SELECT DISTINCT name FROM ivr_versions ORDER BY name", &[])
            .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Like [`SqliteStore::ivr_version`](super::super::SqliteStore::ivr_version).
    pub fn ivr_version(&self, name: &str, version: u32) -> Result<Option<String>, StoreError> {
        self.conn()
            .query_opt(
                "SELECT tree FROM ivr_versions WHERE name = $1 AND version = $2",
                &[&name, &i64::from(version)],
            )
            .map(|r| r.map(|r| r.get(0)))
            .map_err(|e| self.err(e))
    }

    /// Like [`SqliteStore::set_active_ivr`](super::super::SqliteStore::set_active_ivr).
    pub fn set_active_ivr(
        &self,
        name: &str,
        version: u32,
        previous: &[u32],
    ) -> Result<(), StoreError> {
        self.with_tx(|tx| {
            let exists = tx
                .query_opt(
                    "SELECT 1 FROM ivr_versions WHERE name = $1 AND version = $2",
                    &[&name, &i64::from(version)],
                )
                .map_err(|e| self.err(e))?;
            if exists.is_none() {
                return Err(StoreError::UnknownIvrVersion {
                    name: name.to_owned(),
                    version,
                });
            }
            tx.execute(
                "INSERT INTO ivr_active (name, version, previous) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET version = excluded.version, \
                 previous = excluded.previous",
                &[&name, &i64::from(version), &previous_to_sql(previous)],
            )
            .map_err(|e| self.err(e))?;
            Ok(())
        })
    }

    /// Like [`SqliteStore::ivr_active`](super::super::SqliteStore::ivr_active).
    pub fn ivr_active(&self, name: &str) -> Result<Option<IvrActive>, StoreError> {
        let row = self
            .conn()
            .query_opt(
                "SELECT version, previous FROM ivr_active WHERE name = $1",
                &[&name],
            )
            .map_err(|e| self.err(e))?;
        Ok(row.map(|r| {
            let previous: String = r.get(1);
            IvrActive {
                version: version_from_sql(r.get(0)),
                previous: previous_from_sql(&previous),
            }
        }))
    }

    /// Like [`SqliteStore::active_ivr`](super::super::SqliteStore::active_ivr).
    pub fn active_ivr(&self, name: &str) -> Result<Option<(u32, String)>, StoreError> {
        let row = self
            .conn()
            .query_opt(
                "SELECT v.version, v.tree FROM ivr_active a \
                 JOIN ivr_versions v ON v.name = a.name AND v.version = a.version \
                 WHERE a.name = $1",
                &[&name],
            )
            .map_err(|e| self.err(e))?;
        Ok(row.map(|r| (version_from_sql(r.get(0)), r.get(1))))
    }

    /// Like [`SqliteStore::bind_number`](super::super::SqliteStore::bind_number).
    pub fn bind_number(&self, number: &str, tree: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO ivr_numbers (number, tree) VALUES ($1, $2) \
                 ON CONFLICT (number) DO UPDATE SET tree = excluded.tree",
                &[&number, &tree],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Like [`SqliteStore::unbind_number`](super::super::SqliteStore::unbind_number).
    pub fn unbind_number(&self, number: &str) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .execute("DELETE FROM ivr_numbers WHERE number = $1", &[&number])
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    /// Like [`SqliteStore::number_bindings`](super::super::SqliteStore::number_bindings).
    pub fn number_bindings(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self
            .conn()
            .query("SELECT number, tree FROM ivr_numbers ORDER BY number", &[])
            .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Like [`SqliteStore::signing_secret`](super::super::SqliteStore::signing_secret).
    pub fn signing_secret(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        let value: Option<String> = self
            .conn()
            .query_opt("SELECT value FROM secrets WHERE name = $1", &[&name])
            .map(|r| r.map(|r| r.get(0)))
            .map_err(|e| self.err(e))?;
        let corrupt = |detail: String| StoreError::Corrupt {
            path: self.target().as_path(),
            detail,
        };
        let value = value.ok_or_else(|| corrupt(format!("its secret {name:?} is missing")))?;
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, value.trim())
            .map_err(|_| corrupt(format!("its secret {name:?} is not base64")))
    }

    /// Like [`SqliteStore::view_checkpoint`](super::super::SqliteStore::view_checkpoint).
    pub fn view_checkpoint(&self, view: &str) -> Result<Option<u64>, StoreError> {
        let seq: Option<i64> = self
            .conn()
            .query_opt("SELECT seq FROM view_checkpoints WHERE view = $1", &[&view])
            .map(|r| r.map(|r| r.get(0)))
            .map_err(|e| self.err(e))?;
        Ok(seq.map(|s| s.max(0) as u64))
    }

    /// Like [`SqliteStore::set_view_checkpoint`](super::super::SqliteStore::set_view_checkpoint).
    pub fn set_view_checkpoint(&self, view: &str, seq: u64) -> Result<(), StoreError> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        self.conn()
            .execute(
                "INSERT INTO view_checkpoints (view, seq) VALUES ($1, $2) \
                 ON CONFLICT (view) DO UPDATE \
                 SET seq = GREATEST(view_checkpoints.seq, excluded.seq)",
                &[&view, &seq],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Like [`SqliteStore::is_opted_out`](super::super::SqliteStore::is_opted_out).
    pub fn is_opted_out(&self, number: &str) -> Result<bool, StoreError> {
        Ok(matches!(self.sms_opt_out(number)?, Some((true, _))))
    }

    /// Like [`SqliteStore::sms_opt_out`](super::super::SqliteStore::sms_opt_out).
    pub fn sms_opt_out(&self, number: &str) -> Result<Option<(bool, String)>, StoreError> {
        let row = self
            .conn()
            .query_opt(
                "SELECT opted_out, message FROM sms_opt_out WHERE number = $1",
                &[&number],
            )
            .map_err(|e| self.err(e))?;
        Ok(row.map(|r| {
            let opted: i64 = r.get(0);
            (opted != 0, r.get(1))
        }))
    }

    /// Like [`SqliteStore::set_sms_opt_out`](super::super::SqliteStore::set_sms_opt_out).
    pub fn set_sms_opt_out(
        &self,
        number: &str,
        opted_out: bool,
        at: Timestamp,
        message: &str,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO sms_opt_out (number, opted_out, changed_at, message) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (number) DO UPDATE SET \
                 opted_out = excluded.opted_out, changed_at = excluded.changed_at, \
                 message = excluded.message",
                &[&number, &i64::from(opted_out), &millis_to_sql(at), &message],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}

/// A version number as stored (a `BIGINT` holding a `u32`).
fn version_from_sql(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

impl PgStore {
    /// Like [`SqliteStore::put_voice_sessions`](super::super::SqliteStore::put_voice_sessions).
    pub fn put_voice_sessions(
        &self,
        batch: &[(String, Option<String>)],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let at = millis_to_sql(at);
        self.with_tx(|tx| {
            for (call, state) in batch {
                match state {
                    Some(state) => tx.execute(voice_sql::PUT, &[call, state, &at]),
                    None => tx.execute(voice_sql::DELETE, &[call]),
                }
                .map_err(|e| self.err(e))?;
            }
            Ok(())
        })
    }

    /// Like [`SqliteStore::voice_session`](super::super::SqliteStore::voice_session).
    pub fn voice_session(&self, call: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_opt(voice_sql::GET, &[&call])
            .map_err(|e| self.err(e))?
            .map(|r| r.get(0)))
    }

    /// Like [`SqliteStore::sweep_voice_sessions`](super::super::SqliteStore::sweep_voice_sessions).
    pub fn sweep_voice_sessions(&self, before: Timestamp) -> Result<usize, StoreError> {
        let n = self
            .conn()
            .execute(voice_sql::SWEEP, &[&millis_to_sql(before)])
            .map_err(|e| self.err(e))?;
        Ok(n as usize)
    }
}
