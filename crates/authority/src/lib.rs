//! writ-authority owns the service agents ask before they act: it authenticates the caller,
//! asks the policy, signs a writ, appends the decision to the transparency log and only
//! then answers.
//!
//! [`Authority`] holds the state ([`AuthorityConfig`], the issuer key, principals, policy,
//! log); [`router`] is the axum `Router` over it, one module per resource under `http/`.
//! The pipeline itself ([`Authority::authorize`]) is plain code, testable without HTTP. Most
//! people want `writ serve` instead.
//!
//! No cargo features.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod approvals;
mod authority;
mod config;
mod consume;
mod delegation;
mod error;
mod http;
mod keyring;
mod keys;
mod metrics;
mod policy;
mod preview;
mod principals;
mod receipts;
mod revoke;

pub use approvals::{
    ApprovalRefusal, ApprovalSubmission, ApprovalView, RequestView, RequestsResponse,
};
pub use authority::{Authority, AuthorizeRequest, AuthorizeResponse, Outcome, Stores};
pub use config::AuthorityConfig;
pub use consume::{ConsumeRequest, ConsumeResponse};
pub use error::ApiError;
pub use http::router;
pub use keyring::KeyState;
pub use keys::{upkeep, KeysResponse, RotateResponse};
pub use policy::{ApplyResponse, PolicyRequest, PolicyResponse};
pub use preview::PreviewResponse;
pub use principals::{PrincipalRequest, PrincipalResponse, PrincipalsResponse};
pub use receipts::{ReceiptRequest, ReceiptResponse};
pub use revoke::{RevokeRequest, RevokeResponse};
