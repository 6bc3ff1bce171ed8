//! The HTTP interface: one module per resource, each with its `router()`.

mod auth;
mod authorize;
mod consume;
mod health;
mod json;
mod keys;
mod log;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;

use crate::authority::Authority;
use crate::error::ApiError;

/// Largest request body accepted.
const MAX_BODY: usize = 256 * 1024;

/// The whole service over `authority`.
pub fn router(authority: Arc<Authority>) -> Router {
    Router::new()
        .merge(authorize::router())
        .merge(consume::router())
        .merge(keys::router())
        .merge(log::router())
        .merge(health::router())
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(authority)
}

/// Runs store work (SQLite, the log writer) off the async executor; a panicked or cancelled
/// task is an internal error, never an answer.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
}
