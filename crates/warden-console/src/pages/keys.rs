//! An org's keys: list, create (the secret is shown once, in the answer to
//! the form post, never in a URL), revoke (confirmed), expiry.

use axum::extract::{Path, State};
use axum::response::{Html, Response};
use serde::Deserialize;
use warden_admin::dto::{CreateKey, ListParams};
use warden_admin::ops;

use super::principals::scope_text;
use super::{see_other, Checked, OrgPath};
use crate::error::ConsoleError;
use crate::html::{csrf_field, esc, url, Page};
use crate::session::Console;
use crate::ConsoleState;

pub async fn list(
    console: Console,
    State(state): State<ConsoleState>,
    path: OrgPath,
) -> Result<Html<String>, ConsoleError> {
    let s = &state.admin;
    let keys = ops::list_keys(s, &console.admin, &path.org, ListParams::default()).await?;
    let teams = ops::list_teams(s, &console.admin, &path.org, ListParams::default()).await?;
    let agents = ops::list_agents(s, &console.admin, &path.org, ListParams::default()).await?;
    let o = url(&path.org);
    let mut rows = String::new();
    for k in &keys.items {
        let status = if k.revoked { "revoked" } else { "active" };
        let revoke = if k.revoked {
            String::new()
        } else {
            format!(
                "<form method=\"post\" action=\"/console/orgs/{o}/keys/{id}/revoke\" class=\"inline\" \
                 data-confirm=\"Revoke key {id} ({name})? Its sessions end at once; this cannot be undone.\">{csrf}\
                 <button type=\"submit\" class=\"danger\" aria-label=\"Revoke key {id}\">Revoke</button></form>",
                id = k.id,
                name = esc(&k.name),
                csrf = csrf_field(&console),
            )
        };
        rows.push_str(&format!(
            "<tr><td>{id}</td><td>{name}</td><td><code>{prefix}…</code></td><td>{team}</td><td>{agent}</td>\
             <td>{status}</td><td>{exp}</td><td>{scope}</td>\
             <td><a href=\"/console/orgs/{o}/scope/key/{id}\">Edit scope</a> \
             <a href=\"/console/orgs/{o}/access?key={id}\">Access</a> {revoke}</td></tr>",
            id = k.id,
            name = esc(&k.name),
            prefix = esc(&k.token_prefix),
            team = esc(k.team.as_deref().unwrap_or("")),
            agent = esc(k.agent.as_deref().unwrap_or("")),
            exp = esc(k.expires_at.as_deref().unwrap_or("never")),
            scope = esc(&scope_text(&k.scope)),
        ));
    }
    if keys.items.is_empty() {
        rows.push_str("<tr><td colspan=\"9\">No keys yet.</td></tr>");
    }
    let mut team_opts = String::from("<option value=\"\">(no team)</option>");
    for t in &teams.items {
        team_opts.push_str(&format!("<option value=\"{0}\">{0}</option>", esc(&t.slug)));
    }
    let mut agent_opts = String::from("<option value=\"\">(not bound to an agent)</option>");
    for a in &agents.items {
        agent_opts.push_str(&format!("<option value=\"{0}\">{0}</option>", esc(&a.slug)));
    }
    let body = format!(
        "<h1>Keys of {org}</h1><table><thead><tr><th scope=\"col\">id</th><th scope=\"col\">name</th>\
         <th scope=\"col\">prefix</th><th scope=\"col\">team</th><th scope=\"col\">agent</th><th scope=\"col\">status</th>\
         <th scope=\"col\">expires</th><th scope=\"col\">scope</th><th scope=\"col\">actions</th></tr></thead>\
         <tbody>{rows}</tbody></table>\
         <section><h2>Create a key</h2><form method=\"post\" class=\"card\">{csrf}\
         <label for=\"name\">Name</label><input id=\"name\" name=\"name\" required>\
         <label for=\"team\">Team</label><select id=\"team\" name=\"team\">{team_opts}</select>\
         <label for=\"agent\">Agent</label><select id=\"agent\" name=\"agent\">{agent_opts}</select>\
         <label for=\"expires\">Expires on (UTC, optional)</label><input id=\"expires\" name=\"expires\" type=\"date\">\
         <label class=\"check\"><input type=\"checkbox\" name=\"may_assert_end_user\" value=\"true\"> may act for end users</label>\
         <label class=\"check\"><input type=\"checkbox\" name=\"may_assert_agent\" value=\"true\"> may name an agent</label>\
         <button type=\"submit\">Create key</button></form></section>",
        org = esc(&path.org),
        csrf = csrf_field(&console),
    );
    Ok(Page::new("Keys", body)
        .org(&path.org)
        .render(&console, &state))
}

pub async fn create(
    State(state): State<ConsoleState>,
    path: OrgPath,
    checked: Checked,
) -> Result<Html<String>, ConsoleError> {
    let f = &checked.form;
    let expires_at = match f.optional("expires") {
        None => None,
        Some(d) if d.len() == 10 && d.as_bytes()[4] == b'-' && d.as_bytes()[7] == b'-' => {
            Some(format!("{d}T00:00:00Z"))
        }
        Some(_) => {
            return Err(ConsoleError::BadInput(
                "expires must be a date (YYYY-MM-DD)".into(),
            ))
        }
    };
    let body = CreateKey {
        name: f.required("name")?,
        team: f.optional("team"),
        agent: f.optional("agent"),
        expires_at,
        may_assert_end_user: f.get("may_assert_end_user") == Some("true"),
        may_assert_agent: f.get("may_assert_agent") == Some("true"),
        scope: None,
    };
    let console = &checked.console;
    let created = ops::create_key(&state.admin, &console.admin, &path.org, body).await?;
    let body = format!(
        "<h1>Key {id} created</h1>\
         <p role=\"alert\">Copy the secret now: it is shown only this once and Warden keeps only its digest.</p>\
         <p><label for=\"secret\">Secret of key {id}</label>\
         <input id=\"secret\" data-testid=\"key-secret\" readonly value=\"{secret}\" class=\"secret\"></p>\
         <p><a href=\"/console/orgs/{o}/keys\">Back to the keys</a></p>",
        id = created.item.id,
        secret = esc(&created.secret),
        o = url(&path.org),
    );
    Ok(Page::new("Key created", body)
        .org(&path.org)
        .render(console, &state))
}

#[derive(Deserialize)]
pub struct KeyPath {
    org: String,
    id: String,
}

pub async fn revoke(
    State(state): State<ConsoleState>,
    Path(p): Path<KeyPath>,
    checked: Checked,
) -> Result<Response, ConsoleError> {
    let id: i64 =
        p.id.parse()
            .map_err(|_| ConsoleError::NotFound(format!("key {}", p.id)))?;
    ops::revoke_key(&state.admin, &checked.console.admin, &p.org, id).await?;
    Ok(see_other(&format!("/console/orgs/{}/keys", url(&p.org))))
}
