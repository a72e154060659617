//! The gRPC services (`AgentDesktop`, `Supervisor`, `Interactions`): thin tonic handlers that
//! authenticate ([`auth`]), translate and validate requests into core commands ([`convert`]), and
//! send them to the engine. [`crate::server::serve`] puts them, gRPC health checking and server
//! reflection on one listener, next to the HTTP and SMTP listeners.

pub mod agent_day;
pub mod auth;
pub mod bounds;
pub mod calls;
pub mod conversation;
pub mod convert;
pub mod decode;
pub mod desktop;
pub mod history;
pub mod interactions;
pub mod ivr;
pub mod limits;
pub mod proto;
pub mod sessions;
pub mod stats;
pub mod status;
pub mod supervisor;

/// The gRPC services Guichet serves, by their full names.
pub const SERVICES: [&str; 4] = [
    "guichet.v1.AgentDesktop",
    "guichet.v1.Supervisor",
    "guichet.v1.Interactions",
    "guichet.v1.Sessions",
];

/// The names gRPC health answers for: every service, and `""` for the whole server.
pub fn health_names() -> impl Iterator<Item = &'static str> {
    SERVICES.into_iter().chain([""])
}
