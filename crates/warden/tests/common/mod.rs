//! Starting the real `warden serve --demo` for the integration tests that
//! need extra settings or restarts.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Warden {
    pub child: Child,
    pub base: String,
    pub port: u16,
    /// Printed only when the demo key is created (the first start).
    pub demo_key: Option<String>,
    /// Printed only on the first start.
    pub admin_token: Option<String>,
    /// Everything printed up to the end of the instructions.
    pub printed: String,
}

impl Drop for Warden {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `warden serve --demo` on `dir`'s database with extra environment
/// variables and reads what it prints.
pub fn start_demo(dir: &tempfile::TempDir, envs: &[(&str, &str)]) -> Warden {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--database-url")
        .arg(format!("sqlite://{}/warden.db", dir.path().display()))
        .env_remove("WARDEN_ADMIN_TOKEN")
        .env_remove("WARDEN_SECRET_KEY")
        .env("RUST_LOG", "warn")
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut admin_token, mut demo_key, mut printed) = (None, None, String::new());
    for line in stdout.by_ref() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if let Some(t) = line.trim().strip_prefix("WARDEN_ADMIN_TOKEN=") {
            admin_token = Some(t.to_owned());
        }
        if let Some(rest) = line.trim().strip_prefix("Demo key     : ") {
            demo_key = rest
                .split_whitespace()
                .next()
                .filter(|k| k.starts_with("wdn_"))
                .map(str::to_owned);
        }
        if line.contains("Or with the Python MCP SDK") {
            break;
        }
    }
    std::thread::spawn(move || stdout.for_each(drop));
    Warden {
        child,
        base: format!("http://127.0.0.1:{port}"),
        port,
        demo_key,
        admin_token,
        printed,
    }
}

/// One MCP request (stateless era) with `key`; the JSON-RPC reply.
pub async fn mcp(client: &reqwest::Client, base: &str, key: &str, body: Value) -> Value {
    let req = client
        .post(format!("{base}/mcp"))
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream");
    let resp = stateless_request(req, body).send().await.unwrap();
    let text = resp.text().await.unwrap();
    let json = text
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .unwrap_or(&text);
    serde_json::from_str(json.trim()).unwrap()
}

/// Calls `demo__echo` until the demo upstream's catalog is loaded.
pub async fn echo_until_ready(client: &reqwest::Client, base: &str, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let call = mcp(
            client,
            base,
            key,
            serde_json::json!({"jsonrpc":"2.0","id":1,"method":"tools/call",
                "params":{"name":"demo__echo","arguments":{"text":"ready"}}}),
        )
        .await;
        if call["result"]["content"].to_string().contains("ready") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "demo__echo never answered: {call}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of a Prometheus sample whose line starts with `prefix`
/// (summed over matching lines), 0 if absent.
pub fn metric(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A 2026-07-28 request as that wire requires it: `_meta` with the protocol
/// version and the client's capabilities, `Mcp-Method` and `Mcp-Name`.
fn stateless_request(
    req: reqwest::RequestBuilder,
    mut body: serde_json::Value,
) -> reqwest::RequestBuilder {
    if !body["params"].is_object() {
        body["params"] = serde_json::json!({});
    }
    body["params"]["_meta"] = serde_json::json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let method = body["method"].as_str().unwrap_or("").to_owned();
    let mut req = req
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    if let Some(name) = body["params"]["name"].as_str() {
        req = req.header("mcp-name", name.to_owned());
    }
    req.json(&body)
}
