//! Sign in at the organization's identity provider: the console is an
//! OpenID Connect relying party (authorization code flow, PKCE S256, a
//! public client: no client secret exists). Any enabled provider with a
//! `console_client_id` is offered on the sign-in page.
//!
//! 1. `GET /console/login/idp/{provider}`: fresh `state`, `nonce` and PKCE
//!    verifier are kept here (in memory, one use, ten minutes); a random
//!    binding goes to the browser in an `HttpOnly` cookie scoped to
//!    `/console/login` (`SameSite=Lax`: it must come back on the
//!    provider's top-level redirect) and the browser is sent to the
//!    provider's authorization endpoint.
//! 2. `GET /console/login/callback?code&state`: the flow named by `state`
//!    must exist, be fresh and belong to this browser (the binding cookie:
//!    no login CSRF); the code is redeemed with the verifier; the ID token
//!    is checked by `warden_identity` (signature with the provider's keys,
//!    issuer, expiry, audience = the console's client, nonce) and mapped to
//!    an admin by `warden_admin::idp_auth::admin_from_identity` (the admin
//!    API's rule: the provider's `admin_groups`). A person in no admin
//!    group gets a 403 page saying so. Otherwise a console session starts
//!    (the same session cookie as a token sign-in) and the page moves on to
//!    `/console/orgs` by itself, so the code's URL is left at once and
//!    never sent as a referrer. No token reaches the browser.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::header::{COOKIE, REFERRER_POLICY, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::auth::{secure, session_cookie};
use warden_identity::relying_party::SignInEndpoints;

use crate::html::{bare_page, esc, url};
use crate::session::{random_hex, same};
use crate::ConsoleState;

/// The cookie binding a sign-in flow to the browser that started it.
pub const FLOW_COOKIE: &str = "warden_console_flow";
/// How long a started sign-in may take.
pub const FLOW_TTL: Duration = Duration::from_secs(10 * 60);
/// Most sign-ins in flight at once; past it the oldest is dropped.
pub const FLOW_CAP: usize = 10_000;
/// The callback's path under the public URL (the console client's
/// redirect URI at the provider).
pub const CALLBACK: &str = "/console/login/callback";

struct Pending {
    issuer: String,
    client_id: String,
    token_endpoint: String,
    verifier: String,
    nonce: String,
    binding: String,
    redirect_uri: String,
    created: Instant,
}

/// How long a provider's discovered endpoints are reused: starting a
/// sign-in needs no session, so it must not make Warden fetch the
/// provider's discovery document on every request.
pub const ENDPOINTS_TTL: Duration = Duration::from_secs(5 * 60);

/// Sign-ins in flight, by `state`, and each issuer's endpoints.
#[derive(Default)]
pub struct Flows {
    map: Mutex<HashMap<String, Pending>>,
    endpoints: Mutex<HashMap<String, (SignInEndpoints, Instant)>>,
}

impl Flows {
    fn cached_endpoints(&self, issuer: &str) -> Option<SignInEndpoints> {
        let cache = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(issuer)
            .filter(|(_, at)| at.elapsed() <= ENDPOINTS_TTL)
            .map(|(e, _)| e.clone())
    }

    fn remember_endpoints(&self, issuer: &str, endpoints: &SignInEndpoints) {
        let mut cache = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded by the registered issuers; stale entries of removed
        // providers are dropped on the way.
        cache.retain(|_, (_, at)| at.elapsed() <= ENDPOINTS_TTL);
        cache.insert(issuer.to_owned(), (endpoints.clone(), Instant::now()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&self, state: String, pending: Pending) {
        let mut map = self.lock();
        if map.len() >= FLOW_CAP {
            map.retain(|_, p| p.created.elapsed() <= FLOW_TTL);
        }
        if map.len() >= FLOW_CAP {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, p)| p.created)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(state, pending);
    }

    /// The flow named by `state`, once, if still fresh.
    fn take(&self, state: &str) -> Option<Pending> {
        self.lock()
            .remove(state)
            .filter(|p| p.created.elapsed() <= FLOW_TTL)
    }
}

fn flow_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == FLOW_COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A page about a sign-in that did not happen, with a way back.
fn refused(status: StatusCode, code: &str, message: &str) -> Response {
    let body = bare_page(
        "Sign-in refused",
        &format!(
            "<main id=\"main\" class=\"narrow\"><h1>Sign-in refused</h1>\
             <p role=\"alert\" class=\"error\" data-code=\"{}\">{}</p>\
             <p><a href=\"/console/login\">Back to sign in</a></p></main>",
            esc(code),
            esc(message)
        ),
    );
    let mut res = (status, Html(body)).into_response();
    clear_flow_cookie(&mut res);
    res
}

fn clear_flow_cookie(res: &mut Response) {
    if let Ok(v) =
        format!("{FLOW_COOKIE}=; Path=/console/login; HttpOnly; SameSite=Lax; Max-Age=0").parse()
    {
        res.headers_mut().append(SET_COOKIE, v);
    }
}

/// `GET /console/login/idp/{provider}`: starts a sign-in at the provider.
pub async fn start(
    State(state): State<ConsoleState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some((ids, public_url)) = warden_admin::idp_auth::identities(&state.admin) else {
        return refused(
            StatusCode::NOT_FOUND,
            "idp_not_found",
            "No identity provider offers console sign-in.",
        );
    };
    let Some(provider) = ids.console_provider(&slug) else {
        return refused(
            StatusCode::NOT_FOUND,
            "idp_not_found",
            "That identity provider does not offer console sign-in.",
        );
    };
    let (issuer, client_id) = (
        provider.issuer.clone(),
        provider.console_client_id.clone().unwrap_or_default(),
    );
    let scope = match provider.groups_claim.as_deref() {
        Some(g) if g != "openid" => format!("openid {g}"),
        _ => "openid".to_owned(),
    };
    let discovered = match state.flows.cached_endpoints(&issuer) {
        Some(e) => Ok(e),
        None => ids.sign_in_endpoints(&issuer).await.inspect(|e| {
            state.flows.remember_endpoints(&issuer, e);
        }),
    };
    let endpoints = match discovered {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(provider = %slug, error = %e, "console sign-in: provider unavailable");
            return refused(
                StatusCode::BAD_GATEWAY,
                e.code(),
                "The identity provider cannot be reached right now; try again, or sign in with an admin token.",
            );
        }
    };
    let flow_state = random_hex(32);
    let nonce = random_hex(32);
    let verifier = random_hex(32);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let binding = random_hex(32);
    let redirect_uri = format!("{}{CALLBACK}", public_url.trim_end_matches('/'));
    let sep = if endpoints.authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    let location = format!(
        "{}{sep}response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&nonce={}\
         &code_challenge={}&code_challenge_method=S256",
        endpoints.authorization_endpoint,
        url(&client_id),
        url(&redirect_uri),
        url(&scope),
        flow_state,
        nonce,
        challenge
    );
    state.flows.insert(
        flow_state,
        Pending {
            issuer,
            client_id,
            token_endpoint: endpoints.token_endpoint,
            verifier,
            nonce,
            binding: binding.clone(),
            redirect_uri,
            created: Instant::now(),
        },
    );
    let mut res = (
        StatusCode::SEE_OTHER,
        [(axum::http::header::LOCATION, location)],
    )
        .into_response();
    if let Ok(v) = format!(
        "{FLOW_COOKIE}={binding}; Path=/console/login; HttpOnly; SameSite=Lax; Max-Age={}{}",
        FLOW_TTL.as_secs(),
        if secure(&state, &headers) {
            "; Secure"
        } else {
            ""
        }
    )
    .parse()
    {
        res.headers_mut().append(SET_COOKIE, v);
    }
    res
}

/// The provider's redirect back.
#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    iss: Option<String>,
}

const MAX_PARAM: usize = 4096;

/// `GET /console/login/callback`: finishes a sign-in.
pub async fn callback(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let too_long = [&q.code, &q.state, &q.error, &q.iss]
        .iter()
        .any(|p| p.as_ref().is_some_and(|p| p.len() > MAX_PARAM));
    if too_long {
        return refused(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "The sign-in answer is too large.",
        );
    }
    let pending = q.state.as_deref().and_then(|s| state.flows.take(s));
    if let Some(error) = q.error.as_deref() {
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(64)
            .collect();
        return refused(
            StatusCode::UNAUTHORIZED,
            "idp_refused",
            &format!("The identity provider did not sign you in ({error})."),
        );
    }
    let Some(pending) = pending else {
        return refused(
            StatusCode::BAD_REQUEST,
            "sign_in_expired",
            "This sign-in has expired or was already used. Start again from the sign-in page.",
        );
    };
    let bound = flow_cookie(&headers).is_some_and(|b| same(&b, &pending.binding));
    if !bound {
        // Not the browser that started this sign-in (login CSRF).
        return refused(
            StatusCode::BAD_REQUEST,
            "sign_in_not_bound",
            "This sign-in was started in another browser. Start again from the sign-in page.",
        );
    }
    if q.iss.as_deref().is_some_and(|iss| iss != pending.issuer) {
        // RFC 9207: the answer comes from another issuer (mix-up).
        return refused(
            StatusCode::BAD_REQUEST,
            "token_issuer_unknown",
            "The sign-in answer names another identity provider.",
        );
    }
    let Some(code) = q.code.as_deref().filter(|c| !c.is_empty()) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "The identity provider sent no authorization code.",
        );
    };
    let Some((ids, _)) = warden_admin::idp_auth::identities(&state.admin) else {
        return refused(
            StatusCode::NOT_FOUND,
            "idp_not_found",
            "No identity provider offers console sign-in.",
        );
    };
    let id_token = match ids
        .exchange_code(
            &pending.token_endpoint,
            &pending.client_id,
            code,
            &pending.redirect_uri,
            &pending.verifier,
        )
        .await
    {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "console sign-in: code exchange failed");
            return refused(
                StatusCode::BAD_GATEWAY,
                e.code(),
                "The identity provider did not redeem the sign-in code; start again.",
            );
        }
    };
    let identity = match ids
        .verify_id_token(
            &pending.issuer,
            &id_token,
            &pending.client_id,
            &pending.nonce,
        )
        .await
    {
        Ok(i) => i,
        Err(e) => {
            tracing::info!(reason = e.code(), "console sign-in: ID token refused");
            return refused(
                StatusCode::UNAUTHORIZED,
                e.code(),
                &format!("The identity provider's answer was refused: {e}."),
            );
        }
    };
    let admin = match warden_admin::idp_auth::admin_from_identity(&state.admin, &identity) {
        Ok(a) => a,
        Err(_) => {
            tracing::info!(
                provider = %identity.provider,
                user = %identity.user,
                "console sign-in refused: not an admin"
            );
            return refused(
                StatusCode::FORBIDDEN,
                "not_an_admin",
                &format!(
                    "You signed in at {} as {}, but you are not a Warden administrator: \
                     your groups include neither the platform admin group nor your \
                     organization's admin group. Ask an administrator to add you.",
                    identity.provider, identity.user
                ),
            );
        }
    };
    tracing::info!(actor = %admin.actor, "console sign-in");
    let id = state.sessions.create_idp(&pending.issuer, identity);
    let body = bare_page(
        "Signed in",
        "<meta http-equiv=\"refresh\" content=\"0;url=/console/orgs\">\
         <main id=\"main\" class=\"narrow\"><h1>Signed in</h1>\
         <p><a href=\"/console/orgs\">Continue to the console</a></p></main>",
    );
    let mut res = (StatusCode::OK, Html(body)).into_response();
    if let Ok(v) = session_cookie(&state, &headers, &id).parse() {
        res.headers_mut().append(SET_COOKIE, v);
    }
    clear_flow_cookie(&mut res);
    // The callback URL held the code: never send it on.
    res.headers_mut()
        .insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}
