//! The one conversion of Guichet's errors into gRPC statuses.
//!
//! What the caller can act on (an unknown agent, a state that forbids the action, an overloaded
//! router) is said in the status's message. What it cannot (a failed store read, a crashed
//! blocking task, a journal that cannot be replayed) becomes `INTERNAL` with an **error id**: the
//! message gives the id and nothing else, and the server logs one line at `error` level holding
//! the id and the details, so an operator finds the cause from what a user reports.

use std::fmt::Display;

use tonic::{Code, Status};

use crate::core::RouteError;
use crate::engine::EngineError;
use crate::store::StoreError;

/// An `INTERNAL` status for a failure the caller cannot fix: the details (`what` failed and
/// `error`) go to the log under a fresh error id, which is all the client is told.
pub fn internal(what: &str, error: &dyn Display) -> Status {
    let id = crate::obs::errors::log_internal(what, error);
    Status::internal(format!(
        "internal error {id}: the server log holds the details under this id; retry, or give the \
         id to the operator"
    ))
}

impl From<EngineError> for Status {
    fn from(error: EngineError) -> Status {
        match error {
            EngineError::Route(e) => Status::from(&e),
            EngineError::Overloaded => {
                let mut status = Status::unavailable(
                    "the router is overloaded: retry after a short delay (about 100 ms)",
                );
                status.metadata_mut().insert(
                    "retry-after-ms",
                    tonic::metadata::MetadataValue::from(100u32),
                );
                status
            }
            EngineError::Store(e @ StoreError::ContactHasOpenInteractions { .. }) => {
                Status::failed_precondition(format!("{e}: cancel or complete them first"))
            }
            EngineError::Stopped => Status::unavailable(
                "the server is shutting down or stopped: retry on another instance",
            ),
            other => internal("engine", &other),
        }
    }
}

impl From<StoreError> for Status {
    fn from(error: StoreError) -> Status {
        Status::from(EngineError::Store(error))
    }
}

impl From<&RouteError> for Status {
    fn from(error: &RouteError) -> Status {
        let code = match error {
            RouteError::UnknownAgent(_)
            | RouteError::UnknownQueue(_)
            | RouteError::UnknownInteraction(_) => Code::NotFound,
            RouteError::DuplicateInteraction(_) => Code::AlreadyExists,
            RouteError::InvalidLevel { .. }
            | RouteError::ChannelNotAccepted { .. }
            | RouteError::InvalidQueue { .. }
            | RouteError::UnknownWrapUpCode { .. } => Code::InvalidArgument,
            RouteError::Replay(_) => return internal("journal replay", error),
            _ => Code::FailedPrecondition,
        };
        Status::new(code, error.to_string())
    }
}

impl From<RouteError> for Status {
    fn from(error: RouteError) -> Status {
        Status::from(&error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_carry_an_id_and_no_details() {
        let status = internal("a store read", &"disk I/O error at /secret/path/guichet.db");
        assert_eq!(status.code(), Code::Internal);
        let message = status.message();
        assert!(!message.contains("/secret/path"), "{message}");
        let id = message
            .strip_prefix("internal error ")
            .and_then(|rest| rest.split(':').next())
            .expect("an id");
        assert_eq!(id.len(), 12);
        assert_ne!(internal("x", &"y").message(), message, "ids differ");
    }

    #[test]
    fn what_a_caller_can_fix_keeps_its_words() {
        let status = Status::from(EngineError::Route(RouteError::UnknownQueue("tax".into())));
        assert_eq!(status.code(), Code::NotFound);
        assert!(status.message().contains("tax"), "{}", status.message());
        let overloaded = Status::from(EngineError::Overloaded);
        assert_eq!(overloaded.code(), Code::Unavailable);
        assert!(overloaded.metadata().get("retry-after-ms").is_some());
    }
}
