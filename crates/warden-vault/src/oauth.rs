//! The OAuth client side: discovery (RFC 9728 protected resource metadata,
//! RFC 8414 / OpenID Connect authorization server metadata), dynamic
//! client registration (RFC 7591), the token endpoint (authorization code
//! with PKCE, refresh, RFC 8693 token exchange) and revocation (RFC 7009).
//! Every response is bounded in size; no token is ever put in an error or
//! a log line.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use warden_store::{Secret, TokenSet};

use crate::error::VaultError;

/// Largest metadata or token response read.
const MAX_BODY: usize = 64 * 1024;

pub(crate) const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub(crate) const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// What Warden needs from an authorization server's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AsMetadata {
    pub issuer: String,
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: String,
    #[serde(default)]
    pub registration_endpoint: Option<String>,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
}

/// The part of a protected resource's metadata (RFC 9728) Warden uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ResourceMetadata {
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
}

/// A client Warden authenticates as at an authorization server.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub secret: Option<Secret>,
}

pub(crate) fn random_token(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// PKCE S256 challenge of a verifier.
pub(crate) fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub(crate) fn digest(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

async fn read_json(resp: reqwest::Response, what: &str) -> Result<(u16, Value), VaultError> {
    let status = resp.status().as_u16();
    if resp.content_length().is_some_and(|l| l > MAX_BODY as u64) {
        return Err(VaultError::Unavailable(format!(
            "{what}: response too large"
        )));
    }
    let mut resp = resp;
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| VaultError::Unavailable(format!("{what}: {e}")))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            return Err(VaultError::Unavailable(format!(
                "{what}: response too large"
            )));
        }
    }
    let value = serde_json::from_slice(&body)
        .map_err(|_| VaultError::Unavailable(format!("{what}: HTTP {status}, not JSON")))?;
    Ok((status, value))
}

async fn get_json(
    http: &reqwest::Client,
    url: &str,
    what: &str,
) -> Result<Option<Value>, VaultError> {
    let resp = http
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| VaultError::Unavailable(format!("{what}: {}", e.without_url())))?;
    if resp.status().as_u16() == 404 {
        return Ok(None);
    }
    let (status, value) = read_json(resp, what).await?;
    if !(200..300).contains(&status) {
        return Err(VaultError::Unavailable(format!("{what}: HTTP {status}")));
    }
    Ok(Some(value))
}

/// `https://h/p` + `/.well-known/x` → `https://h/.well-known/x/p` (the
/// path-insertion rule of RFC 8414 and RFC 9728).
fn well_known(base: &str, name: &str) -> Result<Vec<String>, VaultError> {
    let url = url::Url::parse(base)
        .map_err(|e| VaultError::Discovery(format!("{base:?} is not a URL: {e}")))?;
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    let mut out = Vec::new();
    if !path.is_empty() {
        out.push(format!("{origin}/.well-known/{name}{path}"));
    }
    out.push(format!("{origin}/.well-known/{name}"));
    Ok(out)
}

/// The upstream's protected resource metadata (RFC 9728): at the path
/// inserted form first, then the root.
pub async fn resource_metadata(
    http: &reqwest::Client,
    resource_url: &str,
) -> Result<ResourceMetadata, VaultError> {
    for url in well_known(resource_url, "oauth-protected-resource")? {
        if let Some(v) = get_json(http, &url, "protected resource metadata").await? {
            return serde_json::from_value(v)
                .map_err(|e| VaultError::Discovery(format!("protected resource metadata: {e}")));
        }
    }
    Err(VaultError::Discovery(format!(
        "no protected resource metadata for {resource_url}"
    )))
}

/// An authorization server's metadata: RFC 8414, then OpenID Connect
/// discovery (both path-inserted, then appended, as the MCP authorization
/// spec lists them). Its `issuer` must be the one asked for.
pub async fn as_metadata(http: &reqwest::Client, issuer: &str) -> Result<AsMetadata, VaultError> {
    let mut candidates = well_known(issuer, "oauth-authorization-server")?;
    candidates.extend(well_known(issuer, "openid-configuration")?);
    candidates.push(format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    ));
    candidates.dedup();
    for url in candidates {
        if let Some(v) = get_json(http, &url, "authorization server metadata").await? {
            let meta: AsMetadata = serde_json::from_value(v).map_err(|e| {
                VaultError::Discovery(format!("authorization server metadata: {e}"))
            })?;
            if meta.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
                return Err(VaultError::Discovery(format!(
                    "metadata at {url} names issuer {:?}, not {issuer:?}",
                    meta.issuer
                )));
            }
            return Ok(meta);
        }
    }
    Err(VaultError::Discovery(format!(
        "no authorization server metadata for {issuer}"
    )))
}

/// Registers Warden as a public client (PKCE, no secret) whose redirect is
/// Warden's consent callback (RFC 7591).
pub async fn register(
    http: &reqwest::Client,
    endpoint: &str,
    redirect_uri: &str,
    scopes: &[String],
) -> Result<Client, VaultError> {
    let mut body = serde_json::json!({
        "client_name": "Warden",
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    });
    if !scopes.is_empty() {
        body["scope"] = Value::String(scopes.join(" "));
    }
    let resp = http.post(endpoint).json(&body).send().await.map_err(|e| {
        VaultError::Unavailable(format!("client registration: {}", e.without_url()))
    })?;
    let (status, value) = read_json(resp, "client registration").await?;
    if !(200..300).contains(&status) {
        return Err(oauth_error(&value, status));
    }
    let id = value
        .get("client_id")
        .and_then(Value::as_str)
        .ok_or_else(|| VaultError::Discovery("client registration returned no client_id".into()))?;
    Ok(Client {
        id: id.to_owned(),
        secret: value
            .get("client_secret")
            .and_then(Value::as_str)
            .map(Secret::new),
    })
}

fn oauth_error(value: &Value, status: u16) -> VaultError {
    let error = value
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect::<String>();
    if status >= 500 {
        VaultError::Unavailable(format!("HTTP {status} {error}"))
    } else {
        VaultError::Refused { error }
    }
}

/// Posts a form to a token endpoint, authenticating as `client`
/// (`client_secret_basic` with a secret, else `client_id` in the body).
pub async fn token_request(
    http: &reqwest::Client,
    endpoint: &str,
    client: &Client,
    mut form: Vec<(&'static str, String)>,
    now_ms: i64,
) -> Result<TokenSet, VaultError> {
    let mut req = http.post(endpoint).header("accept", "application/json");
    match &client.secret {
        Some(secret) => req = req.basic_auth(&client.id, Some(secret.expose())),
        None => form.push(("client_id", client.id.clone())),
    }
    let resp = req
        .form(&form)
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .map_err(|e| VaultError::Unavailable(format!("token endpoint: {}", e.without_url())))?;
    let (status, value) = read_json(resp, "token endpoint").await?;
    if !(200..300).contains(&status) {
        return Err(oauth_error(&value, status));
    }
    let access = value
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| VaultError::Refused {
            error: "no_access_token".into(),
        })?;
    Ok(TokenSet {
        access_token: Secret::new(access),
        refresh_token: value
            .get("refresh_token")
            .and_then(Value::as_str)
            .map(Secret::new),
        expires_at_ms: value
            .get("expires_in")
            .and_then(Value::as_i64)
            .map(|s| now_ms + s.clamp(0, 10 * 365 * 86_400) * 1000),
        scopes: value
            .get("scope")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    })
}

/// Revokes one token (RFC 7009). `Ok` also when the server says the token
/// is unknown (it is 200 by the RFC anyway).
pub async fn revoke(
    http: &reqwest::Client,
    endpoint: &str,
    client_id: &str,
    token: &Secret,
    hint: &str,
) -> Result<(), VaultError> {
    let resp = http
        .post(endpoint)
        .form(&[
            ("token", token.expose()),
            ("token_type_hint", hint),
            ("client_id", client_id),
        ])
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .map_err(|e| VaultError::Unavailable(format!("revocation: {}", e.without_url())))?;
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(VaultError::Unavailable(format!(
            "revocation: HTTP {status}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_inserts_the_path() {
        assert_eq!(
            well_known("https://h.example/tenant/mcp", "oauth-protected-resource").unwrap(),
            [
                "https://h.example/.well-known/oauth-protected-resource/tenant/mcp",
                "https://h.example/.well-known/oauth-protected-resource"
            ]
        );
        assert_eq!(
            well_known("https://h.example", "oauth-authorization-server").unwrap(),
            ["https://h.example/.well-known/oauth-authorization-server"]
        );
    }

    #[test]
    fn pkce_s256_is_unpadded_base64url_of_sha256() {
        // Computed independently: base64.urlsafe_b64encode(sha256(v)).rstrip("=").
        assert_eq!(
            challenge("warden-pkce-verifier"),
            "Ybb-0g-mp6720m0MqcY7b6Wj3ZXHgXPKqttYLi26wBo"
        );
        assert_ne!(random_token(32), random_token(32));
        assert_eq!(random_token(32).len(), 43);
    }

    #[test]
    fn oauth_errors_carry_only_the_code() {
        let v = serde_json::json!({"error": "invalid_grant\" token=abc", "error_description": "tok-123"});
        let e = oauth_error(&v, 400);
        assert_eq!(
            e.to_string(),
            "authorization server refused the grant: invalid_granttokenabc"
        );
        assert!(!e.to_string().contains("tok-123"));
    }
}
