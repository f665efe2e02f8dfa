//! Decision engine speed at the scale of issue 2 (see `scale`).
//!
//! Run: `cargo bench -p warden-policy --bench decide`. Before the criterion
//! groups it prints the policy's size, one timed `Snapshot::build` and the
//! resident memory the snapshot added (from /proc/self/status).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, BatchSize, Criterion};
use warden_policy::*;

mod scale;

/// Resident set size in KiB, if the platform reports it.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn report_build_and_memory() {
    let rows = scale::rows();
    let before = rss_kib();
    let started = Instant::now();
    let snapshot = Snapshot::build(rows).expect("generated rows are valid");
    let took = started.elapsed();
    let after = rss_kib();
    let counts: Vec<String> = snapshot
        .counts()
        .iter()
        .map(|(k, n)| format!("{k}={n}"))
        .collect();
    println!("policy: {}", counts.join(" "));
    println!("one Snapshot::build: {took:?}");
    if let (Some(b), Some(a)) = (before, after) {
        println!(
            "snapshot memory (RSS delta around build, rows consumed): {:.1} MiB",
            a.saturating_sub(b) as f64 / 1024.0
        );
    }
    drop(black_box(snapshot));
}

fn decide(c: &mut Criterion) {
    let rows = scale::rows();
    let catalog = scale::catalog();
    let snapshot = Snapshot::build(rows.clone()).expect("generated rows are valid");
    let (principal, slug, tool) = scale::busy_principal(&snapshot, &rows, &catalog);
    let access = snapshot.access(&principal);
    println!("busy principal: {principal:?} calling {slug}/{tool}");
    assert!(snapshot.decide(&access, &slug, &tool, &catalog, 0).allowed);

    let mut g = c.benchmark_group("decide");
    g.bench_function("warm_access_allowed", |b| {
        b.iter(|| snapshot.decide(&access, black_box(&slug), black_box(&tool), &catalog, 0))
    });
    g.bench_function("warm_access_tool_unknown", |b| {
        b.iter(|| {
            snapshot.decide(
                &access,
                black_box(&slug),
                black_box("no_such_tool"),
                &catalog,
                0,
            )
        })
    });
    g.bench_function("warm_access_server_unknown", |b| {
        b.iter(|| {
            snapshot.decide(
                &access,
                black_box("no-such-server"),
                black_box(&tool),
                &catalog,
                0,
            )
        })
    });
    g.bench_function("cold_access_then_decide", |b| {
        b.iter(|| snapshot.decide_for(black_box(&principal), &slug, &tool, &catalog, 0))
    });
    g.finish();

    let mut g = c.benchmark_group("access");
    g.bench_function("first_access_busy_principal", |b| {
        b.iter(|| snapshot.access(black_box(&principal)))
    });
    let inherit_key = rows
        .keys
        .iter()
        .find(|k| !k.revoked && k.team.is_none() && k.agent.is_none() && k.scope == Scope::Inherit)
        .expect("an unscoped key");
    let plain = Principal {
        key: inherit_key.id,
        end_user: None,
        agent: None,
    };
    g.bench_function("first_access_inherit_key", |b| {
        b.iter(|| snapshot.access(black_box(&plain)))
    });
    g.bench_function("principal_from_token_digest", |b| {
        let digest = inherit_key.token_digest.clone();
        b.iter(|| snapshot.principal(black_box(&digest), None, None))
    });
    g.finish();
}

fn build(c: &mut Criterion) {
    let rows = scale::rows();
    let mut g = c.benchmark_group("build");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("snapshot_from_rows", |b| {
        b.iter_batched(|| rows.clone(), Snapshot::build, BatchSize::PerIteration)
    });
    g.finish();
}

fn apply(c: &mut Criterion) {
    let rows = scale::rows();
    let snapshot = Snapshot::build(rows.clone()).expect("generated rows are valid");
    let grant = rows.org_grants[500].clone();
    let disable = PolicyChange::UpsertOrgGrant(OrgGrantRow {
        enabled: false,
        ..grant.clone()
    });
    let key = rows.keys[12_345].clone();
    let revoke = PolicyChange::UpsertKey(KeyRow {
        revoked: true,
        ..key.clone()
    });
    let new_key = PolicyChange::UpsertKey(KeyRow {
        id: KeyId(10_000_000),
        token_digest: "new-key-digest".into(),
        ..key
    });
    let team = rows.teams[777].clone();
    let rescope_team = PolicyChange::UpsertTeam(TeamRow {
        scope: Scope::empty(),
        ..team
    });
    let delete_grant = PolicyChange::DeleteOrgGrant {
        org: grant.org,
        server: grant.server,
    };

    let mut g = c.benchmark_group("apply");
    for (name, change) in [
        ("disable_org_grant", &disable),
        ("revoke_key", &revoke),
        ("add_key", &new_key),
        ("rescope_team", &rescope_team),
        ("delete_org_grant_cascading", &delete_grant),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| snapshot.apply(2, black_box(change)).expect("valid change"))
        });
    }
    g.finish();
}

criterion_group!(benches, decide, apply, build);

fn main() {
    report_build_and_memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
