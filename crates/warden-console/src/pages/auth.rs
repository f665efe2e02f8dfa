//! Sign in with an admin token (or pick an identity provider, see
//! [`super::oidc`]), sign out.

use axum::extract::State;
use axum::http::header::{HOST, ORIGIN, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use super::{see_other, Checked, FormPairs};
use crate::error::ConsoleError;
use crate::html::{bare_page, esc, url};
use crate::session::{session_id, SESSION_COOKIE};
use crate::ConsoleState;

/// "Sign in with …" for every enabled provider with a console client.
fn providers(state: &ConsoleState) -> String {
    let Some((ids, _)) = warden_admin::idp_auth::identities(&state.admin) else {
        return String::new();
    };
    let links: String = ids
        .console_providers()
        .iter()
        .map(|p| {
            format!(
                "<li><a class=\"button\" href=\"/console/login/idp/{}\">Sign in with {}</a></li>",
                url(&p.slug),
                esc(&p.slug)
            )
        })
        .collect();
    if links.is_empty() {
        return String::new();
    }
    format!(
        "<section class=\"idp\" aria-labelledby=\"idp-h\"><h2 id=\"idp-h\">Your organization's sign-in</h2>\
         <ul class=\"idp\">{links}</ul></section><p class=\"hint\">Or with an admin token:</p>"
    )
}

fn form(state: &ConsoleState, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p role=\"alert\" class=\"error\">{}</p>", esc(e)))
        .unwrap_or_default();
    let providers = providers(state);
    bare_page(
        "Sign in",
        &format!(
            "<main id=\"main\" class=\"narrow\"><h1>Warden console</h1>{error}{providers}\
             <form method=\"post\" action=\"/console/login\" class=\"card\">\
             <label for=\"token\">Admin token</label>\
             <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" required autofocus>\
             <p class=\"hint\">A platform or org admin token. It is sent once; the console keeps a \
             session cookie, never the token, in the browser.</p>\
             <button type=\"submit\">Sign in</button></form></main>"
        ),
    )
}

pub async fn login_form(State(state): State<ConsoleState>) -> Html<String> {
    Html(form(&state, None))
}

/// A cross-site form post is refused: when the browser says where the form
/// came from, it must be this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

pub(crate) fn secure(state: &ConsoleState, headers: &HeaderMap) -> bool {
    state.config.secure_cookie
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value of a new session.
pub(crate) fn session_cookie(state: &ConsoleState, headers: &HeaderMap, id: &str) -> String {
    let max_age = state.config.absolute_timeout.as_secs();
    format!(
        "{SESSION_COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure(state, headers) {
            "; Secure"
        } else {
            ""
        }
    )
}

pub async fn login(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    form_body: FormPairs,
) -> Result<Response, ConsoleError> {
    if !same_origin(&headers) {
        return Err(ConsoleError::Csrf);
    }
    let token = form_body.get("token").map(str::trim).unwrap_or("");
    if token.is_empty() || token.len() > 512 {
        return Ok((
            StatusCode::UNAUTHORIZED,
            Html(form(&state, Some("That token is not a valid admin token."))),
        )
            .into_response());
    }
    match state.admin.authenticate(token).await {
        Ok(admin) => {
            let id = state.sessions.create(token);
            tracing::info!(actor = %admin.actor, "console sign-in");
            let cookie = session_cookie(&state, &headers, &id);
            let mut res = see_other("/console/orgs");
            if let Ok(v) = cookie.parse() {
                res.headers_mut().insert(SET_COOKIE, v);
            }
            Ok(res)
        }
        Err(warden_admin::AdminError::Unauthorized) => Ok((
            StatusCode::UNAUTHORIZED,
            Html(form(&state, Some("That token is not a valid admin token."))),
        )
            .into_response()),
        Err(e) => Err(e.into()),
    }
}

pub async fn logout(State(state): State<ConsoleState>, req: axum::extract::Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let id = session_id(&parts);
    let checked = {
        use axum::extract::FromRequest;
        let _ = &mut parts;
        Checked::from_request(axum::extract::Request::from_parts(parts, body), &state).await
    };
    if let Err(e) = checked {
        return e.into_response();
    }
    if let Some(id) = id {
        state.sessions.remove(&id);
    }
    let mut res = see_other("/console/login");
    if let Ok(v) =
        format!("{SESSION_COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0").parse()
    {
        res.headers_mut().insert(SET_COOKIE, v);
    }
    res
}
