//! Warden's consent pages (public, no bearer: the person's browser opens
//! them). `GET /connect/{link}` sends the browser to the upstream's
//! authorization server; `GET /connect/callback` stores the tokens.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::{Vault, VaultError, CONNECT_PATH};

/// The consent routes, to merge into the public router.
pub fn routes(vault: Vault) -> Router {
    Router::new()
        .route(&format!("{CONNECT_PATH}/callback"), get(callback))
        .route(&format!("{CONNECT_PATH}/{{link}}"), get(start))
        .with_state(vault)
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body><main><h1>{t}</h1><p>{b}</p></main></body></html>",
        t = escape(title),
        b = escape(body)
    );
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        Html(html),
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn failed(e: &VaultError) -> Response {
    let status = match e {
        VaultError::ConsentUnknown => StatusCode::NOT_FOUND,
        VaultError::Refused { .. } => StatusCode::BAD_REQUEST,
        VaultError::Unavailable(_) | VaultError::Discovery(_) => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    tracing::info!(code = e.code(), error = %e, "consent failed");
    page(status, "Not connected", &format!("{e} ({})", e.code()))
}

async fn start(State(vault): State<Vault>, Path(link): Path<String>) -> Response {
    if link.len() > 128 {
        return failed(&VaultError::ConsentUnknown);
    }
    match vault.start_consent(&link).await {
        Ok(to) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, to),
                (header::CACHE_CONTROL, "no-store".to_owned()),
                (header::REFERRER_POLICY, "no-referrer".to_owned()),
            ],
        )
            .into_response(),
        Err(e) => failed(&e),
    }
}

#[derive(Deserialize)]
struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

async fn callback(State(vault): State<Vault>, Query(q): Query<CallbackQuery>) -> Response {
    let (Some(state), Some(code)) = (q.state, q.code) else {
        let error = q.error.unwrap_or_else(|| "missing code or state".into());
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ' ')
            .take(64)
            .collect();
        return page(
            StatusCode::BAD_REQUEST,
            "Not connected",
            &format!("The authorization server did not grant access ({error})."),
        );
    };
    if state.len() > 128 || code.len() > 4096 {
        return failed(&VaultError::ConsentUnknown);
    }
    match vault.finish_consent(&state, &code).await {
        Ok(server) => page(
            StatusCode::OK,
            "Connected",
            &format!("Your account is connected to {server}. Go back to your assistant and retry."),
        ),
        Err(e) => failed(&e),
    }
}
