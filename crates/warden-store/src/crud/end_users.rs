//! End users.

use warden_policy::{EndUserId, OrgId};

use crate::entities::*;
use crate::error::Result;
use crate::store::Store;
use crate::stored::{Labelled, Stored};

impl Store {
    pub async fn create_end_user(&self, actor: &str, new: NewEndUser) -> Result<Written<EndUser>> {
        self.create_labelled(actor, new.org, new.external_id, new.name, new.scope)
            .await
    }

    pub async fn update_end_user(
        &self,
        actor: &str,
        id: EndUserId,
        patch: EndUserPatch,
    ) -> Result<Written<EndUser>> {
        if let Some(label) = &patch.external_id {
            EndUser::check_label(label)?;
        }
        let mut w = self.begin_write(actor).await?;
        let before = EndUser::fetch_existing(w.conn(), id).await?;
        w.rename(id, &before, patch.external_id, patch.name).await?;
        if let Some(disabled) = patch.disabled {
            sqlx::query("UPDATE end_users SET disabled = $1 WHERE id = $2")
                .bind(i64::from(disabled))
                .bind(id.0)
                .execute(w.conn())
                .await?;
        }
        w.commit_written("update", id, Some(&before)).await
    }

    pub async fn delete_end_user(&self, actor: &str, id: EndUserId) -> Result<u64> {
        self.delete_stored::<EndUser>(actor, id).await
    }

    pub async fn get_end_user(&self, id: EndUserId) -> Result<Option<EndUser>> {
        self.get_stored(id).await
    }

    pub async fn get_end_user_by_external_id(
        &self,
        org: OrgId,
        external_id: &str,
    ) -> Result<Option<EndUser>> {
        self.find_in_org(org, "external_id", external_id).await
    }

    pub async fn list_end_users(&self, org: OrgId, page: Page) -> Result<Vec<EndUser>> {
        self.list_in_org(org, page).await
    }
}
