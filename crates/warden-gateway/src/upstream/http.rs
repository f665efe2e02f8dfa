//! Upstream over MCP Streamable HTTP (both protocol eras).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use warden_store::{UpstreamConfig, UpstreamPolicy};

use super::{SseParser, Upstream};
use crate::error::GatewayError;
use crate::jsonrpc::ValueExt;

mod client;
mod polling;

use client::{ClientConfig, HttpClient, RequestBuilder, Response};

const SESSION_HEADER: &str = "mcp-session-id";
// Names and values of every request's headers, made once rather than
// parsed per request.
const SESSION: HeaderName = HeaderName::from_static(SESSION_HEADER);
const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
const METHOD: HeaderName = HeaderName::from_static("mcp-method");
const NAME: HeaderName = HeaderName::from_static("mcp-name");
const ACCEPT_BOTH: HeaderValue = HeaderValue::from_static("application/json, text/event-stream");
const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

pub(crate) struct HttpLink {
    client: HttpClient,
    /// The upstream's URL, parsed once (`None`: invalid, and `refused`).
    url: Option<reqwest::Url>,
    /// Warden's own secret headers for this upstream, then a caller link's
    /// extra headers (which replace those of the same name), all marked
    /// sensitive.
    secret_headers: HeaderMap,
    session: ArcSwapOption<String>,
    listener: Mutex<Option<JoinHandle<()>>>,
    /// Why this upstream may not be reached at all (an org admin's URL
    /// outside the egress policy: scheme, userinfo, or an IP literal in a
    /// forbidden range, which the DNS resolver never sees).
    refused: Option<String>,
}

impl HttpLink {
    /// A caller link's HTTP side: the shared connection's client (its
    /// connection pool, redirect and egress rules), URL and secret headers,
    /// then `extra_headers` over them; a session of its own.
    pub fn for_caller(shared: &HttpLink, extra_headers: HeaderMap) -> Self {
        let mut secret_headers = shared.secret_headers.clone();
        for (name, mut value) in extra_headers {
            if let Some(name) = name {
                value.set_sensitive(true);
                secret_headers.insert(name, value);
            }
        }
        HttpLink {
            client: shared.client.clone(),
            url: shared.url.clone(),
            secret_headers,
            session: ArcSwapOption::empty(),
            listener: Mutex::new(None),
            refused: shared.refused.clone(),
        }
    }

    pub fn new(url: String, config: &UpstreamConfig, policy: &Arc<UpstreamPolicy>) -> Self {
        let mut secret_headers = HeaderMap::new();
        for (name, value) in &config.secret_headers {
            let parsed = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value.expose()),
            );
            match parsed {
                (Ok(name), Ok(mut value)) => {
                    value.set_sensitive(true);
                    secret_headers.insert(name, value);
                }
                _ => {
                    tracing::warn!(server = %config.slug, header = %name, "secret header is not a valid HTTP header; not sent")
                }
            }
        }
        let mut refused = None;
        let parsed = match reqwest::Url::parse(&url) {
            Ok(parsed) => Some(parsed),
            Err(e) => {
                refused = Some(format!("invalid upstream URL: {e}"));
                None
            }
        };
        if config.egress_restricted {
            if let Err(why) = policy.egress.check_url(&url) {
                tracing::warn!(server = %config.slug, reason = why.code(), "upstream URL refused by the egress policy");
                refused.get_or_insert(format!("upstream URL refused by the egress policy: {why}"));
            }
        }
        // The client never follows redirects (a 3xx is an upstream error)
        // and, when restricted, checks every connection's address.
        let client_config = ClientConfig {
            connect_timeout: Duration::from_millis(config.timeout_ms.clamp(100, 10_000)),
            egress: config.egress_restricted.then(|| Arc::clone(policy)),
        };
        let client = match HttpClient::new(parsed.as_ref(), client_config) {
            Ok(client) => client,
            Err(e) => {
                // Without our settings (redirects, egress) no client may
                // be used at all: every request is refused.
                refused.get_or_insert(e);
                HttpClient::Reqwest(reqwest::Client::new())
            }
        };
        HttpLink {
            refused,
            client,
            url: parsed,
            secret_headers,
            session: ArcSwapOption::empty(),
            listener: Mutex::new(None),
        }
    }

    /// Forgets the session (a new `initialize` follows).
    pub fn reset(&self) {
        self.session.store(None);
        self.stop_listener();
    }

    /// Ends the upstream session, if one was opened: an HTTP `DELETE` with
    /// its `Mcp-Session-Id`, sent in the background and bounded by the
    /// server's timeout (best effort: an upstream that does not allow it
    /// answers 405, one that is down is not waited for). The session is
    /// forgotten either way.
    /// `first`: messages POSTed on the session, in order, before the
    /// `DELETE` (a caller's `tasks/cancel`s).
    pub fn end_session(&self, up: &Upstream, timeout: std::time::Duration, first: Vec<Value>) {
        self.stop_listener();
        if self.session.load().is_none() {
            return;
        }
        let before: Vec<RequestBuilder> = first
            .iter()
            .map(|msg| {
                self.builder(up, reqwest::Method::POST, Some(msg))
                    .timeout(timeout)
            })
            .collect();
        let request = self
            .builder(up, reqwest::Method::DELETE, None)
            .timeout(timeout);
        self.session.store(None);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let slug = up.slug().to_owned();
        runtime.spawn(async move {
            for post in before {
                if let Err(e) = post.send().await {
                    tracing::debug!(server = %slug, error = %e.detail, "could not cancel a caller's task");
                }
            }
            if let Err(e) = request.send().await {
                tracing::debug!(server = %slug, error = %e.detail, "could not end the upstream session");
            }
        });
    }

    pub fn stop_listener(&self) {
        if let Some(h) = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            h.abort();
        }
    }

    fn builder(
        &self,
        up: &Upstream,
        method: reqwest::Method,
        msg: Option<&Value>,
    ) -> RequestBuilder {
        let mut b = self
            .client
            .request(method, self.url.as_ref())
            .header(ACCEPT, ACCEPT_BOTH)
            .headers(self.secret_headers.clone());
        if let Some(version) = up.protocol() {
            b = b.header(PROTOCOL_VERSION, version.as_str());
        }
        if let Some(session) = self.session.load_full() {
            b = b.header(SESSION, session.as_str());
        }
        // W3C trace context of the current `mcp.upstream` span, if traced.
        for (name, value) in crate::telemetry::current_headers() {
            b = b.header(name, value);
        }
        if let Some(msg) = msg {
            if up.is_stateless() {
                if let Some(m) = msg.get("method").and_then(Value::as_str) {
                    b = b.header(METHOD, m);
                }
                let name = msg
                    .at(&["params", "name"])
                    .or_else(|| msg.at(&["params", "uri"]))
                    .or_else(|| msg.at(&["params", "taskId"]))
                    .and_then(Value::as_str);
                if let Some(name) = name {
                    let encoded = crate::mcp::encode_header_value(name);
                    if let Ok(value) = HeaderValue::from_str(&encoded) {
                        b = b.header(NAME, value);
                    }
                }
            }
            b = b
                .header(CONTENT_TYPE, APPLICATION_JSON)
                .body(serde_json::to_vec(msg).unwrap_or_default());
        }
        b
    }

    /// The POST of request `id`, as a future for whoever awaits its
    /// response to drive (see [`super::ResponseRx`]): no task per call.
    pub fn request_driver(
        &self,
        up: &Arc<Upstream>,
        id: u64,
        msg: Value,
        headers: Option<HeaderMap>,
    ) -> super::Driver {
        let up = Arc::clone(up);
        // Driven inside the caller's span, so that `builder` sends its
        // trace context.
        let task = async move {
            let Some(link) = up.http_link() else { return };
            let outcome = link.post(&up, &msg, Some(id), headers).await;
            match outcome {
                Err(e) => up.complete(id, Err(e)),
                Ok(()) => up.complete(
                    id,
                    Err(up.err_protocol("the response stream ended without a response")),
                ),
            }
        };
        Box::pin(tracing::Instrument::instrument(
            task,
            crate::telemetry::current_span(),
        ))
    }

    pub fn send_oneway(&self, up: &Upstream, msg: Value) {
        let Some(up) = up.self_arc() else { return };
        tokio::spawn(async move {
            let Some(link) = up.http_link() else { return };
            if let Err(e) = link.post(&up, &msg, None, None).await {
                tracing::debug!(server = %up.slug(), error = %e, "upstream notification failed");
            }
        });
    }

    async fn post(
        &self,
        up: &Arc<Upstream>,
        msg: &Value,
        via: Option<u64>,
        headers: Option<HeaderMap>,
    ) -> Result<(), GatewayError> {
        if let Some(why) = &self.refused {
            up.mark_failed(why);
            return Err(up.unavailable(why.clone()));
        }
        let had_session = self.session.load().is_some();
        let mut request = self.builder(up, reqwest::Method::POST, Some(msg));
        if let Some(mut headers) = headers {
            headers.values_mut().for_each(|v| v.set_sensitive(true));
            request = request.headers(headers);
        }
        let resp = request.send().await.map_err(|e| {
            if e.connect {
                up.mark_failed(&e.detail);
            }
            up.unavailable(e.detail)
        })?;
        let status = resp.status();
        if status.as_u16() == 404 && had_session {
            up.mark_failed("the upstream session expired");
            return Err(up.unavailable("the upstream session expired"));
        }
        if !status.is_success() {
            // The 2026-07-28 wire answers some JSON-RPC errors with a 4xx
            // status (400 for a missing client capability, 404 for an
            // unknown method): the error itself, with its `data`, goes to
            // the caller unchanged. A status without one is an upstream
            // failure.
            if let Some(error) = json_rpc_error_body(up, resp, via).await {
                up.dispatch(error, via);
                return Ok(());
            }
            return Err(GatewayError::UpstreamStatus {
                server: up.slug().to_owned(),
                status: status.as_u16(),
            });
        }
        if let Some(sid) = resp
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            self.session.store(Some(Arc::new(sid.to_owned())));
        }
        if status.as_u16() == 202 || status.as_u16() == 204 {
            return Ok(());
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.starts_with("text/event-stream") {
            let mut parser = SseParser::new(up.max_response_bytes());
            match (read_sse(up, resp, via, &mut parser).await?, via) {
                (SseEnd::Answered, _) => Ok(()),
                // Closed or broken before the answer, after an event id:
                // the upstream expects the client to poll (SSE polling).
                (_, Some(via)) if parser.last_event_id().is_some() => {
                    self.resume_reply(up, via, parser).await
                }
                (SseEnd::Dropped(detail), _) => Err(up.unavailable(detail)),
                (SseEnd::Closed, _) => Ok(()),
            }
        } else {
            let body = read_limited(up, resp).await?;
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(());
            }
            let value: Value = serde_json::from_slice(&body)
                .map_err(|e| up.err_protocol(format!("response is not JSON: {e}")))?;
            match value {
                Value::Array(items) => items.into_iter().for_each(|m| up.dispatch(m, via)),
                single => {
                    if crate::jsonrpc::kind(&single) == crate::jsonrpc::Kind::Invalid {
                        return Err(up.err_protocol("response is not a JSON-RPC message"));
                    }
                    up.dispatch(single, via)
                }
            }
            Ok(())
        }
    }

    /// Keeps a stream open for messages not tied to a request (mainly
    /// `list_changed`): the GET stream (2025-11-25), resumed with
    /// `Last-Event-ID` after the upstream's `retry:` delay when it drops,
    /// or `subscriptions/listen` (2026-07-28).
    pub fn start_listener(&self, up: &Arc<Upstream>) {
        if self.refused.is_some() {
            return;
        }
        let weak = Arc::downgrade(up);
        let max_event_bytes = up.max_response_bytes();
        let handle = tokio::spawn(async move {
            let mut backoff = Duration::from_millis(500);
            // Kept across connections: the resume point and retry delay.
            let mut parser = SseParser::new(max_event_bytes);
            loop {
                let Some(up) = weak.upgrade() else { return };
                if !up.is_ready() {
                    return;
                }
                let Some(link) = up.http_link() else { return };
                let req = if up.is_stateless() {
                    let id = up.next_request_id();
                    let msg = json!({"jsonrpc": "2.0", "id": id, "method": "subscriptions/listen",
                        "params": up.stateless_meta(Some(json!({"notifications": {"toolsListChanged": true}})))});
                    link.builder(&up, reqwest::Method::POST, Some(&msg))
                } else {
                    let req = link.builder(&up, reqwest::Method::GET, None);
                    polling::with_last_event_id(req, &parser)
                };
                let mut delay = backoff;
                match req.send().await {
                    Ok(resp) if resp.status().is_success() => {
                        backoff = Duration::from_millis(500);
                        parser.reconnected();
                        match read_sse(&up, resp, None, &mut parser).await {
                            Err(e) => {
                                tracing::debug!(server = %up.slug(), error = %e, "upstream listen stream ended");
                                parser = SseParser::new(max_event_bytes);
                            }
                            Ok(_) => {
                                if parser.retry_ms().is_some() {
                                    delay = polling::retry_delay(&parser);
                                }
                            }
                        }
                    }
                    // No standalone stream offered: nothing to listen to.
                    Ok(resp) if resp.status().as_u16() == 405 => return,
                    // A resume point the upstream does not know any more:
                    // the next attempt opens a fresh stream.
                    Ok(_) => parser = SseParser::new(max_event_bytes),
                    Err(_) => {}
                }
                drop(up);
                tokio::time::sleep(delay).await;
                if delay == backoff {
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        });
        if let Some(old) = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(handle)
        {
            old.abort();
        }
    }
}

async fn read_limited(up: &Upstream, mut resp: Response) -> Result<Vec<u8>, GatewayError> {
    let limit = up.max_response_bytes();
    if resp.content_length().is_some_and(|n| n as usize > limit) {
        return Err(up.err_too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| up.unavailable(e))? {
        if body.len() + chunk.len() > limit {
            return Err(up.err_too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// How an SSE response stream ended.
enum SseEnd {
    /// The response to the request it was read for arrived.
    Answered,
    /// The upstream closed the stream.
    Closed,
    /// The connection broke (why).
    Dropped(String),
}

/// Reads an SSE response, dispatching each message; stops once the
/// response to `via` has arrived. `parser` keeps the resume point.
async fn read_sse(
    up: &Upstream,
    mut resp: Response,
    via: Option<u64>,
    parser: &mut SseParser,
) -> Result<SseEnd, GatewayError> {
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return Ok(SseEnd::Closed),
            Err(e) => return Ok(SseEnd::Dropped(e)),
        };
        let events = parser.push(&chunk).map_err(|_| up.err_too_large())?;
        for data in events {
            if data.trim().is_empty() {
                continue;
            }
            let msg: Value = serde_json::from_str(&data)
                .map_err(|e| up.err_protocol(format!("event is not JSON: {e}")))?;
            let answers_via = via.is_some()
                && crate::jsonrpc::kind(&msg) == crate::jsonrpc::Kind::Response
                && msg.get("id").and_then(Value::as_u64) == via;
            up.dispatch(msg, via);
            if answers_via {
                return Ok(SseEnd::Answered);
            }
        }
    }
}

/// The JSON-RPC error response to request `via` in the body of a non-2xx
/// answer, if that is what the body is.
async fn json_rpc_error_body(
    up: &Arc<Upstream>,
    resp: Response,
    via: Option<u64>,
) -> Option<Value> {
    let id = via?;
    let is_json = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/json"));
    if !is_json {
        return None;
    }
    let body = read_limited(up, resp).await.ok()?;
    let value: Value = serde_json::from_slice(&body).ok()?;
    let answers = value.get("id").and_then(Value::as_u64) == Some(id);
    (answers && value.get("error").is_some_and(Value::is_object)).then_some(value)
}
