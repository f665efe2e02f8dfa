//! Added by the admin engineer for the declarative bootstrap: a key whose
//! token comes from the operator (an environment variable) instead of
//! being generated. Same transaction shape as `Store::create_key`.

use warden_policy::{KeyRow, PolicyChange, Scope};

use crate::crud::token_digest;
use crate::db;
use crate::entities::{Key, NewKey, Written};
use crate::error::{constraint, Result, StoreError};
use crate::store::{view, AuditChange, Store};
use crate::types::Secret;

/// Shortest operator-chosen key token accepted.
pub const MIN_GIVEN_TOKEN_LEN: usize = 16;

impl Store {
    /// Creates a key with the given `token` (only its digest is stored).
    /// The key starts with an *inherit* scope: set a scope afterwards with
    /// [`Store::set_scope`], which checks it against the parent chain.
    pub async fn create_key_with_token(
        &self,
        actor: &str,
        new: NewKey,
        token: &Secret,
    ) -> Result<Written<Key>> {
        if token.expose().len() < MIN_GIVEN_TOKEN_LEN {
            return Err(StoreError::BadInput(format!(
                "key tokens must be at least {MIN_GIVEN_TOKEN_LEN} characters"
            )));
        }
        if new.scope.as_ref().is_some_and(|s| *s != Scope::Inherit) {
            return Err(StoreError::BadInput(
                "create_key_with_token creates keys with an inherit scope".into(),
            ));
        }
        if new.name.trim().is_empty() {
            return Err(StoreError::BadInput("key name must not be empty".into()));
        }
        let digest = token_digest(token.expose());
        let prefix: String = token.expose().chars().take(12).collect();
        let created_at_ms = db::now_ms();
        let mut w = self.begin_write(actor).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO keys (org_id, name, token_digest, token_prefix, team_id, agent_id, scope_inherit, \
             revoked, expires_at_ms, may_assert_end_user, may_assert_agent, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, 1, 0, $7, $8, $9, $10) RETURNING id",
        )
        .bind(new.org.0)
        .bind(new.name.clone())
        .bind(digest.clone())
        .bind(prefix.clone())
        .bind(new.team.map(|t| t.0))
        .bind(new.agent.map(|a| a.0))
        .bind(new.expires_at_ms)
        .bind(i64::from(new.may_assert_end_user))
        .bind(i64::from(new.may_assert_agent))
        .bind(created_at_ms)
        .fetch_one(w.conn())
        .await
        .map_err(constraint("key", &new.name))?;
        let key = Key {
            id: warden_policy::KeyId(id),
            org: new.org,
            name: new.name,
            token_prefix: prefix,
            team: new.team,
            agent: new.agent,
            scope: Scope::Inherit,
            revoked: false,
            expires_at_ms: new.expires_at_ms,
            may_assert_end_user: new.may_assert_end_user,
            may_assert_agent: new.may_assert_agent,
            created_at_ms,
        };
        w.change(PolicyChange::UpsertKey(KeyRow {
            id: key.id,
            org: key.org,
            token_digest: digest,
            team: key.team,
            agent: key.agent,
            scope: Scope::Inherit,
            revoked: false,
            expires_at_ms: key.expires_at_ms,
            may_assert_end_user: key.may_assert_end_user,
            may_assert_agent: key.may_assert_agent,
        }));
        w.audit(AuditChange {
            action: "create",
            entity_kind: "key",
            entity_id: id.to_string(),
            org: Some(key.org),
            before: None,
            after: view(&key),
        })
        .await?;
        let revision = w.commit().await?;
        Ok(Written {
            revision,
            value: key,
        })
    }
}
