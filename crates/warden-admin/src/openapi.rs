//! The OpenAPI document, generated from the handlers' annotations.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::Paths;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Warden admin API",
        description = "Manage orgs, servers, grants, teams, keys, end users, agents, toolsets, scopes and limits of a Warden MCP gateway. Errors are always `{\"error\": {\"code\", \"message\", \"details\"}}`. Every write answers with the new policy `revision`; add `?wait=propagated` to wait until every replica applied it.",
        version = "1"
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "orgs"), (name = "admin", description = "Admin identities"), (name = "servers"),
        (name = "grants", description = "Which servers an org may use"), (name = "teams"),
        (name = "agents"), (name = "end users"), (name = "toolsets"), (name = "keys"),
        (name = "scopes", description = "Scopes of teams, keys, end users and agents, and their pickers"),
        (name = "limits", description = "Quotas and rate limits (configuration; the data plane enforces them)"),
        (name = "inspect", description = "Explain, replicas, audit log"),
    )
)]
struct ApiDoc;

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

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(Paths::openapi());
    doc.merge(crate::limit_routes::LimitPaths::openapi());
    doc.merge(crate::credential_routes::CredentialPaths::openapi());
    doc.merge(crate::idp_routes::IdentityProviderPaths::openapi());
    doc.merge(crate::idp_new_user_scope::NewUserScopePaths::openapi());
    doc
}

/// The document as JSON text.
pub fn openapi_json() -> String {
    // Serializing a document built from static annotations cannot fail.
    document()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

pub(crate) async fn serve() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], openapi_json())
}
