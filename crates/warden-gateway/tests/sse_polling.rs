//! SSE polling (MCP 2025-11-25 "Resumability and Redelivery"): an upstream
//! that closes a response stream before its answer, having sent an event
//! id and a `retry:` delay, expects its client to reconnect with `GET` and
//! `Last-Event-ID`. Warden does so as the client, honours the delay, reads
//! on until the answer, and gives up with `resume_failed` on a 405 or after
//! three reconnections that bring nothing. Its own GET listen stream on the
//! upstream is resumed the same way when it drops.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use common::*;
use serde_json::{json, Value};

/// What the upstream does when a client reconnects to a call's stream.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// The first reconnection gets one event and is closed again; the
    /// second gets the answer.
    AnswerAfterReconnects,
    /// `GET` is not allowed (405).
    NoGet,
    /// Every reconnection is an empty stream, closed at once.
    Nothing,
}

/// Delay the upstream asks for (`retry:`), milliseconds.
const RETRY_MS: u64 = 300;

struct Polling {
    scenario: Scenario,
    next_session: AtomicU64,
    /// Each GET: when, its `Last-Event-ID`.
    gets: Mutex<Vec<(Instant, Option<String>)>>,
    /// When each call's stream was closed early by the upstream.
    closed: Mutex<Vec<Instant>>,
    calls: AtomicU64,
}

impl Polling {
    fn resumes(&self) -> Vec<(Instant, String)> {
        self.gets
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(at, id)| id.clone().map(|id| (*at, id)))
            .collect()
    }
}

fn sse(text: String) -> Response {
    (
        StatusCode::OK,
        [("content-type", "text/event-stream")],
        Body::from(text),
    )
        .into_response()
}

fn event(id: &str, msg: Option<&Value>) -> String {
    let data = msg.map(Value::to_string).unwrap_or_default();
    format!("id: {id}\ndata: {data}\n\n")
}

async fn handle_post(State(st): State<Arc<Polling>>, body: Bytes) -> Response {
    let msg: Value = serde_json::from_slice(&body).unwrap();
    let id = msg["id"].clone();
    match msg["method"].as_str().unwrap_or("") {
        "initialize" => {
            let n = st.next_session.fetch_add(1, Ordering::SeqCst);
            let result = json!({"jsonrpc": "2.0", "id": id, "result": {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {"listChanged": true}},
                "serverInfo": {"name": "polling", "version": "1"}}});
            (
                [("mcp-session-id", format!("poll-session-{n}"))],
                axum::Json(result),
            )
                .into_response()
        }
        "tools/list" => axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": {"tools": [
            {"name": "wait", "description": "answers after the client polls",
             "inputSchema": {"type": "object"}}]}}))
        .into_response(),
        "tools/call" => {
            st.calls.fetch_add(1, Ordering::SeqCst);
            // A priming event with the retry delay, then the stream closes.
            st.closed.lock().unwrap().push(Instant::now());
            sse(format!(
                "id: {id}-0\nretry: {RETRY_MS}\ndata:\n\n",
                id = id.as_u64().unwrap()
            ))
        }
        "ping" => axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": {}})).into_response(),
        _ if msg.get("id").is_none() => StatusCode::ACCEPTED.into_response(),
        _ => axum::Json(json!({"jsonrpc": "2.0", "id": id,
                "error": {"code": -32601, "message": "unknown method"}}))
        .into_response(),
    }
}

async fn handle_get(State(st): State<Arc<Polling>>, headers: HeaderMap) -> Response {
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    st.gets.lock().unwrap().push((Instant::now(), last.clone()));
    if st.scenario == Scenario::NoGet {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let Some(last) = last else {
        // The standalone stream: one `list_changed` with an id and a
        // delay, then the upstream drops it.
        let note = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
        return sse(format!(
            "retry: {RETRY_MS}\n{}",
            event("listen-1", Some(&note))
        ));
    };
    if last.starts_with("listen-") {
        // The resumed standalone stream stays open.
        return (
            [("content-type", "text/event-stream")],
            Body::from_stream(futures::stream::pending::<Result<Bytes, std::io::Error>>()),
        )
            .into_response();
    }
    if st.scenario == Scenario::Nothing {
        return sse(String::new());
    }
    let (call, seq) = last.split_once('-').unwrap();
    let call: u64 = call.parse().unwrap();
    match seq {
        "0" => {
            // Still working: a progress-like event, closed again.
            st.closed.lock().unwrap().push(Instant::now());
            let log = json!({"jsonrpc": "2.0", "method": "notifications/message",
                "params": {"level": "info", "data": "still working"}});
            sse(event(&format!("{call}-1"), Some(&log)))
        }
        _ => {
            let answer = json!({"jsonrpc": "2.0", "id": call, "result": {
                "content": [{"type": "text", "text": "answered after polling"}]}});
            sse(event(&format!("{call}-2"), Some(&answer)))
        }
    }
}

async fn upstream(scenario: Scenario) -> (Arc<Polling>, SocketAddr) {
    let st = Arc::new(Polling {
        scenario,
        next_session: AtomicU64::new(1),
        gets: Mutex::default(),
        closed: Mutex::default(),
        calls: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/mcp", post(handle_post).get(handle_get))
        .with_state(Arc::clone(&st));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (st, addr)
}

async fn harness(scenario: Scenario) -> (Arc<Polling>, Harness) {
    let (st, addr) = upstream(scenario).await;
    let h = start(
        rows(1, &["poller"]),
        vec![http_upstream(
            1,
            "poller",
            &format!("http://{addr}/mcp"),
            15_000,
        )],
    )
    .await;
    (st, h)
}

async fn call(h: &Harness) -> Value {
    let sid = h.initialize("/mcp", KEY_A).await;
    h.rpc(
        "/mcp",
        KEY_A,
        &sid,
        7,
        "tools/call",
        json!({"name": "poller__wait", "arguments": {}}),
    )
    .await
}

#[tokio::test]
async fn a_call_whose_stream_closes_early_is_answered_after_polling() {
    let (st, h) = harness(Scenario::AnswerAfterReconnects).await;
    let started = Instant::now();
    let r = call(&h).await;
    assert_eq!(r["id"], 7, "{r}");
    assert_eq!(
        r["result"]["content"][0]["text"], "answered after polling",
        "{r}"
    );
    assert_eq!(st.calls.load(Ordering::SeqCst), 1, "called once");

    // Two reconnections, each after the last event id seen.
    let resumes: Vec<_> = st
        .resumes()
        .into_iter()
        .filter(|(_, id)| !id.starts_with("listen-"))
        .collect();
    assert_eq!(resumes.len(), 2, "{:?}", resumes);
    let call_id = resumes[0].1.strip_suffix("-0").expect("resumes after 0");
    assert_eq!(resumes[1].1, format!("{call_id}-1"));
    // Each after the `retry:` delay from the moment the stream closed.
    let closed = st.closed.lock().unwrap().clone();
    for (at, _) in &resumes {
        let before = closed
            .iter()
            .filter(|c| *c < at)
            .max()
            .expect("a close before each resume");
        let waited = at.duration_since(*before);
        assert!(
            waited >= Duration::from_millis(RETRY_MS - 20),
            "reconnected after {waited:?}"
        );
        assert!(
            waited < Duration::from_secs(3),
            "reconnected after {waited:?}"
        );
    }
    assert!(started.elapsed() >= Duration::from_millis(2 * RETRY_MS));
}

#[tokio::test]
async fn a_405_on_reconnection_fails_the_call_with_resume_failed() {
    let (st, h) = harness(Scenario::NoGet).await;
    let r = call(&h).await;
    assert_eq!(r["error"]["code"], -32001, "{r}");
    assert_eq!(r["error"]["data"]["kind"], "resume_failed", "{r}");
    assert_eq!(r["error"]["data"]["server"], "poller", "{r}");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("405"),
        "{r}"
    );
    // One attempt only.
    assert_eq!(st.resumes().len(), 1);
}

#[tokio::test]
async fn three_reconnections_that_bring_nothing_fail_the_call() {
    let (st, h) = harness(Scenario::Nothing).await;
    let r = call(&h).await;
    assert_eq!(r["error"]["data"]["kind"], "resume_failed", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("3 reconnections brought nothing"),
        "{r}"
    );
    let resumes: Vec<_> = st
        .resumes()
        .into_iter()
        .filter(|(_, id)| !id.starts_with("listen-"))
        .collect();
    assert_eq!(resumes.len(), 3, "{resumes:?}");
    // All after the one event id the upstream sent.
    assert!(resumes.iter().all(|(_, id)| id == &resumes[0].1));
    assert!(resumes[0].1.ends_with("-0"));
}

#[tokio::test]
async fn the_upstream_listen_stream_is_resumed_with_last_event_id() {
    let (st, _h) = harness(Scenario::AnswerAfterReconnects).await;
    // The shared connection's listen stream: dropped by the upstream after
    // one event, reopened after the delay with that event's id.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let resumed = st
            .gets
            .lock()
            .unwrap()
            .iter()
            .position(|(_, id)| id.as_deref() == Some("listen-1"));
        if let Some(i) = resumed {
            let gets = st.gets.lock().unwrap().clone();
            let fresh = gets[..i]
                .iter()
                .rev()
                .find(|(_, id)| id.is_none())
                .expect("a fresh GET first");
            let waited = gets[i].0.duration_since(fresh.0);
            assert!(
                waited >= Duration::from_millis(RETRY_MS - 20),
                "resumed after {waited:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the listen stream was not resumed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
