//! Warden's MCP data plane.
//!
//! # Front door
//!
//! MCP Streamable HTTP at three mount points:
//!
//! * `/mcp`: every server the caller may use. Tool and prompt names are
//!   `{server_slug}__{name}` (slugs never contain `_`, so the first `__`
//!   splits them). Resource URIs are `warden:{server_slug}/{upstream uri}`
//!   (templates likewise); resource names are left as they are.
//! * `/mcp/servers/{slug}`: one server, names and URIs unchanged.
//! * `/mcp/toolsets/{slug}`: like `/mcp`, narrowed to the toolset of that
//!   slug in the caller's org (unknown toolset: HTTP 404). The engine's
//!   decision comes first; the toolset can only remove (`not_in_toolset`).
//!
//! Both protocol eras are served on the same URLs:
//!
//! * **2025-11-25** (and 2025-06-18, 2025-03-26, 2024-11-05): `initialize`
//!   creates a session, returned in `Mcp-Session-Id`; later requests must
//!   send it (missing: 400, unknown or ended: 404). An unsupported
//!   `MCP-Protocol-Version` header is 400. POST answers requests with JSON,
//!   or with an SSE stream (when the client accepts `text/event-stream`)
//!   for forwarded requests, so progress, logging and server-to-client
//!   requests reach the client before the response. Notifications and
//!   responses get 202. GET opens the session's SSE stream for
//!   `notifications/tools/list_changed` (a new GET replaces the previous
//!   stream). DELETE ends the session (204). Batches are refused.
//! * **2026-07-28** (selected by `MCP-Protocol-Version: 2026-07-28`, by
//!   `io.modelcontextprotocol/protocolVersion` in the request `_meta`, or by
//!   the methods `server/discover` / `subscriptions/listen`): stateless, no
//!   session. `server/discover` returns supported versions, capabilities and
//!   server info. Results carry `resultType: "complete"`; list results carry
//!   `cacheScope: "private"` and `ttlMs: 0` because they depend on the
//!   caller. A `Mcp-Method` header that disagrees with the body is 400.
//!   `subscriptions/listen` answers with an SSE stream that starts with
//!   `notifications/subscriptions/acknowledged` and then carries
//!   `notifications/tools/list_changed` (each with
//!   `io.modelcontextprotocol/subscriptionId` in `_meta`) if the filter asked
//!   for `toolsListChanged`. The stream ends with a JSON-RPC error (code
//!   -32003, `data.reason`) when the caller's key is revoked or expires, and
//!   with a `complete` result at shutdown. GET is 405 in this era.
//!
//! Origin: a request with an `Origin` header not in the allow-list is 403;
//! `http(s)://localhost`, `127.0.0.1` and `[::1]` (any port) are allowed by
//! default. Requests without `Origin` (non-browser clients) pass. With
//! [`GatewayConfig::allowed_hosts`] set (e.g. `localhost`, `127.0.0.1`,
//! `::1` for a local gateway), a `Host` outside the list is 403 as well.
//!
//! # Authentication and decisions
//!
//! `Authorization: Bearer <key>` on every request; the key is found by the
//! lowercase hex SHA-256 of the whole token. `X-Warden-End-User` and
//! `X-Warden-Agent` (names configurable) assert an end user / agent. No key:
//! 401 with `WWW-Authenticate: Bearer realm="warden"`; unknown, revoked or
//! expired key: 401 with `error="invalid_token"` and the reason; assertion
//! refusals and a suspended org: 403 with the reason code. A session is
//! bound to the principal that opened it: another key (or identity) on it
//! answers 404 `session_unknown`, exactly like an unknown id. One key holds
//! at most [`GatewayConfig::max_sessions_per_key`] live sessions and the
//! gateway [`GatewayConfig::max_sessions_total`] (429 `session_limit`).
//! Every refusal has a JSON-RPC error body with a stable `data.reason`
//! (see `mcp/refusal.rs`), including an oversized body (413
//! `body_too_large`); a message that is not strict JSON-RPC 2.0 (`jsonrpc`
//! not `"2.0"`, an id that is null, an object or a fraction) is 400 -32600,
//! and caller strings over their bound (names 256 bytes, URIs 8 KiB) are
//! -32602 `field_too_long`, never echoed or recorded. When this replica's policy is stale
//! every MCP request gets 503 with JSON-RPC error -32002 `policy_stale`.
//!
//! `tools/list` is the engine's access over the cached catalogs;
//! `tools/call` is decided by [`warden_policy::Snapshot::decide`] at call
//! time. A denied or unknown tool is JSON-RPC -32602 `Unknown tool: <name>`
//! with `data: {reason, decision_id, revision}`; an allowed result gets
//! `_meta["warden.dev/decision_id"]` and `_meta["warden.dev/revision"]`.
//! Prompts, resources, templates and completions use the server-level
//! decision. Every call decision goes to the [`DecisionRecorder`].
//! Upstream failures are JSON-RPC -32001 with `data: {server, kind}`.
//!
//! # Upstreams
//!
//! One shared connection per server (Streamable HTTP in either era, or a
//! stdio child process restarted with backoff). Warden speaks 2025-11-25
//! first and falls back to the stateless `server/discover` if `initialize`
//! is refused. Client ids and progress tokens are rewritten and restored;
//! secret headers are added by Warden (environment variables for stdio); the
//! client's `Authorization` and other headers are never forwarded. An
//! upstream whose URL an org admin set (`egress_restricted`) is reached only
//! at addresses the platform's egress policy allows, checked on every
//! connection ([`UpstreamLimits::policy`]); no redirect is ever followed; a
//! stdio child gets none of Warden's environment but `PATH`, `HOME`,
//! `LANG`, `LC_ALL`, `TZ`, `TMPDIR`, and runs only an allowed command. Tool
//! catalogs are cached, refreshed on `notifications/tools/list_changed` and
//! on an interval. `logging/setLevel` is answered locally, since one
//! upstream connection serves many clients. Not implemented: SSE resumption
//! (`Last-Event-ID`), resource subscriptions' `updated` notifications on
//! prefixed endpoints, pagination of the gateway's own lists (all items are
//! returned in one page).
//!
//! # Live sessions
//!
//! After every snapshot swap or catalog change, each session and listen
//! stream whose visible tool list changed gets `list_changed`; in-flight
//! `tools/call`s that became denied are cancelled upstream
//! (`notifications/cancelled`) and answered -32602 with the reason; sessions
//! of revoked or expired keys end (their streams close).

mod error;
mod gateway;
mod jsonrpc;
mod mcp;
mod registry;
mod seams;
pub mod telemetry;
mod upstream;
mod view;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use warden_store::LivePolicy;

pub use error::GatewayError;
pub use mcp::{META_DECISION_ID, META_REVISION, SESSION_VERSIONS};
pub use registry::GatewayCatalog;
pub use seams::{
    sign_in_digest, BoxFuture, ChannelRecorder, DecisionRecorder, IdentitySource, NoRecorder,
    Provision, StaticUpstreams, UpstreamSource,
};
pub use upstream::{UpstreamLimits, SESSION_VERSION, STATELESS_VERSION};
pub use view::{Mount, NOT_IN_TOOLSET};

use gateway::Shared;
use registry::Registry;

/// Settings of the data plane.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Origins allowed besides localhost (exact, e.g. `https://app.example`).
    pub allowed_origins: Vec<String>,
    /// Allow `http(s)://localhost|127.0.0.1|[::1]` origins (default true).
    pub allow_localhost_origins: bool,
    /// DNS-rebinding protection for a gateway bound to localhost: if not
    /// empty, a request whose `Host` (without port) is not in this list is
    /// 403. Empty (default): `Host` is not checked (deployments behind a
    /// proxy or with public names).
    pub allowed_hosts: Vec<String>,
    /// Header naming the end user a key acts for.
    pub end_user_header: String,
    /// Header naming the agent a key acts as.
    pub agent_header: String,
    /// Largest request body accepted.
    pub max_request_bytes: usize,
    /// A 2025-11-25 session with no open GET stream and no request for this
    /// long is ended (its id then answers 404, and the client re-initializes).
    pub session_idle_timeout: Duration,
    /// Live sessions (and listen streams) one key may hold; more are
    /// refused with 429 `session_limit`.
    pub max_sessions_per_key: usize,
    /// Live sessions (and listen streams) in total.
    pub max_sessions_total: usize,
    /// How many live replicas share each rate and concurrency limit (kept
    /// current by the store's replica heartbeats); none: this one alone.
    pub live_replicas: Option<Arc<AtomicUsize>>,
    pub upstream: UpstreamLimits,
    /// The gateway's public base URL (scheme, host, port; no path): the
    /// prefix of every resource identifier (RFC 8707) an identity
    /// provider's token must be issued for, and of the protected resource
    /// metadata URLs (RFC 9728).
    pub public_url: String,
    /// Live tasks (`io.modelcontextprotocol/tasks`) Warden remembers the
    /// creator of, per server; a task beyond it is cancelled upstream.
    pub max_tasks_per_server: usize,
    /// Live tasks per principal (key, end user, agent).
    pub max_tasks_per_principal: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            allowed_origins: Vec::new(),
            allow_localhost_origins: true,
            allowed_hosts: Vec::new(),
            end_user_header: "x-warden-end-user".into(),
            agent_header: "x-warden-agent".into(),
            max_request_bytes: 4 * 1024 * 1024,
            session_idle_timeout: Duration::from_secs(3600),
            max_sessions_per_key: 1_000,
            max_sessions_total: 100_000,
            live_replicas: None,
            upstream: UpstreamLimits::default(),
            public_url: "http://localhost".into(),
            max_tasks_per_server: 10_000,
            max_tasks_per_principal: 1_000,
        }
    }
}

/// The MCP data plane. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

impl Gateway {
    /// Loads the upstream configs, connects to the upstreams (in the
    /// background) and starts following the live policy.
    pub async fn start(
        config: GatewayConfig,
        live: Arc<LivePolicy>,
        source: Arc<dyn UpstreamSource>,
        recorder: Arc<dyn DecisionRecorder>,
    ) -> Result<Gateway, GatewayError> {
        // Subscribe before loading: a policy write between the load and the
        // live task's start would otherwise never reload the upstreams.
        let revisions = live.subscribe();
        let configs = source.load_upstreams().await?;
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let registry = Arc::new(Registry::new(config.upstream.clone(), events_tx));
        registry.apply(configs);
        let limiter = Arc::new(mcp::limits::Limiter::new(config.live_replicas.clone()));
        let shared = Arc::new(Shared {
            tasks: crate::upstream::TaskOwners::new(
                config.max_tasks_per_server,
                config.max_tasks_per_principal,
            ),
            config,
            live,
            source,
            recorder,
            registry,
            sessions: RwLock::new(Default::default()),
            listeners: Mutex::new(Default::default()),
            per_key: Mutex::new(Default::default()),
            limiter,
            calls: Mutex::new(Default::default()),
            next_call: AtomicU64::new(1),
            draining: AtomicBool::new(false),
            inflight: AtomicUsize::new(0),
            drained: Notify::new(),
            stop: Notify::new(),
            identity: Default::default(),
            identities: Default::default(),
            vault: Default::default(),
            token_expiry: Mutex::new(Default::default()),
        });
        tokio::spawn(gateway::run_live(Arc::clone(&shared), revisions, events_rx));
        Ok(Gateway { shared })
    }

    /// The MCP endpoints: `/mcp`, `/mcp/servers/{slug}`, `/mcp/toolsets/{slug}`,
    /// and their protected resource metadata (RFC 9728) under
    /// `/.well-known/oauth-protected-resource`.
    pub fn router(&self) -> axum::Router {
        mcp::router(Arc::clone(&self.shared))
    }

    /// Accepts bearer tokens of the identity providers `source` registers
    /// (besides Warden keys), and loads them now. Set once.
    pub async fn enable_identity(&self, source: Arc<dyn IdentitySource>) {
        if self.shared.identity.set(source).is_err() {
            tracing::warn!("identity source already set");
        }
        self.shared.reload_identities().await;
    }

    /// Sends each person's own upstream credentials from `vault` on their
    /// calls to servers that are not `static` (docs/credentials.md).
    pub fn enable_vault(&self, vault: warden_vault::Vault) {
        if self.shared.vault.set(vault).is_err() {
            tracing::warn!("credential vault already set");
        }
    }

    /// The registered identity providers (for the admin API's sign-in).
    pub fn identities(&self) -> Option<Arc<warden_identity::Identities>> {
        self.shared.identities.load_full()
    }

    /// Ready to serve: the policy is current and not shutting down.
    pub fn is_ready(&self) -> bool {
        !self.shared.live.is_stale() && !self.shared.draining.load(Ordering::SeqCst)
    }

    /// The cached tool catalogs, for the admin API's explain and pickers.
    pub fn catalog(&self) -> GatewayCatalog {
        self.shared.catalog()
    }

    /// The rate and concurrency counters, for the admin API's explain.
    pub fn limit_counters(&self) -> Arc<dyn warden_policy::LimitCounters> {
        Arc::clone(&self.shared.limiter) as Arc<dyn warden_policy::LimitCounters>
    }

    /// Live sessions plus listen streams.
    pub fn live_sessions(&self) -> usize {
        self.shared.live_session_count()
    }

    /// Callers' own upstream sessions open now, over all servers (one per
    /// downstream session and session-era HTTP server it used).
    pub fn upstream_caller_sessions(&self) -> usize {
        self.shared.registry.callers.total()
    }

    /// Who holds each live session and listen stream, and on which mount:
    /// for the console's live page and impact reports.
    pub fn session_principals(&self) -> Vec<(warden_policy::Principal, Mount)> {
        self.shared.session_principals()
    }

    /// An upstream's connection state: (ready, why it is down while it is);
    /// `None` when the gateway has no connection for `server`.
    pub fn server_health(&self, server: warden_policy::ServerId) -> Option<(bool, Option<String>)> {
        let up = self.shared.registry.get(server)?;
        Some((up.is_ready(), up.failure()))
    }

    /// (name, description) of each tool in an upstream's cached catalog.
    pub fn tool_descriptions(
        &self,
        server: warden_policy::ServerId,
    ) -> Option<Vec<(String, String)>> {
        let up = self.shared.registry.get(server)?;
        let catalog = up.catalog();
        let mut out: Vec<(String, String)> = catalog
            .tools
            .iter()
            .filter_map(|t| {
                let name = t.get("name")?.as_str()?.to_owned();
                let description = t
                    .get("description")
                    .and_then(|d| d.as_str())
                    .unwrap_or("")
                    .to_owned();
                Some((name, description))
            })
            .collect();
        out.sort();
        Some(out)
    }

    /// Waits until every upstream has a loaded tool catalog or `timeout`
    /// passes; returns whether all are ready. Useful at start-up and in tests.
    pub async fn wait_upstreams_ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let all = self.shared.registry.all();
            let ready = all.values().all(|u| {
                u.is_ready() && (u.catalog().generation > 0 || !u.has_capability("tools"))
            });
            if ready || tokio::time::Instant::now() >= deadline {
                return ready;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Re-reads upstream configs now (the gateway also does this on every
    /// policy revision).
    pub async fn reload_upstreams(&self) {
        self.shared.reload_upstreams().await;
    }

    /// Graceful shutdown: refuse new requests, end streams, wait up to
    /// `drain` for in-flight calls, then close upstream connections.
    pub async fn shutdown(&self, drain: Duration) {
        self.shared.draining.store(true, Ordering::SeqCst);
        self.shared.close_all_streams();
        let wait = async {
            loop {
                let notified = self.shared.drained.notified();
                if self.shared.inflight.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(drain, wait).await.is_err() {
            tracing::warn!(
                remaining = self.shared.inflight.load(Ordering::SeqCst),
                "shutdown: in-flight calls did not finish in time"
            );
        }
        self.shared.stop.notify_waiters();
        self.shared.registry.close_all();
    }
}
