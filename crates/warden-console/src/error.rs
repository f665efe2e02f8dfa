//! The console's one error type, rendered as an HTML error page with the
//! right status (or a redirect to sign in).

use axum::http::header::LOCATION;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use warden_admin::AdminError;

use crate::html::esc;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No live session: the browser is sent to the sign-in page.
    #[error("sign in required")]
    SignInRequired,
    /// A state-changing request without this session's CSRF token.
    #[error("the form is stale or was not sent by this console (CSRF token missing or wrong)")]
    Csrf,
    #[error("not found: {0}")]
    NotFound(String),
    #[error("invalid input: {0}")]
    BadInput(String),
    /// Whatever the admin ops answered (same status and code as the API).
    #[error(transparent)]
    Admin(#[from] AdminError),
}

impl ConsoleError {
    pub fn status(&self) -> StatusCode {
        match self {
            ConsoleError::SignInRequired => StatusCode::SEE_OTHER,
            ConsoleError::Csrf => StatusCode::FORBIDDEN,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::BadInput(_) => StatusCode::BAD_REQUEST,
            ConsoleError::Admin(e) => e.status(),
        }
    }

    /// Stable code, as in the API's error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            ConsoleError::SignInRequired => "sign_in_required",
            ConsoleError::Csrf => "csrf_refused",
            ConsoleError::NotFound(_) => "not_found",
            ConsoleError::BadInput(_) => "invalid_input",
            ConsoleError::Admin(e) => e.code(),
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        if let ConsoleError::SignInRequired = self {
            return (StatusCode::SEE_OTHER, [(LOCATION, "/console/login")]).into_response();
        }
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "console request failed");
        }
        let message = match &self {
            // Details of internal errors stay in the log.
            e if status.is_server_error() => format!("internal error ({})", e.code()),
            e => e.to_string(),
        };
        let mut text = message;
        text.truncate(2_000);
        let body = crate::html::bare_page(
            "Error",
            &format!(
                "<main id=\"main\"><h1>{} {}</h1><p role=\"alert\" class=\"error\" data-code=\"{}\">{}</p>\
                 <p><a href=\"/console\">Back to the console</a></p></main>",
                status.as_u16(),
                esc(status.canonical_reason().unwrap_or("")),
                self.code(),
                esc(&text)
            ),
        );
        (status, Html(body)).into_response()
    }
}
