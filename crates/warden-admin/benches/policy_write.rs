//! A policy write at the policy-engine benchmark's scale (1,000 servers x 50
//! tools, 10,000 teams, 100,000 keys, 100,000 end users, 10,000 agents,
//! 1,000 toolsets), timed from the HTTP request to its response, which the
//! API sends only once the new snapshot is live in this process.
//!
//! Run: `cargo bench -p warden-admin --bench policy_write` (both backends;
//! `-- sqlite` or `-- postgres` for one; `WARDEN_BENCH_WRITES=n` to change
//! the number of timed writes, default 200).
//!
//! The write is "disable a server at org level" (`PATCH
//! /admin/v1/orgs/{org}/grants/{server}` with `{"enabled": false}`),
//! alternating with re-enabling it so every write changes something. Printed
//! alongside: the parts of the write measured on their own, to say what
//! dominates.

use std::sync::Arc;
use std::time::{Duration, Instant};

use warden_admin::AdminState;
use warden_policy::{OrgId, PolicyChange, Snapshot};
use warden_store::{Secret, Store, StoreOptions};

#[path = "../../warden-policy/benches/scale/mod.rs"]
#[allow(dead_code)]
mod scale;
mod seed;

const TOKEN: &str = "bench-platform-admin-token";

fn stats(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "  {label:<44} n={:<4} median {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  min {:>7.2} ms  max {:>7.2} ms",
        samples.len(),
        ms(pick(0.5)),
        ms(pick(0.9)),
        ms(pick(0.99)),
        ms(samples[0]),
        ms(samples[samples.len() - 1]),
    );
}

async fn run(backend: &str, writes: usize) {
    println!("== {backend}");
    let sqlite_dir;
    let _postgres;
    let url = match backend {
        "sqlite" => {
            sqlite_dir = tempfile::tempdir().expect("temp dir");
            format!("sqlite://{}", sqlite_dir.path().join("bench.db").display())
        }
        _ => {
            let pg = warden_testkit::TempPostgres::start().await;
            let url = pg.url().to_owned();
            _postgres = pg;
            url
        }
    };

    let rows = scale::rows();
    Store::migrate(&url).await.expect("migrate");
    let started = Instant::now();
    seed::seed(&url, &rows, backend == "postgres").await;
    println!("  seeded in {:.1} s", started.elapsed().as_secs_f64());

    let started = Instant::now();
    let store = Store::open(&url, StoreOptions::new([9u8; 32]))
        .await
        .expect("open");
    println!(
        "  Store::open (load all rows + Snapshot::build): {:.0} ms; policy: {}",
        started.elapsed().as_secs_f64() * 1e3,
        store
            .live()
            .snapshot()
            .counts()
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    store
        .ensure_admin_token("bench", "bench", None, &Secret::new(TOKEN))
        .await
        .expect("admin token");
    let catalog = Arc::new(scale::catalog());
    let state = AdminState::new(store.clone(), catalog);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = warden_admin::router(state);
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    let http = reqwest::Client::new();

    // Org 0's first granted server, by slug.
    let org = OrgId(1);
    let server = scale::granted(0)[0];
    let snapshot = store.live().snapshot();
    let org_slug = snapshot.org(org).expect("org").slug.clone();
    let server_slug = snapshot.server(server).expect("server").slug.clone();
    let url = format!("http://{addr}/admin/v1/orgs/{org_slug}/grants/{server_slug}");
    drop(snapshot);

    // Warm up the connection and the code paths.
    for i in 0..5 {
        write(&http, &url, i % 2 == 0).await;
    }
    let mut samples = Vec::with_capacity(writes);
    for i in 0..writes {
        let enabled = i % 2 == 1;
        let started = Instant::now();
        let revision = write(&http, &url, enabled).await;
        samples.push(started.elapsed());
        // Outside the timing: the response came after the snapshot went live.
        let live = store.live().snapshot();
        assert!(live.revision() >= revision);
        assert_eq!(
            live.org_grant(org, server).map(|g| g.enabled),
            Some(enabled)
        );
    }
    stats("PATCH grant enabled (request -> response)", samples);

    // The parts on their own.
    let mut direct = Vec::with_capacity(writes);
    for i in 0..writes {
        let patch = warden_store::OrgGrantPatch {
            enabled: Some(i % 2 == 1),
            filter: None,
        };
        let started = Instant::now();
        store
            .update_org_grant("bench", org, server, patch)
            .await
            .expect("direct write");
        direct.push(started.elapsed());
    }
    stats("Store::update_org_grant (txn + apply + install)", direct);

    let mut get = Vec::new();
    for _ in 0..writes.min(100) {
        let started = Instant::now();
        let resp = http.get(&url).bearer_auth(TOKEN).send().await.expect("get");
        assert!(resp.status().is_success());
        resp.bytes().await.expect("body");
        get.push(started.elapsed());
    }
    stats("GET grant (HTTP + auth + reads, no write)", get);

    let base: Arc<Snapshot> = store.live().snapshot();
    let grant = base.org_grant(org, server).expect("grant").clone();
    let mut apply = Vec::new();
    for i in 0..writes.min(50) {
        let mut g = grant.clone();
        g.enabled = i % 2 == 0;
        let change = PolicyChange::UpsertOrgGrant(g);
        let started = Instant::now();
        let next = base.apply(base.revision() + 1, &change).expect("apply");
        apply.push(started.elapsed());
        drop(next);
    }
    stats("Snapshot::apply of the change (in memory)", apply);

    let mut build = Vec::new();
    for _ in 0..3 {
        let rows = scale::rows();
        let started = Instant::now();
        let s = Snapshot::build(rows).expect("build");
        build.push(started.elapsed());
        drop(s);
    }
    stats("Snapshot::build from all rows (full rebuild)", build);

    let mut load = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let rows = store.load_rows().await.expect("load");
        load.push(started.elapsed());
        drop(rows);
    }
    stats("Store::load_rows (read every policy row)", load);
}

async fn write(http: &reqwest::Client, url: &str, enabled: bool) -> u64 {
    let resp = http
        .patch(url)
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "enabled": enabled }))
        .send()
        .await
        .expect("patch");
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.expect("json");
    assert!(status.is_success(), "{status}: {body}");
    body["revision"].as_u64().expect("revision")
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let writes = std::env::var("WARDEN_BENCH_WRITES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for backend in ["sqlite", "postgres"] {
        if args.is_empty() || args.iter().any(|a| a == backend) {
            runtime.block_on(run(backend, writes));
        }
    }
}
