//! The gateway's one error type.

use thiserror::Error;

/// What went wrong while serving a request or talking to an upstream. Each
/// upstream variant names the server, so a client sees which one failed.
#[derive(Debug, Clone, Error)]
pub enum GatewayError {
    #[error("upstream {server} is unavailable: {detail}")]
    UpstreamUnavailable { server: String, detail: String },
    #[error("upstream {server} did not answer within {timeout_ms} ms")]
    UpstreamTimeout { server: String, timeout_ms: u64 },
    #[error("upstream {server} sent an invalid response: {detail}")]
    UpstreamProtocol { server: String, detail: String },
    #[error("upstream {server} sent a response larger than {limit} bytes")]
    UpstreamTooLarge { server: String, limit: usize },
    #[error("upstream {server} answered HTTP {status}")]
    UpstreamStatus { server: String, status: u16 },
    /// The upstream closed a response stream before its answer (SSE
    /// polling) and reconnecting to it with `Last-Event-ID` failed.
    #[error("upstream {server} could not be resumed: {detail}")]
    UpstreamResumeFailed { server: String, detail: String },
    #[error("loading upstream configuration failed: {0}")]
    Config(String),
    #[error("the gateway is shutting down")]
    ShuttingDown,
    /// A call's decision could not be recorded durably: the call is refused
    /// (`audit_unavailable`) rather than forwarded unaudited.
    #[error("the audit log is unavailable: {0}")]
    AuditUnavailable(String),
}

impl GatewayError {
    /// Short stable label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            GatewayError::UpstreamUnavailable { .. } => "unavailable",
            GatewayError::UpstreamTimeout { .. } => "timeout",
            GatewayError::UpstreamProtocol { .. } => "protocol",
            GatewayError::UpstreamTooLarge { .. } => "too_large",
            GatewayError::UpstreamStatus { .. } => "status",
            GatewayError::UpstreamResumeFailed { .. } => "resume_failed",
            GatewayError::Config(_) => "config",
            GatewayError::ShuttingDown => "shutting_down",
            GatewayError::AuditUnavailable(_) => "audit_unavailable",
        }
    }

    /// The server the error concerns, if any.
    pub fn server(&self) -> Option<&str> {
        match self {
            GatewayError::UpstreamUnavailable { server, .. }
            | GatewayError::UpstreamTimeout { server, .. }
            | GatewayError::UpstreamProtocol { server, .. }
            | GatewayError::UpstreamTooLarge { server, .. }
            | GatewayError::UpstreamStatus { server, .. }
            | GatewayError::UpstreamResumeFailed { server, .. } => Some(server),
            GatewayError::Config(_)
            | GatewayError::ShuttingDown
            | GatewayError::AuditUnavailable(_) => None,
        }
    }
}
