//! `warden team create|list|rename|delete`: an org's teams.

use clap::Subcommand;
use serde_json::{json, Value};

use super::client::AdminClient;
use super::{body_of, item_path, org_path, Output};
use crate::error::WardenError;

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

pub(super) async fn run_team(
    api: &AdminClient,
    out: &mut Output,
    c: TeamCommand,
) -> Result<(), WardenError> {
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
