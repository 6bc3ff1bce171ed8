//! `POST /v1/receipts` (executors): a signed execution receipt, logged.

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
use crate::receipts::{ReceiptRequest, ReceiptResponse};

pub fn router() -> OpenApiRouter<Arc<Authority>> {
    OpenApiRouter::new().routes(routes!(record))
}

/// Logs an execution receipt signed by the executor key (executors).
#[utoipa::path(
    post,
    path = "/v1/receipts",
    tag = "writs",
    request_body = ReceiptRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The receipt's log index", body = ReceiptResponse),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "The caller's role may not do this", body = ErrorBody),
        (status = 429, description = "Over the caller's rate limit", body = ErrorBody),
        (status = 503, description = "A store is unavailable or the request timed out", body = ErrorBody)
    )
)]
async fn record(
    State(authority): State<Arc<Authority>>,
    Caller(caller): Caller,
    StrictJson(request): StrictJson<ReceiptRequest>,
) -> Result<Json<ReceiptResponse>, ApiError> {
    let now = now()?;
    let response =
        super::blocking(move || authority.record_receipt(&caller, &request, now)).await?;
    Ok(Json(response))
}
