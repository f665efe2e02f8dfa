//! The front door: MCP Streamable HTTP for clients, both protocol eras.
//!
//! A POST runs one pipeline, each step in its own file:
//!
//! 1. **admission** ([`admission`]): Host/Origin, shutdown, staleness, the
//!    bearer key and asserted identities, or an identity provider's token
//!    ([`oauth`]) → a `Principal` (the first step of each mount point's
//!    service, `Endpoint`, so no method runs without it);
//! 2. **transport** (this file): the body read within its bound, one strict
//!    JSON-RPC message ([`message`]), the protocol era, the session;
//! 3. **dispatch** ([`dispatch`]): what the method means here;
//! 4. **authorize** ([`authorize`]): the engine's verdict for the named
//!    tool/prompt/resource → a `Permit` owning its decision id, metric and
//!    audit record, or a denial;
//! 5. **limits** ([`limits`]): the permitted call counted against every
//!    rate and concurrency limit that applies, or refused by one;
//! 6. **forward** ([`forward`]): the request to its upstream under the
//!    permit, the answer back as JSON or SSE ([`stream`]).
//!
//! Every refusal on the way is a [`refusal::Refusal`], which alone knows
//! its reason code, HTTP status and JSON-RPC body. Tracing wraps the
//! pipeline.

mod admission;
mod authorize;
mod connections;
mod dispatch;
mod forward;
pub(crate) mod limits;
mod message;
mod oauth;
pub(crate) mod refusal;
pub(crate) mod replay;
pub(crate) mod session_stream;
mod stream;
mod tasks;
mod wire;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Request};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::Value;
use tracing::Instrument;

pub use dispatch::{META_DECISION_ID, META_REVISION};
pub(crate) use tasks::cancel_denied_tasks;
pub(crate) use wire::encode_header_value;

use crate::gateway::{Session, Shared};
use crate::jsonrpc::{self, Kind};
use crate::upstream::STATELESS_VERSION;
use crate::view::Mount;
use admission::{header_str, Admitted};
use dispatch::Ctx;
use message::MAX_SLUG_BYTES;
use refusal::Refusal;
use wire::VERSION_HEADER;

/// Session-era protocol versions the front door accepts, newest first.
pub const SESSION_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
const SESSION_HEADER: &str = "mcp-session-id";
const LAST_EVENT_ID_HEADER: &str = "last-event-id";
/// Session ids are 32 hex characters; anything much longer is not one.
const MAX_SESSION_ID_BYTES: usize = 128;

/// The three mount points, each registered once; the person's
/// connections; the resource metadata.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let endpoint = |point| Endpoint {
        shared: Arc::clone(&shared),
        point,
    };
    Router::new()
        .route_service("/mcp", endpoint(MountPoint::All))
        .route_service("/mcp/servers/{slug}", endpoint(MountPoint::Server))
        .route_service("/mcp/toolsets/{slug}", endpoint(MountPoint::Toolset))
        .merge(
            connections::routes()
                .layer(axum::middleware::from_fn_with_state(
                    Arc::clone(&shared),
                    oauth::challenge,
                ))
                .layer(DefaultBodyLimit::max(shared.config.max_request_bytes))
                .with_state(Arc::clone(&shared)),
        )
        .merge(oauth::metadata_router(shared))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MountPoint {
    All,
    Server,
    Toolset,
}

/// One mount point's POST, GET and DELETE, as a tower service that axum
/// routes to by path. Its methods are dispatched here rather than by
/// axum's method router, handler extractors and middleware: those cloned
/// boxed services, header maps and extensions, 24 of a call's 181
/// allocations (BENCHMARKS.md, "the front door's allocations").
#[derive(Clone)]
struct Endpoint {
    shared: Arc<Shared>,
    point: MountPoint,
}

impl tower::Service<Request> for Endpoint {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        let point = self.point;
        Box::pin(async move { Ok(serve(shared, point, req).await) })
    }
}

/// Admission, then the method; a challenge in the answer names the
/// endpoint's resource metadata.
async fn serve(shared: Arc<Shared>, point: MountPoint, req: Request) -> Response {
    let started = Instant::now();
    let (mut parts, body) = req.into_parts();
    let method = parts.method.clone();
    if !matches!(
        method,
        Method::POST | Method::GET | Method::HEAD | Method::DELETE
    ) {
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        resp.headers_mut().insert(
            header::ALLOW,
            HeaderValue::from_static("GET,HEAD,POST,DELETE"),
        );
        return resp;
    }
    let mount = match point {
        MountPoint::All => Ok(Mount::All),
        MountPoint::Server | MountPoint::Toolset => {
            match Path::<String>::from_request_parts(&mut parts, &()).await {
                Ok(Path(slug)) if slug.len() <= MAX_SLUG_BYTES => {
                    Ok(if point == MountPoint::Server {
                        Mount::Server(slug)
                    } else {
                        Mount::Toolset(slug)
                    })
                }
                _ => Err(Refusal::EndpointUnknown),
            }
        }
    };
    let admitted = admission::admit(&shared, &parts.headers, parts.uri.path()).await;
    let mut resp = match method {
        Method::POST => {
            // Read whatever the admission said, so that the connection
            // stays usable for the next request.
            let body = read_body(&shared, body).await;
            match mount.and_then(|m| Ok((m, admitted?, body?))) {
                Ok((mount, admitted, body)) => {
                    handle_post(
                        Arc::clone(&shared),
                        mount,
                        admitted,
                        parts.headers,
                        body,
                        started,
                    )
                    .await
                }
                Err(refusal) => refusal.into_response(Value::Null),
            }
        }
        Method::DELETE => mount
            .and_then(|m| handle_delete(&shared, m, admitted?, &parts.headers))
            .unwrap_or_else(|refusal| refusal.into_response(Value::Null)),
        _ => {
            let resp = mount
                .and_then(|m| handle_get(&shared, m, admitted?, &parts.headers))
                .unwrap_or_else(|refusal| refusal.into_response(Value::Null));
            if method == Method::HEAD {
                let (parts, _) = resp.into_parts();
                Response::from_parts(parts, Body::empty())
            } else {
                resp
            }
        }
    };
    oauth::name_metadata(&shared, parts.uri.path(), &mut resp);
    resp
}

/// The body within `max_request_bytes`; over it, the JSON 413.
async fn read_body(shared: &Shared, body: Body) -> Result<Bytes, Refusal> {
    let limit = shared.config.max_request_bytes;
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(Refusal::BodyTooLarge { limit })
        }
        Err(_) => Err(Refusal::InvalidRequest("the body could not be read")),
    }
}

/// The session a session-era request names, checked against its principal.
/// Unknown, ended, another endpoint's and another principal's sessions all
/// answer 404 `session_unknown`: an id reveals nothing about its owner.
fn find_session(
    shared: &Shared,
    admitted: &Admitted,
    headers: &HeaderMap,
    mount: &Mount,
) -> Result<Arc<Session>, Refusal> {
    let Some(id) = header_str(headers, SESSION_HEADER, MAX_SESSION_ID_BYTES)? else {
        return Err(Refusal::SessionRequired);
    };
    let Some(session) = shared.session(id) else {
        // A session ended by revocation: the key's refusal says more.
        principal_refusal(&admitted.snapshot.access(&admitted.principal))?;
        return Err(Refusal::SessionUnknown);
    };
    if session.mount != *mount || session.principal != admitted.principal {
        return Err(Refusal::SessionUnknown);
    }
    Ok(session)
}

/// Key revoked or expired, org suspended: the whole principal is refused.
fn principal_refusal(access: &warden_policy::Access) -> Result<(), Refusal> {
    match access.principal_denial(crate::gateway::now_ms()) {
        None => Ok(()),
        Some(reason) => {
            crate::telemetry::record_reason(reason.code());
            metrics::counter!("warden_gateway_decisions_total", "reason" => reason.code())
                .increment(1);
            Err(Refusal::PrincipalDenied(reason))
        }
    }
}

/// The methods `warden_gateway_requests_total` names; any other is `other`.
const KNOWN_METHODS: [&str; 18] = [
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

/// Counts a request in `warden_gateway_requests_total`. Each (method,
/// mount) handle is resolved once: `counter!` builds the metric's key and
/// looks it up in the registry on every use, a few allocations and hashes
/// per request.
fn count_request(method: &str, mount: &Mount) {
    const MOUNTS: usize = 3;
    const SLOTS: usize = (KNOWN_METHODS.len() + 1) * MOUNTS;
    static COUNTERS: [OnceLock<metrics::Counter>; SLOTS] = [const { OnceLock::new() }; SLOTS];
    let m = KNOWN_METHODS
        .iter()
        .position(|known| *known == method)
        .unwrap_or(KNOWN_METHODS.len());
    let n = match mount {
        Mount::All => 0,
        Mount::Server(_) => 1,
        Mount::Toolset(_) => 2,
    };
    COUNTERS[m * MOUNTS + n]
        .get_or_init(|| {
            let method = KNOWN_METHODS.get(m).copied().unwrap_or("other");
            metrics::counter!("warden_gateway_requests_total", "method" => method, "mount" => mount.label())
        })
        .increment(1);
}

async fn handle_post(
    shared: Arc<Shared>,
    mount: Mount,
    admitted: Admitted,
    headers: HeaderMap,
    body: Bytes,
    started: Instant,
) -> Response {
    let msg = match message::parse(&body) {
        Ok(m) => m,
        Err(refusal) => return refusal.into_response(Value::Null),
    };
    drop(body);
    count_request(msg.method(), &mount);
    let span = crate::telemetry::request_span(&headers, &msg.value, msg.method(), &mount);
    handle_message(shared, mount, admitted, headers, msg, started)
        .instrument(span)
        .await
}

/// The pipeline after parsing, inside the request's trace span.
async fn handle_message(
    shared: Arc<Shared>,
    mount: Mount,
    admitted: Admitted,
    headers: HeaderMap,
    msg: message::Message,
    started: Instant,
) -> Response {
    // Every refusal from here on answers the request's own id.
    let reply_id = msg.value.get("id").cloned().unwrap_or(Value::Null);
    match transport(&shared, &mount, &admitted, &headers, &msg.value) {
        Ok((session, stateless)) => {
            let access = match &session {
                Some(s) => s.access(&admitted.snapshot),
                None => Arc::new(admitted.snapshot.access(&admitted.principal)),
            };
            crate::telemetry::record_principal(&admitted.principal, access.org());
            if let Err(refusal) = principal_refusal(&access) {
                if let Some(s) = &session {
                    shared.remove_session(&s.id);
                }
                return refusal.into_response(reply_id);
            }
            if matches!(mount, Mount::Toolset(_))
                && shared
                    .toolset(&admitted.snapshot, &access, &mount)
                    .is_none()
            {
                return Refusal::ToolsetUnknown.into_response(reply_id);
            }
            let owner = match &session {
                Some(s) => s.id.clone(),
                None => format!("key:{}", admitted.principal.key),
            };
            let wants_sse = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|a| a.contains("text/event-stream"));
            let ctx = Ctx {
                shared: Arc::clone(&shared),
                snapshot: admitted.snapshot,
                access,
                principal: admitted.principal,
                sign_in: admitted.sign_in,
                mount,
                owner,
                stateless,
                wants_sse,
                started,
            };
            match msg.kind {
                Kind::Notification => {
                    ctx.notification(&msg.value);
                    accepted()
                }
                Kind::Response => {
                    ctx.client_response(msg.value);
                    accepted()
                }
                Kind::Request | Kind::Invalid => ctx.request(msg.value).await,
            }
        }
        Err(refusal) => refusal.into_response(reply_id),
    }
}

/// The protocol era and, in the session era, the session the request
/// names (none for `initialize`).
fn transport(
    shared: &Shared,
    mount: &Mount,
    admitted: &Admitted,
    headers: &HeaderMap,
    msg: &Value,
) -> Result<(Option<Arc<Session>>, bool), Refusal> {
    let method = jsonrpc::method(msg);
    if wire::is_stateless(headers, msg) {
        if jsonrpc::kind(msg) == Kind::Request {
            wire::check_request(headers, msg)?;
        } else {
            wire::check_headers(headers, msg)?;
        }
        return Ok((None, true));
    }
    if method == "initialize" {
        return Ok((None, false));
    }
    if let Some(v) = header_str(headers, VERSION_HEADER, 64)? {
        if !SESSION_VERSIONS.contains(&v) {
            return Err(Refusal::UnsupportedProtocolVersion);
        }
    }
    let session = find_session(shared, admitted, headers, mount)?;
    Ok((Some(session), false))
}

fn handle_get(
    shared: &Shared,
    mount: Mount,
    admitted: Admitted,
    headers: &HeaderMap,
) -> Result<Response, Refusal> {
    if headers.get(VERSION_HEADER).and_then(|v| v.to_str().ok()) == Some(STATELESS_VERSION) {
        return Err(Refusal::GetNotAllowed);
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !accept.contains("text/event-stream") {
        return Err(Refusal::NotAcceptable);
    }
    let session = find_session(shared, &admitted, headers, &mount)?;
    if let Err(refusal) = principal_refusal(&session.access(&admitted.snapshot)) {
        shared.remove_session(&session.id);
        return Err(refusal);
    }
    // A client resuming the session's own stream or one of its reply
    // streams gets what it missed there; any other id opens a fresh
    // session stream.
    if let Some(last) = header_str(headers, LAST_EVENT_ID_HEADER, replay::MAX_EVENT_ID_BYTES)? {
        if let Some(resp) = session.own_stream.resume(last) {
            return Ok(resp);
        }
        if let Some((n, stream, after)) = session.replay.find(last) {
            return Ok(replay::sse_response(n, stream, Some(after), false));
        }
    }
    let n = session.replay.next_number();
    Ok(session.own_stream.open(n, session.primes_streams()))
}

fn handle_delete(
    shared: &Shared,
    mount: Mount,
    admitted: Admitted,
    headers: &HeaderMap,
) -> Result<Response, Refusal> {
    let session = find_session(shared, &admitted, headers, &mount)?;
    shared.remove_session(&session.id);
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    Ok(resp)
}

fn accepted() -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::ACCEPTED;
    resp
}
