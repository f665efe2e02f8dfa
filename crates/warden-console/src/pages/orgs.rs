//! Orgs: the list (platform admins create and suspend), and one org's
//! overview: its servers and grants, each with its switch.

use axum::extract::State;
use axum::response::{Html, Response};
use warden_admin::dto::{CreateOrg, CreateServer, PatchOrg, PutGrant, TransportSpec};
use warden_admin::ops;

use super::{see_other, Checked, OrgPath};
use crate::error::ConsoleError;
use crate::html::{csrf_field, esc, filter_text, url, Page};
use crate::session::Console;
use crate::ConsoleState;

pub async fn list(
    console: Console,
    State(state): State<ConsoleState>,
) -> Result<Html<String>, ConsoleError> {
    let orgs = ops::list_orgs(&state.admin, &console.admin).await?;
    let mut rows = String::new();
    for o in &orgs.items {
        let action = if console.admin.is_platform() {
            let (label, value, confirm) = if o.suspended {
                ("Resume", "false", "")
            } else {
                (
                    "Suspend",
                    "true",
                    " data-confirm=\"Suspend this org? Every key of it stops working at once.\"",
                )
            };
            format!(
                "<form method=\"post\" action=\"/console/orgs/{u}/suspend\" class=\"inline\"{confirm}>{csrf}\
                 <input type=\"hidden\" name=\"suspended\" value=\"{value}\">\
                 <button type=\"submit\" aria-label=\"{label} {s}\">{label}</button></form>",
                u = url(&o.slug),
                s = esc(&o.slug),
                csrf = csrf_field(&console),
            )
        } else {
            String::new()
        };
        rows.push_str(&format!(
            "<tr><td><a href=\"/console/orgs/{u}\">{s}</a></td><td>{n}</td><td>{st}</td><td>{action}</td></tr>",
            u = url(&o.slug),
            s = esc(&o.slug),
            n = esc(&o.name),
            st = if o.suspended { "suspended" } else { "active" },
        ));
    }
    let create = if console.admin.is_platform() {
        format!(
            "<section><h2>Create an org</h2><form method=\"post\" action=\"/console/orgs\" class=\"card\">{csrf}\
             <label for=\"slug\">Slug</label><input id=\"slug\" name=\"slug\" required pattern=\"[a-z0-9][a-z0-9-]*\">\
             <label for=\"name\">Name</label><input id=\"name\" name=\"name\">\
             <button type=\"submit\">Create org</button></form></section>",
            csrf = csrf_field(&console)
        )
    } else {
        String::new()
    };
    let body = format!(
        "<h1>Orgs</h1><table><caption>Orgs you administer</caption><thead><tr><th scope=\"col\">slug</th>\
         <th scope=\"col\">name</th><th scope=\"col\">status</th><th scope=\"col\">actions</th></tr></thead>\
         <tbody>{rows}</tbody></table>{create}"
    );
    Ok(Page::new("Orgs", body).render(&console, &state))
}

pub async fn create(
    State(state): State<ConsoleState>,
    checked: Checked,
) -> Result<Response, ConsoleError> {
    let body = CreateOrg {
        slug: checked.form.required("slug")?,
        name: checked.form.optional("name"),
    };
    let w = ops::create_org(&state.admin, &checked.console.admin, body).await?;
    Ok(see_other(&format!("/console/orgs/{}", url(&w.item.slug))))
}

pub async fn suspend(
    State(state): State<ConsoleState>,
    path: OrgPath,
    checked: Checked,
) -> Result<Response, ConsoleError> {
    let suspended = checked.form.get("suspended") == Some("true");
    let body = PatchOrg {
        name: None,
        suspended: Some(suspended),
    };
    ops::patch_org(&state.admin, &checked.console.admin, &path.org, body).await?;
    Ok(see_other("/console/orgs"))
}

/// One org: its grants (global and own servers), with switches, filters
/// and links to the pickers.
pub async fn show(
    console: Console,
    State(state): State<ConsoleState>,
    path: OrgPath,
) -> Result<Html<String>, ConsoleError> {
    let s = &state.admin;
    let org = ops::get_org(s, &console.admin, &path.org).await?;
    let grants = ops::list_grants(s, &console.admin, &org.slug).await?;
    let own = ops::list_servers(s, &console.admin, Some(&org.slug)).await?;
    let snapshot = s.snapshot();
    let o = url(&org.slug);
    let mut rows = String::new();
    for g in &grants.items {
        let server = snapshot
            .org_by_slug(&org.slug)
            .and_then(|org| snapshot.server_for_org(org.id, &g.server));
        let tools = server
            .and_then(|srv| s.catalog().tool_names(srv.id))
            .map(|mut t| {
                t.sort();
                t.join(", ")
            })
            .unwrap_or_else(|| "catalog not loaded yet".into());
        let gateway_on = server.is_some_and(|srv| srv.enabled);
        let (label, to) = if g.enabled {
            ("Switch off", "false")
        } else {
            ("Switch on", "true")
        };
        rows.push_str(&format!(
            "<tr data-server=\"{sv}\"><td>{sv}</td>\
             <td data-testid=\"grant-state\">{state}</td><td>{filter}</td><td class=\"tools\">{tools}</td>\
             <td><a class=\"button\" href=\"/console/orgs/{o}/grants/{su}/switch?enabled={to}\">{label}</a> \
             <a href=\"/console/orgs/{o}/grants/{su}\">Tool filter</a></td></tr>",
            sv = esc(&g.server),
            su = url(&g.server),
            state = match (g.enabled, gateway_on) {
                (true, true) => "on",
                (true, false) => "on (server off at the gateway)",
                (false, _) => "off",
            },
            filter = esc(&filter_text(&g.filter)),
            tools = esc(&tools),
        ));
    }
    if grants.items.is_empty() {
        rows.push_str("<tr><td colspan=\"5\">No server is granted to this org.</td></tr>");
    }
    let granted: std::collections::HashSet<&str> =
        grants.items.iter().map(|g| g.server.as_str()).collect();
    let mut own_list = String::new();
    for v in &own.items {
        let action = if granted.contains(v.slug.as_str()) {
            String::new()
        } else {
            format!(
                "<form method=\"post\" action=\"/console/orgs/{o}/servers/{su}/grant\" class=\"inline\">{csrf}\
                 <button type=\"submit\" aria-label=\"Grant {sv} to the org\">Grant to the org</button></form>",
                su = url(&v.slug),
                sv = esc(&v.slug),
                csrf = csrf_field(&console),
            )
        };
        own_list.push_str(&format!(
            "<li data-own-server=\"{sv}\">{sv} ({state}{secrets}) {action}</li>",
            sv = esc(&v.slug),
            state = if v.enabled { "enabled" } else { "disabled" },
            secrets = if v.secret_header_names.is_empty() {
                String::new()
            } else {
                format!(
                    ", secret headers: {}",
                    esc(&v.secret_header_names.join(", "))
                )
            },
        ));
    }
    let add_server = format!(
        "<form method=\"post\" action=\"/console/orgs/{o}/servers\" class=\"card\">{csrf}\
         <label for=\"server_slug\">Slug</label><input id=\"server_slug\" name=\"slug\" required>\
         <label for=\"server_url\">URL (HTTP; the platform's egress rules apply)</label>\
         <input id=\"server_url\" name=\"url\" type=\"url\" required>\
         <label for=\"secret_name\">Secret header name (optional)</label><input id=\"secret_name\" name=\"secret_name\">\
         <label for=\"secret_value\">Secret header value (never shown again)</label>\
         <input id=\"secret_value\" name=\"secret_value\" type=\"password\" autocomplete=\"off\">\
         <button type=\"submit\">Add org server</button></form>",
        csrf = csrf_field(&console),
    );
    let body = format!(
        "<h1>{name} <small>({slug}{susp})</small></h1>\
         <section><h2>Servers granted to the org</h2>\
         <table><caption>Each switch and filter applies to every team, agent, end user and key of the org.</caption>\
         <thead><tr><th scope=\"col\">server</th><th scope=\"col\">switch</th><th scope=\"col\">tool filter</th>\
         <th scope=\"col\">live catalog</th><th scope=\"col\">actions</th></tr></thead><tbody>{rows}</tbody></table></section>\
         <section><h2>The org's own servers</h2><ul>{own_list}</ul>\
         <h3>Add a server of the org's own</h3>{add_server}</section>",
        name = esc(if org.name.is_empty() { &org.slug } else { &org.name }),
        slug = esc(&org.slug),
        susp = if org.suspended { ", suspended" } else { "" },
        own_list = if own_list.is_empty() { "<li>none</li>".into() } else { own_list },
    );
    Ok(Page::new(&org.slug, body)
        .org(&org.slug)
        .render(&console, &state))
}

/// `POST /console/orgs/{org}/servers`: an HTTP server owned by the org
/// (`ops::create_server` applies the egress policy to an org admin's URL).
pub async fn create_own_server(
    State(state): State<ConsoleState>,
    path: OrgPath,
    checked: Checked,
) -> Result<Response, ConsoleError> {
    let f = &checked.form;
    let mut secret_headers = std::collections::BTreeMap::new();
    if let Some(name) = f.optional("secret_name") {
        secret_headers.insert(name, f.get("secret_value").unwrap_or("").to_owned());
    }
    let body = CreateServer {
        slug: f.required("slug")?,
        name: None,
        transport: TransportSpec::Http {
            url: f.required("url")?,
        },
        secret_headers,
        enabled: true,
        timeout_ms: None,
    };
    ops::create_server(&state.admin, &checked.console.admin, Some(&path.org), body).await?;
    Ok(see_other(&format!("/console/orgs/{}", url(&path.org))))
}

#[derive(serde::Deserialize)]
pub struct OwnServerPath {
    org: String,
    server: String,
}

/// `POST /console/orgs/{org}/servers/{server}/grant`: grants one of the
/// org's own servers to the org (all tools; narrow it with the filter).
pub async fn grant_own_server(
    State(state): State<ConsoleState>,
    axum::extract::Path(p): axum::extract::Path<OwnServerPath>,
    checked: Checked,
) -> Result<Response, ConsoleError> {
    let body = PutGrant {
        enabled: true,
        filter: warden_policy::ToolFilter::All,
    };
    ops::put_grant(
        &state.admin,
        &checked.console.admin,
        &p.org,
        &p.server,
        body,
    )
    .await?;
    Ok(see_other(&format!("/console/orgs/{}", url(&p.org))))
}
