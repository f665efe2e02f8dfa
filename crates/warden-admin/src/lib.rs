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
//! at `/admin/v1/openapi.json`.

pub mod auth;
pub mod bootstrap;
pub mod dto;
mod error;
mod extract;
mod openapi;
mod ops;
mod routes;
mod state;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;

pub use error::{AdminError, ErrorBody, ErrorDetail};
pub use extract::BODY_LIMIT;
pub use openapi::openapi_json;
pub use state::AdminState;

/// Every admin route under `/admin/v1`, with its state. Unknown paths under
/// `/admin/v1` answer with the JSON error body too.
pub fn router(state: AdminState) -> Router {
    routes::routes()
        .route("/admin/v1/openapi.json", get(openapi::serve))
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

async fn fallback() -> AdminError {
    AdminError::not_found("route", "")
}
