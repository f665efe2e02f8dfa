//! Gateway state: sessions, listen streams, in-flight calls, and the task
//! that keeps live sessions in step with the policy and the catalogs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, Notify};
use warden_policy::{Access, KeyId, Principal, Snapshot, ToolsetRow};
use warden_store::{DecisionRecord, LivePolicy};

use crate::jsonrpc;
use crate::jsonrpc::ValueExt;
use crate::mcp::limits::Limiter;
use crate::mcp::refusal::Refusal;
use crate::registry::{GatewayCatalog, Registry};
use crate::seams::{DecisionRecorder, IdentitySource, UpstreamSource};
use crate::upstream::{OwnerSink, Upstream, UpstreamEvent};
use crate::view::{fingerprint, Mount, Verdict, View};
use crate::GatewayConfig;

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A client's view that outlives one request: a 2025-11-25 session
/// (`Mcp-Session-Id`) or a 2026-07-28 `subscriptions/listen` stream.
pub(crate) struct Session {
    pub id: String,
    pub principal: Principal,
    pub mount: Mount,
    /// The `subscriptions/listen` request id, for listen streams.
    pub listen_id: Option<Value>,
    access: Mutex<Option<Arc<Access>>>,
    /// Where server-to-client messages go (GET stream or listen stream).
    stream: Mutex<Option<mpsc::Sender<Value>>>,
    fingerprint: AtomicU64,
    /// A listen stream that did not ask for tool list changes.
    muted: AtomicBool,
    /// When a request last named this session (ms since the epoch).
    last_seen_ms: AtomicI64,
    /// The capabilities and info the client declared at `initialize`, as
    /// 2026-07-28 `_meta` entries for the upstreams on that wire.
    client: std::sync::OnceLock<Vec<(String, Value)>>,
    /// The negotiated protocol version (session era).
    protocol: std::sync::OnceLock<&'static str>,
    /// Reply streams a client may resume with `Last-Event-ID`.
    pub replay: crate::mcp::replay::ReplayLog,
    /// The session's own GET stream (2025-11-25), resumable likewise.
    pub own_stream: crate::mcp::session_stream::SessionStream,
}

impl Session {
    pub fn new(
        id: String,
        principal: Principal,
        mount: Mount,
        listen_id: Option<Value>,
    ) -> Session {
        Session {
            id,
            principal,
            mount,
            listen_id,
            access: Mutex::new(None),
            stream: Mutex::new(None),
            fingerprint: AtomicU64::new(0),
            muted: AtomicBool::new(false),
            last_seen_ms: AtomicI64::new(now_ms()),
            client: std::sync::OnceLock::new(),
            protocol: std::sync::OnceLock::new(),
            replay: Default::default(),
            own_stream: Default::default(),
        }
    }

    /// Keeps the protocol version negotiated at `initialize`.
    pub fn set_protocol(&self, version: &'static str) {
        let _ = self.protocol.set(version);
    }

    /// Whether this session's reply streams start with a priming event
    /// (an event id and no data), which 2025-11-25 introduced: older
    /// clients may not expect an event without a message.
    pub fn primes_streams(&self) -> bool {
        self.protocol.get().is_some_and(|v| *v >= "2025-11-25")
    }

    /// Keeps what the client declared at `initialize`.
    pub fn set_client(&self, capabilities: Value, info: Option<Value>) {
        let mut entries = vec![(
            crate::upstream::META_CLIENT_CAPABILITIES.to_owned(),
            capabilities,
        )];
        if let Some(info) = info {
            entries.push((crate::upstream::META_CLIENT_INFO.to_owned(), info));
        }
        let _ = self.client.set(entries);
    }

    /// The client's declared capabilities and info as `_meta` entries.
    pub fn client_meta(&self) -> Option<&[(String, Value)]> {
        self.client.get().map(Vec::as_slice)
    }

    /// Idle for longer than `timeout_ms` with no open stream: a client that
    /// went away without DELETE.
    fn abandoned(&self, now: i64, timeout_ms: i64) -> bool {
        now - self.last_seen_ms.load(Ordering::Relaxed) > timeout_ms
            && lock(&self.stream).as_ref().is_none_or(|tx| tx.is_closed())
            && !self.own_stream.has_reader()
    }

    pub fn mute(&self) {
        self.muted.store(true, Ordering::Relaxed);
    }

    /// The cached access for this session, recomputed when the snapshot
    /// revision moved. Nothing else about permissions is cached.
    pub fn access(&self, snapshot: &Snapshot) -> Arc<Access> {
        let mut cached = lock(&self.access);
        match cached.as_ref() {
            Some(a) if a.revision() == snapshot.revision() => Arc::clone(a),
            _ => {
                let fresh = Arc::new(snapshot.access(&self.principal));
                *cached = Some(Arc::clone(&fresh));
                fresh
            }
        }
    }

    pub fn attach_stream(&self, tx: mpsc::Sender<Value>) {
        *lock(&self.stream) = Some(tx);
    }

    /// Ends the stream (the client sees it close).
    pub fn close_stream(&self) {
        lock(&self.stream).take();
        self.own_stream.close();
    }

    /// Sends on the stream (a listen stream, else the session's own GET
    /// stream); false if there is none or it is full/closed.
    pub fn send(&self, msg: Value) -> bool {
        if let Some(tx) = lock(&self.stream).as_ref() {
            return tx.try_send(msg).is_ok();
        }
        self.own_stream.send(&msg)
    }

    pub fn set_fingerprint(&self, fp: u64) -> u64 {
        self.fingerprint.swap(fp, Ordering::Relaxed)
    }

    /// `notifications/tools/list_changed` in this session's era.
    fn list_changed(&self) -> Value {
        match &self.listen_id {
            None => jsonrpc::notification("notifications/tools/list_changed", None),
            Some(id) => jsonrpc::notification(
                "notifications/tools/list_changed",
                Some(json!({"_meta": {"io.modelcontextprotocol/subscriptionId": id}})),
            ),
        }
    }
}

/// Why an in-flight call was cut short.
#[derive(Debug)]
pub(crate) enum CallEnd {
    /// The policy changed and the call is no longer allowed.
    Denied(Verdict),
    /// The client sent `notifications/cancelled`.
    ClientCancelled,
}

/// A `tools/call` forwarded upstream and not yet answered.
pub(crate) struct InflightCall {
    /// The session id, or `key:{id}` for stateless requests.
    pub owner: String,
    pub client_id: String,
    pub principal: Principal,
    pub mount: Mount,
    pub slug: String,
    pub tool: String,
    pub end: Mutex<Option<oneshot::Sender<CallEnd>>>,
}

impl InflightCall {
    pub fn end(&self, why: CallEnd) {
        if let Some(tx) = lock(&self.end).take() {
            let _ = tx.send(why);
        }
    }
}

pub(crate) struct Shared {
    pub config: GatewayConfig,
    pub live: Arc<LivePolicy>,
    pub source: Arc<dyn UpstreamSource>,
    pub recorder: Arc<dyn DecisionRecorder>,
    pub registry: Arc<Registry>,
    pub sessions: RwLock<HashMap<String, Arc<Session>>>,
    pub listeners: Mutex<HashMap<String, Arc<Session>>>,
    /// The counters of rate and concurrency limits.
    pub limiter: Arc<Limiter>,
    /// Live sessions plus listen streams per key, for the per-key cap.
    pub per_key: Mutex<HashMap<KeyId, usize>>,
    pub calls: Mutex<HashMap<u64, Arc<InflightCall>>>,
    pub next_call: AtomicU64,
    pub draining: AtomicBool,
    pub inflight: AtomicUsize,
    pub drained: Notify,
    pub stop: Notify,
    /// Where identity providers come from; unset: bearer keys only.
    pub identity: OnceLock<Arc<dyn IdentitySource>>,
    /// The registered identity providers, rebuilt at every revision.
    pub identities: arc_swap::ArcSwapOption<warden_identity::Identities>,
    /// Principals formed from identity-provider tokens: when the latest
    /// token seen for each expires (ms). Their sessions end then, like a
    /// key's at its expiry, unless a newer token moved it.
    pub token_expiry: Mutex<HashMap<Principal, i64>>,
    /// Each person's own upstream credentials; unset: every server is
    /// `static` (its secret headers only).
    pub vault: OnceLock<warden_vault::Vault>,
    /// Who created each live task of the 2026-07-28 tasks extension.
    pub tasks: crate::upstream::TaskOwners,
}

/// Counts a request as in flight until dropped (graceful shutdown drains).
pub(crate) struct InflightGuard<'a>(&'a Shared);

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        if self.0.inflight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.drained.notify_waiters();
        }
    }
}

impl Shared {
    pub fn catalog(&self) -> GatewayCatalog {
        GatewayCatalog {
            registry: Arc::clone(&self.registry),
        }
    }

    pub fn enter(&self) -> InflightGuard<'_> {
        self.inflight.fetch_add(1, Ordering::SeqCst);
        InflightGuard(self)
    }

    pub fn toolset<'s>(
        &self,
        snapshot: &'s Snapshot,
        access: &Access,
        mount: &Mount,
    ) -> Option<&'s ToolsetRow> {
        match mount {
            Mount::Toolset(slug) => access
                .org()
                .and_then(|org| snapshot.toolset_by_slug(org, slug)),
            _ => None,
        }
    }

    pub fn record(&self, record: DecisionRecord) {
        self.recorder.record(record);
    }

    /// The session named by a request (which counts as activity).
    pub fn session(&self, id: &str) -> Option<Arc<Session>> {
        let session = self
            .sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()?;
        session.last_seen_ms.store(now_ms(), Ordering::Relaxed);
        Some(session)
    }

    /// Takes one of the key's and the gateway's session slots, or says
    /// which cap is reached.
    fn admit_session(&self, key: KeyId) -> Result<(), Refusal> {
        let mut per_key = lock(&self.per_key);
        let limit = self.config.max_sessions_total;
        if self.live_session_count() >= limit {
            metrics::counter!("warden_gateway_sessions_refused_total", "scope" => "total")
                .increment(1);
            return Err(Refusal::SessionLimit {
                scope: "total",
                limit,
            });
        }
        let held = per_key.entry(key).or_insert(0);
        let limit = self.config.max_sessions_per_key;
        if *held >= limit {
            metrics::counter!("warden_gateway_sessions_refused_total", "scope" => "key")
                .increment(1);
            return Err(Refusal::SessionLimit {
                scope: "key",
                limit,
            });
        }
        *held += 1;
        Ok(())
    }

    fn release_session(&self, key: KeyId) {
        let mut per_key = lock(&self.per_key);
        if let Some(held) = per_key.get_mut(&key) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                per_key.remove(&key);
            }
        }
    }

    pub fn insert_session(&self, session: Arc<Session>) -> Result<(), Refusal> {
        self.admit_session(session.principal.key)?;
        self.sessions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(session.id.clone(), session);
        self.update_session_gauge();
        Ok(())
    }

    pub fn remove_session(&self, id: &str) -> Option<Arc<Session>> {
        let removed = self
            .sessions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        if let Some(s) = &removed {
            s.close_stream();
            s.replay.close();
            self.release_session(s.principal.key);
            // Its upstream sessions end with it (HTTP DELETE).
            self.registry.callers.close_session(&s.id);
        }
        self.update_session_gauge();
        removed
    }

    /// Where a caller link of `session` to server `slug` delivers what the
    /// upstream sends outside a response: the session's stream, and only
    /// while the session may still use that server. Every message is
    /// re-decided against the current snapshot (`decide_server`, the same
    /// decision that let the session reach the server), so a session whose
    /// access ended hears nothing more from it; on a prefixing mount a
    /// `resources/updated` URI is exposed as the session knows it.
    pub fn owner_sink(self: &Arc<Self>, session: &Session, slug: &str) -> OwnerSink {
        let shared = Arc::downgrade(self);
        let id = session.id.clone();
        let slug = slug.to_owned();
        Arc::new(move |msg: &Value| {
            let Some(shared) = shared.upgrade() else {
                return false;
            };
            let Some(session) = shared.session(&id) else {
                return false;
            };
            let snapshot = shared.live.snapshot();
            let access = session.access(&snapshot);
            let view = View {
                snapshot: &snapshot,
                access: &access,
                mount: &session.mount,
                toolset: shared.toolset(&snapshot, &access, &session.mount),
                now_ms: now_ms(),
            };
            if !view.decide_server(&slug).allowed {
                tracing::debug!(session = %id, server = %slug, "upstream message dropped: access ended");
                return true;
            }
            let mut msg = msg.clone();
            if session.mount.prefixed()
                && jsonrpc::method(&msg) == "notifications/resources/updated"
            {
                if let Some(uri) = msg.at(&["params", "uri"]).and_then(Value::as_str) {
                    let exposed = crate::view::prefix_uri(&slug, uri);
                    msg["params"]["uri"] = Value::String(exposed);
                }
            }
            session.send(msg)
        })
    }

    pub fn insert_listener(&self, session: Arc<Session>) -> Result<(), Refusal> {
        self.admit_session(session.principal.key)?;
        lock(&self.listeners).insert(session.id.clone(), session);
        self.update_session_gauge();
        Ok(())
    }

    pub fn remove_listener(&self, id: &str) {
        let removed = lock(&self.listeners).remove(id);
        if let Some(s) = removed {
            s.close_stream();
            self.release_session(s.principal.key);
        }
        self.update_session_gauge();
    }

    fn update_session_gauge(&self) {
        let n = self
            .sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
            + lock(&self.listeners).len();
        metrics::gauge!("warden_gateway_live_sessions").set(n as f64);
    }

    pub fn live_session_count(&self) -> usize {
        self.sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
            + lock(&self.listeners).len()
    }

    /// The principal and mount of every live session and listen stream.
    pub fn session_principals(&self) -> Vec<(Principal, Mount)> {
        let sessions = self.sessions.read().unwrap_or_else(|e| e.into_inner());
        let listeners = lock(&self.listeners);
        sessions
            .values()
            .chain(listeners.values())
            .map(|s| (s.principal, s.mount.clone()))
            .collect()
    }

    /// The fingerprint of what `session` sees now.
    pub fn session_fingerprint(&self, snapshot: &Snapshot, session: &Session) -> u64 {
        let access = session.access(snapshot);
        let toolset = self.toolset(snapshot, &access, &session.mount);
        let view = View {
            snapshot,
            access: &access,
            mount: &session.mount,
            toolset,
            now_ms: now_ms(),
        };
        let registry = &self.registry;
        fingerprint(&view, |server| registry.get(server).map(|up| up.catalog()))
    }

    pub fn register_call(&self, call: InflightCall) -> (u64, Arc<InflightCall>) {
        let n = self.next_call.fetch_add(1, Ordering::Relaxed);
        let call = Arc::new(call);
        lock(&self.calls).insert(n, Arc::clone(&call));
        (n, call)
    }

    pub fn unregister_call(&self, n: u64) {
        lock(&self.calls).remove(&n);
    }

    /// Ends the in-flight call the client names in `notifications/cancelled`.
    pub fn cancel_by_client(&self, owner: &str, client_id: &str) {
        let calls = lock(&self.calls);
        for call in calls.values() {
            if call.owner == owner && call.client_id == client_id {
                call.end(CallEnd::ClientCancelled);
            }
        }
    }

    /// After a snapshot swap or a catalog change: ends sessions of keys
    /// that no longer work, tells sessions whose tool list changed, and
    /// cuts off calls that became denied.
    pub fn reconcile(&self, snapshot: &Snapshot) {
        let now = now_ms();
        let sessions: Vec<Arc<Session>> = self
            .sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        let listeners: Vec<Arc<Session>> = lock(&self.listeners).values().cloned().collect();
        let mut notified = 0usize;
        for session in sessions.iter().chain(listeners.iter()) {
            let access = session.access(snapshot);
            let denial = access.principal_denial(now).map(|r| r.code()).or_else(|| {
                self.token_expired(&session.principal, now)
                    .then_some("token_expired")
            });
            if let Some(reason) = denial {
                tracing::info!(session = %session.id, reason, "session ended");
                if session.listen_id.is_some() {
                    end_listen(session, reason, snapshot.revision());
                    self.remove_listener(&session.id);
                } else {
                    self.remove_session(&session.id);
                }
                continue;
            }
            let fp = self.session_fingerprint(snapshot, session);
            if session.set_fingerprint(fp) != fp
                && !session.muted.load(Ordering::Relaxed)
                && session.send(session.list_changed())
            {
                notified += 1;
            }
        }
        if notified > 0 {
            tracing::debug!(
                notified,
                revision = snapshot.revision(),
                "sent tools/list_changed"
            );
        }
        self.recheck_calls(snapshot, now);
        crate::mcp::cancel_denied_tasks(self, snapshot, now);
        self.close_denied_caller_links(snapshot, now);
    }

    /// Closes the upstream sessions of 2026-07-28 callers whose decision for
    /// that server now denies (a session-era caller's close with its session).
    fn close_denied_caller_links(&self, snapshot: &Snapshot, now: i64) {
        let mut accesses: HashMap<Principal, Access> = HashMap::new();
        self.registry
            .callers
            .close_stateless_where(|principal, slug| {
                let access = accesses
                    .entry(*principal)
                    .or_insert_with(|| snapshot.access(principal));
                server_denied(snapshot, access, slug, now)
            });
    }

    fn recheck_calls(&self, snapshot: &Snapshot, now: i64) {
        let calls: Vec<Arc<InflightCall>> = lock(&self.calls).values().cloned().collect();
        if calls.is_empty() {
            return;
        }
        let catalog = self.catalog();
        let mut accesses: HashMap<Principal, Access> = HashMap::new();
        for call in calls {
            let access = accesses
                .entry(call.principal)
                .or_insert_with(|| snapshot.access(&call.principal));
            let toolset = self.toolset(snapshot, access, &call.mount);
            let view = View {
                snapshot,
                access,
                mount: &call.mount,
                toolset,
                now_ms: now,
            };
            let verdict = view.decide_tool(&call.slug, &call.tool, &catalog);
            if !verdict.allowed {
                call.end(CallEnd::Denied(verdict));
            }
        }
    }

    /// Keys can expire without a policy write: check on a timer.
    pub fn check_expiry(&self) {
        let snapshot = self.live.snapshot();
        let now = now_ms();
        self.end_abandoned_sessions(now);
        self.registry
            .callers
            .close_idle_stateless(now, self.config.session_idle_timeout.as_millis() as i64);
        let expired = |s: &Arc<Session>| {
            s.access(&snapshot).principal_denial(now).is_some()
                || self.token_expired(&s.principal, now)
        };
        let any_session = self
            .sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .any(expired);
        let any_listener = lock(&self.listeners).values().any(expired);
        let any_call = lock(&self.calls)
            .values()
            .any(|c| snapshot.principal_denial(&c.principal, now).is_some());
        let any_task_owner = self
            .tasks
            .owners()
            .into_iter()
            .chain(self.registry.callers.stateless_principals())
            .any(|p| snapshot.principal_denial(&p, now).is_some());
        if any_session || any_listener || any_call || any_task_owner {
            self.reconcile(&snapshot);
        }
        lock(&self.token_expiry).retain(|_, t| *t > now);
    }

    /// Has the latest token of this (token-formed) principal expired?
    pub fn token_expired(&self, principal: &Principal, now: i64) -> bool {
        lock(&self.token_expiry)
            .get(principal)
            .is_some_and(|t| now >= *t)
    }

    /// A token for `principal` valid until `expires_at_ms` was admitted.
    pub fn note_token(&self, principal: Principal, expires_at_ms: i64) {
        let mut map = lock(&self.token_expiry);
        let slot = map.entry(principal).or_insert(expires_at_ms);
        *slot = (*slot).max(expires_at_ms);
    }

    /// Re-reads the identity providers (at start and every revision).
    pub async fn reload_identities(&self) {
        let Some(source) = self.identity.get() else {
            return;
        };
        match source.load_providers().await {
            Ok(configs) => {
                let built = match self.identities.load_full() {
                    Some(current) => current.reconfigure(configs),
                    None => warden_identity::Identities::new(configs, Default::default()),
                };
                match built {
                    Ok(ids) => self.identities.store(Some(Arc::new(ids))),
                    Err(e) => tracing::warn!(
                        error = %e,
                        "identity providers not usable; keeping the current ones"
                    ),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not load identity providers; keeping the current ones")
            }
        }
    }

    /// Ends sessions idle past `session_idle_timeout` with no open stream,
    /// so clients that vanish without DELETE do not hold memory forever.
    fn end_abandoned_sessions(&self, now: i64) {
        let timeout_ms = self.config.session_idle_timeout.as_millis() as i64;
        let abandoned: Vec<String> = self
            .sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|s| s.abandoned(now, timeout_ms))
            .map(|s| s.id.clone())
            .collect();
        for id in abandoned {
            tracing::debug!(session = %id, "ending idle session");
            metrics::counter!("warden_gateway_sessions_expired_total").increment(1);
            self.remove_session(&id);
        }
    }

    pub async fn reload_upstreams(&self) {
        match self.source.load_upstreams().await {
            Ok(configs) => self.registry.apply(configs),
            Err(e) => {
                tracing::warn!(error = %e, "could not reload upstream configs; keeping the current ones")
            }
        }
    }

    /// Closes every stream (for shutdown).
    pub fn close_all_streams(&self) {
        let ids: Vec<String> = self
            .sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        for id in ids {
            if let Some(s) = self.session(&id) {
                s.close_stream();
            }
        }
        let listeners: Vec<Arc<Session>> = lock(&self.listeners).drain().map(|(_, s)| s).collect();
        for l in &listeners {
            self.release_session(l.principal.key);
        }
        for l in listeners {
            if let Some(id) = &l.listen_id {
                l.send(jsonrpc::result(
                    id.clone(),
                    json!({"resultType": "complete", "_meta": {"io.modelcontextprotocol/subscriptionId": id}}),
                ));
            }
            l.close_stream();
        }
    }
}

/// Ends a listen stream because access ended: the listen request gets an
/// error response naming the reason, then the stream closes.
fn end_listen(session: &Session, reason: &str, revision: u64) {
    if let Some(id) = &session.listen_id {
        session.send(jsonrpc::error(
            id.clone(),
            jsonrpc::code::ACCESS_ENDED,
            format!("access ended: {reason}"),
            Some(json!({"reason": reason, "revision": revision})),
        ));
    }
    session.close_stream();
}

/// The task that follows policy revisions, catalog changes and the clock.
///
/// `revisions` must be subscribed before the upstream configs were first
/// loaded, so a write that lands in between still triggers a reload.
pub(crate) async fn run_live(
    shared: Arc<Shared>,
    mut revisions: tokio::sync::watch::Receiver<u64>,
    mut events: mpsc::UnboundedReceiver<UpstreamEvent>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    metrics::gauge!("warden_policy_revision").set(shared.live.revision() as f64);
    loop {
        tokio::select! {
            changed = revisions.changed() => {
                if changed.is_err() {
                    return;
                }
                let snapshot = shared.live.snapshot();
                metrics::gauge!("warden_policy_revision").set(snapshot.revision() as f64);
                shared.reconcile(&snapshot);
                shared.reload_upstreams().await;
                shared.reload_identities().await;
            }
            event = events.recv() => {
                let Some(UpstreamEvent::CatalogChanged(server)) = event else { return };
                tracing::debug!(%server, "tool catalog changed");
                // Coalesce a burst of catalog changes into one pass.
                while events.try_recv().is_ok() {}
                let snapshot = shared.live.snapshot();
                shared.reconcile(&snapshot);
            }
            _ = tick.tick() => shared.check_expiry(),
            _ = shared.stop.notified() => return,
        }
    }
}

/// Does the policy now refuse this principal server `slug` as a whole (the
/// principal refused, or `decide_server` on its one-server endpoint
/// denying)? For what outlives a request: tasks and callers' upstream
/// sessions.
pub(crate) fn server_denied(snapshot: &Snapshot, access: &Access, slug: &str, now: i64) -> bool {
    if access.principal_denial(now).is_some() {
        return true;
    }
    let mount = Mount::Server(slug.to_owned());
    let view = View {
        snapshot,
        access,
        mount: &mount,
        toolset: None,
        now_ms: now,
    };
    !view.decide_server(slug).allowed
}

/// Used by the front door to find an upstream for a server id.
pub(crate) fn upstream_for(shared: &Shared, verdict: &Verdict) -> Option<Arc<Upstream>> {
    verdict.server.and_then(|s| shared.registry.get(s))
}

/// The upstream of a server the verdict allows; nothing for a denial.
pub(crate) fn allowed_upstream(shared: &Shared, verdict: &Verdict) -> Option<Arc<Upstream>> {
    upstream_for(shared, verdict).filter(|_| verdict.allowed)
}
