//! Every admin endpoint: extract, authenticate, call [`crate::ops`], answer.
//! One handler per route, in a module per resource; the route table and the
//! list that feeds the OpenAPI document stand here side by side, so the
//! router cannot disagree.

mod admin;
mod agents;
mod end_users;
mod grants;
mod inspect;
mod keys;
mod orgs;
mod scopes;
mod servers;
mod teams;
mod toolsets;

use axum::routing::{delete, get, post, put};
use axum::Router;

use crate::state::AdminState;

/// The `/admin/v1` routes (without state).
pub(crate) fn routes() -> Router<AdminState> {
    Router::new()
        .route("/admin/v1/whoami", get(admin::whoami))
        .route(
            "/admin/v1/orgs",
            get(orgs::list_orgs).post(orgs::create_org),
        )
        .route(
            "/admin/v1/orgs/{org}",
            get(orgs::get_org)
                .patch(orgs::patch_org)
                .delete(orgs::delete_org),
        )
        .route(
            "/admin/v1/orgs/{org}/admin-tokens",
            get(admin::list_admin_tokens).post(admin::create_admin_token),
        )
        .route(
            "/admin/v1/orgs/{org}/admin-tokens/{id}",
            delete(admin::delete_admin_token),
        )
        .route(
            "/admin/v1/admin-tokens",
            get(admin::list_platform_admin_tokens).post(admin::create_platform_admin_token),
        )
        .route(
            "/admin/v1/admin-tokens/{id}",
            delete(admin::delete_platform_admin_token),
        )
        .route(
            "/admin/v1/servers",
            get(servers::list_global_servers).post(servers::create_global_server),
        )
        .route(
            "/admin/v1/servers/{server}",
            get(servers::get_global_server)
                .patch(servers::patch_global_server)
                .delete(servers::delete_global_server),
        )
        .route(
            "/admin/v1/orgs/{org}/servers",
            get(servers::list_org_servers).post(servers::create_org_server),
        )
        .route(
            "/admin/v1/orgs/{org}/servers/{server}",
            get(servers::get_org_server)
                .patch(servers::patch_org_server)
                .delete(servers::delete_org_server),
        )
        .route("/admin/v1/orgs/{org}/grants", get(grants::list_grants))
        .route(
            "/admin/v1/orgs/{org}/grants/{server}",
            get(grants::get_grant)
                .put(grants::put_grant)
                .patch(grants::patch_grant)
                .delete(grants::delete_grant),
        )
        .route(
            "/admin/v1/orgs/{org}/teams",
            get(teams::list_teams).post(teams::create_team),
        )
        .route(
            "/admin/v1/orgs/{org}/teams/{team}",
            get(teams::get_team)
                .patch(teams::patch_team)
                .delete(teams::delete_team),
        )
        .route(
            "/admin/v1/orgs/{org}/agents",
            get(agents::list_agents).post(agents::create_agent),
        )
        .route(
            "/admin/v1/orgs/{org}/agents/{agent}",
            get(agents::get_agent)
                .patch(agents::patch_agent)
                .delete(agents::delete_agent),
        )
        .route(
            "/admin/v1/orgs/{org}/end-users",
            get(end_users::list_end_users).post(end_users::create_end_user),
        )
        .route(
            "/admin/v1/orgs/{org}/end-users/{end_user}",
            get(end_users::get_end_user)
                .patch(end_users::patch_end_user)
                .delete(end_users::delete_end_user),
        )
        .route(
            "/admin/v1/orgs/{org}/toolsets",
            get(toolsets::list_toolsets).post(toolsets::create_toolset),
        )
        .route(
            "/admin/v1/orgs/{org}/toolsets/{toolset}",
            get(toolsets::get_toolset)
                .patch(toolsets::patch_toolset)
                .delete(toolsets::delete_toolset),
        )
        .route(
            "/admin/v1/orgs/{org}/toolsets/{toolset}/servers",
            put(toolsets::put_toolset_servers),
        )
        .route(
            "/admin/v1/orgs/{org}/toolsets/{toolset}/options",
            get(toolsets::toolset_options),
        )
        .route(
            "/admin/v1/orgs/{org}/keys",
            get(keys::list_keys).post(keys::create_key),
        )
        .route(
            "/admin/v1/orgs/{org}/keys/{id}",
            get(keys::get_key)
                .patch(keys::patch_key)
                .delete(keys::delete_key),
        )
        .route(
            "/admin/v1/orgs/{org}/keys/{id}/revoke",
            post(keys::revoke_key),
        )
        .route(
            "/admin/v1/orgs/{org}/keys/{id}/access",
            get(keys::key_access),
        )
        .route(
            "/admin/v1/orgs/{org}/teams/{team}/scope",
            get(scopes::get_team_scope).put(scopes::put_team_scope),
        )
        .route(
            "/admin/v1/orgs/{org}/teams/{team}/scope/options",
            get(scopes::team_scope_options),
        )
        .route(
            "/admin/v1/orgs/{org}/keys/{id}/scope",
            get(scopes::get_key_scope).put(scopes::put_key_scope),
        )
        .route(
            "/admin/v1/orgs/{org}/keys/{id}/scope/options",
            get(scopes::key_scope_options),
        )
        .route(
            "/admin/v1/orgs/{org}/end-users/{end_user}/scope",
            get(scopes::get_end_user_scope).put(scopes::put_end_user_scope),
        )
        .route(
            "/admin/v1/orgs/{org}/end-users/{end_user}/scope/options",
            get(scopes::end_user_scope_options),
        )
        .route(
            "/admin/v1/orgs/{org}/agents/{agent}/scope",
            get(scopes::get_agent_scope).put(scopes::put_agent_scope),
        )
        .route(
            "/admin/v1/orgs/{org}/agents/{agent}/scope/options",
            get(scopes::agent_scope_options),
        )
        .route("/admin/v1/orgs/{org}/explain", get(inspect::explain))
        .route("/admin/v1/replicas", get(inspect::list_replicas))
        .route("/admin/v1/audit", get(inspect::list_audit))
}

/// Paths of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    admin::whoami,
    orgs::list_orgs,
    orgs::create_org,
    orgs::get_org,
    orgs::patch_org,
    orgs::delete_org,
    admin::list_admin_tokens,
    admin::create_admin_token,
    admin::delete_admin_token,
    admin::list_platform_admin_tokens,
    admin::create_platform_admin_token,
    admin::delete_platform_admin_token,
    servers::list_global_servers,
    servers::create_global_server,
    servers::get_global_server,
    servers::patch_global_server,
    servers::delete_global_server,
    servers::list_org_servers,
    servers::create_org_server,
    servers::get_org_server,
    servers::patch_org_server,
    servers::delete_org_server,
    grants::list_grants,
    grants::get_grant,
    grants::put_grant,
    grants::patch_grant,
    grants::delete_grant,
    teams::list_teams,
    teams::create_team,
    teams::get_team,
    teams::patch_team,
    teams::delete_team,
    agents::list_agents,
    agents::create_agent,
    agents::get_agent,
    agents::patch_agent,
    agents::delete_agent,
    end_users::list_end_users,
    end_users::create_end_user,
    end_users::get_end_user,
    end_users::patch_end_user,
    end_users::delete_end_user,
    toolsets::list_toolsets,
    toolsets::create_toolset,
    toolsets::get_toolset,
    toolsets::patch_toolset,
    toolsets::put_toolset_servers,
    toolsets::delete_toolset,
    toolsets::toolset_options,
    keys::list_keys,
    keys::create_key,
    keys::get_key,
    keys::patch_key,
    keys::revoke_key,
    keys::delete_key,
    keys::key_access,
    scopes::get_team_scope,
    scopes::put_team_scope,
    scopes::team_scope_options,
    scopes::get_key_scope,
    scopes::put_key_scope,
    scopes::key_scope_options,
    scopes::get_end_user_scope,
    scopes::put_end_user_scope,
    scopes::end_user_scope_options,
    scopes::get_agent_scope,
    scopes::put_agent_scope,
    scopes::agent_scope_options,
    inspect::explain,
    inspect::list_replicas,
    inspect::list_audit
))]
pub(crate) struct Paths;
