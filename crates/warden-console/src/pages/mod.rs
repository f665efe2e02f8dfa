//! The console's pages. Each handler takes the signed-in [`Console`], calls
//! the admin ops (the same ones `/admin/v1` calls) and renders HTML.

pub mod audit;
pub mod auth;
pub mod grants;
pub mod impact;
pub mod inspect;
pub mod keys;
pub mod oidc;
pub mod orgs;
pub mod platform;
pub mod principals;
pub mod scope;

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::LOCATION;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::ConsoleError;
use crate::session::Console;

/// `/console`: the orgs list (an org admin's own org page), or sign in.
pub async fn home(console: Result<Console, ConsoleError>) -> Response {
    match console {
        Err(e) => e.into_response(),
        Ok(_) => see_other("/console/orgs"),
    }
}

pub async fn not_found() -> ConsoleError {
    ConsoleError::NotFound("page".into())
}

/// A 303 to `to` (after a form post).
pub fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to.to_owned())]).into_response()
}

/// The `{org}` path segment.
#[derive(Deserialize)]
pub struct OrgPath {
    pub org: String,
}

impl<S: Send + Sync> FromRequestParts<S> for OrgPath {
    type Rejection = ConsoleError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        #[derive(Deserialize)]
        struct P {
            org: String,
        }
        let Path(p) = Path::<P>::from_request_parts(parts, state)
            .await
            .map_err(|e| ConsoleError::BadInput(e.body_text()))?;
        Ok(OrgPath { org: p.org })
    }
}

/// A url-encoded form as (name, value) pairs (repeated names kept).
pub struct FormPairs(pub Vec<(String, String)>);

impl FormPairs {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A required, non-empty, trimmed field.
    pub fn required(&self, name: &str) -> Result<String, ConsoleError> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| ConsoleError::BadInput(format!("{name} is required")))
    }

    /// An optional field: absent or blank is `None`.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }
}

impl<S: Send + Sync> FromRequest<S> for FormPairs {
    type Rejection = ConsoleError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::Form::<Vec<(String, String)>>::from_request(req, state)
            .await
            .map(|f| FormPairs(f.0))
            .map_err(|e| ConsoleError::BadInput(e.body_text()))
    }
}

/// A signed-in console user whose form carried the session's CSRF token.
/// Every state-changing handler takes this (never plain [`Console`]).
pub struct Checked {
    pub console: Console,
    pub form: FormPairs,
}

impl FromRequest<crate::ConsoleState> for Checked {
    type Rejection = ConsoleError;
    async fn from_request(
        req: Request,
        state: &crate::ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let console = Console::from_request_parts(&mut parts, state).await?;
        let header = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let req = Request::from_parts(parts, body);
        let form = FormPairs::from_request(req, state).await?;
        let presented = header.as_deref().or(form.get("csrf"));
        console.check_csrf(presented)?;
        Ok(Checked { console, form })
    }
}
