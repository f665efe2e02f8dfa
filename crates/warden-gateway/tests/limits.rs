//! The limit step over real HTTP: bursts at and over a limit at each level,
//! the intersection of levels, concurrency with slow calls, a change taking
//! effect at once, and `tools/list` untouched.

mod common;

use std::time::Duration;

use common::fixture::{self, Mode};
use common::*;
use serde_json::{json, Value};
use warden_policy::{
    KeyId, LimitId, LimitLevel, LimitRow, OrgId, PolicyRows, Rate, ServerId, Window,
};

fn rate(requests: u32, per: Window, burst: u32) -> Option<Rate> {
    Some(Rate {
        requests,
        per,
        burst,
    })
}

fn limit(
    id: i64,
    level: LimitLevel,
    tool: Option<&str>,
    rate: Option<Rate>,
    concurrency: Option<u32>,
) -> LimitRow {
    LimitRow {
        id: LimitId(id),
        org: OrgId(1),
        level,
        server: tool.map(|_| ServerId(1)),
        tool: tool.map(str::to_owned),
        rate,
        concurrency,
    }
}

fn with_limits(revision: u64, limits: Vec<LimitRow>) -> PolicyRows {
    let mut rows = rows(revision, &["files"]);
    rows.limits = limits;
    rows
}

async fn call(h: &Harness, key: &str, sid: &str, tool: &str) -> Value {
    h.rpc(
        "/mcp",
        key,
        sid,
        1,
        "tools/call",
        json!({"name": format!("files__{tool}"), "arguments": {"ms": 400}}),
    )
    .await
}

/// How many of `n` quick calls get through; the reasons of the others.
async fn burst(h: &Harness, key: &str, sid: &str, n: usize) -> (usize, Vec<Value>) {
    let mut ok = 0;
    let mut refused = Vec::new();
    for _ in 0..n {
        let r = call(h, key, sid, "echo").await;
        if r.get("result").is_some() {
            ok += 1;
        } else {
            refused.push(r["error"].clone());
        }
    }
    (ok, refused)
}

#[tokio::test]
async fn a_key_rate_limit_allows_its_burst_and_refuses_the_rest() {
    let fx = fixture::start(Mode::Normal, &["echo", "slow"]).await;
    let mut h = start(
        with_limits(
            1,
            vec![limit(
                1,
                LimitLevel::Key(KeyId(1)),
                None,
                rate(60, Window::Hour, 3),
                None,
            )],
        ),
        vec![http_upstream(1, "files", &fx.url(), 5_000)],
    )
    .await;
    let sid = h.initialize("/mcp", KEY_A).await;
    let (ok, refused) = burst(&h, KEY_A, &sid, 5).await;
    assert_eq!(ok, 3, "the burst");
    assert_eq!(refused.len(), 2);
    let e = &refused[0];
    assert_eq!(e["code"], -32005);
    assert_eq!(e["data"]["reason"], "rate_limited");
    assert_eq!(e["data"]["limit"]["id"], 1);
    assert_eq!(e["data"]["limit"]["level"], "key");
    assert_eq!(e["data"]["limit"]["max"], 60);
    assert_eq!(e["data"]["limit"]["per"], "hour");
    let retry = e["data"]["retry_after_ms"].as_u64().unwrap();
    assert!(
        (50_000..=60_000).contains(&retry),
        "one token a minute: {retry}"
    );
    // Refused calls never reached the upstream, and are audited as not made.
    assert_eq!(fx.state.requests("tools/call").len(), 3);
    let mut limited = 0;
    while let Ok(r) = h.decisions.try_recv() {
        if r.reason.as_deref() == Some("rate_limited") {
            assert!(!r.allowed);
            limited += 1;
        }
    }
    assert_eq!(limited, 2);
    // Listing is not a call: never limited.
    for _ in 0..5 {
        assert_eq!(h.list_tool_names("/mcp", KEY_A, &sid).await.len(), 2);
    }
    // Key B has no limit of its own.
    let sid_b = h.initialize("/mcp", KEY_B).await;
    assert_eq!(burst(&h, KEY_B, &sid_b, 5).await.0, 5);
}

#[tokio::test]
async fn the_tightest_level_and_the_shared_org_budget_both_count() {
    let fx = fixture::start(Mode::Normal, &["echo", "slow"]).await;
    // Org: 6 calls in a burst for everyone together; key A: 4 on echo.
    let h = start(
        with_limits(
            1,
            vec![
                limit(1, LimitLevel::Org, None, rate(6, Window::Hour, 6), None),
                limit(
                    2,
                    LimitLevel::Key(KeyId(1)),
                    Some("echo"),
                    rate(4, Window::Hour, 4),
                    None,
                ),
            ],
        ),
        vec![http_upstream(1, "files", &fx.url(), 5_000)],
    )
    .await;
    let sid_a = h.initialize("/mcp", KEY_A).await;
    let sid_b = h.initialize("/mcp", KEY_B).await;
    let (ok, refused) = burst(&h, KEY_A, &sid_a, 5).await;
    assert_eq!(ok, 4);
    assert_eq!(refused[0]["data"]["limit"]["level"], "key");
    // B shares the org budget: 2 left of 6.
    let (ok, refused) = burst(&h, KEY_B, &sid_b, 4).await;
    assert_eq!(ok, 2);
    assert_eq!(refused[0]["data"]["limit"]["level"], "org");
}

#[tokio::test]
async fn a_concurrency_limit_counts_calls_in_flight() {
    let fx = fixture::start(Mode::Normal, &["echo", "slow"]).await;
    let h = start(
        with_limits(
            1,
            vec![limit(
                1,
                LimitLevel::Key(KeyId(1)),
                Some("slow"),
                None,
                Some(2),
            )],
        ),
        vec![http_upstream(1, "files", &fx.url(), 5_000)],
    )
    .await;
    let sid = h.initialize("/mcp", KEY_A).await;
    let h = std::sync::Arc::new(h);
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let h = std::sync::Arc::clone(&h);
            let sid = sid.clone();
            tokio::spawn(async move { call(&h, KEY_A, &sid, "slow").await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let third = call(&h, KEY_A, &sid, "slow").await;
    assert_eq!(third["error"]["data"]["reason"], "concurrency_limited");
    assert_eq!(third["error"]["data"]["limit"]["max"], 2);
    // Other tools are not covered by this limit.
    assert!(call(&h, KEY_A, &sid, "echo").await.get("result").is_some());
    for s in slow {
        assert!(s.await.unwrap().get("result").is_some());
    }
    // The places are given back when the calls end.
    assert!(call(&h, KEY_A, &sid, "slow").await.get("result").is_some());
}

#[tokio::test]
async fn a_limit_change_is_in_force_for_the_next_call() {
    let fx = fixture::start(Mode::Normal, &["echo", "slow"]).await;
    let h = start(
        with_limits(1, vec![]),
        vec![http_upstream(1, "files", &fx.url(), 5_000)],
    )
    .await;
    let sid = h.initialize("/mcp", KEY_A).await;
    assert_eq!(burst(&h, KEY_A, &sid, 3).await.0, 3);
    h.install(with_limits(
        2,
        vec![limit(
            9,
            LimitLevel::Org,
            None,
            rate(1, Window::Hour, 1),
            None,
        )],
    ));
    let (ok, refused) = burst(&h, KEY_A, &sid, 3).await;
    assert_eq!(ok, 1);
    assert_eq!(refused[0]["data"]["limit"]["id"], 9);
    // And removing it lifts it at once.
    h.install(with_limits(3, vec![]));
    assert_eq!(burst(&h, KEY_A, &sid, 3).await.0, 3);
}
