//! Every admin endpoint: extract, authenticate, call [`crate::ops`], answer.
//! One handler per route; the same list feeds the OpenAPI document, so the
//! router cannot disagree.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};

use crate::auth::Admin;
use crate::dto::*;
use crate::error::{AdminError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::ops::{self, OwnerRef};
use crate::state::AdminState;

#[utoipa::path(get, path = "/admin/v1/whoami", tag = "admin", summary = "Who the calling token is", responses((status = 200, body = WhoAmI), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn whoami(
    State(s): State<AdminState>,
    admin: Admin,
) -> Result<(StatusCode, Json<WhoAmI>), AdminError> {
    let out = ops::whoami(&s, &admin).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs", tag = "orgs", summary = "List orgs (an org admin sees only its own)", responses((status = 200, body = Listing<OrgView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn list_orgs(
    State(s): State<AdminState>,
    admin: Admin,
) -> Result<(StatusCode, Json<Listing<OrgView>>), AdminError> {
    let out = ops::list_orgs(&s, &admin).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(post, path = "/admin/v1/orgs", tag = "orgs", summary = "Create an org (platform admin)", params(WriteParams), request_body = CreateOrg, responses((status = 201, body = Written<OrgView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn create_org(
    State(s): State<AdminState>,
    admin: Admin,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<CreateOrg>,
) -> Result<(StatusCode, Json<Written<OrgView>>), AdminError> {
    let out = ops::create_org(&s, &admin, body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}", tag = "orgs", summary = "Get an org", params(("org" = String, Path)), responses((status = 200, body = OrgView), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn get_org(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
) -> Result<(StatusCode, Json<OrgView>), AdminError> {
    let out = ops::get_org(&s, &admin, &org).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(patch, path = "/admin/v1/orgs/{org}", tag = "orgs", summary = "Suspend or resume an org (platform admin)", params(("org" = String, Path), WriteParams), request_body = PatchOrg, responses((status = 200, body = Written<OrgView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn patch_org(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<PatchOrg>,
) -> Result<(StatusCode, Json<Written<OrgView>>), AdminError> {
    let out = ops::patch_org(&s, &admin, &org, body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(delete, path = "/admin/v1/orgs/{org}", tag = "orgs", summary = "Delete an org and everything in it (platform admin)", params(("org" = String, Path), WriteParams), responses((status = 200, body = Deleted), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn delete_org(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(wait): ApiQuery<WriteParams>,
) -> Result<(StatusCode, Json<Deleted>), AdminError> {
    let out = ops::delete_org(&s, &admin, &org).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/admin-tokens", tag = "admin", summary = "List an org's admin tokens (platform admin)", params(("org" = String, Path)), responses((status = 200, body = Listing<AdminTokenView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn list_admin_tokens(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
) -> Result<(StatusCode, Json<Listing<AdminTokenView>>), AdminError> {
    let out = ops::list_admin_tokens(&s, &admin, &org).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(post, path = "/admin/v1/orgs/{org}/admin-tokens", tag = "admin", summary = "Create an org admin token; its secret is returned once (platform admin)", params(("org" = String, Path)), request_body = CreateAdminToken, responses((status = 201, body = Created<AdminTokenView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn create_admin_token(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiJson(body): ApiJson<CreateAdminToken>,
) -> Result<(StatusCode, Json<Created<AdminTokenView>>), AdminError> {
    let out = ops::create_admin_token(&s, &admin, &org, body).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(delete, path = "/admin/v1/orgs/{org}/admin-tokens/{id}", tag = "admin", summary = "Revoke an org admin token (platform admin)", params(("org" = String, Path), ("id" = i64, Path)), responses((status = 200, body = Deleted), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn delete_admin_token(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, id)): ApiPath<(String, i64)>,
) -> Result<(StatusCode, Json<Deleted>), AdminError> {
    let out = ops::delete_admin_token(&s, &admin, &org, id).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/admin-tokens", tag = "admin", summary = "List the platform admin tokens (platform admin)", responses((status = 200, body = Listing<AdminTokenView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn list_platform_admin_tokens(
    State(s): State<AdminState>,
    admin: Admin,
) -> Result<(StatusCode, Json<Listing<AdminTokenView>>), AdminError> {
    let out = ops::list_platform_admin_tokens(&s, &admin).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(post, path = "/admin/v1/admin-tokens", tag = "admin", summary = "Create a platform admin token; its secret is returned once (platform admin)", request_body = CreateAdminToken, responses((status = 201, body = Created<AdminTokenView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn create_platform_admin_token(
    State(s): State<AdminState>,
    admin: Admin,
    ApiJson(body): ApiJson<CreateAdminToken>,
) -> Result<(StatusCode, Json<Created<AdminTokenView>>), AdminError> {
    let out = ops::create_platform_admin_token(&s, &admin, body).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(delete, path = "/admin/v1/admin-tokens/{id}", tag = "admin", summary = "Revoke a platform admin token; the last one cannot be (platform admin)", params(("id" = i64, Path)), responses((status = 200, body = Deleted), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn delete_platform_admin_token(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> Result<(StatusCode, Json<Deleted>), AdminError> {
    let out = ops::delete_platform_admin_token(&s, &admin, id).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/servers", tag = "servers", summary = "List global servers (platform admin)", responses((status = 200, body = Listing<ServerView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn list_global_servers(
    State(s): State<AdminState>,
    admin: Admin,
) -> Result<(StatusCode, Json<Listing<ServerView>>), AdminError> {
    let out = ops::list_servers(&s, &admin, None).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(post, path = "/admin/v1/servers", tag = "servers", summary = "Add a global server (platform admin)", params(WriteParams), request_body = CreateServer, responses((status = 201, body = Written<ServerView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn create_global_server(
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
async fn get_global_server(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(server): ApiPath<String>,
) -> Result<(StatusCode, Json<ServerView>), AdminError> {
    let out = ops::get_server(&s, &admin, None, &server).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(patch, path = "/admin/v1/servers/{server}", tag = "servers", summary = "Change a global server; `enabled` is the gateway-wide kill switch (platform admin)", params(("server" = String, Path), WriteParams), request_body = PatchServer, responses((status = 200, body = Written<ServerView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn patch_global_server(
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
async fn delete_global_server(
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
async fn list_org_servers(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
) -> Result<(StatusCode, Json<Listing<ServerView>>), AdminError> {
    let out = ops::list_servers(&s, &admin, Some(&org)).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(post, path = "/admin/v1/orgs/{org}/servers", tag = "servers", summary = "Add a server owned by the org", params(("org" = String, Path), WriteParams), request_body = CreateServer, responses((status = 201, body = Written<ServerView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn create_org_server(
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
async fn get_org_server(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, server)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<ServerView>), AdminError> {
    let out = ops::get_server(&s, &admin, Some(&org), &server).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(patch, path = "/admin/v1/orgs/{org}/servers/{server}", tag = "servers", summary = "Change an org-owned server", params(("org" = String, Path), ("server" = String, Path), WriteParams), request_body = PatchServer, responses((status = 200, body = Written<ServerView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn patch_org_server(
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
async fn delete_org_server(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, server)): ApiPath<(String, String)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
) -> Result<(StatusCode, Json<Deleted>), AdminError> {
    let out = ops::delete_server(&s, &admin, Some(&org), &server).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/grants", tag = "grants", summary = "List the org's grants", params(("org" = String, Path)), responses((status = 200, body = Listing<GrantView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn list_grants(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
) -> Result<(StatusCode, Json<Listing<GrantView>>), AdminError> {
    let out = ops::list_grants(&s, &admin, &org).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/grants/{server}", tag = "grants", summary = "Get the org's grant of a server", params(("org" = String, Path), ("server" = String, Path)), responses((status = 200, body = GrantView), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn get_grant(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, server)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<GrantView>), AdminError> {
    let out = ops::get_grant(&s, &admin, &org, &server).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(put, path = "/admin/v1/orgs/{org}/grants/{server}", tag = "grants", summary = "Create or replace the org's grant of a server (global servers: platform admin)", params(("org" = String, Path), ("server" = String, Path), WriteParams), request_body = PutGrant, responses((status = 200, body = Written<GrantView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn put_grant(
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
async fn patch_grant(
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
async fn delete_grant(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, server)): ApiPath<(String, String)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
) -> Result<(StatusCode, Json<Deleted>), AdminError> {
    let out = ops::delete_grant(&s, &admin, &org, &server).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/teams", tag = "teams", summary = "List teams", params(("org" = String, Path), ListParams), responses((status = 200, body = Listing<TeamView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn list_teams(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(page): ApiQuery<ListParams>,
) -> Result<(StatusCode, Json<Listing<TeamView>>), AdminError> {
    let out = ops::list_teams(&s, &admin, &org, page).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(post, path = "/admin/v1/orgs/{org}/teams", tag = "teams", summary = "Create a team", params(("org" = String, Path), WriteParams), request_body = CreateTeam, responses((status = 201, body = Written<TeamView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn create_team(
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
async fn get_team(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, team)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<TeamView>), AdminError> {
    let out = ops::get_team(&s, &admin, &org, &team).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(patch, path = "/admin/v1/orgs/{org}/teams/{team}", tag = "teams", summary = "Rename a team (its slug and scope stay; scope: PUT .../scope)", params(("org" = String, Path), ("team" = String, Path), WriteParams), request_body = PatchTeam, responses((status = 200, body = Written<TeamView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn patch_team(
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
async fn delete_team(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, team)): ApiPath<(String, String)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
) -> Result<(StatusCode, Json<Deleted>), AdminError> {
    let out = ops::delete_team(&s, &admin, &org, &team).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/agents", tag = "agents", summary = "List agents", params(("org" = String, Path), ListParams), responses((status = 200, body = Listing<AgentView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn list_agents(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(page): ApiQuery<ListParams>,
) -> Result<(StatusCode, Json<Listing<AgentView>>), AdminError> {
    let out = ops::list_agents(&s, &admin, &org, page).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(post, path = "/admin/v1/orgs/{org}/agents", tag = "agents", summary = "Create an agent (starts with an empty scope)", params(("org" = String, Path), WriteParams), request_body = CreateAgent, responses((status = 201, body = Written<AgentView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn create_agent(
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
async fn get_agent(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, agent)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<AgentView>), AdminError> {
    let out = ops::get_agent(&s, &admin, &org, &agent).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(patch, path = "/admin/v1/orgs/{org}/agents/{agent}", tag = "agents", summary = "Rename an agent (its slug and scope stay; scope: PUT .../scope)", params(("org" = String, Path), ("agent" = String, Path), WriteParams), request_body = PatchAgent, responses((status = 200, body = Written<AgentView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn patch_agent(
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
async fn delete_agent(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, agent)): ApiPath<(String, String)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
) -> Result<(StatusCode, Json<Deleted>), AdminError> {
    let out = ops::delete_agent(&s, &admin, &org, &agent).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/end-users", tag = "end users", summary = "List end users", params(("org" = String, Path), ListParams), responses((status = 200, body = Listing<EndUserView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn list_end_users(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(page): ApiQuery<ListParams>,
) -> Result<(StatusCode, Json<Listing<EndUserView>>), AdminError> {
    let out = ops::list_end_users(&s, &admin, &org, page).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(post, path = "/admin/v1/orgs/{org}/end-users", tag = "end users", summary = "Create an end user", params(("org" = String, Path), WriteParams), request_body = CreateEndUser, responses((status = 201, body = Written<EndUserView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn create_end_user(
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
async fn get_end_user(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, end_user)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<EndUserView>), AdminError> {
    let out = ops::get_end_user(&s, &admin, &org, &end_user).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(patch, path = "/admin/v1/orgs/{org}/end-users/{end_user}", tag = "end users", summary = "Rename an end user (its external id and scope stay; scope: PUT .../scope)", params(("org" = String, Path), ("end_user" = String, Path), WriteParams), request_body = PatchEndUser, responses((status = 200, body = Written<EndUserView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn patch_end_user(
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
async fn delete_end_user(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, end_user)): ApiPath<(String, String)>,
    ApiQuery(wait): ApiQuery<WriteParams>,
) -> Result<(StatusCode, Json<Deleted>), AdminError> {
    let out = ops::delete_end_user(&s, &admin, &org, &end_user).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/toolsets", tag = "toolsets", summary = "List toolsets", params(("org" = String, Path), ListParams), responses((status = 200, body = Listing<ToolsetView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn list_toolsets(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(page): ApiQuery<ListParams>,
) -> Result<(StatusCode, Json<Listing<ToolsetView>>), AdminError> {
    let out = ops::list_toolsets(&s, &admin, &org, page).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(post, path = "/admin/v1/orgs/{org}/toolsets", tag = "toolsets", summary = "Create a toolset (within the org's grants)", params(("org" = String, Path), WriteParams), request_body = CreateToolset, responses((status = 201, body = Written<ToolsetView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn create_toolset(
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
async fn get_toolset(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, toolset)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<ToolsetView>), AdminError> {
    let out = ops::get_toolset(&s, &admin, &org, &toolset).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(put, path = "/admin/v1/orgs/{org}/toolsets/{toolset}/servers", tag = "toolsets", summary = "Replace a toolset's servers", params(("org" = String, Path), ("toolset" = String, Path), WriteParams), request_body = PutToolsetServers, responses((status = 200, body = Written<ToolsetView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn put_toolset_servers(
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
async fn patch_toolset(
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
async fn delete_toolset(
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
async fn toolset_options(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, toolset)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<ScopeOptions>), AdminError> {
    let out = ops::scope_options(&s, &admin, &org, OwnerRef::Toolset(toolset)).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/keys", tag = "keys", summary = "List keys (never their secrets)", params(("org" = String, Path), ListParams), responses((status = 200, body = Listing<KeyView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn list_keys(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(page): ApiQuery<ListParams>,
) -> Result<(StatusCode, Json<Listing<KeyView>>), AdminError> {
    let out = ops::list_keys(&s, &admin, &org, page).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(post, path = "/admin/v1/orgs/{org}/keys", tag = "keys", summary = "Create a key; its secret is returned once", params(("org" = String, Path), WriteParams), request_body = CreateKey, responses((status = 201, body = Created<KeyView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn create_key(
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
async fn get_key(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, id)): ApiPath<(String, i64)>,
) -> Result<(StatusCode, Json<KeyView>), AdminError> {
    let out = ops::get_key(&s, &admin, &org, id).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(patch, path = "/admin/v1/orgs/{org}/keys/{id}", tag = "keys", summary = "Rename a key or change its expiry or assertion rights", params(("org" = String, Path), ("id" = i64, Path), WriteParams), request_body = PatchKey, responses((status = 200, body = Written<KeyView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn patch_key(
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
async fn revoke_key(
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
async fn delete_key(
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
async fn key_access(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, id)): ApiPath<(String, i64)>,
    ApiQuery(query): ApiQuery<AccessParams>,
) -> Result<(StatusCode, Json<AccessView>), AdminError> {
    let out = ops::key_access(&s, &admin, &org, id, query).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/teams/{team}/scope", tag = "scopes", summary = "The team's scope", params(("org" = String, Path), ("team" = String, Path)), responses((status = 200, body = ScopeSpec), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn get_team_scope(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, owner)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<ScopeSpec>), AdminError> {
    let out = ops::get_scope(&s, &admin, &org, OwnerRef::Team(owner)).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(put, path = "/admin/v1/orgs/{org}/teams/{team}/scope", tag = "scopes", summary = "Set the team's scope: \"inherit\" or grants within the parent chain (422 lists offending entries)", params(("org" = String, Path), ("team" = String, Path), WriteParams), request_body = ScopeSpec, responses((status = 200, body = Written<ScopeSpec>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn put_team_scope(
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
async fn team_scope_options(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, owner)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<ScopeOptions>), AdminError> {
    let out = ops::scope_options(&s, &admin, &org, OwnerRef::Team(owner)).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/keys/{id}/scope", tag = "scopes", summary = "The key's scope", params(("org" = String, Path), ("id" = i64, Path)), responses((status = 200, body = ScopeSpec), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn get_key_scope(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, owner)): ApiPath<(String, i64)>,
) -> Result<(StatusCode, Json<ScopeSpec>), AdminError> {
    let out = ops::get_scope(&s, &admin, &org, OwnerRef::Key(owner)).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(put, path = "/admin/v1/orgs/{org}/keys/{id}/scope", tag = "scopes", summary = "Set the key's scope: \"inherit\" or grants within the parent chain (422 lists offending entries)", params(("org" = String, Path), ("id" = i64, Path), WriteParams), request_body = ScopeSpec, responses((status = 200, body = Written<ScopeSpec>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn put_key_scope(
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
async fn key_scope_options(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, owner)): ApiPath<(String, i64)>,
) -> Result<(StatusCode, Json<ScopeOptions>), AdminError> {
    let out = ops::scope_options(&s, &admin, &org, OwnerRef::Key(owner)).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/end-users/{end_user}/scope", tag = "scopes", summary = "The end user's scope", params(("org" = String, Path), ("end_user" = String, Path)), responses((status = 200, body = ScopeSpec), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn get_end_user_scope(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, owner)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<ScopeSpec>), AdminError> {
    let out = ops::get_scope(&s, &admin, &org, OwnerRef::EndUser(owner)).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(put, path = "/admin/v1/orgs/{org}/end-users/{end_user}/scope", tag = "scopes", summary = "Set the end user's scope: \"inherit\" or grants within the parent chain (422 lists offending entries)", params(("org" = String, Path), ("end_user" = String, Path), WriteParams), request_body = ScopeSpec, responses((status = 200, body = Written<ScopeSpec>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn put_end_user_scope(
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
async fn end_user_scope_options(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, owner)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<ScopeOptions>), AdminError> {
    let out = ops::scope_options(&s, &admin, &org, OwnerRef::EndUser(owner)).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/agents/{agent}/scope", tag = "scopes", summary = "The agent's scope", params(("org" = String, Path), ("agent" = String, Path)), responses((status = 200, body = ScopeSpec), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn get_agent_scope(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, owner)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<ScopeSpec>), AdminError> {
    let out = ops::get_scope(&s, &admin, &org, OwnerRef::Agent(owner)).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(put, path = "/admin/v1/orgs/{org}/agents/{agent}/scope", tag = "scopes", summary = "Set the agent's scope: \"inherit\" or grants within the parent chain (422 lists offending entries)", params(("org" = String, Path), ("agent" = String, Path), WriteParams), request_body = ScopeSpec, responses((status = 200, body = Written<ScopeSpec>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn put_agent_scope(
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
async fn agent_scope_options(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath((org, owner)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<ScopeOptions>), AdminError> {
    let out = ops::scope_options(&s, &admin, &org, OwnerRef::Agent(owner)).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/explain", tag = "inspect", summary = "The engine's decision and trace for a principal, server and tool at the current revision", params(("org" = String, Path), ExplainParams), responses((status = 200, body = ExplainView), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn explain(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(query): ApiQuery<ExplainParams>,
) -> Result<(StatusCode, Json<ExplainView>), AdminError> {
    let out = ops::explain(&s, &admin, &org, query).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/replicas", tag = "inspect", summary = "Replicas with heartbeat and applied revision", responses((status = 200, body = Listing<ReplicaView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn list_replicas(
    State(s): State<AdminState>,
    admin: Admin,
) -> Result<(StatusCode, Json<Listing<ReplicaView>>), AdminError> {
    let out = ops::list_replicas(&s, &admin).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/audit", tag = "inspect", summary = "The audit log, newest first, filtered and paginated", params(AuditParams), responses((status = 200, body = AuditPage), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn list_audit(
    State(s): State<AdminState>,
    admin: Admin,
    ApiQuery(query): ApiQuery<AuditParams>,
) -> Result<(StatusCode, Json<AuditPage>), AdminError> {
    let out = ops::list_audit(&s, &admin, query).await?;
    Ok((StatusCode::OK, Json(out)))
}

/// The `/admin/v1` routes (without state).
pub(crate) fn routes() -> Router<AdminState> {
    Router::new()
        .route("/admin/v1/whoami", get(whoami))
        .route("/admin/v1/orgs", get(list_orgs).post(create_org))
        .route(
            "/admin/v1/orgs/{org}",
            get(get_org).patch(patch_org).delete(delete_org),
        )
        .route(
            "/admin/v1/orgs/{org}/admin-tokens",
            get(list_admin_tokens).post(create_admin_token),
        )
        .route(
            "/admin/v1/orgs/{org}/admin-tokens/{id}",
            delete(delete_admin_token),
        )
        .route(
            "/admin/v1/admin-tokens",
            get(list_platform_admin_tokens).post(create_platform_admin_token),
        )
        .route(
            "/admin/v1/admin-tokens/{id}",
            delete(delete_platform_admin_token),
        )
        .route(
            "/admin/v1/servers",
            get(list_global_servers).post(create_global_server),
        )
        .route(
            "/admin/v1/servers/{server}",
            get(get_global_server)
                .patch(patch_global_server)
                .delete(delete_global_server),
        )
        .route(
            "/admin/v1/orgs/{org}/servers",
            get(list_org_servers).post(create_org_server),
        )
        .route(
            "/admin/v1/orgs/{org}/servers/{server}",
            get(get_org_server)
                .patch(patch_org_server)
                .delete(delete_org_server),
        )
        .route("/admin/v1/orgs/{org}/grants", get(list_grants))
        .route(
            "/admin/v1/orgs/{org}/grants/{server}",
            get(get_grant)
                .put(put_grant)
                .patch(patch_grant)
                .delete(delete_grant),
        )
        .route(
            "/admin/v1/orgs/{org}/teams",
            get(list_teams).post(create_team),
        )
        .route(
            "/admin/v1/orgs/{org}/teams/{team}",
            get(get_team).patch(patch_team).delete(delete_team),
        )
        .route(
            "/admin/v1/orgs/{org}/agents",
            get(list_agents).post(create_agent),
        )
        .route(
            "/admin/v1/orgs/{org}/agents/{agent}",
            get(get_agent).patch(patch_agent).delete(delete_agent),
        )
        .route(
            "/admin/v1/orgs/{org}/end-users",
            get(list_end_users).post(create_end_user),
        )
        .route(
            "/admin/v1/orgs/{org}/end-users/{end_user}",
            get(get_end_user)
                .patch(patch_end_user)
                .delete(delete_end_user),
        )
        .route(
            "/admin/v1/orgs/{org}/toolsets",
            get(list_toolsets).post(create_toolset),
        )
        .route(
            "/admin/v1/orgs/{org}/toolsets/{toolset}",
            get(get_toolset).patch(patch_toolset).delete(delete_toolset),
        )
        .route(
            "/admin/v1/orgs/{org}/toolsets/{toolset}/servers",
            put(put_toolset_servers),
        )
        .route(
            "/admin/v1/orgs/{org}/toolsets/{toolset}/options",
            get(toolset_options),
        )
        .route("/admin/v1/orgs/{org}/keys", get(list_keys).post(create_key))
        .route(
            "/admin/v1/orgs/{org}/keys/{id}",
            get(get_key).patch(patch_key).delete(delete_key),
        )
        .route("/admin/v1/orgs/{org}/keys/{id}/revoke", post(revoke_key))
        .route("/admin/v1/orgs/{org}/keys/{id}/access", get(key_access))
        .route(
            "/admin/v1/orgs/{org}/teams/{team}/scope",
            get(get_team_scope).put(put_team_scope),
        )
        .route(
            "/admin/v1/orgs/{org}/teams/{team}/scope/options",
            get(team_scope_options),
        )
        .route(
            "/admin/v1/orgs/{org}/keys/{id}/scope",
            get(get_key_scope).put(put_key_scope),
        )
        .route(
            "/admin/v1/orgs/{org}/keys/{id}/scope/options",
            get(key_scope_options),
        )
        .route(
            "/admin/v1/orgs/{org}/end-users/{end_user}/scope",
            get(get_end_user_scope).put(put_end_user_scope),
        )
        .route(
            "/admin/v1/orgs/{org}/end-users/{end_user}/scope/options",
            get(end_user_scope_options),
        )
        .route(
            "/admin/v1/orgs/{org}/agents/{agent}/scope",
            get(get_agent_scope).put(put_agent_scope),
        )
        .route(
            "/admin/v1/orgs/{org}/agents/{agent}/scope/options",
            get(agent_scope_options),
        )
        .route("/admin/v1/orgs/{org}/explain", get(explain))
        .route("/admin/v1/replicas", get(list_replicas))
        .route("/admin/v1/audit", get(list_audit))
}

/// Paths of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    whoami,
    list_orgs,
    create_org,
    get_org,
    patch_org,
    delete_org,
    list_admin_tokens,
    create_admin_token,
    delete_admin_token,
    list_platform_admin_tokens,
    create_platform_admin_token,
    delete_platform_admin_token,
    list_global_servers,
    create_global_server,
    get_global_server,
    patch_global_server,
    delete_global_server,
    list_org_servers,
    create_org_server,
    get_org_server,
    patch_org_server,
    delete_org_server,
    list_grants,
    get_grant,
    put_grant,
    patch_grant,
    delete_grant,
    list_teams,
    create_team,
    get_team,
    patch_team,
    delete_team,
    list_agents,
    create_agent,
    get_agent,
    patch_agent,
    delete_agent,
    list_end_users,
    create_end_user,
    get_end_user,
    patch_end_user,
    delete_end_user,
    list_toolsets,
    create_toolset,
    get_toolset,
    patch_toolset,
    put_toolset_servers,
    delete_toolset,
    toolset_options,
    list_keys,
    create_key,
    get_key,
    patch_key,
    revoke_key,
    delete_key,
    key_access,
    get_team_scope,
    put_team_scope,
    team_scope_options,
    get_key_scope,
    put_key_scope,
    key_scope_options,
    get_end_user_scope,
    put_end_user_scope,
    end_user_scope_options,
    get_agent_scope,
    put_agent_scope,
    agent_scope_options,
    explain,
    list_replicas,
    list_audit
))]
pub(crate) struct Paths;
