//! `warden serve` settings: defaults, then an optional TOML file, then
//! environment variables, then command-line flags (each overrides the last).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use warden_store::redact_url;

use crate::error::WardenError;

/// More connection worker threads than this is a typo, not a machine.
const MAX_CONNECTION_WORKERS: usize = 1024;

/// Everything `warden serve` needs to start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address for MCP (`/mcp`), admin (`/admin/v1`), `/metrics`, `/healthz`, `/readyz`.
    pub listen: SocketAddr,
    /// `sqlite://path.db` (default, created on first start) or `postgres://...`.
    pub database_url: String,
    /// Platform admin token accepted from the first start on, recorded as
    /// the admin token `bootstrap`. A different value on a later start
    /// replaces it (the previous value stops working). Prefer the
    /// environment (`WARDEN_ADMIN_TOKEN`) to a file.
    pub admin_token: Option<String>,
    /// Where the 32-byte key that encrypts upstream secrets lives, if not
    /// given as `WARDEN_SECRET_KEY` (base64). Default: `<db file>.key` beside
    /// a SQLite database; required from the environment with PostgreSQL.
    pub secret_key_file: Option<PathBuf>,
    /// A declarative bootstrap file applied (idempotently) on start.
    pub bootstrap: Option<PathBuf>,
    /// Where an allowed call's decision record is made durable before the
    /// call is forwarded (an append-only spool, moved into the database in
    /// batches, replayed on start). Default: `<db file>.audit-spool/`
    /// beside a SQLite database; with PostgreSQL none unless set (each
    /// replica needs its own directory), and the record is committed to
    /// the database before forwarding instead.
    pub audit_spool_dir: Option<PathBuf>,
    /// A replica that cannot confirm it is current within this long fails
    /// closed (PostgreSQL only).
    pub max_staleness_ms: u64,
    /// Origins allowed to call `/mcp` from a browser, besides localhost.
    pub allowed_origins: Vec<String>,
    /// If set, only these `Host` names are served (DNS-rebinding
    /// protection), e.g. `["warden.internal"]`. Empty with a loopback
    /// `listen`: `localhost`, `127.0.0.1`, `::1`. Empty otherwise: any.
    pub allowed_hosts: Vec<String>,
    /// How often tool catalogs are refreshed even without `list_changed`.
    pub catalog_refresh_secs: u64,
    /// How long shutdown waits for in-flight calls.
    pub shutdown_grace_ms: u64,
    /// A session with no request and no open stream for this long is ended.
    pub session_idle_timeout_secs: u64,
    /// Live MCP sessions (and listen streams) one key may hold.
    pub max_sessions_per_key: usize,
    /// Live MCP sessions (and listen streams) in total.
    pub max_sessions_total: usize,
    /// Callers' own upstream sessions per session-era HTTP server (one per
    /// downstream session that uses it); beyond it a call is refused
    /// `upstream_sessions_full`. 0: callers share one upstream session.
    pub upstream_max_caller_sessions: usize,
    /// Live tasks (`io.modelcontextprotocol/tasks`) whose creator Warden
    /// remembers, per server; a task beyond it is cancelled upstream and
    /// its call refused `tasks_full`.
    pub max_tasks_per_server: usize,
    /// The same, per principal (key, end user, agent).
    pub max_tasks_per_principal: usize,
    /// `pretty` or `json` logs.
    pub log_format: LogFormat,

    // Front door limits (`listen.rs`).
    /// A connection that started sending a request head and has not
    /// finished it this long after its first byte is closed.
    pub header_read_timeout_ms: u64,
    /// A connection with no request in flight (no call running, no open
    /// stream) and no request head arriving for this long is closed.
    pub idle_connection_timeout_secs: u64,
    /// At most this many client connections at once (capped below the
    /// process's file-descriptor limit). When full, a new connection takes
    /// the place of the oldest one with nothing in flight.
    pub max_connections: usize,
    /// Threads that run client connections, each a single-threaded
    /// runtime (`workers.rs`). 0 (the default): one per CPU.
    pub connection_workers: usize,
    /// What upstreams whose URL an org admin set may reach.
    pub egress: EgressConfig,
    /// If set, the only commands a stdio server may run (checked when any
    /// admin writes one, and before every spawn). Unset: any command, and
    /// only platform admins create stdio servers.
    pub stdio_allowed_commands: Option<Vec<String>>,
    // --- Tracing (OpenTelemetry) ---
    /// OTLP/HTTP (protobuf) collector base URL, e.g. `http://127.0.0.1:4318`
    /// (`/v1/traces` is appended unless the URL already ends with it).
    /// Unset (the default): no spans are made or exported. Env
    /// `WARDEN_OTLP_ENDPOINT`. `OTEL_EXPORTER_OTLP_ENDPOINT` does not turn
    /// tracing on; once on, the exporter's other `OTEL_EXPORTER_OTLP_*`
    /// variables (headers, timeout) apply as usual.
    pub otlp_endpoint: Option<String>,
    // --- Admin console (`/console`) ---
    /// Serve the admin console at `/console` (default on). Env
    /// `WARDEN_CONSOLE=false` or `--no-console` turns it off.
    pub console: bool,
    /// Mark the console's session cookie `Secure` (set this when Warden is
    /// reached over TLS, e.g. behind a TLS-terminating proxy; it is also
    /// set on any request with `X-Forwarded-Proto: https`).
    pub console_secure_cookie: bool,
    /// A console session unused this long ends (seconds).
    pub console_idle_timeout_secs: u64,
    /// A console session ends this long after sign-in (seconds).
    pub console_session_max_secs: u64,
    /// The gateway's public base URL (`https://warden.example`, no path):
    /// the prefix of the resource identifiers identity-provider tokens
    /// must be issued for (RFC 8707) and of the protected resource metadata
    /// (RFC 9728). Default: `http://<listen>`. Env `WARDEN_PUBLIC_URL`.
    pub public_url: Option<String>,
}

/// `[egress]`: exceptions to the default refusal of loopback, private,
/// link-local (metadata), CGNAT, multicast and reserved addresses for
/// upstreams whose URL an org admin set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgressConfig {
    /// Host names (`mcp.internal`, or `*.corp.example`) whose addresses
    /// are not checked.
    pub allow_hosts: Vec<String>,
    /// Address ranges allowed anyway (`10.20.0.0/16`, `fd12::/16`).
    pub allow_cidrs: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Pretty,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://warden.db".into(),
            admin_token: None,
            secret_key_file: None,
            bootstrap: None,
            audit_spool_dir: None,
            max_staleness_ms: 5_000,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            catalog_refresh_secs: 300,
            shutdown_grace_ms: 10_000,
            session_idle_timeout_secs: 3_600,
            max_sessions_per_key: 1_000,
            max_sessions_total: 100_000,
            upstream_max_caller_sessions: 1_000,
            max_tasks_per_server: 10_000,
            max_tasks_per_principal: 1_000,
            log_format: LogFormat::Pretty,
            header_read_timeout_ms: 10_000,
            idle_connection_timeout_secs: 60,
            max_connections: 10_000,
            connection_workers: 0,
            egress: EgressConfig::default(),
            stdio_allowed_commands: None,
            otlp_endpoint: None,
            console: true,
            console_secure_cookie: false,
            console_idle_timeout_secs: 30 * 60,
            console_session_max_secs: 12 * 60 * 60,
            public_url: None,
        }
    }
}

/// Flags of `warden serve` that override the file and the environment.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeFlags {
    /// TOML settings file.
    #[arg(long, env = "WARDEN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Listen address (env WARDEN_LISTEN).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Database URL (env WARDEN_DATABASE_URL).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Bootstrap TOML applied on start (env WARDEN_BOOTSTRAP).
    #[arg(long)]
    pub bootstrap: Option<PathBuf>,
    /// Log format (env WARDEN_LOG_FORMAT).
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Start a demo upstream MCP server and a demo org with a key, and print
    /// how to connect.
    #[arg(long)]
    pub demo: bool,
    /// Do not serve the admin console at /console.
    #[arg(long)]
    pub no_console: bool,
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn parse_env<T: std::str::FromStr>(name: &'static str) -> Result<Option<T>, WardenError>
where
    T::Err: std::fmt::Display,
{
    env_var(name)
        .map(|v| {
            v.parse()
                .map_err(|e: T::Err| WardenError::Config(format!("{name}={v:?}: {e}")))
        })
        .transpose()
}

impl Config {
    /// Defaults, then the file, then the environment, then the flags.
    pub fn load(flags: &ServeFlags) -> Result<Config, WardenError> {
        let mut config = match &flags.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        config.apply_env()?;
        if let Some(listen) = flags.listen {
            config.listen = listen;
        }
        if let Some(url) = &flags.database_url {
            config.database_url = url.clone();
        }
        if let Some(path) = &flags.bootstrap {
            config.bootstrap = Some(path.clone());
        }
        if flags.no_console {
            config.console = false;
        }
        if let Some(format) = flags.log_format {
            config.log_format = format;
        }
        config.validate()?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> Result<Config, WardenError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| WardenError::Config(format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| WardenError::Config(format!("{}: {e}", path.display())))
    }

    fn apply_env(&mut self) -> Result<(), WardenError> {
        if let Some(v) = parse_env("WARDEN_LISTEN")? {
            self.listen = v;
        }
        if let Some(v) = parse_env("WARDEN_CONSOLE")? {
            self.console = v;
        }
        if let Some(v) = env_var("WARDEN_DATABASE_URL") {
            self.database_url = v;
        }
        if let Some(v) = env_var("WARDEN_ADMIN_TOKEN") {
            self.admin_token = Some(v);
        }
        if let Some(v) = env_var("WARDEN_SECRET_KEY_FILE") {
            self.secret_key_file = Some(v.into());
        }
        if let Some(v) = env_var("WARDEN_BOOTSTRAP") {
            self.bootstrap = Some(v.into());
        }
        if let Some(v) = env_var("WARDEN_AUDIT_SPOOL_DIR") {
            self.audit_spool_dir = Some(v.into());
        }
        if let Some(v) = parse_env("WARDEN_MAX_STALENESS_MS")? {
            self.max_staleness_ms = v;
        }
        if let Some(v) = env_var("WARDEN_ALLOWED_ORIGINS") {
            self.allowed_origins = v.split(',').map(|s| s.trim().to_owned()).collect();
        }
        if let Some(v) = env_var("WARDEN_ALLOWED_HOSTS") {
            self.allowed_hosts = v.split(',').map(|s| s.trim().to_owned()).collect();
        }
        if let Some(v) = parse_env("WARDEN_CATALOG_REFRESH_SECS")? {
            self.catalog_refresh_secs = v;
        }
        if let Some(v) = parse_env("WARDEN_SESSION_IDLE_TIMEOUT_SECS")? {
            self.session_idle_timeout_secs = v;
        }
        if let Some(v) = parse_env("WARDEN_MAX_SESSIONS_PER_KEY")? {
            self.max_sessions_per_key = v;
        }
        if let Some(v) = parse_env("WARDEN_MAX_SESSIONS_TOTAL")? {
            self.max_sessions_total = v;
        }
        if let Some(v) = parse_env("WARDEN_UPSTREAM_MAX_CALLER_SESSIONS")? {
            self.upstream_max_caller_sessions = v;
        }
        if let Some(v) = parse_env("WARDEN_MAX_TASKS_PER_SERVER")? {
            self.max_tasks_per_server = v;
        }
        if let Some(v) = parse_env("WARDEN_MAX_TASKS_PER_PRINCIPAL")? {
            self.max_tasks_per_principal = v;
        }
        self.apply_security_env();
        if let Some(v) = env_var("WARDEN_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = env_var("WARDEN_OTLP_ENDPOINT") {
            self.otlp_endpoint = Some(v);
        }
        if let Some(v) = env_var("WARDEN_LOG_FORMAT") {
            self.log_format = match v.as_str() {
                "json" => LogFormat::Json,
                "pretty" => LogFormat::Pretty,
                other => {
                    return Err(WardenError::Config(format!(
                        "WARDEN_LOG_FORMAT={other:?}: expected pretty or json"
                    )))
                }
            };
        }
        self.apply_front_door_env()
    }

    fn apply_front_door_env(&mut self) -> Result<(), WardenError> {
        if let Some(v) = parse_env("WARDEN_HEADER_READ_TIMEOUT_MS")? {
            self.header_read_timeout_ms = v;
        }
        if let Some(v) = parse_env("WARDEN_IDLE_CONNECTION_TIMEOUT_SECS")? {
            self.idle_connection_timeout_secs = v;
        }
        if let Some(v) = parse_env("WARDEN_MAX_CONNECTIONS")? {
            self.max_connections = v;
        }
        if let Some(v) = parse_env("WARDEN_CONNECTION_WORKERS")? {
            self.connection_workers = v;
        }
        Ok(())
    }

    fn validate_front_door(&self) -> Result<(), WardenError> {
        for (name, value) in [
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            (
                "idle_connection_timeout_secs",
                self.idle_connection_timeout_secs,
            ),
            ("max_connections", self.max_connections as u64),
        ] {
            if value == 0 {
                return Err(WardenError::Config(format!("{name} must be > 0")));
            }
        }
        if self.connection_workers > MAX_CONNECTION_WORKERS {
            return Err(WardenError::Config(format!(
                "connection_workers must be at most {MAX_CONNECTION_WORKERS} (0: one per CPU)"
            )));
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), WardenError> {
        if self.console_idle_timeout_secs == 0 || self.console_session_max_secs == 0 {
            return Err(WardenError::Config(
                "console_idle_timeout_secs and console_session_max_secs must be at least 1".into(),
            ));
        }
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return Err(WardenError::Config(format!(
                "database_url must start with sqlite: or postgres:// (got {:?})",
                redact_url(&self.database_url)
            )));
        }
        if self.session_idle_timeout_secs == 0 {
            return Err(WardenError::Config(
                "session_idle_timeout_secs must be > 0".into(),
            ));
        }
        if self.max_sessions_per_key == 0 || self.max_sessions_total == 0 {
            return Err(WardenError::Config(
                "max_sessions_per_key and max_sessions_total must be > 0".into(),
            ));
        }
        if self.max_tasks_per_server == 0 || self.max_tasks_per_principal == 0 {
            return Err(WardenError::Config(
                "max_tasks_per_server and max_tasks_per_principal must be > 0".into(),
            ));
        }
        if let Some(url) = &self.otlp_endpoint {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(WardenError::Config(format!(
                    "otlp_endpoint must be an http:// or https:// URL (got {url:?})"
                )));
            }
        }
        if let Some(url) = &self.public_url {
            let rest = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"));
            if rest.is_none_or(|r| r.is_empty() || r.trim_end_matches('/').contains('/')) {
                return Err(WardenError::Config(format!(
                    "public_url must be http(s)://host[:port] without a path (got {url:?})"
                )));
            }
        }
        if self.max_staleness_ms == 0 {
            return Err(WardenError::Config("max_staleness_ms must be > 0".into()));
        }
        self.upstream_policy()?;
        self.validate_front_door()
    }

    pub fn max_staleness(&self) -> Duration {
        Duration::from_millis(self.max_staleness_ms)
    }

    /// `public_url`, or `http://<listen>`, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }
}

// ------------------------------------------------- tenants and egress

/// A comma-separated list, without blanks.
fn env_list(name: &str) -> Option<Vec<String>> {
    env_var(name).map(|v| {
        v.split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

impl Config {
    /// `WARDEN_EGRESS_ALLOW_HOSTS`, `WARDEN_EGRESS_ALLOW_CIDRS`,
    /// `WARDEN_STDIO_ALLOWED_COMMANDS` (comma-separated).
    fn apply_security_env(&mut self) {
        if let Some(v) = env_list("WARDEN_EGRESS_ALLOW_HOSTS") {
            self.egress.allow_hosts = v;
        }
        if let Some(v) = env_list("WARDEN_EGRESS_ALLOW_CIDRS") {
            self.egress.allow_cidrs = v;
        }
        if let Some(v) = env_list("WARDEN_STDIO_ALLOWED_COMMANDS") {
            self.stdio_allowed_commands = Some(v);
        }
    }

    /// The platform's rules for upstreams, shared by the admin API and the
    /// gateway.
    pub fn upstream_policy(&self) -> Result<warden_store::UpstreamPolicy, WardenError> {
        let egress =
            warden_store::EgressPolicy::new(&self.egress.allow_hosts, &self.egress.allow_cidrs)
                .map_err(|e| WardenError::Config(e.to_string()))?;
        Ok(warden_store::UpstreamPolicy {
            egress,
            stdio_allowed_commands: self.stdio_allowed_commands.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_and_unknown_keys() {
        let c: Config =
            toml::from_str("listen = \"127.0.0.1:9999\"\nmax_staleness_ms = 100").unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.max_staleness_ms, 100);
        assert_eq!(c.database_url, "sqlite://warden.db");
        assert!(toml::from_str::<Config>("lisen = \"x\"").is_err());
    }

    #[test]
    fn front_door_settings() {
        let c = Config::default();
        assert_eq!(
            (
                c.header_read_timeout_ms,
                c.idle_connection_timeout_secs,
                c.max_connections
            ),
            (10_000, 60, 10_000)
        );
        let c: Config = toml::from_str(
            "header_read_timeout_ms = 500\nidle_connection_timeout_secs = 5\nmax_connections = 64",
        )
        .unwrap();
        assert_eq!(c.max_connections, 64);
        assert!(c.validate().is_ok());
        let zero = Config {
            max_connections: 0,
            ..Config::default()
        };
        assert!(zero.validate().is_err());
        let c: Config = toml::from_str("connection_workers = 3").unwrap();
        assert_eq!(c.connection_workers, 3);
        assert!(c.validate().is_ok());
        let absurd = Config {
            connection_workers: 5_000,
            ..Config::default()
        };
        assert!(absurd.validate().is_err());
    }

    #[test]
    fn egress_and_stdio_settings() {
        let c: Config = toml::from_str(
            "stdio_allowed_commands = [\"npx\"]\n[egress]\nallow_hosts = [\"mcp.internal\"]\nallow_cidrs = [\"10.20.0.0/16\"]",
        )
        .unwrap();
        let p = c.upstream_policy().unwrap();
        assert!(p.egress.host_allowed("mcp.internal"));
        assert!(p.egress.check_ip("10.20.0.1".parse().unwrap()).is_ok());
        assert!(p.egress.check_ip("10.21.0.1".parse().unwrap()).is_err());
        assert!(p.stdio_command_allowed("npx") && !p.stdio_command_allowed("sh"));
        let bad: Config = toml::from_str("[egress]\nallow_cidrs = [\"nope\"]").unwrap();
        assert!(bad.validate().is_err());
        assert!(toml::from_str::<Config>("[egress]\nallow = []").is_err());
    }

    #[test]
    fn otlp_endpoint_is_off_by_default_and_checked() {
        assert!(Config::default().otlp_endpoint.is_none());
        let c: Config = toml::from_str("otlp_endpoint = \"http://127.0.0.1:4318\"").unwrap();
        assert!(c.validate().is_ok());
        let c = Config {
            otlp_endpoint: Some("127.0.0.1:4318".into()),
            ..Config::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn database_url_is_checked() {
        let c = Config {
            database_url: "mysql://x".into(),
            ..Config::default()
        };
        assert!(c.validate().is_err());
    }
}
