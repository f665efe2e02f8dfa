//! A small MCP server (2025-11-25 Streamable HTTP) that records what it
//! receives, with switchable misbehaviour. Each `initialize` opens a session
//! of its own (`upstream-session-{n}`), with its own GET stream, log level
//! and resource subscriptions, so tests can tell callers' sessions apart.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// with the URI in the error's `data`. It offers the
    /// `io.modelcontextprotocol/tasks` extension: a `job` call from a caller
    /// that declared it creates a task (`task-{n}`), which `tasks/get`,
    /// `tasks/update` and `tasks/cancel` answer for (any caller: the
    /// fixture has one connection and no idea who is asking).
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
    next_session: AtomicU64,
    /// Per session: the `initialize` params, in order of creation.
    pub sessions: Mutex<Vec<(String, Value)>>,
    /// Per session: its GET stream, once open.
    session_streams: Mutex<HashMap<String, mpsc::Sender<Value>>>,
    /// (session, uri) of each `resources/subscribe`.
    pub subscriptions: Mutex<Vec<(String, String)>>,
    /// Per session: the level of its last `logging/setLevel`.
    pub levels: Mutex<HashMap<String, String>>,
    /// Answers to requests sent on a session's GET stream, by request id.
    stream_answers: Mutex<HashMap<String, tokio::sync::oneshot::Sender<Value>>>,
    /// (session, task id) of each task a task-augmented call created.
    pub tasks: Mutex<Vec<(String, String)>>,
    /// (session, task id) of each `tasks/cancel`.
    pub cancelled: Mutex<Vec<(String, String)>>,
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

    /// The session ids handed out, in order (the first is the gateway's
    /// shared connection).
    pub fn session_ids(&self) -> Vec<String> {
        self.sessions
            .lock()
            .unwrap()
            .iter()
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// The `initialize` params of a session.
    pub fn init_params(&self, sid: &str) -> Option<Value> {
        self.sessions
            .lock()
            .unwrap()
            .iter()
            .find(|(s, _)| s == sid)
            .map(|(_, p)| p.clone())
    }

    /// Sends `msg` on one session's GET stream; false if it has none open.
    pub fn notify_session(&self, sid: &str, msg: Value) -> bool {
        let tx = self.session_streams.lock().unwrap().get(sid).cloned();
        tx.is_some_and(|tx| tx.try_send(msg).is_ok())
    }

    /// Waits (up to 5 s) until a session has its GET stream open.
    pub async fn wait_stream(&self, sid: &str) -> bool {
        for _ in 0..250 {
            if self.session_streams.lock().unwrap().contains_key(sid) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// `notifications/resources/updated` for `uri` to every session that
    /// subscribed to it; returns those sessions.
    pub fn resource_updated(&self, uri: &str) -> Vec<String> {
        let subscribers: Vec<String> = self
            .subscriptions
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, u)| u == uri)
            .map(|(s, _)| s.clone())
            .collect();
        let note = json!({"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": uri}});
        for sid in &subscribers {
            self.notify_session(sid, note.clone());
        }
        subscribers
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
        next_session: AtomicU64::new(1),
        sessions: Mutex::new(Vec::new()),
        session_streams: Mutex::new(HashMap::new()),
        subscriptions: Mutex::new(Vec::new()),
        levels: Mutex::new(HashMap::new()),
        stream_answers: Mutex::new(HashMap::new()),
        tasks: Mutex::new(Vec::new()),
        cancelled: Mutex::new(Vec::new()),
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

async fn handle_get(State(state): State<Arc<FixtureState>>, headers: HeaderMap) -> Response {
    let (tx, rx) = mpsc::channel(16);
    state.streams.lock().unwrap().push(tx.clone());
    if let Some(sid) = session_of(&headers) {
        state.session_streams.lock().unwrap().insert(sid, tx);
    }
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
        let by_id = msg["id"]
            .as_str()
            .and_then(|id| state.stream_answers.lock().unwrap().remove(id));
        if let Some(tx) = by_id.or_else(|| state.answers.lock().unwrap().pop()) {
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
                "capabilities": {"tools": {"listChanged": true}, "prompts": {}, "resources": {},
                                 "extensions": {"io.modelcontextprotocol/tasks": {}}},
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
        if let Some(resp) = extension_task(&state, &id, &method, &msg) {
            return resp;
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
                       "capabilities": {"tools": {"listChanged": true}, "prompts": {},
                                        "resources": {"subscribe": true}, "logging": {}},
                       "serverInfo": {"name": "fixture", "version": "1"}}),
            );
            let n = state.next_session.fetch_add(1, Ordering::SeqCst);
            let sid = format!("upstream-session-{n}");
            state
                .sessions
                .lock()
                .unwrap()
                .push((sid.clone(), msg["params"].clone()));
            resp.headers_mut()
                .insert("mcp-session-id", sid.parse().unwrap());
            resp
        }
        "resources/subscribe" => {
            if let (Some(sid), Some(uri)) = (session_of(&headers), msg["params"]["uri"].as_str()) {
                state
                    .subscriptions
                    .lock()
                    .unwrap()
                    .push((sid, uri.to_owned()));
            }
            json_reply(id, json!({}))
        }
        "logging/setLevel" => {
            if let (Some(sid), Some(level)) =
                (session_of(&headers), msg["params"]["level"].as_str())
            {
                state.levels.lock().unwrap().insert(sid, level.to_owned());
            }
            json_reply(id, json!({}))
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
        // 2025-11-25 tasks: a task belongs to the session that created it.
        "tools/call" if msg["params"].get("task").is_some() => {
            let sid = session_of(&headers).unwrap_or_default();
            let task = format!("task-{}", state.tasks.lock().unwrap().len() + 1);
            state.tasks.lock().unwrap().push((sid, task.clone()));
            json_reply(
                id,
                json!({"task": {"taskId": task, "status": "working", "ttl": 60000,
                       "createdAt": "2026-12-06T00:00:00Z", "lastUpdatedAt": "2026-12-06T00:00:00Z"}}),
            )
        }
        "tasks/get" | "tasks/result" | "tasks/cancel" => {
            let sid = session_of(&headers).unwrap_or_default();
            let task = msg["params"]["taskId"].as_str().unwrap_or("").to_owned();
            let mine = state
                .tasks
                .lock()
                .unwrap()
                .iter()
                .any(|(s, t)| *s == sid && *t == task);
            if !mine {
                let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32602, "message": "Task not found"}});
                return ([("content-type", "application/json")], body.to_string()).into_response();
            }
            if method == "tasks/cancel" {
                state.cancelled.lock().unwrap().push((sid, task.clone()));
            }
            let status = if method == "tasks/cancel" {
                "cancelled"
            } else {
                "working"
            };
            json_reply(
                id,
                json!({"taskId": task, "status": status, "ttl": 60000,
                "createdAt": "2026-12-06T00:00:00Z", "lastUpdatedAt": "2026-12-06T00:00:00Z"}),
            )
        }
        "tools/call" => call(&state, id, &msg, session_of(&headers)).await,
        _ => json_reply(id, json!({})),
    }
}

/// The tasks extension (2026-07-28) of the stateless fixture.
fn extension_task(state: &FixtureState, id: &Value, method: &str, msg: &Value) -> Option<Response> {
    let declared = msg["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"]
        .pointer("/extensions/io.modelcontextprotocol~1tasks")
        .is_some();
    let error = |status: StatusCode, code: i64, message: &str| {
        let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
        (
            status,
            [("content-type", "application/json")],
            body.to_string(),
        )
            .into_response()
    };
    let task_fields = |task: &str, status: &str| {
        json!({"taskId": task, "status": status, "ttlMs": 60000, "pollIntervalMs": 100,
               "createdAt": "2026-12-06T00:00:00Z", "lastUpdatedAt": "2026-12-06T00:00:00Z"})
    };
    match method {
        "tools/call" if msg["params"]["name"] == "job" && declared => {
            let mut tasks = state.tasks.lock().unwrap();
            let task = format!("task-{}", tasks.len() + 1);
            tasks.push((String::new(), task.clone()));
            let mut result = task_fields(&task, "working");
            result["resultType"] = json!("task");
            Some(json_reply(id.clone(), result))
        }
        "tasks/get" | "tasks/update" | "tasks/cancel" => {
            if !declared {
                return Some(error(
                    StatusCode::BAD_REQUEST,
                    -32021,
                    "Missing required client capability",
                ));
            }
            let task = msg["params"]["taskId"].as_str().unwrap_or("").to_owned();
            if !state.tasks.lock().unwrap().iter().any(|(_, t)| *t == task) {
                return Some(error(StatusCode::OK, -32602, "Task not found"));
            }
            if method == "tasks/cancel" {
                state
                    .cancelled
                    .lock()
                    .unwrap()
                    .push((String::new(), task.clone()));
            }
            if method != "tasks/get" {
                return Some(json_reply(id.clone(), json!({"resultType": "complete"})));
            }
            let cancelled = state
                .cancelled
                .lock()
                .unwrap()
                .iter()
                .any(|(_, t)| *t == task);
            let mut result = task_fields(&task, if cancelled { "cancelled" } else { "working" });
            result["resultType"] = json!("complete");
            Some(json_reply(id.clone(), result))
        }
        _ => None,
    }
}

fn session_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn call(
    state: &Arc<FixtureState>,
    id: Value,
    msg: &Value,
    session: Option<String>,
) -> Response {
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
        "whisper" => {
            // On the caller's own session's GET stream, not the response:
            // a log message, then a sampling request whose answer the result
            // carries.
            let sid = session.unwrap_or_default();
            if !state.wait_stream(&sid).await {
                return json_reply(
                    id,
                    json!({"content": [], "answer": "no stream", "session": sid}),
                );
            }
            let log = json!({"jsonrpc": "2.0", "method": "notifications/message",
                "params": {"level": "info", "logger": "fixture", "data": format!("for {sid}")}});
            state.notify_session(&sid, log);
            let ask_id = format!("ask-{sid}");
            let (tx, rx) = tokio::sync::oneshot::channel();
            state
                .stream_answers
                .lock()
                .unwrap()
                .insert(ask_id.clone(), tx);
            let ask = json!({"jsonrpc": "2.0", "id": ask_id, "method": "sampling/createMessage",
                "params": {"messages": [], "maxTokens": 5, "x-for": sid}});
            state.notify_session(&sid, ask);
            let answer = tokio::time::timeout(Duration::from_secs(5), rx)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or(Value::Null);
            json_reply(
                id,
                json!({"content": [{"type": "text", "text": "whispered"}], "answer": answer, "session": sid}),
            )
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
