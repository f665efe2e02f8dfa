//! Warden's admin REST API, served under `/admin/v1`.
//!
//! Platform admins manage everything; org admins only their own org, and
//! another org's objects answer 404 (existence never leaks). Every write is
//! one store transaction that bumps the policy revision, and answers only
//! once this process's live snapshot is at that revision (optionally once
//! every replica is: `?wait=propagated`). Every allow/deny the API shows
//! (pickers, grant validation, access, explain) comes from `warden-policy`.
//!
//! Paths, bodies and errors are documented in the OpenAPI document served
//! at `/admin/v1/openapi.json`. In short (`{org}`, `{server}`, `{team}`,
//! `{agent}`, `{toolset}` are slugs; keys are ids; end users external ids):
//!
//! | path | methods |
//! |---|---|
//! | `/admin/v1/whoami` | GET |
//! | `/admin/v1/orgs`, `/orgs/{org}` | GET POST, GET PATCH DELETE |
//! | `/admin/v1/admin-tokens[/{id}]` | GET POST, DELETE (platform tokens; platform) |
//! | `/orgs/{org}/admin-tokens[/{id}]` | GET POST, DELETE (platform) |
//! | `/admin/v1/servers[/{server}]` | global servers (platform) |
//! | `/orgs/{org}/servers[/{server}]` | the org's own servers |
//! | `/orgs/{org}/grants[/{server}]` | GET, GET PUT PATCH DELETE |
//! | `/orgs/{org}/teams\|agents\|end-users\|toolsets[/{x}]` | GET POST, GET PATCH DELETE |
//! | `/orgs/{org}/toolsets/{toolset}/servers`, `.../options` | PUT, GET |
//! | `/orgs/{org}/keys[/{id}]`, `.../revoke`, `.../access` | GET POST, GET PATCH DELETE, POST, GET |
//! | `/orgs/{org}/{teams\|keys\|end-users\|agents}/{x}/scope[/options]` | GET PUT, GET (picker) |
//! | `/orgs/{org}/new-user-scope` | GET PUT (the scope people created on first sign-in get) |
//! | `/orgs/{org}/limits[/{id}]` | GET POST, GET PATCH DELETE |
//! | `/orgs/{org}/explain?key=&server=&tool=[&end_user=&agent=]` | GET |
//! | `/admin/v1/replicas`, `/admin/v1/audit` | GET |
//!
//! Writes accept `?wait=propagated[&timeout_ms=]`. Errors are always
//! `{"error": {"code", "message", "details"}}` (see [`AdminError`]), also
//! for unknown paths (404 `not_found`) and methods a path does not have
//! (405 `method_not_allowed`, with `Allow`).

pub mod auth;
pub mod bootstrap;
mod credential_routes;
pub mod dto;
mod error;
mod extract;
pub mod idp_auth;
pub mod idp_new_user_scope;
mod idp_routes;
mod limit_routes;
mod openapi;
pub mod ops;
mod routes;
mod state;
mod validate;

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::routing::get;
use axum::Router;

pub use error::{AdminError, ErrorBody, ErrorDetail};
pub use extract::BODY_LIMIT;
pub use openapi::openapi_json;
pub use state::AdminState;

/// Every admin route under `/admin/v1`, with its state. Unknown paths
/// answer 404 and a method a path does not have 405 (with `Allow`), both
/// with the JSON error body.
pub fn router(state: AdminState) -> Router {
    routes::routes()
        .merge(limit_routes::routes())
        .merge(credential_routes::routes())
        .merge(idp_routes::routes())
        .merge(idp_new_user_scope::routes())
        .route("/admin/v1/openapi.json", get(openapi::serve))
        // After every route: it is set on the routes registered so far.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

async fn fallback(uri: Uri) -> AdminError {
    AdminError::not_found("route", uri.path())
}

/// The path exists but not with this method; axum adds the `Allow` header
/// listing the methods it has.
async fn method_not_allowed(method: Method, uri: Uri) -> AdminError {
    AdminError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}
