use thiserror::Error;

/// Why the `warden` binary could not do what it was asked.
#[derive(Debug, Error)]
pub enum WardenError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("storage: {0}")]
    Store(#[from] warden_store::StoreError),
    #[error("bootstrap: {0}")]
    Bootstrap(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Serve(#[from] std::io::Error),
    #[error("metrics: {0}")]
    Metrics(String),
    // The admin subcommands (clients of the admin REST API):
    #[error("cannot reach the admin API at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The API refused: its stable code and message.
    #[error("{status} {code}: {message}{details}")]
    Api {
        status: u16,
        code: String,
        message: String,
        details: String,
    },
    #[error("unexpected response from the admin API: {0}")]
    BadResponse(String),
    #[error("invalid argument: {0}")]
    BadArgument(String),
    #[error("no admin token: pass --token or set WARDEN_ADMIN_TOKEN")]
    MissingToken,
}
