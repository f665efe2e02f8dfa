//! Gateway keys.

use sqlx::AnyConnection;
use warden_policy::{KeyId, OrgId, Scope};

use super::tokens::{new_token, shown_prefix, token_digest, KEY_TOKEN_PREFIX};
use super::{check_name, require_in_org, require_org};
use crate::db;
use crate::entities::*;
use crate::error::{constraint, Result};
use crate::store::Store;
use crate::stored::Stored;
use crate::types::Secret;

/// Inserts an unrevoked key with an *inherit* scope, for `token`.
pub(crate) async fn insert_key(
    conn: &mut AnyConnection,
    new: &NewKey,
    token: &Secret,
    created_at_ms: i64,
) -> Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO keys (org_id, name, token_digest, token_prefix, team_id, agent_id, scope_inherit, \
         revoked, expires_at_ms, may_assert_end_user, may_assert_agent, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, 1, 0, $7, $8, $9, $10) RETURNING id",
    )
    .bind(new.org.0)
    .bind(new.name.clone())
    .bind(token_digest(token.expose()))
    .bind(shown_prefix(token.expose()))
    .bind(new.team.map(|t| t.0))
    .bind(new.agent.map(|a| a.0))
    .bind(new.expires_at_ms)
    .bind(i64::from(new.may_assert_end_user))
    .bind(i64::from(new.may_assert_agent))
    .bind(created_at_ms)
    .fetch_one(&mut *conn)
    .await
    .map_err(constraint("key", &new.name))
}

impl Store {
    /// Creates a key. The token (`wdn_…`, 32 random bytes) is returned this
    /// once; only its SHA-256 digest is stored.
    pub async fn create_key(&self, actor: &str, mut new: NewKey) -> Result<Written<CreatedKey>> {
        check_name("key name", &new.name)?;
        let scope = new.scope.take().unwrap_or(Scope::Inherit);
        let token = new_token(KEY_TOKEN_PREFIX);
        let mut w = self.begin_write(actor).await?;
        require_org(w.conn(), new.org).await?;
        if let Some(team) = new.team {
            require_in_org::<Team>(w.conn(), team, new.org).await?;
        }
        if let Some(agent) = new.agent {
            require_in_org::<Agent>(w.conn(), agent, new.org).await?;
        }
        let id = insert_key(w.conn(), &new, &token, db::now_ms()).await?;
        let written: Written<Key> = w.commit_created_scoped(id, new.org, scope).await?;
        Ok(Written {
            revision: written.revision,
            value: CreatedKey {
                key: written.value,
                token,
            },
        })
    }

    pub async fn update_key(
        &self,
        actor: &str,
        id: KeyId,
        patch: KeyPatch,
    ) -> Result<Written<Key>> {
        if let Some(name) = &patch.name {
            check_name("key name", name)?;
        }
        let mut w = self.begin_write(actor).await?;
        let before = Key::fetch_existing(w.conn(), id).await?;
        let name = patch.name.unwrap_or_else(|| before.name.clone());
        sqlx::query(
            "UPDATE keys SET name = $1, revoked = $2, expires_at_ms = $3, may_assert_end_user = $4, \
             may_assert_agent = $5 WHERE id = $6",
        )
        .bind(name.clone())
        .bind(i64::from(patch.revoked.unwrap_or(before.revoked)))
        .bind(patch.expires_at_ms.unwrap_or(before.expires_at_ms))
        .bind(i64::from(patch.may_assert_end_user.unwrap_or(before.may_assert_end_user)))
        .bind(i64::from(patch.may_assert_agent.unwrap_or(before.may_assert_agent)))
        .bind(id.0)
        .execute(w.conn())
        .await
        .map_err(constraint("key", &name))?;
        let after = Key::fetch_existing(w.conn(), id).await?;
        let action = if after.revoked && !before.revoked {
            "revoke"
        } else {
            "update"
        };
        w.commit_upsert(action, Some(&before), after).await
    }

    pub async fn revoke_key(&self, actor: &str, id: KeyId) -> Result<Written<Key>> {
        self.update_key(
            actor,
            id,
            KeyPatch {
                revoked: Some(true),
                ..Default::default()
            },
        )
        .await
    }

    pub async fn delete_key(&self, actor: &str, id: KeyId) -> Result<u64> {
        self.delete_stored::<Key>(actor, id).await
    }

    pub async fn get_key(&self, id: KeyId) -> Result<Option<Key>> {
        self.get_stored(id).await
    }

    pub async fn get_key_by_name(&self, org: OrgId, name: &str) -> Result<Option<Key>> {
        self.find_in_org(org, "name", name).await
    }

    pub async fn list_keys(&self, org: OrgId, page: Page) -> Result<Vec<Key>> {
        self.list_in_org(org, page).await
    }
}
