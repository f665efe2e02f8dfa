//! Identity providers (`/admin/v1/identity-providers[/{slug}]`): trusted
//! OAuth / OpenID Connect issuers whose access tokens the gateway accepts.
//! Platform configuration: platform admins only. Merged into the router
//! and the OpenAPI document.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warden_identity::ProviderConfig;
use warden_store::{IdentityProvider, IdentityProviderPatch};

use crate::auth::Admin;
use crate::dto::{Deleted, Listing, WriteParams, Written};
use crate::error::{AdminError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AdminState;

/// A registered identity provider.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityProviderView {
    pub id: i64,
    pub slug: String,
    pub issuer: String,
    pub enabled: bool,
    /// The whole configuration (see the README: issuer, jwks_uri,
    /// audiences, user_claim, groups_claim, group_teams, client_agents,
    /// required_scopes, orgs, admin_groups).
    #[schema(value_type = Object)]
    pub config: ProviderConfig,
    pub created_at_ms: i64,
}

impl From<IdentityProvider> for IdentityProviderView {
    fn from(p: IdentityProvider) -> Self {
        IdentityProviderView {
            id: p.id,
            slug: p.config.slug.clone(),
            issuer: p.config.issuer.clone(),
            enabled: p.enabled,
            config: p.config,
            created_at_ms: p.created_at_ms,
        }
    }
}

/// A change to a provider: absent fields stay. `config` replaces the
/// whole configuration (its slug cannot change). Disabling revokes the
/// provider's sign-in keys: signed-in people's sessions end.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchIdentityProvider {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<ProviderConfig>,
}

async fn by_slug(s: &AdminState, slug: &str) -> Result<IdentityProvider, AdminError> {
    s.store()
        .list_identity_providers()
        .await
        .map_err(|e| s.error(e))?
        .into_iter()
        .find(|p| p.config.slug == slug)
        .ok_or_else(|| AdminError::not_found("identity provider", slug))
}

#[utoipa::path(get, path = "/admin/v1/identity-providers", tag = "identity providers", summary = "List identity providers (platform admin)", responses((status = 200, body = Listing<IdentityProviderView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn list_providers(
    State(s): State<AdminState>,
    admin: Admin,
) -> Result<(StatusCode, Json<Listing<IdentityProviderView>>), AdminError> {
    admin.require_platform()?;
    let revision = s.snapshot().revision();
    let items = s
        .store()
        .list_identity_providers()
        .await
        .map_err(|e| s.error(e))?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok((
        StatusCode::OK,
        Json(Listing {
            revision,
            items,
            next_after: None,
        }),
    ))
}

#[utoipa::path(post, path = "/admin/v1/identity-providers", tag = "identity providers", summary = "Register an identity provider (platform admin)", params(WriteParams), request_body(content = Object, description = "the provider configuration"), responses((status = 201, body = Written<IdentityProviderView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn create_provider(
    State(s): State<AdminState>,
    admin: Admin,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(config): ApiJson<ProviderConfig>,
) -> Result<(StatusCode, Json<Written<IdentityProviderView>>), AdminError> {
    admin.require_platform()?;
    let out = s
        .store()
        .create_identity_provider(&admin.actor, config)
        .await
        .map_err(|e| s.error(e))?;
    s.settle(out.revision, &wait).await?;
    Ok((
        StatusCode::CREATED,
        Json(Written {
            revision: out.revision,
            item: out.value.into(),
        }),
    ))
}

#[utoipa::path(get, path = "/admin/v1/identity-providers/{slug}", tag = "identity providers", summary = "Get an identity provider (platform admin)", params(("slug" = String, Path)), responses((status = 200, body = IdentityProviderView), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn get_provider(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(slug): ApiPath<String>,
) -> Result<(StatusCode, Json<IdentityProviderView>), AdminError> {
    admin.require_platform()?;
    Ok((StatusCode::OK, Json(by_slug(&s, &slug).await?.into())))
}

#[utoipa::path(patch, path = "/admin/v1/identity-providers/{slug}", tag = "identity providers", summary = "Change or disable an identity provider (platform admin)", params(("slug" = String, Path), WriteParams), request_body = PatchIdentityProvider, responses((status = 200, body = Written<IdentityProviderView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn patch_provider(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(slug): ApiPath<String>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<PatchIdentityProvider>,
) -> Result<(StatusCode, Json<Written<IdentityProviderView>>), AdminError> {
    admin.require_platform()?;
    let id = by_slug(&s, &slug).await?.id;
    let out = s
        .store()
        .update_identity_provider(
            &admin.actor,
            id,
            IdentityProviderPatch {
                enabled: body.enabled,
                config: body.config,
            },
        )
        .await
        .map_err(|e| s.error(e))?;
    s.settle(out.revision, &wait).await?;
    Ok((
        StatusCode::OK,
        Json(Written {
            revision: out.revision,
            item: out.value.into(),
        }),
    ))
}

#[utoipa::path(delete, path = "/admin/v1/identity-providers/{slug}", tag = "identity providers", summary = "Delete an identity provider and its sign-in keys (platform admin)", params(("slug" = String, Path), WriteParams), responses((status = 200, body = Deleted), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
async fn delete_provider(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(slug): ApiPath<String>,
    ApiQuery(wait): ApiQuery<WriteParams>,
) -> Result<(StatusCode, Json<Deleted>), AdminError> {
    admin.require_platform()?;
    let id = by_slug(&s, &slug).await?.id;
    let revision = s
        .store()
        .delete_identity_provider(&admin.actor, id)
        .await
        .map_err(|e| s.error(e))?;
    s.settle(revision, &wait).await?;
    Ok((StatusCode::OK, Json(Deleted { revision })))
}

pub(crate) fn routes() -> Router<AdminState> {
    Router::new()
        .route(
            "/admin/v1/identity-providers",
            get(list_providers).post(create_provider),
        )
        .route(
            "/admin/v1/identity-providers/{slug}",
            get(get_provider)
                .patch(patch_provider)
                .delete(delete_provider),
        )
}

/// Paths of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list_providers,
        create_provider,
        get_provider,
        patch_provider,
        delete_provider
    ),
    components(schemas(IdentityProviderView, PatchIdentityProvider))
)]
pub(crate) struct IdentityProviderPaths;
