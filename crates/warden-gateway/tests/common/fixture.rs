//! A small MCP server (2025-11-25 Streamable HTTP) that records what it
//! receives, with switchable misbehaviour.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// tools/call answers with bytes that are not JSON.
    Garbage,
    /// tools/call answers with a body larger than the gateway's limit.
    Oversized,
    /// Speaks only 2026-07-28: refuses `initialize`, requires the version
    /// header and `_meta` on every request. Its lists say they may be cached
    /// publicly; `needs_sampling` refuses a caller that did not declare
    /// sampling (HTTP 400, -32021) and reading `file:///missing` is a 404
    /// with the URI in the error's `data`.
    Stateless,
    /// Speaks both eras on one endpoint: `initialize` (2025-11-25) and
    /// `server/discover` (2026-07-28).
    Dual,
}

pub struct FixtureState {
    pub mode: Mode,
    pub tools: Mutex<Vec<Value>>,
    pub recorded: Mutex<Vec<(HeaderMap, Value)>>,
    streams: Mutex<Vec<mpsc::Sender<Value>>>,
    /// Responses the client sent to this server's own requests.
    answers: Mutex<Vec<tokio::sync::oneshot::Sender<Value>>>,
}

impl FixtureState {
    pub fn requests(&self, method: &str) -> Vec<(HeaderMap, Value)> {
        self.recorded
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, b)| b["method"] == method)
            .cloned()
            .collect()
    }

    /// Replaces the tools and announces it on open GET streams.
    pub fn set_tools(&self, tools: Vec<Value>) {
        *self.tools.lock().unwrap() = tools;
        let note = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
        for s in self.streams.lock().unwrap().iter() {
            let _ = s.try_send(note.clone());
        }
    }
}

pub struct Fixture {
    pub addr: SocketAddr,
    pub state: Arc<FixtureState>,
}

impl Fixture {
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }
}

pub fn tool(name: &str) -> Value {
    json!({"name": name, "description": format!("the {name} tool"),
           "inputSchema": {"type": "object"}, "x-vendor": {"keep": name}})
}

pub async fn start(mode: Mode, tools: &[&str]) -> Fixture {
    let state = Arc::new(FixtureState {
        mode,
        tools: Mutex::new(tools.iter().map(|t| tool(t)).collect()),
        recorded: Mutex::new(Vec::new()),
        streams: Mutex::new(Vec::new()),
        answers: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route(
            "/mcp",
            post(handle_post).get(handle_get).delete(handle_delete),
        )
        .with_state(Arc::clone(&state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Fixture { addr, state }
}

fn json_reply(id: Value, result: Value) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string();
    ([("content-type", "application/json")], body).into_response()
}

/// Ending a session: recorded as a request with method `DELETE`.
async fn handle_delete(State(state): State<Arc<FixtureState>>, headers: HeaderMap) -> Response {
    state
        .recorded
        .lock()
        .unwrap()
        .push((headers, json!({"method": "DELETE"})));
    StatusCode::NO_CONTENT.into_response()
}

async fn handle_get(State(state): State<Arc<FixtureState>>) -> Response {
    let (tx, rx) = mpsc::channel(16);
    state.streams.lock().unwrap().push(tx);
    let stream = ReceiverStream::new(rx)
        .map(|v: Value| Ok::<_, Infallible>(Event::default().event("message").data(v.to_string())));
    Sse::new(stream).into_response()
}

async fn handle_post(
    State(state): State<Arc<FixtureState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let msg: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    state
        .recorded
        .lock()
        .unwrap()
        .push((headers.clone(), msg.clone()));
    let id = msg.get("id").cloned();
    let method = msg["method"].as_str().unwrap_or("").to_owned();
    let Some(id) = id else {
        return StatusCode::ACCEPTED.into_response();
    };
    if msg.get("method").is_none() {
        if let Some(tx) = state.answers.lock().unwrap().pop() {
            let _ = tx.send(msg);
        }
        return StatusCode::ACCEPTED.into_response();
    }
    if state.mode == Mode::Stateless {
        let versioned = headers
            .get("mcp-protocol-version")
            .is_some_and(|v| v == "2026-07-28")
            && msg["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] == "2026-07-28"
            && headers
                .get("mcp-method")
                .is_some_and(|v| v.to_str().unwrap() == method);
        if method == "initialize" || !versioned {
            return (StatusCode::BAD_REQUEST, "stateless only").into_response();
        }
        if method == "server/discover" {
            return json_reply(
                id,
                json!({"supportedVersions": ["2026-07-28"], "resultType": "complete",
                "capabilities": {"tools": {"listChanged": true}, "prompts": {}, "resources": {}},
                "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "stateless-fixture", "version": "1"}}}),
            );
        }
        if method == "subscriptions/listen" {
            return (StatusCode::METHOD_NOT_ALLOWED, "no").into_response();
        }
        if method == "prompts/list" || method == "resources/list" {
            let field = if method == "prompts/list" {
                "prompts"
            } else {
                "resources"
            };
            return json_reply(
                id,
                json!({field: [], "resultType": "complete", "ttlMs": 300000, "cacheScope": "public"}),
            );
        }
        if method == "resources/read" && msg["params"]["uri"] == "file:///missing" {
            let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32602,
                "message": "Resource not found", "data": {"uri": "file:///missing", "x-extra": [1]}}});
            return (
                StatusCode::NOT_FOUND,
                [("content-type", "application/json")],
                body.to_string(),
            )
                .into_response();
        }
        let declared = &msg["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"];
        if msg["params"]["name"] == "needs_sampling" && declared.get("sampling").is_none() {
            let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32021,
                "message": "Missing required client capability",
                "data": {"requiredCapabilities": {"sampling": {}}}}});
            return (
                StatusCode::BAD_REQUEST,
                [("content-type", "application/json")],
                body.to_string(),
            )
                .into_response();
        }
    }
    if state.mode == Mode::Dual && method == "server/discover" {
        return json_reply(
            id,
            json!({"supportedVersions": ["2026-07-28", "2025-11-25"], "resultType": "complete",
            "capabilities": {"tools": {"listChanged": true}}}),
        );
    }
    match method.as_str() {
        "initialize" => {
            let mut resp = json_reply(
                id,
                json!({"protocolVersion": "2025-11-25",
                       "capabilities": {"tools": {"listChanged": true}, "prompts": {}, "resources": {}},
                       "serverInfo": {"name": "fixture", "version": "1"}}),
            );
            resp.headers_mut()
                .insert("mcp-session-id", "upstream-session-1".parse().unwrap());
            resp
        }
        "tools/list" => {
            let tools = state.tools.lock().unwrap().clone();
            json_reply(id, json!({"tools": tools, "x-list-extra": 1}))
        }
        "prompts/list" => json_reply(
            id,
            json!({"prompts": [{"name": "greet", "description": "hi"}]}),
        ),
        "prompts/get" => json_reply(
            id,
            json!({"messages": [{"role": "user", "content": {"type": "text", "text": msg["params"]["name"]}}]}),
        ),
        "resources/list" => json_reply(
            id,
            json!({"resources": [{"uri": "file:///readme", "name": "readme"}]}),
        ),
        "resources/read" => json_reply(
            id,
            json!({"contents": [{"uri": msg["params"]["uri"], "text": "hello"}]}),
        ),
        "tools/call" => call(&state, id, &msg).await,
        _ => json_reply(id, json!({})),
    }
}

async fn call(state: &Arc<FixtureState>, id: Value, msg: &Value) -> Response {
    match state.mode {
        Mode::Garbage => {
            return (
                [("content-type", "application/json")],
                "<<this is not json>>",
            )
                .into_response()
        }
        Mode::Oversized => {
            let text = "x".repeat(2 * 1024 * 1024);
            return json_reply(id, json!({"content": [{"type": "text", "text": text}]}));
        }
        Mode::Normal | Mode::Stateless | Mode::Dual => {}
    }
    let name = msg["params"]["name"].as_str().unwrap_or("");
    let args = msg["params"]["arguments"].clone();
    match name {
        "slow" => {
            let ms = args["ms"].as_u64().unwrap_or(2000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            json_reply(
                id,
                json!({"content": [{"type": "text", "text": "slow done"}]}),
            )
        }
        "ask" => {
            // Asks the client for a sampling result mid-call.
            let (tx, rx) = tokio::sync::oneshot::channel();
            state.answers.lock().unwrap().push(tx);
            let request = json!({"jsonrpc": "2.0", "id": "srv-1", "method": "sampling/createMessage",
                "params": {"messages": [], "maxTokens": 5}});
            let first = futures::stream::iter(vec![request]);
            let last = futures::stream::once(async move {
                let answer = rx.await.unwrap_or(Value::Null);
                json!({"jsonrpc": "2.0", "id": id, "result": {"content": [{"type": "text", "text": "asked"}], "answer": answer}})
            });
            let stream = first.chain(last).map(|v| {
                Ok::<_, Infallible>(Event::default().event("message").data(v.to_string()))
            });
            Sse::new(stream).into_response()
        }
        "progress" => {
            let token = msg["params"]["_meta"]["progressToken"].clone();
            let events = vec![
                json!({"jsonrpc": "2.0", "method": "notifications/progress",
                       "params": {"progressToken": token, "progress": 1, "total": 2}}),
                json!({"jsonrpc": "2.0", "method": "notifications/message",
                       "params": {"level": "info", "data": "working"}}),
                json!({"jsonrpc": "2.0", "id": id, "result": {"content": [{"type": "text", "text": "done"}]}}),
            ];
            let stream = futures::stream::iter(events).map(|v| {
                Ok::<_, Infallible>(Event::default().event("message").data(v.to_string()))
            });
            Sse::new(stream).into_response()
        }
        _ => json_reply(
            id,
            json!({"content": [{"type": "text", "text": format!("{name} called")}],
                   "structuredContent": {"echo": args, "params_seen": msg["params"].clone()},
                   "x-unknown-result": {"nested": [1, 2, 3]},
                   "_meta": {"upstream/meta": "kept"}}),
        ),
    }
}
