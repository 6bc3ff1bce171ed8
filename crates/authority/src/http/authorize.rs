//! `POST /v1/authorize`.

use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::auth::Caller;
use super::json::StrictJson;
use super::openapi::ErrorBody;
use crate::authority::{Authority, AuthorizeRequest, AuthorizeResponse};
use crate::error::ApiError;

pub fn router() -> OpenApiRouter<Arc<Authority>> {
    OpenApiRouter::new()
        .routes(routes!(authorize))
        .routes(routes!(preview))
}

/// Asks for a writ. The decision is logged durably before the answer; a permit carries the
/// writ, a deny names why.
#[utoipa::path(
    post,
    path = "/v1/authorize",
    tag = "writs",
    request_body = AuthorizeRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The decision (permit or deny) and its log index", body = AuthorizeResponse),
        (status = 202, description = "Pending approval: wait on `GET /v1/requests/{request_id}`", body = AuthorizeResponse),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "The caller's role may not do this", body = ErrorBody),
        (status = 429, description = "Over the caller's rate limit", body = ErrorBody),
        (status = 503, description = "A store is unavailable or the request timed out", body = ErrorBody)
    )
)]
async fn authorize(
    State(authority): State<Arc<Authority>>,
    Caller(caller): Caller,
    StrictJson(request): StrictJson<AuthorizeRequest>,
) -> Result<(StatusCode, Json<AuthorizeResponse>), ApiError> {
    let now = now()?;
    let started = std::time::Instant::now();
    // Policy and signing are CPU work of tens of microseconds: they run here, and the wait for
    // the decision's group commit holds no thread (a blocking pool would grow with the load).
    let response = if authority.is_shared() {
        // On PostgreSQL the decision reads the database (audience, lineage) and waits for
        // the cluster's log: all of it on the blocking pool, none on the async workers.
        let a = authority.clone();
        super::blocking(move || a.authorize(&caller, &request, now)).await?
    } else {
        authority.authorize_async(&caller, &request, now).await?
    };
    let decision = match response.decision {
        crate::authority::Outcome::Permit => "permit",
        crate::authority::Outcome::Deny => "deny",
        crate::authority::Outcome::Pending => "pending",
    };
    authority.metrics().decision(
        "authorize",
        decision,
        response.reasons.iter().map(|r| r.code()),
        started.elapsed().as_secs_f64(),
    );
    let status = match response.decision {
        crate::authority::Outcome::Pending => StatusCode::ACCEPTED,
        _ => StatusCode::OK,
    };
    Ok((status, Json(response)))
}

pub(super) fn now() -> Result<u64, ApiError> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| ApiError::Internal("clock before 1970".into()))
}

/// What policy would decide for this request, without deciding: nothing is issued, signed
/// or logged. For showing an agent what it could do; every real call is authorized itself.
#[utoipa::path(
    post,
    path = "/v1/authorize/preview",
    tag = "writs",
    request_body = AuthorizeRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "permit, pending or deny, and why", body = crate::preview::PreviewResponse),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "The caller's role may not do this", body = ErrorBody),
        (status = 429, description = "Over the caller's rate limit", body = ErrorBody)
    )
)]
async fn preview(
    State(authority): State<Arc<Authority>>,
    Caller(caller): Caller,
    StrictJson(request): StrictJson<AuthorizeRequest>,
) -> Result<Json<crate::preview::PreviewResponse>, ApiError> {
    Ok(Json(authority.preview(&caller, &request)?))
}
