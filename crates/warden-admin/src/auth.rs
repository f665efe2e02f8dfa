//! Admin identities: who is calling, and which orgs they may see.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use warden_policy::OrgId;

use crate::error::AdminError;
use crate::state::AdminState;

/// What an admin token may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Platform,
    /// Only this org; every other org's objects do not exist for it.
    Org(OrgId),
}

/// The authenticated caller of an admin request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// The token's name.
    pub name: String,
    /// Who the audit log records as having made a change.
    pub actor: String,
    pub role: Role,
}

impl Admin {
    /// The identity bootstrap and internal callers act as.
    pub fn system(name: &str) -> Admin {
        Admin {
            name: name.to_owned(),
            actor: format!("system:{name}"),
            role: Role::Platform,
        }
    }

    pub fn require_platform(&self) -> Result<(), AdminError> {
        match self.role {
            Role::Platform => Ok(()),
            Role::Org(_) => Err(AdminError::PlatformAdminRequired),
        }
    }

    pub fn is_platform(&self) -> bool {
        self.role == Role::Platform
    }

    /// May this admin see objects of `org`? Callers answer 404 when not.
    pub fn sees_org(&self, org: OrgId) -> bool {
        match self.role {
            Role::Platform => true,
            Role::Org(own) => own == org,
        }
    }
}

/// The bearer token of a request, if it has a well-formed one.
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl FromRequestParts<AdminState> for Admin {
    type Rejection = AdminError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AdminState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or(AdminError::Unauthorized)?;
        if let Some(admin) = crate::idp_auth::admin_from_token(state, token).await? {
            return Ok(admin);
        }
        state.authenticate(token).await
    }
}
