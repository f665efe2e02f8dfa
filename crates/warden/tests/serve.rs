//! The real `warden` binary, started as a user would: `serve --demo` on a
//! temp SQLite file, then its operational endpoints, an MCP call, the
//! metrics it produced, a clean shutdown on SIGTERM, and clear refusals of
//! bad configuration.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Warden {
    child: Child,
    base: String,
    demo_key: String,
    admin_token: String,
}

impl Drop for Warden {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `warden serve --demo` and reads the printed admin token and key.
fn start_demo(dir: &tempfile::TempDir) -> Warden {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--database-url")
        .arg(format!("sqlite://{}/warden.db", dir.path().display()))
        .env_remove("WARDEN_ADMIN_TOKEN")
        .env_remove("WARDEN_SECRET_KEY")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut admin_token, mut demo_key) = (None, None);
    for line in stdout.by_ref() {
        let line = line.unwrap();
        if let Some(t) = line.trim().strip_prefix("WARDEN_ADMIN_TOKEN=") {
            admin_token = Some(t.to_owned());
        }
        if let Some(rest) = line.trim().strip_prefix("Demo key     : ") {
            demo_key = rest.split_whitespace().next().map(str::to_owned);
        }
        if line.contains("Or with the Python MCP SDK") {
            break;
        }
    }
    // Keep draining stdout like a terminal would.
    std::thread::spawn(move || stdout.for_each(drop));
    Warden {
        child,
        base: format!("http://127.0.0.1:{port}"),
        demo_key: demo_key.expect("demo key printed"),
        admin_token: admin_token.expect("first-start admin token printed"),
    }
}

async fn mcp(client: &reqwest::Client, w: &Warden, body: Value) -> Value {
    let req = client
        .post(format!("{}/mcp", w.base))
        .bearer_auth(&w.demo_key)
        .header("accept", "application/json, text/event-stream");
    let resp = stateless_request(req, body).send().await.unwrap();
    let text = resp.text().await.unwrap();
    // JSON, or one SSE event carrying it.
    let json = text
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .unwrap_or(&text);
    serde_json::from_str(json.trim()).unwrap()
}

async fn wait_for_tool(client: &reqwest::Client, w: &Warden, tool: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = mcp(
            client,
            w,
            json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}),
        )
        .await;
        let found = list["result"]["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["name"] == tool));
        if found {
            return;
        }
        assert!(Instant::now() < deadline, "{tool} never listed: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn demo_serves_mcp_metrics_health_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let w = start_demo(&dir);
    let client = reqwest::Client::new();

    assert_eq!(
        client
            .get(format!("{}/healthz", w.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(format!("{}/readyz", w.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    wait_for_tool(&client, &w, "demo__echo").await;
    let call = mcp(
        &client,
        &w,
        json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"demo__echo","arguments":{"text":"hi"}}}),
    )
    .await;
    assert!(
        call["result"]["content"].to_string().contains("hi"),
        "{call}"
    );

    // The org admin switch is in force for the very next call.
    let off = client
        .patch(format!("{}/admin/v1/orgs/demo/grants/demo", w.base))
        .bearer_auth(&w.admin_token)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 200);
    let denied = mcp(
        &client,
        &w,
        json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"demo__echo","arguments":{"text":"hi"}}}),
    )
    .await;
    assert_eq!(denied["error"]["code"], -32602, "{denied}");
    assert_eq!(denied["error"]["data"]["reason"], "server_disabled_by_org");

    let metrics = client
        .get(format!("{}/metrics", w.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "warden_gateway_decisions_total",
        "server_disabled_by_org",
        "warden_policy_revision",
        "warden_gateway_live_sessions",
        "warden_gateway_requests_total{method=\"tools/call\"",
        "warden_upstream_request_duration_seconds",
        "server=\"demo\"",
    ] {
        assert!(
            metrics.contains(needle),
            "{needle} missing from /metrics:\n{metrics}"
        );
    }

    // Both call decisions reached the audit log through the real writer.
    let deadline = Instant::now() + Duration::from_secs(5);
    let decisions = loop {
        let page: Value = client
            .get(format!("{}/admin/v1/audit?kind=decision&limit=50", w.base))
            .bearer_auth(&w.admin_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items: Vec<Value> = page["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["action"] == "tools/call" || e["decision"]["method"] == "tools/call")
            .collect();
        if items.len() >= 2 || Instant::now() > deadline {
            break items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let has = |allowed: bool, reason: Value| {
        decisions.iter().any(|e| {
            e["decision"]["allowed"] == allowed
                && e["decision"]["reason"] == reason
                && e["decision"]["tool"] == "echo"
        })
    };
    assert!(
        has(true, Value::Null),
        "allowed call not audited: {decisions:?}"
    );
    assert!(
        has(false, json!("server_disabled_by_org")),
        "denied call not audited: {decisions:?}"
    );

    // Missing key: 401 with a challenge.
    let anon = client
        .post(format!("{}/mcp", w.base))
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    assert!(anon.headers().contains_key("www-authenticate"));

    // SIGTERM: graceful shutdown, exit status 0.
    let mut w = w;
    let pid = w.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = w.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "warden did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");

    // The secret key file was created private, beside the database.
    let key_file = dir.path().join("warden.db.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

fn serve_fails(args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("serve")
        .args(args)
        .envs(envs.iter().copied())
        .env_remove("WARDEN_SECRET_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success(), "expected failure for {args:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_configuration_is_refused_with_a_clear_message() {
    let err = serve_fails(&["--database-url", "mysql://x"], &[]);
    assert!(
        err.contains("database_url must start with sqlite: or postgres://"),
        "{err}"
    );
    let err = serve_fails(&[], &[("WARDEN_MAX_STALENESS_MS", "soon")]);
    assert!(err.contains("WARDEN_MAX_STALENESS_MS"), "{err}");
    let err = serve_fails(
        &["--database-url", "postgres://u:hunter2@127.0.0.1:1/w"],
        &[],
    );
    assert!(err.contains("WARDEN_SECRET_KEY"), "{err}");
    assert!(!err.contains("hunter2"), "password leaked: {err}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("warden.toml");
    std::fs::write(&bad, "lisen = \"127.0.0.1:1\"\n").unwrap();
    let err = serve_fails(&["--config", bad.to_str().unwrap()], &[]);
    assert!(err.contains("unknown field"), "{err}");
}

#[tokio::test]
async fn a_closed_stdout_does_not_stop_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--database-url")
        .arg(format!("sqlite://{}/warden.db", dir.path().display()))
        .env_remove("WARDEN_ADMIN_TOKEN")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Nobody reads what it prints (first-start token, demo key).
    drop(child.stdout.take());
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
        {
            if r.status() == 200 {
                break;
            }
        }
        assert!(child.try_wait().unwrap().is_none(), "warden exited");
        assert!(Instant::now() < deadline, "warden never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "warden exited after printing"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// `warden serve` (no demo) on `dir`'s database with `WARDEN_ADMIN_TOKEN`.
struct Serve {
    child: Child,
    base: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn serve_with_admin_token(dir: &tempfile::TempDir, token: &str) -> Serve {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--database-url")
        .arg(format!("sqlite://{}/warden.db", dir.path().display()))
        .env("WARDEN_ADMIN_TOKEN", token)
        .env_remove("WARDEN_SECRET_KEY")
        .env_remove("WARDEN_BOOTSTRAP")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                std::io::Read::read_to_string(&mut stderr, &mut err).unwrap();
            }
            panic!("warden serve exited ({status}): {err}");
        }
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status() == 200 {
                return Serve { child, base };
            }
        }
        assert!(Instant::now() < deadline, "warden never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn whoami(w: &Serve, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/admin/v1/whoami", w.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_new_admin_token_in_the_environment_replaces_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let old = "the-first-configured-admin-token";
    let new = "the-rotated-configured-admin-token";

    let w = serve_with_admin_token(&dir, old).await;
    assert_eq!(whoami(&w, old).await, 200);
    drop(w);

    // Restarting with another token starts, and only the new one works.
    let w = serve_with_admin_token(&dir, new).await;
    assert_eq!(whoami(&w, new).await, 200);
    assert_eq!(whoami(&w, old).await, 401);
    let tokens: Value = reqwest::Client::new()
        .get(format!("{}/admin/v1/admin-tokens", w.base))
        .bearer_auth(new)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<_> = tokens["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bootstrap"], "{tokens}");
    drop(w);

    // The same token again: starts, unchanged.
    let w = serve_with_admin_token(&dir, new).await;
    assert_eq!(whoami(&w, new).await, 200);
    assert_eq!(whoami(&w, old).await, 401);
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
