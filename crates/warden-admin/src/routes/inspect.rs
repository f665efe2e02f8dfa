//! Explain, replicas, and the audit log.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::auth::Admin;
use crate::dto::*;
use crate::error::{AdminError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::ops;
use crate::state::AdminState;

#[utoipa::path(get, path = "/admin/v1/orgs/{org}/explain", tag = "inspect", summary = "The engine's decision and trace for a principal, server and tool at the current revision", params(("org" = String, Path), ExplainParams), responses((status = 200, body = ExplainView), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn explain(
    State(s): State<AdminState>,
    admin: Admin,
    ApiPath(org): ApiPath<String>,
    ApiQuery(query): ApiQuery<ExplainParams>,
) -> Result<(StatusCode, Json<ExplainView>), AdminError> {
    let out = ops::explain(&s, &admin, &org, query).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/replicas", tag = "inspect", summary = "Replicas with heartbeat and applied revision", responses((status = 200, body = Listing<ReplicaView>), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn list_replicas(
    State(s): State<AdminState>,
    admin: Admin,
) -> Result<(StatusCode, Json<Listing<ReplicaView>>), AdminError> {
    let out = ops::list_replicas(&s, &admin).await?;
    Ok((StatusCode::OK, Json(out)))
}

#[utoipa::path(get, path = "/admin/v1/audit", tag = "inspect", summary = "The audit log, newest first, filtered and paginated", params(AuditParams), responses((status = 200, body = AuditPage), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn list_audit(
    State(s): State<AdminState>,
    admin: Admin,
    ApiQuery(query): ApiQuery<AuditParams>,
) -> Result<(StatusCode, Json<AuditPage>), AdminError> {
    let out = ops::list_audit(&s, &admin, query).await?;
    Ok((StatusCode::OK, Json(out)))
}
