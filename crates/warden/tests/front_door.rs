//! The real binary's front door under abuse: half-open connections (a
//! partial request line, then silence) are closed after the header timeout
//! or make room under `max_connections`, while `/healthz` and an
//! authenticated MCP client keep being served. Loopback only; every wait is
//! bounded.

mod common;

use std::time::{Duration, Instant};

use common::{echo_until_ready, mcp, metric, start_demo};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Opens `n` connections that send half a request and stall.
async fn half_open(port: u16, n: usize) -> Vec<TcpStream> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
            .await
            .unwrap();
        conns.push(s);
    }
    conns
}

/// Waits until each connection is closed by the server or `deadline`
/// passes; returns how many were closed.
async fn count_closed(conns: Vec<TcpStream>, deadline: Instant) -> usize {
    let mut set = tokio::task::JoinSet::new();
    for mut s in conns {
        set.spawn(async move {
            let mut buf = [0u8; 256];
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, s.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return true,
                    Ok(Ok(_)) => continue,
                    Err(_) => return false,
                }
            }
        });
    }
    let mut closed = 0;
    while let Some(r) = set.join_next().await {
        closed += usize::from(r.unwrap());
    }
    closed
}

async fn healthz(client: &reqwest::Client, base: &str) -> u16 {
    client
        .get(format!("{base}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// `GET /healthz` on an open keep-alive connection: answered 200?
async fn get_healthz_on(s: &mut TcpStream) -> bool {
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 512];
    match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
        Ok(Ok(n)) => buf[..n].starts_with(b"HTTP/1.1 200"),
        _ => false,
    }
}

async fn metrics(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn echo(text: &str) -> serde_json::Value {
    json!({"jsonrpc":"2.0","id":7,"method":"tools/call",
           "params":{"name":"demo__echo","arguments":{"text":text}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_are_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let w = start_demo(&dir, &[("WARDEN_HEADER_READ_TIMEOUT_MS", "1500")]);
    let key = w.demo_key.clone().expect("demo key printed");
    let client = reqwest::Client::new();
    echo_until_ready(&client, &w.base, &key).await;

    // A keep-alive connection between two requests is idle, not slow: the
    // header timeout does not apply to it.
    let mut keep = TcpStream::connect(("127.0.0.1", w.port)).await.unwrap();
    assert!(get_healthz_on(&mut keep).await);

    let started = Instant::now();
    let stalled = half_open(w.port, 1500).await;
    let opened = started.elapsed();

    // Meanwhile the gateway answers: health, and an authenticated call on
    // a new connection.
    assert_eq!(healthz(&reqwest::Client::new(), &w.base).await, 200);
    let call = mcp(&reqwest::Client::new(), &w.base, &key, echo("still here")).await;
    assert!(
        call["result"]["content"].to_string().contains("still here"),
        "{call}"
    );

    let closed = count_closed(stalled, Instant::now() + Duration::from_secs(20)).await;
    let took = started.elapsed();
    assert_eq!(
        closed, 1500,
        "half-open connections left open after {took:?}"
    );
    eprintln!(
        "1500 half-open connections opened in {opened:?}, all closed {took:?} after the first (header timeout 1.5 s)"
    );

    assert_eq!(healthz(&client, &w.base).await, 200);
    // Well past the header timeout for the keep-alive connection too.
    tokio::time::sleep(Duration::from_millis(3500).saturating_sub(started.elapsed())).await;
    assert!(
        get_healthz_on(&mut keep).await,
        "an idle keep-alive connection was closed by the header timeout"
    );
    let m = metrics(&w.base).await;
    let timed_out = metric(
        &m,
        "warden_http_connections_closed_total{reason=\"header_timeout\"}",
    );
    assert!(
        timed_out >= 1500.0,
        "header timeouts counted: {timed_out}\n{m}"
    );
    assert!(m.contains("warden_http_connections_open"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_max_connections_the_oldest_idle_ones_make_room() {
    let dir = tempfile::tempdir().unwrap();
    let w = start_demo(
        &dir,
        &[
            ("WARDEN_MAX_CONNECTIONS", "50"),
            // Long enough that only the cap can close anything here.
            ("WARDEN_HEADER_READ_TIMEOUT_MS", "120000"),
            ("WARDEN_IDLE_CONNECTION_TIMEOUT_SECS", "600"),
        ],
    );
    let key = w.demo_key.clone().expect("demo key printed");
    // An authenticated client with its own keep-alive connection.
    let client = reqwest::Client::new();
    echo_until_ready(&client, &w.base, &key).await;

    let flood = half_open(w.port, 400).await;
    let call = mcp(&client, &w.base, &key, echo("during the flood")).await;
    assert!(
        call["result"]["content"]
            .to_string()
            .contains("during the flood"),
        "{call}"
    );
    assert_eq!(healthz(&reqwest::Client::new(), &w.base).await, 200);

    // At most 50 connections are open, so at least 350 of the flood are
    // gone, long before any timeout.
    let started = Instant::now();
    let closed = count_closed(flood, Instant::now() + Duration::from_secs(3)).await;
    assert!(
        closed >= 350,
        "only {closed} of 400 excess connections closed"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    let call = mcp(&client, &w.base, &key, echo("after the flood")).await;
    assert!(
        call["result"]["content"]
            .to_string()
            .contains("after the flood"),
        "{call}"
    );
    let m = metrics(&w.base).await;
    let open = metric(&m, "warden_http_connections_open");
    assert!(
        (1.0..=50.0).contains(&open),
        "open connections: {open}\n{m}"
    );
    let evicted = metric(
        &m,
        "warden_http_connections_closed_total{reason=\"evicted\"}",
    );
    assert!(evicted >= 350.0, "evictions counted: {evicted}\n{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_close_but_a_long_call_is_not_cut() {
    let dir = tempfile::tempdir().unwrap();
    let w = start_demo(
        &dir,
        &[
            ("WARDEN_IDLE_CONNECTION_TIMEOUT_SECS", "1"),
            ("WARDEN_HEADER_READ_TIMEOUT_MS", "60000"),
        ],
    );
    let key = w.demo_key.clone().expect("demo key printed");
    let client = reqwest::Client::new();
    echo_until_ready(&client, &w.base, &key).await;

    // A keep-alive connection that answered one request and then idles,
    // and one that never sends anything: both closed after ~1 s.
    let mut used = TcpStream::connect(("127.0.0.1", w.port)).await.unwrap();
    assert!(get_healthz_on(&mut used).await);
    let silent = TcpStream::connect(("127.0.0.1", w.port)).await.unwrap();

    // A call that runs three times the idle timeout completes.
    let started = Instant::now();
    let call = mcp(
        &client,
        &w.base,
        &key,
        json!({"jsonrpc":"2.0","id":9,"method":"tools/call",
               "params":{"name":"demo__sleep","arguments":{"ms":3000}}}),
    )
    .await;
    assert!(call.get("result").is_some(), "{call}");
    assert!(started.elapsed() >= Duration::from_secs(3));

    let closed = count_closed(vec![used, silent], Instant::now() + Duration::from_secs(5)).await;
    assert_eq!(closed, 2);
    let m = metrics(&w.base).await;
    let idle = metric(
        &m,
        "warden_http_connections_closed_total{reason=\"idle_timeout\"}",
    );
    assert!(idle >= 2.0, "idle closes counted: {idle}\n{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_connection_is_busy_new_ones_are_refused_and_the_busy_ones_finish() {
    let dir = tempfile::tempdir().unwrap();
    let w = start_demo(&dir, &[("WARDEN_MAX_CONNECTIONS", "3")]);
    let key = w.demo_key.clone().expect("demo key printed");
    echo_until_ready(&reqwest::Client::new(), &w.base, &key).await;

    // Three authenticated clients, each with a call in flight for 3 s on
    // its own connection: the cap is reached by busy connections.
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..3 {
        let (base, key) = (w.base.clone(), key.clone());
        calls.spawn(async move {
            let body = json!({"jsonrpc":"2.0","id":i,"method":"tools/call",
                              "params":{"name":"demo__sleep","arguments":{"ms":3000}}});
            mcp(&reqwest::Client::new(), &base, &key, body).await
        });
    }
    tokio::time::sleep(Duration::from_millis(800)).await;

    // New connections are accepted and closed at once.
    let mut extra = Vec::new();
    for _ in 0..20 {
        extra.push(TcpStream::connect(("127.0.0.1", w.port)).await.unwrap());
    }
    let closed = count_closed(extra, Instant::now() + Duration::from_secs(1)).await;
    assert_eq!(closed, 20, "excess connections were not refused");

    // The busy clients were not disturbed.
    while let Some(call) = calls.join_next().await {
        let call = call.unwrap();
        assert!(call.get("result").is_some(), "{call}");
    }
    assert_eq!(healthz(&reqwest::Client::new(), &w.base).await, 200);
    let refused = metric(
        &metrics(&w.base).await,
        "warden_http_connections_refused_total",
    );
    assert!(refused >= 20.0, "refusals counted: {refused}");
}
