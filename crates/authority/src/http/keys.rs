//! `GET /.well-known/jwks.json` (the keys gates pin), and for admins `GET /v1/keys` and
//! `POST /v1/keys/rotate`.

use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;

use super::auth::Caller;
use super::authorize::now;
use super::json::StrictJson;
use super::openapi::ErrorBody;
use crate::authority::Authority;
use crate::error::ApiError;
use crate::keys::{KeysResponse, RotateResponse};

pub fn router() -> OpenApiRouter<Arc<Authority>> {
    OpenApiRouter::new()
        .routes(routes!(jwks))
        .routes(routes!(list))
        .routes(routes!(rotate))
}

/// The writ-signing keys gates pin (RFC 7517): announced, active and retiring ones.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "service",
    responses((status = 200, description = "JWK set", body = Object, content_type = "application/jwk-set+json"))
)]
async fn jwks(State(authority): State<Arc<Authority>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/jwk-set+json")],
        authority.keys().to_jwks_json(),
    )
}

/// Every signing key and its state (admins).
#[utoipa::path(
    get,
    path = "/v1/keys",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Keys, oldest activation first", body = KeysResponse),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "The caller's role may not do this", body = ErrorBody),
        (status = 429, description = "Over the caller's rate limit", body = ErrorBody),
        (status = 503, description = "A store is unavailable or the request timed out", body = ErrorBody)
    )
)]
async fn list(
    State(authority): State<Arc<Authority>>,
    Caller(caller): Caller,
) -> Result<Json<KeysResponse>, ApiError> {
    Ok(Json(authority.key_states(&caller, now()?)?))
}

/// A rotation takes no parameters; the body is `{}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateRequest {}

/// Adds a new signing key (admins): published now, signing after the announcement period;
/// the key it supersedes leaves the JWKS once its last writ expired.
#[utoipa::path(
    post,
    path = "/v1/keys/rotate",
    tag = "admin",
    request_body(content = Object, description = "`{}`"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new key", body = RotateResponse),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "The caller's role may not do this", body = ErrorBody),
        (status = 429, description = "Over the caller's rate limit", body = ErrorBody),
        (status = 503, description = "A store is unavailable or the request timed out", body = ErrorBody)
    )
)]
async fn rotate(
    State(authority): State<Arc<Authority>>,
    Caller(caller): Caller,
    StrictJson(RotateRequest {}): StrictJson<RotateRequest>,
) -> Result<Json<RotateResponse>, ApiError> {
    let now = now()?;
    let response = super::blocking(move || authority.rotate_key(&caller, now)).await?;
    Ok(Json(response))
}
