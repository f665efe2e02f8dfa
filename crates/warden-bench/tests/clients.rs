//! The benchmark's MCP client and process helpers against real components:
//! the demo MCP server in-process and a throwaway PostgreSQL server.

use serde_json::json;
use tokio::net::TcpListener;
use warden_bench::mcp::{CallOutcome, McpSession};
use warden_bench::procs::Postgres;
use warden_bench::BenchError;

async fn demo_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warden_demo::serve(listener));
    format!("http://{addr}/mcp")
}

#[tokio::test]
async fn a_session_calls_tools_and_classifies_failures() {
    let url = demo_server().await;
    let http = reqwest::Client::new();
    let mut session = McpSession::open(http.clone(), &url, "unused-key")
        .await
        .unwrap();
    let outcome = session.call_tool("echo", json!({ "text": "hi" })).await;
    assert_eq!(outcome, CallOutcome::Ok);
    let listed = session.request("tools/list", json!({})).await.unwrap();
    let tools = listed["result"]["tools"].as_array().unwrap();
    assert!(tools.iter().any(|t| t["name"] == "echo"), "{listed}");
    // No reason code from the demo server: a failure, not a refusal.
    let unknown = session.call_tool("no_such_tool", json!({})).await;
    assert!(matches!(unknown, CallOutcome::Failed(_)), "{unknown:?}");
    // The demo server has no GET stream: opening it is a clear error.
    match session.open_stream().await {
        Err(BenchError::Mcp { status: 405, .. }) => {}
        other => panic!("expected 405, got {:?}", other.map(|r| r.status())),
    }
    session.close().await;
}

#[tokio::test]
async fn a_closed_port_is_an_http_error() {
    let port = warden_bench::procs::free_port().unwrap();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let opened = McpSession::open(reqwest::Client::new(), &url, "k").await;
    assert!(matches!(opened, Err(BenchError::Http(_))));
}

#[tokio::test]
async fn postgres_starts_and_is_gone_after_drop() {
    let postgres = Postgres::start().unwrap();
    let url = postgres.url();
    let port: u16 = url
        .rsplit(':')
        .next()
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        postgres.version.contains("PostgreSQL"),
        "{}",
        postgres.version
    );
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    drop(postgres);
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err());
}
