//! Teams, agents (assistants), end users and toolsets of an org: lists,
//! creation, and a link to each one's scope picker.

use axum::extract::State;
use axum::response::{Html, Response};
use warden_admin::dto::{
    CreateAgent, CreateEndUser, CreateTeam, CreateToolset, ListParams, PatchEndUser, ScopeSpec,
};
use warden_admin::ops;

use super::{see_other, Checked, OrgPath};
use crate::error::ConsoleError;
use crate::html::{csrf_field, esc, filter_text, url, Page};
use crate::session::Console;
use crate::ConsoleState;

/// A scope as people read it.
pub fn scope_text(scope: &ScopeSpec) -> String {
    match scope {
        ScopeSpec::Inherit => "inherits everything its parent allows".into(),
        ScopeSpec::Grants(g) if g.servers.is_empty() && g.toolsets.is_empty() => "nothing".into(),
        ScopeSpec::Grants(g) => {
            let mut parts: Vec<String> = g
                .servers
                .iter()
                .map(|(s, f)| format!("{s}: {}", filter_text(f)))
                .collect();
            parts.extend(g.toolsets.iter().map(|t| format!("toolset {t}")));
            parts.join("; ")
        }
    }
}

fn page_list(title: &str, org: &str, head: &[&str], rows: String, create: String) -> String {
    let th: String = head
        .iter()
        .map(|h| format!("<th scope=\"col\">{}</th>", esc(h)))
        .collect();
    format!(
        "<h1>{t} of {o}</h1><table><thead><tr>{th}</tr></thead><tbody>{rows}</tbody></table>\
         <section><h2>Create</h2>{create}</section>",
        t = esc(title),
        o = esc(org),
    )
}

fn scope_link(org: &str, kind: &str, id: &str) -> String {
    format!(
        "<a href=\"/console/orgs/{}/scope/{kind}/{}\">Edit scope</a>",
        url(org),
        url(id)
    )
}

fn team_options(teams: &[warden_admin::dto::TeamView]) -> String {
    let mut s = String::from("<option value=\"\">(no team)</option>");
    for t in teams {
        s.push_str(&format!("<option value=\"{0}\">{0}</option>", esc(&t.slug)));
    }
    s
}

pub async fn teams(
    console: Console,
    State(state): State<ConsoleState>,
    path: OrgPath,
) -> Result<Html<String>, ConsoleError> {
    let list = ops::list_teams(
        &state.admin,
        &console.admin,
        &path.org,
        ListParams::default(),
    )
    .await?;
    let rows: String = list
        .items
        .iter()
        .map(|t| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&t.slug),
                esc(&t.name),
                esc(&scope_text(&t.scope)),
                scope_link(&path.org, "team", &t.slug)
            )
        })
        .collect();
    let create = format!(
        "<form method=\"post\" class=\"card\">{csrf}<label for=\"slug\">Slug</label>\
         <input id=\"slug\" name=\"slug\" required><label for=\"name\">Name</label><input id=\"name\" name=\"name\">\
         <button type=\"submit\">Create team</button></form>",
        csrf = csrf_field(&console)
    );
    let body = page_list(
        "Teams",
        &path.org,
        &["slug", "name", "scope", ""],
        rows,
        create,
    );
    Ok(Page::new("Teams", body)
        .org(&path.org)
        .render(&console, &state))
}

pub async fn create_team(
    State(state): State<ConsoleState>,
    path: OrgPath,
    checked: Checked,
) -> Result<Response, ConsoleError> {
    let f = &checked.form;
    let body = CreateTeam {
        slug: f.required("slug")?,
        name: f.optional("name"),
        scope: None,
    };
    ops::create_team(&state.admin, &checked.console.admin, &path.org, body).await?;
    Ok(see_other(&format!(
        "/console/orgs/{}/teams",
        url(&path.org)
    )))
}

pub async fn agents(
    console: Console,
    State(state): State<ConsoleState>,
    path: OrgPath,
) -> Result<Html<String>, ConsoleError> {
    let s = &state.admin;
    let list = ops::list_agents(s, &console.admin, &path.org, ListParams::default()).await?;
    let teams = ops::list_teams(s, &console.admin, &path.org, ListParams::default()).await?;
    let rows: String = list
        .items
        .iter()
        .map(|a| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td data-testid=\"agent-scope\">{}</td><td>{}</td></tr>",
                esc(&a.slug),
                esc(&a.name),
                esc(a.team.as_deref().unwrap_or("")),
                esc(&scope_text(&a.scope)),
                scope_link(&path.org, "agent", &a.slug)
            )
        })
        .collect();
    let create = format!(
        "<form method=\"post\" class=\"card\">{csrf}<label for=\"slug\">Slug</label>\
         <input id=\"slug\" name=\"slug\" required><label for=\"name\">Name</label><input id=\"name\" name=\"name\">\
         <label for=\"team\">Team</label><select id=\"team\" name=\"team\">{teams}</select>\
         <p class=\"hint\">A new agent has no servers attached: attach them with its scope.</p>\
         <button type=\"submit\">Create agent</button></form>",
        csrf = csrf_field(&console),
        teams = team_options(&teams.items),
    );
    let body = page_list(
        "Agents",
        &path.org,
        &["slug", "name", "team", "attached servers (scope)", ""],
        rows,
        create,
    );
    Ok(Page::new("Agents", body)
        .org(&path.org)
        .render(&console, &state))
}

pub async fn create_agent(
    State(state): State<ConsoleState>,
    path: OrgPath,
    checked: Checked,
) -> Result<Response, ConsoleError> {
    let f = &checked.form;
    let body = CreateAgent {
        slug: f.required("slug")?,
        name: f.optional("name"),
        team: f.optional("team"),
        // Nothing attached until the admin picks it.
        scope: Some(ScopeSpec::Grants(Default::default())),
    };
    let w = ops::create_agent(&state.admin, &checked.console.admin, &path.org, body).await?;
    Ok(see_other(&format!(
        "/console/orgs/{}/scope/agent/{}",
        url(&path.org),
        url(&w.item.slug)
    )))
}

pub async fn end_users(
    console: Console,
    State(state): State<ConsoleState>,
    path: OrgPath,
) -> Result<Html<String>, ConsoleError> {
    let list = ops::list_end_users(
        &state.admin,
        &console.admin,
        &path.org,
        ListParams::default(),
    )
    .await?;
    let o = url(&path.org);
    let rows: String = list
        .items
        .iter()
        .map(|u| {
            let (status, to, label, confirm, class) = if u.disabled {
                ("disabled", "false", "Enable", String::new(), "")
            } else {
                (
                    "active",
                    "true",
                    "Disable",
                    format!(
                        " data-confirm=\"Disable end user {}? Every request for them is refused and their live sessions end.\"",
                        esc(&u.external_id)
                    ),
                    "danger",
                )
            };
            format!(
                "<tr data-end-user=\"{id}\"><td>{id}</td><td>{name}</td><td data-testid=\"end-user-status\">{status}</td>\
                 <td>{scope}</td><td>{link} \
                 <form method=\"post\" action=\"/console/orgs/{o}/end-users/{iu}/disabled\" class=\"inline\"{confirm}>{csrf}\
                 <input type=\"hidden\" name=\"disabled\" value=\"{to}\">\
                 <button type=\"submit\" class=\"{class}\" aria-label=\"{label} end user {id}\">{label}</button></form></td></tr>",
                id = esc(&u.external_id),
                iu = url(&u.external_id),
                name = esc(&u.name),
                scope = esc(&scope_text(&u.scope)),
                link = scope_link(&path.org, "end-user", &u.external_id),
                csrf = csrf_field(&console),
            )
        })
        .collect();
    let create = format!(
        "<form method=\"post\" class=\"card\">{csrf}<label for=\"external_id\">External id</label>\
         <input id=\"external_id\" name=\"external_id\" required><label for=\"name\">Name</label>\
         <input id=\"name\" name=\"name\"><button type=\"submit\">Create end user</button></form>",
        csrf = csrf_field(&console)
    );
    let body = page_list(
        "End users",
        &path.org,
        &["external id", "name", "status", "scope", ""],
        rows,
        create,
    );
    Ok(Page::new("End users", body)
        .org(&path.org)
        .render(&console, &state))
}

pub async fn create_end_user(
    State(state): State<ConsoleState>,
    path: OrgPath,
    checked: Checked,
) -> Result<Response, ConsoleError> {
    let f = &checked.form;
    let body = CreateEndUser {
        external_id: f.required("external_id")?,
        name: f.optional("name"),
        scope: None,
    };
    ops::create_end_user(&state.admin, &checked.console.admin, &path.org, body).await?;
    Ok(see_other(&format!(
        "/console/orgs/{}/end-users",
        url(&path.org)
    )))
}

/// `POST …/end-users/{external_id}/disabled`: disable (confirmed) or enable
/// one person, through `ops::patch_end_user` as the API does.
pub async fn set_end_user_disabled(
    State(state): State<ConsoleState>,
    axum::extract::Path((org, external_id)): axum::extract::Path<(String, String)>,
    checked: Checked,
) -> Result<Response, ConsoleError> {
    let disabled = match checked.form.get("disabled") {
        Some("true") => true,
        Some("false") => false,
        _ => {
            return Err(ConsoleError::BadInput(
                "disabled must be true or false".into(),
            ))
        }
    };
    let body = PatchEndUser {
        name: None,
        disabled: Some(disabled),
    };
    ops::patch_end_user(
        &state.admin,
        &checked.console.admin,
        &org,
        &external_id,
        body,
    )
    .await?;
    Ok(see_other(&format!("/console/orgs/{}/end-users", url(&org))))
}

pub async fn toolsets(
    console: Console,
    State(state): State<ConsoleState>,
    path: OrgPath,
) -> Result<Html<String>, ConsoleError> {
    let list = ops::list_toolsets(
        &state.admin,
        &console.admin,
        &path.org,
        ListParams::default(),
    )
    .await?;
    let rows: String = list
        .items
        .iter()
        .map(|t| {
            let servers = t
                .servers
                .iter()
                .map(|(s, f)| format!("{s}: {}", filter_text(f)))
                .collect::<Vec<_>>()
                .join("; ");
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&t.slug),
                esc(&t.name),
                esc(&servers),
                scope_link(&path.org, "toolset", &t.slug)
            )
        })
        .collect();
    let create = format!(
        "<form method=\"post\" class=\"card\">{csrf}<label for=\"slug\">Slug</label>\
         <input id=\"slug\" name=\"slug\" required><label for=\"name\">Name</label><input id=\"name\" name=\"name\">\
         <button type=\"submit\">Create toolset</button></form>",
        csrf = csrf_field(&console)
    );
    let body = page_list(
        "Toolsets",
        &path.org,
        &["slug", "name", "servers", ""],
        rows,
        create,
    );
    Ok(Page::new("Toolsets", body)
        .org(&path.org)
        .render(&console, &state))
}

pub async fn create_toolset(
    State(state): State<ConsoleState>,
    path: OrgPath,
    checked: Checked,
) -> Result<Response, ConsoleError> {
    let f = &checked.form;
    let body = CreateToolset {
        slug: f.required("slug")?,
        name: f.optional("name"),
        servers: Default::default(),
    };
    let w = ops::create_toolset(&state.admin, &checked.console.admin, &path.org, body).await?;
    Ok(see_other(&format!(
        "/console/orgs/{}/scope/toolset/{}",
        url(&path.org),
        url(&w.item.slug)
    )))
}
