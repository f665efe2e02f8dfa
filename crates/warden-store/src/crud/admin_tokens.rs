//! Admin API tokens: not policy, so writes audit without moving the revision.

use sqlx::AnyConnection;
use warden_policy::OrgId;

use super::tokens::{new_token, shown_prefix, token_digest, ADMIN_TOKEN_PREFIX};
use super::{check_name, require_org};
use crate::db;
use crate::entities::*;
use crate::error::{constraint, Result, StoreError};
use crate::store::{insert_admin_audit, view, AuditChange, Store};
use crate::stored::{fetch_optional, Decoded};
use crate::types::Secret;

impl Store {
    /// Creates an admin token (platform when `org` is `None`). Not a policy
    /// change: the revision does not move, but the audit log records it.
    /// The token (`wdna_…`) is returned this once.
    pub async fn create_admin_token(
        &self,
        actor: &str,
        name: &str,
        org: Option<OrgId>,
    ) -> Result<(AdminToken, Secret)> {
        let token = new_token(ADMIN_TOKEN_PREFIX);
        let created = self.insert_admin_token(actor, name, org, &token).await?;
        Ok((created, token))
    }

    /// Makes `token` *the* admin token called `name` (platform when `org`
    /// is `None`): how a configured bootstrap token is installed, and
    /// rotated. Idempotent: when that secret already is the token `name`,
    /// nothing is written. Otherwise, in one transaction, a different token
    /// holding `name` is deleted (the previous secret stops working at
    /// once) and the secret becomes the token `name`: created, or, when it
    /// already is a token of the same scope (say the printed first-start
    /// token), renamed. Every change is audited. A secret or a name that
    /// belongs to a token of another scope is refused.
    pub async fn ensure_admin_token(
        &self,
        actor: &str,
        name: &str,
        org: Option<OrgId>,
        token: &Secret,
    ) -> Result<AdminToken> {
        if token.expose().len() < 16 {
            return Err(StoreError::BadInput(
                "admin tokens must be at least 16 characters".into(),
            ));
        }
        check_name("admin token name", name)?;
        // Replicas starting at once with a new secret race on the name and
        // digest; the loser finds the winner's token on a second pass.
        match self.try_ensure_admin_token(actor, name, org, token).await {
            Err(StoreError::Duplicate { .. }) => {
                self.try_ensure_admin_token(actor, name, org, token).await
            }
            other => other,
        }
    }

    async fn try_ensure_admin_token(
        &self,
        actor: &str,
        name: &str,
        org: Option<OrgId>,
        token: &Secret,
    ) -> Result<AdminToken> {
        let mut tx = crate::db::begin_read_write(self.pool(), self.backend()).await?;
        let sql = AdminToken::select("WHERE token_digest = $1");
        let by_digest: Option<AdminToken> = fetch_optional(
            &mut tx,
            sqlx::query(&sql).bind(token_digest(token.expose())),
        )
        .await?;
        let sql = AdminToken::select("WHERE name = $1");
        let by_name: Option<AdminToken> =
            fetch_optional(&mut tx, sqlx::query(&sql).bind(name.to_owned())).await?;
        if let Some(same) = &by_digest {
            if same.org != org {
                return Err(StoreError::BadInput(format!(
                    "the configured admin token is already admin token {:?} of another scope",
                    same.name
                )));
            }
            if same.name == name {
                return Ok(same.clone());
            }
        }
        if let Some(previous) = by_name {
            if previous.org != org {
                return Err(StoreError::BadInput(format!(
                    "admin token name {name:?} is taken by a token of another scope; delete it first"
                )));
            }
            sqlx::query("DELETE FROM admin_tokens WHERE id = $1")
                .bind(previous.id)
                .execute(&mut *tx)
                .await?;
            audit_unversioned(
                &mut tx,
                actor,
                AuditChange {
                    action: "delete",
                    entity_kind: "admin_token",
                    entity_id: previous.id.to_string(),
                    org: previous.org,
                    before: view(&previous),
                    after: None,
                },
            )
            .await?;
        }
        let installed = match by_digest {
            Some(existing) => {
                sqlx::query("UPDATE admin_tokens SET name = $1 WHERE id = $2")
                    .bind(name.to_owned())
                    .bind(existing.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(constraint("admin token", name))?;
                let renamed = admin_token(&mut tx, existing.id).await?;
                audit_unversioned(
                    &mut tx,
                    actor,
                    AuditChange {
                        action: "update",
                        entity_kind: "admin_token",
                        entity_id: existing.id.to_string(),
                        org,
                        before: view(&existing),
                        after: view(&renamed),
                    },
                )
                .await?;
                renamed
            }
            None => insert_admin_token_in(&mut tx, actor, name, org, token).await?,
        };
        tx.commit().await?;
        Ok(installed)
    }

    async fn admin_token_by_digest(&self, digest: &str) -> Result<Option<AdminToken>> {
        let sql = AdminToken::select("WHERE token_digest = $1");
        self.find(sqlx::query(&sql).bind(digest.to_owned())).await
    }

    async fn insert_admin_token(
        &self,
        actor: &str,
        name: &str,
        org: Option<OrgId>,
        token: &Secret,
    ) -> Result<AdminToken> {
        check_name("admin token name", name)?;
        let mut tx = crate::db::begin_read_write(self.pool(), self.backend()).await?;
        let created = insert_admin_token_in(&mut tx, actor, name, org, token).await?;
        tx.commit().await?;
        Ok(created)
    }

    pub async fn delete_admin_token(&self, actor: &str, id: i64) -> Result<()> {
        let mut tx = crate::db::begin_read_write(self.pool(), self.backend()).await?;
        let before = admin_token(&mut tx, id).await?;
        sqlx::query("DELETE FROM admin_tokens WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        audit_unversioned(
            &mut tx,
            actor,
            AuditChange {
                action: "delete",
                entity_kind: "admin_token",
                entity_id: id.to_string(),
                org: before.org,
                before: view(&before),
                after: None,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Admin tokens, all (`org: None`) or of one org.
    pub async fn list_admin_tokens(&self, org: Option<OrgId>) -> Result<Vec<AdminToken>> {
        match org {
            None => {
                let sql = AdminToken::select("ORDER BY id");
                self.find_all(sqlx::query(&sql)).await
            }
            Some(org) => {
                let sql = AdminToken::select("WHERE org_id = $1 ORDER BY id");
                self.find_all(sqlx::query(&sql).bind(org.0)).await
            }
        }
    }

    /// Who `token` authenticates, if anyone.
    pub async fn authenticate_admin(&self, token: &str) -> Result<Option<AdminIdentity>> {
        Ok(self
            .admin_token_by_digest(&token_digest(token))
            .await?
            .map(|t| AdminIdentity {
                token_id: t.id,
                name: t.name,
                org: t.org,
            }))
    }
}

/// Inserts an admin token for `token` and audits its creation, through
/// `conn` (inside the caller's transaction).
async fn insert_admin_token_in(
    conn: &mut AnyConnection,
    actor: &str,
    name: &str,
    org: Option<OrgId>,
    token: &Secret,
) -> Result<AdminToken> {
    if let Some(org) = org {
        require_org(conn, org).await?;
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO admin_tokens (name, org_id, token_digest, token_prefix, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(name.to_owned())
    .bind(org.map(|o| o.0))
    .bind(token_digest(token.expose()))
    .bind(shown_prefix(token.expose()))
    .bind(db::now_ms())
    .fetch_one(&mut *conn)
    .await
    .map_err(constraint("admin token", name))?;
    let created = admin_token(conn, id).await?;
    audit_unversioned(
        conn,
        actor,
        AuditChange {
            action: "create",
            entity_kind: "admin_token",
            entity_id: id.to_string(),
            org,
            before: None,
            after: view(&created),
        },
    )
    .await?;
    Ok(created)
}

async fn admin_token(conn: &mut AnyConnection, id: i64) -> Result<AdminToken> {
    let sql = AdminToken::select("WHERE id = $1");
    fetch_optional(conn, sqlx::query(&sql).bind(id))
        .await?
        .ok_or_else(|| StoreError::not_found("admin token", id))
}

/// Audits a change that is not policy (admin tokens) at the current
/// revision, which it does not move.
async fn audit_unversioned(
    conn: &mut AnyConnection,
    actor: &str,
    change: AuditChange,
) -> Result<()> {
    let revision: i64 = sqlx::query_scalar("SELECT revision FROM policy_meta WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    insert_admin_audit(conn, actor, revision as u64, change).await
}
