//! A stdio upstream: a child process, secrets as environment variables,
//! restarted after it dies.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use serde_json::json;
use warden_policy::ServerId;
use warden_store::{Secret, Transport, UpstreamConfig};

fn stdio_upstream() -> UpstreamConfig {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stdio_server.py"
    );
    let mut secret_headers = BTreeMap::new();
    secret_headers.insert("x-upstream-secret".to_string(), Secret::new("stdio-secret"));
    UpstreamConfig {
        server: ServerId(1),
        slug: "local".into(),
        owner_org: None,
        transport: Transport::Stdio {
            command: "python3".into(),
            args: vec![script.into()],
            env: BTreeMap::new(),
        },
        secret_headers,
        timeout_ms: 5_000,
        egress_restricted: false,
        config_revision: 1,
    }
}

#[tokio::test]
async fn stdio_upstream_lists_calls_and_restarts_after_a_crash() {
    let h = start(rows(1, &["local"]), vec![stdio_upstream()]).await;
    let sid = h.initialize("/mcp", KEY_A).await;
    assert_eq!(
        h.list_tool_names("/mcp", KEY_A, &sid).await,
        vec!["local__echo", "local__secret", "local__crash"]
    );
    let r = h
        .rpc(
            "/mcp",
            KEY_A,
            &sid,
            1,
            "tools/call",
            json!({"name": "local__echo", "arguments": {"k": [1, 2]}}),
        )
        .await;
    assert_eq!(r["result"]["content"][0]["text"], "{\"k\": [1, 2]}");
    let first_pid = r["result"]["pid"].clone();
    let s = h
        .rpc(
            "/mcp",
            KEY_A,
            &sid,
            2,
            "tools/call",
            json!({"name": "local__secret"}),
        )
        .await;
    assert_eq!(s["result"]["content"][0]["text"], "stdio-secret");

    // The process dies mid-call: a clear error, then it is back.
    let crash = h
        .rpc(
            "/mcp",
            KEY_A,
            &sid,
            3,
            "tools/call",
            json!({"name": "local__crash"}),
        )
        .await;
    assert_eq!(crash["error"]["code"], -32001);
    assert_eq!(crash["error"]["data"]["server"], "local");
    let mut back = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = h
            .rpc(
                "/mcp",
                KEY_A,
                &sid,
                4,
                "tools/call",
                json!({"name": "local__echo", "arguments": {}}),
            )
            .await;
        if r.get("result").is_some() {
            back = Some(r);
            break;
        }
    }
    let back = back.expect("the process was restarted");
    assert_ne!(back["result"]["pid"], first_pid);
}
