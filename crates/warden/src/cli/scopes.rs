//! `warden scope get|set`: the scope of a team, key, end user or agent.

use clap::{Subcommand, ValueEnum};

use super::client::AdminClient;
use super::{item_path, scope_body, Output};
use crate::error::WardenError;

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

fn scope_path(org: &str, kind: ScopeOwnerKind, owner: &str) -> String {
    let collection = match kind {
        ScopeOwnerKind::Team => "teams",
        ScopeOwnerKind::Key => "keys",
        ScopeOwnerKind::EndUser => "end-users",
        ScopeOwnerKind::Agent => "agents",
    };
    format!("{}/scope", item_path(org, collection, owner))
}

pub(super) async fn run_scope(
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
