//! The gRPC services (`AgentDesktop`, `Supervisor`, `Interactions`): thin tonic handlers that
//! authenticate ([`auth`]), translate and validate requests into core commands ([`convert`]), and
//! send them to the engine. [`serve`] puts them, gRPC health checking and server reflection on
//! one listener.

pub mod auth;
pub mod calls;
pub mod conversation;
pub mod convert;
pub mod desktop;
pub mod history;
pub mod interactions;
pub mod ivr;
pub mod proto;
pub mod server;
pub mod stats;
pub mod supervisor;

pub use server::{serve, ServeOptions};
