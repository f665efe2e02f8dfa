//! The limit endpoints (`/admin/v1/orgs/{org}/limits[/{id}]`), kept apart
//! from `routes/`; merged into the router and the OpenAPI document.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};

use crate::auth::Admin;
use crate::dto::*;
use crate::error::{AdminError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::ops;
use crate::state::AdminState;

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/limits", tag = "limits", summary = "List the org's limits", params(("org" = String, Path), ListParams), responses((status = 200, body = Listing<LimitView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn list_limits(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(page): ApiQuery<ListParams>,
) -> Result<(StatusCode, Json<Listing<LimitView>>), AdminError> {
    let out = ops::list_limits(&s, &admin, &org, page).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(post, path = "/admin/v1/orgs/{org}/limits", tag = "limits", summary = "Create a limit (a rate and/or a concurrency cap for the org, a team, key, end user or agent, on all servers, one server or one tool)", params(("org" = String, Path), WriteParams), request_body = CreateLimit, responses((status = 201, body = Written<LimitView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn create_limit(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<CreateLimit>,
) -> Result<(StatusCode, Json<Written<LimitView>>), AdminError> {
    let out = ops::create_limit(&s, &admin, &org, body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/limits/{id}", tag = "limits", summary = "Get a limit", params(("org" = String, Path), ("id" = i64, Path)), responses((status = 200, body = LimitView), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn get_limit(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, id)): ApiPath<(String, i64)>,
) -> Result<(StatusCode, Json<LimitView>), AdminError> {
    let out = ops::get_limit(&s, &admin, &org, id).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(patch, path = "/admin/v1/orgs/{org}/limits/{id}", tag = "limits", summary = "Change a limit (absent fields stay, null clears)", params(("org" = String, Path), ("id" = i64, Path), WriteParams), request_body = PatchLimit, responses((status = 200, body = Written<LimitView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn patch_limit(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, id)): ApiPath<(String, i64)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<PatchLimit>,
) -> Result<(StatusCode, Json<Written<LimitView>>), AdminError> {
    let out = ops::patch_limit(&s, &admin, &org, id, body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(delete, path = "/admin/v1/orgs/{org}/limits/{id}", tag = "limits", summary = "Delete a limit", params(("org" = String, Path), ("id" = i64, Path), WriteParams), responses((status = 200, body = Deleted), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn delete_limit(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, id)): ApiPath<(String, i64)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
) -> Result<(StatusCode, Json<Deleted>), AdminError> {
    let out = ops::delete_limit(&s, &admin, &org, id).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

pub(crate) fn routes() -> Router<AdminState> {
    Router::new()
        .route(
            "/admin/v1/orgs/{org}/limits",
            get(list_limits).post(create_limit),
        )
        .route(
            "/admin/v1/orgs/{org}/limits/{id}",
            get(get_limit).patch(patch_limit).delete(delete_limit),
        )
}

/// Paths of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list_limits, create_limit, get_limit, patch_limit, delete_limit))]
pub(crate) struct LimitPaths;
