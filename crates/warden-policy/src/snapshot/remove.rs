//! Cascading removes, mirroring `PolicyRows::delete_*` (and the store's
//! foreign keys).

use std::sync::Arc;

use super::Snapshot;
use crate::error::PolicyError;
use crate::model::*;

impl Snapshot {
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
}
