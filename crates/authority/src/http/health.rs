//! `GET /healthz` (the process runs) and `GET /readyz` (its stores answer).

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::authority::Authority;
use crate::error::ApiError;

pub fn router() -> Router<Arc<Authority>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(authority): State<Arc<Authority>>) -> Result<Json<Value>, ApiError> {
    let size = tokio::task::spawn_blocking(move || authority.log().size())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(Json(json!({"status": "ready", "log_size": size})))
}
