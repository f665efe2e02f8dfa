//! Org grants: which servers an org may use.

use sqlx::AnyConnection;
use warden_policy::{OrgId, PolicyChange, ServerId};

use super::require_org;
use crate::db::to_json;
use crate::entities::*;
use crate::error::{constraint, Result, StoreError};
use crate::store::Store;
use crate::stored::{fetch_optional, Decoded, Stored};

async fn fetch_grant(
    conn: &mut AnyConnection,
    org: OrgId,
    server: ServerId,
) -> Result<Option<OrgGrant>> {
    let sql = OrgGrant::select("WHERE org_id = $1 AND server_id = $2");
    fetch_optional(conn, sqlx::query(&sql).bind(org.0).bind(server.0)).await
}

impl Store {
    /// Makes `grant.server` (global, or owned by the org) available to `grant.org`.
    pub async fn create_org_grant(
        &self,
        actor: &str,
        grant: OrgGrant,
    ) -> Result<Written<OrgGrant>> {
        let mut w = self.begin_write(actor).await?;
        require_org(w.conn(), grant.org).await?;
        match Server::fetch(w.conn(), grant.server).await? {
            Some(s) if s.owner_org.is_none() || s.owner_org == Some(grant.org) => {}
            // Another org's server does not exist for this org.
            _ => return Err(StoreError::not_found("server", grant.server)),
        }
        let name = grant.server.to_string();
        sqlx::query(
            "INSERT INTO org_grants (org_id, server_id, enabled, filter) VALUES ($1, $2, $3, $4)",
        )
        .bind(grant.org.0)
        .bind(grant.server.0)
        .bind(i64::from(grant.enabled))
        .bind(to_json(&grant.filter)?)
        .execute(w.conn())
        .await
        .map_err(constraint("org grant for server", &name))?;
        w.commit_upsert("create", None, grant).await
    }

    pub async fn update_org_grant(
        &self,
        actor: &str,
        org: OrgId,
        server: ServerId,
        patch: OrgGrantPatch,
    ) -> Result<Written<OrgGrant>> {
        let mut w = self.begin_write(actor).await?;
        let before = fetch_grant(w.conn(), org, server)
            .await?
            .ok_or_else(|| StoreError::not_found("org grant for server", server))?;
        let after = OrgGrant {
            org,
            server,
            enabled: patch.enabled.unwrap_or(before.enabled),
            filter: patch.filter.unwrap_or_else(|| before.filter.clone()),
        };
        sqlx::query(
            "UPDATE org_grants SET enabled = $1, filter = $2 WHERE org_id = $3 AND server_id = $4",
        )
        .bind(i64::from(after.enabled))
        .bind(to_json(&after.filter)?)
        .bind(org.0)
        .bind(server.0)
        .execute(w.conn())
        .await?;
        w.commit_upsert("update", Some(&before), after).await
    }

    /// Deletes a grant and every scope and toolset entry of the org for
    /// that server (a later grant starts from nothing).
    pub async fn delete_org_grant(&self, actor: &str, org: OrgId, server: ServerId) -> Result<u64> {
        let mut w = self.begin_write(actor).await?;
        let before = fetch_grant(w.conn(), org, server)
            .await?
            .ok_or_else(|| StoreError::not_found("org grant for server", server))?;
        sqlx::query("DELETE FROM org_grants WHERE org_id = $1 AND server_id = $2")
            .bind(org.0)
            .bind(server.0)
            .execute(w.conn())
            .await?;
        w.commit_delete(&before, PolicyChange::DeleteOrgGrant { org, server })
            .await
    }

    pub async fn get_org_grant(&self, org: OrgId, server: ServerId) -> Result<Option<OrgGrant>> {
        let mut conn = self.pool().acquire().await?;
        fetch_grant(&mut conn, org, server).await
    }

    pub async fn list_org_grants(&self, org: OrgId) -> Result<Vec<OrgGrant>> {
        let sql = OrgGrant::select("WHERE org_id = $1 ORDER BY server_id");
        self.find_all(sqlx::query(&sql).bind(org.0)).await
    }
}
