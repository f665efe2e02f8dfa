//! Orgs.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::auth::Admin;
use crate::dto::*;
use crate::error::{AdminError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::ops;
use crate::state::AdminState;

#[utoipa::path(get, path = "/admin/v1/orgs", tag = "orgs", summary = "List orgs (an org admin sees only its own)", responses((status = 200, body = Listing<OrgView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn list_orgs(
    State(s): State<AdminState>,
    admin: Admin,
) -> Result<(StatusCode, Json<Listing<OrgView>>), AdminError> {
    let out = ops::list_orgs(&s, &admin).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(post, path = "/admin/v1/orgs", tag = "orgs", summary = "Create an org (platform admin)", params(WriteParams), request_body = CreateOrg, responses((status = 201, body = Written<OrgView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn create_org(
    State(s): State<AdminState>,
    admin: Admin,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<CreateOrg>,
) -> Result<(StatusCode, Json<Written<OrgView>>), AdminError> {
    let out = ops::create_org(&s, &admin, body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org}", tag = "orgs", summary = "Get an org", params(("org" = String, Path)), responses((status = 200, body = OrgView), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn get_org(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
) -> Result<(StatusCode, Json<OrgView>), AdminError> {
    let out = ops::get_org(&s, &admin, &org).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(patch, path = "/admin/v1/orgs/{org}", tag = "orgs", summary = "Suspend or resume an org (platform admin)", params(("org" = String, Path), WriteParams), request_body = PatchOrg, responses((status = 200, body = Written<OrgView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn patch_org(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(wait): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<PatchOrg>,
) -> Result<(StatusCode, Json<Written<OrgView>>), AdminError> {
    let out = ops::patch_org(&s, &admin, &org, body).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(delete, path = "/admin/v1/orgs/{org}", tag = "orgs", summary = "Delete an org and everything in it (platform admin)", params(("org" = String, Path), WriteParams), responses((status = 200, body = Deleted), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn delete_org(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(wait): ApiQuery<WriteParams>,
) -> Result<(StatusCode, Json<Deleted>), AdminError> {
    let out = ops::delete_org(&s, &admin, &org).await?;
    s.settle(out.revision, &wait).await?;
    Ok((StatusCode::OK, Json(out)))
}
