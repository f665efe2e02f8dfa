//! `warden admin-token list|create|delete`: platform admin tokens, or an
//! org's with `--org`.

use clap::Subcommand;
use serde_json::json;

use super::client::AdminClient;
use super::{org_path, Output};
use crate::error::WardenError;

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

/// Where an admin token lives: platform tokens, or an org's.
fn admin_token_path(org: Option<&str>) -> String {
    match org {
        Some(org) => org_path(org, "/admin-tokens"),
        None => "/admin/v1/admin-tokens".to_owned(),
    }
}

pub(super) async fn run_admin_token(
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
