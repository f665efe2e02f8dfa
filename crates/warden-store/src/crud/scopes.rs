//! Scopes of teams, keys, end users and agents.

use sqlx::AnyConnection;
use warden_policy::{OrgId, PolicyChange, Scope, ScopeOwner};

use super::reference_error;
use crate::db::{to_json, RowExt};
use crate::entities::*;
use crate::error::{Result, StoreError};
use crate::store::{owner_id, owner_kind, view, AuditChange, OwnerCol, Store};
use crate::stored::{load_scope, Stored};

/// The upsert of a scope owner as it now is.
async fn owner_change(conn: &mut AnyConnection, owner: ScopeOwner) -> Result<PolicyChange> {
    match owner {
        ScopeOwner::Team(id) => upsert_of::<Team>(conn, id).await,
        ScopeOwner::Key(id) => upsert_of::<Key>(conn, id).await,
        ScopeOwner::EndUser(id) => upsert_of::<EndUser>(conn, id).await,
        ScopeOwner::Agent(id) => upsert_of::<Agent>(conn, id).await,
        ScopeOwner::Toolset(id) => upsert_of::<Toolset>(conn, id).await,
    }
}

async fn upsert_of<T: Stored>(conn: &mut AnyConnection, id: T::Id) -> Result<PolicyChange> {
    T::fetch_existing(conn, id).await?.upsert_change(conn).await
}

/// Replaces the scope of one owner (row flag and entries).
pub(crate) async fn write_scope(
    conn: &mut AnyConnection,
    col: OwnerCol,
    id: i64,
    org: OrgId,
    scope: &Scope,
) -> Result<()> {
    let c = col.column();
    sqlx::query(&format!("DELETE FROM scope_servers WHERE {c} = $1"))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!("DELETE FROM scope_toolsets WHERE {c} = $1"))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!(
        "UPDATE {} SET scope_inherit = $1 WHERE id = $2",
        col.table()
    ))
    .bind(i64::from(matches!(scope, Scope::Inherit)))
    .bind(id)
    .execute(&mut *conn)
    .await?;
    let Some(grants) = scope.grants() else {
        return Ok(());
    };
    let insert_server = format!(
        "INSERT INTO scope_servers ({c}, org_id, server_id, filter) VALUES ($1, $2, $3, $4)"
    );
    for (server, filter) in &grants.servers {
        sqlx::query(&insert_server)
            .bind(id)
            .bind(org.0)
            .bind(server.0)
            .bind(to_json(filter)?)
            .execute(&mut *conn)
            .await
            .map_err(|e| reference_error(e, "org grant for server", server.0))?;
    }
    let insert_toolset =
        format!("INSERT INTO scope_toolsets ({c}, org_id, toolset_id) VALUES ($1, $2, $3)");
    for toolset in &grants.toolsets {
        sqlx::query(&insert_toolset)
            .bind(id)
            .bind(org.0)
            .bind(toolset.0)
            .execute(&mut *conn)
            .await
            .map_err(|e| reference_error(e, "toolset", toolset.0))?;
    }
    Ok(())
}

impl Store {
    /// The scope of a team, key, end user or agent (`None` if it does not exist).
    pub async fn get_scope(&self, owner: ScopeOwner) -> Result<Option<Scope>> {
        let Some((col, id)) = OwnerCol::of(owner) else {
            return Err(StoreError::BadInput(
                "toolsets have entries, not a scope".into(),
            ));
        };
        let mut conn = self.pool().acquire().await?;
        let sql = format!("SELECT scope_inherit FROM {} WHERE id = $1", col.table());
        let inherit: Option<i64> = sqlx::query_scalar(&sql)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        match inherit {
            Some(inherit) => Ok(Some(load_scope(&mut conn, col, id, inherit != 0).await?)),
            None => Ok(None),
        }
    }

    /// Sets the scope of a team, key, end user or agent: *inherit*, or
    /// grants that must lie within the parent chain's allowance (else
    /// [`StoreError::ScopeNotAllowed`] listing every offending entry, and
    /// nothing is written).
    pub async fn set_scope(
        &self,
        actor: &str,
        owner: ScopeOwner,
        scope: Scope,
    ) -> Result<Written<Scope>> {
        let Some((col, id)) = OwnerCol::of(owner) else {
            return Err(StoreError::BadInput(
                "toolsets have entries, not a scope: use update_toolset".into(),
            ));
        };
        let mut w = self.begin_write(actor).await?;
        let sql = format!(
            "SELECT org_id, scope_inherit FROM {} WHERE id = $1",
            col.table()
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(w.conn())
            .await?
            .ok_or_else(|| StoreError::not_found(owner_kind(owner), owner_id(owner)))?;
        let org = OrgId(row.int("org_id")?);
        let before = load_scope(w.conn(), col, id, row.flag("scope_inherit")?).await?;
        write_scope(w.conn(), col, id, org, &scope).await?;
        w.check_scope(owner, scope.clone());
        let change = owner_change(w.conn(), owner).await?;
        w.change(change);
        w.audit(AuditChange {
            action: "set_scope",
            entity_kind: owner_entity_kind(owner),
            entity_id: id.to_string(),
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

fn owner_entity_kind(owner: ScopeOwner) -> &'static str {
    match owner {
        ScopeOwner::Team(_) => "team",
        ScopeOwner::Key(_) => "key",
        ScopeOwner::EndUser(_) => "end_user",
        ScopeOwner::Agent(_) => "agent",
        ScopeOwner::Toolset(_) => "toolset",
    }
}
