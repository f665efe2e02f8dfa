//! A provider's signing keys: found by OpenID Connect discovery (or
//! configured), fetched, cached, and refetched when a token names a `kid`
//! the cache does not hold (key rotation), at most once per
//! `min_refetch` so that tokens with made-up `kid`s cannot make Warden
//! hammer the provider.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::error::IdentityError;
use crate::token::VerifyingKey;

/// Largest discovery document or key set read.
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;
/// Most keys kept from one key set.
const MAX_KEYS: usize = 100;

/// The keys of one provider at one fetch.
#[derive(Debug, Default)]
pub struct KeySet {
    by_kid: HashMap<String, Arc<VerifyingKey>>,
    all: Vec<Arc<VerifyingKey>>,
}

impl KeySet {
    /// The key `kid` names; a token without `kid` may use the only key.
    pub fn get(&self, kid: Option<&str>) -> Option<Arc<VerifyingKey>> {
        match kid {
            Some(kid) => self.by_kid.get(kid).cloned(),
            None if self.all.len() == 1 => self.all.first().cloned(),
            None => None,
        }
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// Parses a JWK Set (RFC 7517), keeping signature keys Warden can
    /// verify with: RSA (RS*/PS*), EC P-256/P-384 (ES256/ES384) and Ed25519
    /// (EdDSA). A key's `alg`, if given, narrows it to that algorithm.
    pub fn parse(doc: &Value) -> Result<KeySet, IdentityError> {
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| IdentityError::ProviderUnavailable("the JWKS has no keys".into()))?;
        let mut set = KeySet::default();
        for jwk in keys.iter().take(MAX_KEYS) {
            if let Some(k) = verifying_key(jwk) {
                let k = Arc::new(k);
                if let Some(kid) = &k.kid {
                    set.by_kid.insert(kid.clone(), k.clone());
                }
                set.all.push(k);
            }
        }
        Ok(set)
    }
}

fn verifying_key(jwk: &Value) -> Option<VerifyingKey> {
    let s = |name: &str| jwk.get(name).and_then(Value::as_str);
    if s("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let (key, mut algorithms) = match (s("kty")?, s("crv")) {
        ("RSA", _) => (
            DecodingKey::from_rsa_components(s("n")?, s("e")?).ok()?,
            vec![
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
        ),
        ("EC", Some("P-256")) => (
            DecodingKey::from_ec_components(s("x")?, s("y")?).ok()?,
            vec![Algorithm::ES256],
        ),
        ("EC", Some("P-384")) => (
            DecodingKey::from_ec_components(s("x")?, s("y")?).ok()?,
            vec![Algorithm::ES384],
        ),
        ("OKP", Some("Ed25519")) => (
            DecodingKey::from_ed_components(s("x")?).ok()?,
            vec![Algorithm::EdDSA],
        ),
        _ => return None,
    };
    if let Some(alg) = s("alg") {
        let alg: Algorithm = alg.parse().ok()?;
        if !algorithms.contains(&alg) {
            return None;
        }
        algorithms = vec![alg];
    }
    Some(VerifyingKey {
        kid: s("kid").filter(|k| k.len() <= 256).map(str::to_owned),
        key,
        algorithms,
    })
}

/// One provider's key cache.
pub struct JwksCache {
    http: reqwest::Client,
    issuer: String,
    configured_uri: Option<String>,
    min_refetch: Duration,
    keys: RwLock<Arc<KeySet>>,
    /// Serializes fetches; holds the discovered URI and the last fetch.
    fetch: Mutex<FetchState>,
}

#[derive(Default)]
struct FetchState {
    discovered_uri: Option<String>,
    last: Option<Instant>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    pub fn new(
        http: reqwest::Client,
        issuer: &str,
        jwks_uri: Option<&str>,
        min_refetch: Duration,
    ) -> Self {
        JwksCache {
            http,
            issuer: issuer.to_owned(),
            configured_uri: jwks_uri.map(str::to_owned),
            min_refetch,
            keys: RwLock::new(Arc::new(KeySet::default())),
            fetch: Mutex::new(FetchState::default()),
        }
    }

    fn current(&self) -> Arc<KeySet> {
        match self.keys.read() {
            Ok(k) => k.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The key `kid` names: from the cache, else after one refetch if the
    /// last fetch is older than `min_refetch`.
    pub async fn key(&self, kid: Option<&str>) -> Result<Arc<VerifyingKey>, IdentityError> {
        if let Some(k) = self.current().get(kid) {
            return Ok(k);
        }
        let mut state = self.fetch.lock().await;
        // Another request may have refetched while this one waited.
        if let Some(k) = self.current().get(kid) {
            return Ok(k);
        }
        if state.last.is_some_and(|t| t.elapsed() < self.min_refetch) {
            return Err(IdentityError::KeyUnknown);
        }
        state.last = Some(Instant::now());
        let uri = match (&self.configured_uri, &state.discovered_uri) {
            (Some(u), _) | (None, Some(u)) => u.clone(),
            (None, None) => {
                let u = self.discover().await?;
                state.discovered_uri = Some(u.clone());
                u
            }
        };
        let doc = fetch_json(&self.http, &uri).await?;
        let set = Arc::new(KeySet::parse(&doc)?);
        tracing::info!(issuer = %self.issuer, keys = set.len(), "fetched identity provider keys");
        let found = set.get(kid);
        match self.keys.write() {
            Ok(mut k) => *k = set,
            Err(p) => *p.into_inner() = set,
        }
        found.ok_or(IdentityError::KeyUnknown)
    }

    /// `jwks_uri` from the provider's OpenID Connect discovery document
    /// (or its RFC 8414 authorization server metadata), whose `issuer` must
    /// be the configured one.
    async fn discover(&self) -> Result<String, IdentityError> {
        let base = self.issuer.trim_end_matches('/');
        let mut last_err = None;
        for path in [
            "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server",
        ] {
            match fetch_json(&self.http, &format!("{base}{path}")).await {
                Ok(doc) => {
                    #[derive(Deserialize)]
                    struct Meta {
                        issuer: String,
                        jwks_uri: String,
                    }
                    let meta: Meta = serde_json::from_value(doc).map_err(|_| {
                        IdentityError::ProviderUnavailable(
                            "discovery document lacks issuer or jwks_uri".into(),
                        )
                    })?;
                    if meta.issuer != self.issuer {
                        return Err(IdentityError::ProviderUnavailable(
                            "discovery document names another issuer".into(),
                        ));
                    }
                    return Ok(meta.jwks_uri);
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or(IdentityError::ProviderUnavailable(
            "discovery failed".into(),
        )))
    }
}

/// GET a JSON document, bounded in size.
pub async fn fetch_json(http: &reqwest::Client, url: &str) -> Result<Value, IdentityError> {
    let unavailable = |why: &str| IdentityError::ProviderUnavailable(why.to_owned());
    let mut resp = http
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|_| unavailable("request failed"))?;
    if !resp.status().is_success() {
        return Err(IdentityError::ProviderUnavailable(format!(
            "HTTP {}",
            resp.status().as_u16()
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|_| unavailable("read failed"))? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(unavailable("document too large"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|_| unavailable("document is not JSON"))
}
