//! An org's default scope for new users
//! (`/admin/v1/orgs/{org}/new-user-scope`): the scope a person gets when
//! they are created just in time on signing in with an identity provider.
//! *inherit* unless set; otherwise grants within the org's allowance,
//! validated exactly like an end user's scope (422 `grants_beyond_parent`
//! lists the offending entries). The org's admins and platform admins.
//! Merged into the router and the OpenAPI document.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};

use crate::auth::Admin;
use crate::dto::{ScopeSpec, WriteParams, Written};
use crate::error::{AdminError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::ops::convert::Names;
use crate::state::AdminState;

/// The org's default scope for new users, by org slug.
pub async fn get_new_user_scope(
    s: &AdminState,
    admin: &Admin,
    org: &str,
) -> Result<ScopeSpec, AdminError> {
    let org = s.org(admin, org).await?;
    let scope = s
        .store()
        .get_new_user_scope(org.id)
        .await
        .map_err(|e| s.error(e))?
        .ok_or_else(|| AdminError::not_found("org", &org.slug))?;
    Ok(Names(&s.snapshot()).scope(&scope))
}

/// Sets the org's default scope for new users (one audited write).
pub async fn put_new_user_scope(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    body: &ScopeSpec,
) -> Result<Written<ScopeSpec>, AdminError> {
    let org = s.org(admin, org).await?;
    let scope = s.scope_from_spec(org.id, body).await?;
    let w = s
        .store()
        .set_new_user_scope(&admin.actor, org.id, scope)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: Names(&s.snapshot()).scope(&w.value),
    })
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/new-user-scope", tag = "scopes", summary = "The org's default scope for new users (people created on their first identity-provider sign-in)", params(("org" = String, Path)), responses((status = 200, body = ScopeSpec), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn get_scope(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
) -> Result<(StatusCode, Json<ScopeSpec>), AdminError> {
    let out = get_new_user_scope(&s, &admin, &org).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(put, path = "/admin/v1/orgs/{org}/new-user-scope", tag = "scopes", summary = "Set the org's default scope for new users: \"inherit\" or grants within the org's allowance, checked like an end user's scope (422 lists offending entries); people who already exist keep theirs", params(("org" = String, Path), WriteParams), request_body = ScopeSpec, responses((status = 200, body = Written<ScopeSpec>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn put_scope(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<ScopeSpec>,
) -> Result<(StatusCode, Json<Written<ScopeSpec>>), AdminError> {
    let out = put_new_user_scope(&s, &admin, &org, &body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

pub(crate) fn routes() -> Router<AdminState> {
    Router::new().route(
        "/admin/v1/orgs/{org}/new-user-scope",
        get(get_scope).put(put_scope),
    )
}

/// Paths of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(get_scope, put_scope))]
pub(crate) struct NewUserScopePaths;
