use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::error::{PolicyError, PrincipalError};
use crate::filter::ToolFilter;
use crate::model::*;
use crate::slug::validate_slug;

/// Who is asking: a key, plus the end user and agent it acts for (each already
/// checked to be an assertion the key may make).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Principal {
    pub key: KeyId,
    pub end_user: Option<EndUserId>,
    pub agent: Option<AgentId>,
}

/// The whole policy at one revision, validated and indexed. Immutable: a
/// change builds a new snapshot.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub(crate) revision: u64,
    pub(crate) orgs: HashMap<OrgId, OrgRow>,
    pub(crate) org_by_slug: HashMap<String, OrgId>,
    pub(crate) servers: HashMap<ServerId, ServerRow>,
    pub(crate) global_server_by_slug: HashMap<String, ServerId>,
    pub(crate) org_server_by_slug: HashMap<OrgId, HashMap<String, ServerId>>,
    /// org -> server -> grant.
    pub(crate) org_grants: HashMap<OrgId, HashMap<ServerId, OrgGrantRow>>,
    pub(crate) teams: HashMap<TeamId, TeamRow>,
    pub(crate) keys: HashMap<KeyId, KeyRow>,
    pub(crate) key_by_digest: HashMap<String, KeyId>,
    pub(crate) end_users: HashMap<EndUserId, EndUserRow>,
    pub(crate) end_user_by_external_id: HashMap<(OrgId, String), EndUserId>,
    pub(crate) agents: HashMap<AgentId, AgentRow>,
    pub(crate) agent_by_slug: HashMap<(OrgId, String), AgentId>,
    pub(crate) toolsets: HashMap<ToolsetId, ToolsetRow>,
}

fn index_by_id<K, R>(
    kind: &'static str,
    rows: Vec<R>,
    id: impl Fn(&R) -> K,
) -> Result<HashMap<K, R>, PolicyError>
where
    K: std::hash::Hash + Eq + Copy + Into<i64>,
{
    let mut map = HashMap::with_capacity(rows.len());
    for row in rows {
        let key = id(&row);
        match map.entry(key) {
            Entry::Occupied(_) => {
                return Err(PolicyError::DuplicateId {
                    kind,
                    id: key.into(),
                })
            }
            Entry::Vacant(v) => {
                v.insert(row);
            }
        }
    }
    Ok(map)
}

macro_rules! into_i64 {
    ($($t:ty),*) => {$(impl From<$t> for i64 { fn from(id: $t) -> i64 { id.0 } })*};
}
into_i64!(OrgId, ServerId, TeamId, KeyId, EndUserId, AgentId, ToolsetId);

fn unique<K: std::hash::Hash + Eq, V>(
    map: &mut HashMap<K, V>,
    key: K,
    value: V,
    kind: &'static str,
    name: &str,
    scope: impl FnOnce() -> String,
) -> Result<(), PolicyError> {
    match map.entry(key) {
        Entry::Occupied(_) => Err(PolicyError::DuplicateName {
            kind,
            name: name.to_owned(),
            scope: scope(),
        }),
        Entry::Vacant(v) => {
            v.insert(value);
            Ok(())
        }
    }
}

impl Snapshot {
    /// Validates and indexes the rows. Every reference must resolve within
    /// the owning org; slugs must be well-formed and unique where they are
    /// looked up. Errors name the offending row.
    pub fn build(rows: PolicyRows) -> Result<Snapshot, PolicyError> {
        let PolicyRows {
            revision,
            orgs,
            servers,
            org_grants,
            teams,
            keys,
            end_users,
            agents,
            toolsets,
        } = rows;

        let orgs = index_by_id("org", orgs, |r| r.id)?;
        let mut org_by_slug = HashMap::with_capacity(orgs.len());
        for org in orgs.values() {
            validate_slug("org", &org.slug)?;
            unique(&mut org_by_slug, org.slug.clone(), org.id, "org slug", &org.slug, || {
                "in the gateway".into()
            })?;
        }
        let org_exists = |from: String, org: OrgId| -> Result<(), PolicyError> {
            if orgs.contains_key(&org) {
                Ok(())
            } else {
                Err(PolicyError::Dangling {
                    from,
                    kind: "org",
                    id: org.0,
                    context: String::new(),
                })
            }
        };

        let servers = index_by_id("server", servers, |r| r.id)?;
        let mut global_server_by_slug = HashMap::new();
        let mut org_server_by_slug: HashMap<OrgId, HashMap<String, ServerId>> = HashMap::new();
        for s in servers.values().filter(|s| s.owner_org.is_none()) {
            validate_slug("server", &s.slug)?;
            unique(&mut global_server_by_slug, s.slug.clone(), s.id, "server slug", &s.slug, || {
                "among global servers".into()
            })?;
        }
        for s in servers.values() {
            let Some(owner) = s.owner_org else { continue };
            validate_slug("server", &s.slug)?;
            org_exists(format!("server {}", s.id), owner)?;
            if global_server_by_slug.contains_key(&s.slug) {
                return Err(PolicyError::DuplicateName {
                    kind: "server slug",
                    name: s.slug.clone(),
                    scope: format!("in org {owner}: a global server has it"),
                });
            }
            unique(
                org_server_by_slug.entry(owner).or_default(),
                s.slug.clone(),
                s.id,
                "server slug",
                &s.slug,
                || format!("in org {owner}"),
            )?;
        }
        // A server is visible to an org if it is global or the org owns it.
        let server_visible = |from: String, org: OrgId, server: ServerId| {
            match servers.get(&server) {
                Some(s) if s.owner_org.is_none() || s.owner_org == Some(org) => Ok(()),
                _ => Err(PolicyError::Dangling {
                    from,
                    kind: "server",
                    id: server.0,
                    context: format!(" in org {org}"),
                }),
            }
        };

        let mut grants_by_org: HashMap<OrgId, HashMap<ServerId, OrgGrantRow>> = HashMap::new();
        for g in org_grants {
            let from = format!("org grant ({}, {})", g.org, g.server);
            org_exists(from.clone(), g.org)?;
            server_visible(from, g.org, g.server)?;
            let (org, server) = (g.org, g.server);
            unique(
                grants_by_org.entry(org).or_default(),
                server,
                g,
                "org grant for server",
                &server.to_string(),
                || format!("in org {org}"),
            )?;
        }

        let toolsets = index_by_id("toolset", toolsets, |r| r.id)?;
        let mut toolset_slugs = HashSet::new();
        for t in toolsets.values() {
            let from = format!("toolset {}", t.id);
            validate_slug("toolset", &t.slug)?;
            org_exists(from.clone(), t.org)?;
            if !toolset_slugs.insert((t.org, t.slug.as_str())) {
                return Err(PolicyError::DuplicateName {
                    kind: "toolset slug",
                    name: t.slug.clone(),
                    scope: format!("in org {}", t.org),
                });
            }
            for server in t.servers.keys() {
                granted(&grants_by_org, from.clone(), t.org, *server)?;
            }
        }

        let check_scope = |from: String, org: OrgId, scope: &Scope| -> Result<(), PolicyError> {
            let Some(g) = scope.grants() else { return Ok(()) };
            for server in g.servers.keys() {
                granted(&grants_by_org, from.clone(), org, *server)?;
            }
            for ts in &g.toolsets {
                match toolsets.get(ts) {
                    Some(t) if t.org == org => {}
                    _ => {
                        return Err(PolicyError::Dangling {
                            from,
                            kind: "toolset",
                            id: ts.0,
                            context: format!(" in org {org}"),
                        })
                    }
                }
            }
            Ok(())
        };

        let teams = index_by_id("team", teams, |r| r.id)?;
        let mut team_slugs = HashSet::new();
        for t in teams.values() {
            let from = format!("team {}", t.id);
            validate_slug("team", &t.slug)?;
            org_exists(from.clone(), t.org)?;
            if !team_slugs.insert((t.org, t.slug.as_str())) {
                return Err(PolicyError::DuplicateName {
                    kind: "team slug",
                    name: t.slug.clone(),
                    scope: format!("in org {}", t.org),
                });
            }
            check_scope(from, t.org, &t.scope)?;
        }
        let team_in_org = |from: String, org: OrgId, team: TeamId| match teams.get(&team) {
            Some(t) if t.org == org => Ok(()),
            _ => Err(PolicyError::Dangling {
                from,
                kind: "team",
                id: team.0,
                context: format!(" in org {org}"),
            }),
        };

        let agents = index_by_id("agent", agents, |r| r.id)?;
        let mut agent_by_slug = HashMap::with_capacity(agents.len());
        for a in agents.values() {
            let from = format!("agent {}", a.id);
            validate_slug("agent", &a.slug)?;
            org_exists(from.clone(), a.org)?;
            if let Some(team) = a.team {
                team_in_org(from.clone(), a.org, team)?;
            }
            check_scope(from, a.org, &a.scope)?;
            unique(
                &mut agent_by_slug,
                (a.org, a.slug.clone()),
                a.id,
                "agent slug",
                &a.slug,
                || format!("in org {}", a.org),
            )?;
        }

        let end_users = index_by_id("end user", end_users, |r| r.id)?;
        let mut end_user_by_external_id = HashMap::with_capacity(end_users.len());
        for u in end_users.values() {
            let from = format!("end user {}", u.id);
            org_exists(from.clone(), u.org)?;
            if u.external_id.is_empty() {
                return Err(PolicyError::BadSlug {
                    kind: "end user external id",
                    slug: String::new(),
                    why: "must not be empty".into(),
                });
            }
            check_scope(from, u.org, &u.scope)?;
            unique(
                &mut end_user_by_external_id,
                (u.org, u.external_id.clone()),
                u.id,
                "end user external id",
                &u.external_id,
                || format!("in org {}", u.org),
            )?;
        }

        let keys = index_by_id("key", keys, |r| r.id)?;
        let mut key_by_digest = HashMap::with_capacity(keys.len());
        for k in keys.values() {
            let from = format!("key {}", k.id);
            org_exists(from.clone(), k.org)?;
            if let Some(team) = k.team {
                team_in_org(from.clone(), k.org, team)?;
            }
            if let Some(agent) = k.agent {
                match agents.get(&agent) {
                    Some(a) if a.org == k.org => {}
                    _ => {
                        return Err(PolicyError::Dangling {
                            from,
                            kind: "agent",
                            id: agent.0,
                            context: format!(" in org {}", k.org),
                        })
                    }
                }
            }
            check_scope(from, k.org, &k.scope)?;
            unique(
                &mut key_by_digest,
                k.token_digest.clone(),
                k.id,
                "key token digest",
                "<redacted>",
                || "in the gateway".into(),
            )?;
        }

        Ok(Snapshot {
            revision,
            orgs,
            org_by_slug,
            servers,
            global_server_by_slug,
            org_server_by_slug,
            org_grants: grants_by_org,
            teams,
            keys,
            key_by_digest,
            end_users,
            end_user_by_external_id,
            agents,
            agent_by_slug,
            toolsets,
        })
    }

    /// An empty policy at revision 0: nothing is allowed.
    pub fn empty() -> Snapshot {
        // Building empty rows cannot fail.
        match Snapshot::build(PolicyRows::default()) {
            Ok(s) => s,
            Err(e) => unreachable!("empty policy rows are valid: {e}"),
        }
    }

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
    ) -> Result<Principal, PrincipalError> {
        let key_id = *self
            .key_by_digest
            .get(token_digest)
            .ok_or(PrincipalError::KeyUnknown)?;
        self.principal_for_key(key_id, end_user, agent)
    }

    /// Like [`Snapshot::principal`], for a key already identified.
    pub fn principal_for_key(
        &self,
        key_id: KeyId,
        end_user: Option<&str>,
        agent: Option<&str>,
    ) -> Result<Principal, PrincipalError> {
        let key = self.keys.get(&key_id).ok_or(PrincipalError::KeyUnknown)?;
        let end_user = match end_user {
            None => None,
            Some(_) if !key.may_assert_end_user => {
                return Err(PrincipalError::EndUserAssertionNotAllowed)
            }
            Some(ext) => Some(
                *self
                    .end_user_by_external_id
                    .get(&(key.org, ext.to_owned()))
                    .ok_or_else(|| PrincipalError::EndUserUnknown(ext.to_owned()))?,
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
            (Some(_), Some(_)) => return Err(PrincipalError::AgentAssertionNotAllowed),
            (Some(_), None) if !key.may_assert_agent => {
                return Err(PrincipalError::AgentAssertionNotAllowed)
            }
            (Some(slug), None) => Some(
                *self
                    .agent_by_slug
                    .get(&(key.org, slug.to_owned()))
                    .ok_or_else(|| PrincipalError::AgentUnknown(slug.to_owned()))?,
            ),
        };
        Ok(Principal {
            key: key_id,
            end_user,
            agent,
        })
    }

    pub fn org(&self, id: OrgId) -> Option<&OrgRow> {
        self.orgs.get(&id)
    }

    pub fn org_by_slug(&self, slug: &str) -> Option<&OrgRow> {
        self.org_by_slug.get(slug).and_then(|id| self.orgs.get(id))
    }

    pub fn key(&self, id: KeyId) -> Option<&KeyRow> {
        self.keys.get(&id)
    }

    pub fn server(&self, id: ServerId) -> Option<&ServerRow> {
        self.servers.get(&id)
    }

    /// Every server row (global and org-owned), in no particular order.
    pub fn servers(&self) -> impl Iterator<Item = &ServerRow> {
        self.servers.values()
    }

    /// The server `slug` names for `org`: a global server or one the org
    /// owns. Another org's server is `None`, exactly like a missing one.
    pub fn server_for_org(&self, org: OrgId, slug: &str) -> Option<&ServerRow> {
        let id = self.global_server_by_slug.get(slug).or_else(|| {
            self.org_server_by_slug
                .get(&org)
                .and_then(|by_slug| by_slug.get(slug))
        })?;
        self.servers.get(id)
    }

    pub fn team(&self, id: TeamId) -> Option<&TeamRow> {
        self.teams.get(&id)
    }

    pub fn agent(&self, id: AgentId) -> Option<&AgentRow> {
        self.agents.get(&id)
    }

    pub fn end_user(&self, id: EndUserId) -> Option<&EndUserRow> {
        self.end_users.get(&id)
    }

    pub fn toolset(&self, id: ToolsetId) -> Option<&ToolsetRow> {
        self.toolsets.get(&id)
    }

    pub fn org_grant(&self, org: OrgId, server: ServerId) -> Option<&OrgGrantRow> {
        self.org_grants.get(&org).and_then(|g| g.get(&server))
    }

    /// How many rows of each kind, for logs and metrics.
    pub fn counts(&self) -> [(&'static str, usize); 8] {
        [
            ("orgs", self.orgs.len()),
            ("servers", self.servers.len()),
            ("org_grants", self.org_grants.values().map(HashMap::len).sum()),
            ("teams", self.teams.len()),
            ("keys", self.keys.len()),
            ("end_users", self.end_users.len()),
            ("agents", self.agents.len()),
            ("toolsets", self.toolsets.len()),
        ]
    }

    /// What one scope level says about one server: `None` if the level is
    /// *inherit*, otherwise the union of its own entry and its toolsets'
    /// entries for that server (admitting nothing if none mention it).
    pub(crate) fn level_filter(&self, scope: &Scope, server: ServerId) -> Option<ToolFilter> {
        let grants = scope.grants()?;
        let mut filter = grants.servers.get(&server).cloned().unwrap_or_else(ToolFilter::none);
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

fn granted(
    grants: &HashMap<OrgId, HashMap<ServerId, OrgGrantRow>>,
    from: String,
    org: OrgId,
    server: ServerId,
) -> Result<(), PolicyError> {
    if grants.get(&org).is_some_and(|g| g.contains_key(&server)) {
        Ok(())
    } else {
        Err(PolicyError::Dangling {
            from,
            kind: "org grant for server",
            id: server.0,
            context: format!(" in org {org}"),
        })
    }
}
