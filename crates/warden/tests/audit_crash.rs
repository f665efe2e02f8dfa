//! No answered call without its decision record, even across `kill -9`:
//! the real binary serves a burst of concurrent `tools/call`s, is killed
//! mid-burst, and every decision id a client received must be in the
//! SQLite file once the binary has started again (the start replays the
//! audit spool the killed process left behind).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::{ConnectOptions, Row};

use common::start_demo;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answered_call_survives_kill_9_in_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("warden.db");
    let mut warden = start_demo(&dir, &[]);
    let key = warden.demo_key.clone().expect("demo key printed");
    let url = format!("{}/mcp", warden.base);
    let client = reqwest::Client::new();

    let call = move |id: u64| {
        let client = client.clone();
        let url = url.clone();
        let key = key.clone();
        async move {
            let req = client
                .post(&url)
                .bearer_auth(&key)
                .header("accept", "application/json");
            let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": "demo__echo", "arguments": {"text": "x"}}});
            let resp = stateless_request(req, body).send().await.ok()?;
            let body: Value = resp.json().await.ok()?;
            body["result"]["_meta"]["warden.dev/decision_id"]
                .as_str()
                .map(str::to_owned)
        }
    };
    // Wait until the demo upstream's catalog is in.
    let deadline = Instant::now() + Duration::from_secs(15);
    while call(0).await.is_none() {
        assert!(Instant::now() < deadline, "demo__echo never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 16 workers call in a loop; the process is killed while they run.
    let answered = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for w in 0..16u64 {
        let answered = Arc::clone(&answered);
        let call = call.clone();
        workers.push(tokio::spawn(async move {
            for i in 0..100_000u64 {
                match call(w * 1_000_000 + i + 1).await {
                    Some(id) => answered.lock().unwrap().push(id),
                    None => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    warden.child.kill().unwrap(); // SIGKILL
    warden.child.wait().unwrap();
    for w in workers {
        let _ = tokio::time::timeout(Duration::from_secs(10), w).await;
    }
    let answered = answered.lock().unwrap().clone();
    assert!(
        answered.len() > 100,
        "too few calls answered before the kill: {}",
        answered.len()
    );

    // What the killed process made durable: at least one spool segment.
    let spool = dir.path().join("warden.db.audit-spool");
    let segments = std::fs::read_dir(&spool).unwrap().count();
    assert!(
        segments > 0,
        "no audit spool segment in {}",
        spool.display()
    );
    // The next start moves it into the database, then the spool holds no
    // record (the segment the restarted process opened is its zero-filled
    // reservation).
    let restarted = start_demo(&dir, &[]);
    drop(restarted);
    let left: usize = std::fs::read_dir(&spool)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            std::fs::read(e.path())
                .map(|bytes| bytes.iter().any(|&b| b != 0))
                .unwrap_or(false)
        })
        .count();
    assert_eq!(left, 0, "the restart left spooled records unreplayed");

    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&db)
        .connect()
        .await
        .unwrap();
    let rows = sqlx::query("SELECT decision_id FROM audit_log WHERE kind = 'decision'")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let recorded: std::collections::HashSet<String> = rows
        .iter()
        .filter_map(|r| r.try_get::<String, _>("decision_id").ok())
        .collect();
    let missing: Vec<&String> = answered
        .iter()
        .filter(|id| !recorded.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered calls have no decision record (e.g. {:?})",
        missing.len(),
        answered.len(),
        missing.first()
    );
}

/// A 2026-07-28 request as that wire requires it: `_meta` with the protocol
/// version and the client's capabilities, `Mcp-Method` and `Mcp-Name`.
fn stateless_request(
    req: reqwest::RequestBuilder,
    mut body: serde_json::Value,
) -> reqwest::RequestBuilder {
    if !body["params"].is_object() {
        body["params"] = serde_json::json!({});
    }
    body["params"]["_meta"] = serde_json::json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let method = body["method"].as_str().unwrap_or("").to_owned();
    let mut req = req
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    if let Some(name) = body["params"]["name"].as_str() {
        req = req.header("mcp-name", name.to_owned());
    }
    req.json(&body)
}
