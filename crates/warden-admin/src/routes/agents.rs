//! Agents.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::auth::Admin;
use crate::dto::*;
use crate::error::{AdminError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::ops;
use crate::state::AdminState;

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/agents", tag = "agents", summary = "List agents", params(("org" = String, Path), ListParams), responses((status = 200, body = Listing<AgentView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn list_agents(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(page): ApiQuery<ListParams>,
) -> Result<(StatusCode, Json<Listing<AgentView>>), AdminError> {
    let out = ops::list_agents(&s, &admin, &org, page).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(post, path = "/admin/v1/orgs/{org}/agents", tag = "agents", summary = "Create an agent (starts with an empty scope)", params(("org" = String, Path), WriteParams), request_body = CreateAgent, responses((status = 201, body = Written<AgentView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn create_agent(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<CreateAgent>,
) -> Result<(StatusCode, Json<Written<AgentView>>), AdminError> {
    let out = ops::create_agent(&s, &admin, &org, body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/agents/{agent}", tag = "agents", summary = "Get an agent", params(("org" = String, Path), ("agent" = String, Path)), responses((status = 200, body = AgentView), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn get_agent(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, agent)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<AgentView>), AdminError> {
    let out = ops::get_agent(&s, &admin, &org, &agent).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(patch, path = "/admin/v1/orgs/{org}/agents/{agent}", tag = "agents", summary = "Rename an agent (its slug and scope stay; scope: PUT .../scope)", params(("org" = String, Path), ("agent" = String, Path), WriteParams), request_body = PatchAgent, responses((status = 200, body = Written<AgentView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn patch_agent(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, agent)): ApiPath<(String, String)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<PatchAgent>,
) -> Result<(StatusCode, Json<Written<AgentView>>), AdminError> {
    let out = ops::patch_agent(&s, &admin, &org, &agent, body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(delete, path = "/admin/v1/orgs/{org}/agents/{agent}", tag = "agents", summary = "Delete an agent and the keys bound to it", params(("org" = String, Path), ("agent" = String, Path), WriteParams), responses((status = 200, body = Deleted), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn delete_agent(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, agent)): ApiPath<(String, String)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
) -> Result<(StatusCode, Json<Deleted>), AdminError> {
    let out = ops::delete_agent(&s, &admin, &org, &agent).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}
