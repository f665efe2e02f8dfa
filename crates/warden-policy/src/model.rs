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
    /// A quota or rate limit ([`LimitRow`]).
    LimitId,
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
    /// A disabled end user is refused as a whole (like a revoked key):
    /// every request that names them, and their live sessions end.
    #[serde(default)]
    pub disabled: bool,
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

/// Whom a limit holds for: the org as a whole, or one team, key, end user
/// or agent of it. Each limit is one counter shared by every call it
/// applies to (an org-level limit counts the whole org's calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum LimitLevel {
    Org,
    Team(TeamId),
    Key(KeyId),
    EndUser(EndUserId),
    Agent(AgentId),
}

impl LimitLevel {
    /// Stable snake_case name ("org", "team", "key", "end_user", "agent").
    pub fn kind(self) -> &'static str {
        match self {
            LimitLevel::Org => "org",
            LimitLevel::Team(_) => "team",
            LimitLevel::Key(_) => "key",
            LimitLevel::EndUser(_) => "end_user",
            LimitLevel::Agent(_) => "agent",
        }
    }

    /// The order levels are listed in: org, team, key, end user, agent.
    pub fn rank(self) -> u8 {
        match self {
            LimitLevel::Org => 0,
            LimitLevel::Team(_) => 1,
            LimitLevel::Key(_) => 2,
            LimitLevel::EndUser(_) => 3,
            LimitLevel::Agent(_) => 4,
        }
    }
}

/// The period a [`Rate`] refills over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    Minute,
    Hour,
}

impl Window {
    pub fn seconds(self) -> u64 {
        match self {
            Window::Minute => 60,
            Window::Hour => 3600,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Window::Minute => "minute",
            Window::Hour => "hour",
        }
    }
}

/// A token bucket: holds at most `burst` tokens, refills `requests` tokens
/// per `per`, and each call takes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rate {
    pub requests: u32,
    pub per: Window,
    pub burst: u32,
}

impl Rate {
    /// Refill in tokens per second.
    pub fn per_second(&self) -> f64 {
        f64::from(self.requests) / self.per.seconds() as f64
    }

    /// Orders rates from tightest: fewer requests per second first (exact,
    /// no floating point), then the smaller burst.
    pub fn tightness_cmp(&self, other: &Rate) -> std::cmp::Ordering {
        let a = u64::from(self.requests) * other.per.seconds();
        let b = u64::from(other.requests) * self.per.seconds();
        a.cmp(&b).then(self.burst.cmp(&other.burst))
    }
}

/// Bounds on a limit's numbers (all must also be at least 1).
pub const LIMIT_MAX_REQUESTS: u32 = 1_000_000;
pub const LIMIT_MAX_BURST: u32 = 1_000_000;
pub const LIMIT_MAX_CONCURRENCY: u32 = 100_000;
/// The longest tool name a limit may name, in bytes.
pub const LIMIT_TOOL_MAX_LEN: usize = 256;

/// A quota on calls: a rate (token bucket) and/or a cap on calls in flight,
/// for one holder ([`LimitLevel`]) on all servers, one server, or one tool
/// of one server. Configuration only: it never allows or denies a call
/// (that is [`crate::Snapshot::decide`]); the data plane enforces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitRow {
    pub id: LimitId,
    pub org: OrgId,
    pub level: LimitLevel,
    /// `None`: every server (one counter across all of them).
    pub server: Option<ServerId>,
    /// `None`: every tool of `server`. Only with a server.
    pub tool: Option<String>,
    pub rate: Option<Rate>,
    /// The most calls in flight at once.
    pub concurrency: Option<u32>,
}

impl LimitRow {
    /// The checks that need no other row: at least one of rate and
    /// concurrency, positive and bounded numbers, a tool only with a server
    /// and of a sane length. References are checked by the snapshot.
    pub fn check_values(&self) -> Result<(), crate::PolicyError> {
        let bad = |why: String| Err(crate::PolicyError::BadLimit { id: self.id.0, why });
        if self.rate.is_none() && self.concurrency.is_none() {
            return bad("needs a rate, a concurrency or both".into());
        }
        if let Some(rate) = &self.rate {
            if !(1..=LIMIT_MAX_REQUESTS).contains(&rate.requests) {
                return bad(format!(
                    "rate.requests must be between 1 and {LIMIT_MAX_REQUESTS}"
                ));
            }
            if !(1..=LIMIT_MAX_BURST).contains(&rate.burst) {
                return bad(format!(
                    "rate.burst must be between 1 and {LIMIT_MAX_BURST}"
                ));
            }
        }
        if let Some(c) = self.concurrency {
            if !(1..=LIMIT_MAX_CONCURRENCY).contains(&c) {
                return bad(format!(
                    "concurrency must be between 1 and {LIMIT_MAX_CONCURRENCY}"
                ));
            }
        }
        if let Some(tool) = &self.tool {
            if self.server.is_none() {
                return bad("a tool needs a server".into());
            }
            if tool.is_empty() || tool.len() > LIMIT_TOOL_MAX_LEN {
                return bad(format!("tool must be 1 to {LIMIT_TOOL_MAX_LEN} bytes long"));
            }
        }
        Ok(())
    }

    /// Whether this limit counts calls of `tool` on `server`.
    pub fn covers(&self, server: ServerId, tool: &str) -> bool {
        self.server.is_none_or(|s| s == server) && self.tool.as_deref().is_none_or(|t| t == tool)
    }
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
    #[serde(default)]
    pub limits: Vec<LimitRow>,
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
        self.prune_limits();
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
        self.prune_limits();
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
        self.prune_limits();
    }

    /// Deletes an agent and the keys bound to it.
    pub fn delete_agent(&mut self, agent: AgentId) {
        self.agents.retain(|a| a.id != agent);
        self.keys.retain(|k| k.agent != Some(agent));
        self.prune_limits();
    }

    /// Deletes a key (and its limits).
    pub fn delete_key(&mut self, key: KeyId) {
        self.keys.retain(|k| k.id != key);
        self.prune_limits();
    }

    /// Deletes an end user (and its limits).
    pub fn delete_end_user(&mut self, end_user: EndUserId) {
        self.end_users.retain(|u| u.id != end_user);
        self.prune_limits();
    }

    /// The limit cascade, stated as what survives: a limit stays while its
    /// org, its holder (in that org) and, if it names one, the org's grant
    /// of its server all exist. Every `delete_*` ends with it.
    fn prune_limits(&mut self) {
        let orgs: BTreeSet<OrgId> = self.orgs.iter().map(|o| o.id).collect();
        let grants: BTreeSet<(OrgId, ServerId)> =
            self.org_grants.iter().map(|g| (g.org, g.server)).collect();
        let teams: BTreeSet<(OrgId, TeamId)> = self.teams.iter().map(|r| (r.org, r.id)).collect();
        let keys: BTreeSet<(OrgId, KeyId)> = self.keys.iter().map(|r| (r.org, r.id)).collect();
        let users: BTreeSet<(OrgId, EndUserId)> =
            self.end_users.iter().map(|r| (r.org, r.id)).collect();
        let agents: BTreeSet<(OrgId, AgentId)> =
            self.agents.iter().map(|r| (r.org, r.id)).collect();
        self.limits.retain(|l| {
            let holder = match l.level {
                LimitLevel::Org => orgs.contains(&l.org),
                LimitLevel::Team(id) => teams.contains(&(l.org, id)),
                LimitLevel::Key(id) => keys.contains(&(l.org, id)),
                LimitLevel::EndUser(id) => users.contains(&(l.org, id)),
                LimitLevel::Agent(id) => agents.contains(&(l.org, id)),
            };
            holder && l.server.is_none_or(|s| grants.contains(&(l.org, s)))
        });
    }
}
