//! End users, by external id.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::auth::Admin;
use crate::dto::*;
use crate::error::{AdminError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::ops;
use crate::state::AdminState;

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/end-users", tag = "end users", summary = "List end users", params(("org" = String, Path), ListParams), responses((status = 200, body = Listing<EndUserView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn list_end_users(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(page): ApiQuery<ListParams>,
) -> Result<(StatusCode, Json<Listing<EndUserView>>), AdminError> {
    let out = ops::list_end_users(&s, &admin, &org, page).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(post, path = "/admin/v1/orgs/{org}/end-users", tag = "end users", summary = "Create an end user", params(("org" = String, Path), WriteParams), request_body = CreateEndUser, responses((status = 201, body = Written<EndUserView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn create_end_user(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<CreateEndUser>,
) -> Result<(StatusCode, Json<Written<EndUserView>>), AdminError> {
    let out = ops::create_end_user(&s, &admin, &org, body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/end-users/{end_user}", tag = "end users", summary = "Get an end user by external id", params(("org" = String, Path), ("end_user" = String, Path)), responses((status = 200, body = EndUserView), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn get_end_user(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, end_user)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<EndUserView>), AdminError> {
    let out = ops::get_end_user(&s, &admin, &org, &end_user).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(patch, path = "/admin/v1/orgs/{org}/end-users/{end_user}", tag = "end users", summary = "Rename an end user (its external id and scope stay; scope: PUT .../scope)", params(("org" = String, Path), ("end_user" = String, Path), WriteParams), request_body = PatchEndUser, responses((status = 200, body = Written<EndUserView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn patch_end_user(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, end_user)): ApiPath<(String, String)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<PatchEndUser>,
) -> Result<(StatusCode, Json<Written<EndUserView>>), AdminError> {
    let out = ops::patch_end_user(&s, &admin, &org, &end_user, body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(delete, path = "/admin/v1/orgs/{org}/end-users/{end_user}", tag = "end users", summary = "Delete an end user", params(("org" = String, Path), ("end_user" = String, Path), WriteParams), responses((status = 200, body = Deleted), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn delete_end_user(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, end_user)): ApiPath<(String, String)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
) -> Result<(StatusCode, Json<Deleted>), AdminError> {
    let out = ops::delete_end_user(&s, &admin, &org, &end_user).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}
