//! `warden toolset create|list|update|delete`: an org's toolsets.

use clap::Subcommand;
use serde_json::{json, Value};

use super::client::AdminClient;
use super::{body_of, item_path, org_path, server_entries, Output};
use crate::error::WardenError;

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

pub(super) async fn run_toolset(
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
