//! Write latency (request to return, new snapshot live), printed for
//! BENCHMARKS.md. Ignored by default: `cargo test -p warden-store --release
//! --test write_latency -- --ignored --nocapture`.

mod common;

use std::time::{Duration, Instant};

use common::{create_org, http, open, Backend};
use warden_policy::ToolFilter;
use warden_store::*;

async fn measure(backend: Backend) {
    let (_db, store) = open(backend).await;
    let org = create_org(&store, "b", "acme").await.value.id;
    let mut servers = Vec::new();
    for i in 0..50 {
        let s = store
            .create_server(
                "b",
                NewServer::new(format!("s{i}"), None, http("https://e.com/mcp")),
            )
            .await
            .unwrap()
            .value
            .id;
        store
            .create_org_grant(
                "b",
                OrgGrant {
                    org,
                    server: s,
                    enabled: true,
                    filter: ToolFilter::All,
                },
            )
            .await
            .unwrap();
        servers.push(s);
    }
    for i in 0..500 {
        let mut k = NewKey::new(org, format!("k{i}"));
        k.scope = Some(warden_policy::Scope::Inherit);
        store.create_key("b", k).await.unwrap();
    }
    let mut samples = Vec::new();
    for i in 0..300 {
        let started = Instant::now();
        let w = store
            .update_org_grant(
                "b",
                org,
                servers[i % servers.len()],
                OrgGrantPatch {
                    enabled: Some(i % 2 == 1),
                    filter: None,
                },
            )
            .await
            .unwrap();
        samples.push(started.elapsed());
        assert_eq!(store.live().revision(), w.revision);
    }
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "{backend:?}: disable/enable org grant, 300 writes: p50 {:?} p90 {:?} p99 {:?}",
        pct(0.5),
        pct(0.9),
        pct(0.99)
    );
    assert!(pct(0.5) < Duration::from_millis(100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn write_latency_sqlite() {
    measure(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn write_latency_postgres() {
    measure(Backend::Postgres).await
}
