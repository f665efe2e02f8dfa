//! Identity providers (migration 0004) and the just-in-time provisioning
//! of people who sign in through them.
//!
//! A provider is platform configuration: its writes bump the revision like
//! every policy write (so every replica's gateway reloads the providers)
//! and are audited, but change no engine row. Provisioning creates engine
//! rows (a sign-in key, an end user) in one write.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use warden_identity::ProviderConfig;
use warden_policy::{EndUserId, KeyId, OrgId, PolicyChange, TeamId};

use crate::db::{self, RowExt};
use crate::entities::{EndUser, Key, Written};
use crate::error::{constraint, Result, StoreError};
use crate::store::{view, AuditChange, Store, WriteTx};
use crate::stored::{Recorded, Stored};

/// How a sign-in key's `token_digest` starts (a key's is hex SHA-256).
pub const SIGN_IN_KEY_PREFIX: &str = "idp:";

/// A registered identity provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityProvider {
    pub id: i64,
    pub enabled: bool,
    pub config: ProviderConfig,
    pub created_at_ms: i64,
}

/// `None` keeps a field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityProviderPatch {
    pub enabled: Option<bool>,
    pub config: Option<ProviderConfig>,
}

const COLUMNS: &str = "id, slug, issuer, enabled, config, created_at_ms";

fn decode(r: &AnyRow) -> Result<IdentityProvider> {
    let config: ProviderConfig = r.json("config")?;
    Ok(IdentityProvider {
        id: r.int("id")?,
        enabled: r.int("enabled")? == 1,
        config,
        created_at_ms: r.int("created_at_ms")?,
    })
}

fn check(config: &ProviderConfig) -> Result<()> {
    warden_policy::validate_slug("identity provider", &config.slug)?;
    config
        .validate()
        .map_err(|e| StoreError::BadInput(e.to_string()))
}

/// The orgs, teams and agents the configuration names must exist.
async fn check_references(conn: &mut AnyConnection, config: &ProviderConfig) -> Result<()> {
    async fn org_id(conn: &mut AnyConnection, slug: &str) -> Result<i64> {
        sqlx::query_scalar("SELECT id FROM orgs WHERE slug = $1")
            .bind(slug.to_owned())
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| StoreError::Dangling {
                kind: "org",
                id: slug.to_owned(),
            })
    }
    for org in config.orgs.orgs() {
        org_id(conn, org).await?;
    }
    for gt in &config.group_teams {
        let org = org_id(conn, &gt.org).await?;
        let found: Option<i64> =
            sqlx::query_scalar("SELECT id FROM teams WHERE org_id = $1 AND slug = $2")
                .bind(org)
                .bind(gt.team.clone())
                .fetch_optional(&mut *conn)
                .await?;
        if found.is_none() {
            return Err(StoreError::Dangling {
                kind: "team",
                id: format!("{}/{}", gt.org, gt.team),
            });
        }
    }
    for ca in &config.client_agents {
        let mut any = false;
        for org in config.orgs.orgs() {
            let org = org_id(conn, org).await?;
            let found: Option<i64> =
                sqlx::query_scalar("SELECT id FROM agents WHERE org_id = $1 AND slug = $2")
                    .bind(org)
                    .bind(ca.agent.clone())
                    .fetch_optional(&mut *conn)
                    .await?;
            any |= found.is_some();
        }
        if !any {
            return Err(StoreError::Dangling {
                kind: "agent",
                id: ca.agent.clone(),
            });
        }
    }
    Ok(())
}

async fn fetch(conn: &mut AnyConnection, id: i64) -> Result<Option<IdentityProvider>> {
    let sql = format!("SELECT {COLUMNS} FROM identity_providers WHERE id = $1");
    sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(decode)
        .transpose()
}

impl WriteTx<'_> {
    async fn audit_provider(
        &mut self,
        action: &'static str,
        before: Option<&IdentityProvider>,
        after: Option<&IdentityProvider>,
    ) -> Result<()> {
        let id = after.or(before).map_or(0, |p| p.id);
        self.audit(AuditChange {
            action,
            entity_kind: "identity_provider",
            entity_id: id.to_string(),
            org: None,
            before: before.and_then(view),
            after: after.and_then(view),
        })
        .await
    }

    /// Records a created engine row (a sign-in key or an end user).
    async fn record_created<T: Recorded>(&mut self, row: &T) -> Result<()> {
        let change = row.upsert_change(self.conn()).await?;
        self.change(change);
        self.audit(AuditChange {
            action: "create",
            entity_kind: T::AUDIT_KIND,
            entity_id: row.audit_id(),
            org: row.audit_org(),
            before: None,
            after: view(row),
        })
        .await
    }
}

impl Store {
    pub async fn create_identity_provider(
        &self,
        actor: &str,
        config: ProviderConfig,
    ) -> Result<Written<IdentityProvider>> {
        check(&config)?;
        let mut w = self.begin_write(actor).await?;
        check_references(w.conn(), &config).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO identity_providers (slug, issuer, enabled, config, created_at_ms) \
             VALUES ($1, $2, 1, $3, $4) RETURNING id",
        )
        .bind(config.slug.clone())
        .bind(config.issuer.clone())
        .bind(db::to_json(&config)?)
        .bind(db::now_ms())
        .fetch_one(w.conn())
        .await
        .map_err(constraint("identity provider", &config.slug))?;
        let after = fetch(w.conn(), id)
            .await?
            .ok_or_else(|| StoreError::not_found("identity provider", id))?;
        w.audit_provider("create", None, Some(&after)).await?;
        let revision = w.commit().await?;
        Ok(Written {
            revision,
            value: after,
        })
    }

    /// Changes a provider. Disabling one refuses its tokens from the next
    /// revision on; its sign-in keys are revoked so live sessions end.
    pub async fn update_identity_provider(
        &self,
        actor: &str,
        id: i64,
        patch: IdentityProviderPatch,
    ) -> Result<Written<IdentityProvider>> {
        let mut w = self.begin_write(actor).await?;
        let before = fetch(w.conn(), id)
            .await?
            .ok_or_else(|| StoreError::not_found("identity provider", id))?;
        let mut config = before.config.clone();
        if let Some(c) = patch.config {
            if c.slug != before.config.slug {
                return Err(StoreError::BadInput(
                    "an identity provider's slug cannot change".into(),
                ));
            }
            check(&c)?;
            check_references(w.conn(), &c).await?;
            config = c;
        }
        let enabled = patch.enabled.unwrap_or(before.enabled);
        sqlx::query(
            "UPDATE identity_providers SET issuer = $1, enabled = $2, config = $3 WHERE id = $4",
        )
        .bind(config.issuer.clone())
        .bind(i64::from(enabled))
        .bind(db::to_json(&config)?)
        .bind(id)
        .execute(w.conn())
        .await
        .map_err(constraint("identity provider", &config.slug))?;
        if !enabled {
            self.revoke_sign_in_keys(&mut w, &config.slug).await?;
        }
        let after = fetch(w.conn(), id)
            .await?
            .ok_or_else(|| StoreError::not_found("identity provider", id))?;
        w.audit_provider("update", Some(&before), Some(&after))
            .await?;
        let revision = w.commit().await?;
        Ok(Written {
            revision,
            value: after,
        })
    }

    async fn revoke_sign_in_keys(&self, w: &mut WriteTx<'_>, slug: &str) -> Result<()> {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM keys WHERE token_digest LIKE $1 AND revoked = 0")
                .bind(format!("{SIGN_IN_KEY_PREFIX}{slug}:%"))
                .fetch_all(w.conn())
                .await?;
        for id in ids {
            sqlx::query("UPDATE keys SET revoked = 1 WHERE id = $1")
                .bind(id)
                .execute(w.conn())
                .await?;
            let key = Key::fetch_existing(w.conn(), KeyId(id)).await?;
            let change = key.upsert_change(w.conn()).await?;
            w.change(change);
        }
        Ok(())
    }

    /// Deletes a provider and its sign-in keys (their sessions end).
    pub async fn delete_identity_provider(&self, actor: &str, id: i64) -> Result<u64> {
        let mut w = self.begin_write(actor).await?;
        let before = fetch(w.conn(), id)
            .await?
            .ok_or_else(|| StoreError::not_found("identity provider", id))?;
        let keys: Vec<i64> = sqlx::query_scalar("SELECT id FROM keys WHERE token_digest LIKE $1")
            .bind(format!("{SIGN_IN_KEY_PREFIX}{}:%", before.config.slug))
            .fetch_all(w.conn())
            .await?;
        for k in keys {
            sqlx::query("DELETE FROM keys WHERE id = $1")
                .bind(k)
                .execute(w.conn())
                .await?;
            w.change(PolicyChange::DeleteKey(KeyId(k)));
        }
        sqlx::query("DELETE FROM identity_providers WHERE id = $1")
            .bind(id)
            .execute(w.conn())
            .await?;
        w.audit_provider("delete", Some(&before), None).await?;
        w.commit().await
    }

    pub async fn get_identity_provider(&self, id: i64) -> Result<Option<IdentityProvider>> {
        let mut conn = self.pool().acquire().await?;
        fetch(&mut conn, id).await
    }

    /// Every provider, by id.
    pub async fn list_identity_providers(&self) -> Result<Vec<IdentityProvider>> {
        let sql = format!("SELECT {COLUMNS} FROM identity_providers ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(self.pool()).await?;
        rows.iter().map(decode).collect()
    }

    /// The configurations of enabled providers (what the gateway loads).
    pub async fn enabled_identity_providers(&self) -> Result<Vec<ProviderConfig>> {
        Ok(self
            .list_identity_providers()
            .await?
            .into_iter()
            .filter(|p| p.enabled)
            .map(|p| p.config)
            .collect())
    }

    /// Creates, in one policy write, what a first-seen signed-in person
    /// lacks: the sign-in key `key_digest` of `provider` for (org, team)
    /// and the end user `external_id` (with the org's default scope for
    /// new users: *inherit* unless set). Rows that exist
    /// are left alone. Returns the revision holding both.
    pub async fn provision_sign_in(
        &self,
        provider: &str,
        org: OrgId,
        team: Option<TeamId>,
        key_digest: &str,
        external_id: &str,
    ) -> Result<u64> {
        let expected = match team {
            Some(t) => format!("{SIGN_IN_KEY_PREFIX}{provider}:{org}:{t}"),
            None => format!("{SIGN_IN_KEY_PREFIX}{provider}:{org}:-"),
        };
        if key_digest != expected {
            return Err(StoreError::BadInput("not a sign-in key digest".into()));
        }
        let enabled: Option<i64> =
            sqlx::query_scalar("SELECT enabled FROM identity_providers WHERE slug = $1")
                .bind(provider.to_owned())
                .fetch_optional(self.pool())
                .await?;
        if enabled != Some(1) {
            return Err(StoreError::not_found("identity provider", provider));
        }
        let actor = format!("identity-provider:{provider}");
        let mut w = self.begin_write(&actor).await?;
        let key: Option<i64> = sqlx::query_scalar("SELECT id FROM keys WHERE token_digest = $1")
            .bind(key_digest.to_owned())
            .fetch_optional(w.conn())
            .await?;
        if key.is_none() {
            let name = match team {
                Some(t) => format!("sign-in via {provider} (team {t})"),
                None => format!("sign-in via {provider}"),
            };
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO keys (org_id, name, token_digest, token_prefix, team_id, agent_id, \
                 scope_inherit, revoked, expires_at_ms, may_assert_end_user, may_assert_agent, \
                 created_at_ms) VALUES ($1, $2, $3, 'idp', $4, NULL, 1, 0, NULL, 1, 1, $5) \
                 RETURNING id",
            )
            .bind(org.0)
            .bind(name.clone())
            .bind(key_digest.to_owned())
            .bind(team.map(|t| t.0))
            .bind(db::now_ms())
            .fetch_one(w.conn())
            .await
            .map_err(constraint("key", &name))?;
            let key = Key::fetch_existing(w.conn(), KeyId(id)).await?;
            w.record_created(&key).await?;
        }
        let user: Option<i64> =
            sqlx::query_scalar("SELECT id FROM end_users WHERE org_id = $1 AND external_id = $2")
                .bind(org.0)
                .bind(external_id.to_owned())
                .fetch_optional(w.conn())
                .await?;
        if user.is_none() {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO end_users (org_id, external_id, name, scope_inherit, created_at_ms) \
                 VALUES ($1, $2, $3, 1, $4) RETURNING id",
            )
            .bind(org.0)
            .bind(external_id.to_owned())
            .bind(external_id.to_owned())
            .bind(db::now_ms())
            .fetch_one(w.conn())
            .await
            .map_err(constraint("end user", external_id))?;
            crate::new_user_scope::apply_to_new_end_user(w.conn(), org, id).await?;
            let user = EndUser::fetch_existing(w.conn(), EndUserId(id)).await?;
            w.record_created(&user).await?;
        }
        w.commit().await
    }
}
