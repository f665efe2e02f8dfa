//! The JWT checks, in order: shape and size, the header's algorithm
//! against the allow-list of the key it names, the signature, then issuer,
//! expiry and not-before (with a small leeway for clock skew).

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::IdentityError;

/// Largest token accepted (IdP tokens with many groups run to a few KiB).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The parts of a JWT header that choose the key and algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub alg: String,
    pub kid: Option<String>,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

fn segment(token: &str, i: usize) -> Result<Vec<u8>, IdentityError> {
    let part = token.split('.').nth(i).ok_or(IdentityError::Malformed)?;
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| IdentityError::Malformed)
}

/// The header, read before anything is trusted. `alg` is kept as text so
/// that `none` and unknown algorithms are refused by name.
pub fn header(token: &str) -> Result<Header, IdentityError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(IdentityError::TooLarge {
            max: MAX_TOKEN_BYTES,
        });
    }
    if token.split('.').count() != 3 {
        return Err(IdentityError::Malformed);
    }
    let raw: RawHeader =
        serde_json::from_slice(&segment(token, 0)?).map_err(|_| IdentityError::Malformed)?;
    if raw.crit.is_some() {
        // No critical extensions are understood (RFC 7515 §4.1.11).
        return Err(IdentityError::Malformed);
    }
    if raw.kid.as_ref().is_some_and(|k| k.len() > 256) {
        return Err(IdentityError::Malformed);
    }
    Ok(Header {
        alg: raw.alg,
        kid: raw.kid,
    })
}

/// The unverified `iss` claim: only to pick the provider whose keys then
/// verify the token (the issuer is checked again after the signature).
pub fn unverified_issuer(token: &str) -> Result<String, IdentityError> {
    #[derive(Deserialize)]
    struct Iss {
        iss: Option<String>,
    }
    let iss: Iss =
        serde_json::from_slice(&segment(token, 1)?).map_err(|_| IdentityError::Malformed)?;
    iss.iss
        .ok_or_else(|| IdentityError::ClaimMissing("iss".into()))
}

/// A verification key with the algorithms its type allows.
pub struct VerifyingKey {
    pub kid: Option<String>,
    pub key: DecodingKey,
    pub algorithms: Vec<Algorithm>,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

/// The algorithm named by `alg` if `key` allows it. `none` and every HMAC
/// algorithm are never allowed: provider keys are public keys, and an
/// HMAC "signed" with a public key proves nothing.
pub fn allowed_algorithm(alg: &str, key: &VerifyingKey) -> Result<Algorithm, IdentityError> {
    let refused = || IdentityError::AlgNotAllowed(alg.chars().take(16).collect());
    let parsed: Algorithm = alg.parse().map_err(|_| refused())?;
    if matches!(
        parsed,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    ) {
        return Err(refused());
    }
    if key.algorithms.contains(&parsed) {
        Ok(parsed)
    } else {
        Err(refused())
    }
}

/// Verifies the signature, then `iss`, `exp` (required) and `nbf`, and
/// returns the claims. The audience is checked by the caller, per endpoint.
pub fn verify(
    token: &str,
    alg: Algorithm,
    key: &VerifyingKey,
    issuer: &str,
    leeway: Duration,
) -> Result<Map<String, Value>, IdentityError> {
    let mut v = Validation::new(alg);
    v.algorithms = vec![alg];
    v.leeway = leeway.as_secs();
    v.validate_exp = true;
    v.validate_nbf = true;
    v.validate_aud = false;
    v.set_issuer(&[issuer]);
    v.set_required_spec_claims(&["exp", "iss"]);
    match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &v) {
        Ok(data) => Ok(data.claims),
        Err(e) => Err(match e.kind() {
            ErrorKind::InvalidSignature => IdentityError::SignatureInvalid,
            ErrorKind::ExpiredSignature => IdentityError::Expired,
            ErrorKind::ImmatureSignature => IdentityError::NotYetValid,
            ErrorKind::InvalidIssuer => IdentityError::IssuerUnknown,
            ErrorKind::InvalidAlgorithm => IdentityError::AlgNotAllowed(format!("{alg:?}")),
            ErrorKind::MissingRequiredClaim(c) => {
                IdentityError::ClaimMissing(c.chars().take(32).collect())
            }
            ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat => IdentityError::SignatureInvalid,
            _ => IdentityError::Malformed,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn header_reads_alg_none_by_name() {
        let t = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(r#"{"iss":"x"}"#));
        assert_eq!(header(&t).unwrap().alg, "none");
        let key = VerifyingKey {
            kid: None,
            key: DecodingKey::from_secret(b"x"),
            algorithms: vec![Algorithm::RS256],
        };
        assert_eq!(
            allowed_algorithm("none", &key).unwrap_err().code(),
            "token_alg_not_allowed"
        );
        assert_eq!(
            allowed_algorithm("HS256", &key).unwrap_err().code(),
            "token_alg_not_allowed"
        );
        assert_eq!(allowed_algorithm("RS256", &key).unwrap(), Algorithm::RS256);
    }

    #[test]
    fn oversized_and_odd_shapes_are_malformed() {
        assert_eq!(
            header(&"a".repeat(MAX_TOKEN_BYTES + 1)).unwrap_err().code(),
            "token_too_large"
        );
        assert_eq!(header("a.b").unwrap_err(), IdentityError::Malformed);
        assert_eq!(header("!!.b.c").unwrap_err(), IdentityError::Malformed);
        let crit = format!("{}.{}.", b64(r#"{"alg":"RS256","crit":["x"]}"#), b64("{}"));
        assert_eq!(header(&crit).unwrap_err(), IdentityError::Malformed);
    }
}
