//! Applying a bootstrap file: create what is missing, bring what differs in
//! line, touch nothing else. Every change goes through the same store
//! writes (and engine checks) as the admin API, as actor `system:bootstrap`.

use std::collections::BTreeMap;
use std::path::Path;

use warden_policy::{LimitLevel, OrgId, Rate, Scope, ServerId, ToolFilter, Window};
use warden_store::{
    KeyPatch, LimitPatch, NewAgent, NewKey, NewLimit, NewOrg, NewServer, NewTeam, NewToolset,
    OrgGrant, OrgGrantPatch, Page, Secret, ServerPatch, ToolsetPatch, Transport,
};

use super::file::*;
use crate::auth::Admin;
use crate::dto::{ScopeSpec, TransportSpec, WindowSpec};
use crate::error::AdminError;
use crate::ops::convert::parse_time;
use crate::state::AdminState;

/// What applying a file did.
#[derive(Debug, Default)]
pub struct BootstrapReport {
    /// Writes made (0 when the state already matched the file).
    pub changes: usize,
    /// The policy revision after applying.
    pub revision: u64,
    /// Keys created with a generated secret: shown this once, for the
    /// caller to print.
    pub generated_keys: Vec<GeneratedKey>,
}

/// A key the bootstrap created with a generated secret.
pub struct GeneratedKey {
    pub org: String,
    pub name: String,
    pub secret: Secret,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("org", &self.org)
            .field("name", &self.name)
            .field("secret", &self.secret)
            .finish()
    }
}

/// Reads and parses a bootstrap file.
pub fn load(path: &Path) -> Result<BootstrapFile, AdminError> {
    let text = std::fs::read_to_string(path).map_err(|e| AdminError::Bootstrap {
        entry: path.display().to_string(),
        message: format!("cannot read: {e}"),
    })?;
    parse(&text).map_err(|e| match e {
        AdminError::Bootstrap { message, .. } => AdminError::Bootstrap {
            entry: path.display().to_string(),
            message,
        },
        other => other,
    })
}

/// Parses bootstrap TOML.
pub fn parse(text: &str) -> Result<BootstrapFile, AdminError> {
    toml::from_str(text).map_err(|e| AdminError::Bootstrap {
        entry: "file".into(),
        message: e.to_string(),
    })
}

/// Applies `file`, reading secrets through `env` (normally
/// `std::env::var(name).ok()`).
pub async fn apply(
    state: &AdminState,
    file: &BootstrapFile,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BootstrapReport, AdminError> {
    let mut run = Run {
        s: state,
        admin: Admin::system("bootstrap"),
        env,
        report: BootstrapReport::default(),
    };
    for e in &file.orgs {
        run.org(e)
            .await
            .map_err(|err| context(format!("org {:?}", e.slug), err))?;
    }
    for e in &file.servers {
        run.server(e)
            .await
            .map_err(|err| context(format!("server {:?}", e.slug), err))?;
    }
    for e in &file.grants {
        run.grant(e)
            .await
            .map_err(|err| context(format!("grant {}/{}", e.org, e.server), err))?;
    }
    for e in &file.toolsets {
        run.toolset(e)
            .await
            .map_err(|err| context(format!("toolset {}/{}", e.org, e.slug), err))?;
    }
    for e in &file.orgs {
        run.new_user_scope(e)
            .await
            .map_err(|err| context(format!("new_user_scope of org {:?}", e.slug), err))?;
    }
    for e in &file.teams {
        run.team(e)
            .await
            .map_err(|err| context(format!("team {}/{}", e.org, e.slug), err))?;
    }
    for e in &file.agents {
        run.agent(e)
            .await
            .map_err(|err| context(format!("agent {}/{}", e.org, e.slug), err))?;
    }
    for e in &file.keys {
        run.key(e)
            .await
            .map_err(|err| context(format!("key {}/{}", e.org, e.name), err))?;
    }
    for (i, e) in file.limits.iter().enumerate() {
        run.limit(e)
            .await
            .map_err(|err| context(format!("limit #{} of org {}", i + 1, e.org), err))?;
    }
    for e in &file.identity_providers {
        run.identity_provider(e)
            .await
            .map_err(|err| context(format!("identity provider {}", e.slug), err))?;
    }
    run.report.revision = state.live().revision();
    Ok(run.report)
}

fn context(entry: String, err: AdminError) -> AdminError {
    match err {
        AdminError::Bootstrap { .. } => err,
        other => AdminError::Bootstrap {
            entry,
            message: other.to_string(),
        },
    }
}

struct Run<'a> {
    s: &'a AdminState,
    admin: Admin,
    env: &'a dyn Fn(&str) -> Option<String>,
    report: BootstrapReport,
}

fn transport_of(spec: &TransportSpec) -> Transport {
    match spec.clone() {
        TransportSpec::Http { url } => Transport::Http { url },
        TransportSpec::Stdio { command, args, env } => Transport::Stdio { command, args, env },
    }
}

impl Run<'_> {
    /// Registers the provider if its slug is new, else brings its
    /// configuration in line (whether it is enabled is left alone).
    async fn identity_provider(
        &mut self,
        e: &warden_identity::ProviderConfig,
    ) -> Result<(), AdminError> {
        crate::validate::Validate::validate(e)?;
        let store = self.s.store();
        let existing = store
            .list_identity_providers()
            .await
            .map_err(|x| self.s.error(x))?
            .into_iter()
            .find(|p| p.config.slug == e.slug);
        match existing {
            None => {
                store
                    .create_identity_provider(&self.admin.actor, e.clone())
                    .await
                    .map_err(|x| self.s.error(x))?;
            }
            Some(p) if p.config == *e => return Ok(()),
            Some(p) => {
                store
                    .update_identity_provider(
                        &self.admin.actor,
                        p.id,
                        warden_store::IdentityProviderPatch {
                            enabled: None,
                            config: Some(e.clone()),
                        },
                    )
                    .await
                    .map_err(|x| self.s.error(x))?;
            }
        }
        self.report.changes += 1;
        Ok(())
    }

    /// Creates the limit for the entry's (holder, server, tool) if there is
    /// none, else brings its rate and concurrency in line (absent: left as is).
    async fn limit(&mut self, e: &LimitEntry) -> Result<(), AdminError> {
        let org = self.org_id(&e.org).await?;
        let holders = [&e.team, &e.key, &e.end_user, &e.agent];
        if holders.iter().filter(|h| h.is_some()).count() > 1 {
            return Err(AdminError::invalid(
                "level",
                "name at most one of team, key, end_user and agent",
            ));
        }
        let level = if let Some(slug) = &e.team {
            LimitLevel::Team(self.s.team(org, slug).await?.id)
        } else if let Some(name) = &e.key {
            let key = self
                .s
                .store()
                .get_key_by_name(org, name)
                .await
                .map_err(|x| self.s.error(x))?
                .ok_or_else(|| AdminError::not_found("key", name.clone()))?;
            LimitLevel::Key(key.id)
        } else if let Some(ext) = &e.end_user {
            LimitLevel::EndUser(self.s.end_user(org, ext).await?.id)
        } else if let Some(slug) = &e.agent {
            LimitLevel::Agent(self.s.agent(org, slug).await?.id)
        } else {
            LimitLevel::Org
        };
        let server = match &e.server {
            Some(slug) => Some(self.server_id(org, slug).await?),
            None => None,
        };
        let rate = e.rate.map(|r| Rate {
            requests: r.requests,
            per: match r.per {
                WindowSpec::Minute => Window::Minute,
                WindowSpec::Hour => Window::Hour,
            },
            burst: r.burst.unwrap_or(r.requests),
        });
        let store = self.s.store();
        let existing = store
            .list_limits(org, Page::all())
            .await
            .map_err(|x| self.s.error(x))?
            .into_iter()
            .find(|l| l.level == level && l.server == server && l.tool == e.tool);
        match existing {
            None => {
                let new = NewLimit {
                    org,
                    level,
                    server,
                    tool: e.tool.clone(),
                    rate,
                    concurrency: e.concurrency,
                };
                store
                    .create_limit(self.actor(), new)
                    .await
                    .map_err(|x| self.s.error(x))?;
                self.wrote();
            }
            Some(l) => {
                let patch = LimitPatch {
                    rate: rate.filter(|r| Some(*r) != l.rate).map(Some),
                    concurrency: e
                        .concurrency
                        .filter(|c| Some(*c) != l.concurrency)
                        .map(Some),
                    ..LimitPatch::default()
                };
                if patch != LimitPatch::default() {
                    store
                        .update_limit(self.actor(), l.id, patch)
                        .await
                        .map_err(|x| self.s.error(x))?;
                    self.wrote();
                }
            }
        }
        Ok(())
    }

    fn actor(&self) -> &str {
        &self.admin.actor
    }

    fn wrote(&mut self) {
        self.report.changes += 1;
    }

    fn secret(&self, var: &str) -> Result<Secret, AdminError> {
        match (self.env)(var) {
            Some(v) if !v.is_empty() => Ok(Secret::new(v)),
            _ => Err(AdminError::invalid(
                "env",
                format!("environment variable {var} is not set"),
            )),
        }
    }

    async fn org_id(&self, slug: &str) -> Result<OrgId, AdminError> {
        Ok(self.s.org(&self.admin, slug).await?.id)
    }

    async fn scope(&self, org: OrgId, spec: &ScopeSpec) -> Result<Scope, AdminError> {
        self.s.scope_from_spec(org, spec).await
    }

    async fn org(&mut self, e: &OrgEntry) -> Result<(), AdminError> {
        let store = self.s.store();
        let existing = store
            .get_org_by_slug(&e.slug)
            .await
            .map_err(|x| self.s.error(x))?;
        match existing {
            None => {
                let new = NewOrg {
                    slug: e.slug.clone(),
                    name: e.name.clone().unwrap_or_default(),
                };
                store
                    .create_org(self.actor(), new)
                    .await
                    .map_err(|x| self.s.error(x))?;
                self.wrote();
            }
            Some(org) => {
                if let Some(name) = e.name.as_ref().filter(|n| **n != org.name) {
                    let patch = warden_store::OrgPatch {
                        name: Some(name.clone()),
                        ..Default::default()
                    };
                    store
                        .update_org(self.actor(), org.id, patch)
                        .await
                        .map_err(|x| self.s.error(x))?;
                    self.wrote();
                }
            }
        }
        Ok(())
    }

    async fn server(&mut self, e: &ServerEntry) -> Result<(), AdminError> {
        let owner = match &e.org {
            Some(org) => Some(self.org_id(org).await?),
            None => None,
        };
        let store = self.s.store();
        let existing = store
            .get_server_by_slug(owner, &e.slug)
            .await
            .map_err(|x| self.s.error(x))?;
        let transport = transport_of(&e.transport);
        // The file is the platform's: no egress restriction, but the stdio
        // allow-list holds for it too.
        if let Transport::Stdio { command, .. } = &transport {
            if !self.s.upstream_policy().stdio_command_allowed(command) {
                return Err(AdminError::StdioCommandNotAllowed {
                    command: command.clone(),
                });
            }
        }
        let secret_headers = match &e.secret_headers {
            Some(headers) => {
                let mut values = BTreeMap::new();
                for (name, source) in headers {
                    values.insert(name.clone(), self.secret(&source.env)?);
                }
                Some(values)
            }
            None => None,
        };
        match existing {
            None => {
                let mut new = NewServer::new(e.slug.clone(), owner, transport);
                new.secret_headers = secret_headers.unwrap_or_default();
                new.enabled = e.enabled.unwrap_or(true);
                if let Some(t) = e.timeout_ms {
                    new.timeout_ms = t;
                }
                store
                    .create_server(self.actor(), new)
                    .await
                    .map_err(|x| self.s.error(x))?;
                self.wrote();
            }
            Some(server) => {
                // Compared with the stored values decrypted: an unchanged
                // secret writes nothing and moves no revision.
                let secret_headers = match secret_headers {
                    Some(wanted) => {
                        let current = store
                            .load_upstream(server.id)
                            .await
                            .map_err(|x| self.s.error(x))?
                            .map(|u| u.secret_headers)
                            .unwrap_or_default();
                        (current != wanted).then_some(wanted)
                    }
                    None => None,
                };
                let patch = ServerPatch {
                    secret_headers,
                    transport: (server.transport != transport).then_some(transport),
                    enabled: e.enabled.filter(|v| *v != server.enabled),
                    timeout_ms: e.timeout_ms.filter(|v| *v != server.timeout_ms),
                    egress_restricted: server.egress_restricted.then_some(false),
                    ..Default::default()
                };
                if patch != ServerPatch::default() {
                    store
                        .update_server(self.actor(), server.id, patch)
                        .await
                        .map_err(|x| self.s.error(x))?;
                    self.wrote();
                }
            }
        }
        Ok(())
    }

    async fn server_id(&self, org: OrgId, slug: &str) -> Result<ServerId, AdminError> {
        self.s
            .server_id_for_org(org, slug)
            .await?
            .ok_or_else(|| AdminError::not_found("server", slug))
    }

    async fn grant(&mut self, e: &GrantEntry) -> Result<(), AdminError> {
        let org = self.org_id(&e.org).await?;
        let server = self.server_id(org, &e.server).await?;
        let store = self.s.store();
        let existing = store
            .get_org_grant(org, server)
            .await
            .map_err(|x| self.s.error(x))?;
        match existing {
            None => {
                let grant = OrgGrant {
                    org,
                    server,
                    enabled: e.enabled.unwrap_or(true),
                    filter: e.tools.clone().unwrap_or(ToolFilter::All),
                };
                store
                    .create_org_grant(self.actor(), grant)
                    .await
                    .map_err(|x| self.s.error(x))?;
                self.wrote();
            }
            Some(g) => {
                let patch = OrgGrantPatch {
                    enabled: e.enabled.filter(|v| *v != g.enabled),
                    filter: e.tools.clone().filter(|f| *f != g.filter),
                };
                if patch != OrgGrantPatch::default() {
                    store
                        .update_org_grant(self.actor(), org, server, patch)
                        .await
                        .map_err(|x| self.s.error(x))?;
                    self.wrote();
                }
            }
        }
        Ok(())
    }

    async fn toolset(&mut self, e: &ToolsetEntry) -> Result<(), AdminError> {
        let org = self.org_id(&e.org).await?;
        let servers: BTreeMap<ServerId, ToolFilter> =
            self.s.server_entries(org, &e.servers).await?;
        let store = self.s.store();
        let existing = store
            .get_toolset_by_slug(org, &e.slug)
            .await
            .map_err(|x| self.s.error(x))?;
        match existing {
            None => {
                let new = NewToolset {
                    org,
                    slug: e.slug.clone(),
                    name: String::new(),
                    servers,
                };
                store
                    .create_toolset(self.actor(), new)
                    .await
                    .map_err(|x| self.s.error(x))?;
                self.wrote();
            }
            Some(t) if t.servers != servers => {
                let patch = ToolsetPatch {
                    servers: Some(servers),
                    ..Default::default()
                };
                store
                    .update_toolset(self.actor(), t.id, patch)
                    .await
                    .map_err(|x| self.s.error(x))?;
                self.wrote();
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// Sets the org's default scope for new users if the entry gives one
    /// that differs.
    async fn new_user_scope(&mut self, e: &OrgEntry) -> Result<(), AdminError> {
        let Some(spec) = &e.new_user_scope else {
            return Ok(());
        };
        let org = self.org_id(&e.slug).await?;
        let wanted = self.scope(org, spec).await?;
        let current = self
            .s
            .store()
            .get_new_user_scope(org)
            .await
            .map_err(|x| self.s.error(x))?;
        if current.as_ref() != Some(&wanted) {
            self.s
                .store()
                .set_new_user_scope(self.actor(), org, wanted)
                .await
                .map_err(|x| self.s.error(x))?;
            self.wrote();
        }
        Ok(())
    }

    async fn set_scope_if_differs(
        &mut self,
        owner: warden_policy::ScopeOwner,
        current: &Scope,
        wanted: Option<Scope>,
    ) -> Result<(), AdminError> {
        if let Some(wanted) = wanted.filter(|w| w != current) {
            self.s
                .store()
                .set_scope(self.actor(), owner, wanted)
                .await
                .map_err(|x| self.s.error(x))?;
            self.wrote();
        }
        Ok(())
    }

    async fn team(&mut self, e: &TeamEntry) -> Result<(), AdminError> {
        let org = self.org_id(&e.org).await?;
        let scope = match &e.scope {
            Some(spec) => Some(self.scope(org, spec).await?),
            None => None,
        };
        let existing = self
            .s
            .store()
            .get_team_by_slug(org, &e.slug)
            .await
            .map_err(|x| self.s.error(x))?;
        match existing {
            None => {
                let new = NewTeam {
                    org,
                    slug: e.slug.clone(),
                    name: String::new(),
                    scope,
                };
                self.s
                    .store()
                    .create_team(self.actor(), new)
                    .await
                    .map_err(|x| self.s.error(x))?;
                self.wrote();
            }
            Some(t) => {
                self.set_scope_if_differs(warden_policy::ScopeOwner::Team(t.id), &t.scope, scope)
                    .await?
            }
        }
        Ok(())
    }

    async fn agent(&mut self, e: &AgentEntry) -> Result<(), AdminError> {
        let org = self.org_id(&e.org).await?;
        let scope = match &e.scope {
            Some(spec) => Some(self.scope(org, spec).await?),
            None => None,
        };
        let existing = self
            .s
            .store()
            .get_agent_by_slug(org, &e.slug)
            .await
            .map_err(|x| self.s.error(x))?;
        match existing {
            None => {
                let team = match &e.team {
                    Some(slug) => Some(self.s.team(org, slug).await?.id),
                    None => None,
                };
                let new = NewAgent {
                    org,
                    team,
                    slug: e.slug.clone(),
                    name: String::new(),
                    scope,
                };
                self.s
                    .store()
                    .create_agent(self.actor(), new)
                    .await
                    .map_err(|x| self.s.error(x))?;
                self.wrote();
            }
            Some(a) => {
                self.set_scope_if_differs(warden_policy::ScopeOwner::Agent(a.id), &a.scope, scope)
                    .await?
            }
        }
        Ok(())
    }

    async fn key(&mut self, e: &KeyEntry) -> Result<(), AdminError> {
        let org = self.org_id(&e.org).await?;
        let scope = match &e.scope {
            Some(spec) => Some(self.scope(org, spec).await?),
            None => None,
        };
        let expires_at_ms = e
            .expires_at
            .as_deref()
            .map(|t| parse_time("expires_at", t))
            .transpose()?;
        let existing = self
            .s
            .store()
            .get_key_by_name(org, &e.name)
            .await
            .map_err(|x| self.s.error(x))?;
        let key = match existing {
            Some(k) => {
                let patch = KeyPatch {
                    expires_at_ms: expires_at_ms
                        .filter(|t| Some(*t) != k.expires_at_ms)
                        .map(Some),
                    may_assert_end_user: e
                        .may_assert_end_user
                        .filter(|v| *v != k.may_assert_end_user),
                    may_assert_agent: e.may_assert_agent.filter(|v| *v != k.may_assert_agent),
                    ..Default::default()
                };
                if patch != KeyPatch::default() {
                    self.s
                        .store()
                        .update_key(self.actor(), k.id, patch)
                        .await
                        .map_err(|x| self.s.error(x))?;
                    self.wrote();
                }
                k
            }
            None => {
                let mut new = NewKey::new(org, e.name.clone());
                new.team = match &e.team {
                    Some(slug) => Some(self.s.team(org, slug).await?.id),
                    None => None,
                };
                new.agent = match &e.agent {
                    Some(slug) => Some(self.s.agent(org, slug).await?.id),
                    None => None,
                };
                new.expires_at_ms = expires_at_ms;
                new.may_assert_end_user = e.may_assert_end_user.unwrap_or(false);
                new.may_assert_agent = e.may_assert_agent.unwrap_or(false);
                let key = match &e.secret_env {
                    Some(var) => {
                        let token = self.secret(var)?;
                        self.s
                            .store()
                            .create_key_with_token(self.actor(), new, &token)
                            .await
                            .map_err(|x| self.s.error(x))?
                            .value
                    }
                    None => {
                        let created = self
                            .s
                            .store()
                            .create_key(self.actor(), new)
                            .await
                            .map_err(|x| self.s.error(x))?
                            .value;
                        self.report.generated_keys.push(GeneratedKey {
                            org: e.org.clone(),
                            name: e.name.clone(),
                            secret: created.token,
                        });
                        created.key
                    }
                };
                self.wrote();
                key
            }
        };
        self.set_scope_if_differs(warden_policy::ScopeOwner::Key(key.id), &key.scope, scope)
            .await
    }
}
