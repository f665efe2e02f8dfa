//! `warden <admin subcommand>`: a thin client of the admin REST API
//! (`/admin/v1`). Every decision stays on the server; this only shapes
//! requests and prints answers (tables for people, `--json` for scripts).

mod admin_tokens;
mod agents;
mod client;
mod connections;
mod end_users;
mod grants;
mod idp;
mod inspect;
mod keys;
mod limits;
mod orgs;
mod output;
mod scopes;
mod servers;
mod table;
mod teams;
#[cfg(test)]
mod tests;
mod toolsets;

use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use client::AdminClient;
use output::Output;

use crate::error::WardenError;

pub use admin_tokens::AdminTokenCommand;
pub use agents::AgentCommand;
pub use end_users::EndUserCommand;
pub use grants::GrantCommand;
pub use inspect::{AccessArgs, AuditArgs, ExplainArgs};
pub use keys::KeyCommand;
pub use orgs::OrgCommand;
pub use scopes::ScopeCommand;
pub use servers::ServerCommand;
pub use teams::TeamCommand;
pub use toolsets::ToolsetCommand;

/// Default admin API address, also the default of `--url`.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

// Connection options of the admin subcommands (only of them: `serve` and
// `migrate` do not take them). `global` within each admin group, so they
// go before or after the group's subcommand (`warden key --json list acme`,
// `warden key list acme --json`). A plain comment: a doc comment here would
// become the `about` of every group it is added to.
#[derive(Debug, Clone, Args)]
pub struct AdminConnection {
    /// Base URL of a Warden admin API.
    #[arg(long, global = true, env = "WARDEN_URL", default_value = DEFAULT_URL)]
    pub url: String,
    /// Admin token (platform or org admin).
    #[arg(
        long,
        global = true,
        env = "WARDEN_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Print the API's raw JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Adds the connection options to each admin subcommand of `cmd` (the
/// top-level command, which has the [`AdminCommand`]s flattened into it).
pub fn with_connection_args(mut cmd: clap::Command) -> clap::Command {
    let admin = AdminCommand::augment_subcommands(clap::Command::new("admin"));
    for name in admin.get_subcommands().map(|c| c.get_name().to_owned()) {
        cmd = cmd.mut_subcommand(name, AdminConnection::augment_args);
    }
    cmd
}

/// Admin subcommands of the `warden` binary.
#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// Organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Upstream MCP servers (global, or owned by an org with --org).
    #[command(subcommand)]
    Server(ServerCommand),
    /// An org's grant of a server: set, enable, disable or remove it.
    #[command(subcommand)]
    Grant(GrantCommand),
    /// Teams of an org.
    #[command(subcommand)]
    Team(TeamCommand),
    /// Agents of an org.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// End users a service key may act for, by external id.
    #[command(subcommand)]
    EndUser(EndUserCommand),
    /// Named bundles of server grants of an org, referenced from scopes.
    #[command(subcommand)]
    Toolset(ToolsetCommand),
    /// Keys clients authenticate with.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Show or set the scope of a team, key, end user or agent.
    #[command(subcommand)]
    Scope(ScopeCommand),
    /// Admin API tokens: platform ones, or an org's with --org (platform admin).
    #[command(subcommand)]
    AdminToken(AdminTokenCommand),
    /// Explain the decision for one principal, server and tool.
    Explain(ExplainArgs),
    /// Effective access of a key (optionally acting for an end user/agent).
    Access(AccessArgs),
    /// Query the audit log.
    Audit(AuditArgs),
    /// Quotas and rate limits of an org.
    #[command(subcommand)]
    Limit(limits::LimitCommand),
    /// Identity providers people sign in with (platform admin).
    #[command(subcommand)]
    Idp(idp::IdpCommand),
    /// People's connections to servers that act on their own account.
    #[command(subcommand)]
    Connections(connections::ConnectionCommand),
    /// How Warden authenticates to a server upstream (static, per person).
    #[command(subcommand)]
    UpstreamAuth(connections::UpstreamAuthCommand),
}

/// Parses the CLI's compact filter syntax into the API's JSON form:
/// `*` -> `"*"`, `a,b` -> `["a","b"]`, `!c,d` -> `{"except":["c","d"]}`.
pub fn parse_filter(s: &str) -> Result<Value, WardenError> {
    let s = s.trim();
    let names = |list: &str| -> Vec<String> {
        list.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    };
    if s == "*" {
        Ok(json!("*"))
    } else if let Some(rest) = s.strip_prefix('!') {
        let except = names(rest);
        if except.is_empty() {
            return Err(WardenError::BadArgument(format!(
                "filter {s:?} names no tool after '!'"
            )));
        }
        Ok(json!({ "except": except }))
    } else {
        Ok(json!(names(s)))
    }
}

/// Server entries in the CLI's syntax (`slug`, `slug=a,b`, `slug=!c`) as
/// the API's `{slug: filter}` map.
fn server_entries(servers: &[String]) -> Result<Map<String, Value>, WardenError> {
    let mut server_map = Map::new();
    for entry in servers {
        let (slug, filter) = match entry.split_once('=') {
            Some((slug, filter)) => (slug, parse_filter(filter)?),
            None => (entry.as_str(), json!("*")),
        };
        if slug.is_empty() {
            return Err(WardenError::BadArgument(format!(
                "server entry {entry:?} has no slug"
            )));
        }
        server_map.insert(slug.to_owned(), filter);
    }
    Ok(server_map)
}

fn scope_body(
    inherit: bool,
    servers: &[String],
    toolsets: &[String],
) -> Result<Value, WardenError> {
    if inherit {
        return Ok(json!("inherit"));
    }
    Ok(json!({ "servers": server_entries(servers)?, "toolsets": toolsets }))
}

fn org_path(org: &str, rest: &str) -> String {
    format!("/admin/v1/orgs/{}{rest}", client::seg(org))
}

/// `/admin/v1/orgs/{org}/{collection}/{item}` with the item percent-encoded.
fn item_path(org: &str, collection: &str, item: &str) -> String {
    org_path(org, &format!("/{collection}/{}", client::seg(item)))
}

/// A JSON body with the given fields, leaving out the absent ones.
fn body_of(fields: &[(&str, Option<Value>)]) -> Value {
    let map: Map<String, Value> = fields
        .iter()
        .filter_map(|(k, v)| v.clone().map(|v| ((*k).to_owned(), v)))
        .collect();
    Value::Object(map)
}

/// Entry point for `main.rs`: runs one admin subcommand with its
/// connection options.
pub async fn run_with(cmd: AdminCommand, conn: &AdminConnection) -> Result<(), WardenError> {
    let token = conn.token.as_deref().ok_or(WardenError::MissingToken)?;
    run(cmd, &conn.url, token, conn.json).await
}

/// Runs one admin subcommand against the API at `url`, printing the result.
pub async fn run(cmd: AdminCommand, url: &str, token: &str, json: bool) -> Result<(), WardenError> {
    let text = render(cmd, url, token, json).await?;
    print_text(&text);
    Ok(())
}

/// Writes to stdout; a closed pipe (`warden key list acme | head -1`) is
/// not an error worth a panic.
fn print_text(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
/// Runs one admin subcommand against the API at `url` and returns what it
/// prints: tables for people, or the API's JSON with `json`.
pub async fn render(
    cmd: AdminCommand,
    url: &str,
    token: &str,
    json: bool,
) -> Result<String, WardenError> {
    let api = AdminClient::new(url, token)?;
    let mut out = Output {
        json,
        text: String::new(),
    };
    match cmd {
        AdminCommand::Org(c) => orgs::run_org(&api, &mut out, c).await?,
        AdminCommand::Server(c) => servers::run_server(&api, &mut out, c).await?,
        AdminCommand::Grant(c) => grants::run_grant(&api, &mut out, c).await?,
        AdminCommand::Team(c) => teams::run_team(&api, &mut out, c).await?,
        AdminCommand::Agent(c) => agents::run_agent(&api, &mut out, c).await?,
        AdminCommand::EndUser(c) => end_users::run_end_user(&api, &mut out, c).await?,
        AdminCommand::Toolset(c) => toolsets::run_toolset(&api, &mut out, c).await?,
        AdminCommand::Key(c) => keys::run_key(&api, &mut out, c).await?,
        AdminCommand::Scope(c) => scopes::run_scope(&api, &mut out, c).await?,
        AdminCommand::AdminToken(c) => admin_tokens::run_admin_token(&api, &mut out, c).await?,
        AdminCommand::Limit(c) => limits::run_limit(&api, &mut out, c).await?,
        AdminCommand::Idp(c) => idp::run_idp(&api, &mut out, c).await?,
        AdminCommand::Connections(c) => connections::run_connections(&api, &mut out, c).await?,
        AdminCommand::UpstreamAuth(c) => connections::run_upstream_auth(&api, &mut out, c).await?,
        AdminCommand::Explain(a) => inspect::run_explain(&api, &mut out, a).await?,
        AdminCommand::Access(a) => inspect::run_access(&api, &mut out, a).await?,
        AdminCommand::Audit(a) => inspect::run_audit(&api, &mut out, a).await?,
    }
    Ok(out.text)
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn filters_parse_into_the_api_forms() {
        assert_eq!(parse_filter("*").unwrap(), json!("*"));
        assert_eq!(parse_filter("a, b").unwrap(), json!(["a", "b"]));
        assert_eq!(parse_filter("!c").unwrap(), json!({ "except": ["c"] }));
        assert_eq!(parse_filter("").unwrap(), json!([]));
        assert!(parse_filter("!").is_err());
    }

    #[test]
    fn scope_entries_build_the_api_body() {
        assert_eq!(scope_body(true, &[], &[]).unwrap(), json!("inherit"));
        let body =
            scope_body(false, &["gh=search".into(), "jira".into()], &["ops".into()]).unwrap();
        assert_eq!(
            body,
            json!({ "servers": { "gh": ["search"], "jira": "*" }, "toolsets": ["ops"] })
        );
        assert_eq!(
            scope_body(false, &[], &[]).unwrap(),
            json!({ "servers": {}, "toolsets": [] })
        );
    }

    #[test]
    fn the_command_tree_is_consistent() {
        use clap::CommandFactory;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(subcommand)]
            cmd: AdminCommand,
        }
        with_connection_args(Cli::command()).debug_assert();
    }
}
