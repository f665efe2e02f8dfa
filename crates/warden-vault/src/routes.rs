//! Warden's consent pages (public, no bearer: the person's browser opens
//! them). `GET /connect/{link}` sends the browser to the upstream's
//! authorization server — for a link issued to a person asserted by a
//! service key, only after `POST /connect/{link}` presented that key (a
//! form on the page), for a link issued to a person signed in through an
//! identity provider only after the browser signed in there as that person
//! (`GET /connect/signed-in`, see `sign_in.rs`); `GET /connect/callback`
//! stores the tokens.

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::consent::ConsentPage;
use crate::sign_in::{COOKIE_PATH, FLOW_COOKIE, FLOW_TTL, SIGNED_IN_PATH};
use crate::{Vault, VaultError, CONNECT_PATH};

/// Longest key accepted on the consent form.
const MAX_KEY_LEN: usize = 512;

/// The consent routes, to merge into the public router.
pub fn routes(vault: Vault) -> Router {
    Router::new()
        .route(&format!("{CONNECT_PATH}/callback"), get(callback))
        .route(SIGNED_IN_PATH, get(signed_in))
        .route(
            &format!("{CONNECT_PATH}/{{link}}"),
            get(start).post(present_key),
        )
        .with_state(vault)
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    html_page(status, title, &escape(body))
}

/// `body_html` is trusted markup (built here from escaped parts).
fn html_page(status: StatusCode, title: &str, body_html: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body><main><h1>{t}</h1><p>{body_html}</p></main></body></html>",
        t = escape(title),
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
        VaultError::ConsentKeyRefused { .. }
        | VaultError::ConsentWrongPerson { .. }
        | VaultError::ConsentSignInUnavailable(_) => StatusCode::FORBIDDEN,
        VaultError::ConsentSignInExpired | VaultError::ConsentSignInNotBound => {
            StatusCode::BAD_REQUEST
        }
        VaultError::ConsentSignInFailed(_) => StatusCode::UNAUTHORIZED,
        VaultError::Refused { .. } => StatusCode::BAD_REQUEST,
        VaultError::Unavailable(_) | VaultError::Discovery(_) => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    tracing::info!(code = e.code(), error = %e, "consent failed");
    page(status, "Not connected", &format!("{e} ({})", e.code()))
}

fn well_formed(link: &str) -> bool {
    link.len() <= 128
        && link
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn redirect(to: String) -> Response {
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, to),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::REFERRER_POLICY, "no-referrer".to_owned()),
        ],
    )
        .into_response()
}

/// The form asking for the service key the link was issued through; it
/// posts back to the link under Warden's public URL.
fn key_form(action: &str) -> Response {
    html_page(
        StatusCode::OK,
        "Connect your account",
        &format!(
            "This link was issued to the person your assistant's service key acts for. \
             Enter that key to continue.</p>\
             <form method=\"post\" action=\"{}\">\
             <label>Service key <input type=\"password\" name=\"key\" autocomplete=\"off\" required></label> \
             <button type=\"submit\">Continue</button></form><p>",
            escape(action)
        ),
    )
}

async fn start(State(vault): State<Vault>, Path(link): Path<String>) -> Response {
    if !well_formed(&link) {
        return failed(&VaultError::ConsentUnknown);
    }
    match vault.consent_page(&link).await {
        Ok(ConsentPage::Authorize(to)) => redirect(to),
        Ok(ConsentPage::AskKey) => key_form(&vault.link_url(&link)),
        Ok(ConsentPage::SignIn(start)) => {
            let mut res = redirect(start.location);
            let secure = if vault.signed_in_uri().starts_with("https://") {
                "; Secure"
            } else {
                ""
            };
            if let Ok(v) = format!(
                "{FLOW_COOKIE}={}; Path={COOKIE_PATH}; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
                start.binding,
                FLOW_TTL.as_secs()
            )
            .parse()
            {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
            res
        }
        Err(e) => failed(&e),
    }
}

/// The browser's consent cookie, if well formed.
fn flow_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == FLOW_COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| well_formed(v))
}

#[derive(Deserialize)]
struct SignedInQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    iss: Option<String>,
}

/// `GET /connect/signed-in`: the identity provider sent the browser back.
async fn signed_in(
    State(vault): State<Vault>,
    headers: HeaderMap,
    Query(q): Query<SignedInQuery>,
) -> Response {
    let mut res = signed_in_outcome(&vault, &headers, q).await;
    // One use: the cookie goes whatever happened.
    if let Ok(v) =
        format!("{FLOW_COOKIE}=; Path={COOKIE_PATH}; HttpOnly; SameSite=Lax; Max-Age=0").parse()
    {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

async fn signed_in_outcome(vault: &Vault, headers: &HeaderMap, q: SignedInQuery) -> Response {
    let too_long = [&q.code, &q.state, &q.error, &q.iss]
        .iter()
        .any(|p| p.as_ref().is_some_and(|p| p.len() > 4096));
    if too_long {
        return failed(&VaultError::ConsentSignInExpired);
    }
    if q.error.is_some() {
        return failed(&VaultError::ConsentSignInFailed("idp_refused"));
    }
    let (Some(state), Some(code)) = (q.state, q.code) else {
        return failed(&VaultError::ConsentSignInExpired);
    };
    let cookie = flow_cookie(headers);
    match vault
        .finish_sign_in(&state, &code, q.iss.as_deref(), cookie.as_deref())
        .await
    {
        Ok(to) => redirect(to),
        Err(e) => failed(&e),
    }
}

#[derive(Deserialize)]
struct KeyForm {
    key: String,
}

async fn present_key(
    State(vault): State<Vault>,
    Path(link): Path<String>,
    Form(form): Form<KeyForm>,
) -> Response {
    if !well_formed(&link) {
        return failed(&VaultError::ConsentUnknown);
    }
    let key = form.key.trim();
    if key.len() > MAX_KEY_LEN {
        return page(
            StatusCode::FORBIDDEN,
            "Not connected",
            "This is not the key this consent link was issued for (consent_key_refused).",
        );
    }
    match vault.prove_key(&link, key).await {
        Ok(to) => redirect(to),
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
