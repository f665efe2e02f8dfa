//! Explain (one decision with every check of its trace) and effective
//! access (what a principal may use, as a table): both answered by
//! `ops::explain` / `ops::key_access`, i.e. by `Snapshot::decide` and
//! `Snapshot::access`, exactly as the API answers them.

use axum::extract::{Query, State};
use axum::response::Html;
use serde::Deserialize;
use warden_admin::dto::{AccessParams, ExplainParams, ListParams};
use warden_admin::ops;

use super::OrgPath;
use crate::error::ConsoleError;
use crate::html::{esc, filter_text, Page};
use crate::session::Console;
use crate::ConsoleState;

#[derive(Deserialize, Default)]
pub struct PrincipalQuery {
    key: Option<String>,
    end_user: Option<String>,
    agent: Option<String>,
    server: Option<String>,
    tool: Option<String>,
}

fn blank(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The principal fields of both forms: key, agent, end user (selects fed
/// by the org's own lists).
async fn principal_fields(
    state: &ConsoleState,
    console: &Console,
    org: &str,
    q: &PrincipalQuery,
) -> Result<String, ConsoleError> {
    let s = &state.admin;
    let keys = ops::list_keys(s, &console.admin, org, ListParams::default()).await?;
    let agents = ops::list_agents(s, &console.admin, org, ListParams::default()).await?;
    let users = ops::list_end_users(s, &console.admin, org, ListParams::default()).await?;
    let sel = |v: &str, cur: &Option<String>| {
        if cur.as_deref() == Some(v) {
            " selected"
        } else {
            ""
        }
    };
    let mut k = String::new();
    for key in &keys.items {
        let id = key.id.to_string();
        k.push_str(&format!(
            "<option value=\"{id}\"{}>key {id}: {}{}</option>",
            sel(&id, &q.key),
            esc(&key.name),
            key.agent
                .as_deref()
                .map(|a| format!(" (agent {})", esc(a)))
                .unwrap_or_default()
        ));
    }
    let mut a = String::from("<option value=\"\">(the key's own)</option>");
    for x in &agents.items {
        a.push_str(&format!(
            "<option value=\"{0}\"{1}>{0}</option>",
            esc(&x.slug),
            sel(&x.slug, &q.agent)
        ));
    }
    let mut u = String::from("<option value=\"\">(none)</option>");
    for x in &users.items {
        u.push_str(&format!(
            "<option value=\"{0}\"{1}>{0}</option>",
            esc(&x.external_id),
            sel(&x.external_id, &q.end_user)
        ));
    }
    Ok(format!(
        "<label for=\"key\">Key</label><select id=\"key\" name=\"key\" required>{k}</select>\
         <label for=\"agent\">Agent it acts as</label><select id=\"agent\" name=\"agent\">{a}</select>\
         <label for=\"end_user\">End user it acts for</label><select id=\"end_user\" name=\"end_user\">{u}</select>"
    ))
}

pub async fn explain(
    console: Console,
    State(state): State<ConsoleState>,
    path: OrgPath,
    Query(q): Query<PrincipalQuery>,
) -> Result<Html<String>, ConsoleError> {
    let s = &state.admin;
    let org = ops::get_org(s, &console.admin, &path.org).await?;
    let fields = principal_fields(&state, &console, &org.slug, &q).await?;
    let grants = ops::list_grants(s, &console.admin, &org.slug).await?;
    let mut servers = String::new();
    for g in &grants.items {
        servers.push_str(&format!(
            "<option value=\"{0}\"{1}>{0}</option>",
            esc(&g.server),
            if q.server.as_deref() == Some(&g.server) {
                " selected"
            } else {
                ""
            }
        ));
    }
    let result = match (blank(&q.key), blank(&q.server), blank(&q.tool)) {
        (Some(key), Some(server), Some(tool)) => {
            let key: i64 = key
                .parse()
                .map_err(|_| ConsoleError::BadInput("key must be a key id".into()))?;
            let params = ExplainParams {
                key,
                server,
                tool,
                end_user: blank(&q.end_user),
                agent: blank(&q.agent),
            };
            let e = ops::explain(s, &console.admin, &org.slug, params).await?;
            let mut rows = String::new();
            for entry in e.trace.as_array().into_iter().flatten() {
                let outcome = entry["outcome"].as_str().unwrap_or("");
                rows.push_str(&format!(
                    "<tr class=\"{outcome}\"><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(entry["check"].as_str().unwrap_or("")),
                    esc(outcome),
                    esc(entry["reason"].as_str().unwrap_or("")),
                ));
            }
            format!(
                "<section aria-labelledby=\"verdict\"><h2 id=\"verdict\" data-testid=\"verdict\" class=\"{cls}\">{verdict}</h2>\
                 <p>Reason: <code data-testid=\"reason\">{reason}</code> · revision {rev}</p>\
                 <table><caption>Every check of the decision, in order</caption><thead><tr><th scope=\"col\">check</th>\
                 <th scope=\"col\">outcome</th><th scope=\"col\">reason</th></tr></thead><tbody>{rows}</tbody></table></section>",
                cls = if e.allowed { "allowed" } else { "denied" },
                verdict = if e.allowed { "Allowed" } else { "Denied" },
                reason = esc(e.reason.as_deref().unwrap_or("none (allowed)")),
                rev = e.revision,
            )
        }
        _ => String::from("<p>Pick a principal, a server and a tool.</p>"),
    };
    let body = format!(
        "<h1>Explain a decision</h1>\
         <form method=\"get\" class=\"card\">{fields}\
         <label for=\"server\">Server</label><select id=\"server\" name=\"server\" required>{servers}</select>\
         <label for=\"tool\">Tool</label><input id=\"tool\" name=\"tool\" required value=\"{tool}\">\
         <button type=\"submit\">Explain</button></form>{result}",
        tool = esc(q.tool.as_deref().unwrap_or("")),
    );
    Ok(Page::new("Explain", body)
        .org(&org.slug)
        .render(&console, &state))
}

pub async fn access(
    console: Console,
    State(state): State<ConsoleState>,
    path: OrgPath,
    Query(q): Query<PrincipalQuery>,
) -> Result<Html<String>, ConsoleError> {
    let s = &state.admin;
    let org = ops::get_org(s, &console.admin, &path.org).await?;
    let fields = principal_fields(&state, &console, &org.slug, &q).await?;
    let result = match blank(&q.key) {
        Some(key) => {
            let key: i64 = key
                .parse()
                .map_err(|_| ConsoleError::BadInput("key must be a key id".into()))?;
            let params = AccessParams {
                end_user: blank(&q.end_user),
                agent: blank(&q.agent),
            };
            let a = ops::key_access(s, &console.admin, &org.slug, key, params).await?;
            let mut rows = String::new();
            for srv in &a.servers {
                rows.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&srv.server),
                    esc(&filter_text(&srv.filter)),
                    esc(&srv
                        .tools
                        .as_ref()
                        .map(|t| t.join(", "))
                        .unwrap_or_else(|| "catalog not loaded".into())),
                ));
            }
            if rows.is_empty() {
                rows.push_str("<tr><td colspan=\"3\">No server is usable.</td></tr>");
            }
            format!(
                "<section><h2>Key {key}{agent}</h2>{denial}\
                 <table data-testid=\"access-table\"><caption>What this principal may use (revision {rev})</caption>\
                 <thead><tr><th scope=\"col\">server</th><th scope=\"col\">filter</th><th scope=\"col\">tools now</th></tr></thead>\
                 <tbody>{rows}</tbody></table></section>",
                agent = a
                    .agent
                    .as_deref()
                    .map(|x| format!(" as agent {}", esc(x)))
                    .unwrap_or_default(),
                denial = a
                    .principal_denial
                    .as_deref()
                    .map(|d| format!("<p class=\"error\">Denied outright: <code>{}</code></p>", esc(d)))
                    .unwrap_or_default(),
                rev = a.revision,
            )
        }
        None => String::from("<p>Pick a principal.</p>"),
    };
    let body = format!(
        "<h1>Effective access</h1><form method=\"get\" class=\"card\">{fields}\
         <button type=\"submit\">Show access</button></form>{result}"
    );
    Ok(Page::new("Effective access", body)
        .org(&org.slug)
        .render(&console, &state))
}
