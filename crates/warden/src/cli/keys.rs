//! `warden key create|list|revoke|delete`: the keys clients authenticate with.

use clap::{Args, Subcommand};
use serde_json::json;

use super::client::AdminClient;
use super::{org_path, Output};
use crate::error::WardenError;

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

pub(super) async fn run_key(
    api: &AdminClient,
    out: &mut Output,
    c: KeyCommand,
) -> Result<(), WardenError> {
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
