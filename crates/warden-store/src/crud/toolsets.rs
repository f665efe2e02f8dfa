//! Toolsets: named sets of servers and tool filters a scope can attach.

use std::collections::BTreeMap;

use sqlx::AnyConnection;
use warden_policy::{
    validate_slug, OrgId, Scope, ScopeGrants, ScopeOwner, ServerId, ToolFilter, ToolsetId,
};

use super::{name_or, reference_error, require_org};
use crate::db::{self, to_json};
use crate::entities::*;
use crate::error::{constraint, Result};
use crate::store::Store;
use crate::stored::{Labelled, Stored};

async fn write_toolset_servers(
    conn: &mut AnyConnection,
    toolset: ToolsetId,
    org: OrgId,
    servers: &BTreeMap<ServerId, ToolFilter>,
) -> Result<()> {
    sqlx::query("DELETE FROM toolset_servers WHERE toolset_id = $1")
        .bind(toolset.0)
        .execute(&mut *conn)
        .await?;
    for (server, filter) in servers {
        sqlx::query(
            "INSERT INTO toolset_servers (toolset_id, org_id, server_id, filter) VALUES ($1, $2, $3, $4)",
        )
        .bind(toolset.0)
        .bind(org.0)
        .bind(server.0)
        .bind(to_json(filter)?)
        .execute(&mut *conn)
        .await
        .map_err(|e| reference_error(e, "org grant for server", server.0))?;
    }
    Ok(())
}

impl Store {
    /// Creates a toolset. Its entries must lie within the org's grants
    /// (checked like a scope: [`StoreError::ScopeNotAllowed`]).
    pub async fn create_toolset(&self, actor: &str, new: NewToolset) -> Result<Written<Toolset>> {
        validate_slug("toolset", &new.slug)?;
        let name = name_or(new.name, &new.slug);
        let mut w = self.begin_write(actor).await?;
        require_org(w.conn(), new.org).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO toolsets (org_id, slug, name, created_at_ms) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(new.org.0)
        .bind(new.slug.clone())
        .bind(name)
        .bind(db::now_ms())
        .fetch_one(w.conn())
        .await
        .map_err(constraint("toolset", &new.slug))?;
        let toolset_id = ToolsetId(id);
        write_toolset_servers(w.conn(), toolset_id, new.org, &new.servers).await?;
        w.check_scope(
            ScopeOwner::Toolset(toolset_id),
            Scope::Grants(ScopeGrants {
                servers: new.servers,
                toolsets: Default::default(),
            }),
        );
        w.commit_written("create", toolset_id, None).await
    }

    pub async fn update_toolset(
        &self,
        actor: &str,
        id: ToolsetId,
        patch: ToolsetPatch,
    ) -> Result<Written<Toolset>> {
        if let Some(slug) = &patch.slug {
            Toolset::check_label(slug)?;
        }
        let mut w = self.begin_write(actor).await?;
        let before = Toolset::fetch_existing(w.conn(), id).await?;
        w.rename(id, &before, patch.slug, patch.name).await?;
        if let Some(servers) = patch.servers {
            write_toolset_servers(w.conn(), id, before.org, &servers).await?;
            w.check_scope(
                ScopeOwner::Toolset(id),
                Scope::Grants(ScopeGrants {
                    servers,
                    toolsets: Default::default(),
                }),
            );
        }
        w.commit_written("update", id, Some(&before)).await
    }

    /// Deletes a toolset and every scope's reference to it.
    pub async fn delete_toolset(&self, actor: &str, id: ToolsetId) -> Result<u64> {
        self.delete_stored::<Toolset>(actor, id).await
    }

    pub async fn get_toolset(&self, id: ToolsetId) -> Result<Option<Toolset>> {
        self.get_stored(id).await
    }

    pub async fn get_toolset_by_slug(&self, org: OrgId, slug: &str) -> Result<Option<Toolset>> {
        self.find_in_org(org, "slug", slug).await
    }

    pub async fn list_toolsets(&self, org: OrgId, page: Page) -> Result<Vec<Toolset>> {
        self.list_in_org(org, page).await
    }
}
