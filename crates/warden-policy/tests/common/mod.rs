//! Random but valid policies for the property tests.
//!
//! Strategies generate a small *spec* (indices, masks, flags) that proptest
//! can shrink, and [`PolicySpec::rows`] turns it into [`PolicyRows`] that are
//! valid by construction: every reference resolves inside its org, every
//! scope entry names a server granted to the org. Policies are small (a few
//! orgs, servers and identities) so every principal, server and tool can be
//! checked exhaustively per case.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use proptest::prelude::*;
use warden_policy::*;

/// The clock every property test decides at.
pub const NOW: i64 = 1_000_000;

/// The tool-name alphabet: includes names that differ only in case, so any
/// case-folding anywhere shows up as a disagreement.
pub const TOOLS: [&str; 6] = ["search", "Search", "read", "write", "delete", "Delete"];

/// A tool no filter names and no catalog holds: stands for the open universe
/// of names (what an all-but filter admits and an only-these filter does not).
pub const FRESH_TOOL: &str = "fresh-tool";

/// A server slug no policy uses.
pub const UNKNOWN_SLUG: &str = "nope";

pub type Catalog = HashMap<ServerId, HashSet<String>>;

const MAX_ORGS: usize = 3;
const MAX_SERVERS: usize = 6;

/// A tool filter over [`TOOLS`], as bit masks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterSpec {
    All,
    Only(u8),
    Except(u8),
}

pub fn tools_of(mask: u8) -> BTreeSet<String> {
    TOOLS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, t)| (*t).to_owned())
        .collect()
}

impl FilterSpec {
    pub fn filter(&self) -> ToolFilter {
        match self {
            FilterSpec::All => ToolFilter::All,
            FilterSpec::Only(m) => ToolFilter::Only(tools_of(*m)),
            FilterSpec::Except(m) => ToolFilter::except(tools_of(*m)),
        }
    }
}

pub fn filter_spec() -> impl Strategy<Value = FilterSpec> {
    prop_oneof![
        3 => Just(FilterSpec::All),
        3 => (0u8..64).prop_map(FilterSpec::Only),
        2 => (1u8..64).prop_map(FilterSpec::Except),
    ]
}

/// A scope: server entries and toolset references are indices, resolved
/// modulo what the owning org has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeSpec {
    Inherit,
    Grants {
        servers: Vec<(u8, FilterSpec)>,
        toolsets: Vec<u8>,
    },
}

pub fn scope_spec() -> impl Strategy<Value = ScopeSpec> {
    prop_oneof![
        4 => Just(ScopeSpec::Inherit),
        1 => Just(ScopeSpec::Grants { servers: vec![], toolsets: vec![] }),
        3 => (
            prop::collection::vec((any::<u8>(), filter_spec()), 0..4),
            prop::collection::vec(any::<u8>(), 0..3),
        )
            .prop_map(|(servers, toolsets)| ScopeSpec::Grants { servers, toolsets }),
    ]
}

#[derive(Debug, Clone)]
pub struct KeySpec {
    pub org: u8,
    pub team: Option<u8>,
    pub agent: Option<u8>,
    pub scope: ScopeSpec,
    pub revoked: bool,
    /// Offset from [`NOW`]: -1 and 0 are expired, +1 is not.
    pub expires_in: Option<i8>,
    pub may_assert_end_user: bool,
    pub may_assert_agent: bool,
}

fn key_spec() -> impl Strategy<Value = KeySpec> {
    (
        any::<u8>(),
        prop::option::weighted(0.6, any::<u8>()),
        prop::option::weighted(0.3, any::<u8>()),
        scope_spec(),
        prop::bool::weighted(0.05),
        prop::option::weighted(0.1, -1i8..=1),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(org, team, agent, scope, revoked, expires_in, eu, ag)| KeySpec {
                org,
                team,
                agent,
                scope,
                revoked,
                expires_in,
                may_assert_end_user: eu,
                may_assert_agent: ag,
            },
        )
}

#[derive(Debug, Clone)]
pub struct PolicySpec {
    /// One entry per org: suspended?
    pub orgs: Vec<bool>,
    /// One entry per server: owner org index (None = global), enabled.
    pub servers: Vec<(Option<u8>, bool)>,
    /// Indexed by (org, server): the org grant, if any.
    pub grants: Vec<Option<(bool, FilterSpec)>>,
    pub toolsets: Vec<(u8, Vec<(u8, FilterSpec)>)>,
    pub teams: Vec<(u8, ScopeSpec)>,
    pub agents: Vec<(u8, Option<u8>, ScopeSpec)>,
    pub end_users: Vec<(u8, ScopeSpec)>,
    pub keys: Vec<KeySpec>,
    /// One entry per server: which tools its catalog holds (None: unknown).
    pub catalog: Vec<Option<u8>>,
}

pub fn policy_spec() -> impl Strategy<Value = PolicySpec> {
    (
        prop::collection::vec(prop::bool::weighted(0.05), 1..=MAX_ORGS),
        prop::collection::vec(
            (
                prop::option::weighted(0.4, any::<u8>()),
                prop::bool::weighted(0.85),
            ),
            1..=MAX_SERVERS,
        ),
        prop::collection::vec(
            prop::option::weighted(0.75, (prop::bool::weighted(0.85), filter_spec())),
            MAX_ORGS * MAX_SERVERS,
        ),
        prop::collection::vec(
            (
                any::<u8>(),
                prop::collection::vec((any::<u8>(), filter_spec()), 0..4),
            ),
            0..3,
        ),
        prop::collection::vec((any::<u8>(), scope_spec()), 0..4),
        prop::collection::vec(
            (
                any::<u8>(),
                prop::option::weighted(0.5, any::<u8>()),
                scope_spec(),
            ),
            0..4,
        ),
        prop::collection::vec((any::<u8>(), scope_spec()), 0..3),
        prop::collection::vec(key_spec(), 1..6),
        prop::collection::vec(prop::option::weighted(0.9, any::<u8>()), MAX_SERVERS),
    )
        .prop_map(
            |(orgs, servers, grants, toolsets, teams, agents, end_users, keys, catalog)| {
                PolicySpec {
                    orgs,
                    servers,
                    grants,
                    toolsets,
                    teams,
                    agents,
                    end_users,
                    keys,
                    catalog,
                }
            },
        )
}

/// A generated policy: rows, the catalog the gateway sees, and every valid
/// principal (each key, alone and with every end user / agent of its org it
/// could act for).
#[derive(Debug, Clone)]
pub struct World {
    pub rows: PolicyRows,
    pub catalog: Catalog,
}

pub fn world() -> impl Strategy<Value = World> {
    policy_spec().prop_map(|spec| spec.world())
}

fn pick<T: Copy>(items: &[T], index: u8) -> Option<T> {
    (!items.is_empty()).then(|| items[index as usize % items.len()])
}

impl PolicySpec {
    pub fn world(&self) -> World {
        let org_count = self.orgs.len();
        let org_id = |i: u8| OrgId(1 + (i as usize % org_count) as i64);
        let mut rows = PolicyRows {
            revision: 1,
            ..PolicyRows::default()
        };
        for (i, suspended) in self.orgs.iter().enumerate() {
            rows.orgs.push(OrgRow {
                id: OrgId(1 + i as i64),
                slug: format!("org-{i}"),
                suspended: *suspended,
            });
        }
        // Org-owned servers are named per org, so two orgs can both own an
        // "own-0": lookups must resolve the caller's own.
        let mut owned_count: HashMap<OrgId, usize> = HashMap::new();
        for (i, (owner, enabled)) in self.servers.iter().enumerate() {
            let owner_org = owner.map(org_id);
            let slug = match owner_org {
                None => format!("g-{i}"),
                Some(org) => {
                    let n = owned_count.entry(org).or_default();
                    *n += 1;
                    format!("own-{}", *n - 1)
                }
            };
            rows.servers.push(ServerRow {
                id: ServerId(100 + i as i64),
                slug,
                owner_org,
                enabled: *enabled,
            });
        }
        let mut granted: HashMap<OrgId, Vec<ServerId>> = HashMap::new();
        for org in &rows.orgs {
            for (si, server) in rows.servers.iter().enumerate() {
                if server.owner_org.is_some_and(|o| o != org.id) {
                    continue;
                }
                let slot = (org.id.0 as usize - 1) * MAX_SERVERS + si;
                if let Some(Some((enabled, filter))) = self.grants.get(slot) {
                    rows.org_grants.push(OrgGrantRow {
                        org: org.id,
                        server: server.id,
                        enabled: *enabled,
                        filter: filter.filter(),
                    });
                    granted.entry(org.id).or_default().push(server.id);
                }
            }
        }
        let no_servers = Vec::new();
        let granted_in = |org: OrgId| granted.get(&org).unwrap_or(&no_servers);
        let server_entries = |org: OrgId, entries: &[(u8, FilterSpec)]| {
            let mut out = BTreeMap::new();
            for (idx, f) in entries {
                if let Some(server) = pick(granted_in(org), *idx) {
                    out.insert(server, f.filter());
                }
            }
            out
        };

        for (i, (org, entries)) in self.toolsets.iter().enumerate() {
            let org = org_id(*org);
            rows.toolsets.push(ToolsetRow {
                id: ToolsetId(500 + i as i64),
                org,
                slug: format!("ts-{i}"),
                servers: server_entries(org, entries),
            });
        }
        let toolsets_of = |org: OrgId| -> Vec<ToolsetId> {
            rows.toolsets
                .iter()
                .filter(|t| t.org == org)
                .map(|t| t.id)
                .collect()
        };
        let scope = |org: OrgId, spec: &ScopeSpec| match spec {
            ScopeSpec::Inherit => Scope::Inherit,
            ScopeSpec::Grants { servers, toolsets } => {
                let in_org = toolsets_of(org);
                Scope::Grants(ScopeGrants {
                    servers: server_entries(org, servers),
                    toolsets: toolsets.iter().filter_map(|t| pick(&in_org, *t)).collect(),
                })
            }
        };

        let mut teams = Vec::new();
        for (i, (org, s)) in self.teams.iter().enumerate() {
            let org = org_id(*org);
            teams.push(TeamRow {
                id: TeamId(200 + i as i64),
                org,
                slug: format!("team-{i}"),
                scope: scope(org, s),
            });
        }
        let teams_of = |org: OrgId| -> Vec<TeamId> {
            teams
                .iter()
                .filter(|t| t.org == org)
                .map(|t| t.id)
                .collect()
        };
        let mut agents = Vec::new();
        for (i, (org, team, s)) in self.agents.iter().enumerate() {
            let org = org_id(*org);
            agents.push(AgentRow {
                id: AgentId(400 + i as i64),
                org,
                team: team.and_then(|t| pick(&teams_of(org), t)),
                slug: format!("agent-{i}"),
                scope: scope(org, s),
            });
        }
        let mut end_users = Vec::new();
        for (i, (org, s)) in self.end_users.iter().enumerate() {
            let org = org_id(*org);
            end_users.push(EndUserRow {
                id: EndUserId(300 + i as i64),
                org,
                external_id: format!("user-{i}@example.com"),
                scope: scope(org, s),
                // Some people are disabled: check 1 refuses them whole.
                disabled: i % 2 == 1,
            });
        }
        let mut keys = Vec::new();
        for (i, k) in self.keys.iter().enumerate() {
            let org = org_id(k.org);
            let agents_in: Vec<AgentId> = agents
                .iter()
                .filter(|a| a.org == org)
                .map(|a| a.id)
                .collect();
            keys.push(KeyRow {
                id: KeyId(600 + i as i64),
                org,
                token_digest: format!("digest-{i}"),
                team: k.team.and_then(|t| pick(&teams_of(org), t)),
                agent: k.agent.and_then(|a| pick(&agents_in, a)),
                scope: scope(org, &k.scope),
                revoked: k.revoked,
                expires_at_ms: k.expires_in.map(|d| NOW + i64::from(d)),
                may_assert_end_user: k.may_assert_end_user,
                may_assert_agent: k.may_assert_agent,
            });
        }
        rows.teams = teams;
        rows.agents = agents;
        rows.end_users = end_users;
        rows.keys = keys;

        let mut catalog = Catalog::new();
        for (i, server) in rows.servers.iter().enumerate() {
            if let Some(Some(mask)) = self.catalog.get(i) {
                catalog.insert(server.id, tools_of(*mask).into_iter().collect());
            }
        }
        World { rows, catalog }
    }
}

/// Every principal the rows allow: each key alone, with each end user of its
/// org, and with its bound agent or (if unbound) each agent of its org.
/// Assertion permissions are the gateway's business ([`Snapshot::principal`]);
/// the decision must be right for every combination.
pub fn principals(rows: &PolicyRows) -> Vec<Principal> {
    let mut out = Vec::new();
    for key in &rows.keys {
        let mut users = vec![None];
        users.extend(
            rows.end_users
                .iter()
                .filter(|u| u.org == key.org)
                .map(|u| Some(u.id)),
        );
        let agents: Vec<Option<AgentId>> = match key.agent {
            Some(bound) => vec![Some(bound)],
            None => std::iter::once(None)
                .chain(
                    rows.agents
                        .iter()
                        .filter(|a| a.org == key.org)
                        .map(|a| Some(a.id)),
                )
                .collect(),
        };
        for end_user in &users {
            for agent in &agents {
                out.push(Principal {
                    key: key.id,
                    end_user: *end_user,
                    agent: *agent,
                });
            }
        }
    }
    out
}

/// Every slug a request could name: all servers' (including other orgs'
/// servers and shared per-org names) plus one that exists nowhere.
pub fn slugs(rows: &PolicyRows) -> Vec<String> {
    let mut out: Vec<String> = rows.servers.iter().map(|s| s.slug.clone()).collect();
    out.push(UNKNOWN_SLUG.to_owned());
    out.sort();
    out.dedup();
    out
}

/// Every tool name a request could name.
pub fn tool_names() -> impl Iterator<Item = &'static str> {
    TOOLS.iter().copied().chain([FRESH_TOOL])
}

/// What the caller's `tools/list` holds: (server slug, tool) built from
/// `Access::usable_servers` and the catalog, the way the gateway lists.
pub fn listing(access: &Access, catalog: &Catalog) -> HashSet<(String, String)> {
    let mut out = HashSet::new();
    for (server, filter) in access.usable_servers(NOW) {
        for tool in catalog.get(&server.server).into_iter().flatten() {
            if filter.admits(tool) {
                out.insert((server.slug.clone(), tool.clone()));
            }
        }
    }
    out
}

/// One decision's outcome, without the revision (which differs between
/// snapshots built from different rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub allowed: bool,
    pub reason: Option<Reason>,
    pub trace: Trace,
}

pub type Decisions = HashMap<(Principal, String, String), Outcome>;

/// Every (principal, slug, tool) decision of `principals` under `snapshot`.
pub fn decisions(
    snapshot: &Snapshot,
    principals: &[Principal],
    slugs: &[String],
    catalog: &Catalog,
) -> Decisions {
    let mut out = HashMap::new();
    for p in principals {
        let access = snapshot.access(p);
        for slug in slugs {
            for tool in tool_names() {
                let d = snapshot.decide(&access, slug, tool, catalog, NOW);
                out.insert(
                    (*p, slug.clone(), tool.to_owned()),
                    Outcome {
                        allowed: d.allowed,
                        reason: d.reason,
                        trace: d.trace,
                    },
                );
            }
        }
    }
    out
}

/// The allowed (principal, slug, tool) triples.
pub fn allowed_set(decisions: &Decisions) -> HashSet<(Principal, String, String)> {
    decisions
        .iter()
        .filter(|(_, o)| o.allowed)
        .map(|(k, _)| k.clone())
        .collect()
}

pub fn build(rows: &PolicyRows) -> Snapshot {
    match Snapshot::build(rows.clone()) {
        Ok(s) => s,
        Err(e) => panic!("generated rows must be valid: {e}\n{rows:#?}"),
    }
}

/// Does anything in the principal's chain (team, key, end user, agent) have
/// a scope other than *inherit*?
pub fn has_scoped_level(rows: &PolicyRows, p: &Principal) -> bool {
    let Some(key) = rows.keys.iter().find(|k| k.id == p.key) else {
        return false;
    };
    let team = key
        .team
        .and_then(|t| rows.teams.iter().find(|r| r.id == t))
        .map(|t| &t.scope);
    let user = p
        .end_user
        .and_then(|u| rows.end_users.iter().find(|r| r.id == u))
        .map(|u| &u.scope);
    let agent = p
        .agent
        .and_then(|a| rows.agents.iter().find(|r| r.id == a))
        .map(|a| &a.scope);
    [team, Some(&key.scope), user, agent]
        .into_iter()
        .flatten()
        .any(|s| !matches!(s, Scope::Inherit))
}
