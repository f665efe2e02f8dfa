//! Warden's admin console: the admin API's operations as HTML pages, served
//! by the same binary under `/console`.
//!
//! The console is a *view*: every page reads through `warden_admin::ops`
//! (the same functions, with the same [`Admin`](warden_admin::auth::Admin)
//! identity and org checks, that answer `/admin/v1`) and every allow/deny
//! it shows (pickers, explain, effective access, impact) comes from
//! `warden-policy`. It has no authorization path of its own: a signed-in
//! session resolves to the same `Admin` the bearer extractor makes, by the
//! same `AdminState::authenticate`, on every request.
//!
//! Pages are server-rendered HTML (no build step, no Node); the two assets
//! (`console.css`, `console.js`) are compiled into the binary with
//! `include_str!`. The only script is `console.js` (served from `'self'`,
//! no inline script, see [`security`]).

mod error;
mod html;
mod live;
mod pages;
mod security;
mod session;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use warden_admin::AdminState;

pub use error::ConsoleError;
pub use live::{GatewayView, LiveSession, NoGateway, ServerHealth};
pub use session::{SESSION_CAP, SESSION_COOKIE};

/// Where the console is mounted.
pub const MOUNT: &str = "/console";

/// Console settings.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// A session unused this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, used or not.
    pub absolute_timeout: Duration,
    /// Always mark the session cookie `Secure` (set when Warden is served
    /// behind TLS). It is also marked `Secure` on any request that arrived
    /// with `X-Forwarded-Proto: https`.
    pub secure_cookie: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 60 * 60),
            secure_cookie: false,
        }
    }
}

/// What every console handler shares.
#[derive(Clone)]
pub struct ConsoleState {
    pub(crate) admin: AdminState,
    pub(crate) sessions: Arc<session::Sessions>,
    pub(crate) flows: Arc<pages::oidc::Flows>,
    pub(crate) live: Arc<dyn GatewayView>,
    pub(crate) config: ConsoleConfig,
}

/// Every console route under [`MOUNT`], with security headers on every
/// response.
pub fn router(admin: AdminState, live: Arc<dyn GatewayView>, config: ConsoleConfig) -> Router {
    let state = ConsoleState {
        admin,
        sessions: Arc::new(session::Sessions::default()),
        flows: Arc::new(pages::oidc::Flows::default()),
        live,
        config,
    };
    Router::new()
        .route("/console", get(pages::home))
        .route("/console/", get(pages::home))
        .route("/console/assets/console.css", get(html::css))
        .route("/console/assets/console.js", get(html::js))
        .route(
            "/console/login",
            get(pages::auth::login_form).post(pages::auth::login),
        )
        .route("/console/login/idp/{provider}", get(pages::oidc::start))
        .route("/console/login/callback", get(pages::oidc::callback))
        .route("/console/logout", post(pages::auth::logout))
        .route("/console/revision", get(live::revision))
        .route(
            "/console/orgs",
            get(pages::orgs::list).post(pages::orgs::create),
        )
        .route(
            "/console/servers",
            get(pages::platform::servers).post(pages::platform::create_server),
        )
        .route(
            "/console/servers/{server}/switch",
            get(pages::platform::server_impact).post(pages::platform::server_switch),
        )
        .route(
            "/console/servers/{server}/edit",
            get(pages::platform::edit_server).post(pages::platform::save_server),
        )
        .route("/console/replicas", get(pages::platform::replicas))
        .route(
            "/console/admin-tokens",
            get(pages::platform::admin_tokens).post(pages::platform::create_admin_token),
        )
        .route(
            "/console/admin-tokens/{id}/delete",
            post(pages::platform::delete_admin_token),
        )
        .route("/console/orgs/{org}", get(pages::orgs::show))
        .route("/console/orgs/{org}/suspend", post(pages::orgs::suspend))
        .route(
            "/console/orgs/{org}/servers",
            post(pages::orgs::create_own_server),
        )
        .route(
            "/console/orgs/{org}/servers/{server}/grant",
            post(pages::orgs::grant_own_server),
        )
        .route(
            "/console/orgs/{org}/grants/{server}",
            get(pages::grants::edit).post(pages::grants::save),
        )
        .route(
            "/console/orgs/{org}/grants/{server}/switch",
            get(pages::grants::impact).post(pages::grants::switch),
        )
        .route(
            "/console/orgs/{org}/teams",
            get(pages::principals::teams).post(pages::principals::create_team),
        )
        .route(
            "/console/orgs/{org}/agents",
            get(pages::principals::agents).post(pages::principals::create_agent),
        )
        .route(
            "/console/orgs/{org}/end-users",
            get(pages::principals::end_users).post(pages::principals::create_end_user),
        )
        .route(
            "/console/orgs/{org}/end-users/{external_id}/disabled",
            post(pages::principals::set_end_user_disabled),
        )
        .route(
            "/console/orgs/{org}/toolsets",
            get(pages::principals::toolsets).post(pages::principals::create_toolset),
        )
        .route(
            "/console/orgs/{org}/keys",
            get(pages::keys::list).post(pages::keys::create),
        )
        .route(
            "/console/orgs/{org}/keys/{id}/revoke",
            post(pages::keys::revoke),
        )
        .route(
            "/console/orgs/{org}/scope/{kind}/{id}",
            get(pages::scope::edit).post(pages::scope::save),
        )
        .route("/console/orgs/{org}/explain", get(pages::inspect::explain))
        .route("/console/orgs/{org}/access", get(pages::inspect::access))
        .route("/console/orgs/{org}/live", get(live::page))
        .route("/console/orgs/{org}/live/panel", get(live::panel))
        .route("/console/audit", get(pages::audit::list))
        // Not a router fallback: the binary merges this router with the
        // admin API's, which has the fallback.
        .route(
            "/console/{*rest}",
            get(pages::not_found).post(pages::not_found),
        )
        .layer(axum::middleware::from_fn(security::headers))
        .layer(axum::extract::DefaultBodyLimit::max(security::FORM_LIMIT))
        .with_state(state)
}
