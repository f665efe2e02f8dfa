//! The front door under bad input: strict JSON-RPC, bounded caller strings,
//! JSON bodies for every refusal, session caps. Each of these was accepted
//! (or answered loosely) before the request path became a pipeline.

mod common;

use std::time::Duration;

use common::fixture::{self, Mode};
use common::*;
use serde_json::{json, Value};
use warden_gateway::{BoxFuture, DecisionRecorder, GatewayConfig, GatewayError};
use warden_policy::Snapshot;
use warden_store::{DecisionOutcome, DecisionRecord, LivePolicy};

async fn one_server(config: GatewayConfig) -> (fixture::Fixture, Harness) {
    let fx = fixture::start(Mode::Normal, &["echo"]).await;
    let h = start_with(
        LivePolicy::new(Snapshot::build(rows(1, &["files"])).unwrap()),
        vec![http_upstream(1, "files", &fx.url(), 5_000)],
        config,
    )
    .await;
    (fx, h)
}

async fn raw(h: &Harness, session: Option<&str>, body: String) -> (u16, Value) {
    let mut req = h
        .http
        .post(h.url("/mcp"))
        .bearer_auth(KEY_A)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body);
    if let Some(s) = session {
        req = req
            .header("mcp-session-id", s)
            .header("mcp-protocol-version", "2025-11-25");
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = resp.text().await.unwrap();
    assert_eq!(ct.as_deref(), Some("application/json"), "{status}: {text}");
    (status, serde_json::from_str(&text).unwrap())
}

#[tokio::test]
async fn json_rpc_is_strict() {
    let (_fx, h) = one_server(GatewayConfig::default()).await;
    let sid = h.initialize("/mcp", KEY_A).await;
    let cases = [
        r#"{"jsonrpc":"1.0","id":1,"method":"tools/list"}"#,
        r#"{"id":1,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":null,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":{"a":1},"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":[1],"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":1.5,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":[1]}"#,
    ];
    for body in cases {
        let (status, msg) = raw(&h, Some(&sid), body.to_owned()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(msg["error"]["code"], -32600, "{body}");
        assert_eq!(msg["error"]["data"]["reason"], "invalid_request", "{body}");
        assert_eq!(msg["id"], Value::Null);
    }
    // The same session still works: nothing was corrupted.
    assert_eq!(
        h.list_tool_names("/mcp", KEY_A, &sid).await,
        ["files__echo"]
    );
}

#[tokio::test]
async fn an_oversized_body_is_a_json_413() {
    let config = GatewayConfig {
        max_request_bytes: 64 * 1024,
        ..GatewayConfig::default()
    };
    let (_fx, h) = one_server(config).await;
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "files__echo", "arguments": {"x": "a".repeat(100 * 1024)}}});
    let (status, msg) = raw(&h, None, big.to_string()).await;
    assert_eq!(status, 413);
    assert_eq!(msg["error"]["data"]["reason"], "body_too_large");
    assert_eq!(msg["error"]["data"]["max_bytes"], 64 * 1024);
}

#[tokio::test]
async fn caller_strings_are_bounded_never_echoed_or_recorded() {
    let (fx, mut h) = one_server(GatewayConfig::default()).await;
    let sid = h.initialize("/mcp", KEY_A).await;
    let huge = format!("files__{}", "x".repeat(1024 * 1024));
    let body = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {"name": huge, "arguments": {}}});
    let (status, msg) = raw(&h, Some(&sid), body.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(msg["id"], 5);
    assert_eq!(msg["error"]["code"], -32602);
    assert_eq!(msg["error"]["data"]["reason"], "field_too_long");
    assert_eq!(msg["error"]["data"]["field"], "params.name");
    assert!(msg.to_string().len() < 1024, "the name was echoed");
    for (method, params) in [
        (
            "resources/read",
            json!({"uri": format!("warden:files/{}", "u".repeat(64 * 1024))}),
        ),
        ("prompts/get", json!({"name": "p".repeat(4096)})),
    ] {
        let body = json!({"jsonrpc": "2.0", "id": 6, "method": method, "params": params});
        let (_, msg) = raw(&h, Some(&sid), body.to_string()).await;
        assert_eq!(msg["error"]["data"]["reason"], "field_too_long", "{method}");
        assert!(msg.to_string().len() < 1024, "{method} echoed its input");
    }
    // Nothing reached the audit log, and nothing reached the upstream.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(h.decisions.try_recv().is_err());
    assert!(fx.state.requests("tools/call").is_empty());

    // A path slug too long to name anything.
    let long_path = format!("/mcp/servers/{}", "s".repeat(4096));
    let resp = h
        .post_raw(
            &long_path,
            Some(KEY_A),
            None,
            &[],
            &json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        )
        .await;
    assert_eq!(resp.status(), 404);
    let msg: Value = resp.json().await.unwrap();
    assert_eq!(msg["error"]["data"]["reason"], "endpoint_unknown");

    // An over-long identity assertion is refused before it is looked up.
    let resp = h
        .post_raw(
            "/mcp",
            Some(KEY_A),
            None,
            &[("x-warden-end-user", &"e".repeat(300))],
            &json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        )
        .await;
    assert_eq!(resp.status(), 400);
    let msg: Value = resp.json().await.unwrap();
    assert_eq!(msg["error"]["data"]["reason"], "bad_header");
    assert!(msg.to_string().len() < 1024);
}

#[tokio::test]
async fn sessions_are_capped_per_key_and_in_total() {
    let config = GatewayConfig {
        max_sessions_per_key: 3,
        max_sessions_total: 5,
        ..GatewayConfig::default()
    };
    let (_fx, h) = one_server(config).await;
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let mut a = Vec::new();
    for _ in 0..3 {
        a.push(h.initialize("/mcp", KEY_A).await);
    }
    let resp = h.post_raw("/mcp", Some(KEY_A), None, &[], &init).await;
    assert_eq!(resp.status(), 429);
    let msg: Value = resp.json().await.unwrap();
    assert_eq!(msg["error"]["data"]["reason"], "session_limit");
    assert_eq!(msg["error"]["data"]["scope"], "key");
    assert_eq!(msg["error"]["data"]["limit"], 3);

    // Another key still gets sessions, up to the total.
    h.initialize("/mcp", KEY_B).await;
    h.initialize("/mcp", KEY_B).await;
    let resp = h.post_raw("/mcp", Some(KEY_B), None, &[], &init).await;
    assert_eq!(resp.status(), 429);
    let msg: Value = resp.json().await.unwrap();
    assert_eq!(msg["error"]["data"]["scope"], "total");

    // Ending a session frees its slot; the live ones keep working.
    let del = h
        .http
        .delete(h.url("/mcp"))
        .bearer_auth(KEY_A)
        .header("mcp-session-id", &a[0])
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    h.initialize("/mcp", KEY_A).await;
    assert_eq!(
        h.list_tool_names("/mcp", KEY_A, &a[1]).await,
        ["files__echo"]
    );
    assert_eq!(h.gateway.live_sessions(), 5);
}

/// A database that refuses every write.
struct RefusingAudit;

impl DecisionRecorder for RefusingAudit {
    fn record(&self, _record: DecisionRecord) {}
    fn record_durable(
        &self,
        _record: DecisionRecord,
    ) -> BoxFuture<'static, Result<(), GatewayError>> {
        Box::pin(async { Err(GatewayError::AuditUnavailable("disk full".into())) })
    }
    fn record_outcome(&self, _outcome: DecisionOutcome) {}
}

#[tokio::test]
async fn a_call_whose_decision_cannot_be_recorded_is_not_forwarded() {
    let fx = fixture::start(Mode::Normal, &["echo"]).await;
    let h = start_recording(
        LivePolicy::new(Snapshot::build(rows(1, &["files"])).unwrap()),
        vec![http_upstream(1, "files", &fx.url(), 5_000)],
        GatewayConfig::default(),
        Some(std::sync::Arc::new(RefusingAudit)),
    )
    .await;
    let sid = h.initialize("/mcp", KEY_A).await;
    let r = h
        .rpc(
            "/mcp",
            KEY_A,
            &sid,
            3,
            "tools/call",
            json!({"name": "files__echo", "arguments": {}}),
        )
        .await;
    assert_eq!(r["id"], 3);
    assert_eq!(r["error"]["code"], -32004);
    assert_eq!(r["error"]["data"]["reason"], "audit_unavailable");
    assert!(r["error"]["data"]["decision_id"].is_string());
    assert!(
        fx.state.requests("tools/call").is_empty(),
        "forwarded unaudited"
    );
    // Listing needs no record and still works.
    assert_eq!(
        h.list_tool_names("/mcp", KEY_A, &sid).await,
        ["files__echo"]
    );
}

#[tokio::test]
async fn mount_points_answer_their_methods_only() {
    let (_fx, h) = one_server(GatewayConfig::default()).await;
    for path in ["/mcp", "/mcp/servers/files", "/mcp/toolsets/any"] {
        let resp = h
            .http
            .put(h.url(path))
            .bearer_auth(KEY_A)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 405, "{path}");
        let allow = resp.headers()["allow"].to_str().unwrap().to_owned();
        for method in ["GET", "HEAD", "POST", "DELETE"] {
            assert!(allow.contains(method), "{path}: {allow}");
        }
        // Without a key: refused with a challenge, as JSON, whatever the
        // method; HEAD the same with no body.
        let resp = h.http.post(h.url(path)).body("{}").send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{path}");
        assert!(resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["data"]["reason"], "key_missing", "{path}");
        let resp = h.http.head(h.url(path)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{path}");
        assert!(resp.bytes().await.unwrap().is_empty(), "{path}");
    }
    // A slug too long to be one is an unknown endpoint, before the key is
    // looked at.
    let long = format!("/mcp/servers/{}", "s".repeat(300));
    let resp = h.http.post(h.url(&long)).body("{}").send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["data"]["reason"], "endpoint_unknown");
}
