//! `warden org create|list|delete`: orgs over `/admin/v1/orgs`.

use clap::Subcommand;
use serde_json::json;

use super::client::AdminClient;
use super::{org_path, Output};
use crate::error::WardenError;

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

pub(super) async fn run_org(
    api: &AdminClient,
    out: &mut Output,
    c: OrgCommand,
) -> Result<(), WardenError> {
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
