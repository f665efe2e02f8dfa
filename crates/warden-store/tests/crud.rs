//! CRUD round trips, revisions, cascades and bad input, on SQLite and PostgreSQL.

mod common;

use std::collections::BTreeMap;

use common::{open, Backend};
use warden_policy::{Scope, ScopeGrants, ScopeOwner, Snapshot, ToolFilter};
use warden_store::*;

const ACTOR: &str = "test";

fn http(url: &str) -> Transport {
    Transport::Http { url: url.into() }
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
