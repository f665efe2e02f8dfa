//! Admission: the checks every MCP request passes before its body is read.
//! Host and Origin, shutdown, staleness, and the bearer: a Warden key with
//! the identities it asserts, or an identity provider's token
//! ([`super::oauth`]), turned into a [`Principal`] by the snapshot.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use warden_policy::{PolicyError, Principal, Snapshot};

use super::message::MAX_NAME_BYTES;
use super::refusal::Refusal;
use crate::gateway::Shared;

/// Longest `Authorization` header considered (a key is far shorter; an
/// identity provider's token with many groups may run to a few KiB).
const MAX_AUTHORIZATION_BYTES: usize = warden_identity::token::MAX_TOKEN_BYTES + 16;

/// An admitted caller: the snapshot its principal was formed in.
pub(crate) struct Admitted {
    pub snapshot: Arc<Snapshot>,
    pub principal: Principal,
    /// A person signed in with an identity provider: its slug and their
    /// access token, for RFC 8693 token exchange (`token_exchange` servers)
    /// and nothing else. Never logged or forwarded as is.
    pub sign_in: Option<Arc<(String, warden_store::Secret)>>,
}

impl FromRequestParts<Arc<Shared>> for Admitted {
    type Rejection = Refusal;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        admit(shared, &parts.headers, parts.uri.path()).await
    }
}

/// A header as trimmed text, refused when it is not text or over `max`.
pub(crate) fn header_str<'h>(
    headers: &'h HeaderMap,
    name: &'static str,
    max: usize,
) -> Result<Option<&'h str>, Refusal> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) if v.len() > max => Err(Refusal::BadHeader(name)),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| Refusal::BadHeader(name)),
    }
}

pub(super) async fn admit(
    shared: &Shared,
    headers: &HeaderMap,
    path: &str,
) -> Result<Admitted, Refusal> {
    if !shared.config.allowed_hosts.is_empty() {
        let host = header_str(headers, "host", 1024)?.unwrap_or("");
        if !host_allowed(&shared.config.allowed_hosts, host) {
            return Err(Refusal::HostNotAllowed);
        }
    }
    if let Some(origin) = header_str(headers, "origin", 1024)? {
        if !origin_allowed(
            &shared.config.allowed_origins,
            shared.config.allow_localhost_origins,
            origin,
        ) {
            return Err(Refusal::OriginNotAllowed);
        }
    }
    if shared.draining.load(Ordering::SeqCst) {
        return Err(Refusal::ShuttingDown);
    }
    if shared.live.is_stale() {
        metrics::counter!("warden_gateway_decisions_total", "reason" => "policy_stale")
            .increment(1);
        return Err(Refusal::PolicyStale);
    }
    let token = match header_str(headers, "authorization", MAX_AUTHORIZATION_BYTES)? {
        Some(v) if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") => v[7..].trim(),
        _ => return Err(Refusal::KeyMissing),
    };
    if token.is_empty() {
        return Err(Refusal::KeyMissing);
    }
    if warden_identity::looks_like_jwt(token) {
        if let Some(ids) = shared.identities.load_full().filter(|i| !i.is_empty()) {
            // A person signs in as themself: no asserted identities.
            if headers.contains_key(shared.config.end_user_header.as_str())
                || headers.contains_key(shared.config.agent_header.as_str())
            {
                return Err(Refusal::Assertion(PolicyError::EndUserAssertionNotAllowed));
            }
            return super::oauth::admit_token(shared, ids, token, path).await;
        }
    }
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    let end_user = asserted(headers, &shared.config.end_user_header)?;
    let agent = asserted(headers, &shared.config.agent_header)?;
    let snapshot = shared.live.snapshot();
    match snapshot.principal(&digest, end_user, agent) {
        Ok(principal) => Ok(Admitted {
            snapshot,
            principal,
            sign_in: None,
        }),
        Err(PolicyError::KeyUnknown) => Err(Refusal::KeyUnknown),
        Err(e) => Err(Refusal::Assertion(e)),
    }
}

/// An asserted identity header (its name is configurable).
fn asserted<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, Refusal> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) if v.len() > MAX_NAME_BYTES => Err(Refusal::BadHeader("identity assertion")),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| Refusal::BadHeader("identity assertion")),
    }
}

pub(crate) fn origin_allowed(allowed: &[String], allow_localhost: bool, origin: &str) -> bool {
    let origin = origin.trim().to_ascii_lowercase();
    if allowed.iter().any(|o| o.eq_ignore_ascii_case(&origin)) {
        return true;
    }
    if !allow_localhost {
        return false;
    }
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = if let Some(v6) = rest.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        rest.split(':').next().unwrap_or("")
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

pub(crate) fn host_allowed(allowed: &[String], host: &str) -> bool {
    let host = host.trim().to_ascii_lowercase();
    let name = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h)
    };
    allowed.iter().any(|h| {
        h.trim_matches(|c| c == '[' || c == ']')
            .eq_ignore_ascii_case(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_origins_only_by_default() {
        assert!(origin_allowed(&[], true, "http://localhost:3000"));
        assert!(origin_allowed(&[], true, "https://[::1]:8443"));
        assert!(!origin_allowed(&[], true, "http://localhost.evil.example"));
        assert!(!origin_allowed(&[], false, "http://localhost:3000"));
        assert!(origin_allowed(
            &["https://app.example".into()],
            false,
            "https://APP.example"
        ));
    }

    #[test]
    fn hosts_match_without_port() {
        let allowed = vec!["localhost".to_owned(), "::1".to_owned()];
        assert!(host_allowed(&allowed, "localhost:8080"));
        assert!(host_allowed(&allowed, "[::1]:8080"));
        assert!(!host_allowed(&allowed, "evil.example"));
    }

    #[test]
    fn oversized_headers_are_refused_not_read() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "x".repeat(20_000).parse().unwrap());
        assert!(matches!(
            header_str(&h, "authorization", MAX_AUTHORIZATION_BYTES),
            Err(Refusal::BadHeader("authorization"))
        ));
    }
}
