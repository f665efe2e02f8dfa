//! CRUD round trips, revisions, cascades and bad input, on SQLite and PostgreSQL.

mod common;

use std::collections::BTreeMap;

use common::{create_org, http, open, Backend};
use warden_policy::{Scope, ScopeGrants, ScopeOwner, Snapshot, ToolFilter};
use warden_store::*;

const ACTOR: &str = "test";

/// Every server offers every tool: decisions then depend on policy alone.
struct AllTools;

impl warden_policy::Catalog for AllTools {
    fn contains(&self, _: warden_policy::ServerId, _: &str) -> bool {
        true
    }
}

/// The live snapshot must equal a fresh build from the database.
async fn assert_live_matches_db(store: &Store) {
    let rows = store.load_rows().await.unwrap();
    let rebuilt = Snapshot::build(rows.clone()).expect("stored rows build");
    let live = store.live().snapshot();
    assert_eq!(live.revision(), rows.revision, "live revision");
    assert_eq!(
        live.to_rows(),
        rebuilt.to_rows(),
        "live snapshot differs from the database"
    );
}

async fn orgs_servers_grants(backend: Backend) {
    let (_db, store) = open(backend).await;
    assert_eq!(store.revision().await.unwrap(), 0);

    let acme = store
        .create_org(
            ACTOR,
            NewOrg {
                slug: "acme".into(),
                name: "Acme".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(acme.revision, 1);
    assert_eq!(store.live().revision(), 1, "live before the write returns");
    let acme = acme.value;
    assert_eq!(store.get_org(acme.id).await.unwrap().unwrap(), acme);
    assert_eq!(store.get_org_by_slug("acme").await.unwrap().unwrap(), acme);

    let mut new = NewServer::new("github", None, http("https://example.com/mcp"));
    new.secret_headers
        .insert("Authorization".into(), Secret::new("Bearer gh-secret"));
    let github = store.create_server(ACTOR, new).await.unwrap();
    assert_eq!(github.revision, 2);
    let github = github.value;
    assert_eq!(github.secret_header_names, vec!["Authorization".to_owned()]);
    assert_eq!(github.config_revision, 2);
    assert_eq!(
        store
            .get_server_by_slug(None, "github")
            .await
            .unwrap()
            .unwrap(),
        github
    );
    assert_eq!(
        store
            .find_server_for_org(acme.id, "github")
            .await
            .unwrap()
            .unwrap(),
        github
    );

    let owned = store
        .create_server(
            ACTOR,
            NewServer::new("wiki", Some(acme.id), http("http://127.0.0.1:9/mcp")),
        )
        .await
        .unwrap()
        .value;
    assert_eq!(store.list_servers(Some(acme.id)).await.unwrap().len(), 2);

    let grant = store
        .create_org_grant(
            ACTOR,
            OrgGrant {
                org: acme.id,
                server: github.id,
                enabled: true,
                filter: ToolFilter::All,
            },
        )
        .await
        .unwrap();
    assert_eq!(grant.revision, 4);
    let disabled = store
        .update_org_grant(
            ACTOR,
            acme.id,
            github.id,
            OrgGrantPatch {
                enabled: Some(false),
                filter: Some(ToolFilter::only(["search"])),
            },
        )
        .await
        .unwrap();
    assert_eq!(disabled.revision, 5);
    assert!(!disabled.value.enabled);
    assert_eq!(
        store.list_org_grants(acme.id).await.unwrap(),
        vec![disabled.value.clone()]
    );
    assert!(
        !store
            .live()
            .snapshot()
            .org_grant(acme.id, github.id)
            .unwrap()
            .enabled
    );

    // Server update: enabling/disabling keeps config_revision; a new URL moves it.
    let off = store
        .update_server(
            ACTOR,
            github.id,
            ServerPatch {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(off.value.config_revision, 2);
    let moved = store
        .update_server(
            ACTOR,
            github.id,
            ServerPatch {
                transport: Some(http("https://example.org/mcp")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(moved.value.config_revision, moved.revision);

    let upstreams = store.load_upstreams().await.unwrap();
    let gh = upstreams.iter().find(|u| u.server == github.id).unwrap();
    assert_eq!(
        gh.secret_headers["Authorization"].expose(),
        "Bearer gh-secret"
    );
    assert_eq!(gh.transport, http("https://example.org/mcp"));
    assert_eq!(
        upstreams
            .iter()
            .find(|u| u.server == owned.id)
            .unwrap()
            .owner_org,
        Some(acme.id)
    );

    let renamed = store
        .update_org(
            ACTOR,
            acme.id,
            OrgPatch {
                name: Some("ACME Inc".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.value.name, "ACME Inc");
    assert_eq!(
        store.list_orgs(Page::default()).await.unwrap(),
        vec![renamed.value]
    );

    assert_eq!(store.revision().await.unwrap(), 8);
    assert_live_matches_db(&store).await;

    // A second store on the same database starts at the same policy.
    drop(store);
    let again = Store::open(_db.url(), common::options()).await.unwrap();
    assert_eq!(again.live().revision(), 8);
    assert_live_matches_db(&again).await;
}

on_both_backends!(orgs_servers_grants);

/// An org with a granted global server and an org-owned one, for tests.
struct Fixture {
    org: warden_policy::OrgId,
    github: warden_policy::ServerId,
    wiki: warden_policy::ServerId,
}

async fn fixture(store: &Store) -> Fixture {
    let org = create_org(store, ACTOR, "acme").await.value.id;
    let github = store
        .create_server(
            ACTOR,
            NewServer::new("github", None, http("https://example.com/mcp")),
        )
        .await
        .unwrap()
        .value
        .id;
    let wiki = store
        .create_server(
            ACTOR,
            NewServer::new("wiki", Some(org), http("https://wiki.example.com/mcp")),
        )
        .await
        .unwrap()
        .value
        .id;
    for server in [github, wiki] {
        store
            .create_org_grant(
                ACTOR,
                OrgGrant {
                    org,
                    server,
                    enabled: true,
                    filter: ToolFilter::All,
                },
            )
            .await
            .unwrap();
    }
    Fixture { org, github, wiki }
}

fn grants(
    servers: &[(warden_policy::ServerId, ToolFilter)],
    toolsets: &[warden_policy::ToolsetId],
) -> Scope {
    Scope::Grants(ScopeGrants {
        servers: servers.iter().cloned().collect(),
        toolsets: toolsets.iter().copied().collect(),
    })
}

async fn principals_and_scopes(backend: Backend) {
    let (_db, store) = open(backend).await;
    let f = fixture(&store).await;

    let team = store
        .create_team(
            ACTOR,
            NewTeam {
                org: f.org,
                slug: "eng".into(),
                name: String::new(),
                scope: None,
            },
        )
        .await
        .unwrap()
        .value;
    assert_eq!(team.scope, Scope::Inherit);
    assert_eq!(
        store.get_team_by_slug(f.org, "eng").await.unwrap().unwrap(),
        team
    );

    let toolset = store
        .create_toolset(
            ACTOR,
            NewToolset {
                org: f.org,
                slug: "readers".into(),
                name: String::new(),
                servers: BTreeMap::from([(f.github, ToolFilter::only(["search", "read"]))]),
            },
        )
        .await
        .unwrap()
        .value;
    assert_eq!(
        store
            .get_toolset_by_slug(f.org, "readers")
            .await
            .unwrap()
            .unwrap(),
        toolset
    );

    let agent = store
        .create_agent(
            ACTOR,
            NewAgent {
                org: f.org,
                team: Some(team.id),
                slug: "helper".into(),
                name: String::new(),
                scope: None,
            },
        )
        .await
        .unwrap()
        .value;
    assert_eq!(agent.scope, Scope::empty(), "new agents start empty");

    let mut new_key = NewKey::new(f.org, "ci");
    new_key.team = Some(team.id);
    new_key.agent = Some(agent.id);
    let created = store.create_key(ACTOR, new_key).await.unwrap();
    let key = created.value.key.clone();
    let token = created.value.token.clone();
    assert!(token.expose().starts_with(KEY_TOKEN_PREFIX));
    assert!(token.expose().starts_with(&key.token_prefix));
    assert_eq!(
        store.get_key_by_name(f.org, "ci").await.unwrap().unwrap(),
        key
    );
    // The gateway finds the key by the digest of the presented token.
    let live = store.live().snapshot();
    let principal = live
        .principal(&token_digest(token.expose()), None, None)
        .unwrap();
    assert_eq!(principal.key, key.id);
    assert_eq!(principal.agent, Some(agent.id));

    let user = store
        .create_end_user(
            ACTOR,
            NewEndUser {
                org: f.org,
                external_id: "ada@example.com".into(),
                name: String::new(),
                scope: None,
            },
        )
        .await
        .unwrap()
        .value;
    assert_eq!(
        store
            .get_end_user_by_external_id(f.org, "ada@example.com")
            .await
            .unwrap()
            .unwrap(),
        user
    );

    // Scopes: set, read back, and see them live.
    let team_scope = grants(&[(f.github, ToolFilter::except(["delete"]))], &[]);
    let w = store
        .set_scope(ACTOR, ScopeOwner::Team(team.id), team_scope.clone())
        .await
        .unwrap();
    assert_eq!(store.live().revision(), w.revision);
    assert_eq!(
        store
            .get_scope(ScopeOwner::Team(team.id))
            .await
            .unwrap()
            .unwrap(),
        team_scope
    );
    let agent_scope = grants(&[], &[toolset.id]);
    store
        .set_scope(ACTOR, ScopeOwner::Agent(agent.id), agent_scope.clone())
        .await
        .unwrap();
    assert_eq!(
        store.get_agent(agent.id).await.unwrap().unwrap().scope,
        agent_scope
    );
    store
        .set_scope(
            ACTOR,
            ScopeOwner::Key(key.id),
            grants(&[(f.github, ToolFilter::only(["search"]))], &[]),
        )
        .await
        .unwrap();
    store
        .set_scope(ACTOR, ScopeOwner::Key(key.id), Scope::Inherit)
        .await
        .unwrap();
    assert_eq!(
        store.get_key(key.id).await.unwrap().unwrap().scope,
        Scope::Inherit
    );

    let snapshot = store.live().snapshot();
    let access = snapshot.access(&principal);
    let allowed = |tool: &str| {
        snapshot
            .decide(&access, "github", tool, &AllTools, 0)
            .allowed
    };
    assert!(allowed("search"), "team and agent's toolset admit search");
    assert!(
        !allowed("write"),
        "the agent's toolset does not admit write"
    );

    // Beyond the parent chain: refused with every offense, nothing written.
    let before = store.revision().await.unwrap();
    let too_wide = grants(
        &[(f.github, ToolFilter::All), (f.wiki, ToolFilter::All)],
        &[],
    );
    assert!(store
        .validate_scope(ScopeOwner::Key(key.id), &too_wide)
        .is_err());
    match store
        .set_scope(ACTOR, ScopeOwner::Key(key.id), too_wide)
        .await
    {
        Err(StoreError::ScopeNotAllowed(offenses)) => assert_eq!(offenses.len(), 2, "{offenses:?}"),
        other => panic!("expected ScopeNotAllowed, got {other:?}"),
    }
    assert_eq!(store.revision().await.unwrap(), before);
    assert_eq!(
        store.get_key(key.id).await.unwrap().unwrap().scope,
        Scope::Inherit
    );

    // Key updates and revocation.
    let revoked = store.revoke_key(ACTOR, key.id).await.unwrap();
    assert!(revoked.value.revoked);
    let d = store.live().snapshot().decide(
        &store.live().snapshot().access(&principal),
        "github",
        "search",
        &AllTools,
        0,
    );
    assert_eq!(d.reason.map(|r| r.code()), Some("key_revoked"));
    let expiring = store
        .update_key(
            ACTOR,
            key.id,
            KeyPatch {
                revoked: Some(false),
                expires_at_ms: Some(Some(1_000)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(expiring.value.expires_at_ms, Some(1_000));
    let renamed = store
        .update_team(
            ACTOR,
            team.id,
            TeamPatch {
                name: Some("Engineering".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.value.name, "Engineering");
    assert_eq!(renamed.value.scope, team_scope);
    store
        .update_agent(
            ACTOR,
            agent.id,
            AgentPatch {
                slug: Some("helper-2".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    store
        .update_end_user(
            ACTOR,
            user.id,
            EndUserPatch {
                name: Some("Ada".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    store
        .update_toolset(
            ACTOR,
            toolset.id,
            ToolsetPatch {
                servers: Some(BTreeMap::from([(f.wiki, ToolFilter::All)])),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    assert_eq!(
        store
            .list_teams(f.org, Page::default())
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store.list_keys(f.org, Page::default()).await.unwrap().len(),
        1
    );
    assert_eq!(
        store
            .list_end_users(f.org, Page::default())
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .list_agents(f.org, Page::default())
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .list_toolsets(f.org, Page::default())
            .await
            .unwrap()
            .len(),
        1
    );
    assert_live_matches_db(&store).await;
}

async fn revisions_bump_by_one(backend: Backend) {
    let (_db, store) = open(backend).await;
    let f = fixture(&store).await;
    let mut last = store.revision().await.unwrap();
    for i in 0..5 {
        let w = store
            .update_org_grant(
                ACTOR,
                f.org,
                f.github,
                OrgGrantPatch {
                    enabled: Some(i % 2 == 0),
                    filter: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(w.revision, last + 1);
        assert_eq!(store.live().revision(), w.revision);
        last = w.revision;
    }
    let r = store
        .delete_org_grant(ACTOR, f.org, f.github)
        .await
        .unwrap();
    assert_eq!(r, last + 1);
    assert_live_matches_db(&store).await;
}

/// Counts rows referencing anything, to prove cascades leave nothing behind.
async fn count(store: &Store, rows: &warden_policy::PolicyRows) -> (usize, usize) {
    let scope_entries: usize = rows
        .teams
        .iter()
        .map(|t| &t.scope)
        .chain(rows.keys.iter().map(|k| &k.scope))
        .chain(rows.end_users.iter().map(|u| &u.scope))
        .chain(rows.agents.iter().map(|a| &a.scope))
        .filter_map(Scope::grants)
        .map(|g| g.servers.len() + g.toolsets.len())
        .sum();
    let toolset_entries: usize = rows.toolsets.iter().map(|t| t.servers.len()).sum();
    let _ = store;
    (scope_entries, toolset_entries)
}

async fn cascades(backend: Backend) {
    let (_db, store) = open(backend).await;
    let f = fixture(&store).await;
    let team = store
        .create_team(
            ACTOR,
            NewTeam {
                org: f.org,
                slug: "eng".into(),
                name: String::new(),
                scope: Some(grants(
                    &[(f.github, ToolFilter::All), (f.wiki, ToolFilter::All)],
                    &[],
                )),
            },
        )
        .await
        .unwrap()
        .value;
    let toolset = store
        .create_toolset(
            ACTOR,
            NewToolset {
                org: f.org,
                slug: "gh".into(),
                name: String::new(),
                servers: BTreeMap::from([(f.github, ToolFilter::All), (f.wiki, ToolFilter::All)]),
            },
        )
        .await
        .unwrap()
        .value;
    let agent = store
        .create_agent(
            ACTOR,
            NewAgent {
                org: f.org,
                team: Some(team.id),
                slug: "bot".into(),
                name: String::new(),
                scope: Some(grants(&[(f.github, ToolFilter::All)], &[toolset.id])),
            },
        )
        .await
        .unwrap()
        .value;
    let personal = store
        .create_agent(
            ACTOR,
            NewAgent {
                org: f.org,
                team: None,
                slug: "mine".into(),
                name: String::new(),
                scope: Some(grants(&[], &[toolset.id])),
            },
        )
        .await
        .unwrap()
        .value;
    let mut k = NewKey::new(f.org, "bound");
    k.agent = Some(agent.id);
    let bound_key = store.create_key(ACTOR, k).await.unwrap().value.key;
    let mut k = NewKey::new(f.org, "team-key");
    k.team = Some(team.id);
    k.scope = Some(grants(&[(f.wiki, ToolFilter::All)], &[toolset.id]));
    let team_key = store.create_key(ACTOR, k).await.unwrap().value.key;
    let mut k = NewKey::new(f.org, "personal");
    k.agent = Some(personal.id);
    let personal_key = store.create_key(ACTOR, k).await.unwrap().value.key;
    let user = store
        .create_end_user(
            ACTOR,
            NewEndUser {
                org: f.org,
                external_id: "u1".into(),
                name: String::new(),
                scope: Some(grants(
                    &[(f.github, ToolFilter::All), (f.wiki, ToolFilter::All)],
                    &[toolset.id],
                )),
            },
        )
        .await
        .unwrap()
        .value;

    // Delete the org grant of wiki: every scope/toolset entry for it goes.
    store.delete_org_grant(ACTOR, f.org, f.wiki).await.unwrap();
    let rows = store.load_rows().await.unwrap();
    assert!(Snapshot::build(rows.clone()).is_ok());
    let mentions_wiki = |s: &Scope| s.grants().is_some_and(|g| g.servers.contains_key(&f.wiki));
    assert!(!rows.teams.iter().any(|t| mentions_wiki(&t.scope)));
    assert!(!rows.keys.iter().any(|k| mentions_wiki(&k.scope)));
    assert!(!rows.end_users.iter().any(|u| mentions_wiki(&u.scope)));
    assert!(!rows
        .toolsets
        .iter()
        .any(|t| t.servers.contains_key(&f.wiki)));
    assert_live_matches_db(&store).await;
    // Re-granting starts from nothing: no stale re-grant.
    store
        .create_org_grant(
            ACTOR,
            OrgGrant {
                org: f.org,
                server: f.wiki,
                enabled: true,
                filter: ToolFilter::All,
            },
        )
        .await
        .unwrap();
    assert!(!store
        .get_end_user(user.id)
        .await
        .unwrap()
        .unwrap()
        .scope
        .grants()
        .unwrap()
        .servers
        .contains_key(&f.wiki));

    // Delete the toolset: references in scopes go.
    store.delete_toolset(ACTOR, toolset.id).await.unwrap();
    let rows = store.load_rows().await.unwrap();
    assert!(rows
        .agents
        .iter()
        .all(|a| a.scope.grants().is_none_or(|g| g.toolsets.is_empty())));
    assert!(store
        .get_end_user(user.id)
        .await
        .unwrap()
        .unwrap()
        .scope
        .grants()
        .unwrap()
        .toolsets
        .is_empty());
    assert_live_matches_db(&store).await;

    // Delete the global server: grants and scope entries go.
    store.delete_server(ACTOR, f.github).await.unwrap();
    let rows = store.load_rows().await.unwrap();
    assert!(rows.org_grants.iter().all(|g| g.server != f.github));
    assert_eq!(count(&store, &rows).await, (0, 0));
    assert_live_matches_db(&store).await;

    // Delete the personal agent: its bound key goes, others stay.
    store.delete_agent(ACTOR, personal.id).await.unwrap();
    assert!(store.get_key(personal_key.id).await.unwrap().is_none());
    assert!(store.get_key(team_key.id).await.unwrap().is_some());
    assert_live_matches_db(&store).await;

    // Delete the team: its keys, its agents and keys bound to them go.
    store.delete_team(ACTOR, team.id).await.unwrap();
    assert!(store.get_key(team_key.id).await.unwrap().is_none());
    assert!(store.get_agent(agent.id).await.unwrap().is_none());
    assert!(store.get_key(bound_key.id).await.unwrap().is_none());
    assert!(store.get_end_user(user.id).await.unwrap().is_some());
    assert_live_matches_db(&store).await;

    // Delete the org: everything in it, including its own server.
    store.delete_org(ACTOR, f.org).await.unwrap();
    let rows = store.load_rows().await.unwrap();
    assert!(rows.orgs.is_empty() && rows.servers.is_empty() && rows.org_grants.is_empty());
    assert!(rows.end_users.is_empty() && rows.keys.is_empty() && rows.toolsets.is_empty());
    assert_live_matches_db(&store).await;
}

async fn bad_input_writes_nothing(backend: Backend) {
    let (_db, store) = open(backend).await;
    let f = fixture(&store).await;
    let other = create_org(&store, ACTOR, "other").await.value.id;
    let before = store.revision().await.unwrap();
    let audit_before = store
        .query_audit(&AuditQuery::default())
        .await
        .unwrap()
        .entries
        .len();

    let e = store
        .create_org(
            ACTOR,
            NewOrg {
                slug: "acme".into(),
                name: String::new(),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Duplicate { .. }), "{e}");
    let e = store
        .create_org(
            ACTOR,
            NewOrg {
                slug: "Bad Slug".into(),
                name: String::new(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "bad_slug", "{e}");
    let e = store
        .create_server(
            ACTOR,
            NewServer::new("github", None, http("https://x.example/mcp")),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Duplicate { .. }), "{e}");
    // An org server may not take a global server's slug, and vice versa.
    let e = store
        .create_server(
            ACTOR,
            NewServer::new("github", Some(other), http("https://x.example/mcp")),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Duplicate { .. }), "{e}");
    let e = store
        .create_server(
            ACTOR,
            NewServer::new("wiki", None, http("https://x.example/mcp")),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Duplicate { .. }), "{e}");
    let e = store
        .create_server(ACTOR, NewServer::new("ftp", None, http("ftp://x.example")))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::BadInput(_)), "{e}");
    // Another org's server does not exist for this org.
    let e = store
        .create_org_grant(
            ACTOR,
            OrgGrant {
                org: other,
                server: f.wiki,
                enabled: true,
                filter: ToolFilter::All,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }), "{e}");
    let e = store
        .create_org_grant(
            ACTOR,
            OrgGrant {
                org: f.org,
                server: f.github,
                enabled: true,
                filter: ToolFilter::All,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Duplicate { .. }), "{e}");
    // Dangling references: a scope naming a server the org was not granted,
    // a team of another org, a toolset of another org.
    let e = store
        .create_team(
            ACTOR,
            NewTeam {
                org: other,
                slug: "t".into(),
                name: String::new(),
                scope: Some(grants(&[(f.github, ToolFilter::All)], &[])),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "dangling_reference", "{e}");
    let team = store
        .create_team(
            ACTOR,
            NewTeam {
                org: f.org,
                slug: "eng".into(),
                name: String::new(),
                scope: None,
            },
        )
        .await
        .unwrap()
        .value;
    let before = before.max(store.revision().await.unwrap());
    let audit_before = audit_before + 1;
    let mut k = NewKey::new(other, "k");
    k.team = Some(team.id);
    let e = store.create_key(ACTOR, k).await.unwrap_err();
    assert_eq!(e.code(), "dangling_reference", "{e}");
    let e = store
        .create_team(
            ACTOR,
            NewTeam {
                org: f.org,
                slug: "eng".into(),
                name: String::new(),
                scope: None,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Duplicate { .. }), "{e}");
    let e = store
        .create_toolset(
            ACTOR,
            NewToolset {
                org: other,
                slug: "ts".into(),
                name: String::new(),
                servers: BTreeMap::from([(f.github, ToolFilter::All)]),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "dangling_reference", "{e}");
    let e = store
        .delete_team(ACTOR, warden_policy::TeamId(9_999))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }), "{e}");
    let e = store
        .update_server(
            ACTOR,
            f.github,
            ServerPatch {
                slug: Some("wiki".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Duplicate { .. }), "{e}");

    assert_eq!(
        store.revision().await.unwrap(),
        before,
        "no revision for refused writes"
    );
    assert_eq!(store.live().revision(), before);
    assert_eq!(
        store
            .query_audit(&AuditQuery::default())
            .await
            .unwrap()
            .entries
            .len(),
        audit_before
    );
    assert!(store.get_org_by_slug("bad slug").await.unwrap().is_none());
    assert_live_matches_db(&store).await;
}

on_both_backends!(
    principals_and_scopes,
    revisions_bump_by_one,
    cascades,
    bad_input_writes_nothing
);

fn per_minute(requests: u32, burst: u32) -> Option<warden_policy::Rate> {
    Some(warden_policy::Rate {
        requests,
        per: warden_policy::Window::Minute,
        burst,
    })
}

async fn limits(backend: Backend) {
    use warden_policy::{LimitLevel, PolicyError};
    let (_db, store) = open(backend).await;
    let f = fixture(&store).await;
    let team = store
        .create_team(
            ACTOR,
            NewTeam {
                org: f.org,
                slug: "eng".into(),
                name: String::new(),
                scope: None,
            },
        )
        .await
        .unwrap()
        .value;
    let mut new_key = NewKey::new(f.org, "ci");
    new_key.team = Some(team.id);
    let key = store.create_key(ACTOR, new_key).await.unwrap().value.key;
    let other = create_org(&store, ACTOR, "globex").await.value.id;
    let other_team = store
        .create_team(
            ACTOR,
            NewTeam {
                org: other,
                slug: "eng".into(),
                name: String::new(),
                scope: None,
            },
        )
        .await
        .unwrap()
        .value;

    let new = |level, server, tool: Option<&str>, rate, concurrency| NewLimit {
        org: f.org,
        level,
        server,
        tool: tool.map(str::to_owned),
        rate,
        concurrency,
    };
    let org_wide = store
        .create_limit(
            ACTOR,
            new(LimitLevel::Org, None, None, per_minute(600, 100), None),
        )
        .await
        .unwrap();
    assert_eq!(store.live().revision(), org_wide.revision);
    let org_wide = org_wide.value;
    let on_tool = store
        .create_limit(
            ACTOR,
            new(
                LimitLevel::Team(team.id),
                Some(f.github),
                Some("create_issue"),
                per_minute(60, 10),
                Some(4),
            ),
        )
        .await
        .unwrap()
        .value;
    let on_wiki = store
        .create_limit(
            ACTOR,
            new(LimitLevel::Key(key.id), Some(f.wiki), None, None, Some(2)),
        )
        .await
        .unwrap()
        .value;
    assert_eq!(store.get_limit(on_tool.id).await.unwrap().unwrap(), on_tool);
    assert_eq!(
        store.list_limits(f.org, Page::all()).await.unwrap(),
        vec![org_wide.clone(), on_tool.clone(), on_wiki.clone()]
    );
    assert!(store
        .list_limits(other, Page::all())
        .await
        .unwrap()
        .is_empty());
    assert_live_matches_db(&store).await;

    // The live snapshot answers limits_for with the new rows.
    let live = store.live().snapshot();
    let p = warden_policy::Principal {
        key: key.id,
        end_user: None,
        agent: None,
    };
    let effective = live.limits_for(&p, f.github, "create_issue");
    assert_eq!(effective.applicable.len(), 2);
    assert_eq!(effective.rate.unwrap().limit, on_tool.id);
    assert_eq!(effective.concurrency.unwrap().limit, on_tool.id);

    // Patch: clear the rate, keep the rest.
    let patched = store
        .update_limit(
            ACTOR,
            on_tool.id,
            LimitPatch {
                rate: Some(None),
                ..LimitPatch::default()
            },
        )
        .await
        .unwrap()
        .value;
    assert_eq!(patched.rate, None);
    assert_eq!(patched.concurrency, Some(4));
    assert_eq!(patched.tool.as_deref(), Some("create_issue"));
    assert_live_matches_db(&store).await;
    let audit = store
        .query_audit(&AuditQuery {
            entity_kind: Some("limit".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.entries.len(), 4, "three creates and an update");

    // Bad input writes nothing.
    let before = store.revision().await.unwrap();
    let bad = [
        new(LimitLevel::Org, None, Some("x"), per_minute(1, 1), None),
        new(LimitLevel::Org, None, None, None, None),
        new(LimitLevel::Org, None, None, per_minute(0, 1), None),
        new(LimitLevel::Org, None, None, None, Some(0)),
    ];
    for b in bad {
        let e = store.create_limit(ACTOR, b.clone()).await.unwrap_err();
        assert!(
            matches!(e, StoreError::Invalid(PolicyError::BadLimit { .. })),
            "{b:?}: {e}"
        );
    }
    let dangling = [
        new(LimitLevel::Team(other_team.id), None, None, None, Some(1)),
        new(
            LimitLevel::Key(warden_policy::KeyId(999)),
            None,
            None,
            None,
            Some(1),
        ),
        NewLimit {
            org: other,
            ..new(LimitLevel::Org, Some(f.github), None, None, Some(1))
        },
    ];
    for b in dangling {
        let e = store.create_limit(ACTOR, b.clone()).await.unwrap_err();
        assert!(matches!(e, StoreError::Dangling { .. }), "{b:?}: {e}");
    }
    let e = store
        .update_limit(
            ACTOR,
            org_wide.id,
            LimitPatch {
                tool: Some(Some("x".into())),
                ..LimitPatch::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)), "{e}");
    assert_eq!(store.revision().await.unwrap(), before);

    // Cascades: the grant takes the wiki limit, the team its tool limit.
    store.delete_org_grant(ACTOR, f.org, f.wiki).await.unwrap();
    assert!(store.get_limit(on_wiki.id).await.unwrap().is_none());
    assert_live_matches_db(&store).await;
    store.delete_team(ACTOR, team.id).await.unwrap();
    assert!(store.get_limit(on_tool.id).await.unwrap().is_none());
    assert_live_matches_db(&store).await;
    store.delete_limit(ACTOR, org_wide.id).await.unwrap();
    assert!(store
        .list_limits(f.org, Page::all())
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        store.delete_limit(ACTOR, org_wide.id).await.unwrap_err(),
        StoreError::NotFound { .. }
    ));
    assert_live_matches_db(&store).await;
}

on_both_backends!(limits);
