//! `GET /healthz` (the process runs) and `GET /readyz` (its stores answer).

use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::openapi::ErrorBody;
use crate::authority::Authority;
use crate::error::ApiError;

pub fn router() -> OpenApiRouter<Arc<Authority>> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// The process runs.
#[utoipa::path(get, path = "/healthz", tag = "service", responses((status = 200, description = "`{\"status\":\"ok\"}`", body = Object)))]
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The stores answer (the log is readable).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "service",
    responses(
        (status = 200, description = "`{\"status\":\"ready\",\"log_size\":N}`", body = Object),
        (status = 503, description = "A store is unavailable", body = ErrorBody)
    )
)]
async fn readyz(State(authority): State<Arc<Authority>>) -> Result<Json<Value>, ApiError> {
    let size = super::blocking(move || Ok(authority.log().size()?)).await?;
    Ok(Json(json!({"status": "ready", "log_size": size})))
}

/// Prometheus metrics: decisions by outcome, denial codes, latencies, log size.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    responses((status = 200, description = "OpenMetrics text", body = String, content_type = "application/openmetrics-text"))
)]
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
