//! The admin console as an OpenID Connect relying party of a registered
//! provider (authorization code flow with PKCE, a public client: no client
//! secret exists to leak). This module holds the parts that talk to the
//! provider or trust its tokens:
//!
//! - [`Identities::sign_in_endpoints`]: the provider's authorization and
//!   token endpoints from its discovery document (whose `issuer` must be
//!   the configured one);
//! - [`Identities::exchange_code`]: the code (with the PKCE verifier) for
//!   the ID token, at the token endpoint;
//! - [`Identities::verify_id_token`]: the ID token's checks (OpenID Connect
//!   Core §3.1.3.7): signature with the provider's published keys and the
//!   same algorithm rules as access tokens, `iss`, `exp`/`nbf`, `aud`
//!   naming the console's client (and `azp` when there are several
//!   audiences), `nonce` equal to the one the console sent; then the
//!   provider's mapping ([`crate::mapping::identity`]), which gives the org
//!   and the admin role by the same group rule the admin API uses.
//!
//! The console keeps the PKCE verifier, `state` and `nonce`; this module
//! only checks what it is handed.

use serde::Deserialize;
use serde_json::Value;

use crate::config::ProviderConfig;
use crate::error::IdentityError;
use crate::mapping::{self, Identity};
use crate::registry::Identities;
use crate::token;

/// Largest token endpoint response read.
const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// Where the console sends the person, and where it redeems the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInEndpoints {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
}

fn unavailable(why: &str) -> IdentityError {
    IdentityError::ProviderUnavailable(why.to_owned())
}

fn http_url(u: &str) -> bool {
    (u.starts_with("https://") || u.starts_with("http://"))
        && u.len() <= 2048
        && !u.contains(char::is_whitespace)
}

impl Identities {
    /// The provider `slug` if it offers console sign-in (has a
    /// `console_client_id`).
    pub fn console_provider(&self, slug: &str) -> Option<&ProviderConfig> {
        self.providers()
            .find(|p| p.slug == slug && p.console_client_id.is_some())
    }

    /// Every provider that offers console sign-in, by slug.
    pub fn console_providers(&self) -> Vec<&ProviderConfig> {
        let mut v: Vec<&ProviderConfig> = self
            .providers()
            .filter(|p| p.console_client_id.is_some())
            .collect();
        v.sort_by(|a, b| a.slug.cmp(&b.slug));
        v
    }

    /// The authorization and token endpoints of the provider issuing as
    /// `issuer`, from its OpenID Connect discovery document.
    pub async fn sign_in_endpoints(&self, issuer: &str) -> Result<SignInEndpoints, IdentityError> {
        #[derive(Deserialize)]
        struct Meta {
            issuer: String,
            authorization_endpoint: String,
            token_endpoint: String,
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let doc = crate::jwks::fetch_json(self.http(), &url).await?;
        let meta: Meta = serde_json::from_value(doc).map_err(|_| {
            unavailable("discovery document lacks authorization_endpoint or token_endpoint")
        })?;
        if meta.issuer != issuer {
            return Err(unavailable("discovery document names another issuer"));
        }
        if !http_url(&meta.authorization_endpoint) || !http_url(&meta.token_endpoint) {
            return Err(unavailable("discovery document has a bad endpoint URL"));
        }
        Ok(SignInEndpoints {
            authorization_endpoint: meta.authorization_endpoint,
            token_endpoint: meta.token_endpoint,
        })
    }

    /// Redeems an authorization code at `token_endpoint` as the public
    /// client `client_id` with the PKCE `verifier`; returns the ID token.
    pub async fn exchange_code(
        &self,
        token_endpoint: &str,
        client_id: &str,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<String, IdentityError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", client_id),
            ("code_verifier", verifier),
        ];
        let mut resp = self
            .http()
            .post(token_endpoint)
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|_| unavailable("token request failed"))?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|_| unavailable("token response read failed"))?
        {
            if body.len() + chunk.len() > MAX_TOKEN_RESPONSE_BYTES {
                return Err(unavailable("token response too large"));
            }
            body.extend_from_slice(&chunk);
        }
        let doc: Value =
            serde_json::from_slice(&body).map_err(|_| unavailable("token response is not JSON"))?;
        if !status.is_success() {
            // The provider's error code (RFC 6749 §5.2), bounded; never the body.
            let code: String = doc
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(64)
                .collect();
            return Err(IdentityError::ProviderUnavailable(format!(
                "token endpoint refused the code: HTTP {} {code}",
                status.as_u16()
            )));
        }
        doc.get("id_token")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| unavailable("token response has no id_token (is `openid` granted?)"))
    }

    /// Checks an ID token issued by `issuer` for the console's `client_id`
    /// with `nonce`, and maps it. The provider's `required_scopes` are not
    /// asked of an ID token (they govern access tokens for the MCP
    /// resource; an ID token carries no scope).
    pub async fn verify_id_token(
        &self,
        issuer: &str,
        id_token: &str,
        client_id: &str,
        nonce: &str,
    ) -> Result<Identity, IdentityError> {
        let header = token::header(id_token)?;
        let (config, jwks) = self.provider(issuer).ok_or(IdentityError::IssuerUnknown)?;
        if header.alg == "none" || header.alg.starts_with("HS") {
            return Err(IdentityError::AlgNotAllowed(
                header.alg.chars().take(16).collect(),
            ));
        }
        let key = jwks.key(header.kid.as_deref()).await?;
        let alg = token::allowed_algorithm(&header.alg, &key)?;
        let claims = token::verify(id_token, alg, &key, &config.issuer, self.leeway())?;
        check_id_token_claims(&claims, client_id, nonce)?;
        let mut for_mapping = config.clone();
        for_mapping.required_scopes.clear();
        mapping::identity(&for_mapping, &claims)
    }
}

/// `aud` names `client_id` (with several audiences, `azp` must be
/// `client_id`), and `nonce` is the one sent.
pub fn check_id_token_claims(
    claims: &serde_json::Map<String, Value>,
    client_id: &str,
    nonce: &str,
) -> Result<(), IdentityError> {
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => return Err(IdentityError::ClaimMissing("aud".into())),
    };
    if !audiences.contains(&client_id) {
        return Err(IdentityError::AudienceInvalid);
    }
    if audiences.len() > 1 && claims.get("azp").and_then(Value::as_str) != Some(client_id) {
        return Err(IdentityError::AudienceInvalid);
    }
    match claims.get("nonce").and_then(Value::as_str) {
        Some(n) if n.len() == nonce.len() && n == nonce => Ok(()),
        _ => Err(IdentityError::ClaimMissing("nonce".into())),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::check_id_token_claims;

    fn claims(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn audience_must_name_the_console_client() {
        let ok = claims(json!({"aud": "console", "nonce": "n1"}));
        assert!(check_id_token_claims(&ok, "console", "n1").is_ok());
        let other = claims(json!({"aud": "ide", "nonce": "n1"}));
        assert_eq!(
            check_id_token_claims(&other, "console", "n1")
                .unwrap_err()
                .code(),
            "token_audience_invalid"
        );
        let missing = claims(json!({"nonce": "n1"}));
        assert!(check_id_token_claims(&missing, "console", "n1").is_err());
    }

    #[test]
    fn several_audiences_need_azp() {
        let no_azp = claims(json!({"aud": ["console", "x"], "nonce": "n"}));
        assert!(check_id_token_claims(&no_azp, "console", "n").is_err());
        let azp = claims(json!({"aud": ["console", "x"], "azp": "console", "nonce": "n"}));
        assert!(check_id_token_claims(&azp, "console", "n").is_ok());
        let azp_other = claims(json!({"aud": ["console", "x"], "azp": "x", "nonce": "n"}));
        assert!(check_id_token_claims(&azp_other, "console", "n").is_err());
    }

    #[test]
    fn nonce_must_be_the_one_sent() {
        let c = claims(json!({"aud": "console", "nonce": "abc"}));
        assert!(check_id_token_claims(&c, "console", "abd").is_err());
        assert!(check_id_token_claims(&c, "console", "ab").is_err());
        let none = claims(json!({"aud": "console"}));
        assert!(check_id_token_claims(&none, "console", "abc").is_err());
    }
}
