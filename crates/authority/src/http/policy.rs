//! `GET /v1/policy` and `PUT /v1/policy` (admins): the policy set in force, and applying one.

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
use crate::error::ApiError;
use crate::policy::{ApplyResponse, PolicyRequest, PolicyResponse};

pub fn router() -> OpenApiRouter<Arc<Authority>> {
    OpenApiRouter::new().routes(routes!(show, apply))
}

/// The policy set in force, its text, and the retired digests (admins).
#[utoipa::path(
    get,
    path = "/v1/policy",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The policy set in force", body = PolicyResponse),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "The caller's role may not do this", body = ErrorBody),
        (status = 429, description = "Over the caller's rate limit", body = ErrorBody),
        (status = 503, description = "A store is unavailable or the request timed out", body = ErrorBody)
    )
)]
async fn show(
    State(authority): State<Arc<Authority>>,
    Caller(caller): Caller,
) -> Result<Json<PolicyResponse>, ApiError> {
    Ok(Json(authority.show_policy(&caller)?))
}

/// Validates a policy set and puts it in force atomically, logging its digest and full text
/// (admins). A set that does not validate changes nothing.
#[utoipa::path(
    put,
    path = "/v1/policy",
    tag = "admin",
    request_body = PolicyRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The digest now in force", body = ApplyResponse),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "The caller's role may not do this", body = ErrorBody),
        (status = 429, description = "Over the caller's rate limit", body = ErrorBody),
        (status = 503, description = "A store is unavailable or the request timed out", body = ErrorBody)
    )
)]
async fn apply(
    State(authority): State<Arc<Authority>>,
    Caller(caller): Caller,
    StrictJson(request): StrictJson<PolicyRequest>,
) -> Result<Json<ApplyResponse>, ApiError> {
    let now = now()?;
    let response = super::blocking(move || authority.apply_policy(&caller, &request, now)).await?;
    Ok(Json(response))
}
