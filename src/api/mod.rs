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
