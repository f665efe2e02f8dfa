//! Incremental `Snapshot::apply` against the row model: after any sequence
//! of random changes (valid or not), the incrementally maintained snapshot
//! decides exactly like one built from the changed rows, and it never accepts
//! a change that `Snapshot::build` would reject.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use proptest::prelude::*;
use warden_policy::*;

#[derive(Debug, Clone)]
struct ChangeSpec {
    kind: u8,
    a: u8,
    b: u8,
    flag: bool,
    filter: FilterSpec,
}

fn change_spec() -> impl Strategy<Value = ChangeSpec> {
    (
        0u8..21,
        any::<u8>(),
        any::<u8>(),
        any::<bool>(),
        filter_spec(),
    )
        .prop_map(|(kind, a, b, flag, filter)| ChangeSpec {
            kind,
            a,
            b,
            flag,
            filter,
        })
}

fn nth<T: Clone>(items: &[T], i: u8) -> Option<T> {
    (!items.is_empty()).then(|| items[i as usize % items.len()].clone())
}

/// A scope naming one server (granted to the org or not: invalid changes
/// are part of the test) or *inherit*.
fn some_scope(rows: &PolicyRows, c: &ChangeSpec) -> Scope {
    match nth(&rows.servers, c.b) {
        Some(server) if !c.flag => Scope::Grants(ScopeGrants {
            servers: BTreeMap::from([(server.id, c.filter.filter())]),
            toolsets: BTreeSet::new(),
        }),
        _ => Scope::Inherit,
    }
}

/// A limit on some holder of some org (possibly another org's holder or an
/// ungranted server: invalid changes are part of the test).
fn some_limit(rows: &PolicyRows, c: &ChangeSpec) -> Option<LimitRow> {
    let org = nth(&rows.orgs, c.b)?.id;
    let level = match c.a % 5 {
        0 => LimitLevel::Org,
        1 => LimitLevel::Team(nth(&rows.teams, c.b / 5)?.id),
        2 => LimitLevel::Key(nth(&rows.keys, c.b / 5)?.id),
        3 => LimitLevel::EndUser(nth(&rows.end_users, c.b / 5)?.id),
        _ => LimitLevel::Agent(nth(&rows.agents, c.b / 5)?.id),
    };
    let server = if c.flag {
        None
    } else {
        Some(nth(&rows.servers, c.a / 5)?.id)
    };
    Some(LimitRow {
        id: LimitId(800 + i64::from(c.a % 8)),
        org,
        level,
        server,
        tool: server.and(tool_names().nth(usize::from(c.b) % 4).map(str::to_owned)),
        rate: (c.a % 3 != 0).then_some(Rate {
            requests: 1 + u32::from(c.b),
            per: if c.b % 2 == 0 {
                Window::Minute
            } else {
                Window::Hour
            },
            burst: 1 + u32::from(c.a % 7),
        }),
        concurrency: (c.a % 3 != 1).then_some(1 + u32::from(c.b % 4)),
    })
}

/// Turns a spec into a concrete change against the current rows.
fn resolve(rows: &PolicyRows, c: &ChangeSpec) -> Option<PolicyChange> {
    use PolicyChange::*;
    Some(match c.kind {
        0 => {
            let s = nth(&rows.servers, c.a)?;
            UpsertServer(ServerRow {
                enabled: !s.enabled,
                ..s
            })
        }
        1 => UpsertServer(ServerRow {
            id: ServerId(700 + i64::from(c.a % 4)),
            slug: format!("new-{}", c.a % 4),
            owner_org: if c.flag {
                None
            } else {
                Some(nth(&rows.orgs, c.b)?.id)
            },
            enabled: true,
        }),
        2 => {
            let g = nth(&rows.org_grants, c.a)?;
            UpsertOrgGrant(OrgGrantRow {
                enabled: c.flag,
                filter: c.filter.filter(),
                ..g
            })
        }
        3 => UpsertOrgGrant(OrgGrantRow {
            org: nth(&rows.orgs, c.a)?.id,
            server: nth(&rows.servers, c.b)?.id,
            enabled: c.flag,
            filter: c.filter.filter(),
        }),
        4 => {
            let g = nth(&rows.org_grants, c.a)?;
            DeleteOrgGrant {
                org: g.org,
                server: g.server,
            }
        }
        5 => DeleteServer(nth(&rows.servers, c.a)?.id),
        6 => UpsertTeam(TeamRow {
            scope: some_scope(rows, c),
            ..nth(&rows.teams, c.a)?
        }),
        7 => {
            let k = nth(&rows.keys, c.a)?;
            if c.b % 3 == 0 {
                UpsertKey(KeyRow {
                    revoked: !k.revoked,
                    ..k
                })
            } else {
                UpsertKey(KeyRow {
                    scope: some_scope(rows, c),
                    ..k
                })
            }
        }
        8 => UpsertEndUser(EndUserRow {
            scope: some_scope(rows, c),
            ..nth(&rows.end_users, c.a)?
        }),
        9 => UpsertAgent(AgentRow {
            scope: some_scope(rows, c),
            ..nth(&rows.agents, c.a)?
        }),
        10 => UpsertToolset(ToolsetRow {
            servers: BTreeMap::from([(nth(&rows.servers, c.b)?.id, c.filter.filter())]),
            ..nth(&rows.toolsets, c.a)?
        }),
        11 => DeleteTeam(nth(&rows.teams, c.a)?.id),
        12 => DeleteAgent(nth(&rows.agents, c.a)?.id),
        13 => DeleteToolset(nth(&rows.toolsets, c.a)?.id),
        14 => DeleteKey(nth(&rows.keys, c.a)?.id),
        15 => DeleteEndUser(nth(&rows.end_users, c.a)?.id),
        16 => DeleteOrg(nth(&rows.orgs, c.a)?.id),
        18 | 19 => UpsertLimit(some_limit(rows, c)?),
        20 => DeleteLimit(nth(&rows.limits, c.a)?.id),
        _ => {
            let o = nth(&rows.orgs, c.a)?;
            UpsertOrg(OrgRow {
                suspended: !o.suspended,
                ..o
            })
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn apply_agrees_with_build(w in world(), changes in prop::collection::vec(change_spec(), 1..7)) {
        let mut rows = w.rows.clone();
        // Shares structure with every snapshot applied from it.
        let original = build(&rows);
        let mut snapshot = original.clone();
        let mut applied_any = false;
        for spec in &changes {
            let Some(change) = resolve(&rows, spec) else { continue };
            let revision = snapshot.revision() + 1;
            let mut next_rows = rows.clone();
            next_rows.apply(&change);
            next_rows.revision = revision;
            let built = Snapshot::build(next_rows.clone());
            let applied = snapshot.apply(revision, &change);
            match (applied, built) {
                (Ok(applied), Ok(built)) => {
                    let slugs = slugs(&next_rows);
                    let principals = principals(&next_rows);
                    prop_assert_eq!(
                        decisions(&applied, &principals, &slugs, &w.catalog),
                        decisions(&built, &principals, &slugs, &w.catalog),
                        "after {:?}", change
                    );
                    prop_assert_eq!(applied.revision(), revision);
                    prop_assert_eq!(applied.counts(), built.counts());
                    let mut want = next_rows.limits.clone();
                    want.sort_by_key(|l| l.id);
                    prop_assert_eq!(applied.to_rows().limits, want);
                    for p in &principals {
                        for server in &next_rows.servers {
                            for tool in tool_names() {
                                prop_assert_eq!(
                                    applied.limits_for(p, server.id, tool),
                                    built.limits_for(p, server.id, tool)
                                );
                            }
                        }
                    }
                    prop_assert!(Snapshot::build(applied.to_rows()).is_ok());
                    rows = next_rows;
                    snapshot = applied;
                    applied_any = true;
                }
                (Ok(_), Err(e)) => {
                    return Err(TestCaseError::fail(format!("apply accepted {change:?}, build rejects it: {e}")));
                }
                // Deleting what is not there, or moving a row to another org,
                // is refused incrementally though the row model shrugs.
                (Err(e), Ok(_)) => prop_assert!(
                    matches!(e, PolicyError::NotFound { .. } | PolicyError::Immutable { .. }),
                    "apply refused valid {:?}: {}", change, e
                ),
                (Err(_), Err(_)) => {}
            }
        }
        // The old snapshot is untouched by applying changes to it.
        if applied_any {
            let slugs = slugs(&w.rows);
            let principals = principals(&w.rows);
            prop_assert_eq!(
                decisions(&build(&w.rows), &principals, &slugs, &w.catalog),
                decisions(&original, &principals, &slugs, &w.catalog)
            );
        }
    }
}

#[test]
fn stale_or_repeated_revisions_are_refused() {
    let mut rows = PolicyRows {
        revision: 5,
        ..PolicyRows::default()
    };
    rows.orgs.push(OrgRow {
        id: OrgId(1),
        slug: "acme".into(),
        suspended: false,
    });
    let s = Snapshot::build(rows).unwrap();
    let change = PolicyChange::UpsertOrg(OrgRow {
        id: OrgId(1),
        slug: "acme".into(),
        suspended: true,
    });
    for stale in [4, 5] {
        let err = s.apply(stale, &change).unwrap_err();
        assert!(
            matches!(err, PolicyError::RevisionOrder { current: 5, .. }),
            "{err}"
        );
    }
    assert_eq!(s.apply(6, &change).unwrap().revision(), 6);
}
