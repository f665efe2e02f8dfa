//! `warden <admin subcommand>`: a thin client of the admin REST API
//! (`/admin/v1`). Every decision stays on the server; this only shapes
//! requests and prints answers (tables for people, `--json` for scripts).

mod client;
mod connections;
mod idp;
mod limits;
mod table;
#[cfg(test)]
mod tests;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};

use client::AdminClient;

use crate::error::WardenError;

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

#[derive(Debug, Clone, Subcommand)]
pub enum OrgCommand {
    /// Create an org.
    Create {
        /// The org's slug (lowercase words joined by hyphens).
        slug: String,
    },
    /// List the orgs.
    List,
    /// Delete an org and everything in it.
    Delete {
        /// The org's slug.
        slug: String,
    },
}

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

#[derive(Debug, Clone, Subcommand)]
pub enum GrantCommand {
    /// Create or replace the org's grant of a server.
    Set {
        /// The org's slug.
        org: String,
        /// The server's slug.
        server: String,
        /// Tool filter: `*`, `a,b` (only these) or `!c,d` (all but these).
        #[arg(long, default_value = "*")]
        tools: String,
        /// Create the grant switched off.
        #[arg(long)]
        disabled: bool,
    },
    /// Switch the org's grant on.
    Enable {
        /// The org's slug.
        org: String,
        /// The server's slug.
        server: String,
    },
    /// Switch the org's grant off: nobody in the org can use the server.
    Disable {
        /// The org's slug.
        org: String,
        /// The server's slug.
        server: String,
    },
    /// Remove the grant and every reference to the server in the org.
    Remove {
        /// The org's slug.
        org: String,
        /// The server's slug.
        server: String,
    },
    /// List an org's grants.
    List {
        /// The org's slug.
        org: String,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum TeamCommand {
    /// Create a team (its scope starts as inherit).
    Create {
        /// The org's slug.
        org: String,
        /// The team's slug.
        slug: String,
        /// A label for people (default: the slug).
        #[arg(long)]
        name: Option<String>,
    },
    /// List an org's teams.
    List {
        /// The org's slug.
        org: String,
    },
    /// Change the team's label (the slug stays).
    Rename {
        /// The org's slug.
        org: String,
        /// The team's slug.
        slug: String,
        /// The new label for people.
        name: String,
    },
    /// Delete a team with its keys and agents.
    Delete {
        /// The org's slug.
        org: String,
        /// The team's slug.
        slug: String,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum AgentCommand {
    /// Create an agent. New agents start with an empty scope.
    Create {
        /// The org's slug.
        org: String,
        /// The agent's slug.
        slug: String,
        /// Put the agent in this team (its slug).
        #[arg(long)]
        team: Option<String>,
        /// A label for people (default: the slug).
        #[arg(long)]
        name: Option<String>,
    },
    /// List an org's agents.
    List {
        /// The org's slug.
        org: String,
    },
    /// Change the agent's label (the slug stays).
    Rename {
        /// The org's slug.
        org: String,
        /// The agent's slug.
        slug: String,
        /// The new label for people.
        name: String,
    },
    /// Delete an agent and the keys bound to it.
    Delete {
        /// The org's slug.
        org: String,
        /// The agent's slug.
        slug: String,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum EndUserCommand {
    /// Create an end user (its scope starts as inherit; set one with
    /// `scope set ORG end-user ID ...`).
    Create {
        /// The org's slug.
        org: String,
        /// The id the service key asserts (`X-Warden-End-User`).
        external_id: String,
        /// A label for people (default: the external id).
        #[arg(long)]
        name: Option<String>,
    },
    /// List an org's end users.
    List {
        /// The org's slug.
        org: String,
    },
    /// Change the end user's label (the external id stays).
    Rename {
        /// The org's slug.
        org: String,
        /// The end user's external id.
        external_id: String,
        /// The new label for people.
        name: String,
    },
    /// Delete an end user.
    Delete {
        /// The org's slug.
        org: String,
        /// The end user's external id.
        external_id: String,
    },
    /// Refuse every request made for this end user; their live sessions end.
    Disable {
        /// The org's slug.
        org: String,
        /// The end user's external id.
        external_id: String,
    },
    /// Let a disabled end user in again.
    Enable {
        /// The org's slug.
        org: String,
        /// The end user's external id.
        external_id: String,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum ToolsetCommand {
    /// Create a toolset; its servers must lie within the org's grants.
    Create {
        /// The org's slug.
        org: String,
        /// The toolset's slug.
        slug: String,
        /// A label for people (default: the slug).
        #[arg(long)]
        name: Option<String>,
        /// `slug` (all tools), `slug=a,b` or `slug=!c`. Repeatable.
        #[arg(long = "server")]
        servers: Vec<String>,
    },
    /// List an org's toolsets.
    List {
        /// The org's slug.
        org: String,
    },
    /// Change a toolset's label and/or replace its servers, in one write.
    Update {
        /// The org's slug.
        org: String,
        /// The toolset's slug.
        slug: String,
        /// A new label for people.
        #[arg(long)]
        name: Option<String>,
        /// Replace the servers with these: `slug`, `slug=a,b` or `slug=!c`. Repeatable.
        #[arg(long = "server", conflicts_with = "no_servers")]
        servers: Vec<String>,
        /// Replace the servers with none.
        #[arg(long)]
        no_servers: bool,
    },
    /// Delete a toolset and every scope's reference to it.
    Delete {
        /// The org's slug.
        org: String,
        /// The toolset's slug.
        slug: String,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum AdminTokenCommand {
    /// List the platform admin tokens, or an org's with --org.
    List {
        /// List this org's admin tokens instead of the platform ones.
        #[arg(long)]
        org: Option<String>,
    },
    /// Create an admin token; its secret is printed once and never again.
    Create {
        /// Unique among all admin tokens; the audit log records it.
        name: String,
        /// Make it an org admin token, confined to this org.
        #[arg(long)]
        org: Option<String>,
    },
    /// Revoke an admin token (the last platform token cannot be).
    Delete {
        /// The admin token's id (see `admin-token list`).
        id: i64,
        /// The org of an org admin token.
        #[arg(long)]
        org: Option<String>,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum KeyCommand {
    /// Create a key; its secret is printed once and never again.
    Create(KeyCreateArgs),
    /// List an org's keys (never their secrets).
    List {
        /// The org's slug.
        org: String,
    },
    /// Revoke a key: it stops working at once and stays listed.
    Revoke {
        /// The org's slug.
        org: String,
        /// The key's id (see `key list`).
        id: i64,
    },
    /// Delete a key.
    Delete {
        /// The org's slug.
        org: String,
        /// The key's id (see `key list`).
        id: i64,
    },
}

#[derive(Debug, Clone, Args)]
pub struct KeyCreateArgs {
    /// The org's slug.
    pub org: String,
    /// The key's name, unique in the org.
    pub name: String,
    /// Put the key in this team (its slug).
    #[arg(long)]
    pub team: Option<String>,
    /// Bind the key to this agent.
    #[arg(long)]
    pub agent: Option<String>,
    /// Expiry, RFC 3339 (e.g. 2027-01-01T00:00:00Z).
    #[arg(long)]
    pub expires_at: Option<String>,
    /// The key may name an end user per request.
    #[arg(long)]
    pub may_assert_end_user: bool,
    /// The key may name an agent per request.
    #[arg(long)]
    pub may_assert_agent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScopeOwnerKind {
    Team,
    Key,
    EndUser,
    Agent,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ScopeCommand {
    /// Show a scope.
    Get {
        /// The org's slug.
        org: String,
        /// What owns the scope.
        #[arg(value_enum)]
        kind: ScopeOwnerKind,
        /// Slug of the team/agent, id of the key, external id of the end user.
        owner: String,
    },
    /// Replace a scope: `--inherit`, or `--server slug[=filter]` / `--toolset slug` entries
    /// (no entries at all means an empty scope that admits nothing).
    Set {
        /// The org's slug.
        org: String,
        /// What owns the scope.
        #[arg(value_enum)]
        kind: ScopeOwnerKind,
        /// Slug of the team/agent, id of the key, external id of the end user.
        owner: String,
        /// Inherit the parent level's access (instead of entries).
        #[arg(long, conflicts_with_all = ["servers", "toolsets"])]
        inherit: bool,
        /// `slug` (all tools), `slug=a,b` or `slug=!c`. Repeatable.
        #[arg(long = "server")]
        servers: Vec<String>,
        /// A toolset slug. Repeatable.
        #[arg(long = "toolset")]
        toolsets: Vec<String>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    /// The org's slug.
    pub org: String,
    /// Key id.
    #[arg(long)]
    pub key: i64,
    /// The server's slug.
    #[arg(long)]
    pub server: String,
    /// The tool's name as the upstream names it.
    #[arg(long)]
    pub tool: String,
    /// Acting for this end user (external id).
    #[arg(long)]
    pub end_user: Option<String>,
    /// Acting as this agent (slug).
    #[arg(long)]
    pub agent: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct AccessArgs {
    /// The org's slug.
    pub org: String,
    /// Key id.
    pub key: i64,
    /// Acting for this end user (external id).
    #[arg(long)]
    pub end_user: Option<String>,
    /// Acting as this agent (slug).
    #[arg(long)]
    pub agent: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Only entries about this org.
    #[arg(long)]
    pub org: Option<String>,
    /// Entity kind (`server`, `team`, `key`, ...) or `kind:id`.
    #[arg(long)]
    pub entity: Option<String>,
    /// Who made the change: an admin token's name, or an actor exactly as
    /// entries show it (`admin:ops`, `system:bootstrap`).
    #[arg(long)]
    pub actor: Option<String>,
    /// Entry kind: `admin_change` or `decision`.
    #[arg(long)]
    pub kind: Option<String>,
    /// Entries at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Entries before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many entries per page.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Continue after this cursor (from a previous page).
    #[arg(long)]
    pub cursor: Option<String>,
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
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

fn org_path(org: &str, rest: &str) -> String {
    format!("/admin/v1/orgs/{}{rest}", client::seg(org))
}

/// `/admin/v1/orgs/{org}/{collection}/{item}` with the item percent-encoded.
fn item_path(org: &str, collection: &str, item: &str) -> String {
    org_path(org, &format!("/{collection}/{}", client::seg(item)))
}

/// Where an admin token lives: platform tokens, or an org's.
fn admin_token_path(org: Option<&str>) -> String {
    match org {
        Some(org) => org_path(org, "/admin-tokens"),
        None => "/admin/v1/admin-tokens".to_owned(),
    }
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
        AdminCommand::Org(c) => run_org(&api, &mut out, c).await?,
        AdminCommand::Server(c) => run_server(&api, &mut out, c).await?,
        AdminCommand::Grant(c) => run_grant(&api, &mut out, c).await?,
        AdminCommand::Team(c) => run_team(&api, &mut out, c).await?,
        AdminCommand::Agent(c) => run_agent(&api, &mut out, c).await?,
        AdminCommand::EndUser(c) => run_end_user(&api, &mut out, c).await?,
        AdminCommand::Toolset(c) => run_toolset(&api, &mut out, c).await?,
        AdminCommand::Key(c) => run_key(&api, &mut out, c).await?,
        AdminCommand::Scope(c) => run_scope(&api, &mut out, c).await?,
        AdminCommand::AdminToken(c) => run_admin_token(&api, &mut out, c).await?,
        AdminCommand::Limit(c) => limits::run_limit(&api, &mut out, c).await?,
        AdminCommand::Idp(c) => idp::run_idp(&api, &mut out, c).await?,
        AdminCommand::Connections(c) => connections::run_connections(&api, &mut out, c).await?,
        AdminCommand::UpstreamAuth(c) => connections::run_upstream_auth(&api, &mut out, c).await?,
        AdminCommand::Explain(a) => {
            let mut query = vec![
                ("key", a.key.to_string()),
                ("server", a.server),
                ("tool", a.tool),
            ];
            query.extend(a.end_user.map(|u| ("end_user", u)));
            query.extend(a.agent.map(|g| ("agent", g)));
            let v = api.get_query(&org_path(&a.org, "/explain"), &query).await?;
            out.explain(&v);
        }
        AdminCommand::Access(a) => {
            let mut query = Vec::new();
            query.extend(a.end_user.map(|u| ("end_user", u)));
            query.extend(a.agent.map(|g| ("agent", g)));
            let path = org_path(&a.org, &format!("/keys/{}/access", a.key));
            let v = api.get_query(&path, &query).await?;
            out.access(&v);
        }
        AdminCommand::Audit(a) => {
            let mut query = vec![("limit", a.limit.to_string())];
            let optional = [
                ("org", a.org),
                ("entity", a.entity),
                ("actor", a.actor),
                ("kind", a.kind),
                ("since", a.since),
                ("until", a.until),
                ("cursor", a.cursor),
            ];
            query.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
            let v = api.get_query("/admin/v1/audit", &query).await?;
            out.list(
                &v,
                &[
                    "id",
                    "at",
                    "kind",
                    "actor",
                    "action",
                    "entity_kind",
                    "entity",
                    "revision",
                ],
            );
            if let Some(next) = v.get("next_cursor").and_then(Value::as_str) {
                if !json {
                    out.line(&format!("more: --cursor {next}"));
                }
            }
        }
    }
    Ok(out.text)
}

async fn run_org(api: &AdminClient, out: &mut Output, c: OrgCommand) -> Result<(), WardenError> {
    match c {
        OrgCommand::Create { slug } => {
            let v = api.post("/admin/v1/orgs", &json!({ "slug": slug })).await?;
            out.written(&v);
        }
        OrgCommand::List => {
            let v = api.get("/admin/v1/orgs").await?;
            out.list(&v, &["slug", "name", "suspended"]);
        }
        OrgCommand::Delete { slug } => {
            let v = api.delete(&org_path(&slug, "")).await?;
            out.written(&v);
        }
    }
    Ok(())
}
async fn run_server(
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

async fn run_grant(
    api: &AdminClient,
    out: &mut Output,
    c: GrantCommand,
) -> Result<(), WardenError> {
    let grant_path =
        |org: &str, server: &str| org_path(org, &format!("/grants/{}", client::seg(server)));
    match c {
        GrantCommand::Set {
            org,
            server,
            tools,
            disabled,
        } => {
            let body = json!({ "filter": parse_filter(&tools)?, "enabled": !disabled });
            let v = api.put(&grant_path(&org, &server), &body).await?;
            out.written(&v);
        }
        GrantCommand::Enable { org, server } => {
            let v = api
                .patch(&grant_path(&org, &server), &json!({ "enabled": true }))
                .await?;
            out.written(&v);
        }
        GrantCommand::Disable { org, server } => {
            let v = api
                .patch(&grant_path(&org, &server), &json!({ "enabled": false }))
                .await?;
            out.written(&v);
        }
        GrantCommand::Remove { org, server } => {
            let v = api.delete(&grant_path(&org, &server)).await?;
            out.written(&v);
        }
        GrantCommand::List { org } => {
            let v = api.get(&org_path(&org, "/grants")).await?;
            out.list(&v, &["server", "enabled", "filter"]);
        }
    }
    Ok(())
}

async fn run_key(api: &AdminClient, out: &mut Output, c: KeyCommand) -> Result<(), WardenError> {
    match c {
        KeyCommand::Create(a) => {
            let body = json!({
                "name": a.name,
                "team": a.team,
                "agent": a.agent,
                "expires_at": a.expires_at,
                "may_assert_end_user": a.may_assert_end_user,
                "may_assert_agent": a.may_assert_agent,
            });
            let v = api.post(&org_path(&a.org, "/keys"), &body).await?;
            out.written(&v);
            out.secret(&v);
        }
        KeyCommand::List { org } => {
            let v = api.get(&org_path(&org, "/keys")).await?;
            out.list(
                &v,
                &[
                    "id",
                    "name",
                    "token_prefix",
                    "team",
                    "agent",
                    "revoked",
                    "expires_at",
                ],
            );
        }
        KeyCommand::Revoke { org, id } => {
            let v = api
                .post(&org_path(&org, &format!("/keys/{id}/revoke")), &json!({}))
                .await?;
            out.written(&v);
        }
        KeyCommand::Delete { org, id } => {
            let v = api.delete(&org_path(&org, &format!("/keys/{id}"))).await?;
            out.written(&v);
        }
    }
    Ok(())
}

async fn run_team(api: &AdminClient, out: &mut Output, c: TeamCommand) -> Result<(), WardenError> {
    match c {
        TeamCommand::Create { org, slug, name } => {
            let body = body_of(&[("slug", Some(json!(slug))), ("name", name.map(Value::from))]);
            let v = api.post(&org_path(&org, "/teams"), &body).await?;
            out.written(&v);
        }
        TeamCommand::List { org } => {
            let v = api.get(&org_path(&org, "/teams")).await?;
            out.list(&v, &["slug", "name", "scope"]);
        }
        TeamCommand::Rename { org, slug, name } => {
            let path = item_path(&org, "teams", &slug);
            let v = api.patch(&path, &json!({ "name": name })).await?;
            out.written(&v);
        }
        TeamCommand::Delete { org, slug } => {
            let v = api.delete(&item_path(&org, "teams", &slug)).await?;
            out.written(&v);
        }
    }
    Ok(())
}

async fn run_agent(
    api: &AdminClient,
    out: &mut Output,
    c: AgentCommand,
) -> Result<(), WardenError> {
    match c {
        AgentCommand::Create {
            org,
            slug,
            team,
            name,
        } => {
            let body = body_of(&[
                ("slug", Some(json!(slug))),
                ("team", team.map(Value::from)),
                ("name", name.map(Value::from)),
            ]);
            let v = api.post(&org_path(&org, "/agents"), &body).await?;
            out.written(&v);
        }
        AgentCommand::List { org } => {
            let v = api.get(&org_path(&org, "/agents")).await?;
            out.list(&v, &["slug", "name", "team", "scope"]);
        }
        AgentCommand::Rename { org, slug, name } => {
            let path = item_path(&org, "agents", &slug);
            let v = api.patch(&path, &json!({ "name": name })).await?;
            out.written(&v);
        }
        AgentCommand::Delete { org, slug } => {
            let v = api.delete(&item_path(&org, "agents", &slug)).await?;
            out.written(&v);
        }
    }
    Ok(())
}

async fn run_end_user(
    api: &AdminClient,
    out: &mut Output,
    c: EndUserCommand,
) -> Result<(), WardenError> {
    match c {
        EndUserCommand::Create {
            org,
            external_id,
            name,
        } => {
            let body = body_of(&[
                ("external_id", Some(json!(external_id))),
                ("name", name.map(Value::from)),
            ]);
            let v = api.post(&org_path(&org, "/end-users"), &body).await?;
            out.written(&v);
        }
        EndUserCommand::List { org } => {
            let v = api.get(&org_path(&org, "/end-users")).await?;
            out.list(&v, &["external_id", "name", "scope", "disabled"]);
        }
        EndUserCommand::Disable { org, external_id } => {
            let path = item_path(&org, "end-users", &external_id);
            let v = api.patch(&path, &json!({ "disabled": true })).await?;
            out.written(&v);
        }
        EndUserCommand::Enable { org, external_id } => {
            let path = item_path(&org, "end-users", &external_id);
            let v = api.patch(&path, &json!({ "disabled": false })).await?;
            out.written(&v);
        }
        EndUserCommand::Rename {
            org,
            external_id,
            name,
        } => {
            let path = item_path(&org, "end-users", &external_id);
            let v = api.patch(&path, &json!({ "name": name })).await?;
            out.written(&v);
        }
        EndUserCommand::Delete { org, external_id } => {
            let v = api
                .delete(&item_path(&org, "end-users", &external_id))
                .await?;
            out.written(&v);
        }
    }
    Ok(())
}

async fn run_toolset(
    api: &AdminClient,
    out: &mut Output,
    c: ToolsetCommand,
) -> Result<(), WardenError> {
    match c {
        ToolsetCommand::Create {
            org,
            slug,
            name,
            servers,
        } => {
            let body = body_of(&[
                ("slug", Some(json!(slug))),
                ("name", name.map(Value::from)),
                ("servers", Some(Value::Object(server_entries(&servers)?))),
            ]);
            let v = api.post(&org_path(&org, "/toolsets"), &body).await?;
            out.written(&v);
        }
        ToolsetCommand::List { org } => {
            let v = api.get(&org_path(&org, "/toolsets")).await?;
            out.list(&v, &["slug", "name", "servers"]);
        }
        ToolsetCommand::Update {
            org,
            slug,
            name,
            servers,
            no_servers,
        } => {
            let servers = if no_servers || !servers.is_empty() {
                Some(Value::Object(server_entries(&servers)?))
            } else {
                None
            };
            if name.is_none() && servers.is_none() {
                return Err(WardenError::BadArgument(
                    "nothing to change: give --name, --server or --no-servers".into(),
                ));
            }
            let body = body_of(&[("name", name.map(Value::from)), ("servers", servers)]);
            let v = api
                .patch(&item_path(&org, "toolsets", &slug), &body)
                .await?;
            out.written(&v);
        }
        ToolsetCommand::Delete { org, slug } => {
            let v = api.delete(&item_path(&org, "toolsets", &slug)).await?;
            out.written(&v);
        }
    }
    Ok(())
}

fn scope_path(org: &str, kind: ScopeOwnerKind, owner: &str) -> String {
    let collection = match kind {
        ScopeOwnerKind::Team => "teams",
        ScopeOwnerKind::Key => "keys",
        ScopeOwnerKind::EndUser => "end-users",
        ScopeOwnerKind::Agent => "agents",
    };
    format!("{}/scope", item_path(org, collection, owner))
}

async fn run_scope(
    api: &AdminClient,
    out: &mut Output,
    c: ScopeCommand,
) -> Result<(), WardenError> {
    match c {
        ScopeCommand::Get { org, kind, owner } => {
            let v = api.get(&scope_path(&org, kind, &owner)).await?;
            out.scope(&v);
        }
        ScopeCommand::Set {
            org,
            kind,
            owner,
            inherit,
            servers,
            toolsets,
        } => {
            let v = api
                .put(
                    &scope_path(&org, kind, &owner),
                    &scope_body(inherit, &servers, &toolsets)?,
                )
                .await?;
            out.written(&v);
        }
    }
    Ok(())
}

async fn run_admin_token(
    api: &AdminClient,
    out: &mut Output,
    c: AdminTokenCommand,
) -> Result<(), WardenError> {
    match c {
        AdminTokenCommand::List { org } => {
            let v = api.get(&admin_token_path(org.as_deref())).await?;
            out.list(&v, &["id", "name", "org", "token_prefix"]);
        }
        AdminTokenCommand::Create { name, org } => {
            let v = api
                .post(&admin_token_path(org.as_deref()), &json!({ "name": name }))
                .await?;
            out.written(&v);
            out.secret(&v);
        }
        AdminTokenCommand::Delete { id, org } => {
            let path = format!("{}/{id}", admin_token_path(org.as_deref()));
            let v = api.delete(&path).await?;
            out.written(&v);
        }
    }
    Ok(())
}

/// How results are printed: collected here, written by [`run`].
struct Output {
    json: bool,
    text: String,
}

impl Output {
    fn line(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    fn raw(&mut self, v: &Value) {
        match serde_json::to_string_pretty(v) {
            Ok(s) => self.line(&s),
            Err(_) => self.line(&v.to_string()),
        }
    }

    /// A write's answer: the object written and the new revision.
    fn written(&mut self, v: &Value) {
        if self.json {
            return self.raw(v);
        }
        if let Some(item) = v.get("item").filter(|i| i.is_object()) {
            let rows = table::object_rows(item);
            self.text
                .push_str(&table::render(&["field", "value"], &rows));
        }
        match v.get("revision") {
            Some(r) => self.line(&format!("revision {r}")),
            None => self.line("ok"),
        }
    }

    /// The one-time secret of a created key or admin token (in `--json`
    /// it is part of the JSON already printed).
    fn secret(&mut self, v: &Value) {
        if self.json {
            return;
        }
        if let Some(secret) = v.get("secret").and_then(Value::as_str) {
            self.line(&format!("secret (shown once, store it now): {secret}"));
        }
    }

    /// A list answer `{"items": [...]}` as a table of `columns`.
    fn list(&mut self, v: &Value, columns: &[&str]) {
        if self.json {
            return self.raw(v);
        }
        let items = v
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let rows: Vec<Vec<String>> = items
            .iter()
            .map(|item| columns.iter().map(|c| table::cell(item.get(*c))).collect())
            .collect();
        self.text.push_str(&table::render(columns, &rows));
    }

    /// A scope: `inherit`, or its entries as a table.
    fn scope(&mut self, v: &Value) {
        if self.json {
            return self.raw(v);
        }
        let Some(grants) = v.as_object() else {
            return self.line(&table::cell(Some(v)));
        };
        let mut rows: Vec<Vec<String>> = grants
            .get("servers")
            .and_then(Value::as_object)
            .map(|servers| {
                servers
                    .iter()
                    .map(|(slug, filter)| {
                        vec!["server".to_owned(), slug.clone(), table::cell(Some(filter))]
                    })
                    .collect()
            })
            .unwrap_or_default();
        if let Some(toolsets) = grants.get("toolsets").and_then(Value::as_array) {
            rows.extend(
                toolsets
                    .iter()
                    .map(|t| vec!["toolset".to_owned(), table::cell(Some(t)), "-".to_owned()]),
            );
        }
        if rows.is_empty() {
            return self.line("empty (admits nothing)");
        }
        self.text
            .push_str(&table::render(&["entry", "slug", "filter"], &rows));
    }

    fn explain(&mut self, v: &Value) {
        if self.json {
            return self.raw(v);
        }
        let allowed = v.get("allowed").and_then(Value::as_bool).unwrap_or(false);
        let verdict = if allowed { "ALLOWED" } else { "DENIED" };
        let reason = table::cell(v.get("reason"));
        self.line(&format!(
            "{verdict} {reason} (revision {})",
            table::cell(v.get("revision"))
        ));
        let trace = v
            .get("trace")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let rows: Vec<Vec<String>> = trace
            .iter()
            .map(|e| {
                ["check", "outcome", "reason"]
                    .iter()
                    .map(|c| table::cell(e.get(*c)))
                    .collect()
            })
            .collect();
        self.text
            .push_str(&table::render(&["check", "outcome", "reason"], &rows));
    }

    fn access(&mut self, v: &Value) {
        if self.json {
            return self.raw(v);
        }
        self.line(&format!(
            "revision {}  denial {}",
            table::cell(v.get("revision")),
            table::cell(v.get("principal_denial"))
        ));
        self.list(
            &json!({ "items": v.get("servers").cloned().unwrap_or_default() }),
            &["server", "filter", "tools"],
        );
    }
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
