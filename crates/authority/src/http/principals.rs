//! `POST /v1/principals` and `GET /v1/principals` (admins).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::authorize::now;
use super::json::StrictJson;
use super::openapi::ErrorBody;
use crate::authority::Authority;
use crate::error::ApiError;
use crate::principals::{PrincipalRequest, PrincipalResponse, PrincipalsResponse};

pub fn router() -> OpenApiRouter<Arc<Authority>> {
    OpenApiRouter::new().routes(routes!(list, register))
}

/// Registers a principal; its bearer token is in the answer, once (admins).
#[utoipa::path(
    post,
    path = "/v1/principals",
    tag = "admin",
    request_body = PrincipalRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The principal and its token", body = PrincipalResponse),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "The caller's role may not do this", body = ErrorBody)
    )
)]
async fn register(
    State(authority): State<Arc<Authority>>,
    Caller(caller): Caller,
    StrictJson(request): StrictJson<PrincipalRequest>,
) -> Result<Json<PrincipalResponse>, ApiError> {
    let now = now()?;
    let response =
        super::blocking(move || authority.register_principal(&caller, &request, now)).await?;
    Ok(Json(response))
}

/// Every principal, by name; tokens are never shown again (admins).
#[utoipa::path(
    get,
    path = "/v1/principals",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The principals", body = PrincipalsResponse),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "The caller's role may not do this", body = ErrorBody)
    )
)]
async fn list(
    State(authority): State<Arc<Authority>>,
    Caller(caller): Caller,
) -> Result<Json<PrincipalsResponse>, ApiError> {
    let response = super::blocking(move || authority.list_principals(&caller)).await?;
    Ok(Json(response))
}
