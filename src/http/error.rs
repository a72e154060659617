//! The one conversion of errors into HTTP responses for the listener's routes: a refusal the
//! caller can fix keeps its words and its 4xx code; an overloaded or stopping engine is a 503
//! with `Retry-After`; anything else is a 500 naming an error id, the details being in the log
//! under that id (never in the response).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::engine::EngineError;
use crate::store::StoreError;

/// Why a request was not served.
#[derive(Debug)]
pub enum HttpError {
    /// The caller can fix it: the status and what to fix (bounded text, never echoing input).
    Refused(StatusCode, String),
    /// Retry later (the engine is overloaded or stopping).
    Unavailable(String),
    /// Not the caller's doing: the error id under which the details were logged.
    Internal(String),
}

impl HttpError {
    /// An internal failure of `what`: logged with its details, answered with an id only.
    pub fn internal(what: &str, error: &dyn std::fmt::Display) -> HttpError {
        HttpError::Internal(crate::obs::errors::log_internal(what, error))
    }
}

impl From<EngineError> for HttpError {
    fn from(error: EngineError) -> HttpError {
        match error {
            EngineError::Overloaded => {
                HttpError::Unavailable("the server is overloaded: retry shortly".to_owned())
            }
            EngineError::Stopped => {
                HttpError::Unavailable("the server is stopping: retry shortly".to_owned())
            }
            EngineError::Route(e) => HttpError::Refused(StatusCode::CONFLICT, e.to_string()),
            other => HttpError::internal("engine", &other),
        }
    }
}

impl From<StoreError> for HttpError {
    fn from(error: StoreError) -> HttpError {
        HttpError::internal("store", &error)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        match self {
            HttpError::Refused(status, message) => (status, message + "\n").into_response(),
            HttpError::Unavailable(message) => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "1")],
                message + "\n",
            )
                .into_response(),
            HttpError::Internal(id) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "internal error {id}: the server log holds the details under this id; retry, \
                     or give the id to the operator\n"
                ),
            )
                .into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_answer_an_id_and_no_details() {
        let response = HttpError::internal("a read", &"/secret/path/guichet.db").into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let overloaded = HttpError::from(EngineError::Overloaded).into_response();
        assert_eq!(overloaded.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(overloaded.headers().contains_key(header::RETRY_AFTER));
    }
}
