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
    #[error(transparent)]
    Cli(#[from] crate::cli::CliError),
}
