//! Trace spans of the MCP pipeline, exported over OpenTelemetry by the
//! binary when it is configured to (`otlp_endpoint`).
//!
//! Off by default: until [`enable`] is called every span here is
//! [`Span::none`] and nothing is parsed or injected, so an untraced gateway
//! does no more work than before. The spans carry ids only: principal ids
//! (never key material or bearer tokens), server and tool names, decision
//! ids and reason codes. Headers and message bodies are never recorded.
//!
//! Trace context (W3C `traceparent`/`tracestate`) is taken from the client's
//! `params._meta` when it carries a `traceparent` (the MCP convention),
//! else from its HTTP headers; it is passed upstream as HTTP headers
//! ([`current_headers`], for HTTP upstreams) and, when the request carried
//! `_meta` trace context or the upstream speaks the 2026-07-28 revision, in
//! the forwarded `params._meta` ([`inject_meta`]).

use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use serde_json::{Map, Value};
use tracing::field::Empty;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::jsonrpc::ValueExt;
use crate::view::{Mount, Verdict};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// The `tracing` target of every span here: a log layer can leave them out.
pub const TARGET: &str = "warden::otel";

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// Turns the pipeline's spans on (the binary calls this once an exporter
/// and the W3C propagator are installed).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

#[inline]
pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct Meta<'a>(&'a Map<String, Value>);

impl Extractor for Meta<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

struct MetaOut<'a>(&'a mut Map<String, Value>);

impl Injector for MetaOut<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), Value::String(value));
    }
}

struct Pairs(Vec<(&'static str, String)>);

impl Injector for Pairs {
    fn set(&mut self, key: &str, value: String) {
        let key = match key {
            TRACEPARENT => TRACEPARENT,
            TRACESTATE => TRACESTATE,
            _ => return,
        };
        self.0.push((key, value));
    }
}

fn meta_of(msg: &Value) -> Option<&Map<String, Value>> {
    msg.at(&["params", "_meta"]).and_then(Value::as_object)
}

/// Whether a message's `params._meta` carries W3C trace context.
pub(crate) fn has_meta_trace(params: &Value) -> bool {
    params
        .get("_meta")
        .and_then(Value::as_object)
        .is_some_and(|m| m.get(TRACEPARENT).is_some_and(Value::is_string))
}

/// The span of one MCP request (`mcp.request`, kind server), a child of the
/// client's span when the request names one.
pub(crate) fn request_span(headers: &HeaderMap, msg: &Value, method: &str, mount: &Mount) -> Span {
    if !enabled() {
        return Span::none();
    }
    let mount = match mount {
        Mount::All => "/mcp".to_owned(),
        Mount::Server(slug) => format!("/mcp/servers/{slug}"),
        Mount::Toolset(slug) => format!("/mcp/toolsets/{slug}"),
    };
    let span = tracing::info_span!(
        target: TARGET,
        "mcp.request",
        otel.kind = "server",
        mcp.method = method,
        mcp.mount = %mount,
        warden.org_id = Empty,
        warden.key_id = Empty,
        warden.end_user_id = Empty,
        warden.agent_id = Empty,
        warden.server = Empty,
        warden.tool = Empty,
        warden.decision_id = Empty,
        warden.reason = Empty,
        warden.revision = Empty,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|p| match meta_of(msg) {
        Some(meta) if meta.get(TRACEPARENT).is_some() => p.extract(&Meta(meta)),
        _ => p.extract(&Headers(headers)),
    });
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    span
}

/// Records the principal's ids on the current request span.
pub(crate) fn record_principal(p: &warden_policy::Principal, org: Option<warden_policy::OrgId>) {
    if !enabled() {
        return;
    }
    let span = Span::current();
    if let Some(org) = org {
        span.record("warden.org_id", org.0);
    }
    span.record("warden.key_id", p.key.0);
    if let Some(u) = p.end_user {
        span.record("warden.end_user_id", u.0);
    }
    if let Some(a) = p.agent {
        span.record("warden.agent_id", a.0);
    }
}

/// The span of one authorization (`warden.decision`), a child of the
/// current (request) span.
pub(crate) fn decision_span(method: &str) -> Span {
    if !enabled() {
        return Span::none();
    }
    tracing::info_span!(
        target: TARGET,
        "warden.decision",
        mcp.method = method,
        warden.server = Empty,
        warden.tool = Empty,
        warden.decision_id = Empty,
        warden.allowed = Empty,
        warden.reason = Empty,
        warden.revision = Empty,
    )
}

/// Records a verdict on `span`.
pub(crate) fn record_verdict(
    span: &Span,
    decision_id: &str,
    server: &str,
    tool: Option<&str>,
    verdict: &Verdict,
) {
    if !enabled() {
        return;
    }
    span.record("warden.server", server);
    if let Some(tool) = tool {
        span.record("warden.tool", tool);
    }
    if !decision_id.is_empty() {
        span.record("warden.decision_id", decision_id);
    }
    span.record("warden.allowed", verdict.allowed);
    if let Some(reason) = verdict.reason.filter(|_| !verdict.allowed) {
        span.record("warden.reason", reason);
    }
    // As i64: the OpenTelemetry layer would export a u64 as a string.
    span.record(
        "warden.revision",
        i64::try_from(verdict.revision).unwrap_or(i64::MAX),
    );
}

/// Records a refusal's reason code on the current span.
pub(crate) fn record_reason(reason: &str) {
    if enabled() {
        Span::current().record("warden.reason", reason);
    }
}

/// The current span when tracing is on, else none: what a spawned task
/// is instrumented with so that its upstream requests carry the trace.
pub(crate) fn current_span() -> Span {
    if enabled() {
        Span::current()
    } else {
        Span::none()
    }
}

/// The span of one forwarded request (`mcp.upstream`, kind client).
pub(crate) fn upstream_span(server: &str, method: &str) -> Span {
    if !enabled() {
        return Span::none();
    }
    tracing::info_span!(
        target: TARGET,
        "mcp.upstream",
        otel.kind = "client",
        otel.status_code = Empty,
        mcp.method = method,
        warden.server = server,
        warden.upstream.latency_ms = Empty,
        error.type = Empty,
    )
}

/// Records how an upstream request ended on its span.
pub(crate) fn record_upstream(span: &Span, latency: std::time::Duration, error: Option<&str>) {
    if !enabled() {
        return;
    }
    span.record("warden.upstream.latency_ms", latency.as_secs_f64() * 1e3);
    if let Some(kind) = error {
        span.record("error.type", kind);
        span.record("otel.status_code", "error");
    }
}

/// Puts `span`'s trace context into `params._meta` (`traceparent`,
/// `tracestate`), replacing the client's.
pub(crate) fn inject_meta(span: &Span, params: &mut Value) {
    if !enabled() {
        return;
    }
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return;
    }
    let Some(obj) = params.as_object_mut() else {
        return;
    };
    let meta = obj
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(meta) = meta.as_object_mut() {
        meta.remove(TRACESTATE);
        opentelemetry::global::get_text_map_propagator(|p| {
            p.inject_context(&cx, &mut MetaOut(meta))
        });
    }
}

/// The W3C trace headers (`traceparent`, `tracestate`) of the current span,
/// for an upstream HTTP request; empty when tracing is off or no span is
/// current.
pub(crate) fn current_headers() -> Vec<(&'static str, String)> {
    if !enabled() {
        return Vec::new();
    }
    let cx = Span::current().context();
    if !cx.span().span_context().is_valid() {
        return Vec::new();
    }
    let mut pairs = Pairs(Vec::with_capacity(2));
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut pairs));
    pairs.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // `enable` is never called in this test binary: tracing is off.
    #[test]
    fn off_makes_no_spans_and_injects_nothing() {
        let headers = HeaderMap::new();
        let msg = json!({"params": {"_meta": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}});
        assert!(request_span(&headers, &msg, "tools/call", &Mount::All).is_none());
        assert!(decision_span("tools/call").is_none());
        assert!(upstream_span("s", "tools/call").is_none());
        assert!(current_span().is_none());
        assert!(current_headers().is_empty());
        let mut params = json!({"name": "t"});
        inject_meta(&Span::none(), &mut params);
        assert_eq!(params, json!({"name": "t"}));
    }

    #[test]
    fn meta_trace_context_is_recognised() {
        assert!(has_meta_trace(
            &json!({"_meta": {"traceparent": "00-x-y-01"}})
        ));
        assert!(!has_meta_trace(&json!({"_meta": {"traceparent": 1}})));
        assert!(!has_meta_trace(&json!({"_meta": {}})));
        assert!(!has_meta_trace(&json!({"name": "t"})));
    }

    #[test]
    fn only_w3c_headers_are_collected() {
        let mut pairs = Pairs(Vec::new());
        pairs.set("traceparent", "a".into());
        pairs.set("tracestate", "b".into());
        pairs.set("baggage", "secret".into());
        assert_eq!(
            pairs.0,
            vec![("traceparent", "a".into()), ("tracestate", "b".into())]
        );
    }
}
