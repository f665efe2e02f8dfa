//! Admins who sign in with an identity provider: a bearer JWT from a
//! registered provider, issued for the admin API's resource
//! (`{public_url}/admin/v1`, or an audience the provider is configured
//! with), whose groups include the provider's `admin_groups.platform_admin`
//! (a platform admin) or `admin_groups.org_admin` (an admin of the token's
//! org). Anyone else is refused (401), like an unknown admin token.

use std::sync::Arc;

use warden_identity::{AdminRole, Identities, Identity};

use crate::auth::{Admin, Role};
use crate::error::AdminError;
use crate::state::AdminState;

/// Where the current identity providers are (the gateway keeps them).
pub trait IdentityLookup: Send + Sync {
    fn identities(&self) -> Option<Arc<Identities>>;
}

impl<F> IdentityLookup for F
where
    F: Fn() -> Option<Arc<Identities>> + Send + Sync,
{
    fn identities(&self) -> Option<Arc<Identities>> {
        self()
    }
}

/// The admin a provider's token names, `Ok(None)` when `token` is not a
/// JWT or no provider is registered (then it is tried as an admin token).
pub(crate) async fn admin_from_token(
    state: &AdminState,
    token: &str,
) -> Result<Option<Admin>, AdminError> {
    if !warden_identity::looks_like_jwt(token) {
        return Ok(None);
    }
    let Some((lookup, public_url)) = state.identity_lookup() else {
        return Ok(None);
    };
    let Some(ids) = lookup.identities().filter(|i| !i.is_empty()) else {
        return Ok(None);
    };
    let identity = ids.validate(token).await.map_err(|e| {
        tracing::info!(reason = e.code(), "admin sign-in token refused");
        AdminError::Unauthorized
    })?;
    let resource = format!("{}/admin/v1", public_url.trim_end_matches('/'));
    if !identity.audience_matches(&[resource.as_str()]) {
        tracing::info!(
            reason = "token_audience_invalid",
            "admin sign-in token refused"
        );
        return Err(AdminError::Unauthorized);
    }
    admin_from_identity(state, &identity).map(Some)
}

/// The identity providers registered now and the gateway's public URL, if
/// the gateway has any (the console's sign-in reads them).
pub fn identities(state: &AdminState) -> Option<(Arc<Identities>, String)> {
    let (lookup, public_url) = state.identity_lookup()?;
    let ids = lookup.identities().filter(|i| !i.is_empty())?;
    Some((ids, public_url.to_owned()))
}

/// The admin a verified identity is: a platform admin, or an admin of its
/// org (which must exist), by the provider's `admin_groups`; anyone else is
/// refused. The one rule for the admin API's bearer tokens and the
/// console's sign-in.
pub fn admin_from_identity(state: &AdminState, identity: &Identity) -> Result<Admin, AdminError> {
    let role = match identity.admin {
        Some(AdminRole::Platform) => Role::Platform,
        Some(AdminRole::Org) => {
            let org = state
                .snapshot()
                .org_by_slug(&identity.org)
                .map(|o| o.id)
                .ok_or(AdminError::Unauthorized)?;
            Role::Org(org)
        }
        None => return Err(AdminError::Unauthorized),
    };
    Ok(Admin {
        name: format!("{}:{}", identity.provider, identity.user),
        actor: format!("idp:{}:{}", identity.provider, identity.user),
        role,
    })
}
