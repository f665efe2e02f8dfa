//! The demo server over real HTTP: sessions, both eras, tools, errors.

use serde_json::{json, Value};
use warden_demo::{serve_with, DemoOptions};

struct Demo {
    url: String,
    client: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(extra_tools: usize) -> Demo {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = DemoOptions {
        extra_tools,
        ..DemoOptions::default()
    };
    tokio::spawn(serve_with(listener, options, async {
        let _ = stopped.await;
    }));
    Demo {
        url,
        client: reqwest::Client::new(),
        _stop: stop,
    }
}

impl Demo {
    async fn post(&self, session: Option<&str>, body: Value) -> reqwest::Response {
        let mut req = self
            .client
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(s) = session {
            req = req
                .header("mcp-session-id", s)
                .header("mcp-protocol-version", "2025-11-25");
        }
        req.send().await.unwrap()
    }

    async fn initialize(&self) -> String {
        let resp = self
            .post(
                None,
                json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": {"name": "test", "version": "1"}}}),
            )
            .await;
        assert_eq!(resp.status(), 200);
        let session = resp.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_string();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["result"]["protocolVersion"], "2025-11-25");
        assert_eq!(body["result"]["serverInfo"]["name"], "warden-demo");
        let ack = self
            .post(
                Some(&session),
                json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            )
            .await;
        assert_eq!(ack.status(), 202);
        session
    }
}

#[tokio::test]
async fn session_lifecycle_and_tools() {
    let demo = start(0).await;
    let session = demo.initialize().await;

    let list: Value = demo
        .post(
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["echo", "add", "time_now", "sleep"]);

    let echo: Value = demo
        .post(
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                   "params": {"name": "echo", "arguments": {"text": "hi ✓"}}}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(echo["id"], 3);
    assert_eq!(echo["result"]["content"][0]["text"], "hi ✓");

    let add: Value = demo
        .post(
            Some(&session),
            json!({"jsonrpc": "2.0", "id": "x", "method": "tools/call",
                   "params": {"name": "add", "arguments": {"a": 2, "b": 40}}}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(add["id"], "x");
    assert_eq!(add["result"]["content"][0]["text"], "42");
    assert_eq!(add["result"]["structuredContent"]["sum"], 42.0);

    let unknown: Value = demo
        .post(
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "nope"}}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unknown["error"]["code"], -32602);

    let bad_args: Value = demo
        .post(
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "add", "arguments": {"a": "x"}}}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bad_args["result"]["isError"], true);

    let deleted = demo
        .client
        .delete(&demo.url)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let after = demo
        .post(
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 6, "method": "ping"}),
        )
        .await;
    assert_eq!(after.status(), 404);
}

#[tokio::test]
async fn requests_without_a_session_need_the_stateless_era() {
    let demo = start(2).await;
    let refused = demo
        .post(
            None,
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        )
        .await;
    assert_eq!(refused.status(), 400);

    let stateless: Value = demo
        .client
        .post(&demo.url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "tool_001", "arguments": {"value": "v"}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stateless["result"]["content"][0]["text"],
        r#"{"value":"v"}"#
    );
}

#[tokio::test]
async fn sse_only_clients_get_an_event_stream_and_bad_origins_are_refused() {
    let demo = start(0).await;
    let session = demo.initialize().await;
    let resp = demo
        .client
        .post(&demo.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let text = resp.text().await.unwrap();
    assert!(text.starts_with("event: message\ndata: {"), "{text}");

    let evil = demo
        .client
        .post(&demo.url)
        .header("origin", "http://evil.example")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(evil.status(), 403);

    let garbage = demo
        .client
        .post(&demo.url)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
}
