//! Benchmark 3: the cost of per-caller upstream sessions (issue 9).
//!
//! One `warden serve` (SQLite) and an in-process session-era (2025-11-25
//! only) MCP upstream that counts its sessions, open GET streams and
//! `DELETE`s. `sessions` MCP sessions each make one `tools/call` through
//! `/mcp` and stay open; then Warden's RSS, its TCP connections to the
//! upstream (from `/proc/net/tcp`) and the upstream's live sessions are
//! read; then every session is ended and the same is read again. Run with
//! `--max-caller-sessions 0` for the shared-session baseline.
//!
//! The upstream is written here (not the demo server, which speaks
//! 2026-07-28, where there are no sessions to split); it does no more than
//! the measurement needs.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::Serialize;
use serde_json::{json, Value};

use crate::admin::Admin;
use crate::error::{BenchError, Result};
use crate::mcp::{CallOutcome, McpSession};
use crate::procs::{random_secret, Binaries, RunDir, Warden, WardenSettings};

const ORG: &str = "callers";
const SERVER: &str = "sess";
const TOOL: &str = "sess__echo";

#[derive(Debug, Clone)]
pub struct CallersConfig {
    pub sessions: usize,
    /// `WARDEN_UPSTREAM_MAX_CALLER_SESSIONS` (0: one shared session).
    pub max_caller_sessions: usize,
    pub open_concurrency: usize,
    pub log_filter: String,
    pub keep_logs: bool,
}

/// What was measured at one point of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub warden_rss_kib: u64,
    /// Established TCP connections from Warden to the upstream.
    pub upstream_connections: usize,
    /// Sessions the upstream holds (initialized, not deleted).
    pub upstream_sessions: usize,
    /// GET streams open at the upstream.
    pub upstream_streams: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct CallersReport {
    pub sessions: usize,
    pub max_caller_sessions: usize,
    pub calls_ok: usize,
    pub calls_failed: usize,
    pub open_seconds: f64,
    pub before: Sample,
    pub with_sessions: Sample,
    pub after_close: Sample,
    pub upstream_deletes: usize,
}

impl CallersReport {
    pub fn to_table(&self) -> String {
        let row = |name: &str, s: &Sample| {
            format!(
                "| {name} | {:.1} | {} | {} | {} |\n",
                s.warden_rss_kib as f64 / 1024.0,
                s.upstream_connections,
                s.upstream_sessions,
                s.upstream_streams
            )
        };
        let per = (self.with_sessions.warden_rss_kib as f64 - self.before.warden_rss_kib as f64)
            / self.sessions.max(1) as f64;
        format!(
            "{} sessions, one tools/call each, max_caller_sessions {} ({} ok, {} failed, opened in {:.1} s)\n\n\
             | point | Warden RSS MiB | Warden->upstream TCP | upstream sessions | upstream GET streams |\n\
             |---|---:|---:|---:|---:|\n{}{}{}\n\
             RSS per live session (with its call): {per:.1} KiB; upstream DELETEs after the sessions ended: {}\n",
            self.sessions,
            self.max_caller_sessions,
            self.calls_ok,
            self.calls_failed,
            self.open_seconds,
            row("before", &self.before),
            row("sessions live", &self.with_sessions),
            row("sessions ended", &self.after_close),
            self.upstream_deletes,
        )
    }
}

#[derive(Default)]
struct UpstreamState {
    next: AtomicUsize,
    live: Mutex<HashSet<String>>,
    streams: AtomicUsize,
    deletes: AtomicUsize,
}

struct StreamGuard(Arc<UpstreamState>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::SeqCst);
    }
}

fn session_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn reply(id: Value, result: Value) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string();
    ([("content-type", "application/json")], body).into_response()
}

async fn on_post(
    State(state): State<Arc<UpstreamState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(msg) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let method = msg.get("method").and_then(Value::as_str).unwrap_or("");
    let Some(id) = msg.get("id").cloned() else {
        return StatusCode::ACCEPTED.into_response();
    };
    if method == "initialize" {
        let n = state.next.fetch_add(1, Ordering::SeqCst);
        let sid = format!("bench-session-{n}");
        state
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sid.clone());
        let mut resp = reply(
            id,
            json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {"listChanged": true}},
                   "serverInfo": {"name": "bench-session-upstream", "version": "1"}}),
        );
        if let Ok(v) = sid.parse() {
            resp.headers_mut().insert("mcp-session-id", v);
        }
        return resp;
    }
    let known = session_of(&headers).is_some_and(|s| {
        state
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&s)
    });
    if !known {
        // Session era only: `server/discover` and anything without a live
        // session is refused.
        return (StatusCode::BAD_REQUEST, "session required").into_response();
    }
    match method {
        "tools/list" => reply(
            id,
            json!({"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}),
        ),
        "tools/call" => reply(
            id,
            json!({"content": [{"type": "text", "text": msg["params"]["arguments"].to_string()}]}),
        ),
        _ => reply(id, json!({})),
    }
}

async fn on_get(State(state): State<Arc<UpstreamState>>) -> Response {
    state.streams.fetch_add(1, Ordering::SeqCst);
    let guard = StreamGuard(Arc::clone(&state));
    let stream = futures::stream::unfold(guard, |guard| async move {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Some((
            Ok::<_, Infallible>(Event::default().comment("keep-alive")),
            guard,
        ))
    });
    Sse::new(stream).into_response()
}

async fn on_delete(State(state): State<Arc<UpstreamState>>, headers: HeaderMap) -> Response {
    state.deletes.fetch_add(1, Ordering::SeqCst);
    if let Some(sid) = session_of(&headers) {
        state
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&sid);
    }
    StatusCode::NO_CONTENT.into_response()
}

/// Established TCP connections to 127.0.0.1:`port` as seen from the client
/// side (`/proc/net/tcp`: remote port `port`, state 01).
fn connections_to(port: u16) -> usize {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return 0;
    };
    let want = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            cols.len() > 3 && cols[2].ends_with(&want) && cols[3] == "01"
        })
        .count()
}

pub async fn run(config: &CallersConfig, bins: &Binaries) -> Result<CallersReport> {
    let mut dir = RunDir::new("warden-bench-callers-")?;
    let state = Arc::new(UpstreamState::default());
    let app = Router::new()
        .route("/mcp", post(on_post).get(on_get).delete(on_delete))
        .with_state(Arc::clone(&state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let upstream_url = format!("http://127.0.0.1:{port}/mcp");

    let settings = WardenSettings {
        database_url: format!("sqlite://{}/warden.db", dir.path().display()),
        admin_token: random_secret(),
        secret_key: random_secret(),
        log_filter: config.log_filter.clone(),
        env: vec![(
            "WARDEN_UPSTREAM_MAX_CALLER_SESSIONS".into(),
            config.max_caller_sessions.to_string(),
        )],
    };
    let mut warden = Warden::start(bins, &settings, "warden", dir.path()).await?;
    let admin = Admin::new(&warden.base, &settings.admin_token)?;
    admin.create_org(ORG).await?;
    admin.create_http_server(SERVER, &upstream_url).await?;
    admin.grant_all(ORG, SERVER).await?;
    let key = admin.create_key(ORG, "callers").await?;

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(config.open_concurrency.max(1))
        .build()?;
    // The shared connection is up once the catalog lists the tool.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut probe = McpSession::open(http.clone(), &warden.mcp_url(), &key).await?;
        let listed = probe.request("tools/list", json!({})).await?;
        probe.close().await;
        if listed.to_string().contains(TOOL) {
            break;
        }
        if Instant::now() > deadline {
            return Err(BenchError::Timeout {
                what: "the upstream's catalog".into(),
                after: Duration::from_secs(30),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sample = |warden: &Warden| Sample {
        warden_rss_kib: warden.proc.rss_kib().unwrap_or(0),
        upstream_connections: connections_to(port),
        upstream_sessions: state.live.lock().unwrap_or_else(|e| e.into_inner()).len(),
        upstream_streams: state.streams.load(Ordering::SeqCst),
    };
    let before = sample(&warden);

    let started = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::channel(config.sessions.max(1));
    let per_worker = config.sessions.div_ceil(config.open_concurrency.max(1));
    let mut workers = Vec::new();
    for w in 0..config.open_concurrency.max(1) {
        let count = per_worker.min(config.sessions.saturating_sub(w * per_worker));
        let (http, url, key, tx) = (http.clone(), warden.mcp_url(), key.clone(), tx.clone());
        workers.push(tokio::spawn(async move {
            for _ in 0..count {
                let outcome = match McpSession::open(http.clone(), &url, &key).await {
                    Ok(mut s) => {
                        let o = s.call_tool(TOOL, json!({"text": "hi"})).await;
                        (Some(s), o)
                    }
                    Err(e) => (None, CallOutcome::Failed(e.to_string())),
                };
                if tx.send(outcome).await.is_err() {
                    return;
                }
            }
        }));
    }
    drop(tx);
    let mut live = Vec::with_capacity(config.sessions);
    let (mut ok, mut failed) = (0, 0);
    while let Some((session, outcome)) = rx.recv().await {
        match outcome {
            CallOutcome::Ok => ok += 1,
            _ => failed += 1,
        }
        live.extend(session);
    }
    let open_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    warden.proc.check_alive()?;
    let with_sessions = sample(&warden);

    let deletes_before = state.deletes.load(Ordering::SeqCst);
    for s in live {
        s.close().await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after_close = sample(&warden);
    let upstream_deletes = state.deletes.load(Ordering::SeqCst) - deletes_before;
    if config.keep_logs {
        dir.keep();
    }
    Ok(CallersReport {
        sessions: config.sessions,
        max_caller_sessions: config.max_caller_sessions,
        calls_ok: ok,
        calls_failed: failed,
        open_seconds,
        before,
        with_sessions,
        after_close,
        upstream_deletes,
    })
}
