//! The validated, indexed policy ([`Snapshot`]) and how it is reached:
//! built from rows, or by applying changes.

use std::sync::Arc;

use imbl::HashMap as PMap;
use serde::{Deserialize, Serialize};

use crate::change::PolicyChange;
use crate::error::PolicyError;
use crate::model::*;

mod lookup;
mod put;
mod remove;

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
}
