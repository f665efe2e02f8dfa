//! Toolsets and what they may contain.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::auth::Admin;
use crate::dto::*;
use crate::error::{AdminError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::ops::{self, OwnerRef};
use crate::state::AdminState;

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/toolsets", tag = "toolsets", summary = "List toolsets", params(("org" = String, Path), ListParams), responses((status = 200, body = Listing<ToolsetView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn list_toolsets(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(page): ApiQuery<ListParams>,
) -> Result<(StatusCode, Json<Listing<ToolsetView>>), AdminError> {
    let out = ops::list_toolsets(&s, &admin, &org, page).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(post, path = "/admin/v1/orgs/{org}/toolsets", tag = "toolsets", summary = "Create a toolset (within the org's grants)", params(("org" = String, Path), WriteParams), request_body = CreateToolset, responses((status = 201, body = Written<ToolsetView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn create_toolset(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<CreateToolset>,
) -> Result<(StatusCode, Json<Written<ToolsetView>>), AdminError> {
    let out = ops::create_toolset(&s, &admin, &org, body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/toolsets/{toolset}", tag = "toolsets", summary = "Get a toolset", params(("org" = String, Path), ("toolset" = String, Path)), responses((status = 200, body = ToolsetView), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn get_toolset(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, toolset)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<ToolsetView>), AdminError> {
    let out = ops::get_toolset(&s, &admin, &org, &toolset).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(put, path = "/admin/v1/orgs/{org}/toolsets/{toolset}/servers", tag = "toolsets", summary = "Replace a toolset's servers", params(("org" = String, Path), ("toolset" = String, Path), WriteParams), request_body = PutToolsetServers, responses((status = 200, body = Written<ToolsetView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn put_toolset_servers(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, toolset)): ApiPath<(String, String)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<PutToolsetServers>,
) -> Result<(StatusCode, Json<Written<ToolsetView>>), AdminError> {
    let out = ops::put_toolset_servers(&s, &admin, &org, &toolset, body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(patch, path = "/admin/v1/orgs/{org}/toolsets/{toolset}", tag = "toolsets", summary = "Rename a toolset and/or replace its servers, within the org's grants (422 lists offending entries)", params(("org" = String, Path), ("toolset" = String, Path), WriteParams), request_body = PatchToolset, responses((status = 200, body = Written<ToolsetView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn patch_toolset(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, toolset)): ApiPath<(String, String)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<PatchToolset>,
) -> Result<(StatusCode, Json<Written<ToolsetView>>), AdminError> {
    let out = ops::patch_toolset(&s, &admin, &org, &toolset, body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(delete, path = "/admin/v1/orgs/{org}/toolsets/{toolset}", tag = "toolsets", summary = "Delete a toolset and every reference to it", params(("org" = String, Path), ("toolset" = String, Path), WriteParams), responses((status = 200, body = Deleted), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn delete_toolset(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, toolset)): ApiPath<(String, String)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
) -> Result<(StatusCode, Json<Deleted>), AdminError> {
    let out = ops::delete_toolset(&s, &admin, &org, &toolset).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/toolsets/{toolset}/options", tag = "toolsets", summary = "What a toolset may contain (the org's grants)", params(("org" = String, Path), ("toolset" = String, Path)), responses((status = 200, body = ScopeOptions), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn toolset_options(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, toolset)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<ScopeOptions>), AdminError> {
    let out = ops::scope_options(&s, &admin, &org, OwnerRef::Toolset(toolset)).await?;
    Ok((StatusCode::OK, Json(out)))
}
