//! Authentication as an extractor: a handler's caller can only come from here, and only
//! within its rate limit.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use writ_store::Principal;

use super::limits::RateLimiter;
use crate::authority::Authority;
use crate::error::ApiError;

/// The authenticated caller (`Authorization: Bearer <token>`), within its rate limit.
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
        // SQLite: one indexed read (WAL: readers never wait for the writer), cheaper here than
        // a hop to the blocking pool. PostgreSQL: a network round trip, which must not hold
        // one of the few async workers while it waits.
        let found = if authority.is_shared() {
            let (a, t) = (authority.clone(), token.to_owned());
            super::blocking(move || a.authenticate(&t)).await?
        } else {
            authority.authenticate(token)?
        };
        match found {
            Some(principal) => {
                let Some(limiter) = parts.extensions.get::<Arc<RateLimiter>>() else {
                    return Err(ApiError::Internal("no rate limiter on the router".into()));
                };
                if !limiter.allow(&principal.name, Instant::now()) {
                    tracing::warn!(principal = %principal.name, path = %parts.uri.path(), "rate limited");
                    authority.metrics().rate_limited();
                    return Err(ApiError::RateLimited);
                }
                Ok(Caller(principal))
            }
            None => {
                tracing::warn!(path = %parts.uri.path(), "unauthenticated request: unknown or disabled token");
                authority.metrics().unauthenticated();
                Err(ApiError::Unauthenticated)
            }
        }
    }
}
