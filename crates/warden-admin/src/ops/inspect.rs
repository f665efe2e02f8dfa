//! Effective access and explain: the engine's answers at the live revision.

use std::time::Duration;

use warden_policy::{KeyId, Principal, Snapshot};
use warden_store::{AuditKind, AuditQuery, ReplicaInfo, StoreError};

use super::convert::{format_time, now_ms, parse_time, Names};
use crate::auth::{Admin, Role};
use crate::dto::*;
use crate::error::AdminError;
use crate::state::AdminState;

/// The principal of `key` acting for `end_user` / as `agent`, formed by the
/// engine exactly as the gateway forms it (assertions the key may not make
/// are refused, never ignored).
fn principal(
    snapshot: &Snapshot,
    key: i64,
    end_user: Option<&str>,
    agent: Option<&str>,
) -> Result<Principal, AdminError> {
    snapshot
        .principal_for_key(KeyId(key), end_user, agent)
        .map_err(AdminError::Principal)
}

pub async fn key_access(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    id: i64,
    query: AccessParams,
) -> Result<AccessView, AdminError> {
    let org = s.org(admin, org).await?;
    s.key(org.id, id).await?;
    let snapshot = s.snapshot();
    let principal = principal(
        &snapshot,
        id,
        query.end_user.as_deref(),
        query.agent.as_deref(),
    )?;
    let access = snapshot.access(&principal);
    let now = now_ms();
    let mut servers: Vec<ServerAccessView> = access
        .usable_servers(now)
        .map(|(server, filter)| ServerAccessView {
            server: server.slug.clone(),
            filter: filter.clone(),
            tools: s.catalog().tool_names(server.server).map(|mut tools| {
                tools.retain(|t| filter.admits(t));
                tools.sort();
                tools
            }),
        })
        .collect();
    servers.sort_by(|a, b| a.server.cmp(&b.server));
    Ok(AccessView {
        revision: access.revision(),
        key: id,
        end_user: query.end_user,
        agent: principal
            .agent
            .and_then(|a| snapshot.agent(a))
            .map(|a| a.slug.clone()),
        principal_denial: access.principal_denial(now).map(|r| r.code().to_owned()),
        servers,
    })
}

pub async fn explain(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    query: ExplainParams,
) -> Result<ExplainView, AdminError> {
    let org = s.org(admin, org).await?;
    s.key(org.id, query.key).await?;
    let snapshot = s.snapshot();
    let principal = principal(
        &snapshot,
        query.key,
        query.end_user.as_deref(),
        query.agent.as_deref(),
    )?;
    let access = snapshot.access(&principal);
    let decision = snapshot.decide(&access, &query.server, &query.tool, s.catalog(), now_ms());
    let trace = serde_json::to_value(decision.trace)
        .map_err(|e| AdminError::Internal(format!("cannot serialize a trace: {e}")))?;
    let limits = super::limits::effective_limits_view(
        &snapshot,
        &principal,
        decision.server,
        &query.tool,
        s.limit_counters(),
    );
    Ok(ExplainView {
        revision: decision.revision,
        allowed: decision.allowed,
        reason: decision.reason.map(|r| r.code().to_owned()),
        trace,
        limits,
    })
}

/// Every replica with heartbeat and applied revision. Any admin may look:
/// org admins use `?wait=propagated` too, and replicas hold no org data.
pub async fn list_replicas(
    s: &AdminState,
    _admin: &Admin,
) -> Result<Listing<ReplicaView>, AdminError> {
    let replicas = s.store().list_replicas().await.map_err(|e| s.error(e))?;
    Ok(Listing::all(
        s.live().revision(),
        replicas.iter().map(|r| replica_view(s, r)).collect(),
    ))
}

fn replica_view(s: &AdminState, r: &ReplicaInfo) -> ReplicaView {
    ReplicaView {
        id: r.id.clone(),
        started_at: format_time(r.started_at_ms),
        heartbeat_at: format_time(r.heartbeat_at_ms),
        applied_revision: r.applied_revision,
        live: r.live,
        current: r.id == s.store().replica_id(),
    }
}

/// Waits until every live replica applied `revision`; on timeout answers
/// 504 naming the laggards (the write itself is committed and live here).
pub async fn wait_propagated(
    s: &AdminState,
    revision: u64,
    timeout_ms: u64,
) -> Result<(), AdminError> {
    match s
        .store()
        .wait_propagated(revision, Duration::from_millis(timeout_ms))
        .await
    {
        Ok(()) => Ok(()),
        Err(StoreError::NotPropagated { revision, laggards }) => {
            Err(AdminError::PropagationTimeout {
                revision,
                timeout_ms,
                laggards: laggards
                    .iter()
                    .map(|r| serde_json::to_value(replica_view(s, r)).unwrap_or_default())
                    .collect(),
            })
        }
        Err(e) => Err(s.error(e)),
    }
}

/// Most entries a page can hold.
const AUDIT_MAX_LIMIT: u32 = 500;

/// The audit log, newest first. An org admin sees only its org's entries.
pub async fn list_audit(
    s: &AdminState,
    admin: &Admin,
    q: AuditParams,
) -> Result<AuditPage, AdminError> {
    let org = match (&q.org, admin.role) {
        (Some(slug), _) => Some(s.org(admin, slug).await?.id),
        (None, Role::Org(own)) => Some(own),
        (None, Role::Platform) => None,
    };
    let kind = match q.kind.as_deref() {
        None => None,
        Some("admin_change") => Some(AuditKind::AdminChange),
        Some("decision") => Some(AuditKind::Decision),
        Some(other) => {
            return Err(AdminError::BadQuery(format!(
                "kind {other:?} is not admin_change or decision"
            )))
        }
    };
    let (entity_kind, entity_id) = match q.entity.as_deref() {
        None => (None, None),
        Some(entity) => match entity.split_once(':') {
            Some((kind, id)) => (Some(kind.to_owned()), Some(id.to_owned())),
            None => (Some(entity.to_owned()), None),
        },
    };
    let time = |field: &'static str, v: &Option<String>| {
        v.as_deref()
            .map(|t| parse_time(field, t).map_err(|e| AdminError::BadQuery(e.to_string())))
            .transpose()
    };
    let before_id =
        match q.cursor.as_deref() {
            None => None,
            Some(c) => Some(c.parse::<i64>().map_err(|_| {
                AdminError::BadQuery(format!("cursor {c:?} is not one this API gave"))
            })?),
        };
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > AUDIT_MAX_LIMIT {
        return Err(AdminError::BadQuery(format!(
            "limit must be 1..={AUDIT_MAX_LIMIT}"
        )));
    }
    let query = AuditQuery {
        kind,
        entity_kind,
        entity_id,
        actor: q.actor,
        org,
        key: q.key.map(warden_policy::KeyId),
        reason: q.reason,
        since_ms: time("since", &q.since)?,
        until_ms: time("until", &q.until)?,
        before_id,
        limit: Some(limit),
    };
    let page = s
        .store()
        .query_audit(&query)
        .await
        .map_err(|e| s.error(e))?;
    let snapshot = s.snapshot();
    let names = Names(&snapshot);
    Ok(AuditPage {
        items: page
            .entries
            .into_iter()
            .map(|e| AuditEntryView {
                id: e.id,
                at: format_time(e.at_ms),
                kind: match e.kind {
                    AuditKind::AdminChange => "admin_change",
                    AuditKind::Decision => "decision",
                }
                .to_owned(),
                actor: e.actor,
                action: e.action,
                entity_kind: e.entity_kind,
                entity: e.entity_id,
                org: e.org.map(|o| names.org(o)),
                revision: e.revision,
                before: e.before,
                after: e.after,
                decision: e.decision.and_then(|d| serde_json::to_value(d).ok()),
            })
            .collect(),
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    })
}
