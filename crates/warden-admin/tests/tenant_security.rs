//! What an org admin may not do to the platform (pen-test findings):
//! run commands (stdio servers), point upstreams at internal addresses
//! (SSRF), or store unbounded text.

mod common;

use common::{assert_error, Backend, Harness};
use reqwest::Method;
use serde_json::{json, Value};
use warden_store::{EgressPolicy, UpstreamPolicy};

/// Creates org `acme` and returns an org admin token for it.
async fn org_admin(h: &Harness) -> String {
    h.ok(
        Method::POST,
        "/admin/v1/orgs",
        Some(json!({ "slug": "acme" })),
    )
    .await;
    let token = h
        .ok(
            Method::POST,
            "/admin/v1/orgs/acme/admin-tokens",
            Some(json!({ "name": "acme-admin" })),
        )
        .await;
    token["secret"].as_str().unwrap().to_owned()
}

fn http(url: &str) -> Value {
    json!({ "type": "http", "url": url })
}

fn stdio(command: &str) -> Value {
    json!({ "type": "stdio", "command": command, "args": ["-c", "id"] })
}

async fn org_server_slugs(h: &Harness) -> Vec<String> {
    h.get("/admin/v1/orgs/acme/servers").await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["slug"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn only_platform_admins_create_or_change_stdio_servers() {
    let h = Harness::start(Backend::Sqlite).await;
    let token = org_admin(&h).await;
    let as_org = |method: Method, path: &'static str, body: Option<Value>| {
        h.send(method, path, Some(token.as_str()), body)
    };

    // The pen test: an org admin registers a command; Warden would spawn it.
    let reply = as_org(
        Method::POST,
        "/admin/v1/orgs/acme/servers",
        Some(json!({ "slug": "pwn", "transport": stdio("/bin/sh") })),
    )
    .await;
    assert_error(&reply, 403, "stdio_requires_platform_admin");
    assert!(org_server_slugs(&h).await.is_empty(), "nothing was written");

    // An HTTP server of its own: fine; turning it into stdio is not.
    let own = as_org(
        Method::POST,
        "/admin/v1/orgs/acme/servers",
        Some(json!({ "slug": "own", "transport": http("http://192.0.2.10/mcp") })),
    )
    .await;
    assert_eq!(own.status, 201, "{}", own.body);
    assert_eq!(own.body["item"]["egress_restricted"], true);
    let reply = as_org(
        Method::PATCH,
        "/admin/v1/orgs/acme/servers/own",
        Some(json!({ "transport": stdio("/bin/sh") })),
    )
    .await;
    assert_error(&reply, 403, "stdio_requires_platform_admin");
    assert_eq!(
        h.get("/admin/v1/orgs/acme/servers/own").await.body["transport"],
        http("http://192.0.2.10/mcp")
    );

    // A platform admin may give the org a stdio server; the org admin may
    // rename or disable it, not change what runs or its environment.
    let files = h
        .post(
            "/admin/v1/orgs/acme/servers",
            json!({ "slug": "files", "transport": stdio("mcp-files") }),
        )
        .await;
    assert_eq!(files.status, 201, "{}", files.body);
    assert_eq!(files.body["item"]["egress_restricted"], false);
    for body in [
        json!({ "transport": stdio("/bin/sh") }),
        json!({ "secret_headers": { "LD_PRELOAD": "/tmp/evil.so" } }),
    ] {
        let reply = as_org(
            Method::PATCH,
            "/admin/v1/orgs/acme/servers/files",
            Some(body),
        )
        .await;
        assert_error(&reply, 403, "stdio_requires_platform_admin");
    }
    let renamed = as_org(
        Method::PATCH,
        "/admin/v1/orgs/acme/servers/files",
        Some(json!({ "name": "Files", "enabled": false })),
    )
    .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(
        h.get("/admin/v1/orgs/acme/servers/files").await.body["transport"]["command"],
        "mcp-files"
    );

    // Global servers were platform-only already.
    let reply = as_org(
        Method::POST,
        "/admin/v1/servers",
        Some(json!({ "slug": "g", "transport": stdio("/bin/sh") })),
    )
    .await;
    assert_eq!(reply.status, 403, "{}", reply.body);
}

#[tokio::test]
async fn org_admin_urls_keep_to_the_egress_policy() {
    let h = Harness::start(Backend::Sqlite).await;
    let token = org_admin(&h).await;
    let create = |url: &str| {
        h.send(
            Method::POST,
            "/admin/v1/orgs/acme/servers",
            Some(&token),
            Some(json!({ "slug": "probe", "transport": http(url) })),
        )
    };
    for (url, reason) in [
        ("http://127.0.0.1:8080/mcp", "loopback"),
        ("http://localhost:8080/mcp", "loopback"),
        ("http://[::1]/mcp", "loopback"),
        ("http://0.0.0.0/mcp", "unspecified"),
        ("http://169.254.169.254/latest/meta-data/", "link_local"),
        ("http://[fd00:ec2::254]/", "unique_local"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://2130706433/", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://10.0.0.1/mcp", "private"),
        ("http://192.168.0.1/mcp", "private"),
        ("http://100.64.0.1/mcp", "shared_cgnat"),
        ("http://user:pw@192.0.2.10/mcp", "userinfo_not_allowed"),
        ("http://no-such-host.invalid/mcp", "unresolvable_host"),
    ] {
        let reply = create(url).await;
        assert_error(&reply, 403, "upstream_url_forbidden");
        assert_eq!(reply.body["error"]["details"]["reason"], reason, "{url}");
        assert_eq!(
            reply.body["error"]["details"]["field"], "transport.url",
            "{url}"
        );
    }
    assert!(org_server_slugs(&h).await.is_empty(), "nothing was written");

    // A public address is fine, and marked: the gateway checks it again
    // on every connection. Changing it to an internal one is refused.
    let ok = create("http://192.0.2.10/mcp").await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    assert_eq!(ok.body["item"]["egress_restricted"], true);
    let reply = h
        .send(
            Method::PATCH,
            "/admin/v1/orgs/acme/servers/probe",
            Some(&token),
            Some(json!({ "transport": http("http://169.254.169.254/") })),
        )
        .await;
    assert_error(&reply, 403, "upstream_url_forbidden");

    // The platform is not restricted: its write of the URL lifts the mark.
    let patched = h
        .patch(
            "/admin/v1/orgs/acme/servers/probe",
            json!({ "transport": http("http://127.0.0.1:9/mcp") }),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["item"]["egress_restricted"], false);
    let stored = h
        .store
        .load_upstream(h.server_id(Some("acme"), "probe"))
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.egress_restricted);
    // ... and an org admin's later rewrite sets it again.
    let reply = h
        .send(
            Method::PATCH,
            "/admin/v1/orgs/acme/servers/probe",
            Some(&token),
            Some(json!({ "transport": http("http://192.0.2.11/mcp") })),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["item"]["egress_restricted"], true);
}

#[tokio::test]
async fn the_platform_allows_hosts_and_ranges_in_its_config() {
    let policy = UpstreamPolicy {
        egress: EgressPolicy::new(&["localhost"], &["10.20.0.0/16"]).unwrap(),
        stdio_allowed_commands: None,
    };
    let h = Harness::start_with_policy(Backend::Sqlite, policy).await;
    let token = org_admin(&h).await;
    for (slug, url, status) in [
        ("a", "http://localhost:9/mcp", 201),
        ("b", "http://10.20.1.2/mcp", 201),
        ("c", "http://10.21.1.2/mcp", 403),
        ("d", "http://127.0.0.1:9/mcp", 403),
    ] {
        let reply = h
            .send(
                Method::POST,
                "/admin/v1/orgs/acme/servers",
                Some(&token),
                Some(json!({ "slug": slug, "transport": http(url) })),
            )
            .await;
        assert_eq!(reply.status.as_u16(), status, "{url}: {}", reply.body);
    }
}

#[tokio::test]
async fn stdio_commands_outside_the_allow_list_are_refused_even_for_the_platform() {
    let policy = UpstreamPolicy {
        stdio_allowed_commands: Some(vec!["npx".into()]),
        ..UpstreamPolicy::default()
    };
    let h = Harness::start_with_policy(Backend::Sqlite, policy).await;
    let reply = h
        .post(
            "/admin/v1/servers",
            json!({ "slug": "sh", "transport": stdio("/bin/sh") }),
        )
        .await;
    assert_error(&reply, 403, "stdio_command_not_allowed");
    assert_eq!(reply.body["error"]["details"]["command"], "/bin/sh");
    let ok = h
        .post(
            "/admin/v1/servers",
            json!({ "slug": "everything", "transport": stdio("npx") }),
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    let reply = h
        .patch(
            "/admin/v1/servers/everything",
            json!({ "transport": stdio("/bin/sh") }),
        )
        .await;
    assert_error(&reply, 403, "stdio_command_not_allowed");
}

#[tokio::test]
async fn every_name_has_one_limit_on_create_and_on_patch() {
    let h = Harness::start(Backend::Sqlite).await;
    h.ok(
        Method::POST,
        "/admin/v1/orgs",
        Some(json!({ "slug": "acme" })),
    )
    .await;
    let long = "n".repeat(257);
    let max = "é".repeat(128); // 256 bytes

    // (collection, body with a long name, item path for PATCH)
    let entities = [
        (
            "/admin/v1/orgs",
            json!({ "slug": "o2" }),
            "/admin/v1/orgs/o2",
        ),
        (
            "/admin/v1/orgs/acme/teams",
            json!({ "slug": "t" }),
            "/admin/v1/orgs/acme/teams/t",
        ),
        (
            "/admin/v1/orgs/acme/agents",
            json!({ "slug": "a" }),
            "/admin/v1/orgs/acme/agents/a",
        ),
        (
            "/admin/v1/orgs/acme/toolsets",
            json!({ "slug": "ts" }),
            "/admin/v1/orgs/acme/toolsets/ts",
        ),
        (
            "/admin/v1/orgs/acme/end-users",
            json!({ "external_id": "u" }),
            "/admin/v1/orgs/acme/end-users/u",
        ),
        (
            "/admin/v1/servers",
            json!({ "slug": "s", "transport": http("http://192.0.2.10/") }),
            "/admin/v1/servers/s",
        ),
        (
            "/admin/v1/orgs/acme/servers",
            json!({ "slug": "os", "transport": http("http://192.0.2.10/") }),
            "/admin/v1/orgs/acme/servers/os",
        ),
    ];
    for (collection, body, item) in entities {
        let mut too_long = body.clone();
        too_long["name"] = json!(long);
        let reply = h.post(collection, too_long).await;
        assert_error(&reply, 422, "invalid_value");
        assert_eq!(reply.body["error"]["details"]["field"], "name");
        assert_eq!(h.get(item).await.status, 404, "{item}: nothing written");

        let mut fits = body.clone();
        fits["name"] = json!(max);
        let created = h.post(collection, fits).await;
        assert_eq!(created.status, 201, "{collection}: {}", created.body);

        let reply = h.patch(item, json!({ "name": long })).await;
        assert_error(&reply, 422, "invalid_value");
        assert_eq!(h.get(item).await.body["name"], json!(max), "{item}");
    }

    // Keys, end user ids and admin tokens: the same rule.
    let reply = h
        .post("/admin/v1/orgs/acme/keys", json!({ "name": long }))
        .await;
    assert_error(&reply, 422, "invalid_value");
    let reply = h
        .post(
            "/admin/v1/orgs/acme/end-users",
            json!({ "external_id": long }),
        )
        .await;
    assert_error(&reply, 422, "invalid_value");
    let reply = h
        .post("/admin/v1/admin-tokens", json!({ "name": long }))
        .await;
    assert_error(&reply, 422, "invalid_value");

    // Other free text is bounded too.
    let huge_url = format!("http://192.0.2.10/{}", "a".repeat(3000));
    let many_args: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    for (field, transport) in [
        ("transport.url", http(&huge_url)),
        (
            "transport.args",
            json!({ "type": "stdio", "command": "npx", "args": many_args }),
        ),
        (
            "transport.command",
            json!({ "type": "stdio", "command": "x".repeat(5000) }),
        ),
        (
            "transport.env",
            json!({ "type": "stdio", "command": "npx", "env": { "V": "v".repeat(10_000) } }),
        ),
    ] {
        let reply = h
            .post(
                "/admin/v1/servers",
                json!({ "slug": "big", "transport": transport }),
            )
            .await;
        assert_error(&reply, 422, "invalid_value");
        assert_eq!(reply.body["error"]["details"]["field"], field);
    }
    let reply = h
        .post(
            "/admin/v1/servers",
            json!({ "slug": "big", "transport": http("http://192.0.2.10/"),
                    "secret_headers": { "x-h": "v".repeat(10_000) } }),
        )
        .await;
    assert_error(&reply, 422, "invalid_value");
    assert_eq!(reply.body["error"]["details"]["field"], "secret_headers");
}
