//! Shared test setup: a policy, a gateway on 127.0.0.1:0, an MCP client.
#![allow(dead_code)]

pub mod fixture;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use warden_gateway::{ChannelRecorder, DecisionRecorder, Gateway, GatewayConfig, StaticUpstreams};
use warden_policy::*;
use warden_store::{
    DecisionOutcome, DecisionRecord, LivePolicy, Secret, Transport, UpstreamConfig,
};

pub const KEY_A: &str = "key-alpha-secret";
pub const KEY_B: &str = "key-beta-secret";
pub const KEY_SVC: &str = "key-service-secret";

pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn key(id: i64, token: &str, scope: Scope) -> KeyRow {
    KeyRow {
        id: KeyId(id),
        org: OrgId(1),
        token_digest: digest(token),
        team: None,
        agent: None,
        scope,
        revoked: false,
        expires_at_ms: None,
        may_assert_end_user: false,
        may_assert_agent: false,
    }
}

pub fn only(server: i64, tools: &[&str]) -> Scope {
    let mut g = ScopeGrants::default();
    g.servers
        .insert(ServerId(server), ToolFilter::only(tools.iter().copied()));
    Scope::Grants(g)
}

/// One org; servers 1..=n with the given slugs, all granted with `*`.
/// Key A (id 1) inherits; key B (id 2) is limited to server 1 tool "echo".
/// The `_meta` every 2026-07-28 request carries.
pub fn stateless_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test-client", "version": "1"},
    })
}

/// `params` with the 2026-07-28 `_meta` added.
pub fn with_meta(mut params: Value) -> Value {
    if params.get("_meta").is_none() {
        params["_meta"] = stateless_meta();
    }
    params
}

pub fn rows(revision: u64, slugs: &[&str]) -> PolicyRows {
    PolicyRows {
        revision,
        orgs: vec![OrgRow {
            id: OrgId(1),
            slug: "acme".into(),
            suspended: false,
        }],
        servers: slugs
            .iter()
            .enumerate()
            .map(|(i, s)| ServerRow {
                id: ServerId(i as i64 + 1),
                slug: s.to_string(),
                owner_org: None,
                enabled: true,
            })
            .collect(),
        org_grants: (1..=slugs.len() as i64)
            .map(|i| OrgGrantRow {
                org: OrgId(1),
                server: ServerId(i),
                enabled: true,
                filter: ToolFilter::All,
            })
            .collect(),
        keys: vec![
            key(1, KEY_A, Scope::Inherit),
            key(2, KEY_B, only(1, &["echo"])),
        ],
        ..Default::default()
    }
}

pub fn http_upstream(id: i64, slug: &str, url: &str, timeout_ms: u64) -> UpstreamConfig {
    let mut secret_headers = BTreeMap::new();
    secret_headers.insert(
        "x-upstream-secret".to_string(),
        Secret::new(format!("secret-for-{slug}")),
    );
    UpstreamConfig {
        server: ServerId(id),
        slug: slug.into(),
        owner_org: None,
        transport: Transport::Http { url: url.into() },
        secret_headers,
        timeout_ms,
        egress_restricted: false,
        config_revision: 1,
    }
}

pub struct Harness {
    pub addr: SocketAddr,
    pub gateway: Gateway,
    pub live: Arc<LivePolicy>,
    pub upstreams: Arc<StaticUpstreams>,
    pub decisions: tokio::sync::mpsc::UnboundedReceiver<DecisionRecord>,
    /// Latencies of allowed calls, known once they ended.
    pub outcomes: tokio::sync::mpsc::UnboundedReceiver<DecisionOutcome>,
    pub http: reqwest::Client,
}

pub async fn start(rows: PolicyRows, upstreams: Vec<UpstreamConfig>) -> Harness {
    start_with(
        LivePolicy::new(Snapshot::build(rows).unwrap()),
        upstreams,
        GatewayConfig::default(),
    )
    .await
}

pub async fn start_with(
    live: Arc<LivePolicy>,
    upstreams: Vec<UpstreamConfig>,
    config: GatewayConfig,
) -> Harness {
    start_recording(live, upstreams, config, None).await
}

/// Like [`start_with`], with decisions going to `recorder` instead of the
/// harness's channels (which then stay empty).
pub async fn start_recording(
    live: Arc<LivePolicy>,
    upstreams: Vec<UpstreamConfig>,
    mut config: GatewayConfig,
    recorder: Option<Arc<dyn DecisionRecorder>>,
) -> Harness {
    config.upstream.max_response_bytes = 1024 * 1024;
    let source = StaticUpstreams::new(upstreams);
    let (channel, decisions, outcomes) = ChannelRecorder::with_outcomes();
    let recorder = recorder.unwrap_or_else(|| Arc::new(channel));
    let gateway = Gateway::start(config, Arc::clone(&live), source.clone(), recorder)
        .await
        .unwrap();
    gateway.wait_upstreams_ready(Duration::from_secs(5)).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = gateway.router();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Harness {
        addr,
        gateway,
        live,
        upstreams: source,
        decisions,
        outcomes,
        http: reqwest::Client::new(),
    }
}

impl Harness {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Installs `rows` (their revision must be newer).
    pub fn install(&self, rows: PolicyRows) {
        assert!(self.live.install(Snapshot::build(rows).unwrap()));
    }

    pub async fn post_raw(
        &self,
        path: &str,
        key: Option<&str>,
        session: Option<&str>,
        extra: &[(&str, &str)],
        body: &Value,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(self.url(path))
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
            if !extra.iter().any(|(k, _)| *k == "mcp-protocol-version") {
                req = req.header("mcp-protocol-version", "2025-11-25");
            }
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// Initializes a 2025-11-25 session; returns its id.
    pub async fn initialize(&self, path: &str, key: &str) -> String {
        self.initialize_with(path, key, json!({})).await
    }

    /// Initializes a 2025-11-25 session declaring `capabilities`.
    pub async fn initialize_with(&self, path: &str, key: &str, capabilities: Value) -> String {
        let resp = self
            .post_raw(path, Some(key), None, &[], &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": capabilities, "clientInfo": {"name": "t", "version": "1"}}}))
            .await;
        assert_eq!(resp.status(), 200);
        let sid = resp.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["result"]["protocolVersion"], "2025-11-25");
        let n = self
            .post_raw(
                path,
                Some(key),
                Some(&sid),
                &[],
                &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            )
            .await;
        assert_eq!(n.status(), 202);
        sid
    }

    /// A request in a session; the response message (JSON or last SSE event).
    pub async fn rpc(
        &self,
        path: &str,
        key: &str,
        session: &str,
        id: i64,
        method: &str,
        params: Value,
    ) -> Value {
        let resp = self
            .post_raw(
                path,
                Some(key),
                Some(session),
                &[],
                &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
            )
            .await;
        assert_eq!(resp.status(), 200, "{method}");
        response_message(resp).await
    }

    /// A stateless (2026-07-28) request.
    pub async fn rpc_stateless(
        &self,
        path: &str,
        key: &str,
        id: i64,
        method: &str,
        params: Value,
    ) -> Value {
        let named = params
            .get("name")
            .or_else(|| params.get("uri"))
            .or_else(|| params.get("taskId"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let resp = self
            .post_raw(
                path,
                Some(key),
                None,
                &[
                    ("mcp-protocol-version", "2026-07-28"),
                    ("mcp-method", method),
                    ("mcp-name", named.as_str()),
                ],
                &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": with_meta(params)}),
            )
            .await;
        assert_eq!(resp.status(), 200, "{method}");
        response_message(resp).await
    }

    pub async fn list_tool_names(&self, path: &str, key: &str, session: &str) -> Vec<String> {
        let r = self
            .rpc(path, key, session, 99, "tools/list", json!({}))
            .await;
        r["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Opens the session's GET stream.
    pub async fn open_stream(&self, path: &str, key: &str, session: &str) -> SseReader {
        SseReader::new(self.open_stream_raw(path, key, session).await)
    }

    /// Opens the session's GET stream; the response, its status checked.
    pub async fn open_stream_raw(&self, path: &str, key: &str, session: &str) -> reqwest::Response {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(key)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp
    }
}

/// Every message `reader` gets within `within`.
pub async fn drain(reader: &mut SseReader, within: Duration) -> Vec<Value> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while let Some(m) = reader
        .next(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await
    {
        out.push(m);
    }
    out
}

pub fn headers_of(resp: &reqwest::Response) -> HeaderMap {
    resp.headers().clone()
}

/// The final JSON-RPC message of a response (JSON body or SSE stream).
pub async fn response_message(resp: reqwest::Response) -> Value {
    let all = all_messages(resp).await;
    all.last().cloned().expect("a message")
}

pub async fn all_messages(resp: reqwest::Response) -> Vec<Value> {
    let is_sse = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("text/event-stream"));
    if !is_sse {
        return vec![resp.json().await.unwrap()];
    }
    let mut reader = SseReader::new(resp);
    let mut out = Vec::new();
    while let Some(m) = reader.next(Duration::from_secs(10)).await {
        out.push(m);
    }
    out
}

pub struct SseReader {
    resp: reqwest::Response,
    buf: String,
    pub ended: bool,
}

impl SseReader {
    pub fn new(resp: reqwest::Response) -> Self {
        SseReader {
            resp,
            buf: String::new(),
            ended: false,
        }
    }

    /// The next message, or None on end of stream or timeout.
    pub async fn next(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(pos) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..pos + 2).collect();
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                // No data, or a priming event's empty data: no message.
                if data.iter().all(|d| d.trim().is_empty()) {
                    continue;
                }
                return Some(serde_json::from_str(&data.join("\n")).unwrap());
            }
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Ok(Ok(Some(chunk))) => self
                    .buf
                    .push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n")),
                Ok(_) => {
                    self.ended = true;
                    return None;
                }
                Err(_) => return None,
            }
        }
    }
}

/// Two orgs, one platform server `files` granted to both; key A in org 1,
/// key B in org 2.
pub fn two_orgs(revision: u64, org1_granted: bool, b_revoked: bool) -> PolicyRows {
    let org = |id: i64, slug: &str| OrgRow {
        id: OrgId(id),
        slug: slug.into(),
        suspended: false,
    };
    let grant = |org: i64, enabled: bool| OrgGrantRow {
        org: OrgId(org),
        server: ServerId(1),
        enabled,
        filter: ToolFilter::All,
    };
    PolicyRows {
        revision,
        orgs: vec![org(1, "acme"), org(2, "globex")],
        servers: vec![ServerRow {
            id: ServerId(1),
            slug: "files".into(),
            owner_org: None,
            enabled: true,
        }],
        org_grants: vec![grant(1, org1_granted), grant(2, true)],
        keys: vec![
            key(1, KEY_A, Scope::Inherit),
            KeyRow {
                org: OrgId(2),
                revoked: b_revoked,
                ..key(2, KEY_B, Scope::Inherit)
            },
        ],
        ..Default::default()
    }
}
