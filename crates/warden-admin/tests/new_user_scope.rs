//! `/admin/v1/orgs/{org}/new-user-scope`: an org's default scope for people
//! created on their first identity-provider sign-in, over HTTP against a
//! real store, on SQLite and PostgreSQL.

mod common;

use common::{assert_error, Backend, Harness};
use reqwest::Method;
use serde_json::{json, Value};

const PATH: &str = "/admin/v1/orgs/acme/new-user-scope";

async fn setup(h: &Harness) {
    for org in ["acme", "globex"] {
        h.ok(Method::POST, "/admin/v1/orgs", Some(json!({ "slug": org })))
            .await;
    }
    for server in ["github", "wiki"] {
        h.ok(
            Method::POST,
            "/admin/v1/servers",
            Some(json!({
                "slug": server,
                "transport": { "type": "http", "url": "http://127.0.0.1:9/mcp" },
            })),
        )
        .await;
    }
    h.ok(
        Method::PUT,
        "/admin/v1/orgs/acme/grants/github",
        Some(json!({ "filter": ["read", "search"] })),
    )
    .await;
    h.ok(
        Method::PUT,
        "/admin/v1/orgs/globex/grants/wiki",
        Some(json!({})),
    )
    .await;
    h.ok(
        Method::POST,
        "/admin/v1/orgs/acme/toolsets",
        Some(json!({ "slug": "ro", "servers": { "github": ["read"] } })),
    )
    .await;
}

async fn newest_change(h: &Harness, org: &str) -> Value {
    h.get(&format!(
        "/admin/v1/audit?org={org}&kind=admin_change&limit=1"
    ))
    .await
    .body["items"][0]
        .clone()
}

async fn set_get_validate_and_audit(backend: Backend) {
    let h = Harness::start(backend).await;
    setup(&h).await;

    // Inherit unless set.
    let r = h.get(PATH).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!("inherit"));

    // Beyond the org's grant: 422 listing the offending entry; nothing
    // written.
    let rev = h.store.live().revision();
    let r = h
        .put(PATH, json!({ "servers": { "github": ["read", "delete"] } }))
        .await;
    assert_error(&r, 422, "grants_beyond_parent");
    assert!(
        r.body.to_string().contains("delete"),
        "names the offending tool: {}",
        r.body
    );
    // A server the org is not granted (globex's), and an unknown toolset.
    let r = h.put(PATH, json!({ "servers": { "wiki": "*" } })).await;
    assert!(r.status.is_client_error(), "{:?}", r.body);
    let r = h.put(PATH, json!({ "toolsets": ["nope"] })).await;
    assert!(r.status.is_client_error(), "{:?}", r.body);
    // Malformed.
    let r = h.put(PATH, json!(42)).await;
    assert!(r.status.is_client_error(), "{:?}", r.body);
    assert_eq!(h.store.live().revision(), rev);
    assert_eq!(h.get(PATH).await.body, json!("inherit"));

    // Within it: written, one revision, audited with before and after.
    let wanted = json!({ "servers": { "github": ["read"] }, "toolsets": ["ro"] });
    let r = h.put(PATH, wanted.clone()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.revision(), rev + 1);
    assert_eq!(r.body["item"], wanted);
    assert_eq!(h.get(PATH).await.body, wanted);
    let change = newest_change(&h, "acme").await;
    assert_eq!(change["action"], "set_new_user_scope", "{change}");
    assert_eq!(change["before"], json!("inherit"), "{change}");
    // Another org's default is its own.
    assert_eq!(
        h.get("/admin/v1/orgs/globex/new-user-scope").await.body,
        json!("inherit")
    );

    // Removing the toolset narrows the default (the entry cascades).
    h.ok(Method::DELETE, "/admin/v1/orgs/acme/toolsets/ro", None)
        .await;
    assert_eq!(
        h.get(PATH).await.body,
        json!({ "servers": { "github": ["read"] }, "toolsets": [] })
    );

    // Back to inherit.
    let r = h.put(PATH, json!("inherit")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(h.get(PATH).await.body, json!("inherit"));

    // An unknown org: 404.
    assert_error(
        &h.get("/admin/v1/orgs/nope/new-user-scope").await,
        404,
        "not_found",
    );
}

async fn org_admins_set_only_their_own(backend: Backend) {
    let h = Harness::start(backend).await;
    setup(&h).await;
    let token = h
        .ok(
            Method::POST,
            "/admin/v1/orgs/acme/admin-tokens",
            Some(json!({ "name": "acme-admin" })),
        )
        .await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({ "servers": { "github": ["search"] } });
    let r = h
        .send(Method::PUT, PATH, Some(&token), Some(body.clone()))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let change = newest_change(&h, "acme").await;
    assert_eq!(change["actor"], "admin:acme-admin@org:1", "{change}");
    // Another org does not exist for them: 404, never 403; nothing changes.
    for method in [Method::GET, Method::PUT] {
        let r = h
            .send(
                method.clone(),
                "/admin/v1/orgs/globex/new-user-scope",
                Some(&token),
                (method == Method::PUT).then(|| json!("inherit")),
            )
            .await;
        assert_error(&r, 404, "not_found");
    }
    // Without a token: 401.
    let r = h.send(Method::GET, PATH, None, None).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn set_get_validate_and_audit_sqlite() {
    set_get_validate_and_audit(Backend::Sqlite).await;
}

#[tokio::test]
async fn set_get_validate_and_audit_postgres() {
    set_get_validate_and_audit(Backend::Postgres).await;
}

#[tokio::test]
async fn org_admins_set_only_their_own_sqlite() {
    org_admins_set_only_their_own(Backend::Sqlite).await;
}

#[tokio::test]
async fn org_admins_set_only_their_own_postgres() {
    org_admins_set_only_their_own(Backend::Postgres).await;
}
