//! `warden end-user create|list|rename|delete|disable|enable`: the end
//! users of an org, by external id.

use clap::Subcommand;
use serde_json::{json, Value};

use super::client::AdminClient;
use super::{body_of, item_path, org_path, Output};
use crate::error::WardenError;

#[derive(Debug, Clone, Subcommand)]
pub enum EndUserCommand {
    /// Create an end user (its scope starts as inherit; set one with
    /// `scope set ORG end-user ID ...`).
    Create {
        /// The org's slug.
        org: String,
        /// The id the service key asserts (`X-Warden-End-User`).
        external_id: String,
        /// A label for people (default: the external id).
        #[arg(long)]
        name: Option<String>,
    },
    /// List an org's end users.
    List {
        /// The org's slug.
        org: String,
    },
    /// Change the end user's label (the external id stays).
    Rename {
        /// The org's slug.
        org: String,
        /// The end user's external id.
        external_id: String,
        /// The new label for people.
        name: String,
    },
    /// Delete an end user.
    Delete {
        /// The org's slug.
        org: String,
        /// The end user's external id.
        external_id: String,
    },
    /// Refuse every request made for this end user; their live sessions end.
    Disable {
        /// The org's slug.
        org: String,
        /// The end user's external id.
        external_id: String,
    },
    /// Let a disabled end user in again.
    Enable {
        /// The org's slug.
        org: String,
        /// The end user's external id.
        external_id: String,
    },
}

pub(super) async fn run_end_user(
    api: &AdminClient,
    out: &mut Output,
    c: EndUserCommand,
) -> Result<(), WardenError> {
    match c {
        EndUserCommand::Create {
            org,
            external_id,
            name,
        } => {
            let body = body_of(&[
                ("external_id", Some(json!(external_id))),
                ("name", name.map(Value::from)),
            ]);
            let v = api.post(&org_path(&org, "/end-users"), &body).await?;
            out.written(&v);
        }
        EndUserCommand::List { org } => {
            let v = api.get(&org_path(&org, "/end-users")).await?;
            out.list(&v, &["external_id", "name", "scope", "disabled"]);
        }
        EndUserCommand::Disable { org, external_id } => {
            let path = item_path(&org, "end-users", &external_id);
            let v = api.patch(&path, &json!({ "disabled": true })).await?;
            out.written(&v);
        }
        EndUserCommand::Enable { org, external_id } => {
            let path = item_path(&org, "end-users", &external_id);
            let v = api.patch(&path, &json!({ "disabled": false })).await?;
            out.written(&v);
        }
        EndUserCommand::Rename {
            org,
            external_id,
            name,
        } => {
            let path = item_path(&org, "end-users", &external_id);
            let v = api.patch(&path, &json!({ "name": name })).await?;
            out.written(&v);
        }
        EndUserCommand::Delete { org, external_id } => {
            let v = api
                .delete(&item_path(&org, "end-users", &external_id))
                .await?;
            out.written(&v);
        }
    }
    Ok(())
}
