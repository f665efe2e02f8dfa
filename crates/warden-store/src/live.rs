//! The live policy snapshot of this process: one `Arc<Snapshot>` swapped
//! atomically, and a watch channel that says when it moved.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::watch;
use warden_policy::Snapshot;

/// The snapshot every request of this process decides with. Readers take an
/// `Arc` (lock-free); a writer installs a newer snapshot and wakes waiters.
#[derive(Debug)]
pub struct LivePolicy {
    current: ArcSwap<Snapshot>,
    revision_tx: watch::Sender<u64>,
    /// `None`: a single process whose own writes are the only writes (SQLite):
    /// never stale. `Some(d)`: a replica that must have confirmed it is
    /// current within `d`, or fail closed.
    max_staleness: Option<Duration>,
    started: Instant,
    /// Milliseconds after `started` of the last confirmation.
    confirmed_at_ms: AtomicU64,
}

impl LivePolicy {
    /// A live policy that is never stale (single process).
    pub fn new(snapshot: Snapshot) -> Arc<Self> {
        Self::with_max_staleness(snapshot, None)
    }

    /// A live policy that fails closed unless [`LivePolicy::confirm_current`]
    /// is called at least every `max_staleness`.
    pub fn with_max_staleness(snapshot: Snapshot, max_staleness: Option<Duration>) -> Arc<Self> {
        let (revision_tx, _) = watch::channel(snapshot.revision());
        Arc::new(LivePolicy {
            current: ArcSwap::from_pointee(snapshot),
            revision_tx,
            max_staleness,
            started: Instant::now(),
            confirmed_at_ms: AtomicU64::new(0),
        })
    }

    /// Records that the live snapshot was just confirmed to be the store's
    /// current revision.
    pub fn confirm_current(&self) {
        self.confirm_current_as_of(Instant::now());
    }

    /// Records that the live snapshot was the store's current revision at
    /// `at` (when the revision was asked for, not when the answer came:
    /// staleness is never understated by a slow query).
    pub fn confirm_current_as_of(&self, at: Instant) {
        let ms = at.saturating_duration_since(self.started).as_millis() as u64;
        self.confirmed_at_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// True if this replica can no longer vouch for its snapshot: every
    /// decision must then fail closed (`policy_stale`).
    pub fn is_stale(&self) -> bool {
        let Some(max) = self.max_staleness else {
            return false;
        };
        let confirmed = Duration::from_millis(self.confirmed_at_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(confirmed) > max
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    pub fn revision(&self) -> u64 {
        self.current.load().revision()
    }

    /// Installs `snapshot` if it is newer than the live one; returns whether
    /// it did. Never goes backwards, so racing loaders are harmless.
    pub fn install(&self, snapshot: Snapshot) -> bool {
        let revision = snapshot.revision();
        let new = Arc::new(snapshot);
        let prev = self.current.rcu(|cur| {
            if cur.revision() < revision {
                Arc::clone(&new)
            } else {
                Arc::clone(cur)
            }
        });
        let installed = prev.revision() < revision;
        if installed {
            self.revision_tx.send_replace(revision);
        }
        installed
    }

    /// A receiver that changes whenever a newer snapshot is installed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.revision_tx.subscribe()
    }

    /// Waits until the live snapshot is at `revision` or later.
    pub async fn wait_for(&self, revision: u64) {
        let mut rx = self.subscribe();
        // The sender lives as long as self, so this cannot fail while we wait.
        let _ = rx.wait_for(|r| *r >= revision).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_policy::PolicyRows;

    fn at(revision: u64) -> Snapshot {
        Snapshot::build(PolicyRows {
            revision,
            ..Default::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn installs_only_newer_snapshots_and_wakes_waiters() {
        let live = LivePolicy::new(at(1));
        let waiter = {
            let live = Arc::clone(&live);
            tokio::spawn(async move { live.wait_for(3).await })
        };
        assert!(live.install(at(3)));
        assert!(
            !live.install(at(2)),
            "older snapshot must not replace newer"
        );
        assert_eq!(live.revision(), 3);
        waiter.await.unwrap();
    }

    #[test]
    fn fails_closed_without_confirmation() {
        let live = LivePolicy::with_max_staleness(at(1), Some(Duration::from_millis(20)));
        live.confirm_current();
        assert!(!live.is_stale());
        std::thread::sleep(Duration::from_millis(40));
        assert!(live.is_stale());
        live.confirm_current();
        assert!(!live.is_stale());
        assert!(!LivePolicy::new(at(1)).is_stale());
    }

    #[test]
    fn a_confirmation_counts_from_when_the_revision_was_asked_for() {
        let live = LivePolicy::with_max_staleness(at(1), Some(Duration::from_millis(50)));
        let asked = Instant::now();
        std::thread::sleep(Duration::from_millis(60)); // a slow answer
        live.confirm_current_as_of(asked);
        assert!(live.is_stale(), "the answer was already older than allowed");
        live.confirm_current();
        assert!(!live.is_stale());
    }
}
