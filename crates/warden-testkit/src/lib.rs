//! Test helpers: a real, throwaway PostgreSQL server and fresh SQLite files.
//!
//! Tests run against real databases. [`TempPostgres::start`] uses the server
//! named by `WARDEN_TEST_POSTGRES_URL` if set (a fresh database per call),
//! otherwise it runs `initdb` and `pg_ctl` from `PATH` or
//! `/usr/lib/postgresql/*/bin` into a temporary directory, on a free loopback
//! port, and removes everything on drop. Without PostgreSQL it panics: tests
//! are never skipped silently.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use rand::Rng;
use sqlx::{Connection, Executor, PgConnection};
use tempfile::TempDir;

/// Environment variable naming an existing PostgreSQL server to use instead
/// of starting one (e.g. `postgres://postgres@127.0.0.1:5432/postgres`).
pub const POSTGRES_URL_ENV: &str = "WARDEN_TEST_POSTGRES_URL";

/// A PostgreSQL database for one test.
pub struct TempPostgres {
    url: String,
    server: Option<LocalServer>,
}

/// A server this process started: data directory, port and binaries.
struct LocalServer {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    /// Run the server as this user (initdb refuses to run as root).
    run_as: Option<String>,
    running: bool,
}

impl TempPostgres {
    /// Starts (or connects to) PostgreSQL and creates a fresh database.
    ///
    /// # Panics
    /// If no PostgreSQL can be found or started: the message says what to install.
    pub async fn start() -> TempPostgres {
        let db_name = format!("warden_test_{:016x}", rand::thread_rng().gen::<u64>());
        if let Ok(base) = std::env::var(POSTGRES_URL_ENV) {
            let url = create_database(&base, &db_name).await;
            return TempPostgres { url, server: None };
        }
        let mut server = LocalServer::init();
        server.start();
        let base = format!("postgres://postgres@127.0.0.1:{}/postgres", server.port);
        let url = create_database(&base, &db_name).await;
        TempPostgres {
            url,
            server: Some(server),
        }
    }

    /// The `postgres://` URL of this test's database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops the server (immediately, like a crash), keeping its data.
    ///
    /// # Panics
    /// With an external server (`WARDEN_TEST_POSTGRES_URL`): it cannot be stopped.
    pub fn stop(&mut self) {
        self.local("stop").stop();
    }

    /// Starts the server again after [`TempPostgres::stop`], on the same port.
    pub fn restart(&mut self) {
        self.local("restart").start();
    }

    fn local(&mut self, what: &str) -> &mut LocalServer {
        match self.server.as_mut() {
            Some(s) => s,
            None => panic!("cannot {what} an external PostgreSQL ({POSTGRES_URL_ENV} is set)"),
        }
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        if let Some(server) = self.server.as_mut() {
            if server.running {
                server.stop();
            }
        }
    }
}

async fn create_database(base_url: &str, name: &str) -> String {
    let mut conn = match PgConnection::connect(base_url).await {
        Ok(c) => c,
        Err(e) => panic!("cannot connect to PostgreSQL at {base_url}: {e}"),
    };
    if let Err(e) = conn
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
    {
        panic!("cannot create database {name} on {base_url}: {e}");
    }
    let _ = conn.close().await;
    let (prefix, _) = match base_url.rsplit_once('/') {
        Some(split) => split,
        None => panic!("{base_url} does not end in /<database>"),
    };
    format!("{prefix}/{name}")
}

/// The directory holding `initdb` and `pg_ctl`: on `PATH`, else the newest
/// `/usr/lib/postgresql/<version>/bin`.
fn find_postgres_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                return dir;
            }
        }
    }
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    candidates.sort();
    match candidates.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL not found: no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin. \
             Install it (apt-get install postgresql) or set {POSTGRES_URL_ENV}."
        ),
    }
}

fn free_port() -> u16 {
    match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(addr) => addr.port(),
        Err(e) => panic!("no free loopback port: {e}"),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl LocalServer {
    fn init() -> LocalServer {
        let bin = find_postgres_bin();
        let dir = match tempfile::Builder::new().prefix("warden-pg-").tempdir() {
            Ok(d) => d,
            Err(e) => panic!("cannot create a temp dir for PostgreSQL: {e}"),
        };
        let run_as = is_root().then(|| "postgres".to_owned());
        if let Some(user) = &run_as {
            run(
                Command::new("chown").arg("-R").arg(user).arg(dir.path()),
                "chown",
            );
        }
        let server = LocalServer {
            dir,
            bin,
            port: free_port(),
            run_as,
            running: false,
        };
        let data = server.data_dir();
        server.run_pg(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        server
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn start(&mut self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c full_page_writes=off -c max_connections=200",
            self.port,
            path_str(self.dir.path())
        );
        let log = self.dir.path().join("postgres.log");
        let data = self.data_dir();
        self.run_pg(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-o",
                &opts,
                "-l",
                path_str(&log),
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
        self.running = true;
    }

    fn stop(&mut self) {
        let data = self.data_dir();
        self.run_pg(
            "pg_ctl",
            &["-D", path_str(&data), "-m", "immediate", "-w", "stop"],
        );
        self.running = false;
    }

    fn run_pg(&self, tool: &str, args: &[&str]) {
        let program = self.bin.join(tool);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(user).arg("--").arg(&program);
                c
            }
            None => Command::new(&program),
        };
        cmd.args(args).current_dir(self.dir.path());
        run(&mut cmd, tool);
    }
}

fn path_str(path: &Path) -> &str {
    match path.to_str() {
        Some(s) => s,
        None => panic!("temp path {path:?} is not UTF-8"),
    }
}

fn run(cmd: &mut Command, what: &str) {
    match cmd.output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("cannot run {what}: {e}"),
    }
}

/// A fresh SQLite database file in its own temp directory (removed on drop).
pub struct TempSqlite {
    dir: TempDir,
    url: String,
}

impl TempSqlite {
    pub fn new() -> TempSqlite {
        let dir = match tempfile::Builder::new().prefix("warden-sqlite-").tempdir() {
            Ok(d) => d,
            Err(e) => panic!("cannot create a temp dir for SQLite: {e}"),
        };
        let url = format!("sqlite://{}", path_str(&dir.path().join("warden.db")));
        TempSqlite { dir, url }
    }

    /// `sqlite://<dir>/warden.db` (the file does not exist yet).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for TempSqlite {
    fn default() -> Self {
        TempSqlite::new()
    }
}

/// Runs `cmd` with its stdout piped, waits until it has printed `after`
/// complete lines starting with `prefix`, kills it with SIGKILL (no chance
/// to flush or clean up: a crash), and returns every complete line with
/// `prefix` it printed before it died, prefix removed. For crash tests: the
/// child prints a line only once an effect is durable, and the caller then
/// checks each one is.
///
/// # Panics
/// If the child cannot be started, exits on its own before the kill, or
/// does not print `after` lines within `timeout`.
pub fn kill9_after_lines(
    cmd: &mut Command,
    prefix: &str,
    after: usize,
    timeout: std::time::Duration,
) -> Vec<String> {
    use std::io::BufRead;
    use std::process::Stdio;

    let mut child = match cmd.stdout(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => panic!("cannot start {cmd:?}: {e}"),
    };
    let stdout = match child.stdout.take() {
        Some(s) => s,
        None => panic!("child stdout not piped"),
    };
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut stdout = std::io::BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match stdout.read_line(&mut line) {
                // A line cut off by the kill was never printed.
                Ok(0) | Err(_) => return,
                Ok(_) if !line.ends_with('\n') => return,
                Ok(_) => {
                    if tx.send(line.trim_end().to_owned()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let deadline = std::time::Instant::now() + timeout;
    let mut lines = Vec::new();
    while lines.len() < after {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(rest) = line.strip_prefix(prefix) {
                    lines.push(rest.to_owned());
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "child printed {} of {after} {prefix:?} lines within {timeout:?} (or exited)",
                    lines.len()
                );
            }
        }
    }
    if let Ok(Some(status)) = child.try_wait() {
        panic!("child exited on its own ({status}) before the kill");
    }
    // std's kill() is SIGKILL on Unix.
    if let Err(e) = child.kill() {
        panic!("cannot kill the child: {e}");
    }
    let _ = child.wait();
    let _ = reader.join();
    lines.extend(
        rx.try_iter()
            .filter_map(|l| l.strip_prefix(prefix).map(str::to_owned)),
    );
    lines
}

/// Of `ids`, those with no `decision` row in the audit log at `url`
/// (`sqlite://…` or `postgres://…`), read over a fresh connection.
///
/// # Panics
/// If the database cannot be read.
pub async fn missing_decisions(url: &str, ids: &[String]) -> Vec<String> {
    use sqlx::{AnyConnection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = match AnyConnection::connect(url).await {
        Ok(c) => c,
        Err(e) => panic!("cannot connect to {url}: {e}"),
    };
    let rows = match sqlx::query("SELECT decision_id FROM audit_log WHERE kind = 'decision'")
        .fetch_all(&mut conn)
        .await
    {
        Ok(rows) => rows,
        Err(e) => panic!("cannot read the audit log at {url}: {e}"),
    };
    let recorded: std::collections::HashSet<String> = rows
        .iter()
        .filter_map(|r| r.try_get::<Option<String>, _>(0).ok().flatten())
        .collect();
    let _ = conn.close().await;
    ids.iter()
        .filter(|id| !recorded.contains(*id))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn postgres_starts_stops_and_restarts() {
        let mut pg = TempPostgres::start().await;
        let mut conn = PgConnection::connect(pg.url()).await.unwrap();
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(one, 1);
        drop(conn);
        if pg.server.is_some() {
            pg.stop();
            assert!(PgConnection::connect(pg.url()).await.is_err());
            pg.restart();
            assert!(PgConnection::connect(pg.url()).await.is_ok());
        }
    }

    #[test]
    fn sqlite_urls_are_fresh() {
        let a = TempSqlite::new();
        let b = TempSqlite::new();
        assert_ne!(a.url(), b.url());
        assert!(a.url().starts_with("sqlite://"));
    }
}
