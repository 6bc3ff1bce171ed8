//! `GET /v1/requests`, `GET /v1/requests/{id}` (long poll) and
//! `POST /v1/requests/{id}/approvals`: requests pending human approval.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::json::StrictJson;
use super::openapi::ErrorBody;
use super::{blocking, unix_now};
use crate::approvals::{ApprovalSubmission, RequestView, RequestsResponse};
use crate::authority::Authority;
use crate::error::ApiError;

/// The longest a long poll waits, whatever it asks (and never past the request timeout).
const MAX_WAIT: Duration = Duration::from_secs(60);

pub fn router() -> OpenApiRouter<Arc<Authority>> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_request))
        .routes(routes!(approve))
}

/// Pending requests with their exact terms (approvers and admins).
#[utoipa::path(
    get,
    path = "/v1/requests",
    tag = "approvals",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Pending requests, oldest first", body = RequestsResponse),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Not an approver or admin", body = ErrorBody)
    )
)]
async fn list(
    State(authority): State<Arc<Authority>>,
    Caller(caller): Caller,
) -> Result<Json<RequestsResponse>, ApiError> {
    let now = unix_now()?;
    Ok(Json(
        blocking(move || authority.pending_requests(&caller, now)).await?,
    ))
}

/// How long to wait for a pending request to settle.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct Wait {
    /// Seconds to wait while the request is pending (at most 60, and less than the
    /// authority's request timeout); 0 or absent answers at once.
    #[serde(default)]
    wait: Option<u64>,
}

/// One request (its requester, approvers, admins); the writ only to its requester. With
/// `wait`, answers as soon as the request is settled or the wait runs out.
#[utoipa::path(
    get,
    path = "/v1/requests/{id}",
    tag = "approvals",
    params(("id" = String, Path, description = "The request id"), Wait),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The request as it stands", body = RequestView),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Neither its requester nor an approver or admin", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody)
    )
)]
async fn get_request(
    State(authority): State<Arc<Authority>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Query(wait): Query<Wait>,
) -> Result<Json<RequestView>, ApiError> {
    // Leave room under the request timeout, so a long poll ends with an answer, not a 503.
    let timeout = Duration::from_millis(authority.config().request_timeout_ms);
    let room = timeout.saturating_sub(Duration::from_millis(500));
    let limit = Duration::from_secs(wait.wait.unwrap_or(0))
        .min(MAX_WAIT)
        .min(room);
    let deadline = Instant::now() + limit;
    let mut settled = authority.watch_settled();
    loop {
        settled.borrow_and_update();
        let (a, c, i) = (authority.clone(), caller.clone(), id.clone());
        let now = unix_now()?;
        let view = blocking(move || a.request_view(&c, &i, now)).await?;
        let left = deadline.saturating_duration_since(Instant::now());
        if view.state != "pending" || left.is_zero() {
            return Ok(Json(view));
        }
        // Woken by any settlement, or after a second at most (expiry is by the clock).
        let nap = left.min(Duration::from_secs(1));
        let _ = tokio::time::timeout(nap, settled.changed()).await;
    }
}

/// Approves or rejects a pending request with the approver's signed object. At quorum the
/// policy is evaluated again and the writ issued; one rejection ends the request.
#[utoipa::path(
    post,
    path = "/v1/requests/{id}/approvals",
    tag = "approvals",
    params(("id" = String, Path, description = "The request id")),
    request_body = ApprovalSubmission,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The request after the vote", body = RequestView),
        (status = 400, description = "Malformed approval object", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`, `self_approval`, `not_an_approver`, `no_approval_key`", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "`duplicate_approval`, `request_closed`", body = ErrorBody),
        (status = 422, description = "`request_mismatch`, `wrong_authority`, `approval_expired`, `invalid_signature`", body = ErrorBody)
    )
)]
async fn approve(
    State(authority): State<Arc<Authority>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    StrictJson(submission): StrictJson<ApprovalSubmission>,
) -> Result<Json<RequestView>, ApiError> {
    let now = unix_now()?;
    Ok(Json(
        blocking(move || authority.vote(&caller, &id, &submission, now)).await?,
    ))
}
