//! Forwarding: one permitted request to its upstream and the answer back,
//! as one JSON body or, when the upstream talks first (progress, logging,
//! requests to the client) or is slow, as an SSE stream.

use std::sync::Arc;
use std::time::Instant;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;
use warden_store::{DecisionOutcome, DecisionRecord};

use super::authorize::{Permit, Subject};
use super::dispatch::Ctx;
use super::limits::LimitPermit;
use super::refusal::{json_response, Refusal};
use super::replay::{self, ReplayStream};
use super::stream::{sse_unbounded, sse_unbounded_after};
use crate::error::GatewayError;
use crate::gateway::{CallEnd, InflightCall, Shared};
use crate::jsonrpc;
use crate::telemetry;
use crate::upstream::{ClientSink, Upstream};
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
    /// The allowed decision, already durable; its outcome is recorded on drop.
    record: Option<DecisionRecord>,
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
        if let Some(record) = self.record.take() {
            // The decision itself was made durable before the call was
            // forwarded; what is known only now follows, best effort.
            let latency_us = self.request_started.elapsed().as_micros() as u64;
            tracing::debug!(
                decision_id = %record.decision_id,
                server = %record.server_slug,
                tool = record.tool.as_deref().unwrap_or(""),
                latency_us,
                revision = record.revision,
                completed = self.upstream_done,
                "tools/call allowed"
            );
            self.shared
                .recorder
                .record_outcome(DecisionOutcome::of(&record, latency_us));
        }
    }
}

impl Ctx {
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
                    (None, Some(reply)) => json_response(ctx.reply_status(&reply), reply.to_string()),
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
                Some(reply) => json_response(ctx.reply_status(&reply), reply.to_string()),
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
        let code = reply.pointer("/error/code").and_then(Value::as_i64);
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
        // lose nothing that reached an upstream.
        if let Some(record) = &permit.record {
            if let Err(e) = self.shared.recorder.record_durable(record.clone()).await {
                tracing::error!(decision_id = %permit.decision_id, error = %e, "call refused: its decision could not be recorded");
                return Some(
                    Refusal::AuditUnavailable {
                        decision_id: permit.decision_id,
                    }
                    .to_message(id),
                );
            }
        }
        let upstream = Arc::clone(&permit.upstream);
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
            record: permit.record.take(),
            request_started: self.started,
            upstream_done: false,
            _limit: limit,
        };
        // Trace: a client span for the upstream exchange; its context goes
        // upstream as HTTP headers (upstream/http.rs) and, where the client
        // used `_meta` or the upstream speaks 2026-07-28, in `_meta`.
        let span = telemetry::upstream_span(upstream.slug(), method);
        let mut params = params;
        if upstream.is_stateless() {
            self.caller_meta(&mut params);
        }
        if telemetry::enabled() && (telemetry::has_meta_trace(&params) || upstream.is_stateless()) {
            telemetry::inject_meta(&span, &mut params);
        }
        let outcome = match upstream
            .start_request_for(upstream_id, method, Some(params), sink, self.declared())
            .instrument(span.clone())
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
                metrics::counter!("warden_upstream_errors_total", "server" => upstream.slug().to_owned(), "kind" => e.kind()).increment(1);
                tracing::warn!(decision_id = %permit.decision_id, server = %upstream.slug(), method, error = %e, "upstream request failed");
                Some(Refusal::Upstream(e).to_message(id))
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
