//! The HTTP interface: one module per resource, each with its `router()`.

mod auth;
mod authorize;
mod consume;
mod health;
mod json;
mod keys;
mod limits;
mod log;
mod openapi;
mod policy;
mod principals;
mod receipts;
mod requests;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::routing::get;
use axum::{middleware, Extension, Router};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::authority::Authority;
use crate::error::ApiError;

/// The whole service over `authority`, bounded as its configuration says: bodies up to
/// `max_body_bytes` (413 past it), `request_timeout_ms` per request (503 `timeout` past it)
/// and `rate_limit_per_sec` per authenticated principal (429 `rate_limited` past it).
pub fn router(authority: Arc<Authority>) -> Router {
    let config = authority.config();
    let max_body = config.max_body_bytes;
    let timeout = Duration::from_millis(config.request_timeout_ms);
    let limiter = Arc::new(limits::RateLimiter::new(
        config.rate_limit_per_sec,
        config.rate_limit_burst,
    ));
    let (routes, api) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(authorize::router())
        .merge(consume::router())
        .merge(keys::router())
        .merge(log::router())
        .merge(health::router())
        .merge(policy::router())
        .merge(receipts::router())
        .merge(principals::router())
        .merge(requests::router())
        .split_for_parts();
    // Serialized once: the document is fixed for the life of the process.
    let api: Arc<str> = api.to_json().unwrap_or_default().into();
    routes
        .route(
            "/openapi.json",
            get(move || async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    api.to_string(),
                )
            }),
        )
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(max_body, limits::limit_body))
        // Outside the body limit, so a slow upload counts against the timeout too.
        .layer(middleware::from_fn_with_state(timeout, limits::timeout))
        .layer(middleware::from_fn_with_state(
            authority.clone(),
            observe_forbidden,
        ))
        // The `Caller` extractor takes its tokens from here.
        .layer(Extension(limiter))
        .with_state(authority)
}

/// Wrong-role calls go to the metrics and the service log (never to the transparency log,
/// which holds governance events only).
async fn observe_forbidden(
    axum::extract::State(authority): axum::extract::State<Arc<Authority>>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if response.status() == axum::http::StatusCode::FORBIDDEN {
        authority.metrics().forbidden();
        tracing::warn!(%path, "forbidden: the caller's role may not do this");
    }
    response
}

/// Seconds since the Unix epoch, by the system clock.
pub(crate) fn unix_now() -> Result<u64, ApiError> {
    authorize::now()
}

/// Runs store work (SQLite, the log writer) off the async executor; a panicked or cancelled
/// task is an internal error, never an answer.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
}
