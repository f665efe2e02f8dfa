//! `warden idp list|add|enable|disable|delete`: identity providers over
//! `/admin/v1/identity-providers` (platform admins only); `warden idp
//! new-user-scope get|set ORG`: the scope an org gives people created on
//! their first sign-in (`/admin/v1/orgs/{org}/new-user-scope`).

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::client::{seg, AdminClient};
use super::Output;
use crate::error::WardenError;

#[derive(Debug, Clone, Subcommand)]
pub enum IdpCommand {
    /// List the registered identity providers.
    List,
    /// Register an identity provider (see docs/identity.md).
    Add(Box<IdpAddArgs>),
    /// Accept its tokens again.
    Enable {
        /// The provider's slug.
        slug: String,
    },
    /// Stop accepting its tokens; its sign-in keys are revoked, so its
    /// people's live sessions end.
    Disable {
        /// The provider's slug.
        slug: String,
    },
    /// Delete the provider and its sign-in keys.
    Delete {
        /// The provider's slug.
        slug: String,
    },
    /// The scope an org gives people created on their first sign-in.
    #[command(subcommand)]
    NewUserScope(NewUserScopeCommand),
}

#[derive(Debug, Clone, Subcommand)]
pub enum NewUserScopeCommand {
    /// Show it (`inherit` unless set).
    Get {
        /// The org's slug.
        org: String,
    },
    /// Replace it: `--inherit`, or `--server slug[=filter]` / `--toolset slug`
    /// entries within the org's grants (no entries: new people reach
    /// nothing until given a scope). People who already exist keep theirs.
    Set {
        /// The org's slug.
        org: String,
        /// New people inherit their key's and team's access.
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
pub struct IdpAddArgs {
    /// The provider's name in Warden (a slug).
    pub slug: String,
    /// The `iss` of its tokens, exactly.
    #[arg(long)]
    pub issuer: String,
    /// The org its users belong to (slug).
    #[arg(long)]
    pub org: String,
    /// Its key set; default: OpenID Connect discovery from the issuer.
    #[arg(long)]
    pub jwks_uri: Option<String>,
    /// The claim naming the person (default `sub`).
    #[arg(long)]
    pub user_claim: Option<String>,
    /// The claim carrying the person's groups.
    #[arg(long)]
    pub groups_claim: Option<String>,
    /// `GROUP=TEAM`, repeatable, in order: the first group the person is
    /// in gives their team.
    #[arg(long = "group-team", value_parser = pair)]
    pub group_teams: Vec<(String, String)>,
    /// `CLIENT_ID=AGENT`, repeatable: tokens issued to that OAuth client act
    /// as that agent.
    #[arg(long = "client-agent", value_parser = pair)]
    pub client_agents: Vec<(String, String)>,
    /// A scope every token must carry, repeatable.
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// An audience accepted besides Warden's resource URLs, repeatable.
    #[arg(long = "audience")]
    pub audiences: Vec<String>,
}

/// `a=b` → (a, b).
fn pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a.to_owned(), b.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
}

impl IdpAddArgs {
    fn body(&self) -> Value {
        let mut body = json!({
            "slug": self.slug,
            "issuer": self.issuer,
            "orgs": {"kind": "org", "org": self.org},
            "group_teams": self.group_teams.iter()
                .map(|(g, t)| json!({"group": g, "org": self.org, "team": t}))
                .collect::<Vec<_>>(),
            "client_agents": self.client_agents.iter()
                .map(|(c, a)| json!({"client_id": c, "agent": a}))
                .collect::<Vec<_>>(),
            "required_scopes": self.scopes,
            "audiences": self.audiences,
        });
        if let Some(j) = &self.jwks_uri {
            body["jwks_uri"] = json!(j);
        }
        if let Some(u) = &self.user_claim {
            body["user_claim"] = json!(u);
        }
        if let Some(g) = &self.groups_claim {
            body["groups_claim"] = json!(g);
        }
        body
    }
}

pub(super) async fn run_idp(
    api: &AdminClient,
    out: &mut Output,
    c: IdpCommand,
) -> Result<(), WardenError> {
    const BASE: &str = "/admin/v1/identity-providers";
    match c {
        IdpCommand::List => {
            let v = api.get(BASE).await?;
            out.list(&v, &["slug", "issuer", "enabled"]);
        }
        IdpCommand::Add(a) => {
            let v = api.post(BASE, &a.body()).await?;
            out.written(&v);
        }
        IdpCommand::Enable { slug } => {
            let path = format!("{BASE}/{}", seg(&slug));
            let v = api.patch(&path, &json!({"enabled": true})).await?;
            out.written(&v);
        }
        IdpCommand::Disable { slug } => {
            let path = format!("{BASE}/{}", seg(&slug));
            let v = api.patch(&path, &json!({"enabled": false})).await?;
            out.written(&v);
        }
        IdpCommand::Delete { slug } => {
            let v = api.delete(&format!("{BASE}/{}", seg(&slug))).await?;
            out.written(&v);
        }
        IdpCommand::NewUserScope(NewUserScopeCommand::Get { org }) => {
            let v = api.get(&new_user_scope_path(&org)).await?;
            out.scope(&v);
        }
        IdpCommand::NewUserScope(NewUserScopeCommand::Set {
            org,
            inherit,
            servers,
            toolsets,
        }) => {
            let body = super::scope_body(inherit, &servers, &toolsets)?;
            let v = api.put(&new_user_scope_path(&org), &body).await?;
            out.written(&v);
        }
    }
    Ok(())
}

fn new_user_scope_path(org: &str) -> String {
    format!("/admin/v1/orgs/{}/new-user-scope", seg(org))
}
