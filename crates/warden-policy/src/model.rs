//! The policy model as plain rows, the shape the store loads and the
//! snapshot is built from. Ids are the store's; slugs are what people type.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::filter::ToolFilter;

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

id_type!(
    /// An organization: the tenant every principal belongs to.
    OrgId,
    /// An upstream MCP server.
    ServerId,
    TeamId,
    KeyId,
    EndUserId,
    AgentId,
    ToolsetId,
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgRow {
    pub id: OrgId,
    pub slug: String,
    /// A suspended org reaches nothing.
    pub suspended: bool,
}

/// An upstream server. How to reach it (URL, command, secrets) is the store's
/// and the gateway's business; the decision needs only who may see it and
/// whether it is switched on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRow {
    pub id: ServerId,
    pub slug: String,
    /// `None`: a global server any org can be granted. `Some(org)`: only that
    /// org can see it; to every other org it does not exist.
    pub owner_org: Option<OrgId>,
    /// The gateway-wide kill switch.
    pub enabled: bool,
}

/// Makes a server available to an org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgGrantRow {
    pub org: OrgId,
    pub server: ServerId,
    /// The org's own switch for this server.
    pub enabled: bool,
    pub filter: ToolFilter,
}

/// Grants at one scope level: servers with tool filters, plus toolsets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeGrants {
    pub servers: BTreeMap<ServerId, ToolFilter>,
    pub toolsets: BTreeSet<ToolsetId>,
}

/// The restriction one level (team, key, end user, agent) puts on access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// No restriction from this level.
    Inherit,
    /// Only what these grants admit. Empty grants admit nothing.
    Grants(ScopeGrants),
}

impl Scope {
    /// A scope that admits nothing (what a new agent starts with).
    pub fn empty() -> Self {
        Scope::Grants(ScopeGrants::default())
    }

    pub fn grants(&self) -> Option<&ScopeGrants> {
        match self {
            Scope::Inherit => None,
            Scope::Grants(g) => Some(g),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamRow {
    pub id: TeamId,
    pub org: OrgId,
    pub slug: String,
    pub scope: Scope,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRow {
    pub id: KeyId,
    pub org: OrgId,
    /// Hex SHA-256 of the key's secret: how a bearer token finds its key.
    /// The secret itself is never stored.
    pub token_digest: String,
    pub team: Option<TeamId>,
    /// The agent this key always acts as, if any.
    pub agent: Option<AgentId>,
    pub scope: Scope,
    pub revoked: bool,
    /// Unix time in milliseconds after which the key no longer works.
    pub expires_at_ms: Option<i64>,
    /// May name an end user per request (a service acting for people).
    pub may_assert_end_user: bool,
    /// May name an agent per request (only if not bound to one).
    pub may_assert_agent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndUserRow {
    pub id: EndUserId,
    pub org: OrgId,
    /// The identifier a service key asserts (e.g. an email or IdP subject).
    pub external_id: String,
    pub scope: Scope,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRow {
    pub id: AgentId,
    pub org: OrgId,
    /// A team-shared agent; `None` for an org-level or personal agent.
    pub team: Option<TeamId>,
    pub slug: String,
    pub scope: Scope,
}

/// A named bundle of server grants, referenced from scopes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolsetRow {
    pub id: ToolsetId,
    pub org: OrgId,
    pub slug: String,
    pub servers: BTreeMap<ServerId, ToolFilter>,
}

/// Every policy row at one revision: the input of [`crate::Snapshot::build`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRows {
    pub revision: u64,
    pub orgs: Vec<OrgRow>,
    pub servers: Vec<ServerRow>,
    pub org_grants: Vec<OrgGrantRow>,
    pub teams: Vec<TeamRow>,
    pub keys: Vec<KeyRow>,
    pub end_users: Vec<EndUserRow>,
    pub agents: Vec<AgentRow>,
    pub toolsets: Vec<ToolsetRow>,
}

impl PolicyRows {
    /// Every scope in the rows, with the org it belongs to, mutably: for
    /// cascades that must reach all of them.
    fn scopes_mut(&mut self) -> impl Iterator<Item = (OrgId, &mut Scope)> {
        let teams = self.teams.iter_mut().map(|r| (r.org, &mut r.scope));
        let keys = self.keys.iter_mut().map(|r| (r.org, &mut r.scope));
        let users = self.end_users.iter_mut().map(|r| (r.org, &mut r.scope));
        let agents = self.agents.iter_mut().map(|r| (r.org, &mut r.scope));
        teams.chain(keys).chain(users).chain(agents)
    }

    /// Deletes a server and every reference to it: org grants, scope entries
    /// and toolset entries. The store's foreign keys do the same; this is the
    /// model of that cascade.
    pub fn delete_server(&mut self, server: ServerId) {
        self.servers.retain(|s| s.id != server);
        self.org_grants.retain(|g| g.server != server);
        for (_, scope) in self.scopes_mut() {
            if let Scope::Grants(g) = scope {
                g.servers.remove(&server);
            }
        }
        for t in &mut self.toolsets {
            t.servers.remove(&server);
        }
    }

    /// Deletes an org grant and every reference in that org to its server, so
    /// a later grant of the same server starts from nothing (no stale re-grant).
    pub fn delete_org_grant(&mut self, org: OrgId, server: ServerId) {
        self.org_grants
            .retain(|g| !(g.org == org && g.server == server));
        for (owner_org, scope) in self.scopes_mut() {
            if owner_org == org {
                if let Scope::Grants(g) = scope {
                    g.servers.remove(&server);
                }
            }
        }
        for t in self.toolsets.iter_mut().filter(|t| t.org == org) {
            t.servers.remove(&server);
        }
    }

    /// Deletes a toolset and every scope's reference to it.
    pub fn delete_toolset(&mut self, toolset: ToolsetId) {
        self.toolsets.retain(|t| t.id != toolset);
        for (_, scope) in self.scopes_mut() {
            if let Scope::Grants(g) = scope {
                g.toolsets.remove(&toolset);
            }
        }
    }

    /// Deletes a team with its keys and agents (and keys bound to those
    /// agents). Orphaning them instead would widen them to the org's access.
    pub fn delete_team(&mut self, team: TeamId) {
        let agents: Vec<AgentId> = self
            .agents
            .iter()
            .filter(|a| a.team == Some(team))
            .map(|a| a.id)
            .collect();
        self.teams.retain(|t| t.id != team);
        self.keys.retain(|k| k.team != Some(team));
        for agent in agents {
            self.delete_agent(agent);
        }
    }

    /// Deletes an agent and the keys bound to it.
    pub fn delete_agent(&mut self, agent: AgentId) {
        self.agents.retain(|a| a.id != agent);
        self.keys.retain(|k| k.agent != Some(agent));
    }
}
