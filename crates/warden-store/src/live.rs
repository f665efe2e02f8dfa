//! The live policy snapshot of this process: one `Arc<Snapshot>` swapped
//! atomically, and a watch channel that says when it moved.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::watch;
use warden_policy::Snapshot;

/// The snapshot every request of this process decides with. Readers take an
/// `Arc` (lock-free); a writer installs a newer snapshot and wakes waiters.
#[derive(Debug)]
pub struct LivePolicy {
    current: ArcSwap<Snapshot>,
    revision_tx: watch::Sender<u64>,
}

impl LivePolicy {
    pub fn new(snapshot: Snapshot) -> Arc<Self> {
        let (revision_tx, _) = watch::channel(snapshot.revision());
        Arc::new(LivePolicy {
            current: ArcSwap::from_pointee(snapshot),
            revision_tx,
        })
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
        assert!(!live.install(at(2)), "older snapshot must not replace newer");
        assert_eq!(live.revision(), 3);
        waiter.await.unwrap();
    }
}
