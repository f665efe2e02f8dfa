//! Grants: which servers an org may use.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::auth::Admin;
use crate::dto::*;
use crate::error::{AdminError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::ops;
use crate::state::AdminState;

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/grants", tag = "grants", summary = "List the org's grants", params(("org" = String, Path)), responses((status = 200, body = Listing<GrantView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn list_grants(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
) -> Result<(StatusCode, Json<Listing<GrantView>>), AdminError> {
    let out = ops::list_grants(&s, &admin, &org).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/grants/{server}", tag = "grants", summary = "Get the org's grant of a server", params(("org" = String, Path), ("server" = String, Path)), responses((status = 200, body = GrantView), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn get_grant(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, server)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<GrantView>), AdminError> {
    let out = ops::get_grant(&s, &admin, &org, &server).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(put, path = "/admin/v1/orgs/{org}/grants/{server}", tag = "grants", summary = "Create or replace the org's grant of a server (global servers: platform admin)", params(("org" = String, Path), ("server" = String, Path), WriteParams), request_body = PutGrant, responses((status = 200, body = Written<GrantView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn put_grant(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, server)): ApiPath<(String, String)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<PutGrant>,
) -> Result<(StatusCode, Json<Written<GrantView>>), AdminError> {
    let out = ops::put_grant(&s, &admin, &org, &server, body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(patch, path = "/admin/v1/orgs/{org}/grants/{server}", tag = "grants", summary = "Switch the org's grant on/off or change its filter (changing a global server's filter: platform admin)", params(("org" = String, Path), ("server" = String, Path), WriteParams), request_body = PatchGrant, responses((status = 200, body = Written<GrantView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn patch_grant(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, server)): ApiPath<(String, String)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<PatchGrant>,
) -> Result<(StatusCode, Json<Written<GrantView>>), AdminError> {
    let out = ops::patch_grant(&s, &admin, &org, &server, body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(delete, path = "/admin/v1/orgs/{org}/grants/{server}", tag = "grants", summary = "Remove the grant and every reference to the server in the org", params(("org" = String, Path), ("server" = String, Path), WriteParams), responses((status = 200, body = Deleted), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn delete_grant(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, server)): ApiPath<(String, String)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
) -> Result<(StatusCode, Json<Deleted>), AdminError> {
    let out = ops::delete_grant(&s, &admin, &org, &server).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}
