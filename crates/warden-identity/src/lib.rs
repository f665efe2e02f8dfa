//! Warden as the resource server of the MCP authorization spec: the
//! organization's identity provider (an OAuth 2.1 / OpenID Connect
//! authorization server) issues JWT access tokens for Warden's resource,
//! and this crate decides whether such a token is genuine and whom it
//! names.
//!
//! - [`config`]: one trusted provider as configuration (issuer, claims,
//!   group → team and client → agent mappings, required scopes, the org or
//!   orgs it speaks for).
//! - [`jwks`]: OIDC discovery and the provider's signing keys, cached, with
//!   a rate-limited refetch when a token names an unknown `kid` (rotation).
//! - [`token`]: the JWT checks: shape, algorithm allow-list from the key
//!   type (never `none`, never HMAC with a public key), signature, issuer,
//!   expiry and not-before with a small leeway.
//! - [`mapping`]: verified claims → [`Identity`] (org, end user, team,
//!   agent, scopes, admin role).
//! - [`registry`]: every provider by issuer, plus the cache of validated
//!   tokens keyed by the token's SHA-256 digest until the token expires.
//! - [`relying_party`]: the admin console as an OpenID Connect relying
//!   party: the provider's endpoints, the code exchange (PKCE), and the ID
//!   token's checks (signature, issuer, audience = the console's client,
//!   nonce), then the same mapping.
//!
//! The audience (RFC 8707 resource) is checked per request against the
//! endpoint the token is presented to ([`Identity::audience_matches`]).
//! This crate does I/O (discovery, JWKS) but decides nothing about tools:
//! the identity it yields becomes a `Principal` that the policy engine
//! decides on like any other.

pub mod config;
pub mod error;
pub mod jwks;
pub mod mapping;
pub mod registry;
pub mod relying_party;
pub mod token;

pub use config::{AdminGroups, ClientAgent, GroupTeam, OrgBinding, ProviderConfig};
pub use error::IdentityError;
pub use mapping::{AdminRole, Identity};
pub use registry::{Identities, IdentitiesOptions};

/// Does `token` look like a JWT (three base64url segments)? Warden keys
/// never do, so this tells the two kinds of bearer apart without a lookup.
pub fn looks_like_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_some() && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::looks_like_jwt;

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt("eyJh.eyJz.sig"));
        assert!(looks_like_jwt("eyJh.eyJz."));
        assert!(!looks_like_jwt("wk_live_abcdef"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("a+b.c.d"));
    }
}
