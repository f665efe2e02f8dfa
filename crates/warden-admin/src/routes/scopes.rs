//! Scopes of teams, keys, end users and agents, and their pickers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::auth::Admin;
use crate::dto::*;
use crate::error::{AdminError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::ops::{self, OwnerRef};
use crate::state::AdminState;

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/teams/{team}/scope", tag = "scopes", summary = "The team's scope", params(("org" = String, Path), ("team" = String, Path)), responses((status = 200, body = ScopeSpec), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn get_team_scope(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, owner)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<ScopeSpec>), AdminError> {
    let out = ops::get_scope(&s, &admin, &org, OwnerRef::Team(owner)).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(put, path = "/admin/v1/orgs/{org}/teams/{team}/scope", tag = "scopes", summary = "Set the team's scope: \"inherit\" or grants within the parent chain (422 lists offending entries)", params(("org" = String, Path), ("team" = String, Path), WriteParams), request_body = ScopeSpec, responses((status = 200, body = Written<ScopeSpec>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn put_team_scope(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, owner)): ApiPath<(String, String)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<ScopeSpec>,
) -> Result<(StatusCode, Json<Written<ScopeSpec>>), AdminError> {
    let out = ops::put_scope(&s, &admin, &org, OwnerRef::Team(owner), body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/teams/{team}/scope/options", tag = "scopes", summary = "What the team's scope may contain (the picker)", params(("org" = String, Path), ("team" = String, Path)), responses((status = 200, body = ScopeOptions), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn team_scope_options(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, owner)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<ScopeOptions>), AdminError> {
    let out = ops::scope_options(&s, &admin, &org, OwnerRef::Team(owner)).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/keys/{id}/scope", tag = "scopes", summary = "The key's scope", params(("org" = String, Path), ("id" = i64, Path)), responses((status = 200, body = ScopeSpec), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn get_key_scope(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, owner)): ApiPath<(String, i64)>,
) -> Result<(StatusCode, Json<ScopeSpec>), AdminError> {
    let out = ops::get_scope(&s, &admin, &org, OwnerRef::Key(owner)).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(put, path = "/admin/v1/orgs/{org}/keys/{id}/scope", tag = "scopes", summary = "Set the key's scope: \"inherit\" or grants within the parent chain (422 lists offending entries)", params(("org" = String, Path), ("id" = i64, Path), WriteParams), request_body = ScopeSpec, responses((status = 200, body = Written<ScopeSpec>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn put_key_scope(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, owner)): ApiPath<(String, i64)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<ScopeSpec>,
) -> Result<(StatusCode, Json<Written<ScopeSpec>>), AdminError> {
    let out = ops::put_scope(&s, &admin, &org, OwnerRef::Key(owner), body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/keys/{id}/scope/options", tag = "scopes", summary = "What the key's scope may contain (the picker)", params(("org" = String, Path), ("id" = i64, Path)), responses((status = 200, body = ScopeOptions), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn key_scope_options(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, owner)): ApiPath<(String, i64)>,
) -> Result<(StatusCode, Json<ScopeOptions>), AdminError> {
    let out = ops::scope_options(&s, &admin, &org, OwnerRef::Key(owner)).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/end-users/{end_user}/scope", tag = "scopes", summary = "The end user's scope", params(("org" = String, Path), ("end_user" = String, Path)), responses((status = 200, body = ScopeSpec), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn get_end_user_scope(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, owner)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<ScopeSpec>), AdminError> {
    let out = ops::get_scope(&s, &admin, &org, OwnerRef::EndUser(owner)).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(put, path = "/admin/v1/orgs/{org}/end-users/{end_user}/scope", tag = "scopes", summary = "Set the end user's scope: \"inherit\" or grants within the parent chain (422 lists offending entries)", params(("org" = String, Path), ("end_user" = String, Path), WriteParams), request_body = ScopeSpec, responses((status = 200, body = Written<ScopeSpec>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn put_end_user_scope(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, owner)): ApiPath<(String, String)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<ScopeSpec>,
) -> Result<(StatusCode, Json<Written<ScopeSpec>>), AdminError> {
    let out = ops::put_scope(&s, &admin, &org, OwnerRef::EndUser(owner), body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/end-users/{end_user}/scope/options", tag = "scopes", summary = "What the end user's scope may contain (the picker)", params(("org" = String, Path), ("end_user" = String, Path)), responses((status = 200, body = ScopeOptions), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn end_user_scope_options(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, owner)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<ScopeOptions>), AdminError> {
    let out = ops::scope_options(&s, &admin, &org, OwnerRef::EndUser(owner)).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/agents/{agent}/scope", tag = "scopes", summary = "The agent's scope", params(("org" = String, Path), ("agent" = String, Path)), responses((status = 200, body = ScopeSpec), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn get_agent_scope(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, owner)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<ScopeSpec>), AdminError> {
    let out = ops::get_scope(&s, &admin, &org, OwnerRef::Agent(owner)).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(put, path = "/admin/v1/orgs/{org}/agents/{agent}/scope", tag = "scopes", summary = "Set the agent's scope: \"inherit\" or grants within the parent chain (422 lists offending entries)", params(("org" = String, Path), ("agent" = String, Path), WriteParams), request_body = ScopeSpec, responses((status = 200, body = Written<ScopeSpec>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn put_agent_scope(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, owner)): ApiPath<(String, String)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<ScopeSpec>,
) -> Result<(StatusCode, Json<Written<ScopeSpec>>), AdminError> {
    let out = ops::put_scope(&s, &admin, &org, OwnerRef::Agent(owner), body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/agents/{agent}/scope/options", tag = "scopes", summary = "What the agent's scope may contain (the picker)", params(("org" = String, Path), ("agent" = String, Path)), responses((status = 200, body = ScopeOptions), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn agent_scope_options(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, owner)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<ScopeOptions>), AdminError> {
    let out = ops::scope_options(&s, &admin, &org, OwnerRef::Agent(owner)).await?;
    Ok((StatusCode::OK, Json(out)))
}
