//! The load generator against the real demo server over loopback.

use std::time::Duration;

use serde_json::json;
use warden_demo::{serve_with, DemoOptions};
use warden_loadgen::{open_idle_sessions, run, RunConfig};

async fn demo() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(serve_with(
        listener,
        DemoOptions::default(),
        std::future::pending(),
    ));
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counted_run_makes_exactly_the_requested_calls() {
    let url = demo().await;
    let summary = run(RunConfig {
        worker_tokens: Vec::new(),
        url,
        token: Some("ignored-by-demo".into()),
        method: "tools/call",
        params: json!({"name": "echo", "arguments": {"text": "x"}}),
        concurrency: 4,
        duration: None,
        requests: Some(203),
        warmup: Duration::from_millis(50),
    })
    .await
    .unwrap();
    assert_eq!(summary.requests, 203);
    assert_eq!(summary.errors, 0);
    assert!(summary.p50_us > 0 && summary.p50_us <= summary.p99_us);
}

#[tokio::test]
async fn tool_errors_are_counted_not_measured() {
    let url = demo().await;
    let summary = run(RunConfig {
        worker_tokens: Vec::new(),
        url,
        token: None,
        method: "tools/call",
        params: json!({"name": "no_such_tool", "arguments": {}}),
        concurrency: 1,
        duration: Some(Duration::from_millis(100)),
        requests: None,
        warmup: Duration::ZERO,
    })
    .await
    .unwrap();
    assert_eq!(summary.requests, 0);
    assert!(summary.errors > 0);
}

#[tokio::test]
async fn idle_sessions_open() {
    let url = demo().await;
    let sessions = open_idle_sessions(&url, None, 25, 8).await.unwrap();
    assert_eq!(sessions.len(), 25);
}
