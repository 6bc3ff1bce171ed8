//! One error type for every handler; internal causes are logged, never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Why a request failed before a decision could be made.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No or an unknown bearer token.
    #[error("authentication required")]
    Unauthenticated,
    /// The caller's role may not do this.
    #[error("role `{0}` may not do this")]
    Forbidden(&'static str),
    /// The body or query is not what the endpoint takes.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The thing asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A store is unreachable: nothing is issued.
    #[error("service unavailable")]
    Unavailable(String),
    /// The thing to create exists already.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request body is larger than the configured limit (bytes).
    #[error("request body over {0} bytes")]
    PayloadTooLarge(usize),
    /// The caller went over its per-principal rate limit.
    #[error("rate limit exceeded: retry later")]
    RateLimited,
    /// The request took longer than the configured timeout; nothing was issued.
    #[error("request timed out")]
    Timeout,
    /// An approval or rejection that is not taken.
    #[error(transparent)]
    Approval(#[from] crate::approvals::ApprovalRefusal),
    /// A bug or an unexpected failure.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status.
    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) | ApiError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Approval(r) => {
                StatusCode::from_u16(r.status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable code for the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::NotFound(_) => "not_found",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::RateLimited => "rate_limited",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::Conflict(_) => "conflict",
            ApiError::Timeout => "timeout",
            ApiError::Approval(r) => r.code(),
            ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = match &self {
            ApiError::Unavailable(cause) | ApiError::Internal(cause) => {
                tracing::error!(code = self.code(), %cause, "request failed");
                self.to_string()
            }
            other => other.to_string(),
        };
        (
            self.status_code(),
            Json(json!({"error": {"code": self.code(), "message": message}})),
        )
            .into_response()
    }
}

impl From<writ_store::StoreError> for ApiError {
    fn from(e: writ_store::StoreError) -> Self {
        use writ_store::StoreError as S;
        match e {
            S::OutOfRange { .. } | S::Proof(_) => ApiError::NotFound(e.to_string()),
            S::Retired(_) | S::InForce(_) | S::InvalidName(_) => {
                ApiError::BadRequest(e.to_string())
            }
            S::PrincipalExists(_) => ApiError::Conflict(e.to_string()),
            S::UnknownPrincipal(_) | S::UnknownRequest(_) => ApiError::NotFound(e.to_string()),
            S::Sqlite(_) | S::Postgres(_) | S::Writer(_) | S::Poisoned => {
                ApiError::Unavailable(e.to_string())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}
