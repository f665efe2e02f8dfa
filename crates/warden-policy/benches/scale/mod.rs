//! A policy at the scale of issue 2, with a realistic shape: 100 orgs, each
//! granted ~100 of 1,000 servers (50 tools each); 10,000 teams, 100,000
//! keys, 100,000 end users, 10,000 agents, 1,000 toolsets, scopes with a few
//! entries. Deterministic: the same rows every run.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use warden_policy::*;

pub const ORGS: i64 = 100;
pub const SERVERS: i64 = 1_000;
/// Servers 0..GLOBAL are global; the rest are owned one per org.
pub const GLOBAL: i64 = 900;
pub const TOOLS_PER_SERVER: usize = 50;
pub const GRANTS_PER_ORG: i64 = 99;
pub const TEAMS_PER_ORG: i64 = 100;
pub const KEYS_PER_ORG: i64 = 1_000;
pub const END_USERS_PER_ORG: i64 = 1_000;
pub const AGENTS_PER_ORG: i64 = 100;
pub const TOOLSETS_PER_ORG: i64 = 10;

pub fn tool(i: usize) -> String {
    format!("tool_{i:02}")
}

/// splitmix64: a tiny deterministic generator, enough for shaping rows.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn filter(rng: &mut Rng) -> ToolFilter {
    match rng.below(10) {
        0..=5 => ToolFilter::All,
        6..=7 => ToolFilter::except((0..2).map(|_| tool(rng.below(50) as usize))),
        _ => ToolFilter::only((0..8).map(|_| tool(rng.below(50) as usize))),
    }
}

/// The servers org `o` is granted: 99 global ones (a sliding window, so
/// orgs overlap) and the one it owns.
pub fn granted(o: i64) -> Vec<ServerId> {
    let mut out: Vec<ServerId> = (0..GRANTS_PER_ORG)
        .map(|i| ServerId((o * 9 + i) % GLOBAL))
        .collect();
    out.push(ServerId(GLOBAL + o));
    out
}

fn org_of(o: i64) -> OrgId {
    OrgId(o + 1)
}

fn scope(rng: &mut Rng, o: i64, inherit_percent: u64, entries: u64, toolset_percent: u64) -> Scope {
    if rng.chance(inherit_percent) {
        return Scope::Inherit;
    }
    let servers = granted(o);
    let mut g = ScopeGrants {
        servers: BTreeMap::new(),
        toolsets: BTreeSet::new(),
    };
    for _ in 0..entries {
        let s = servers[rng.below(servers.len() as u64) as usize];
        g.servers.insert(s, filter(rng));
    }
    if rng.chance(toolset_percent) {
        g.toolsets.insert(ToolsetId(
            o * TOOLSETS_PER_ORG + rng.below(TOOLSETS_PER_ORG as u64) as i64,
        ));
    }
    Scope::Grants(g)
}

pub fn rows() -> PolicyRows {
    let mut rng = Rng::new(42);
    let mut rows = PolicyRows {
        revision: 1,
        ..PolicyRows::default()
    };
    for o in 0..ORGS {
        rows.orgs.push(OrgRow {
            id: org_of(o),
            slug: format!("org-{o}"),
            suspended: false,
        });
    }
    for s in 0..SERVERS {
        rows.servers.push(ServerRow {
            id: ServerId(s),
            slug: format!("server-{s}"),
            owner_org: (s >= GLOBAL).then(|| org_of(s - GLOBAL)),
            enabled: !rng.chance(2),
        });
    }
    for o in 0..ORGS {
        for server in granted(o) {
            rows.org_grants.push(OrgGrantRow {
                org: org_of(o),
                server,
                enabled: !rng.chance(3),
                filter: filter(&mut rng),
            });
        }
    }
    for o in 0..ORGS {
        let servers = granted(o);
        for t in 0..TOOLSETS_PER_ORG {
            let entries = (0..5)
                .map(|_| {
                    (
                        servers[rng.below(servers.len() as u64) as usize],
                        filter(&mut rng),
                    )
                })
                .collect();
            rows.toolsets.push(ToolsetRow {
                id: ToolsetId(o * TOOLSETS_PER_ORG + t),
                org: org_of(o),
                slug: format!("toolset-{t}"),
                servers: entries,
            });
        }
        for t in 0..TEAMS_PER_ORG {
            rows.teams.push(TeamRow {
                id: TeamId(o * TEAMS_PER_ORG + t),
                org: org_of(o),
                slug: format!("team-{t}"),
                scope: scope(&mut rng, o, 50, 5, 30),
            });
        }
        for a in 0..AGENTS_PER_ORG {
            rows.agents.push(AgentRow {
                id: AgentId(o * AGENTS_PER_ORG + a),
                org: org_of(o),
                team: rng
                    .chance(70)
                    .then(|| TeamId(o * TEAMS_PER_ORG + rng.below(TEAMS_PER_ORG as u64) as i64)),
                slug: format!("agent-{a}"),
                scope: scope(&mut rng, o, 0, 5, 30),
            });
        }
        for u in 0..END_USERS_PER_ORG {
            rows.end_users.push(EndUserRow {
                id: EndUserId(o * END_USERS_PER_ORG + u),
                org: org_of(o),
                external_id: format!("user-{u}@org-{o}.example"),
                scope: scope(&mut rng, o, 50, 3, 20),
                disabled: false,
            });
        }
        for k in 0..KEYS_PER_ORG {
            let team = rng
                .chance(80)
                .then(|| TeamId(o * TEAMS_PER_ORG + rng.below(TEAMS_PER_ORG as u64) as i64));
            rows.keys.push(KeyRow {
                id: KeyId(o * KEYS_PER_ORG + k),
                org: org_of(o),
                token_digest: format!("{:064x}", (o * KEYS_PER_ORG + k) as u64 * 0x9e37_79b9),
                team,
                agent: rng
                    .chance(10)
                    .then(|| AgentId(o * AGENTS_PER_ORG + rng.below(AGENTS_PER_ORG as u64) as i64)),
                scope: scope(&mut rng, o, 80, 3, 10),
                revoked: rng.chance(2),
                expires_at_ms: None,
                may_assert_end_user: rng.chance(20),
                may_assert_agent: rng.chance(10),
            });
        }
    }
    rows
}

/// Every server's catalog: 50 tools each.
pub fn catalog() -> HashMap<ServerId, HashSet<String>> {
    (0..SERVERS)
        .map(|s| (ServerId(s), (0..TOOLS_PER_SERVER).map(tool).collect()))
        .collect()
}

/// A principal that exercises every level: a key in a scoped team, acting
/// for an end user, through an agent; and one (server slug, tool) it may
/// call. Searches the rows for such a combination.
pub fn busy_principal(
    snapshot: &Snapshot,
    rows: &PolicyRows,
    catalog: &HashMap<ServerId, HashSet<String>>,
) -> (Principal, String, String) {
    let scoped = |s: &Scope| matches!(s, Scope::Grants(g) if !g.servers.is_empty());
    for key in rows.keys.iter().filter(|k| !k.revoked && k.agent.is_none()) {
        let Some(team) = key.team.and_then(|t| snapshot.team(t)) else {
            continue;
        };
        if !scoped(&team.scope) {
            continue;
        }
        let o = key.org.0 - 1;
        for u in 0..20 {
            let user = EndUserId(o * END_USERS_PER_ORG + u);
            if !snapshot.end_user(user).is_some_and(|u| scoped(&u.scope)) {
                continue;
            }
            for a in 0..AGENTS_PER_ORG {
                let agent = AgentId(o * AGENTS_PER_ORG + a);
                let p = Principal {
                    key: key.id,
                    end_user: Some(user),
                    agent: Some(agent),
                };
                let access = snapshot.access(&p);
                let found = access.usable_servers(0).find_map(|(server, f)| {
                    let t = (0..TOOLS_PER_SERVER).map(tool).find(|t| f.admits(t))?;
                    catalog
                        .contains_key(&server.server)
                        .then(|| (server.slug.clone(), t))
                });
                if let Some((slug, t)) = found {
                    return (p, slug, t);
                }
            }
        }
    }
    panic!("the generated policy has no principal using every level");
}
