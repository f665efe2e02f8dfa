use std::sync::Arc;

use imbl::HashMap as PMap;
use serde::{Deserialize, Serialize};

use crate::change::PolicyChange;
use crate::error::PolicyError;
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
/// change makes a new snapshot. The maps are persistent (structurally
/// shared), so [`Snapshot::apply`] costs about the size of the change, not
/// the size of the policy.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub(crate) revision: u64,
    pub(crate) orgs: PMap<OrgId, Arc<OrgRow>>,
    pub(crate) org_by_slug: PMap<String, OrgId>,
    pub(crate) servers: PMap<ServerId, Arc<ServerRow>>,
    pub(crate) global_server_by_slug: PMap<String, ServerId>,
    pub(crate) org_server_by_slug: PMap<(OrgId, String), ServerId>,
    /// org -> server -> grant.
    pub(crate) org_grants: PMap<OrgId, PMap<ServerId, Arc<OrgGrantRow>>>,
    pub(crate) teams: PMap<TeamId, Arc<TeamRow>>,
    pub(crate) team_by_slug: PMap<(OrgId, String), TeamId>,
    pub(crate) keys: PMap<KeyId, Arc<KeyRow>>,
    pub(crate) key_by_digest: PMap<String, KeyId>,
    pub(crate) end_users: PMap<EndUserId, Arc<EndUserRow>>,
    pub(crate) end_user_by_external_id: PMap<(OrgId, String), EndUserId>,
    pub(crate) agents: PMap<AgentId, Arc<AgentRow>>,
    pub(crate) agent_by_slug: PMap<(OrgId, String), AgentId>,
    pub(crate) toolsets: PMap<ToolsetId, Arc<ToolsetRow>>,
    pub(crate) toolset_by_slug: PMap<(OrgId, String), ToolsetId>,
    pub(crate) limits: PMap<LimitId, Arc<LimitRow>>,
    /// (org, holder) -> the holder's limits: what [`Snapshot::limits_for`]
    /// looks up, one entry per level of the principal.
    pub(crate) limits_by_holder: PMap<(OrgId, LimitLevel), PMap<LimitId, Arc<LimitRow>>>,
    /// org -> ids of its limits, for the org-wide cascades.
    pub(crate) limits_by_org: PMap<OrgId, imbl::HashSet<LimitId>>,
}

/// Whether a row may replace an existing one with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Put {
    /// Building from rows: a second row with the same id is an error.
    New,
    /// Applying a change: insert or replace.
    Upsert,
}

pub(crate) fn dangling(from: String, kind: &'static str, id: i64, org: OrgId) -> PolicyError {
    PolicyError::Dangling {
        from,
        kind,
        id,
        context: format!(" in org {org}"),
    }
}

fn duplicate(kind: &'static str, name: &str, scope: String) -> PolicyError {
    PolicyError::DuplicateName {
        kind,
        name: name.to_owned(),
        scope,
    }
}

/// Checks that `existing` (the row being replaced, if any) allows the put.
pub(crate) fn check_put<R>(
    existing: Option<&Arc<R>>,
    put: Put,
    kind: &'static str,
    id: i64,
    same_org: impl Fn(&R) -> bool,
) -> Result<(), PolicyError> {
    match existing {
        Some(_) if put == Put::New => Err(PolicyError::DuplicateId { kind, id }),
        Some(old) if !same_org(old) => Err(PolicyError::Immutable {
            kind,
            id,
            field: "org",
        }),
        _ => Ok(()),
    }
}

impl Snapshot {
    /// Validates and indexes the rows. Every reference must resolve within
    /// the owning org; slugs must be well-formed and unique where they are
    /// looked up. Errors name the offending row. The same per-row checks
    /// guard [`Snapshot::apply`], so a snapshot built from rows and one
    /// reached by changes agree.
    pub fn build(rows: PolicyRows) -> Result<Snapshot, PolicyError> {
        let mut s = Snapshot {
            revision: rows.revision,
            ..Snapshot::default()
        };
        for r in rows.orgs {
            s.put_org(r, Put::New)?;
        }
        for r in rows.servers {
            s.put_server(r, Put::New)?;
        }
        for r in rows.org_grants {
            s.put_org_grant(r, Put::New)?;
        }
        for r in rows.toolsets {
            s.put_toolset(r, Put::New)?;
        }
        for r in rows.teams {
            s.put_team(r, Put::New)?;
        }
        for r in rows.agents {
            s.put_agent(r, Put::New)?;
        }
        for r in rows.end_users {
            s.put_end_user(r, Put::New)?;
        }
        for r in rows.keys {
            s.put_key(r, Put::New)?;
        }
        for r in rows.limits {
            s.put_limit(r, Put::New)?;
        }
        Ok(s)
    }

    /// An empty policy at revision 0: nothing is allowed.
    pub fn empty() -> Snapshot {
        Snapshot::default()
    }

    /// A new snapshot at `revision` with `change` applied, validated like
    /// [`Snapshot::build`], with the same cascades as the `PolicyRows::delete_*`
    /// model (and the store's foreign keys). `self` is untouched.
    pub fn apply(&self, revision: u64, change: &PolicyChange) -> Result<Snapshot, PolicyError> {
        if revision <= self.revision {
            return Err(PolicyError::RevisionOrder {
                current: self.revision,
                got: revision,
            });
        }
        let mut next = self.clone();
        next.revision = revision;
        next.apply_in_place(change)?;
        Ok(next)
    }

    fn apply_in_place(&mut self, change: &PolicyChange) -> Result<(), PolicyError> {
        use PolicyChange::*;
        match change {
            UpsertOrg(r) => self.put_org(r.clone(), Put::Upsert),
            DeleteOrg(id) => self.remove_org(*id),
            UpsertServer(r) => self.put_server(r.clone(), Put::Upsert),
            DeleteServer(id) => self.remove_server(*id),
            UpsertOrgGrant(r) => self.put_org_grant(r.clone(), Put::Upsert),
            DeleteOrgGrant { org, server } => self.remove_org_grant(*org, *server),
            UpsertTeam(r) => self.put_team(r.clone(), Put::Upsert),
            DeleteTeam(id) => self.remove_team(*id),
            UpsertKey(r) => self.put_key(r.clone(), Put::Upsert),
            DeleteKey(id) => self.remove_key(*id),
            UpsertEndUser(r) => self.put_end_user(r.clone(), Put::Upsert),
            DeleteEndUser(id) => self.remove_end_user(*id),
            UpsertAgent(r) => self.put_agent(r.clone(), Put::Upsert),
            DeleteAgent(id) => self.remove_agent(*id),
            UpsertToolset(r) => self.put_toolset(r.clone(), Put::Upsert),
            DeleteToolset(id) => self.remove_toolset(*id),
            UpsertLimit(r) => self.put_limit(r.clone(), Put::Upsert),
            DeleteLimit(id) => self.remove_limit(*id).map(|_| ()),
            Batch(changes) => changes.iter().try_for_each(|c| self.apply_in_place(c)),
        }
    }

    /// Every row, in id order: the inverse of [`Snapshot::build`].
    pub fn to_rows(&self) -> PolicyRows {
        fn sorted<K, R>(m: &PMap<K, Arc<R>>) -> Vec<R>
        where
            K: Ord + Copy + std::hash::Hash + Eq,
            R: Clone,
        {
            let mut v: Vec<(K, R)> = m.iter().map(|(k, r)| (*k, R::clone(r))).collect();
            v.sort_by_key(|(k, _)| *k);
            v.into_iter().map(|(_, r)| r).collect()
        }
        let mut org_grants: Vec<OrgGrantRow> = self
            .org_grants
            .values()
            .flat_map(|g| g.values().map(|r| OrgGrantRow::clone(r)))
            .collect();
        org_grants.sort_by_key(|g| (g.org, g.server));
        PolicyRows {
            revision: self.revision,
            orgs: sorted(&self.orgs),
            servers: sorted(&self.servers),
            org_grants,
            teams: sorted(&self.teams),
            keys: sorted(&self.keys),
            end_users: sorted(&self.end_users),
            agents: sorted(&self.agents),
            toolsets: sorted(&self.toolsets),
            limits: sorted(&self.limits),
        }
    }

    // ----- validated puts, shared by build and apply -----

    pub(crate) fn require_org(
        &self,
        from: impl FnOnce() -> String,
        org: OrgId,
    ) -> Result<(), PolicyError> {
        if self.orgs.contains_key(&org) {
            Ok(())
        } else {
            Err(PolicyError::Dangling {
                from: from(),
                kind: "org",
                id: org.0,
                context: String::new(),
            })
        }
    }

    pub(crate) fn require_granted(
        &self,
        from: &str,
        org: OrgId,
        server: ServerId,
    ) -> Result<(), PolicyError> {
        if self.org_grant(org, server).is_some() {
            Ok(())
        } else {
            Err(dangling(
                from.to_owned(),
                "org grant for server",
                server.0,
                org,
            ))
        }
    }

    pub(crate) fn require_team(
        &self,
        from: &str,
        org: OrgId,
        team: TeamId,
    ) -> Result<(), PolicyError> {
        match self.teams.get(&team) {
            Some(t) if t.org == org => Ok(()),
            _ => Err(dangling(from.to_owned(), "team", team.0, org)),
        }
    }

    fn check_scope(&self, from: &str, org: OrgId, scope: &Scope) -> Result<(), PolicyError> {
        let Some(g) = scope.grants() else {
            return Ok(());
        };
        for server in g.servers.keys() {
            self.require_granted(from, org, *server)?;
        }
        for ts in &g.toolsets {
            match self.toolsets.get(ts) {
                Some(t) if t.org == org => {}
                _ => return Err(dangling(from.to_owned(), "toolset", ts.0, org)),
            }
        }
        Ok(())
    }

    pub(crate) fn put_org(&mut self, r: OrgRow, put: Put) -> Result<(), PolicyError> {
        validate_slug("org", &r.slug)?;
        let old = self.orgs.get(&r.id).cloned();
        check_put(old.as_ref(), put, "org", r.id.0, |_| true)?;
        if self.org_by_slug.get(&r.slug).is_some_and(|id| *id != r.id) {
            return Err(duplicate("org slug", &r.slug, "in the gateway".into()));
        }
        if let Some(old) = old {
            self.org_by_slug.remove(&old.slug);
        }
        self.org_by_slug.insert(r.slug.clone(), r.id);
        self.orgs.insert(r.id, Arc::new(r));
        Ok(())
    }

    pub(crate) fn put_server(&mut self, r: ServerRow, put: Put) -> Result<(), PolicyError> {
        validate_slug("server", &r.slug)?;
        let old = self.servers.get(&r.id).cloned();
        check_put(old.as_ref(), put, "server", r.id.0, |o| {
            o.owner_org == r.owner_org
        })?;
        if let Some(owner) = r.owner_org {
            self.require_org(|| format!("server {}", r.id), owner)?;
        }
        let taken_by = |id: Option<&ServerId>| id.is_some_and(|id| *id != r.id);
        match r.owner_org {
            None => {
                if taken_by(self.global_server_by_slug.get(&r.slug)) {
                    return Err(duplicate(
                        "server slug",
                        &r.slug,
                        "among global servers".into(),
                    ));
                }
                if self
                    .org_server_by_slug
                    .keys()
                    .any(|(_, slug)| *slug == r.slug)
                {
                    return Err(duplicate(
                        "server slug",
                        &r.slug,
                        "in the gateway: an org-owned server has it".into(),
                    ));
                }
            }
            Some(owner) => {
                if self.global_server_by_slug.contains_key(&r.slug) {
                    return Err(duplicate(
                        "server slug",
                        &r.slug,
                        format!("in org {owner}: a global server has it"),
                    ));
                }
                if taken_by(self.org_server_by_slug.get(&(owner, r.slug.clone()))) {
                    return Err(duplicate("server slug", &r.slug, format!("in org {owner}")));
                }
            }
        }
        if let Some(old) = old {
            match old.owner_org {
                None => self.global_server_by_slug.remove(&old.slug),
                Some(o) => self.org_server_by_slug.remove(&(o, old.slug.clone())),
            };
        }
        match r.owner_org {
            None => self.global_server_by_slug.insert(r.slug.clone(), r.id),
            Some(o) => self.org_server_by_slug.insert((o, r.slug.clone()), r.id),
        };
        self.servers.insert(r.id, Arc::new(r));
        Ok(())
    }

    pub(crate) fn put_org_grant(&mut self, r: OrgGrantRow, put: Put) -> Result<(), PolicyError> {
        let from = || format!("org grant ({}, {})", r.org, r.server);
        self.require_org(from, r.org)?;
        match self.servers.get(&r.server) {
            Some(s) if s.owner_org.is_none() || s.owner_org == Some(r.org) => {}
            _ => return Err(dangling(from(), "server", r.server.0, r.org)),
        }
        let grants = self.org_grants.entry(r.org).or_default();
        if put == Put::New && grants.contains_key(&r.server) {
            return Err(duplicate(
                "org grant for server",
                &r.server.to_string(),
                format!("in org {}", r.org),
            ));
        }
        grants.insert(r.server, Arc::new(r));
        Ok(())
    }

    pub(crate) fn put_toolset(&mut self, r: ToolsetRow, put: Put) -> Result<(), PolicyError> {
        let from = format!("toolset {}", r.id);
        validate_slug("toolset", &r.slug)?;
        let old = self.toolsets.get(&r.id).cloned();
        check_put(old.as_ref(), put, "toolset", r.id.0, |o| o.org == r.org)?;
        self.require_org(|| from.clone(), r.org)?;
        let slug_key = (r.org, r.slug.clone());
        if self
            .toolset_by_slug
            .get(&slug_key)
            .is_some_and(|id| *id != r.id)
        {
            return Err(duplicate(
                "toolset slug",
                &r.slug,
                format!("in org {}", r.org),
            ));
        }
        for server in r.servers.keys() {
            self.require_granted(&from, r.org, *server)?;
        }
        if let Some(old) = old {
            self.toolset_by_slug.remove(&(old.org, old.slug.clone()));
        }
        self.toolset_by_slug.insert(slug_key, r.id);
        self.toolsets.insert(r.id, Arc::new(r));
        Ok(())
    }

    pub(crate) fn put_team(&mut self, r: TeamRow, put: Put) -> Result<(), PolicyError> {
        let from = format!("team {}", r.id);
        validate_slug("team", &r.slug)?;
        let old = self.teams.get(&r.id).cloned();
        check_put(old.as_ref(), put, "team", r.id.0, |o| o.org == r.org)?;
        self.require_org(|| from.clone(), r.org)?;
        let slug_key = (r.org, r.slug.clone());
        if self
            .team_by_slug
            .get(&slug_key)
            .is_some_and(|id| *id != r.id)
        {
            return Err(duplicate("team slug", &r.slug, format!("in org {}", r.org)));
        }
        self.check_scope(&from, r.org, &r.scope)?;
        if let Some(old) = old {
            self.team_by_slug.remove(&(old.org, old.slug.clone()));
        }
        self.team_by_slug.insert(slug_key, r.id);
        self.teams.insert(r.id, Arc::new(r));
        Ok(())
    }

    pub(crate) fn put_agent(&mut self, r: AgentRow, put: Put) -> Result<(), PolicyError> {
        let from = format!("agent {}", r.id);
        validate_slug("agent", &r.slug)?;
        let old = self.agents.get(&r.id).cloned();
        check_put(old.as_ref(), put, "agent", r.id.0, |o| o.org == r.org)?;
        self.require_org(|| from.clone(), r.org)?;
        if let Some(team) = r.team {
            self.require_team(&from, r.org, team)?;
        }
        let slug_key = (r.org, r.slug.clone());
        if self
            .agent_by_slug
            .get(&slug_key)
            .is_some_and(|id| *id != r.id)
        {
            return Err(duplicate(
                "agent slug",
                &r.slug,
                format!("in org {}", r.org),
            ));
        }
        self.check_scope(&from, r.org, &r.scope)?;
        if let Some(old) = old {
            self.agent_by_slug.remove(&(old.org, old.slug.clone()));
        }
        self.agent_by_slug.insert(slug_key, r.id);
        self.agents.insert(r.id, Arc::new(r));
        Ok(())
    }

    pub(crate) fn put_end_user(&mut self, r: EndUserRow, put: Put) -> Result<(), PolicyError> {
        let from = format!("end user {}", r.id);
        if r.external_id.is_empty() {
            return Err(PolicyError::BadSlug {
                kind: "end user external id",
                slug: String::new(),
                why: "must not be empty".into(),
            });
        }
        let old = self.end_users.get(&r.id).cloned();
        check_put(old.as_ref(), put, "end user", r.id.0, |o| o.org == r.org)?;
        self.require_org(|| from.clone(), r.org)?;
        let ext_key = (r.org, r.external_id.clone());
        if self
            .end_user_by_external_id
            .get(&ext_key)
            .is_some_and(|id| *id != r.id)
        {
            return Err(duplicate(
                "end user external id",
                &r.external_id,
                format!("in org {}", r.org),
            ));
        }
        self.check_scope(&from, r.org, &r.scope)?;
        if let Some(old) = old {
            self.end_user_by_external_id
                .remove(&(old.org, old.external_id.clone()));
        }
        self.end_user_by_external_id.insert(ext_key, r.id);
        self.end_users.insert(r.id, Arc::new(r));
        Ok(())
    }

    pub(crate) fn put_key(&mut self, r: KeyRow, put: Put) -> Result<(), PolicyError> {
        let from = format!("key {}", r.id);
        let old = self.keys.get(&r.id).cloned();
        check_put(old.as_ref(), put, "key", r.id.0, |o| o.org == r.org)?;
        self.require_org(|| from.clone(), r.org)?;
        if let Some(team) = r.team {
            self.require_team(&from, r.org, team)?;
        }
        if let Some(agent) = r.agent {
            match self.agents.get(&agent) {
                Some(a) if a.org == r.org => {}
                _ => return Err(dangling(from, "agent", agent.0, r.org)),
            }
        }
        self.check_scope(&from, r.org, &r.scope)?;
        if self
            .key_by_digest
            .get(&r.token_digest)
            .is_some_and(|id| *id != r.id)
        {
            return Err(duplicate(
                "key token digest",
                "<redacted>",
                "in the gateway".into(),
            ));
        }
        if let Some(old) = old {
            self.key_by_digest.remove(&old.token_digest);
        }
        self.key_by_digest.insert(r.token_digest.clone(), r.id);
        self.keys.insert(r.id, Arc::new(r));
        Ok(())
    }

    // ----- cascading removes, mirroring PolicyRows::delete_* -----

    pub(crate) fn not_found(kind: &'static str, id: i64) -> PolicyError {
        PolicyError::NotFound { kind, id }
    }

    /// Rewrites every scope (of `org`, or of all orgs) that `touches`, with
    /// `edit`. Only the affected rows are copied.
    fn edit_scopes(
        &mut self,
        org: Option<OrgId>,
        touches: impl Fn(&ScopeGrants) -> bool,
        edit: impl Fn(&mut ScopeGrants),
    ) {
        let hit = |o: OrgId, scope: &Scope| {
            org.is_none_or(|org| org == o) && scope.grants().is_some_and(&touches)
        };
        let apply = |scope: &mut Scope| {
            if let Scope::Grants(g) = scope {
                edit(g);
            }
        };
        macro_rules! edit_map {
            ($map:expr) => {{
                let ids: Vec<_> = $map
                    .iter()
                    .filter(|(_, r)| hit(r.org, &r.scope))
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids {
                    if let Some(r) = $map.get_mut(&id) {
                        apply(&mut Arc::make_mut(r).scope);
                    }
                }
            }};
        }
        edit_map!(self.teams);
        edit_map!(self.keys);
        edit_map!(self.end_users);
        edit_map!(self.agents);
    }

    fn edit_toolsets(&mut self, org: Option<OrgId>, server: ServerId) {
        let ids: Vec<ToolsetId> = self
            .toolsets
            .iter()
            .filter(|(_, t)| org.is_none_or(|o| o == t.org) && t.servers.contains_key(&server))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(t) = self.toolsets.get_mut(&id) {
                Arc::make_mut(t).servers.remove(&server);
            }
        }
    }

    pub(crate) fn remove_org_grant(
        &mut self,
        org: OrgId,
        server: ServerId,
    ) -> Result<(), PolicyError> {
        let removed = self
            .org_grants
            .get_mut(&org)
            .and_then(|g| g.remove(&server));
        if removed.is_none() {
            return Err(Self::not_found("org grant for server", server.0));
        }
        self.remove_limits_on_server(org, server);
        self.edit_scopes(
            Some(org),
            |g| g.servers.contains_key(&server),
            |g| {
                g.servers.remove(&server);
            },
        );
        self.edit_toolsets(Some(org), server);
        Ok(())
    }

    pub(crate) fn remove_server(&mut self, id: ServerId) -> Result<(), PolicyError> {
        let server = self
            .servers
            .remove(&id)
            .ok_or_else(|| Self::not_found("server", id.0))?;
        match server.owner_org {
            None => self.global_server_by_slug.remove(&server.slug),
            Some(o) => self.org_server_by_slug.remove(&(o, server.slug.clone())),
        };
        let orgs: Vec<OrgId> = self
            .org_grants
            .iter()
            .filter(|(_, g)| g.contains_key(&id))
            .map(|(org, _)| *org)
            .collect();
        for org in orgs {
            if let Some(g) = self.org_grants.get_mut(&org) {
                g.remove(&id);
            }
            self.remove_limits_on_server(org, id);
        }
        self.edit_scopes(
            None,
            |g| g.servers.contains_key(&id),
            |g| {
                g.servers.remove(&id);
            },
        );
        self.edit_toolsets(None, id);
        Ok(())
    }

    pub(crate) fn remove_toolset(&mut self, id: ToolsetId) -> Result<(), PolicyError> {
        let t = self
            .toolsets
            .remove(&id)
            .ok_or_else(|| Self::not_found("toolset", id.0))?;
        self.toolset_by_slug.remove(&(t.org, t.slug.clone()));
        self.edit_scopes(
            Some(t.org),
            |g| g.toolsets.contains(&id),
            |g| {
                g.toolsets.remove(&id);
            },
        );
        Ok(())
    }

    pub(crate) fn remove_key(&mut self, id: KeyId) -> Result<(), PolicyError> {
        let k = self
            .keys
            .remove(&id)
            .ok_or_else(|| Self::not_found("key", id.0))?;
        self.key_by_digest.remove(&k.token_digest);
        self.remove_limits_of((k.org, LimitLevel::Key(id)));
        Ok(())
    }

    pub(crate) fn remove_end_user(&mut self, id: EndUserId) -> Result<(), PolicyError> {
        let u = self
            .end_users
            .remove(&id)
            .ok_or_else(|| Self::not_found("end user", id.0))?;
        self.end_user_by_external_id
            .remove(&(u.org, u.external_id.clone()));
        self.remove_limits_of((u.org, LimitLevel::EndUser(id)));
        Ok(())
    }

    pub(crate) fn remove_agent(&mut self, id: AgentId) -> Result<(), PolicyError> {
        let a = self
            .agents
            .remove(&id)
            .ok_or_else(|| Self::not_found("agent", id.0))?;
        self.agent_by_slug.remove(&(a.org, a.slug.clone()));
        self.remove_limits_of((a.org, LimitLevel::Agent(id)));
        let bound: Vec<KeyId> = self
            .keys
            .iter()
            .filter(|(_, k)| k.agent == Some(id))
            .map(|(kid, _)| *kid)
            .collect();
        for key in bound {
            self.remove_key(key)?;
        }
        Ok(())
    }

    pub(crate) fn remove_team(&mut self, id: TeamId) -> Result<(), PolicyError> {
        let t = self
            .teams
            .remove(&id)
            .ok_or_else(|| Self::not_found("team", id.0))?;
        self.team_by_slug.remove(&(t.org, t.slug.clone()));
        self.remove_limits_of((t.org, LimitLevel::Team(id)));
        let keys: Vec<KeyId> = self
            .keys
            .iter()
            .filter(|(_, k)| k.team == Some(id))
            .map(|(kid, _)| *kid)
            .collect();
        for key in keys {
            self.remove_key(key)?;
        }
        let agents: Vec<AgentId> = self
            .agents
            .iter()
            .filter(|(_, a)| a.team == Some(id))
            .map(|(aid, _)| *aid)
            .collect();
        for agent in agents {
            self.remove_agent(agent)?;
        }
        Ok(())
    }

    pub(crate) fn remove_org(&mut self, id: OrgId) -> Result<(), PolicyError> {
        let org = self
            .orgs
            .remove(&id)
            .ok_or_else(|| Self::not_found("org", id.0))?;
        self.org_by_slug.remove(&org.slug);
        for l in self.limits_by_org.remove(&id).into_iter().flatten() {
            self.remove_limit(l)?;
        }
        macro_rules! ids_in_org {
            ($map:expr) => {
                $map.iter()
                    .filter(|(_, r)| r.org == id)
                    .map(|(rid, _)| *rid)
                    .collect::<Vec<_>>()
            };
        }
        for k in ids_in_org!(self.keys) {
            self.remove_key(k)?;
        }
        for u in ids_in_org!(self.end_users) {
            self.remove_end_user(u)?;
        }
        for a in ids_in_org!(self.agents) {
            self.remove_agent(a)?;
        }
        for t in ids_in_org!(self.teams) {
            self.remove_team(t)?;
        }
        for t in ids_in_org!(self.toolsets) {
            self.remove_toolset(t)?;
        }
        self.org_grants.remove(&id);
        let owned: Vec<ServerId> = self
            .servers
            .iter()
            .filter(|(_, s)| s.owner_org == Some(id))
            .map(|(sid, _)| *sid)
            .collect();
        for s in owned {
            self.remove_server(s)?;
        }
        Ok(())
    }

    // ----- lookups -----

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
