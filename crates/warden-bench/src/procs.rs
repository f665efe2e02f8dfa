//! The processes a benchmark starts and stops itself: a throwaway
//! PostgreSQL server, `warden serve` replicas and the demo upstream.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use rand::RngCore;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout};

use crate::error::{BenchError, Result};

/// Where the `warden` and `warden-demo-upstream` binaries are.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub warden: PathBuf,
    pub upstream: PathBuf,
}

impl Binaries {
    /// Explicit paths, else the binaries beside this one (same target dir).
    pub fn locate(warden: Option<PathBuf>, upstream: Option<PathBuf>) -> Result<Binaries> {
        let beside = |name: &str| -> Result<PathBuf> {
            let exe = std::env::current_exe()?;
            let dir = exe.parent().ok_or_else(|| BenchError::NotFound {
                what: name.to_owned(),
                hint: format!("{} has no parent directory", exe.display()),
            })?;
            Ok(dir.join(name))
        };
        let warden = match warden {
            Some(p) => p,
            None => beside("warden")?,
        };
        let upstream = match upstream {
            Some(p) => p,
            None => beside("warden-demo-upstream")?,
        };
        for (path, package) in [(&warden, "warden"), (&upstream, "warden-loadgen")] {
            if !path.is_file() {
                return Err(BenchError::NotFound {
                    what: path.display().to_string(),
                    hint: format!("build it with `cargo build --release -p {package}`"),
                });
            }
        }
        Ok(Binaries { warden, upstream })
    }
}

/// A free loopback TCP port (bound and released; another process could
/// take it in between, which is unlikely on a quiet machine).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A random base64 secret (32 bytes), for the admin token and the key that
/// encrypts upstream secrets.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The run's scratch directory (logs, SQLite file). Removed at the end
/// unless asked to keep it or the run failed.
pub struct RunDir {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl RunDir {
    pub fn new(prefix: &str) -> Result<RunDir> {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
        let path = dir.path().to_path_buf();
        Ok(RunDir {
            dir: Some(dir),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Leaves the directory on disk (for its logs) and returns its path.
    pub fn keep(&mut self) -> &Path {
        if let Some(dir) = self.dir.take() {
            let _ = dir.keep();
        }
        &self.path
    }
}

/// A child process whose output goes to a log file; killed when dropped.
pub struct Proc {
    pub name: String,
    child: Child,
    log: PathBuf,
    // Kept open so the child never writes into a closed pipe.
    _stdout: Option<BufReader<ChildStdout>>,
}

impl Proc {
    fn spawn(
        name: &str,
        mut command: tokio::process::Command,
        dir: &Path,
        pipe_stdout: bool,
    ) -> Result<Proc> {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log)?;
        let stdout = if pipe_stdout {
            Stdio::piped()
        } else {
            Stdio::from(file.try_clone()?)
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::from(file))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| BenchError::NotFound {
                what: format!("{name} ({:?})", command.as_std().get_program()),
                hint: e.to_string(),
            })?;
        Ok(Proc {
            name: name.to_owned(),
            child,
            log,
            _stdout: None,
        })
    }

    /// Fails if the process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => Err(BenchError::ProcessDied {
                name: self.name.clone(),
                status: status.to_string(),
                log: self.log_tail(),
            }),
        }
    }

    /// The end of the process's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(2000);
        let start = (start..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        format!("{} …{}", self.log.display(), &text[start..])
    }

    /// Resident set size in KiB, from /proc (Linux), if available.
    pub fn rss_kib(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    }
}

/// The standalone demo MCP server (`echo`, `sleep`, ...).
pub struct Upstream {
    pub url: String,
    pub proc: Proc,
}

impl Upstream {
    pub async fn start(bins: &Binaries, dir: &Path) -> Result<Upstream> {
        let mut command = tokio::process::Command::new(&bins.upstream);
        command.args(["--listen", "127.0.0.1:0"]);
        let mut proc = Proc::spawn("upstream", command, dir, true)?;
        let stdout = proc.child.stdout.take().ok_or_else(|| BenchError::Reply {
            what: "upstream start".into(),
            detail: "no stdout pipe".into(),
        })?;
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let within = Duration::from_secs(30);
        let port = tokio::time::timeout(within, read_listening_port(&mut reader, &mut line))
            .await
            .map_err(|_| BenchError::Timeout {
                what: "the demo upstream to listen".into(),
                after: within,
            })??;
        let Some(port) = port else {
            proc.check_alive()?;
            return Err(BenchError::Reply {
                what: "upstream start".into(),
                detail: format!("no LISTENING line: {line:?}"),
            });
        };
        proc._stdout = Some(reader);
        Ok(Upstream {
            url: format!("http://127.0.0.1:{port}/mcp"),
            proc,
        })
    }
}

/// Reads lines until `LISTENING <port>`; `None` at end of output.
async fn read_listening_port(
    reader: &mut BufReader<ChildStdout>,
    line: &mut String,
) -> Result<Option<u16>> {
    loop {
        line.clear();
        if reader.read_line(line).await? == 0 {
            return Ok(None);
        }
        if let Some(port) = line.trim().strip_prefix("LISTENING ") {
            return Ok(port.parse::<u16>().ok());
        }
    }
}

/// Settings shared by every `warden serve` of one run.
#[derive(Debug, Clone)]
pub struct WardenSettings {
    pub database_url: String,
    pub admin_token: String,
    pub secret_key: String,
    pub log_filter: String,
    /// Extra environment for `warden serve` (settings a bench varies).
    pub env: Vec<(String, String)>,
}

/// One `warden serve` process on a free loopback port.
pub struct Warden {
    pub base: String,
    pub proc: Proc,
}

impl Warden {
    /// Starts it and waits for `/healthz`.
    pub async fn start(
        bins: &Binaries,
        settings: &WardenSettings,
        name: &str,
        dir: &Path,
    ) -> Result<Warden> {
        let port = free_port()?;
        let mut command = tokio::process::Command::new(&bins.warden);
        command
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--database-url")
            .arg(&settings.database_url)
            .env("WARDEN_ADMIN_TOKEN", &settings.admin_token)
            .env("WARDEN_SECRET_KEY", &settings.secret_key)
            .env("RUST_LOG", &settings.log_filter)
            // The fan-out bench holds thousands of sessions on one key.
            .env("WARDEN_MAX_SESSIONS_PER_KEY", "1000000")
            .envs(settings.env.iter().map(|(k, v)| (k, v)))
            .env_remove("WARDEN_CONFIG")
            .env_remove("WARDEN_BOOTSTRAP");
        let mut warden = Warden {
            base: format!("http://127.0.0.1:{port}"),
            proc: Proc::spawn(name, command, dir, false)?,
        };
        warden.wait_healthy(Duration::from_secs(60)).await?;
        Ok(warden)
    }

    async fn wait_healthy(&mut self, within: Duration) -> Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()?;
        let deadline = Instant::now() + within;
        loop {
            self.proc.check_alive()?;
            if let Ok(resp) = http.get(format!("{}/healthz", self.base)).send().await {
                if resp.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(BenchError::Timeout {
                    what: format!("{} /healthz ({})", self.proc.name, self.proc.log_tail()),
                    after: within,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base)
    }
}

/// A PostgreSQL server in its own temp directory on a free loopback port,
/// stopped (immediately) and removed on drop. As root, the server runs as
/// the `postgres` user, since `initdb` refuses root.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    run_as: Option<String>,
    running: bool,
    pub version: String,
}

impl Postgres {
    pub fn start() -> Result<Postgres> {
        let bin = find_postgres_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("warden-bench-pg-")
            .tempdir()?;
        let run_as = is_root().then(|| "postgres".to_owned());
        if let Some(user) = &run_as {
            run(Command::new("chown").arg("-R").arg(user).arg(dir.path()))?;
        }
        let version = Command::new(bin.join("postgres"))
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        let mut server = Postgres {
            dir,
            bin,
            port: free_port()?,
            run_as,
            running: false,
            version,
        };
        let data = server.data_dir();
        server.pg(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--no-sync".as_ref(),
            ],
        )?;
        // Durability is not what is measured; the same settings as the tests.
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c full_page_writes=off -c max_connections=200",
            server.port,
            server.dir.path().display()
        );
        let log = server.dir.path().join("postgres.log");
        server.pg(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "-t".as_ref(),
                "30".as_ref(),
                "start".as_ref(),
            ],
        )?;
        server.running = true;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg(&self, tool: &str, args: &[&std::ffi::OsStr]) -> Result<()> {
        let program = self.bin.join(tool);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(user).arg("--").arg(&program);
                c
            }
            None => Command::new(&program),
        };
        command.args(args).current_dir(self.dir.path());
        run(&mut command)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            let data = self.data_dir();
            let _ = self.pg(
                "pg_ctl",
                &[
                    "-D".as_ref(),
                    data.as_os_str(),
                    "-m".as_ref(),
                    "immediate".as_ref(),
                    "-w".as_ref(),
                    "stop".as_ref(),
                ],
            );
            self.running = false;
        }
    }
}

fn run(command: &mut Command) -> Result<()> {
    let program = format!("{:?}", command.get_program());
    let out = command.output().map_err(|e| BenchError::NotFound {
        what: program.clone(),
        hint: e.to_string(),
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(BenchError::Command {
        program,
        status: out.status.to_string(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `initdb`/`pg_ctl` on `PATH`, else the newest `/usr/lib/postgresql/*/bin`.
fn find_postgres_bin() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                return Ok(dir);
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
    candidates
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| BenchError::NotFound {
            what: "PostgreSQL (initdb, pg_ctl)".into(),
            hint: "install it (apt-get install postgresql) or put its bin dir on PATH".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_32_random_bytes() {
        let a = random_secret();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&a)
            .unwrap();
        assert_eq!(decoded.len(), 32);
        assert_ne!(a, random_secret());
    }

    #[test]
    fn run_dirs_are_removed_unless_kept() {
        let gone = RunDir::new("warden-bench-test-").unwrap();
        let path = gone.path().to_path_buf();
        drop(gone);
        assert!(!path.exists());
        let mut kept = RunDir::new("warden-bench-test-").unwrap();
        let path = kept.keep().to_path_buf();
        drop(kept);
        assert!(path.exists());
        std::fs::remove_dir_all(path).unwrap();
    }
}
