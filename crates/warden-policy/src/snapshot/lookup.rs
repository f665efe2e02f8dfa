//! Lookups: the revision, the principal of a request, and rows by id
//! or slug.

use super::{Principal, Snapshot};
use crate::error::PolicyError;
use crate::filter::ToolFilter;
use crate::model::*;

impl Snapshot {
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Forms the principal of a request from its key (found by the digest of
    /// its secret) and the end user / agent it asserts. Assertions the key may
    /// not make are errors, never ignored.
    pub fn principal(
        &self,
        token_digest: &str,
        end_user: Option<&str>,
        agent: Option<&str>,
    ) -> Result<Principal, PolicyError> {
        let key_id = *self
            .key_by_digest
            .get(token_digest)
            .ok_or(PolicyError::KeyUnknown)?;
        self.principal_for_key(key_id, end_user, agent)
    }

    /// Like [`Snapshot::principal`], for a key already identified.
    pub fn principal_for_key(
        &self,
        key_id: KeyId,
        end_user: Option<&str>,
        agent: Option<&str>,
    ) -> Result<Principal, PolicyError> {
        let key = self.keys.get(&key_id).ok_or(PolicyError::KeyUnknown)?;
        let end_user = match end_user {
            None => None,
            Some(_) if !key.may_assert_end_user => {
                return Err(PolicyError::EndUserAssertionNotAllowed)
            }
            Some(ext) => Some(
                *self
                    .end_user_by_external_id
                    .get(&(key.org, ext.to_owned()))
                    .ok_or_else(|| PolicyError::EndUserUnknown(ext.to_owned()))?,
            ),
        };
        let agent = match (agent, key.agent) {
            (None, bound) => bound,
            // Naming the agent the key is bound to is harmless.
            (Some(slug), Some(bound))
                if self.agents.get(&bound).is_some_and(|a| a.slug == slug) =>
            {
                Some(bound)
            }
            (Some(_), Some(_)) => return Err(PolicyError::AgentAssertionNotAllowed),
            (Some(_), None) if !key.may_assert_agent => {
                return Err(PolicyError::AgentAssertionNotAllowed)
            }
            (Some(slug), None) => Some(
                *self
                    .agent_by_slug
                    .get(&(key.org, slug.to_owned()))
                    .ok_or_else(|| PolicyError::AgentUnknown(slug.to_owned()))?,
            ),
        };
        Ok(Principal {
            key: key_id,
            end_user,
            agent,
        })
    }

    pub fn org(&self, id: OrgId) -> Option<&OrgRow> {
        self.orgs.get(&id).map(|r| &**r)
    }

    pub fn org_by_slug(&self, slug: &str) -> Option<&OrgRow> {
        self.org_by_slug.get(slug).and_then(|id| self.org(*id))
    }

    pub fn key(&self, id: KeyId) -> Option<&KeyRow> {
        self.keys.get(&id).map(|r| &**r)
    }

    pub fn server(&self, id: ServerId) -> Option<&ServerRow> {
        self.servers.get(&id).map(|r| &**r)
    }

    /// Every server row (global and org-owned), in no particular order.
    pub fn servers(&self) -> impl Iterator<Item = &ServerRow> {
        self.servers.values().map(|r| &**r)
    }

    /// The server `slug` names for `org`: a global server or one the org
    /// owns. Another org's server is `None`, exactly like a missing one.
    pub fn server_for_org(&self, org: OrgId, slug: &str) -> Option<&ServerRow> {
        let id = match self.global_server_by_slug.get(slug) {
            Some(id) => *id,
            None => *self.org_server_by_slug.get(&(org, slug.to_owned()))?,
        };
        self.server(id)
    }

    pub fn team(&self, id: TeamId) -> Option<&TeamRow> {
        self.teams.get(&id).map(|r| &**r)
    }

    pub fn team_by_slug(&self, org: OrgId, slug: &str) -> Option<&TeamRow> {
        let id = self.team_by_slug.get(&(org, slug.to_owned()))?;
        self.team(*id)
    }

    pub fn agent(&self, id: AgentId) -> Option<&AgentRow> {
        self.agents.get(&id).map(|r| &**r)
    }

    pub fn agent_by_slug(&self, org: OrgId, slug: &str) -> Option<&AgentRow> {
        let id = self.agent_by_slug.get(&(org, slug.to_owned()))?;
        self.agent(*id)
    }

    pub fn end_user(&self, id: EndUserId) -> Option<&EndUserRow> {
        self.end_users.get(&id).map(|r| &**r)
    }

    pub fn end_user_by_external_id(&self, org: OrgId, external_id: &str) -> Option<&EndUserRow> {
        let id = self
            .end_user_by_external_id
            .get(&(org, external_id.to_owned()))?;
        self.end_user(*id)
    }

    pub fn toolset(&self, id: ToolsetId) -> Option<&ToolsetRow> {
        self.toolsets.get(&id).map(|r| &**r)
    }

    pub fn toolset_by_slug(&self, org: OrgId, slug: &str) -> Option<&ToolsetRow> {
        let id = self.toolset_by_slug.get(&(org, slug.to_owned()))?;
        self.toolset(*id)
    }

    pub fn org_grant(&self, org: OrgId, server: ServerId) -> Option<&OrgGrantRow> {
        self.org_grants
            .get(&org)
            .and_then(|g| g.get(&server))
            .map(|r| &**r)
    }

    /// The org's grants, in no particular order.
    pub fn org_grants_of(&self, org: OrgId) -> impl Iterator<Item = &OrgGrantRow> {
        self.org_grants
            .get(&org)
            .into_iter()
            .flat_map(|g| g.values().map(|r| &**r))
    }

    /// How many rows of each kind, for logs and metrics.
    pub fn counts(&self) -> [(&'static str, usize); 9] {
        [
            ("orgs", self.orgs.len()),
            ("servers", self.servers.len()),
            (
                "org_grants",
                self.org_grants.values().map(|g| g.len()).sum(),
            ),
            ("teams", self.teams.len()),
            ("keys", self.keys.len()),
            ("end_users", self.end_users.len()),
            ("agents", self.agents.len()),
            ("toolsets", self.toolsets.len()),
            ("limits", self.limits.len()),
        ]
    }

    /// What one scope level says about one server: `None` if the level is
    /// *inherit*, otherwise the union of its own entry and its toolsets'
    /// entries for that server (admitting nothing if none mention it).
    pub(crate) fn level_filter(&self, scope: &Scope, server: ServerId) -> Option<ToolFilter> {
        let grants = scope.grants()?;
        let mut filter = grants
            .servers
            .get(&server)
            .cloned()
            .unwrap_or_else(ToolFilter::none);
        for ts in &grants.toolsets {
            if matches!(filter, ToolFilter::All) {
                break;
            }
            if let Some(f) = self.toolsets.get(ts).and_then(|t| t.servers.get(&server)) {
                filter = filter.union(f);
            }
        }
        Some(filter)
    }
}
