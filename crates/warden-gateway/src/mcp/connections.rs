//! A person's own connections (docs/credentials.md): `GET /mcp/connections`
//! lists the servers they connected to their own account (never a token),
//! `DELETE /mcp/connections/{id}` disconnects one (its tokens are deleted
//! and revoked upstream). Authenticated like every MCP request (admission:
//! an identity provider token, or a key asserting the end user); only a
//! person's own connections are reachable, another's id is 404.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get};
use axum::Router;
use serde_json::{json, Value};
use warden_policy::{EndUserId, OrgId};

use super::admission::Admitted;
use super::refusal::{json_response, Refusal};
use crate::gateway::Shared;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/mcp/connections", get(list))
        .route("/mcp/connections/{id}", delete(disconnect))
}

/// The person and the vault, or the refusal.
fn person(
    shared: &Shared,
    admitted: Result<Admitted, Refusal>,
) -> Result<(warden_vault::Vault, OrgId, EndUserId), Refusal> {
    let admitted = admitted?;
    let vault = shared
        .vault
        .get()
        .cloned()
        .ok_or(Refusal::EndpointUnknown)?;
    let org = admitted
        .snapshot
        .key(admitted.principal.key)
        .map(|k| k.org)
        .ok_or(Refusal::KeyUnknown)?;
    let end_user = admitted.principal.end_user.ok_or(Refusal::NotAPerson)?;
    Ok((vault, org, end_user))
}

fn store_failed(e: &warden_store::StoreError) -> Response {
    tracing::error!(error = %e, "connections: store failed");
    json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"error": {"reason": "store_unavailable"}}).to_string(),
    )
}

async fn list(State(shared): State<Arc<Shared>>, admitted: Result<Admitted, Refusal>) -> Response {
    let (vault, org, end_user) = match person(&shared, admitted) {
        Ok(p) => p,
        Err(r) => return r.into_response(Value::Null),
    };
    match vault
        .store()
        .list_user_credentials(org, Some(end_user))
        .await
    {
        Ok(items) => {
            let items: Vec<Value> = items
                .into_iter()
                .map(|c| {
                    json!({
                        "id": c.id,
                        "server": c.server_slug,
                        "scopes": c.scopes,
                        "expires_at_ms": c.expires_at_ms,
                        "created_at_ms": c.created_at_ms,
                    })
                })
                .collect();
            json_response(StatusCode::OK, json!({"items": items}).to_string())
        }
        Err(e) => store_failed(&e),
    }
}

async fn disconnect(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<i64>,
    admitted: Result<Admitted, Refusal>,
) -> Response {
    let (vault, org, end_user) = match person(&shared, admitted) {
        Ok(p) => p,
        Err(r) => return r.into_response(Value::Null),
    };
    let actor = format!("end-user:{end_user}");
    match vault
        .store()
        .delete_user_credential(&actor, org, Some(end_user), id)
        .await
    {
        Ok(Some(_)) => {
            vault.revocations_queued();
            json_response(StatusCode::OK, json!({"disconnected": id}).to_string())
        }
        Ok(None) => Refusal::ConnectionUnknown.into_response(Value::Null),
        Err(e) => store_failed(&e),
    }
}
