use std::collections::{HashMap, HashSet};

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::filter::ToolFilter;
use crate::model::*;
use crate::snapshot::{Principal, Snapshot};

/// Why a request was refused: the first failing check. The codes are stable
/// API (logs, audit, JSON-RPC error data, metrics labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    KeyRevoked,
    KeyExpired,
    OrgSuspended,
    ServerUnknown,
    ServerDisabled,
    ServerNotGrantedToOrg,
    ServerDisabledByOrg,
    ToolBlockedByOrg,
    NotGrantedByTeam,
    NotGrantedByKey,
    NotGrantedByEndUser,
    NotGrantedByAgent,
    ToolUnknown,
    /// The end user the principal acts for is disabled.
    EndUserDisabled,
}

impl Reason {
    pub const ALL: [Reason; 14] = [
        Reason::KeyRevoked,
        Reason::KeyExpired,
        Reason::OrgSuspended,
        Reason::ServerUnknown,
        Reason::ServerDisabled,
        Reason::ServerNotGrantedToOrg,
        Reason::ServerDisabledByOrg,
        Reason::ToolBlockedByOrg,
        Reason::NotGrantedByTeam,
        Reason::NotGrantedByKey,
        Reason::NotGrantedByEndUser,
        Reason::NotGrantedByAgent,
        Reason::ToolUnknown,
        Reason::EndUserDisabled,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Reason::KeyRevoked => "key_revoked",
            Reason::KeyExpired => "key_expired",
            Reason::OrgSuspended => "org_suspended",
            Reason::ServerUnknown => "server_unknown",
            Reason::ServerDisabled => "server_disabled",
            Reason::ServerNotGrantedToOrg => "server_not_granted_to_org",
            Reason::ServerDisabledByOrg => "server_disabled_by_org",
            Reason::ToolBlockedByOrg => "tool_blocked_by_org",
            Reason::NotGrantedByTeam => "not_granted_by_team",
            Reason::NotGrantedByKey => "not_granted_by_key",
            Reason::NotGrantedByEndUser => "not_granted_by_end_user",
            Reason::NotGrantedByAgent => "not_granted_by_agent",
            Reason::ToolUnknown => "tool_unknown",
            Reason::EndUserDisabled => "end_user_disabled",
        }
    }

    /// True for reasons that concern the caller's credentials rather than
    /// one server or tool: the whole session is affected.
    pub fn is_principal_wide(self) -> bool {
        matches!(
            self,
            Reason::KeyRevoked
                | Reason::KeyExpired
                | Reason::EndUserDisabled
                | Reason::OrgSuspended
        )
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// The scope levels below the org, in the order they are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Team,
    Key,
    EndUser,
    Agent,
}

impl Level {
    pub const ALL: [Level; 4] = [Level::Team, Level::Key, Level::EndUser, Level::Agent];

    fn denial(self) -> Reason {
        match self {
            Level::Team => Reason::NotGrantedByTeam,
            Level::Key => Reason::NotGrantedByKey,
            Level::EndUser => Reason::NotGrantedByEndUser,
            Level::Agent => Reason::NotGrantedByAgent,
        }
    }

    fn check(self) -> Check {
        match self {
            Level::Team => Check::Team,
            Level::Key => Check::Key,
            Level::EndUser => Check::EndUser,
            Level::Agent => Check::Agent,
        }
    }
}

/// One step of the decision, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    KeyActive,
    OrgActive,
    ServerVisible,
    ServerEnabled,
    OrgGrant,
    OrgGrantEnabled,
    OrgFilter,
    Team,
    Key,
    EndUser,
    Agent,
    ToolInCatalog,
}

impl Check {
    pub const ALL: [Check; 12] = [
        Check::KeyActive,
        Check::OrgActive,
        Check::ServerVisible,
        Check::ServerEnabled,
        Check::OrgGrant,
        Check::OrgGrantEnabled,
        Check::OrgFilter,
        Check::Team,
        Check::Key,
        Check::EndUser,
        Check::Agent,
        Check::ToolInCatalog,
    ];
}

/// What one check said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckOutcome {
    Pass,
    Fail(Reason),
    /// The level has scope *inherit*: it restricts nothing.
    Inherit,
    /// The level is not part of this principal (no team, no end user, ...).
    Absent,
    /// Could not be evaluated because an earlier check it depends on failed
    /// (e.g. no filter to look at for an unknown server).
    NotEvaluated,
}

impl CheckOutcome {
    fn passes(self) -> bool {
        matches!(
            self,
            CheckOutcome::Pass | CheckOutcome::Inherit | CheckOutcome::Absent
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceEntry {
    pub check: Check,
    pub outcome: CheckOutcome,
}

impl Serialize for TraceEntry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (outcome, reason) = match self.outcome {
            CheckOutcome::Pass => ("pass", None),
            CheckOutcome::Fail(r) => ("fail", Some(r)),
            CheckOutcome::Inherit => ("inherit", None),
            CheckOutcome::Absent => ("absent", None),
            CheckOutcome::NotEvaluated => ("not_evaluated", None),
        };
        let mut st = s.serialize_struct("TraceEntry", 3)?;
        st.serialize_field("check", &self.check)?;
        st.serialize_field("outcome", outcome)?;
        st.serialize_field("reason", &reason)?;
        st.end()
    }
}

/// Every check of one decision with what it said. Fixed size: building it
/// allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Trace {
    entries: [TraceEntry; 12],
}

impl Trace {
    fn new() -> Self {
        let mut entries = [TraceEntry {
            check: Check::KeyActive,
            outcome: CheckOutcome::NotEvaluated,
        }; 12];
        for (entry, check) in entries.iter_mut().zip(Check::ALL) {
            entry.check = check;
        }
        Trace { entries }
    }

    fn set(&mut self, check: Check, outcome: CheckOutcome) {
        self.entries[check as usize].outcome = outcome;
    }

    pub fn entries(&self) -> &[TraceEntry] {
        &self.entries
    }

    pub fn outcome(&self, check: Check) -> CheckOutcome {
        self.entries[check as usize].outcome
    }

    /// The first failing check's reason, in check order.
    pub fn first_failure(&self) -> Option<Reason> {
        self.entries.iter().find_map(|e| match e.outcome {
            CheckOutcome::Fail(r) => Some(r),
            _ => None,
        })
    }
}

impl Serialize for Trace {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.entries.iter())
    }
}

/// The answer to one (principal, server, tool) question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    /// The first failing check; `None` iff allowed.
    pub reason: Option<Reason>,
    /// The policy revision the decision was made at.
    pub revision: u64,
    /// The server the slug resolved to, if it is visible to the principal.
    pub server: Option<ServerId>,
    pub trace: Trace,
}

/// The tools each server currently offers, as the gateway last saw them.
pub trait Catalog {
    fn contains(&self, server: ServerId, tool: &str) -> bool;

    /// The tool names the server offers, if its catalog is known: for admin
    /// pickers. Decisions use only [`Catalog::contains`].
    fn tool_names(&self, _server: ServerId) -> Option<Vec<String>> {
        None
    }
}

impl<S: std::hash::BuildHasher> Catalog for HashMap<ServerId, HashSet<String>, S> {
    fn contains(&self, server: ServerId, tool: &str) -> bool {
        self.get(&server).is_some_and(|tools| tools.contains(tool))
    }

    fn tool_names(&self, server: ServerId) -> Option<Vec<String>> {
        self.get(&server)
            .map(|tools| tools.iter().cloned().collect())
    }
}

/// A catalog that knows no tools. Useful for server-level questions
/// (resources, prompts) where no tool is involved.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCatalog;

impl Catalog for NoCatalog {
    fn contains(&self, _: ServerId, _: &str) -> bool {
        false
    }
}

/// What one level says about a server.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LevelSays {
    Absent,
    Inherit,
    Filter(ToolFilter),
}

/// One server as a principal sees it: everything the checks need, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAccess {
    pub server: ServerId,
    pub slug: String,
    server_enabled: bool,
    grant_enabled: bool,
    org_filter: ToolFilter,
    levels: [LevelSays; 4],
    /// The intersection of the org filter and every level, if the server is
    /// enabled at gateway and org level; else `None`.
    effective: Option<ToolFilter>,
}

impl ServerAccess {
    /// The tools this principal may use on this server, before the catalog
    /// check: `None` if the server is switched off for it.
    pub fn effective(&self) -> Option<&ToolFilter> {
        self.effective.as_ref()
    }
}

/// Check 1 of the decision, in its order: key revoked, key expired, end
/// user disabled, org suspended.
fn principal_denial(
    revoked: bool,
    expires_at_ms: Option<i64>,
    end_user_disabled: bool,
    org_suspended: bool,
    now_ms: i64,
) -> Option<Reason> {
    if revoked {
        Some(Reason::KeyRevoked)
    } else if expires_at_ms.is_some_and(|t| now_ms >= t) {
        Some(Reason::KeyExpired)
    } else if end_user_disabled {
        Some(Reason::EndUserDisabled)
    } else if org_suspended {
        Some(Reason::OrgSuspended)
    } else {
        None
    }
}

/// The compiled effective grants of one principal at one revision. Cheap to
/// reuse for many decisions; rebuild it for a new snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    revision: u64,
    principal: Principal,
    org: Option<OrgId>,
    key_revoked: bool,
    key_expires_at_ms: Option<i64>,
    end_user_disabled: bool,
    org_suspended: bool,
    /// Servers granted to the org, by slug.
    servers: HashMap<String, ServerAccess>,
}

impl Access {
    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn principal(&self) -> Principal {
        self.principal
    }

    pub fn org(&self) -> Option<OrgId> {
        self.org
    }

    /// The principal-wide checks (key and org): the reason they fail, if any.
    pub fn principal_denial(&self, now_ms: i64) -> Option<Reason> {
        principal_denial(
            self.key_revoked,
            self.key_expires_at_ms,
            self.end_user_disabled,
            self.org_suspended,
            now_ms,
        )
    }

    /// The servers this principal may use now, each with the filter of tools
    /// it may use there (before the catalog check). This is what listings are
    /// made from; [`Snapshot::decide`] gives the same answer per tool.
    pub fn usable_servers(
        &self,
        now_ms: i64,
    ) -> impl Iterator<Item = (&ServerAccess, &ToolFilter)> {
        let active = self.principal_denial(now_ms).is_none();
        self.servers
            .values()
            .filter(move |_| active)
            .filter_map(|s| s.effective.as_ref().map(|f| (s, f)))
            .filter(|(_, f)| !f.is_empty())
    }

    /// One usable server by slug, with its effective filter.
    pub fn usable_server(&self, slug: &str, now_ms: i64) -> Option<(&ServerAccess, &ToolFilter)> {
        if self.principal_denial(now_ms).is_some() {
            return None;
        }
        let s = self.servers.get(slug)?;
        let f = s.effective.as_ref()?;
        (!f.is_empty()).then_some((s, f))
    }

    /// Is `tool` on `slug` within the effective grants (checks 1 to 4)?
    pub fn admits(&self, slug: &str, tool: &str, now_ms: i64) -> bool {
        self.usable_server(slug, now_ms)
            .is_some_and(|(_, f)| f.admits(tool))
    }
}

impl Snapshot {
    /// Compiles what `principal` may reach at this revision. A key, end user
    /// or agent missing from this snapshot (deleted since the principal was
    /// formed) fails closed: a missing key is revoked, a missing end user or
    /// agent admits nothing.
    pub fn access(&self, principal: &Principal) -> Access {
        let Some(key) = self.keys.get(&principal.key) else {
            return Access {
                revision: self.revision,
                principal: *principal,
                org: None,
                key_revoked: true,
                key_expires_at_ms: None,
                end_user_disabled: false,
                org_suspended: false,
                servers: HashMap::new(),
            };
        };
        let org = key.org;
        let empty = Scope::empty();
        let team_scope = key
            .team
            .map(|t| self.teams.get(&t).map_or(&empty, |t| &t.scope));
        let end_user_scope = principal
            .end_user
            .map(|u| self.end_users.get(&u).map_or(&empty, |u| &u.scope));
        let agent_scope = principal
            .agent
            .map(|a| self.agents.get(&a).map_or(&empty, |a| &a.scope));
        let scopes: [Option<&Scope>; 4] =
            [team_scope, Some(&key.scope), end_user_scope, agent_scope];

        let grants = self.org_grants.get(&org);
        let mut servers = HashMap::with_capacity(grants.map_or(0, |g| g.len()));
        for grant in grants.into_iter().flat_map(|g| g.values()) {
            let Some(server) = self.servers.get(&grant.server) else {
                continue;
            };
            let levels = scopes.map(|scope| match scope {
                None => LevelSays::Absent,
                Some(scope) => match self.level_filter(scope, server.id) {
                    None => LevelSays::Inherit,
                    Some(f) => LevelSays::Filter(f),
                },
            });
            let effective = (server.enabled && grant.enabled).then(|| {
                levels
                    .iter()
                    .fold(grant.filter.clone(), |acc, level| match level {
                        LevelSays::Filter(f) => acc.intersect(f),
                        _ => acc,
                    })
            });
            servers.insert(
                server.slug.clone(),
                ServerAccess {
                    server: server.id,
                    slug: server.slug.clone(),
                    server_enabled: server.enabled,
                    grant_enabled: grant.enabled,
                    org_filter: grant.filter.clone(),
                    levels,
                    effective,
                },
            );
        }
        Access {
            revision: self.revision,
            principal: *principal,
            org: Some(org),
            key_revoked: key.revoked,
            key_expires_at_ms: key.expires_at_ms,
            end_user_disabled: self.end_user_disabled(principal),
            org_suspended: self.orgs.get(&org).is_none_or(|o| o.suspended),
            servers,
        }
    }

    /// The decision: may this principal call `tool` on the server `slug`
    /// names? Every check runs and is traced; the first failure is the reason.
    /// `access` must come from this snapshot (same revision).
    pub fn decide(
        &self,
        access: &Access,
        server_slug: &str,
        tool: &str,
        catalog: &(impl Catalog + ?Sized),
        now_ms: i64,
    ) -> Decision {
        debug_assert_eq!(
            access.revision, self.revision,
            "access from another snapshot"
        );
        let mut trace = Trace::new();

        trace.set(
            Check::KeyActive,
            if access.key_revoked {
                CheckOutcome::Fail(Reason::KeyRevoked)
            } else if access.key_expires_at_ms.is_some_and(|t| now_ms >= t) {
                CheckOutcome::Fail(Reason::KeyExpired)
            } else if access.end_user_disabled {
                CheckOutcome::Fail(Reason::EndUserDisabled)
            } else {
                CheckOutcome::Pass
            },
        );
        trace.set(
            Check::OrgActive,
            if access.org_suspended {
                CheckOutcome::Fail(Reason::OrgSuspended)
            } else {
                CheckOutcome::Pass
            },
        );

        let mut server_id = None;
        if let Some(sa) = access.servers.get(server_slug) {
            server_id = Some(sa.server);
            trace.set(Check::ServerVisible, CheckOutcome::Pass);
            trace.set(
                Check::ServerEnabled,
                if sa.server_enabled {
                    CheckOutcome::Pass
                } else {
                    CheckOutcome::Fail(Reason::ServerDisabled)
                },
            );
            trace.set(Check::OrgGrant, CheckOutcome::Pass);
            trace.set(
                Check::OrgGrantEnabled,
                if sa.grant_enabled {
                    CheckOutcome::Pass
                } else {
                    CheckOutcome::Fail(Reason::ServerDisabledByOrg)
                },
            );
            trace.set(
                Check::OrgFilter,
                if sa.org_filter.admits(tool) {
                    CheckOutcome::Pass
                } else {
                    CheckOutcome::Fail(Reason::ToolBlockedByOrg)
                },
            );
            for (level, says) in Level::ALL.into_iter().zip(&sa.levels) {
                let outcome = match says {
                    LevelSays::Absent => CheckOutcome::Absent,
                    LevelSays::Inherit => CheckOutcome::Inherit,
                    LevelSays::Filter(f) if f.admits(tool) => CheckOutcome::Pass,
                    LevelSays::Filter(_) => CheckOutcome::Fail(level.denial()),
                };
                trace.set(level.check(), outcome);
            }
            trace.set(
                Check::ToolInCatalog,
                if catalog.contains(sa.server, tool) {
                    CheckOutcome::Pass
                } else {
                    CheckOutcome::Fail(Reason::ToolUnknown)
                },
            );
        } else {
            // Not granted to the org: say why without leaking other orgs.
            match access
                .org
                .and_then(|org| self.server_for_org(org, server_slug))
            {
                None => trace.set(
                    Check::ServerVisible,
                    CheckOutcome::Fail(Reason::ServerUnknown),
                ),
                Some(server) => {
                    server_id = Some(server.id);
                    trace.set(Check::ServerVisible, CheckOutcome::Pass);
                    trace.set(
                        Check::ServerEnabled,
                        if server.enabled {
                            CheckOutcome::Pass
                        } else {
                            CheckOutcome::Fail(Reason::ServerDisabled)
                        },
                    );
                    trace.set(
                        Check::OrgGrant,
                        CheckOutcome::Fail(Reason::ServerNotGrantedToOrg),
                    );
                }
            }
        }

        let reason = trace.first_failure();
        let allowed = reason.is_none() && trace.entries().iter().all(|e| e.outcome.passes());
        Decision {
            allowed,
            reason,
            revision: self.revision,
            server: server_id,
            trace,
        }
    }

    /// Check 1 alone (key active, org active) without compiling an
    /// [`Access`]: what a periodic expiry sweep needs.
    pub fn principal_denial(&self, principal: &Principal, now_ms: i64) -> Option<Reason> {
        let Some(key) = self.keys.get(&principal.key) else {
            return Some(Reason::KeyRevoked);
        };
        let org_suspended = self.orgs.get(&key.org).is_none_or(|o| o.suspended);
        principal_denial(
            key.revoked,
            key.expires_at_ms,
            self.end_user_disabled(principal),
            org_suspended,
            now_ms,
        )
    }

    /// Does the principal act for a disabled end user?
    fn end_user_disabled(&self, principal: &Principal) -> bool {
        principal
            .end_user
            .and_then(|u| self.end_users.get(&u))
            .is_some_and(|u| u.disabled)
    }

    /// [`Snapshot::decide`] for a principal without a warm [`Access`].
    pub fn decide_for(
        &self,
        principal: &Principal,
        server_slug: &str,
        tool: &str,
        catalog: &(impl Catalog + ?Sized),
        now_ms: i64,
    ) -> Decision {
        self.decide(&self.access(principal), server_slug, tool, catalog, now_ms)
    }

    /// The server-level part of the decision, for resources and prompts:
    /// checks 1 to 3 without the org's tool filter, and each level must
    /// grant the server at all (some tool of it, or *inherit*).
    pub fn decide_server(&self, access: &Access, server_slug: &str, now_ms: i64) -> Decision {
        let mut d = self.decide(access, server_slug, "", &NoCatalog, now_ms);
        d.trace.set(Check::OrgFilter, CheckOutcome::NotEvaluated);
        d.trace
            .set(Check::ToolInCatalog, CheckOutcome::NotEvaluated);
        if let Some(sa) = access.servers.get(server_slug) {
            for (level, says) in Level::ALL.into_iter().zip(&sa.levels) {
                let outcome = match says {
                    LevelSays::Absent => CheckOutcome::Absent,
                    LevelSays::Inherit => CheckOutcome::Inherit,
                    LevelSays::Filter(f) if !f.is_empty() => CheckOutcome::Pass,
                    LevelSays::Filter(_) => CheckOutcome::Fail(level.denial()),
                };
                d.trace.set(level.check(), outcome);
            }
        }
        d.reason = d.trace.first_failure();
        d.allowed =
            d.reason.is_none() && d.trace.outcome(Check::ServerVisible) == CheckOutcome::Pass;
        d
    }
}
