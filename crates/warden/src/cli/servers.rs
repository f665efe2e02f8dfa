//! `warden server add|list|enable|disable|delete`: global servers over
//! `/admin/v1/servers`, an org's own with `--org`.

use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use super::client::{self, AdminClient};
use super::Output;
use crate::error::WardenError;

#[derive(Debug, Clone, Subcommand)]
pub enum ServerCommand {
    /// Add a server reached over Streamable HTTP (`--upstream-url`) or stdio (`--command`).
    Add(ServerAddArgs),
    /// List the global servers, or an org's own with --org.
    List {
        /// List the servers an org owns instead of the global ones.
        #[arg(long)]
        org: Option<String>,
    },
    /// Switch a server on (gateway-wide kill switch, or the org's own server).
    Enable(ServerRef),
    /// Switch a server off everywhere it is used.
    Disable(ServerRef),
    /// Delete a server and every grant of it.
    Delete(ServerRef),
}

#[derive(Debug, Clone, Args)]
pub struct ServerRef {
    /// The server's slug.
    pub slug: String,
    /// The org owning the server (omit for a global server).
    #[arg(long)]
    pub org: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ServerAddArgs {
    /// The new server's slug (lowercase words joined by hyphens).
    pub slug: String,
    /// Make the server owned by this org (visible only to it).
    #[arg(long)]
    pub org: Option<String>,
    /// Streamable HTTP endpoint of the upstream.
    #[arg(long = "upstream-url", conflicts_with = "command")]
    pub upstream_url: Option<String>,
    /// Command to spawn for a stdio upstream.
    #[arg(long)]
    pub command: Option<String>,
    /// Arguments of the stdio command.
    #[arg(long = "arg", requires = "command")]
    pub args: Vec<String>,
    /// Secret header sent upstream (NAME=VALUE), write-only. Repeatable.
    #[arg(long = "secret-header", value_parser = parse_pair)]
    pub secret_headers: Vec<(String, String)>,
    /// Upstream request timeout in milliseconds.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Create the server switched off.
    #[arg(long)]
    pub disabled: bool,
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
}

fn server_path(org: Option<&str>, slug: Option<&str>) -> String {
    let base = match org {
        Some(org) => format!("/admin/v1/orgs/{}/servers", client::seg(org)),
        None => "/admin/v1/servers".to_owned(),
    };
    match slug {
        Some(slug) => format!("{base}/{}", client::seg(slug)),
        None => base,
    }
}

pub(super) async fn run_server(
    api: &AdminClient,
    out: &mut Output,
    c: ServerCommand,
) -> Result<(), WardenError> {
    match c {
        ServerCommand::Add(a) => {
            let transport = match (a.upstream_url, a.command) {
                (Some(url), None) => json!({ "type": "http", "url": url }),
                (None, Some(command)) => {
                    json!({ "type": "stdio", "command": command, "args": a.args })
                }
                _ => {
                    return Err(WardenError::BadArgument(
                        "give exactly one of --upstream-url or --command".into(),
                    ))
                }
            };
            let headers: Map<String, Value> = a
                .secret_headers
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            let mut body = json!({
                "slug": a.slug,
                "transport": transport,
                "secret_headers": headers,
                "enabled": !a.disabled,
            });
            if let Some(t) = a.timeout_ms {
                body["timeout_ms"] = json!(t);
            }
            let v = api
                .post(&server_path(a.org.as_deref(), None), &body)
                .await?;
            out.written(&v);
        }
        ServerCommand::List { org } => {
            let v = api.get(&server_path(org.as_deref(), None)).await?;
            out.list(
                &v,
                &[
                    "slug",
                    "owner_org",
                    "enabled",
                    "transport",
                    "secret_header_names",
                ],
            );
        }
        ServerCommand::Enable(r) => {
            let path = server_path(r.org.as_deref(), Some(&r.slug));
            let v = api.patch(&path, &json!({ "enabled": true })).await?;
            out.written(&v);
        }
        ServerCommand::Disable(r) => {
            let path = server_path(r.org.as_deref(), Some(&r.slug));
            let v = api.patch(&path, &json!({ "enabled": false })).await?;
            out.written(&v);
        }
        ServerCommand::Delete(r) => {
            let v = api
                .delete(&server_path(r.org.as_deref(), Some(&r.slug)))
                .await?;
            out.written(&v);
        }
    }
    Ok(())
}
