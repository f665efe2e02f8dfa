//! PostgreSQL replicas: two stores on one database, the change feed,
//! bounded staleness across a database outage, and the replica registry.

mod common;

use std::time::{Duration, Instant};

use common::{create_org, http, options, TestDb};
use warden_policy::ToolFilter;
use warden_store::*;

async fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < within, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_on_one_replica_reach_the_other() {
    let db = TestDb::new(common::Backend::Postgres).await;
    let mut opts = options();
    opts.poll_interval = Duration::from_secs(30); // prove LISTEN does the work
    let a = Store::open(db.url(), opts.clone()).await.unwrap();
    let b = Store::open(db.url(), opts).await.unwrap();

    let org = create_org(&a, "t", "acme").await;
    let server = a
        .create_server(
            "t",
            NewServer::new("github", None, http("https://e.com/mcp")),
        )
        .await
        .unwrap();
    let grant = a
        .create_org_grant(
            "t",
            OrgGrant {
                org: org.value.id,
                server: server.value.id,
                enabled: true,
                filter: ToolFilter::All,
            },
        )
        .await
        .unwrap();
    eventually("B applies A's writes", Duration::from_secs(2), || {
        b.live().revision() == grant.revision
    })
    .await;
    assert!(
        b.live()
            .snapshot()
            .org_grant(org.value.id, server.value.id)
            .unwrap()
            .enabled
    );

    // Many disables through A: each visible on B quickly, via notify.
    let mut worst = Duration::ZERO;
    for i in 0..20 {
        let w = a
            .update_org_grant(
                "t",
                org.value.id,
                server.value.id,
                OrgGrantPatch {
                    enabled: Some(i % 2 == 1),
                    filter: None,
                },
            )
            .await
            .unwrap();
        let took = eventually("B applies the change", Duration::from_secs(1), || {
            b.live().revision() >= w.revision
        })
        .await;
        worst = worst.max(took);
        assert_eq!(
            b.live()
                .snapshot()
                .org_grant(org.value.id, server.value.id)
                .unwrap()
                .enabled,
            i % 2 == 1
        );
    }
    assert!(
        worst < Duration::from_millis(500),
        "slowest propagation {worst:?}"
    );

    // Writes on B are applied on A too, and the snapshots agree.
    let w = b
        .delete_org_grant("t", org.value.id, server.value.id)
        .await
        .unwrap();
    eventually("A applies B's write", Duration::from_secs(2), || {
        a.live().revision() == w
    })
    .await;
    assert_eq!(a.live().snapshot().to_rows(), b.live().snapshot().to_rows());

    // The registry lists both, and a write can wait until both applied it.
    let w = a
        .update_org(
            "t",
            org.value.id,
            OrgPatch {
                suspended: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    a.wait_propagated(w.revision, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(b.live().revision() >= w.revision);
    let replicas = a.list_replicas().await.unwrap();
    assert_eq!(replicas.len(), 2);
    assert!(
        replicas
            .iter()
            .all(|r| r.live && r.applied_revision >= w.revision),
        "{replicas:?}"
    );
    b.shutdown().await.unwrap();
    assert_eq!(a.list_replicas().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_fails_closed_while_postgres_is_down_and_recovers() {
    let mut db = TestDb::new(common::Backend::Postgres).await;
    let mut opts = options();
    opts.max_staleness = Duration::from_millis(800);
    opts.poll_interval = Duration::from_millis(100);
    let a = Store::open(db.url(), opts.clone()).await.unwrap();
    let b = Store::open(db.url(), opts).await.unwrap();
    create_org(&a, "t", "acme").await;
    eventually("B current", Duration::from_secs(2), || {
        b.live().revision() == 1
    })
    .await;
    assert!(!b.live().is_stale());

    db.postgres().stop();
    let stale_after = eventually("B goes stale", Duration::from_secs(5), || {
        b.live().is_stale()
    })
    .await;
    assert!(
        stale_after >= Duration::from_millis(500),
        "stale too early: {stale_after:?}"
    );
    assert!(a
        .create_org(
            "t",
            NewOrg {
                slug: "down".into(),
                name: String::new()
            }
        )
        .await
        .is_err());

    db.postgres().restart();
    eventually("B recovers", Duration::from_secs(10), || {
        !b.live().is_stale()
    })
    .await;
    // And follows writes again, including through a reconnected LISTEN.
    let w = create_org(&a, "t", "after").await;
    eventually(
        "B applies writes after the outage",
        Duration::from_secs(5),
        || b.live().revision() >= w.revision,
    )
    .await;
    assert!(b.live().snapshot().org_by_slug("after").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_was_down_comes_back_current_and_laggards_are_reported() {
    let db = TestDb::new(common::Backend::Postgres).await;
    let a = Store::open(db.url(), options()).await.unwrap();
    let b = Store::open(db.url(), options()).await.unwrap();
    drop(b); // gone without deregistering: its row stays, still "live" for a while
    let w = create_org(&a, "t", "acme").await;
    match a
        .wait_propagated(w.revision, Duration::from_millis(300))
        .await
    {
        Err(StoreError::NotPropagated { laggards, .. }) => assert_eq!(laggards.len(), 1),
        other => panic!("expected laggards, got {other:?}"),
    }
    let c = Store::open(db.url(), options()).await.unwrap();
    assert_eq!(
        c.live().revision(),
        w.revision,
        "a new replica starts current"
    );
    assert!(!c.live().is_stale());
}

#[tokio::test]
async fn sqlite_is_never_stale_and_lists_itself() {
    let db = TestDb::new(common::Backend::Sqlite).await;
    let store = Store::open(db.url(), options()).await.unwrap();
    let w = create_org(&store, "t", "acme").await;
    store
        .wait_propagated(w.revision, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(!store.live().is_stale());
    assert_eq!(store.list_replicas().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_a_replica_that_is_behind_includes_every_earlier_write() {
    let db = TestDb::new(common::Backend::Postgres).await;
    let mut opts = options();
    opts.poll_interval = Duration::from_secs(30);
    let a = Store::open(db.url(), opts.clone()).await.unwrap();
    let b = Store::open(db.url(), opts).await.unwrap();
    for round in 0..5 {
        // B writes right after A's burst, usually before it heard of all of
        // it: its write catches up from the change feed in its transaction.
        for i in 0..4 {
            create_org(&a, "t", &format!("a{round}-{i}")).await;
        }
        let w = create_org(&b, "t", &format!("b{round}")).await;
        let snapshot = b.live().snapshot();
        assert!(snapshot.revision() >= w.revision);
        for i in 0..4 {
            assert!(
                snapshot.org_by_slug(&format!("a{round}-{i}")).is_some(),
                "B's write at {} lost A's earlier write a{round}-{i}",
                w.revision
            );
        }
        assert!(snapshot.org_by_slug(&format!("b{round}")).is_some());
    }
    let last = b.live().revision();
    eventually("A applies B's writes", Duration::from_secs(2), || {
        a.live().revision() >= last
    })
    .await;
    assert_eq!(a.live().snapshot().to_rows(), b.live().snapshot().to_rows());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_reach_the_other_replica_through_the_feed() {
    let db = TestDb::new(common::Backend::Postgres).await;
    let a = Store::open(db.url(), options()).await.unwrap();
    let b = Store::open(db.url(), options()).await.unwrap();
    let org = create_org(&a, "t", "acme").await.value.id;
    let server = a
        .create_server(
            "t",
            NewServer::new("github", None, http("https://e.com/mcp")),
        )
        .await
        .unwrap()
        .value
        .id;
    a.create_org_grant(
        "t",
        OrgGrant {
            org,
            server,
            enabled: true,
            filter: ToolFilter::All,
        },
    )
    .await
    .unwrap();
    let limit = a
        .create_limit(
            "t",
            NewLimit {
                org,
                level: warden_policy::LimitLevel::Org,
                server: Some(server),
                tool: Some("search".into()),
                rate: Some(warden_policy::Rate {
                    requests: 10,
                    per: warden_policy::Window::Minute,
                    burst: 2,
                }),
                concurrency: None,
            },
        )
        .await
        .unwrap();
    eventually("B applies the limit", Duration::from_secs(5), || {
        b.live().revision() == limit.revision
    })
    .await;
    assert_eq!(
        b.live().snapshot().limit(limit.value.id),
        Some(&limit.value.row())
    );
    // The grant's deletion cascades to the limit on both replicas.
    let revision = a.delete_org_grant("t", org, server).await.unwrap();
    eventually("B applies the cascade", Duration::from_secs(5), || {
        b.live().revision() == revision
    })
    .await;
    assert!(b.live().snapshot().limit(limit.value.id).is_none());
    assert_eq!(b.live().snapshot().to_rows(), a.live().snapshot().to_rows());
}
