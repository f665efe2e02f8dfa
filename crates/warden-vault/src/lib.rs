//! Each person's own credentials upstream (docs/credentials.md).
//!
//! The gateway asks one question, after `decide` has allowed a call:
//! [`Vault::credentials_for`] a (person, server) pair. The answer is the
//! headers to send on that person's own request, nothing (a `static`
//! server: its secret headers only), or "needs consent at this URL". The
//! vault never decides whether a call is allowed: a stored token only
//! authenticates a call the policy already allowed.
//!
//! Modes (`warden_store::UpstreamAuthConfig`):
//! - `oauth_per_user`: Warden is an OAuth client of the upstream's
//!   authorization server (discovered from the upstream's protected
//!   resource metadata, RFC 9728, and the server's metadata, RFC 8414, or
//!   configured; client id configured or registered dynamically, RFC
//!   7591). The person consents once on Warden's consent page
//!   (authorization code + PKCE, [`routes`]); the tokens are stored
//!   encrypted per (end user, server) and refreshed before they expire.
//! - `token_exchange`: the person's identity provider token is exchanged
//!   (RFC 8693) at that provider for a token whose audience is the
//!   upstream; exchanged tokens are kept in memory until shortly before
//!   they expire.

mod consent;
mod error;
pub mod oauth;
mod routes;
mod sign_in;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use warden_policy::{EndUserId, KeyId, OrgId, ServerId};
use warden_store::{
    ConsentBinding, ConsentTarget, RegisteredClient, Secret, ServerUpstreamAuth, Store, TokenSet,
    UpstreamAuthConfig, UserCredential,
};

pub use error::VaultError;
pub use routes::routes;
pub use sign_in::{IdentityLookup, FLOW_COOKIE, SIGNED_IN_PATH};

use oauth::{AsMetadata, Client};

/// Path of the consent pages under Warden's public URL.
pub const CONNECT_PATH: &str = "/connect";
/// A token is refreshed when it has less than this left.
const REFRESH_MARGIN_MS: i64 = 30_000;
/// How long a consent link (and the authorization in the browser) may take.
const CONSENT_TTL_MS: i64 = 10 * 60_000;
/// Revocations tried this many times, then dropped (the token still
/// expires upstream).
const MAX_REVOCATION_ATTEMPTS: i64 = 5;
/// Exchanged tokens kept in memory at most.
const MAX_EXCHANGED: usize = 10_000;

/// Who is calling, as far as credentials go.
#[derive(Debug, Clone)]
pub struct Caller {
    pub org: OrgId,
    /// The key the call was authenticated with (for a person signed in
    /// through an identity provider, its sign-in key).
    pub key: KeyId,
    /// `None`: a service key without an end user.
    pub end_user: Option<EndUserId>,
    /// The identity provider (slug) the person signed in with, and their
    /// access token there (only for `token_exchange`).
    pub sign_in: Option<(String, Secret)>,
}

/// The upstream the call goes to.
#[derive(Debug, Clone)]
pub struct UpstreamRef {
    pub id: ServerId,
    pub slug: String,
    /// The MCP endpoint URL (the protected resource); `None` for stdio.
    pub url: Option<String>,
}

/// The vault's answer for one call.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// `static`: the server's secret headers only.
    Static,
    /// Send these headers on this call only.
    Headers(Vec<(String, Secret)>),
    /// The person has not connected (or their grant was revoked upstream):
    /// send them here, then they retry.
    NeedsConsent { url: String },
}

struct Resolved {
    meta: AsMetadata,
    client: Client,
    scopes: Vec<String>,
    resource: Option<String>,
}

type RefreshLock = Arc<Mutex<()>>;
type AuthCache = (u64, HashMap<ServerId, Option<Arc<ServerUpstreamAuth>>>);

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The token vault. Cheap to clone.
#[derive(Clone)]
pub struct Vault {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    http: reqwest::Client,
    public_url: String,
    /// Per server: its resolved authorization server and client, valid
    /// for the policy revision it was resolved at.
    resolved: Mutex<HashMap<ServerId, (u64, Arc<Resolved>)>>,
    /// Serializes refreshes per (end user, server) so a refresh token is
    /// used once.
    refreshing: Mutex<HashMap<(EndUserId, ServerId), RefreshLock>>,
    exchanged: Mutex<HashMap<(EndUserId, ServerId, String), TokenSet>>,
    /// Servers' upstream authentication at one revision.
    auth: std::sync::Mutex<AuthCache>,
    wake_revoker: tokio::sync::Notify,
    /// The registered identity providers, for consent sign-ins.
    identities: std::sync::OnceLock<sign_in::IdentityLookup>,
    sign_ins: sign_in::Flows,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn bearer(token: &Secret) -> Credentials {
    Credentials::Headers(vec![(
        "Authorization".to_owned(),
        Secret::new(format!("Bearer {}", token.expose())),
    )])
}

impl Vault {
    /// `public_url`: how browsers reach Warden (consent links and the
    /// OAuth redirect are built from it).
    pub fn new(store: Store, public_url: &str) -> Result<Vault, VaultError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| VaultError::Unavailable(e.to_string()))?;
        Ok(Vault {
            inner: Arc::new(Inner {
                store,
                http,
                public_url: public_url.trim_end_matches('/').to_owned(),
                resolved: Mutex::new(HashMap::new()),
                refreshing: Mutex::new(HashMap::new()),
                exchanged: Mutex::new(HashMap::new()),
                auth: std::sync::Mutex::new((u64::MAX, HashMap::new())),
                wake_revoker: tokio::sync::Notify::new(),
                identities: std::sync::OnceLock::new(),
                sign_ins: sign_in::Flows::default(),
            }),
        })
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The OAuth redirect URI Warden registers.
    pub fn redirect_uri(&self) -> String {
        format!("{}{CONNECT_PATH}/callback", self.inner.public_url)
    }

    /// The credentials to send on `caller`'s own call to `server`. Asked
    /// only after the policy allowed the call.
    pub async fn credentials_for(
        &self,
        caller: &Caller,
        server: &UpstreamRef,
    ) -> Result<Credentials, VaultError> {
        let Some(auth) = self.upstream_auth(server.id).await? else {
            return Ok(Credentials::Static);
        };
        let end_user = caller.end_user.ok_or(VaultError::NoPerson)?;
        match &auth.config {
            UpstreamAuthConfig::OauthPerUser { .. } => {
                // The consent link is bound to how this person proved who
                // they are: the key that asserted them, or their sign-in.
                let binding = match &caller.sign_in {
                    Some((provider, _)) => ConsentBinding::SignIn(provider.clone()),
                    None => ConsentBinding::Key(caller.key),
                };
                self.per_user(caller.org, end_user, binding, server).await
            }
            UpstreamAuthConfig::TokenExchange {
                identity_provider,
                audience,
                resource,
                scopes,
                client_id,
            } => {
                let Some((provider, subject)) = caller
                    .sign_in
                    .as_ref()
                    .filter(|(p, _)| p == identity_provider)
                else {
                    return Err(VaultError::NeedsSignIn(identity_provider.clone()));
                };
                let _ = provider;
                let client = Client {
                    id: client_id.clone(),
                    secret: auth.client_secret.clone(),
                };
                self.exchange(
                    end_user,
                    server.id,
                    identity_provider,
                    subject,
                    audience,
                    resource.as_deref(),
                    scopes,
                    &client,
                )
                .await
            }
        }
    }

    /// A server's upstream authentication, read once per policy revision
    /// (every change of it is a policy write): a `static` server costs a
    /// map lookup per call, not a query.
    async fn upstream_auth(
        &self,
        server: ServerId,
    ) -> Result<Option<Arc<ServerUpstreamAuth>>, VaultError> {
        let revision = self.inner.store.live().snapshot().revision();
        {
            let cache = lock(&self.inner.auth);
            if cache.0 == revision {
                if let Some(found) = cache.1.get(&server) {
                    return Ok(found.clone());
                }
            }
        }
        let found = self.inner.store.upstream_auth(server).await?.map(Arc::new);
        let mut cache = lock(&self.inner.auth);
        if cache.0 != revision {
            *cache = (revision, HashMap::new());
        }
        cache.1.insert(server, found.clone());
        Ok(found)
    }

    /// The upstream answered 401 to a call made with the person's token:
    /// drop what is cached so the next call refreshes (or asks for consent).
    pub async fn rejected(&self, caller: &Caller, server: ServerId) {
        let Some(end_user) = caller.end_user else {
            return;
        };
        self.inner
            .exchanged
            .lock()
            .await
            .retain(|(u, s, _), _| !(*u == end_user && *s == server));
        if let Ok(Some(cred)) = self.inner.store.user_credential(end_user, server).await {
            let mut expired = cred.tokens.clone();
            expired.expires_at_ms = Some(0);
            if let Err(e) = self
                .inner
                .store
                .refresh_user_credential(&cred, &expired)
                .await
            {
                tracing::warn!(error = %e, "cannot mark a rejected upstream token expired");
            }
        }
    }

    async fn per_user(
        &self,
        org: OrgId,
        end_user: EndUserId,
        binding: ConsentBinding,
        server: &UpstreamRef,
    ) -> Result<Credentials, VaultError> {
        let now = now_ms();
        if let Some(cred) = self
            .inner
            .store
            .user_credential(end_user, server.id)
            .await?
        {
            if fresh(&cred.tokens, now) {
                return Ok(bearer(&cred.tokens.access_token));
            }
            if cred.tokens.refresh_token.is_some() {
                if let Some(token) = self.refresh(cred, server).await? {
                    return Ok(bearer(&token));
                }
            }
        }
        Ok(Credentials::NeedsConsent {
            url: self
                .consent_link(
                    ConsentTarget {
                        org,
                        end_user,
                        server: server.id,
                    },
                    &binding,
                )
                .await?,
        })
    }

    /// Refreshes (once at a time per person and server). `None`: the
    /// authorization server refused the refresh token; the credential is
    /// deleted (and revoked) and the person consents again.
    async fn refresh(
        &self,
        cred: UserCredential,
        server: &UpstreamRef,
    ) -> Result<Option<Secret>, VaultError> {
        let lock = {
            let mut map = self.inner.refreshing.lock().await;
            Arc::clone(map.entry((cred.end_user, cred.server)).or_default())
        };
        let _held = lock.lock().await;
        // Someone else may have refreshed while we waited.
        let Some(cred) = self
            .inner
            .store
            .user_credential(cred.end_user, cred.server)
            .await?
        else {
            return Ok(None);
        };
        let now = now_ms();
        if fresh(&cred.tokens, now) {
            return Ok(Some(cred.tokens.access_token));
        }
        let Some(refresh_token) = cred.tokens.refresh_token.clone() else {
            return Ok(None);
        };
        let resolved = self.resolve(server).await?;
        let mut form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh_token.expose().to_owned()),
        ];
        if let Some(r) = &resolved.resource {
            form.push(("resource", r.clone()));
        }
        match oauth::token_request(
            &self.inner.http,
            &cred.token_endpoint,
            &resolved.client,
            form,
            now,
        )
        .await
        {
            Ok(tokens) => {
                self.inner
                    .store
                    .refresh_user_credential(&cred, &tokens)
                    .await?;
                tracing::info!(server = %server.slug, end_user = %cred.end_user, "refreshed a person's upstream token");
                Ok(Some(tokens.access_token))
            }
            Err(VaultError::Refused { error }) => {
                tracing::info!(server = %server.slug, end_user = %cred.end_user, %error, "refresh refused; the person consents again");
                self.inner
                    .store
                    .delete_user_credential("warden:vault", cred.org, None, cred.id)
                    .await?;
                self.inner.wake_revoker.notify_one();
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn exchange(
        &self,
        end_user: EndUserId,
        server: ServerId,
        provider: &str,
        subject: &Secret,
        audience: &str,
        resource: Option<&str>,
        scopes: &[String],
        client: &Client,
    ) -> Result<Credentials, VaultError> {
        let key = (end_user, server, oauth::digest(subject.expose()));
        let now = now_ms();
        if let Some(t) = self.inner.exchanged.lock().await.get(&key) {
            if fresh(t, now) {
                return Ok(bearer(&t.access_token));
            }
        }
        let Some(idp) = self
            .inner
            .store
            .list_identity_providers()
            .await?
            .into_iter()
            .find(|p| p.config.slug == provider)
        else {
            return Err(VaultError::Discovery(format!(
                "identity provider {provider:?} is not registered"
            )));
        };
        let meta = oauth::as_metadata(&self.inner.http, &idp.config.issuer).await?;
        let mut form = vec![
            ("grant_type", oauth::TOKEN_EXCHANGE_GRANT.to_owned()),
            ("subject_token", subject.expose().to_owned()),
            ("subject_token_type", oauth::ACCESS_TOKEN_TYPE.to_owned()),
            ("requested_token_type", oauth::ACCESS_TOKEN_TYPE.to_owned()),
            ("audience", audience.to_owned()),
        ];
        if let Some(r) = resource {
            form.push(("resource", r.to_owned()));
        }
        if !scopes.is_empty() {
            form.push(("scope", scopes.join(" ")));
        }
        let tokens =
            oauth::token_request(&self.inner.http, &meta.token_endpoint, client, form, now).await?;
        let out = bearer(&tokens.access_token);
        let mut cache = self.inner.exchanged.lock().await;
        if cache.len() >= MAX_EXCHANGED {
            cache.retain(|_, t| fresh(t, now));
            if cache.len() >= MAX_EXCHANGED {
                cache.clear();
            }
        }
        cache.insert(key, tokens);
        Ok(out)
    }

    /// The authorization server and client for an `oauth_per_user` server,
    /// resolved once per policy revision.
    async fn resolve(&self, server: &UpstreamRef) -> Result<Arc<Resolved>, VaultError> {
        let revision = self.inner.store.live().snapshot().revision();
        if let Some((rev, r)) = self.inner.resolved.lock().await.get(&server.id) {
            if *rev == revision {
                return Ok(Arc::clone(r));
            }
        }
        let auth = self
            .inner
            .store
            .upstream_auth(server.id)
            .await?
            .ok_or_else(|| VaultError::Discovery(format!("{} is a static server", server.slug)))?;
        let UpstreamAuthConfig::OauthPerUser {
            authorization_server,
            scopes,
            client_id,
        } = &auth.config
        else {
            return Err(VaultError::Discovery(format!(
                "{} does not use oauth_per_user",
                server.slug
            )));
        };
        let prm = match (&server.url, authorization_server) {
            (Some(url), _) => match oauth::resource_metadata(&self.inner.http, url).await {
                Ok(m) => Some(m),
                Err(e) if authorization_server.is_some() => {
                    tracing::debug!(error = %e, "no protected resource metadata; using the configured issuer");
                    None
                }
                Err(e) => return Err(e),
            },
            (None, _) => None,
        };
        let issuer = match (authorization_server, &prm) {
            (Some(i), _) => i.clone(),
            (None, Some(m)) => m.authorization_servers.first().cloned().ok_or_else(|| {
                VaultError::Discovery(
                    "protected resource metadata names no authorization server".into(),
                )
            })?,
            (None, None) => {
                return Err(VaultError::Discovery(format!(
                    "{}: no authorization server configured or discoverable",
                    server.slug
                )))
            }
        };
        let meta = oauth::as_metadata(&self.inner.http, &issuer).await?;
        let scopes = if scopes.is_empty() {
            prm.as_ref()
                .map(|m| m.scopes_supported.clone())
                .unwrap_or_default()
        } else {
            scopes.clone()
        };
        let resource = prm
            .as_ref()
            .and_then(|m| m.resource.clone())
            .or_else(|| server.url.clone());
        let client = match (client_id, &auth.registered) {
            (Some(id), _) => Client {
                id: id.clone(),
                secret: auth.client_secret.clone(),
            },
            (None, Some(r)) if r.issuer == meta.issuer => Client {
                id: r.client_id.clone(),
                secret: r.client_secret.clone(),
            },
            (None, _) => {
                let endpoint = meta.registration_endpoint.as_deref().ok_or_else(|| {
                    VaultError::Discovery(format!(
                        "{issuer} offers no dynamic client registration: configure a client_id"
                    ))
                })?;
                let client =
                    oauth::register(&self.inner.http, endpoint, &self.redirect_uri(), &scopes)
                        .await?;
                self.inner
                    .store
                    .save_registered_client(
                        server.id,
                        &RegisteredClient {
                            issuer: meta.issuer.clone(),
                            client_id: client.id.clone(),
                            client_secret: client.secret.clone(),
                        },
                    )
                    .await?;
                client
            }
        };
        let resolved = Arc::new(Resolved {
            meta,
            client,
            scopes,
            resource,
        });
        self.inner
            .resolved
            .lock()
            .await
            .insert(server.id, (revision, Arc::clone(&resolved)));
        Ok(resolved)
    }

    async fn server_ref(&self, id: ServerId) -> Result<UpstreamRef, VaultError> {
        let server = self
            .inner
            .store
            .get_server(id)
            .await?
            .ok_or(VaultError::ConsentUnknown)?;
        Ok(UpstreamRef {
            id,
            url: match &server.transport {
                warden_store::Transport::Http { url } => Some(url.clone()),
                warden_store::Transport::Stdio { .. } => None,
            },
            slug: server.slug,
        })
    }

    /// Wakes the revocation worker (after a disconnect or a delete).
    pub fn revocations_queued(&self) {
        self.inner.wake_revoker.notify_one();
    }

    /// Sends the queued revocations (RFC 7009) until the process stops:
    /// on every wake-up and every `interval` (deletes by cascade, from any
    /// replica, are found by the poll).
    pub async fn run_revoker(self, interval: Duration) {
        loop {
            if let Err(e) = self.revoke_pending().await {
                tracing::warn!(error = %e, "upstream token revocation pass failed");
            }
            tokio::select! {
                () = self.inner.wake_revoker.notified() => {}
                () = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// One pass over the queued revocations. Returns how many were sent.
    pub async fn revoke_pending(&self) -> Result<usize, VaultError> {
        let pending = self.inner.store.pending_revocations(100).await?;
        let mut sent = 0;
        for p in pending {
            let mut ok = true;
            if let Some(rt) = &p.refresh_token {
                ok &= oauth::revoke(
                    &self.inner.http,
                    &p.revocation_endpoint,
                    &p.client_id,
                    rt,
                    "refresh_token",
                )
                .await
                .inspect_err(|e| tracing::info!(error = %e, "revoking a refresh token failed"))
                .is_ok();
            }
            ok &= oauth::revoke(
                &self.inner.http,
                &p.revocation_endpoint,
                &p.client_id,
                &p.access_token,
                "access_token",
            )
            .await
            .inspect_err(|e| tracing::info!(error = %e, "revoking an access token failed"))
            .is_ok();
            sent += usize::from(ok);
            self.inner
                .store
                .finish_revocation(p.id, ok, MAX_REVOCATION_ATTEMPTS)
                .await?;
        }
        Ok(sent)
    }
}

fn fresh(tokens: &TokenSet, now: i64) -> bool {
    tokens
        .expires_at_ms
        .is_none_or(|at| at - REFRESH_MARGIN_MS > now)
}
