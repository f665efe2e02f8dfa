//! Authorization: one step turns a request's (server, tool) into either a
//! [`Permit`] or a [`Refusal::Denied`]. Both get a decision id, count in
//! `warden_gateway_decisions_total` and own their audit record here, so no
//! other code writes that sequence. The verdict itself comes from
//! `warden_policy` through [`View`](crate::view::View).

use std::sync::Arc;

use warden_policy::Reason;
use warden_store::DecisionRecord;

use super::dispatch::Ctx;
use super::refusal::{Denial, Refusal};
use crate::error::GatewayError;
use crate::gateway::{now_ms, upstream_for};
use crate::telemetry;
use crate::upstream::Upstream;
use crate::view::Verdict;

/// What a request asks to use.
pub(crate) struct Subject<'a> {
    pub method: &'static str,
    /// `tool`, `prompt` or `resource`: how a denial names it.
    pub what: &'static str,
    /// The name (or URI) as the caller sent it, for the denial message.
    pub exposed: &'a str,
    pub slug: &'a str,
    /// The upstream tool name, for `tools/call` (tool-level decision);
    /// none for the server-level decision of prompts, resources and
    /// completions.
    pub tool: Option<&'a str>,
}

/// An allowed decision: where to forward, and the decision's record.
pub(crate) struct Permit {
    pub decision_id: String,
    pub verdict: Verdict,
    pub upstream: Arc<Upstream>,
    pub slug: String,
    pub tool: Option<String>,
    /// The audit record of a `tools/call` permit (prompts, resources and
    /// completions audit their denials only).
    pub record: Option<DecisionRecord>,
}

impl Permit {
    /// A one-server endpoint's list request, forwarded under the
    /// server-level verdict that allowed it. A listing names no object, so
    /// it is not a call decision and has no decision id or record.
    pub(crate) fn listing(verdict: Verdict, upstream: Arc<Upstream>, slug: &str) -> Permit {
        Permit {
            decision_id: String::new(),
            verdict,
            upstream,
            slug: slug.to_owned(),
            tool: None,
            record: None,
        }
    }
}

impl Ctx {
    /// Decides `subject` for this request's principal on this mount.
    pub(crate) fn authorize(&self, subject: Subject<'_>) -> Result<Permit, Refusal> {
        // Trace: the decision is a child span of the request; both carry
        // its outcome (ids and codes only).
        let request_span = tracing::Span::current();
        let span = telemetry::decision_span(subject.method);
        let _entered = span.enter();
        let result = self.decide(&subject);
        if telemetry::enabled() {
            match &result {
                Ok(p) => {
                    for s in [&span, &request_span] {
                        telemetry::record_verdict(
                            s,
                            &p.decision_id,
                            &p.slug,
                            p.tool.as_deref(),
                            &p.verdict,
                        );
                    }
                }
                Err(Refusal::Denied(d)) => telemetry::record_verdict(
                    &request_span,
                    &d.decision_id,
                    subject.slug,
                    subject.tool,
                    &d.verdict,
                ),
                Err(_) => {}
            }
        }
        result
    }

    fn decide(&self, subject: &Subject<'_>) -> Result<Permit, Refusal> {
        let verdict = {
            let view = self.view();
            match subject.tool {
                Some(tool) => view.decide_tool(subject.slug, tool, &self.shared.catalog()),
                None => view.decide_server(subject.slug),
            }
        };
        if !verdict.allowed {
            return Err(self.deny(subject, verdict));
        }
        let decision_id = new_decision_id();
        count_decision(&verdict);
        let Some(upstream) = upstream_for(&self.shared, &verdict) else {
            // Allowed by policy but no connection configured for it.
            return Err(Refusal::Upstream(GatewayError::UpstreamUnavailable {
                server: subject.slug.to_owned(),
                detail: "no connection configured".into(),
            }));
        };
        // Written before the call is forwarded; its latency follows as the
        // outcome when the call ends.
        let record = subject.tool.map(|_| DecisionRecord {
            latency_us: 0,
            ..self.decision_record(&decision_id, subject, &verdict)
        });
        Ok(Permit {
            decision_id,
            verdict,
            upstream,
            slug: subject.slug.to_owned(),
            tool: subject.tool.map(str::to_owned),
            record,
        })
    }

    /// A denied decision: counted, logged, audited, and its refusal.
    pub(crate) fn deny(&self, subject: &Subject<'_>, verdict: Verdict) -> Refusal {
        let decision_id = new_decision_id();
        count_decision(&verdict);
        telemetry::record_verdict(
            &tracing::Span::current(),
            &decision_id,
            subject.slug,
            subject.tool,
            &verdict,
        );
        tracing::info!(
            decision_id = %decision_id,
            method = subject.method,
            server = %subject.slug,
            tool = subject.tool.unwrap_or(""),
            reason = verdict.reason.unwrap_or(""),
            "denied"
        );
        self.shared
            .record(self.decision_record(&decision_id, subject, &verdict));
        // A server the caller may use whose catalog is unknown because it
        // is down: say so, rather than only "unknown tool".
        let upstream_detail = if verdict.reason == Some(Reason::ToolUnknown.code()) {
            upstream_for(&self.shared, &verdict)
                .and_then(|u| u.failure())
                .map(|detail| (subject.slug.to_owned(), detail))
        } else {
            None
        };
        Refusal::Denied(Box::new(Denial {
            what: subject.what,
            name: subject.exposed.to_owned(),
            verdict,
            decision_id,
            upstream_detail,
        }))
    }

    fn decision_record(
        &self,
        decision_id: &str,
        subject: &Subject<'_>,
        verdict: &Verdict,
    ) -> DecisionRecord {
        DecisionRecord {
            decision_id: decision_id.to_owned(),
            at_ms: now_ms(),
            org: self.access.org(),
            key: Some(self.principal.key),
            end_user: self.principal.end_user,
            agent: self.principal.agent,
            method: subject.method.to_owned(),
            server_slug: subject.slug.to_owned(),
            tool: subject.tool.map(str::to_owned),
            allowed: verdict.allowed,
            reason: verdict.reason.map(str::to_owned),
            revision: verdict.revision,
            latency_us: self.started.elapsed().as_micros() as u64,
        }
    }
}

/// A new decision id: a UUIDv7 (time-ordered), its random bits from the
/// thread's CSPRNG (`rand::thread_rng`: seeded from the OS, reseeded
/// periodically) instead of the `getrandom` system call `Uuid::now_v7`
/// makes for every id.
fn new_decision_id() -> String {
    let millis = u64::try_from(now_ms()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &rand::random())
        .into_uuid()
        .to_string()
}

fn count_decision(verdict: &Verdict) {
    // The allowed handle is resolved once (see `count_request`): it is
    // the one every forwarded call counts.
    static ALLOWED: std::sync::OnceLock<metrics::Counter> = std::sync::OnceLock::new();
    if verdict.allowed {
        ALLOWED
            .get_or_init(
                || metrics::counter!("warden_gateway_decisions_total", "reason" => "allowed"),
            )
            .increment(1);
    } else {
        let reason = verdict.reason.unwrap_or("denied");
        metrics::counter!("warden_gateway_decisions_total", "reason" => reason).increment(1);
    }
}
