//! Upstream servers and org grants.
//!
//! Global servers and what an org is granted of them are the platform's to
//! give: an org admin may switch a grant of a global server on or off and
//! narrow its filter, never widen it. An org's own servers are the org's,
//! within the platform's rules for upstreams: a stdio server runs a command
//! as Warden's user, so only a platform admin creates or changes one (and
//! only with a command in `stdio_allowed_commands`, when that is set); a URL
//! an org admin sets must keep to the egress policy, now and (the server
//! row is marked `egress_restricted`) at every connection.

use std::collections::BTreeMap;

use warden_store::{NewServer, OrgGrant, OrgGrantPatch, Secret, Server, ServerPatch, Transport};

use super::convert::Names;
use crate::auth::Admin;
use crate::dto::*;
use crate::error::AdminError;
use crate::state::AdminState;

fn transport_from(spec: TransportSpec) -> Transport {
    match spec {
        TransportSpec::Http { url } => Transport::Http { url },
        TransportSpec::Stdio { command, args, env } => Transport::Stdio { command, args, env },
    }
}

fn transport_view(t: &Transport) -> TransportSpec {
    match t.clone() {
        Transport::Http { url } => TransportSpec::Http { url },
        Transport::Stdio { command, args, env } => TransportSpec::Stdio { command, args, env },
    }
}

fn check_transport(spec: &TransportSpec) -> Result<(), AdminError> {
    match spec {
        TransportSpec::Http { url } => {
            let lower = url.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) || url.len() < 10 {
                return Err(AdminError::invalid(
                    "transport.url",
                    format!("transport.url {url:?} must be an http:// or https:// URL"),
                ));
            }
        }
        TransportSpec::Stdio { command, .. } => {
            if command.trim().is_empty() {
                return Err(AdminError::invalid(
                    "transport.command",
                    "transport.command must not be empty",
                ));
            }
        }
    }
    Ok(())
}

/// May `admin` reach an upstream this way? Stdio: platform admins only,
/// and only allowed commands. HTTP from an org admin: the URL must keep to
/// the platform's egress policy for every address its host resolves to now.
async fn check_upstream_rules(
    s: &AdminState,
    admin: &Admin,
    spec: &TransportSpec,
) -> Result<(), AdminError> {
    match spec {
        TransportSpec::Stdio { command, .. } => {
            if !admin.is_platform() {
                return Err(AdminError::StdioRequiresPlatformAdmin);
            }
            if !s.upstream_policy().stdio_command_allowed(command) {
                return Err(AdminError::StdioCommandNotAllowed {
                    command: command.clone(),
                });
            }
        }
        TransportSpec::Http { url } if !admin.is_platform() => {
            s.upstream_policy()
                .egress
                .check_url_resolved(url)
                .await
                .map_err(|reason| AdminError::UpstreamUrlForbidden { reason })?;
        }
        TransportSpec::Http { .. } => {}
    }
    Ok(())
}

/// Whether the gateway must keep `spec`, written by `admin`, to the
/// egress policy: an HTTP URL an org admin set.
fn egress_restricted(admin: &Admin, spec: &TransportSpec) -> bool {
    !admin.is_platform() && matches!(spec, TransportSpec::Http { .. })
}

fn secrets(headers: BTreeMap<String, String>) -> BTreeMap<String, Secret> {
    headers
        .into_iter()
        .map(|(k, v)| (k, Secret::new(v)))
        .collect()
}

pub(crate) fn server_view(s: &AdminState, server: &Server) -> ServerView {
    ServerView {
        slug: server.slug.clone(),
        name: server.name.clone(),
        owner_org: server.owner_org.map(|o| Names(&s.snapshot()).org(o)),
        enabled: server.enabled,
        transport: transport_view(&server.transport),
        secret_header_names: server.secret_header_names.clone(),
        timeout_ms: server.timeout_ms,
        egress_restricted: server.egress_restricted,
    }
}

impl AdminState {
    /// A global server (`org: None`, platform admins only) or one the org
    /// owns, by slug.
    async fn owned_server(
        &self,
        admin: &Admin,
        org: Option<&str>,
        slug: &str,
    ) -> Result<Server, AdminError> {
        let owner = match org {
            Some(org) => Some(self.org(admin, org).await?.id),
            None => {
                admin.require_platform()?;
                None
            }
        };
        self.store()
            .get_server_by_slug(owner, slug)
            .await
            .map_err(|e| self.error(e))?
            .ok_or_else(|| AdminError::not_found("server", slug))
    }
}

pub async fn list_servers(
    s: &AdminState,
    admin: &Admin,
    org: Option<&str>,
) -> Result<Listing<ServerView>, AdminError> {
    let owner = match org {
        Some(org) => Some(s.org(admin, org).await?.id),
        None => {
            admin.require_platform()?;
            None
        }
    };
    let revision = s.live().revision();
    let servers = s
        .store()
        .list_servers(owner)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Listing::all(
        revision,
        servers
            .iter()
            .filter(|srv| srv.owner_org == owner)
            .map(|srv| server_view(s, srv))
            .collect(),
    ))
}

pub async fn get_server(
    s: &AdminState,
    admin: &Admin,
    org: Option<&str>,
    slug: &str,
) -> Result<ServerView, AdminError> {
    Ok(server_view(s, &s.owned_server(admin, org, slug).await?))
}

pub async fn create_server(
    s: &AdminState,
    admin: &Admin,
    org: Option<&str>,
    body: CreateServer,
) -> Result<Written<ServerView>, AdminError> {
    let owner_org = match org {
        Some(org) => Some(s.org(admin, org).await?.id),
        None => {
            admin.require_platform()?;
            None
        }
    };
    check_transport(&body.transport)?;
    check_upstream_rules(s, admin, &body.transport).await?;
    let restricted = egress_restricted(admin, &body.transport);
    let mut new = NewServer::new(body.slug, owner_org, transport_from(body.transport));
    new.egress_restricted = restricted;
    new.name = body.name.unwrap_or_default();
    new.secret_headers = secrets(body.secret_headers);
    new.enabled = body.enabled;
    if let Some(t) = body.timeout_ms {
        new.timeout_ms = t;
    }
    let w = s
        .store()
        .create_server(&admin.actor, new)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: server_view(s, &w.value),
    })
}

pub async fn patch_server(
    s: &AdminState,
    admin: &Admin,
    org: Option<&str>,
    slug: &str,
    body: PatchServer,
) -> Result<Written<ServerView>, AdminError> {
    let server = s.owned_server(admin, org, slug).await?;
    // A stdio server's command, arguments and environment (its secret
    // headers) are the platform's; an org admin may rename, enable or
    // disable it, and change its timeout.
    let changes_how_it_runs = body.transport.is_some() || body.secret_headers.is_some();
    if matches!(server.transport, Transport::Stdio { .. })
        && changes_how_it_runs
        && !admin.is_platform()
    {
        return Err(AdminError::StdioRequiresPlatformAdmin);
    }
    if let Some(t) = &body.transport {
        check_transport(t)?;
        check_upstream_rules(s, admin, t).await?;
    }
    let patch = ServerPatch {
        slug: None,
        name: body.name,
        egress_restricted: body.transport.as_ref().map(|t| egress_restricted(admin, t)),
        transport: body.transport.map(transport_from),
        secret_headers: body.secret_headers.map(secrets),
        enabled: body.enabled,
        timeout_ms: body.timeout_ms,
    };
    let w = s
        .store()
        .update_server(&admin.actor, server.id, patch)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: server_view(s, &w.value),
    })
}

pub async fn delete_server(
    s: &AdminState,
    admin: &Admin,
    org: Option<&str>,
    slug: &str,
) -> Result<Deleted, AdminError> {
    let server = s.owned_server(admin, org, slug).await?;
    let revision = s
        .store()
        .delete_server(&admin.actor, server.id)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Deleted { revision })
}

// ---------------------------------------------------------------- grants

fn grant_view(slug: &str, g: &OrgGrant) -> GrantView {
    GrantView {
        server: slug.to_owned(),
        enabled: g.enabled,
        filter: g.filter.clone(),
    }
}

/// The org and the server a grant path names: the server must be global
/// or the org's own.
async fn grant_target(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    server: &str,
) -> Result<(warden_store::Org, Server), AdminError> {
    let org = s.org(admin, org).await?;
    let server = s
        .store()
        .find_server_for_org(org.id, server)
        .await
        .map_err(|e| s.error(e))?
        .ok_or_else(|| AdminError::not_found("server", server))?;
    Ok((org, server))
}

/// May `admin` give the org `filter` over a grant that is now `current`?
/// The org's own servers: always. Global servers: platform admins, or an
/// org admin narrowing an existing grant.
fn may_set_filter(
    admin: &Admin,
    server: &Server,
    current: Option<&OrgGrant>,
    filter: &warden_policy::ToolFilter,
) -> Result<(), AdminError> {
    if admin.is_platform() || server.owner_org.is_some() {
        return Ok(());
    }
    match current {
        Some(g) if filter.is_subset_of(&g.filter) => Ok(()),
        _ => Err(AdminError::PlatformAdminRequired),
    }
}

pub async fn list_grants(
    s: &AdminState,
    admin: &Admin,
    org: &str,
) -> Result<Listing<GrantView>, AdminError> {
    let org = s.org(admin, org).await?;
    let revision = s.live().revision();
    let grants = s
        .store()
        .list_org_grants(org.id)
        .await
        .map_err(|e| s.error(e))?;
    let snapshot = s.snapshot();
    let names = Names(&snapshot);
    Ok(Listing::all(
        revision,
        grants
            .iter()
            .map(|g| grant_view(&names.server(g.server), g))
            .collect(),
    ))
}

pub async fn get_grant(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    server: &str,
) -> Result<GrantView, AdminError> {
    let (org, srv) = grant_target(s, admin, org, server).await?;
    let grant = s
        .store()
        .get_org_grant(org.id, srv.id)
        .await
        .map_err(|e| s.error(e))?
        .ok_or_else(|| AdminError::not_found("org grant", server))?;
    Ok(grant_view(server, &grant))
}

pub async fn put_grant(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    server: &str,
    body: PutGrant,
) -> Result<Written<GrantView>, AdminError> {
    let (org, srv) = grant_target(s, admin, org, server).await?;
    let current = s
        .store()
        .get_org_grant(org.id, srv.id)
        .await
        .map_err(|e| s.error(e))?;
    may_set_filter(admin, &srv, current.as_ref(), &body.filter)?;
    let w = match current {
        Some(_) => {
            let patch = OrgGrantPatch {
                enabled: Some(body.enabled),
                filter: Some(body.filter),
            };
            s.store()
                .update_org_grant(&admin.actor, org.id, srv.id, patch)
                .await
        }
        None => {
            let grant = OrgGrant {
                org: org.id,
                server: srv.id,
                enabled: body.enabled,
                filter: body.filter,
            };
            s.store().create_org_grant(&admin.actor, grant).await
        }
    }
    .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: grant_view(server, &w.value),
    })
}

pub async fn patch_grant(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    server: &str,
    body: PatchGrant,
) -> Result<Written<GrantView>, AdminError> {
    let (org, srv) = grant_target(s, admin, org, server).await?;
    let current = s
        .store()
        .get_org_grant(org.id, srv.id)
        .await
        .map_err(|e| s.error(e))?
        .ok_or_else(|| AdminError::not_found("org grant", server))?;
    if let Some(filter) = &body.filter {
        may_set_filter(admin, &srv, Some(&current), filter)?;
    }
    let patch = OrgGrantPatch {
        enabled: body.enabled,
        filter: body.filter,
    };
    let w = s
        .store()
        .update_org_grant(&admin.actor, org.id, srv.id, patch)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: grant_view(server, &w.value),
    })
}

pub async fn delete_grant(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    server: &str,
) -> Result<Deleted, AdminError> {
    let (org, srv) = grant_target(s, admin, org, server).await?;
    if srv.owner_org.is_none() {
        admin.require_platform()?;
    }
    let revision = s
        .store()
        .delete_org_grant(&admin.actor, org.id, srv.id)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Deleted { revision })
}
