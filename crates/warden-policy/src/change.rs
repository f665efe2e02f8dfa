//! One policy write, as a value: what the store records in its change feed
//! and what every replica applies to its snapshot.

use serde::{Deserialize, Serialize};

use crate::model::*;

/// A change to the policy. Upserts carry the whole row (a scope change is
/// an upsert of its owner); deletes cascade exactly like the
/// `PolicyRows::delete_*` model and the store's foreign keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", content = "row", rename_all = "snake_case")]
pub enum PolicyChange {
    UpsertOrg(OrgRow),
    DeleteOrg(OrgId),
    UpsertServer(ServerRow),
    DeleteServer(ServerId),
    UpsertOrgGrant(OrgGrantRow),
    DeleteOrgGrant {
        org: OrgId,
        server: ServerId,
    },
    UpsertTeam(TeamRow),
    DeleteTeam(TeamId),
    UpsertKey(KeyRow),
    DeleteKey(KeyId),
    UpsertEndUser(EndUserRow),
    DeleteEndUser(EndUserId),
    UpsertAgent(AgentRow),
    DeleteAgent(AgentId),
    UpsertToolset(ToolsetRow),
    DeleteToolset(ToolsetId),
    /// Several changes in one revision (e.g. a bootstrap file), in order.
    Batch(Vec<PolicyChange>),
}

fn upsert<R>(rows: &mut Vec<R>, row: &R, same: impl Fn(&R) -> bool)
where
    R: Clone,
{
    match rows.iter_mut().find(|r| same(r)) {
        Some(slot) => *slot = row.clone(),
        None => rows.push(row.clone()),
    }
}

impl PolicyRows {
    /// The row-level model of [`crate::Snapshot::apply`]: applies `change`
    /// without validation. `Snapshot::build(rows.apply(c))` and
    /// `Snapshot::build(rows)?.apply(c)` must agree; tests check it.
    pub fn apply(&mut self, change: &PolicyChange) {
        use PolicyChange::*;
        match change {
            UpsertOrg(r) => upsert(&mut self.orgs, r, |o| o.id == r.id),
            DeleteOrg(id) => self.delete_org(*id),
            UpsertServer(r) => upsert(&mut self.servers, r, |o| o.id == r.id),
            DeleteServer(id) => self.delete_server(*id),
            UpsertOrgGrant(r) => upsert(&mut self.org_grants, r, |o| {
                o.org == r.org && o.server == r.server
            }),
            DeleteOrgGrant { org, server } => self.delete_org_grant(*org, *server),
            UpsertTeam(r) => upsert(&mut self.teams, r, |o| o.id == r.id),
            DeleteTeam(id) => self.delete_team(*id),
            UpsertKey(r) => upsert(&mut self.keys, r, |o| o.id == r.id),
            DeleteKey(id) => self.keys.retain(|k| k.id != *id),
            UpsertEndUser(r) => upsert(&mut self.end_users, r, |o| o.id == r.id),
            DeleteEndUser(id) => self.end_users.retain(|u| u.id != *id),
            UpsertAgent(r) => upsert(&mut self.agents, r, |o| o.id == r.id),
            DeleteAgent(id) => self.delete_agent(*id),
            UpsertToolset(r) => upsert(&mut self.toolsets, r, |o| o.id == r.id),
            DeleteToolset(id) => self.delete_toolset(*id),
            Batch(changes) => changes.iter().for_each(|c| self.apply(c)),
        }
    }

    /// Deletes an org and everything in it, including servers it owns.
    pub fn delete_org(&mut self, org: OrgId) {
        self.orgs.retain(|o| o.id != org);
        self.keys.retain(|r| r.org != org);
        self.end_users.retain(|r| r.org != org);
        self.agents.retain(|r| r.org != org);
        self.teams.retain(|r| r.org != org);
        self.toolsets.retain(|r| r.org != org);
        self.org_grants.retain(|r| r.org != org);
        let owned: Vec<ServerId> = self
            .servers
            .iter()
            .filter(|s| s.owner_org == Some(org))
            .map(|s| s.id)
            .collect();
        for s in owned {
            self.delete_server(s);
        }
    }
}
