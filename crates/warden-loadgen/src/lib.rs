//! Load generation for MCP over Streamable HTTP.
//!
//! Each worker opens its own MCP session (`initialize` + `notifications/initialized`)
//! once, then sends requests back to back (closed loop) until the run ends;
//! latency is measured per request from send to the last byte of the body.

pub mod jwt;

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};

/// Errors from the load generator.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{0} answered HTTP {1}: {2}")]
    Status(&'static str, u16, String),
    #[error("bad JSON-RPC reply to {0}: {1}")]
    Reply(&'static str, String),
    #[error("invalid duration {0:?} (use e.g. 500ms, 10s, 2m)")]
    Duration(String),
    #[error("invalid --args JSON: {0}")]
    Args(String),
    #[error("a worker task failed: {0}")]
    Join(String),
    #[error("token mode: {0}")]
    Token(String),
}

/// Protocol version the load generator offers at `initialize`.
pub const PROTOCOL_VERSION: &str = "2025-11-25";

/// Parse `500ms`, `10s`, `2m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, LoadError> {
    let bad = || LoadError::Duration(text.to_string());
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(bad()),
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Latency percentiles and throughput of one run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub throughput_rps: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

/// Summarise latencies (microseconds, any order) measured over `elapsed`.
pub fn summarize(mut latencies_us: Vec<u64>, errors: u64, elapsed: Duration) -> Summary {
    latencies_us.sort_unstable();
    let n = latencies_us.len();
    let pick = |q: f64| -> u64 {
        if n == 0 {
            return 0;
        }
        // Nearest-rank percentile.
        let rank = (q * n as f64).ceil() as usize;
        latencies_us[rank.clamp(1, n) - 1]
    };
    let seconds = elapsed.as_secs_f64();
    let mean = if n == 0 {
        0.0
    } else {
        latencies_us.iter().sum::<u64>() as f64 / n as f64
    };
    Summary {
        requests: n as u64,
        errors,
        seconds,
        throughput_rps: if seconds > 0.0 {
            n as f64 / seconds
        } else {
            0.0
        },
        p50_us: pick(0.50),
        p90_us: pick(0.90),
        p99_us: pick(0.99),
        max_us: latencies_us.last().copied().unwrap_or(0),
        mean_us: mean,
    }
}

/// Extract the JSON-RPC message with `id` from a body that is either JSON or an
/// SSE stream (`data:` lines), as Streamable HTTP allows both.
pub fn reply_for(body: &str, content_type: &str, id: u64) -> Option<Value> {
    if content_type.starts_with("text/event-stream") {
        let mut data = String::new();
        for line in body.lines().chain(std::iter::once("")) {
            if let Some(rest) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
            } else if line.is_empty() && !data.is_empty() {
                if let Ok(msg) = serde_json::from_str::<Value>(&data) {
                    if msg.get("id").and_then(Value::as_u64) == Some(id) {
                        return Some(msg);
                    }
                }
                data.clear();
            }
        }
        None
    } else {
        serde_json::from_str::<Value>(body)
            .ok()
            .filter(|msg| msg.get("id").and_then(Value::as_u64) == Some(id))
    }
}

/// Whether a reply counts as a success (a result, and not a tool error).
pub fn reply_ok(reply: &Value) -> bool {
    reply
        .get("result")
        .is_some_and(|r| r.get("isError") != Some(&Value::Bool(true)))
}

/// One MCP client session over Streamable HTTP.
pub struct Session {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
    session_id: Option<String>,
    next_id: u64,
    /// When the last reply's body was fully received (before parsing it).
    body_received: Option<Instant>,
}

impl Session {
    /// `initialize` + `notifications/initialized`.
    pub async fn open(
        client: reqwest::Client,
        url: &str,
        token: Option<&str>,
    ) -> Result<Self, LoadError> {
        let mut session = Session {
            client,
            url: url.to_string(),
            token: token.map(str::to_string),
            session_id: None,
            next_id: 0,
            body_received: None,
        };
        let params = json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "warden-loadgen", "version": env!("CARGO_PKG_VERSION")},
        });
        let (reply, session_id) = session.request_raw("initialize", params).await?;
        if reply.get("result").is_none() {
            return Err(LoadError::Reply("initialize", reply.to_string()));
        }
        session.session_id = session_id;
        let ack = session
            .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .send()
            .await?;
        if !ack.status().is_success() {
            let status = ack.status().as_u16();
            return Err(LoadError::Status(
                "notifications/initialized",
                status,
                ack.text().await?,
            ));
        }
        Ok(session)
    }

    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        let mut req = self
            .client
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(id) = &self.session_id {
            req = req
                .header("mcp-session-id", id)
                .header("mcp-protocol-version", PROTOCOL_VERSION);
        }
        req
    }

    async fn request_raw(
        &mut self,
        method: &'static str,
        params: Value,
    ) -> Result<(Value, Option<String>), LoadError> {
        self.next_id += 1;
        let id = self.next_id;
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let resp = self.post(&body).send().await?;
        let status = resp.status();
        let session_id = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.text().await?;
        self.body_received = Some(Instant::now());
        if !status.is_success() {
            return Err(LoadError::Status(method, status.as_u16(), text));
        }
        let reply =
            reply_for(&text, &content_type, id).ok_or_else(|| LoadError::Reply(method, text))?;
        Ok((reply, session_id))
    }

    /// Send one request and return its JSON-RPC reply.
    pub async fn request(
        &mut self,
        method: &'static str,
        params: Value,
    ) -> Result<Value, LoadError> {
        Ok(self.request_raw(method, params).await?.0)
    }

    /// End the session (`DELETE`), best effort.
    pub async fn close(self) {
        if self.session_id.is_none() {
            return;
        }
        let mut req = self.client.delete(&self.url);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(id) = &self.session_id {
            req = req.header("mcp-session-id", id);
        }
        let _ = req.send().await;
    }
}

/// What one run does.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub url: String,
    pub token: Option<String>,
    /// Token mode: worker `i` sends `worker_tokens[i % len]` instead of
    /// `token` (a distinct person per worker). Empty: `token` for all.
    pub worker_tokens: Vec<String>,
    /// `tools/call` or `tools/list`.
    pub method: &'static str,
    /// Params of each request.
    pub params: Value,
    pub concurrency: usize,
    /// Stop after this long (measured part only) ...
    pub duration: Option<Duration>,
    /// ... or after this many measured requests in total.
    pub requests: Option<u64>,
    /// Unmeasured requests before the measured part.
    pub warmup: Duration,
}

/// Run closed-loop load as configured and summarise the measured part.
pub async fn run(config: RunConfig) -> Result<Summary, LoadError> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(config.concurrency.max(1))
        .tcp_nodelay(true)
        .build()?;
    let mut sessions = Vec::with_capacity(config.concurrency);
    for i in 0..config.concurrency.max(1) {
        let token = match config.worker_tokens.len() {
            0 => config.token.as_deref(),
            n => Some(config.worker_tokens[i % n].as_str()),
        };
        sessions.push(Session::open(client.clone(), &config.url, token).await?);
    }

    // Warm-up: every worker runs unmeasured until the warm-up ends.
    let warm_until = Instant::now() + config.warmup;
    let mut handles = Vec::new();
    for mut session in sessions {
        let (method, params) = (config.method, config.params.clone());
        handles.push(tokio::spawn(async move {
            while Instant::now() < warm_until {
                session.request(method, params.clone()).await?;
            }
            Ok::<_, LoadError>(session)
        }));
    }
    let mut sessions = Vec::new();
    for handle in handles {
        sessions.push(handle.await.map_err(|e| LoadError::Join(e.to_string()))??);
    }

    let started = Instant::now();
    let deadline = config.duration.map(|d| started + d);
    let per_worker = config.requests.map(|n| {
        let workers = sessions.len() as u64;
        (n / workers, n % workers)
    });
    let mut handles = Vec::new();
    for (index, mut session) in sessions.into_iter().enumerate() {
        let (method, params) = (config.method, config.params.clone());
        let quota = per_worker.map(|(each, rest)| each + u64::from((index as u64) < rest));
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(4096);
            let mut errors = 0u64;
            loop {
                if quota.is_some_and(|q| latencies.len() as u64 + errors >= q)
                    || deadline.is_some_and(|d| Instant::now() >= d)
                {
                    break;
                }
                let sent = Instant::now();
                let outcome = session.request(method, params.clone()).await;
                // Send to last byte: parsing the reply here is not the server's time.
                let received = session.body_received.take().unwrap_or_else(Instant::now);
                let took = received.saturating_duration_since(sent).as_micros() as u64;
                match outcome {
                    Ok(reply) if reply_ok(&reply) => latencies.push(took),
                    _ => errors += 1,
                }
            }
            session.close().await;
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for handle in handles {
        let (mut l, e) = handle.await.map_err(|e| LoadError::Join(e.to_string()))?;
        latencies.append(&mut l);
        errors += e;
    }
    Ok(summarize(latencies, errors, started.elapsed()))
}

/// Open `count` sessions (`concurrency` at a time) and keep them open, idle.
pub async fn open_idle_sessions(
    url: &str,
    token: Option<&str>,
    count: usize,
    concurrency: usize,
) -> Result<Vec<Session>, LoadError> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let mut sessions = Vec::with_capacity(count);
    let mut remaining = count;
    while remaining > 0 {
        let batch = remaining.min(concurrency.max(1));
        let mut handles = Vec::with_capacity(batch);
        for _ in 0..batch {
            let (client, url, token) = (client.clone(), url.to_string(), token.map(str::to_string));
            handles.push(tokio::spawn(async move {
                Session::open(client, &url, token.as_deref()).await
            }));
        }
        for handle in handles {
            sessions.push(handle.await.map_err(|e| LoadError::Join(e.to_string()))??);
        }
        remaining -= batch;
    }
    Ok(sessions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5h").is_err());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let s = summarize((1..=100).collect(), 2, Duration::from_secs(2));
        assert_eq!((s.p50_us, s.p90_us, s.p99_us, s.max_us), (50, 90, 99, 100));
        assert_eq!(s.requests, 100);
        assert_eq!(s.errors, 2);
        assert_eq!(s.throughput_rps, 50.0);
        let empty = summarize(Vec::new(), 0, Duration::from_secs(1));
        assert_eq!(empty.p99_us, 0);
    }

    #[test]
    fn replies_are_found_in_json_and_sse_bodies() {
        let json_body = r#"{"jsonrpc":"2.0","id":7,"result":{}}"#;
        assert!(reply_for(json_body, "application/json", 7).is_some());
        assert!(reply_for(json_body, "application/json", 8).is_none());
        // A priming event, a notification, then the reply split over two `data:`
        // lines (joined with a newline, which JSON accepts as whitespace).
        let sse = "id: 1\ndata: \n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\ndata: \"result\":{\"isError\":true}}\n\n";
        let reply = reply_for(sse, "text/event-stream", 7).unwrap();
        assert!(!reply_ok(&reply));
    }
}
