//! `GET /.well-known/jwks.json`: the keys gates pin.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::authority::Authority;

pub fn router() -> Router<Arc<Authority>> {
    Router::new().route("/.well-known/jwks.json", get(jwks))
}

async fn jwks(State(authority): State<Arc<Authority>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/jwk-set+json")],
        authority.keys().to_jwks_json(),
    )
}
