//! The 2026-07-28 wire at Warden's front door and towards upstreams: the
//! per-request `_meta` and header rules (status and JSON-RPC code of each
//! refusal), the methods that revision removed, `server/discover`, the
//! caching scope of lists that depend on the caller, the upstream era
//! Warden prefers, and the caller's own capabilities: sent upstream, and
//! the bound on what an upstream may ask a caller.

mod common;

use common::fixture::{self, Mode};
use common::*;
use serde_json::{json, Value};

const WIRE: &str = "2026-07-28";

async fn stateless_server() -> (fixture::Fixture, Harness) {
    let fx = fixture::start(Mode::Stateless, &["echo", "needs_sampling"]).await;
    let h = start(
        rows(1, &["files"]),
        vec![http_upstream(1, "files", &fx.url(), 5_000)],
    )
    .await;
    (fx, h)
}

/// POSTs `body` with the given headers (no session); (status, message).
async fn post(h: &Harness, path: &str, headers: &[(&str, &str)], body: Value) -> (u16, Value) {
    let resp = h.post_raw(path, Some(KEY_A), None, headers, &body).await;
    let status = resp.status().as_u16();
    (status, response_message(resp).await)
}

fn request(id: i64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

#[tokio::test]
async fn a_request_without_its_meta_is_a_400_invalid_params_with_its_id() {
    let (_fx, h) = stateless_server().await;
    let headers = [
        ("mcp-protocol-version", WIRE),
        ("mcp-method", "server/discover"),
    ];
    let missing = [
        json!({}),
        json!({"_meta": {"io.modelcontextprotocol/clientCapabilities": {}}}),
        json!({"_meta": {"io.modelcontextprotocol/protocolVersion": WIRE}}),
        json!({"_meta": {"io.modelcontextprotocol/protocolVersion": WIRE,
                         "io.modelcontextprotocol/clientCapabilities": "all"}}),
    ];
    for (i, params) in missing.into_iter().enumerate() {
        for path in ["/mcp", "/mcp/servers/files"] {
            let id = 101 + i as i64;
            let (status, body) = post(
                &h,
                path,
                &headers,
                request(id, "server/discover", params.clone()),
            )
            .await;
            assert_eq!(status, 400, "{path} {params}: {body}");
            assert_eq!(body["error"]["code"], -32602, "{body}");
            assert_eq!(body["error"]["data"]["reason"], "meta_invalid");
            assert_eq!(body["id"], id, "the request's id, not null");
        }
    }
    // clientInfo is a SHOULD: its absence is served.
    let (status, body) = post(
        &h,
        "/mcp",
        &headers,
        request(
            105,
            "server/discover",
            json!({"_meta": {"io.modelcontextprotocol/protocolVersion": WIRE,
                         "io.modelcontextprotocol/clientCapabilities": {}}}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["result"]["supportedVersions"].is_array());
}

#[tokio::test]
async fn an_unsupported_version_is_a_400_naming_the_supported_ones() {
    let (_fx, h) = stateless_server().await;
    let mut meta = stateless_meta();
    meta["io.modelcontextprotocol/protocolVersion"] = json!("v999.0.0");
    for path in ["/mcp", "/mcp/servers/files"] {
        let (status, body) = post(
            &h,
            path,
            &[("mcp-protocol-version", "v999.0.0")],
            request(301, "server/discover", json!({"_meta": meta.clone()})),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], -32022);
        assert_eq!(body["error"]["data"]["supported"], json!([WIRE]));
        assert_eq!(body["error"]["data"]["requested"], "v999.0.0");
        assert_eq!(body["id"], 301);
    }
    // Without the header, a version in `_meta` alone is judged the same way.
    let (status, body) = post(
        &h,
        "/mcp",
        &[],
        request(302, "tools/list", json!({"_meta": meta})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!(-32022)),
        "{body}"
    );
}

#[tokio::test]
async fn a_header_that_disagrees_with_the_body_is_a_400_header_mismatch() {
    let (fx, h) = stateless_server().await;
    let mut v999 = stateless_meta();
    v999["io.modelcontextprotocol/protocolVersion"] = json!("v999.0.0");
    let (status, body) = post(
        &h,
        "/mcp",
        &[("mcp-protocol-version", WIRE)],
        request(302, "server/discover", json!({"_meta": v999})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!(-32020)),
        "{body}"
    );
    assert_eq!(body["error"]["data"]["header"], "MCP-Protocol-Version");
    assert_eq!(body["id"], 302);

    let call = request(
        303,
        "tools/call",
        with_meta(json!({"name": "echo", "arguments": {}})),
    );
    let (status, body) = post(
        &h,
        "/mcp/servers/files",
        &[("mcp-protocol-version", WIRE), ("mcp-method", "tools/list")],
        call.clone(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!(-32020)),
        "{body}"
    );
    assert_eq!(body["error"]["data"]["header"], "Mcp-Method");
    // The name header is checked too: the body does not win.
    let (status, body) = post(
        &h,
        "/mcp/servers/files",
        &[
            ("mcp-protocol-version", WIRE),
            ("mcp-method", "tools/call"),
            ("mcp-name", "needs_sampling"),
        ],
        call.clone(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!(-32020)),
        "{body}"
    );
    assert_eq!(body["error"]["data"]["header"], "Mcp-Name");
    assert!(
        fx.state.requests("tools/call").is_empty(),
        "nothing reached the upstream"
    );
    let (status, body) = post(
        &h,
        "/mcp/servers/files",
        &[
            ("mcp-protocol-version", WIRE),
            ("mcp-method", "tools/call"),
            ("mcp-name", "echo"),
        ],
        call,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["content"][0]["text"], "echo called");
}

#[tokio::test]
async fn removed_and_unknown_methods_are_404_method_not_found() {
    let (_fx, h) = stateless_server().await;
    let removed = [
        "initialize",
        "ping",
        "logging/setLevel",
        "resources/subscribe",
        "resources/unsubscribe",
        "unknown/method",
    ];
    for path in ["/mcp", "/mcp/servers/files"] {
        for (i, method) in removed.iter().enumerate() {
            let id = 500 + i as i64;
            let (status, body) = post(
                &h,
                path,
                &[("mcp-protocol-version", WIRE), ("mcp-method", method)],
                request(
                    id,
                    method,
                    json!({"_meta": stateless_meta(), "uri": "file:///readme"}),
                ),
            )
            .await;
            assert_eq!(status, 404, "{path} {method}: {body}");
            assert_eq!(body["error"]["code"], -32601, "{method}");
            assert_eq!(body["id"], id);
        }
    }
    // The session era keeps them.
    let sid = h.initialize("/mcp", KEY_A).await;
    let ping = h.rpc("/mcp", KEY_A, &sid, 1, "ping", json!({})).await;
    assert_eq!(ping["result"], json!({}));
}

#[tokio::test]
async fn discover_names_the_server_in_meta_and_is_not_to_be_shared() {
    let (_fx, h) = stateless_server().await;
    let d = h
        .rpc_stateless("/mcp", KEY_A, 1, "server/discover", json!({}))
        .await;
    let result = &d["result"];
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "warden"
    );
    assert!(result.get("serverInfo").is_none(), "{result}");
    assert_eq!(result["ttlMs"], 0);
    assert_eq!(result["cacheScope"], "private");
    assert!(result["supportedVersions"]
        .as_array()
        .unwrap()
        .contains(&json!(WIRE)));
    // One server's endpoint names that server (its `_meta` serverInfo).
    let d = h
        .rpc_stateless("/mcp/servers/files", KEY_A, 2, "server/discover", json!({}))
        .await;
    assert_eq!(
        d["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "stateless-fixture"
    );
    assert_eq!(d["result"]["cacheScope"], "private");
}

#[tokio::test]
async fn lists_that_depend_on_the_caller_are_private_whatever_the_upstream_says() {
    let (_fx, h) = stateless_server().await;
    for method in ["prompts/list", "resources/list"] {
        let r = h
            .rpc_stateless("/mcp/servers/files", KEY_A, 1, method, json!({}))
            .await;
        assert_eq!(r["result"]["cacheScope"], "private", "{method}: {r}");
        assert_eq!(r["result"]["ttlMs"], 0, "{method}");
    }
    // In the session era too: the upstream's public scope is not passed on.
    let sid = h.initialize("/mcp/servers/files", KEY_A).await;
    let r = h
        .rpc(
            "/mcp/servers/files",
            KEY_A,
            &sid,
            2,
            "prompts/list",
            json!({}),
        )
        .await;
    assert_eq!(r["result"]["cacheScope"], "private", "{r}");
}

#[tokio::test]
async fn an_upstream_error_keeps_its_data_and_a_missing_capability_stays_a_400() {
    let (_fx, h) = stateless_server().await;
    let r = h
        .rpc_stateless(
            "/mcp/servers/files",
            KEY_A,
            1,
            "resources/read",
            json!({"uri": "file:///missing"}),
        )
        .await;
    assert_eq!(r["error"]["code"], -32602, "{r}");
    assert_eq!(
        r["error"]["data"],
        json!({"uri": "file:///missing", "x-extra": [1]})
    );
    assert_eq!(r["id"], 1);

    let (status, body) = post(
        &h,
        "/mcp/servers/files",
        &[
            ("mcp-protocol-version", WIRE),
            ("mcp-method", "tools/call"),
            ("mcp-name", "needs_sampling"),
        ],
        request(
            2,
            "tools/call",
            with_meta(json!({"name": "needs_sampling", "arguments": {}})),
        ),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], -32021);
    assert_eq!(
        body["error"]["data"]["requiredCapabilities"],
        json!({"sampling": {}})
    );
    assert_eq!(body["id"], 2);
}

#[tokio::test]
async fn the_upstream_is_told_the_callers_own_capabilities() {
    let (fx, h) = stateless_server().await;
    // A stateless caller that declared elicitation only.
    let mut meta = stateless_meta();
    meta["io.modelcontextprotocol/clientCapabilities"] = json!({"elicitation": {}});
    meta["io.modelcontextprotocol/clientInfo"] = json!({"name": "caller-one", "version": "7"});
    let r = h
        .rpc_stateless(
            "/mcp/servers/files",
            KEY_A,
            1,
            "tools/call",
            json!({"name": "echo", "arguments": {}, "_meta": meta}),
        )
        .await;
    assert_eq!(r["result"]["content"][0]["text"], "echo called", "{r}");
    let (_, sent) = fx.state.requests("tools/call").pop().unwrap();
    let sent = &sent["params"]["_meta"];
    assert_eq!(
        sent["io.modelcontextprotocol/clientCapabilities"],
        json!({"elicitation": {}})
    );
    assert_eq!(
        sent["io.modelcontextprotocol/clientInfo"]["name"],
        "caller-one"
    );

    // A session-era caller: what it declared at initialize.
    let init = h
        .post_raw(
            "/mcp",
            Some(KEY_A),
            None,
            &[],
            &json!({"jsonrpc": "2.0", "id": 1,
        "method": "initialize", "params": {"protocolVersion": "2025-11-25",
        "capabilities": {"roots": {}}, "clientInfo": {"name": "caller-two", "version": "1"}}}),
        )
        .await;
    let sid = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let r = h
        .rpc(
            "/mcp",
            KEY_A,
            &sid,
            2,
            "tools/call",
            json!({"name": "files__echo", "arguments": {}}),
        )
        .await;
    assert_eq!(r["result"]["content"][0]["text"], "echo called", "{r}");
    let (_, sent) = fx.state.requests("tools/call").pop().unwrap();
    let sent = &sent["params"]["_meta"];
    assert_eq!(
        sent["io.modelcontextprotocol/clientCapabilities"],
        json!({"roots": {}})
    );
    assert_eq!(
        sent["io.modelcontextprotocol/clientInfo"]["name"],
        "caller-two"
    );

    // Neither declared sampling: the upstream refuses, it never asks.
    let r = h
        .rpc(
            "/mcp",
            KEY_A,
            &sid,
            3,
            "tools/call",
            json!({"name": "files__needs_sampling", "arguments": {}}),
        )
        .await;
    assert_eq!(r["error"]["code"], -32021, "{r}");
    // Warden's own requests (the catalog) claim no capability at all.
    let (_, listed) = fx.state.requests("tools/list").pop().unwrap();
    assert_eq!(
        listed["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"],
        json!({})
    );
}

#[tokio::test]
async fn a_dual_era_upstream_is_used_on_the_newest_wire() {
    let fx = fixture::start(Mode::Dual, &["echo"]).await;
    let h = start(
        rows(1, &["both"]),
        vec![http_upstream(1, "both", &fx.url(), 5_000)],
    )
    .await;
    let sid = h.initialize("/mcp", KEY_A).await;
    assert_eq!(
        h.list_tool_names("/mcp", KEY_A, &sid).await,
        vec!["both__echo"]
    );
    assert!(
        fx.state.requests("initialize").is_empty(),
        "opened with server/discover"
    );
    let (headers, body) = fx.state.requests("tools/list").pop().unwrap();
    assert_eq!(headers["mcp-protocol-version"], WIRE);
    assert_eq!(
        body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"],
        WIRE
    );
    // A session-era-only upstream (answers discover with an empty result) is
    // still opened with initialize.
    let old = fixture::start(Mode::Normal, &["echo"]).await;
    let h2 = start(
        rows(1, &["old"]),
        vec![http_upstream(1, "old", &old.url(), 5_000)],
    )
    .await;
    let sid = h2.initialize("/mcp", KEY_A).await;
    assert_eq!(
        h2.list_tool_names("/mcp", KEY_A, &sid).await,
        vec!["old__echo"]
    );
    assert_eq!(old.state.requests("initialize").len(), 1);
}

#[tokio::test]
async fn a_server_request_needing_an_undeclared_capability_never_reaches_the_client() {
    // A session-era upstream (one session shared by all callers, opened with
    // Warden's capabilities) asks for sampling mid-call.
    let fx = fixture::start(Mode::Normal, &["ask"]).await;
    let h = start(
        rows(1, &["files"]),
        vec![http_upstream(1, "files", &fx.url(), 5_000)],
    )
    .await;
    let sid = h
        .initialize_with("/mcp", KEY_A, json!({"elicitation": {}}))
        .await;
    let resp = h
        .post_raw("/mcp", Some(KEY_A), Some(&sid), &[],
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "files__ask"}}))
        .await;
    let messages = all_messages(resp).await;
    assert_eq!(
        messages.len(),
        1,
        "no request reached the client: {messages:?}"
    );
    let answer = &messages[0]["result"]["answer"];
    assert_eq!(
        answer["id"], "srv-1",
        "the upstream got an answer to its own id"
    );
    assert_eq!(answer["error"]["code"], -32601, "{answer}");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("sampling"));
}
