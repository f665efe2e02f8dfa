//! Unit tests of the upstream connection: backoff, routing on a shared
//! connection, close.

use std::collections::BTreeMap;

use super::*;

fn refused_url() -> String {
    // Bound then dropped: nothing listens there, connections are refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/mcp")
}

#[tokio::test]
async fn reconnection_backs_off_from_the_first_failure() {
    let config = UpstreamConfig {
        server: ServerId(1),
        slug: "down".into(),
        owner_org: None,
        transport: Transport::Http { url: refused_url() },
        secret_headers: BTreeMap::new(),
        timeout_ms: 1_000,
        egress_restricted: false,
        config_revision: 1,
    };
    let limits = UpstreamLimits {
        max_backoff: Duration::from_millis(400),
        ..UpstreamLimits::default()
    };
    let (events, _rx) = mpsc::unbounded_channel();
    let up = Upstream::start(config, limits, events, None);
    // Attempts at about 0, 50, 150, 350, 750 ms (waits 50, 100, 200,
    // 400, 400 ms). Without backoff this was dozens within milliseconds.
    tokio::time::sleep(Duration::from_millis(120)).await;
    let early = up.connect_attempts();
    assert!((1..=3).contains(&early), "{early} attempts in 120 ms");
    tokio::time::sleep(Duration::from_millis(1_080)).await;
    let later = up.connect_attempts();
    assert!(
        (4..=7).contains(&later),
        "{later} attempts in 1.2 s (expected about 5)"
    );
    assert!(!up.is_ready());
    up.close();
}

#[tokio::test]
async fn an_unattributed_message_goes_only_to_the_one_request_in_flight() {
    let config = UpstreamConfig {
        server: ServerId(3),
        slug: "shared".into(),
        owner_org: None,
        transport: Transport::Http { url: refused_url() },
        secret_headers: BTreeMap::new(),
        timeout_ms: 1_000,
        egress_restricted: false,
        config_revision: 1,
    };
    let (events, _rx) = mpsc::unbounded_channel();
    let up = Upstream::start(config, UpstreamLimits::default(), events, None);
    let log = || json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "x"}});
    let (sink, mut seen) = mpsc::unbounded_channel();
    let (tx, _keep) = oneshot::channel();
    lock(&up.pending).insert(
        101,
        Pending {
            tx,
            sink: Some(sink),
            declared: None,
            progress: None,
        },
    );
    up.dispatch(log(), None);
    assert!(seen.try_recv().is_ok(), "the only caller gets it");
    // A second request in flight (another client's, without a stream):
    // the message could be its, so nobody gets it.
    let (tx, _keep2) = oneshot::channel();
    lock(&up.pending).insert(
        102,
        Pending {
            tx,
            sink: None,
            declared: None,
            progress: None,
        },
    );
    up.dispatch(log(), None);
    assert!(seen.try_recv().is_err(), "guessed between two callers");
    // On the request's own stream it is that request's, whatever else runs.
    up.dispatch(log(), Some(101));
    assert!(seen.try_recv().is_ok());
    up.close();
}

#[tokio::test]
async fn close_ends_a_backoff_wait_at_once() {
    let config = UpstreamConfig {
        server: ServerId(2),
        slug: "closing".into(),
        owner_org: None,
        transport: Transport::Http { url: refused_url() },
        secret_headers: BTreeMap::new(),
        timeout_ms: 1_000,
        egress_restricted: false,
        config_revision: 1,
    };
    let limits = UpstreamLimits {
        max_backoff: Duration::from_secs(60),
        ..UpstreamLimits::default()
    };
    let (events, _rx) = mpsc::unbounded_channel();
    let up = Upstream::start(config, limits, events, None);
    tokio::time::sleep(Duration::from_millis(30)).await;
    up.close();
    let attempts = up.connect_attempts();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(up.connect_attempts(), attempts, "retried after close");
}
