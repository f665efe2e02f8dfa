//! Background tasks: the replica heartbeat (both backends) and, on
//! PostgreSQL, the change feed that keeps this replica's snapshot current:
//! LISTEN for new revisions, apply `policy_changes` in order (full reload on
//! a gap or error), and poll the revision as a backstop, confirming the
//! snapshot is current each time (bounded staleness).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sqlx::postgres::PgListener;
use sqlx::AnyPool;
use tokio::sync::Notify;
use warden_policy::{PolicyChange, Snapshot};

use crate::db::{self, Backend, RowExt};
use crate::error::{Result, StoreError};
use crate::live::LivePolicy;
use crate::store::{Store, POLICY_CHANNEL};

/// One Warden process sharing the database, as its heartbeats report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicaInfo {
    pub id: String,
    pub started_at_ms: i64,
    pub heartbeat_at_ms: i64,
    pub applied_revision: u64,
    /// Heartbeat recent enough (within `replica_live_within`).
    pub live: bool,
}

/// Heartbeats older than this are removed.
const FORGET_REPLICAS_AFTER_MS: i64 = 24 * 3600 * 1000;

pub(crate) async fn start(store: &Store) -> Result<()> {
    let inner = &store.inner;
    heartbeat(
        &inner.pool,
        &inner.replica_id,
        inner.started_at_ms,
        inner.live.revision(),
    )
    .await?;
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(heartbeat_task(
        inner.pool.clone(),
        Arc::clone(&inner.live),
        inner.replica_id.clone(),
        inner.started_at_ms,
        inner.options.heartbeat_interval,
        (
            Arc::clone(&inner.live_replicas),
            inner.options.replica_live_within,
        ),
    )));
    if inner.backend == Backend::Postgres {
        tasks.push(tokio::spawn(listen_task(
            inner.url.clone(),
            Arc::clone(&inner.live),
            Arc::clone(&inner.sync_wake),
        )));
        tasks.push(tokio::spawn(sync_task(
            inner.pool.clone(),
            Arc::clone(&inner.live),
            Arc::clone(&inner.sync_wake),
            inner.options.poll_interval,
        )));
    }
    if let Ok(mut slot) = inner.tasks.lock() {
        slot.extend(tasks);
    }
    Ok(())
}

async fn heartbeat(pool: &AnyPool, id: &str, started_at_ms: i64, revision: u64) -> Result<()> {
    let now = db::now_ms();
    sqlx::query(
        "INSERT INTO replicas (id, started_at_ms, heartbeat_at_ms, applied_revision) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET \
         heartbeat_at_ms = excluded.heartbeat_at_ms, applied_revision = excluded.applied_revision",
    )
    .bind(id.to_owned())
    .bind(started_at_ms)
    .bind(now)
    .bind(revision as i64)
    .execute(pool)
    .await?;
    Ok(())
}

/// Reports the applied revision every `interval`, and at once when it moves
/// (so `wait_propagated` sees it quickly).
async fn heartbeat_task(
    pool: AnyPool,
    live: Arc<LivePolicy>,
    id: String,
    started_at_ms: i64,
    interval: Duration,
    (live_replicas, live_within): (Arc<AtomicUsize>, Duration),
) {
    let mut revisions = live.subscribe();
    let mut tick = tokio::time::interval(interval);
    let mut beats: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = revisions.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
        if let Err(e) = heartbeat(&pool, &id, started_at_ms, live.revision()).await {
            tracing::warn!(error = %e, "replica heartbeat failed");
            continue;
        }
        match count_live(&pool, live_within).await {
            Ok(n) => {
                if live_replicas.swap(n, Ordering::Relaxed) != n {
                    tracing::info!(replicas = n, "live replicas changed; limits re-shared");
                }
                metrics::gauge!("warden_live_replicas").set(n as f64);
            }
            Err(e) => tracing::debug!(error = %e, "could not count live replicas"),
        }
        beats += 1;
        if beats % 600 == 1 {
            let cutoff = db::now_ms() - FORGET_REPLICAS_AFTER_MS;
            let _ = sqlx::query("DELETE FROM replicas WHERE heartbeat_at_ms < $1")
                .bind(cutoff)
                .execute(&pool)
                .await;
        }
    }
}

/// Replicas whose heartbeat is within `live_within`, at least 1 (this one).
async fn count_live(pool: &AnyPool, live_within: Duration) -> Result<usize> {
    let live_after = db::now_ms() - live_within.as_millis() as i64;
    let row = sqlx::query("SELECT COUNT(*) AS n FROM replicas WHERE heartbeat_at_ms >= $1")
        .bind(live_after)
        .fetch_one(pool)
        .await?;
    let n = row.int("n")?;
    Ok(usize::try_from(n).unwrap_or(1).max(1))
}

/// LISTENs for new revisions and wakes the sync task; after every
/// (re)connect it wakes it too, since notifications may have been missed.
async fn listen_task(url: String, live: Arc<LivePolicy>, wake: Arc<Notify>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut listener = match PgListener::connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "policy listener cannot connect; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        if let Err(e) = listener.listen(POLICY_CHANNEL).await {
            tracing::debug!(error = %e, "LISTEN failed; retrying");
            tokio::time::sleep(backoff).await;
            continue;
        }
        backoff = Duration::from_millis(100);
        wake.notify_one();
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    let newer = n
                        .payload()
                        .parse::<u64>()
                        .map_or(true, |rev| rev > live.revision());
                    if newer {
                        wake.notify_one();
                    }
                }
                // Connection lost: reconnect from scratch and resync.
                Ok(None) | Err(_) => {
                    tracing::warn!("policy listener lost its connection; reconnecting");
                    break;
                }
            }
        }
    }
}

/// Brings the live snapshot to the store's revision whenever woken and
/// every `poll_interval`, confirming it is current.
async fn sync_task(
    pool: AnyPool,
    live: Arc<LivePolicy>,
    wake: Arc<Notify>,
    poll_interval: Duration,
) {
    let mut tick = tokio::time::interval(poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = wake.notified() => {}
        }
        match sync_once(&pool, &live).await {
            Ok(()) => {
                if failing {
                    tracing::info!(revision = live.revision(), "policy sync recovered");
                }
                failing = false;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "policy sync failed; the snapshot will go stale");
                }
                failing = true;
            }
        }
    }
}

/// One sync: read the store's revision, catch up if behind, confirm.
pub(crate) async fn sync_once(pool: &AnyPool, live: &LivePolicy) -> Result<()> {
    let asked = std::time::Instant::now();
    let current: i64 = sqlx::query_scalar("SELECT revision FROM policy_meta WHERE id = 1")
        .fetch_one(pool)
        .await?;
    let current = current as u64;
    if live.revision() < current {
        catch_up(pool, live).await?;
    }
    if live.revision() >= current {
        live.confirm_current_as_of(asked);
    }
    Ok(())
}

/// Applies the change feed after the live revision, in order; on a gap or
/// a change that does not apply, rebuilds from all rows instead.
async fn catch_up(pool: &AnyPool, live: &LivePolicy) -> Result<()> {
    let base = live.snapshot();
    match replay_feed(pool, &base, None).await? {
        Some(snapshot) => {
            live.install(snapshot);
        }
        None => {
            let rows = crate::store::load_rows_from_pool(pool, Backend::Postgres).await?;
            live.install(Snapshot::build(rows)?);
        }
    }
    Ok(())
}

/// `base` with the change feed after its revision applied in order, up to
/// `upto` (inclusive; everything there is without it). `None` when there is
/// nothing to apply, the feed has a gap, an entry does not apply, or `upto`
/// is not reached: the caller then builds from all rows, which is
/// authoritative.
pub(crate) async fn replay_feed<'c, E>(
    exec: E,
    base: &Snapshot,
    upto: Option<u64>,
) -> Result<Option<Snapshot>>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let rows = sqlx::query(
        "SELECT revision, change FROM policy_changes \
         WHERE revision > $1 AND revision <= $2 ORDER BY revision",
    )
    .bind(base.revision() as i64)
    .bind(upto.map_or(i64::MAX, |u| u as i64))
    .fetch_all(exec)
    .await?;
    let mut next: Option<Snapshot> = None;
    for row in &rows {
        let revision = row.int("revision")? as u64;
        let at = next.as_ref().map_or(base.revision(), Snapshot::revision);
        if revision != at + 1 {
            return Ok(None);
        }
        let Ok(change) = row.json::<PolicyChange>("change") else {
            return Ok(None);
        };
        match next.as_ref().unwrap_or(base).apply(revision, &change) {
            Ok(s) => next = Some(s),
            Err(e) => {
                tracing::warn!(error = %e, revision, "change feed entry does not apply; full reload");
                return Ok(None);
            }
        }
    }
    Ok(next.filter(|s| upto.is_none_or(|u| s.revision() == u)))
}

impl Store {
    /// How many live replicas share each limit, kept current by this
    /// replica's heartbeat (1 until others appear).
    pub fn live_replicas(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.inner.live_replicas)
    }

    /// Every replica that reported a heartbeat, most recent first.
    pub async fn list_replicas(&self) -> Result<Vec<ReplicaInfo>> {
        let live_after = db::now_ms() - self.inner.options.replica_live_within.as_millis() as i64;
        let rows = sqlx::query(
            "SELECT id, started_at_ms, heartbeat_at_ms, applied_revision FROM replicas \
             ORDER BY heartbeat_at_ms DESC",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let heartbeat_at_ms = r.int("heartbeat_at_ms")?;
                let mut applied_revision = r.int("applied_revision")? as u64;
                let id = r.text("id")?;
                if id == self.inner.replica_id {
                    applied_revision = applied_revision.max(self.inner.live.revision());
                }
                Ok(ReplicaInfo {
                    live: heartbeat_at_ms >= live_after || id == self.inner.replica_id,
                    id,
                    started_at_ms: r.int("started_at_ms")?,
                    heartbeat_at_ms,
                    applied_revision,
                })
            })
            .collect()
    }

    /// Waits until every live replica has applied `revision`, or fails with
    /// [`StoreError::NotPropagated`] naming the laggards after `timeout`.
    pub async fn wait_propagated(&self, revision: u64, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Replicas usually apply within a few ms: poll soon, then back off.
        let mut pause = Duration::from_millis(1);
        loop {
            let laggards: Vec<ReplicaInfo> = self
                .list_replicas()
                .await?
                .into_iter()
                .filter(|r| r.live && r.applied_revision < revision)
                .collect();
            if laggards.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::NotPropagated { revision, laggards });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    /// Stops the background tasks and removes this replica from the registry.
    pub async fn shutdown(&self) -> Result<()> {
        if let Ok(mut tasks) = self.inner.tasks.lock() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
        sqlx::query("DELETE FROM replicas WHERE id = $1")
            .bind(self.inner.replica_id.clone())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
