//! Every caller's upstream traffic is its own (issue 9): two tenants on one
//! session-era upstream each get an upstream session of their own, opened
//! with their own capabilities, closed with their downstream session, and
//! nothing the upstream sends one of them (a request to the client, a log
//! message, a `resources/updated`) reaches the other. The fixture keeps
//! state per `Mcp-Session-Id`; with the shared-session code every one of
//! these tests fails (one upstream session, nothing routed to anyone).

mod common;

use std::time::Duration;

use common::fixture::{self, Fixture, Mode};
use common::*;
use serde_json::{json, Value};
use warden_gateway::GatewayConfig;
use warden_policy::*;
use warden_store::LivePolicy;

const PATH: &str = "/mcp/servers/files";

async fn setup(config: GatewayConfig) -> (Fixture, Harness) {
    let fx = fixture::start(Mode::Normal, &["echo", "whisper", "slow"]).await;
    let h = start_with(
        LivePolicy::new(Snapshot::build(two_orgs(1, true, false)).unwrap()),
        vec![http_upstream(1, "files", &fx.url(), 10_000)],
        config,
    )
    .await;
    (fx, h)
}

fn call(id: i64, name: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": args}})
}

/// A request sent in the background; its final message.
fn in_background(h: &Harness, key: &str, sid: &str, body: Value) -> tokio::task::JoinHandle<Value> {
    let req = h
        .http
        .post(h.url(PATH))
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-session-id", sid)
        .header("mcp-protocol-version", "2025-11-25")
        .body(body.to_string());
    tokio::spawn(async move { response_message(req.send().await.unwrap()).await })
}

/// The upstream session id the fixture saw on the last `tools/call` named
/// `name`.
fn upstream_session_of_call(fx: &Fixture, name: &str) -> String {
    let calls = fx.state.requests("tools/call");
    let (headers, _) = calls
        .iter()
        .rev()
        .find(|(_, b)| b["params"]["name"] == name)
        .expect("the call reached the upstream");
    headers["mcp-session-id"].to_str().unwrap().to_owned()
}

async fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    for _ in 0..150 {
        if let Some(v) = probe() {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// Messages of `method` arriving on a stream within `within`.
#[tokio::test]
async fn each_caller_gets_an_upstream_session_of_its_own_with_its_own_capabilities() {
    let (fx, h) = setup(GatewayConfig::default()).await;
    let a = h
        .initialize_with(PATH, KEY_A, json!({"sampling": {}, "roots": {}}))
        .await;
    let b = h.initialize(PATH, KEY_B).await;
    let r = h
        .rpc(
            PATH,
            KEY_A,
            &a,
            1,
            "tools/call",
            json!({"name": "echo", "arguments": {}}),
        )
        .await;
    assert_eq!(r["result"]["content"][0]["text"], "echo called", "{r}");
    let a_upstream = upstream_session_of_call(&fx, "echo");
    let r = h
        .rpc(
            PATH,
            KEY_B,
            &b,
            1,
            "tools/call",
            json!({"name": "echo", "arguments": {}}),
        )
        .await;
    assert_eq!(r["result"]["content"][0]["text"], "echo called", "{r}");
    let b_upstream = upstream_session_of_call(&fx, "echo");
    let ids = fx.state.session_ids();
    assert_eq!(
        ids.len(),
        3,
        "the shared connection and one per caller: {ids:?}"
    );
    assert_ne!(a_upstream, b_upstream);
    assert_ne!(a_upstream, ids[0], "A's call went on the shared session");
    // Each caller's session declared what that client declared, no more.
    let a_init = fx.state.init_params(&a_upstream).unwrap();
    assert_eq!(a_init["capabilities"], json!({"sampling": {}, "roots": {}}));
    assert_eq!(a_init["clientInfo"]["name"], "t");
    let b_init = fx.state.init_params(&b_upstream).unwrap();
    assert_eq!(b_init["capabilities"], json!({}));
    // A second call reuses the caller's session.
    h.rpc(
        PATH,
        KEY_A,
        &a,
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {}}),
    )
    .await;
    assert_eq!(upstream_session_of_call(&fx, "echo"), a_upstream);
    assert_eq!(fx.state.session_ids().len(), 3);
}

/// The upstream sends a log message and a sampling request on the GET
/// stream of A's upstream session while B also has a call in flight: A gets
/// both and answers; B gets neither, and B's forged answer to A's request
/// goes nowhere.
#[tokio::test]
async fn a_request_and_a_log_message_reach_only_the_caller_they_belong_to() {
    let (fx, h) = setup(GatewayConfig::default()).await;
    let a = h
        .initialize_with(PATH, KEY_A, json!({"sampling": {}}))
        .await;
    let b = h
        .initialize_with(PATH, KEY_B, json!({"sampling": {}}))
        .await;
    let mut a_stream = h.open_stream(PATH, KEY_A, &a).await;
    let mut b_stream = h.open_stream(PATH, KEY_B, &b).await;
    let b_call = in_background(&h, KEY_B, &b, call(7, "slow", json!({"ms": 1500})));
    let a_call = in_background(&h, KEY_A, &a, call(8, "whisper", json!({})));

    let log = a_stream
        .next(Duration::from_secs(5))
        .await
        .expect("A's log message");
    assert_eq!(log["method"], "notifications/message", "{log}");
    let a_upstream = log["params"]["data"]
        .as_str()
        .unwrap()
        .trim_start_matches("for ")
        .to_owned();
    let ask = a_stream
        .next(Duration::from_secs(5))
        .await
        .expect("A's sampling request");
    assert_eq!(ask["method"], "sampling/createMessage", "{ask}");
    assert_eq!(ask["params"]["x-for"], a_upstream.as_str());
    let ask_id = ask["id"].as_str().unwrap().to_owned();
    assert!(ask_id.starts_with("warden:files:"), "{ask_id}");

    // B answers A's request (it guessed the id): not delivered.
    let forged = h
        .post_raw(PATH, Some(KEY_B), Some(&b), &[], &json!({"jsonrpc": "2.0", "id": ask_id,
            "result": {"role": "assistant", "content": {"type": "text", "text": "from B"}, "model": "b"}}))
        .await;
    assert_eq!(forged.status(), 202);
    let answered = h
        .post_raw(PATH, Some(KEY_A), Some(&a), &[], &json!({"jsonrpc": "2.0", "id": ask_id,
            "result": {"role": "assistant", "content": {"type": "text", "text": "from A"}, "model": "a"}}))
        .await;
    assert_eq!(answered.status(), 202);

    let a_result = a_call.await.unwrap();
    assert_eq!(a_result["result"]["session"], a_upstream.as_str());
    assert_eq!(
        a_result["result"]["answer"]["result"]["content"]["text"], "from A",
        "{a_result}"
    );
    let b_result = b_call.await.unwrap();
    assert_eq!(b_result["result"]["content"][0]["text"], "slow done");
    let b_saw = drain(&mut b_stream, Duration::from_millis(300)).await;
    assert!(b_saw.is_empty(), "B saw A's traffic: {b_saw:?}");
    assert_ne!(upstream_session_of_call(&fx, "slow"), a_upstream);
}

#[tokio::test]
async fn a_subscription_is_the_subscribers_alone_and_ends_with_its_access() {
    let (fx, h) = setup(GatewayConfig::default()).await;
    let a = h.initialize(PATH, KEY_A).await;
    let b = h.initialize(PATH, KEY_B).await;
    let mut a_stream = h.open_stream(PATH, KEY_A, &a).await;
    let mut b_stream = h.open_stream(PATH, KEY_B, &b).await;
    let r = h
        .rpc(
            PATH,
            KEY_A,
            &a,
            1,
            "resources/subscribe",
            json!({"uri": "file:///readme"}),
        )
        .await;
    assert!(r.get("result").is_some(), "{r}");
    let r = h
        .rpc(
            PATH,
            KEY_B,
            &b,
            1,
            "resources/read",
            json!({"uri": "file:///readme"}),
        )
        .await;
    assert!(r.get("result").is_some(), "{r}");
    let subs = fx.state.subscriptions.lock().unwrap().clone();
    assert_eq!(subs.len(), 1, "{subs:?}");
    let a_upstream = subs[0].0.clone();
    assert_ne!(
        a_upstream,
        fx.state.session_ids()[0],
        "subscribed on the shared session"
    );
    assert!(fx.state.wait_stream(&a_upstream).await);

    assert_eq!(
        fx.state.resource_updated("file:///readme"),
        vec![a_upstream.clone()]
    );
    let note = a_stream
        .next(Duration::from_secs(5))
        .await
        .expect("A is told");
    assert_eq!(note["method"], "notifications/resources/updated");
    assert_eq!(note["params"]["uri"], "file:///readme");
    let b_saw = drain(&mut b_stream, Duration::from_millis(300)).await;
    assert!(b_saw.is_empty(), "B saw A's subscription: {b_saw:?}");

    // A's org loses the server: the upstream still has the subscription,
    // but A is told nothing more from that server.
    h.install(two_orgs(2, false, false));
    tokio::time::sleep(Duration::from_millis(200)).await;
    fx.state.resource_updated("file:///readme");
    let a_saw = drain(&mut a_stream, Duration::from_millis(500)).await;
    assert!(
        a_saw
            .iter()
            .all(|m| m["method"] != "notifications/resources/updated"),
        "relayed after access ended: {a_saw:?}"
    );
}

#[tokio::test]
async fn the_log_level_is_set_on_the_callers_session_only() {
    let (fx, h) = setup(GatewayConfig::default()).await;
    let a = h.initialize(PATH, KEY_A).await;
    let b = h.initialize(PATH, KEY_B).await;
    h.rpc(
        PATH,
        KEY_B,
        &b,
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {}}),
    )
    .await;
    let b_upstream = upstream_session_of_call(&fx, "echo");
    let r = h
        .rpc(
            PATH,
            KEY_A,
            &a,
            1,
            "logging/setLevel",
            json!({"level": "debug"}),
        )
        .await;
    assert!(r.get("result").is_some(), "{r}");
    let levels = fx.state.levels.lock().unwrap().clone();
    assert_eq!(levels.len(), 1, "{levels:?}");
    let (sid, level) = levels.iter().next().unwrap();
    assert_eq!(level, "debug");
    assert_ne!(sid, &b_upstream);
    assert_ne!(sid, &fx.state.session_ids()[0], "set on the shared session");
}

async fn deleted(fx: &Fixture, sid: &str) -> bool {
    wait_for(|| {
        fx.state
            .requests("DELETE")
            .iter()
            .any(|(h, _)| h.get("mcp-session-id").is_some_and(|v| v == sid))
            .then_some(())
    })
    .await
    .is_some()
}

#[tokio::test]
async fn a_callers_upstream_session_ends_with_its_session_and_with_its_key() {
    let (fx, h) = setup(GatewayConfig::default()).await;
    let a = h.initialize(PATH, KEY_A).await;
    let b = h.initialize(PATH, KEY_B).await;
    h.rpc(
        PATH,
        KEY_A,
        &a,
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {}}),
    )
    .await;
    let a_upstream = upstream_session_of_call(&fx, "echo");
    h.rpc(
        PATH,
        KEY_B,
        &b,
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {}}),
    )
    .await;
    let b_upstream = upstream_session_of_call(&fx, "echo");
    assert!(fx.state.requests("DELETE").is_empty());
    assert_eq!(h.gateway.upstream_caller_sessions(), 2);

    // A ends its session.
    let resp = h
        .http
        .delete(h.url(PATH))
        .bearer_auth(KEY_A)
        .header("mcp-session-id", &a)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    assert!(
        deleted(&fx, &a_upstream).await,
        "A's upstream session not deleted"
    );
    assert!(!deleted_now(&fx, &b_upstream));
    assert_eq!(h.gateway.upstream_caller_sessions(), 1);

    // B's key is revoked.
    h.install(two_orgs(2, true, true));
    assert!(
        deleted(&fx, &b_upstream).await,
        "B's upstream session not deleted"
    );
    assert_eq!(h.gateway.upstream_caller_sessions(), 0);
    let shared = fx.state.session_ids()[0].clone();
    assert!(!deleted_now(&fx, &shared), "the shared session was ended");
}

fn deleted_now(fx: &Fixture, sid: &str) -> bool {
    fx.state
        .requests("DELETE")
        .iter()
        .any(|(h, _)| h.get("mcp-session-id").is_some_and(|v| v == sid))
}

#[tokio::test]
async fn callers_beyond_the_servers_cap_are_refused() {
    let mut config = GatewayConfig::default();
    config.upstream.max_caller_sessions = 1;
    let (fx, h) = setup(config).await;
    let a = h.initialize(PATH, KEY_A).await;
    let b = h.initialize(PATH, KEY_B).await;
    let r = h
        .rpc(
            PATH,
            KEY_A,
            &a,
            1,
            "tools/call",
            json!({"name": "echo", "arguments": {}}),
        )
        .await;
    assert!(r.get("result").is_some(), "{r}");
    let r = h
        .rpc(
            PATH,
            KEY_B,
            &b,
            1,
            "tools/call",
            json!({"name": "echo", "arguments": {}}),
        )
        .await;
    assert_eq!(
        r["error"]["data"]["reason"], "upstream_sessions_full",
        "{r}"
    );
    assert_eq!(r["error"]["data"]["limit"], 1);
    assert_eq!(r["error"]["data"]["server"], "files");
    assert_eq!(
        fx.state.requests("tools/call").len(),
        1,
        "B's call reached the upstream"
    );
    // A leaves: B gets the place.
    h.http
        .delete(h.url(PATH))
        .bearer_auth(KEY_A)
        .header("mcp-session-id", &a)
        .send()
        .await
        .unwrap();
    let r = h
        .rpc(
            PATH,
            KEY_B,
            &b,
            2,
            "tools/call",
            json!({"name": "echo", "arguments": {}}),
        )
        .await;
    assert!(r.get("result").is_some(), "{r}");
}

/// With per-caller sessions off (`max_caller_sessions` 0) every caller
/// shares the server's one upstream session, as before.
#[tokio::test]
async fn per_caller_sessions_can_be_turned_off() {
    let mut config = GatewayConfig::default();
    config.upstream.max_caller_sessions = 0;
    let (fx, h) = setup(config).await;
    let a = h.initialize(PATH, KEY_A).await;
    h.rpc(
        PATH,
        KEY_A,
        &a,
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {}}),
    )
    .await;
    assert_eq!(fx.state.session_ids().len(), 1);
    assert_eq!(
        upstream_session_of_call(&fx, "echo"),
        fx.state.session_ids()[0]
    );
}

/// A task is visible, pollable and cancellable only by the caller whose
/// call created it; another tenant asking for it gets "not found" (and the
/// upstream never sees the question); a revoked key's tasks are cancelled
/// before its upstream session is ended.
#[tokio::test]
async fn a_task_is_its_creators_alone_and_is_cancelled_with_its_key() {
    let (fx, h) = setup(GatewayConfig::default()).await;
    let a = h.initialize(PATH, KEY_A).await;
    let b = h.initialize(PATH, KEY_B).await;
    let created = h
        .rpc(
            PATH,
            KEY_A,
            &a,
            1,
            "tools/call",
            json!({"name": "echo", "arguments": {}, "task": {"ttl": 60000}}),
        )
        .await;
    let task = created["result"]["task"]["taskId"]
        .as_str()
        .expect("a task")
        .to_owned();
    let a_upstream = fx.state.tasks.lock().unwrap()[0].0.clone();

    let polled = h
        .rpc(PATH, KEY_A, &a, 2, "tasks/get", json!({"taskId": task}))
        .await;
    assert_eq!(polled["result"]["status"], "working", "{polled}");

    // B (another org, same server) knows the id: not found, for every verb.
    h.rpc(
        PATH,
        KEY_B,
        &b,
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {}}),
    )
    .await;
    let seen_before = fx.state.requests("tasks/get").len();
    for (n, method) in ["tasks/get", "tasks/result", "tasks/cancel"]
        .iter()
        .enumerate()
    {
        let r = h
            .rpc(
                PATH,
                KEY_B,
                &b,
                10 + n as i64,
                method,
                json!({"taskId": task}),
            )
            .await;
        assert_eq!(r["error"]["code"], -32602, "{method}: {r}");
        assert_eq!(
            r["error"]["data"]["reason"], "task_unknown",
            "{method}: {r}"
        );
    }
    assert_eq!(
        fx.state.requests("tasks/get").len(),
        seen_before,
        "B's question reached the upstream"
    );
    assert!(fx.state.cancelled.lock().unwrap().is_empty());

    // A's key is revoked: its task is cancelled on its own session, then
    // that session is ended.
    let mut rows = two_orgs(2, true, false);
    rows.keys[0].revoked = true;
    h.install(rows);
    assert!(
        deleted(&fx, &a_upstream).await,
        "A's upstream session not deleted"
    );
    let cancelled = fx.state.cancelled.lock().unwrap().clone();
    assert_eq!(cancelled, vec![(a_upstream.clone(), task.clone())]);
}

fn stateless_call(capabilities: Value, client: &str) -> Value {
    json!({"name": "echo", "arguments": {}, "_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": capabilities,
        "io.modelcontextprotocol/clientInfo": {"name": client, "version": "1"}}})
}

/// A 2026-07-28 caller of a session-era server gets an upstream session of
/// its own, keyed by its principal and what its request declares, opened
/// with those capabilities and that client info, and ended when its key is
/// revoked.
#[tokio::test]
async fn a_stateless_caller_of_a_session_era_server_gets_its_own_upstream_session() {
    let (fx, h) = setup(GatewayConfig::default()).await;
    let shared = fx.state.session_ids()[0].clone();
    let mut seen = Vec::new();
    for (key, caps, client) in [
        (KEY_A, json!({"roots": {}}), "a-client"),
        (KEY_A, json!({"roots": {}}), "a-client"),
        (KEY_A, json!({}), "a-client"),
        (KEY_B, json!({"roots": {}}), "a-client"),
    ] {
        let r = h
            .rpc_stateless(PATH, key, 1, "tools/call", stateless_call(caps, client))
            .await;
        assert_eq!(r["result"]["content"][0]["text"], "echo called", "{r}");
        seen.push(upstream_session_of_call(&fx, "echo"));
    }
    let [a1, a1_again, a2, b1] = <[String; 4]>::try_from(seen).unwrap();
    assert_eq!(a1, a1_again, "the same caller and declaration: one session");
    for s in [&a1, &a2, &b1] {
        assert_ne!(*s, shared, "a stateless call went on the shared session");
    }
    assert_ne!(a1, a2, "other capabilities: another session");
    assert_ne!(a1, b1, "two tenants shared an upstream session");
    let init = fx.state.init_params(&a1).unwrap();
    assert_eq!(init["capabilities"], json!({"roots": {}}), "{init}");
    assert_eq!(init["clientInfo"]["name"], "a-client", "{init}");

    // B's key is revoked: its upstream session ends, A's do not.
    h.install(two_orgs(2, true, true));
    assert!(
        deleted(&fx, &b1).await,
        "B's upstream session was not ended"
    );
    let gone: Vec<Value> = fx
        .state
        .requests("DELETE")
        .into_iter()
        .map(|(h, _)| {
            json!(h
                .get("mcp-session-id")
                .map(|v| v.to_str().unwrap().to_owned()))
        })
        .collect();
    assert!(
        !gone.contains(&json!(a1)) && !gone.contains(&json!(a2)),
        "{gone:?}"
    );
}

#[tokio::test]
async fn an_idle_stateless_callers_upstream_session_is_ended() {
    let (fx, h) = setup(GatewayConfig {
        session_idle_timeout: Duration::from_millis(300),
        ..GatewayConfig::default()
    })
    .await;
    let r = h
        .rpc_stateless(PATH, KEY_A, 1, "tools/call", stateless_call(json!({}), "a"))
        .await;
    assert_eq!(r["result"]["content"][0]["text"], "echo called", "{r}");
    let a = upstream_session_of_call(&fx, "echo");
    assert!(
        deleted(&fx, &a).await,
        "the idle upstream session was not ended"
    );
    // The next call opens a new one.
    h.rpc_stateless(PATH, KEY_A, 2, "tools/call", stateless_call(json!({}), "a"))
        .await;
    assert_ne!(upstream_session_of_call(&fx, "echo"), a);
}
