//! `POST /v1/consume` (executors) and `POST /v1/revocations` (admins).

use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::extract::State;
use axum::Json;

use super::auth::Caller;
use super::authorize::now;
use super::json::StrictJson;
use super::openapi::ErrorBody;
use crate::authority::Authority;
use crate::consume::{ConsumeRequest, ConsumeResponse};
use crate::error::ApiError;
use crate::revoke::{RevokeRequest, RevokeResponse};

pub fn router() -> OpenApiRouter<Arc<Authority>> {
    OpenApiRouter::new()
        .routes(routes!(consume))
        .routes(routes!(revoke))
}

/// Consumes one use of a writ (executors): full verification, proof of possession when the
/// writ binds a key, then revocation check and the atomic mark in one durable transaction.
/// The answer is signed and echoes the gate's nonce.
#[utoipa::path(
    post,
    path = "/v1/consume",
    tag = "writs",
    request_body = ConsumeRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Permit or deny with its code, signed", body = ConsumeResponse),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "The caller's role may not do this", body = ErrorBody),
        (status = 429, description = "Over the caller's rate limit", body = ErrorBody),
        (status = 503, description = "A store is unavailable or the request timed out", body = ErrorBody)
    )
)]
async fn consume(
    State(authority): State<Arc<Authority>>,
    Caller(caller): Caller,
    StrictJson(request): StrictJson<ConsumeRequest>,
) -> Result<Json<ConsumeResponse>, ApiError> {
    let now = now()?;
    let started = std::time::Instant::now();
    let task = authority.clone();
    let response = super::blocking(move || task.consume(&caller, &request, now)).await?;
    authority.metrics().decision(
        "consume",
        &response.decision,
        response.code.as_deref(),
        started.elapsed().as_secs_f64(),
    );
    Ok(Json(response))
}

/// Revokes a writ (and its descendants), a principal, a signing key, or a policy digest
/// (admins). It holds from the moment it commits.
#[utoipa::path(
    post,
    path = "/v1/revocations",
    tag = "admin",
    request_body = RevokeRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The revocation's log index", body = RevokeResponse),
        (status = 404, description = "No such signing key", body = ErrorBody),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "The caller's role may not do this", body = ErrorBody),
        (status = 429, description = "Over the caller's rate limit", body = ErrorBody),
        (status = 503, description = "A store is unavailable or the request timed out", body = ErrorBody)
    )
)]
async fn revoke(
    State(authority): State<Arc<Authority>>,
    Caller(caller): Caller,
    StrictJson(request): StrictJson<RevokeRequest>,
) -> Result<Json<RevokeResponse>, ApiError> {
    let now = now()?;
    let response = super::blocking(move || authority.revoke(&caller, &request, now)).await?;
    Ok(Json(response))
}
