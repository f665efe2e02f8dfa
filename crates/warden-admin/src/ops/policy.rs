//! Teams, agents, end users, toolsets, keys and scopes of one org.
//!
//! Whether a scope or toolset stays within its parent chain is decided by
//! the engine (`Snapshot::validate_grants`, run by the store inside the
//! write transaction); a refusal comes back as 422 with every offending
//! entry.

use warden_policy::{AgentId, KeyId, OrgId, ScopeGrants, ScopeOwner, TeamId, ToolFilter};
use warden_store::{
    Agent, AgentPatch, EndUser, EndUserPatch, Key, KeyPatch, NewAgent, NewEndUser, NewKey, NewTeam,
    NewToolset, Org, Page, Team, TeamPatch, Toolset, ToolsetPatch,
};

use super::convert::{format_time, parse_time, Names};
use super::OwnerRef;
use crate::auth::Admin;
use crate::dto::*;
use crate::error::AdminError;
use crate::state::AdminState;

// ---------------------------------------------------------------- views

pub(crate) fn team_view(s: &AdminState, t: &Team) -> TeamView {
    TeamView {
        slug: t.slug.clone(),
        name: t.name.clone(),
        scope: Names(&s.snapshot()).scope(&t.scope),
    }
}

pub(crate) fn agent_view(s: &AdminState, a: &Agent) -> AgentView {
    let snapshot = s.snapshot();
    let names = Names(&snapshot);
    AgentView {
        slug: a.slug.clone(),
        name: a.name.clone(),
        team: a.team.map(|t| names.team(t)),
        scope: names.scope(&a.scope),
    }
}

pub(crate) fn end_user_view(s: &AdminState, u: &EndUser) -> EndUserView {
    EndUserView {
        external_id: u.external_id.clone(),
        name: u.name.clone(),
        scope: Names(&s.snapshot()).scope(&u.scope),
        disabled: u.disabled,
    }
}

pub(crate) fn toolset_view(s: &AdminState, t: &Toolset) -> ToolsetView {
    ToolsetView {
        slug: t.slug.clone(),
        name: t.name.clone(),
        servers: Names(&s.snapshot()).servers(&t.servers),
    }
}

pub(crate) fn key_view(s: &AdminState, k: &Key) -> KeyView {
    let snapshot = s.snapshot();
    let names = Names(&snapshot);
    KeyView {
        id: k.id.0,
        name: k.name.clone(),
        token_prefix: k.token_prefix.clone(),
        team: k.team.map(|t| names.team(t)),
        agent: k.agent.map(|a| names.agent(a)),
        revoked: k.revoked,
        expires_at: k.expires_at_ms.map(format_time),
        may_assert_end_user: k.may_assert_end_user,
        may_assert_agent: k.may_assert_agent,
        scope: names.scope(&k.scope),
    }
}

// ---------------------------------------------------------------- lookups

impl AdminState {
    pub(crate) async fn team(&self, org: OrgId, slug: &str) -> Result<Team, AdminError> {
        self.store()
            .get_team_by_slug(org, slug)
            .await
            .map_err(|e| self.error(e))?
            .ok_or_else(|| AdminError::not_found("team", slug))
    }

    pub(crate) async fn agent(&self, org: OrgId, slug: &str) -> Result<Agent, AdminError> {
        self.store()
            .get_agent_by_slug(org, slug)
            .await
            .map_err(|e| self.error(e))?
            .ok_or_else(|| AdminError::not_found("agent", slug))
    }

    pub(crate) async fn end_user(
        &self,
        org: OrgId,
        external_id: &str,
    ) -> Result<EndUser, AdminError> {
        self.store()
            .get_end_user_by_external_id(org, external_id)
            .await
            .map_err(|e| self.error(e))?
            .ok_or_else(|| AdminError::not_found("end user", external_id))
    }

    pub(crate) async fn toolset(&self, org: OrgId, slug: &str) -> Result<Toolset, AdminError> {
        self.store()
            .get_toolset_by_slug(org, slug)
            .await
            .map_err(|e| self.error(e))?
            .ok_or_else(|| AdminError::not_found("toolset", slug))
    }

    /// A key of `org` by id; another org's key is "not found".
    pub(crate) async fn key(&self, org: OrgId, id: i64) -> Result<Key, AdminError> {
        match self
            .store()
            .get_key(KeyId(id))
            .await
            .map_err(|e| self.error(e))?
        {
            Some(k) if k.org == org => Ok(k),
            _ => Err(AdminError::not_found("key", id.to_string())),
        }
    }

    /// A team named in a body: it must exist in the org (422 otherwise, the
    /// body refers to something that is not there).
    async fn team_ref(&self, org: OrgId, slug: Option<&str>) -> Result<Option<TeamId>, AdminError> {
        match slug {
            None => Ok(None),
            Some(slug) => match self.team(org, slug).await {
                Ok(t) => Ok(Some(t.id)),
                Err(AdminError::NotFound { .. }) => Err(AdminError::invalid(
                    "team",
                    format!("team {slug:?} does not exist in this org"),
                )),
                Err(e) => Err(e),
            },
        }
    }

    async fn agent_ref(
        &self,
        org: OrgId,
        slug: Option<&str>,
    ) -> Result<Option<AgentId>, AdminError> {
        match slug {
            None => Ok(None),
            Some(slug) => match self.agent(org, slug).await {
                Ok(a) => Ok(Some(a.id)),
                Err(AdminError::NotFound { .. }) => Err(AdminError::invalid(
                    "agent",
                    format!("agent {slug:?} does not exist in this org"),
                )),
                Err(e) => Err(e),
            },
        }
    }

    /// The scope owner a path names, within `org`.
    pub(crate) async fn scope_owner(
        &self,
        org: OrgId,
        owner: &OwnerRef,
    ) -> Result<ScopeOwner, AdminError> {
        Ok(match owner {
            OwnerRef::Team(slug) => ScopeOwner::Team(self.team(org, slug).await?.id),
            OwnerRef::Key(id) => ScopeOwner::Key(self.key(org, *id).await?.id),
            OwnerRef::EndUser(ext) => ScopeOwner::EndUser(self.end_user(org, ext).await?.id),
            OwnerRef::Agent(slug) => ScopeOwner::Agent(self.agent(org, slug).await?.id),
            OwnerRef::Toolset(slug) => ScopeOwner::Toolset(self.toolset(org, slug).await?.id),
        })
    }
}

/// Every toolset of an org, page by page.
async fn all_toolsets(s: &AdminState, org: OrgId) -> Result<Vec<Toolset>, AdminError> {
    let mut out: Vec<Toolset> = Vec::new();
    loop {
        let page = Page {
            after: out.last().map(|t| t.id.0),
            limit: Page::MAX_LIMIT,
        };
        let batch = s
            .store()
            .list_toolsets(org, page)
            .await
            .map_err(|e| s.error(e))?;
        let done = batch.len() < Page::MAX_LIMIT as usize;
        out.extend(batch);
        if done {
            return Ok(out);
        }
    }
}

/// The store page a list request asks for.
fn store_page(page: &ListParams) -> Result<Page, AdminError> {
    let limit = page.limit.unwrap_or(Page::MAX_LIMIT);
    if limit == 0 || limit > Page::MAX_LIMIT {
        return Err(AdminError::BadQuery(format!(
            "limit must be 1..={}",
            Page::MAX_LIMIT
        )));
    }
    Ok(Page {
        after: page.after,
        limit,
    })
}

/// One page of views, with `next_after` when the page is full.
fn paged<E, V>(
    revision: u64,
    page: &ListParams,
    entities: Vec<E>,
    id: impl Fn(&E) -> i64,
    view: impl Fn(&E) -> V,
) -> Listing<V> {
    let limit = page.limit.unwrap_or(Page::MAX_LIMIT) as usize;
    let next_after = (entities.len() >= limit)
        .then(|| entities.last().map(&id))
        .flatten();
    Listing {
        revision,
        items: entities.iter().map(view).collect(),
        next_after,
    }
}

/// A new label for people, if the body gives one: 1 to 256 bytes, not
/// blank. `None` also when it equals `current` (nothing to write).
fn new_name(
    field: &'static str,
    name: Option<String>,
    current: &str,
) -> Result<Option<String>, AdminError> {
    crate::validate::opt_name(field, name.as_ref())?;
    match name {
        Some(n) if n == current => Ok(None),
        other => Ok(other),
    }
}

/// The answer of a write that had nothing to change: the object as it is,
/// at the current revision (nothing written, nothing audited).
fn unchanged<V>(s: &AdminState, item: V) -> Written<V> {
    Written {
        revision: s.live().revision(),
        item,
    }
}

async fn scope_arg(
    s: &AdminState,
    org: &Org,
    spec: Option<&ScopeSpec>,
) -> Result<Option<warden_policy::Scope>, AdminError> {
    match spec {
        None => Ok(None),
        Some(spec) => Ok(Some(s.scope_from_spec(org.id, spec).await?)),
    }
}

// ---------------------------------------------------------------- teams

pub async fn list_teams(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    page: ListParams,
) -> Result<Listing<TeamView>, AdminError> {
    let org = s.org(admin, org).await?;
    let revision = s.live().revision();
    let teams = s
        .store()
        .list_teams(org.id, store_page(&page)?)
        .await
        .map_err(|e| s.error(e))?;
    Ok(paged(
        revision,
        &page,
        teams,
        |t| t.id.0,
        |t| team_view(s, t),
    ))
}

pub async fn get_team(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    team: &str,
) -> Result<TeamView, AdminError> {
    let org = s.org(admin, org).await?;
    Ok(team_view(s, &s.team(org.id, team).await?))
}

pub async fn create_team(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    body: CreateTeam,
) -> Result<Written<TeamView>, AdminError> {
    let org = s.org(admin, org).await?;
    let new = NewTeam {
        org: org.id,
        slug: body.slug,
        name: body.name.unwrap_or_default(),
        scope: scope_arg(s, &org, body.scope.as_ref()).await?,
    };
    let w = s
        .store()
        .create_team(&admin.actor, new)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: team_view(s, &w.value),
    })
}

pub async fn patch_team(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    team: &str,
    body: PatchTeam,
) -> Result<Written<TeamView>, AdminError> {
    let org = s.org(admin, org).await?;
    let team = s.team(org.id, team).await?;
    let Some(name) = new_name("name", body.name, &team.name)? else {
        return Ok(unchanged(s, team_view(s, &team)));
    };
    let patch = TeamPatch {
        slug: None,
        name: Some(name),
    };
    let w = s
        .store()
        .update_team(&admin.actor, team.id, patch)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: team_view(s, &w.value),
    })
}

pub async fn delete_team(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    team: &str,
) -> Result<Deleted, AdminError> {
    let org = s.org(admin, org).await?;
    let team = s.team(org.id, team).await?;
    let revision = s
        .store()
        .delete_team(&admin.actor, team.id)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Deleted { revision })
}

// ---------------------------------------------------------------- agents

pub async fn list_agents(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    page: ListParams,
) -> Result<Listing<AgentView>, AdminError> {
    let org = s.org(admin, org).await?;
    let revision = s.live().revision();
    let agents = s
        .store()
        .list_agents(org.id, store_page(&page)?)
        .await
        .map_err(|e| s.error(e))?;
    Ok(paged(
        revision,
        &page,
        agents,
        |a| a.id.0,
        |a| agent_view(s, a),
    ))
}

pub async fn get_agent(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    agent: &str,
) -> Result<AgentView, AdminError> {
    let org = s.org(admin, org).await?;
    Ok(agent_view(s, &s.agent(org.id, agent).await?))
}

pub async fn create_agent(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    body: CreateAgent,
) -> Result<Written<AgentView>, AdminError> {
    let org = s.org(admin, org).await?;
    let new = NewAgent {
        org: org.id,
        team: s.team_ref(org.id, body.team.as_deref()).await?,
        slug: body.slug,
        name: body.name.unwrap_or_default(),
        // `None` is the store's "empty scope" for a new agent.
        scope: scope_arg(s, &org, body.scope.as_ref()).await?,
    };
    let w = s
        .store()
        .create_agent(&admin.actor, new)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: agent_view(s, &w.value),
    })
}

pub async fn patch_agent(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    agent: &str,
    body: PatchAgent,
) -> Result<Written<AgentView>, AdminError> {
    let org = s.org(admin, org).await?;
    let agent = s.agent(org.id, agent).await?;
    let Some(name) = new_name("name", body.name, &agent.name)? else {
        return Ok(unchanged(s, agent_view(s, &agent)));
    };
    let patch = AgentPatch {
        slug: None,
        name: Some(name),
    };
    let w = s
        .store()
        .update_agent(&admin.actor, agent.id, patch)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: agent_view(s, &w.value),
    })
}

pub async fn delete_agent(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    agent: &str,
) -> Result<Deleted, AdminError> {
    let org = s.org(admin, org).await?;
    let agent = s.agent(org.id, agent).await?;
    let revision = s
        .store()
        .delete_agent(&admin.actor, agent.id)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Deleted { revision })
}

// ---------------------------------------------------------------- end users

pub async fn list_end_users(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    page: ListParams,
) -> Result<Listing<EndUserView>, AdminError> {
    let org = s.org(admin, org).await?;
    let revision = s.live().revision();
    let users = s
        .store()
        .list_end_users(org.id, store_page(&page)?)
        .await
        .map_err(|e| s.error(e))?;
    Ok(paged(
        revision,
        &page,
        users,
        |u| u.id.0,
        |u| end_user_view(s, u),
    ))
}

pub async fn get_end_user(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    external_id: &str,
) -> Result<EndUserView, AdminError> {
    let org = s.org(admin, org).await?;
    Ok(end_user_view(s, &s.end_user(org.id, external_id).await?))
}

pub async fn create_end_user(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    body: CreateEndUser,
) -> Result<Written<EndUserView>, AdminError> {
    let org = s.org(admin, org).await?;
    crate::validate::name("external_id", &body.external_id)?;
    let new = NewEndUser {
        org: org.id,
        external_id: body.external_id,
        name: body.name.unwrap_or_default(),
        scope: scope_arg(s, &org, body.scope.as_ref()).await?,
    };
    let w = s
        .store()
        .create_end_user(&admin.actor, new)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: end_user_view(s, &w.value),
    })
}

pub async fn patch_end_user(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    external_id: &str,
    body: PatchEndUser,
) -> Result<Written<EndUserView>, AdminError> {
    let org = s.org(admin, org).await?;
    let user = s.end_user(org.id, external_id).await?;
    let name = new_name("name", body.name, &user.name)?;
    let disabled = body.disabled.filter(|d| *d != user.disabled);
    if name.is_none() && disabled.is_none() {
        return Ok(unchanged(s, end_user_view(s, &user)));
    }
    let patch = EndUserPatch {
        external_id: None,
        name,
        disabled,
    };
    let w = s
        .store()
        .update_end_user(&admin.actor, user.id, patch)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: end_user_view(s, &w.value),
    })
}

pub async fn delete_end_user(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    external_id: &str,
) -> Result<Deleted, AdminError> {
    let org = s.org(admin, org).await?;
    let user = s.end_user(org.id, external_id).await?;
    let revision = s
        .store()
        .delete_end_user(&admin.actor, user.id)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Deleted { revision })
}

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
            offenses: super::convert::offenses_json(&snapshot, &offenses),
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
