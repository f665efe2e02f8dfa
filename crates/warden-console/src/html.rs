//! HTML building: escaping, the page layout, the embedded assets.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};
use warden_policy::{Principal, Snapshot, ToolFilter};

use crate::session::Console;
use crate::ConsoleState;

const CSS: &str = include_str!("../assets/console.css");
const JS: &str = include_str!("../assets/console.js");

pub async fn css() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=300"),
        ],
        CSS,
    )
        .into_response()
}

pub async fn js() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=300"),
        ],
        JS,
    )
        .into_response()
}

/// Escapes text for HTML content and double-quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a URL path segment or query value.
pub fn url(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339, as the API writes times.
pub fn format_time(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The hidden CSRF field every state-changing form carries.
pub fn csrf_field(console: &Console) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(&console.csrf)
    )
}

/// A filter as people read it.
pub fn filter_text(f: &ToolFilter) -> String {
    match f {
        ToolFilter::All => "all tools".into(),
        ToolFilter::Only(t) if t.is_empty() => "no tools".into(),
        ToolFilter::Only(t) => t.iter().cloned().collect::<Vec<_>>().join(", "),
        ToolFilter::Except(t) => format!(
            "all but {}",
            t.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
    }
}

/// "key 3 (name) · agent x · end user y".
pub fn principal_label(snapshot: &Snapshot, p: &Principal) -> String {
    let mut s = format!("key {}", p.key.0);
    if let Some(a) = p.agent.and_then(|a| snapshot.agent(a)) {
        s.push_str(&format!(" · agent {}", a.slug));
    }
    if let Some(u) = p.end_user.and_then(|u| snapshot.end_user(u)) {
        s.push_str(&format!(" · end user {}", u.external_id));
    }
    s
}

/// A whole document with no navigation (sign-in, errors).
pub fn bare_page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Warden console</title>\
         <link rel=\"stylesheet\" href=\"/console/assets/console.css\">\
         <script src=\"/console/assets/console.js\" defer></script></head>\
         <body>{body}</body></html>",
        esc(title)
    )
}

/// A console page: header with who is signed in, navigation (org pages when
/// `org` is set), the body.
pub struct Page {
    title: String,
    body: String,
    org: Option<String>,
}

impl Page {
    pub fn new(title: &str, body: String) -> Page {
        Page {
            title: title.to_owned(),
            body,
            org: None,
        }
    }

    pub fn org(mut self, slug: &str) -> Page {
        self.org = Some(slug.to_owned());
        self
    }

    pub fn render(self, console: &Console, state: &ConsoleState) -> Html<String> {
        let mut nav = String::from("<a href=\"/console/orgs\">Orgs</a>");
        if let Some(org) = &self.org {
            let o = url(org);
            for (path, label) in [
                ("", "Servers & grants"),
                ("/teams", "Teams"),
                ("/agents", "Agents"),
                ("/end-users", "End users"),
                ("/keys", "Keys"),
                ("/toolsets", "Toolsets"),
                ("/explain", "Explain"),
                ("/access", "Effective access"),
                ("/live", "Live"),
            ] {
                nav.push_str(&format!("<a href=\"/console/orgs/{o}{path}\">{label}</a>"));
            }
            nav.push_str(&format!("<a href=\"/console/audit?org={o}\">Audit</a>"));
        } else {
            nav.push_str("<a href=\"/console/audit\">Audit</a>");
            if console.admin.is_platform() {
                nav.push_str(
                    "<a href=\"/console/servers\">Servers</a>\
                     <a href=\"/console/replicas\">Replicas</a>\
                     <a href=\"/console/admin-tokens\">Admin tokens</a>",
                );
            }
        }
        let role = if console.admin.is_platform() {
            "platform admin"
        } else {
            "org admin"
        };
        let body = format!(
            "<a class=\"skip\" href=\"#main\">Skip to content</a>\
             <header><span class=\"brand\">Warden console</span>\
             <nav aria-label=\"Main\">{nav}</nav>\
             <span class=\"who\" data-testid=\"who\">{name} ({role})</span>\
             <form method=\"post\" action=\"/console/logout\" class=\"inline\">{csrf}\
             <button type=\"submit\">Sign out</button></form></header>\
             <div id=\"revision-banner\" role=\"status\" aria-live=\"polite\" hidden></div>\
             <main id=\"main\" data-revision=\"{rev}\">{body}</main>",
            name = esc(&console.admin.name),
            csrf = csrf_field(console),
            rev = state.admin.live().revision(),
            body = self.body,
        );
        Html(bare_page(&self.title, &body))
    }
}
