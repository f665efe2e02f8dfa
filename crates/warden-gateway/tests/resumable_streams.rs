//! Resumable reply streams (MCP 2025-11-25 "Resumability and Redelivery"):
//! a session-era reply stream starts with a priming event id, a client whose
//! connection drops resumes it with `GET` + `Last-Event-ID`, the call goes
//! on meanwhile, and only the session's own principal can resume it.

mod common;

use std::time::Duration;

use common::fixture::{self, Mode};
use common::*;
use serde_json::{json, Value};

async fn one_server() -> (fixture::Fixture, Harness) {
    let fx = fixture::start(Mode::Normal, &["echo", "slow", "progress"]).await;
    let h = start(
        rows(1, &["files"]),
        vec![http_upstream(1, "files", &fx.url(), 10_000)],
    )
    .await;
    (fx, h)
}

/// Starts a slow `tools/call` that becomes a stream; returns the response
/// once its headers are in.
async fn slow_call(h: &Harness, key: &str, sid: &str, ms: u64) -> reqwest::Response {
    let resp = h
        .post_raw(
            "/mcp",
            Some(key),
            Some(sid),
            &[],
            &json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call",
                    "params": {"name": "files__slow", "arguments": {"ms": ms}}}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    resp
}

/// Reads raw SSE text until an `id:` line arrives; returns that id.
async fn first_event_id(resp: &mut reqwest::Response) -> String {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(line) = text.lines().find_map(|l| l.strip_prefix("id:")) {
            if text.contains("\n\n") {
                return line.trim().to_owned();
            }
        }
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .expect("an event in time")
            .unwrap()
            .expect("the stream is open");
        text.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
    }
}

async fn resume(h: &Harness, key: &str, sid: &str, last_event_id: &str) -> reqwest::Response {
    h.http
        .get(h.url("/mcp"))
        .bearer_auth(key)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", sid)
        .header("mcp-protocol-version", "2025-11-25")
        .header("last-event-id", last_event_id)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_dropped_reply_stream_is_resumed_with_last_event_id_and_the_call_goes_on() {
    let (fx, h) = one_server().await;
    let sid = h.initialize("/mcp", KEY_A).await;
    let mut resp = slow_call(&h, KEY_A, &sid, 2_500).await;
    // The stream opens after a second with a priming event: an id, no data.
    let id = first_event_id(&mut resp).await;
    assert!(id.ends_with("-0"), "{id}");
    drop(resp);

    // The connection is gone; the call is not cancelled upstream.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(fx.state.requests("notifications/cancelled").is_empty());

    let resumed = resume(&h, KEY_A, &sid, &id).await;
    assert_eq!(resumed.status(), 200);
    let mut reader = SseReader::new(resumed);
    let reply = reader
        .next(Duration::from_secs(5))
        .await
        .expect("the reply arrives on the resumed stream");
    assert_eq!(reply["id"], 6);
    assert_eq!(reply["result"]["content"][0]["text"], "slow done");
    // The stream ends after the reply.
    assert!(reader.next(Duration::from_secs(2)).await.is_none());
    assert!(reader.ended);

    // Resuming again replays from the given position: the reply again.
    let again = resume(&h, KEY_A, &sid, &id).await;
    let all = all_messages(again).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["id"], 6);
    assert_eq!(fx.state.requests("tools/call").len(), 1, "called once");
}

#[tokio::test]
async fn only_the_sessions_own_principal_can_resume_its_stream() {
    let (_fx, h) = one_server().await;
    let sid_a = h.initialize("/mcp", KEY_A).await;
    let sid_b = h.initialize("/mcp", KEY_B).await;
    let mut resp = slow_call(&h, KEY_A, &sid_a, 1_500).await;
    let id = first_event_id(&mut resp).await;
    drop(resp);

    // B names A's session: not found, like any session not its own.
    let stolen = resume(&h, KEY_B, &sid_a, &id).await;
    assert_eq!(stolen.status(), 404);

    // B in its own session with A's event id: its own stream, nothing of A's.
    let own = resume(&h, KEY_B, &sid_b, &id).await;
    assert_eq!(own.status(), 200);
    let mut reader = SseReader::new(own);
    assert!(reader.next(Duration::from_millis(1_500)).await.is_none());
    assert!(!reader.ended, "B's own session stream stays open");

    // A still gets its reply.
    let mine = resume(&h, KEY_A, &sid_a, &id).await;
    let all = all_messages(mine).await;
    assert_eq!(
        all.last().unwrap()["result"]["content"][0]["text"],
        "slow done"
    );
}

#[tokio::test]
async fn ending_the_session_ends_a_call_whose_client_went_away() {
    let (fx, mut h) = one_server().await;
    let sid = h.initialize("/mcp", KEY_A).await;
    let mut resp = slow_call(&h, KEY_A, &sid, 8_000).await;
    first_event_id(&mut resp).await;
    drop(resp);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(fx.state.requests("notifications/cancelled").is_empty());

    let deleted = h
        .http
        .delete(h.url("/mcp"))
        .bearer_auth(KEY_A)
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    // Well before the upstream would have answered: cancelled and audited.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while fx.state.requests("notifications/cancelled").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no cancellation upstream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let call = fx.state.requests("tools/call")[0].1.clone();
    let cancel = fx.state.requests("notifications/cancelled")[0].1.clone();
    assert_eq!(cancel["params"]["requestId"], call["id"]);
    let record = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match h.decisions.recv().await {
                Some(d) if d.method == "tools/call" => return d,
                Some(_) => continue,
                None => panic!("recorder closed"),
            }
        }
    })
    .await
    .expect("the call's decision is recorded");
    assert!(record.allowed);
}

#[tokio::test]
async fn messages_before_the_reply_are_replayed_in_order_with_ids() {
    let (_fx, h) = one_server().await;
    let sid = h.initialize("/mcp", KEY_A).await;
    let resp = h
        .post_raw(
            "/mcp",
            Some(KEY_A),
            Some(&sid),
            &[],
            &json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                    "params": {"name": "files__progress", "arguments": {},
                               "_meta": {"progressToken": "p1"}}}),
        )
        .await;
    let text = resp.text().await.unwrap().replace("\r\n", "\n");
    let ids: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("id:"))
        .map(str::trim)
        .collect();
    // The priming event, then progress, log message and reply.
    assert_eq!(ids.len(), 4, "{text}");
    let stream = ids[0].split('-').next().unwrap();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(*id, format!("{stream}-{i}"));
    }
    // Resuming after the progress event gives the rest, in order.
    let rest = all_messages(resume(&h, KEY_A, &sid, ids[1]).await).await;
    let methods: Vec<Value> = rest
        .iter()
        .map(|m| m.get("method").cloned().unwrap_or(m["id"].clone()))
        .collect();
    assert_eq!(methods, vec![json!("notifications/message"), json!(9)]);
}

#[tokio::test]
async fn an_overlong_last_event_id_is_refused() {
    let (_fx, h) = one_server().await;
    let sid = h.initialize("/mcp", KEY_A).await;
    let resp = resume(&h, KEY_A, &sid, &"1".repeat(500)).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["data"]["reason"], "bad_header");
}

/// Key B's visible tools change with each new revision (so its session is
/// sent `list_changed`).
fn b_sees(h: &Harness, revision: u64, tools: &[&str]) {
    let mut next = rows(revision, &["files"]);
    next.keys[1].scope = common::only(1, tools);
    h.install(next);
}

#[tokio::test]
async fn a_dropped_session_stream_is_resumed_with_what_it_missed() {
    let (_fx, h) = one_server().await;
    let sid = h.initialize("/mcp", KEY_B).await;
    let mut resp = h.open_stream_raw("/mcp", KEY_B, &sid).await;
    // The session's own stream starts with a priming event too.
    let id = first_event_id(&mut resp).await;
    assert!(id.ends_with("-0"), "{id}");
    drop(resp);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // While it is away, its list changes twice.
    b_sees(&h, 2, &["echo", "slow"]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    b_sees(&h, 3, &["echo"]);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Another principal cannot resume it (the session is not theirs).
    assert_eq!(resume(&h, KEY_A, &sid, &id).await.status(), 404);

    let resumed = resume(&h, KEY_B, &sid, &id).await;
    assert_eq!(resumed.status(), 200);
    let mut reader = SseReader::new(resumed);
    for _ in 0..2 {
        let note = reader
            .next(Duration::from_secs(2))
            .await
            .expect("a missed list_changed");
        assert_eq!(note["method"], "notifications/tools/list_changed");
    }
    // The resumed stream is live: the next change arrives on it.
    b_sees(&h, 4, &["echo", "progress"]);
    let note = reader
        .next(Duration::from_secs(2))
        .await
        .expect("a live list_changed");
    assert_eq!(note["method"], "notifications/tools/list_changed");
    assert!(reader.next(Duration::from_millis(300)).await.is_none());
    assert!(!reader.ended);

    // A second reader resuming the same stream takes it over: the first
    // one ends rather than both receiving the same messages.
    let again = resume(&h, KEY_B, &sid, &id).await;
    assert_eq!(again.status(), 200);
    assert!(reader.next(Duration::from_secs(2)).await.is_none());
    assert!(reader.ended, "the superseded reader is closed");
    // From the priming id it replays all three.
    let mut again = SseReader::new(again);
    for _ in 0..3 {
        assert!(again.next(Duration::from_secs(2)).await.is_some());
    }

    // A GET without Last-Event-ID opens a fresh stream; the old id no
    // longer resumes anything and opens a fresh stream as well.
    let mut fresh = h.open_stream_raw("/mcp", KEY_B, &sid).await;
    let fresh_id = first_event_id(&mut fresh).await;
    assert_ne!(fresh_id, id);
    assert!(again.next(Duration::from_secs(2)).await.is_none());
    assert!(again.ended, "the old stream ended");
}
