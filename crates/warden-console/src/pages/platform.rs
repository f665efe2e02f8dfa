//! Platform admin pages: global servers (add HTTP or stdio with write-only
//! secrets, the catalog, the gateway-wide switch with its impact across
//! every org), replicas with their applied revision, platform admin tokens.
//! Each calls the platform-only ops, which refuse an org admin (403) as the
//! API does.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::response::{Html, Response};
use serde::Deserialize;
use warden_admin::dto::{CreateAdminToken, CreateServer, PatchServer, TransportSpec};
use warden_admin::ops;
use warden_policy::PolicyChange;

use super::{see_other, Checked};
use crate::error::ConsoleError;
use crate::html::{csrf_field, esc, url, Page};
use crate::session::Console;
use crate::ConsoleState;

pub async fn servers(
    console: Console,
    State(state): State<ConsoleState>,
) -> Result<Html<String>, ConsoleError> {
    let s = &state.admin;
    let list = ops::list_servers(s, &console.admin, None).await?;
    let snapshot = s.snapshot();
    let mut rows = String::new();
    for v in &list.items {
        let id = snapshot
            .servers()
            .find(|r| r.slug == v.slug && r.owner_org.is_none())
            .map(|r| r.id);
        let tools = match id.and_then(|id| state.live.tool_descriptions(id)) {
            Some(tools) if !tools.is_empty() => {
                let items: String = tools
                    .iter()
                    .map(|(name, description)| {
                        format!(
                            "<li><code>{}</code> {}</li>",
                            esc(name),
                            esc(&truncate(description, 200))
                        )
                    })
                    .collect();
                format!("<ul class=\"catalog\">{items}</ul>")
            }
            _ => esc(&id
                .and_then(|id| s.catalog().tool_names(id))
                .map(|mut t| {
                    t.sort();
                    t.join(", ")
                })
                .unwrap_or_else(|| "catalog not loaded".into())),
        };
        let health = match id.and_then(|id| state.live.server_health(id)) {
            Some(h) if h.ready => "connected".to_owned(),
            Some(h) => match h.failure {
                Some(f) => format!("down: {}", truncate(&f, 300)),
                None => "connecting".to_owned(),
            },
            None => "no connection (switched off or not loaded)".to_owned(),
        };
        let transport = match &v.transport {
            TransportSpec::Http { url } => format!("HTTP {url}"),
            TransportSpec::Stdio { command, args, .. } => {
                format!("stdio {command} {}", args.join(" "))
            }
        };
        let (label, to) = if v.enabled {
            ("Switch off everywhere", "false")
        } else {
            ("Switch on", "true")
        };
        rows.push_str(&format!(
            "<tr data-server=\"{sv}\"><td>{sv}</td><td>{tr}</td><td>{st}</td><td data-testid=\"health\">{health}</td>\
             <td>{secrets}</td><td class=\"tools\">{tools}</td>\
             <td><a class=\"button\" href=\"/console/servers/{su}/switch?enabled={to}\">{label}</a> \
             <a href=\"/console/servers/{su}/edit\" aria-label=\"Edit server {sv}\">Edit</a></td></tr>",
            sv = esc(&v.slug),
            su = url(&v.slug),
            tr = esc(&transport),
            st = if v.enabled { "on" } else { "off (gateway-wide)" },
            health = esc(&health),
            secrets = esc(&v.secret_header_names.join(", ")),
        ));
    }
    if list.items.is_empty() {
        rows.push_str("<tr><td colspan=\"7\">No global server yet.</td></tr>");
    }
    let body = format!(
        "<h1>Global servers</h1><table><thead><tr><th scope=\"col\">server</th><th scope=\"col\">transport</th>\
         <th scope=\"col\">switch</th><th scope=\"col\">health</th><th scope=\"col\">secret headers (write-only)</th><th scope=\"col\">live catalog</th>\
         <th scope=\"col\">actions</th></tr></thead><tbody>{rows}</tbody></table>\
         <section><h2>Add a server</h2><form method=\"post\" class=\"card\">{csrf}\
         <label for=\"slug\">Slug</label><input id=\"slug\" name=\"slug\" required>\
         <fieldset><legend>Transport</legend>\
         <label class=\"check\"><input type=\"radio\" name=\"transport\" value=\"http\" checked> HTTP</label>\
         <label class=\"check\"><input type=\"radio\" name=\"transport\" value=\"stdio\"> stdio</label></fieldset>\
         <label for=\"url\">URL (HTTP)</label><input id=\"url\" name=\"url\" type=\"url\">\
         <label for=\"command\">Command (stdio)</label><input id=\"command\" name=\"command\">\
         <label for=\"args\">Arguments (stdio, space-separated)</label><input id=\"args\" name=\"args\">\
         <label for=\"secret_name\">Secret header name (optional)</label><input id=\"secret_name\" name=\"secret_name\">\
         <label for=\"secret_value\">Secret header value (never shown again)</label>\
         <input id=\"secret_value\" name=\"secret_value\" type=\"password\" autocomplete=\"off\">\
         <button type=\"submit\">Add server</button></form></section>",
        csrf = csrf_field(&console),
    );
    Ok(Page::new("Servers", body).render(&console, &state))
}

pub async fn create_server(
    State(state): State<ConsoleState>,
    checked: Checked,
) -> Result<Response, ConsoleError> {
    let f = &checked.form;
    let transport = match f.get("transport") {
        Some("stdio") => TransportSpec::Stdio {
            command: f.required("command")?,
            args: f
                .optional("args")
                .map(|a| a.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
            env: BTreeMap::new(),
        },
        _ => TransportSpec::Http {
            url: f.required("url")?,
        },
    };
    let mut secret_headers = BTreeMap::new();
    if let Some(name) = f.optional("secret_name") {
        secret_headers.insert(name, f.get("secret_value").unwrap_or("").to_owned());
    }
    let body = CreateServer {
        slug: f.required("slug")?,
        name: None,
        transport,
        secret_headers,
        enabled: true,
        timeout_ms: None,
    };
    ops::create_server(&state.admin, &checked.console.admin, None, body).await?;
    Ok(see_other("/console/servers"))
}

/// Edit a global server: its URL or command, timeout, and secret headers
/// (write-only: their names are shown, a new value replaces them all).
pub async fn edit_server(
    console: Console,
    State(state): State<ConsoleState>,
    Path(server): Path<String>,
) -> Result<Html<String>, ConsoleError> {
    let v = ops::get_server(&state.admin, &console.admin, None, &server).await?;
    let transport = match &v.transport {
        TransportSpec::Http { url } => format!(
            "<label for=\"url\">URL</label><input id=\"url\" name=\"url\" type=\"url\" required value=\"{}\">",
            esc(url)
        ),
        TransportSpec::Stdio { command, args, .. } => format!(
            "<label for=\"command\">Command</label><input id=\"command\" name=\"command\" required value=\"{}\">\
             <label for=\"args\">Arguments (space-separated)</label><input id=\"args\" name=\"args\" value=\"{}\">",
            esc(command),
            esc(&args.join(" "))
        ),
    };
    let names = if v.secret_header_names.is_empty() {
        "none".to_owned()
    } else {
        v.secret_header_names.join(", ")
    };
    let body = format!(
        "<h1>Edit server {sv}</h1><form method=\"post\" class=\"card\">{csrf}\
         <label for=\"name\">Display name</label><input id=\"name\" name=\"name\" value=\"{name}\">\
         {transport}\
         <label for=\"timeout_ms\">Call timeout (ms)</label>\
         <input id=\"timeout_ms\" name=\"timeout_ms\" type=\"number\" min=\"1\" value=\"{timeout}\">\
         <p class=\"hint\" data-testid=\"secret-names\">Secret headers now: {names} (values are never shown).</p>\
         <label class=\"check\"><input type=\"checkbox\" name=\"replace_secrets\" value=\"true\"> \
         replace every secret header with the one below (leave the name empty to remove them all)</label>\
         <label for=\"secret_name\">Secret header name</label><input id=\"secret_name\" name=\"secret_name\">\
         <label for=\"secret_value\">Secret header value</label>\
         <input id=\"secret_value\" name=\"secret_value\" type=\"password\" autocomplete=\"off\">\
         <button type=\"submit\">Save server</button> <a href=\"/console/servers\">Cancel</a></form>",
        sv = esc(&v.slug),
        csrf = csrf_field(&console),
        name = esc(&v.name),
        timeout = v.timeout_ms,
        names = esc(&names),
    );
    Ok(Page::new("Edit server", body).render(&console, &state))
}

pub async fn save_server(
    State(state): State<ConsoleState>,
    Path(server): Path<String>,
    checked: Checked,
) -> Result<Response, ConsoleError> {
    let console = &checked.console;
    let current = ops::get_server(&state.admin, &console.admin, None, &server).await?;
    let f = &checked.form;
    let transport = match &current.transport {
        TransportSpec::Http { .. } => TransportSpec::Http {
            url: f.required("url")?,
        },
        TransportSpec::Stdio { env, .. } => TransportSpec::Stdio {
            command: f.required("command")?,
            args: f
                .optional("args")
                .map(|a| a.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
            env: env.clone(),
        },
    };
    let timeout_ms = match f.optional("timeout_ms") {
        None => None,
        Some(t) => Some(t.parse::<u64>().map_err(|_| {
            ConsoleError::BadInput("timeout_ms must be a whole number of milliseconds".into())
        })?),
    };
    let secret_headers = (f.get("replace_secrets") == Some("true")).then(|| {
        let mut h = BTreeMap::new();
        if let Some(name) = f.optional("secret_name") {
            h.insert(name, f.get("secret_value").unwrap_or("").to_owned());
        }
        h
    });
    let body = PatchServer {
        name: f.optional("name"),
        enabled: None,
        transport: Some(transport),
        secret_headers,
        timeout_ms,
    };
    ops::patch_server(&state.admin, &console.admin, None, &server, body).await?;
    Ok(see_other("/console/servers"))
}

#[derive(Deserialize)]
pub struct SwitchQuery {
    enabled: bool,
}

/// Before the gateway-wide switch: its impact on every org.
pub async fn server_impact(
    console: Console,
    State(state): State<ConsoleState>,
    Path(server): Path<String>,
    Query(q): Query<SwitchQuery>,
) -> Result<Html<String>, ConsoleError> {
    let view = ops::get_server(&state.admin, &console.admin, None, &server).await?;
    let snapshot = state.admin.snapshot();
    let mut row = snapshot
        .servers()
        .find(|r| r.slug == view.slug && r.owner_org.is_none())
        .cloned()
        .ok_or_else(|| ConsoleError::NotFound(format!("server {server}")))?;
    row.enabled = q.enabled;
    let sessions = state.live.sessions();
    let mut keys = Vec::new();
    for org in ops::list_orgs(&state.admin, &console.admin).await?.items {
        if let Some(o) = snapshot.org_by_slug(&org.slug) {
            keys.extend(snapshot.key_principals(o.id));
        }
    }
    let principals = super::impact::principals(keys, &sessions);
    let report = super::impact::render(
        &state,
        &snapshot,
        &PolicyChange::UpsertServer(row),
        &principals,
        &sessions,
    )?;
    let verb = if q.enabled { "on" } else { "off everywhere" };
    let body = format!(
        "<h1>Switch {sv} {verb}?</h1>{report}\
         <form method=\"post\" action=\"/console/servers/{su}/switch\" class=\"card\">{csrf}\
         <input type=\"hidden\" name=\"enabled\" value=\"{en}\">\
         <button type=\"submit\" class=\"{cls}\">Confirm: switch {verb}</button> \
         <a href=\"/console/servers\">Cancel</a></form>",
        sv = esc(&server),
        su = url(&server),
        csrf = csrf_field(&console),
        en = q.enabled,
        cls = if q.enabled { "" } else { "danger" },
    );
    Ok(Page::new("Impact", body).render(&console, &state))
}

pub async fn server_switch(
    State(state): State<ConsoleState>,
    Path(server): Path<String>,
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
    let body = PatchServer {
        name: None,
        enabled: Some(enabled),
        transport: None,
        secret_headers: None,
        timeout_ms: None,
    };
    ops::patch_server(&state.admin, &checked.console.admin, None, &server, body).await?;
    Ok(see_other("/console/servers"))
}

pub async fn replicas(
    console: Console,
    State(state): State<ConsoleState>,
) -> Result<Html<String>, ConsoleError> {
    console.admin.require_platform()?;
    let list = ops::list_replicas(&state.admin, &console.admin).await?;
    let rows: String = list
        .items
        .iter()
        .map(|r| {
            format!(
                "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.id),
                if r.current { " (this one)" } else { "" },
                r.applied_revision,
                if r.live { "live" } else { "gone" },
                esc(&r.started_at),
                esc(&r.heartbeat_at),
            )
        })
        .collect();
    let body = format!(
        "<h1>Replicas</h1><p>Policy revision here: {rev}.</p><table><thead><tr><th scope=\"col\">replica</th>\
         <th scope=\"col\">applied revision</th><th scope=\"col\">state</th><th scope=\"col\">started</th>\
         <th scope=\"col\">last heartbeat</th></tr></thead><tbody>{rows}</tbody></table>",
        rev = list.revision,
    );
    Ok(Page::new("Replicas", body).render(&console, &state))
}

pub async fn admin_tokens(
    console: Console,
    State(state): State<ConsoleState>,
) -> Result<Html<String>, ConsoleError> {
    let list = ops::list_platform_admin_tokens(&state.admin, &console.admin).await?;
    Ok(tokens_page(&console, &state, &list.items, None))
}

fn tokens_page(
    console: &Console,
    state: &ConsoleState,
    items: &[warden_admin::dto::AdminTokenView],
    created: Option<String>,
) -> Html<String> {
    let rows: String = items
        .iter()
        .map(|t| {
            format!(
                "<tr><td>{id}</td><td>{name}</td><td><code>{prefix}…</code></td><td>\
                 <form method=\"post\" action=\"/console/admin-tokens/{id}/delete\" class=\"inline\" \
                 data-confirm=\"Delete admin token {name}? Its console sessions end too.\">{csrf}\
                 <button type=\"submit\" class=\"danger\" aria-label=\"Delete admin token {name}\">Delete</button></form></td></tr>",
                id = t.id,
                name = esc(&t.name),
                prefix = esc(&t.token_prefix),
                csrf = csrf_field(console),
            )
        })
        .collect();
    let created = created
        .map(|secret| {
            format!(
                "<p role=\"alert\">Copy the new token now: it is shown only this once.</p>\
                 <p><label for=\"secret\">New admin token</label>\
                 <input id=\"secret\" data-testid=\"token-secret\" readonly value=\"{}\" class=\"secret\"></p>",
                esc(&secret)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<h1>Platform admin tokens</h1>{created}<table><thead><tr><th scope=\"col\">id</th><th scope=\"col\">name</th>\
         <th scope=\"col\">prefix</th><th scope=\"col\">actions</th></tr></thead><tbody>{rows}</tbody></table>\
         <section><h2>Create a platform admin token</h2><form method=\"post\" class=\"card\">{csrf}\
         <label for=\"name\">Name</label><input id=\"name\" name=\"name\" required>\
         <button type=\"submit\">Create token</button></form></section>",
        csrf = csrf_field(console),
    );
    Page::new("Admin tokens", body).render(console, state)
}

pub async fn create_admin_token(
    State(state): State<ConsoleState>,
    checked: Checked,
) -> Result<Html<String>, ConsoleError> {
    let body = CreateAdminToken {
        name: checked.form.required("name")?,
    };
    let console = &checked.console;
    let created = ops::create_platform_admin_token(&state.admin, &console.admin, body).await?;
    let list = ops::list_platform_admin_tokens(&state.admin, &console.admin).await?;
    Ok(tokens_page(
        console,
        &state,
        &list.items,
        Some(created.secret),
    ))
}

pub async fn delete_admin_token(
    State(state): State<ConsoleState>,
    Path(id): Path<String>,
    checked: Checked,
) -> Result<Response, ConsoleError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ConsoleError::NotFound(format!("admin token {id}")))?;
    ops::delete_platform_admin_token(&state.admin, &checked.console.admin, id).await?;
    Ok(see_other("/console/admin-tokens"))
}

/// At most `max` characters (an upstream's text is not ours to trust in size).
fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}
