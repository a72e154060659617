//! The `Sessions` service: people sign in (no credential needed for that one call), sign out,
//! and ask who they are. Not behind the [`Auth`] interceptor: `SignOut` and `WhoAmI`
//! authenticate their metadata themselves, with the same rules.

use tonic::{Request, Response, Status};

use super::auth::Auth;
use super::proto as pb;
use crate::signin::SignIns;

/// The `Sessions` gRPC service.
#[derive(Debug, Clone)]
pub struct SessionsService {
    signins: SignIns,
    auth: Auth,
}

impl SessionsService {
    /// Sign-ins through `signins`, sessions checked by `auth`.
    pub fn new(signins: SignIns, auth: Auth) -> Self {
        SessionsService { signins, auth }
    }
}

fn who(
    login: &str,
    name: &str,
    role: crate::store::Role,
    agent: Option<&crate::core::AgentId>,
    expires: Option<u64>,
) -> pb::WhoAmIResponse {
    pb::WhoAmIResponse {
        login: login.to_owned(),
        name: name.to_owned(),
        role: role.as_str().to_owned(),
        agent_id: agent.map(|a| a.as_str().to_owned()).unwrap_or_default(),
        expires_unix_ms: expires.map_or(0, |e| i64::try_from(e).unwrap_or(i64::MAX)),
        credential: if expires.is_some() {
            "session"
        } else {
            "token"
        }
        .to_owned(),
    }
}

#[tonic::async_trait]
impl pb::sessions_server::Sessions for SessionsService {
    async fn sign_in(
        &self,
        request: Request<pb::SignInRequest>,
    ) -> Result<Response<pb::SignInResponse>, Status> {
        let address = request.remote_addr().map(|a| a.ip());
        let body = request.get_ref();
        let now = crate::engine::Clock::now(&crate::engine::SystemClock);
        let (token, session, user) = self
            .signins
            .sign_in(&body.login, &body.password, address, now)
            .await?;
        Ok(Response::new(pb::SignInResponse {
            session: token,
            who: Some(who(
                &user.login,
                &user.name,
                session.role,
                session.agent.as_ref(),
                Some(session.expires_at.as_millis()),
            )),
        }))
    }

    async fn sign_out(
        &self,
        request: Request<pb::SignOutRequest>,
    ) -> Result<Response<pb::SignOutResponse>, Status> {
        let ended = match self.auth.authenticate(request.metadata()) {
            Ok((caller, credential)) => {
                let ended = credential.end_session()?;
                if ended {
                    tracing::info!(login = %caller.label, session = %caller.token_id, "signed out");
                }
                ended
            }
            // Signing out with a session that already ended is harmless.
            Err(status) if status.code() == tonic::Code::Unauthenticated => false,
            Err(status) => return Err(status),
        };
        Ok(Response::new(pb::SignOutResponse { ended }))
    }

    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let (caller, credential) = self.auth.authenticate(request.metadata())?;
        let name = if credential.is_session() {
            let signins = self.signins.clone();
            let login = caller.label.clone();
            tokio::task::spawn_blocking(move || signins.user(&login))
                .await
                .ok()
                .flatten()
                .map(|u| u.name)
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(who(
            &caller.label,
            &name,
            caller.role,
            caller.agent.as_ref(),
            caller.expires_unix_ms,
        )))
    }
}
