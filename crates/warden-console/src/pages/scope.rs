//! The scope picker of a team, agent, end user, key or toolset: it offers
//! exactly what the engine's `allowance` of the owner's parent chain allows
//! (`ops::scope_options`, the same picker the API serves), and saving goes
//! through `ops::put_scope` / `ops::put_toolset_servers`, which the store
//! validates against that same allowance.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, State};
use axum::response::{Html, Response};
use serde::Deserialize;
use warden_admin::dto::{GrantsSpec, PutToolsetServers, ScopeSpec, ServerOption};
use warden_admin::ops::{self, OwnerRef};
use warden_policy::ToolFilter;

use super::{see_other, Checked};
use crate::error::ConsoleError;
use crate::html::{csrf_field, esc, filter_text, url, Page};
use crate::session::Console;
use crate::ConsoleState;

#[derive(Deserialize)]
pub struct ScopePath {
    org: String,
    kind: String,
    id: String,
}

fn owner(p: &ScopePath) -> Result<OwnerRef, ConsoleError> {
    Ok(match p.kind.as_str() {
        "team" => OwnerRef::Team(p.id.clone()),
        "agent" => OwnerRef::Agent(p.id.clone()),
        "end-user" => OwnerRef::EndUser(p.id.clone()),
        "toolset" => OwnerRef::Toolset(p.id.clone()),
        "key" => OwnerRef::Key(
            p.id.parse()
                .map_err(|_| ConsoleError::NotFound(format!("key {}", p.id)))?,
        ),
        _ => return Err(ConsoleError::NotFound(format!("{} {}", p.kind, p.id))),
    })
}

/// The tools a server option offers by name: the catalog's tools within
/// the allowance, or the allowance's own names when the catalog is unknown.
fn named_tools(o: &ServerOption) -> Vec<String> {
    match (&o.tools, &o.filter) {
        (Some(t), _) => t.clone(),
        (None, ToolFilter::Only(t)) => t.iter().cloned().collect(),
        (None, _) => Vec::new(),
    }
}

pub async fn edit(
    console: Console,
    State(state): State<ConsoleState>,
    Path(p): Path<ScopePath>,
) -> Result<Html<String>, ConsoleError> {
    let s = &state.admin;
    let who = owner(&p)?;
    let options = ops::scope_options(s, &console.admin, &p.org, who.clone()).await?;
    let is_toolset = matches!(who, OwnerRef::Toolset(_));
    let current: ScopeSpec = if is_toolset {
        let t = ops::get_toolset(s, &console.admin, &p.org, &p.id).await?;
        ScopeSpec::Grants(GrantsSpec {
            servers: t.servers,
            toolsets: BTreeSet::new(),
        })
    } else {
        ops::get_scope(s, &console.admin, &p.org, who.clone()).await?
    };
    let (inherit, grants) = match &current {
        ScopeSpec::Inherit => (true, GrantsSpec::default()),
        ScopeSpec::Grants(g) => (false, g.clone()),
    };
    let mut servers = String::new();
    for o in &options.servers {
        let chosen = grants.servers.get(&o.server);
        let sv = esc(&o.server);
        let all_offered = matches!(o.filter, ToolFilter::All);
        let all_radio = if all_offered {
            format!(
                "<label class=\"check\"><input type=\"radio\" name=\"mode:{sv}\" value=\"all\"{}> all tools</label>",
                if matches!(chosen, Some(ToolFilter::All)) { " checked" } else { "" }
            )
        } else {
            String::new()
        };
        let mut tools = String::new();
        for t in named_tools(o) {
            let on = chosen.is_some_and(|f| !matches!(f, ToolFilter::All) && f.admits(&t));
            tools.push_str(&format!(
                "<label class=\"check\"><input type=\"checkbox\" name=\"tool:{sv}\" value=\"{tv}\" data-tool=\"{tv}\"{c}> {tv}</label>",
                tv = esc(&t),
                c = if on { " checked" } else { "" },
            ));
        }
        servers.push_str(&format!(
            "<fieldset class=\"server\" data-server=\"{sv}\"><legend>\
             <label class=\"check\"><input type=\"checkbox\" name=\"server\" value=\"{sv}\"{on}> {sv}</label></legend>\
             <p class=\"hint\">The parent allows: {allowed}</p>{all_radio}\
             <label class=\"check\"><input type=\"radio\" name=\"mode:{sv}\" value=\"only\"{only}> only these tools:</label>\
             <div class=\"picker\" role=\"group\" aria-label=\"Tools of {sv}\">{tools}</div></fieldset>",
            on = if chosen.is_some() { " checked" } else { "" },
            allowed = esc(&filter_text(&o.filter)),
            only = if matches!(chosen, Some(ToolFilter::All)) { "" } else { " checked" },
        ));
    }
    if options.servers.is_empty() {
        servers.push_str("<p>The parent chain allows no server: nothing can be offered.</p>");
    }
    let mut toolsets = String::new();
    for t in &options.toolsets {
        toolsets.push_str(&format!(
            "<label class=\"check\"><input type=\"checkbox\" name=\"toolset\" value=\"{0}\"{1}> {0}</label>",
            esc(t),
            if grants.toolsets.contains(t) { " checked" } else { "" }
        ));
    }
    let mode = if is_toolset {
        String::new()
    } else {
        format!(
            "<fieldset><legend>Scope</legend>\
             <label class=\"check\"><input type=\"radio\" name=\"mode\" value=\"inherit\"{}> Inherit everything the parent allows</label>\
             <label class=\"check\"><input type=\"radio\" name=\"mode\" value=\"grants\"{}> Only what is picked below</label></fieldset>",
            if inherit { " checked" } else { "" },
            if inherit { "" } else { " checked" },
        )
    };
    let toolsets = if is_toolset || options.toolsets.is_empty() {
        String::new()
    } else {
        format!("<fieldset><legend>Toolsets</legend>{toolsets}</fieldset>")
    };
    let body = format!(
        "<h1>Scope of {kind} {id}</h1>\
         <p>The picker offers exactly what the policy engine allows this {kind}'s parent chain (revision {rev}).</p>\
         <form method=\"post\" class=\"card\" id=\"scope-form\">{csrf}{mode}{servers}{toolsets}\
         <button type=\"submit\">Save scope</button></form>",
        kind = esc(&p.kind),
        id = esc(&p.id),
        rev = options.revision,
        csrf = csrf_field(&console),
    );
    Ok(Page::new("Scope", body)
        .org(&p.org)
        .render(&console, &state))
}

pub async fn save(
    State(state): State<ConsoleState>,
    Path(p): Path<ScopePath>,
    checked: Checked,
) -> Result<Response, ConsoleError> {
    let who = owner(&p)?;
    let f = &checked.form;
    let mut servers = BTreeMap::new();
    for server in f.all("server") {
        let filter = if f.get(&format!("mode:{server}")) == Some("all") {
            ToolFilter::All
        } else {
            ToolFilter::only(f.all(&format!("tool:{server}")).map(str::to_owned))
        };
        servers.insert(server.to_owned(), filter);
    }
    let back = match who {
        OwnerRef::Team(_) => "teams",
        OwnerRef::Agent(_) => "agents",
        OwnerRef::EndUser(_) => "end-users",
        OwnerRef::Key(_) => "keys",
        OwnerRef::Toolset(_) => "toolsets",
    };
    if let OwnerRef::Toolset(slug) = &who {
        ops::put_toolset_servers(
            &state.admin,
            &checked.console.admin,
            &p.org,
            slug,
            PutToolsetServers { servers },
        )
        .await?;
    } else {
        let spec = if f.get("mode") == Some("inherit") {
            ScopeSpec::Inherit
        } else {
            ScopeSpec::Grants(GrantsSpec {
                servers,
                toolsets: f.all("toolset").map(str::to_owned).collect(),
            })
        };
        ops::put_scope(&state.admin, &checked.console.admin, &p.org, who, spec).await?;
    }
    Ok(see_other(&format!("/console/orgs/{}/{back}", url(&p.org))))
}
