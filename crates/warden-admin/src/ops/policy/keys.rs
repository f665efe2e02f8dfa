//! Keys of one org, and the scopes of every principal and toolset.

use super::*;

// ---------------------------------------------------------------- keys

pub async fn list_keys(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    page: ListParams,
) -> Result<Listing<KeyView>, AdminError> {
    let org = s.org(admin, org).await?;
    let revision = s.live().revision();
    let keys = s
        .store()
        .list_keys(org.id, store_page(&page)?)
        .await
        .map_err(|e| s.error(e))?;
    Ok(paged(revision, &page, keys, |k| k.id.0, |k| key_view(s, k)))
}

pub async fn get_key(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    id: i64,
) -> Result<KeyView, AdminError> {
    let org = s.org(admin, org).await?;
    Ok(key_view(s, &s.key(org.id, id).await?))
}

pub async fn create_key(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    body: CreateKey,
) -> Result<Created<KeyView>, AdminError> {
    let org = s.org(admin, org).await?;
    let expires_at_ms = body
        .expires_at
        .as_deref()
        .map(|t| parse_time("expires_at", t))
        .transpose()?;
    let agent = s.agent_ref(org.id, body.agent.as_deref()).await?;
    if agent.is_some() && body.may_assert_agent {
        return Err(AdminError::invalid(
            "may_assert_agent",
            "a key bound to an agent cannot assert another agent",
        ));
    }
    let new = NewKey {
        org: org.id,
        name: body.name,
        team: s.team_ref(org.id, body.team.as_deref()).await?,
        agent,
        scope: scope_arg(s, &org, body.scope.as_ref()).await?,
        expires_at_ms,
        may_assert_end_user: body.may_assert_end_user,
        may_assert_agent: body.may_assert_agent,
    };
    let w = s
        .store()
        .create_key(&admin.actor, new)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Created {
        revision: w.revision,
        item: key_view(s, &w.value.key),
        secret: w.value.token.expose().to_owned(),
    })
}

pub async fn patch_key(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    id: i64,
    body: PatchKey,
) -> Result<Written<KeyView>, AdminError> {
    let org = s.org(admin, org).await?;
    let key = s.key(org.id, id).await?;
    let expires_at_ms = match body.expires_at {
        None => None,
        Some(None) => Some(None),
        Some(Some(t)) => Some(Some(parse_time("expires_at", &t)?)),
    };
    if key.agent.is_some() && body.may_assert_agent == Some(true) {
        return Err(AdminError::invalid(
            "may_assert_agent",
            "a key bound to an agent cannot assert another agent",
        ));
    }
    crate::validate::opt_name("name", body.name.as_ref())?;
    let patch = KeyPatch {
        name: body.name,
        revoked: None,
        expires_at_ms,
        may_assert_end_user: body.may_assert_end_user,
        may_assert_agent: body.may_assert_agent,
    };
    let w = s
        .store()
        .update_key(&admin.actor, key.id, patch)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: key_view(s, &w.value),
    })
}

pub async fn revoke_key(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    id: i64,
) -> Result<Written<KeyView>, AdminError> {
    let org = s.org(admin, org).await?;
    let key = s.key(org.id, id).await?;
    let w = s
        .store()
        .revoke_key(&admin.actor, key.id)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: key_view(s, &w.value),
    })
}

pub async fn delete_key(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    id: i64,
) -> Result<Deleted, AdminError> {
    let org = s.org(admin, org).await?;
    let key = s.key(org.id, id).await?;
    let revision = s
        .store()
        .delete_key(&admin.actor, key.id)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Deleted { revision })
}

// ---------------------------------------------------------------- scopes

pub async fn get_scope(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    owner: OwnerRef,
) -> Result<ScopeSpec, AdminError> {
    let org = s.org(admin, org).await?;
    let owner = s.scope_owner(org.id, &owner).await?;
    let scope = s
        .store()
        .get_scope(owner)
        .await
        .map_err(|e| s.error(e))?
        .ok_or_else(|| AdminError::not_found("scope owner", ""))?;
    Ok(Names(&s.snapshot()).scope(&scope))
}

pub async fn put_scope(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    owner: OwnerRef,
    body: ScopeSpec,
) -> Result<Written<ScopeSpec>, AdminError> {
    let org = s.org(admin, org).await?;
    let owner = s.scope_owner(org.id, &owner).await?;
    let scope = s.scope_from_spec(org.id, &body).await?;
    let w = s
        .store()
        .set_scope(&admin.actor, owner, scope)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: Names(&s.snapshot()).scope(&w.value),
    })
}

/// The picker: what the owner's parent chain allows, per the engine, with
/// the catalog's tool names where known, and the org's toolsets that fit.
pub async fn scope_options(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    owner: OwnerRef,
) -> Result<ScopeOptions, AdminError> {
    let org = s.org(admin, org).await?;
    let owner = s.scope_owner(org.id, &owner).await?;
    let snapshot = s.snapshot();
    let (chain_org, chain_team) = snapshot
        .parent_chain(owner)
        .ok_or_else(|| AdminError::not_found("scope owner", ""))?;
    // The same parent chain the store validates writes against: a team's
    // (and a toolset's) own scope is bounded by the org alone.
    let team = match owner {
        ScopeOwner::Team(_) | ScopeOwner::Toolset(_) => None,
        _ => chain_team,
    };
    let allowance = snapshot.allowance(chain_org, team);
    let names = Names(&snapshot);
    let servers = allowance
        .servers
        .iter()
        .map(|(id, filter)| ServerOption {
            server: names.server(*id),
            filter: filter.clone(),
            tools: s.catalog().tool_names(*id).map(|mut tools| {
                tools.retain(|t| filter.admits(t));
                tools.sort();
                tools
            }),
        })
        .collect();
    let mut toolsets = Vec::new();
    if !matches!(owner, ScopeOwner::Toolset(_)) {
        for t in all_toolsets(s, org.id).await? {
            let only_this = ScopeGrants {
                servers: Default::default(),
                toolsets: [t.id].into_iter().collect(),
            };
            if snapshot
                .validate_grants(chain_org, team, &only_this)
                .is_ok()
            {
                toolsets.push(t.slug);
            }
        }
    }
    Ok(ScopeOptions {
        revision: snapshot.revision(),
        servers,
        toolsets,
    })
}
