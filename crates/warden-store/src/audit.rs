//! The audit log: admin changes (written inside each policy write) and call
//! decisions (written in batches by [`AuditWriter`], durably before a call
//! is forwarded when the caller asks), and the query API.
//!
//! - [`writer`]: the [`AuditWriter`] handle the gateway records through;
//! - [`batch`]: the writer task (batches, group commit, a spooled record
//!   waiting for its outcome to be written as one row) and its SQL.

mod batch;
mod writer;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use warden_policy::{AgentId, EndUserId, KeyId, OrgId};

pub(crate) use batch::write_batch;
pub use batch::{BATCH_LINGER, OUTCOME_WAIT, SPOOLED_LINGER};
pub use writer::{AuditWriter, AuditWriterOptions, AUDIT_DROPPED_METRIC};

use crate::db::RowExt;
use crate::error::{Result, StoreError};
use crate::spool::AuditSpool;
use crate::store::Store;

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
        AuditWriter::start(self.pool().clone(), self.backend(), options, None)
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
        AuditWriter::start(
            self.pool().clone(),
            self.backend(),
            options,
            Some(Arc::new(spool)),
        )
    }
}
