//! The admin API's one error type and its one mapping to HTTP.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Value};
use thiserror::Error;
use utoipa::ToSchema;

/// Everything an admin request can fail with. Each variant has a stable
/// snake_case code and exactly one HTTP status (see [`AdminError::status`]).
#[derive(Debug, Error)]
pub enum AdminError {
    #[error("missing or invalid admin token")]
    Unauthorized,
    #[error("this operation needs a platform admin token")]
    PlatformAdminRequired,
    /// A stdio server runs a command as Warden's own user: only the
    /// platform may create one, turn a server into one, or change one.
    #[error("only a platform admin may create or change a stdio server")]
    StdioRequiresPlatformAdmin,
    /// The platform's `stdio_allowed_commands` does not list the command.
    #[error("stdio command {command:?} is not in the platform's stdio_allowed_commands")]
    StdioCommandNotAllowed { command: String },
    /// An org admin's upstream URL is outside the platform's egress policy.
    #[error("upstream URL refused: {reason}")]
    UpstreamUrlForbidden { reason: warden_store::EgressDenied },
    /// Also what an org admin gets for another org's objects: existence
    /// never leaks across orgs.
    #[error("{kind} {name:?} not found")]
    NotFound { kind: &'static str, name: String },
    /// The path exists, but not with this method (the response's `Allow`
    /// header lists the methods it has).
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("{kind} {name:?} already exists")]
    Duplicate { kind: &'static str, name: String },
    #[error("malformed JSON body: {0}")]
    MalformedJson(String),
    #[error("invalid request body: {0}")]
    InvalidBody(String),
    #[error("request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("request body too large (limit {limit} bytes)")]
    BodyTooLarge { limit: usize },
    #[error("invalid query string: {0}")]
    BadQuery(String),
    #[error("invalid path parameter: {0}")]
    BadPath(String),
    #[error("{0}")]
    BadSlug(String),
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// A scope or toolset asks for more than its parent chain allows.
    #[error("the requested grants go beyond what the parent allows")]
    BeyondParent { offenses: Value },
    #[error("{message}")]
    Conflict { message: String },
    /// The key may not act for the end user / agent named (the engine's
    /// refusal, with its stable code).
    #[error("{0}")]
    Principal(warden_policy::PolicyError),
    /// The write is committed and live here; some replicas did not confirm
    /// it in time.
    #[error("revision {revision} is committed and live on this replica, but {} replica(s) did not apply it within {timeout_ms} ms", laggards.len())]
    PropagationTimeout {
        revision: u64,
        timeout_ms: u64,
        laggards: Vec<Value>,
    },
    /// The store is unreachable or this replica cannot vouch for its policy.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// A bootstrap file entry that cannot be applied.
    #[error("bootstrap {entry}: {message}")]
    Bootstrap { entry: String, message: String },
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code.
    pub code: String,
    pub message: String,
    #[schema(value_type = Object)]
    pub details: Value,
}

impl AdminError {
    pub fn not_found(kind: &'static str, name: impl Into<String>) -> Self {
        AdminError::NotFound {
            kind,
            name: name.into(),
        }
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        AdminError::Invalid {
            field,
            message: message.into(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AdminError::Unauthorized => "unauthorized",
            AdminError::PlatformAdminRequired => "platform_admin_required",
            AdminError::StdioRequiresPlatformAdmin => "stdio_requires_platform_admin",
            AdminError::StdioCommandNotAllowed { .. } => "stdio_command_not_allowed",
            AdminError::UpstreamUrlForbidden { .. } => "upstream_url_forbidden",
            AdminError::NotFound { .. } => "not_found",
            AdminError::MethodNotAllowed { .. } => "method_not_allowed",
            AdminError::Duplicate { .. } => "duplicate",
            AdminError::MalformedJson(_) => "malformed_json",
            AdminError::InvalidBody(_) => "invalid_body",
            AdminError::UnsupportedMediaType => "unsupported_media_type",
            AdminError::BodyTooLarge { .. } => "body_too_large",
            AdminError::BadQuery(_) => "bad_query",
            AdminError::BadPath(_) => "bad_path",
            AdminError::BadSlug(_) => "bad_slug",
            AdminError::Invalid { .. } => "invalid_value",
            AdminError::BeyondParent { .. } => "grants_beyond_parent",
            AdminError::Conflict { .. } => "conflict",
            AdminError::Principal(e) => e.code(),
            AdminError::PropagationTimeout { .. } => "propagation_timeout",
            AdminError::Unavailable(_) => "unavailable",
            AdminError::Internal(_) => "internal",
            AdminError::Bootstrap { .. } => "bootstrap_failed",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AdminError::Unauthorized => StatusCode::UNAUTHORIZED,
            AdminError::PlatformAdminRequired
            | AdminError::StdioRequiresPlatformAdmin
            | AdminError::StdioCommandNotAllowed { .. }
            | AdminError::UpstreamUrlForbidden { .. } => StatusCode::FORBIDDEN,
            AdminError::NotFound { .. } => StatusCode::NOT_FOUND,
            AdminError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            AdminError::Duplicate { .. } | AdminError::Conflict { .. } => StatusCode::CONFLICT,
            AdminError::MalformedJson(_) | AdminError::BadQuery(_) | AdminError::BadPath(_) => {
                StatusCode::BAD_REQUEST
            }
            AdminError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AdminError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AdminError::InvalidBody(_)
            | AdminError::BadSlug(_)
            | AdminError::Invalid { .. }
            | AdminError::BeyondParent { .. }
            | AdminError::Principal(_)
            | AdminError::Bootstrap { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AdminError::PropagationTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            AdminError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn details(&self) -> Value {
        match self {
            AdminError::NotFound { kind, name } | AdminError::Duplicate { kind, name } => {
                json!({ "kind": kind, "name": name })
            }
            AdminError::MethodNotAllowed { method, path } => {
                json!({ "method": method, "path": path })
            }
            AdminError::BodyTooLarge { limit } => json!({ "limit_bytes": limit }),
            AdminError::Invalid { field, .. } => json!({ "field": field }),
            AdminError::StdioCommandNotAllowed { command } => {
                json!({ "field": "transport.command", "command": command })
            }
            AdminError::UpstreamUrlForbidden { reason } => {
                json!({ "field": "transport.url", "reason": reason.code() })
            }
            AdminError::BeyondParent { offenses } => json!({ "offenses": offenses }),
            AdminError::PropagationTimeout {
                revision,
                timeout_ms,
                laggards,
            } => json!({ "revision": revision, "timeout_ms": timeout_ms, "laggards": laggards }),
            _ => Value::Null,
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(code = self.code(), "admin request failed: {self}");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.to_string(),
                details: self.details(),
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"warden-admin\""),
            );
        }
        response
    }
}

impl From<warden_policy::PolicyError> for AdminError {
    fn from(e: warden_policy::PolicyError) -> Self {
        match e {
            warden_policy::PolicyError::BadSlug { .. } => AdminError::BadSlug(e.to_string()),
            warden_policy::PolicyError::DuplicateName { .. } => AdminError::Conflict {
                message: e.to_string(),
            },
            _ => AdminError::invalid("body", e.to_string()),
        }
    }
}
