//! Toolsets of one org: named sets of servers and tools, each bounded by its org.

use super::*;

// ---------------------------------------------------------------- toolsets

pub async fn list_toolsets(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    page: ListParams,
) -> Result<Listing<ToolsetView>, AdminError> {
    let org = s.org(admin, org).await?;
    let revision = s.live().revision();
    let toolsets = s
        .store()
        .list_toolsets(org.id, store_page(&page)?)
        .await
        .map_err(|e| s.error(e))?;
    Ok(paged(
        revision,
        &page,
        toolsets,
        |t| t.id.0,
        |t| toolset_view(s, t),
    ))
}

pub async fn get_toolset(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    toolset: &str,
) -> Result<ToolsetView, AdminError> {
    let org = s.org(admin, org).await?;
    Ok(toolset_view(s, &s.toolset(org.id, toolset).await?))
}

pub async fn create_toolset(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    body: CreateToolset,
) -> Result<Written<ToolsetView>, AdminError> {
    let org = s.org(admin, org).await?;
    let servers = s.server_entries(org.id, &body.servers).await?;
    check_toolset_entries(s, org.id, &servers)?;
    let new = NewToolset {
        org: org.id,
        slug: body.slug,
        name: body.name.unwrap_or_default(),
        servers,
    };
    let w = s
        .store()
        .create_toolset(&admin.actor, new)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: toolset_view(s, &w.value),
    })
}

pub async fn put_toolset_servers(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    toolset: &str,
    body: PutToolsetServers,
) -> Result<Written<ToolsetView>, AdminError> {
    let org = s.org(admin, org).await?;
    let toolset = s.toolset(org.id, toolset).await?;
    let servers = s.server_entries(org.id, &body.servers).await?;
    check_toolset_entries(s, org.id, &servers)?;
    let patch = ToolsetPatch {
        servers: Some(servers),
        ..Default::default()
    };
    let w = s
        .store()
        .update_toolset(&admin.actor, toolset.id, patch)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: toolset_view(s, &w.value),
    })
}

/// Changes a toolset's name and/or replaces its servers in one write. The
/// servers are checked exactly as on creation: known to the org, and
/// within its grants (422 listing every offending entry otherwise).
pub async fn patch_toolset(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    toolset: &str,
    body: PatchToolset,
) -> Result<Written<ToolsetView>, AdminError> {
    let org = s.org(admin, org).await?;
    let toolset = s.toolset(org.id, toolset).await?;
    let name = new_name("name", body.name, &toolset.name)?;
    let servers = match &body.servers {
        None => None,
        Some(entries) => {
            let servers = s.server_entries(org.id, entries).await?;
            check_toolset_entries(s, org.id, &servers)?;
            Some(servers).filter(|servers| *servers != toolset.servers)
        }
    };
    if name.is_none() && servers.is_none() {
        return Ok(unchanged(s, toolset_view(s, &toolset)));
    }
    let patch = ToolsetPatch {
        slug: None,
        name,
        servers,
    };
    let w = s
        .store()
        .update_toolset(&admin.actor, toolset.id, patch)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: toolset_view(s, &w.value),
    })
}

/// A toolset holds only what the org is granted: the engine's check of the
/// entries as grants of a child of the org.
fn check_toolset_entries(
    s: &AdminState,
    org: OrgId,
    servers: &std::collections::BTreeMap<warden_policy::ServerId, ToolFilter>,
) -> Result<(), AdminError> {
    let snapshot = s.snapshot();
    let grants = ScopeGrants {
        servers: servers.clone(),
        toolsets: Default::default(),
    };
    snapshot
        .validate_grants(org, None, &grants)
        .map_err(|offenses| AdminError::BeyondParent {
            offenses: crate::ops::convert::offenses_json(&snapshot, &offenses),
        })
}

pub async fn delete_toolset(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    toolset: &str,
) -> Result<Deleted, AdminError> {
    let org = s.org(admin, org).await?;
    let toolset = s.toolset(org.id, toolset).await?;
    let revision = s
        .store()
        .delete_toolset(&admin.actor, toolset.id)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Deleted { revision })
}
