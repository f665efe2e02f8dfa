//! Servers: global ones (platform admins) and an org's own.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::auth::Admin;
use crate::dto::*;
use crate::error::{AdminError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::ops;
use crate::state::AdminState;

#[utoipa::path(get, path = "/admin/v1/servers", tag = "servers", summary = "List global servers (platform admin)", responses((status = 200, body = Listing<ServerView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn list_global_servers(
    State(s): State<AdminState>,
    admin: Admin,
) -> Result<(StatusCode, Json<Listing<ServerView>>), AdminError> {
    let out = ops::list_servers(&s, &admin, None).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(post, path = "/admin/v1/servers", tag = "servers", summary = "Add a global server (platform admin)", params(WriteParams), request_body = CreateServer, responses((status = 201, body = Written<ServerView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn create_global_server(
    State(s): State<AdminState>,
    admin: Admin,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<CreateServer>,
) -> Result<(StatusCode, Json<Written<ServerView>>), AdminError> {
    let out = ops::create_server(&s, &admin, None, body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/servers/{server}", tag = "servers", summary = "Get a global server (platform admin)", params(("server" = String, Path)), responses((status = 200, body = ServerView), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn get_global_server(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(server): ApiPath<String>,
) -> Result<(StatusCode, Json<ServerView>), AdminError> {
    let out = ops::get_server(&s, &admin, None, &server).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(patch, path = "/admin/v1/servers/{server}", tag = "servers", summary = "Change a global server; `enabled` is the gateway-wide kill switch (platform admin)", params(("server" = String, Path), WriteParams), request_body = PatchServer, responses((status = 200, body = Written<ServerView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn patch_global_server(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(server): ApiPath<String>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<PatchServer>,
) -> Result<(StatusCode, Json<Written<ServerView>>), AdminError> {
    let out = ops::patch_server(&s, &admin, None, &server, body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(delete, path = "/admin/v1/servers/{server}", tag = "servers", summary = "Delete a global server and every reference to it (platform admin)", params(("server" = String, Path), WriteParams), responses((status = 200, body = Deleted), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn delete_global_server(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(server): ApiPath<String>,
    ApiQuery(wait): ApiQuery<WriteParams>,
) -> Result<(StatusCode, Json<Deleted>), AdminError> {
    let out = ops::delete_server(&s, &admin, None, &server).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/servers", tag = "servers", summary = "List the servers an org owns", params(("org" = String, Path)), responses((status = 200, body = Listing<ServerView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn list_org_servers(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
) -> Result<(StatusCode, Json<Listing<ServerView>>), AdminError> {
    let out = ops::list_servers(&s, &admin, Some(&org)).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(post, path = "/admin/v1/orgs/{org}/servers", tag = "servers", summary = "Add a server owned by the org", params(("org" = String, Path), WriteParams), request_body = CreateServer, responses((status = 201, body = Written<ServerView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn create_org_server(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<CreateServer>,
) -> Result<(StatusCode, Json<Written<ServerView>>), AdminError> {
    let out = ops::create_server(&s, &admin, Some(&org), body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/servers/{server}", tag = "servers", summary = "Get an org-owned server", params(("org" = String, Path), ("server" = String, Path)), responses((status = 200, body = ServerView), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn get_org_server(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, server)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<ServerView>), AdminError> {
    let out = ops::get_server(&s, &admin, Some(&org), &server).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(patch, path = "/admin/v1/orgs/{org}/servers/{server}", tag = "servers", summary = "Change an org-owned server", params(("org" = String, Path), ("server" = String, Path), WriteParams), request_body = PatchServer, responses((status = 200, body = Written<ServerView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn patch_org_server(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, server)): ApiPath<(String, String)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<PatchServer>,
) -> Result<(StatusCode, Json<Written<ServerView>>), AdminError> {
    let out = ops::patch_server(&s, &admin, Some(&org), &server, body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(delete, path = "/admin/v1/orgs/{org}/servers/{server}", tag = "servers", summary = "Delete an org-owned server and every reference to it", params(("org" = String, Path), ("server" = String, Path), WriteParams), responses((status = 200, body = Deleted), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn delete_org_server(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, server)): ApiPath<(String, String)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
) -> Result<(StatusCode, Json<Deleted>), AdminError> {
    let out = ops::delete_server(&s, &admin, Some(&org), &server).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}
