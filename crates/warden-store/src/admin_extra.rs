//! Added by the admin engineer for the declarative bootstrap: a key whose
//! token comes from the operator (an environment variable) instead of
//! being generated. Same transaction shape as `Store::create_key`.

use warden_policy::Scope;

use crate::crud::{insert_key, shown_prefix};
use crate::db;
use crate::entities::{Key, NewKey, Written};
use crate::error::{Result, StoreError};
use crate::store::Store;
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
        let created_at_ms = db::now_ms();
        let mut w = self.begin_write(actor).await?;
        let id = insert_key(w.conn(), &new, token, created_at_ms).await?;
        let key = Key {
            id: warden_policy::KeyId(id),
            org: new.org,
            name: new.name,
            token_prefix: shown_prefix(token.expose()),
            team: new.team,
            agent: new.agent,
            scope: Scope::Inherit,
            revoked: false,
            expires_at_ms: new.expires_at_ms,
            may_assert_end_user: new.may_assert_end_user,
            may_assert_agent: new.may_assert_agent,
            created_at_ms,
        };
        w.commit_upsert("create", None, key).await
    }
}
