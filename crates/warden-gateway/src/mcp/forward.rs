//! Forwarding: one permitted request to its upstream and the answer back,
//! as one JSON body or, when the upstream talks first (progress, logging,
//! requests to the client) or is slow, as an SSE stream.

use std::sync::Arc;
use std::time::Instant;

use axum::http::StatusCode;
use axum::response::Response;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;
use warden_store::DecisionOutcome;

use super::authorize::{Permit, Subject};
use super::dispatch::Ctx;
use super::limits::LimitPermit;
use super::refusal::{json_response, Refusal};
use super::replay::{self, ReplayStream};
use super::stream::{sse_unbounded, sse_unbounded_after};
use crate::error::GatewayError;
use crate::gateway::{CallEnd, InflightCall, Shared};
use crate::jsonrpc;
use crate::jsonrpc::ValueExt;
use crate::telemetry;
use crate::upstream::{stateless_key, CallerInit, ClientSink, Upstream};
use crate::view::prefix_name;

/// A forwarded request still unanswered after this long is answered as an
/// SSE stream even if the upstream has sent nothing else yet.
const STREAM_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// What a forwarded request does to the upstream's result on the way back.
pub(crate) type Finish = Box<dyn FnOnce(&mut Value) + Send>;

/// One request to forward under its permit.
pub(crate) struct Forward {
    pub id: Value,
    pub method: &'static str,
    pub params: Value,
    pub permit: Permit,
    /// Places held in concurrency limits, given back when the call ends.
    pub limit: LimitPermit,
    pub finish: Finish,
}

enum Outcome {
    Response(Value),
    Failed(GatewayError),
    Ended(CallEnd),
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

/// Runs the rest of an exchange whose reply is a resumable stream: every
/// message and the reply go into the stream's log, read by whichever
/// connection the client has (or none for a while). The session ending
/// drops the exchange, whose guard audits and cancels it upstream.
async fn run_into_replay<F>(
    mut exchange: F,
    mut rx: mpsc::UnboundedReceiver<Value>,
    stream: Arc<ReplayStream>,
) where
    F: std::future::Future<Output = Option<Value>> + Send + Unpin + 'static,
{
    let closed = stream.closed();
    tokio::pin!(closed);
    loop {
        tokio::select! {
            biased;
            _ = &mut closed => return,
            Some(msg) = rx.recv() => stream.push(&msg),
            reply = &mut exchange => {
                while let Ok(msg) = rx.try_recv() {
                    stream.push(&msg);
                }
                if let Some(reply) = reply {
                    stream.push(&reply);
                }
                stream.finish();
                return;
            }
        }
    }
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
    /// The allowed decision's row (already durable), whose outcome is
    /// recorded on drop with the call's latency.
    outcome: Option<DecisionOutcome>,
    request_started: Instant,
    upstream_done: bool,
    _limit: LimitPermit,
}

impl ExchangeGuard<'_> {
    /// The upstream answered or the call ended: nothing left to cancel
    /// there, and cut-offs no longer concern this call.
    fn upstream_finished(&mut self) {
        self.upstream_done = true;
        if let Some(n) = self.call_no.take() {
            self.shared.unregister_call(n);
        }
    }
}

impl Drop for ExchangeGuard<'_> {
    fn drop(&mut self) {
        if let Some(n) = self.call_no.take() {
            self.shared.unregister_call(n);
        }
        if !self.upstream_done {
            self.upstream
                .cancel(self.upstream_id, "the client went away");
        }
        if let Some(mut outcome) = self.outcome.take() {
            // The decision itself was made durable before the call was
            // forwarded; what is known only now follows, best effort.
            outcome.latency_us = self.request_started.elapsed().as_micros() as u64;
            tracing::debug!(
                decision_id = %outcome.decision_id,
                server = %self.upstream.slug(),
                latency_us = outcome.latency_us,
                completed = self.upstream_done,
                "tools/call allowed"
            );
            self.shared.recorder.record_outcome(outcome);
        }
    }
}

/// Why a call goes no further than the vault.
enum NoCredentials {
    Refused(Refusal),
    /// 2026-07-28: an `input_required` result asking for a URL elicitation.
    InputRequired(Value),
}

impl NoCredentials {
    fn into_message(self, id: Value) -> Value {
        match self {
            NoCredentials::Refused(r) => r.to_message(id),
            NoCredentials::InputRequired(result) => jsonrpc::result(id, result),
        }
    }
}

/// Keys of the `inputResponses` Warden asked for (never forwarded).
const CONSENT_INPUT_PREFIX: &str = "warden-connect-";

impl Ctx {
    /// The caller's own credentials for this permit's server, from the
    /// vault: `None` for a `static` server (or no vault). Asked after the
    /// decision allowed the call; the token goes on this request only.
    async fn caller_credentials(
        &self,
        permit: &Permit,
        params: &mut Value,
    ) -> Result<Option<HeaderMap>, NoCredentials> {
        let Some(vault) = self.shared.vault.get() else {
            return Ok(None);
        };
        // The answers to Warden's own consent elicitation go no further.
        if let Some(responses) = params
            .get_mut("inputResponses")
            .and_then(Value::as_object_mut)
        {
            responses.retain(|k, _| !k.starts_with(CONSENT_INPUT_PREFIX));
            if responses.is_empty() {
                if let Some(p) = params.as_object_mut() {
                    p.remove("inputResponses");
                }
            }
        }
        let config = &permit.upstream.config;
        let Some(org) = self.snapshot.key(self.principal.key).map(|k| k.org) else {
            return Ok(None);
        };
        let caller = warden_vault::Caller {
            org,
            key: self.principal.key,
            end_user: self.principal.end_user,
            sign_in: self.sign_in.as_ref().map(|s| (s.0.clone(), s.1.clone())),
        };
        let server = warden_vault::UpstreamRef {
            id: config.server,
            slug: config.slug.clone(),
            url: match &config.transport {
                warden_store::Transport::Http { url } => Some(url.clone()),
                warden_store::Transport::Stdio { .. } => None,
            },
        };
        let refused = |code: &'static str, message: String| {
            NoCredentials::Refused(Refusal::Credentials {
                server: config.slug.clone(),
                code,
                message,
                decision_id: permit.decision_id.clone(),
            })
        };
        match vault.credentials_for(&caller, &server).await {
            Ok(warden_vault::Credentials::Static) => Ok(None),
            Ok(warden_vault::Credentials::Headers(headers)) => {
                let mut map = HeaderMap::new();
                for (name, value) in headers {
                    let (Ok(name), Ok(mut value)) = (
                        axum::http::HeaderName::from_bytes(name.as_bytes()),
                        axum::http::HeaderValue::from_str(value.expose()),
                    ) else {
                        return Err(refused(
                            "upstream_auth_refused",
                            "the authorization server issued a token that is not a header value"
                                .into(),
                        ));
                    };
                    value.set_sensitive(true);
                    map.insert(name, value);
                }
                Ok(Some(map))
            }
            Ok(warden_vault::Credentials::NeedsConsent { url }) => {
                let elicitation_id = format!("{CONSENT_INPUT_PREFIX}{}", uuid::Uuid::new_v4());
                tracing::info!(decision_id = %permit.decision_id, server = %config.slug, "call needs the person's consent upstream");
                if self.stateless && self.declares_url_elicitation(params) {
                    let mut requests = serde_json::Map::new();
                    requests.insert(
                        elicitation_id.clone(),
                        json!({
                            "method": "elicitation/create",
                            "params": super::refusal::consent_elicitation(&config.slug, &url, &elicitation_id),
                        }),
                    );
                    return Err(NoCredentials::InputRequired(json!({
                        "resultType": "input_required",
                        "inputRequests": requests,
                    })));
                }
                Err(NoCredentials::Refused(Refusal::ConsentRequired {
                    server: config.slug.clone(),
                    url,
                    elicitation_id,
                    stateless: self.stateless,
                    decision_id: permit.decision_id.clone(),
                }))
            }
            Err(e) => {
                tracing::info!(decision_id = %permit.decision_id, server = %config.slug, code = e.code(), error = %e, "no usable upstream credentials");
                Err(refused(e.code(), e.to_string()))
            }
        }
    }

    /// Whether a 2026-07-28 request's caller declared URL-mode elicitation.
    fn declares_url_elicitation(&self, params: &Value) -> bool {
        params
            .get("_meta")
            .and_then(|m| m.get(crate::upstream::META_CLIENT_CAPABILITIES))
            .and_then(|c| c.at(&["elicitation", "url"]))
            .is_some()
    }

    /// Forwards one permitted request upstream and answers the client.
    pub(crate) async fn forward(self, fwd: Forward) -> Response {
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
            let mut exchange = Box::pin(
                async move {
                    let _inflight = task_ctx.shared.enter();
                    task_ctx.exchange(fwd, Some(sink)).await
                }
                .instrument(telemetry::current_span()),
            );
            tokio::select! {
                biased;
                reply = &mut exchange => match (rx.try_recv().ok(), reply) {
                    (None, Some(reply)) => json_response(ctx.reply_status(&reply), jsonrpc::to_body(&reply)),
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
                Some(first) = rx.recv() => ctx.stream_the_rest(exchange, tx, rx, Some(first)),
                // A slow call: open the stream now, so clients whose read
                // timeout covers the response headers keep waiting.
                _ = tokio::time::sleep(STREAM_AFTER) => ctx.stream_the_rest(exchange, tx, rx, None),
            }
        } else {
            let _inflight = ctx.shared.enter();
            let id = fwd.id.clone();
            match ctx.exchange(fwd, None).await {
                Some(reply) => json_response(ctx.reply_status(&reply), jsonrpc::to_body(&reply)),
                None => Refusal::Cancelled.into_response(id),
            }
        }
    }

    /// The reply became a stream: the rest of the exchange runs in its own
    /// task. In a session, the stream is resumable (its events are kept
    /// for `Last-Event-ID`) and a dropped connection does not end the
    /// call; without one, the client going away ends it.
    fn stream_the_rest<F>(
        &self,
        exchange: F,
        tx: mpsc::UnboundedSender<Value>,
        rx: mpsc::UnboundedReceiver<Value>,
        first: Option<Value>,
    ) -> Response
    where
        F: std::future::Future<Output = Option<Value>> + Send + Unpin + 'static,
    {
        let session = if self.stateless {
            None
        } else {
            self.shared.session(&self.owner)
        };
        let Some(session) = session else {
            finish_streaming(exchange, tx);
            return match first {
                Some(first) => sse_unbounded_after(first, rx),
                None => sse_unbounded(rx),
            };
        };
        let (n, stream) = session.replay.open();
        let prime = session.primes_streams();
        drop(session);
        if let Some(first) = first {
            stream.push(&first);
        }
        // The reply goes into the stream's log, not through `tx`.
        drop(tx);
        tokio::spawn(run_into_replay(exchange, rx, Arc::clone(&stream)));
        replay::sse_response(n, stream, None, prime)
    }

    /// The HTTP status of a forwarded answer sent as one JSON body: on the
    /// 2026-07-28 wire a missing client capability is a 400, as the
    /// upstream answered it; everything else is a 200.
    fn reply_status(&self, reply: &Value) -> StatusCode {
        let code = reply.at(&["error", "code"]).and_then(Value::as_i64);
        if self.stateless && code == Some(jsonrpc::code::MISSING_CLIENT_CAPABILITY) {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        }
    }

    /// Registers a `tools/call` so that a policy change or the client's
    /// `notifications/cancelled` can end it.
    fn register_call(
        &self,
        permit: &Permit,
        id: &Value,
    ) -> Option<(u64, oneshot::Receiver<CallEnd>)> {
        let tool = permit.tool.clone()?;
        let (end_tx, end_rx) = oneshot::channel();
        let (call_no, _call) = self.shared.register_call(InflightCall {
            owner: self.owner.clone(),
            client_id: jsonrpc::id_key(id),
            principal: self.principal,
            mount: self.mount.clone(),
            slug: permit.slug.clone(),
            tool,
            end: std::sync::Mutex::new(Some(end_tx)),
        });
        Some((call_no, end_rx))
    }

    /// On the 2026-07-28 wire an upstream is told, per request, what the
    /// caller declared: a stateless caller's own `_meta` travels with its
    /// params already; a session's capabilities and info from its
    /// `initialize` are added here. Never Warden's: an upstream must not
    /// ask a client for what it did not declare.
    fn caller_meta(&self, params: &mut Value) {
        if self.stateless {
            return;
        }
        let declared = self
            .shared
            .session(&self.owner)
            .and_then(|s| s.client_meta().map(<[(String, Value)]>::to_vec));
        let entries = declared.unwrap_or_else(|| {
            vec![(
                crate::upstream::META_CLIENT_CAPABILITIES.to_owned(),
                json!({}),
            )]
        });
        jsonrpc::merge_meta(params, entries);
    }

    /// The client capabilities the caller declared, for the requests an
    /// upstream sends it: a session's from its `initialize`; none at all for
    /// a 2026-07-28 caller, whose response stream carries no request from
    /// the server (that wire asks through `InputRequiredResult` instead).
    fn declared(&self) -> Option<Value> {
        if self.stateless {
            return Some(json!({}));
        }
        let session = self.shared.session(&self.owner)?;
        session.client_meta().and_then(|entries| {
            entries
                .iter()
                .find(|(k, _)| k == crate::upstream::META_CLIENT_CAPABILITIES)
                .map(|(_, v)| v.clone())
        })
    }

    /// The connection a permitted request goes out on. A session's request
    /// to a session-era HTTP upstream goes on that session's own upstream
    /// session (a caller link, opened on first use with the client's own
    /// capabilities and info); a 2026-07-28 caller's on the link of its
    /// principal and declared capabilities (`params._meta`); everything
    /// else, and every request when per-caller sessions are off, on the
    /// server's shared connection. The decision was made before, on the
    /// shared connection's catalog: the link only chooses the wire.
    ///
    /// `own_credentials`: the caller's own headers from the vault, kept by a
    /// link opened now (its GET stream and closing DELETE carry them); every
    /// request still carries the current ones (a refreshed token).
    async fn link_for(
        &self,
        shared: &Arc<Upstream>,
        own_credentials: Option<HeaderMap>,
        params: &Value,
    ) -> Result<Arc<Upstream>, Refusal> {
        let callers = &self.shared.registry.callers;
        if !callers.enabled() || shared.http_link().is_none() {
            return Ok(Arc::clone(shared));
        }
        // Which era the upstream speaks is known once it is connected; one
        // that cannot connect fails on the shared connection as before.
        if shared.ensure_ready().await.is_err() || !shared.takes_caller_links() {
            return Ok(Arc::clone(shared));
        }
        if self.stateless {
            return self.stateless_link(shared, own_credentials, params);
        }
        let Some(session) = self.shared.session(&self.owner) else {
            return Ok(Arc::clone(shared));
        };
        callers
            .get_or_open(&session.id, shared, || {
                let declared = session.client_meta().unwrap_or_default();
                let find = |key: &str| {
                    declared
                        .iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| v.clone())
                };
                CallerInit {
                    capabilities: find(crate::upstream::META_CLIENT_CAPABILITIES)
                        .unwrap_or_else(|| json!({})),
                    client_info: find(crate::upstream::META_CLIENT_INFO),
                    extra_headers: own_credentials.unwrap_or_default(),
                    owner: self.shared.owner_sink(&session, shared.slug()),
                }
            })
            .map_err(|full| Refusal::UpstreamSessionsFull {
                server: full.server,
                limit: full.limit,
            })
    }

    /// A 2026-07-28 caller's own upstream session on a session-era server,
    /// keyed by its principal and the capabilities and info its request
    /// declares; it hears nothing outside its responses (no stream).
    fn stateless_link(
        &self,
        shared: &Arc<Upstream>,
        own_credentials: Option<HeaderMap>,
        params: &Value,
    ) -> Result<Arc<Upstream>, Refusal> {
        let meta = params.get("_meta");
        let capabilities = meta
            .and_then(|m| m.get(crate::upstream::META_CLIENT_CAPABILITIES))
            .filter(|c| c.is_object())
            .cloned()
            .unwrap_or_else(|| json!({}));
        let client_info = meta
            .and_then(|m| m.get(crate::upstream::META_CLIENT_INFO))
            .filter(|c| c.is_object())
            .cloned();
        let key = stateless_key(&self.principal, &capabilities, client_info.as_ref());
        let callers = &self.shared.registry.callers;
        let link = callers
            .get_or_open(&key, shared, || CallerInit {
                capabilities,
                client_info,
                extra_headers: own_credentials.unwrap_or_default(),
                owner: Arc::new(|_: &Value| false),
            })
            .map_err(|full| Refusal::UpstreamSessionsFull {
                server: full.server,
                limit: full.limit,
            })?;
        callers.touch_stateless(&key, self.principal, crate::gateway::now_ms());
        Ok(link)
    }

    async fn exchange(&self, fwd: Forward, sink: Option<ClientSink>) -> Option<Value> {
        let Forward {
            id,
            method,
            params,
            mut permit,
            limit,
            finish,
        } = fwd;
        // No call is forwarded before its decision is durable: a crash may
        // lose nothing that reached an upstream. The record goes to the
        // recorder; what finds its row for the outcome stays here.
        let mut outcome = None;
        if let Some(record) = permit.record.take() {
            outcome = Some(DecisionOutcome::of(&record, 0));
            if let Err(e) = self.shared.recorder.record_durable(record).await {
                tracing::error!(decision_id = %permit.decision_id, error = %e, "call refused: its decision could not be recorded");
                return Some(
                    Refusal::AuditUnavailable {
                        decision_id: permit.decision_id,
                    }
                    .to_message(id),
                );
            }
        }
        // The decision is made (and durable): only now is the vault asked
        // for the caller's own upstream credentials. It never decides; a
        // stored token cannot make a denied call pass.
        let mut params = params;
        let caller_headers = match self.caller_credentials(&permit, &mut params).await {
            Ok(h) => h,
            Err(answer) => return Some(answer.into_message(id)),
        };
        let sent_own_credentials = caller_headers.is_some();
        let upstream = match self
            .link_for(&permit.upstream, caller_headers.clone(), &params)
            .await
        {
            Ok(link) => link,
            Err(refusal) => {
                tracing::warn!(decision_id = %permit.decision_id, server = %permit.slug, reason = refusal.reason(), "call refused: no upstream session for this caller");
                if let Some(mut outcome) = outcome {
                    outcome.latency_us = self.started.elapsed().as_micros() as u64;
                    self.shared.recorder.record_outcome(outcome);
                }
                return Some(refusal.to_message(id));
            }
        };
        let upstream_id = upstream.next_request_id();
        let started = Instant::now();
        let (call_no, end_rx) = match self.register_call(&permit, &id) {
            Some((n, rx)) => (Some(n), Some(rx)),
            None => (None, None),
        };
        let mut guard = ExchangeGuard {
            shared: &self.shared,
            call_no,
            upstream: &upstream,
            upstream_id,
            outcome,
            request_started: self.started,
            upstream_done: false,
            _limit: limit,
        };
        // Trace: a client span for the upstream exchange; its context goes
        // upstream as HTTP headers (upstream/http.rs) and, where the client
        // used `_meta` or the upstream speaks 2026-07-28, in `_meta`.
        let span = telemetry::upstream_span(upstream.slug(), method);
        if upstream.is_stateless() {
            self.caller_meta(&mut params);
        }
        if telemetry::enabled() && (telemetry::has_meta_trace(&params) || upstream.is_stateless()) {
            telemetry::inject_meta(&span, &mut params);
        }
        let started_request = match caller_headers {
            None => {
                upstream
                    .start_request_for(upstream_id, method, Some(params), sink, self.declared())
                    .instrument(span.clone())
                    .await
            }
            own => {
                upstream
                    .start_request_with(
                        upstream_id,
                        method,
                        Some(params),
                        sink,
                        self.declared(),
                        own,
                    )
                    .instrument(span.clone())
                    .await
            }
        };
        let outcome = match started_request {
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
        upstream
            .duration_histogram()
            .record(started.elapsed().as_secs_f64());
        let error = match &outcome {
            Outcome::Failed(e) => Some(e.kind()),
            _ => None,
        };
        telemetry::record_upstream(&span, started.elapsed(), error);
        drop(span);
        let reply = match outcome {
            Outcome::Response(mut resp) => {
                resp["id"] = id.clone();
                if let Some(result) = resp.get_mut("result") {
                    upstream.note_task(result);
                    if let Err(refusal) = self.keep_task(&upstream, &permit, result) {
                        drop(guard);
                        return Some(refusal.to_message(id));
                    }
                }
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
                metrics::counter!("warden_upstream_errors_total", "server" => upstream.slug().to_owned(), "kind" => e.kind()).increment(1);
                if sent_own_credentials
                    && matches!(e, GatewayError::UpstreamStatus { status: 401, .. })
                {
                    // The person's token was refused upstream (revoked,
                    // expired early, or not for this upstream): the next
                    // call refreshes it (or exchanges again), or asks for
                    // consent again. The caller is told it was their token.
                    if let (Some(vault), Some(org)) = (
                        self.shared.vault.get(),
                        self.snapshot.key(self.principal.key).map(|k| k.org),
                    ) {
                        let caller = warden_vault::Caller {
                            org,
                            key: self.principal.key,
                            end_user: self.principal.end_user,
                            sign_in: None,
                        };
                        vault.rejected(&caller, upstream.config.server).await;
                    }
                    tracing::info!(decision_id = %permit.decision_id, server = %upstream.slug(), method, "the upstream refused the person's own token");
                    Some(
                        Refusal::Credentials {
                            server: upstream.slug().to_owned(),
                            code: "upstream_token_rejected",
                            message: format!(
                                "the upstream refused the token sent for this person (HTTP 401 from {})",
                                upstream.slug()
                            ),
                            decision_id: permit.decision_id.clone(),
                        }
                        .to_message(id),
                    )
                } else {
                    tracing::warn!(decision_id = %permit.decision_id, server = %upstream.slug(), method, error = %e, "upstream request failed");
                    Some(Refusal::Upstream(e).to_message(id))
                }
            }
            Outcome::Ended(CallEnd::ClientCancelled) => None,
            Outcome::Ended(CallEnd::Denied(verdict)) => {
                // The policy moved while the call ran: a new decision.
                let tool = permit.tool.as_deref().unwrap_or("");
                let exposed = if self.mount.prefixed() {
                    prefix_name(&permit.slug, tool)
                } else {
                    tool.to_owned()
                };
                let subject = Subject {
                    method,
                    what: "tool",
                    exposed: &exposed,
                    slug: &permit.slug,
                    tool: permit.tool.as_deref(),
                };
                Some(self.deny(&subject, verdict).to_message(id))
            }
        };
        drop(guard);
        reply
    }
}
