//! The OpenAPI document: the routes describe themselves (`#[utoipa::path]` on each handler,
//! collected by `utoipa_axum::routes!` as the router is built), so the document cannot miss a
//! route or describe one that is not served.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// What every error answer looks like.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// A stable code (`unauthenticated`, `forbidden`, `bad_request`, `not_found`,
/// `conflict`, `payload_too_large`, the approval refusals of docs/approvals.md, `rate_limited`, `timeout`, `unavailable`, `internal`) and a message
/// for people.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    code: String,
    message: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "writ authority",
        description = "Pre-execution authorization: agents ask for writs, gates consume them, \
                       everything is logged. Callers authenticate with a bearer token; the \
                       principal is always the token's, never a field of the body."
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody, ErrorDetail)),
    tags(
        (name = "writs", description = "Authorization and consumption"),
        (name = "approvals", description = "Requests pending human approval"),
        (name = "admin", description = "Policy, keys and revocation (admin role)"),
        (name = "log", description = "The transparency log (no authentication)"),
        (name = "service", description = "Health, readiness, metrics and keys")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}
