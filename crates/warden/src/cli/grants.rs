//! `warden grant set|enable|disable|remove|list`: an org's grants of
//! servers over `/admin/v1/orgs/{org}/grants`.

use clap::Subcommand;
use serde_json::json;

use super::client::{self, AdminClient};
use super::{org_path, parse_filter, Output};
use crate::error::WardenError;

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

pub(super) async fn run_grant(
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
