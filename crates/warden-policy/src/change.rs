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
    UpsertLimit(LimitRow),
    DeleteLimit(LimitId),
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
            DeleteKey(id) => self.delete_key(*id),
            UpsertEndUser(r) => upsert(&mut self.end_users, r, |o| o.id == r.id),
            DeleteEndUser(id) => self.delete_end_user(*id),
            UpsertAgent(r) => upsert(&mut self.agents, r, |o| o.id == r.id),
            DeleteAgent(id) => self.delete_agent(*id),
            UpsertToolset(r) => upsert(&mut self.toolsets, r, |o| o.id == r.id),
            DeleteToolset(id) => self.delete_toolset(*id),
            UpsertLimit(r) => upsert(&mut self.limits, r, |o| o.id == r.id),
            DeleteLimit(id) => self.limits.retain(|l| l.id != *id),
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
        self.limits.retain(|r| r.org != org);
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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::{PolicyError, Snapshot, ToolFilter};

    fn scoped(server: i64, toolset: Option<i64>) -> Scope {
        Scope::Grants(ScopeGrants {
            servers: BTreeMap::from([(ServerId(server), ToolFilter::All)]),
            toolsets: toolset.map(ToolsetId).into_iter().collect::<BTreeSet<_>>(),
        })
    }

    fn rows() -> PolicyRows {
        let org = OrgId(1);
        PolicyRows {
            revision: 1,
            orgs: vec![OrgRow {
                id: org,
                slug: "acme".into(),
                suspended: false,
            }],
            servers: vec![
                ServerRow {
                    id: ServerId(1),
                    slug: "github".into(),
                    owner_org: None,
                    enabled: true,
                },
                ServerRow {
                    id: ServerId(2),
                    slug: "wiki".into(),
                    owner_org: Some(org),
                    enabled: true,
                },
            ],
            org_grants: vec![
                OrgGrantRow {
                    org,
                    server: ServerId(1),
                    enabled: true,
                    filter: ToolFilter::All,
                },
                OrgGrantRow {
                    org,
                    server: ServerId(2),
                    enabled: true,
                    filter: ToolFilter::All,
                },
            ],
            teams: vec![TeamRow {
                id: TeamId(1),
                org,
                slug: "eng".into(),
                scope: scoped(1, Some(1)),
            }],
            keys: vec![KeyRow {
                id: KeyId(1),
                org,
                token_digest: "d1".into(),
                team: Some(TeamId(1)),
                agent: Some(AgentId(1)),
                scope: scoped(2, None),
                revoked: false,
                expires_at_ms: None,
                may_assert_end_user: false,
                may_assert_agent: false,
            }],
            end_users: vec![EndUserRow {
                id: EndUserId(1),
                org,
                external_id: "ann".into(),
                scope: scoped(1, None),
                disabled: false,
            }],
            agents: vec![AgentRow {
                id: AgentId(1),
                org,
                team: Some(TeamId(1)),
                slug: "bot".into(),
                scope: scoped(1, Some(1)),
            }],
            toolsets: vec![ToolsetRow {
                id: ToolsetId(1),
                org,
                slug: "read".into(),
                servers: BTreeMap::from([(ServerId(1), ToolFilter::only(["get"]))]),
            }],
            limits: vec![
                limit(1, LimitLevel::Org, Some(1), None),
                limit(2, LimitLevel::Team(TeamId(1)), None, None),
                limit(3, LimitLevel::Key(KeyId(1)), Some(2), Some("get")),
                limit(4, LimitLevel::EndUser(EndUserId(1)), Some(1), None),
                limit(5, LimitLevel::Agent(AgentId(1)), None, None),
            ],
        }
    }

    fn limit(id: i64, level: LimitLevel, server: Option<i64>, tool: Option<&str>) -> LimitRow {
        LimitRow {
            id: LimitId(id),
            org: OrgId(1),
            level,
            server: server.map(ServerId),
            tool: tool.map(str::to_owned),
            rate: Some(Rate {
                requests: 10 * id as u32,
                per: Window::Minute,
                burst: 5,
            }),
            concurrency: (id % 2 == 0).then_some(id as u32),
        }
    }

    fn both_ways(change: PolicyChange) {
        let base = rows();
        let snapshot = Snapshot::build(base.clone()).unwrap();
        let applied = snapshot.apply(2, &change).unwrap().to_rows();
        let mut model = base;
        model.apply(&change);
        model.revision = 2;
        let rebuilt = Snapshot::build(model).unwrap().to_rows();
        assert_eq!(applied, rebuilt, "{change:?}");
        // The original snapshot is untouched.
        assert_eq!(
            snapshot.to_rows(),
            Snapshot::build(rows()).unwrap().to_rows()
        );
    }

    #[test]
    fn apply_agrees_with_the_row_model() {
        let org = OrgId(1);
        for change in [
            PolicyChange::DeleteOrgGrant {
                org,
                server: ServerId(1),
            },
            PolicyChange::DeleteServer(ServerId(2)),
            PolicyChange::DeleteToolset(ToolsetId(1)),
            PolicyChange::DeleteTeam(TeamId(1)),
            PolicyChange::DeleteAgent(AgentId(1)),
            PolicyChange::DeleteKey(KeyId(1)),
            PolicyChange::DeleteEndUser(EndUserId(1)),
            PolicyChange::DeleteOrg(org),
            PolicyChange::UpsertOrgGrant(OrgGrantRow {
                org,
                server: ServerId(1),
                enabled: false,
                filter: ToolFilter::All,
            }),
            PolicyChange::UpsertTeam(TeamRow {
                id: TeamId(2),
                org,
                slug: "ops".into(),
                scope: Scope::Inherit,
            }),
            PolicyChange::UpsertLimit(limit(6, LimitLevel::Org, Some(2), Some("put"))),
            PolicyChange::UpsertLimit(limit(1, LimitLevel::Key(KeyId(1)), None, None)),
            PolicyChange::DeleteLimit(LimitId(3)),
            PolicyChange::Batch(vec![
                PolicyChange::UpsertServer(ServerRow {
                    id: ServerId(3),
                    slug: "jira".into(),
                    owner_org: None,
                    enabled: true,
                }),
                PolicyChange::UpsertOrgGrant(OrgGrantRow {
                    org,
                    server: ServerId(3),
                    enabled: true,
                    filter: ToolFilter::All,
                }),
            ]),
        ] {
            both_ways(change);
        }
    }

    #[test]
    fn apply_validates_like_build() {
        let s = Snapshot::build(rows()).unwrap();
        let dangling = PolicyChange::UpsertTeam(TeamRow {
            id: TeamId(2),
            org: OrgId(1),
            slug: "ops".into(),
            scope: scoped(99, None),
        });
        assert!(matches!(
            s.apply(2, &dangling),
            Err(PolicyError::Dangling { .. })
        ));
        let dup = PolicyChange::UpsertTeam(TeamRow {
            id: TeamId(2),
            org: OrgId(1),
            slug: "eng".into(),
            scope: Scope::Inherit,
        });
        assert!(matches!(
            s.apply(2, &dup),
            Err(PolicyError::DuplicateName { .. })
        ));
        let moved = PolicyChange::UpsertServer(ServerRow {
            id: ServerId(2),
            slug: "wiki".into(),
            owner_org: None,
            enabled: true,
        });
        assert!(matches!(
            s.apply(2, &moved),
            Err(PolicyError::Immutable { .. })
        ));
        assert!(matches!(
            s.apply(1, &PolicyChange::Batch(vec![])),
            Err(PolicyError::RevisionOrder { .. })
        ));
        let bad_limits = [
            (
                limit(9, LimitLevel::Team(TeamId(7)), None, None),
                "dangling_reference",
            ),
            (
                limit(9, LimitLevel::Org, Some(99), None),
                "dangling_reference",
            ),
            (limit(9, LimitLevel::Org, None, Some("get")), "bad_limit"),
            (
                LimitRow {
                    rate: None,
                    concurrency: None,
                    ..limit(9, LimitLevel::Org, None, None)
                },
                "bad_limit",
            ),
            (
                LimitRow {
                    concurrency: Some(0),
                    ..limit(9, LimitLevel::Org, None, None)
                },
                "bad_limit",
            ),
            (
                LimitRow {
                    org: OrgId(2),
                    ..limit(1, LimitLevel::Org, None, None)
                },
                "immutable",
            ),
        ];
        for (row, code) in bad_limits {
            let e = s
                .apply(2, &PolicyChange::UpsertLimit(row.clone()))
                .unwrap_err();
            assert_eq!(e.code(), code, "{row:?}: {e}");
        }
        assert!(matches!(
            s.apply(2, &PolicyChange::DeleteLimit(LimitId(99))),
            Err(PolicyError::NotFound { .. })
        ));
        // A failed batch leaves nothing half-applied: the caller keeps `s`.
        let half = PolicyChange::Batch(vec![PolicyChange::DeleteKey(KeyId(1)), dangling]);
        assert!(s.apply(2, &half).is_err());
        assert!(s.key(KeyId(1)).is_some());
    }
}
