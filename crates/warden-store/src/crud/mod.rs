//! Typed create/read/update/delete for every policy entity. Each write is
//! one [`WriteTx`](crate::store::WriteTx): revision bump, change, audit
//! record, engine validation, commit, live snapshot installed.

mod admin_tokens;
mod agents;
mod end_users;
mod keys;
mod org_grants;
mod orgs;
mod scopes;
mod servers;
mod teams;
mod tokens;
mod toolsets;

use sqlx::AnyConnection;
use warden_policy::{OrgId, Scope};

use crate::db;
use crate::entities::*;
use crate::error::{constraint, Result, StoreError};
use crate::store::Store;
use crate::stored::{Labelled, RawId, Scoped, Stored};

pub(crate) use keys::insert_key;
pub(crate) use scopes::write_scope;
pub(crate) use tokens::shown_prefix;
pub use tokens::{token_digest, ADMIN_TOKEN_PREFIX, KEY_TOKEN_PREFIX};

fn name_or(name: String, fallback: &str) -> String {
    if name.trim().is_empty() {
        fallback.to_owned()
    } else {
        name
    }
}

fn opt_id(v: Option<impl Into<i64>>) -> Option<i64> {
    v.map(Into::into)
}

async fn exists(conn: &mut AnyConnection, sql: &str, a: i64, b: Option<i64>) -> Result<bool> {
    let mut q = sqlx::query(sql).bind(a);
    if let Some(b) = b {
        q = q.bind(b);
    }
    Ok(q.fetch_optional(&mut *conn).await?.is_some())
}

async fn require_org(conn: &mut AnyConnection, org: OrgId) -> Result<()> {
    if exists(conn, "SELECT 1 FROM orgs WHERE id = $1", org.0, None).await? {
        Ok(())
    } else {
        Err(StoreError::not_found("org", org))
    }
}

/// `id` must be an entity of `org`: another org's is dangling, like a missing one.
async fn require_in_org<T: Stored>(conn: &mut AnyConnection, id: T::Id, org: OrgId) -> Result<()> {
    let sql = format!("SELECT 1 FROM {} WHERE id = $1 AND org_id = $2", T::TABLE);
    if exists(conn, &sql, id.raw(), Some(org.0)).await? {
        Ok(())
    } else {
        Err(StoreError::Dangling {
            kind: T::KIND,
            id: id.to_string(),
        })
    }
}

pub(crate) fn check_name(kind: &'static str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(StoreError::BadInput(format!("{kind} must not be empty")));
    }
    if value.len() > 256 {
        return Err(StoreError::BadInput(format!(
            "{kind} must be at most 256 bytes"
        )));
    }
    Ok(())
}

/// A foreign key violation on inserting a reference to `kind id`.
pub(crate) fn reference_error(e: sqlx::Error, kind: &'static str, id: i64) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if matches!(db.kind(), sqlx::error::ErrorKind::ForeignKeyViolation) {
            return StoreError::Dangling {
                kind,
                id: id.to_string(),
            };
        }
    }
    StoreError::Database(e)
}

impl Store {
    /// Creates a labelled entity of `org` with `scope` (`None`: *inherit*);
    /// an empty `name` becomes the label.
    async fn create_labelled<T: Labelled + Scoped>(
        &self,
        actor: &str,
        org: OrgId,
        label: String,
        name: String,
        scope: Option<Scope>,
    ) -> Result<Written<T>> {
        T::check_label(&label)?;
        let name = name_or(name, &label);
        let scope = scope.unwrap_or(Scope::Inherit);
        let mut w = self.begin_write(actor).await?;
        require_org(w.conn(), org).await?;
        let sql = format!(
            "INSERT INTO {} (org_id, {}, name, scope_inherit, created_at_ms) \
             VALUES ($1, $2, $3, 1, $4) RETURNING id",
            T::TABLE,
            T::LABEL
        );
        let id: i64 = sqlx::query_scalar(&sql)
            .bind(org.0)
            .bind(label.clone())
            .bind(name)
            .bind(db::now_ms())
            .fetch_one(w.conn())
            .await
            .map_err(constraint(T::KIND, &label))?;
        w.commit_created_scoped(id, org, scope).await
    }
}
