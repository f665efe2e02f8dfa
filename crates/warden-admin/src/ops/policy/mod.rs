//! Teams, agents, end users, toolsets, keys and scopes of one org.
//!
//! Whether a scope or toolset stays within its parent chain is decided by
//! the engine (`Snapshot::validate_grants`, run by the store inside the
//! write transaction); a refusal comes back as 422 with every offending
//! entry.
//!
//! This file: the views and helpers the operations share;
//! `principals.rs` (teams, agents, end users), `toolsets.rs`, `keys.rs`
//! (keys and scopes).

use warden_policy::{AgentId, KeyId, OrgId, ScopeGrants, ScopeOwner, TeamId, ToolFilter};
use warden_store::{
    Agent, AgentPatch, EndUser, EndUserPatch, Key, KeyPatch, NewAgent, NewEndUser, NewKey, NewTeam,
    NewToolset, Org, Page, Team, TeamPatch, Toolset, ToolsetPatch,
};

use crate::auth::Admin;
use crate::dto::*;
use crate::error::AdminError;
use crate::ops::convert::{format_time, parse_time, Names};
use crate::ops::OwnerRef;
use crate::state::AdminState;

mod keys;
mod principals;
mod toolsets;

pub use keys::*;
pub use principals::*;
pub use toolsets::*;

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
