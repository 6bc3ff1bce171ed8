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
