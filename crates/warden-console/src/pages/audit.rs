//! The audit log: admin changes (before/after, secrets already redacted by
//! the store) and call decisions, filtered and paged by `ops::list_audit`
//! (an org admin sees only its org's entries, as in the API).

use axum::extract::{Query, State};
use axum::response::Html;
use serde::Deserialize;
use warden_admin::dto::AuditParams;
use warden_admin::ops;

use crate::error::ConsoleError;
use crate::html::{esc, url, Page};
use crate::session::Console;
use crate::ConsoleState;

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    org: Option<String>,
    kind: Option<String>,
    actor: Option<String>,
    entity: Option<String>,
    key: Option<String>,
    reason: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
}

fn blank(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Entries per page.
const PAGE: u32 = 50;

pub async fn list(
    console: Console,
    State(state): State<ConsoleState>,
    Query(q): Query<AuditQuery>,
) -> Result<Html<String>, ConsoleError> {
    let params = AuditParams {
        org: blank(&q.org),
        entity: blank(&q.entity),
        actor: blank(&q.actor),
        kind: blank(&q.kind),
        key: match blank(&q.key) {
            None => None,
            Some(k) => Some(
                k.parse()
                    .map_err(|_| ConsoleError::BadInput("key must be a key id".into()))?,
            ),
        },
        reason: blank(&q.reason),
        since: blank(&q.since),
        until: blank(&q.until),
        limit: Some(PAGE),
        cursor: blank(&q.cursor),
    };
    let page = ops::list_audit(&state.admin, &console.admin, params).await?;
    let mut rows = String::new();
    for e in &page.items {
        let what = match e.kind.as_str() {
            "decision" => {
                let d = e.decision.clone().unwrap_or_default();
                format!(
                    "{} {} {} → {}{}",
                    e.action,
                    d["server_slug"].as_str().unwrap_or(""),
                    d["tool"].as_str().unwrap_or(""),
                    if d["allowed"].as_bool() == Some(true) {
                        "allowed"
                    } else {
                        "denied"
                    },
                    d["reason"]
                        .as_str()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default(),
                )
            }
            _ => e.action.clone(),
        };
        let change = match (&e.before, &e.after) {
            (None, None) => String::new(),
            (b, a) => format!(
                "<details><summary>before/after</summary><pre>before: {}\nafter: {}</pre></details>",
                esc(&b.as_ref().map(|v| v.to_string()).unwrap_or_else(|| "—".into())),
                esc(&a.as_ref().map(|v| v.to_string()).unwrap_or_else(|| "—".into())),
            ),
        };
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td data-testid=\"audit-actor\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>",
            esc(&e.at),
            esc(&e.kind),
            esc(e.actor.as_deref().unwrap_or("")),
            esc(e.org.as_deref().unwrap_or("")),
            esc(&format!(
                "{}{}",
                e.entity_kind.as_deref().unwrap_or(""),
                e.entity.as_deref().map(|x| format!(":{x}")).unwrap_or_default()
            )),
            e.revision,
            esc(&what),
            change,
        ));
    }
    if rows.is_empty() {
        rows.push_str("<tr><td colspan=\"7\">No entries match.</td></tr>");
    }
    let keep = |name: &str, v: &Option<String>| {
        blank(v)
            .map(|v| format!("&{name}={}", url(&v)))
            .unwrap_or_default()
    };
    let filters = format!(
        "{}{}{}{}{}{}{}{}",
        keep("org", &q.org),
        keep("key", &q.key),
        keep("reason", &q.reason),
        keep("kind", &q.kind),
        keep("actor", &q.actor),
        keep("entity", &q.entity),
        keep("since", &q.since),
        keep("until", &q.until)
    );
    let next = page
        .next_cursor
        .as_deref()
        .map(|c| {
            format!(
                "<a rel=\"next\" href=\"/console/audit?cursor={}{filters}\">Older entries</a>",
                url(c)
            )
        })
        .unwrap_or_default();
    let opt = |v: &str, label: &str| {
        format!(
            "<option value=\"{v}\"{}>{label}</option>",
            if q.kind.as_deref() == Some(v) {
                " selected"
            } else {
                ""
            }
        )
    };
    let val = |v: &Option<String>| esc(v.as_deref().unwrap_or(""));
    let body = format!(
        "<h1>Audit log</h1><form method=\"get\" class=\"card filters\">\
         <label for=\"kind\">Kind</label><select id=\"kind\" name=\"kind\">{any}{ac}{de}</select>\
         <label for=\"org\">Org</label><input id=\"org\" name=\"org\" value=\"{org}\">\
         <label for=\"actor\">Actor</label><input id=\"actor\" name=\"actor\" value=\"{actor}\">\
         <label for=\"entity\">Entity (kind or kind:id)</label><input id=\"entity\" name=\"entity\" value=\"{entity}\">\
         <label for=\"key\">Principal (key id)</label><input id=\"key\" name=\"key\" inputmode=\"numeric\" value=\"{key}\">\
         <label for=\"reason\">Denial reason</label><input id=\"reason\" name=\"reason\" value=\"{reason}\">\
         <label for=\"since\">Since (RFC 3339)</label><input id=\"since\" name=\"since\" value=\"{since}\">\
         <label for=\"until\">Until (RFC 3339)</label><input id=\"until\" name=\"until\" value=\"{until}\">\
         <button type=\"submit\">Filter</button></form>\
         <table><thead><tr><th scope=\"col\">at</th><th scope=\"col\">kind</th><th scope=\"col\">actor</th>\
         <th scope=\"col\">org</th><th scope=\"col\">entity</th><th scope=\"col\">revision</th><th scope=\"col\">what</th></tr></thead>\
         <tbody>{rows}</tbody></table><nav aria-label=\"Pages\">{next}</nav>",
        any = opt("", "any"),
        ac = opt("admin_change", "admin changes"),
        de = opt("decision", "call decisions"),
        org = val(&q.org),
        actor = val(&q.actor),
        entity = val(&q.entity),
        key = val(&q.key),
        reason = val(&q.reason),
        since = val(&q.since),
        until = val(&q.until),
    );
    let page = Page::new("Audit", body);
    let page = match blank(&q.org) {
        Some(o) => page.org(&o),
        None => page,
    };
    Ok(page.render(&console, &state))
}
