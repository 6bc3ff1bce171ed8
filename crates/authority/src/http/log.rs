//! The log, served: checkpoint, verifier key, proofs and entries. Public: auditors need no
//! account to check the evidence.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use writ_log::Proof;

use super::blocking;
use crate::authority::Authority;
use crate::error::ApiError;

/// Most entries one page returns.
const MAX_PAGE: u64 = 1000;

pub fn router() -> Router<Arc<Authority>> {
    Router::new()
        .route("/v1/log/checkpoint", get(checkpoint))
        .route("/v1/log/vkey", get(vkey))
        .route("/v1/log/proof/inclusion", get(inclusion))
        .route("/v1/log/proof/consistency", get(consistency))
        .route("/v1/log/entries", get(entries))
}

async fn checkpoint(
    State(authority): State<Arc<Authority>>,
) -> Result<impl IntoResponse, ApiError> {
    let note = blocking(move || Ok(authority.log().latest_checkpoint()?)).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note))
}

async fn vkey(State(authority): State<Arc<Authority>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{}\n", authority.log().verifier_key()),
    )
}

#[derive(Deserialize)]
struct InclusionQuery {
    index: u64,
    size: Option<u64>,
}

async fn inclusion(
    State(authority): State<Arc<Authority>>,
    Query(q): Query<InclusionQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let proof = blocking(move || Ok(authority.log().prove_inclusion(q.index, q.size)?)).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Proof::Inclusion(proof).to_json(),
    ))
}

#[derive(Deserialize)]
struct ConsistencyQuery {
    from: u64,
    to: Option<u64>,
}

async fn consistency(
    State(authority): State<Arc<Authority>>,
    Query(q): Query<ConsistencyQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let proof = blocking(move || Ok(authority.log().prove_consistency(q.from, q.to)?)).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Proof::Consistency(proof).to_json(),
    ))
}

#[derive(Deserialize)]
struct EntriesQuery {
    #[serde(default)]
    from: u64,
    limit: Option<u64>,
}

async fn entries(
    State(authority): State<Arc<Authority>>,
    Query(q): Query<EntriesQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(100).min(MAX_PAGE);
    let rows = blocking(move || Ok(authority.log().entries(q.from, limit)?)).await?;
    let entries: Vec<Value> = rows
        .into_iter()
        .map(|(index, bytes)| {
            let entry = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            json!({"index": index, "entry": entry})
        })
        .collect();
    Ok(Json(json!({"entries": entries})))
}
