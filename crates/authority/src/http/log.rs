//! The log, served: checkpoint, verifier key, proofs and entries. Public: auditors need no
//! account to check the evidence.

use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use writ_log::Proof;

use super::blocking;
use super::openapi::ErrorBody;
use crate::authority::Authority;
use crate::error::ApiError;

/// Most entries one page returns.
const MAX_PAGE: u64 = 1000;

pub fn router() -> OpenApiRouter<Arc<Authority>> {
    OpenApiRouter::new()
        .routes(routes!(checkpoint))
        .routes(routes!(vkey))
        .routes(routes!(inclusion))
        .routes(routes!(consistency))
        .routes(routes!(entries))
}

/// The latest checkpoint: a C2SP tlog-checkpoint, signed as a C2SP signed note.
#[utoipa::path(
    get,
    path = "/v1/log/checkpoint",
    tag = "log",
    responses((status = 200, description = "Signed note", body = String, content_type = "text/plain"))
)]
async fn checkpoint(
    State(authority): State<Arc<Authority>>,
) -> Result<impl IntoResponse, ApiError> {
    let note = blocking(move || Ok(authority.log().latest_checkpoint()?)).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note))
}

/// The checkpoint key, as a C2SP verifier key. Pin it out of band: a log that verifies with
/// the key it serves proves nothing.
#[utoipa::path(
    get,
    path = "/v1/log/vkey",
    tag = "log",
    responses((status = 200, description = "Verifier key", body = String, content_type = "text/plain"))
)]
async fn vkey(State(authority): State<Arc<Authority>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{}\n", authority.log().verifier_key()),
    )
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct InclusionQuery {
    index: u64,
    size: Option<u64>,
}

/// An RFC 9162 inclusion proof of entry `index` in the tree of `size` (default: current).
#[utoipa::path(
    get,
    path = "/v1/log/proof/inclusion",
    tag = "log",
    params(InclusionQuery),
    responses(
        (status = 200, description = "`{\"type\":\"inclusion\",\"tree_size\",\"leaf_index\",\"leaf_hash\",\"root_hash\",\"hashes\"}`", body = Object),
        (status = 404, description = "No such index or size", body = ErrorBody)
    )
)]
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ConsistencyQuery {
    from: u64,
    to: Option<u64>,
}

/// An RFC 9162 consistency proof from size `from` to `to` (default: current).
#[utoipa::path(
    get,
    path = "/v1/log/proof/consistency",
    tag = "log",
    params(ConsistencyQuery),
    responses(
        (status = 200, description = "`{\"type\":\"consistency\",\"size1\",\"size2\",\"root1\",\"root2\",\"hashes\"}`", body = Object),
        (status = 404, description = "No such sizes", body = ErrorBody)
    )
)]
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct EntriesQuery {
    #[serde(default)]
    from: u64,
    limit: Option<u64>,
}

/// Entries from index `from`, at most `limit` (default 100, at most 1000).
#[utoipa::path(
    get,
    path = "/v1/log/entries",
    tag = "log",
    params(EntriesQuery),
    responses((status = 200, description = "`{\"entries\":[{\"index\",\"entry\"}]}`", body = Object))
)]
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
