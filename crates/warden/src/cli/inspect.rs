//! `warden explain|access|audit`: what the engine decides, what a key
//! reaches, and the audit log.

use clap::Args;
use serde_json::Value;

use super::client::AdminClient;
use super::{org_path, Output};
use crate::error::WardenError;

#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    /// The org's slug.
    pub org: String,
    /// Key id.
    #[arg(long)]
    pub key: i64,
    /// The server's slug.
    #[arg(long)]
    pub server: String,
    /// The tool's name as the upstream names it.
    #[arg(long)]
    pub tool: String,
    /// Acting for this end user (external id).
    #[arg(long)]
    pub end_user: Option<String>,
    /// Acting as this agent (slug).
    #[arg(long)]
    pub agent: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct AccessArgs {
    /// The org's slug.
    pub org: String,
    /// Key id.
    pub key: i64,
    /// Acting for this end user (external id).
    #[arg(long)]
    pub end_user: Option<String>,
    /// Acting as this agent (slug).
    #[arg(long)]
    pub agent: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Only entries about this org.
    #[arg(long)]
    pub org: Option<String>,
    /// Entity kind (`server`, `team`, `key`, ...) or `kind:id`.
    #[arg(long)]
    pub entity: Option<String>,
    /// Who made the change: an admin token's name, or an actor exactly as
    /// entries show it (`admin:ops`, `system:bootstrap`).
    #[arg(long)]
    pub actor: Option<String>,
    /// Entry kind: `admin_change` or `decision`.
    #[arg(long)]
    pub kind: Option<String>,
    /// Entries at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Entries before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many entries per page.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Continue after this cursor (from a previous page).
    #[arg(long)]
    pub cursor: Option<String>,
}

/// `warden explain`: the decision and its trace.
pub(super) async fn run_explain(
    api: &AdminClient,
    out: &mut Output,
    a: ExplainArgs,
) -> Result<(), WardenError> {
    let mut query = vec![
        ("key", a.key.to_string()),
        ("server", a.server),
        ("tool", a.tool),
    ];
    query.extend(a.end_user.map(|u| ("end_user", u)));
    query.extend(a.agent.map(|g| ("agent", g)));
    let v = api.get_query(&org_path(&a.org, "/explain"), &query).await?;
    out.explain(&v);
    Ok(())
}

/// `warden access`: a key's effective access.
pub(super) async fn run_access(
    api: &AdminClient,
    out: &mut Output,
    a: AccessArgs,
) -> Result<(), WardenError> {
    let mut query = Vec::new();
    query.extend(a.end_user.map(|u| ("end_user", u)));
    query.extend(a.agent.map(|g| ("agent", g)));
    let path = org_path(&a.org, &format!("/keys/{}/access", a.key));
    let v = api.get_query(&path, &query).await?;
    out.access(&v);
    Ok(())
}

/// `warden audit`: one page of the audit log, and the cursor of the next.
pub(super) async fn run_audit(
    api: &AdminClient,
    out: &mut Output,
    a: AuditArgs,
) -> Result<(), WardenError> {
    let mut query = vec![("limit", a.limit.to_string())];
    let optional = [
        ("org", a.org),
        ("entity", a.entity),
        ("actor", a.actor),
        ("kind", a.kind),
        ("since", a.since),
        ("until", a.until),
        ("cursor", a.cursor),
    ];
    query.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
    let v = api.get_query("/admin/v1/audit", &query).await?;
    out.list(
        &v,
        &[
            "id",
            "at",
            "kind",
            "actor",
            "action",
            "entity_kind",
            "entity",
            "revision",
        ],
    );
    if let Some(next) = v.get("next_cursor").and_then(Value::as_str) {
        if !out.json {
            out.line(&format!("more: --cursor {next}"));
        }
    }
    Ok(())
}
