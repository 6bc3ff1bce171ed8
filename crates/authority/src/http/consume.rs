//! `POST /v1/consume` (executors) and `POST /v1/revocations` (admins).

use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};

use super::auth::Caller;
use super::authorize::now;
use super::json::StrictJson;
use crate::authority::Authority;
use crate::consume::{ConsumeRequest, ConsumeResponse};
use crate::error::ApiError;
use crate::revoke::{RevokeRequest, RevokeResponse};

pub fn router() -> Router<Arc<Authority>> {
    Router::new()
        .route("/v1/consume", post(consume))
        .route("/v1/revocations", post(revoke))
}

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

async fn revoke(
    State(authority): State<Arc<Authority>>,
    Caller(caller): Caller,
    StrictJson(request): StrictJson<RevokeRequest>,
) -> Result<Json<RevokeResponse>, ApiError> {
    let now = now()?;
    let response = super::blocking(move || authority.revoke(&caller, &request, now)).await?;
    Ok(Json(response))
}
