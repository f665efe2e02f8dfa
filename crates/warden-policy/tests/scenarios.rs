//! Plain scenarios: the two bug reports of issue 2, case-sensitive tool
//! names, every reason code, traces, principal assertions and build errors.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use warden_policy::*;

const NOW: i64 = 1_700_000_000_000;

const ACME: OrgId = OrgId(1);
const GLOBEX: OrgId = OrgId(2);
const GITHUB: ServerId = ServerId(10);
const JIRA: ServerId = ServerId(11);
/// Owned by acme.
const INTERNAL: ServerId = ServerId(12);
/// Owned by globex.
const VAULT: ServerId = ServerId(13);

type Catalog = HashMap<ServerId, HashSet<String>>;

fn catalog() -> Catalog {
    let tools = |names: &[&str]| names.iter().map(|s| s.to_string()).collect();
    HashMap::from([
        (
            GITHUB,
            tools(&["search", "Search", "create_issue", "delete_repo"]),
        ),
        (JIRA, tools(&["create", "list"])),
        (INTERNAL, tools(&["deploy"])),
        (VAULT, tools(&["read_secret"])),
    ])
}

fn only(tools: &[&str]) -> ToolFilter {
    ToolFilter::only(tools.iter().copied())
}

fn scope(entries: &[(ServerId, ToolFilter)]) -> Scope {
    Scope::Grants(ScopeGrants {
        servers: entries.iter().cloned().collect(),
        toolsets: BTreeSet::new(),
    })
}

fn key(id: i64, org: OrgId) -> KeyRow {
    KeyRow {
        id: KeyId(id),
        org,
        token_digest: format!("digest-{id}"),
        team: None,
        agent: None,
        scope: Scope::Inherit,
        revoked: false,
        expires_at_ms: None,
        may_assert_end_user: false,
        may_assert_agent: false,
    }
}

fn grant(org: OrgId, server: ServerId, filter: ToolFilter) -> OrgGrantRow {
    OrgGrantRow {
        org,
        server,
        enabled: true,
        filter,
    }
}

/// Two orgs, two global servers, one server owned by each org; acme is
/// granted github, jira and its own internal server; nothing else yet.
fn base() -> PolicyRows {
    let server = |id: ServerId, slug: &str, owner: Option<OrgId>| ServerRow {
        id,
        slug: slug.into(),
        owner_org: owner,
        enabled: true,
    };
    PolicyRows {
        revision: 1,
        orgs: vec![
            OrgRow {
                id: ACME,
                slug: "acme".into(),
                suspended: false,
            },
            OrgRow {
                id: GLOBEX,
                slug: "globex".into(),
                suspended: false,
            },
        ],
        servers: vec![
            server(GITHUB, "github", None),
            server(JIRA, "jira", None),
            server(INTERNAL, "internal", Some(ACME)),
            server(VAULT, "vault", Some(GLOBEX)),
        ],
        org_grants: vec![
            grant(ACME, GITHUB, ToolFilter::All),
            grant(ACME, JIRA, ToolFilter::All),
            grant(ACME, INTERNAL, ToolFilter::All),
            grant(GLOBEX, VAULT, ToolFilter::All),
        ],
        ..PolicyRows::default()
    }
}

fn build(rows: PolicyRows) -> Snapshot {
    Snapshot::build(rows).unwrap()
}

fn key_only(id: i64) -> Principal {
    Principal {
        key: KeyId(id),
        end_user: None,
        agent: None,
    }
}

/// What `tools/list` shows: (server slug, tool), sorted.
fn listed(snapshot: &Snapshot, p: &Principal) -> Vec<(String, String)> {
    let access = snapshot.access(p);
    let cat = catalog();
    let mut out: Vec<(String, String)> = access
        .usable_servers(NOW)
        .flat_map(|(s, f)| {
            let tools = cat.get(&s.server).cloned().unwrap_or_default();
            tools
                .into_iter()
                .filter(|t| f.admits(t))
                .map(|t| (s.slug.clone(), t))
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort();
    out
}

fn call(snapshot: &Snapshot, p: &Principal, slug: &str, tool: &str) -> Decision {
    snapshot.decide(&snapshot.access(p), slug, tool, &catalog(), NOW)
}

fn reason(snapshot: &Snapshot, p: &Principal, slug: &str, tool: &str) -> Option<&'static str> {
    call(snapshot, p, slug, tool).reason.map(Reason::code)
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<_> = items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// Bug report 1: an org admin disables a server that an assistant in a shared
// team has attached. The assistant must lose it at once, attachment or not.
// ---------------------------------------------------------------------------

#[test]
fn org_disable_revokes_team_and_personal_agents_and_reenable_restores() {
    let mut rows = base();
    rows.teams.push(TeamRow {
        id: TeamId(20),
        org: ACME,
        slug: "platform".into(),
        scope: Scope::Inherit,
    });
    let attachment = scope(&[(GITHUB, only(&["search", "create_issue"]))]);
    // A shared assistant in the team, and a personal one with the same attachment.
    rows.agents.push(AgentRow {
        id: AgentId(40),
        org: ACME,
        team: Some(TeamId(20)),
        slug: "helper".into(),
        scope: attachment.clone(),
    });
    rows.agents.push(AgentRow {
        id: AgentId(41),
        org: ACME,
        team: None,
        slug: "mine".into(),
        scope: attachment.clone(),
    });
    rows.keys.push(KeyRow {
        team: Some(TeamId(20)),
        agent: Some(AgentId(40)),
        ..key(60, ACME)
    });
    rows.keys.push(KeyRow {
        agent: Some(AgentId(41)),
        ..key(61, ACME)
    });
    let shared = Principal {
        key: KeyId(60),
        end_user: None,
        agent: Some(AgentId(40)),
    };
    let personal = Principal {
        key: KeyId(61),
        end_user: None,
        agent: Some(AgentId(41)),
    };
    let before = build(rows.clone());
    let expected = pairs(&[("github", "create_issue"), ("github", "search")]);
    for p in [&shared, &personal] {
        assert_eq!(listed(&before, p), expected);
        assert!(call(&before, p, "github", "search").allowed);
    }

    // The org admin switches github off for acme (the change the control
    // plane sends to every replica).
    let off_grant = OrgGrantRow {
        enabled: false,
        ..grant(ACME, GITHUB, ToolFilter::All)
    };
    let off = before
        .apply(2, &PolicyChange::UpsertOrgGrant(off_grant))
        .unwrap();
    for p in [&shared, &personal] {
        assert_eq!(listed(&off, p), Vec::<(String, String)>::new());
        assert_eq!(
            reason(&off, p, "github", "search"),
            Some("server_disabled_by_org")
        );
        assert_eq!(
            reason(&off, p, "github", "create_issue"),
            Some("server_disabled_by_org")
        );
        let access = off.access(p);
        assert!(!off.decide_server(&access, "github", NOW).allowed);
        assert!(access.usable_server("github", NOW).is_none());
    }
    // The attachments are still stored: the switch wins over them.
    assert_eq!(off.agent(AgentId(40)).unwrap().scope, attachment);
    assert_eq!(off.agent(AgentId(41)).unwrap().scope, attachment);
    // And pickers no longer offer it.
    assert!(!off
        .allowance(ACME, Some(TeamId(20)))
        .servers
        .contains_key(&GITHUB));

    // Re-enabling restores exactly what was there.
    let on = off
        .apply(
            3,
            &PolicyChange::UpsertOrgGrant(grant(ACME, GITHUB, ToolFilter::All)),
        )
        .unwrap();
    for p in [&shared, &personal] {
        assert_eq!(listed(&on, p), expected);
        assert_eq!(
            call(&on, p, "github", "search").trace,
            call(&before, p, "github", "search").trace
        );
    }

    // The gateway-wide kill switch does the same, with its own reason.
    let mut killed = rows.clone();
    killed.servers[0].enabled = false;
    let killed = build(killed);
    for p in [&shared, &personal] {
        assert_eq!(listed(&killed, p), Vec::<(String, String)>::new());
        assert_eq!(
            reason(&killed, p, "github", "search"),
            Some("server_disabled")
        );
    }
}

// ---------------------------------------------------------------------------
// Bug report 2: org-level grants must be enforced through every level, not
// just shown in the UI.
// ---------------------------------------------------------------------------

fn cascade_rows() -> PolicyRows {
    let mut rows = base();
    rows.org_grants = vec![
        grant(ACME, GITHUB, ToolFilter::except(["delete_repo"])),
        grant(ACME, JIRA, only(&["create"])),
    ];
    rows.teams.push(TeamRow {
        id: TeamId(20),
        org: ACME,
        slug: "everyone".into(),
        scope: Scope::Inherit,
    });
    rows.teams.push(TeamRow {
        id: TeamId(21),
        org: ACME,
        slug: "support".into(),
        scope: scope(&[(GITHUB, only(&["search", "create_issue"]))]),
    });
    rows.end_users.push(EndUserRow {
        id: EndUserId(30),
        org: ACME,
        external_id: "alice@acme.test".into(),
        scope: scope(&[(GITHUB, only(&["search", "create_issue", "delete_repo"]))]),
        disabled: false,
    });
    rows.end_users.push(EndUserRow {
        id: EndUserId(31),
        org: ACME,
        external_id: "bob@acme.test".into(),
        scope: scope(&[(GITHUB, only(&["search"]))]),
        disabled: false,
    });
    rows.agents.push(AgentRow {
        id: AgentId(40),
        org: ACME,
        team: Some(TeamId(21)),
        slug: "triage".into(),
        scope: scope(&[(GITHUB, only(&["create_issue"]))]),
    });
    // Inherit key in the inherit team; inherit key in the scoped team; a
    // service key in the scoped team that acts for end users and agents.
    rows.keys.push(KeyRow {
        team: Some(TeamId(20)),
        ..key(60, ACME)
    });
    rows.keys.push(KeyRow {
        team: Some(TeamId(21)),
        ..key(61, ACME)
    });
    rows.keys.push(KeyRow {
        team: Some(TeamId(21)),
        may_assert_end_user: true,
        may_assert_agent: true,
        ..key(62, ACME)
    });
    rows.keys.push(KeyRow {
        scope: scope(&[
            (GITHUB, only(&["delete_repo", "search"])),
            (JIRA, only(&["list"])),
        ]),
        ..key(63, ACME)
    });
    rows
}

#[test]
fn inherit_team_and_key_get_exactly_the_org_grants() {
    let s = build(cascade_rows());
    let p = key_only(60);
    assert_eq!(
        listed(&s, &p),
        pairs(&[
            ("github", "Search"),
            ("github", "create_issue"),
            ("github", "search"),
            ("jira", "create")
        ])
    );
    assert_eq!(
        reason(&s, &p, "github", "delete_repo"),
        Some("tool_blocked_by_org")
    );
    assert_eq!(reason(&s, &p, "jira", "list"), Some("tool_blocked_by_org"));
    // Acme's own server was not granted in these rows.
    assert_eq!(
        reason(&s, &p, "internal", "deploy"),
        Some("server_not_granted_to_org")
    );
}

#[test]
fn a_scoped_team_gets_the_intersection_with_the_org() {
    let s = build(cascade_rows());
    let p = key_only(61);
    assert_eq!(
        listed(&s, &p),
        pairs(&[("github", "create_issue"), ("github", "search")])
    );
    assert_eq!(
        reason(&s, &p, "github", "Search"),
        Some("not_granted_by_team")
    );
    assert_eq!(
        reason(&s, &p, "jira", "create"),
        Some("not_granted_by_team")
    );
}

#[test]
fn end_users_and_agents_narrow_further() {
    let s = build(cascade_rows());
    let alice = s
        .principal("digest-62", Some("alice@acme.test"), None)
        .unwrap();
    let bob = s
        .principal("digest-62", Some("bob@acme.test"), None)
        .unwrap();
    let bob_via_triage = s
        .principal("digest-62", Some("bob@acme.test"), Some("triage"))
        .unwrap();
    let alice_via_triage = s
        .principal("digest-62", Some("alice@acme.test"), Some("triage"))
        .unwrap();

    // Alice's own scope names delete_repo, but the org blocks it.
    assert_eq!(
        listed(&s, &alice),
        pairs(&[("github", "create_issue"), ("github", "search")])
    );
    assert_eq!(
        reason(&s, &alice, "github", "delete_repo"),
        Some("tool_blocked_by_org")
    );
    assert_eq!(listed(&s, &bob), pairs(&[("github", "search")]));
    assert_eq!(
        reason(&s, &bob, "github", "create_issue"),
        Some("not_granted_by_end_user")
    );
    // Bob may search, the triage agent may only create issues: nothing left.
    assert_eq!(listed(&s, &bob_via_triage), vec![]);
    assert_eq!(
        reason(&s, &bob_via_triage, "github", "search"),
        Some("not_granted_by_agent")
    );
    assert_eq!(
        listed(&s, &alice_via_triage),
        pairs(&[("github", "create_issue")])
    );
}

#[test]
fn a_tool_granted_only_below_the_org_is_refused_by_the_org() {
    let mut rows = cascade_rows();
    let s = build(rows.clone());
    let p = key_only(63);
    // The key's scope lists delete_repo and jira's list; the org does not.
    assert_eq!(
        reason(&s, &p, "github", "delete_repo"),
        Some("tool_blocked_by_org")
    );
    assert_eq!(reason(&s, &p, "jira", "list"), Some("tool_blocked_by_org"));
    assert_eq!(listed(&s, &p), pairs(&[("github", "search")]));

    // A scope cannot even name a server the org was never granted.
    rows.keys[3].scope = scope(&[(INTERNAL, ToolFilter::All)]);
    let err = Snapshot::build(rows.clone()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "key 63 refers to org grant for server 12, which does not exist in org 1"
    );

    // Deleting the org grant removes it everywhere: not granted, not re-granted.
    let mut rows = cascade_rows();
    rows.delete_org_grant(ACME, GITHUB);
    let s = build(rows.clone());
    assert_eq!(
        reason(&s, &p, "github", "search"),
        Some("server_not_granted_to_org")
    );
    rows.org_grants.push(grant(ACME, GITHUB, ToolFilter::All));
    let s = build(rows);
    assert_eq!(
        reason(&s, &p, "github", "search"),
        Some("not_granted_by_key")
    );
    assert_eq!(
        reason(&s, &key_only(61), "github", "search"),
        Some("not_granted_by_team")
    );
}

// ---------------------------------------------------------------------------
// Tool names are exact everywhere.
// ---------------------------------------------------------------------------

#[test]
fn tool_names_are_case_sensitive_in_every_path() {
    let mut rows = base();
    rows.org_grants[0].filter = ToolFilter::except(["Search"]);
    rows.teams.push(TeamRow {
        id: TeamId(20),
        org: ACME,
        slug: "t".into(),
        scope: scope(&[
            (GITHUB, only(&["search", "Search", "create_issue"])),
            (JIRA, ToolFilter::All),
        ]),
    });
    rows.keys.push(KeyRow {
        team: Some(TeamId(20)),
        ..key(60, ACME)
    });
    rows.keys.push(KeyRow {
        team: Some(TeamId(20)),
        scope: scope(&[(GITHUB, only(&["SEARCH", "create_issue"]))]),
        ..key(61, ACME)
    });
    let s = build(rows);
    let p = key_only(60);

    // List and call agree, and "search" / "Search" are different tools.
    assert_eq!(
        listed(&s, &p),
        pairs(&[
            ("github", "create_issue"),
            ("github", "search"),
            ("jira", "create"),
            ("jira", "list")
        ])
    );
    assert!(call(&s, &p, "github", "search").allowed);
    assert_eq!(
        reason(&s, &p, "github", "Search"),
        Some("tool_blocked_by_org")
    );
    // A case variant no filter blocks still is not in the catalog.
    assert_eq!(
        reason(&s, &p, "github", "SEARCH"),
        Some("not_granted_by_team")
    );
    // The key names "SEARCH", which is not "search".
    assert_eq!(
        reason(&s, &key_only(61), "github", "search"),
        Some("not_granted_by_key")
    );
    assert_eq!(
        listed(&s, &key_only(61)),
        pairs(&[("github", "create_issue")])
    );

    // The catalog is exact too: an all-tools grant does not make "Create" exist.
    assert_eq!(reason(&s, &p, "jira", "Create"), Some("tool_unknown"));
    assert!(call(&s, &p, "jira", "create").allowed);

    // Pickers: the allowance admits "search" but not "Search", and a grant
    // of "Search" is refused naming exactly that tool.
    let allowance = s.allowance(ACME, Some(TeamId(20)));
    assert!(allowance.admits(GITHUB, "search"));
    assert!(!allowance.admits(GITHUB, "Search"));
    let request = ScopeGrants {
        servers: BTreeMap::from([(GITHUB, only(&["search", "Search"]))]),
        toolsets: BTreeSet::new(),
    };
    let offenses = s
        .validate_grants(ACME, Some(TeamId(20)), &request)
        .unwrap_err();
    assert_eq!(offenses.len(), 1);
    assert_eq!(offenses[0].code, "tools_not_allowed");
    assert_eq!(offenses[0].tools, vec!["Search".to_string()]);

    // Slugs are exact as well: "GitHub" is not a server.
    assert_eq!(reason(&s, &p, "GitHub", "search"), Some("server_unknown"));
}

// ---------------------------------------------------------------------------
// Every reason, in check order, with its trace.
// ---------------------------------------------------------------------------

/// Rows in which each key below fails at a different check.
fn reasons_rows() -> PolicyRows {
    let mut rows = base();
    rows.servers.push(ServerRow {
        id: ServerId(14),
        slug: "off".into(),
        owner_org: None,
        enabled: false,
    });
    rows.org_grants
        .push(grant(ACME, ServerId(14), ToolFilter::All));
    rows.org_grants[1].enabled = false; // jira switched off by acme
    rows.org_grants[0].filter = ToolFilter::except(["delete_repo"]);
    rows.orgs.push(OrgRow {
        id: OrgId(3),
        slug: "suspended".into(),
        suspended: true,
    });
    rows.teams.push(TeamRow {
        id: TeamId(20),
        org: ACME,
        slug: "t".into(),
        scope: scope(&[(GITHUB, only(&["search", "create_issue"]))]),
    });
    rows.end_users.push(EndUserRow {
        id: EndUserId(30),
        org: ACME,
        external_id: "u".into(),
        scope: scope(&[(GITHUB, only(&["search"]))]),
        disabled: false,
    });
    rows.end_users.push(EndUserRow {
        id: EndUserId(31),
        org: ACME,
        external_id: "off".into(),
        scope: Scope::Inherit,
        disabled: true,
    });
    rows.agents.push(AgentRow {
        id: AgentId(40),
        org: ACME,
        team: None,
        slug: "a".into(),
        scope: Scope::empty(),
    });
    rows.keys.push(KeyRow {
        team: Some(TeamId(20)),
        ..key(60, ACME)
    });
    // Revoked and expired: revoked is reported (it comes first).
    rows.keys.push(KeyRow {
        revoked: true,
        expires_at_ms: Some(NOW - 1),
        ..key(61, ACME)
    });
    // Expires exactly now: expired.
    rows.keys.push(KeyRow {
        expires_at_ms: Some(NOW),
        ..key(62, ACME)
    });
    rows.keys.push(key(63, OrgId(3)));
    rows.keys.push(KeyRow {
        scope: scope(&[(GITHUB, only(&["Search"]))]),
        ..key(64, ACME)
    });
    rows
}

#[test]
fn every_reason_is_reachable_and_the_first_failure_wins() {
    let s = build(reasons_rows());
    let team_key = key_only(60);
    let with_user = Principal {
        end_user: Some(EndUserId(30)),
        ..team_key
    };
    let with_agent = Principal {
        end_user: Some(EndUserId(30)),
        agent: Some(AgentId(40)),
        ..team_key
    };
    let cases: Vec<(Principal, &str, &str, Option<Reason>)> = vec![
        (team_key, "github", "search", None),
        (key_only(61), "github", "search", Some(Reason::KeyRevoked)),
        (key_only(62), "github", "search", Some(Reason::KeyExpired)),
        // A disabled person is refused whole, whatever the key allows.
        (
            Principal {
                end_user: Some(EndUserId(31)),
                ..team_key
            },
            "github",
            "search",
            Some(Reason::EndUserDisabled),
        ),
        // A suspended org's key is refused before its (unknown) server is looked at.
        (key_only(63), "nowhere", "x", Some(Reason::OrgSuspended)),
        (team_key, "nowhere", "search", Some(Reason::ServerUnknown)),
        // Another org's server does not exist for acme.
        (
            team_key,
            "vault",
            "read_secret",
            Some(Reason::ServerUnknown),
        ),
        (team_key, "off", "search", Some(Reason::ServerDisabled)),
        (
            team_key,
            "internal",
            "deploy",
            Some(Reason::NotGrantedByTeam),
        ),
        (
            team_key,
            "jira",
            "create",
            Some(Reason::ServerDisabledByOrg),
        ),
        // The org's filter fails before the team's, which also fails.
        (
            team_key,
            "github",
            "delete_repo",
            Some(Reason::ToolBlockedByOrg),
        ),
        (team_key, "github", "Search", Some(Reason::NotGrantedByTeam)),
        // Team passes, key does not.
        (
            key_only(64),
            "github",
            "search",
            Some(Reason::NotGrantedByKey),
        ),
        (
            with_user,
            "github",
            "create_issue",
            Some(Reason::NotGrantedByEndUser),
        ),
        (
            with_agent,
            "github",
            "search",
            Some(Reason::NotGrantedByAgent),
        ),
    ];
    let mut seen = HashSet::new();
    for (p, slug, tool, expected) in cases {
        let d = call(&s, &p, slug, tool);
        assert_eq!(d.reason, expected, "{p:?} {slug} {tool}: {:?}", d.trace);
        assert_eq!(d.allowed, expected.is_none());
        seen.extend(expected);
    }
    // tool_unknown: everything passes but the catalog.
    let mut rows = reasons_rows();
    rows.teams[0].scope = Scope::Inherit;
    let s = build(rows);
    assert_eq!(
        reason(&s, &team_key, "github", "search_v2"),
        Some("tool_unknown")
    );
    seen.insert(Reason::ToolUnknown);
    // org_grant missing: acme's own server once its grant is gone.
    let mut rows = reasons_rows();
    rows.delete_org_grant(ACME, INTERNAL);
    let s = build(rows);
    assert_eq!(
        reason(&s, &team_key, "internal", "deploy"),
        Some("server_not_granted_to_org")
    );
    seen.insert(Reason::ServerNotGrantedToOrg);

    let missing: Vec<_> = Reason::ALL.iter().filter(|r| !seen.contains(r)).collect();
    assert!(missing.is_empty(), "not exercised: {missing:?}");
    // Codes are stable snake_case strings, distinct.
    let codes: HashSet<&str> = Reason::ALL.iter().map(|r| r.code()).collect();
    assert_eq!(codes.len(), Reason::ALL.len());
    assert_eq!(
        serde_json::to_value(Reason::NotGrantedByEndUser).unwrap(),
        "not_granted_by_end_user"
    );
}

#[test]
fn the_trace_lists_every_check_with_what_each_level_said() {
    let s = build(reasons_rows());
    let p = Principal {
        key: KeyId(60),
        end_user: Some(EndUserId(30)),
        agent: None,
    };
    use CheckOutcome::*;

    let allowed = call(&s, &p, "github", "search");
    assert!(allowed.allowed);
    assert_eq!(allowed.server, Some(GITHUB));
    assert_eq!(allowed.revision, 1);
    let outcomes: Vec<(Check, CheckOutcome)> = allowed
        .trace
        .entries()
        .iter()
        .map(|e| (e.check, e.outcome))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (Check::KeyActive, Pass),
            (Check::OrgActive, Pass),
            (Check::ServerVisible, Pass),
            (Check::ServerEnabled, Pass),
            (Check::OrgGrant, Pass),
            (Check::OrgGrantEnabled, Pass),
            (Check::OrgFilter, Pass),
            (Check::Team, Pass),
            (Check::Key, Inherit),
            (Check::EndUser, Pass),
            (Check::Agent, Absent),
            (Check::ToolInCatalog, Pass),
        ]
    );

    // A denial still evaluates the later checks: the trace shows everything
    // that would also have failed.
    let denied = call(&s, &p, "github", "delete_repo");
    assert_eq!(denied.reason, Some(Reason::ToolBlockedByOrg));
    assert_eq!(
        denied.trace.outcome(Check::OrgFilter),
        Fail(Reason::ToolBlockedByOrg)
    );
    assert_eq!(
        denied.trace.outcome(Check::Team),
        Fail(Reason::NotGrantedByTeam)
    );
    assert_eq!(
        denied.trace.outcome(Check::EndUser),
        Fail(Reason::NotGrantedByEndUser)
    );
    assert_eq!(denied.trace.outcome(Check::ToolInCatalog), Pass);

    // An unknown server: nothing after visibility can be evaluated, and the
    // decision names no server (another org's server looks the same).
    for slug in ["nowhere", "vault"] {
        let d = call(&s, &p, slug, "read_secret");
        assert_eq!(d.server, None);
        assert_eq!(
            d.trace.outcome(Check::ServerVisible),
            Fail(Reason::ServerUnknown)
        );
        for check in &Check::ALL[3..] {
            assert_eq!(d.trace.outcome(*check), NotEvaluated, "{slug} {check:?}");
        }
    }

    // A server visible but not granted: existence shown, the grant missing.
    let mut rows = reasons_rows();
    rows.delete_org_grant(ACME, INTERNAL);
    let s2 = build(rows);
    let d = call(&s2, &p, "internal", "deploy");
    assert_eq!(d.server, Some(INTERNAL));
    assert_eq!(d.trace.outcome(Check::ServerEnabled), Pass);
    assert_eq!(
        d.trace.outcome(Check::OrgGrant),
        Fail(Reason::ServerNotGrantedToOrg)
    );
    assert_eq!(d.trace.outcome(Check::Team), NotEvaluated);

    // The JSON form is what the audit log and explain endpoint show.
    let json = serde_json::to_value(denied).unwrap();
    assert_eq!(json["allowed"], false);
    assert_eq!(json["reason"], "tool_blocked_by_org");
    assert_eq!(json["trace"].as_array().unwrap().len(), 12);
    assert_eq!(
        json["trace"][6],
        serde_json::json!({"check": "org_filter", "outcome": "fail", "reason": "tool_blocked_by_org"})
    );
    assert_eq!(
        json["trace"][8],
        serde_json::json!({"check": "key", "outcome": "inherit", "reason": null})
    );
    assert_eq!(
        json["trace"][10],
        serde_json::json!({"check": "agent", "outcome": "absent", "reason": null})
    );
}

#[test]
fn server_level_decision_for_resources_and_prompts() {
    let s = build(reasons_rows());
    let team_key = key_only(60);
    let access = s.access(&team_key);
    // Granted with some tools at every level: reachable.
    assert!(s.decide_server(&access, "github", NOW).allowed);
    // The team's scope does not name internal.
    assert_eq!(
        s.decide_server(&access, "internal", NOW).reason,
        Some(Reason::NotGrantedByTeam)
    );
    assert_eq!(
        s.decide_server(&access, "jira", NOW).reason,
        Some(Reason::ServerDisabledByOrg)
    );
    assert_eq!(
        s.decide_server(&access, "off", NOW).reason,
        Some(Reason::ServerDisabled)
    );
    assert_eq!(
        s.decide_server(&access, "vault", NOW).reason,
        Some(Reason::ServerUnknown)
    );
    let revoked = s.access(&key_only(61));
    assert_eq!(
        s.decide_server(&revoked, "github", NOW).reason,
        Some(Reason::KeyRevoked)
    );
    // An agent with an empty scope reaches no server.
    let agent = s.access(&Principal {
        agent: Some(AgentId(40)),
        ..team_key
    });
    assert_eq!(
        s.decide_server(&agent, "github", NOW).reason,
        Some(Reason::NotGrantedByAgent)
    );
}

#[test]
fn a_principal_deleted_since_it_was_formed_fails_closed() {
    let s = build(reasons_rows());
    let p = Principal {
        key: KeyId(60),
        end_user: Some(EndUserId(30)),
        agent: None,
    };
    let after = s
        .apply(2, &PolicyChange::DeleteEndUser(EndUserId(30)))
        .unwrap();
    assert_eq!(
        reason(&after, &p, "github", "search"),
        Some("not_granted_by_end_user")
    );
    let after = after.apply(3, &PolicyChange::DeleteKey(KeyId(60))).unwrap();
    assert_eq!(reason(&after, &p, "github", "search"), Some("key_revoked"));
    assert_eq!(after.access(&p).usable_servers(NOW).count(), 0);
}

// ---------------------------------------------------------------------------
// Principal assertions.
// ---------------------------------------------------------------------------

#[test]
fn assertions_a_key_may_not_make_are_refused_with_a_code() {
    let mut rows = cascade_rows();
    rows.end_users.push(EndUserRow {
        id: EndUserId(39),
        org: GLOBEX,
        external_id: "carol@globex.test".into(),
        scope: Scope::Inherit,
        disabled: false,
    });
    rows.agents.push(AgentRow {
        id: AgentId(49),
        org: GLOBEX,
        team: None,
        slug: "spy".into(),
        scope: Scope::Inherit,
    });
    rows.agents.push(AgentRow {
        id: AgentId(41),
        org: ACME,
        team: None,
        slug: "other".into(),
        scope: Scope::Inherit,
    });
    rows.keys.push(KeyRow {
        agent: Some(AgentId(40)),
        may_assert_agent: true,
        ..key(65, ACME)
    });
    let s = build(rows);
    let err = |digest: &str, user: Option<&str>, agent: Option<&str>| {
        s.principal(digest, user, agent).unwrap_err().code()
    };

    assert_eq!(err("no-such-digest", None, None), "key_unknown");
    // Key 60 may assert nothing.
    assert_eq!(
        err("digest-60", Some("alice@acme.test"), None),
        "end_user_assertion_not_allowed"
    );
    assert_eq!(
        err("digest-60", None, Some("triage")),
        "agent_assertion_not_allowed"
    );
    // Key 62 may assert both, but only identities of its own org, spelled exactly.
    assert_eq!(
        err("digest-62", Some("carol@globex.test"), None),
        "end_user_unknown"
    );
    assert_eq!(
        err("digest-62", Some("Alice@acme.test"), None),
        "end_user_unknown"
    );
    assert_eq!(err("digest-62", None, Some("spy")), "agent_unknown");
    // A key bound to an agent cannot claim another, even if allowed to assert.
    assert_eq!(
        err("digest-65", None, Some("other")),
        "agent_assertion_not_allowed"
    );

    // What works.
    assert_eq!(s.principal("digest-60", None, None).unwrap(), key_only(60));
    let p = s
        .principal("digest-62", Some("alice@acme.test"), Some("triage"))
        .unwrap();
    assert_eq!(
        p,
        Principal {
            key: KeyId(62),
            end_user: Some(EndUserId(30)),
            agent: Some(AgentId(40))
        }
    );
    // Naming its own bound agent is harmless; naming none still binds it.
    assert_eq!(
        s.principal("digest-65", None, Some("triage"))
            .unwrap()
            .agent,
        Some(AgentId(40))
    );
    assert_eq!(
        s.principal("digest-65", None, None).unwrap().agent,
        Some(AgentId(40))
    );

    // The error messages name what was asserted.
    let e = s
        .principal("digest-62", Some("zed@acme.test"), None)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "end user \"zed@acme.test\" is not known in this organization"
    );
}

// ---------------------------------------------------------------------------
// Snapshot::build refuses bad rows with a clear message, never a panic.
// ---------------------------------------------------------------------------

/// An edit that makes `base()` invalid.
type RowsEdit = Box<dyn Fn(&mut PolicyRows)>;

#[test]
fn build_rejects_bad_rows_with_clear_messages() {
    let cases: Vec<(&str, RowsEdit, &str)> = vec![
        (
            "duplicate server id",
            Box::new(|r| {
                r.servers.push(ServerRow {
                    id: GITHUB,
                    slug: "other".into(),
                    owner_org: None,
                    enabled: true,
                })
            }),
            "duplicate server id 10",
        ),
        (
            "duplicate org slug",
            Box::new(|r| {
                r.orgs.push(OrgRow {
                    id: OrgId(9),
                    slug: "acme".into(),
                    suspended: false,
                })
            }),
            "duplicate org slug \"acme\"",
        ),
        (
            "duplicate global server slug",
            Box::new(|r| {
                r.servers.push(ServerRow {
                    id: ServerId(19),
                    slug: "github".into(),
                    owner_org: None,
                    enabled: true,
                })
            }),
            "duplicate server slug \"github\"",
        ),
        (
            "org server shadowing a global one",
            Box::new(|r| {
                r.servers.push(ServerRow {
                    id: ServerId(19),
                    slug: "jira".into(),
                    owner_org: Some(ACME),
                    enabled: true,
                })
            }),
            "duplicate server slug \"jira\"",
        ),
        (
            "duplicate team slug in an org",
            Box::new(|r| {
                r.teams.push(TeamRow {
                    id: TeamId(20),
                    org: ACME,
                    slug: "t".into(),
                    scope: Scope::Inherit,
                });
                r.teams.push(TeamRow {
                    id: TeamId(21),
                    org: ACME,
                    slug: "t".into(),
                    scope: Scope::Inherit,
                });
            }),
            "duplicate team slug \"t\" in org 1",
        ),
        (
            "uppercase slug",
            Box::new(|r| r.servers[0].slug = "GitHub".into()),
            "bad server slug \"GitHub\": may contain only a-z, 0-9 and '-'",
        ),
        (
            "underscore slug",
            Box::new(|r| r.orgs[0].slug = "ac_me".into()),
            "bad org slug \"ac_me\"",
        ),
        (
            "empty slug",
            Box::new(|r| {
                r.agents.push(AgentRow {
                    id: AgentId(40),
                    org: ACME,
                    team: None,
                    slug: String::new(),
                    scope: Scope::empty(),
                })
            }),
            "bad agent slug \"\": must not be empty",
        ),
        (
            "grant of another org's server",
            Box::new(|r| r.org_grants.push(grant(ACME, VAULT, ToolFilter::All))),
            "org grant (1, 13) refers to server 13, which does not exist in org 1",
        ),
        (
            "grant for an unknown org",
            Box::new(|r| r.org_grants.push(grant(OrgId(9), GITHUB, ToolFilter::All))),
            "refers to org 9, which does not exist",
        ),
        (
            "key in another org's team",
            Box::new(|r| {
                r.teams.push(TeamRow {
                    id: TeamId(20),
                    org: GLOBEX,
                    slug: "t".into(),
                    scope: Scope::Inherit,
                });
                r.keys.push(KeyRow {
                    team: Some(TeamId(20)),
                    ..key(60, ACME)
                });
            }),
            "key 60 refers to team 20, which does not exist in org 1",
        ),
        (
            "key bound to a missing agent",
            Box::new(|r| {
                r.keys.push(KeyRow {
                    agent: Some(AgentId(99)),
                    ..key(60, ACME)
                })
            }),
            "key 60 refers to agent 99",
        ),
        (
            "scope naming another org's toolset",
            Box::new(|r| {
                r.toolsets.push(ToolsetRow {
                    id: ToolsetId(50),
                    org: GLOBEX,
                    slug: "ts".into(),
                    servers: BTreeMap::new(),
                });
                r.teams.push(TeamRow {
                    id: TeamId(20),
                    org: ACME,
                    slug: "t".into(),
                    scope: Scope::Grants(ScopeGrants {
                        servers: BTreeMap::new(),
                        toolsets: BTreeSet::from([ToolsetId(50)]),
                    }),
                });
            }),
            "team 20 refers to toolset 50, which does not exist in org 1",
        ),
        (
            "toolset naming an ungranted server",
            Box::new(|r| {
                r.toolsets.push(ToolsetRow {
                    id: ToolsetId(50),
                    org: GLOBEX,
                    slug: "ts".into(),
                    servers: BTreeMap::from([(GITHUB, ToolFilter::All)]),
                })
            }),
            "toolset 50 refers to org grant for server 10, which does not exist in org 2",
        ),
        (
            "empty end user id",
            Box::new(|r| {
                r.end_users.push(EndUserRow {
                    id: EndUserId(30),
                    org: ACME,
                    external_id: String::new(),
                    scope: Scope::Inherit,
                    disabled: false,
                })
            }),
            "must not be empty",
        ),
        (
            "duplicate end user id in an org",
            Box::new(|r| {
                r.end_users.push(EndUserRow {
                    id: EndUserId(30),
                    org: ACME,
                    external_id: "a".into(),
                    scope: Scope::Inherit,
                    disabled: false,
                });
                r.end_users.push(EndUserRow {
                    id: EndUserId(31),
                    org: ACME,
                    external_id: "a".into(),
                    scope: Scope::Inherit,
                    disabled: false,
                });
            }),
            "duplicate end user external id \"a\" in org 1",
        ),
    ];
    for (what, edit, message) in cases {
        let mut rows = base();
        edit(&mut rows);
        let err = match Snapshot::build(rows) {
            Ok(_) => panic!("{what}: accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(message),
            "{what}: got {err:?}, want {message:?}"
        );
    }

    // Two keys with one token digest: refused, and the digest never printed.
    let mut rows = base();
    rows.keys.push(KeyRow {
        token_digest: "d3adb33f".into(),
        ..key(60, ACME)
    });
    rows.keys.push(KeyRow {
        token_digest: "d3adb33f".into(),
        ..key(61, ACME)
    });
    let err = Snapshot::build(rows).unwrap_err().to_string();
    assert!(
        err.contains("token digest") && !err.contains("d3adb33f"),
        "{err}"
    );

    // The same org-server slug in two orgs is fine: each sees its own.
    let mut rows = base();
    rows.servers[3].slug = "internal".into();
    let s = build(rows);
    assert_eq!(s.server_for_org(ACME, "internal").unwrap().id, INTERNAL);
    assert_eq!(s.server_for_org(GLOBEX, "internal").unwrap().id, VAULT);
}
