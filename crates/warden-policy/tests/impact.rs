//! `Snapshot::impact`: the decision run with and without a change.

use std::collections::{HashMap, HashSet};

use warden_policy::*;

const NOW: i64 = 1_700_000_000_000;
const ACME: OrgId = OrgId(1);
const GITHUB: ServerId = ServerId(10);
const JIRA: ServerId = ServerId(11);

fn catalog() -> HashMap<ServerId, HashSet<String>> {
    let tools = |names: &[&str]| names.iter().map(|s| s.to_string()).collect();
    HashMap::from([
        (GITHUB, tools(&["search", "create_issue"])),
        (JIRA, tools(&["create"])),
    ])
}

fn key(id: i64, scope: Scope) -> KeyRow {
    KeyRow {
        id: KeyId(id),
        org: ACME,
        token_digest: format!("digest-{id}"),
        team: None,
        agent: None,
        scope,
        revoked: false,
        expires_at_ms: None,
        may_assert_end_user: false,
        may_assert_agent: false,
    }
}

fn grant(server: ServerId, enabled: bool) -> OrgGrantRow {
    OrgGrantRow {
        org: ACME,
        server,
        enabled,
        filter: ToolFilter::All,
    }
}

fn snapshot() -> Snapshot {
    let server = |id, slug: &str| ServerRow {
        id,
        slug: slug.into(),
        owner_org: None,
        enabled: true,
    };
    let jira_only = Scope::Grants(ScopeGrants {
        servers: [(JIRA, ToolFilter::All)].into_iter().collect(),
        toolsets: Default::default(),
    });
    Snapshot::build(PolicyRows {
        revision: 1,
        orgs: vec![OrgRow {
            id: ACME,
            slug: "acme".into(),
            suspended: false,
        }],
        servers: vec![server(GITHUB, "github"), server(JIRA, "jira")],
        org_grants: vec![grant(GITHUB, true), grant(JIRA, true)],
        keys: vec![key(1, Scope::Inherit), key(2, jira_only)],
        ..PolicyRows::default()
    })
    .unwrap()
}

#[test]
fn switching_a_grant_off_names_who_loses_which_tools() {
    let snap = snapshot();
    let principals = snap.key_principals(ACME);
    assert_eq!(principals.len(), 2);
    let impact = snap
        .impact(
            &PolicyChange::UpsertOrgGrant(grant(GITHUB, false)),
            &principals,
            &catalog(),
            NOW,
        )
        .unwrap();
    // Key 2 never had github: only key 1 is affected, and it loses exactly
    // github's two tools.
    assert_eq!(impact.affected.len(), 1);
    assert_eq!(impact.affected[0].principal.key, KeyId(1));
    assert_eq!(
        impact.affected[0].lost,
        vec![
            (GITHUB, "create_issue".to_string()),
            (GITHUB, "search".to_string())
        ]
    );
    assert!(impact.affected[0].gained.is_empty());
    // The live snapshot is untouched.
    assert_eq!(
        snap.reachable_tools(&principals[0], &catalog(), NOW).len(),
        3,
        "{principals:?}"
    );
}

#[test]
fn switching_back_on_gains_exactly_what_was_lost() {
    let off = snapshot()
        .apply(2, &PolicyChange::UpsertOrgGrant(grant(GITHUB, false)))
        .unwrap();
    let principals = off.key_principals(ACME);
    let impact = off
        .impact(
            &PolicyChange::UpsertOrgGrant(grant(GITHUB, true)),
            &principals,
            &catalog(),
            NOW,
        )
        .unwrap();
    assert_eq!(impact.affected.len(), 1);
    assert!(impact.affected[0].lost.is_empty());
    assert_eq!(impact.affected[0].gained.len(), 2);
}

#[test]
fn a_change_that_changes_nothing_affects_nobody() {
    let snap = snapshot();
    let impact = snap
        .impact(
            &PolicyChange::UpsertOrgGrant(grant(JIRA, true)),
            &snap.key_principals(ACME),
            &catalog(),
            NOW,
        )
        .unwrap();
    assert!(impact.affected.is_empty());
    assert!(impact.tools_lost().is_empty());
}
