//! Connection workers: the threads that run client connections.
//!
//! Each worker is one thread with a single-threaded tokio runtime. The
//! accept loop (on the main runtime) hands each new connection to the
//! worker with the fewest open connections, and the connection stays
//! there with every task its requests spawn (the upstream HTTP connection
//! a call opens, its reply's stream), so a forwarded call's tasks wake
//! each other on one thread.
//!
//! Why not one work-stealing runtime: there, a task woken while its worker
//! is busy (the upstream connection, the reply) often wakes the idle worker
//! to steal it. On the 2-core bench machine that made ~6 context switches
//! per forwarded call at concurrency 1 and cost Warden 40 % of its CPU per
//! call (BENCHMARKS.md, "connection workers"). One worker per core keeps
//! every core in use without the hand-offs.
//!
//! The main runtime keeps the accept loop, the audit writer and the
//! background tasks (catalog refresh, revocation, replicas).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The connection worker threads. Dropping this stops them (their tasks
/// are cancelled); keep it until nothing uses their connections any more.
pub struct ConnectionWorkers {
    workers: Vec<Worker>,
}

struct Worker {
    handle: Handle,
    /// Connections handed to this worker and not yet closed.
    open: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
}

impl ConnectionWorkers {
    /// Starts `count` worker threads; 0: one per CPU the process may use.
    pub fn start(count: usize) -> std::io::Result<Self> {
        let count = match count {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let mut workers = Vec::with_capacity(count);
        for i in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("warden-conn-{i}"))
                .spawn(move || {
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                })?;
            workers.push(Worker {
                handle,
                open: Arc::new(AtomicUsize::new(0)),
                stop: Some(stop),
            });
        }
        Ok(ConnectionWorkers { workers })
    }

    /// The number of worker threads.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Spawns one connection's task into `tasks` on the least loaded
    /// worker. `connection` runs on that worker's thread; the worker counts
    /// it open until it ends.
    pub fn spawn_connection<F>(&self, tasks: &mut tokio::task::JoinSet<()>, connection: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let worker = self.least_loaded();
        worker.open.fetch_add(1, Ordering::AcqRel);
        let open = OpenConnection(Arc::clone(&worker.open));
        tasks.spawn_on(
            async move {
                let _open = open;
                connection.await;
            },
            &worker.handle,
        );
    }

    fn least_loaded(&self) -> &Worker {
        // `start` makes at least one worker.
        let mut best = &self.workers[0];
        for w in &self.workers[1..] {
            if w.open.load(Ordering::Acquire) < best.open.load(Ordering::Acquire) {
                best = w;
            }
        }
        best
    }
}

impl Drop for ConnectionWorkers {
    fn drop(&mut self) {
        // Not joined: a worker's runtime cancels its tasks as it stops, and
        // the process is ending when this runs.
        for w in &mut self.workers {
            if let Some(stop) = w.stop.take() {
                let _ = stop.send(());
            }
        }
    }
}

/// Counts one connection open on its worker until dropped.
struct OpenConnection(Arc<AtomicUsize>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_go_to_the_least_loaded_worker_and_run_on_its_thread() {
        let workers = ConnectionWorkers::start(2).unwrap();
        let main = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        main.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            let (release, held) = tokio::sync::watch::channel(false);
            let (names_tx, mut names) = tokio::sync::mpsc::unbounded_channel();
            for _ in 0..4 {
                let mut held = held.clone();
                let names_tx = names_tx.clone();
                workers.spawn_connection(&mut tasks, async move {
                    let name = std::thread::current().name().map(str::to_owned);
                    let _ = names_tx.send(name);
                    let _ = held.wait_for(|r| *r).await;
                });
            }
            let mut seen = Vec::new();
            for _ in 0..4 {
                seen.push(names.recv().await.unwrap().unwrap());
            }
            seen.sort();
            assert_eq!(
                seen,
                [
                    "warden-conn-0",
                    "warden-conn-0",
                    "warden-conn-1",
                    "warden-conn-1"
                ]
            );
            assert_eq!(workers.workers[0].open.load(Ordering::Acquire), 2);
            release.send(true).unwrap();
            while tasks.join_next().await.is_some() {}
            assert!(workers
                .workers
                .iter()
                .all(|w| w.open.load(Ordering::Acquire) == 0));
        });
    }
}
