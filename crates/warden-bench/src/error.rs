use std::time::Duration;

/// Everything that can stop a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{program} failed ({status}): {output}")]
    Command {
        program: String,
        status: String,
        output: String,
    },
    #[error("cannot find {what}: {hint}")]
    NotFound { what: String, hint: String },
    #[error("{name} exited before it was ready ({status}); log: {log}")]
    ProcessDied {
        name: String,
        status: String,
        log: String,
    },
    #[error("admin API {method} {path} answered HTTP {status}: {body}")]
    Admin {
        method: String,
        path: String,
        status: u16,
        body: String,
    },
    #[error("MCP {method} answered HTTP {status}: {body}")]
    Mcp {
        method: String,
        status: u16,
        body: String,
    },
    #[error("unexpected reply to {what}: {detail}")]
    Reply { what: String, detail: String },
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
    #[error("interrupted")]
    Interrupted,
}

pub type Result<T, E = BenchError> = std::result::Result<T, E>;
