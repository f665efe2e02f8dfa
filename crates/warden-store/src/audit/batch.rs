//! The decision writer's task: batches, group commit for durable records,
//! spooled records held for their outcome, and the SQL that writes them.
//!
//! The SQL is built once per backend and statement size, with positional
//! `?` parameters on SQLite (binding `$N` makes SQLite look each name up in
//! the statement's parameter list: a cost that grows with the square of the
//! parameters per statement) and `$N` on PostgreSQL (which has no `?`).
//! sqlx prepares each distinct statement once per connection and caches it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::AnyPool;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use super::writer::{Committed, Counters, Message, AUDIT_DROPPED_METRIC};
use crate::db::Backend;
use crate::error::Result;
use crate::spool::AuditSpool;
use crate::types::{DecisionOutcome, DecisionRecord};

/// How long the writer waits for more records before writing a batch
/// that is not full and that nobody waits for.
pub const BATCH_LINGER: Duration = Duration::from_millis(5);

/// How long it waits instead when everything it has is durable already
/// (spooled records, outcomes): fewer, larger transactions cost less per
/// row (BENCHMARKS.md: 7 % of the gateway's CPU per call at concurrency 1
/// and at 32, against [`BATCH_LINGER`]), and only the time until a decision
/// shows in the audit query grows.
pub const SPOOLED_LINGER: Duration = Duration::from_millis(50);

/// How long a spooled record (durable already, in the spool) is held by the
/// writer for its call's outcome, so that both are written as one row.
pub const OUTCOME_WAIT: Duration = Duration::from_millis(20);

/// How long outcomes of rows already written wait to be written with others.
const OUTCOME_LINGER: Duration = Duration::from_millis(20);

const DECISION_COLUMNS: usize = 15;
/// Rows per INSERT statement (and outcomes per UPDATE) up to which every
/// size has its own prepared statement (per connection).
const ROWS_PER_STATEMENT: usize = 16;
/// Larger statements for full batches: each statement is a round trip to
/// the database's worker thread, so a 500-row batch takes 9 instead of 32.
/// Two sizes only, so that a connection's statement cache keeps them all.
const LARGE_STATEMENTS: [usize; 2] = [32, 64];

/// The rows the next statement takes out of `remaining`: 64 or 32 while
/// that many are left, then the rest (at most [`ROWS_PER_STATEMENT`]).
fn statement_rows(remaining: usize) -> usize {
    LARGE_STATEMENTS
        .iter()
        .rev()
        .copied()
        .find(|&n| remaining >= n)
        .unwrap_or_else(|| remaining.min(ROWS_PER_STATEMENT))
}

/// `items` cut into statements of [`statement_rows`] each.
fn statement_chunks<T>(mut items: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if items.is_empty() {
            return None;
        }
        let (chunk, rest) = items.split_at(statement_rows(items.len()));
        items = rest;
        Some(chunk)
    })
}

/// Spooled records waiting for their outcome, oldest (lowest spool
/// sequence number) first.
#[derive(Default)]
struct Held {
    by_seq: BTreeMap<u64, (DecisionRecord, Instant)>,
    seq_of: HashMap<String, u64>,
}

impl Held {
    fn hold(&mut self, record: DecisionRecord, seq: u64, now: Instant) {
        self.seq_of.insert(record.decision_id.clone(), seq);
        self.by_seq.insert(seq, (record, now));
    }

    /// The held record `outcome` completes, with its latency set.
    fn complete(&mut self, outcome: &DecisionOutcome) -> Option<DecisionRecord> {
        let seq = self.seq_of.remove(&outcome.decision_id)?;
        let (mut record, _) = self.by_seq.remove(&seq)?;
        record.latency_us = outcome.latency_us;
        Some(record)
    }

    /// Moves into `batch` the records held since `OUTCOME_WAIT` before
    /// `now`, and the oldest beyond `max_held`.
    fn release_due(&mut self, now: Instant, max_held: usize, batch: &mut Vec<DecisionRecord>) {
        loop {
            let over = self.by_seq.len() > max_held;
            let Some(entry) = self.by_seq.first_entry() else {
                break;
            };
            if entry.get().1 + OUTCOME_WAIT > now && !over {
                break;
            }
            let (record, _) = entry.remove();
            self.seq_of.remove(&record.decision_id);
            batch.push(record);
        }
    }

    fn release_all(&mut self, batch: &mut Vec<DecisionRecord>) {
        self.seq_of.clear();
        batch.extend(
            std::mem::take(&mut self.by_seq)
                .into_values()
                .map(|(r, _)| r),
        );
    }

    /// When the oldest held record is due.
    fn next_due(&self) -> Option<Instant> {
        self.by_seq
            .first_key_value()
            .map(|(_, (_, since))| *since + OUTCOME_WAIT)
    }

    /// The lowest spool sequence number still held.
    fn oldest_seq(&self) -> Option<u64> {
        self.by_seq.first_key_value().map(|(seq, _)| *seq)
    }
}

/// What the writer receives: the queue, and the signal that ends a linger
/// early.
pub(super) struct Inbox {
    pub(super) rx: mpsc::Receiver<Message>,
    pub(super) hurry: Arc<Notify>,
}

pub(super) async fn write_loop(
    pool: AnyPool,
    backend: Backend,
    inbox: Inbox,
    max_batch: usize,
    counters: Arc<Counters>,
    spool: Option<Arc<AuditSpool>>,
) {
    let Inbox { mut rx, hurry } = inbox;
    let mut messages = Vec::with_capacity(max_batch);
    let mut held = Held::default();
    // The highest spool sequence number received, and the highest one
    // below which everything is committed to the database.
    let mut spool_seen = 0u64;
    let mut spool_committed = 0u64;
    // Outcomes of rows already written (latencies) wait for company:
    // written one statement per call they would hold up the next durable
    // record behind an UPDATE.
    let mut outcomes: Vec<DecisionOutcome> = Vec::new();
    let mut outcomes_since = Instant::now();
    loop {
        messages.clear();
        let outcomes_due = (!outcomes.is_empty()).then(|| outcomes_since + OUTCOME_LINGER);
        let wake = match (outcomes_due, held.next_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let received = match wake {
            None => Some(rx.recv_many(&mut messages, max_batch).await),
            Some(at) => tokio::time::timeout_at(at, rx.recv_many(&mut messages, max_batch))
                .await
                .ok(),
        };
        let closing = received == Some(0); // every sender is gone
                                           // Under steady load plain records trickle in one by one; waiting a
                                           // moment turns a transaction per record into one per batch. Nobody
                                           // waiting on a batch is kept waiting: a durable record (or a flush)
                                           // ends the wait, and records queued while a batch is being written
                                           // form the next one (group commit).
        if received.is_some_and(|n| n > 0)
            && messages.len() < max_batch
            && !messages.iter().any(Message::urgent)
        {
            let wait = if messages.iter().all(Message::durable_already) {
                SPOOLED_LINGER
            } else {
                BATCH_LINGER
            };
            linger(&mut rx, &hurry, &mut messages, max_batch, wait).await;
        }
        let now = Instant::now();
        let mut batch: Vec<DecisionRecord> = Vec::with_capacity(messages.len());
        let mut waiters: Vec<Committed> = Vec::new();
        let mut flushes = Vec::new();
        let mut spooled = false;
        for m in messages.drain(..) {
            match m {
                Message::Record(r) => batch.push(*r),
                Message::Spooled(r, seq) => {
                    held.hold(*r, seq, now);
                    spool_seen = seq;
                    spooled = true;
                }
                Message::Durable(r, done) => {
                    batch.push(*r);
                    waiters.push(done);
                }
                Message::Outcome(o) => match held.complete(&o) {
                    Some(record) => {
                        counters.outcomes_in_row.fetch_add(1, Ordering::Relaxed);
                        batch.push(record);
                        spooled = true;
                    }
                    None => {
                        if outcomes.is_empty() {
                            outcomes_since = now;
                        }
                        outcomes.push(*o);
                    }
                },
                Message::Flush(done) => flushes.push(done),
            }
        }
        let before = batch.len();
        if closing || !flushes.is_empty() {
            held.release_all(&mut batch);
        } else {
            held.release_due(now, max_batch, &mut batch);
        }
        spooled |= batch.len() > before;
        // Records first, and their waiters answered as soon as they are
        // committed; outcomes follow, off every waiter's path.
        if !batch.is_empty() {
            let result = write_with_retries(&pool, backend, &batch, &counters).await;
            if let (Some(spool), true) = (&spool, spooled) {
                // Spooled records arrive in sequence order: everything
                // below the oldest one still held is committed, unless an
                // earlier batch failed (then the spool keeps every segment).
                match &result {
                    Ok(()) => {
                        let upto = held
                            .oldest_seq()
                            .map_or(spool_seen, |s| s.saturating_sub(1));
                        if upto > spool_committed {
                            spool_committed = upto;
                            spool.committed(upto);
                        }
                    }
                    Err(_) => spool.keep_everything(),
                }
            }
            for done in waiters {
                let _ = done.send(result.clone());
            }
        }
        if closing
            || !flushes.is_empty()
            || outcomes.len() >= ROWS_PER_STATEMENT
            || outcomes_since.elapsed() >= OUTCOME_LINGER
        {
            write_outcomes(&pool, backend, &mut outcomes, &counters).await;
        }
        for done in flushes {
            let _ = done.send(());
        }
        if closing {
            if let Some(spool) = &spool {
                spool.close(spool_committed);
            }
            return;
        }
    }
}

/// Writes (and clears) pending outcomes, best effort.
async fn write_outcomes(
    pool: &AnyPool,
    backend: Backend,
    outcomes: &mut Vec<DecisionOutcome>,
    counters: &Counters,
) {
    if outcomes.is_empty() {
        return;
    }
    if let Err(e) = write_batch(pool, backend, &[], outcomes).await {
        counters
            .outcomes_lost
            .fetch_add(outcomes.len() as u64, Ordering::Relaxed);
        tracing::debug!(error = %e, outcomes = outcomes.len(), "audit outcomes lost");
    }
    outcomes.clear();
}

/// Waits `wait` ([`BATCH_LINGER`] or [`SPOOLED_LINGER`]) for more
/// messages, then takes what is queued.
/// The queue is not polled meanwhile, so a message sent during the wait
/// wakes nobody (at a few thousand calls a second, waking the writer for
/// each message cost more than writing the rows); `hurry` (told after an
/// urgent message, or when a full batch is queued) ends the wait early.
async fn linger(
    rx: &mut mpsc::Receiver<Message>,
    hurry: &Notify,
    messages: &mut Vec<Message>,
    max_batch: usize,
    wait: Duration,
) {
    let _ = tokio::time::timeout(wait, hurry.notified()).await;
    while messages.len() < max_batch {
        match rx.try_recv() {
            Ok(m) => messages.push(m),
            Err(_) => break,
        }
    }
}

/// Writes one batch, retrying briefly (e.g. SQLite busy). A batch that still
/// fails is counted as dropped and its error returned (for its durable
/// waiters) rather than blocking the queue forever.
async fn write_with_retries(
    pool: &AnyPool,
    backend: Backend,
    batch: &[DecisionRecord],
    counters: &Counters,
) -> std::result::Result<(), Arc<str>> {
    let mut attempt = 0;
    loop {
        match write_batch(pool, backend, batch, &[]).await {
            Ok(()) => {
                counters
                    .written
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                counters.commits.fetch_add(1, Ordering::Relaxed);
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
                metrics::counter!(AUDIT_DROPPED_METRIC).increment(batch.len() as u64);
                tracing::error!(error = %e, rows = batch.len(), "audit batch lost");
                return Err(Arc::from(e.to_string()));
            }
        }
    }
}

/// Writes decision records and outcomes, atomically.
pub(crate) async fn write_batch(
    pool: &AnyPool,
    backend: Backend,
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
            insert_statement(backend, batch).execute(pool).await?;
        } else if !outcomes.is_empty() {
            outcomes_statement(backend, outcomes).execute(pool).await?;
        }
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    for chunk in statement_chunks(batch) {
        insert_statement(backend, chunk).execute(&mut *tx).await?;
    }
    for chunk in statement_chunks(outcomes) {
        outcomes_statement(backend, chunk).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Statements of 1 to [`ROWS_PER_STATEMENT`] rows and of each of
/// [`LARGE_STATEMENTS`] rows, built once per backend.
struct Statements {
    sqlite: OnceLock<Vec<String>>,
    postgres: OnceLock<Vec<String>>,
}

impl Statements {
    const fn new() -> Self {
        Statements {
            sqlite: OnceLock::new(),
            postgres: OnceLock::new(),
        }
    }

    /// The statement for `n` rows; `build(rows, param)` writes it, `param(k)`
    /// giving the k-th (1-based) parameter's placeholder.
    fn get(
        &'static self,
        backend: Backend,
        n: usize,
        build: fn(usize, &dyn Fn(usize) -> String) -> String,
    ) -> &'static str {
        let (cell, param): (_, fn(usize) -> String) = match backend {
            Backend::Sqlite => (&self.sqlite, |_| "?".to_owned()),
            Backend::Postgres => (&self.postgres, |k| format!("${k}")),
        };
        let all = cell.get_or_init(|| {
            (1..=ROWS_PER_STATEMENT)
                .chain(LARGE_STATEMENTS)
                .map(|rows| build(rows, &param))
                .collect()
        });
        let index = match LARGE_STATEMENTS.iter().position(|&large| large == n) {
            Some(large) => ROWS_PER_STATEMENT + large,
            None => n.clamp(1, ROWS_PER_STATEMENT) - 1,
        };
        &all[index]
    }
}

/// The INSERT of `rows` records. Parameters in the order they are bound.
fn insert_sql(rows: usize, param: &dyn Fn(usize) -> String) -> String {
    let mut sql = String::from(
        "INSERT INTO audit_log (at_ms, kind, actor, action, entity_kind, entity_id, org_id, revision, \
         decision_id, key_id, end_user_id, agent_id, server_slug, tool, allowed, reason, latency_us) VALUES ",
    );
    for i in 0..rows {
        let b = i * DECISION_COLUMNS;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "({}, 'decision', {}, {}, 'server'",
            param(b + 1),
            param(b + 2),
            param(b + 3)
        ));
        for k in 4..=DECISION_COLUMNS {
            sql.push_str(", ");
            sql.push_str(&param(b + k));
        }
        sql.push(')');
    }
    sql
}

/// One multi-row INSERT of [`statement_rows`] records.
fn insert_statement(backend: Backend, chunk: &[DecisionRecord]) -> AnyQuery<'_> {
    static INSERTS: Statements = Statements::new();
    let mut q = sqlx::query(INSERTS.get(backend, chunk.len(), insert_sql));
    for r in chunk {
        q = q
            .bind(r.at_ms)
            .bind(r.key.map(|k| format!("key:{k}")))
            .bind(r.method.as_str())
            .bind(r.server_slug.as_str())
            .bind(r.org.map(|o| o.0))
            .bind(r.revision as i64)
            .bind(r.decision_id.as_str())
            .bind(r.key.map(|k| k.0))
            .bind(r.end_user.map(|u| u.0))
            .bind(r.agent.map(|a| a.0))
            .bind(r.server_slug.as_str())
            .bind(r.tool.as_deref())
            .bind(i64::from(r.allowed))
            .bind(r.reason.as_deref())
            .bind(i64::try_from(r.latency_us).unwrap_or(i64::MAX));
    }
    q
}

/// One UPDATE for `n` outcomes. The row is found by `at_ms` (indexed) and
/// then by `decision_id` (unique in practice: UUIDv7), so no index on
/// `decision_id` is needed. Parameters in the order they are bound:
/// (decision_id, latency_us) × n, then at_ms × n, then decision_id × n.
fn outcomes_sql(n: usize, param: &dyn Fn(usize) -> String) -> String {
    let mut sql = String::from("UPDATE audit_log SET latency_us = CASE decision_id");
    for i in 0..n {
        sql.push_str(&format!(
            " WHEN {} THEN {}",
            param(2 * i + 1),
            param(2 * i + 2)
        ));
    }
    let list = |from: usize| (from..from + n).map(param).collect::<Vec<_>>().join(", ");
    sql.push_str(&format!(
        " END WHERE at_ms IN ({}) AND decision_id IN ({})",
        list(2 * n + 1),
        list(3 * n + 1)
    ));
    sql
}

fn outcomes_statement(backend: Backend, chunk: &[DecisionOutcome]) -> AnyQuery<'_> {
    static UPDATES: Statements = Statements::new();
    let mut q = sqlx::query(UPDATES.get(backend, chunk.len(), outcomes_sql));
    for o in chunk {
        q = q
            .bind(o.decision_id.as_str())
            .bind(i64::try_from(o.latency_us).unwrap_or(i64::MAX));
    }
    for o in chunk {
        q = q.bind(o.at_ms);
    }
    for o in chunk {
        q = q.bind(o.decision_id.as_str());
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_cut_into_the_prepared_sizes() {
        let sizes = |n: usize| {
            let items = vec![0u8; n];
            statement_chunks(&items)
                .map(<[u8]>::len)
                .collect::<Vec<_>>()
        };
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(5), [5]);
        assert_eq!(sizes(16), [16]);
        assert_eq!(sizes(20), [16, 4]);
        assert_eq!(sizes(40), [32, 8]);
        assert_eq!(sizes(500), [64, 64, 64, 64, 64, 64, 64, 32, 16, 4]);
        static T: Statements = Statements::new();
        for n in [1, 16, 32, 64] {
            let sql = T.get(Backend::Sqlite, n, insert_sql);
            assert_eq!(sql.matches('?').count(), n * DECISION_COLUMNS, "{n} rows");
        }
    }

    #[test]
    fn sqlite_statements_bind_by_position_postgres_by_number() {
        static T: Statements = Statements::new();
        let sqlite = T.get(Backend::Sqlite, 2, insert_sql);
        assert!(!sqlite.contains('$'), "{sqlite}");
        assert_eq!(sqlite.matches('?').count(), 2 * DECISION_COLUMNS);
        let pg = T.get(Backend::Postgres, 2, insert_sql);
        assert!(pg.contains("$30)") && !pg.contains('?'), "{pg}");
        let update = outcomes_sql(3, &|k| format!("${k}"));
        assert!(update.contains("WHEN $5 THEN $6 END WHERE at_ms IN ($7, $8, $9) AND decision_id IN ($10, $11, $12)"), "{update}");
    }
}
