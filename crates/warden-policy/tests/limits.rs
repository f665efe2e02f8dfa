//! `Snapshot::limits_for` against an oracle over the rows: exactly the
//! limits of the caller's org and levels that cover the (server, tool)
//! apply, and the effective rate and concurrency are the tightest of them.

mod common;

use std::cmp::Ordering;
use std::collections::BTreeSet;

use common::*;
use proptest::prelude::*;
use warden_policy::*;

#[derive(Debug, Clone)]
struct LimitSpec {
    org: u8,
    level: u8,
    holder: u8,
    server: Option<u8>,
    tool: Option<u8>,
    rate: Option<(u32, bool, u32)>,
    concurrency: Option<u32>,
}

fn limit_spec() -> impl Strategy<Value = LimitSpec> {
    (
        any::<u8>(),
        0u8..5,
        any::<u8>(),
        prop::option::of(any::<u8>()),
        prop::option::of(0u8..4),
        prop::option::of((1u32..200, any::<bool>(), 1u32..20)),
        prop::option::of(1u32..8),
    )
        .prop_map(
            |(org, level, holder, server, tool, rate, concurrency)| LimitSpec {
                org,
                level,
                holder,
                server,
                tool,
                rate,
                concurrency,
            },
        )
}

fn nth<T: Clone>(items: &[T], i: u8) -> Option<T> {
    (!items.is_empty()).then(|| items[i as usize % items.len()].clone())
}

/// The rows' snapshot with every spec that makes a valid limit added.
fn with_limits(rows: &PolicyRows, specs: &[LimitSpec]) -> (PolicyRows, Snapshot) {
    let mut rows = rows.clone();
    let mut snapshot = build(&rows);
    for (i, spec) in specs.iter().enumerate() {
        let Some(org) = nth(&rows.orgs, spec.org) else {
            continue;
        };
        // Holders of any org: another org's holder must be refused.
        let level = match spec.level {
            0 => Some(LimitLevel::Org),
            1 => nth(&rows.teams, spec.holder).map(|r| LimitLevel::Team(r.id)),
            2 => nth(&rows.keys, spec.holder).map(|r| LimitLevel::Key(r.id)),
            3 => nth(&rows.end_users, spec.holder).map(|r| LimitLevel::EndUser(r.id)),
            _ => nth(&rows.agents, spec.holder).map(|r| LimitLevel::Agent(r.id)),
        };
        let Some(level) = level else { continue };
        let server = spec
            .server
            .and_then(|s| nth(&rows.servers, s))
            .map(|s| s.id);
        let row = LimitRow {
            id: LimitId(1 + i as i64),
            org: org.id,
            level,
            server,
            tool: server
                .and(spec.tool)
                .and_then(|t| tool_names().nth(usize::from(t)))
                .map(str::to_owned),
            rate: spec.rate.map(|(requests, hourly, burst)| Rate {
                requests,
                per: if hourly { Window::Hour } else { Window::Minute },
                burst,
            }),
            concurrency: spec.concurrency,
        };
        let change = PolicyChange::UpsertLimit(row);
        if let Ok(next) = snapshot.apply(snapshot.revision() + 1, &change) {
            rows.apply(&change);
            rows.revision = next.revision();
            snapshot = next;
        }
    }
    (rows, snapshot)
}

fn holds_for(l: &LimitRow, key: &KeyRow, p: &Principal) -> bool {
    l.org == key.org
        && match l.level {
            LimitLevel::Org => true,
            LimitLevel::Team(t) => key.team == Some(t),
            LimitLevel::Key(k) => k == key.id,
            LimitLevel::EndUser(u) => p.end_user == Some(u),
            LimitLevel::Agent(a) => p.agent == Some(a),
        }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn limits_for_agrees_with_the_oracle(
        w in world(),
        specs in prop::collection::vec(limit_spec(), 0..12),
    ) {
        let (rows, snapshot) = with_limits(&w.rows, &specs);
        prop_assert!(Snapshot::build(rows.clone()).is_ok());
        for l in &rows.limits {
            // Validation kept every holder in its own org.
            let holder_org = match l.level {
                LimitLevel::Org => Some(l.org),
                LimitLevel::Team(t) => rows.teams.iter().find(|r| r.id == t).map(|r| r.org),
                LimitLevel::Key(k) => rows.keys.iter().find(|r| r.id == k).map(|r| r.org),
                LimitLevel::EndUser(u) => rows.end_users.iter().find(|r| r.id == u).map(|r| r.org),
                LimitLevel::Agent(a) => rows.agents.iter().find(|r| r.id == a).map(|r| r.org),
            };
            prop_assert_eq!(holder_org, Some(l.org));
        }
        for p in principals(&rows) {
            let Some(key) = rows.keys.iter().find(|k| k.id == p.key) else { continue };
            for server in &rows.servers {
                for tool in tool_names() {
                    let got = snapshot.limits_for(&p, server.id, tool);
                    let want: BTreeSet<LimitId> = rows
                        .limits
                        .iter()
                        .filter(|l| holds_for(l, key, &p))
                        .filter(|l| l.server.is_none_or(|s| s == server.id))
                        .filter(|l| l.tool.as_deref().is_none_or(|t| t == tool))
                        .map(|l| l.id)
                        .collect();
                    let ids: BTreeSet<LimitId> = got.applicable.iter().map(|a| a.id).collect();
                    prop_assert_eq!(&ids, &want);
                    prop_assert_eq!(ids.len(), got.applicable.len());
                    for a in &got.applicable {
                        if let (Some(r), Some(bound)) = (a.rate, got.rate) {
                            prop_assert_ne!(bound.rate.tightness_cmp(&r), Ordering::Greater);
                        }
                        if let (Some(c), Some(bound)) = (a.concurrency, got.concurrency) {
                            prop_assert!(bound.max_in_flight <= c);
                        }
                    }
                    prop_assert_eq!(got.rate.is_some(), got.applicable.iter().any(|a| a.rate.is_some()));
                    prop_assert_eq!(
                        got.concurrency.is_some(),
                        got.applicable.iter().any(|a| a.concurrency.is_some())
                    );
                    if let Some(b) = got.rate {
                        prop_assert!(got.applicable.iter().any(|a| a.id == b.limit && a.level == b.level && a.rate == Some(b.rate)));
                    }
                    if let Some(b) = got.concurrency {
                        prop_assert!(got.applicable.iter().any(|a| a.id == b.limit && a.concurrency == Some(b.max_in_flight)));
                    }
                }
            }
        }
    }
}

#[test]
fn tightest_rate_and_concurrency_name_their_limit() {
    let mut rows = PolicyRows {
        revision: 1,
        ..PolicyRows::default()
    };
    rows.orgs.push(OrgRow {
        id: OrgId(1),
        slug: "acme".into(),
        suspended: false,
    });
    rows.servers.push(ServerRow {
        id: ServerId(1),
        slug: "github".into(),
        owner_org: None,
        enabled: true,
    });
    rows.org_grants.push(OrgGrantRow {
        org: OrgId(1),
        server: ServerId(1),
        enabled: true,
        filter: ToolFilter::All,
    });
    rows.teams.push(TeamRow {
        id: TeamId(1),
        org: OrgId(1),
        slug: "eng".into(),
        scope: Scope::Inherit,
    });
    rows.keys.push(KeyRow {
        id: KeyId(1),
        org: OrgId(1),
        token_digest: "d".into(),
        team: Some(TeamId(1)),
        agent: None,
        scope: Scope::Inherit,
        revoked: false,
        expires_at_ms: None,
        may_assert_end_user: false,
        may_assert_agent: false,
    });
    let limit = |id, level, tool: Option<&str>, rate: Option<(u32, Window, u32)>, conc| LimitRow {
        id: LimitId(id),
        org: OrgId(1),
        level,
        server: tool.map(|_| ServerId(1)),
        tool: tool.map(str::to_owned),
        rate: rate.map(|(requests, per, burst)| Rate {
            requests,
            per,
            burst,
        }),
        concurrency: conc,
    };
    rows.limits = vec![
        limit(
            1,
            LimitLevel::Org,
            None,
            Some((600, Window::Minute, 100)),
            Some(50),
        ),
        limit(
            2,
            LimitLevel::Team(TeamId(1)),
            Some("create_issue"),
            Some((60, Window::Minute, 10)),
            None,
        ),
        limit(
            3,
            LimitLevel::Key(KeyId(1)),
            None,
            Some((3600, Window::Hour, 5)),
            Some(4),
        ),
        limit(4, LimitLevel::Key(KeyId(1)), Some("search"), None, Some(1)),
    ];
    let s = Snapshot::build(rows).unwrap();
    let p = Principal {
        key: KeyId(1),
        end_user: None,
        agent: None,
    };
    let e = s.limits_for(&p, ServerId(1), "create_issue");
    let ids: Vec<i64> = e.applicable.iter().map(|a| a.id.0).collect();
    assert_eq!(ids, [1, 2, 3]);
    // 60/min and 3600/h are the same refill; the smaller burst is tighter.
    let rate = e.rate.unwrap();
    assert_eq!(
        (rate.limit, rate.level),
        (LimitId(3), LimitLevel::Key(KeyId(1)))
    );
    let conc = e.concurrency.unwrap();
    assert_eq!((conc.limit, conc.max_in_flight), (LimitId(3), 4));
    let search = s.limits_for(&p, ServerId(1), "search");
    assert_eq!(search.concurrency.unwrap().limit, LimitId(4));
    assert_eq!(search.rate.unwrap().limit, LimitId(3));
    // Another server: only the all-server limits.
    assert_eq!(s.limits_for(&p, ServerId(2), "search").applicable.len(), 2);
    // An unknown key: nothing.
    let ghost = Principal { key: KeyId(9), ..p };
    assert!(s.limits_for(&ghost, ServerId(1), "search").is_empty());
    // Deleting the team drops its limit (and its key's).
    let after = s.apply(2, &PolicyChange::DeleteTeam(TeamId(1))).unwrap();
    let left: Vec<i64> = after.to_rows().limits.iter().map(|l| l.id.0).collect();
    assert_eq!(left, [1]);
}
