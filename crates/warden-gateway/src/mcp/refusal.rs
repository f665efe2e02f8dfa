//! Every way the front door refuses a request, in one place: the stable
//! reason code, the HTTP status and the JSON-RPC error body of each.
//!
//! A refusal never echoes unbounded caller input: messages name fields and
//! limits, not the values that broke them.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use warden_identity::IdentityError;
use warden_policy::{PolicyError, Reason};

use super::limits::LimitHit;
use crate::error::GatewayError;
use crate::jsonrpc::{self, code};
use crate::view::Verdict;

/// A refused request (or a request answered with a JSON-RPC error).
#[derive(Debug)]
pub(crate) enum Refusal {
    // ---- admission (HTTP level, before any JSON is read)
    HostNotAllowed,
    OriginNotAllowed,
    /// A header that is not valid text or is longer than allowed.
    BadHeader(&'static str),
    ShuttingDown,
    PolicyStale,
    KeyMissing,
    KeyUnknown,
    /// The key may not make an identity assertion it made (403).
    Assertion(PolicyError),
    /// An identity provider's bearer token that establishes no identity:
    /// 401 `invalid_token`, 403 `insufficient_scope` (step-up), 503 when
    /// the provider cannot be reached.
    Token(IdentityError),
    /// A valid token whose identity does not resolve here (a mapped team
    /// or agent that does not exist in the org): 403.
    IdentityUnmapped(&'static str),
    /// The key or its org is refused as a whole: revoked or expired key
    /// (401), suspended org (403).
    PrincipalDenied(Reason),
    // ---- transport
    /// Missing `Mcp-Session-Id` on a session-era request.
    SessionRequired,
    /// Unknown, ended, another endpoint's or another principal's session:
    /// all answer alike, so a session id reveals nothing about its owner.
    SessionUnknown,
    /// Too many live sessions for this key, or in total.
    SessionLimit {
        scope: &'static str,
        limit: usize,
    },
    UnsupportedProtocolVersion,
    /// 2026-07-28: a request whose `_meta` lacks what every request must
    /// carry (the protocol version, the client's capabilities).
    MetaInvalid(&'static str),
    /// 2026-07-28: a protocol version this endpoint does not serve (the
    /// requested value, at most [`MAX_ECHOED_VERSION`] bytes of it).
    UnsupportedVersion {
        requested: String,
    },
    /// `MCP-Protocol-Version`, `Mcp-Method` or `Mcp-Name` disagrees with
    /// the body (names the header).
    HeaderMismatch(&'static str),
    ToolsetUnknown,
    /// A path segment too long to name anything.
    EndpointUnknown,
    /// GET in the stateless era.
    GetNotAllowed,
    NotAcceptable,
    BodyTooLarge {
        limit: usize,
    },
    Parse,
    /// Not a JSON-RPC 2.0 message (wrong or missing `jsonrpc`, bad id, ...).
    InvalidRequest(&'static str),
    Batch,
    /// 2026-07-28: a method this endpoint does not implement, including
    /// the ones that revision removed (`initialize`, `ping`, ...): 404.
    NoSuchMethod,
    // ---- inside an admitted request (HTTP 200, JSON-RPC error)
    MethodNotFound,
    /// Missing or malformed params.
    InvalidParams(&'static str),
    /// A caller-supplied string over its bound.
    FieldTooLong {
        field: &'static str,
        max_bytes: usize,
    },
    /// The engine (or a toolset) denied a tool, prompt or resource.
    Denied(Box<Denial>),
    /// A rate or concurrency limit refused a call the decision permitted
    /// (with the call's decision id).
    Limited(Box<(LimitHit, String)>),
    /// The decision could not be made durable: the call is not forwarded.
    AuditUnavailable {
        decision_id: String,
    },
    Upstream(GatewayError),
    /// The server already has as many callers' own upstream sessions as
    /// allowed (`upstream_max_caller_sessions`).
    UpstreamSessionsFull {
        server: String,
        limit: usize,
    },
    /// A task id this caller's upstream session did not create (another
    /// caller's, or none): not found, so existence does not leak.
    TaskUnknown,
    /// 2026-07-28: a task method from a request whose client capabilities
    /// do not declare the `io.modelcontextprotocol/tasks` extension
    /// (`-32021` Missing Required Client Capability, HTTP 400).
    TasksNotDeclared,
    /// A task the upstream created could not be kept for its caller (the
    /// server's or the caller's bound of remembered tasks is reached, or
    /// the server's task id is unusable): the task is cancelled upstream.
    TaskNotKept {
        server: String,
        why: crate::upstream::TasksFull,
    },
    Cancelled,
    /// The server acts on the person's own account and they have not
    /// connected it (or their grant ended upstream): they open `url`
    /// (Warden's consent page) and retry. Session era: `-32042`
    /// URL-mode elicitation required; a 2026-07-28 client that declared
    /// URL elicitation gets an `input_required` result instead (built in
    /// forward.rs), one that did not gets this with `-32006`.
    ConsentRequired {
        server: String,
        url: String,
        elicitation_id: String,
        stateless: bool,
        decision_id: String,
    },
    /// `/mcp/connections` needs a person (an end user), not a bare key.
    NotAPerson,
    /// `/mcp/connections/{id}`: not one of the caller's connections.
    ConnectionUnknown,
    /// The vault could not produce the caller's own credentials (not a
    /// person, not signed in with the right provider, authorization server
    /// unreachable or refusing): the call is not forwarded.
    Credentials {
        server: String,
        code: &'static str,
        message: String,
        decision_id: String,
    },
}

/// Longest requested version echoed back in an unsupported-version error.
pub(crate) const MAX_ECHOED_VERSION: usize = 64;

/// A denied decision, as the caller is told it.
#[derive(Debug)]
pub(crate) struct Denial {
    pub what: &'static str,
    pub name: String,
    pub verdict: Verdict,
    pub decision_id: String,
    /// Why a tool is unknown when its server is down: (server, detail).
    pub upstream_detail: Option<(String, String)>,
}

impl Refusal {
    /// The stable reason code (`data.reason`, logs, metrics).
    pub fn reason(&self) -> &str {
        match self {
            Refusal::HostNotAllowed => "host_not_allowed",
            Refusal::OriginNotAllowed => "origin_not_allowed",
            Refusal::BadHeader(_) => "bad_header",
            Refusal::ShuttingDown => "shutting_down",
            Refusal::PolicyStale => "policy_stale",
            Refusal::KeyMissing => "key_missing",
            Refusal::KeyUnknown => "key_unknown",
            Refusal::Assertion(e) => e.code(),
            Refusal::Token(e) => e.code(),
            Refusal::IdentityUnmapped(_) => "identity_unmapped",
            Refusal::PrincipalDenied(r) => r.code(),
            Refusal::SessionRequired => "session_required",
            Refusal::SessionUnknown => "session_unknown",
            Refusal::SessionLimit { .. } => "session_limit",
            Refusal::UnsupportedProtocolVersion => "unsupported_protocol_version",
            Refusal::MetaInvalid(_) => "meta_invalid",
            Refusal::UnsupportedVersion { .. } => "unsupported_protocol_version",
            Refusal::HeaderMismatch(_) => "header_mismatch",
            Refusal::NoSuchMethod => "method_not_found",
            Refusal::ToolsetUnknown => "toolset_unknown",
            Refusal::EndpointUnknown => "endpoint_unknown",
            Refusal::GetNotAllowed => "method_not_allowed",
            Refusal::NotAcceptable => "not_acceptable",
            Refusal::BodyTooLarge { .. } => "body_too_large",
            Refusal::Parse => "parse_error",
            Refusal::InvalidRequest(_) => "invalid_request",
            Refusal::Batch => "batch_not_supported",
            Refusal::MethodNotFound => "method_not_found",
            Refusal::InvalidParams(_) => "invalid_params",
            Refusal::FieldTooLong { .. } => "field_too_long",
            Refusal::Denied(d) => d.verdict.reason.unwrap_or("denied"),
            Refusal::Limited(l) if l.0.per.is_some() => "rate_limited",
            Refusal::Limited(_) => "concurrency_limited",
            Refusal::AuditUnavailable { .. } => "audit_unavailable",
            Refusal::Upstream(_) => "upstream_error",
            Refusal::UpstreamSessionsFull { .. } => "upstream_sessions_full",
            Refusal::TaskUnknown => "task_unknown",
            Refusal::TasksNotDeclared => "tasks_not_declared",
            Refusal::TaskNotKept { why, .. } => match why {
                crate::upstream::TasksFull::Server(_)
                | crate::upstream::TasksFull::Principal(_) => "tasks_full",
                _ => "task_id_unusable",
            },
            Refusal::Cancelled => "cancelled",
            Refusal::ConsentRequired { .. } => "consent_required",
            Refusal::NotAPerson => "end_user_required",
            Refusal::ConnectionUnknown => "connection_unknown",
            Refusal::Credentials { code, .. } => code,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::KeyMissing | Refusal::KeyUnknown => StatusCode::UNAUTHORIZED,
            Refusal::Token(e) => match e.oauth_error() {
                Some("insufficient_scope") => StatusCode::FORBIDDEN,
                Some(_) => StatusCode::UNAUTHORIZED,
                None => StatusCode::SERVICE_UNAVAILABLE,
            },
            Refusal::IdentityUnmapped(_) | Refusal::NotAPerson => StatusCode::FORBIDDEN,
            Refusal::ConnectionUnknown => StatusCode::NOT_FOUND,
            Refusal::PrincipalDenied(r) if key_refused(*r) => StatusCode::UNAUTHORIZED,
            Refusal::PrincipalDenied(_)
            | Refusal::HostNotAllowed
            | Refusal::OriginNotAllowed
            | Refusal::Assertion(_) => StatusCode::FORBIDDEN,
            Refusal::ShuttingDown | Refusal::PolicyStale => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::SessionLimit { .. } => StatusCode::TOO_MANY_REQUESTS,
            Refusal::SessionUnknown
            | Refusal::ToolsetUnknown
            | Refusal::EndpointUnknown
            | Refusal::NoSuchMethod => StatusCode::NOT_FOUND,
            Refusal::GetNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Refusal::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Refusal::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::BadHeader(_)
            | Refusal::SessionRequired
            | Refusal::UnsupportedProtocolVersion
            | Refusal::MetaInvalid(_)
            | Refusal::UnsupportedVersion { .. }
            | Refusal::HeaderMismatch(_)
            | Refusal::TasksNotDeclared
            | Refusal::Parse
            | Refusal::InvalidRequest(_)
            | Refusal::Batch => StatusCode::BAD_REQUEST,
            Refusal::MethodNotFound
            | Refusal::InvalidParams(_)
            | Refusal::FieldTooLong { .. }
            | Refusal::Denied(_)
            | Refusal::Limited(_)
            | Refusal::AuditUnavailable { .. }
            | Refusal::Upstream(_)
            | Refusal::UpstreamSessionsFull { .. }
            | Refusal::TaskUnknown
            | Refusal::TaskNotKept { .. }
            | Refusal::Cancelled
            | Refusal::ConsentRequired { .. }
            | Refusal::Credentials { .. } => StatusCode::OK,
        }
    }

    fn rpc_code(&self) -> i64 {
        match self {
            Refusal::PolicyStale => code::POLICY_STALE,
            Refusal::Parse => code::PARSE_ERROR,
            Refusal::MethodNotFound | Refusal::NoSuchMethod => code::METHOD_NOT_FOUND,
            Refusal::HeaderMismatch(_) => code::HEADER_MISMATCH,
            Refusal::UnsupportedVersion { .. } => code::UNSUPPORTED_PROTOCOL_VERSION,
            Refusal::MetaInvalid(_)
            | Refusal::InvalidParams(_)
            | Refusal::FieldTooLong { .. }
            | Refusal::TaskUnknown
            | Refusal::Denied(_) => code::INVALID_PARAMS,
            Refusal::AuditUnavailable { .. } => code::AUDIT_UNAVAILABLE,
            Refusal::Limited(_) | Refusal::UpstreamSessionsFull { .. } => code::LIMITED,
            Refusal::TasksNotDeclared => code::MISSING_CLIENT_CAPABILITY,
            Refusal::TaskNotKept { why, .. } => match why {
                crate::upstream::TasksFull::Server(_)
                | crate::upstream::TasksFull::Principal(_) => code::LIMITED,
                _ => code::UPSTREAM_ERROR,
            },
            Refusal::Upstream(_) => code::UPSTREAM_ERROR,
            Refusal::Cancelled => code::REQUEST_CANCELLED,
            Refusal::ConsentRequired {
                stateless: false, ..
            } => code::URL_ELICITATION_REQUIRED,
            Refusal::ConsentRequired { .. } | Refusal::Credentials { .. } => {
                code::CREDENTIALS_REQUIRED
            }
            _ => code::INVALID_REQUEST,
        }
    }

    fn message(&self) -> String {
        match self {
            Refusal::HostNotAllowed => "Host not allowed".into(),
            Refusal::OriginNotAllowed => "Origin not allowed".into(),
            Refusal::BadHeader(name) => format!("header {name} is not valid or too long"),
            Refusal::ShuttingDown => "the gateway is shutting down".into(),
            Refusal::PolicyStale => {
                "policy_stale: this replica cannot confirm it has the current policy".into()
            }
            Refusal::KeyMissing => "a bearer key is required".into(),
            Refusal::KeyUnknown => "unknown key".into(),
            Refusal::Assertion(e) => e.to_string(),
            Refusal::Token(e) => e.to_string(),
            Refusal::IdentityUnmapped(what) => {
                format!("the token's {what} does not exist in its organization")
            }
            Refusal::PrincipalDenied(r) if key_refused(*r) => format!("key refused: {}", r.code()),
            Refusal::PrincipalDenied(r) => format!("refused: {}", r.code()),
            Refusal::SessionRequired => "Mcp-Session-Id header required".into(),
            Refusal::SessionUnknown => "session not found".into(),
            Refusal::SessionLimit { scope, limit } => {
                format!("too many live sessions ({scope} limit {limit}); end one first")
            }
            Refusal::UnsupportedProtocolVersion => "unsupported MCP-Protocol-Version".into(),
            Refusal::MetaInvalid(why) => format!("invalid params: {why}"),
            Refusal::UnsupportedVersion { .. } => "Unsupported protocol version".into(),
            Refusal::HeaderMismatch(name) => format!("header {name} does not match the body"),
            Refusal::NoSuchMethod => "Method not found".into(),
            Refusal::ToolsetUnknown => "no such toolset".into(),
            Refusal::EndpointUnknown => "no such endpoint".into(),
            Refusal::GetNotAllowed => "use subscriptions/listen".into(),
            Refusal::NotAcceptable => "GET requires Accept: text/event-stream".into(),
            Refusal::BodyTooLarge { limit } => {
                format!("request body larger than {limit} bytes")
            }
            Refusal::Parse => "parse error: the body is not valid JSON".into(),
            Refusal::InvalidRequest(why) => format!("invalid request: {why}"),
            Refusal::Batch => "JSON-RPC batches are not supported".into(),
            Refusal::MethodNotFound => "Method not found".into(),
            Refusal::InvalidParams(why) => (*why).to_owned(),
            Refusal::FieldTooLong { field, max_bytes } => {
                format!("{field} is longer than {max_bytes} bytes")
            }
            Refusal::Denied(d) => match &d.upstream_detail {
                None => format!("Unknown {}: {}", d.what, d.name),
                Some((server, detail)) => format!(
                    "Unknown {}: {} (server {server} is unavailable: {detail})",
                    d.what, d.name
                ),
            },
            Refusal::Limited(l) => match l.0.per {
                Some(per) => format!(
                    "rate limit reached ({} per {per}, {} level); retry in {} ms",
                    l.0.max,
                    l.0.level.kind(),
                    l.0.retry_after_ms
                ),
                None => format!(
                    "concurrency limit reached ({} in flight, {} level)",
                    l.0.max,
                    l.0.level.kind()
                ),
            },
            Refusal::AuditUnavailable { .. } => {
                "the call was not forwarded: its decision could not be recorded".into()
            }
            Refusal::Upstream(e) => e.to_string(),
            Refusal::UpstreamSessionsFull { server, limit } => format!(
                "server {server} has no room for another caller's upstream session (limit {limit}); retry later"
            ),
            Refusal::TaskUnknown => "Task not found".into(),
            Refusal::TasksNotDeclared => format!(
                "Missing required client capability: extension {}",
                crate::upstream::TASKS_EXTENSION
            ),
            Refusal::TaskNotKept { server, why } => match why {
                crate::upstream::TasksFull::Server(limit) => format!(
                    "server {server} already has {limit} live tasks; the new one was cancelled, retry later"
                ),
                crate::upstream::TasksFull::Principal(limit) => format!(
                    "you already have {limit} live tasks; the new one was cancelled, retry later"
                ),
                _ => format!("server {server} created a task Warden cannot track; it was cancelled"),
            },
            Refusal::Cancelled => "Request cancelled".into(),
            Refusal::ConsentRequired { server, .. } => format!(
                "{server} acts on your own account: connect it at the URL in error.data, then retry"
            ),
            Refusal::Credentials {
                server, message, ..
            } => format!("no usable credentials for {server}: {message}"),
            Refusal::NotAPerson => "connections belong to a person: call as an end user".into(),
            Refusal::ConnectionUnknown => "no such connection".into(),
        }
    }

    fn data(&self) -> Option<Value> {
        let reason = self.reason();
        Some(match self {
            Refusal::MethodNotFound
            | Refusal::NoSuchMethod
            | Refusal::Cancelled
            | Refusal::Parse => return None,
            Refusal::UnsupportedVersion { requested } => json!({
                "reason": reason,
                "supported": [crate::upstream::STATELESS_VERSION],
                "requested": requested,
            }),
            Refusal::HeaderMismatch(name) => json!({"reason": reason, "header": name}),
            Refusal::SessionLimit { scope, limit } => {
                json!({"reason": reason, "scope": scope, "limit": limit})
            }
            Refusal::BodyTooLarge { limit } => json!({"reason": reason, "max_bytes": limit}),
            Refusal::FieldTooLong { field, max_bytes } => {
                json!({"reason": reason, "field": field, "max_bytes": max_bytes})
            }
            Refusal::Denied(d) => {
                let mut data = json!({
                    "reason": reason,
                    "decision_id": d.decision_id,
                    "revision": d.verdict.revision,
                });
                if let Some((_, detail)) = &d.upstream_detail {
                    data["upstream"] = json!({"status": "unavailable", "detail": detail});
                }
                data
            }
            Refusal::Limited(l) => {
                let (hit, decision_id) = &**l;
                let mut limit = json!({
                    "id": hit.limit.0,
                    "level": hit.level.kind(),
                    "max": hit.max,
                    "replica_share": hit.share,
                });
                if let Some(per) = hit.per {
                    limit["per"] = json!(per);
                }
                json!({
                    "reason": reason,
                    "limit": limit,
                    "retry_after_ms": hit.retry_after_ms,
                    "decision_id": decision_id,
                })
            }
            Refusal::AuditUnavailable { decision_id } => {
                json!({"reason": reason, "decision_id": decision_id})
            }
            Refusal::Upstream(e) => json!({"server": e.server(), "kind": e.kind()}),
            Refusal::ConsentRequired {
                server,
                url,
                elicitation_id,
                decision_id,
                ..
            } => json!({
                "reason": reason,
                "server": server,
                "url": url,
                "decision_id": decision_id,
                "elicitations": [consent_elicitation(server, url, elicitation_id)],
            }),
            Refusal::Credentials {
                server,
                decision_id,
                ..
            } => json!({"reason": reason, "server": server, "decision_id": decision_id}),
            Refusal::UpstreamSessionsFull { server, limit } => {
                json!({"reason": reason, "server": server, "limit": limit})
            }
            Refusal::TasksNotDeclared => json!({
                "reason": reason,
                "requiredCapabilities": {"extensions": {crate::upstream::TASKS_EXTENSION: {}}},
            }),
            Refusal::TaskNotKept { server, why } => match why {
                crate::upstream::TasksFull::Server(limit) => {
                    json!({"reason": reason, "server": server, "scope": "server", "limit": limit})
                }
                crate::upstream::TasksFull::Principal(limit) => {
                    json!({"reason": reason, "server": server, "scope": "principal", "limit": limit})
                }
                _ => json!({"reason": reason, "server": server}),
            },
            _ => json!({"reason": reason}),
        })
    }

    /// The JSON-RPC error message for request `id` (null before one is known).
    pub fn to_message(&self, id: Value) -> Value {
        metrics::counter!("warden_gateway_refusals_total", "reason" => self.reason().to_owned())
            .increment(1);
        crate::telemetry::record_reason(self.reason());
        jsonrpc::error(id, self.rpc_code(), self.message(), self.data())
    }

    /// The HTTP response, with the JSON-RPC error body. A 401 (and a 403
    /// for a missing scope) carries a `WWW-Authenticate: Bearer` challenge
    /// (RFC 6750); the front door adds `resource_metadata` (RFC 9728).
    pub fn into_response(self, id: Value) -> Response {
        let mut resp = json_response(self.status(), crate::jsonrpc::to_body(&self.to_message(id)));
        let challenge = match &self {
            Refusal::KeyMissing => Some("Bearer realm=\"warden\"".to_owned()),
            Refusal::Token(e) => e.oauth_error().map(|err| {
                let mut c = format!(
                    "Bearer realm=\"warden\", error=\"{err}\", error_description=\"{}\"",
                    e.code()
                );
                if let IdentityError::InsufficientScope { required } = e {
                    c.push_str(&format!(", scope=\"{}\"", required.join(" ")));
                }
                c
            }),
            _ if self.status() == StatusCode::UNAUTHORIZED => Some(format!(
                "Bearer realm=\"warden\", error=\"invalid_token\", error_description=\"{}\"",
                self.reason()
            )),
            _ => None,
        };
        if let Some(v) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}

/// The URL-mode elicitation that sends a person to Warden's consent page
/// (2025-11-25 `ElicitRequestURLParams`).
pub(crate) fn consent_elicitation(server: &str, url: &str, elicitation_id: &str) -> Value {
    json!({
        "mode": "url",
        "elicitationId": elicitation_id,
        "url": url,
        "message": format!("Connect your {server} account to continue."),
    })
}

/// Adds `resource_metadata="{url}"` (RFC 9728 §5.1) and, if the challenge
/// names none, `scope` to a response's `WWW-Authenticate: Bearer`
/// challenge. Responses without a challenge are left alone.
pub(crate) fn add_resource_metadata(resp: &mut Response, metadata_url: &str, scopes: &[&str]) {
    let Some(current) = resp
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
    else {
        return;
    };
    let mut c = format!("{current}, resource_metadata=\"{metadata_url}\"");
    if !scopes.is_empty() && !current.contains("scope=") {
        c.push_str(&format!(", scope=\"{}\"", scopes.join(" ")));
    }
    if let Ok(v) = HeaderValue::from_str(&c) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
}

impl axum::response::IntoResponse for Refusal {
    fn into_response(self) -> Response {
        Refusal::into_response(self, Value::Null)
    }
}

/// A refusal of the credential itself (revoked or expired key): 401. A
/// suspended org or a disabled end user is refused with 403.
fn key_refused(r: Reason) -> bool {
    r.is_principal_wide() && !matches!(r, Reason::OrgSuspended | Reason::EndUserDisabled)
}

pub(crate) fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_refusals_carry_their_reason_and_status() {
        let r = Refusal::SessionUnknown;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let msg = r.to_message(Value::Null);
        assert_eq!(msg["error"]["code"], code::INVALID_REQUEST);
        assert_eq!(msg["error"]["data"]["reason"], "session_unknown");
        assert_eq!(msg["id"], Value::Null);
    }

    #[test]
    fn too_long_names_the_field_not_the_value() {
        let r = Refusal::FieldTooLong {
            field: "params.name",
            max_bytes: 256,
        };
        let msg = r.to_message(json!(7));
        assert_eq!(msg["id"], 7);
        assert_eq!(msg["error"]["code"], code::INVALID_PARAMS);
        assert_eq!(msg["error"]["data"]["max_bytes"], 256);
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[test]
    fn consent_required_is_a_url_elicitation_error() {
        let r = Refusal::ConsentRequired {
            server: "github".into(),
            url: "https://w.example/connect/abc".into(),
            elicitation_id: "e-1".into(),
            stateless: false,
            decision_id: "d-1".into(),
        };
        let msg = r.to_message(json!(3));
        assert_eq!(msg["error"]["code"], -32042);
        let e = &msg["error"]["data"]["elicitations"][0];
        assert_eq!(e["mode"], "url");
        assert_eq!(e["url"], "https://w.example/connect/abc");
        assert_eq!(e["elicitationId"], "e-1");
        assert_eq!(msg["error"]["data"]["reason"], "consent_required");
        let r = Refusal::ConsentRequired {
            server: "github".into(),
            url: "https://w.example/connect/abc".into(),
            elicitation_id: "e-1".into(),
            stateless: true,
            decision_id: "d-1".into(),
        };
        // -32042 is retired on the 2026-07-28 wire.
        assert_eq!(r.to_message(json!(3))["error"]["code"], -32006);
    }

    #[test]
    fn unauthorized_refusals_challenge() {
        let resp = Refusal::KeyUnknown.into_response(Value::Null);
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let challenge = resp.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.contains("invalid_token"));
    }

    #[test]
    fn token_refusals_challenge_with_their_oauth_error() {
        let resp = Refusal::Token(IdentityError::Expired).into_response(Value::Null);
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let c = resp.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(
            c.contains("error=\"invalid_token\"") && c.contains("token_expired"),
            "{c}"
        );
        let mut resp = Refusal::Token(IdentityError::InsufficientScope {
            required: vec!["mcp".into(), "tools".into()],
        })
        .into_response(Value::Null);
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        add_resource_metadata(
            &mut resp,
            "https://w.example/.well-known/oauth-protected-resource/mcp",
            &["x"],
        );
        let c = resp.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(c.contains("error=\"insufficient_scope\""), "{c}");
        assert!(c.contains("scope=\"mcp tools\""), "{c}");
        assert!(!c.contains("scope=\"x\""), "{c}");
        assert!(c.contains(
            "resource_metadata=\"https://w.example/.well-known/oauth-protected-resource/mcp\""
        ));
        let resp = Refusal::Token(IdentityError::ProviderUnavailable("x".into()))
            .into_response(Value::Null);
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(resp.headers().get(header::WWW_AUTHENTICATE).is_none());
    }
}
