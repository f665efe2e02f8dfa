//! The live page: sessions per server and per principal (from the gateway,
//! through [`GatewayView`]), calls per second and denials by reason (from
//! the audit log's decision records), and the policy revision the page
//! polls to refresh itself when another admin changes something.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde_json::json;
use warden_admin::dto::AuditParams;
use warden_admin::ops;
use warden_policy::{OrgId, Principal, ServerId};

use crate::error::ConsoleError;
use crate::html::{self, esc, Page};
use crate::pages::OrgPath;
use crate::session::Console;
use crate::ConsoleState;

/// One live MCP session (or listen stream) of the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSession {
    pub principal: Principal,
    /// `all`, `server:{slug}` or `toolset:{slug}`.
    pub mount: String,
}

/// How one upstream's connection is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHealth {
    pub ready: bool,
    /// Why the connection is down, while it is.
    pub failure: Option<String>,
}

/// What the console reads from the gateway: live sessions, upstream health
/// and tool descriptions. The binary implements it over the gateway; the
/// console, like the admin API, does not depend on the gateway crate. None
/// of it decides anything: allow/deny comes from `warden-policy`.
pub trait GatewayView: Send + Sync {
    fn sessions(&self) -> Vec<LiveSession>;

    /// `None`: the gateway has no connection for this server.
    fn server_health(&self, _server: ServerId) -> Option<ServerHealth> {
        None
    }

    /// (name, description) of each tool in the server's live catalog.
    fn tool_descriptions(&self, _server: ServerId) -> Option<Vec<(String, String)>> {
        None
    }
}

/// No gateway (tests of the console alone).
pub struct NoGateway;

impl GatewayView for NoGateway {
    fn sessions(&self) -> Vec<LiveSession> {
        Vec::new()
    }
}

/// The live sessions of `org`'s keys.
pub(crate) fn org_sessions(state: &ConsoleState, org: OrgId) -> Vec<LiveSession> {
    let snapshot = state.admin.snapshot();
    state
        .live
        .sessions()
        .into_iter()
        .filter(|s| snapshot.key(s.principal.key).is_some_and(|k| k.org == org))
        .collect()
}

/// `GET /console/revision`: the live policy revision, polled by every page.
pub async fn revision(console: Console, State(state): State<ConsoleState>) -> Response {
    let _ = console;
    Json(json!({ "revision": state.admin.live().revision() })).into_response()
}

pub async fn page(
    console: Console,
    State(state): State<ConsoleState>,
    path: OrgPath,
) -> Result<Html<String>, ConsoleError> {
    let org = ops::get_org(&state.admin, &console.admin, &path.org).await?;
    let panel = panel_html(&state, &console, &org.slug).await?;
    let body = format!(
        "<h1>Live: {org}</h1>\
         <p>Refreshed every 2 seconds and whenever the policy revision moves.</p>\
         <div id=\"live\" data-live-src=\"/console/orgs/{org}/live/panel\" aria-live=\"polite\">{panel}</div>",
        org = esc(&org.slug),
    );
    Ok(Page::new("Live", body)
        .org(&org.slug)
        .render(&console, &state))
}

/// `GET /console/orgs/{org}/live/panel`: the panel alone (the script swaps
/// it in).
pub async fn panel(
    console: Console,
    State(state): State<ConsoleState>,
    path: OrgPath,
) -> Result<Html<String>, ConsoleError> {
    let org = ops::get_org(&state.admin, &console.admin, &path.org).await?;
    Ok(Html(panel_html(&state, &console, &org.slug).await?))
}

/// How far back calls per second and denials are counted.
const WINDOW_SECS: i64 = 60;

async fn panel_html(
    state: &ConsoleState,
    console: &Console,
    org_slug: &str,
) -> Result<String, ConsoleError> {
    let snapshot = state.admin.snapshot();
    let org = snapshot
        .org_by_slug(org_slug)
        .ok_or_else(|| ConsoleError::NotFound(format!("org {org_slug}")))?
        .id;
    let sessions = org_sessions(state, org);
    let mut per_server: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_principal: BTreeMap<String, usize> = BTreeMap::new();
    for s in &sessions {
        *per_server.entry(s.mount.clone()).or_default() += 1;
        *per_principal
            .entry(html::principal_label(&snapshot, &s.principal))
            .or_default() += 1;
    }
    // Decision records of the last minute (one page of at most 500).
    let since = html::format_time(html::now_ms() - WINDOW_SECS * 1000);
    let page = ops::list_audit(
        &state.admin,
        &console.admin,
        AuditParams {
            org: Some(org_slug.to_owned()),
            entity: None,
            actor: None,
            kind: Some("decision".into()),
            key: None,
            reason: None,
            since: Some(since),
            until: None,
            limit: Some(500),
            cursor: None,
        },
    )
    .await?;
    let mut calls = 0usize;
    let mut denials: BTreeMap<String, usize> = BTreeMap::new();
    for e in &page.items {
        let d = e.decision.as_ref();
        // A decision's action is its JSON-RPC method.
        if e.action == "tools/call" {
            calls += 1;
        }
        if d.and_then(|d| d["allowed"].as_bool()) == Some(false) {
            let reason = d
                .and_then(|d| d["reason"].as_str())
                .unwrap_or("unknown")
                .to_owned();
            *denials.entry(reason).or_default() += 1;
        }
    }
    let rate = calls as f64 / WINDOW_SECS as f64;
    let table = |title: &str, head: &str, rows: &BTreeMap<String, usize>| {
        let mut t = format!(
            "<section><h2>{}</h2><table><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">count</th></tr></thead><tbody>",
            esc(title),
            esc(head)
        );
        if rows.is_empty() {
            t.push_str("<tr><td colspan=\"2\">none</td></tr>");
        }
        for (k, v) in rows {
            t.push_str(&format!("<tr><td>{}</td><td>{v}</td></tr>", esc(k)));
        }
        t.push_str("</tbody></table></section>");
        t
    };
    Ok(format!(
        "<p class=\"stats\">Policy revision <strong data-testid=\"live-revision\">{rev}</strong> · \
         live sessions <strong data-testid=\"live-sessions\">{n}</strong> · \
         calls/s (last {WINDOW_SECS} s) <strong data-testid=\"live-rate\">{rate:.2}</strong></p>{a}{b}{c}",
        rev = snapshot.revision(),
        n = sessions.len(),
        a = table("Sessions per mount", "mount", &per_server),
        b = table("Sessions per principal", "principal", &per_principal),
        c = table("Denials by reason (last minute)", "reason", &denials),
    ))
}
