//! The audit log through the API (filters, pagination, redaction) and
//! replica propagation (`?wait=propagated`, laggards, `GET /replicas`).

mod common;

use std::time::{Duration, Instant};

use common::{assert_error, Backend, Harness};
use reqwest::Method;
use serde_json::json;
use sqlx::Connection;
use warden_store::{Store, StoreOptions};

async fn audit_is_filtered_paginated_and_redacted(backend: Backend) {
    let h = Harness::start(backend).await;
    let t0 = h.get("/admin/v1/whoami").await; // a request before any change
    assert_eq!(t0.status, 200);
    h.ok(
        Method::POST,
        "/admin/v1/orgs",
        Some(json!({ "slug": "acme" })),
    )
    .await;
    h.ok(
        Method::POST,
        "/admin/v1/servers",
        Some(json!({
            "slug": "github",
            "transport": { "type": "http", "url": "https://example.com/mcp" },
            "secret_headers": { "Authorization": "Bearer first-secret-value" },
        })),
    )
    .await;
    h.ok(
        Method::PATCH,
        "/admin/v1/servers/github",
        Some(json!({ "secret_headers": { "X-Api-Key": "second-secret-value" }, "enabled": false })),
    )
    .await;
    h.ok(
        Method::PUT,
        "/admin/v1/orgs/acme/grants/github",
        Some(json!({ "filter": ["a"] })),
    )
    .await;
    let key = h
        .ok(
            Method::POST,
            "/admin/v1/orgs/acme/keys",
            Some(json!({ "name": "k" })),
        )
        .await;
    let secret = key["secret"].as_str().unwrap().to_owned();

    let all = h.get("/admin/v1/audit?limit=500").await;
    assert_eq!(all.status, 200, "{}", all.body);
    let text = all.body.to_string();
    for leaked in ["first-secret-value", "second-secret-value", secret.as_str()] {
        assert!(!text.contains(leaked), "audit shows a secret: {text}");
    }
    let items = all.body["items"].as_array().unwrap();
    assert!(items.len() >= 5, "{text}");
    // Newest first, each with actor, revision and before/after.
    let ids: Vec<i64> = items.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    let update = items
        .iter()
        .find(|e| e["entity_kind"] == "server" && e["action"] == "update")
        .unwrap_or_else(|| panic!("no server update in {text}"));
    assert_eq!(update["actor"], "admin:platform");
    assert_eq!(update["before"]["enabled"], true);
    assert_eq!(update["after"]["enabled"], false);
    assert_eq!(update["after"]["secret_header_names"], json!(["X-Api-Key"]));
    assert!(update["revision"].as_u64().unwrap() > 0);

    // Filters.
    let servers = h.get("/admin/v1/audit?entity=server").await.body;
    assert!(servers["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["entity_kind"] == "server"));
    assert_eq!(servers["items"].as_array().unwrap().len(), 2, "{servers}");
    let server_id = update["entity"].as_str().unwrap();
    let one = h
        .get(&format!(
            "/admin/v1/audit?entity=server:{server_id}&kind=admin_change"
        ))
        .await
        .body;
    assert_eq!(one["items"].as_array().unwrap().len(), 2, "{one}");
    let none = h.get("/admin/v1/audit?actor=nobody").await.body;
    assert_eq!(none["items"], json!([]));
    let none = h.get("/admin/v1/audit?kind=decision").await.body;
    assert_eq!(none["items"], json!([]));
    let org = h.get("/admin/v1/audit?org=acme").await.body;
    assert!(
        org["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["org"] == "acme"),
        "{org}"
    );
    let future = h
        .get("/admin/v1/audit?since=2999-01-01T00:00:00Z")
        .await
        .body;
    assert_eq!(future["items"], json!([]));
    let past = h
        .get("/admin/v1/audit?until=2000-01-01T00:00:00Z")
        .await
        .body;
    assert_eq!(past["items"], json!([]));
    let recent = h
        .get("/admin/v1/audit?since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z")
        .await
        .body;
    assert_eq!(recent["items"].as_array().unwrap().len(), items.len());

    // Pagination: pages of 2 cover everything exactly once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/admin/v1/audit?limit=2&cursor={c}"),
            None => "/admin/v1/audit?limit=2".to_owned(),
        };
        let page = h.get(&path).await.body;
        let page_items = page["items"].as_array().unwrap();
        assert!(page_items.len() <= 2);
        seen.extend(page_items.iter().map(|e| e["id"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids);

    // Bad filters.
    assert_error(
        &h.get("/admin/v1/audit?kind=gossip").await,
        400,
        "bad_query",
    );
    assert_error(
        &h.get("/admin/v1/audit?since=yesterday").await,
        400,
        "bad_query",
    );
    assert_error(&h.get("/admin/v1/audit?limit=0").await, 400, "bad_query");
    assert_error(&h.get("/admin/v1/audit?cursor=abc").await, 400, "bad_query");
    assert_error(&h.get("/admin/v1/audit?org=nope").await, 404, "not_found");
}

#[tokio::test]
async fn audit_is_filtered_paginated_and_redacted_sqlite() {
    audit_is_filtered_paginated_and_redacted(Backend::Sqlite).await;
}

#[tokio::test]
async fn audit_is_filtered_paginated_and_redacted_postgres() {
    audit_is_filtered_paginated_and_redacted(Backend::Postgres).await;
}

#[tokio::test]
async fn single_process_writes_are_propagated_at_once() {
    let h = Harness::start(Backend::Sqlite).await;
    let reply = h
        .send(
            Method::POST,
            "/admin/v1/orgs?wait=propagated&timeout_ms=100",
            Some(common::PLATFORM_TOKEN),
            Some(json!({ "slug": "a" })),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let replicas = h.get("/admin/v1/replicas").await.body;
    let items = replicas["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{replicas}");
    assert_eq!(items[0]["current"], true);
    assert_eq!(items[0]["applied_revision"], reply.revision());
}

#[tokio::test]
async fn wait_propagated_waits_for_every_live_replica_and_names_laggards() {
    let h = Harness::start(Backend::Postgres).await;
    let url = h.store_url();
    // A second replica on the same database.
    let other = Store::open(&url, StoreOptions::new([7u8; 32]))
        .await
        .unwrap();

    let started = Instant::now();
    let reply = h
        .send(
            Method::POST,
            "/admin/v1/orgs?wait=propagated",
            Some(common::PLATFORM_TOKEN),
            Some(json!({ "slug": "acme" })),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let revision = reply.revision();
    // When the answer comes, the other replica has the write.
    assert!(
        other.live().revision() >= revision,
        "other replica at {}",
        other.live().revision()
    );
    assert!(other.live().snapshot().org_by_slug("acme").is_some());
    println!("propagated to 2 replicas in {:?}", started.elapsed());

    let replicas = h.get("/admin/v1/replicas").await.body;
    let items = replicas["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{replicas}");
    assert!(items
        .iter()
        .all(|r| r["live"] == true && r["applied_revision"].as_u64().unwrap() >= revision));
    assert_eq!(items.iter().filter(|r| r["current"] == true).count(), 1);

    // A live replica that does not apply the write: the wait times out and
    // names it; the write itself is committed and in force here.
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    sqlx::query("INSERT INTO replicas (id, started_at_ms, heartbeat_at_ms, applied_revision) VALUES ($1, $2, $3, $4)")
        .bind("stuck-replica")
        .bind(now)
        .bind(now + 60_000)
        .bind(0i64)
        .execute(&mut conn)
        .await
        .unwrap();
    let started = Instant::now();
    let reply = h
        .send(
            Method::PATCH,
            "/admin/v1/orgs/acme?wait=propagated&timeout_ms=300",
            Some(common::PLATFORM_TOKEN),
            Some(json!({ "name": "Acme" })),
        )
        .await;
    assert_error(&reply, 504, "propagation_timeout");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let details = &reply.body["error"]["details"];
    assert_eq!(
        details["laggards"].as_array().unwrap().len(),
        1,
        "{}",
        reply.body
    );
    assert_eq!(details["laggards"][0]["id"], "stuck-replica");
    let revision = details["revision"].as_u64().unwrap();
    assert_eq!(
        h.store.live().revision(),
        revision,
        "committed and live here"
    );
    assert_eq!(h.get("/admin/v1/orgs/acme").await.body["name"], "Acme");
    drop(other);
}
