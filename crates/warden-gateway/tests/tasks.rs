//! Tasks of the `io.modelcontextprotocol/tasks` extension on the 2026-07-28
//! wire (issue 9): a task is visible, pollable and cancellable only by the
//! principal whose call created it, on a one-server endpoint and on `/mcp`
//! (where its id is `{server}__{taskId}`); a caller that did not declare the
//! extension is refused `-32021`; a principal whose access ended has its
//! tasks cancelled upstream; the table of owners is bounded. The fixture
//! answers every task method for anyone (one shared connection): only
//! Warden keeps tenants apart here.

mod common;

use std::time::Duration;

use common::fixture::{self, Fixture, Mode};
use common::*;
use serde_json::{json, Value};
use warden_gateway::GatewayConfig;
use warden_policy::*;
use warden_store::LivePolicy;

const PATH: &str = "/mcp/servers/files";
const TASKS: &str = "io.modelcontextprotocol/tasks";

async fn setup(config: GatewayConfig) -> (Fixture, Harness) {
    let fx = fixture::start(Mode::Stateless, &["job", "echo"]).await;
    let h = start_with(
        LivePolicy::new(Snapshot::build(two_orgs(1, true, false)).unwrap()),
        vec![http_upstream(1, "files", &fx.url(), 5_000)],
        config,
    )
    .await;
    (fx, h)
}

/// `_meta` of a caller that declares the tasks extension.
fn declaring() -> Value {
    let mut meta = stateless_meta();
    meta["io.modelcontextprotocol/clientCapabilities"] = json!({"extensions": {TASKS: {}}});
    meta
}

fn declared(mut params: Value) -> Value {
    params["_meta"] = declaring();
    params
}

async fn create_task(h: &Harness, path: &str, key: &str, tool: &str) -> Value {
    h.rpc_stateless(
        path,
        key,
        1,
        "tools/call",
        declared(json!({"name": tool, "arguments": {}})),
    )
    .await
}

async fn task_method(h: &Harness, path: &str, key: &str, method: &str, task: &str) -> Value {
    let mut params = declared(json!({"taskId": task}));
    if method == "tasks/update" {
        params["inputResponses"] = json!({});
    }
    h.rpc_stateless(path, key, 2, method, params).await
}

fn task_requests(fx: &Fixture) -> usize {
    ["tasks/get", "tasks/update", "tasks/cancel"]
        .iter()
        .map(|m| fx.state.requests(m).len())
        .sum()
}

fn cancelled(fx: &Fixture) -> Vec<String> {
    fx.state
        .cancelled
        .lock()
        .unwrap()
        .iter()
        .map(|(_, t)| t.clone())
        .collect()
}

async fn wait_for(mut probe: impl FnMut() -> bool) -> bool {
    for _ in 0..150 {
        if probe() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn a_task_is_visible_pollable_and_cancellable_only_by_its_creator() {
    let (fx, h) = setup(GatewayConfig::default()).await;
    let created = create_task(&h, PATH, KEY_A, "job").await;
    assert_eq!(created["result"]["resultType"], "task", "{created}");
    let task = created["result"]["taskId"].as_str().unwrap().to_owned();
    assert_eq!(task, "task-1");

    let got = task_method(&h, PATH, KEY_A, "tasks/get", &task).await;
    assert_eq!(got["result"]["status"], "working", "{got}");
    assert_eq!(got["result"]["resultType"], "complete");
    // Upstream, the task method names the task in `Mcp-Name` too.
    let (headers, _) = fx.state.requests("tasks/get").pop().unwrap();
    assert_eq!(headers["mcp-name"], "task-1");
    assert_eq!(headers["mcp-method"], "tasks/get");

    // Tenant B: the same id is not found, and never asked upstream.
    let seen = task_requests(&fx);
    for method in ["tasks/get", "tasks/update", "tasks/cancel"] {
        let r = task_method(&h, PATH, KEY_B, method, &task).await;
        assert_eq!(r["error"]["code"], -32602, "{method}: {r}");
        assert_eq!(
            r["error"]["data"]["reason"], "task_unknown",
            "{method}: {r}"
        );
    }
    // Nor is an id nobody created.
    let r = task_method(&h, PATH, KEY_A, "tasks/get", "task-99").await;
    assert_eq!(r["error"]["data"]["reason"], "task_unknown", "{r}");
    assert_eq!(
        task_requests(&fx),
        seen,
        "B's task methods reached the upstream"
    );
    assert!(cancelled(&fx).is_empty());

    // A polls, answers and cancels its own.
    let r = task_method(&h, PATH, KEY_A, "tasks/update", &task).await;
    assert_eq!(r["result"]["resultType"], "complete", "{r}");
    let r = task_method(&h, PATH, KEY_A, "tasks/cancel", &task).await;
    assert_eq!(r["result"]["resultType"], "complete", "{r}");
    assert_eq!(cancelled(&fx), vec![task.clone()]);
    let r = task_method(&h, PATH, KEY_A, "tasks/get", &task).await;
    assert_eq!(r["result"]["status"], "cancelled", "{r}");
}

#[tokio::test]
async fn a_caller_that_did_not_declare_the_extension_is_refused_32021() {
    let (fx, h) = setup(GatewayConfig::default()).await;
    let created = create_task(&h, PATH, KEY_A, "job").await;
    let task = created["result"]["taskId"].as_str().unwrap().to_owned();
    let seen = task_requests(&fx);
    for method in ["tasks/get", "tasks/update", "tasks/cancel"] {
        let params = with_meta(json!({"taskId": task, "inputResponses": {}}));
        let (status, r) = post_task(&h, method, &task, params).await;
        assert_eq!(status, 400, "{method}");
        assert_eq!(r["id"], 7);
        assert_eq!(r["error"]["code"], -32021, "{method}: {r}");
        assert_eq!(r["error"]["data"]["reason"], "tasks_not_declared");
        assert_eq!(
            r["error"]["data"]["requiredCapabilities"],
            json!({"extensions": {TASKS: {}}})
        );
    }
    assert_eq!(task_requests(&fx), seen);
    // The extension removed `tasks/result` and `tasks/list`.
    for method in ["tasks/result", "tasks/list"] {
        let (_, r) = post_task(&h, method, &task, declared(json!({"taskId": task}))).await;
        assert_eq!(r["error"]["code"], -32601, "{method}: {r}");
    }
}

/// A task method with `params` as given (id 7): (HTTP status, message).
async fn post_task(h: &Harness, method: &str, task: &str, params: Value) -> (u16, Value) {
    let resp = h
        .post_raw(
            PATH,
            Some(KEY_A),
            None,
            &[
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", method),
                ("mcp-name", task),
            ],
            &json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}),
        )
        .await;
    let status = resp.status().as_u16();
    (status, response_message(resp).await)
}

#[tokio::test]
async fn on_mcp_a_task_id_names_its_server_and_stays_its_creators() {
    let (fx, h) = setup(GatewayConfig::default()).await;
    // `/mcp` offers the extension because a server this caller may use does.
    let found = h
        .rpc_stateless("/mcp", KEY_A, 9, "server/discover", json!({}))
        .await;
    assert_eq!(
        found["result"]["capabilities"]["extensions"][TASKS],
        json!({}),
        "{found}"
    );
    let created = create_task(&h, "/mcp", KEY_A, "files__job").await;
    assert_eq!(created["result"]["resultType"], "task", "{created}");
    let exposed = created["result"]["taskId"].as_str().unwrap().to_owned();
    assert_eq!(exposed, "files__task-1");

    let got = task_method(&h, "/mcp", KEY_A, "tasks/get", &exposed).await;
    assert_eq!(got["result"]["taskId"], exposed, "{got}");
    assert_eq!(got["result"]["status"], "working");
    let (headers, body) = fx.state.requests("tasks/get").pop().unwrap();
    assert_eq!(body["params"]["taskId"], "task-1");
    assert_eq!(headers["mcp-name"], "task-1");

    let seen = task_requests(&fx);
    for (key, task) in [
        (KEY_B, exposed.as_str()),
        (KEY_A, "task-1"),
        (KEY_A, "other__task-1"),
    ] {
        let r = task_method(&h, "/mcp", key, "tasks/get", task).await;
        assert_eq!(r["error"]["code"], -32602, "{task}: {r}");
    }
    assert_eq!(task_requests(&fx), seen);

    // The same task on the one-server endpoint, by its upstream id.
    let r = task_method(&h, PATH, KEY_A, "tasks/cancel", "task-1").await;
    assert_eq!(r["result"]["resultType"], "complete", "{r}");
    assert_eq!(cancelled(&fx), vec!["task-1".to_owned()]);
}

#[tokio::test]
async fn a_principal_whose_access_ended_has_its_tasks_cancelled_upstream() {
    let (fx, h) = setup(GatewayConfig::default()).await;
    let a_task = create_task(&h, PATH, KEY_A, "job").await["result"]["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    let b_task = create_task(&h, PATH, KEY_B, "job").await["result"]["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(a_task, b_task);
    // Org 1 loses its grant of `files`.
    h.install(two_orgs(2, false, false));
    assert!(
        wait_for(|| cancelled(&fx).contains(&a_task)).await,
        "A's task was not cancelled upstream"
    );
    assert!(!cancelled(&fx).contains(&b_task), "B's task was cancelled");
    // The decision denies A's task methods now.
    let r = task_method(&h, PATH, KEY_A, "tasks/get", &a_task).await;
    assert_eq!(r["error"]["code"], -32602, "{r}");
    assert_ne!(r["error"]["data"]["reason"], "task_unknown", "{r}");
    let r = task_method(&h, PATH, KEY_B, "tasks/get", &b_task).await;
    assert_eq!(r["result"]["status"], "working", "{r}");
    // Granted again: the cancelled task is forgotten, not given back.
    h.install(two_orgs(3, true, false));
    let r = task_method(&h, PATH, KEY_A, "tasks/get", &a_task).await;
    assert_eq!(r["error"]["data"]["reason"], "task_unknown", "{r}");
}

#[tokio::test]
async fn a_task_beyond_the_bounds_is_cancelled_and_the_caller_told() {
    let config = GatewayConfig {
        max_tasks_per_principal: 2,
        max_tasks_per_server: 3,
        ..GatewayConfig::default()
    };
    let (fx, h) = setup(config).await;
    for _ in 0..2 {
        let r = create_task(&h, PATH, KEY_A, "job").await;
        assert_eq!(r["result"]["resultType"], "task", "{r}");
    }
    let r = create_task(&h, PATH, KEY_A, "job").await;
    assert_eq!(r["error"]["code"], -32005, "{r}");
    assert_eq!(r["error"]["data"]["reason"], "tasks_full");
    assert_eq!(r["error"]["data"]["scope"], "principal");
    assert_eq!(r["error"]["data"]["limit"], 2);
    assert!(wait_for(|| cancelled(&fx) == vec!["task-3".to_owned()]).await);
    // Another principal still has room on the server, up to its bound.
    let r = create_task(&h, PATH, KEY_B, "job").await;
    assert_eq!(r["result"]["taskId"], "task-4", "{r}");
    let r = create_task(&h, PATH, KEY_B, "job").await;
    assert_eq!(r["error"]["data"]["scope"], "server", "{r}");
    assert_eq!(r["error"]["data"]["limit"], 3);
    // A call that creates no task is not affected.
    let r = create_task(&h, PATH, KEY_A, "echo").await;
    assert_eq!(r["result"]["content"][0]["text"], "echo called", "{r}");
}

#[tokio::test]
async fn on_a_toolset_a_task_id_names_its_server_and_the_toolset_still_decides() {
    let fx = fixture::start(Mode::Stateless, &["job", "echo"]).await;
    let mut rows = two_orgs(1, true, false);
    let mut servers = std::collections::BTreeMap::new();
    servers.insert(ServerId(1), ToolFilter::only(["job"]));
    rows.toolsets.push(ToolsetRow {
        id: ToolsetId(1),
        org: OrgId(1),
        slug: "jobs".into(),
        servers,
    });
    let h = start(rows, vec![http_upstream(1, "files", &fx.url(), 5_000)]).await;
    let path = "/mcp/toolsets/jobs";
    let created = create_task(&h, path, KEY_A, "files__job").await;
    let exposed = created["result"]["taskId"].as_str().unwrap().to_owned();
    assert_eq!(exposed, "files__task-1", "{created}");
    let got = task_method(&h, path, KEY_A, "tasks/get", &exposed).await;
    assert_eq!(got["result"]["taskId"], exposed, "{got}");
    // The toolset no longer holds the server: its task methods are denied
    // there (a decision), and the task is still A's on the server's own
    // endpoint, where A's org keeps its grant.
    let mut narrowed = two_orgs(2, true, false);
    narrowed.toolsets.push(ToolsetRow {
        id: ToolsetId(1),
        org: OrgId(1),
        slug: "jobs".into(),
        servers: Default::default(),
    });
    h.install(narrowed);
    let r = task_method(&h, path, KEY_A, "tasks/get", &exposed).await;
    assert_eq!(r["error"]["code"], -32602, "{r}");
    assert_ne!(r["error"]["data"]["reason"], "task_unknown", "{r}");
    let r = task_method(&h, PATH, KEY_A, "tasks/get", "task-1").await;
    assert_eq!(r["result"]["status"], "working", "{r}");
    assert!(cancelled(&fx).is_empty());
}
