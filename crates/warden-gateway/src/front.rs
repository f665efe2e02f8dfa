//! The front door: MCP Streamable HTTP for clients, both protocol eras.
//!
//! Every request is authenticated by its bearer key, its principal formed
//! by the policy snapshot, and every allow/deny taken from `warden_policy`
//! through [`View`].

// Refusals are returned as ready HTTP responses; they are the cold path,
// so their size does not matter.
#![allow(clippy::result_large_err)]

use std::convert::Infallible;
use std::sync::{Arc, Weak};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures::StreamExt;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::{ReceiverStream, UnboundedReceiverStream};
use warden_policy::{Access, PolicyError, Principal, Reason, Snapshot};
use warden_store::DecisionRecord;

use crate::error::GatewayError;
use crate::gateway::{
    allowed_upstream, now_ms, upstream_for, CallEnd, InflightCall, Session, Shared,
};
use crate::jsonrpc::{self, code, Kind};
use crate::upstream::{ClientSink, Upstream, STATELESS_VERSION};
use crate::view::{prefix_name, prefix_uri, split_uri, Mount, Verdict, View};

/// Session-era protocol versions the front door accepts, newest first.
pub const SESSION_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_SUBSCRIPTION: &str = "io.modelcontextprotocol/subscriptionId";
/// A forwarded request still unanswered after this long is answered as an
/// SSE stream even if the upstream has sent nothing else yet.
const STREAM_AFTER: std::time::Duration = std::time::Duration::from_secs(1);
/// `_meta` keys Warden adds to allowed call results.
pub const META_DECISION_ID: &str = "warden.dev/decision_id";
pub const META_REVISION: &str = "warden.dev/revision";

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let limit = shared.config.max_request_bytes;
    Router::new()
        .route("/mcp", post(post_all).get(get_all).delete(delete_all))
        .route(
            "/mcp/servers/{slug}",
            post(post_server).get(get_server).delete(delete_server),
        )
        .route(
            "/mcp/toolsets/{slug}",
            post(post_toolset).get(get_toolset).delete(delete_toolset),
        )
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared)
}

type St = State<Arc<Shared>>;

async fn post_all(State(s): St, h: HeaderMap, body: Bytes) -> Response {
    handle_post(s, Mount::All, h, body).await
}
async fn post_server(
    State(s): St,
    Path(slug): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    handle_post(s, Mount::Server(slug), h, body).await
}
async fn post_toolset(
    State(s): St,
    Path(slug): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    handle_post(s, Mount::Toolset(slug), h, body).await
}
async fn get_all(State(s): St, h: HeaderMap) -> Response {
    handle_get(s, Mount::All, h)
}
async fn get_server(State(s): St, Path(slug): Path<String>, h: HeaderMap) -> Response {
    handle_get(s, Mount::Server(slug), h)
}
async fn get_toolset(State(s): St, Path(slug): Path<String>, h: HeaderMap) -> Response {
    handle_get(s, Mount::Toolset(slug), h)
}
async fn delete_all(State(s): St, h: HeaderMap) -> Response {
    handle_delete(s, Mount::All, h)
}
async fn delete_server(State(s): St, Path(slug): Path<String>, h: HeaderMap) -> Response {
    handle_delete(s, Mount::Server(slug), h)
}
async fn delete_toolset(State(s): St, Path(slug): Path<String>, h: HeaderMap) -> Response {
    handle_delete(s, Mount::Toolset(slug), h)
}

// ---------------------------------------------------------------- responses

fn json_response(status: StatusCode, body: String) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn rpc_error_response(
    status: StatusCode,
    id: Value,
    code: i64,
    message: &str,
    data: Option<Value>,
) -> Response {
    json_response(status, jsonrpc::error(id, code, message, data).to_string())
}

/// A refusal at the HTTP level, with a JSON-RPC error body naming the reason.
fn refuse(status: StatusCode, reason: &str, message: &str) -> Response {
    rpc_error_response(
        status,
        Value::Null,
        code::INVALID_REQUEST,
        message,
        Some(json!({"reason": reason})),
    )
}

fn unauthorized(reason: &str, message: &str) -> Response {
    let mut resp = refuse(StatusCode::UNAUTHORIZED, reason, message);
    let challenge = if reason == "key_missing" {
        "Bearer realm=\"warden\"".to_owned()
    } else {
        format!("Bearer realm=\"warden\", error=\"invalid_token\", error_description=\"{reason}\"")
    };
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

fn accepted() -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::ACCEPTED;
    resp
}

/// Removes a listen stream's registration when the client goes away.
struct ListenerGuard {
    shared: Weak<Shared>,
    id: String,
}

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.remove_listener(&self.id);
        }
    }
}

fn sse_event(msg: &Value) -> Result<Event, Infallible> {
    Ok(Event::default().event("message").data(msg.to_string()))
}

fn sse_bounded(rx: mpsc::Receiver<Value>, guard: Option<ListenerGuard>) -> Response {
    let stream = ReceiverStream::new(rx).map(move |msg| {
        let _keep_until_stream_drops = &guard;
        sse_event(&msg)
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn sse_unbounded(rx: mpsc::UnboundedReceiver<Value>) -> Response {
    let stream = UnboundedReceiverStream::new(rx).map(|msg| sse_event(&msg));
    Sse::new(stream).into_response()
}

/// An SSE reply whose first message was already taken off `rx`.
fn sse_unbounded_after(first: Value, rx: mpsc::UnboundedReceiver<Value>) -> Response {
    let stream = futures::stream::once(async move { first })
        .chain(UnboundedReceiverStream::new(rx))
        .map(|msg| sse_event(&msg));
    Sse::new(stream).into_response()
}

// ------------------------------------------------------------- admission

fn origin_allowed(shared: &Shared, origin: &str) -> bool {
    let origin = origin.trim().to_ascii_lowercase();
    if shared
        .config
        .allowed_origins
        .iter()
        .any(|o| o.eq_ignore_ascii_case(&origin))
    {
        return true;
    }
    if !shared.config.allow_localhost_origins {
        return false;
    }
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = if let Some(v6) = rest.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        rest.split(':').next().unwrap_or("")
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, Response> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(|s| Some(s.trim())).map_err(|_| {
            refuse(
                StatusCode::BAD_REQUEST,
                "bad_header",
                &format!("header {name} is not valid text"),
            )
        }),
    }
}

/// Origin, shutdown, staleness and the bearer key: the checks every
/// request passes before anything else.
fn host_allowed(shared: &Shared, host: &str) -> bool {
    let host = host.trim().to_ascii_lowercase();
    let name = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h)
    };
    shared.config.allowed_hosts.iter().any(|h| {
        h.trim_matches(|c| c == '[' || c == ']')
            .eq_ignore_ascii_case(name)
    })
}

fn admit(shared: &Shared, headers: &HeaderMap) -> Result<(Arc<Snapshot>, Principal), Response> {
    if !shared.config.allowed_hosts.is_empty() {
        let host = header_str(headers, "host")?.unwrap_or("");
        if !host_allowed(shared, host) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "host_not_allowed",
                "Host not allowed",
            ));
        }
    }
    if let Some(origin) = header_str(headers, "origin")? {
        if !origin_allowed(shared, origin) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "Origin not allowed",
            ));
        }
    }
    if shared.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the gateway is shutting down",
        ));
    }
    if shared.live.is_stale() {
        metrics::counter!("warden_gateway_decisions_total", "reason" => "policy_stale")
            .increment(1);
        return Err(rpc_error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            Value::Null,
            code::POLICY_STALE,
            "policy_stale: this replica cannot confirm it has the current policy",
            Some(json!({"reason": "policy_stale"})),
        ));
    }
    let token = match header_str(headers, "authorization")? {
        Some(v) if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") => v[7..].trim(),
        _ => return Err(unauthorized("key_missing", "a bearer key is required")),
    };
    if token.is_empty() {
        return Err(unauthorized("key_missing", "a bearer key is required"));
    }
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    let end_user = header_str(headers, &shared.config.end_user_header)?;
    let agent = header_str(headers, &shared.config.agent_header)?;
    let snapshot = shared.live.snapshot();
    match snapshot.principal(&digest, end_user, agent) {
        Ok(p) => Ok((snapshot, p)),
        Err(PolicyError::KeyUnknown) => Err(unauthorized("key_unknown", "unknown key")),
        Err(e) => Err(refuse(StatusCode::FORBIDDEN, e.code(), &e.to_string())),
    }
}

/// Key revoked/expired: 401; org suspended: 403.
fn principal_refusal(access: &Access) -> Option<Response> {
    let reason = access.principal_denial(now_ms())?;
    metrics::counter!("warden_gateway_decisions_total", "reason" => reason.code()).increment(1);
    Some(
        if reason.is_principal_wide() && reason.code() != "org_suspended" {
            unauthorized(reason.code(), &format!("key refused: {}", reason.code()))
        } else {
            refuse(
                StatusCode::FORBIDDEN,
                reason.code(),
                &format!("refused: {}", reason.code()),
            )
        },
    )
}

fn is_stateless(headers: &HeaderMap, msg: &Value) -> bool {
    let header = headers.get(VERSION_HEADER).and_then(|v| v.to_str().ok());
    header == Some(STATELESS_VERSION)
        || msg
            .pointer("/params/_meta")
            .and_then(|m| m.get(META_VERSION))
            .and_then(Value::as_str)
            == Some(STATELESS_VERSION)
        || matches!(
            jsonrpc::method(msg),
            "server/discover" | "subscriptions/listen"
        )
}

/// The session a session-era request names, checked against its principal.
fn find_session(
    shared: &Shared,
    snapshot: &Snapshot,
    headers: &HeaderMap,
    mount: &Mount,
    principal: &Principal,
) -> Result<Arc<Session>, Response> {
    let Some(id) = header_str(headers, SESSION_HEADER)? else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "session_required",
            "Mcp-Session-Id header required",
        ));
    };
    let Some(session) = shared.session(id) else {
        // A session ended by revocation: the key's refusal says more than 404.
        if let Some(refusal) = principal_refusal(&snapshot.access(principal)) {
            return Err(refusal);
        }
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "session_unknown",
            "session not found",
        ));
    };
    if session.mount != *mount {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "session_unknown",
            "session not found on this endpoint",
        ));
    }
    if session.principal != *principal {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "session_principal_mismatch",
            "this session belongs to another key or identity",
        ));
    }
    Ok(session)
}

fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 18] = [
        "initialize",
        "ping",
        "tools/list",
        "tools/call",
        "prompts/list",
        "prompts/get",
        "resources/list",
        "resources/read",
        "resources/templates/list",
        "resources/subscribe",
        "resources/unsubscribe",
        "completion/complete",
        "logging/setLevel",
        "server/discover",
        "subscriptions/listen",
        "notifications/initialized",
        "notifications/cancelled",
        "notifications/progress",
    ];
    KNOWN
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

// ------------------------------------------------------------- handlers

async fn handle_post(
    shared: Arc<Shared>,
    mount: Mount,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let (snapshot, principal) = match admit(&shared, &headers) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let msg: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return rpc_error_response(
                StatusCode::BAD_REQUEST,
                Value::Null,
                code::PARSE_ERROR,
                &format!("parse error: {e}"),
                None,
            )
        }
    };
    if msg.is_array() {
        return rpc_error_response(
            StatusCode::BAD_REQUEST,
            Value::Null,
            code::INVALID_REQUEST,
            "JSON-RPC batches are not supported",
            None,
        );
    }
    let kind = jsonrpc::kind(&msg);
    if kind == Kind::Invalid {
        return rpc_error_response(
            StatusCode::BAD_REQUEST,
            Value::Null,
            code::INVALID_REQUEST,
            "not a JSON-RPC message",
            None,
        );
    }
    let method = jsonrpc::method(&msg).to_owned();
    metrics::counter!("warden_gateway_requests_total", "method" => method_label(&method), "mount" => mount.label()).increment(1);
    let stateless = is_stateless(&headers, &msg);

    let session = if stateless {
        if let Ok(Some(named)) = header_str(&headers, "mcp-method") {
            if !method.is_empty() && named != method {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "header_mismatch",
                    "Mcp-Method header does not match the body",
                );
            }
        }
        None
    } else if method == "initialize" {
        None
    } else {
        match header_str(&headers, VERSION_HEADER) {
            Ok(Some(v)) if !SESSION_VERSIONS.contains(&v) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "unsupported_protocol_version",
                    &format!("unsupported MCP-Protocol-Version {v}"),
                )
            }
            Err(resp) => return resp,
            _ => {}
        }
        match find_session(&shared, &snapshot, &headers, &mount, &principal) {
            Ok(s) => Some(s),
            Err(resp) => return resp,
        }
    };
    let access = match &session {
        Some(s) => s.access(&snapshot),
        None => Arc::new(snapshot.access(&principal)),
    };
    if let Some(refusal) = principal_refusal(&access) {
        if let Some(s) = &session {
            shared.remove_session(&s.id);
        }
        return refusal;
    }
    if let Mount::Toolset(slug) = &mount {
        if shared.toolset(&snapshot, &access, &mount).is_none() {
            return refuse(
                StatusCode::NOT_FOUND,
                "toolset_unknown",
                &format!("no toolset {slug}"),
            );
        }
    }
    let owner = match &session {
        Some(s) => s.id.clone(),
        None => format!("key:{}", principal.key),
    };
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let protocol_version = match (&session, stateless) {
        (_, true) => STATELESS_VERSION.to_owned(),
        (Some(s), _) => s.protocol_version.clone(),
        (None, false) => String::new(),
    };
    let ctx = Ctx {
        shared: Arc::clone(&shared),
        snapshot,
        access,
        principal,
        mount,
        owner,
        stateless,
        protocol_version,
        wants_sse: accept.contains("text/event-stream"),
        started,
    };
    match kind {
        Kind::Notification => {
            ctx.notification(&msg);
            accepted()
        }
        Kind::Response => {
            ctx.client_response(msg);
            accepted()
        }
        Kind::Request => ctx.request(msg).await,
        Kind::Invalid => accepted(),
    }
}

fn handle_get(shared: Arc<Shared>, mount: Mount, headers: HeaderMap) -> Response {
    let (snapshot, principal) = match admit(&shared, &headers) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    if headers.get(VERSION_HEADER).and_then(|v| v.to_str().ok()) == Some(STATELESS_VERSION) {
        return refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use subscriptions/listen",
        );
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !accept.contains("text/event-stream") {
        return refuse(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            "GET requires Accept: text/event-stream",
        );
    }
    let session = match find_session(&shared, &snapshot, &headers, &mount, &principal) {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    if let Some(refusal) = principal_refusal(&session.access(&snapshot)) {
        shared.remove_session(&session.id);
        return refusal;
    }
    let (tx, rx) = mpsc::channel(256);
    session.attach_stream(tx);
    sse_bounded(rx, None)
}

fn handle_delete(shared: Arc<Shared>, mount: Mount, headers: HeaderMap) -> Response {
    let (snapshot, principal) = match admit(&shared, &headers) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    match find_session(&shared, &snapshot, &headers, &mount, &principal) {
        Ok(session) => {
            shared.remove_session(&session.id);
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = StatusCode::NO_CONTENT;
            resp
        }
        Err(resp) => resp,
    }
}

// ------------------------------------------------------------- requests

/// Everything one admitted request needs.
struct Ctx {
    shared: Arc<Shared>,
    snapshot: Arc<Snapshot>,
    access: Arc<Access>,
    principal: Principal,
    mount: Mount,
    owner: String,
    stateless: bool,
    protocol_version: String,
    wants_sse: bool,
    started: Instant,
}

/// Runs the rest of an exchange whose reply goes out on a stream. If the
/// client goes away first (its stream is dropped), the exchange is dropped
/// too, and its guard audits the decision and cancels the upstream request.
fn finish_streaming<F>(exchange: F, tx: mpsc::UnboundedSender<Value>)
where
    F: std::future::Future<Output = Option<Value>> + Send + 'static,
{
    tokio::spawn(async move {
        tokio::select! {
            reply = exchange => {
                if let Some(reply) = reply {
                    let _ = tx.send(reply);
                }
            }
            _ = tx.closed() => {}
        }
    });
}

/// One forwarded request while it runs. However the exchange ends, including
/// the client going away and the request future being dropped mid-call, the
/// in-flight registration is removed, the call's decision reaches the audit
/// log, and a request the upstream is still working on is cancelled there.
struct ExchangeGuard<'a> {
    shared: &'a Shared,
    call_no: Option<u64>,
    upstream: &'a Upstream,
    upstream_id: u64,
    /// The allowed decision, with its latency filled in when recorded.
    record: Option<DecisionRecord>,
    request_started: Instant,
    upstream_done: bool,
}

impl ExchangeGuard<'_> {
    /// The upstream answered or the call ended: nothing left to cancel
    /// there, and cut-offs no longer concern this call.
    fn upstream_finished(&mut self) {
        self.upstream_done = true;
        self.unregister();
    }

    fn unregister(&mut self) {
        if let Some(n) = self.call_no.take() {
            self.shared.unregister_call(n);
        }
    }
}

impl Drop for ExchangeGuard<'_> {
    fn drop(&mut self) {
        self.unregister();
        if !self.upstream_done {
            self.upstream
                .cancel(self.upstream_id, "the client went away");
        }
        if let Some(mut record) = self.record.take() {
            record.latency_us = self.request_started.elapsed().as_micros() as u64;
            tracing::debug!(
                decision_id = %record.decision_id,
                server = %record.server_slug,
                tool = record.tool.as_deref().unwrap_or(""),
                latency_us = record.latency_us,
                revision = record.revision,
                completed = self.upstream_done,
                "tools/call allowed"
            );
            self.shared.record(record);
        }
    }
}

/// What a forwarded request does to the upstream's result on the way back.
type Finish = Box<dyn FnOnce(&mut Value) + Send>;

enum Outcome {
    Response(Value),
    Failed(GatewayError),
    Ended(CallEnd),
}

impl Ctx {
    fn view(&self) -> View<'_> {
        View {
            snapshot: &self.snapshot,
            access: &self.access,
            mount: &self.mount,
            toolset: self
                .shared
                .toolset(&self.snapshot, &self.access, &self.mount),
            now_ms: now_ms(),
        }
    }

    /// A local result, with `resultType` for stateless clients.
    fn ok(&self, id: Value, mut result: Value) -> Response {
        if self.stateless {
            if let Some(obj) = result.as_object_mut() {
                obj.entry("resultType").or_insert_with(|| json!("complete"));
            }
        }
        json_response(StatusCode::OK, jsonrpc::result(id, result).to_string())
    }

    fn err(&self, id: Value, code: i64, message: &str, data: Option<Value>) -> Response {
        rpc_error_response(StatusCode::OK, id, code, message, data)
    }

    fn notification(&self, msg: &Value) {
        if jsonrpc::method(msg) == "notifications/cancelled" {
            if let Some(request_id) = msg.pointer("/params/requestId") {
                self.shared
                    .cancel_by_client(&self.owner, &jsonrpc::id_key(request_id));
            }
        }
    }

    /// A client's answer to a request an upstream sent it (sampling,
    /// elicitation, roots): back to that upstream with its original id.
    fn client_response(&self, msg: Value) {
        let Some(id) = msg.get("id").and_then(Value::as_str).map(str::to_owned) else {
            return;
        };
        let Some(slug) = id.strip_prefix("warden:").and_then(|r| r.split(':').next()) else {
            return;
        };
        // The slug names the server of the caller's org (org-owned slugs
        // repeat across orgs): resolved through the decision, never by slug.
        let verdict = self.view().decide_server(slug);
        if let Some(up) = allowed_upstream(&self.shared, &verdict) {
            up.answer_server_request(&id, msg);
        }
    }

    async fn request(self, mut msg: Value) -> Response {
        let id = msg.get("id").cloned().unwrap_or(Value::Null);
        // Taken, not cloned: the request's params can be large.
        let params = msg.as_object_mut().and_then(|m| m.remove("params"));
        match jsonrpc::method(&msg) {
            "initialize" if !self.stateless => self.initialize(id, params),
            "server/discover" => self.discover(id),
            "ping" => self.ok(id, json!({})),
            "tools/list" => self.tools_list(id),
            "tools/call" => self.tools_call(id, params).await,
            m @ ("prompts/list" | "resources/list" | "resources/templates/list") => {
                let m = m.to_owned();
                self.list_fanout(id, &m, params).await
            }
            "prompts/get" => self.forward_named(id, params).await,
            m @ ("resources/read" | "resources/subscribe" | "resources/unsubscribe") => {
                let m = m.to_owned();
                self.forward_uri(id, &m, params).await
            }
            "completion/complete" => self.forward_completion(id, params).await,
            // One shared upstream connection serves many clients: a client
            // cannot set the log level for all of them.
            "logging/setLevel" => self.ok(id, json!({})),
            "subscriptions/listen" if self.stateless => self.listen(id, params),
            other => self.err(
                id,
                code::METHOD_NOT_FOUND,
                &format!("Method not found: {other}"),
                None,
            ),
        }
    }

    fn server_info() -> Value {
        json!({"name": "warden", "version": env!("CARGO_PKG_VERSION")})
    }

    /// What this endpoint offers: Warden's own capabilities, or on a
    /// one-server endpoint the upstream's (list changes always announced).
    fn capabilities_and_info(&self) -> (Value, Value, Option<Value>) {
        if let Mount::Server(slug) = &self.mount {
            // Only a server the caller may use shows its info: another org's
            // server (or one denied to this caller) reveals nothing.
            let verdict = self.view().decide_server(slug);
            if let Some(info) = allowed_upstream(&self.shared, &verdict).and_then(|u| u.info()) {
                let mut caps = info
                    .get("capabilities")
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                if let Some(tools) = caps.get_mut("tools").and_then(Value::as_object_mut) {
                    tools.insert("listChanged".into(), json!(true));
                }
                let server_info = info
                    .get("serverInfo")
                    .cloned()
                    .unwrap_or_else(Self::server_info);
                return (caps, server_info, info.get("instructions").cloned());
            }
        }
        (
            json!({
                "tools": {"listChanged": true},
                "prompts": {"listChanged": false},
                "resources": {"listChanged": false, "subscribe": false},
                "completions": {},
                "logging": {}
            }),
            Self::server_info(),
            None,
        )
    }

    fn initialize(&self, id: Value, params: Option<Value>) -> Response {
        let requested = params
            .as_ref()
            .and_then(|p| p.get("protocolVersion"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let version = SESSION_VERSIONS
            .iter()
            .find(|v| **v == requested)
            .copied()
            .unwrap_or(SESSION_VERSIONS[0]);
        let session_id = uuid::Uuid::new_v4().simple().to_string();
        let session = Arc::new(Session::new(
            session_id.clone(),
            self.principal,
            self.mount.clone(),
            version.to_owned(),
            None,
        ));
        session.set_fingerprint(self.shared.session_fingerprint(&self.snapshot, &session));
        self.shared.insert_session(session);
        let (capabilities, server_info, instructions) = self.capabilities_and_info();
        let mut result = json!({
            "protocolVersion": version,
            "capabilities": capabilities,
            "serverInfo": server_info,
        });
        if let Some(i) = instructions {
            result["instructions"] = i;
        }
        let mut resp = json_response(StatusCode::OK, jsonrpc::result(id, result).to_string());
        if let Ok(v) = HeaderValue::from_str(&session_id) {
            resp.headers_mut().insert(SESSION_HEADER, v);
        }
        resp
    }

    fn discover(&self, id: Value) -> Response {
        let (capabilities, server_info, instructions) = self.capabilities_and_info();
        let mut versions = vec![STATELESS_VERSION];
        versions.extend(SESSION_VERSIONS);
        let mut result = json!({
            "supportedVersions": versions,
            "capabilities": capabilities,
            "serverInfo": server_info,
        });
        if let Some(i) = instructions {
            result["instructions"] = i;
        }
        self.ok(id, result)
    }

    /// `tools/list`: the engine's access over the cached catalogs, rendered
    /// from pre-serialized tool objects.
    fn tools_list(&self, id: Value) -> Response {
        let view = self.view();
        let prefixed = self.mount.prefixed();
        // First decide what is shown (per server: nothing, everything, or
        // some tools), then copy the pre-rendered JSON into a body of the
        // exact size: no re-serializing, no regrowing.
        let mut shown = Vec::new();
        let mut size = 0usize;
        for (sa, filter) in view.servers() {
            let Some(up) = self.shared.registry.get(sa.server) else {
                continue;
            };
            let catalog = up.catalog();
            let rendered = if prefixed {
                &catalog.prefixed_json
            } else {
                &catalog.plain_json
            };
            let listed: Vec<usize> = catalog
                .names_in_order()
                .enumerate()
                .filter(|(_, name)| view.lists(sa, filter, name))
                .map(|(i, _)| i)
                .collect();
            if listed.is_empty() {
                continue;
            }
            let all = listed.len() == rendered.len();
            size += if all {
                catalog
                    .plain_joined
                    .len()
                    .max(catalog.prefixed_joined.len())
            } else {
                listed.iter().map(|&i| rendered[i].len() + 1).sum()
            } + 1;
            shown.push((catalog, if all { None } else { Some(listed) }));
        }
        let id = id.to_string();
        let mut out = String::with_capacity(size + id.len() + 128);
        out.push_str("{\"jsonrpc\":\"2.0\",\"id\":");
        out.push_str(&id);
        out.push_str(",\"result\":{\"tools\":[");
        let mut first = true;
        for (catalog, listed) in &shown {
            let (rendered, joined) = if prefixed {
                (&catalog.prefixed_json, &catalog.prefixed_joined)
            } else {
                (&catalog.plain_json, &catalog.plain_joined)
            };
            let parts: Box<dyn Iterator<Item = &String>> = match listed {
                None => Box::new(std::iter::once(joined)),
                Some(listed) => Box::new(listed.iter().map(|&i| &rendered[i])),
            };
            for part in parts {
                if !first {
                    out.push(',');
                }
                out.push_str(part);
                first = false;
            }
        }
        out.push(']');
        if self.stateless {
            // The list depends on who asks: no shared caches.
            out.push_str(",\"ttlMs\":0,\"cacheScope\":\"private\",\"resultType\":\"complete\"");
        }
        out.push_str("}}");
        json_response(StatusCode::OK, out)
    }

    fn decision_record(
        &self,
        decision_id: &str,
        method: &str,
        slug: &str,
        tool: Option<&str>,
        verdict: &Verdict,
    ) -> DecisionRecord {
        DecisionRecord {
            decision_id: decision_id.to_owned(),
            at_ms: now_ms(),
            org: self.access.org(),
            key: Some(self.principal.key),
            end_user: self.principal.end_user,
            agent: self.principal.agent,
            method: method.to_owned(),
            server_slug: slug.to_owned(),
            tool: tool.map(str::to_owned),
            allowed: verdict.allowed,
            reason: verdict.reason.map(str::to_owned),
            revision: verdict.revision,
            latency_us: self.started.elapsed().as_micros() as u64,
        }
    }

    fn count_decision(verdict: &Verdict) {
        let reason = if verdict.allowed {
            "allowed"
        } else {
            verdict.reason.unwrap_or("denied")
        };
        metrics::counter!("warden_gateway_decisions_total", "reason" => reason).increment(1);
    }

    /// The -32602 answer for a denied or unknown name.
    fn denial(
        &self,
        id: Value,
        what: &str,
        name: &str,
        verdict: &Verdict,
        decision_id: &str,
    ) -> Value {
        jsonrpc::error(
            id,
            code::INVALID_PARAMS,
            format!("Unknown {what}: {name}"),
            Some(json!({
                "reason": verdict.reason.unwrap_or("denied"),
                "decision_id": decision_id,
                "revision": verdict.revision,
            })),
        )
    }

    async fn tools_call(self, id: Value, params: Option<Value>) -> Response {
        let Some(mut params) = params.filter(Value::is_object) else {
            return self.err(id, code::INVALID_PARAMS, "tools/call needs params", None);
        };
        let Some(exposed) = params
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return self.err(
                id,
                code::INVALID_PARAMS,
                "tools/call needs a tool name",
                None,
            );
        };
        let catalog = self.shared.catalog();
        let (slug, tool, verdict) = {
            let view = self.view();
            let (slug, tool) = view.resolve_name(&exposed);
            let verdict = view.decide_tool(slug, tool, &catalog);
            (slug.to_owned(), tool.to_owned(), verdict)
        };
        let decision_id = uuid::Uuid::now_v7().to_string();
        Self::count_decision(&verdict);
        let upstream = upstream_for(&self.shared, &verdict);
        let Some(upstream) = upstream.filter(|_| verdict.allowed) else {
            if verdict.allowed {
                // Allowed by policy but no connection configured for it.
                let e = GatewayError::UpstreamUnavailable {
                    server: slug.clone(),
                    detail: "no connection configured".into(),
                };
                return json_response(StatusCode::OK, upstream_error(id, &e).to_string());
            }
            tracing::info!(decision_id = %decision_id, server = %slug, tool = %tool, reason = verdict.reason.unwrap_or(""), "tools/call denied");
            self.shared.record(self.decision_record(
                &decision_id,
                "tools/call",
                &slug,
                Some(&tool),
                &verdict,
            ));
            let mut denial = self.denial(id, "tool", &exposed, &verdict, &decision_id);
            // A server the caller may use whose catalog is unknown because
            // it is down: say so, rather than only "unknown tool".
            if verdict.reason == Some(Reason::ToolUnknown.code()) {
                if let Some(detail) = upstream_for(&self.shared, &verdict).and_then(|u| u.failure())
                {
                    denial["error"]["message"] = json!(format!(
                        "Unknown tool: {exposed} (server {slug} is unavailable: {detail})"
                    ));
                    denial["error"]["data"]["upstream"] =
                        json!({"status": "unavailable", "detail": detail});
                }
            }
            return json_response(StatusCode::OK, denial.to_string());
        };
        params["name"] = Value::String(tool.clone());
        let (end_tx, end_rx) = oneshot::channel();
        let (call_no, _call) = self.shared.register_call(InflightCall {
            owner: self.owner.clone(),
            client_id: jsonrpc::id_key(&id),
            principal: self.principal,
            mount: self.mount.clone(),
            slug: slug.clone(),
            tool: tool.clone(),
            end: std::sync::Mutex::new(Some(end_tx)),
        });
        let finish_decision = decision_id.clone();
        let revision = verdict.revision;
        let finish: Finish = Box::new(move |result: &mut Value| {
            jsonrpc::merge_meta(
                result,
                [
                    (META_DECISION_ID.to_owned(), json!(finish_decision)),
                    (META_REVISION.to_owned(), json!(revision)),
                ],
            );
        });
        self.forward(
            id,
            upstream,
            "tools/call",
            params,
            Some((call_no, end_rx)),
            finish,
            Some((decision_id, slug, tool, verdict)),
        )
        .await
    }

    /// Forwards one request upstream and answers the client, as one JSON
    /// body or as an SSE stream carrying progress/logging/requests first.
    #[allow(clippy::too_many_arguments)]
    async fn forward(
        self,
        id: Value,
        upstream: Arc<Upstream>,
        method: &'static str,
        params: Value,
        call: Option<(u64, oneshot::Receiver<CallEnd>)>,
        finish: Finish,
        audit: Option<(String, String, String, Verdict)>,
    ) -> Response {
        let ctx = Arc::new(self);
        if ctx.wants_sse {
            // The client accepts a stream. Most upstream answers come with
            // nothing before them: those are sent as one JSON body (no task,
            // no SSE framing). Only when the upstream sends progress, a log
            // message or a request first does the reply become a stream,
            // with the rest of the exchange moved to its own task.
            let (tx, mut rx) = mpsc::unbounded_channel();
            let task_ctx = Arc::clone(&ctx);
            let sink = tx.clone();
            let mut exchange = Box::pin(async move {
                let _inflight = task_ctx.shared.enter();
                task_ctx
                    .exchange(
                        id,
                        upstream,
                        method,
                        params,
                        Some(sink),
                        call,
                        finish,
                        audit,
                    )
                    .await
            });
            tokio::select! {
                biased;
                reply = &mut exchange => match (rx.try_recv().ok(), reply) {
                    (None, Some(reply)) => json_response(StatusCode::OK, reply.to_string()),
                    (first, reply) => {
                        // Messages came first, or the call was cancelled
                        // (no reply: the stream just ends).
                        if let Some(reply) = reply {
                            let _ = tx.send(reply);
                        }
                        drop(tx);
                        match first {
                            Some(first) => sse_unbounded_after(first, rx),
                            None => sse_unbounded(rx),
                        }
                    }
                },
                Some(first) = rx.recv() => {
                    finish_streaming(exchange, tx);
                    sse_unbounded_after(first, rx)
                }
                // A slow call: open the stream now, so clients whose read
                // timeout covers the response headers keep waiting.
                _ = tokio::time::sleep(STREAM_AFTER) => {
                    finish_streaming(exchange, tx);
                    sse_unbounded(rx)
                }
            }
        } else {
            let _inflight = ctx.shared.enter();
            match ctx
                .exchange(
                    id.clone(),
                    upstream,
                    method,
                    params,
                    None,
                    call,
                    finish,
                    audit,
                )
                .await
            {
                Some(reply) => json_response(StatusCode::OK, reply.to_string()),
                None => rpc_error_response(
                    StatusCode::OK,
                    id,
                    code::REQUEST_CANCELLED,
                    "Request cancelled",
                    None,
                ),
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn exchange(
        &self,
        id: Value,
        upstream: Arc<Upstream>,
        method: &'static str,
        params: Value,
        sink: Option<ClientSink>,
        call: Option<(u64, oneshot::Receiver<CallEnd>)>,
        finish: Finish,
        audit: Option<(String, String, String, Verdict)>,
    ) -> Option<Value> {
        let upstream_id = upstream.next_request_id();
        let started = Instant::now();
        let (call_no, end_rx) = match call {
            Some((n, rx)) => (Some(n), Some(rx)),
            None => (None, None),
        };
        let mut guard = ExchangeGuard {
            shared: &self.shared,
            call_no,
            upstream: &upstream,
            upstream_id,
            record: audit.as_ref().map(|(decision_id, slug, tool, verdict)| {
                self.decision_record(decision_id, method, slug, Some(tool), verdict)
            }),
            request_started: self.started,
            upstream_done: false,
        };
        let outcome = match upstream
            .start_request(upstream_id, method, Some(params), sink)
            .await
        {
            Err(e) => Outcome::Failed(e),
            Ok(rx) => {
                let wait = upstream.await_response(upstream_id, rx);
                match end_rx {
                    None => match wait.await {
                        Ok(v) => Outcome::Response(v),
                        Err(e) => Outcome::Failed(e),
                    },
                    Some(end_rx) => tokio::select! {
                        r = wait => match r {
                            Ok(v) => Outcome::Response(v),
                            Err(e) => Outcome::Failed(e),
                        },
                        Ok(why) = end_rx => {
                            let reason = match &why {
                                CallEnd::Denied(_) => "access revoked by policy",
                                CallEnd::ClientCancelled => "cancelled by the client",
                            };
                            upstream.cancel(upstream_id, reason);
                            Outcome::Ended(why)
                        }
                    },
                }
            }
        };
        guard.upstream_finished();
        let slug = upstream.slug().to_owned();
        upstream
            .duration_histogram()
            .record(started.elapsed().as_secs_f64());
        let reply = match outcome {
            Outcome::Response(mut resp) => {
                resp["id"] = id;
                if let Some(result) = resp.get_mut("result") {
                    finish(result);
                    if self.stateless {
                        if let Some(obj) = result.as_object_mut() {
                            obj.entry("resultType").or_insert_with(|| json!("complete"));
                        }
                    }
                }
                Some(resp)
            }
            Outcome::Failed(e) => {
                metrics::counter!("warden_upstream_errors_total", "server" => slug.clone(), "kind" => e.kind()).increment(1);
                let decision_id = audit.as_ref().map(|(d, ..)| d.as_str()).unwrap_or("");
                tracing::warn!(decision_id, server = %slug, method, error = %e, "upstream request failed");
                Some(upstream_error(id, &e))
            }
            Outcome::Ended(CallEnd::ClientCancelled) => None,
            Outcome::Ended(CallEnd::Denied(verdict)) => {
                let decision_id = uuid::Uuid::now_v7().to_string();
                Self::count_decision(&verdict);
                if let Some((_, slug, tool, _)) = &audit {
                    self.shared.record(self.decision_record(
                        &decision_id,
                        method,
                        slug,
                        Some(tool),
                        &verdict,
                    ));
                    tracing::info!(decision_id = %decision_id, server = %slug, tool = %tool, reason = verdict.reason.unwrap_or(""), "in-flight call cut off");
                }
                let name = audit
                    .as_ref()
                    .map(|(_, s, t, _)| {
                        if self.mount.prefixed() {
                            prefix_name(s, t)
                        } else {
                            t.clone()
                        }
                    })
                    .unwrap_or_default();
                Some(self.denial(id, "tool", &name, &verdict, &decision_id))
            }
        };
        drop(guard);
        reply
    }

    /// Which upstream a prompt/resource request goes to, or the denial.
    fn resolve_server(
        &self,
        id: &Value,
        what: &str,
        name: &str,
        slug: &str,
        method: &str,
    ) -> Result<Arc<Upstream>, Response> {
        let verdict = self.view().decide_server(slug);
        let upstream = upstream_for(&self.shared, &verdict);
        match upstream {
            Some(up) if verdict.allowed => Ok(up),
            _ if verdict.allowed => Err(json_response(
                StatusCode::OK,
                upstream_error(
                    id.clone(),
                    &GatewayError::UpstreamUnavailable {
                        server: slug.to_owned(),
                        detail: "no connection configured".into(),
                    },
                )
                .to_string(),
            )),
            _ => {
                let decision_id = uuid::Uuid::now_v7().to_string();
                Self::count_decision(&verdict);
                self.shared.record(self.decision_record(
                    &decision_id,
                    method,
                    slug,
                    None,
                    &verdict,
                ));
                Err(json_response(
                    StatusCode::OK,
                    self.denial(id.clone(), what, name, &verdict, &decision_id)
                        .to_string(),
                ))
            }
        }
    }

    async fn forward_named(self, id: Value, params: Option<Value>) -> Response {
        let Some(mut params) = params.filter(Value::is_object) else {
            return self.err(id, code::INVALID_PARAMS, "prompts/get needs params", None);
        };
        let Some(exposed) = params
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return self.err(
                id,
                code::INVALID_PARAMS,
                "prompts/get needs a prompt name",
                None,
            );
        };
        let (slug, name) = {
            let view = self.view();
            let (s, n) = view.resolve_name(&exposed);
            (s.to_owned(), n.to_owned())
        };
        let upstream = match self.resolve_server(&id, "prompt", &exposed, &slug, "prompts/get") {
            Ok(u) => u,
            Err(resp) => return resp,
        };
        params["name"] = Value::String(name);
        self.forward(
            id,
            upstream,
            "prompts/get",
            params,
            None,
            Box::new(|_| {}),
            None,
        )
        .await
    }

    fn resolve_uri<'u>(&self, uri: &'u str) -> (String, &'u str) {
        match &self.mount {
            Mount::Server(slug) => (slug.clone(), uri),
            _ => match split_uri(uri) {
                Some((slug, rest)) => (slug.to_owned(), rest),
                None => (String::new(), uri),
            },
        }
    }

    async fn forward_uri(self, id: Value, method: &str, params: Option<Value>) -> Response {
        let method: &'static str = match method {
            "resources/read" => "resources/read",
            "resources/subscribe" => "resources/subscribe",
            _ => "resources/unsubscribe",
        };
        let Some(mut params) = params.filter(Value::is_object) else {
            return self.err(
                id,
                code::INVALID_PARAMS,
                &format!("{method} needs params"),
                None,
            );
        };
        let Some(exposed) = params.get("uri").and_then(Value::as_str).map(str::to_owned) else {
            return self.err(
                id,
                code::INVALID_PARAMS,
                &format!("{method} needs a uri"),
                None,
            );
        };
        let (slug, uri) = self.resolve_uri(&exposed);
        let uri = uri.to_owned();
        let upstream = match self.resolve_server(&id, "resource", &exposed, &slug, method) {
            Ok(u) => u,
            Err(resp) => return resp,
        };
        params["uri"] = Value::String(uri);
        let prefixed = self.mount.prefixed();
        let finish: Finish = Box::new(move |result: &mut Value| {
            if !prefixed {
                return;
            }
            if let Some(contents) = result.get_mut("contents").and_then(Value::as_array_mut) {
                for item in contents {
                    if let Some(u) = item.get("uri").and_then(Value::as_str) {
                        let p = prefix_uri(&slug, u);
                        item["uri"] = Value::String(p);
                    }
                }
            }
        });
        self.forward(id, upstream, method, params, None, finish, None)
            .await
    }

    async fn forward_completion(self, id: Value, params: Option<Value>) -> Response {
        let Some(mut params) = params.filter(Value::is_object) else {
            return self.err(
                id,
                code::INVALID_PARAMS,
                "completion/complete needs params",
                None,
            );
        };
        let kind = params
            .pointer("/ref/type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let (slug, local, field, what) = match kind.as_str() {
            "ref/prompt" => {
                let exposed = params
                    .pointer("/ref/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let view = self.view();
                let (s, n) = view.resolve_name(&exposed);
                (s.to_owned(), n.to_owned(), "name", "prompt")
            }
            "ref/resource" => {
                let exposed = params
                    .pointer("/ref/uri")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let (s, u) = self.resolve_uri(&exposed);
                (s, u.to_owned(), "uri", "resource")
            }
            _ => {
                return self.err(
                    id,
                    code::INVALID_PARAMS,
                    "completion/complete needs a ref",
                    None,
                )
            }
        };
        let upstream = match self.resolve_server(&id, what, &local, &slug, "completion/complete") {
            Ok(u) => u,
            Err(resp) => return resp,
        };
        params["ref"][field] = Value::String(local);
        self.forward(
            id,
            upstream,
            "completion/complete",
            params,
            None,
            Box::new(|_| {}),
            None,
        )
        .await
    }

    /// `prompts/list`, `resources/list`, `resources/templates/list`.
    async fn list_fanout(self, id: Value, method: &str, params: Option<Value>) -> Response {
        let (field, capability) = match method {
            "prompts/list" => ("prompts", "prompts"),
            "resources/list" => ("resources", "resources"),
            _ => ("resourceTemplates", "resources"),
        };
        let method: &'static str = match method {
            "prompts/list" => "prompts/list",
            "resources/list" => "resources/list",
            _ => "resources/templates/list",
        };
        if let Mount::Server(slug) = &self.mount {
            let verdict = self.view().decide_server(slug);
            match upstream_for(&self.shared, &verdict) {
                Some(up) if verdict.allowed && up.has_capability(capability) => {
                    let params = params.unwrap_or_else(|| json!({}));
                    return self
                        .forward(id, up, method, params, None, Box::new(|_| {}), None)
                        .await;
                }
                _ => return self.ok(id, json!({ field: [] })),
            }
        }
        let targets: Vec<Arc<Upstream>> = {
            let view = self.view();
            view.servers()
                .into_iter()
                .filter(|(sa, _)| view.decide_server(&sa.slug).allowed)
                .filter_map(|(sa, _)| self.shared.registry.get(sa.server))
                .filter(|up| up.has_capability(capability))
                .collect()
        };
        let pages = futures::future::join_all(targets.into_iter().map(|up| async move {
            let mut items = Vec::new();
            let mut cursor: Option<Value> = None;
            for _ in 0..32 {
                let params = cursor.take().map(|c| json!({"cursor": c}));
                match up.call(method, params, None).await {
                    Ok(resp) => {
                        let Some(result) = resp.get("result") else { break };
                        if let Some(list) = result.get(field).and_then(Value::as_array) {
                            items.extend(list.iter().cloned());
                        }
                        match result.get("nextCursor") {
                            Some(c) if !c.is_null() => cursor = Some(c.clone()),
                            _ => break,
                        }
                    }
                    Err(e) => {
                        metrics::counter!("warden_upstream_errors_total", "server" => up.slug().to_owned(), "kind" => e.kind()).increment(1);
                        tracing::warn!(server = %up.slug(), error = %e, "listing failed; server left out");
                        break;
                    }
                }
            }
            (up.slug().to_owned(), items)
        }))
        .await;
        let mut merged = Vec::new();
        for (slug, items) in pages {
            for mut item in items {
                rewrite_listed(&mut item, field, &slug);
                merged.push(item);
            }
        }
        let mut result = Map::new();
        result.insert(field.into(), Value::Array(merged));
        if self.stateless {
            result.insert("ttlMs".into(), json!(0));
            result.insert("cacheScope".into(), json!("private"));
        }
        self.ok(id, Value::Object(result))
    }

    /// `subscriptions/listen` (2026-07-28): a long-lived SSE response that
    /// carries `notifications/tools/list_changed` for this caller.
    fn listen(&self, id: Value, params: Option<Value>) -> Response {
        let wants_tools = params
            .as_ref()
            .and_then(|p| p.pointer("/notifications/toolsListChanged"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let listener_id = uuid::Uuid::new_v4().simple().to_string();
        let session = Arc::new(Session::new(
            listener_id.clone(),
            self.principal,
            self.mount.clone(),
            STATELESS_VERSION.to_owned(),
            Some(id.clone()),
        ));
        let (tx, rx) = mpsc::channel(256);
        let mut agreed = Map::new();
        if wants_tools {
            agreed.insert("toolsListChanged".into(), json!(true));
        }
        let ack = jsonrpc::notification(
            "notifications/subscriptions/acknowledged",
            Some(json!({"notifications": agreed, "_meta": {META_SUBSCRIPTION: id}})),
        );
        let _ = tx.try_send(ack);
        session.attach_stream(tx);
        session.set_fingerprint(self.shared.session_fingerprint(&self.snapshot, &session));
        if !wants_tools {
            // Still registered so that revocation ends it, but it never
            // sees a changed fingerprint worth sending.
            session.mute();
        }
        self.shared.insert_listener(session);
        let guard = ListenerGuard {
            shared: Arc::downgrade(&self.shared),
            id: listener_id,
        };
        let _ = &self.protocol_version;
        sse_bounded(rx, Some(guard))
    }
}

/// Makes one listed prompt/resource/template collision-free on a
/// prefixed endpoint.
fn rewrite_listed(item: &mut Value, field: &str, slug: &str) {
    let key = match field {
        "prompts" => "name",
        "resources" => "uri",
        _ => "uriTemplate",
    };
    let Some(current) = item.get(key).and_then(Value::as_str) else {
        return;
    };
    let rewritten = if key == "name" {
        prefix_name(slug, current)
    } else {
        prefix_uri(slug, current)
    };
    item[key] = Value::String(rewritten);
}

fn upstream_error(id: Value, e: &GatewayError) -> Value {
    jsonrpc::error(
        id,
        code::UPSTREAM_ERROR,
        e.to_string(),
        Some(json!({"server": e.server(), "kind": e.kind()})),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_listed_items() {
        let mut p = json!({"name": "greet", "x": 1});
        rewrite_listed(&mut p, "prompts", "files");
        assert_eq!(p, json!({"name": "files__greet", "x": 1}));
        let mut r = json!({"uri": "file:///a", "name": "a"});
        rewrite_listed(&mut r, "resources", "files");
        assert_eq!(r["uri"], "warden:files/file:///a");
        assert_eq!(
            split_uri("warden:files/file:///a"),
            Some(("files", "file:///a"))
        );
    }
}
