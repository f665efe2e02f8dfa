//! The admin API over HTTP against a real store: CRUD, revisions, grants
//! beyond the parent, org admin isolation, secrets, explain/access.
//! The key flows run on SQLite and on PostgreSQL.

mod common;

use common::{assert_error, Backend, Harness, PLATFORM_TOKEN};
use reqwest::Method;
use serde_json::{json, Value};
use warden_policy::{KeyId, Snapshot};
use warden_store::Secret;

async fn setup_org_with_server(h: &Harness, org: &str, server: &str) {
    h.ok(Method::POST, "/admin/v1/orgs", Some(json!({ "slug": org })))
        .await;
    let reply = h.get(&format!("/admin/v1/servers/{server}")).await;
    if reply.status == 404 {
        h.ok(
            Method::POST,
            "/admin/v1/servers",
            Some(json!({
                "slug": server,
                "transport": { "type": "http", "url": "http://127.0.0.1:9/mcp" },
                "secret_headers": { "Authorization": "Bearer upstream-secret-value" },
            })),
        )
        .await;
    }
}

async fn crud_and_revisions(backend: Backend) {
    let h = Harness::start(backend).await;
    let last = std::cell::Cell::new(0u64);
    let bumped = |reply: &Value| {
        let r = reply["revision"]
            .as_u64()
            .unwrap_or_else(|| panic!("no revision: {reply}"));
        assert!(r > last.get(), "revision {r} after {}: {reply}", last.get());
        last.set(r);
    };

    let org = h
        .ok(
            Method::POST,
            "/admin/v1/orgs",
            Some(json!({ "slug": "acme", "name": "Acme" })),
        )
        .await;
    bumped(&org);
    assert_eq!(
        org["item"],
        json!({ "slug": "acme", "name": "Acme", "suspended": false })
    );

    // A global server: the secret header's value is write-only.
    let server = h
        .post(
            "/admin/v1/servers",
            json!({
                "slug": "github",
                "transport": { "type": "http", "url": "https://example.com/mcp" },
                "secret_headers": { "Authorization": "Bearer upstream-secret-value" },
            }),
        )
        .await;
    assert_eq!(server.status, 201, "{}", server.body);
    bumped(&server.body);
    assert_eq!(
        server.body["item"]["secret_header_names"],
        json!(["Authorization"])
    );
    for path in ["/admin/v1/servers", "/admin/v1/servers/github"] {
        let text = h.get(path).await.body.to_string();
        assert!(
            !text.contains("upstream-secret-value"),
            "{path} leaks a secret: {text}"
        );
        assert!(text.contains("Authorization"), "{text}");
    }

    // An org-owned server.
    let own = h
        .post(
            "/admin/v1/orgs/acme/servers",
            json!({ "slug": "files", "transport": { "type": "stdio", "command": "mcp-files", "args": ["/srv"] } }),
        )
        .await;
    assert_eq!(own.status, 201, "{}", own.body);
    bumped(&own.body);
    assert_eq!(own.body["item"]["owner_org"], "acme");

    let grant = h
        .ok(
            Method::PUT,
            "/admin/v1/orgs/acme/grants/github",
            Some(json!({ "filter": ["search", "read"] })),
        )
        .await;
    bumped(&grant);
    assert_eq!(
        grant["item"],
        json!({ "server": "github", "enabled": true, "filter": ["read", "search"] })
    );
    bumped(
        &h.ok(
            Method::PUT,
            "/admin/v1/orgs/acme/grants/files",
            Some(json!({})),
        )
        .await,
    );
    let disabled = h
        .ok(
            Method::PATCH,
            "/admin/v1/orgs/acme/grants/github",
            Some(json!({ "enabled": false })),
        )
        .await;
    bumped(&disabled);
    assert_eq!(disabled["item"]["enabled"], false);
    bumped(
        &h.ok(
            Method::PATCH,
            "/admin/v1/orgs/acme/grants/github",
            Some(json!({ "enabled": true })),
        )
        .await,
    );
    let grants = h.get("/admin/v1/orgs/acme/grants").await.body;
    assert_eq!(grants["items"].as_array().unwrap().len(), 2, "{grants}");

    let toolset = h
        .ok(
            Method::POST,
            "/admin/v1/orgs/acme/toolsets",
            Some(json!({ "slug": "readers", "servers": { "github": ["read"] } })),
        )
        .await;
    bumped(&toolset);
    assert_eq!(toolset["item"]["servers"], json!({ "github": ["read"] }));

    let team = h
        .ok(
            Method::POST,
            "/admin/v1/orgs/acme/teams",
            Some(json!({ "slug": "support" })),
        )
        .await;
    bumped(&team);
    assert_eq!(team["item"]["scope"], "inherit", "teams start with inherit");

    let agent = h
        .ok(
            Method::POST,
            "/admin/v1/orgs/acme/agents",
            Some(json!({ "slug": "helper", "team": "support" })),
        )
        .await;
    bumped(&agent);
    assert_eq!(
        agent["item"]["scope"],
        json!({ "servers": {}, "toolsets": [] }),
        "new agents start empty"
    );
    assert_eq!(agent["item"]["team"], "support");

    let user = h
        .ok(
            Method::POST,
            "/admin/v1/orgs/acme/end-users",
            Some(json!({ "external_id": "ann@example.com" })),
        )
        .await;
    bumped(&user);
    assert_eq!(user["item"]["scope"], "inherit");
    assert_eq!(
        h.get("/admin/v1/orgs/acme/end-users/ann%40example.com")
            .await
            .status,
        200
    );

    // Keys: the secret appears once, at creation.
    let key = h
        .post(
            "/admin/v1/orgs/acme/keys",
            json!({ "name": "ci", "team": "support", "expires_at": "2030-01-01T00:00:00Z", "may_assert_end_user": true }),
        )
        .await;
    assert_eq!(key.status, 201, "{}", key.body);
    bumped(&key.body);
    let secret = key.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("wdn_"), "{secret}");
    let key_id = key.body["item"]["id"].as_i64().unwrap();
    assert_eq!(key.body["item"]["expires_at"], "2030-01-01T00:00:00Z");
    assert_eq!(key.body["item"]["team"], "support");
    for path in [
        format!("/admin/v1/orgs/acme/keys/{key_id}"),
        "/admin/v1/orgs/acme/keys".to_owned(),
    ] {
        let text = h.get(&path).await.body.to_string();
        assert!(!text.contains(&secret), "{path} shows the secret again");
    }

    // Scopes of every owner kind.
    let scoped = h
        .ok(
            Method::PUT,
            "/admin/v1/orgs/acme/teams/support/scope",
            Some(json!({ "servers": { "github": ["search", "read"] } })),
        )
        .await;
    bumped(&scoped);
    assert_eq!(
        scoped["item"],
        json!({ "servers": { "github": ["read", "search"] }, "toolsets": [] })
    );
    bumped(
        &h.ok(
            Method::PUT,
            "/admin/v1/orgs/acme/agents/helper/scope",
            Some(json!({ "toolsets": ["readers"] })),
        )
        .await,
    );
    bumped(
        &h.ok(
            Method::PUT,
            &format!("/admin/v1/orgs/acme/keys/{key_id}/scope"),
            Some(json!({ "servers": { "github": ["search"] } })),
        )
        .await,
    );
    bumped(
        &h.ok(
            Method::PUT,
            "/admin/v1/orgs/acme/end-users/ann%40example.com/scope",
            Some(json!("inherit")),
        )
        .await,
    );
    assert_eq!(
        h.get("/admin/v1/orgs/acme/agents/helper/scope").await.body,
        json!({ "servers": {}, "toolsets": ["readers"] })
    );

    // The write is live before the response: the snapshot is at its revision.
    assert_eq!(h.store.live().revision(), last.get());

    // Revoke, then delete; deleting the grant removes every reference to it.
    let revoked = h
        .ok(
            Method::POST,
            &format!("/admin/v1/orgs/acme/keys/{key_id}/revoke"),
            None,
        )
        .await;
    bumped(&revoked);
    assert_eq!(revoked["item"]["revoked"], true);
    bumped(
        &h.ok(Method::DELETE, "/admin/v1/orgs/acme/grants/github", None)
            .await,
    );
    assert_eq!(
        h.get("/admin/v1/orgs/acme/teams/support/scope").await.body,
        json!({ "servers": {}, "toolsets": [] })
    );
    assert_eq!(
        h.get("/admin/v1/orgs/acme/toolsets/readers").await.body["servers"],
        json!({})
    );
    bumped(
        &h.ok(Method::DELETE, "/admin/v1/orgs/acme/teams/support", None)
            .await,
    );
    assert_eq!(
        h.get("/admin/v1/orgs/acme/agents/helper").await.status,
        404,
        "team delete cascades to its agents"
    );
    assert_eq!(
        h.get(&format!("/admin/v1/orgs/acme/keys/{key_id}"))
            .await
            .status,
        404,
        "and its keys"
    );
    let suspended = h
        .ok(
            Method::PATCH,
            "/admin/v1/orgs/acme",
            Some(json!({ "suspended": true })),
        )
        .await;
    bumped(&suspended);
    assert_eq!(suspended["item"]["suspended"], true);
    bumped(&h.ok(Method::DELETE, "/admin/v1/servers/github", None).await);
    bumped(&h.ok(Method::DELETE, "/admin/v1/orgs/acme", None).await);
    assert_eq!(h.get("/admin/v1/orgs/acme").await.status, 404);
    assert_eq!(h.get("/admin/v1/orgs").await.body["items"], json!([]));
}

#[tokio::test]
async fn crud_and_revisions_sqlite() {
    crud_and_revisions(Backend::Sqlite).await;
}

#[tokio::test]
async fn crud_and_revisions_postgres() {
    crud_and_revisions(Backend::Postgres).await;
}

async fn grants_beyond_the_parent_are_refused(backend: Backend) {
    let h = Harness::start(backend).await;
    setup_org_with_server(&h, "acme", "github").await;
    h.ok(
        Method::PUT,
        "/admin/v1/orgs/acme/grants/github",
        Some(json!({ "filter": ["a", "b"] })),
    )
    .await;
    h.ok(
        Method::POST,
        "/admin/v1/orgs/acme/teams",
        Some(json!({ "slug": "ops" })),
    )
    .await;
    let before = h.store.live().revision();

    let refused = h
        .put(
            "/admin/v1/orgs/acme/teams/ops/scope",
            json!({ "servers": { "github": ["a", "c"] } }),
        )
        .await;
    assert_error(&refused, 422, "grants_beyond_parent");
    let offenses = refused.body["error"]["details"]["offenses"]
        .as_array()
        .unwrap();
    assert_eq!(offenses.len(), 1, "{}", refused.body);
    assert_eq!(offenses[0]["code"], "tools_not_allowed");
    assert_eq!(offenses[0]["server"], "github");
    assert_eq!(offenses[0]["tools"], json!(["c"]));
    assert_eq!(h.store.live().revision(), before, "nothing written");
    assert_eq!(
        h.get("/admin/v1/orgs/acme/teams/ops/scope").await.body,
        "inherit"
    );

    // An open-ended filter inside an only-these grant; and a toolset beyond.
    h.ok(
        Method::PUT,
        "/admin/v1/orgs/acme/teams/ops/scope",
        Some(json!({ "servers": { "github": ["a"] } })),
    )
    .await;
    let key = h
        .ok(
            Method::POST,
            "/admin/v1/orgs/acme/keys",
            Some(json!({ "name": "k", "team": "ops" })),
        )
        .await;
    let key_id = key["item"]["id"].as_i64().unwrap();
    h.ok(
        Method::POST,
        "/admin/v1/orgs/acme/toolsets",
        Some(json!({ "slug": "ab", "servers": { "github": ["a", "b"] } })),
    )
    .await;
    let refused = h
        .put(
            &format!("/admin/v1/orgs/acme/keys/{key_id}/scope"),
            json!({ "servers": { "github": "*" }, "toolsets": ["ab"] }),
        )
        .await;
    assert_error(&refused, 422, "grants_beyond_parent");
    let offenses = refused.body["error"]["details"]["offenses"]
        .as_array()
        .unwrap();
    assert_eq!(
        offenses.len(),
        2,
        "every offending entry is listed: {}",
        refused.body
    );
    assert!(
        offenses.iter().any(|o| o["toolset"] == "ab"),
        "{}",
        refused.body
    );

    // A toolset beyond the org's grant.
    let refused = h
        .post(
            "/admin/v1/orgs/acme/toolsets",
            json!({ "slug": "wide", "servers": { "github": { "except": ["z"] } } }),
        )
        .await;
    assert_error(&refused, 422, "grants_beyond_parent");

    // The picker offers exactly the parent chain's allowance.
    let options = h
        .get(&format!("/admin/v1/orgs/acme/keys/{key_id}/scope/options"))
        .await
        .body;
    assert_eq!(
        options["servers"],
        json!([{ "server": "github", "filter": ["a"], "tools": null }]),
        "{options}"
    );
    assert_eq!(
        options["toolsets"],
        json!([]),
        "toolset ab goes beyond the team: {options}"
    );
    let options = h
        .get("/admin/v1/orgs/acme/teams/ops/scope/options")
        .await
        .body;
    assert_eq!(options["servers"][0]["filter"], json!(["a", "b"]));
    assert_eq!(options["toolsets"], json!(["ab"]));
    // And what it offers is accepted.
    h.ok(
        Method::PUT,
        &format!("/admin/v1/orgs/acme/keys/{key_id}/scope"),
        Some(json!({ "servers": { "github": ["a"] } })),
    )
    .await;

    // A toolset's picker is the org's grants.
    let options = h.get("/admin/v1/orgs/acme/toolsets/ab/options").await.body;
    assert_eq!(
        options["servers"],
        json!([{ "server": "github", "filter": ["a", "b"], "tools": null }]),
        "{options}"
    );

    // Disabling the grant at org level leaves nothing to offer.
    h.ok(
        Method::PATCH,
        "/admin/v1/orgs/acme/grants/github",
        Some(json!({ "enabled": false })),
    )
    .await;
    let options = h
        .get("/admin/v1/orgs/acme/teams/ops/scope/options")
        .await
        .body;
    assert_eq!(options["servers"], json!([]));
}

#[tokio::test]
async fn grants_beyond_the_parent_are_refused_sqlite() {
    grants_beyond_the_parent_are_refused(Backend::Sqlite).await;
}

#[tokio::test]
async fn grants_beyond_the_parent_are_refused_postgres() {
    grants_beyond_the_parent_are_refused(Backend::Postgres).await;
}

async fn org_admins_see_only_their_org(backend: Backend) {
    let h = Harness::start(backend).await;
    setup_org_with_server(&h, "acme", "github").await;
    setup_org_with_server(&h, "globex", "github").await;
    h.ok(
        Method::PUT,
        "/admin/v1/orgs/acme/grants/github",
        Some(json!({ "filter": ["a", "b"] })),
    )
    .await;
    h.ok(
        Method::PUT,
        "/admin/v1/orgs/globex/grants/github",
        Some(json!({})),
    )
    .await;
    h.ok(
        Method::POST,
        "/admin/v1/orgs/globex/teams",
        Some(json!({ "slug": "secret-team" })),
    )
    .await;
    h.ok(
        Method::POST,
        "/admin/v1/orgs/globex/servers",
        Some(json!({ "slug": "private", "transport": { "type": "http", "url": "http://127.0.0.1:9/x" } })),
    )
    .await;
    let globex_key = h
        .ok(
            Method::POST,
            "/admin/v1/orgs/globex/keys",
            Some(json!({ "name": "g" })),
        )
        .await;
    let globex_key = globex_key["item"]["id"].as_i64().unwrap();

    let token = h
        .ok(
            Method::POST,
            "/admin/v1/orgs/acme/admin-tokens",
            Some(json!({ "name": "acme-admin" })),
        )
        .await;
    let token = token["secret"].as_str().unwrap().to_owned();
    let as_acme = |method: Method, path: &str, body: Option<Value>| {
        let (h, token, path) = (&h, token.clone(), path.to_owned());
        async move { h.send(method, &path, Some(&token), body).await }
    };

    let me = as_acme(Method::GET, "/admin/v1/whoami", None).await;
    assert_eq!(
        me.body,
        json!({ "name": "acme-admin", "role": "org", "org": "acme" })
    );
    let orgs = as_acme(Method::GET, "/admin/v1/orgs", None).await;
    assert_eq!(
        orgs.body["items"],
        json!([{ "slug": "acme", "name": "acme", "suspended": false }])
    );

    // Another org's objects do not exist: 404, never 403.
    for path in [
        "/admin/v1/orgs/globex".to_owned(),
        "/admin/v1/orgs/globex/teams".to_owned(),
        "/admin/v1/orgs/globex/teams/secret-team".to_owned(),
        "/admin/v1/orgs/globex/grants/github".to_owned(),
        "/admin/v1/orgs/globex/servers/private".to_owned(),
        format!("/admin/v1/orgs/globex/keys/{globex_key}"),
        format!("/admin/v1/orgs/acme/keys/{globex_key}"),
        "/admin/v1/orgs/acme/servers/private".to_owned(),
        "/admin/v1/orgs/acme/grants/private".to_owned(),
        "/admin/v1/orgs/nonexistent".to_owned(),
    ] {
        let reply = as_acme(Method::GET, &path, None).await;
        assert_error(&reply, 404, "not_found");
    }
    let reply = as_acme(
        Method::POST,
        "/admin/v1/orgs/globex/teams",
        Some(json!({ "slug": "x" })),
    )
    .await;
    assert_error(&reply, 404, "not_found");
    let reply = as_acme(
        Method::DELETE,
        "/admin/v1/orgs/globex/teams/secret-team",
        None,
    )
    .await;
    assert_error(&reply, 404, "not_found");
    // Another org's server cannot be referenced from a scope either.
    as_acme(
        Method::POST,
        "/admin/v1/orgs/acme/teams",
        Some(json!({ "slug": "t" })),
    )
    .await;
    let reply = as_acme(
        Method::PUT,
        "/admin/v1/orgs/acme/teams/t/scope",
        Some(json!({ "servers": { "private": "*" } })),
    )
    .await;
    assert_error(&reply, 422, "invalid_value");

    // Platform-only operations.
    assert_error(
        &as_acme(
            Method::POST,
            "/admin/v1/orgs",
            Some(json!({ "slug": "mine" })),
        )
        .await,
        403,
        "platform_admin_required",
    );
    assert_error(
        &as_acme(Method::GET, "/admin/v1/servers", None).await,
        403,
        "platform_admin_required",
    );
    assert_error(
        &as_acme(
            Method::PUT,
            "/admin/v1/orgs/acme/grants/github",
            Some(json!({ "filter": "*" })),
        )
        .await,
        403,
        "platform_admin_required",
    );
    assert_error(
        &as_acme(
            Method::POST,
            "/admin/v1/orgs/acme/admin-tokens",
            Some(json!({ "name": "more" })),
        )
        .await,
        403,
        "platform_admin_required",
    );

    assert_error(
        &as_acme(
            Method::PATCH,
            "/admin/v1/orgs/acme",
            Some(json!({ "suspended": true })),
        )
        .await,
        403,
        "platform_admin_required",
    );

    // What the org may do: its own switch, narrowing, its own objects.
    let renamed = as_acme(
        Method::PATCH,
        "/admin/v1/orgs/acme",
        Some(json!({ "name": "Acme Inc" })),
    )
    .await;
    assert_eq!(renamed.body["item"]["name"], "Acme Inc", "{}", renamed.body);
    let off = as_acme(
        Method::PATCH,
        "/admin/v1/orgs/acme/grants/github",
        Some(json!({ "enabled": false })),
    )
    .await;
    assert_eq!(off.status, 200, "{}", off.body);
    let narrowed = as_acme(
        Method::PATCH,
        "/admin/v1/orgs/acme/grants/github",
        Some(json!({ "filter": ["a"] })),
    )
    .await;
    assert_eq!(narrowed.status, 200, "{}", narrowed.body);
    let widened = as_acme(
        Method::PATCH,
        "/admin/v1/orgs/acme/grants/github",
        Some(json!({ "filter": ["a", "b"] })),
    )
    .await;
    assert_error(&widened, 403, "platform_admin_required");
    let own = as_acme(
        Method::POST,
        "/admin/v1/orgs/acme/servers",
        Some(json!({ "slug": "own", "transport": { "type": "http", "url": "http://192.0.2.10:9/own" } })),
    )
    .await;
    assert_eq!(own.status, 201, "{}", own.body);
    let granted = as_acme(
        Method::PUT,
        "/admin/v1/orgs/acme/grants/own",
        Some(json!({ "filter": "*" })),
    )
    .await;
    assert_eq!(granted.status, 200, "{}", granted.body);
    let key = as_acme(
        Method::POST,
        "/admin/v1/orgs/acme/keys",
        Some(json!({ "name": "mine" })),
    )
    .await;
    assert_eq!(key.status, 201, "{}", key.body);

    // Audit entries carry the org admin as actor and are confined to the org.
    let audit = as_acme(Method::GET, "/admin/v1/audit?limit=500", None).await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    let items = audit.body["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(items.iter().all(|e| e["org"] == "acme"), "{}", audit.body);
    assert!(
        items
            .iter()
            .any(|e| e["actor"].as_str().unwrap_or("").contains("acme-admin")),
        "{}",
        audit.body
    );

    // A revoked org admin token no longer works.
    let tokens = h.get("/admin/v1/orgs/acme/admin-tokens").await.body;
    let id = tokens["items"][0]["id"].as_i64().unwrap();
    assert!(!tokens.to_string().contains(&token), "token secret listed");
    h.ok(
        Method::DELETE,
        &format!("/admin/v1/orgs/acme/admin-tokens/{id}"),
        None,
    )
    .await;
    assert_error(
        &as_acme(Method::GET, "/admin/v1/whoami", None).await,
        401,
        "unauthorized",
    );
}

#[tokio::test]
async fn org_admins_see_only_their_org_sqlite() {
    org_admins_see_only_their_org(Backend::Sqlite).await;
}

#[tokio::test]
async fn org_admins_see_only_their_org_postgres() {
    org_admins_see_only_their_org(Backend::Postgres).await;
}

#[tokio::test]
async fn bad_input_answers_4xx_with_a_json_error_and_writes_nothing() {
    let h = Harness::start(Backend::Sqlite).await;
    setup_org_with_server(&h, "acme", "github").await;
    let before = h.store.live().revision();

    // Authentication.
    let reply = h.send(Method::GET, "/admin/v1/orgs", None, None).await;
    assert_error(&reply, 401, "unauthorized");
    assert_eq!(
        reply.headers["www-authenticate"],
        "Bearer realm=\"warden-admin\""
    );
    let reply = h
        .send(Method::GET, "/admin/v1/orgs", Some("wrong-token"), None)
        .await;
    assert_error(&reply, 401, "unauthorized");

    // Bodies.
    let reply = h
        .send_raw(
            Method::POST,
            "/admin/v1/orgs",
            "application/json",
            b"{\"slug\": ".to_vec(),
        )
        .await;
    assert_error(&reply, 400, "malformed_json");
    let reply = h
        .send_raw(Method::POST, "/admin/v1/orgs", "text/plain", b"{}".to_vec())
        .await;
    assert_error(&reply, 415, "unsupported_media_type");
    let reply = h
        .post("/admin/v1/orgs", json!({ "slug": "x", "colour": "red" }))
        .await;
    assert_error(&reply, 422, "invalid_body");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{}",
        reply.body
    );
    let reply = h.post("/admin/v1/orgs", json!({ "slug": 42 })).await;
    assert_error(&reply, 422, "invalid_body");
    let reply = h
        .put(
            "/admin/v1/orgs/acme/grants/github",
            json!({ "filter": "all" }),
        )
        .await;
    assert_error(&reply, 422, "invalid_body");
    let reply = h
        .put(
            "/admin/v1/orgs/acme/grants/github",
            json!({ "filter": { "only": ["a"] } }),
        )
        .await;
    assert_error(&reply, 422, "invalid_body");
    let reply = h
        .post(
            "/admin/v1/orgs/acme/teams",
            json!({ "slug": "t", "scope": "everything" }),
        )
        .await;
    assert_error(&reply, 422, "invalid_body");
    let big = format!("{{\"slug\": \"{}\"}}", "a".repeat(2 * 1024 * 1024));
    let reply = h
        .send_raw(
            Method::POST,
            "/admin/v1/orgs",
            "application/json",
            big.into_bytes(),
        )
        .await;
    assert_error(&reply, 413, "body_too_large");

    // Values.
    for slug in ["Acme", "a_b", "-a", "", "a--b"] {
        let reply = h.post("/admin/v1/orgs", json!({ "slug": slug })).await;
        assert_error(&reply, 422, "bad_slug");
    }
    let reply = h.post("/admin/v1/orgs", json!({ "slug": "acme" })).await;
    assert_error(&reply, 409, "duplicate");
    let reply = h
        .post("/admin/v1/servers", json!({ "slug": "github", "transport": { "type": "http", "url": "http://127.0.0.1:9/x" } }))
        .await;
    assert_error(&reply, 409, "duplicate");
    let reply = h
        .post(
            "/admin/v1/servers",
            json!({ "slug": "bad-url", "transport": { "type": "http", "url": "ftp://x" } }),
        )
        .await;
    assert_error(&reply, 422, "invalid_value");
    let reply = h
        .post(
            "/admin/v1/servers",
            json!({ "slug": "bad-type", "transport": { "type": "carrier-pigeon" } }),
        )
        .await;
    assert_error(&reply, 422, "invalid_body");
    let reply = h
        .post(
            "/admin/v1/orgs/acme/keys",
            json!({ "name": "k", "expires_at": "next tuesday" }),
        )
        .await;
    assert_error(&reply, 422, "invalid_value");
    let reply = h
        .post(
            "/admin/v1/orgs/acme/keys",
            json!({ "name": "k", "team": "no-such-team" }),
        )
        .await;
    assert_error(&reply, 422, "invalid_value");
    let reply = h
        .put("/admin/v1/orgs/acme/grants/no-such-server", json!({}))
        .await;
    assert_error(&reply, 404, "not_found");

    // Paths and queries.
    assert_error(
        &h.get("/admin/v1/orgs/acme/keys/not-a-number").await,
        400,
        "bad_path",
    );
    assert_error(&h.get("/admin/v1/no-such-route").await, 404, "not_found");
    assert_error(
        &h.get("/admin/v1/orgs/acme/explain?key=x&server=a&tool=b")
            .await,
        400,
        "bad_query",
    );
    assert_error(
        &h.patch("/admin/v1/orgs/acme/grants/github?wait=maybe", json!({}))
            .await,
        400,
        "bad_query",
    );

    assert_eq!(
        h.store.live().revision(),
        before,
        "no failed request wrote anything"
    );
    assert_eq!(
        h.get("/admin/v1/orgs").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn openapi_document_is_served_and_complete() {
    let h = Harness::start(Backend::Sqlite).await;
    let reply = h
        .send(Method::GET, "/admin/v1/openapi.json", None, None)
        .await;
    assert_eq!(reply.status, 200);
    let doc = reply.body;
    assert_eq!(doc["openapi"].as_str().unwrap().chars().next(), Some('3'));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/admin/v1/orgs",
        "/admin/v1/servers/{server}",
        "/admin/v1/orgs/{org}/grants/{server}",
        "/admin/v1/orgs/{org}/keys/{id}/access",
        "/admin/v1/orgs/{org}/teams/{team}/scope/options",
        "/admin/v1/orgs/{org}/explain",
        "/admin/v1/orgs/{org}/limits",
        "/admin/v1/orgs/{org}/limits/{id}",
        "/admin/v1/audit",
        "/admin/v1/replicas",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI document"
        );
    }
    // Every $ref resolves to a component schema.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let text = doc.to_string();
    for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "dangling $ref to {name}");
    }
}

#[tokio::test]
async fn explain_and_access_agree_with_the_engine() {
    let h = Harness::start(Backend::Sqlite).await;
    setup_org_with_server(&h, "acme", "github").await;
    let github = h.server_id(None, "github");
    h.catalog.set(github, &["search", "read", "delete"]);
    h.ok(
        Method::PUT,
        "/admin/v1/orgs/acme/grants/github",
        Some(json!({ "filter": { "except": ["delete"] } })),
    )
    .await;
    h.ok(
        Method::POST,
        "/admin/v1/orgs/acme/teams",
        Some(json!({ "slug": "ops", "scope": { "servers": { "github": ["search", "read"] } } })),
    )
    .await;
    h.ok(
        Method::POST,
        "/admin/v1/orgs/acme/agents",
        Some(json!({ "slug": "bot", "scope": { "servers": { "github": ["search"] } } })),
    )
    .await;
    h.ok(
        Method::POST,
        "/admin/v1/orgs/acme/end-users",
        Some(json!({ "external_id": "ann" })),
    )
    .await;
    let key = h
        .ok(Method::POST, "/admin/v1/orgs/acme/keys", Some(json!({ "name": "svc", "team": "ops", "may_assert_end_user": true, "may_assert_agent": true })))
        .await;
    let key_id = key["item"]["id"].as_i64().unwrap();

    let snapshot: std::sync::Arc<Snapshot> = h.store.live().snapshot();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for (agent, end_user) in [
        (None, None),
        (Some("bot"), None),
        (Some("bot"), Some("ann")),
        (None, Some("ann")),
    ] {
        let principal = snapshot
            .principal_for_key(KeyId(key_id), end_user, agent)
            .unwrap();
        let access = snapshot.access(&principal);
        for tool in ["search", "read", "delete", "nope", "Search"] {
            let mut path =
                format!("/admin/v1/orgs/acme/explain?key={key_id}&server=github&tool={tool}");
            if let Some(a) = agent {
                path.push_str(&format!("&agent={a}"));
            }
            if let Some(u) = end_user {
                path.push_str(&format!("&end_user={u}"));
            }
            let explained = h.get(&path).await;
            assert_eq!(explained.status, 200, "{}", explained.body);
            let engine = snapshot.decide(&access, "github", tool, h.catalog.as_ref(), now);
            assert_eq!(explained.body["allowed"], engine.allowed, "{path}");
            assert_eq!(
                explained.body["reason"],
                json!(engine.reason.map(|r| r.code())),
                "{path}"
            );
            assert_eq!(
                explained.body["trace"],
                serde_json::to_value(engine.trace).unwrap(),
                "{path}"
            );
            assert_eq!(explained.body["revision"], snapshot.revision());
        }
        let mut path = format!("/admin/v1/orgs/acme/keys/{key_id}/access?");
        if let Some(a) = agent {
            path.push_str(&format!("agent={a}&"));
        }
        if let Some(u) = end_user {
            path.push_str(&format!("end_user={u}"));
        }
        let reply = h.get(&path).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let servers = reply.body["servers"].as_array().unwrap();
        let engine: Vec<_> = access.usable_servers(now).collect();
        assert_eq!(servers.len(), engine.len());
        for (server, filter) in engine {
            let shown = servers
                .iter()
                .find(|s| s["server"] == server.slug.as_str())
                .unwrap();
            assert_eq!(shown["filter"], serde_json::to_value(filter).unwrap());
            let mut tools: Vec<String> = ["search", "read", "delete"]
                .iter()
                .filter(|t| filter.admits(t))
                .map(|t| t.to_string())
                .collect();
            tools.sort();
            assert_eq!(shown["tools"], json!(tools));
        }
    }
    let with_agent = h
        .get(&format!(
            "/admin/v1/orgs/acme/explain?key={key_id}&server=github&tool=read&agent=bot"
        ))
        .await;
    assert_eq!(with_agent.body["reason"], "not_granted_by_agent");

    // The picker lists the catalog's tools within the allowance.
    let options = h
        .get("/admin/v1/orgs/acme/teams/ops/scope/options")
        .await
        .body;
    assert_eq!(
        options["servers"][0]["tools"],
        json!(["read", "search"]),
        "{options}"
    );
    let options = h
        .get(&format!("/admin/v1/orgs/acme/keys/{key_id}/scope/options"))
        .await
        .body;
    assert_eq!(
        options["servers"][0]["filter"],
        json!(["read", "search"]),
        "narrowed by the team: {options}"
    );

    // Expiry: in the past the key is refused, removing it restores access.
    h.ok(
        Method::PATCH,
        &format!("/admin/v1/orgs/acme/keys/{key_id}"),
        Some(json!({ "expires_at": "2001-01-01T00:00:00Z" })),
    )
    .await;
    let expired = h
        .get(&format!(
            "/admin/v1/orgs/acme/explain?key={key_id}&server=github&tool=search"
        ))
        .await;
    assert_eq!(expired.body["reason"], "key_expired", "{}", expired.body);
    let cleared = h
        .ok(
            Method::PATCH,
            &format!("/admin/v1/orgs/acme/keys/{key_id}"),
            Some(json!({ "expires_at": null })),
        )
        .await;
    assert_eq!(cleared["item"]["expires_at"], Value::Null);
    let allowed = h
        .get(&format!(
            "/admin/v1/orgs/acme/explain?key={key_id}&server=github&tool=search"
        ))
        .await;
    assert_eq!(allowed.body["allowed"], true, "{}", allowed.body);

    // Assertions the key may not make are refused with the engine's code.
    let plain = h
        .ok(
            Method::POST,
            "/admin/v1/orgs/acme/keys",
            Some(json!({ "name": "plain" })),
        )
        .await;
    let plain = plain["item"]["id"].as_i64().unwrap();
    let reply = h
        .get(&format!(
            "/admin/v1/orgs/acme/keys/{plain}/access?end_user=ann"
        ))
        .await;
    assert_error(&reply, 422, "end_user_assertion_not_allowed");

    // A revoked key: explain says so, access is empty with the reason.
    h.ok(
        Method::POST,
        &format!("/admin/v1/orgs/acme/keys/{key_id}/revoke"),
        None,
    )
    .await;
    let reply = h
        .get(&format!(
            "/admin/v1/orgs/acme/explain?key={key_id}&server=github&tool=search"
        ))
        .await;
    assert_eq!(reply.body["reason"], "key_revoked");
    let reply = h
        .get(&format!("/admin/v1/orgs/acme/keys/{key_id}/access"))
        .await;
    assert_eq!(reply.body["principal_denial"], "key_revoked");
    assert_eq!(reply.body["servers"], json!([]));
}

#[tokio::test]
async fn platform_token_is_required_for_platform_scope() {
    let h = Harness::start(Backend::Sqlite).await;
    let me = h
        .send(Method::GET, "/admin/v1/whoami", Some(PLATFORM_TOKEN), None)
        .await;
    assert_eq!(me.body["role"], "platform");
}

#[tokio::test]
async fn long_lists_are_paginated() {
    let h = Harness::start(Backend::Sqlite).await;
    h.ok(
        Method::POST,
        "/admin/v1/orgs",
        Some(json!({ "slug": "acme" })),
    )
    .await;
    for i in 0..5 {
        h.ok(
            Method::POST,
            "/admin/v1/orgs/acme/keys",
            Some(json!({ "name": format!("k{i}") })),
        )
        .await;
    }
    let mut names = Vec::new();
    let mut path = "/admin/v1/orgs/acme/keys?limit=2".to_owned();
    loop {
        let page = h.get(&path).await.body;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2, "{page}");
        names.extend(items.iter().map(|k| k["name"].as_str().unwrap().to_owned()));
        match page["next_after"].as_i64() {
            Some(after) => path = format!("/admin/v1/orgs/acme/keys?limit=2&after={after}"),
            None => break,
        }
    }
    assert_eq!(names, ["k0", "k1", "k2", "k3", "k4"]);
    assert!(h
        .get("/admin/v1/orgs/acme/keys")
        .await
        .body
        .get("next_after")
        .is_none());
    assert_error(
        &h.get("/admin/v1/orgs/acme/keys?limit=0").await,
        400,
        "bad_query",
    );
    assert_error(
        &h.get("/admin/v1/orgs/acme/keys?limit=5000").await,
        400,
        "bad_query",
    );
}

#[tokio::test]
async fn wrong_methods_and_unknown_paths_answer_json_errors() {
    let h = Harness::start(Backend::Sqlite).await;
    setup_org_with_server(&h, "acme", "github").await;
    let before = h.store.live().revision();

    // A path that only has GET.
    let reply = h
        .patch("/admin/v1/orgs/acme/explain", json!({ "x": 1 }))
        .await;
    assert_error(&reply, 405, "method_not_allowed");
    assert_eq!(reply.headers["allow"], "GET,HEAD");
    assert_eq!(
        reply.body["error"]["details"],
        json!({ "method": "PATCH", "path": "/admin/v1/orgs/acme/explain" })
    );
    // Whoever asks, with or without a token.
    let reply = h.send(Method::DELETE, "/admin/v1/audit", None, None).await;
    assert_error(&reply, 405, "method_not_allowed");
    let reply = h
        .send(
            Method::POST,
            "/admin/v1/servers/github",
            Some(PLATFORM_TOKEN),
            Some(json!({})),
        )
        .await;
    assert_error(&reply, 405, "method_not_allowed");
    let allow = reply.headers["allow"].to_str().unwrap();
    let mut allow: Vec<_> = allow.split(',').collect();
    allow.sort_unstable();
    assert_eq!(allow, ["DELETE", "GET", "HEAD", "PATCH"]);

    // Unknown paths.
    for path in ["/admin/v1/orgs/acme/widgets", "/admin/v1/nope/x/y"] {
        let reply = h.get(path).await;
        assert_error(&reply, 404, "not_found");
        assert_eq!(reply.body["error"]["details"]["name"], path);
    }
    let reply = h
        .send(
            Method::POST,
            "/admin/v1/orgs/acme/widgets",
            None,
            Some(json!({})),
        )
        .await;
    assert_error(&reply, 404, "not_found");
    assert_eq!(h.store.live().revision(), before);
}

/// Every documented path answers exactly its documented methods (the
/// `Allow` header of a 405 lists what the router has), so the OpenAPI
/// document and the router cannot drift apart.
#[tokio::test]
async fn every_documented_path_has_exactly_its_documented_methods() {
    let h = Harness::start(Backend::Sqlite).await;
    let doc = h
        .send(Method::GET, "/admin/v1/openapi.json", None, None)
        .await
        .body;
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 38, "{} paths", paths.len());
    for (path, ops) in paths {
        let mut documented: Vec<String> = ops
            .as_object()
            .unwrap()
            .keys()
            .filter(|m| ["get", "put", "post", "patch", "delete"].contains(&m.as_str()))
            .map(|m| m.to_uppercase())
            .collect();
        if documented.iter().any(|m| m == "GET") {
            documented.push("HEAD".into());
        }
        documented.sort();
        let concrete: String = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "1" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let reply = h.send(Method::TRACE, &concrete, None, None).await;
        assert_error(&reply, 405, "method_not_allowed");
        let mut routed: Vec<String> = reply.headers["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(str::to_owned)
            .collect();
        routed.sort();
        assert_eq!(routed, documented, "{path}");
    }
}

/// The newest admin change of an org in the audit log.
async fn newest_change(h: &Harness, org: &str) -> Value {
    let page = h
        .get(&format!(
            "/admin/v1/audit?org={org}&kind=admin_change&limit=1"
        ))
        .await
        .body;
    page["items"][0].clone()
}

async fn patch_renames_and_replaces_within_the_parent(backend: Backend) {
    let h = Harness::start(backend).await;
    setup_org_with_server(&h, "acme", "github").await;
    setup_org_with_server(&h, "globex", "github").await;
    h.ok(
        Method::PUT,
        "/admin/v1/orgs/acme/grants/github",
        Some(json!({ "filter": ["a", "b"] })),
    )
    .await;
    for (path, body) in [
        ("teams", json!({ "slug": "ops" })),
        ("agents", json!({ "slug": "bot" })),
        ("end-users", json!({ "external_id": "ann@example.com" })),
        (
            "toolsets",
            json!({ "slug": "readers", "servers": { "github": ["a"] } }),
        ),
        ("keys", json!({ "name": "ci" })),
    ] {
        h.ok(
            Method::POST,
            &format!("/admin/v1/orgs/acme/{path}"),
            Some(body),
        )
        .await;
    }

    // Each rename is one write: a new revision, the new view, audited with
    // before and after.
    for (path, kind, old) in [
        ("teams/ops", "team", "ops"),
        ("agents/bot", "agent", "bot"),
        ("end-users/ann%40example.com", "end_user", "ann@example.com"),
        ("toolsets/readers", "toolset", "readers"),
    ] {
        let path = format!("/admin/v1/orgs/acme/{path}");
        let before = h.store.live().revision();
        let reply = h.patch(&path, json!({ "name": "Renamed" })).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert_eq!(reply.revision(), before + 1, "{path}");
        assert_eq!(reply.body["item"]["name"], "Renamed", "{path}");
        assert_eq!(h.get(&path).await.body["name"], "Renamed", "{path}");
        let audit = newest_change(&h, "acme").await;
        assert_eq!(audit["action"], "update", "{audit}");
        assert_eq!(audit["entity_kind"], kind, "{audit}");
        assert_eq!(audit["revision"], before + 1, "{audit}");
        assert_eq!(audit["before"]["name"], old, "{audit}");
        assert_eq!(audit["after"]["name"], "Renamed", "{audit}");

        // The same name again, or nothing: no write, the current revision.
        for body in [json!({ "name": "Renamed" }), json!({})] {
            let same = h.patch(&path, body).await;
            assert_eq!(same.status, 200, "{path}: {}", same.body);
            assert_eq!(same.revision(), before + 1, "{path}: no new revision");
        }
        assert_eq!(newest_change(&h, "acme").await["id"], audit["id"]);

        // Identities do not change; names must be real.
        assert_error(
            &h.patch(&path, json!({ "slug": "other" })).await,
            422,
            "invalid_body",
        );
        assert_error(
            &h.patch(&path, json!({ "name": "  " })).await,
            422,
            "invalid_value",
        );
        assert_eq!(h.store.live().revision(), before + 1, "{path}");
    }
    assert_error(
        &h.patch("/admin/v1/orgs/acme/teams/nope", json!({ "name": "x" }))
            .await,
        404,
        "not_found",
    );

    // A toolset's servers: checked like on creation, in one write with the name.
    let path = "/admin/v1/orgs/acme/toolsets/readers";
    let before = h.store.live().revision();
    let refused = h
        .patch(
            path,
            json!({ "name": "Wider", "servers": { "github": ["a", "c"] } }),
        )
        .await;
    assert_error(&refused, 422, "grants_beyond_parent");
    let offenses = &refused.body["error"]["details"]["offenses"];
    assert_eq!(offenses[0]["server"], "github", "{offenses}");
    assert_eq!(offenses[0]["tools"], json!(["c"]), "{offenses}");
    assert_error(
        &h.patch(path, json!({ "servers": { "no-such-server": "*" } }))
            .await,
        422,
        "invalid_value",
    );
    assert_eq!(h.store.live().revision(), before, "nothing written");
    assert_eq!(
        h.get(path).await.body,
        json!({ "slug": "readers", "name": "Renamed", "servers": { "github": ["a"] } })
    );
    let changed = h
        .patch(
            path,
            json!({ "name": "Writers", "servers": { "github": ["b"] } }),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.revision(), before + 1, "one write for both fields");
    assert_eq!(
        changed.body["item"],
        json!({ "slug": "readers", "name": "Writers", "servers": { "github": ["b"] } })
    );
    // The live policy has it: the toolset admits b, no longer a.
    let snapshot: std::sync::Arc<Snapshot> = h.store.live().snapshot();
    let acme = snapshot.org_by_slug("acme").unwrap().id;
    let toolset = snapshot.toolset_by_slug(acme, "readers").unwrap();
    let filter = toolset.servers.values().next().unwrap();
    assert!(filter.admits("b") && !filter.admits("a"));

    // Keys can be renamed too; names stay unique in the org.
    let key = h.get("/admin/v1/orgs/acme/keys").await.body["items"][0]["id"]
        .as_i64()
        .unwrap();
    let key_path = format!("/admin/v1/orgs/acme/keys/{key}");
    h.ok(
        Method::POST,
        "/admin/v1/orgs/acme/keys",
        Some(json!({ "name": "taken" })),
    )
    .await;
    assert_error(
        &h.patch(&key_path, json!({ "name": "taken" })).await,
        409,
        "duplicate",
    );
    let renamed = h.patch(&key_path, json!({ "name": "deploy" })).await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.body["item"]["name"], "deploy");

    // Another org's admin: acme's objects do not exist for it.
    let token = h
        .ok(
            Method::POST,
            "/admin/v1/orgs/globex/admin-tokens",
            Some(json!({ "name": "globex-admin" })),
        )
        .await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = h.store.live().revision();
    for (path, body) in [
        ("teams/ops", json!({ "name": "x" })),
        ("agents/bot", json!({ "name": "x" })),
        ("end-users/ann%40example.com", json!({ "name": "x" })),
        ("toolsets/readers", json!({ "servers": {} })),
        (&format!("keys/{key}"), json!({ "name": "x" })),
    ] {
        let reply = h
            .send(
                Method::PATCH,
                &format!("/admin/v1/orgs/acme/{path}"),
                Some(&token),
                Some(body),
            )
            .await;
        assert_error(&reply, 404, "not_found");
    }
    assert_eq!(h.store.live().revision(), before);
}

#[tokio::test]
async fn patch_renames_and_replaces_within_the_parent_sqlite() {
    patch_renames_and_replaces_within_the_parent(Backend::Sqlite).await;
}

#[tokio::test]
async fn patch_renames_and_replaces_within_the_parent_postgres() {
    patch_renames_and_replaces_within_the_parent(Backend::Postgres).await;
}

async fn configured_admin_token_rotates(backend: Backend) {
    let h = Harness::start(backend).await;
    let first = "configured-token-number-one";
    let second = "configured-token-number-two";
    let whoami = |token: &str| {
        let (h, token) = (&h, token.to_owned());
        async move {
            h.send(Method::GET, "/admin/v1/whoami", Some(&token), None)
                .await
        }
    };
    let token_changes = || async {
        h.get("/admin/v1/audit?entity=admin_token&limit=500")
            .await
            .body["items"]
            .as_array()
            .unwrap()
            .len()
    };
    let platform_names = || async {
        let list = h.get("/admin/v1/admin-tokens").await.body;
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let install = |token: &str| {
        let (h, token) = (&h, token.to_owned());
        async move {
            h.store
                .ensure_admin_token("warden-serve", "bootstrap", None, &Secret::new(token))
                .await
        }
    };

    let installed = install(first).await.unwrap();
    assert_eq!(whoami(first).await.body["name"], "bootstrap");
    // Unchanged on a restart with the same token: nothing written.
    let changes = token_changes().await;
    assert_eq!(install(first).await.unwrap().id, installed.id);
    assert_eq!(token_changes().await, changes);

    // A different token replaces it: the old secret stops working at once.
    let rotated = install(second).await.unwrap();
    assert_ne!(rotated.id, installed.id);
    assert_eq!(whoami(second).await.body["name"], "bootstrap");
    assert_error(&whoami(first).await, 401, "unauthorized");
    assert_eq!(platform_names().await, ["platform", "bootstrap"]);
    let audit = h
        .get("/admin/v1/audit?actor=warden-serve&entity=admin_token")
        .await
        .body;
    let actions: Vec<_> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "delete", "create"], "{audit}");
    assert_eq!(audit["items"][1]["before"]["id"], installed.id);

    // Configuring a token printed on first start adopts it as the
    // bootstrap token (renamed), retiring the previous one.
    let created = h
        .ok(
            Method::POST,
            "/admin/v1/admin-tokens",
            Some(json!({ "name": "first-start" })),
        )
        .await;
    let printed = created["secret"].as_str().unwrap().to_owned();
    let adopted = install(&printed).await.unwrap();
    assert_eq!(adopted.id, created["item"]["id"].as_i64().unwrap());
    assert_eq!(whoami(&printed).await.body["name"], "bootstrap");
    assert_error(&whoami(second).await, 401, "unauthorized");
    assert_eq!(platform_names().await, ["platform", "bootstrap"]);

    // An org admin's secret never becomes a platform token.
    h.ok(
        Method::POST,
        "/admin/v1/orgs",
        Some(json!({ "slug": "acme" })),
    )
    .await;
    let org_token = h
        .ok(
            Method::POST,
            "/admin/v1/orgs/acme/admin-tokens",
            Some(json!({ "name": "acme-admin" })),
        )
        .await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(install(&org_token).await.is_err());
    assert_eq!(whoami(&org_token).await.body["role"], "org");
    assert_eq!(whoami(&printed).await.body["name"], "bootstrap");
}

#[tokio::test]
async fn configured_admin_token_rotates_sqlite() {
    configured_admin_token_rotates(Backend::Sqlite).await;
}

#[tokio::test]
async fn configured_admin_token_rotates_postgres() {
    configured_admin_token_rotates(Backend::Postgres).await;
}

async fn platform_admin_tokens_and_the_actor_filter(backend: Backend) {
    let h = Harness::start(backend).await;
    h.ok(
        Method::POST,
        "/admin/v1/orgs",
        Some(json!({ "slug": "acme" })),
    )
    .await;
    let org_token = h
        .ok(
            Method::POST,
            "/admin/v1/orgs/acme/admin-tokens",
            Some(json!({ "name": "acme-admin" })),
        )
        .await;
    let org_token_id = org_token["item"]["id"].as_i64().unwrap();
    let org_secret = org_token["secret"].as_str().unwrap().to_owned();

    let created = h
        .post("/admin/v1/admin-tokens", json!({ "name": "ops" }))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["item"]["org"], Value::Null);
    let ops = created.body["secret"].as_str().unwrap().to_owned();
    let ops_id = created.body["item"]["id"].as_i64().unwrap();
    assert!(ops.starts_with("wdna_"), "{ops}");
    let me = h
        .send(Method::GET, "/admin/v1/whoami", Some(&ops), None)
        .await;
    assert_eq!(me.body["role"], "platform");
    assert_error(
        &h.post("/admin/v1/admin-tokens", json!({ "name": "ops" }))
            .await,
        409,
        "duplicate",
    );

    // Only platform tokens here, never their secrets.
    let list = h.get("/admin/v1/admin-tokens").await.body;
    let names: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["platform", "ops"], "{list}");
    assert!(!list.to_string().contains(&ops));

    // Org admins may not touch them.
    for (method, path, body) in [
        (Method::GET, "/admin/v1/admin-tokens".to_owned(), None),
        (
            Method::POST,
            "/admin/v1/admin-tokens".to_owned(),
            Some(json!({ "name": "sneaky" })),
        ),
        (
            Method::DELETE,
            format!("/admin/v1/admin-tokens/{ops_id}"),
            None,
        ),
    ] {
        let reply = h.send(method, &path, Some(&org_secret), body).await;
        assert_error(&reply, 403, "platform_admin_required");
    }
    // An org's token is not a platform token.
    assert_error(
        &h.delete(&format!("/admin/v1/admin-tokens/{org_token_id}"))
            .await,
        404,
        "not_found",
    );

    // A write by each kind of token, then the actor filter by token name.
    h.send(
        Method::POST,
        "/admin/v1/orgs/acme/teams",
        Some(&org_secret),
        Some(json!({ "slug": "by-org-admin" })),
    )
    .await;
    h.send(
        Method::POST,
        "/admin/v1/orgs/acme/teams",
        Some(&ops),
        Some(json!({ "slug": "by-ops" })),
    )
    .await;
    let actors = |query: &str| {
        let (h, query) = (&h, query.to_owned());
        async move {
            let page = h
                .get(&format!("/admin/v1/audit?kind=admin_change&{query}"))
                .await
                .body;
            page["items"]
                .as_array()
                .unwrap_or_else(|| panic!("{page}"))
                .iter()
                .map(|e| {
                    (
                        e["actor"].as_str().unwrap().to_owned(),
                        e["after"]["slug"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let acme = h.store.live().snapshot().org_by_slug("acme").unwrap().id;
    assert_eq!(
        actors("actor=acme-admin").await,
        [(
            format!("admin:acme-admin@org:{acme}"),
            "by-org-admin".into()
        )]
    );
    assert_eq!(
        actors("actor=ops").await,
        [("admin:ops".to_owned(), "by-ops".to_owned())]
    );
    // The recorded form works too, exactly.
    assert_eq!(actors("actor=admin:ops").await.len(), 1);
    assert_eq!(
        actors(&format!("actor=admin:acme-admin%40org:{acme}"))
            .await
            .len(),
        1
    );
    assert!(actors("actor=op").await.is_empty());
    assert!(actors("actor=admin:acme-admin").await.is_empty());

    // Revoking: the token stops working; the last platform token stays.
    let platform_id = list["items"][0]["id"].as_i64().unwrap();
    let deleted = h
        .send(
            Method::DELETE,
            &format!("/admin/v1/admin-tokens/{platform_id}"),
            Some(&ops),
            None,
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_error(
        &h.send(Method::GET, "/admin/v1/whoami", Some(PLATFORM_TOKEN), None)
            .await,
        401,
        "unauthorized",
    );
    let last = h
        .send(
            Method::DELETE,
            &format!("/admin/v1/admin-tokens/{ops_id}"),
            Some(&ops),
            None,
        )
        .await;
    assert_error(&last, 409, "conflict");
    let me = h
        .send(Method::GET, "/admin/v1/whoami", Some(&ops), None)
        .await;
    assert_eq!(me.body["name"], "ops");
    let audit = h
        .send(
            Method::GET,
            "/admin/v1/audit?actor=ops&entity=admin_token",
            Some(&ops),
            None,
        )
        .await
        .body;
    assert_eq!(audit["items"][0]["action"], "delete", "{audit}");
    assert_eq!(audit["items"][0]["before"]["name"], "platform", "{audit}");
}

#[tokio::test]
async fn platform_admin_tokens_and_the_actor_filter_sqlite() {
    platform_admin_tokens_and_the_actor_filter(Backend::Sqlite).await;
}

#[tokio::test]
async fn platform_admin_tokens_and_the_actor_filter_postgres() {
    platform_admin_tokens_and_the_actor_filter(Backend::Postgres).await;
}
