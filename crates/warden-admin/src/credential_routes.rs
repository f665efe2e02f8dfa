//! Each person's own upstream credentials (docs/credentials.md), kept
//! apart from `routes/`; merged into the router and the OpenAPI document:
//!
//! - a server's upstream authentication (`static`, `oauth_per_user`,
//!   `token_exchange`): `/admin/v1/servers/{server}/upstream-auth` (global,
//!   platform admin) and `/admin/v1/orgs/{org}/servers/{server}/upstream-auth`
//!   (org-owned). A policy write; the client secret is write-only;
//! - an org's connections (a person's stored tokens for one server):
//!   `/admin/v1/orgs/{org}/connections[/{id}]`. Listed without any token;
//!   deleting one deletes its tokens and queues their upstream revocation.
//!   Audited without token values.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use warden_store::{CredentialInfo, Server, UpstreamAuthInput, UpstreamAuthView};

use crate::auth::Admin;
use crate::dto::{Deleted, WriteParams};
use crate::error::{AdminError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AdminState;

/// A server's upstream authentication. `mode`: `static` (its secret
/// headers only), `oauth_per_user` (`authorization_server`, `scopes`,
/// `client_id`, all optional: discovered / registered) or `token_exchange`
/// (`identity_provider`, `audience`, `client_id`, optional `resource`,
/// `scopes`). `client_secret` is write-only.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PutUpstreamAuth {
    #[schema(value_type = Object)]
    #[serde(flatten)]
    pub body: serde_json::Value,
}

impl crate::validate::Validate for PutUpstreamAuth {
    /// The shape is checked when the body is read as the store's
    /// `UpstreamAuthInput`, the values by the store.
    fn validate(&self) -> Result<(), AdminError> {
        match self.body.get("mode").and_then(serde_json::Value::as_str) {
            Some("static" | "oauth_per_user" | "token_exchange") => Ok(()),
            _ => Err(AdminError::InvalidBody(
                "mode must be static, oauth_per_user or token_exchange".into(),
            )),
        }
    }
}

/// What is configured: never the client secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpstreamAuthBody {
    pub server: String,
    /// `static`, `oauth_per_user` or `token_exchange`, with its settings.
    #[schema(value_type = Object)]
    pub auth: serde_json::Value,
}

/// One person's connection to one server: metadata, never a token.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionView {
    pub id: i64,
    pub end_user: String,
    pub server: String,
    pub scopes: String,
    pub expires_at_ms: Option<i64>,
    pub has_refresh_token: bool,
    pub revocable_upstream: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionList {
    pub items: Vec<ConnectionView>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ConnectionQuery {
    /// Only this person's (external id).
    pub end_user: Option<String>,
}

fn connection_view(c: CredentialInfo) -> ConnectionView {
    ConnectionView {
        id: c.id,
        end_user: c.end_user_external_id,
        server: c.server_slug,
        scopes: c.scopes,
        expires_at_ms: c.expires_at_ms,
        has_refresh_token: c.has_refresh_token,
        revocable_upstream: c.revocable_upstream,
        created_at_ms: c.created_at_ms,
        updated_at_ms: c.updated_at_ms,
    }
}

async fn server_of(
    s: &AdminState,
    admin: &Admin,
    org: Option<&str>,
    slug: &str,
) -> Result<Server, AdminError> {
    let owner = match org {
        Some(org) => Some(s.org(admin, org).await?.id),
        None => {
            admin.require_platform()?;
            None
        }
    };
    s.store()
        .get_server_by_slug(owner, slug)
        .await
        .map_err(|e| s.error(e))?
        .ok_or_else(|| AdminError::not_found("server", slug))
}

async fn view_of(s: &AdminState, server: &Server) -> Result<UpstreamAuthBody, AdminError> {
    let auth = s
        .store()
        .upstream_auth(server.id)
        .await
        .map_err(|e| s.error(e))?;
    let auth = match auth {
        Some(a) => serde_json::to_value(UpstreamAuthView::from(&a))
            .unwrap_or_else(|_| serde_json::json!({"mode": "unknown"})),
        None => serde_json::json!({"mode": "static"}),
    };
    Ok(UpstreamAuthBody {
        server: server.slug.clone(),
        auth,
    })
}

async fn put_auth(
    s: &AdminState,
    admin: &Admin,
    org: Option<&str>,
    slug: &str,
    body: serde_json::Value,
    wait: &WriteParams,
) -> Result<UpstreamAuthBody, AdminError> {
    let server = server_of(s, admin, org, slug).await?;
    let input = if body.get("mode").and_then(|m| m.as_str()) == Some("static") {
        None
    } else {
        let input: UpstreamAuthInput =
            serde_json::from_value(body).map_err(|e| AdminError::InvalidBody(e.to_string()))?;
        Some(input)
    };
    if input.is_some() && !matches!(server.transport, warden_store::Transport::Http { .. }) {
        return Err(AdminError::InvalidBody(
            "per-person credentials need an HTTP server (a stdio server has no per-request headers)"
                .into(),
        ));
    }
    let revision = s
        .store()
        .set_upstream_auth(&admin.actor, server.id, input)
        .await
        .map_err(|e| s.error(e))?;
    s.settle(revision, wait).await?;
    view_of(s, &server).await
}

#[utoipa::path(get, path = "/admin/v1/servers/{server}/upstream-auth", tag = "credentials", summary = "How Warden authenticates to a global server upstream (platform admin)", params(("server" = String, Path)), responses((status = 200, body = UpstreamAuthBody), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn get_global_auth(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(server): ApiPath<String>,
) -> Result<(StatusCode, Json<UpstreamAuthBody>), AdminError> {
    let server = server_of(&s, &admin, None, &server).await?;
    Ok((StatusCode::OK, Json(view_of(&s, &server).await?)))
}

#[utoipa::path(put, path = "/admin/v1/servers/{server}/upstream-auth", tag = "credentials", summary = "Set how Warden authenticates to a global server upstream (platform admin); changing the mode or authorization server deletes and revokes the stored tokens", params(("server" = String, Path), WriteParams), request_body = PutUpstreamAuth, responses((status = 200, body = UpstreamAuthBody), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn put_global_auth(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(server): ApiPath<String>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<PutUpstreamAuth>,
) -> Result<(StatusCode, Json<UpstreamAuthBody>), AdminError> {
    let out = put_auth(&s, &admin, None, &server, body.body, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/servers/{server}/upstream-auth", tag = "credentials", summary = "How Warden authenticates to an org-owned server upstream", params(("org" = String, Path), ("server" = String, Path)), responses((status = 200, body = UpstreamAuthBody), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn get_org_auth(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, server)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<UpstreamAuthBody>), AdminError> {
    let server = server_of(&s, &admin, Some(&org), &server).await?;
    Ok((StatusCode::OK, Json(view_of(&s, &server).await?)))
}

#[utoipa::path(put, path = "/admin/v1/orgs/{org}/servers/{server}/upstream-auth", tag = "credentials", summary = "Set how Warden authenticates to an org-owned server upstream", params(("org" = String, Path), ("server" = String, Path), WriteParams), request_body = PutUpstreamAuth, responses((status = 200, body = UpstreamAuthBody), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn put_org_auth(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, server)): ApiPath<(String, String)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<PutUpstreamAuth>,
) -> Result<(StatusCode, Json<UpstreamAuthBody>), AdminError> {
    let out = put_auth(&s, &admin, Some(&org), &server, body.body, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/connections", tag = "credentials", summary = "The org's people's connections to servers (never a token)", params(("org" = String, Path), ConnectionQuery), responses((status = 200, body = ConnectionList), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn list_connections(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(q): ApiQuery<ConnectionQuery>,
) -> Result<(StatusCode, Json<ConnectionList>), AdminError> {
    let org = s.org(&admin, &org).await?;
    let end_user = match &q.end_user {
        None => None,
        Some(external) => Some(
            s.store()
                .get_end_user_by_external_id(org.id, external)
                .await
                .map_err(|e| s.error(e))?
                .ok_or_else(|| AdminError::not_found("end user", external))?
                .id,
        ),
    };
    let items = s
        .store()
        .list_user_credentials(org.id, end_user)
        .await
        .map_err(|e| s.error(e))?
        .into_iter()
        .map(connection_view)
        .collect();
    Ok((StatusCode::OK, Json(ConnectionList { items })))
}

#[utoipa::path(delete, path = "/admin/v1/orgs/{org}/connections/{id}", tag = "credentials", summary = "Revoke a person's connection: its tokens are deleted and revoked upstream where the authorization server supports RFC 7009", params(("org" = String, Path), ("id" = i64, Path)), responses((status = 200, body = Deleted), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn delete_connection(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, id)): ApiPath<(String, i64)>,
) -> Result<(StatusCode, Json<Deleted>), AdminError> {
    let org = s.org(&admin, &org).await?;
    s.store()
        .delete_user_credential(&admin.actor, org.id, None, id)
        .await
        .map_err(|e| s.error(e))?
        .ok_or_else(|| AdminError::not_found("connection", id.to_string()))?;
    Ok((
        StatusCode::OK,
        Json(Deleted {
            revision: s.live().revision(),
        }),
    ))
}

pub(crate) fn routes() -> Router<AdminState> {
    Router::new()
        .route(
            "/admin/v1/servers/{server}/upstream-auth",
            get(get_global_auth).put(put_global_auth),
        )
        .route(
            "/admin/v1/orgs/{org}/servers/{server}/upstream-auth",
            get(get_org_auth).put(put_org_auth),
        )
        .route("/admin/v1/orgs/{org}/connections", get(list_connections))
        .route(
            "/admin/v1/orgs/{org}/connections/{id}",
            delete(delete_connection),
        )
}

/// Paths of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    get_global_auth,
    put_global_auth,
    get_org_auth,
    put_org_auth,
    list_connections,
    delete_connection
))]
pub(crate) struct CredentialPaths;
