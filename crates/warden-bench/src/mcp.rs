//! A minimal MCP client over Streamable HTTP (2025-11-25 era): a session
//! (`initialize`, `notifications/initialized`), requests answered as JSON or
//! SSE, and the session's GET stream.

use serde_json::{json, Value};

use crate::error::{BenchError, Result};

pub const PROTOCOL_VERSION: &str = "2025-11-25";
pub const LIST_CHANGED: &str = "notifications/tools/list_changed";

/// One MCP session bound to one key.
pub struct McpSession {
    http: reqwest::Client,
    url: String,
    key: String,
    session_id: String,
    next_id: u64,
}

/// How a `tools/call` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// A result that is not a tool error.
    Ok,
    /// A JSON-RPC error carrying Warden's reason code (e.g. `server_disabled_by_org`).
    Refused(String),
    /// Anything else: transport errors, tool errors, other HTTP statuses.
    Failed(String),
}

impl McpSession {
    pub async fn open(http: reqwest::Client, url: &str, key: &str) -> Result<McpSession> {
        let mut session = McpSession {
            http,
            url: url.to_owned(),
            key: key.to_owned(),
            session_id: String::new(),
            next_id: 0,
        };
        let params = json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": { "name": "warden-bench", "version": env!("CARGO_PKG_VERSION") },
        });
        let (status, reply, session_id) = session.exchange("initialize", params).await?;
        match (status, reply, session_id) {
            (200, Some(reply), Some(id)) if reply.get("result").is_some() => {
                session.session_id = id;
            }
            (status, reply, _) => {
                return Err(BenchError::Mcp {
                    method: "initialize".into(),
                    status,
                    body: reply.map(|r| r.to_string()).unwrap_or_default(),
                })
            }
        }
        let ack = session
            .post(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
            .send()
            .await?;
        if !ack.status().is_success() {
            return Err(BenchError::Mcp {
                method: "notifications/initialized".into(),
                status: ack.status().as_u16(),
                body: ack.text().await.unwrap_or_default(),
            });
        }
        Ok(session)
    }

    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .post(&self.url)
            .bearer_auth(&self.key)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(body.to_string());
        if !self.session_id.is_empty() {
            request = request
                .header("mcp-session-id", &self.session_id)
                .header("mcp-protocol-version", PROTOCOL_VERSION);
        }
        request
    }

    /// Sends one request; returns the HTTP status, the JSON-RPC message
    /// answering it (if any) and the `Mcp-Session-Id` header.
    async fn exchange(
        &mut self,
        method: &str,
        params: Value,
    ) -> Result<(u16, Option<Value>, Option<String>)> {
        self.next_id += 1;
        let id = self.next_id;
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let response = self.post(&body).send().await?;
        let status = response.status().as_u16();
        let session_id = header(&response, "mcp-session-id");
        let content_type = header(&response, "content-type").unwrap_or_default();
        let text = response.text().await?;
        Ok((status, reply_for(&text, &content_type, id), session_id))
    }

    /// One request; its JSON-RPC reply (a result or an error).
    pub async fn request(&mut self, method: &str, params: Value) -> Result<Value> {
        match self.exchange(method, params).await? {
            (_, Some(reply), _) => Ok(reply),
            (status, None, _) => Err(BenchError::Mcp {
                method: method.to_owned(),
                status,
                body: "no JSON-RPC reply".into(),
            }),
        }
    }

    /// `tools/call`, classified.
    pub async fn call_tool(&mut self, name: &str, arguments: Value) -> CallOutcome {
        let params = json!({ "name": name, "arguments": arguments });
        match self.exchange("tools/call", params).await {
            Ok((status, Some(reply), _)) => classify(status, &reply),
            Ok((status, None, _)) => CallOutcome::Failed(format!("HTTP {status}, no reply")),
            Err(e) => CallOutcome::Failed(e.to_string()),
        }
    }

    /// Opens the session's GET SSE stream (where `list_changed` arrives).
    pub async fn open_stream(&self) -> Result<reqwest::Response> {
        let response = self
            .http
            .get(&self.url)
            .bearer_auth(&self.key)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &self.session_id)
            .header("mcp-protocol-version", PROTOCOL_VERSION)
            .send()
            .await?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(BenchError::Mcp {
                method: "GET stream".into(),
                status: response.status().as_u16(),
                body: response.text().await.unwrap_or_default(),
            });
        }
        Ok(response)
    }

    /// Ends the session (`DELETE`), best effort.
    pub async fn close(self) {
        let _ = self
            .http
            .delete(&self.url)
            .bearer_auth(&self.key)
            .header("mcp-session-id", &self.session_id)
            .header("mcp-protocol-version", PROTOCOL_VERSION)
            .send()
            .await;
    }
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Sorts a `tools/call` reply into success, refusal with a reason, or failure.
pub fn classify(status: u16, reply: &Value) -> CallOutcome {
    if let Some(result) = reply.get("result") {
        if status == 200 && result.get("isError") != Some(&Value::Bool(true)) {
            return CallOutcome::Ok;
        }
        return CallOutcome::Failed(format!("tool error: {result}"));
    }
    let reason = reply
        .get("error")
        .and_then(|e| e.get("data"))
        .and_then(|d| d.get("reason"))
        .and_then(Value::as_str);
    match reason {
        Some(reason) => CallOutcome::Refused(reason.to_owned()),
        None => CallOutcome::Failed(format!("HTTP {status}: {reply}")),
    }
}

/// The JSON-RPC message with `id` in a body that is JSON or an SSE stream.
pub fn reply_for(body: &str, content_type: &str, id: u64) -> Option<Value> {
    let matches = |msg: &Value| msg.get("id").and_then(Value::as_u64) == Some(id);
    if content_type.starts_with("text/event-stream") {
        let mut parser = SseParser::default();
        let mut events = parser.push(body.as_bytes());
        events.extend(parser.push(b"\n\n"));
        events
            .iter()
            .filter_map(|data| serde_json::from_str::<Value>(data).ok())
            .find(matches)
    } else {
        serde_json::from_str::<Value>(body).ok().filter(matches)
    }
}

/// Incremental SSE parser: feed it chunks as they arrive, get back the
/// `data` of each complete event.
#[derive(Debug, Default)]
pub struct SseParser {
    pending: Vec<u8>,
    data: Vec<String>,
}

impl SseParser {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let raw: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&raw[..end]);
            let line = line.strip_suffix('\r').unwrap_or(&line);
            if line.is_empty() {
                if !self.data.is_empty() {
                    events.push(self.data.join("\n"));
                    self.data.clear();
                }
            } else if let Some(rest) = line.strip_prefix("data:") {
                self.data
                    .push(rest.strip_prefix(' ').unwrap_or(rest).to_owned());
            }
        }
        events
    }
}

/// Whether an SSE event's data is a `notifications/tools/list_changed`.
pub fn is_list_changed(data: &str) -> bool {
    data.contains(LIST_CHANGED)
        && serde_json::from_str::<Value>(data)
            .ok()
            .and_then(|msg| {
                msg.get("method")
                    .and_then(Value::as_str)
                    .map(|m| m == LIST_CHANGED)
            })
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_survive_any_chunking() {
        let stream = b": keep-alive\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\r\n\r\ndata: a\ndata: b\n\n";
        for split in 1..stream.len() {
            let mut parser = SseParser::default();
            let mut events = parser.push(&stream[..split]);
            events.extend(parser.push(&stream[split..]));
            assert_eq!(events.len(), 2, "split at {split}");
            assert!(is_list_changed(&events[0]));
            assert_eq!(events[1], "a\nb");
        }
    }

    #[test]
    fn only_list_changed_counts() {
        assert!(!is_list_changed(
            r#"{"jsonrpc":"2.0","method":"notifications/message"}"#
        ));
        assert!(!is_list_changed(
            r#"{"note":"notifications/tools/list_changed"}"#
        ));
        assert!(is_list_changed(
            r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed","params":{}}"#
        ));
    }

    #[test]
    fn replies_are_found_in_json_and_sse() {
        let sse = "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n\n";
        assert!(reply_for(sse, "text/event-stream", 7).is_some());
        assert!(reply_for(sse, "text/event-stream", 8).is_none());
        let json = r#"{"jsonrpc":"2.0","id":3,"result":{"content":[]}}"#;
        assert!(reply_for(json, "application/json", 3).is_some());
        assert!(reply_for(json, "application/json", 4).is_none());
    }

    #[test]
    fn calls_are_classified() {
        let ok = json!({"jsonrpc":"2.0","id":1,"result":{"content":[]}});
        assert_eq!(classify(200, &ok), CallOutcome::Ok);
        let tool_error = json!({"jsonrpc":"2.0","id":1,"result":{"isError":true}});
        assert!(matches!(classify(200, &tool_error), CallOutcome::Failed(_)));
        let refused = json!({"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Unknown tool: demo__echo","data":{"reason":"server_disabled_by_org","decision_id":"x","revision":9}}});
        assert_eq!(
            classify(200, &refused),
            CallOutcome::Refused("server_disabled_by_org".into())
        );
        let stale =
            json!({"jsonrpc":"2.0","id":null,"error":{"code":-32002,"message":"policy_stale"}});
        assert!(matches!(classify(503, &stale), CallOutcome::Failed(_)));
    }
}
