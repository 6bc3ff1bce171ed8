//! A JSON body extractor that refuses duplicate keys (RFC 8785 strictness) and answers with
//! `ApiError`, never axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A strictly parsed JSON body.
pub struct StrictJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for StrictJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("body: {e}")))?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ApiError::BadRequest("body is not UTF-8".into()))?;
        let value = writ_core::canonical::parse_strict(text)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let parsed =
            serde_json::from_value(value).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        Ok(StrictJson(parsed))
    }
}
