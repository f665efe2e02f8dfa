//! The audit log: admin changes (written inside each policy write) and call
//! decisions (written in batches by [`AuditWriter`], durably before a call
//! is forwarded when the caller asks), and the query API.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};
use warden_policy::{AgentId, EndUserId, KeyId, OrgId};

use crate::db::RowExt;
use crate::error::{Result, StoreError};
use crate::spool::AuditSpool;
use crate::store::Store;
use crate::types::{DecisionOutcome, DecisionRecord};

/// Metric counting decision records dropped because the queue was full.
pub const AUDIT_DROPPED_METRIC: &str = "warden_audit_dropped_total";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    AdminChange,
    Decision,
}

impl AuditKind {
    fn as_str(self) -> &'static str {
        match self {
            AuditKind::AdminChange => "admin_change",
            AuditKind::Decision => "decision",
        }
    }
}

/// Filters for [`Store::query_audit`]; all optional, combined with AND.
/// Results are newest first; pass the previous page's `next_cursor` as
/// `before_id` for the next page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct AuditQuery {
    pub kind: Option<AuditKind>,
    pub entity_kind: Option<String>,
    pub entity_id: Option<String>,
    /// An actor exactly as recorded (`admin:ops`, `admin:ops@org:3`,
    /// `system:bootstrap`), or an admin token's name (`ops`): everything
    /// that token did, platform or org token alike.
    pub actor: Option<String>,
    pub org: Option<OrgId>,
    /// Decisions of this key (the principal's key).
    pub key: Option<KeyId>,
    /// Decisions denied with this reason code.
    pub reason: Option<String>,
    /// Inclusive lower bound, Unix ms.
    pub since_ms: Option<i64>,
    /// Exclusive upper bound, Unix ms.
    pub until_ms: Option<i64>,
    /// Cursor: only entries with a smaller id.
    pub before_id: Option<i64>,
    /// Page size (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// The decision part of a `decision` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionFields {
    pub decision_id: String,
    pub key: Option<KeyId>,
    pub end_user: Option<EndUserId>,
    pub agent: Option<AgentId>,
    pub server_slug: Option<String>,
    pub tool: Option<String>,
    pub allowed: bool,
    pub reason: Option<String>,
    pub latency_us: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at_ms: i64,
    pub kind: AuditKind,
    pub actor: Option<String>,
    pub action: String,
    pub entity_kind: Option<String>,
    pub entity_id: Option<String>,
    pub org: Option<OrgId>,
    /// Secrets are redacted (entity views carry secret header names only).
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub revision: u64,
    pub decision: Option<DecisionFields>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// `before_id` for the next page; `None` on the last page.
    pub next_cursor: Option<i64>,
}

enum Bind {
    Int(i64),
    Text(String),
}

fn entry_from(r: &AnyRow) -> Result<AuditEntry> {
    let kind = match r.text("kind")?.as_str() {
        "admin_change" => AuditKind::AdminChange,
        "decision" => AuditKind::Decision,
        other => return Err(StoreError::Corrupt(format!("audit kind {other:?}"))),
    };
    let json = |col: &str| -> Result<Option<serde_json::Value>> {
        match r.opt_text(col)? {
            Some(raw) => serde_json::from_str(&raw)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("audit {col}: {e}"))),
            None => Ok(None),
        }
    };
    let decision = match kind {
        AuditKind::Decision => Some(DecisionFields {
            decision_id: r.opt_text("decision_id")?.unwrap_or_default(),
            key: r.opt_int("key_id")?.map(KeyId),
            end_user: r.opt_int("end_user_id")?.map(EndUserId),
            agent: r.opt_int("agent_id")?.map(AgentId),
            server_slug: r.opt_text("server_slug")?,
            tool: r.opt_text("tool")?,
            allowed: r.opt_int("allowed")?.unwrap_or(0) != 0,
            reason: r.opt_text("reason")?,
            latency_us: r.opt_int("latency_us")?.unwrap_or(0) as u64,
        }),
        AuditKind::AdminChange => None,
    };
    Ok(AuditEntry {
        id: r.int("id")?,
        at_ms: r.int("at_ms")?,
        kind,
        actor: r.opt_text("actor")?,
        action: r.text("action")?,
        entity_kind: r.opt_text("entity_kind")?,
        entity_id: r.opt_text("entity_id")?,
        org: r.opt_int("org_id")?.map(OrgId),
        before: json("before_json")?,
        after: json("after_json")?,
        revision: r.int("revision")? as u64,
        decision,
    })
}

impl Store {
    /// Audit entries matching `query`, newest first, one page.
    pub async fn query_audit(&self, query: &AuditQuery) -> Result<AuditPage> {
        let limit = i64::from(query.limit.unwrap_or(100).clamp(1, 1000));
        let mut conditions: Vec<String> = Vec::new();
        let mut binds: Vec<Bind> = Vec::new();
        let mut add = |column: &str, op: &str, value: Bind| {
            binds.push(value);
            conditions.push(format!("{column} {op} ${}", binds.len()));
        };
        if let Some(kind) = query.kind {
            add("kind", "=", Bind::Text(kind.as_str().into()));
        }
        if let Some(v) = &query.entity_kind {
            add("entity_kind", "=", Bind::Text(v.clone()));
        }
        if let Some(v) = &query.entity_id {
            add("entity_id", "=", Bind::Text(v.clone()));
        }
        if let Some(v) = query.org {
            add("org_id", "=", Bind::Int(v.0));
        }
        if let Some(v) = query.key {
            add("key_id", "=", Bind::Int(v.0));
        }
        if let Some(v) = &query.reason {
            add("reason", "=", Bind::Text(v.clone()));
        }
        if let Some(v) = query.since_ms {
            add("at_ms", ">=", Bind::Int(v));
        }
        if let Some(v) = query.until_ms {
            add("at_ms", "<", Bind::Int(v));
        }
        if let Some(v) = query.before_id {
            add("id", "<", Bind::Int(v));
        }
        if let Some(v) = &query.actor {
            // The actor as recorded, or an admin token's name: what that
            // token did, whether it is a platform (`admin:<name>`) or an org
            // token (`admin:<name>@org:<id>`).
            let prefix = format!("admin:{v}@org:");
            let prefix_chars = prefix.chars().count();
            binds.push(Bind::Text(v.clone()));
            binds.push(Bind::Text(format!("admin:{v}")));
            binds.push(Bind::Text(prefix));
            let n = binds.len();
            conditions.push(format!(
                "(actor = ${} OR actor = ${} OR substr(actor, 1, {prefix_chars}) = ${n})",
                n - 2,
                n - 1
            ));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        // One more than asked tells whether there is a next page.
        let sql = format!(
            "SELECT * FROM audit_log {filter} ORDER BY id DESC LIMIT {}",
            limit + 1
        );
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = match b {
                Bind::Int(v) => q.bind(v),
                Bind::Text(v) => q.bind(v),
            };
        }
        let rows = q.fetch_all(self.pool()).await?;
        let mut entries = rows.iter().map(entry_from).collect::<Result<Vec<_>>>()?;
        let next_cursor = if entries.len() as i64 > limit {
            entries.truncate(limit as usize);
            entries.last().map(|e| e.id)
        } else {
            None
        };
        Ok(AuditPage {
            entries,
            next_cursor,
        })
    }

    /// Starts a decision writer for this store.
    pub fn audit_writer(&self, options: AuditWriterOptions) -> AuditWriter {
        AuditWriter::start(self.pool().clone(), options, None)
    }

    /// Starts a decision writer whose durable records are made durable in
    /// `spool` (one file append on the caller's task) and then moved into
    /// the database in batches. Replay the spool's directory first
    /// ([`Store::replay_audit_spool`]).
    pub fn audit_writer_spooled(
        &self,
        options: AuditWriterOptions,
        spool: AuditSpool,
    ) -> AuditWriter {
        AuditWriter::start(self.pool().clone(), options, Some(Arc::new(spool)))
    }
}

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
type Committed = oneshot::Sender<std::result::Result<(), Arc<str>>>;

enum Message {
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
    fn urgent(&self) -> bool {
        matches!(self, Message::Durable(..) | Message::Flush(_))
    }
}

#[derive(Default)]
struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
    commits: AtomicU64,
    outcomes_lost: AtomicU64,
}

/// Writes decision records in the background, in batches: the writer task
/// takes whatever is queued (up to `max_batch`) and writes it in one
/// transaction, so batches grow with load.
///
/// Two ways in:
/// - [`AuditWriter::record`] never waits: it queues, or counts a drop when
///   the queue is full. For decisions that forward nothing (denials, lists):
///   a crash can lose the last few milliseconds of them.
/// - [`AuditWriter::record_durable`] resolves only once the transaction
///   holding the record has committed (group commit: every durable record
///   queued while the previous batch was being written shares the next
///   transaction). For allowed calls, awaited before forwarding upstream:
///   a call that was forwarded has its decision in the database. What the
///   call's outcome adds later ([`AuditWriter::record_outcome`]) is best
///   effort.
///
/// A batch of plain records that is not full waits [`BATCH_LINGER`] for more;
/// a batch with a durable record (or a flush) is written at once.
#[derive(Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<Message>,
    spool: Option<Arc<AuditSpool>>,
    counters: Arc<Counters>,
    last_warning: Arc<std::sync::Mutex<Option<Instant>>>,
    warn_every: Duration,
}

impl AuditWriter {
    fn start(
        pool: AnyPool,
        options: AuditWriterOptions,
        spool: Option<Arc<AuditSpool>>,
    ) -> AuditWriter {
        let (tx, rx) = mpsc::channel(options.queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        tokio::spawn(write_loop(
            pool,
            rx,
            options.max_batch.max(1),
            Arc::clone(&counters),
            spool.clone(),
        ));
        AuditWriter {
            tx,
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
                    Ok(()) => Durable::Waiting(committed),
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
        })
    }

    /// Applies a call's outcome (its latency) to the decision row written
    /// by [`AuditWriter::record_durable`]; never waits. Best effort: the
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

    /// Outcomes not applied, since start (see [`AuditWriter::record_outcome`]).
    pub fn outcomes_lost_total(&self) -> u64 {
        self.counters.outcomes_lost.load(Ordering::Relaxed)
    }

    /// Waits until everything queued before this call is written.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_loop(
    pool: AnyPool,
    mut rx: mpsc::Receiver<Message>,
    max_batch: usize,
    counters: Arc<Counters>,
    spool: Option<Arc<AuditSpool>>,
) {
    let mut messages = Vec::with_capacity(max_batch);
    // The highest spool sequence number committed to the database.
    let mut spool_committed = 0u64;
    // Outcomes (latencies) wait for company: written one statement per call
    // they would hold up the next durable record behind an UPDATE.
    let mut outcomes: Vec<DecisionOutcome> = Vec::new();
    let mut outcomes_since = tokio::time::Instant::now();
    loop {
        messages.clear();
        let received = if outcomes.is_empty() {
            rx.recv_many(&mut messages, max_batch).await
        } else {
            let due = outcomes_since + OUTCOME_LINGER;
            match tokio::time::timeout_at(due, rx.recv_many(&mut messages, max_batch)).await {
                Ok(n) => n,
                Err(_) => {
                    write_outcomes(&pool, &mut outcomes, &counters).await;
                    continue;
                }
            }
        };
        if received == 0 {
            write_outcomes(&pool, &mut outcomes, &counters).await;
            if let Some(spool) = &spool {
                spool.close(spool_committed);
            }
            return; // every sender is gone
        }
        // Under steady load plain records trickle in one by one; waiting a
        // moment turns a transaction per record into one per batch. Nobody
        // waiting on a batch is kept waiting: a durable record (or a flush)
        // ends the wait, and records queued while a batch is being written
        // form the next one (group commit).
        if messages.len() < max_batch && !messages.iter().any(Message::urgent) {
            linger(&mut rx, &mut messages, max_batch).await;
        }
        let mut batch = Vec::with_capacity(messages.len());
        let mut waiters = Vec::new();
        let mut flushes = Vec::new();
        let mut spooled_upto = None;
        for m in messages.drain(..) {
            match m {
                Message::Record(r) => batch.push(*r),
                Message::Spooled(r, seq) => {
                    batch.push(*r);
                    spooled_upto = Some(seq);
                }
                Message::Durable(r, done) => {
                    batch.push(*r);
                    waiters.push(done);
                }
                Message::Outcome(o) => {
                    if outcomes.is_empty() {
                        outcomes_since = tokio::time::Instant::now();
                    }
                    outcomes.push(*o);
                }
                Message::Flush(done) => flushes.push(done),
            }
        }
        // Records first, and their waiters answered as soon as they are
        // committed; outcomes follow, off every waiter's path.
        if !batch.is_empty() {
            let result = write_with_retries(&pool, &batch, &[], &counters).await;
            if let (Some(spool), Some(seq)) = (&spool, spooled_upto) {
                // Records arrive in sequence order: everything up to `seq`
                // is committed, unless an earlier batch failed (then the
                // spool keeps every segment).
                match &result {
                    Ok(()) => {
                        spool_committed = seq;
                        spool.committed(seq);
                    }
                    Err(_) => spool.keep_everything(),
                }
            }
            for done in waiters {
                let _ = done.send(result.clone());
            }
        }
        if !flushes.is_empty()
            || outcomes.len() >= ROWS_PER_STATEMENT
            || outcomes_since.elapsed() >= OUTCOME_LINGER
        {
            write_outcomes(&pool, &mut outcomes, &counters).await;
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// How long outcomes wait to be written with others.
const OUTCOME_LINGER: Duration = Duration::from_millis(20);

/// Writes (and clears) pending outcomes, best effort.
async fn write_outcomes(pool: &AnyPool, outcomes: &mut Vec<DecisionOutcome>, counters: &Counters) {
    if outcomes.is_empty() {
        return;
    }
    if let Err(e) = write_batch(pool, &[], outcomes).await {
        counters
            .outcomes_lost
            .fetch_add(outcomes.len() as u64, Ordering::Relaxed);
        tracing::debug!(error = %e, outcomes = outcomes.len(), "audit outcomes lost");
    }
    outcomes.clear();
}

/// Adds to `messages` what arrives within [`BATCH_LINGER`], until the batch
/// is full or somebody waits for it.
async fn linger(rx: &mut mpsc::Receiver<Message>, messages: &mut Vec<Message>, max_batch: usize) {
    let deadline = tokio::time::Instant::now() + BATCH_LINGER;
    while messages.len() < max_batch {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(m)) => {
                let urgent = m.urgent();
                messages.push(m);
                if urgent {
                    break;
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
    while messages.len() < max_batch {
        match rx.try_recv() {
            Ok(m) => messages.push(m),
            Err(_) => break,
        }
    }
}

/// Writes one batch, retrying briefly (e.g. SQLite busy). A batch that still
/// fails is counted as dropped and its error returned (for its durable
/// waiters) rather than blocking the queue forever. Outcomes are best
/// effort: retries leave them out, so they cannot cost the batch its rows.
async fn write_with_retries(
    pool: &AnyPool,
    batch: &[DecisionRecord],
    outcomes: &[DecisionOutcome],
    counters: &Counters,
) -> std::result::Result<(), Arc<str>> {
    let mut attempt = 0;
    loop {
        let with_outcomes = if attempt == 0 { outcomes } else { &[] };
        match write_batch(pool, batch, with_outcomes).await {
            Ok(()) => {
                counters
                    .written
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                counters.commits.fetch_add(1, Ordering::Relaxed);
                if attempt > 0 && !outcomes.is_empty() {
                    counters
                        .outcomes_lost
                        .fetch_add(outcomes.len() as u64, Ordering::Relaxed);
                }
                return Ok(());
            }
            Err(e) if attempt < 3 => {
                attempt += 1;
                tracing::debug!(error = %e, attempt, "audit batch write failed; retrying");
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            Err(e) => {
                counters
                    .dropped
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                counters
                    .outcomes_lost
                    .fetch_add(outcomes.len() as u64, Ordering::Relaxed);
                metrics::counter!(AUDIT_DROPPED_METRIC).increment(batch.len() as u64);
                tracing::error!(error = %e, rows = batch.len(), "audit batch lost");
                return Err(Arc::from(e.to_string()));
            }
        }
    }
}

/// How long the writer waits for more records before writing a batch
/// that is not full and that nobody waits for.
pub const BATCH_LINGER: Duration = Duration::from_millis(5);

const DECISION_COLUMNS: usize = 15;
/// Rows per INSERT statement (and outcomes per UPDATE). Small on purpose:
/// SQLite resolves each `$N` parameter by scanning the statement's
/// parameter list, so binding costs grow with the square of the parameters
/// per statement (at 100 rows the SQLite writer used a third of the
/// gateway's CPU under load).
const ROWS_PER_STATEMENT: usize = 16;

pub(crate) async fn write_batch(
    pool: &AnyPool,
    batch: &[DecisionRecord],
    outcomes: &[DecisionOutcome],
) -> Result<()> {
    // One statement is atomic on its own: without BEGIN and COMMIT it costs
    // one round trip to the database instead of three (the durable path at
    // concurrency 1 is mostly these round trips).
    if batch.len() + outcomes.len() <= ROWS_PER_STATEMENT
        && (batch.is_empty() || outcomes.is_empty())
    {
        if !batch.is_empty() {
            insert_statement(batch).execute(pool).await?;
        } else if !outcomes.is_empty() {
            let sql = outcomes_sql(outcomes.len());
            bind_outcomes(sqlx::query(&sql), outcomes)
                .execute(pool)
                .await?;
        }
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    for chunk in batch.chunks(ROWS_PER_STATEMENT) {
        insert_statement(chunk).execute(&mut *tx).await?;
    }
    for chunk in outcomes.chunks(ROWS_PER_STATEMENT) {
        let sql = outcomes_sql(chunk.len());
        bind_outcomes(sqlx::query(&sql), chunk)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn bind_outcomes<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    chunk: &[DecisionOutcome],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for o in chunk {
        q = q
            .bind(o.decision_id.clone())
            .bind(i64::try_from(o.latency_us).unwrap_or(i64::MAX));
    }
    for o in chunk {
        q = q.bind(o.at_ms);
    }
    for o in chunk {
        q = q.bind(o.decision_id.clone());
    }
    q
}

/// The INSERT of `n` (1 to [`ROWS_PER_STATEMENT`]) records, built once.
fn insert_sql(n: usize) -> &'static str {
    static SQL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let all = SQL.get_or_init(|| {
        (1..=ROWS_PER_STATEMENT)
            .map(|rows| {
                let mut sql = String::from(
                    "INSERT INTO audit_log (at_ms, kind, actor, action, entity_kind, entity_id, org_id, revision, \
                     decision_id, key_id, end_user_id, agent_id, server_slug, tool, allowed, reason, latency_us) VALUES ",
                );
                for i in 0..rows {
                    let b = i * DECISION_COLUMNS;
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!("(${}, 'decision', ${}, ${}, 'server'", b + 1, b + 2, b + 3));
                    for k in 4..=DECISION_COLUMNS {
                        sql.push_str(&format!(", ${}", b + k));
                    }
                    sql.push(')');
                }
                sql
            })
            .collect()
    });
    &all[n.clamp(1, ROWS_PER_STATEMENT) - 1]
}

/// One multi-row INSERT of at most [`ROWS_PER_STATEMENT`] records.
fn insert_statement(
    chunk: &[DecisionRecord],
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments<'static>> {
    let mut q = sqlx::query(insert_sql(chunk.len()));
    {
        for r in chunk {
            q = q
                .bind(r.at_ms)
                .bind(r.key.map(|k| format!("key:{k}")))
                .bind(r.method.clone())
                .bind(r.server_slug.clone())
                .bind(r.org.map(|o| o.0))
                .bind(r.revision as i64)
                .bind(r.decision_id.clone())
                .bind(r.key.map(|k| k.0))
                .bind(r.end_user.map(|u| u.0))
                .bind(r.agent.map(|a| a.0))
                .bind(r.server_slug.clone())
                .bind(r.tool.clone())
                .bind(i64::from(r.allowed))
                .bind(r.reason.clone())
                .bind(i64::try_from(r.latency_us).unwrap_or(i64::MAX));
        }
    }
    q
}

/// One UPDATE for `n` outcomes. The row is found by `at_ms` (indexed) and
/// then by `decision_id` (unique in practice: UUIDv7), so no index on
/// `decision_id` is needed. Binds: (decision_id, latency_us) × n, then
/// at_ms × n, then decision_id × n.
fn outcomes_sql(n: usize) -> String {
    let mut sql = String::from("UPDATE audit_log SET latency_us = CASE decision_id");
    for i in 0..n {
        sql.push_str(&format!(" WHEN ${} THEN ${}", 2 * i + 1, 2 * i + 2));
    }
    sql.push_str(" END WHERE at_ms IN (");
    for i in 0..n {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("${}", 2 * n + i + 1));
    }
    sql.push_str(") AND decision_id IN (");
    for i in 0..n {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("${}", 3 * n + i + 1));
    }
    sql.push(')');
    sql
}
