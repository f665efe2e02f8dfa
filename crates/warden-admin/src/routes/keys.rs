//! Keys, and a key's effective access.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::auth::Admin;
use crate::dto::*;
use crate::error::{AdminError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::ops;
use crate::state::AdminState;

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/keys", tag = "keys", summary = "List keys (never their secrets)", params(("org" = String, Path), ListParams), responses((status = 200, body = Listing<KeyView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn list_keys(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(page): ApiQuery<ListParams>,
) -> Result<(StatusCode, Json<Listing<KeyView>>), AdminError> {
    let out = ops::list_keys(&s, &admin, &org, page).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(post, path = "/admin/v1/orgs/{org}/keys", tag = "keys", summary = "Create a key; its secret is returned once", params(("org" = String, Path), WriteParams), request_body = CreateKey, responses((status = 201, body = Created<KeyView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn create_key(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<Created<KeyView>>), AdminError> {
    let out = ops::create_key(&s, &admin, &org, body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/keys/{id}", tag = "keys", summary = "Get a key", params(("org" = String, Path), ("id" = i64, Path)), responses((status = 200, body = KeyView), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn get_key(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, id)): ApiPath<(String, i64)>,
) -> Result<(StatusCode, Json<KeyView>), AdminError> {
    let out = ops::get_key(&s, &admin, &org, id).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(patch, path = "/admin/v1/orgs/{org}/keys/{id}", tag = "keys", summary = "Rename a key or change its expiry or assertion rights", params(("org" = String, Path), ("id" = i64, Path), WriteParams), request_body = PatchKey, responses((status = 200, body = Written<KeyView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn patch_key(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, id)): ApiPath<(String, i64)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<PatchKey>,
) -> Result<(StatusCode, Json<Written<KeyView>>), AdminError> {
    let out = ops::patch_key(&s, &admin, &org, id, body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(post, path = "/admin/v1/orgs/{org}/keys/{id}/revoke", tag = "keys", summary = "Revoke a key (its sessions end)", params(("org" = String, Path), ("id" = i64, Path), WriteParams), responses((status = 200, body = Written<KeyView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn revoke_key(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, id)): ApiPath<(String, i64)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
) -> Result<(StatusCode, Json<Written<KeyView>>), AdminError> {
    let out = ops::revoke_key(&s, &admin, &org, id).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(delete, path = "/admin/v1/orgs/{org}/keys/{id}", tag = "keys", summary = "Delete a key", params(("org" = String, Path), ("id" = i64, Path), WriteParams), responses((status = 200, body = Deleted), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn delete_key(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, id)): ApiPath<(String, i64)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
) -> Result<(StatusCode, Json<Deleted>), AdminError> {
    let out = ops::delete_key(&s, &admin, &org, id).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/keys/{id}/access", tag = "keys", summary = "Effective access of a key, optionally for an end user and agent, at the current revision", params(("org" = String, Path), ("id" = i64, Path), AccessParams), responses((status = 200, body = AccessView), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn key_access(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, id)): ApiPath<(String, i64)>,
    ApiQuery(query): ApiQuery<AccessParams>,
) -> Result<(StatusCode, Json<AccessView>), AdminError> {
    let out = ops::key_access(&s, &admin, &org, id, query).await?;
    Ok((StatusCode::OK, Json(out)))
}
