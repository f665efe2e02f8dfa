//! The data plane's half of tenant isolation: an upstream whose URL an org
//! admin set reaches only what the platform's egress policy allows, at
//! every connection (IP literals, names resolving to internal addresses,
//! DNS rebinding); no upstream's redirect is followed; stdio children get
//! none of Warden's environment and only allowed commands run.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use common::fixture::{self, Mode};
use common::*;
use serde_json::json;
use warden_gateway::GatewayConfig;
use warden_policy::{ServerId, Snapshot};
use warden_store::{EgressPolicy, LivePolicy, Secret, Transport, UpstreamConfig, UpstreamPolicy};

fn restricted(id: i64, slug: &str, url: &str) -> UpstreamConfig {
    UpstreamConfig {
        egress_restricted: true,
        ..http_upstream(id, slug, url, 2_000)
    }
}

async fn start_with_policy(
    slugs: &[&str],
    upstreams: Vec<UpstreamConfig>,
    policy: UpstreamPolicy,
) -> Harness {
    let mut config = GatewayConfig::default();
    config.upstream.policy = Arc::new(policy);
    start_with(
        LivePolicy::new(Snapshot::build(rows(1, slugs)).unwrap()),
        upstreams,
        config,
    )
    .await
}

fn requests_seen(fx: &fixture::Fixture) -> usize {
    fx.state.recorded.lock().unwrap().len()
}

#[tokio::test]
async fn restricted_upstreams_never_reach_internal_addresses() {
    let fx = fixture::start(Mode::Normal, &["echo"]).await;
    let port = fx.addr.port();
    let urls = [
        fx.url(),                                        // 127.0.0.1 literal
        format!("http://localhost:{port}/mcp"),          // a name for it
        format!("http://[::ffff:127.0.0.1]:{port}/mcp"), // mapped
        format!("http://2130706433:{port}/mcp"),         // decimal
        format!("http://127.1:{port}/mcp"),              // short form
        format!("http://user:pw@127.0.0.1:{port}/mcp"),  // userinfo
    ];
    let slugs = ["a", "b", "c", "d", "e", "f"];
    let upstreams = urls
        .iter()
        .zip(slugs)
        .enumerate()
        .map(|(i, (url, slug))| restricted(i as i64 + 1, slug, url))
        .collect();
    let h = start_with_policy(&slugs, upstreams, UpstreamPolicy::default()).await;
    assert!(
        !h.gateway
            .wait_upstreams_ready(Duration::from_millis(500))
            .await
    );
    let sid = h.initialize("/mcp", KEY_A).await;
    assert!(h.list_tool_names("/mcp", KEY_A, &sid).await.is_empty());
    let r = h
        .rpc(
            "/mcp",
            KEY_A,
            &sid,
            1,
            "tools/call",
            json!({"name": "a__echo", "arguments": {}}),
        )
        .await;
    assert!(r.get("error").is_some(), "{r}");
    assert_eq!(requests_seen(&fx), 0, "the fixture was reached");
}

#[tokio::test]
async fn the_platform_can_allow_a_range_for_restricted_upstreams() {
    let fx = fixture::start(Mode::Normal, &["echo"]).await;
    let port = fx.addr.port();
    let policy = UpstreamPolicy {
        egress: EgressPolicy::new(&[] as &[&str], &["127.0.0.0/8"]).unwrap(),
        ..UpstreamPolicy::default()
    };
    let upstreams = vec![
        restricted(1, "a", &fx.url()),
        restricted(2, "b", &format!("http://localhost:{port}/mcp")),
    ];
    let h = start_with_policy(&["a", "b"], upstreams, policy).await;
    assert!(h.gateway.wait_upstreams_ready(Duration::from_secs(5)).await);
    let sid = h.initialize("/mcp", KEY_A).await;
    assert_eq!(
        h.list_tool_names("/mcp", KEY_A, &sid).await,
        vec!["a__echo", "b__echo"]
    );
}

/// An HTTP server that redirects every request to `to`.
async fn redirector(to: String) -> String {
    let app = axum::Router::new().fallback(move || {
        let to = to.clone();
        async move {
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, to)],
                "moved",
            )
                .into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}/mcp")
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let target = fixture::start(Mode::Normal, &["echo"]).await;
    let from = redirector(target.url()).await;
    // Even an unrestricted (platform) upstream: a redirect is an error.
    let h = start(rows(1, &["r"]), vec![http_upstream(1, "r", &from, 2_000)]).await;
    assert!(
        !h.gateway
            .wait_upstreams_ready(Duration::from_millis(500))
            .await
    );
    let sid = h.initialize("/mcp", KEY_A).await;
    assert!(h.list_tool_names("/mcp", KEY_A, &sid).await.is_empty());
    assert_eq!(requests_seen(&target), 0, "the redirect was followed");
}

fn stdio_env_upstream() -> UpstreamConfig {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/stdio_env.py");
    let mut secret_headers = BTreeMap::new();
    secret_headers.insert("UPSTREAM_API_KEY".to_string(), Secret::new("upstream-key"));
    UpstreamConfig {
        server: ServerId(1),
        slug: "local".into(),
        owner_org: None,
        transport: Transport::Stdio {
            command: "python3".into(),
            args: vec![script.into()],
            env: [("CONFIGURED".to_string(), "yes".to_string())].into(),
        },
        secret_headers,
        timeout_ms: 5_000,
        egress_restricted: false,
        config_revision: 1,
    }
}

#[tokio::test]
async fn stdio_children_get_none_of_wardens_environment() {
    // What a real deployment has in Warden's environment.
    for (k, v) in [
        ("WARDEN_ADMIN_TOKEN", "platform-admin-secret"),
        ("WARDEN_SECRET_KEY", "c2VjcmV0LWtleQ=="),
        ("WARDEN_DATABASE_URL", "postgres://warden:pw@db/warden"),
        ("AWS_SECRET_ACCESS_KEY", "aws-secret"),
    ] {
        std::env::set_var(k, v);
    }
    let h = start(rows(1, &["local"]), vec![stdio_env_upstream()]).await;
    let sid = h.initialize("/mcp", KEY_A).await;
    let r = h
        .rpc(
            "/mcp",
            KEY_A,
            &sid,
            1,
            "tools/call",
            json!({"name": "local__env", "arguments": {}}),
        )
        .await;
    let text = r["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"));
    let env: BTreeMap<String, String> = serde_json::from_str(text).unwrap();
    for leaked in [
        "WARDEN_ADMIN_TOKEN",
        "WARDEN_SECRET_KEY",
        "WARDEN_DATABASE_URL",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        assert!(!env.contains_key(leaked), "{leaked} leaked: {env:?}");
    }
    assert!(
        env.values().all(|v| !v.contains("platform-admin-secret")),
        "{env:?}"
    );
    assert_eq!(env.get("CONFIGURED").map(String::as_str), Some("yes"));
    assert_eq!(
        env.get("UPSTREAM_API_KEY").map(String::as_str),
        Some("upstream-key")
    );
    assert!(env.contains_key("PATH"), "{env:?}");
    // Nothing else of this process's environment reached the child (what
    // the child has besides is its interpreter's own doing, e.g. a pyenv shim
    // sets PYENV_* again).
    for (k, v) in &env {
        let inherited = std::env::var(k).is_ok_and(|mine| mine == *v);
        assert!(
            !inherited
                || INHERITED.contains(&k.as_str())
                || k == "CONFIGURED"
                || k.starts_with("PYENV"),
            "{k} was inherited from Warden"
        );
    }
}

/// What the gateway documents as passed through to stdio children.
const INHERITED: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"];

#[tokio::test]
async fn stdio_commands_outside_the_allow_list_are_not_spawned() {
    let only_npx = UpstreamPolicy {
        stdio_allowed_commands: Some(vec!["npx".into()]),
        ..UpstreamPolicy::default()
    };
    let h = start_with_policy(&["local"], vec![stdio_env_upstream()], only_npx).await;
    assert!(
        !h.gateway
            .wait_upstreams_ready(Duration::from_millis(300))
            .await
    );
    let sid = h.initialize("/mcp", KEY_A).await;
    assert!(h.list_tool_names("/mcp", KEY_A, &sid).await.is_empty());

    let python = UpstreamPolicy {
        stdio_allowed_commands: Some(vec!["python3".into()]),
        ..UpstreamPolicy::default()
    };
    let h = start_with_policy(&["local"], vec![stdio_env_upstream()], python).await;
    let sid = h.initialize("/mcp", KEY_A).await;
    assert_eq!(
        h.list_tool_names("/mcp", KEY_A, &sid).await,
        vec!["local__env"]
    );
}
