//! A small, fast MCP server speaking Streamable HTTP, with a few demo tools.
//!
//! It is the upstream that `warden serve --demo` starts on a loopback port and
//! the upstream of the load benchmark, so it is written to add as little
//! latency as possible: one JSON parse per request, plain JSON responses.
//!
//! Protocol support:
//! - 2025-11-25 (and 2025-06-18 / 2025-03-26): `initialize` opens a session and
//!   returns `Mcp-Session-Id`; later requests must carry it (unknown id: 404);
//!   `DELETE /mcp` ends it; `GET /mcp` answers 405 (no server-initiated stream).
//! - 2026-07-28 (stateless): requests carrying `MCP-Protocol-Version: 2026-07-28`
//!   need no session; `server/discover` describes the server.
//! - Responses are `application/json`, or a one-event `text/event-stream` when
//!   the client's `Accept` does not admit JSON.
//! - Requests with a non-loopback `Origin` are refused (403), as the spec asks
//!   of local servers.
//!
//! Tools: `echo {text}`, `add {a, b}`, `time_now {}`, `sleep {ms}`, plus
//! `extra_tools` generated ones (`tool_000` ...) that echo their arguments, used
//! to benchmark large catalogs.
//!
//! ```no_run
//! # async fn run() -> Result<(), warden_demo::DemoError> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! println!("demo upstream at http://{}/mcp", listener.local_addr()?);
//! warden_demo::serve(listener).await
//! # }
//! ```

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;

/// Protocol versions this server accepts, newest first.
pub const SUPPORTED_VERSIONS: [&str; 4] = ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"];
/// The session-ful version offered when a client asks for one we don't know.
pub const DEFAULT_SESSION_VERSION: &str = "2025-11-25";
/// The stateless protocol era.
pub const STATELESS_VERSION: &str = "2026-07-28";
/// Longest `sleep` the demo honours, so a request cannot pin a task forever.
pub const MAX_SLEEP_MS: u64 = 60_000;

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

/// Errors from running the demo server.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo server I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// How the demo server presents itself.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// `serverInfo.name`.
    pub name: String,
    /// Number of generated `tool_NNN` tools added to the catalog.
    pub extra_tools: usize,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            name: "warden-demo".to_string(),
            extra_tools: 0,
        }
    }
}

struct DemoState {
    options: DemoOptions,
    /// The `tools/list` result, built once.
    tools: Value,
    sessions: RwLock<HashSet<String>>,
}

/// Serve the demo MCP server with default options at `/mcp` on `listener`
/// until the process ends.
pub async fn serve(listener: TcpListener) -> Result<(), DemoError> {
    serve_with(listener, DemoOptions::default(), std::future::pending()).await
}

/// Serve with `options` until `shutdown` completes (graceful: in-flight
/// requests finish).
pub async fn serve_with(
    listener: TcpListener,
    options: DemoOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DemoError> {
    axum::serve(listener, router(options))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// The demo server as an axum router (`POST|GET|DELETE /mcp`), for embedding.
pub fn router(options: DemoOptions) -> Router {
    let tools = tool_catalog(options.extra_tools);
    let state = Arc::new(DemoState {
        options,
        tools,
        sessions: RwLock::new(HashSet::new()),
    });
    Router::new()
        .route("/mcp", post(post_mcp).get(get_mcp).delete(delete_mcp))
        .with_state(state)
}

fn tool_catalog(extra_tools: usize) -> Value {
    let mut tools = vec![
        json!({
            "name": "echo",
            "description": "Echo the given text back.",
            "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        }),
        json!({
            "name": "add",
            "description": "Add two numbers.",
            "inputSchema": {
                "type": "object",
                "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                "required": ["a", "b"],
            },
        }),
        json!({
            "name": "time_now",
            "description": "The server's current time in milliseconds since the Unix epoch.",
            "inputSchema": {"type": "object", "properties": {}},
        }),
        json!({
            "name": "sleep",
            "description": "Wait `ms` milliseconds (at most 60000), then answer.",
            "inputSchema": {"type": "object", "properties": {"ms": {"type": "integer", "minimum": 0}}, "required": ["ms"]},
        }),
    ];
    tools.extend((0..extra_tools).map(|n| {
        json!({
            "name": format!("tool_{n:03}"),
            "description": format!("Generated demo tool {n}: echoes its arguments."),
            "inputSchema": {"type": "object", "properties": {"value": {"type": "string"}}},
        })
    }));
    json!({ "tools": tools })
}

/// A loopback origin (or none) is fine; anything else could be a DNS-rebinding page.
fn origin_allowed(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let host = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/');
    let host = if host.starts_with('[') {
        host.split_once(']')
            .map_or(host, |(h, _)| h)
            .trim_start_matches('[')
    } else {
        host.split(':').next().unwrap_or(host)
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn plain(status: StatusCode, message: &str) -> Response {
    (status, message.to_string()).into_response()
}

fn rpc_error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

async fn post_mcp(
    State(state): State<Arc<DemoState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !origin_allowed(&headers) {
        return plain(StatusCode::FORBIDDEN, "Forbidden: origin not allowed");
    }
    let message: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => {
            let err = rpc_error(Value::Null, -32700, "Parse error");
            return json_response(StatusCode::BAD_REQUEST, &err, None);
        }
    };
    let method = message.get("method").and_then(Value::as_str).unwrap_or("");
    let id = message.get("id").cloned();

    if method == "initialize" {
        let Some(id) = id else {
            return plain(StatusCode::BAD_REQUEST, "initialize must be a request");
        };
        let session = uuid::Uuid::new_v4().simple().to_string();
        if let Ok(mut sessions) = state.sessions.write() {
            sessions.insert(session.clone());
        }
        let requested = message
            .pointer("/params/protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_SESSION_VERSION);
        let version = if SUPPORTED_VERSIONS.contains(&requested) && requested != STATELESS_VERSION {
            requested
        } else {
            DEFAULT_SESSION_VERSION
        };
        let result = json!({
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": false}},
            "serverInfo": {"name": state.options.name, "version": env!("CARGO_PKG_VERSION")},
            "instructions": "Warden demo upstream: try the `echo`, `add` and `time_now` tools.",
        });
        let reply = json!({"jsonrpc": "2.0", "id": id, "result": result});
        return respond(&headers, &reply, Some(&session));
    }

    // Everything else needs a live session, unless the client speaks the stateless era.
    match header_str(&headers, SESSION_HEADER) {
        Some(session) => {
            let known = state
                .sessions
                .read()
                .map(|s| s.contains(session))
                .unwrap_or(false);
            if !known {
                return plain(StatusCode::NOT_FOUND, "Not Found: unknown session");
            }
        }
        None if header_str(&headers, VERSION_HEADER) == Some(STATELESS_VERSION) => {}
        None => {
            return plain(
                StatusCode::BAD_REQUEST,
                "Bad Request: missing Mcp-Session-Id",
            )
        }
    }

    let Some(id) = id else {
        // Notifications (initialized, cancelled, ...) and responses need no answer.
        return StatusCode::ACCEPTED.into_response();
    };
    let reply = match handle_request(&state, method, message.get("params")).await {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err((code, text)) => rpc_error(id, code, &text),
    };
    respond(&headers, &reply, None)
}

async fn handle_request(
    state: &DemoState,
    method: &str,
    params: Option<&Value>,
) -> Result<Value, (i64, String)> {
    match method {
        "ping" => Ok(json!({})),
        "tools/list" => Ok(state.tools.clone()),
        "tools/call" => call_tool(state, params).await,
        "server/discover" => Ok(json!({
            "supportedVersions": SUPPORTED_VERSIONS,
            "capabilities": {"tools": {"listChanged": false}},
            "serverInfo": {"name": state.options.name, "version": env!("CARGO_PKG_VERSION")},
        })),
        _ => Err((-32601, format!("Method not found: {method}"))),
    }
}

fn text_result(text: String) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": false})
}

fn tool_error(text: String) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": true})
}

async fn call_tool(state: &DemoState, params: Option<&Value>) -> Result<Value, (i64, String)> {
    let name = params
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .ok_or((-32602, "tools/call needs params.name".to_string()))?;
    let empty = Map::new();
    let args = params
        .and_then(|p| p.get("arguments"))
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    match name {
        "echo" => match args.get("text").and_then(Value::as_str) {
            Some(text) => Ok(text_result(text.to_string())),
            None => Ok(tool_error("echo needs a string `text`".to_string())),
        },
        "add" => match (
            args.get("a").and_then(Value::as_f64),
            args.get("b").and_then(Value::as_f64),
        ) {
            (Some(a), Some(b)) => {
                let sum = a + b;
                let mut result = text_result(format_number(sum));
                result["structuredContent"] = json!({ "sum": sum });
                Ok(result)
            }
            _ => Ok(tool_error("add needs numbers `a` and `b`".to_string())),
        },
        "time_now" => {
            let millis = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            let mut result = text_result(millis.to_string());
            result["structuredContent"] = json!({ "unixMillis": millis as u64 });
            Ok(result)
        }
        "sleep" => match args.get("ms").and_then(Value::as_u64) {
            Some(ms) => {
                let ms = ms.min(MAX_SLEEP_MS);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(text_result(format!("slept {ms} ms")))
            }
            None => Ok(tool_error("sleep needs an integer `ms`".to_string())),
        },
        generated if is_generated(generated, state.options.extra_tools) => {
            Ok(text_result(Value::Object(args.clone()).to_string()))
        }
        unknown => Err((-32602, format!("Unknown tool: {unknown}"))),
    }
}

fn is_generated(name: &str, extra_tools: usize) -> bool {
    name.strip_prefix("tool_")
        .filter(|n| n.len() >= 3)
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|n| n < extra_tools && name == format!("tool_{n:03}"))
}

/// Integers print without a trailing `.0`.
fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

fn respond(request_headers: &HeaderMap, reply: &Value, session: Option<&str>) -> Response {
    let accept = header_str(request_headers, "accept").unwrap_or("application/json");
    let wants_sse_only =
        accept.contains("text/event-stream") && !accept.contains("application/json");
    if wants_sse_only {
        let body = format!("event: message\ndata: {reply}\n\n");
        let mut response = (StatusCode::OK, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        add_session(&mut response, session);
        response
    } else {
        json_response(StatusCode::OK, reply, session)
    }
}

fn json_response(status: StatusCode, reply: &Value, session: Option<&str>) -> Response {
    let mut response = (status, reply.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    add_session(&mut response, session);
    response
}

fn add_session(response: &mut Response, session: Option<&str>) {
    if let Some(value) = session.and_then(|s| HeaderValue::from_str(s).ok()) {
        response.headers_mut().insert(SESSION_HEADER, value);
    }
}

async fn get_mcp(headers: HeaderMap) -> Response {
    if !origin_allowed(&headers) {
        return plain(StatusCode::FORBIDDEN, "Forbidden: origin not allowed");
    }
    // No server-initiated messages: the spec lets a server decline the GET stream.
    let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST, DELETE"));
    response
}

async fn delete_mcp(State(state): State<Arc<DemoState>>, headers: HeaderMap) -> Response {
    if !origin_allowed(&headers) {
        return plain(StatusCode::FORBIDDEN, "Forbidden: origin not allowed");
    }
    let Some(session) = header_str(&headers, SESSION_HEADER) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "Bad Request: missing Mcp-Session-Id",
        );
    };
    let removed = state
        .sessions
        .write()
        .map(|mut s| s.remove(session))
        .unwrap_or(false);
    if removed {
        StatusCode::NO_CONTENT.into_response()
    } else {
        plain(StatusCode::NOT_FOUND, "Not Found: unknown session")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn loopback_origins_are_allowed_others_refused() {
        assert!(origin_allowed(&headers(&[])));
        assert!(origin_allowed(&headers(&[(
            "origin",
            "http://localhost:3000"
        )])));
        assert!(origin_allowed(&headers(&[("origin", "http://127.0.0.1")])));
        assert!(origin_allowed(&headers(&[("origin", "http://[::1]:8080")])));
        assert!(!origin_allowed(&headers(&[(
            "origin",
            "http://evil.example"
        )])));
        assert!(!origin_allowed(&headers(&[(
            "origin",
            "http://localhost.evil.example"
        )])));
    }

    #[test]
    fn generated_tool_names_are_exact() {
        assert!(is_generated("tool_000", 1));
        assert!(is_generated("tool_049", 50));
        assert!(!is_generated("tool_050", 50));
        assert!(!is_generated("tool_49", 50));
        assert!(!is_generated("tool_0049", 50));
        assert!(!is_generated("TOOL_001", 50));
    }

    #[test]
    fn catalog_has_demo_and_generated_tools() {
        let catalog = tool_catalog(3);
        let names: Vec<&str> = catalog["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert_eq!(
            names,
            ["echo", "add", "time_now", "sleep", "tool_000", "tool_001", "tool_002"]
        );
    }

    #[test]
    fn numbers_format_like_a_person_would_write_them() {
        assert_eq!(format_number(5.0), "5");
        assert_eq!(format_number(-2.0), "-2");
        assert_eq!(format_number(0.5), "0.5");
    }
}
