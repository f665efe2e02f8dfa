//! Orgs and admin identities.

use warden_store::{AdminToken, NewOrg, Org, OrgPatch, Page};

use super::convert::Names;
use crate::auth::{Admin, Role};
use crate::dto::*;
use crate::error::AdminError;
use crate::state::AdminState;

pub(crate) fn org_view(org: &Org) -> OrgView {
    OrgView {
        slug: org.slug.clone(),
        name: org.name.clone(),
        suspended: org.suspended,
    }
}

impl AdminState {
    /// The org `slug` names, if this admin may see it; otherwise 404 exactly
    /// as if it did not exist.
    pub(crate) async fn org(&self, admin: &Admin, slug: &str) -> Result<Org, AdminError> {
        let org = self
            .store()
            .get_org_by_slug(slug)
            .await
            .map_err(|e| self.error(e))?;
        match org {
            Some(org) if admin.sees_org(org.id) => Ok(org),
            _ => Err(AdminError::not_found("org", slug)),
        }
    }
}

pub async fn whoami(s: &AdminState, admin: &Admin) -> Result<WhoAmI, AdminError> {
    let (role, org) = match admin.role {
        Role::Platform => ("platform", None),
        Role::Org(id) => ("org", Some(Names(&s.snapshot()).org(id))),
    };
    Ok(WhoAmI {
        name: admin.name.clone(),
        role: role.to_owned(),
        org,
    })
}

pub async fn list_orgs(s: &AdminState, admin: &Admin) -> Result<Listing<OrgView>, AdminError> {
    let revision = s.live().revision();
    let items = match admin.role {
        Role::Platform => s
            .store()
            .list_orgs(Page::all())
            .await
            .map_err(|e| s.error(e))?
            .iter()
            .map(org_view)
            .collect(),
        Role::Org(id) => s
            .store()
            .get_org(id)
            .await
            .map_err(|e| s.error(e))?
            .iter()
            .map(org_view)
            .collect(),
    };
    Ok(Listing::all(revision, items))
}

pub async fn get_org(s: &AdminState, admin: &Admin, slug: &str) -> Result<OrgView, AdminError> {
    Ok(org_view(&s.org(admin, slug).await?))
}

pub async fn create_org(
    s: &AdminState,
    admin: &Admin,
    body: CreateOrg,
) -> Result<Written<OrgView>, AdminError> {
    admin.require_platform()?;
    let new = NewOrg {
        slug: body.slug,
        name: body.name.unwrap_or_default(),
    };
    let w = s
        .store()
        .create_org(&admin.actor, new)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: org_view(&w.value),
    })
}

pub async fn patch_org(
    s: &AdminState,
    admin: &Admin,
    slug: &str,
    body: PatchOrg,
) -> Result<Written<OrgView>, AdminError> {
    let org = s.org(admin, slug).await?;
    // Suspending is the platform's lever over an org; renaming is the org's.
    if body.suspended.is_some() {
        admin.require_platform()?;
    }
    let patch = OrgPatch {
        slug: None,
        name: body.name,
        suspended: body.suspended,
    };
    let w = s
        .store()
        .update_org(&admin.actor, org.id, patch)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: org_view(&w.value),
    })
}

pub async fn delete_org(s: &AdminState, admin: &Admin, slug: &str) -> Result<Deleted, AdminError> {
    let org = s.org(admin, slug).await?;
    admin.require_platform()?;
    let revision = s
        .store()
        .delete_org(&admin.actor, org.id)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Deleted { revision })
}

fn admin_token_view(s: &AdminState, t: &AdminToken) -> AdminTokenView {
    AdminTokenView {
        id: t.id,
        name: t.name.clone(),
        org: t.org.map(|o| Names(&s.snapshot()).org(o)),
        token_prefix: t.token_prefix.clone(),
    }
}

pub async fn list_admin_tokens(
    s: &AdminState,
    admin: &Admin,
    org: &str,
) -> Result<Listing<AdminTokenView>, AdminError> {
    let org = s.org(admin, org).await?;
    admin.require_platform()?;
    let tokens = s
        .store()
        .list_admin_tokens(Some(org.id))
        .await
        .map_err(|e| s.error(e))?;
    Ok(Listing::all(
        s.live().revision(),
        tokens.iter().map(|t| admin_token_view(s, t)).collect(),
    ))
}

pub async fn create_admin_token(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    body: CreateAdminToken,
) -> Result<Created<AdminTokenView>, AdminError> {
    let org = s.org(admin, org).await?;
    admin.require_platform()?;
    let (token, secret) = s
        .store()
        .create_admin_token(&admin.actor, &body.name, Some(org.id))
        .await
        .map_err(|e| s.error(e))?;
    Ok(Created {
        revision: s.live().revision(),
        item: admin_token_view(s, &token),
        secret: secret.expose().to_owned(),
    })
}

pub async fn delete_admin_token(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    id: i64,
) -> Result<Deleted, AdminError> {
    let org = s.org(admin, org).await?;
    admin.require_platform()?;
    let tokens = s
        .store()
        .list_admin_tokens(Some(org.id))
        .await
        .map_err(|e| s.error(e))?;
    if !tokens.iter().any(|t| t.id == id) {
        return Err(AdminError::not_found("admin token", id.to_string()));
    }
    s.store()
        .delete_admin_token(&admin.actor, id)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Deleted {
        revision: s.live().revision(),
    })
}

// ---------------------------------------------------------------- platform admin tokens

/// The platform admin tokens (org admin tokens are listed per org).
pub async fn list_platform_admin_tokens(
    s: &AdminState,
    admin: &Admin,
) -> Result<Listing<AdminTokenView>, AdminError> {
    admin.require_platform()?;
    Ok(Listing::all(
        s.live().revision(),
        platform_tokens(s)
            .await?
            .iter()
            .map(|t| admin_token_view(s, t))
            .collect(),
    ))
}

async fn platform_tokens(s: &AdminState) -> Result<Vec<AdminToken>, AdminError> {
    let mut tokens = s
        .store()
        .list_admin_tokens(None)
        .await
        .map_err(|e| s.error(e))?;
    tokens.retain(|t| t.org.is_none());
    Ok(tokens)
}

pub async fn create_platform_admin_token(
    s: &AdminState,
    admin: &Admin,
    body: CreateAdminToken,
) -> Result<Created<AdminTokenView>, AdminError> {
    admin.require_platform()?;
    let (token, secret) = s
        .store()
        .create_admin_token(&admin.actor, &body.name, None)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Created {
        revision: s.live().revision(),
        item: admin_token_view(s, &token),
        secret: secret.expose().to_owned(),
    })
}

/// Revokes a platform admin token (an org's are "not found" here). The last
/// one is kept: without it nobody could manage the gateway.
pub async fn delete_platform_admin_token(
    s: &AdminState,
    admin: &Admin,
    id: i64,
) -> Result<Deleted, AdminError> {
    admin.require_platform()?;
    let tokens = platform_tokens(s).await?;
    if !tokens.iter().any(|t| t.id == id) {
        return Err(AdminError::not_found("admin token", id.to_string()));
    }
    if tokens.len() == 1 {
        return Err(AdminError::Conflict {
            message: "this is the last platform admin token; create another one first".into(),
        });
    }
    s.store()
        .delete_admin_token(&admin.actor, id)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Deleted {
        revision: s.live().revision(),
    })
}
