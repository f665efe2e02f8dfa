//! Upstream MCP servers: one shared connection per server, and one
//! caller link per (downstream session, server) where the upstream's era
//! has sessions (see [`callers`]).
//!
//! Every message to an upstream goes through [`Upstream`]: request ids are
//! rewritten to gateway-unique numbers (and progress tokens to
//! gateway-unique strings) so many clients share one connection, and mapped
//! back exactly on the way out. Messages the upstream sends about a request
//! (progress, logging, server-to-client requests) are routed to the client
//! that made it (`routing.rs`). The tool catalog is cached on the shared
//! connection and refreshed on the upstream's
//! `notifications/tools/list_changed` and on an interval.

mod callers;
mod catalog;
mod http;
mod lifecycle;
mod routing;
mod sse;
mod stdio;
mod tasks;

pub(crate) use callers::{stateless_key, CallerLinks};
pub use callers::{CallerInit, OwnerSink};
pub use catalog::ToolCatalog;
pub(crate) use tasks::{TaskOwner, TaskOwners, TasksFull, MAX_TASK_ID_BYTES};

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use warden_policy::ServerId;
use warden_store::{Transport, UpstreamConfig, UpstreamPolicy};

use crate::error::GatewayError;
use crate::jsonrpc;

pub(crate) use sse::SseParser;

/// The stateless protocol revision.
pub const STATELESS_VERSION: &str = "2026-07-28";
/// The session-based revision Warden falls back to with upstreams that do
/// not speak [`STATELESS_VERSION`].
pub const SESSION_VERSION: &str = "2025-11-25";
/// Per-request `_meta` keys of the stateless revision.
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// The 2026-07-28 tasks extension (SEP-2663), as declared under
/// `capabilities.extensions`.
pub const TASKS_EXTENSION: &str = "io.modelcontextprotocol/tasks";

/// Where messages for one client request go (progress, logging, requests
/// from the server), already mapped back to the client's ids and tokens.
pub type ClientSink = mpsc::UnboundedSender<Value>;

/// Settings shared by all upstream connections.
#[derive(Debug, Clone)]
pub struct UpstreamLimits {
    /// Largest response (HTTP body, SSE event or stdio line) accepted.
    pub max_response_bytes: usize,
    /// How often tool catalogs are refreshed even without `list_changed`.
    pub catalog_refresh: Duration,
    /// Longest wait between reconnection attempts to a failed upstream.
    pub max_backoff: Duration,
    /// The platform's rules: the egress policy for upstreams whose URL an
    /// org admin set (`egress_restricted`), and the stdio command allow-list.
    pub policy: Arc<UpstreamPolicy>,
    /// Most caller links (upstream sessions of their own) per server; a
    /// caller beyond it is refused `upstream_sessions_full`. 0 turns
    /// per-caller sessions off: every caller shares the server's one
    /// connection, as before issue 9.
    pub max_caller_sessions: usize,
}

impl Default for UpstreamLimits {
    fn default() -> Self {
        UpstreamLimits {
            max_response_bytes: 16 * 1024 * 1024,
            catalog_refresh: Duration::from_secs(300),
            max_backoff: Duration::from_secs(30),
            policy: Arc::default(),
            max_caller_sessions: 1_000,
        }
    }
}

/// First wait after a failed connection attempt; doubles up to
/// [`UpstreamLimits::max_backoff`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// Longest wait for an answer to the opening `server/discover` before the
/// upstream is taken for a session-era server.
const DISCOVER_PROBE: Duration = Duration::from_secs(3);

/// Something the gateway must react to.
#[derive(Debug, Clone)]
pub enum UpstreamEvent {
    /// The tool catalog of this server changed.
    CatalogChanged(ServerId),
}

/// The work that delivers one HTTP request's response: its POST.
pub(crate) type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Where the response to a request arrives ([`Upstream::start_request`]).
///
/// For an HTTP upstream it also carries the request's POST, which runs
/// while (and only while) the response is awaited: the task that waits for
/// the answer drives the HTTP exchange itself instead of handing it to a
/// task of its own and being woken by it, one task spawn and one wake-up
/// (often a hop between worker threads) less per call. Dropping it before
/// the response came (the client went away, the gateway's timeout) drops
/// the POST too; the caller tells the upstream (`notifications/cancelled`)
/// as before.
pub struct ResponseRx {
    rx: oneshot::Receiver<Result<Value, GatewayError>>,
    driver: Option<Driver>,
}

impl Future for ResponseRx {
    type Output = Result<Result<Value, GatewayError>, oneshot::error::RecvError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(driver) = self.driver.as_mut() {
            if driver.as_mut().poll(cx).is_ready() {
                self.driver = None;
            }
        }
        Pin::new(&mut self.rx).poll(cx)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum LinkState {
    Connecting,
    Ready,
    Failed(String),
}

struct Pending {
    tx: oneshot::Sender<Result<Value, GatewayError>>,
    sink: Option<ClientSink>,
    /// The client capabilities of the caller (`None`: not known, every
    /// request the upstream sends it is relayed). A server-to-client request
    /// that needs a capability the caller did not declare is refused here.
    declared: Option<Value>,
    /// (gateway token, client token)
    progress: Option<(String, Value)>,
}

enum Link {
    Http(http::HttpLink),
    Stdio(stdio::StdioLink),
}

/// One upstream server and a connection to it: the shared one (catalog,
/// callers without a session of their own) or a caller link.
pub struct Upstream {
    pub config: UpstreamConfig,
    /// Set on a caller link: whose upstream session this is.
    caller: Option<callers::CallerSide>,
    timeout: Duration,
    limits: UpstreamLimits,
    link: Link,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
    progress_routes: Mutex<HashMap<String, u64>>,
    server_requests: Mutex<HashMap<String, Value>>,
    catalog: ArcSwap<ToolCatalog>,
    /// The upstream's `initialize` (or `server/discover`) result.
    info: ArcSwapOption<Value>,
    /// The negotiated protocol version.
    protocol: ArcSwapOption<String>,
    state_tx: watch::Sender<LinkState>,
    wake: Notify,
    closed: AtomicBool,
    connect_attempts: AtomicU64,
    /// `warden_upstream_request_duration_seconds{server}`, resolved once.
    duration: metrics::Histogram,
    events: mpsc::UnboundedSender<UpstreamEvent>,
    me: Weak<Upstream>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("slug", &self.config.slug)
            .field("config_revision", &self.config.config_revision)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short locks leaves plain maps
    // behind; continuing with them is safe.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Upstream {
    /// Creates the upstream and starts its connection task.
    pub fn start(
        config: UpstreamConfig,
        limits: UpstreamLimits,
        events: mpsc::UnboundedSender<UpstreamEvent>,
        seed: Option<Arc<ToolCatalog>>,
    ) -> Arc<Upstream> {
        Self::start_link(config, limits, events, seed, None)
    }

    fn start_link(
        config: UpstreamConfig,
        limits: UpstreamLimits,
        events: mpsc::UnboundedSender<UpstreamEvent>,
        seed: Option<Arc<ToolCatalog>>,
        caller: Option<(callers::CallerSide, http::HttpLink)>,
    ) -> Arc<Upstream> {
        let (caller, link) = match caller {
            Some((side, link)) => (Some(side), Link::Http(link)),
            None => (
                None,
                match &config.transport {
                    Transport::Http { url } => {
                        Link::Http(http::HttpLink::new(url.clone(), &config, &limits.policy))
                    }
                    Transport::Stdio { .. } => Link::Stdio(stdio::StdioLink::new()),
                },
            ),
        };
        let (state_tx, _) = watch::channel(LinkState::Connecting);
        let duration = metrics::histogram!("warden_upstream_request_duration_seconds",
            "server" => config.slug.clone());
        let upstream = Arc::new_cyclic(|me| Upstream {
            timeout: Duration::from_millis(config.timeout_ms.max(1)),
            config,
            caller,
            limits,
            link,
            next_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            progress_routes: Mutex::new(HashMap::new()),
            server_requests: Mutex::new(HashMap::new()),
            // A reconnecting server keeps its last known catalog until the
            // new connection reports one, so calls do not flap.
            catalog: ArcSwap::new(seed.unwrap_or_default()),
            info: ArcSwapOption::empty(),
            protocol: ArcSwapOption::empty(),
            state_tx,
            wake: Notify::new(),
            closed: AtomicBool::new(false),
            connect_attempts: AtomicU64::new(0),
            duration,
            events,
            me: me.clone(),
        });
        tokio::spawn(Arc::clone(&upstream).run());
        upstream
    }

    pub(crate) fn self_arc(&self) -> Option<Arc<Upstream>> {
        self.me.upgrade()
    }

    pub(crate) fn http_link(&self) -> Option<&http::HttpLink> {
        match &self.link {
            Link::Http(link) => Some(link),
            Link::Stdio(_) => None,
        }
    }

    pub(crate) fn stdio_link(&self) -> Option<&stdio::StdioLink> {
        match &self.link {
            Link::Stdio(link) => Some(link),
            Link::Http(_) => None,
        }
    }

    /// Time from forwarding a request to its outcome, for this server.
    pub fn duration_histogram(&self) -> &metrics::Histogram {
        &self.duration
    }

    pub fn slug(&self) -> &str {
        &self.config.slug
    }

    pub fn catalog(&self) -> Arc<ToolCatalog> {
        self.catalog.load_full()
    }

    /// The upstream's initialize/discover result, once connected.
    pub fn info(&self) -> Option<Arc<Value>> {
        self.info.load_full()
    }

    pub fn is_ready(&self) -> bool {
        *self.state_tx.borrow() == LinkState::Ready
    }

    /// Why the connection is down, while it is (`None` when ready or
    /// still connecting).
    pub fn failure(&self) -> Option<String> {
        match &*self.state_tx.borrow() {
            LinkState::Failed(detail) => Some(detail.clone()),
            _ => None,
        }
    }

    pub(crate) fn is_stateless(&self) -> bool {
        self.protocol
            .load()
            .as_deref()
            .is_some_and(|p| p == STATELESS_VERSION)
    }

    pub(crate) fn protocol(&self) -> Option<Arc<String>> {
        self.protocol.load_full()
    }

    /// Does the upstream offer this capability (`tools`, `prompts`, ...)?
    pub fn has_capability(&self, name: &str) -> bool {
        self.info()
            .and_then(|i| i.get("capabilities").map(|c| c.get(name).is_some()))
            .unwrap_or(false)
    }

    /// Stops the connection task and the child process, failing pending
    /// requests; an HTTP upstream's session is ended (`DELETE`).
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
        self.wake.notify_one();
        // A caller's requests still running upstream are cancelled there
        // before its session is ended (the DELETE alone may not stop them).
        let in_flight: Vec<Value> = if self.caller.is_some() {
            let mut ids: Vec<u64> = lock(&self.pending).keys().copied().collect();
            ids.sort_unstable();
            ids.into_iter()
                .map(|id| {
                    json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                           "params": {"requestId": id, "reason": "the session ended"}})
                })
                .collect()
        } else {
            Vec::new()
        };
        self.fail_all("the server was removed or reconfigured");
        match &self.link {
            Link::Stdio(link) => link.shutdown(),
            Link::Http(link) => {
                // A caller's tasks die with its session: cancelled before
                // the session is ended.
                let tasks = self
                    .caller
                    .as_ref()
                    .map(|c| c.take_tasks())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|task| {
                        let id = format!("warden-cancel-{}", self.next_request_id());
                        json!({"jsonrpc": "2.0", "id": id, "method": "tasks/cancel",
                               "params": {"taskId": task}})
                    });
                let first = in_flight.into_iter().chain(tasks).collect();
                link.end_session(self, self.timeout, first)
            }
        }
    }

    pub(crate) fn unavailable(&self, detail: impl Into<String>) -> GatewayError {
        GatewayError::UpstreamUnavailable {
            server: self.config.slug.clone(),
            detail: detail.into(),
        }
    }

    pub(crate) fn err_protocol(&self, detail: impl Into<String>) -> GatewayError {
        GatewayError::UpstreamProtocol {
            server: self.config.slug.clone(),
            detail: detail.into(),
        }
    }

    pub(crate) fn err_too_large(&self) -> GatewayError {
        GatewayError::UpstreamTooLarge {
            server: self.config.slug.clone(),
            limit: self.limits.max_response_bytes,
        }
    }

    pub(crate) fn max_response_bytes(&self) -> usize {
        self.limits.max_response_bytes
    }

    /// A fresh gateway-unique request id for this connection.
    pub fn next_request_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Waits until the connection is usable, failing fast if it is known
    /// to be down.
    pub(crate) async fn ensure_ready(&self) -> Result<(), GatewayError> {
        // The usual case, without a watch subscription and a timer per call.
        if self.is_ready() {
            return Ok(());
        }
        let mut rx = self.state_tx.subscribe();
        let wait = async {
            loop {
                let state = rx.borrow_and_update().clone();
                match state {
                    LinkState::Ready => return Ok(()),
                    LinkState::Failed(detail) => return Err(self.unavailable(detail)),
                    LinkState::Connecting => {}
                }
                if rx.changed().await.is_err() {
                    return Err(self.unavailable("connection closed"));
                }
            }
        };
        match tokio::time::timeout(self.timeout, wait).await {
            Ok(r) => r,
            Err(_) => Err(self.unavailable("still connecting")),
        }
    }

    /// Sends a request upstream with id `id` and returns where its response
    /// will arrive. `params` are forwarded as given, except that a progress
    /// token is replaced by a gateway-unique one (restored on the way back).
    pub async fn start_request(
        self: &Arc<Self>,
        id: u64,
        method: &str,
        params: Option<Value>,
        sink: Option<ClientSink>,
    ) -> Result<ResponseRx, GatewayError> {
        self.start_request_with(id, method, params, sink, None, None)
            .await
    }

    /// [`Upstream::start_request`] for a caller whose client capabilities
    /// are known (`declared`): requests the upstream sends it that need a
    /// capability it lacks are answered here with `-32601`, never relayed.
    pub async fn start_request_for(
        self: &Arc<Self>,
        id: u64,
        method: &str,
        params: Option<Value>,
        sink: Option<ClientSink>,
        declared: Option<Value>,
    ) -> Result<ResponseRx, GatewayError> {
        self.start_request_with(id, method, params, sink, declared, None)
            .await
    }

    /// [`Upstream::start_request_for`] with HTTP headers for this one
    /// request (`headers`: e.g. a caller's own `Authorization` on the
    /// 2026-07-28 wire, which has no session to hang them on). They replace
    /// Warden's headers of the same name; ignored on stdio.
    pub async fn start_request_with(
        self: &Arc<Self>,
        id: u64,
        method: &str,
        params: Option<Value>,
        sink: Option<ClientSink>,
        declared: Option<Value>,
        headers: Option<reqwest::header::HeaderMap>,
    ) -> Result<ResponseRx, GatewayError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(self.unavailable("the server was removed"));
        }
        self.ensure_ready().await?;
        Ok(self.send_request(id, method, params, sink, declared, headers))
    }

    fn send_request(
        self: &Arc<Self>,
        id: u64,
        method: &str,
        mut params: Option<Value>,
        sink: Option<ClientSink>,
        declared: Option<Value>,
        headers: Option<reqwest::header::HeaderMap>,
    ) -> ResponseRx {
        let (tx, rx) = oneshot::channel();
        let mut progress = None;
        if let Some(token) = params
            .as_mut()
            .and_then(|p| p.get_mut("_meta"))
            .and_then(|m| m.get_mut("progressToken"))
        {
            let ours = format!("warden-{}-{id}", self.config.server);
            let theirs = std::mem::replace(token, Value::String(ours.clone()));
            lock(&self.progress_routes).insert(ours.clone(), id);
            progress = Some((ours, theirs));
        }
        if self.is_stateless() {
            params = Some(self.stateless_meta(params));
        }
        lock(&self.pending).insert(
            id,
            Pending {
                tx,
                sink,
                declared,
                progress,
            },
        );
        let mut msg = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if let Some(p) = params {
            msg["params"] = p;
        }
        let driver = match &self.link {
            Link::Http(link) => Some(link.request_driver(self, id, msg, headers)),
            Link::Stdio(link) => {
                if let Err(e) = link.send(&msg) {
                    self.complete(id, Err(self.unavailable(e)));
                }
                None
            }
        };
        ResponseRx { rx, driver }
    }

    /// The per-request `_meta` the stateless revision requires. The
    /// protocol version is always this link's; the client's capabilities
    /// and info are the caller's own when the request carries them (the
    /// front door puts them there), and otherwise Warden's: no capability
    /// at all, so an upstream never asks a client for something it did not
    /// declare.
    pub(crate) fn stateless_meta(&self, params: Option<Value>) -> Value {
        let mut p = params.unwrap_or_else(|| json!({}));
        if !p.is_object() {
            p = json!({});
        }
        let has = |p: &Value, key: &str| p.get("_meta").and_then(|m| m.get(key)).is_some();
        let mut entries = vec![(META_PROTOCOL_VERSION.to_string(), json!(STATELESS_VERSION))];
        if !has(&p, META_CLIENT_CAPABILITIES) {
            entries.push((META_CLIENT_CAPABILITIES.to_string(), json!({})));
        }
        if !has(&p, META_CLIENT_INFO) {
            entries.push((META_CLIENT_INFO.to_string(), lifecycle::client_info()));
        }
        jsonrpc::merge_meta(&mut p, entries);
        p
    }

    /// A request with the server's timeout; on timeout the upstream is told
    /// to cancel.
    pub async fn call(
        self: &Arc<Self>,
        method: &str,
        params: Option<Value>,
        sink: Option<ClientSink>,
    ) -> Result<Value, GatewayError> {
        let id = self.next_request_id();
        let rx = self.start_request(id, method, params, sink).await?;
        self.await_response(id, rx).await
    }

    pub(crate) async fn await_response(
        &self,
        id: u64,
        rx: ResponseRx,
    ) -> Result<Value, GatewayError> {
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(self.unavailable("connection closed")),
            Err(_) => {
                self.cancel(id, "timed out at the gateway");
                Err(GatewayError::UpstreamTimeout {
                    server: self.config.slug.clone(),
                    timeout_ms: self.timeout.as_millis() as u64,
                })
            }
        }
    }

    /// Tells the upstream to stop working on request `id` and forgets it.
    pub fn cancel(&self, id: u64, reason: &str) {
        if self.forget(id).is_none() {
            return;
        }
        let note = jsonrpc::notification(
            "notifications/cancelled",
            Some(json!({"requestId": id, "reason": reason})),
        );
        self.send_oneway(note);
    }

    fn forget(&self, id: u64) -> Option<Pending> {
        let p = lock(&self.pending).remove(&id)?;
        if let Some((ours, _)) = &p.progress {
            lock(&self.progress_routes).remove(ours);
        }
        Some(p)
    }

    pub(crate) fn complete(&self, id: u64, result: Result<Value, GatewayError>) {
        if let Some(p) = self.forget(id) {
            let _ = p.tx.send(result);
        }
    }

    fn fail_all(&self, detail: &str) {
        let drained: Vec<(u64, Pending)> = lock(&self.pending).drain().collect();
        lock(&self.progress_routes).clear();
        for (_, p) in drained {
            let _ = p.tx.send(Err(self.unavailable(detail)));
        }
    }

    /// Sends a notification or response upstream, not waiting for anything.
    pub fn send_oneway(&self, msg: Value) {
        match &self.link {
            Link::Http(link) => link.send_oneway(self, msg),
            Link::Stdio(link) => {
                if let Err(e) = link.send(&msg) {
                    tracing::debug!(server = %self.config.slug, error = %e, "could not notify upstream");
                }
            }
        }
    }

    /// Marks the connection broken: pending requests fail, the connection
    /// task reconnects with backoff.
    pub(crate) fn mark_failed(&self, detail: &str) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        self.state_tx
            .send_replace(LinkState::Failed(detail.to_owned()));
        self.fail_all(detail);
        self.wake.notify_one();
    }
}

#[cfg(test)]
mod tests;
