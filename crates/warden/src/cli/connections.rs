//! `warden connections list|revoke` and `warden upstream-auth get|set`:
//! each person's own upstream credentials (docs/credentials.md) over
//! `/admin/v1/orgs/{org}/connections` and `.../upstream-auth`.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::client::{seg, AdminClient};
use super::Output;
use crate::error::WardenError;

#[derive(Debug, Clone, Subcommand)]
pub enum ConnectionCommand {
    /// The org's people's connections to servers (never a token).
    List {
        /// The org (slug).
        #[arg(long)]
        org: String,
        /// Only this person's (external id).
        #[arg(long)]
        end_user: Option<String>,
    },
    /// Delete a connection: its tokens are deleted and revoked upstream.
    Revoke {
        /// The org (slug).
        #[arg(long)]
        org: String,
        /// The connection's id (from `list`).
        id: i64,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum UpstreamAuthCommand {
    /// How Warden authenticates to a server upstream.
    Get(ServerRef),
    /// Set it: `static`, `oauth_per_user` or `token_exchange`.
    Set(Box<UpstreamAuthSet>),
}

#[derive(Debug, Clone, Args)]
pub struct ServerRef {
    /// The server's slug.
    pub server: String,
    /// The org that owns it; omitted: a global server (platform admin).
    #[arg(long)]
    pub org: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct UpstreamAuthSet {
    #[command(flatten)]
    pub server: ServerRef,
    /// `static`, `oauth_per_user` or `token_exchange`.
    #[arg(long)]
    pub mode: String,
    /// oauth_per_user: the issuer (default: discovered).
    #[arg(long)]
    pub authorization_server: Option<String>,
    /// A scope to ask for, repeatable.
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// Warden's client id (default for oauth_per_user: dynamic registration).
    #[arg(long)]
    pub client_id: Option<String>,
    /// Read the client secret from this environment variable.
    #[arg(long)]
    pub client_secret_env: Option<String>,
    /// token_exchange: the identity provider (slug).
    #[arg(long)]
    pub identity_provider: Option<String>,
    /// token_exchange: the audience asked for.
    #[arg(long)]
    pub audience: Option<String>,
    /// token_exchange: the resource asked for.
    #[arg(long)]
    pub resource: Option<String>,
}

fn auth_path(server: &ServerRef) -> String {
    match &server.org {
        Some(org) => format!(
            "/admin/v1/orgs/{}/servers/{}/upstream-auth",
            seg(org),
            seg(&server.server)
        ),
        None => format!("/admin/v1/servers/{}/upstream-auth", seg(&server.server)),
    }
}

impl UpstreamAuthSet {
    fn body(&self) -> Result<Value, WardenError> {
        let mut body = json!({"mode": self.mode});
        let mut set = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                body[k] = json!(v);
            }
        };
        set("authorization_server", &self.authorization_server);
        set("client_id", &self.client_id);
        set("identity_provider", &self.identity_provider);
        set("audience", &self.audience);
        set("resource", &self.resource);
        if !self.scopes.is_empty() {
            body["scopes"] = json!(self.scopes);
        }
        if let Some(var) = &self.client_secret_env {
            let secret = std::env::var(var).map_err(|_| {
                WardenError::Config(format!("environment variable {var} is not set"))
            })?;
            body["client_secret"] = json!(secret);
        }
        Ok(body)
    }
}

pub(super) async fn run_connections(
    api: &AdminClient,
    out: &mut Output,
    c: ConnectionCommand,
) -> Result<(), WardenError> {
    match c {
        ConnectionCommand::List { org, end_user } => {
            let path = format!("/admin/v1/orgs/{}/connections", seg(&org));
            let query: Vec<(&str, String)> =
                end_user.map(|u| ("end_user", u)).into_iter().collect();
            let v = api.get_query(&path, &query).await?;
            out.list(&v, &["id", "end_user", "server", "scopes", "expires_at_ms"]);
        }
        ConnectionCommand::Revoke { org, id } => {
            let path = format!("/admin/v1/orgs/{}/connections/{id}", seg(&org));
            let v = api.delete(&path).await?;
            out.written(&v);
        }
    }
    Ok(())
}

pub(super) async fn run_upstream_auth(
    api: &AdminClient,
    out: &mut Output,
    c: UpstreamAuthCommand,
) -> Result<(), WardenError> {
    match c {
        UpstreamAuthCommand::Get(server) => {
            let v = api.get(&auth_path(&server)).await?;
            out.raw(&v);
        }
        UpstreamAuthCommand::Set(set) => {
            let v = api.put(&auth_path(&set.server), &set.body()?).await?;
            out.raw(&v);
        }
    }
    Ok(())
}
