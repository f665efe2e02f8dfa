//! Teams.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::auth::Admin;
use crate::dto::*;
use crate::error::{AdminError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::ops;
use crate::state::AdminState;

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/teams", tag = "teams", summary = "List teams", params(("org" = String, Path), ListParams), responses((status = 200, body = Listing<TeamView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn list_teams(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(page): ApiQuery<ListParams>,
) -> Result<(StatusCode, Json<Listing<TeamView>>), AdminError> {
    let out = ops::list_teams(&s, &admin, &org, page).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(post, path = "/admin/v1/orgs/{org}/teams", tag = "teams", summary = "Create a team", params(("org" = String, Path), WriteParams), request_body = CreateTeam, responses((status = 201, body = Written<TeamView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn create_team(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<CreateTeam>,
) -> Result<(StatusCode, Json<Written<TeamView>>), AdminError> {
    let out = ops::create_team(&s, &admin, &org, body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/teams/{team}", tag = "teams", summary = "Get a team", params(("org" = String, Path), ("team" = String, Path)), responses((status = 200, body = TeamView), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn get_team(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, team)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<TeamView>), AdminError> {
    let out = ops::get_team(&s, &admin, &org, &team).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(patch, path = "/admin/v1/orgs/{org}/teams/{team}", tag = "teams", summary = "Rename a team (its slug and scope stay; scope: PUT .../scope)", params(("org" = String, Path), ("team" = String, Path), WriteParams), request_body = PatchTeam, responses((status = 200, body = Written<TeamView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn patch_team(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, team)): ApiPath<(String, String)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<PatchTeam>,
) -> Result<(StatusCode, Json<Written<TeamView>>), AdminError> {
    let out = ops::patch_team(&s, &admin, &org, &team, body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(delete, path = "/admin/v1/orgs/{org}/teams/{team}", tag = "teams", summary = "Delete a team with its keys and agents", params(("org" = String, Path), ("team" = String, Path), WriteParams), responses((status = 200, body = Deleted), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn delete_team(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, team)): ApiPath<(String, String)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
) -> Result<(StatusCode, Json<Deleted>), AdminError> {
    let out = ops::delete_team(&s, &admin, &org, &team).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}
