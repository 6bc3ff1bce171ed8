//! Authentication as an extractor: a handler's caller can only come from here.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use writ_store::Principal;

use crate::authority::Authority;
use crate::error::ApiError;

/// The authenticated caller (`Authorization: Bearer <token>`).
pub struct Caller(pub Principal);

impl FromRequestParts<Arc<Authority>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        authority: &Arc<Authority>,
    ) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            tracing::warn!(path = %parts.uri.path(), "unauthenticated request: no bearer token");
            authority.metrics().unauthenticated();
            return Err(ApiError::Unauthenticated);
        };
        let task = authority.clone();
        let token = token.to_owned();
        let found = super::blocking(move || task.authenticate(&token)).await?;
        match found {
            Some(principal) => Ok(Caller(principal)),
            None => {
                tracing::warn!(path = %parts.uri.path(), "unauthenticated request: unknown or disabled token");
                authority.metrics().unauthenticated();
                Err(ApiError::Unauthenticated)
            }
        }
    }
}
