//! `warden agent create|list|rename|delete`: an org's agents.

use clap::Subcommand;
use serde_json::{json, Value};

use super::client::AdminClient;
use super::{body_of, item_path, org_path, Output};
use crate::error::WardenError;

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

pub(super) async fn run_agent(
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
