//! `warden serve`: opens the store, starts the gateway, mounts the admin API,
//! `/metrics`, `/healthz` and `/readyz` on one listener, and shuts down
//! gracefully (drain in-flight calls, flush the audit log).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use warden_gateway::{DecisionRecorder, Gateway, GatewayConfig, UpstreamLimits, UpstreamSource};
use warden_store::{AuditSpool, AuditWriter, AuditWriterOptions, Secret, Store, StoreOptions};

use crate::config::Config;
use crate::error::WardenError;

/// Name under which the configured platform admin token is recorded.
const BOOTSTRAP_TOKEN_NAME: &str = "bootstrap";
const ACTOR: &str = "warden-serve";

pub async fn run(config: Config, demo: bool) -> Result<(), WardenError> {
    let telemetry = crate::telemetry::init(config.log_format, config.otlp_endpoint.as_deref())?;
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| WardenError::Metrics(e.to_string()))?;

    let secret_key = load_secret_key(&config)?;
    let mut options = StoreOptions::new(secret_key);
    options.max_staleness = config.max_staleness();
    let store = Store::open(&config.database_url, options).await?;
    tracing::info!(
        database = %warden_store::redact_url(&config.database_url),
        revision = store.live().revision(),
        replica = store.replica_id(),
        "store open"
    );

    ensure_platform_token(&store, config.admin_token.as_deref()).await?;

    // The platform's rules for tenants' upstreams (egress, stdio commands):
    // the admin API checks writes against them, the gateway connections.
    let upstream_policy = config.upstream_policy()?;
    let audit = open_audit_writer(&config, &store).await?;
    // A gateway on loopback is a local server: refuse other Host names
    // (DNS rebinding), as the MCP transport spec asks.
    let allowed_hosts = if config.allowed_hosts.is_empty() && config.listen.ip().is_loopback() {
        ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec()
    } else {
        config.allowed_hosts.clone()
    };
    let gateway_config = GatewayConfig {
        allowed_origins: config.allowed_origins.clone(),
        allowed_hosts,
        session_idle_timeout: Duration::from_secs(config.session_idle_timeout_secs),
        max_sessions_per_key: config.max_sessions_per_key,
        max_sessions_total: config.max_sessions_total,
        live_replicas: Some(store.live_replicas()),
        upstream: UpstreamLimits {
            catalog_refresh: Duration::from_secs(config.catalog_refresh_secs),
            policy: Arc::new(upstream_policy.clone()),
            max_caller_sessions: config.upstream_max_caller_sessions,
            ..UpstreamLimits::default()
        },
        public_url: config.public_url(),
        max_tasks_per_server: config.max_tasks_per_server,
        max_tasks_per_principal: config.max_tasks_per_principal,
        ..GatewayConfig::default()
    };
    let gateway = Gateway::start(
        gateway_config,
        Arc::clone(store.live()),
        Arc::new(store.clone()) as Arc<dyn UpstreamSource>,
        Arc::new(audit.clone()) as Arc<dyn DecisionRecorder>,
    )
    .await
    .map_err(|e| WardenError::Config(format!("gateway: {e}")))?;
    gateway
        .enable_identity(Arc::new(store.clone()) as Arc<dyn warden_gateway::IdentitySource>)
        .await;
    // Each person's own upstream credentials (docs/credentials.md): the
    // gateway asks the vault after every allowed decision; the consent
    // pages are public (the person's browser opens them); revocations
    // queued by deletes (cascades included) are sent in the background.
    let vault = warden_vault::Vault::new(store.clone(), &config.public_url())
        .map_err(|e| WardenError::Config(format!("credential vault: {e}")))?;
    gateway.enable_vault(vault.clone());
    // A consent link of a person signed in through an identity provider
    // opens after the browser signs in there as that person.
    vault.set_identities({
        let gateway = gateway.clone();
        Arc::new(move || gateway.identities())
    });
    tokio::spawn(vault.clone().run_revoker(Duration::from_secs(2)));

    let admin_state = warden_admin::AdminState::with_upstream_policy(
        store.clone(),
        Arc::new(gateway.catalog()),
        upstream_policy,
    )
    .with_limit_counters(gateway.limit_counters())
    .with_identities(
        {
            let gateway = gateway.clone();
            Arc::new(move || gateway.identities())
        },
        config.public_url(),
    );
    if let Some(path) = &config.bootstrap {
        apply_bootstrap(&admin_state, path).await?;
    }
    let demo_upstream = if demo {
        Some(crate::demo::start(&store).await?)
    } else {
        None
    };
    let console = config.console.then(|| {
        warden_console::router(
            admin_state.clone(),
            Arc::new(GatewaySessions(gateway.clone())),
            warden_console::ConsoleConfig {
                idle_timeout: Duration::from_secs(config.console_idle_timeout_secs),
                absolute_timeout: Duration::from_secs(config.console_session_max_secs),
                secure_cookie: config.console_secure_cookie,
            },
        )
    });
    let admin = warden_admin::router(admin_state);
    let ops = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(OpsState {
            gateway: gateway.clone(),
            metrics,
        });
    let mut app = gateway.router().merge(ops);
    if let Some(console) = console {
        app = app.merge(console);
    }
    let app = app.merge(admin).merge(warden_vault::routes(vault));

    // Started before anything can open a connection on them; dropped last
    // (at the end of this function), after the audit flush and the store's
    // shutdown, which may use sockets registered on their threads.
    let workers = crate::workers::ConnectionWorkers::start(config.connection_workers)?;
    tracing::debug!(
        connection_workers = workers.len(),
        "connection workers started"
    );
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| WardenError::Listen {
            addr: config.listen,
            source,
        })?;
    let local = listener.local_addr()?;
    tracing::info!(
        %local,
        console = config.console,
        "warden listening: MCP at /mcp, admin API at /admin/v1, console at /console"
    );
    if let Some(demo) = &demo_upstream {
        demo.print_instructions(local);
    }

    let grace = Duration::from_millis(config.shutdown_grace_ms);
    let drain_gateway = gateway.clone();
    crate::listen::serve(
        listener,
        app,
        front_door_limits(&config),
        &workers,
        async move {
            shutdown_signal().await;
            tracing::info!("shutting down: draining in-flight calls");
            drain_gateway.shutdown(grace).await;
        },
    )
    .await;
    audit.flush().await;
    if let Err(e) = store.shutdown().await {
        tracing::warn!(error = %e, "store shutdown");
    }
    tracing::info!(
        audit_written = audit.written_total(),
        audit_dropped = audit.dropped_total(),
        "stopped"
    );
    telemetry.shutdown().await;
    Ok(())
}

/// The configured front door limits, with `max_connections` kept below
/// the file-descriptor limit (raised to its hard maximum first).
fn front_door_limits(config: &Config) -> crate::listen::FrontDoorLimits {
    let mut max_connections = config.max_connections;
    if let Some(fd_room) = crate::listen::raise_fd_limit() {
        if fd_room < max_connections {
            tracing::warn!(
                configured = max_connections,
                capped = fd_room,
                "max_connections capped below the file-descriptor limit (RLIMIT_NOFILE)"
            );
            max_connections = fd_room;
        }
    }
    crate::listen::FrontDoorLimits {
        header_read_timeout: Duration::from_millis(config.header_read_timeout_ms),
        idle_timeout: Duration::from_secs(config.idle_connection_timeout_secs),
        max_connections,
    }
}

#[derive(Clone)]
struct OpsState {
    gateway: Gateway,
    metrics: PrometheusHandle,
}

async fn readyz(State(ops): State<OpsState>) -> impl IntoResponse {
    if ops.gateway.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: policy_stale or shutting down",
        )
    }
}

async fn render_metrics(State(ops): State<OpsState>) -> impl IntoResponse {
    metrics::gauge!("warden_gateway_live_sessions").set(ops.gateway.live_sessions() as f64);
    // 1 when /readyz answers 200; 0 while the policy is stale or draining.
    metrics::gauge!("warden_ready").set(if ops.gateway.is_ready() { 1.0 } else { 0.0 });
    (
        [("content-type", "text/plain; version=0.0.4")],
        ops.metrics.render(),
    )
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// The key that encrypts upstream secrets at rest: `WARDEN_SECRET_KEY`
/// (base64), else a key file (created with mode 0600 on first start beside a
/// SQLite database). PostgreSQL replicas must share one key, so there it must
/// be given explicitly.
fn load_secret_key(config: &Config) -> Result<[u8; 32], WardenError> {
    if let Ok(b64) = std::env::var("WARDEN_SECRET_KEY") {
        if !b64.is_empty() {
            return Ok(warden_store::parse_secret_key(b64.trim())?);
        }
    }
    let path = match (&config.secret_key_file, sqlite_path(&config.database_url)) {
        (Some(path), _) => path.clone(),
        (None, Some(db)) => {
            let mut name = db.clone().into_os_string();
            name.push(".key");
            PathBuf::from(name)
        }
        (None, None) => {
            return Err(WardenError::Config(
                "with PostgreSQL, set WARDEN_SECRET_KEY (base64 of 32 bytes, the same on every replica) or secret_key_file".into(),
            ))
        }
    };
    Ok(warden_store::load_or_create_key_file(&path)?)
}

/// The decision writer, with the spool where one is configured or implied
/// (SQLite): what a crash left there is replayed into the database first.
async fn open_audit_writer(config: &Config, store: &Store) -> Result<AuditWriter, WardenError> {
    let dir = config.audit_spool_dir.clone().or_else(|| {
        sqlite_path(&config.database_url).map(|db| {
            let mut name = db.into_os_string();
            name.push(".audit-spool");
            PathBuf::from(name)
        })
    });
    let Some(dir) = dir else {
        return Ok(store.audit_writer(AuditWriterOptions::default()));
    };
    store.replay_audit_spool(&dir).await?;
    let spool = AuditSpool::open(&dir)?;
    Ok(store.audit_writer_spooled(AuditWriterOptions::default(), spool))
}

/// The file of a `sqlite:` URL, if it names one (not `:memory:`).
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// Installs the configured platform token as the `bootstrap` token (a
/// different previous one is revoked: changing `WARDEN_ADMIN_TOKEN` and
/// restarting rotates it), or, on a first start without one, creates a
/// platform token and prints it once.
async fn ensure_platform_token(store: &Store, configured: Option<&str>) -> Result<(), WardenError> {
    if let Some(token) = configured {
        store
            .ensure_admin_token(ACTOR, BOOTSTRAP_TOKEN_NAME, None, &Secret::new(token))
            .await?;
        return Ok(());
    }
    let platform_tokens = store
        .list_admin_tokens(None)
        .await?
        .into_iter()
        .filter(|t| t.org.is_none())
        .count();
    if platform_tokens == 0 {
        let (_, token) = store.create_admin_token(ACTOR, "first-start", None).await?;
        print_out(&format!(
            "No platform admin token was configured; created one (shown only now):\n  WARDEN_ADMIN_TOKEN={}",
            token.expose()
        ));
    }
    Ok(())
}

async fn apply_bootstrap(admin: &warden_admin::AdminState, path: &Path) -> Result<(), WardenError> {
    let bootstrap_error = |e: warden_admin::AdminError| WardenError::Bootstrap(e.to_string());
    let file = warden_admin::bootstrap::load(path).map_err(bootstrap_error)?;
    let report = warden_admin::bootstrap::apply(admin, &file, &|name| std::env::var(name).ok())
        .await
        .map_err(bootstrap_error)?;
    tracing::info!(
        path = %path.display(),
        changes = report.changes,
        revision = report.revision,
        "bootstrap applied"
    );
    for key in &report.generated_keys {
        print_out(&format!(
            "bootstrap created key {:?} in org {:?} (secret shown only now): {}",
            key.name,
            key.org,
            key.secret.expose()
        ));
    }
    Ok(())
}

/// Prints a line for the operator. A closed stdout (a supervisor that
/// stopped reading) must not take the gateway down, so write errors are
/// logged, not panicked on like `println!` would.
pub(crate) fn print_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        tracing::warn!(error = %e, "cannot write to stdout");
    }
}

/// What the console reads from the gateway: live sessions (live page,
/// impact reports), upstream health and tool descriptions.
struct GatewaySessions(Gateway);

impl warden_console::GatewayView for GatewaySessions {
    fn sessions(&self) -> Vec<warden_console::LiveSession> {
        self.0
            .session_principals()
            .into_iter()
            .map(|(principal, mount)| warden_console::LiveSession {
                principal,
                mount: match mount {
                    warden_gateway::Mount::All => "all".to_owned(),
                    warden_gateway::Mount::Server(s) => format!("server:{s}"),
                    warden_gateway::Mount::Toolset(t) => format!("toolset:{t}"),
                },
            })
            .collect()
    }

    fn server_health(
        &self,
        server: warden_policy::ServerId,
    ) -> Option<warden_console::ServerHealth> {
        self.0
            .server_health(server)
            .map(|(ready, failure)| warden_console::ServerHealth { ready, failure })
    }

    fn tool_descriptions(&self, server: warden_policy::ServerId) -> Option<Vec<(String, String)>> {
        self.0.tool_descriptions(server)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite://warden.db"),
            Some(PathBuf::from("warden.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:/tmp/w.db?mode=rwc"),
            Some(PathBuf::from("/tmp/w.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x/y"), None);
    }
}
