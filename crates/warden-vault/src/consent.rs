//! Consents: the single-use link a person is sent when a call needs their
//! consent upstream, its page (a link issued through a service key asks
//! for that key first, one issued to a signed-in person a sign-in at the
//! same provider: `sign_in.rs`), the redirect to the authorization server
//! (authorization code with PKCE) and the callback that stores the tokens.

use warden_store::{ConsentBinding, ConsentTarget, KeyCheck, NewUserCredential, Secret};

use crate::{now_ms, oauth, Vault, VaultError, CONNECT_PATH, CONSENT_TTL_MS};

/// What opening a consent link leads to.
#[derive(Debug, Clone)]
pub(crate) enum ConsentPage {
    /// Send the browser to the authorization server.
    Authorize(String),
    /// The link is bound to a service key: ask the browser for it.
    AskKey,
    /// The link is bound to a sign-in: the browser signs in at the
    /// provider first (with this cookie).
    SignIn(crate::sign_in::SignInStart),
}

impl Vault {
    pub(crate) async fn consent_link(
        &self,
        target: ConsentTarget,
        binding: &ConsentBinding,
    ) -> Result<String, VaultError> {
        let token = oauth::random_token(32);
        self.inner
            .store
            .create_consent(
                target,
                binding,
                &oauth::digest(&token),
                now_ms() + CONSENT_TTL_MS,
            )
            .await?;
        Ok(self.link_url(&token))
    }

    /// The consent page of a link, under Warden's public URL.
    pub(crate) fn link_url(&self, link: &str) -> String {
        format!("{}{CONNECT_PATH}/{link}", self.inner.public_url)
    }

    /// The person opened their consent link. A link bound to a service key
    /// asks for that key first, one bound to a sign-in sends the browser to
    /// sign in at that provider first; once proven the browser goes to the
    /// authorization server.
    pub(crate) async fn consent_page(&self, link: &str) -> Result<ConsentPage, VaultError> {
        let pending = self
            .inner
            .store
            .pending_consent(&oauth::digest(link))
            .await?
            .ok_or(VaultError::ConsentUnknown)?;
        match pending.binding {
            ConsentBinding::Key(_) if !pending.proven => Ok(ConsentPage::AskKey),
            ConsentBinding::SignIn(provider) if !pending.proven => Ok(ConsentPage::SignIn(
                self.start_sign_in(link, &provider).await?,
            )),
            _ => Ok(ConsentPage::Authorize(self.start_consent(link).await?)),
        }
    }

    /// The browser presented `key` for a key-bound consent link: the key
    /// that asserted the person (compared as SHA-256 digests in constant
    /// time). Right: where to send the browser. Wrong: refused, and the
    /// fifth wrong key spends the link.
    pub(crate) async fn prove_key(&self, link: &str, key: &str) -> Result<String, VaultError> {
        let check = self
            .inner
            .store
            .prove_consent_key(&oauth::digest(link), &warden_store::token_digest(key))
            .await?;
        match check {
            KeyCheck::Proven => self.start_consent(link).await,
            KeyCheck::Refused { left } => {
                tracing::info!(left, "a consent link was presented the wrong key");
                Err(VaultError::ConsentKeyRefused { left })
            }
            KeyCheck::Unknown => Err(VaultError::ConsentUnknown),
        }
    }

    /// Opens a consent link that needs no (more) proof: where to send the
    /// browser.
    pub(crate) async fn start_consent(&self, link: &str) -> Result<String, VaultError> {
        let verifier = Secret::new(oauth::random_token(48));
        let state = oauth::random_token(32);
        let target = self
            .inner
            .store
            .open_consent(&oauth::digest(link), &oauth::digest(&state), &verifier)
            .await?
            .ok_or(VaultError::ConsentUnknown)?;
        let server = self.server_ref(target.server).await?;
        let resolved = self.resolve(&server).await?;
        let endpoint = resolved
            .meta
            .authorization_endpoint
            .as_deref()
            .ok_or_else(|| {
                VaultError::Discovery(
                    "the authorization server has no authorization endpoint".into(),
                )
            })?;
        let mut url = url::Url::parse(endpoint)
            .map_err(|e| VaultError::Discovery(format!("authorization endpoint: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &resolved.client.id)
                .append_pair("redirect_uri", &self.redirect_uri())
                .append_pair("state", &state)
                .append_pair("code_challenge", &oauth::challenge(verifier.expose()))
                .append_pair("code_challenge_method", "S256");
            if !resolved.scopes.is_empty() {
                q.append_pair("scope", &resolved.scopes.join(" "));
            }
            if let Some(r) = &resolved.resource {
                q.append_pair("resource", r);
            }
        }
        Ok(url.into())
    }

    /// The authorization server sent the browser back: exchange the code
    /// and store the person's tokens. Returns the server's slug.
    pub(crate) async fn finish_consent(
        &self,
        state: &str,
        code: &str,
    ) -> Result<String, VaultError> {
        let (target, verifier) = self
            .inner
            .store
            .take_consent(&oauth::digest(state))
            .await?
            .ok_or(VaultError::ConsentUnknown)?;
        let server = self.server_ref(target.server).await?;
        let resolved = self.resolve(&server).await?;
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", self.redirect_uri()),
            ("code_verifier", verifier.expose().to_owned()),
        ];
        if let Some(r) = &resolved.resource {
            form.push(("resource", r.clone()));
        }
        let tokens = oauth::token_request(
            &self.inner.http,
            &resolved.meta.token_endpoint,
            &resolved.client,
            form,
            now_ms(),
        )
        .await?;
        let info = self
            .inner
            .store
            .put_user_credential(
                &format!("end-user:{}", target.end_user),
                NewUserCredential {
                    org: target.org,
                    end_user: target.end_user,
                    server: target.server,
                    tokens,
                    token_endpoint: resolved.meta.token_endpoint.clone(),
                    revocation_endpoint: resolved.meta.revocation_endpoint.clone(),
                    client_id: resolved.client.id.clone(),
                },
            )
            .await?;
        self.inner.wake_revoker.notify_one();
        tracing::info!(server = %info.server_slug, end_user = %info.end_user_external_id, "a person connected their upstream account");
        Ok(info.server_slug)
    }
}
