//! Token mode: the load generator mints RS256 JWT access tokens, as an
//! identity provider would, so a benchmark can make the gateway validate a
//! provider's token on every request instead of looking up a key. The
//! private key (PEM) is the bench harness's own; the harness serves its
//! public half as the provider's JWKS.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::LoadError;

/// What every minted token says; `sub` differs per person.
#[derive(Clone)]
pub struct Minter {
    key: EncodingKey,
    pub kid: String,
    pub issuer: String,
    pub audience: String,
    pub scope: String,
    pub ttl_s: u64,
}

impl Minter {
    pub fn new(
        pem: &[u8],
        kid: &str,
        issuer: &str,
        audience: &str,
        scope: &str,
        ttl_s: u64,
    ) -> Result<Self, LoadError> {
        let key = EncodingKey::from_rsa_pem(pem)
            .map_err(|e| LoadError::Token(format!("not an RSA private key (PEM): {e}")))?;
        Ok(Minter {
            key,
            kid: kid.to_owned(),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            scope: scope.to_owned(),
            ttl_s,
        })
    }

    /// A token for the person `sub`, valid from now for `ttl_s`.
    pub fn mint(&self, sub: &str) -> Result<String, LoadError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| LoadError::Token(e.to_string()))?
            .as_secs();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        let claims = json!({
            "iss": self.issuer,
            "sub": sub,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_s,
            "scope": self.scope,
            "client_id": "warden-loadgen",
        });
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| LoadError::Token(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = include_str!("../../warden-identity/tests/keys/rsa_a.pem");
    const PUB: &str = include_str!("../../warden-identity/tests/keys/rsa_a.pub.pem");

    #[test]
    fn minted_tokens_verify_with_the_public_key() {
        let m = Minter::new(
            PEM.as_bytes(),
            "k1",
            "http://idp",
            "http://w/mcp",
            "mcp",
            60,
        )
        .unwrap();
        let t = m.mint("bench-0").unwrap();
        let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
        v.set_audience(&["http://w/mcp"]);
        v.set_issuer(&["http://idp"]);
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(PUB.as_bytes()).unwrap();
        let data = jsonwebtoken::decode::<serde_json::Value>(&t, &key, &v).unwrap();
        assert_eq!(data.claims["sub"], "bench-0");
        assert_eq!(data.header.kid.as_deref(), Some("k1"));
        let (exp, iat) = (data.claims["exp"].as_u64(), data.claims["iat"].as_u64());
        assert_eq!(exp.unwrap() - iat.unwrap(), 60);
        assert!(Minter::new(b"not a key", "k", "i", "a", "s", 1).is_err());
    }
}
