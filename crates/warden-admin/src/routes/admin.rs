//! Who the calling token is, and admin tokens (platform ones, and an org's).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::auth::Admin;
use crate::dto::*;
use crate::error::{AdminError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::ops;
use crate::state::AdminState;

#[utoipa::path(get, path = "/admin/v1/whoami", tag = "admin", summary = "Who the calling token is", responses((status = 200, body = WhoAmI), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn whoami(
    State(s): State<AdminState>,
    admin: Admin,
) -> Result<(StatusCode, Json<WhoAmI>), AdminError> {
    let out = ops::whoami(&s, &admin).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/admin-tokens", tag = "admin", summary = "List an org's admin tokens (platform admin)", params(("org" = String, Path)), responses((status = 200, body = Listing<AdminTokenView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn list_admin_tokens(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
) -> Result<(StatusCode, Json<Listing<AdminTokenView>>), AdminError> {
    let out = ops::list_admin_tokens(&s, &admin, &org).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(post, path = "/admin/v1/orgs/{org}/admin-tokens", tag = "admin", summary = "Create an org admin token; its secret is returned once (platform admin)", params(("org" = String, Path)), request_body = CreateAdminToken, responses((status = 201, body = Created<AdminTokenView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn create_admin_token(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiJson(body): ApiJson<CreateAdminToken>,
) -> Result<(StatusCode, Json<Created<AdminTokenView>>), AdminError> {
    let out = ops::create_admin_token(&s, &admin, &org, body).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(delete, path = "/admin/v1/orgs/{org}/admin-tokens/{id}", tag = "admin", summary = "Revoke an org admin token (platform admin)", params(("org" = String, Path), ("id" = i64, Path)), responses((status = 200, body = Deleted), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn delete_admin_token(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, id)): ApiPath<(String, i64)>,
) -> Result<(StatusCode, Json<Deleted>), AdminError> {
    let out = ops::delete_admin_token(&s, &admin, &org, id).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/admin-tokens", tag = "admin", summary = "List the platform admin tokens (platform admin)", responses((status = 200, body = Listing<AdminTokenView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn list_platform_admin_tokens(
    State(s): State<AdminState>,
    admin: Admin,
) -> Result<(StatusCode, Json<Listing<AdminTokenView>>), AdminError> {
    let out = ops::list_platform_admin_tokens(&s, &admin).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(post, path = "/admin/v1/admin-tokens", tag = "admin", summary = "Create a platform admin token; its secret is returned once (platform admin)", request_body = CreateAdminToken, responses((status = 201, body = Created<AdminTokenView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn create_platform_admin_token(
    State(s): State<AdminState>,
    admin: Admin,
    ApiJson(body): ApiJson<CreateAdminToken>,
) -> Result<(StatusCode, Json<Created<AdminTokenView>>), AdminError> {
    let out = ops::create_platform_admin_token(&s, &admin, body).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(delete, path = "/admin/v1/admin-tokens/{id}", tag = "admin", summary = "Revoke a platform admin token; the last one cannot be (platform admin)", params(("id" = i64, Path)), responses((status = 200, body = Deleted), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn delete_platform_admin_token(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> Result<(StatusCode, Json<Deleted>), AdminError> {
    let out = ops::delete_platform_admin_token(&s, &admin, id).await?;
    Ok((StatusCode::OK, Json(out)))
}
