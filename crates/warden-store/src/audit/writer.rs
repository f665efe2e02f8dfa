//! The [`AuditWriter`] handle: how the gateway records decisions (queued,
//! or durable before the call is forwarded) and outcomes. The writer task
//! itself is in [`super::batch`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::db::Backend;
use crate::error::{Result, StoreError};
use crate::spool::AuditSpool;
use crate::types::{DecisionOutcome, DecisionRecord};

/// Metric counting decision records dropped because the queue was full.
pub const AUDIT_DROPPED_METRIC: &str = "warden_audit_dropped_total";

#[derive(Debug, Clone, Copy)]
pub struct AuditWriterOptions {
    /// Records waiting to be written; beyond this they are dropped (counted),
    /// or, for [`AuditWriter::record_durable`], refused.
    pub queue_capacity: usize,
    /// Most rows written in one transaction.
    pub max_batch: usize,
    /// At most one "dropping records" warning per this interval.
    pub warn_every: Duration,
}

impl Default for AuditWriterOptions {
    fn default() -> Self {
        AuditWriterOptions {
            queue_capacity: 65_536,
            max_batch: 500,
            warn_every: Duration::from_secs(10),
        }
    }
}

/// Where the writer tells one durable record's caller how its batch ended.
/// The error is a message: one database error reaches every waiter of the
/// batch.
pub(super) type Committed = oneshot::Sender<std::result::Result<(), Arc<str>>>;

pub(super) enum Message {
    Record(Box<DecisionRecord>),
    Durable(Box<DecisionRecord>, Committed),
    /// Durable already, in the spool: written like a plain record, and its
    /// sequence number tells the spool what it may delete.
    Spooled(Box<DecisionRecord>, u64),
    Outcome(Box<DecisionOutcome>),
    Flush(oneshot::Sender<()>),
}

impl Message {
    /// Somebody is waiting for this message: the writer does not linger.
    pub(super) fn urgent(&self) -> bool {
        matches!(self, Message::Durable(..) | Message::Flush(_))
    }

    /// Nothing is lost if this message waits: its record is in the spool
    /// already, or it is an outcome (best effort).
    pub(super) fn durable_already(&self) -> bool {
        matches!(self, Message::Spooled(..) | Message::Outcome(_))
    }
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) written: AtomicU64,
    pub(super) dropped: AtomicU64,
    pub(super) commits: AtomicU64,
    pub(super) outcomes_lost: AtomicU64,
    pub(super) outcomes_in_row: AtomicU64,
}

/// Writes decision records in the background, in batches: the writer task
/// takes whatever is queued (up to `max_batch`) and writes it in one
/// transaction, so batches grow with load.
///
/// Two ways in:
/// - [`AuditWriter::record`] never waits: it queues, or counts a drop when
///   the queue is full. For decisions that forward nothing (denials, lists):
///   a crash can lose the last few milliseconds of them (up to [`SPOOLED_LINGER`]
///   when they arrive while the writer waits with spooled records only).
/// - [`AuditWriter::record_durable`] resolves only once the transaction
///   holding the record has committed (group commit: every durable record
///   queued while the previous batch was being written shares the next
///   transaction). For allowed calls, awaited before forwarding upstream:
///   a call that was forwarded has its decision in the database. What the
///   call's outcome adds later ([`AuditWriter::record_outcome`]) is best
///   effort.
///
/// A batch of plain records that is not full waits [`BATCH_LINGER`] for more
/// ([`SPOOLED_LINGER`] when it holds only spooled records and outcomes);
/// a batch with a durable record (or a flush) is written at once.
///
/// With a spool the durable record is durable once appended there, and the
/// writer holds it up to [`OUTCOME_WAIT`] for the call's outcome: a call
/// that ends within that wait is written as one row, with its latency
/// (one INSERT, no UPDATE). A record whose outcome comes later is written
/// without it and then updated, as without a spool.
///
/// [`BATCH_LINGER`]: super::BATCH_LINGER
/// [`SPOOLED_LINGER`]: super::SPOOLED_LINGER
/// [`OUTCOME_WAIT`]: super::OUTCOME_WAIT
#[derive(Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<Message>,
    /// Ends the writer's linger early: told after an urgent message, or
    /// when a full batch is queued. Other messages do not wake a lingering
    /// writer (see `batch::linger`).
    hurry: Arc<Notify>,
    max_batch: usize,
    spool: Option<Arc<AuditSpool>>,
    counters: Arc<Counters>,
    last_warning: Arc<std::sync::Mutex<Option<Instant>>>,
    warn_every: Duration,
}

impl AuditWriter {
    pub(super) fn start(
        pool: AnyPool,
        backend: Backend,
        options: AuditWriterOptions,
        spool: Option<Arc<AuditSpool>>,
    ) -> AuditWriter {
        let (tx, rx) = mpsc::channel(options.queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        let hurry = Arc::new(Notify::new());
        let max_batch = options.max_batch.max(1);
        tokio::spawn(super::batch::write_loop(
            pool,
            backend,
            super::batch::Inbox {
                rx,
                hurry: Arc::clone(&hurry),
            },
            max_batch,
            Arc::clone(&counters),
            spool.clone(),
        ));
        AuditWriter {
            tx,
            hurry,
            max_batch,
            spool,
            counters,
            last_warning: Arc::new(std::sync::Mutex::new(None)),
            warn_every: options.warn_every,
        }
    }

    /// Queues a decision record; never waits. A full queue drops it
    /// (counted in [`AuditWriter::dropped_total`] and [`AUDIT_DROPPED_METRIC`]).
    pub fn record(&self, record: DecisionRecord) {
        if self.tx.try_send(Message::Record(Box::new(record))).is_err() {
            self.count_drop();
        } else {
            self.hurry_if_full();
        }
    }

    /// Queues a decision record and resolves once the transaction holding
    /// it has committed: then it is in the database, durable as the
    /// backend's commit is (ARCHITECTURE.md, warden-store). The record is
    /// queued when this is called, not when the future is first polled.
    ///
    /// Fails with [`StoreError::AuditUnavailable`] when the queue is full
    /// (nothing waits for room), when the database still refuses the batch
    /// after retries, or when the writer has stopped; the record is then
    /// not in the log and the caller must not act as if it were (the
    /// gateway refuses the call rather than forward it unaudited).
    ///
    /// The row is written with the record's `latency_us` as given (0 when
    /// not yet known); [`AuditWriter::record_outcome`] sets it afterwards.
    ///
    /// With a spool ([`Store::audit_writer_spooled`]) the record is durable
    /// once appended there, and the returned future is ready at once.
    pub fn record_durable(
        &self,
        record: DecisionRecord,
    ) -> impl std::future::Future<Output = Result<()>> + Send + 'static {
        enum Durable {
            Done(Result<()>),
            Waiting(oneshot::Receiver<std::result::Result<(), Arc<str>>>),
        }
        let durable = match &self.spool {
            Some(spool) => Durable::Done(self.spool_durable(spool, record)),
            None => {
                let (done, committed) = oneshot::channel();
                match self.tx.try_send(Message::Durable(Box::new(record), done)) {
                    Ok(()) => {
                        self.hurry.notify_one();
                        Durable::Waiting(committed)
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        self.count_drop();
                        Durable::Done(Err(StoreError::AuditUnavailable("audit queue full".into())))
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => Durable::Done(Err(
                        StoreError::AuditUnavailable("audit writer stopped".into()),
                    )),
                }
            }
        };
        async move {
            match durable {
                Durable::Done(result) => result,
                Durable::Waiting(committed) => match committed.await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(StoreError::AuditUnavailable(e.to_string())),
                    Err(_) => Err(StoreError::AuditUnavailable("audit writer stopped".into())),
                },
            }
        }
    }

    /// Appends `record` to the spool and queues it for the database, both
    /// or neither: room in the queue is reserved first, so a full queue
    /// refuses the record before it is spooled.
    fn spool_durable(&self, spool: &AuditSpool, record: DecisionRecord) -> Result<()> {
        let permit = match self.tx.try_reserve() {
            Ok(permit) => permit,
            Err(mpsc::error::TrySendError::Full(())) => {
                self.count_drop();
                return Err(StoreError::AuditUnavailable("audit queue full".into()));
            }
            Err(mpsc::error::TrySendError::Closed(())) => {
                return Err(StoreError::AuditUnavailable("audit writer stopped".into()));
            }
        };
        let line = spool.line(&record)?;
        spool.append(&line, |seq| {
            permit.send(Message::Spooled(Box::new(record), seq));
        })?;
        self.hurry_if_full();
        Ok(())
    }

    /// A full batch is waiting: the writer need not linger for more.
    fn hurry_if_full(&self) {
        if self.tx.max_capacity() - self.tx.capacity() >= self.max_batch {
            self.hurry.notify_one();
        }
    }

    /// Applies a call's outcome (its latency) to the decision row written
    /// by [`AuditWriter::record_durable`]; never waits. A spooled record
    /// still held by the writer takes it before it is written (one row);
    /// otherwise it is an update. Best effort: the
    /// update rides along in the writer's next transaction; it is lost
    /// when the queue is full, when that transaction fails (its retries
    /// leave outcomes out) or with the process, and the row then keeps the
    /// latency it was written with (0: unknown). Counted in
    /// [`AuditWriter::outcomes_lost_total`].
    pub fn record_outcome(&self, outcome: DecisionOutcome) {
        if self
            .tx
            .try_send(Message::Outcome(Box::new(outcome)))
            .is_err()
        {
            self.counters.outcomes_lost.fetch_add(1, Ordering::Relaxed);
        } else {
            self.hurry_if_full();
        }
    }

    fn count_drop(&self) {
        let total = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::counter!(AUDIT_DROPPED_METRIC).increment(1);
        if let Ok(mut last) = self.last_warning.lock() {
            if last.is_none_or(|t| t.elapsed() >= self.warn_every) {
                *last = Some(Instant::now());
                tracing::warn!(
                    dropped_total = total,
                    "audit queue full: decision records dropped or refused"
                );
            }
        }
    }

    /// Records not written since start: dropped or refused because the
    /// queue was full, or in a batch the database still refused after
    /// retries. (A durable record's caller was told.)
    pub fn dropped_total(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Records written to the database, since start.
    pub fn written_total(&self) -> u64 {
        self.counters.written.load(Ordering::Relaxed)
    }

    /// Transactions the writer committed, since start: with
    /// [`AuditWriter::written_total`], the mean batch size.
    pub fn commits_total(&self) -> u64 {
        self.counters.commits.load(Ordering::Relaxed)
    }

    /// Outcomes written in the same row as their record (a spooled record
    /// whose call ended within [`OUTCOME_WAIT`]), since start; the others
    /// were updates.
    ///
    /// [`OUTCOME_WAIT`]: super::OUTCOME_WAIT
    pub fn outcomes_in_row_total(&self) -> u64 {
        self.counters.outcomes_in_row.load(Ordering::Relaxed)
    }

    /// Outcomes not applied, since start (see [`AuditWriter::record_outcome`]).
    pub fn outcomes_lost_total(&self) -> u64 {
        self.counters.outcomes_lost.load(Ordering::Relaxed)
    }

    /// Waits until everything queued before this call is written.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            self.hurry.notify_one();
            let _ = wait.await;
        }
    }
}
