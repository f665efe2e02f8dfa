//! `notifications/resources/updated` on the aggregate endpoint `/mcp`: a
//! subscription made there with a namespaced URI (`warden:{slug}/{uri}`)
//! reaches the upstream as the bare URI, on the subscriber's own upstream
//! session; the upstream's `resources/updated` comes back to that session
//! alone, with the namespaced URI, and only while the decision still lets
//! the session use the server.

mod common;

use std::time::Duration;

use common::fixture::{self, Mode};
use common::*;
use serde_json::json;

const URI: &str = "file:///readme";
const NAMESPACED: &str = "warden:files/file:///readme";

#[tokio::test]
async fn an_update_reaches_the_subscribing_session_only_with_the_namespaced_uri() {
    let fx = fixture::start(Mode::Normal, &["echo", "slow"]).await;
    let h = start(
        rows(1, &["files"]),
        vec![http_upstream(1, "files", &fx.url(), 10_000)],
    )
    .await;
    let a = h.initialize("/mcp", KEY_A).await;
    // Another session of the same key, and a session of another key.
    let a2 = h.initialize("/mcp", KEY_A).await;
    let b = h.initialize("/mcp", KEY_B).await;
    let mut a_stream = h.open_stream("/mcp", KEY_A, &a).await;
    let mut a2_stream = h.open_stream("/mcp", KEY_A, &a2).await;
    let mut b_stream = h.open_stream("/mcp", KEY_B, &b).await;

    let r = h
        .rpc(
            "/mcp",
            KEY_A,
            &a,
            1,
            "resources/subscribe",
            json!({"uri": NAMESPACED}),
        )
        .await;
    assert!(r.get("result").is_some(), "{r}");
    // The upstream saw the bare URI, on A's own upstream session.
    let subs = fx.state.subscriptions.lock().unwrap().clone();
    assert_eq!(subs.len(), 1, "{subs:?}");
    assert_eq!(subs[0].1, URI);
    let a_upstream = subs[0].0.clone();
    assert_ne!(a_upstream, fx.state.session_ids()[0], "the shared session");
    assert!(fx.state.wait_stream(&a_upstream).await);
    // The other sessions use the server too (their own upstream sessions).
    for (key, sid) in [(KEY_A, &a2), (KEY_B, &b)] {
        let r = h
            .rpc(
                "/mcp",
                key,
                sid,
                2,
                "resources/read",
                json!({"uri": NAMESPACED}),
            )
            .await;
        assert!(r.get("result").is_some(), "{r}");
    }

    assert_eq!(fx.state.resource_updated(URI), vec![a_upstream.clone()]);
    let note = a_stream
        .next(Duration::from_secs(5))
        .await
        .expect("the subscriber is told");
    assert_eq!(note["method"], "notifications/resources/updated");
    assert_eq!(note["params"]["uri"], NAMESPACED, "{note}");
    for (who, stream) in [("A's other session", &mut a2_stream), ("B", &mut b_stream)] {
        let saw = drain(stream, Duration::from_millis(300)).await;
        assert!(
            saw.iter()
                .all(|m| m["method"] != "notifications/resources/updated"),
            "{who} saw A's subscription: {saw:?}"
        );
    }

    // The org loses the server: the upstream keeps the subscription, but
    // the decision no longer lets A hear from that server.
    let mut next = rows(2, &["files"]);
    next.org_grants[0].enabled = false;
    h.install(next);
    tokio::time::sleep(Duration::from_millis(200)).await;
    fx.state.resource_updated(URI);
    let saw = drain(&mut a_stream, Duration::from_millis(500)).await;
    assert!(
        saw.iter()
            .all(|m| m["method"] != "notifications/resources/updated"),
        "relayed after access ended: {saw:?}"
    );
}
