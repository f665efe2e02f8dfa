//! A consent link issued to a person who signed in through an identity
//! provider opens only for that person: the browser signs in at the same
//! provider first (docs/credentials.md, "Who may open a consent link").
//!
//! Warden is the relying party the console already is (the provider's
//! `console_client_id`, a public client: authorization code with PKCE S256,
//! `state`, `nonce`; `warden_identity::relying_party` checks the ID token):
//!
//! 1. `GET /connect/{link}`: fresh `state`, `nonce` and PKCE verifier are
//!    kept here (in memory, one use, ten minutes, at most [`FLOW_CAP`]); a
//!    random binding goes to the browser in the `HttpOnly`, `SameSite=Lax`
//!    cookie [`FLOW_COOKIE`] scoped to `/connect`, and the browser is sent
//!    to the provider, to come back to `{public_url}/connect/signed-in`.
//! 2. `GET /connect/signed-in?code&state`: the flow named by `state` must
//!    exist, be fresh and belong to this browser (the cookie, compared as
//!    SHA-256 digests); the code is redeemed, the ID token checked, and the
//!    signed-in person (provider, org, user claim) compared with the
//!    consent's person. The same person: on to the upstream's authorization
//!    server. Anyone else: refused (`consent_wrong_person`), counted with
//!    the link's five attempts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use warden_identity::{Identities, Identity};
use warden_store::KeyCheck;

use crate::{lock, oauth, Vault, VaultError, CONNECT_PATH};

/// The cookie binding a consent sign-in to the browser that started it.
pub const FLOW_COOKIE: &str = "warden_connect";
/// How long a started consent sign-in may take.
pub const FLOW_TTL: Duration = Duration::from_secs(10 * 60);
/// Most consent sign-ins in flight at once; past it the oldest is dropped.
pub const FLOW_CAP: usize = 10_000;
/// Where the provider sends the browser back, under the public URL (a
/// redirect URI the provider must allow for its `console_client_id`).
pub const SIGNED_IN_PATH: &str = "/connect/signed-in";

/// Where Warden finds the registered identity providers (they change at
/// run time).
pub type IdentityLookup = Arc<dyn Fn() -> Option<Arc<Identities>> + Send + Sync>;

pub(crate) struct Flow {
    link: String,
    provider: String,
    issuer: String,
    client_id: String,
    token_endpoint: String,
    verifier: String,
    nonce: String,
    binding_digest: String,
    created: Instant,
}

/// Consent sign-ins in flight, by `state`.
#[derive(Default)]
pub(crate) struct Flows {
    map: Mutex<HashMap<String, Flow>>,
}

impl Flows {
    fn insert(&self, state: String, flow: Flow) {
        let mut map = lock(&self.map);
        if map.len() >= FLOW_CAP {
            map.retain(|_, f| f.created.elapsed() <= FLOW_TTL);
        }
        if map.len() >= FLOW_CAP {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, f)| f.created)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(state, flow);
    }

    fn take(&self, state: &str) -> Option<Flow> {
        lock(&self.map)
            .remove(state)
            .filter(|f| f.created.elapsed() <= FLOW_TTL)
    }
}

/// The browser goes to the identity provider with this cookie value.
#[derive(Clone)]
pub(crate) struct SignInStart {
    pub location: String,
    pub binding: String,
}

impl std::fmt::Debug for SignInStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInStart")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// Where Warden finds its identity providers (set once at start;
    /// without it a link bound to a sign-in cannot be proven).
    pub fn set_identities(&self, lookup: IdentityLookup) {
        let _ = self.inner.identities.set(lookup);
    }

    fn identities(&self) -> Option<Arc<Identities>> {
        self.inner.identities.get().and_then(|f| f())
    }

    /// The provider's sign-in redirect URI for consents.
    pub fn signed_in_uri(&self) -> String {
        format!("{}{SIGNED_IN_PATH}", self.inner.public_url)
    }

    /// Starts the sign-in at `provider` (slug) that proves a browser is the
    /// person consent link `link` was issued for.
    pub(crate) async fn start_sign_in(
        &self,
        link: &str,
        provider: &str,
    ) -> Result<SignInStart, VaultError> {
        let unavailable = || VaultError::ConsentSignInUnavailable(provider.to_owned());
        let ids = self.identities().ok_or_else(unavailable)?;
        let config = ids.console_provider(provider).ok_or_else(unavailable)?;
        let client_id = config.console_client_id.clone().ok_or_else(unavailable)?;
        let issuer = config.issuer.clone();
        let endpoints = ids.sign_in_endpoints(&issuer).await.map_err(|e| {
            tracing::warn!(provider, error = %e, "consent sign-in: provider unavailable");
            VaultError::ConsentSignInFailed(e.code())
        })?;
        let state = oauth::random_token(32);
        let nonce = oauth::random_token(32);
        let verifier = oauth::random_token(48);
        let binding = oauth::random_token(32);
        let mut url = url::Url::parse(&endpoints.authorization_endpoint)
            .map_err(|_| VaultError::ConsentSignInFailed("provider_unavailable"))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client_id)
            .append_pair("redirect_uri", &self.signed_in_uri())
            .append_pair("scope", "openid")
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &oauth::challenge(&verifier))
            .append_pair("code_challenge_method", "S256");
        self.inner.sign_ins.insert(
            state,
            Flow {
                link: link.to_owned(),
                provider: provider.to_owned(),
                issuer,
                client_id,
                token_endpoint: endpoints.token_endpoint,
                verifier,
                nonce,
                binding_digest: oauth::digest(&binding),
                created: Instant::now(),
            },
        );
        Ok(SignInStart {
            location: url.into(),
            binding,
        })
    }

    /// The provider sent the browser back with `code` for `state`; `cookie`
    /// is the browser's [`FLOW_COOKIE`]. The person the link was issued
    /// for: where to send the browser (the upstream's authorization
    /// server). Anyone else: refused, and the fifth spends the link.
    pub(crate) async fn finish_sign_in(
        &self,
        state: &str,
        code: &str,
        iss: Option<&str>,
        cookie: Option<&str>,
    ) -> Result<String, VaultError> {
        let flow = self
            .inner
            .sign_ins
            .take(state)
            .ok_or(VaultError::ConsentSignInExpired)?;
        // Digests compared: no timing signal about the binding itself.
        if cookie.map(oauth::digest).as_deref() != Some(flow.binding_digest.as_str()) {
            return Err(VaultError::ConsentSignInNotBound);
        }
        if iss.is_some_and(|i| i != flow.issuer) {
            // RFC 9207: an answer from another issuer (mix-up).
            return Err(VaultError::ConsentSignInFailed("token_issuer_unknown"));
        }
        let ids = self
            .identities()
            .ok_or_else(|| VaultError::ConsentSignInUnavailable(flow.provider.clone()))?;
        let id_token = ids
            .exchange_code(
                &flow.token_endpoint,
                &flow.client_id,
                code,
                &self.signed_in_uri(),
                &flow.verifier,
            )
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "consent sign-in: code exchange failed");
                VaultError::ConsentSignInFailed(e.code())
            })?;
        let identity = ids
            .verify_id_token(&flow.issuer, &id_token, &flow.client_id, &flow.nonce)
            .await
            .map_err(|e| {
                tracing::info!(reason = e.code(), "consent sign-in: ID token refused");
                VaultError::ConsentSignInFailed(e.code())
            })?;
        let pending = self
            .inner
            .store
            .pending_consent(&oauth::digest(&flow.link))
            .await?
            .ok_or(VaultError::ConsentUnknown)?;
        let same = self.is_person(&identity, &flow.provider, &pending.target);
        match self
            .inner
            .store
            .prove_consent_sign_in(&oauth::digest(&flow.link), same)
            .await?
        {
            KeyCheck::Proven => self.start_consent(&flow.link).await,
            KeyCheck::Refused { left } => {
                tracing::info!(left, "another person signed in to open a consent link");
                Err(VaultError::ConsentWrongPerson { left })
            }
            KeyCheck::Unknown => Err(VaultError::ConsentUnknown),
        }
    }

    /// Is the signed-in `identity` the consent's person: the provider the
    /// link is bound to, the consent's org, and the end user's external id?
    fn is_person(
        &self,
        identity: &Identity,
        provider: &str,
        target: &warden_store::ConsentTarget,
    ) -> bool {
        let snapshot = self.inner.store.live().snapshot();
        identity.provider == provider
            && snapshot
                .org_by_slug(&identity.org)
                .is_some_and(|o| o.id == target.org)
            && snapshot
                .end_user_by_external_id(target.org, &identity.user)
                .is_some_and(|u| u.id == target.end_user)
    }
}

/// The path the consent cookie is scoped to.
pub(crate) const COOKIE_PATH: &str = CONNECT_PATH;
