//! The gateway over real HTTP: real policy snapshots, real upstream MCP
//! servers (an axum fixture and a stdio script), a real HTTP client.

mod common;

use std::time::Duration;

use common::fixture::{self, Mode};
use common::*;
use serde_json::{json, Value};
use warden_gateway::GatewayConfig;
use warden_policy::{OrgId, Scope, ServerId, Snapshot, ToolFilter, ToolsetId, ToolsetRow};
use warden_store::LivePolicy;

async fn one_server() -> (fixture::Fixture, Harness) {
    let fx = fixture::start(Mode::Normal, &["echo", "slow", "progress", "admin"]).await;
    let h = start(
        rows(1, &["files"]),
        vec![http_upstream(1, "files", &fx.url(), 5_000)],
    )
    .await;
    (fx, h)
}

#[tokio::test]
async fn session_era_handshake_list_call_and_delete() {
    let (_fx, h) = one_server().await;
    let sid = h.initialize("/mcp", KEY_A).await;
    let names = h.list_tool_names("/mcp", KEY_A, &sid).await;
    assert_eq!(
        names,
        vec![
            "files__echo",
            "files__slow",
            "files__progress",
            "files__admin"
        ]
    );

    let r = h
        .rpc(
            "/mcp",
            KEY_A,
            &sid,
            2,
            "tools/call",
            json!({"name": "files__echo", "arguments": {"a": 1}}),
        )
        .await;
    assert_eq!(r["id"], 2);
    assert_eq!(r["result"]["content"][0]["text"], "echo called");
    assert_eq!(r["result"]["_meta"]["upstream/meta"], "kept");
    assert!(r["result"]["_meta"]["warden.dev/decision_id"].is_string());
    assert_eq!(r["result"]["_meta"]["warden.dev/revision"], 1);

    // The one-server endpoint: names unchanged.
    let sid2 = h.initialize("/mcp/servers/files", KEY_A).await;
    let plain = h.list_tool_names("/mcp/servers/files", KEY_A, &sid2).await;
    assert_eq!(plain, vec!["echo", "slow", "progress", "admin"]);
    let r = h
        .rpc(
            "/mcp/servers/files",
            KEY_A,
            &sid2,
            3,
            "tools/call",
            json!({"name": "echo"}),
        )
        .await;
    assert_eq!(r["result"]["content"][0]["text"], "echo called");

    // A session of one endpoint is unknown on another.
    let wrong = h
        .post_raw(
            "/mcp/servers/files",
            Some(KEY_A),
            Some(&sid),
            &[],
            &json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        )
        .await;
    assert_eq!(wrong.status(), 404);

    let del = h
        .http
        .delete(h.url("/mcp"))
        .bearer_auth(KEY_A)
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    let after = h
        .post_raw(
            "/mcp",
            Some(KEY_A),
            Some(&sid),
            &[],
            &json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        )
        .await;
    assert_eq!(after.status(), 404);
    let missing = h
        .post_raw(
            "/mcp",
            Some(KEY_A),
            None,
            &[],
            &json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        )
        .await;
    assert_eq!(missing.status(), 400);
    let bad_version = h
        .post_raw(
            "/mcp/servers/files",
            Some(KEY_A),
            Some(&sid2),
            &[("mcp-protocol-version", "1999-01-01")],
            &json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        )
        .await;
    assert_eq!(bad_version.status(), 400);
}

#[tokio::test]
async fn stateless_era_discover_list_and_call() {
    let (_fx, h) = one_server().await;
    let d = h
        .rpc_stateless("/mcp", KEY_A, 1, "server/discover", json!({}))
        .await;
    assert!(d["result"]["supportedVersions"]
        .as_array()
        .unwrap()
        .contains(&json!("2026-07-28")));
    assert_eq!(d["result"]["resultType"], "complete");
    let l = h
        .rpc_stateless("/mcp", KEY_A, 2, "tools/list", json!({}))
        .await;
    assert_eq!(l["result"]["cacheScope"], "private");
    assert_eq!(l["result"]["tools"].as_array().unwrap().len(), 4);
    let c = h
        .rpc_stateless(
            "/mcp",
            KEY_A,
            3,
            "tools/call",
            json!({"name": "files__echo", "arguments": {}}),
        )
        .await;
    assert_eq!(c["result"]["resultType"], "complete");
    assert_eq!(c["result"]["content"][0]["text"], "echo called");
    let mismatch = h
        .post_raw(
            "/mcp",
            Some(KEY_A),
            None,
            &[
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
            ],
            &json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list", "params": with_meta(json!({}))}),
        )
        .await;
    assert_eq!(mismatch.status(), 400);
    let body = response_message(mismatch).await;
    assert_eq!(body["error"]["code"], -32020);
    assert_eq!(body["id"], 4);
}

#[tokio::test]
async fn authentication_and_session_binding() {
    let (_fx, h) = one_server().await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}});
    let none = h.post_raw("/mcp", None, None, &[], &ping).await;
    assert_eq!(none.status(), 401);
    assert!(none.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let unknown = h.post_raw("/mcp", Some("nope"), None, &[], &ping).await;
    assert_eq!(unknown.status(), 401);
    assert!(unknown.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    let assert_user = h
        .post_raw(
            "/mcp",
            Some(KEY_A),
            None,
            &[("x-warden-end-user", "bob")],
            &ping,
        )
        .await;
    assert_eq!(assert_user.status(), 403);
    let body: Value = assert_user.json().await.unwrap();
    assert_eq!(
        body["error"]["data"]["reason"],
        "end_user_assertion_not_allowed"
    );

    let sid = h.initialize("/mcp", KEY_A).await;
    let other = h
        .post_raw(
            "/mcp",
            Some(KEY_B),
            Some(&sid),
            &[],
            &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        )
        .await;
    // Another principal's session answers exactly like an unknown one: an
    // id reveals nothing about its owner.
    assert_eq!(other.status(), 404);
    let foreign: Value = other.json().await.unwrap();
    assert_eq!(foreign["error"]["data"]["reason"], "session_unknown");
    let unknown = h
        .post_raw(
            "/mcp",
            Some(KEY_B),
            Some("0123456789abcdef0123456789abcdef"),
            &[],
            &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        )
        .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.json::<Value>().await.unwrap(), foreign);
    let bad_origin = h
        .post_raw(
            "/mcp",
            Some(KEY_A),
            Some(&sid),
            &[("origin", "https://evil.example")],
            &json!({"jsonrpc": "2.0", "id": 3, "method": "ping"}),
        )
        .await;
    assert_eq!(bad_origin.status(), 403);
    let local_origin = h
        .post_raw(
            "/mcp",
            Some(KEY_A),
            Some(&sid),
            &[("origin", "http://localhost:6274")],
            &json!({"jsonrpc": "2.0", "id": 3, "method": "ping"}),
        )
        .await;
    assert_eq!(local_origin.status(), 200);
}

#[tokio::test]
async fn list_equals_call_and_denials_carry_reason_and_decision_id() {
    let (_fx, mut h) = one_server().await;
    let sid = h.initialize("/mcp", KEY_B).await;
    let listed = h.list_tool_names("/mcp", KEY_B, &sid).await;
    assert_eq!(listed, vec!["files__echo"]);
    for (i, name) in [
        "files__echo",
        "files__slow",
        "files__admin",
        "files__nope",
        "ghost__echo",
        "echo",
    ]
    .iter()
    .enumerate()
    {
        let r = h
            .rpc(
                "/mcp",
                KEY_B,
                &sid,
                10 + i as i64,
                "tools/call",
                json!({"name": name, "arguments": {"ms": 1}}),
            )
            .await;
        let allowed = r.get("result").is_some();
        assert_eq!(allowed, listed.contains(&name.to_string()), "{name}: {r}");
        if !allowed {
            assert_eq!(r["error"]["code"], -32602);
            assert_eq!(r["error"]["message"], format!("Unknown tool: {name}"));
            assert!(r["error"]["data"]["decision_id"].is_string());
            assert_eq!(r["error"]["data"]["revision"], 1);
        }
    }
    let r = h
        .rpc(
            "/mcp",
            KEY_B,
            &sid,
            30,
            "tools/call",
            json!({"name": "files__slow"}),
        )
        .await;
    assert_eq!(r["error"]["data"]["reason"], "not_granted_by_key");
    let r = h
        .rpc(
            "/mcp",
            KEY_B,
            &sid,
            31,
            "tools/call",
            json!({"name": "ghost__echo"}),
        )
        .await;
    assert_eq!(r["error"]["data"]["reason"], "server_unknown");
    let r = h
        .rpc(
            "/mcp",
            KEY_A,
            &h.initialize("/mcp", KEY_A).await,
            32,
            "tools/call",
            json!({"name": "files__nope"}),
        )
        .await;
    assert_eq!(r["error"]["data"]["reason"], "tool_unknown");

    // Every call decision reached the recorder, allowed and denied.
    let mut seen = Vec::new();
    while let Ok(Some(d)) =
        tokio::time::timeout(Duration::from_millis(200), h.decisions.recv()).await
    {
        seen.push(d);
    }
    assert!(seen
        .iter()
        .any(|d| d.allowed && d.tool.as_deref() == Some("echo")));
    assert!(seen.iter().any(|d| !d.allowed
        && d.reason.as_deref() == Some("not_granted_by_key")
        && d.server_slug == "files"));
}

#[tokio::test]
async fn credentials_stay_home_secrets_are_injected_and_unknown_fields_pass_both_ways() {
    let (fx, h) = one_server().await;
    let sid = h.initialize("/mcp", KEY_A).await;
    let params = json!({"name": "files__echo", "arguments": {"deep": {"x": [1, {"y": null}]}},
                        "x-client-extra": {"order": ["b", "a"]}, "_meta": {"client/meta": 7}});
    let r = h.rpc("/mcp", KEY_A, &sid, 5, "tools/call", params).await;
    assert_eq!(
        r["result"]["x-unknown-result"],
        json!({"nested": [1, 2, 3]})
    );
    let seen = &r["result"]["structuredContent"]["params_seen"];
    assert_eq!(seen["arguments"], json!({"deep": {"x": [1, {"y": null}]}}));
    assert_eq!(seen["x-client-extra"], json!({"order": ["b", "a"]}));
    assert_eq!(seen["_meta"]["client/meta"], 7);
    assert_eq!(seen["name"], "echo");

    let recorded = fx.state.recorded.lock().unwrap().clone();
    assert!(!recorded.is_empty());
    for (headers, body) in &recorded {
        assert_eq!(headers["x-upstream-secret"], "secret-for-files");
        assert!(
            headers.get("authorization").is_none(),
            "client credentials leaked upstream"
        );
        let text = format!("{headers:?} {body}");
        assert!(!text.contains(KEY_A), "warden key leaked upstream");
        assert!(!text.contains(&sid), "client session id leaked upstream");
    }
    // The tool objects reach the client with their unknown fields.
    let l = h.rpc("/mcp", KEY_A, &sid, 6, "tools/list", json!({})).await;
    assert_eq!(l["result"]["tools"][0]["x-vendor"], json!({"keep": "echo"}));
}

#[tokio::test]
async fn a_broken_upstream_only_breaks_itself() {
    let good = fixture::start(Mode::Normal, &["echo", "slow"]).await;
    let garbage = fixture::start(Mode::Garbage, &["echo"]).await;
    let huge = fixture::start(Mode::Oversized, &["echo"]).await;
    let h = start(
        rows(1, &["good", "garbage", "huge", "down", "sluggish"]),
        vec![
            http_upstream(1, "good", &good.url(), 5_000),
            http_upstream(2, "garbage", &garbage.url(), 5_000),
            http_upstream(3, "huge", &huge.url(), 5_000),
            http_upstream(4, "down", "http://127.0.0.1:9/mcp", 500),
            http_upstream(5, "sluggish", &good.url(), 300),
        ],
    )
    .await;
    let sid = h.initialize("/mcp", KEY_A).await;
    let names = h.list_tool_names("/mcp", KEY_A, &sid).await;
    assert!(names.contains(&"good__echo".to_string()));
    assert!(!names.iter().any(|n| n.starts_with("down__")));

    for (name, kind) in [
        ("garbage__echo", "protocol"),
        ("huge__echo", "too_large"),
        ("sluggish__slow", "timeout"),
    ] {
        let r = h
            .rpc(
                "/mcp",
                KEY_A,
                &sid,
                1,
                "tools/call",
                json!({"name": name, "arguments": {"ms": 2000}}),
            )
            .await;
        assert_eq!(r["error"]["code"], -32001, "{name}: {r}");
        assert_eq!(r["error"]["data"]["kind"], kind, "{name}: {r}");
        let server = name.split("__").next().unwrap();
        assert_eq!(r["error"]["data"]["server"], server);
        let ok = h
            .rpc(
                "/mcp",
                KEY_A,
                &sid,
                2,
                "tools/call",
                json!({"name": "good__echo"}),
            )
            .await;
        assert_eq!(ok["result"]["content"][0]["text"], "echo called");
    }
    // The down server's tools are unknown to the catalog: a clear denial.
    let r = h
        .rpc(
            "/mcp",
            KEY_A,
            &sid,
            3,
            "tools/call",
            json!({"name": "down__echo"}),
        )
        .await;
    assert_eq!(r["error"]["data"]["reason"], "tool_unknown");
    assert_eq!(r["error"]["data"]["upstream"]["status"], "unavailable");
    let message = r["error"]["message"].as_str().unwrap();
    assert!(message.contains("server down is unavailable"), "{message}");
    // The timed-out call was cancelled upstream.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!good.state.requests("notifications/cancelled").is_empty());
}

#[tokio::test]
async fn progress_and_logging_reach_the_caller_with_its_own_token() {
    let (_fx, h) = one_server().await;
    let sid = h.initialize("/mcp", KEY_A).await;
    let resp = h
        .post_raw(
            "/mcp",
            Some(KEY_A),
            Some(&sid),
            &[],
            &json!({"jsonrpc": "2.0", "id": "call-1", "method": "tools/call",
            "params": {"name": "files__progress", "_meta": {"progressToken": "tok-A"}}}),
        )
        .await;
    let msgs = all_messages(resp).await;
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    assert_eq!(msgs[0]["params"]["progressToken"], "tok-A");
    assert_eq!(msgs[1]["method"], "notifications/message");
    assert_eq!(msgs[2]["id"], "call-1");
    assert_eq!(msgs[2]["result"]["content"][0]["text"], "done");
}

/// A client that accepts both gets plain JSON when the upstream only
/// answers, a stream when something comes before the answer, and a stream
/// opened early for a call slower than a second.
#[tokio::test]
async fn replies_are_json_unless_something_comes_first_or_the_call_is_slow() {
    let (_fx, h) = one_server().await;
    let sid = h.initialize("/mcp", KEY_A).await;
    let call = |name: &str, args: Value| {
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
               "params": {"name": name, "arguments": args, "_meta": {"progressToken": "t"}}})
    };
    let content_type =
        |resp: &reqwest::Response| resp.headers()["content-type"].to_str().unwrap().to_owned();

    let resp = h
        .post_raw(
            "/mcp",
            Some(KEY_A),
            Some(&sid),
            &[],
            &call("files__echo", json!({})),
        )
        .await;
    assert!(content_type(&resp).starts_with("application/json"));
    let msg: Value = resp.json().await.unwrap();
    assert_eq!(msg["result"]["content"][0]["text"], "echo called");

    let resp = h
        .post_raw(
            "/mcp",
            Some(KEY_A),
            Some(&sid),
            &[],
            &call("files__progress", json!({})),
        )
        .await;
    assert!(content_type(&resp).starts_with("text/event-stream"));
    let msgs = all_messages(resp).await;
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    assert_eq!(msgs[2]["id"], 7);

    let started = std::time::Instant::now();
    let resp = h
        .post_raw(
            "/mcp",
            Some(KEY_A),
            Some(&sid),
            &[],
            &call("files__slow", json!({"ms": 1500})),
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "headers waited for the reply"
    );
    assert!(content_type(&resp).starts_with("text/event-stream"));
    let msgs = all_messages(resp).await;
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0]["result"]["content"][0]["text"], "slow done");
}

#[tokio::test]
async fn client_cancellation_is_passed_upstream() {
    let (fx, h) = one_server().await;
    let sid = h.initialize("/mcp", KEY_A).await;
    let call = {
        let h_url = h.url("/mcp");
        let sid = sid.clone();
        let client = h.http.clone();
        tokio::spawn(async move {
            client
                .post(h_url)
                .bearer_auth(KEY_A)
                .header("accept", "application/json")
                .header("mcp-session-id", sid)
                .body(json!({"jsonrpc": "2.0", "id": 77, "method": "tools/call", "params": {"name": "files__slow", "arguments": {"ms": 5000}}}).to_string())
                .header("content-type", "application/json")
                .send()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let n = h
        .post_raw("/mcp", Some(KEY_A), Some(&sid), &[], &json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 77, "reason": "user"}}))
        .await;
    assert_eq!(n.status(), 202);
    let resp = tokio::time::timeout(Duration::from_secs(3), call)
        .await
        .unwrap()
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32800);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let cancels = fx.state.requests("notifications/cancelled");
    assert_eq!(cancels.len(), 1);
    let upstream_call = fx.state.requests("tools/call").last().unwrap().1.clone();
    assert_eq!(cancels[0].1["params"]["requestId"], upstream_call["id"]);
}

#[tokio::test]
async fn list_changed_goes_only_to_sessions_whose_list_changed() {
    let (_fx, h) = one_server().await;
    let sid_a = h.initialize("/mcp", KEY_A).await;
    let sid_b = h.initialize("/mcp", KEY_B).await;
    let mut stream_a = h.open_stream("/mcp", KEY_A, &sid_a).await;
    let mut stream_b = h.open_stream("/mcp", KEY_B, &sid_b).await;
    // Key B may now use "slow" as well; key A's view is unchanged.
    let mut next = rows(2, &["files"]);
    next.keys[1].scope = only(1, &["echo", "slow"]);
    h.install(next);
    let note = stream_b
        .next(Duration::from_secs(2))
        .await
        .expect("B is told");
    assert_eq!(note["method"], "notifications/tools/list_changed");
    assert!(
        stream_a.next(Duration::from_millis(300)).await.is_none(),
        "A must not be told"
    );
    assert_eq!(
        h.list_tool_names("/mcp", KEY_B, &sid_b).await,
        vec!["files__echo", "files__slow"]
    );

    // A catalog change confined to tools B cannot see is news for A only.
    let all = ["echo", "slow", "progress", "admin", "fresh"];
    _fx.state
        .set_tools(all.iter().map(|t| fixture::tool(t)).collect());
    let a = stream_a
        .next(Duration::from_secs(3))
        .await
        .expect("A is told of the new tool");
    assert_eq!(a["method"], "notifications/tools/list_changed");
    assert!(
        stream_b.next(Duration::from_millis(500)).await.is_none(),
        "B sees none of the changed tools and must not be told"
    );
    // A new definition of a tool both see is news for both.
    let mut tools: Vec<Value> = all.iter().map(|t| fixture::tool(t)).collect();
    tools[0]["description"] = json!("echo, reworded");
    _fx.state.set_tools(tools);
    for stream in [&mut stream_a, &mut stream_b] {
        let note = stream
            .next(Duration::from_secs(3))
            .await
            .expect("both are told of the changed echo");
        assert_eq!(note["method"], "notifications/tools/list_changed");
    }

    // A catalog change upstream reaches every session that sees the server.
    _fx.state
        .set_tools(vec![fixture::tool("echo"), fixture::tool("fresh")]);
    let a = stream_a
        .next(Duration::from_secs(3))
        .await
        .expect("A is told of the catalog change");
    assert_eq!(a["method"], "notifications/tools/list_changed");
    assert!(h
        .list_tool_names("/mcp", KEY_A, &sid_a)
        .await
        .contains(&"files__fresh".to_string()));
}

#[tokio::test]
async fn an_in_flight_call_is_cut_off_by_a_disable() {
    let (fx, h) = one_server().await;
    let sid = h.initialize("/mcp", KEY_A).await;
    let started = std::time::Instant::now();
    let pending = {
        let url = h.url("/mcp");
        let client = h.http.clone();
        let sid = sid.clone();
        tokio::spawn(async move {
            let resp = client
                .post(url)
                .bearer_auth(KEY_A)
                .header("accept", "application/json, text/event-stream")
                .header("content-type", "application/json")
                .header("mcp-session-id", sid)
                .body(json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "files__slow", "arguments": {"ms": 4000}}}).to_string())
                .send()
                .await
                .unwrap();
            response_message(resp).await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut next = rows(2, &["files"]);
    next.org_grants[0].enabled = false;
    h.install(next);
    let r = tokio::time::timeout(Duration::from_secs(2), pending)
        .await
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(r["id"], 9);
    assert_eq!(r["error"]["code"], -32602);
    assert_eq!(r["error"]["data"]["reason"], "server_disabled_by_org");
    assert_eq!(r["error"]["data"]["revision"], 2);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(fx.state.requests("notifications/cancelled").len(), 1);
    assert!(h.list_tool_names("/mcp", KEY_A, &sid).await.is_empty());
}

#[tokio::test]
async fn a_revoked_keys_streams_end_and_its_next_request_is_refused() {
    let (_fx, h) = one_server().await;
    let sid = h.initialize("/mcp", KEY_A).await;
    let mut stream = h.open_stream("/mcp", KEY_A, &sid).await;
    let listen = h
        .post_raw("/mcp", Some(KEY_A), None, &[("mcp-protocol-version", "2026-07-28"), ("mcp-method", "subscriptions/listen")],
            &json!({"jsonrpc": "2.0", "id": "sub-1", "method": "subscriptions/listen", "params": with_meta(json!({"notifications": {"toolsListChanged": true}}))}))
        .await;
    let mut listen = SseReader::new(listen);
    let ack = listen.next(Duration::from_secs(2)).await.unwrap();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(ack["params"]["notifications"]["toolsListChanged"], true);
    assert_eq!(h.gateway.live_sessions(), 2);

    let mut next = rows(2, &["files"]);
    next.keys[0].revoked = true;
    h.install(next);
    while stream.next(Duration::from_secs(2)).await.is_some() {}
    assert!(stream.ended, "the GET stream must close");
    let last = listen.next(Duration::from_secs(2)).await.unwrap();
    assert_eq!(last["id"], "sub-1");
    assert_eq!(last["error"]["data"]["reason"], "key_revoked");
    assert!(listen.next(Duration::from_secs(2)).await.is_none());
    assert!(listen.ended);
    let r = h
        .post_raw(
            "/mcp",
            Some(KEY_A),
            Some(&sid),
            &[],
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        )
        .await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("key_revoked"));
}

#[tokio::test]
async fn stateless_listen_stream_gets_list_changed_with_subscription_id() {
    let (_fx, h) = one_server().await;
    let listen = h
        .post_raw("/mcp", Some(KEY_B), None, &[("mcp-protocol-version", "2026-07-28"), ("mcp-method", "subscriptions/listen")],
            &json!({"jsonrpc": "2.0", "id": 5, "method": "subscriptions/listen", "params": with_meta(json!({"notifications": {"toolsListChanged": true}}))}))
        .await;
    let mut listen = SseReader::new(listen);
    listen.next(Duration::from_secs(2)).await.unwrap();
    let mut next = rows(2, &["files"]);
    next.keys[1].scope = only(1, &["slow"]);
    h.install(next);
    let note = listen.next(Duration::from_secs(2)).await.unwrap();
    assert_eq!(note["method"], "notifications/tools/list_changed");
    assert_eq!(
        note["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        5
    );
}

#[tokio::test]
async fn a_stale_policy_fails_closed() {
    let fx = fixture::start(Mode::Normal, &["echo"]).await;
    let live = LivePolicy::with_max_staleness(
        Snapshot::build(rows(1, &["files"])).unwrap(),
        Some(Duration::from_millis(300)),
    );
    live.confirm_current();
    let h = start_with(
        live.clone(),
        vec![http_upstream(1, "files", &fx.url(), 5_000)],
        GatewayConfig::default(),
    )
    .await;
    live.confirm_current();
    let sid = h.initialize("/mcp", KEY_A).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!h.gateway.is_ready());
    let r = h.post_raw("/mcp", Some(KEY_A), Some(&sid), &[], &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "files__echo"}})).await;
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["data"]["reason"], "policy_stale");
    live.confirm_current();
    assert!(h.gateway.is_ready());
    let ok = h
        .rpc(
            "/mcp",
            KEY_A,
            &sid,
            2,
            "tools/call",
            json!({"name": "files__echo"}),
        )
        .await;
    assert!(ok.get("result").is_some());
}

#[tokio::test]
async fn toolset_endpoint_narrows_and_never_widens() {
    let fx = fixture::start(Mode::Normal, &["echo", "slow", "admin"]).await;
    let mut r = rows(1, &["files"]);
    let mut servers = std::collections::BTreeMap::new();
    servers.insert(ServerId(1), ToolFilter::only(["echo", "slow"]));
    r.toolsets.push(ToolsetRow {
        id: ToolsetId(1),
        org: OrgId(1),
        slug: "basics".into(),
        servers,
    });
    let h = start(r, vec![http_upstream(1, "files", &fx.url(), 5_000)]).await;
    let sid = h.initialize("/mcp/toolsets/basics", KEY_A).await;
    assert_eq!(
        h.list_tool_names("/mcp/toolsets/basics", KEY_A, &sid).await,
        vec!["files__echo", "files__slow"]
    );
    let denied = h
        .rpc(
            "/mcp/toolsets/basics",
            KEY_A,
            &sid,
            1,
            "tools/call",
            json!({"name": "files__admin"}),
        )
        .await;
    assert_eq!(denied["error"]["data"]["reason"], "not_in_toolset");
    // Key B (echo only) through the toolset: never wider than the key.
    let sid_b = h.initialize("/mcp/toolsets/basics", KEY_B).await;
    assert_eq!(
        h.list_tool_names("/mcp/toolsets/basics", KEY_B, &sid_b)
            .await,
        vec!["files__echo"]
    );
    let unknown = h
        .post_raw(
            "/mcp/toolsets/nope",
            Some(KEY_A),
            None,
            &[],
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}}),
        )
        .await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn prompts_and_resources_are_prefixed_and_gated_by_server() {
    let (_fx, h) = one_server().await;
    let sid = h.initialize("/mcp", KEY_A).await;
    let p = h
        .rpc("/mcp", KEY_A, &sid, 1, "prompts/list", json!({}))
        .await;
    assert_eq!(p["result"]["prompts"][0]["name"], "files__greet");
    let g = h
        .rpc(
            "/mcp",
            KEY_A,
            &sid,
            2,
            "prompts/get",
            json!({"name": "files__greet"}),
        )
        .await;
    assert_eq!(g["result"]["messages"][0]["content"]["text"], "greet");
    let rl = h
        .rpc("/mcp", KEY_A, &sid, 3, "resources/list", json!({}))
        .await;
    let uri = rl["result"]["resources"][0]["uri"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(uri, "warden:files/file:///readme");
    let rr = h
        .rpc(
            "/mcp",
            KEY_A,
            &sid,
            4,
            "resources/read",
            json!({"uri": uri}),
        )
        .await;
    assert_eq!(
        rr["result"]["contents"][0]["uri"],
        "warden:files/file:///readme"
    );
    let denied = h
        .rpc(
            "/mcp",
            KEY_A,
            &sid,
            5,
            "prompts/get",
            json!({"name": "ghost__greet"}),
        )
        .await;
    assert_eq!(denied["error"]["code"], -32602);
    assert_eq!(denied["error"]["data"]["reason"], "server_unknown");
}

#[tokio::test]
async fn a_stateless_upstream_is_reached_with_discover_and_per_request_meta() {
    let fx = fixture::start(Mode::Stateless, &["echo"]).await;
    let h = start(
        rows(1, &["modern"]),
        vec![http_upstream(1, "modern", &fx.url(), 5_000)],
    )
    .await;
    let sid = h.initialize("/mcp", KEY_A).await;
    assert_eq!(
        h.list_tool_names("/mcp", KEY_A, &sid).await,
        vec!["modern__echo"]
    );
    let r = h
        .rpc(
            "/mcp",
            KEY_A,
            &sid,
            1,
            "tools/call",
            json!({"name": "modern__echo", "arguments": {"q": 1}}),
        )
        .await;
    assert_eq!(r["result"]["content"][0]["text"], "echo called", "{r}");
    let calls = fx.state.requests("tools/call");
    let (headers, body) = calls.last().unwrap();
    assert_eq!(headers["mcp-name"], "echo");
    assert!(headers.get("mcp-session-id").is_none());
    assert_eq!(body["params"]["arguments"], json!({"q": 1}));
}

#[tokio::test]
async fn a_server_request_reaches_the_calling_client_and_its_answer_goes_back() {
    let fx = fixture::start(Mode::Normal, &["ask"]).await;
    let h = start(
        rows(1, &["files"]),
        vec![http_upstream(1, "files", &fx.url(), 5_000)],
    )
    .await;
    let sid = h
        .initialize_with("/mcp", KEY_A, json!({"sampling": {}}))
        .await;
    let resp = h
        .post_raw("/mcp", Some(KEY_A), Some(&sid), &[], &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "files__ask"}}))
        .await;
    let mut stream = SseReader::new(resp);
    let request = stream
        .next(Duration::from_secs(3))
        .await
        .expect("the sampling request");
    assert_eq!(request["method"], "sampling/createMessage");
    let warden_id = request["id"].as_str().unwrap().to_owned();
    assert_ne!(warden_id, "srv-1", "server request ids are rewritten");
    let answer = h
        .post_raw("/mcp", Some(KEY_A), Some(&sid), &[], &json!({"jsonrpc": "2.0", "id": warden_id, "result": {"role": "assistant", "content": {"type": "text", "text": "42"}}}))
        .await;
    assert_eq!(answer.status(), 202);
    let done = stream
        .next(Duration::from_secs(3))
        .await
        .expect("the call result");
    assert_eq!(done["id"], 1);
    assert_eq!(
        done["result"]["answer"]["id"], "srv-1",
        "the upstream sees its own id"
    );
    assert_eq!(done["result"]["answer"]["result"]["content"]["text"], "42");
}

#[tokio::test]
async fn shutdown_drains_in_flight_calls() {
    let (_fx, h) = one_server().await;
    let sid = h.initialize("/mcp", KEY_A).await;
    let pending = {
        let url = h.url("/mcp");
        let client = h.http.clone();
        let sid = sid.clone();
        tokio::spawn(async move {
            let resp = client
                .post(url)
                .bearer_auth(KEY_A)
                .header("accept", "application/json")
                .header("content-type", "application/json")
                .header("mcp-session-id", sid)
                .body(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "files__slow", "arguments": {"ms": 500}}}).to_string())
                .send()
                .await
                .unwrap();
            resp.json::<Value>().await.unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let started = std::time::Instant::now();
    h.gateway.shutdown(Duration::from_secs(5)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "shutdown waited for the call"
    );
    let r = pending.await.unwrap();
    assert_eq!(r["result"]["content"][0]["text"], "slow done");
    let refused = h
        .post_raw(
            "/mcp",
            Some(KEY_A),
            Some(&sid),
            &[],
            &json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}),
        )
        .await;
    assert_eq!(refused.status(), 503);
}

#[tokio::test]
async fn host_allow_list_guards_a_local_gateway() {
    let fx = fixture::start(Mode::Normal, &["echo"]).await;
    let config = GatewayConfig {
        allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
        ..Default::default()
    };
    let live = LivePolicy::new(Snapshot::build(rows(1, &["files"])).unwrap());
    let h = start_with(
        live,
        vec![http_upstream(1, "files", &fx.url(), 5_000)],
        config,
    )
    .await;
    h.initialize("/mcp", KEY_A).await;
    let evil = h
        .post_raw(
            "/mcp",
            Some(KEY_A),
            None,
            &[("host", "evil.example:80")],
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}}),
        )
        .await;
    assert_eq!(evil.status(), 403);
}

/// A policy write that lands right after `Gateway::start` returns, before its
/// background task first runs, must still bring the new upstream in (the
/// `--demo` start-up does exactly this).
#[tokio::test]
async fn a_write_right_after_start_still_loads_the_new_upstream() {
    use std::sync::Arc;
    use warden_gateway::{Gateway, NoRecorder, StaticUpstreams};
    use warden_policy::Catalog;

    let fx = fixture::start(Mode::Normal, &["echo"]).await;
    let live = LivePolicy::new(Snapshot::build(rows(1, &["files"])).unwrap());
    let source = StaticUpstreams::new(Vec::new());
    let gateway = Gateway::start(
        GatewayConfig::default(),
        Arc::clone(&live),
        source.clone(),
        Arc::new(NoRecorder),
    )
    .await
    .unwrap();
    // No await between start and the write: the live task has not run yet.
    source.set(vec![http_upstream(1, "files", &fx.url(), 5_000)]);
    assert!(live.install(Snapshot::build(rows(2, &["files"])).unwrap()));

    let catalog = gateway.catalog();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !catalog.contains(ServerId(1), "echo") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the upstream added by the write was never loaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A session nobody uses and nobody listens on is ended after the idle
/// timeout; one with an open GET stream is kept, however quiet.
#[tokio::test]
async fn idle_sessions_without_a_stream_end() {
    let fx = fixture::start(Mode::Normal, &["echo"]).await;
    let config = GatewayConfig {
        session_idle_timeout: Duration::from_millis(300),
        ..GatewayConfig::default()
    };
    let h = start_with(
        LivePolicy::new(Snapshot::build(rows(1, &["files"])).unwrap()),
        vec![http_upstream(1, "files", &fx.url(), 5_000)],
        config,
    )
    .await;
    let idle = h.initialize("/mcp", KEY_A).await;
    let listening = h.initialize("/mcp", KEY_A).await;
    let _stream = h.open_stream("/mcp", KEY_A, &listening).await;
    assert_eq!(h.gateway.live_sessions(), 2);

    // The sweep runs every second.
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    let ping = json!({"jsonrpc": "2.0", "id": 9, "method": "ping"});
    let gone = h
        .post_raw("/mcp", Some(KEY_A), Some(&idle), &[], &ping)
        .await;
    assert_eq!(gone.status(), 404, "the idle session should have ended");
    let kept = h
        .post_raw("/mcp", Some(KEY_A), Some(&listening), &[], &ping)
        .await;
    assert_eq!(kept.status(), 200, "a session with an open stream stays");
    assert_eq!(h.gateway.live_sessions(), 1);
}

#[tokio::test]
async fn a_client_that_goes_away_mid_call_is_audited_and_cancelled_upstream() {
    let (fx, mut h) = one_server().await;
    let sid = h.initialize("/mcp", KEY_A).await;
    // Plain JSON (no SSE): the gateway answers from the request's own task,
    // which the server drops when the client disconnects.
    let call = {
        let url = h.url("/mcp");
        let client = reqwest::Client::new();
        let sid = sid.clone();
        tokio::spawn(async move {
            let _ = client
                .post(url)
                .bearer_auth(KEY_A)
                .header("accept", "application/json")
                .header("content-type", "application/json")
                .header("mcp-session-id", sid)
                .header("mcp-protocol-version", "2025-11-25")
                .body(
                    json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                    "params": {"name": "files__slow", "arguments": {"ms": 5000}}})
                    .to_string(),
                )
                .send()
                .await;
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        fx.state.requests("tools/call").len(),
        1,
        "the call reached the upstream"
    );
    call.abort();
    let record = next_call_decision(&mut h, Duration::from_secs(3))
        .await
        .expect("the allowed call's decision is recorded although nobody got the answer");
    assert!(record.allowed);
    assert_eq!(record.tool.as_deref(), Some("slow"));
    // The decision was recorded before the call was forwarded; its latency
    // follows as the outcome, measured until the client left.
    let outcome = tokio::time::timeout(Duration::from_secs(3), h.outcomes.recv())
        .await
        .expect("an outcome")
        .expect("outcome channel open");
    assert_eq!(outcome.decision_id, record.decision_id);
    assert!(
        outcome.latency_us >= 250_000,
        "latency runs until the client left"
    );
    // The upstream is told to stop working on it.
    let (upstream_call, cancel) = upstream_cancellation(&fx, Duration::from_secs(3)).await;
    assert_eq!(cancel["params"]["requestId"], upstream_call["id"]);
}

#[tokio::test]
async fn another_orgs_server_reveals_nothing_on_its_endpoint() {
    let fx = fixture::start(Mode::Normal, &["echo"]).await;
    let mut policy = rows(1, &["files"]);
    // "files" is owned by acme (org 1); org 2 has a key and no grant.
    policy.servers[0].owner_org = Some(OrgId(1));
    policy.orgs.push(warden_policy::OrgRow {
        id: OrgId(2),
        slug: "other".into(),
        suspended: false,
    });
    let mut outsider = key(3, "key-outsider-secret", warden_policy::Scope::Inherit);
    outsider.org = OrgId(2);
    policy.keys.push(outsider);
    let mut upstream = http_upstream(1, "files", &fx.url(), 5_000);
    upstream.owner_org = Some(OrgId(1));
    let h = start(policy, vec![upstream]).await;

    let init = |key: &'static str| {
        let h = &h;
        async move {
            let resp = h
                .post_raw("/mcp/servers/files", Some(key), None, &[], &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
                .await;
            assert_eq!(resp.status(), 200);
            let body: Value = resp.json().await.unwrap();
            body["result"].clone()
        }
    };
    // The owner's key sees the upstream's own server info.
    assert_eq!(init(KEY_A).await["serverInfo"]["name"], "fixture");
    // The other org's key gets Warden's own, exactly as for a slug that
    // does not exist.
    let outsider = init("key-outsider-secret").await;
    let missing = {
        let resp = h
            .post_raw("/mcp/servers/nothing-here", Some("key-outsider-secret"), None, &[], &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
            .await;
        resp.json::<Value>().await.unwrap()["result"].clone()
    };
    assert_eq!(outsider["serverInfo"]["name"], "warden");
    assert_eq!(outsider["serverInfo"], missing["serverInfo"]);
    assert_eq!(outsider["capabilities"], missing["capabilities"]);
    assert!(outsider.get("instructions").is_none());
}

#[tokio::test]
async fn an_expiring_keys_session_ends_without_any_policy_write() {
    let fx = fixture::start(Mode::Normal, &["echo", "slow"]).await;
    let mut policy = rows(1, &["files"]);
    let expires_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 1_500;
    policy.keys[0].expires_at_ms = Some(expires_at);
    let h = start(policy, vec![http_upstream(1, "files", &fx.url(), 5_000)]).await;
    let sid = h.initialize("/mcp", KEY_A).await;
    let mut stream = h.open_stream("/mcp", KEY_A, &sid).await;
    assert_eq!(h.list_tool_names("/mcp", KEY_A, &sid).await.len(), 2);
    // No write happens: the gateway's own timer notices the expiry and the
    // stream closes (within the 1 s sweep after the expiry).
    let started = std::time::Instant::now();
    while stream.next(Duration::from_secs(4)).await.is_some() {}
    assert!(
        stream.ended,
        "the GET stream must close when the key expires"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(h.live.revision(), 1, "no policy write was needed");
    let r = h
        .post_raw(
            "/mcp",
            Some(KEY_A),
            Some(&sid),
            &[],
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        )
        .await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("key_expired"));
}

#[tokio::test]
async fn a_client_that_leaves_a_streamed_call_is_audited_and_cancelled_upstream() {
    // Without a session (the 2026-07-28 wire) a reply stream cannot be
    // resumed, so a client leaving it ends the call. (A session's reply
    // stream is resumable and outlives its connection:
    // tests/resumable_streams.rs.)
    let (fx, mut h) = one_server().await;
    // Accepts SSE and the call is slow: the reply becomes a stream after
    // a second, and the exchange continues in its own task.
    let call = {
        let url = h.url("/mcp");
        let client = reqwest::Client::new();
        tokio::spawn(async move {
            let resp = client
                .post(url)
                .bearer_auth(KEY_A)
                .header("accept", "application/json, text/event-stream")
                .header("content-type", "application/json")
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tools/call")
                .header("mcp-name", "files__slow")
                .body(
                    json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call",
                    "params": with_meta(json!({"name": "files__slow", "arguments": {"ms": 8000}}))})
                    .to_string(),
                )
                .send()
                .await
                .unwrap();
            assert!(resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream"));
            // Hold the stream open until aborted.
            let _ = resp.bytes().await;
        })
    };
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(!call.is_finished(), "the stream is open");
    call.abort();
    // Well before the upstream's 5 s timeout would end the call anyway.
    let record = next_call_decision(&mut h, Duration::from_secs(2))
        .await
        .expect("the streamed call's decision is recorded when its client leaves");
    assert!(record.allowed);
    let (upstream_call, cancel) = upstream_cancellation(&fx, Duration::from_secs(1)).await;
    assert_eq!(cancel["params"]["requestId"], upstream_call["id"]);
    assert_eq!(cancel["params"]["reason"], "the client went away");
}

/// The next `tools/call` decision the gateway records, if one comes in time.
async fn next_call_decision(
    h: &mut Harness,
    within: Duration,
) -> Option<warden_store::DecisionRecord> {
    tokio::time::timeout(within, async {
        loop {
            match h.decisions.recv().await {
                Some(d) if d.method == "tools/call" => return Some(d),
                Some(_) => continue,
                None => return None,
            }
        }
    })
    .await
    .ok()
    .flatten()
}

/// Waits for the upstream's first `notifications/cancelled`; returns the
/// first `tools/call` it received and that cancellation.
async fn upstream_cancellation(fx: &fixture::Fixture, within: Duration) -> (Value, Value) {
    let deadline = std::time::Instant::now() + within;
    while fx.state.requests("notifications/cancelled").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no cancellation reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (
        fx.state.requests("tools/call")[0].1.clone(),
        fx.state.requests("notifications/cancelled")[0].1.clone(),
    )
}

#[tokio::test]
async fn a_server_with_no_visible_tool_entering_access_tells_nobody() {
    let fx1 = fixture::start(Mode::Normal, &["echo"]).await;
    let fx2 = fixture::start(Mode::Normal, &["other_tool"]).await;
    let h = start(
        rows(1, &["files", "extra"]),
        vec![
            http_upstream(1, "files", &fx1.url(), 5_000),
            http_upstream(2, "extra", &fx2.url(), 5_000),
        ],
    )
    .await;
    let sid_b = h.initialize("/mcp", KEY_B).await;
    let mut stream_b = h.open_stream("/mcp", KEY_B, &sid_b).await;
    // B's scope now names server 2 too, but only a tool it does not have.
    let mut next = rows(2, &["files", "extra"]);
    if let Scope::Grants(g) = &mut next.keys[1].scope {
        g.servers
            .insert(ServerId(2), ToolFilter::only(["no_such_tool"]));
    }
    h.install(next);
    assert!(
        stream_b.next(Duration::from_millis(500)).await.is_none(),
        "B's list did not change and B must not be told"
    );
    assert_eq!(
        h.list_tool_names("/mcp", KEY_B, &sid_b).await,
        ["files__echo"]
    );
}

/// A server removed from the configuration has its upstream session ended:
/// Warden sends `DELETE` with the session's `Mcp-Session-Id`, not only
/// dropping the connection (the upstream would keep the session's state).
#[tokio::test]
async fn a_removed_server_has_its_upstream_session_deleted() {
    let fx = fixture::start(Mode::Normal, &["echo"]).await;
    let h = start(
        rows(1, &["files"]),
        vec![http_upstream(1, "files", &fx.url(), 5_000)],
    )
    .await;
    let sid = h.initialize("/mcp", KEY_A).await;
    assert_eq!(
        h.list_tool_names("/mcp", KEY_A, &sid).await,
        vec!["files__echo"]
    );
    assert!(fx.state.requests("DELETE").is_empty());

    h.upstreams.set(vec![]);
    h.install(rows(2, &["files"]));
    let mut deletes = Vec::new();
    for _ in 0..100 {
        deletes = fx.state.requests("DELETE");
        if !deletes.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(deletes.len(), 1, "one DELETE for the one upstream session");
    assert_eq!(deletes[0].0["mcp-session-id"], "upstream-session-1");
}
