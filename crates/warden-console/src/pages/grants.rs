//! One grant of an org: its tool filter (a picker over the live catalog)
//! and its switch, with the impact of switching shown before it is made.

use axum::extract::{Path, Query, State};
use axum::response::{Html, Response};
use serde::Deserialize;
use warden_admin::dto::PatchGrant;
use warden_admin::ops;
use warden_policy::{PolicyChange, ToolFilter};

use super::{see_other, Checked};
use crate::error::ConsoleError;
use crate::html::{csrf_field, esc, filter_text, url, Page};
use crate::live::org_sessions;
use crate::session::Console;
use crate::ConsoleState;

#[derive(Deserialize)]
pub struct GrantPath {
    org: String,
    server: String,
}

/// The tools a filter picker may offer for this grant: the live catalog,
/// and for an org admin on a global server only what the grant already
/// admits (the platform set that bound; `may_set_filter` enforces it).
fn offered(
    state: &ConsoleState,
    console: &Console,
    org: &str,
    server: &str,
) -> (Vec<String>, ToolFilter, bool) {
    let snapshot = state.admin.snapshot();
    let Some(org) = snapshot.org_by_slug(org) else {
        return (Vec::new(), ToolFilter::none(), false);
    };
    let Some(srv) = snapshot.server_for_org(org.id, server) else {
        return (Vec::new(), ToolFilter::none(), false);
    };
    let current = snapshot
        .org_grant(org.id, srv.id)
        .map(|g| g.filter.clone())
        .unwrap_or_else(ToolFilter::none);
    let bound_by_grant = !console.admin.is_platform() && srv.owner_org.is_none();
    let mut tools = state.admin.catalog().tool_names(srv.id).unwrap_or_default();
    if bound_by_grant {
        tools.retain(|t| current.admits(t));
    }
    tools.sort();
    (tools, current, bound_by_grant)
}

pub async fn edit(
    console: Console,
    State(state): State<ConsoleState>,
    Path(p): Path<GrantPath>,
) -> Result<Html<String>, ConsoleError> {
    let grant = ops::get_grant(&state.admin, &console.admin, &p.org, &p.server).await?;
    let (tools, current, bound) = offered(&state, &console, &p.org, &p.server);
    let all_checked = matches!(current, ToolFilter::All) && !bound;
    let mut boxes = String::new();
    for t in &tools {
        boxes.push_str(&format!(
            "<label class=\"check\"><input type=\"checkbox\" name=\"tool\" value=\"{v}\"{c}> {v}</label>",
            v = esc(t),
            c = if current.admits(t) { " checked" } else { "" },
        ));
    }
    if tools.is_empty() {
        boxes.push_str("<p>The catalog of this server is not loaded (is it reachable?).</p>");
    }
    let all_option = if bound {
        String::new()
    } else {
        format!(
            "<label class=\"check\"><input type=\"radio\" name=\"mode\" value=\"all\"{}> All tools, including tools the server adds later</label>",
            if all_checked { " checked" } else { "" }
        )
    };
    let body = format!(
        "<h1>Tool filter: {sv} for {org}</h1><p>Now: {now} ({state}).</p>\
         <form method=\"post\" action=\"/console/orgs/{o}/grants/{su}\" class=\"card\">{csrf}\
         <fieldset><legend>Which tools may the org use?</legend>{all_option}\
         <label class=\"check\"><input type=\"radio\" name=\"mode\" value=\"only\"{only}> Only the tools checked below</label>\
         <div class=\"picker\" role=\"group\" aria-label=\"Tools of {sv}\">{boxes}</div></fieldset>\
         <button type=\"submit\">Save filter</button></form>",
        sv = esc(&p.server),
        su = url(&p.server),
        org = esc(&p.org),
        o = url(&p.org),
        now = esc(&filter_text(&grant.filter)),
        state = if grant.enabled { "on" } else { "off" },
        csrf = csrf_field(&console),
        only = if all_checked { "" } else { " checked" },
    );
    Ok(Page::new("Tool filter", body)
        .org(&p.org)
        .render(&console, &state))
}

pub async fn save(
    State(state): State<ConsoleState>,
    Path(p): Path<GrantPath>,
    checked: Checked,
) -> Result<Response, ConsoleError> {
    let filter = match checked.form.get("mode") {
        Some("all") => ToolFilter::All,
        _ => ToolFilter::only(checked.form.all("tool").map(str::to_owned)),
    };
    let body = PatchGrant {
        enabled: None,
        filter: Some(filter),
    };
    ops::patch_grant(
        &state.admin,
        &checked.console.admin,
        &p.org,
        &p.server,
        body,
    )
    .await?;
    Ok(see_other(&format!("/console/orgs/{}", url(&p.org))))
}

#[derive(Deserialize)]
pub struct SwitchQuery {
    enabled: bool,
}

/// Before switching a grant: who loses (or gains) which tools, computed by
/// running the decision on the live snapshot with and without the change
/// (`Snapshot::impact`), over every key of the org and every live session.
pub async fn impact(
    console: Console,
    State(state): State<ConsoleState>,
    Path(p): Path<GrantPath>,
    Query(q): Query<SwitchQuery>,
) -> Result<Html<String>, ConsoleError> {
    // Resolves the org and grant with the admin's visibility (404 if not).
    let grant = ops::get_grant(&state.admin, &console.admin, &p.org, &p.server).await?;
    let snapshot = state.admin.snapshot();
    let org = snapshot
        .org_by_slug(&p.org)
        .ok_or_else(|| ConsoleError::NotFound(format!("org {}", p.org)))?;
    let srv = snapshot
        .server_for_org(org.id, &p.server)
        .ok_or_else(|| ConsoleError::NotFound(format!("server {}", p.server)))?;
    let mut row = snapshot
        .org_grant(org.id, srv.id)
        .cloned()
        .ok_or_else(|| ConsoleError::NotFound(format!("grant {}", p.server)))?;
    row.enabled = q.enabled;
    let sessions = org_sessions(&state, org.id);
    let principals = super::impact::principals(snapshot.key_principals(org.id), &sessions);
    let report = super::impact::render(
        &state,
        &snapshot,
        &PolicyChange::UpsertOrgGrant(row),
        &principals,
        &sessions,
    )?;
    let verb = if q.enabled { "on" } else { "off" };
    let body = format!(
        "<h1>Switch {sv} {verb} for {org}?</h1>\
         <p>It is {now} now.</p>\
{report}\
         <form method=\"post\" action=\"/console/orgs/{o}/grants/{su}/switch\" class=\"card\">{csrf}\
         <input type=\"hidden\" name=\"enabled\" value=\"{en}\">\
         <button type=\"submit\" class=\"{cls}\">Confirm: switch {verb}</button> \
         <a href=\"/console/orgs/{o}\">Cancel</a></form>",
        sv = esc(&p.server),
        su = url(&p.server),
        org = esc(&p.org),
        o = url(&p.org),
        now = if grant.enabled { "on" } else { "off" },
        csrf = csrf_field(&console),
        en = q.enabled,
        cls = if q.enabled { "" } else { "danger" },
    );
    Ok(Page::new("Impact", body)
        .org(&p.org)
        .render(&console, &state))
}

pub async fn switch(
    State(state): State<ConsoleState>,
    Path(p): Path<GrantPath>,
    checked: Checked,
) -> Result<Response, ConsoleError> {
    let enabled = match checked.form.get("enabled") {
        Some("true") => true,
        Some("false") => false,
        _ => {
            return Err(ConsoleError::BadInput(
                "enabled must be true or false".into(),
            ))
        }
    };
    let body = PatchGrant {
        enabled: Some(enabled),
        filter: None,
    };
    ops::patch_grant(
        &state.admin,
        &checked.console.admin,
        &p.org,
        &p.server,
        body,
    )
    .await?;
    Ok(see_other(&format!("/console/orgs/{}", url(&p.org))))
}
