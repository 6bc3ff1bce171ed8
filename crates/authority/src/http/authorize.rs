//! `POST /v1/authorize`.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};

use super::auth::Caller;
use super::json::StrictJson;
use crate::authority::{Authority, AuthorizeRequest, AuthorizeResponse};
use crate::error::ApiError;

pub fn router() -> Router<Arc<Authority>> {
    Router::new().route("/v1/authorize", post(authorize))
}

async fn authorize(
    State(authority): State<Arc<Authority>>,
    Caller(caller): Caller,
    StrictJson(request): StrictJson<AuthorizeRequest>,
) -> Result<Json<AuthorizeResponse>, ApiError> {
    let now = now()?;
    let started = std::time::Instant::now();
    let task = authority.clone();
    let response = super::blocking(move || task.authorize(&caller, &request, now)).await?;
    let decision = match response.decision {
        crate::authority::Outcome::Permit => "permit",
        crate::authority::Outcome::Deny => "deny",
    };
    authority.metrics().decision(
        "authorize",
        decision,
        response.reasons.iter().map(|r| r.code()),
        started.elapsed().as_secs_f64(),
    );
    Ok(Json(response))
}

pub(super) fn now() -> Result<u64, ApiError> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| ApiError::Internal("clock before 1970".into()))
}
