//! What the admin layer may offer and accept: the parent chain's effective
//! access, computed with the same level filters the decision uses.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::filter::ToolFilter;
use crate::model::*;
use crate::snapshot::Snapshot;

/// The entity whose scope is being chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum ScopeOwner {
    Team(TeamId),
    Key(KeyId),
    EndUser(EndUserId),
    Agent(AgentId),
    /// A toolset of the org: bounded by the org's grants.
    Toolset(ToolsetId),
}

/// What a parent chain allows: per server, the tools a child may be granted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Allowance {
    pub servers: BTreeMap<ServerId, ToolFilter>,
}

impl Allowance {
    pub fn admits(&self, server: ServerId, tool: &str) -> bool {
        self.servers.get(&server).is_some_and(|f| f.admits(tool))
    }
}

/// One entry of a requested scope that goes beyond the parent chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScopeOffense {
    /// Stable code: `server_not_allowed`, `tools_not_allowed`, `toolset_unknown`.
    pub code: &'static str,
    pub server: Option<ServerId>,
    pub toolset: Option<ToolsetId>,
    /// Named tools beyond the allowance; empty when the excess is open-ended
    /// (`*` or an all-but filter where only some tools are allowed).
    pub tools: Vec<String>,
    pub message: String,
}

impl Snapshot {
    /// The org and parent team of a scope owner, or `None` if it does not
    /// exist in this snapshot.
    pub fn parent_chain(&self, owner: ScopeOwner) -> Option<(OrgId, Option<TeamId>)> {
        match owner {
            ScopeOwner::Team(id) => self.teams.get(&id).map(|t| (t.org, None)),
            ScopeOwner::Key(id) => self.keys.get(&id).map(|k| (k.org, k.team)),
            ScopeOwner::EndUser(id) => self.end_users.get(&id).map(|u| (u.org, None)),
            ScopeOwner::Agent(id) => self.agents.get(&id).map(|a| (a.org, a.team)),
            ScopeOwner::Toolset(id) => self.toolsets.get(&id).map(|t| (t.org, None)),
        }
    }

    /// What a child of `org` (and of `team`, if given) may be granted: the
    /// servers enabled at gateway and org level, each with the org filter
    /// narrowed by the team's scope. A suspended org allows nothing.
    pub fn allowance(&self, org: OrgId, team: Option<TeamId>) -> Allowance {
        let mut servers = BTreeMap::new();
        if self.orgs.get(&org).is_none_or(|o| o.suspended) {
            return Allowance { servers };
        }
        let team_scope = match team {
            Some(t) => match self.teams.get(&t) {
                Some(team) if team.org == org => Some(&team.scope),
                _ => return Allowance { servers },
            },
            None => None,
        };
        for grant in self
            .org_grants
            .get(&org)
            .into_iter()
            .flat_map(|g| g.values())
        {
            let server_on = self.servers.get(&grant.server).is_some_and(|s| s.enabled);
            if !(server_on && grant.enabled) {
                continue;
            }
            let filter = match team_scope.and_then(|s| self.level_filter(s, grant.server)) {
                Some(team_filter) => grant.filter.intersect(&team_filter),
                None => grant.filter.clone(),
            };
            if !filter.is_empty() {
                servers.insert(grant.server, filter);
            }
        }
        Allowance { servers }
    }

    /// The allowance of an existing scope owner's parent chain.
    pub fn allowance_for(&self, owner: ScopeOwner) -> Option<Allowance> {
        let (org, team) = self.parent_chain(owner)?;
        Some(self.allowance(org, team))
    }

    /// Checks a requested scope for a child of (`org`, `team`): every server
    /// entry, and every entry of every referenced toolset, must lie within
    /// the allowance. Returns every offending entry, not just the first.
    pub fn validate_grants(
        &self,
        org: OrgId,
        team: Option<TeamId>,
        grants: &ScopeGrants,
    ) -> Result<(), Vec<ScopeOffense>> {
        let allowance = self.allowance(org, team);
        let mut offenses = Vec::new();
        for (server, filter) in &grants.servers {
            check_entry(&allowance, *server, filter, None, &mut offenses);
        }
        for ts in &grants.toolsets {
            match self.toolsets.get(ts) {
                Some(t) if t.org == org => {
                    for (server, filter) in &t.servers {
                        check_entry(&allowance, *server, filter, Some(*ts), &mut offenses);
                    }
                }
                _ => offenses.push(ScopeOffense {
                    code: "toolset_unknown",
                    server: None,
                    toolset: Some(*ts),
                    tools: Vec::new(),
                    message: format!("toolset {ts} does not exist in this org"),
                }),
            }
        }
        if offenses.is_empty() {
            Ok(())
        } else {
            Err(offenses)
        }
    }
}

fn check_entry(
    allowance: &Allowance,
    server: ServerId,
    filter: &ToolFilter,
    toolset: Option<ToolsetId>,
    offenses: &mut Vec<ScopeOffense>,
) {
    let via = toolset.map_or(String::new(), |t| format!(" (via toolset {t})"));
    match allowance.servers.get(&server) {
        None => offenses.push(ScopeOffense {
            code: "server_not_allowed",
            server: Some(server),
            toolset,
            tools: Vec::new(),
            message: format!("server {server} is not available to the parent{via}"),
        }),
        Some(outer) if !filter.is_subset_of(outer) => {
            let tools = filter.excess_over(outer);
            let message = if tools.is_empty() {
                format!("server {server}: the filter admits tools the parent does not allow{via}")
            } else {
                format!("server {server}: tools {tools:?} are not allowed by the parent{via}")
            };
            offenses.push(ScopeOffense {
                code: "tools_not_allowed",
                server: Some(server),
                toolset,
                tools,
                message,
            });
        }
        Some(_) => {}
    }
}
