//! Validated puts, shared by [`Snapshot::build`] and [`Snapshot::apply`].

use std::sync::Arc;

use super::{check_put, dangling, Put, Snapshot};
use crate::error::PolicyError;
use crate::model::*;
use crate::slug::validate_slug;

fn duplicate(kind: &'static str, name: &str, scope: String) -> PolicyError {
    PolicyError::DuplicateName {
        kind,
        name: name.to_owned(),
        scope,
    }
}

impl Snapshot {
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
}
