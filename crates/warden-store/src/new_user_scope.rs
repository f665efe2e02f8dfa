//! An org's default scope for new users (migration 0006): the scope a
//! person seen for the first time gets when they are created just in time
//! on signing in with an identity provider. *Inherit* unless set.
//!
//! It is a template, not an engine row: setting it bumps the revision and
//! is audited like every write, but changes nothing the engine decides on.
//! It is validated exactly like an end user's scope (bounded by the org's
//! allowance, `warden_policy::picker`), and its entries reference the org's
//! grants and toolsets with the same cascading foreign keys as scope
//! entries, so losing a grant or toolset narrows it and it can never name
//! what the org does not have.

use sqlx::AnyConnection;
use warden_policy::{OrgId, Scope, ScopeGrants, ServerId, ToolsetId};

use crate::crud::write_scope;
use crate::db::{to_json, RowExt};
use crate::entities::Written;
use crate::error::{Result, StoreError};
use crate::store::{view, AuditChange, OwnerCol, Store};

/// The default scope for new users of `org` (`None`: no such org).
pub(crate) async fn load(conn: &mut AnyConnection, org: OrgId) -> Result<Option<Scope>> {
    let inherit: Option<i64> =
        sqlx::query_scalar("SELECT new_user_scope_inherit FROM orgs WHERE id = $1")
            .bind(org.0)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(inherit) = inherit else {
        return Ok(None);
    };
    if inherit != 0 {
        return Ok(Some(Scope::Inherit));
    }
    let mut grants = ScopeGrants::default();
    let rows = sqlx::query("SELECT server_id, filter FROM org_new_user_servers WHERE org_id = $1")
        .bind(org.0)
        .fetch_all(&mut *conn)
        .await?;
    for r in rows {
        grants
            .servers
            .insert(ServerId(r.int("server_id")?), r.json("filter")?);
    }
    let rows = sqlx::query("SELECT toolset_id FROM org_new_user_toolsets WHERE org_id = $1")
        .bind(org.0)
        .fetch_all(&mut *conn)
        .await?;
    for r in rows {
        grants.toolsets.insert(ToolsetId(r.int("toolset_id")?));
    }
    Ok(Some(Scope::Grants(grants)))
}

/// Replaces the default scope of `org` (flag and entries).
async fn write(conn: &mut AnyConnection, org: OrgId, scope: &Scope) -> Result<()> {
    sqlx::query("DELETE FROM org_new_user_servers WHERE org_id = $1")
        .bind(org.0)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM org_new_user_toolsets WHERE org_id = $1")
        .bind(org.0)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE orgs SET new_user_scope_inherit = $1 WHERE id = $2")
        .bind(i64::from(matches!(scope, Scope::Inherit)))
        .bind(org.0)
        .execute(&mut *conn)
        .await?;
    let Some(grants) = scope.grants() else {
        return Ok(());
    };
    for (server, filter) in &grants.servers {
        sqlx::query(
            "INSERT INTO org_new_user_servers (org_id, server_id, filter) VALUES ($1, $2, $3)",
        )
        .bind(org.0)
        .bind(server.0)
        .bind(to_json(filter)?)
        .execute(&mut *conn)
        .await
        .map_err(|e| crate::crud::reference_error(e, "org grant for server", server.0))?;
    }
    for toolset in &grants.toolsets {
        sqlx::query("INSERT INTO org_new_user_toolsets (org_id, toolset_id) VALUES ($1, $2)")
            .bind(org.0)
            .bind(toolset.0)
            .execute(&mut *conn)
            .await
            .map_err(|e| crate::crud::reference_error(e, "toolset", toolset.0))?;
    }
    Ok(())
}

/// Gives the just created end user `id` of `org` the org's default scope
/// for new users, in the caller's transaction. Not checked again against
/// the allowance: it was when set, its entries cascade with the org's
/// grants and toolsets, and the engine bounds every scope by its parent
/// chain on every decision (as for any end user whose org narrowed later).
pub(crate) async fn apply_to_new_end_user(
    conn: &mut AnyConnection,
    org: OrgId,
    id: i64,
) -> Result<()> {
    match load(conn, org).await? {
        Some(scope @ Scope::Grants(_)) => {
            write_scope(conn, OwnerCol::EndUser, id, org, &scope).await
        }
        Some(Scope::Inherit) | None => Ok(()),
    }
}

impl Store {
    /// The org's default scope for new users (`None`: no such org).
    pub async fn get_new_user_scope(&self, org: OrgId) -> Result<Option<Scope>> {
        let mut conn = self.pool().acquire().await?;
        load(&mut conn, org).await
    }

    /// Sets the org's default scope for new users: *inherit*, or grants
    /// within the org's allowance (validated exactly like an end user's
    /// scope: else [`StoreError::ScopeNotAllowed`] listing every offending
    /// entry, and nothing is written). Existing end users keep theirs.
    pub async fn set_new_user_scope(
        &self,
        actor: &str,
        org: OrgId,
        scope: Scope,
    ) -> Result<Written<Scope>> {
        let mut w = self.begin_write(actor).await?;
        let before = load(w.conn(), org)
            .await?
            .ok_or_else(|| StoreError::not_found("org", org))?;
        write(w.conn(), org, &scope).await?;
        w.check_org_scope(org, scope.clone());
        w.audit(AuditChange {
            action: "set_new_user_scope",
            entity_kind: "org",
            entity_id: org.0.to_string(),
            org: Some(org),
            before: view(&before),
            after: view(&scope),
        })
        .await?;
        let revision = w.commit().await?;
        Ok(Written {
            revision,
            value: scope,
        })
    }
}
