//! Secrets at rest, the admin audit trail, audit queries and the decision writer.

mod common;

use std::time::Duration;

use common::{create_org, http, open, Backend, TestDb};
use sqlx::{AnyConnection, Connection, Row};
use warden_policy::{KeyId, OrgId};
use warden_store::*;

async fn raw_conn(db: &TestDb) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(db.url()).await.unwrap()
}

async fn secrets_encrypted_and_redacted(backend: Backend) {
    let (db, store) = open(backend).await;
    let mut new = NewServer::new("github", None, http("https://example.com/mcp"));
    new.secret_headers.insert(
        "Authorization".into(),
        Secret::new("Bearer plaintext-token-123"),
    );
    let server = store.create_server("alice", new).await.unwrap().value;
    store
        .update_server(
            "alice",
            server.id,
            ServerPatch {
                secret_headers: Some(
                    [("X-Api-Key".to_owned(), Secret::new("plaintext-key-456"))].into(),
                ),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let mut conn = raw_conn(&db).await;
    let stored: String = sqlx::query("SELECT secret_headers FROM servers")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    assert!(stored.contains("X-Api-Key"));
    assert!(
        !stored.contains("plaintext"),
        "secret stored in clear: {stored}"
    );
    let audit: Vec<String> =
        sqlx::query("SELECT COALESCE(before_json, '') || COALESCE(after_json, '') FROM audit_log")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(audit.len(), 2);
    for entry in &audit {
        assert!(!entry.contains("plaintext"), "secret in audit: {entry}");
    }
    assert!(
        audit[1].contains("X-Api-Key"),
        "header names are shown: {}",
        audit[1]
    );

    // Decrypted only for the gateway; a wrong key cannot read them.
    let upstream = store.load_upstream(server.id).await.unwrap().unwrap();
    assert_eq!(
        upstream.secret_headers["X-Api-Key"].expose(),
        "plaintext-key-456"
    );
    assert!(!format!("{upstream:?}").contains("plaintext"));
    drop(store);
    let wrong = Store::open(db.url(), StoreOptions::new([1; 32]))
        .await
        .unwrap();
    assert!(matches!(
        wrong.load_upstreams().await,
        Err(StoreError::Crypto(_))
    ));
}

async fn audit_trail_and_queries(backend: Backend) {
    let (_db, store) = open(backend).await;
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let acme = create_org(&store, "alice", "acme").await;
    let other = create_org(&store, "bob", "other").await;
    for i in 0..5 {
        store
            .update_org(
                "bob",
                acme.value.id,
                OrgPatch {
                    name: Some(format!("Acme {i}")),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }

    let all = store.query_audit(&AuditQuery::default()).await.unwrap();
    assert_eq!(all.entries.len(), 7);
    assert!(
        all.entries.windows(2).all(|w| w[0].id > w[1].id),
        "newest first"
    );
    let newest = &all.entries[0];
    assert_eq!(newest.action, "update");
    assert_eq!(newest.actor.as_deref(), Some("bob"));
    assert_eq!(newest.revision, store.live().revision());
    assert_eq!(newest.before.as_ref().unwrap()["name"], "Acme 3");
    assert_eq!(newest.after.as_ref().unwrap()["name"], "Acme 4");
    let created = all.entries.last().unwrap();
    assert_eq!(
        (created.action.as_str(), created.before.is_none()),
        ("create", true)
    );

    let by_actor = store
        .query_audit(&AuditQuery {
            actor: Some("alice".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_actor.entries.len(), 1);
    let by_entity = store
        .query_audit(&AuditQuery {
            entity_kind: Some("org".into()),
            entity_id: Some(other.value.id.to_string()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_entity.entries.len(), 1);
    let by_org = store
        .query_audit(&AuditQuery {
            org: Some(acme.value.id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_org.entries.len(), 6);
    let future = store
        .query_audit(&AuditQuery {
            since_ms: Some(t0 + 3_600_000),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(future.entries.is_empty());
    let past = store
        .query_audit(&AuditQuery {
            until_ms: Some(t0 - 1),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(past.entries.is_empty());

    // Cursor pagination walks everything exactly once.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .query_audit(&AuditQuery {
                before_id: cursor,
                limit: Some(3),
                ..Default::default()
            })
            .await
            .unwrap();
        seen.extend(page.entries.iter().map(|e| e.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, all.entries.iter().map(|e| e.id).collect::<Vec<_>>());
}

fn decision(i: u64, allowed: bool) -> DecisionRecord {
    DecisionRecord {
        decision_id: format!("d-{i}"),
        at_ms: 1_700_000_000_000 + i as i64,
        org: Some(OrgId(1)),
        key: Some(KeyId(7)),
        end_user: None,
        agent: None,
        method: "tools/call".into(),
        server_slug: "github".into(),
        tool: Some("search".into()),
        allowed,
        reason: (!allowed).then(|| "not_granted_by_key".into()),
        revision: 3,
        latency_us: 120,
    }
}

async fn decision_writer_batches(backend: Backend) {
    let (_db, store) = open(backend).await;
    let writer = store.audit_writer(AuditWriterOptions::default());
    for i in 0..1_200 {
        writer.record(decision(i, i % 3 != 0));
    }
    writer.flush().await;
    assert_eq!(writer.written_total(), 1_200);
    assert_eq!(writer.dropped_total(), 0);
    let page = store
        .query_audit(&AuditQuery {
            kind: Some(AuditKind::Decision),
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.entries.len(), 1000);
    assert!(page.next_cursor.is_some());
    let newest = &page.entries[0];
    let d = newest.decision.as_ref().unwrap();
    assert_eq!(d.decision_id, "d-1199");
    assert_eq!(
        (d.key, d.tool.as_deref(), d.latency_us),
        (Some(KeyId(7)), Some("search"), 120)
    );
    assert_eq!(newest.actor.as_deref(), Some("key:7"));
    assert_eq!(newest.revision, 3);
    let denied = page
        .entries
        .iter()
        .find(|e| !e.decision.as_ref().unwrap().allowed)
        .unwrap();
    assert_eq!(
        denied.decision.as_ref().unwrap().reason.as_deref(),
        Some("not_granted_by_key")
    );
    let by_server = store
        .query_audit(&AuditQuery {
            kind: Some(AuditKind::Decision),
            entity_kind: Some("server".into()),
            entity_id: Some("github".into()),
            limit: Some(1),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_server.entries.len(), 1);
}

async fn full_queue_counts_drops(backend: Backend) {
    let (_db, store) = open(backend).await;
    let writer = store.audit_writer(AuditWriterOptions {
        queue_capacity: 8,
        max_batch: 8,
        warn_every: Duration::from_secs(60),
    });
    // A burst far beyond the queue: `record` must not wait, extras are counted.
    let started = std::time::Instant::now();
    for i in 0..10_000 {
        writer.record(decision(i, true));
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "record() blocked"
    );
    writer.flush().await;
    let dropped = writer.dropped_total();
    assert!(dropped > 0, "nothing dropped");
    assert_eq!(writer.written_total() + dropped, 10_000);
}

async fn a_batch_the_database_refuses_is_counted_as_lost(backend: Backend) {
    let (db, store) = open(backend).await;
    let writer = store.audit_writer(AuditWriterOptions::default());
    writer.record(decision(0, true));
    writer.flush().await;
    assert_eq!(writer.written_total(), 1);
    // The database now refuses every decision row.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(db.url()).await.unwrap();
    sqlx::query("ALTER TABLE audit_log RENAME TO audit_log_elsewhere")
        .execute(&pool)
        .await
        .unwrap();
    for i in 1..=5 {
        writer.record(decision(i, true));
    }
    writer.flush().await;
    assert_eq!(writer.written_total(), 1);
    assert_eq!(writer.dropped_total(), 5, "lost rows must be counted");
}

async fn decision_ids(db: &TestDb) -> Vec<String> {
    let mut conn = raw_conn(db).await;
    sqlx::query("SELECT decision_id FROM audit_log WHERE kind = 'decision' ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn a_durable_record_is_readable_once_it_resolved(backend: Backend) {
    let (db, store) = open(backend).await;
    let writer = store.audit_writer(AuditWriterOptions::default());
    for i in 0..3 {
        let mut record = decision(i, true);
        record.latency_us = 0;
        writer.record_durable(record).await.unwrap();
        // Read over another connection: committed, not just queued.
        let ids = decision_ids(&db).await;
        assert_eq!(
            ids.last().map(String::as_str),
            Some(format!("d-{i}").as_str())
        );
        assert_eq!(ids.len() as u64, i + 1);
    }
    assert_eq!(writer.written_total(), 3);
    assert_eq!(writer.commits_total(), 3);
}

/// (n, latency_us) of every decision `d-<n>`, checking there are `count`.
async fn latencies(store: &Store, count: usize) -> Vec<(u64, u64)> {
    let page = store
        .query_audit(&AuditQuery {
            kind: Some(AuditKind::Decision),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.entries.len(), count);
    page.entries
        .iter()
        .map(|e| {
            let d = e.decision.as_ref().unwrap();
            let n = d.decision_id.trim_start_matches("d-").parse().unwrap();
            (n, d.latency_us)
        })
        .collect()
}

async fn outcomes_set_the_latency_of_durable_rows(backend: Backend) {
    let (_db, store) = open(backend).await;
    let writer = store.audit_writer(AuditWriterOptions::default());
    // More than one UPDATE statement's worth, with distinct and shared at_ms.
    let records: Vec<DecisionRecord> = (0..40)
        .map(|i| {
            let mut r = decision(i, true);
            r.at_ms = 1_700_000_000_000 + (i as i64 / 3);
            r.latency_us = 0;
            r
        })
        .collect();
    let pending: Vec<_> = records
        .iter()
        .map(|r| writer.record_durable(r.clone()))
        .collect();
    for p in pending {
        p.await.unwrap();
    }
    // Every other call ends; the rest (still running, or lost) stay at 0.
    for (i, r) in records.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        writer.record_outcome(DecisionOutcome::of(r, 1_000 + i as u64));
    }
    writer.flush().await;
    assert_eq!(writer.outcomes_lost_total(), 0);
    for (i, latency_us) in latencies(&store, 40).await {
        let want = if i % 2 == 0 { 1_000 + i } else { 0 };
        assert_eq!(latency_us, want, "d-{i}");
    }
}

async fn concurrent_durable_records_share_transactions(backend: Backend) {
    let (db, store) = open(backend).await;
    let writer = store.audit_writer(AuditWriterOptions::default());
    // A burst: queued together, committed together.
    let burst: Vec<_> = (0..200)
        .map(|i| writer.record_durable(decision(i, true)))
        .collect();
    for r in futures::future::join_all(burst).await {
        r.unwrap();
    }
    assert_eq!(writer.written_total(), 200);
    assert!(
        writer.commits_total() <= 3,
        "200 queued records took {} transactions",
        writer.commits_total()
    );
    // 32 callers, each waiting for its record before the next one: the
    // records queued while a batch commits share the next transaction.
    let before = writer.commits_total();
    let tasks: Vec<_> = (0..32u64)
        .map(|t| {
            let writer = writer.clone();
            tokio::spawn(async move {
                for i in 0..20u64 {
                    writer
                        .record_durable(decision(1_000 + t * 100 + i, true))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let commits = writer.commits_total() - before;
    assert_eq!(writer.written_total(), 200 + 640);
    assert!(
        commits <= 320,
        "640 records from 32 concurrent callers took {commits} transactions"
    );
    assert_eq!(decision_ids(&db).await.len(), 840);
}

async fn a_refused_database_fails_durable_records(backend: Backend) {
    let (db, store) = open(backend).await;
    let writer = store.audit_writer(AuditWriterOptions::default());
    writer.record_durable(decision(0, true)).await.unwrap();
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(db.url()).await.unwrap();
    sqlx::query("ALTER TABLE audit_log RENAME TO audit_log_elsewhere")
        .execute(&pool)
        .await
        .unwrap();
    let refused: Vec<_> = (1..=3)
        .map(|i| writer.record_durable(decision(i, true)))
        .collect();
    for r in futures::future::join_all(refused).await {
        match r {
            Err(e @ StoreError::AuditUnavailable(_)) => {
                assert_eq!(e.code(), "audit_unavailable");
                assert!(!e.is_client_error());
            }
            other => panic!("expected audit_unavailable, got {other:?}"),
        }
    }
    assert_eq!(writer.dropped_total(), 3);
    // The writer is not stuck: once the database takes rows again, so does it.
    sqlx::query("ALTER TABLE audit_log_elsewhere RENAME TO audit_log")
        .execute(&pool)
        .await
        .unwrap();
    writer.record_durable(decision(9, true)).await.unwrap();
    assert_eq!(decision_ids(&db).await, ["d-0", "d-9"]);
}

async fn a_full_queue_refuses_durable_records_at_once(backend: Backend) {
    let (_db, store) = open(backend).await;
    let writer = store.audit_writer(AuditWriterOptions {
        queue_capacity: 4,
        max_batch: 4,
        warn_every: Duration::from_secs(60),
    });
    let burst: Vec<_> = (0..100)
        .map(|i| writer.record_durable(decision(i, true)))
        .collect();
    let results = futures::future::join_all(burst).await;
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::AuditUnavailable(_))))
        .count();
    assert!(refused > 0, "nothing refused");
    assert_eq!(results.len() - refused, writer.written_total() as usize);
    assert_eq!(refused as u64, writer.dropped_total());
}

/// The environment variable that turns [`crash_child`] into the child of
/// [`kill9_mid_burst_loses_no_durable_record`]: the database URL.
const CRASH_CHILD_ENV: &str = "WARDEN_AUDIT_CRASH_CHILD_URL";
const DURABLE_LINE: &str = "durable ";

/// Not a test of its own: with [`CRASH_CHILD_ENV`] set, this is the child
/// process of the crash test (this test binary run again). 32 tasks record
/// durably in a loop and print each decision id once its record resolved,
/// until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() {
    let Ok(url) = std::env::var(CRASH_CHILD_ENV) else {
        return;
    };
    let store = Store::open(&url, common::options()).await.unwrap();
    let writer = store.audit_writer(AuditWriterOptions::default());
    let tasks: Vec<_> = (0..32u64)
        .map(|t| {
            let writer = writer.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let mut record = decision(i, true);
                    record.decision_id = format!("crash-{t}-{i}");
                    let id = record.decision_id.clone();
                    writer.record_durable(record).await.unwrap();
                    println!("{DURABLE_LINE}{id}");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

async fn kill9_mid_burst_loses_no_durable_record(backend: Backend) {
    let (db, store) = open(backend).await;
    drop(store);
    let exe = std::env::current_exe().unwrap();
    let url = db.url().to_owned();
    let printed = tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(exe);
        cmd.args([
            "--exact",
            "crash_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CRASH_CHILD_ENV, url);
        warden_testkit::kill9_after_lines(&mut cmd, DURABLE_LINE, 2_000, Duration::from_secs(60))
    })
    .await
    .unwrap();
    assert!(printed.len() >= 2_000);
    let missing = warden_testkit::missing_decisions(db.url(), &printed).await;
    assert!(
        missing.is_empty(),
        "{} of {} resolved durable records are not in the database: {:?}",
        missing.len(),
        printed.len(),
        &missing[..missing.len().min(10)]
    );
}

async fn spooled_records_reach_the_database_and_a_replay_adds_only_what_is_missing(
    backend: Backend,
) {
    let (db, store) = open(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join("spool");
    let writer = store.audit_writer_spooled(
        AuditWriterOptions::default(),
        AuditSpool::open(&spool_dir).unwrap(),
    );
    for i in 0..3 {
        writer.record_durable(decision(i, true)).await.unwrap();
    }
    // Durable in the spool at once; in the database after the writer's batch.
    let segments = std::fs::read_dir(&spool_dir).unwrap().count();
    assert_eq!(segments, 1);
    writer.flush().await;
    assert_eq!(decision_ids(&db).await, ["d-0", "d-1", "d-2"]);

    // What a crash leaves: a segment with one record the database has, one
    // it lacks, and a torn last line.
    let mut left = serde_json::to_string(&decision(1, true)).unwrap();
    left.push('\n');
    left.push_str(&serde_json::to_string(&decision(7, true)).unwrap());
    left.push_str("\n{\"decision_id\":\"d-8\",\"at");
    let crashed = dir.path().join("crashed");
    std::fs::create_dir(&crashed).unwrap();
    std::fs::write(crashed.join("segment-000000000004.jsonl"), left).unwrap();
    let replay = store.replay_audit_spool(&crashed).await.unwrap();
    assert_eq!(
        replay,
        SpoolReplay {
            inserted: 1,
            present: 1,
            unreadable: 1
        }
    );
    assert_eq!(decision_ids(&db).await, ["d-0", "d-1", "d-2", "d-7"]);
    assert_eq!(
        std::fs::read_dir(&crashed).unwrap().count(),
        0,
        "segments deleted"
    );
    // A second replay finds nothing.
    assert_eq!(
        store.replay_audit_spool(&crashed).await.unwrap(),
        SpoolReplay::default()
    );
}

async fn a_spooled_record_and_its_outcome_are_written_as_one_row(backend: Backend) {
    let (db, store) = open(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let writer = store.audit_writer_spooled(
        AuditWriterOptions::default(),
        AuditSpool::open(&dir.path().join("spool")).unwrap(),
    );
    let records: Vec<DecisionRecord> = (0..40)
        .map(|i| {
            let mut r = decision(i, true);
            r.latency_us = 0;
            r
        })
        .collect();
    // Calls that end at once: each record waits in the writer for its
    // outcome and both become one INSERT.
    for r in &records[..20] {
        writer.record_durable(r.clone()).await.unwrap();
        writer.record_outcome(DecisionOutcome::of(r, 2_000 + r.at_ms as u64 % 100));
    }
    // Calls that end after the writer stopped waiting: the row is written
    // without the latency, which then follows as an update.
    for r in &records[20..] {
        writer.record_durable(r.clone()).await.unwrap();
    }
    tokio::time::sleep(OUTCOME_WAIT * 4).await;
    let early = decision_ids(&db).await;
    assert_eq!(
        early.len(),
        40,
        "held records are written once their wait is over"
    );
    for r in &records[20..] {
        writer.record_outcome(DecisionOutcome::of(r, 3_000));
    }
    writer.flush().await;
    assert_eq!(writer.outcomes_in_row_total(), 20);
    assert_eq!(writer.outcomes_lost_total(), 0);
    assert_eq!(writer.written_total(), 40);
    for (i, latency_us) in latencies(&store, 40).await {
        let want = if i < 20 {
            2_000 + (1_700_000_000_000 + i) % 100
        } else {
            3_000
        };
        assert_eq!(latency_us, want, "d-{i}");
    }
}

on_both_backends!(
    secrets_encrypted_and_redacted,
    audit_trail_and_queries,
    decision_writer_batches,
    full_queue_counts_drops,
    a_batch_the_database_refuses_is_counted_as_lost,
    a_durable_record_is_readable_once_it_resolved,
    outcomes_set_the_latency_of_durable_rows,
    concurrent_durable_records_share_transactions,
    a_refused_database_fails_durable_records,
    a_full_queue_refuses_durable_records_at_once,
    kill9_mid_burst_loses_no_durable_record,
    spooled_records_reach_the_database_and_a_replay_adds_only_what_is_missing,
    a_spooled_record_and_its_outcome_are_written_as_one_row
);
