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
        .route("/metrics", get(metrics))
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(authority): State<Arc<Authority>>) -> Result<Json<Value>, ApiError> {
    let size = super::blocking(move || Ok(authority.log().size()?)).await?;
    Ok(Json(json!({"status": "ready", "log_size": size})))
}

async fn metrics(
    State(authority): State<Arc<Authority>>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let task = authority.clone();
    let size = super::blocking(move || Ok(task.log().size()?)).await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        authority.metrics().render(size),
    ))
}
