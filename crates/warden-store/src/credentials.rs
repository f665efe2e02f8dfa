//! Each person's own credentials upstream (migration 0007,
//! docs/credentials.md): how a server authenticates upstream beyond its
//! static secret headers, the tokens stored per (end user, server) and
//! the revocations still to be sent (consents in progress: `consents.rs`).
//!
//! Tokens are encrypted at rest like secret headers (`crypto.rs`), with
//! associated data naming the end user, server and token kind, so a
//! ciphertext cannot be moved to another person's row unnoticed. Nothing
//! here returns a token except [`Store::user_credential`], for the one
//! place that sends it upstream; lists and audit records carry metadata
//! only.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use warden_policy::{EndUserId, OrgId, ServerId};

use crate::db::{self, RowExt};
use crate::error::{Result, StoreError};
use crate::store::{insert_admin_audit, AuditChange, Store};
use crate::types::Secret;

/// How Warden authenticates to a server upstream when it is not `static`
/// (its secret headers only, the default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum UpstreamAuthConfig {
    /// Warden is an OAuth client of the upstream's authorization server;
    /// each person consents once (authorization code with PKCE).
    OauthPerUser {
        /// The authorization server's issuer. `None`: discovered from the
        /// upstream's protected resource metadata (RFC 9728).
        #[serde(default)]
        authorization_server: Option<String>,
        /// Scopes asked for. Empty: the resource metadata's
        /// `scopes_supported`, if any.
        #[serde(default)]
        scopes: Vec<String>,
        /// Warden's client id there. `None`: registered dynamically
        /// (RFC 7591) on first use.
        #[serde(default)]
        client_id: Option<String>,
    },
    /// The person's identity provider token is exchanged (RFC 8693) at
    /// that provider for a token whose audience is the upstream.
    TokenExchange {
        /// The identity provider (slug) whose tokens are exchanged; only
        /// people signed in through it can call the server.
        identity_provider: String,
        /// The `audience` asked for (the upstream's identifier).
        audience: String,
        /// The RFC 8707 `resource` asked for, if the provider wants one.
        #[serde(default)]
        resource: Option<String>,
        #[serde(default)]
        scopes: Vec<String>,
        /// Warden's client id at the provider.
        client_id: String,
    },
}

impl UpstreamAuthConfig {
    pub fn mode(&self) -> &'static str {
        match self {
            UpstreamAuthConfig::OauthPerUser { .. } => "oauth_per_user",
            UpstreamAuthConfig::TokenExchange { .. } => "token_exchange",
        }
    }

    /// Refuses configurations that cannot work.
    pub fn validate(&self) -> Result<()> {
        fn url(field: &str, value: &str) -> Result<()> {
            let parsed = url::Url::parse(value)
                .map_err(|e| StoreError::BadInput(format!("{field}: not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "https" | "http") {
                return Err(StoreError::BadInput(format!("{field}: must be http(s)")));
            }
            Ok(())
        }
        fn bounded(field: &str, value: &str) -> Result<()> {
            if value.is_empty() || value.len() > 2048 {
                return Err(StoreError::BadInput(format!(
                    "{field}: must be 1 to 2048 characters"
                )));
            }
            Ok(())
        }
        fn scopes(scopes: &[String]) -> Result<()> {
            if scopes.len() > 64 {
                return Err(StoreError::BadInput("scopes: at most 64".into()));
            }
            for s in scopes {
                if s.is_empty() || s.len() > 256 || s.chars().any(|c| c.is_whitespace()) {
                    return Err(StoreError::BadInput(format!(
                        "scopes: {s:?} is not a scope token"
                    )));
                }
            }
            Ok(())
        }
        match self {
            UpstreamAuthConfig::OauthPerUser {
                authorization_server,
                scopes: s,
                client_id,
            } => {
                if let Some(issuer) = authorization_server {
                    url("authorization_server", issuer)?;
                }
                if let Some(id) = client_id {
                    bounded("client_id", id)?;
                }
                scopes(s)
            }
            UpstreamAuthConfig::TokenExchange {
                identity_provider,
                audience,
                resource,
                scopes: s,
                client_id,
            } => {
                warden_policy::validate_slug("identity provider", identity_provider)?;
                bounded("audience", audience)?;
                if let Some(r) = resource {
                    url("resource", r)?;
                }
                bounded("client_id", client_id)?;
                scopes(s)
            }
        }
    }
}

/// A write of a server's upstream authentication.
#[derive(Debug, Clone, Deserialize)]
pub struct UpstreamAuthInput {
    #[serde(flatten)]
    pub config: UpstreamAuthConfig,
    /// Write-only.
    #[serde(default)]
    pub client_secret: Option<Secret>,
}

/// The client Warden registered dynamically (RFC 7591) at an
/// authorization server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredClient {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
}

#[derive(Serialize, Deserialize)]
struct StoredRegisteredClient {
    issuer: String,
    client_id: String,
    client_secret: Option<String>,
}

/// A server's upstream authentication as the vault uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUpstreamAuth {
    pub server: ServerId,
    pub config: UpstreamAuthConfig,
    pub client_secret: Option<Secret>,
    pub registered: Option<RegisteredClient>,
}

/// What the admin API shows: no secret, only whether one is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpstreamAuthView {
    #[serde(flatten)]
    pub config: UpstreamAuthConfig,
    pub has_client_secret: bool,
    /// The client id Warden registered dynamically, if it did.
    pub registered_client_id: Option<String>,
}

impl From<&ServerUpstreamAuth> for UpstreamAuthView {
    fn from(a: &ServerUpstreamAuth) -> Self {
        UpstreamAuthView {
            config: a.config.clone(),
            has_client_secret: a.client_secret.is_some(),
            registered_client_id: a.registered.as_ref().map(|r| r.client_id.clone()),
        }
    }
}

/// Tokens to store for one person and one server.
#[derive(Debug, Clone)]
pub struct NewUserCredential {
    pub org: OrgId,
    pub end_user: EndUserId,
    pub server: ServerId,
    pub tokens: TokenSet,
    pub token_endpoint: String,
    pub revocation_endpoint: Option<String>,
    pub client_id: String,
}

/// An access token, its refresh token, lifetime and scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub expires_at_ms: Option<i64>,
    /// Space-separated.
    pub scopes: String,
}

/// A stored credential with its tokens decrypted: only for sending upstream.
#[derive(Debug, Clone)]
pub struct UserCredential {
    pub id: i64,
    pub org: OrgId,
    pub end_user: EndUserId,
    pub server: ServerId,
    pub tokens: TokenSet,
    pub token_endpoint: String,
    pub revocation_endpoint: Option<String>,
    pub client_id: String,
}

/// A connection as people and admins see it: never a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialInfo {
    pub id: i64,
    pub org: OrgId,
    pub end_user: EndUserId,
    pub end_user_external_id: String,
    pub server: ServerId,
    pub server_slug: String,
    pub scopes: String,
    pub expires_at_ms: Option<i64>,
    pub has_refresh_token: bool,
    pub revocable_upstream: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// Tokens queued for upstream revocation (RFC 7009), decrypted.
#[derive(Debug, Clone)]
pub struct PendingRevocation {
    pub id: i64,
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub revocation_endpoint: String,
    pub client_id: String,
    pub attempts: i64,
}

fn token_aad(end_user: i64, server: i64, kind: &str) -> String {
    format!("user_credential:{end_user}:{server}:{kind}")
}

const INFO_SQL: &str = "SELECT c.id, c.org_id, c.end_user_id, u.external_id, c.server_id, \
     s.slug, c.scopes, c.expires_at_ms, c.refresh_token, c.revocation_endpoint, \
     c.created_at_ms, c.updated_at_ms \
     FROM user_credentials c JOIN end_users u ON u.id = c.end_user_id \
     JOIN servers s ON s.id = c.server_id";

fn decode_info(r: &AnyRow) -> Result<CredentialInfo> {
    Ok(CredentialInfo {
        id: r.int("id")?,
        org: OrgId(r.int("org_id")?),
        end_user: EndUserId(r.int("end_user_id")?),
        end_user_external_id: r.text("external_id")?,
        server: ServerId(r.int("server_id")?),
        server_slug: r.text("slug")?,
        scopes: r.text("scopes")?,
        expires_at_ms: r.opt_int("expires_at_ms")?,
        has_refresh_token: r.opt_text("refresh_token")?.is_some(),
        revocable_upstream: r.opt_text("revocation_endpoint")?.is_some(),
        created_at_ms: r.int("created_at_ms")?,
        updated_at_ms: r.int("updated_at_ms")?,
    })
}

async fn current_revision(conn: &mut AnyConnection) -> Result<u64> {
    let r: i64 = sqlx::query_scalar("SELECT revision FROM policy_meta WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    Ok(r as u64)
}

/// Audits a change to a person's connection (never a token value). Not a
/// policy write: the revision does not move.
async fn audit_connection(
    conn: &mut AnyConnection,
    actor: &str,
    action: &'static str,
    info: &CredentialInfo,
) -> Result<()> {
    let revision = current_revision(conn).await?;
    let view = serde_json::to_value(info).ok();
    let (before, after) = match action {
        "disconnect" => (view, None),
        _ => (None, view),
    };
    insert_admin_audit(
        conn,
        actor,
        revision,
        AuditChange {
            action,
            entity_kind: "user_credential",
            entity_id: info.id.to_string(),
            org: Some(info.org),
            before,
            after,
        },
    )
    .await
}

impl Store {
    fn encrypt_opt(&self, aad: &str, value: Option<&Secret>) -> Result<Option<String>> {
        value.map(|v| self.inner.cipher.encrypt(aad, v)).transpose()
    }

    /// Sets (or, with `None`, clears back to `static`) how a server
    /// authenticates upstream. A policy write: audited (without the client
    /// secret) and the revision moves so every replica's vault reloads it.
    /// Changing the mode or the authorization server deletes the tokens
    /// stored for the server (they were issued for the old one) and queues
    /// their revocation.
    pub async fn set_upstream_auth(
        &self,
        actor: &str,
        server: ServerId,
        input: Option<UpstreamAuthInput>,
    ) -> Result<u64> {
        if let Some(i) = &input {
            i.config.validate()?;
            if let Some(s) = &i.client_secret {
                if s.expose().is_empty() || s.expose().len() > 4096 {
                    return Err(StoreError::BadInput(
                        "client_secret: must be 1 to 4096 characters".into(),
                    ));
                }
            }
        }
        let before = self.upstream_auth(server).await?;
        let mut w = self.begin_write(actor).await?;
        let owner: Option<Option<i64>> =
            sqlx::query_scalar("SELECT owner_org FROM servers WHERE id = $1")
                .bind(server.0)
                .fetch_optional(w.conn())
                .await?;
        let Some(owner) = owner else {
            return Err(StoreError::not_found("server", server));
        };
        let keeps_tokens = match (&before, &input) {
            (Some(b), Some(i)) => same_issuer(&b.config, &i.config),
            _ => false,
        };
        if !keeps_tokens {
            sqlx::query("DELETE FROM user_credentials WHERE server_id = $1")
                .bind(server.0)
                .execute(w.conn())
                .await?;
        }
        sqlx::query("DELETE FROM server_upstream_auth WHERE server_id = $1")
            .bind(server.0)
            .execute(w.conn())
            .await?;
        let after = match &input {
            None => None,
            Some(i) => {
                let secret = self.encrypt_opt(
                    &format!("upstream_auth:{}", server.0),
                    i.client_secret.as_ref(),
                )?;
                // A dynamically registered client stays valid while the
                // authorization server does.
                let registered = before
                    .as_ref()
                    .filter(|_| keeps_tokens)
                    .and_then(|b| b.registered.clone());
                let registered = registered
                    .map(|r| self.encode_registered(server, &r))
                    .transpose()?;
                sqlx::query(
                    "INSERT INTO server_upstream_auth \
                     (server_id, mode, config, client_secret, registered_client, updated_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(server.0)
                .bind(i.config.mode())
                .bind(db::to_json(&i.config)?)
                .bind(secret)
                .bind(registered)
                .bind(db::now_ms())
                .execute(w.conn())
                .await?;
                Some(UpstreamAuthView {
                    config: i.config.clone(),
                    has_client_secret: i.client_secret.is_some(),
                    registered_client_id: None,
                })
            }
        };
        w.audit(AuditChange {
            action: "set_upstream_auth",
            entity_kind: "server",
            entity_id: server.0.to_string(),
            org: owner.map(OrgId),
            before: before
                .as_ref()
                .map(UpstreamAuthView::from)
                .and_then(|v| serde_json::to_value(v).ok()),
            after: after.and_then(|v| serde_json::to_value(v).ok()),
        })
        .await?;
        w.commit().await
    }

    /// A server's upstream authentication; `None`: `static`.
    pub async fn upstream_auth(&self, server: ServerId) -> Result<Option<ServerUpstreamAuth>> {
        let row = sqlx::query(
            "SELECT config, client_secret, registered_client FROM server_upstream_auth \
             WHERE server_id = $1",
        )
        .bind(server.0)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let config: UpstreamAuthConfig = r.json("config")?;
        let client_secret = r
            .opt_text("client_secret")?
            .map(|c| {
                self.inner
                    .cipher
                    .decrypt(&format!("upstream_auth:{}", server.0), &c)
            })
            .transpose()?;
        let registered = match r.opt_text("registered_client")? {
            None => None,
            Some(raw) => {
                let stored: StoredRegisteredClient = serde_json::from_str(&raw)
                    .map_err(|e| StoreError::Corrupt(format!("registered_client: {e}")))?;
                let secret = stored
                    .client_secret
                    .map(|c| {
                        self.inner
                            .cipher
                            .decrypt(&format!("registered_client:{}", server.0), &c)
                    })
                    .transpose()?;
                Some(RegisteredClient {
                    issuer: stored.issuer,
                    client_id: stored.client_id,
                    client_secret: secret,
                })
            }
        };
        Ok(Some(ServerUpstreamAuth {
            server,
            config,
            client_secret,
            registered,
        }))
    }

    fn encode_registered(&self, server: ServerId, r: &RegisteredClient) -> Result<String> {
        let stored = StoredRegisteredClient {
            issuer: r.issuer.clone(),
            client_id: r.client_id.clone(),
            client_secret: self.encrypt_opt(
                &format!("registered_client:{}", server.0),
                r.client_secret.as_ref(),
            )?,
        };
        db::to_json(&stored)
    }

    /// Keeps the client Warden registered dynamically for a server.
    pub async fn save_registered_client(
        &self,
        server: ServerId,
        client: &RegisteredClient,
    ) -> Result<()> {
        let encoded = self.encode_registered(server, client)?;
        let done = sqlx::query(
            "UPDATE server_upstream_auth SET registered_client = $1 WHERE server_id = $2",
        )
        .bind(encoded)
        .bind(server.0)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("server upstream auth", server));
        }
        Ok(())
    }

    /// Stores (or replaces) a person's tokens for a server after their
    /// consent. Refused if the end user is not in the org or the org is
    /// not granted the server. Audited as `connect`, without tokens.
    pub async fn put_user_credential(
        &self,
        actor: &str,
        new: NewUserCredential,
    ) -> Result<CredentialInfo> {
        let (u, s) = (new.end_user.0, new.server.0);
        let access = self
            .inner
            .cipher
            .encrypt(&token_aad(u, s, "access"), &new.tokens.access_token)?;
        let refresh = self.encrypt_opt(
            &token_aad(u, s, "refresh"),
            new.tokens.refresh_token.as_ref(),
        )?;
        let mut tx = db::begin_read_write(self.pool(), self.backend()).await?;
        // Replacing: the old tokens are revoked upstream (the trigger).
        sqlx::query("DELETE FROM user_credentials WHERE end_user_id = $1 AND server_id = $2")
            .bind(u)
            .bind(s)
            .execute(&mut *tx)
            .await?;
        let now = db::now_ms();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO user_credentials (org_id, end_user_id, server_id, access_token, \
             refresh_token, expires_at_ms, scopes, token_endpoint, revocation_endpoint, \
             client_id, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING id",
        )
        .bind(new.org.0)
        .bind(u)
        .bind(s)
        .bind(access)
        .bind(refresh)
        .bind(new.tokens.expires_at_ms)
        .bind(new.tokens.scopes.clone())
        .bind(new.token_endpoint.clone())
        .bind(new.revocation_endpoint.clone())
        .bind(new.client_id.clone())
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.message().to_lowercase().contains("foreign key") => {
                StoreError::Dangling {
                    kind: "end user or grant",
                    id: format!("end user {u}, server {s}"),
                }
            }
            _ => StoreError::Database(e),
        })?;
        let info = info_in(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::not_found("user credential", id))?;
        audit_connection(&mut tx, actor, "connect", &info).await?;
        tx.commit().await?;
        Ok(info)
    }

    /// A person's tokens for a server, decrypted, to send upstream.
    pub async fn user_credential(
        &self,
        end_user: EndUserId,
        server: ServerId,
    ) -> Result<Option<UserCredential>> {
        let row = sqlx::query(
            "SELECT id, org_id, access_token, refresh_token, expires_at_ms, scopes, \
             token_endpoint, revocation_endpoint, client_id \
             FROM user_credentials WHERE end_user_id = $1 AND server_id = $2",
        )
        .bind(end_user.0)
        .bind(server.0)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let (u, s) = (end_user.0, server.0);
        let access = self
            .inner
            .cipher
            .decrypt(&token_aad(u, s, "access"), &r.text("access_token")?)?;
        let refresh = r
            .opt_text("refresh_token")?
            .map(|c| self.inner.cipher.decrypt(&token_aad(u, s, "refresh"), &c))
            .transpose()?;
        Ok(Some(UserCredential {
            id: r.int("id")?,
            org: OrgId(r.int("org_id")?),
            end_user,
            server,
            tokens: TokenSet {
                access_token: access,
                refresh_token: refresh,
                expires_at_ms: r.opt_int("expires_at_ms")?,
                scopes: r.text("scopes")?,
            },
            token_endpoint: r.text("token_endpoint")?,
            revocation_endpoint: r.opt_text("revocation_endpoint")?,
            client_id: r.text("client_id")?,
        }))
    }

    /// Replaces a credential's tokens after a refresh. `false`: the row is
    /// gone (disconnected meanwhile); the new tokens are not kept.
    pub async fn refresh_user_credential(
        &self,
        cred: &UserCredential,
        tokens: &TokenSet,
    ) -> Result<bool> {
        let (u, s) = (cred.end_user.0, cred.server.0);
        let access = self
            .inner
            .cipher
            .encrypt(&token_aad(u, s, "access"), &tokens.access_token)?;
        // An authorization server that does not rotate refresh tokens
        // returns none: the old one stays.
        let refresh = tokens
            .refresh_token
            .as_ref()
            .or(cred.tokens.refresh_token.as_ref());
        let refresh = self.encrypt_opt(&token_aad(u, s, "refresh"), refresh)?;
        let done = sqlx::query(
            "UPDATE user_credentials SET access_token = $1, refresh_token = $2, \
             expires_at_ms = $3, scopes = $4, updated_at_ms = $5 WHERE id = $6",
        )
        .bind(access)
        .bind(refresh)
        .bind(tokens.expires_at_ms)
        .bind(tokens.scopes.clone())
        .bind(db::now_ms())
        .bind(cred.id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The connections in an org, or of one of its people.
    pub async fn list_user_credentials(
        &self,
        org: OrgId,
        end_user: Option<EndUserId>,
    ) -> Result<Vec<CredentialInfo>> {
        let rows = match end_user {
            Some(u) => {
                sqlx::query(&format!(
                    "{INFO_SQL} WHERE c.org_id = $1 AND c.end_user_id = $2 ORDER BY c.id"
                ))
                .bind(org.0)
                .bind(u.0)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(&format!("{INFO_SQL} WHERE c.org_id = $1 ORDER BY c.id"))
                    .bind(org.0)
                    .fetch_all(self.pool())
                    .await?
            }
        };
        rows.iter().map(decode_info).collect()
    }

    /// Deletes one connection of the org (and of `end_user`, when a person
    /// disconnects their own); its tokens are queued for upstream
    /// revocation. `None`: no such connection. Audited as `disconnect`.
    pub async fn delete_user_credential(
        &self,
        actor: &str,
        org: OrgId,
        end_user: Option<EndUserId>,
        id: i64,
    ) -> Result<Option<CredentialInfo>> {
        let mut tx = db::begin_read_write(self.pool(), self.backend()).await?;
        let Some(info) = info_in(&mut tx, id).await? else {
            return Ok(None);
        };
        if info.org != org || end_user.is_some_and(|u| u != info.end_user) {
            return Ok(None);
        }
        sqlx::query("DELETE FROM user_credentials WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        audit_connection(&mut tx, actor, "disconnect", &info).await?;
        tx.commit().await?;
        Ok(Some(info))
    }

    /// Tokens waiting to be revoked upstream, oldest first.
    pub async fn pending_revocations(&self, limit: i64) -> Result<Vec<PendingRevocation>> {
        let rows = sqlx::query(
            "SELECT id, end_user_id, server_id, access_token, refresh_token, \
             revocation_endpoint, client_id, attempts FROM credential_revocations \
             ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let (u, s) = (r.int("end_user_id")?, r.int("server_id")?);
            let id = r.int("id")?;
            let decrypted = self
                .inner
                .cipher
                .decrypt(&token_aad(u, s, "access"), &r.text("access_token")?)
                .and_then(|access| {
                    let refresh = r
                        .opt_text("refresh_token")?
                        .map(|c| self.inner.cipher.decrypt(&token_aad(u, s, "refresh"), &c))
                        .transpose()?;
                    Ok((access, refresh))
                });
            let (access, refresh) = match decrypted {
                Ok(t) => t,
                Err(e) => {
                    // Nothing can be sent for it: dropped, not retried forever.
                    tracing::warn!(revocation = id, error = %e, "queued revocation cannot be decrypted; dropped");
                    sqlx::query("DELETE FROM credential_revocations WHERE id = $1")
                        .bind(id)
                        .execute(self.pool())
                        .await?;
                    continue;
                }
            };
            out.push(PendingRevocation {
                id: r.int("id")?,
                access_token: access,
                refresh_token: refresh,
                revocation_endpoint: r.text("revocation_endpoint")?,
                client_id: r.text("client_id")?,
                attempts: r.int("attempts")?,
            });
        }
        Ok(out)
    }

    /// A revocation was sent (`done`), or failed and is retried later (up
    /// to `max_attempts`, then dropped: the token still expires upstream).
    pub async fn finish_revocation(&self, id: i64, done: bool, max_attempts: i64) -> Result<()> {
        if done {
            sqlx::query("DELETE FROM credential_revocations WHERE id = $1")
                .bind(id)
                .execute(self.pool())
                .await?;
        } else {
            sqlx::query("UPDATE credential_revocations SET attempts = attempts + 1 WHERE id = $1")
                .bind(id)
                .execute(self.pool())
                .await?;
            sqlx::query("DELETE FROM credential_revocations WHERE id = $1 AND attempts >= $2")
                .bind(id)
                .bind(max_attempts)
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }
}

fn same_issuer(a: &UpstreamAuthConfig, b: &UpstreamAuthConfig) -> bool {
    match (a, b) {
        (
            UpstreamAuthConfig::OauthPerUser {
                authorization_server: x,
                ..
            },
            UpstreamAuthConfig::OauthPerUser {
                authorization_server: y,
                ..
            },
        ) => x == y,
        _ => false,
    }
}

async fn info_in(conn: &mut AnyConnection, id: i64) -> Result<Option<CredentialInfo>> {
    sqlx::query(&format!("{INFO_SQL} WHERE c.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(decode_info)
        .transpose()
}
