//! What a durable decision record costs (BENCHMARKS.md, "Durable audit").
//! A timed program, not a criterion bench: the figure is the latency a
//! caller waits under concurrency, which criterion's one-future-at-a-time
//! loop does not show.
//!
//! ```sh
//! cargo bench -p warden-store --bench durable_audit
//! ```
//!
//! 1. `record_durable` latency (call to commit) on SQLite (a file on the
//!    default temp dir), 1 and 32 concurrent callers each waiting for its
//!    record before the next, with the mean batch size;
//! 2. for comparison, plain `record` (queued, never waited for);
//! 3. the two ways of waking waiters, without a database: a oneshot per
//!    record vs a shared `watch` of the committed sequence number.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use warden_policy::{KeyId, OrgId};
use warden_store::{AuditWriter, AuditWriterOptions, DecisionRecord, Store, StoreOptions};
use warden_testkit::TempSqlite;

const RUN: Duration = Duration::from_secs(5);

fn record(i: u64) -> DecisionRecord {
    DecisionRecord {
        decision_id: format!("0193a7c4-0000-7000-8000-{i:012x}"),
        at_ms: 1_700_000_000_000 + i as i64,
        org: Some(OrgId(1)),
        key: Some(KeyId(7)),
        end_user: None,
        agent: None,
        method: "tools/call".into(),
        server_slug: "github".into(),
        tool: Some("search_repositories".into()),
        allowed: true,
        reason: None,
        revision: 3,
        latency_us: 0,
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

async fn durable(writer: &AuditWriter, callers: u64) {
    let next = Arc::new(AtomicU64::new(callers * 10_000_000));
    let commits_before = writer.commits_total();
    let written_before = writer.written_total();
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let writer = writer.clone();
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while started.elapsed() < RUN {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let t = Instant::now();
                    if let Err(e) = writer.record_durable(record(i)).await {
                        panic!("durable record failed: {e}");
                    }
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        match t.await {
            Ok(l) => all.extend(l),
            Err(e) => panic!("caller failed: {e}"),
        }
    }
    let elapsed = started.elapsed();
    all.sort();
    let commits = writer.commits_total() - commits_before;
    let written = writer.written_total() - written_before;
    let mean = all.iter().sum::<Duration>() / all.len().max(1) as u32;
    println!(
        "record_durable, {callers:>2} caller(s): {} records, {:.0}/s; latency p50 {}, p90 {}, p99 {}, max {}, mean {}; {} commits, {:.1} records per commit",
        all.len(),
        all.len() as f64 / elapsed.as_secs_f64(),
        us(pct(&all, 0.50)),
        us(pct(&all, 0.90)),
        us(pct(&all, 0.99)),
        us(pct(&all, 1.0)),
        us(mean),
        commits,
        written as f64 / commits.max(1) as f64,
    );
}

async fn plain(writer: &AuditWriter) {
    let n = 200_000u64;
    let commits_before = writer.commits_total();
    let started = Instant::now();
    let mut queued = Duration::ZERO;
    for i in 0..n {
        let r = record(50_000_000 + i);
        let t = Instant::now();
        writer.record(r);
        queued += t.elapsed();
        if i % 20_000 == 0 {
            // Stay under the queue's capacity: nothing dropped.
            writer.flush().await;
        }
    }
    writer.flush().await;
    let elapsed = started.elapsed();
    println!(
        "record (plain), {n} records: {:.0}/s written, {:.0} ns per record() call; {} commits; dropped {}",
        n as f64 / elapsed.as_secs_f64(),
        queued.as_nanos() as f64 / n as f64,
        writer.commits_total() - commits_before,
        writer.dropped_total(),
    );
}

/// A writer without a database: takes what is queued and wakes its waiters
/// by a oneshot per record.
async fn wake_oneshot(callers: usize, rounds: usize) -> Duration {
    let (tx, mut rx) = mpsc::channel::<oneshot::Sender<()>>(65_536);
    tokio::spawn(async move {
        let mut batch = Vec::new();
        while rx.recv_many(&mut batch, 500).await > 0 {
            for done in batch.drain(..) {
                let _ = done.send(());
            }
        }
    });
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let tx = tx.clone();
            tokio::spawn(async move {
                for _ in 0..rounds {
                    let (done, wait) = oneshot::channel();
                    if tx.try_send(done).is_err() {
                        panic!("queue full");
                    }
                    let _ = wait.await;
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    started.elapsed()
}

/// The same with a shared `watch` of the last committed sequence number.
/// Sequence numbers must follow queue order, so assigning one and queuing
/// it happen under one lock.
async fn wake_watch(callers: usize, rounds: usize) -> Duration {
    let (tx, mut rx) = mpsc::channel::<u64>(65_536);
    let (committed_tx, committed) = watch::channel(0u64);
    let enqueue = Arc::new(std::sync::Mutex::new((0u64, tx)));
    tokio::spawn(async move {
        let mut batch = Vec::new();
        while rx.recv_many(&mut batch, 500).await > 0 {
            if let Some(&last) = batch.last() {
                committed_tx.send_replace(last);
            }
            batch.clear();
        }
    });
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let enqueue = Arc::clone(&enqueue);
            let mut committed = committed.clone();
            tokio::spawn(async move {
                for _ in 0..rounds {
                    let seq = {
                        let Ok(mut guard) = enqueue.lock() else {
                            panic!("poisoned")
                        };
                        guard.0 += 1;
                        let seq = guard.0;
                        if guard.1.try_send(seq).is_err() {
                            panic!("queue full");
                        }
                        seq
                    };
                    let _ = committed.wait_for(|&c| c >= seq).await;
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    started.elapsed()
}

fn main() {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => panic!("no runtime: {e}"),
    };
    runtime.block_on(async {
        let db = TempSqlite::new();
        let store = match Store::open(db.url(), StoreOptions::new([42; 32])).await {
            Ok(s) => s,
            Err(e) => panic!("cannot open {}: {e}", db.url()),
        };
        let writer = store.audit_writer(AuditWriterOptions::default());
        println!("SQLite file: {}", db.url());
        // Warm up: the file, the page cache, the prepared statements.
        for i in 0..2_000 {
            if let Err(e) = writer.record_durable(record(90_000_000 + i)).await {
                panic!("durable record failed: {e}");
            }
        }
        durable(&writer, 1).await;
        durable(&writer, 32).await;
        plain(&writer).await;

        for callers in [1, 32] {
            let rounds = 20_000 / callers;
            let n = (callers * rounds) as f64;
            // Best of three, alternating.
            let mut one = Duration::MAX;
            let mut shared = Duration::MAX;
            for _ in 0..3 {
                one = one.min(wake_oneshot(callers, rounds).await);
                shared = shared.min(wake_watch(callers, rounds).await);
            }
            println!(
                "wake, {callers:>2} caller(s), no database: oneshot per record {:.2} µs per record, shared watch {:.2} µs per record",
                one.as_secs_f64() * 1e6 / n,
                shared.as_secs_f64() * 1e6 / n,
            );
        }
    });
}
