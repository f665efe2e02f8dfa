//! Orgs.

use warden_policy::{validate_slug, OrgId};

use super::name_or;
use crate::db;
use crate::entities::*;
use crate::error::{constraint, Result};
use crate::store::Store;
use crate::stored::{Decoded, Stored};

impl Store {
    pub async fn create_org(&self, actor: &str, new: NewOrg) -> Result<Written<Org>> {
        validate_slug("org", &new.slug)?;
        let name = name_or(new.name, &new.slug);
        let mut w = self.begin_write(actor).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO orgs (slug, name, suspended, created_at_ms) VALUES ($1, $2, 0, $3) RETURNING id",
        )
        .bind(new.slug.clone())
        .bind(name)
        .bind(db::now_ms())
        .fetch_one(w.conn())
        .await
        .map_err(constraint("org", &new.slug))?;
        w.commit_written("create", OrgId(id), None).await
    }

    pub async fn update_org(
        &self,
        actor: &str,
        id: OrgId,
        patch: OrgPatch,
    ) -> Result<Written<Org>> {
        if let Some(slug) = &patch.slug {
            validate_slug("org", slug)?;
        }
        let mut w = self.begin_write(actor).await?;
        let before = Org::fetch_existing(w.conn(), id).await?;
        let slug = patch.slug.unwrap_or_else(|| before.slug.clone());
        sqlx::query("UPDATE orgs SET slug = $1, name = $2, suspended = $3 WHERE id = $4")
            .bind(slug.clone())
            .bind(patch.name.unwrap_or_else(|| before.name.clone()))
            .bind(i64::from(patch.suspended.unwrap_or(before.suspended)))
            .bind(id.0)
            .execute(w.conn())
            .await
            .map_err(constraint("org", &slug))?;
        w.commit_written("update", id, Some(&before)).await
    }

    /// Deletes an org and everything in it (servers it owns, grants, teams,
    /// keys, end users, agents, toolsets, org admin tokens).
    pub async fn delete_org(&self, actor: &str, id: OrgId) -> Result<u64> {
        self.delete_stored::<Org>(actor, id).await
    }

    pub async fn get_org(&self, id: OrgId) -> Result<Option<Org>> {
        self.get_stored(id).await
    }

    pub async fn get_org_by_slug(&self, slug: &str) -> Result<Option<Org>> {
        let sql = Org::select("WHERE slug = $1");
        self.find(sqlx::query(&sql).bind(slug.to_owned())).await
    }

    pub async fn list_orgs(&self, page: Page) -> Result<Vec<Org>> {
        let (after, limit) = page.bounds();
        let sql = Org::select("WHERE id > $1 ORDER BY id LIMIT $2");
        self.find_all(sqlx::query(&sql).bind(after).bind(limit))
            .await
    }
}
