//! Limits over the admin API: CRUD with slugs in and out, validation (422),
//! org isolation (404), cascades, and explain's `limits`.

mod common;

use common::{assert_error, Backend, Harness};
use reqwest::Method;
use serde_json::{json, Value};

async fn setup(h: &Harness) -> i64 {
    for org in ["acme", "globex"] {
        h.ok(Method::POST, "/admin/v1/orgs", Some(json!({ "slug": org })))
            .await;
    }
    h.ok(
        Method::POST,
        "/admin/v1/servers",
        Some(json!({ "slug": "github", "transport": { "type": "http", "url": "http://127.0.0.1:9/mcp" } })),
    )
    .await;
    h.ok(
        Method::POST,
        "/admin/v1/servers",
        Some(json!({ "slug": "jira", "transport": { "type": "http", "url": "http://127.0.0.1:9/jira" } })),
    )
    .await;
    for org in ["acme", "globex"] {
        h.ok(
            Method::PUT,
            &format!("/admin/v1/orgs/{org}/grants/github"),
            Some(json!({})),
        )
        .await;
        h.ok(
            Method::POST,
            &format!("/admin/v1/orgs/{org}/teams"),
            Some(json!({ "slug": "eng" })),
        )
        .await;
    }
    h.ok(
        Method::POST,
        "/admin/v1/orgs/acme/end-users",
        Some(json!({ "external_id": "ann" })),
    )
    .await;
    h.ok(
        Method::POST,
        "/admin/v1/orgs/acme/agents",
        Some(json!({ "slug": "bot" })),
    )
    .await;
    let key = h
        .ok(
            Method::POST,
            "/admin/v1/orgs/acme/keys",
            Some(json!({ "name": "svc", "team": "eng", "may_assert_end_user": true, "may_assert_agent": true })),
        )
        .await;
    key["item"]["id"].as_i64().unwrap()
}

async fn limits_over_the_api(backend: Backend) {
    let h = Harness::start(backend).await;
    let key = setup(&h).await;

    let created = h
        .post(
            "/admin/v1/orgs/acme/limits",
            json!({
                "level": { "kind": "team", "slug": "eng" },
                "server": "github",
                "tool": "create_issue",
                "rate": { "requests": 60, "per": "minute", "burst": 10 },
                "concurrency": 4,
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let team_limit = created.body["item"]["id"].as_i64().unwrap();
    assert_eq!(
        created.body["item"],
        json!({
            "id": team_limit,
            "level": { "kind": "team", "slug": "eng" },
            "server": "github",
            "tool": "create_issue",
            "rate": { "requests": 60, "per": "minute", "burst": 10 },
            "concurrency": 4,
        })
    );
    assert_eq!(h.store.live().revision(), created.revision());
    let org_limit = h
        .ok(
            Method::POST,
            "/admin/v1/orgs/acme/limits",
            Some(
                json!({ "level": { "kind": "org" }, "rate": { "requests": 1000, "per": "hour" } }),
            ),
        )
        .await;
    // burst defaults to requests.
    assert_eq!(
        org_limit["item"]["rate"],
        json!({ "requests": 1000, "per": "hour", "burst": 1000 })
    );
    let org_limit = org_limit["item"]["id"].as_i64().unwrap();
    let mut ids = vec![team_limit, org_limit];
    for level in [
        json!({ "kind": "key", "id": key }),
        json!({ "kind": "end_user", "external_id": "ann" }),
        json!({ "kind": "agent", "slug": "bot" }),
    ] {
        let reply = h
            .ok(
                Method::POST,
                "/admin/v1/orgs/acme/limits",
                Some(json!({ "level": level, "server": "github", "concurrency": 2 })),
            )
            .await;
        assert_eq!(reply["item"]["level"], level);
        ids.push(reply["item"]["id"].as_i64().unwrap());
    }

    let list = h.get("/admin/v1/orgs/acme/limits").await;
    assert_eq!(list.status, 200);
    let listed: Vec<i64> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, ids);
    let one = h
        .get(&format!("/admin/v1/orgs/acme/limits/{team_limit}"))
        .await;
    assert_eq!(one.body, created.body["item"]);

    // PATCH: absent stays, null clears.
    let patched = h
        .patch(
            &format!("/admin/v1/orgs/acme/limits/{team_limit}"),
            json!({ "rate": null, "concurrency": 3 }),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["item"]["rate"], Value::Null);
    assert_eq!(patched.body["item"]["concurrency"], 3);
    assert_eq!(patched.body["item"]["tool"], "create_issue");
    // Nothing to change: no new revision.
    let same = h
        .patch(
            &format!("/admin/v1/orgs/acme/limits/{team_limit}"),
            json!({ "concurrency": 3 }),
        )
        .await;
    assert_eq!(same.revision(), patched.revision());

    // Explain names the effective limits and who set them.
    let explained = h
        .get(&format!(
            "/admin/v1/orgs/acme/explain?key={key}&server=github&tool=create_issue&agent=bot&end_user=ann"
        ))
        .await;
    assert_eq!(explained.status, 200, "{}", explained.body);
    let limits = &explained.body["limits"];
    assert_eq!(
        limits["applicable"].as_array().unwrap().len(),
        5,
        "{limits}"
    );
    assert_eq!(limits["rate"]["limit"], org_limit);
    assert_eq!(limits["rate"]["level"], json!({ "kind": "org" }));
    assert_eq!(limits["concurrency"]["concurrency"], 2);
    assert_eq!(limits["concurrency"]["level"]["kind"], "key");
    let other_tool = h
        .get(&format!(
            "/admin/v1/orgs/acme/explain?key={key}&server=github&tool=search"
        ))
        .await;
    assert_eq!(
        other_tool.body["limits"]["applicable"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{}",
        other_tool.body
    );

    // Validation: 422, nothing written.
    let before = h.store.live().revision();
    for (body, code) in [
        (json!({ "level": { "kind": "org" } }), "invalid_value"),
        (
            json!({ "level": { "kind": "org" }, "tool": "x", "concurrency": 1 }),
            "invalid_value",
        ),
        (
            json!({ "level": { "kind": "org" }, "concurrency": 0 }),
            "invalid_value",
        ),
        (
            json!({ "level": { "kind": "org" }, "rate": { "requests": 0, "per": "minute" } }),
            "invalid_value",
        ),
        (
            json!({ "level": { "kind": "team", "slug": "nope" }, "concurrency": 1 }),
            "invalid_value",
        ),
        (
            json!({ "level": { "kind": "key", "id": 999 }, "concurrency": 1 }),
            "invalid_value",
        ),
        (
            json!({ "level": { "kind": "org" }, "server": "nope", "concurrency": 1 }),
            "invalid_value",
        ),
        // Not granted to the org.
        (
            json!({ "level": { "kind": "org" }, "server": "jira", "concurrency": 1 }),
            "invalid_value",
        ),
        (
            json!({ "level": { "kind": "org" }, "concurrency": 1, "extra": true }),
            "invalid_body",
        ),
        (
            json!({ "level": { "kind": "org", "slug": "x" }, "concurrency": 1 }),
            "invalid_body",
        ),
        (
            json!({ "level": { "kind": "org" }, "rate": { "requests": 1, "per": "day" } }),
            "invalid_body",
        ),
    ] {
        let reply = h.post("/admin/v1/orgs/acme/limits", body.clone()).await;
        assert_error(&reply, 422, code);
        let _ = body;
    }
    let reply = h
        .patch(
            &format!("/admin/v1/orgs/acme/limits/{org_limit}"),
            json!({ "tool": "x" }),
        )
        .await;
    assert_error(&reply, 422, "invalid_value");
    assert_eq!(h.store.live().revision(), before);

    // Org isolation: acme's admin sees globex's limit as not found.
    let globex = h
        .ok(
            Method::POST,
            "/admin/v1/orgs/globex/limits",
            Some(json!({ "level": { "kind": "team", "slug": "eng" }, "concurrency": 1 })),
        )
        .await;
    let globex_limit = globex["item"]["id"].as_i64().unwrap();
    let token = h
        .ok(
            Method::POST,
            "/admin/v1/orgs/acme/admin-tokens",
            Some(json!({ "name": "acme-admin" })),
        )
        .await;
    let token = token["secret"].as_str().unwrap().to_owned();
    for (method, path) in [
        (
            Method::GET,
            format!("/admin/v1/orgs/acme/limits/{globex_limit}"),
        ),
        (
            Method::DELETE,
            format!("/admin/v1/orgs/acme/limits/{globex_limit}"),
        ),
        (
            Method::GET,
            format!("/admin/v1/orgs/globex/limits/{globex_limit}"),
        ),
        (Method::GET, "/admin/v1/orgs/globex/limits".to_owned()),
    ] {
        let reply = h.send(method, &path, Some(&token), None).await;
        assert_error(&reply, 404, "not_found");
    }
    let reply = h
        .send(
            Method::PATCH,
            &format!("/admin/v1/orgs/acme/limits/{globex_limit}"),
            Some(&token),
            Some(json!({ "concurrency": 5 })),
        )
        .await;
    assert_error(&reply, 404, "not_found");
    let mine = h
        .send(
            Method::GET,
            "/admin/v1/orgs/acme/limits",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 5);

    // Cascades: deleting the team takes its limit (and its key's).
    h.ok(Method::DELETE, "/admin/v1/orgs/acme/teams/eng", None)
        .await;
    let left = h.get("/admin/v1/orgs/acme/limits").await;
    let kinds: Vec<&str> = left.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["level"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["org", "end_user", "agent"]);
    let deleted = h
        .delete(&format!("/admin/v1/orgs/acme/limits/{org_limit}"))
        .await;
    assert_eq!(deleted.status, 200);
    assert_error(
        &h.get(&format!("/admin/v1/orgs/acme/limits/{org_limit}"))
            .await,
        404,
        "not_found",
    );
    // Audited like every admin change.
    let audit = h
        .get("/admin/v1/audit?org=acme&kind=admin_change&limit=500")
        .await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    let limit_changes = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entity_kind"] == "limit")
        .count();
    // Five creates, a patch and a delete (cascades are audited with the team).
    assert_eq!(limit_changes, 7, "{}", audit.body);
}

#[tokio::test]
async fn limits_over_the_api_sqlite() {
    limits_over_the_api(Backend::Sqlite).await;
}

#[tokio::test]
async fn limits_over_the_api_postgres() {
    limits_over_the_api(Backend::Postgres).await;
}
