//! Warden as the MCP authorization spec's resource server (OAuth 2.1):
//!
//! - a bearer that is not a Warden key but a JWT is validated against the
//!   registered identity providers ([`warden_identity`]), its audience
//!   against this endpoint's resource identifier (RFC 8707), and turned into
//!   the same `Principal` a key yields: the provider's sign-in key for the
//!   person's org and team, the person as end user, the OAuth client's
//!   agent. First-seen people (and sign-in keys) are provisioned in one
//!   policy write. The engine then decides as for any key;
//! - Protected Resource Metadata (RFC 9728) for every MCP endpoint;
//! - the `resource_metadata` parameter on every `WWW-Authenticate`
//!   challenge of the MCP endpoints.
//!
//! The token itself never leaves this module: nothing forwards the
//! caller's `Authorization` header upstream.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::json;
use warden_identity::{Identities, IdentityError};
use warden_policy::PolicyError;

use super::admission::Admitted;
use super::message::MAX_SLUG_BYTES;
use super::refusal::{self, json_response, Refusal};
use crate::gateway::Shared;
use crate::seams::{sign_in_digest, Provision};

/// Where RFC 9728 metadata lives, before the resource's path.
pub(crate) const METADATA_PREFIX: &str = "/.well-known/oauth-protected-resource";

fn base(shared: &Shared) -> &str {
    shared.config.public_url.trim_end_matches('/')
}

/// The resource identifiers a token presented at `path` may be issued
/// for: the endpoint itself, or the whole gateway (`/mcp`), which reaches
/// everything a narrower endpoint does.
fn resources_for(shared: &Shared, path: &str) -> [String; 2] {
    let base = base(shared);
    [
        format!("{base}{}", path.trim_end_matches('/')),
        format!("{base}/mcp"),
    ]
}

/// Admits an identity provider's token presented at `path`.
pub(crate) async fn admit_token(
    shared: &Shared,
    identities: Arc<Identities>,
    token: &str,
    path: &str,
) -> Result<Admitted, Refusal> {
    let identity = identities.validate(token).await.map_err(Refusal::Token)?;
    let [own, whole] = resources_for(shared, path);
    if !identity.audience_matches(&[own.as_str(), whole.as_str()]) {
        return Err(Refusal::Token(IdentityError::AudienceInvalid));
    }
    // Two attempts: the second after provisioning what was missing.
    for attempt in 0..2 {
        let snapshot = shared.live.snapshot();
        let org = snapshot
            .org_by_slug(&identity.org)
            .ok_or(Refusal::Token(IdentityError::OrgNotBound))?
            .id;
        let team = match &identity.team {
            None => None,
            Some(slug) => Some(
                snapshot
                    .team_by_slug(org, slug)
                    .ok_or(Refusal::IdentityUnmapped("team"))?
                    .id,
            ),
        };
        if let Some(agent) = &identity.agent {
            if snapshot.agent_by_slug(org, agent).is_none() {
                return Err(Refusal::IdentityUnmapped("agent"));
            }
        }
        let digest = sign_in_digest(&identity.provider, org, team);
        match snapshot.principal(&digest, Some(&identity.user), identity.agent.as_deref()) {
            Ok(principal) => {
                shared.note_token(principal, identity.expires_at_ms());
                return Ok(Admitted {
                    snapshot,
                    principal,
                    sign_in: Some(Arc::new((
                        identity.provider.clone(),
                        warden_store::Secret::new(token),
                    ))),
                });
            }
            Err(PolicyError::KeyUnknown | PolicyError::EndUserUnknown(_)) if attempt == 0 => {
                let Some(source) = shared.identity.get() else {
                    return Err(Refusal::KeyUnknown);
                };
                let revision = source
                    .provision(Provision {
                        provider: identity.provider.clone(),
                        org,
                        team,
                        key_digest: digest,
                        end_user: identity.user.clone(),
                    })
                    .await
                    .map_err(|e| {
                        tracing::warn!(error = %e, "could not provision a signed-in person");
                        Refusal::Token(IdentityError::ProviderUnavailable(
                            "provisioning failed".into(),
                        ))
                    })?;
                shared.live.wait_for(revision).await;
            }
            Err(PolicyError::KeyUnknown) => return Err(Refusal::KeyUnknown),
            Err(e) => return Err(Refusal::Assertion(e)),
        }
    }
    Err(Refusal::KeyUnknown)
}

/// Middleware of the person's connections endpoints (the MCP endpoints
/// call [`name_metadata`] themselves): see [`name_metadata`].
pub(crate) async fn challenge(
    State(shared): State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    let mut resp = next.run(req).await;
    name_metadata(&shared, &path, &mut resp);
    resp
}

/// A challenge (`WWW-Authenticate`) from the endpoint at `path` names
/// where its resource metadata is, once identity providers exist.
pub(crate) fn name_metadata(shared: &Shared, path: &str, resp: &mut Response) {
    if !resp.headers().contains_key(header::WWW_AUTHENTICATE) {
        return;
    }
    let Some(ids) = shared.identities.load_full().filter(|i| !i.is_empty()) else {
        return;
    };
    if path.len() > 2 * MAX_SLUG_BYTES + 32 {
        return;
    }
    let url = format!(
        "{}{METADATA_PREFIX}{}",
        base(shared),
        path.trim_end_matches('/')
    );
    refusal::add_resource_metadata(resp, &url, &ids.required_scopes());
}

/// `/.well-known/oauth-protected-resource[/mcp[/servers|/toolsets/{slug}]]`.
pub(crate) fn metadata_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(METADATA_PREFIX, get(root))
        .route(&format!("{METADATA_PREFIX}/mcp"), get(root))
        .route(
            &format!("{METADATA_PREFIX}/mcp/servers/{{slug}}"),
            get(
                |s: State<Arc<Shared>>, Path(slug): Path<String>| async move {
                    metadata(&s.0, &format!("/mcp/servers/{slug}"), &slug)
                },
            ),
        )
        .route(
            &format!("{METADATA_PREFIX}/mcp/toolsets/{{slug}}"),
            get(
                |s: State<Arc<Shared>>, Path(slug): Path<String>| async move {
                    metadata(&s.0, &format!("/mcp/toolsets/{slug}"), &slug)
                },
            ),
        )
        .with_state(shared)
}

async fn root(State(shared): State<Arc<Shared>>) -> Response {
    metadata(&shared, "/mcp", "")
}

/// The metadata of the resource at `path`: 404 when no identity provider
/// is registered (then the endpoint takes Warden keys only).
fn metadata(shared: &Shared, path: &str, slug: &str) -> Response {
    let not_found = || {
        json_response(
            StatusCode::NOT_FOUND,
            json!({"error": "not_found", "reason": "no_identity_providers"}).to_string(),
        )
    };
    if slug.len() > MAX_SLUG_BYTES {
        return not_found();
    }
    let Some(ids) = shared.identities.load_full().filter(|i| !i.is_empty()) else {
        return not_found();
    };
    let body = json!({
        "resource": format!("{}{path}", base(shared)),
        "authorization_servers": ids.issuers(),
        "scopes_supported": ids.required_scopes(),
        "bearer_methods_supported": ["header"],
        "resource_name": "Warden MCP gateway",
    });
    let mut resp = json_response(StatusCode::OK, body.to_string());
    // Public metadata: browser-based MCP clients fetch it cross-origin.
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp
}
