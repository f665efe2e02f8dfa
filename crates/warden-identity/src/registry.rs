//! Every registered provider by issuer, and the validated-token cache.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::config::ProviderConfig;
use crate::error::IdentityError;
use crate::jwks::JwksCache;
use crate::mapping::{self, Identity};
use crate::token;

/// Tunables of [`Identities`].
#[derive(Debug, Clone)]
pub struct IdentitiesOptions {
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// Least time between two key set fetches of one provider.
    pub min_refetch: Duration,
    /// Timeout of one discovery or key set request.
    pub http_timeout: Duration,
    /// Most validated tokens cached.
    pub cache_capacity: usize,
}

impl Default for IdentitiesOptions {
    fn default() -> Self {
        IdentitiesOptions {
            leeway: Duration::from_secs(30),
            min_refetch: Duration::from_secs(30),
            http_timeout: Duration::from_secs(5),
            cache_capacity: 100_000,
        }
    }
}

struct Provider {
    config: ProviderConfig,
    jwks: Arc<JwksCache>,
}

/// The registered providers. Build a new one when their configuration
/// changes ([`Identities::reconfigure`]): key caches of unchanged issuers
/// carry over, the validated-token cache does not (a mapping may have
/// changed).
pub struct Identities {
    http: reqwest::Client,
    options: IdentitiesOptions,
    by_issuer: HashMap<String, Provider>,
    cache: RwLock<HashMap<[u8; 32], Arc<Identity>>>,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identities")
            .field("issuers", &self.by_issuer.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Identities {
    pub fn new(
        configs: Vec<ProviderConfig>,
        options: IdentitiesOptions,
    ) -> Result<Self, IdentityError> {
        let http = reqwest::Client::builder()
            .timeout(options.http_timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| IdentityError::Config(format!("http client: {e}")))?;
        Self::build(http, options, configs, &HashMap::new())
    }

    fn build(
        http: reqwest::Client,
        options: IdentitiesOptions,
        configs: Vec<ProviderConfig>,
        previous: &HashMap<String, Provider>,
    ) -> Result<Self, IdentityError> {
        let mut by_issuer = HashMap::new();
        for config in configs {
            config.validate()?;
            let jwks = match previous.get(&config.issuer) {
                Some(p) if p.config.jwks_uri == config.jwks_uri => p.jwks.clone(),
                _ => Arc::new(JwksCache::new(
                    http.clone(),
                    &config.issuer,
                    config.jwks_uri.as_deref(),
                    options.min_refetch,
                )),
            };
            let issuer = config.issuer.clone();
            if by_issuer
                .insert(issuer.clone(), Provider { config, jwks })
                .is_some()
            {
                return Err(IdentityError::Config(format!(
                    "two providers share issuer {issuer}"
                )));
            }
        }
        Ok(Identities {
            http,
            options,
            by_issuer,
            cache: RwLock::new(HashMap::new()),
        })
    }

    /// The same registry with new provider configurations.
    pub fn reconfigure(&self, configs: Vec<ProviderConfig>) -> Result<Self, IdentityError> {
        Self::build(
            self.http.clone(),
            self.options.clone(),
            configs,
            &self.by_issuer,
        )
    }

    pub fn is_empty(&self) -> bool {
        self.by_issuer.is_empty()
    }

    /// The provider that issues as `issuer`: its configuration and keys
    /// (for the console's ID-token check, `relying_party`).
    pub(crate) fn provider(&self, issuer: &str) -> Option<(&ProviderConfig, &JwksCache)> {
        self.by_issuer
            .get(issuer)
            .map(|p| (&p.config, p.jwks.as_ref()))
    }

    /// The HTTP client discovery and key fetches use.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Clock skew allowed on `exp` and `nbf`.
    pub(crate) fn leeway(&self) -> Duration {
        self.options.leeway
    }

    /// Every provider's configuration.
    pub fn providers(&self) -> impl Iterator<Item = &ProviderConfig> {
        self.by_issuer.values().map(|p| &p.config)
    }

    /// The issuers that serve `org` (for resource metadata).
    pub fn issuers_for_org(&self, org: &str) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .by_issuer
            .values()
            .filter(|p| p.config.orgs.orgs().contains(&org))
            .map(|p| p.config.issuer.as_str())
            .collect();
        v.sort_unstable();
        v
    }

    /// Every issuer, sorted.
    pub fn issuers(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.by_issuer.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Scopes any provider requires, sorted and deduplicated.
    pub fn required_scopes(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .by_issuer
            .values()
            .flat_map(|p| p.config.required_scopes.iter().map(String::as_str))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    fn cached(&self, digest: &[u8; 32], now: u64) -> Option<Arc<Identity>> {
        let cache = match self.cache.read() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        cache.get(digest).filter(|i| i.expires_at > now).cloned()
    }

    fn remember(&self, digest: [u8; 32], identity: Arc<Identity>, now: u64) {
        let mut cache = match self.cache.write() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        if cache.len() >= self.options.cache_capacity {
            cache.retain(|_, i| i.expires_at > now);
            if cache.len() >= self.options.cache_capacity {
                cache.clear();
            }
        }
        cache.insert(digest, identity);
    }

    /// Validates `token` (from the cache while it lasts): signature with
    /// the issuer's key, issuer, expiry, not-before, then the mapping. The
    /// caller checks the audience against the endpoint
    /// ([`Identity::audience_matches`]).
    pub async fn validate(&self, token: &str) -> Result<Arc<Identity>, IdentityError> {
        if token.len() > token::MAX_TOKEN_BYTES {
            return Err(IdentityError::TooLarge {
                max: token::MAX_TOKEN_BYTES,
            });
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = now_secs();
        if let Some(hit) = self.cached(&digest, now) {
            return Ok(hit);
        }
        let header = token::header(token)?;
        let issuer = token::unverified_issuer(token)?;
        let provider = self
            .by_issuer
            .get(&issuer)
            .ok_or(IdentityError::IssuerUnknown)?;
        // The algorithm is refused by name before any key is looked up, so
        // `none` and HMAC never reach a fetch.
        if header.alg == "none" || header.alg.starts_with("HS") {
            return Err(IdentityError::AlgNotAllowed(
                header.alg.chars().take(16).collect(),
            ));
        }
        let key = provider.jwks.key(header.kid.as_deref()).await?;
        let alg = token::allowed_algorithm(&header.alg, &key)?;
        let claims = token::verify(
            token,
            alg,
            &key,
            &provider.config.issuer,
            self.options.leeway,
        )?;
        let identity = Arc::new(mapping::identity(&provider.config, &claims)?);
        if identity.expires_at > now {
            self.remember(digest, identity.clone(), now);
        }
        Ok(identity)
    }
}
