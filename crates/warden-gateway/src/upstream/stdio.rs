//! Upstream as a child process speaking newline-delimited JSON-RPC on
//! stdin/stdout. The connection task restarts it with backoff if it dies.

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use warden_store::Transport;

use super::Upstream;

/// The only variables a stdio child inherits from Warden's environment
/// (when set), so a command runs as it would from a login shell (`npx`
/// finds node on `PATH` and its cache under `HOME`). Nothing else: Warden's
/// own secrets (`WARDEN_ADMIN_TOKEN`, `WARDEN_SECRET_KEY`,
/// `WARDEN_DATABASE_URL`, cloud credentials, ...) never reach an upstream.
/// The server's configured `env` and its secrets come on top.
pub const STDIO_INHERITED_ENV: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"];
/// `PATH` for a child when Warden itself has none.
pub const STDIO_DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

pub(crate) struct StdioLink {
    writer: Mutex<Option<mpsc::UnboundedSender<String>>>,
    child: Mutex<Option<Child>>,
    /// Which process incarnation is current, so an old reader's EOF does
    /// not fail the new process.
    generation: AtomicU64,
}

impl StdioLink {
    pub fn new() -> Self {
        StdioLink {
            writer: Mutex::new(None),
            child: Mutex::new(None),
            generation: AtomicU64::new(0),
        }
    }

    pub fn send(&self, msg: &Value) -> Result<(), String> {
        let line = serde_json::to_string(msg).map_err(|e| e.to_string())?;
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        match writer.as_ref() {
            Some(tx) => tx
                .send(line)
                .map_err(|_| "the process is not running".to_owned()),
            None => Err("the process is not running".to_owned()),
        }
    }

    pub fn shutdown(&self) {
        self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = child.start_kill();
        }
    }

    /// Starts (or restarts) the process and its reader and writer tasks.
    pub fn spawn(&self, up: &Arc<Upstream>) -> std::io::Result<()> {
        self.shutdown();
        let Transport::Stdio { command, args, env } = &up.config.transport else {
            return Err(std::io::Error::other("not a stdio upstream"));
        };
        if !up.limits.policy.stdio_command_allowed(command) {
            return Err(std::io::Error::other(format!(
                "command {command:?} is not in the platform's stdio_allowed_commands"
            )));
        }
        let mut cmd = Command::new(command);
        cmd.env_clear();
        for name in STDIO_INHERITED_ENV {
            if let Some(value) = std::env::var_os(name) {
                cmd.env(name, value);
            }
        }
        if std::env::var_os("PATH").is_none() {
            cmd.env("PATH", STDIO_DEFAULT_PATH);
        }
        cmd.args(args)
            .envs(env)
            // Secrets reach a stdio server as environment variables.
            .envs(
                up.config
                    .secret_headers
                    .iter()
                    .map(|(k, v)| (k, v.expose())),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn()?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(std::io::Error::other("child pipes missing"));
        };
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(mut line) = rx.recv().await {
                line.push('\n');
                if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
                    break;
                }
            }
        });
        let slug = up.slug().to_owned();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!(server = %slug, "stderr: {line}");
            }
        });
        let weak = Arc::downgrade(up);
        let limit = up.max_response_bytes();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout);
            loop {
                let line = read_line_limited(&mut reader, limit).await;
                let Some(up) = weak.upgrade() else { return };
                match line {
                    Ok(Some(Line::Text(text))) => match serde_json::from_slice::<Value>(&text) {
                        Ok(msg) => up.dispatch(msg, None),
                        Err(_) if text.iter().all(u8::is_ascii_whitespace) => {}
                        Err(e) => {
                            tracing::debug!(server = %up.slug(), error = %e, "non-JSON line on stdout ignored")
                        }
                    },
                    Ok(Some(Line::TooLong(prefix))) => {
                        if let Some(id) = leading_id(&prefix) {
                            up.complete(id, Err(up.err_too_large()));
                        }
                    }
                    Ok(None) | Err(_) => {
                        if let Some(link) = up.stdio_link() {
                            if link.generation.load(Ordering::SeqCst) == generation {
                                up.mark_failed("the process exited");
                            }
                        }
                        return;
                    }
                }
            }
        });
        *self.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        Ok(())
    }
}

enum Line {
    Text(Vec<u8>),
    /// The line exceeded the limit; its first bytes, to find its id.
    TooLong(Vec<u8>),
}

async fn read_line_limited<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    limit: usize,
) -> std::io::Result<Option<Line>> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(if line.is_empty() && !too_long {
                None
            } else {
                Some(finish(line, too_long))
            });
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(pos) => (&buf[..pos], Some(pos + 1)),
            None => (buf, None),
        };
        if !too_long {
            if line.len() + chunk.len() > limit {
                too_long = true;
                let keep = 256usize.saturating_sub(line.len()).min(chunk.len());
                line.extend_from_slice(&chunk[..keep]);
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let consumed = done.unwrap_or(buf.len());
        reader.consume(consumed);
        if done.is_some() {
            return Ok(Some(finish(line, too_long)));
        }
    }
}

fn finish(line: Vec<u8>, too_long: bool) -> Line {
    if too_long {
        Line::TooLong(line)
    } else {
        Line::Text(line)
    }
}

/// The numeric `"id"` near the start of a truncated message, if visible.
fn leading_id(prefix: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(prefix);
    let at = text.find("\"id\"")?;
    let rest = text[at + 4..].trim_start().strip_prefix(':')?.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_lines_within_limit_and_flags_long_ones() {
        let data = b"{\"id\":7,\"result\":\"0123456789\"}\nshort\n".to_vec();
        let mut r = BufReader::new(&data[..]);
        match read_line_limited(&mut r, 10).await.unwrap() {
            Some(Line::TooLong(prefix)) => assert_eq!(leading_id(&prefix), Some(7)),
            _ => panic!("expected a too-long line"),
        }
        match read_line_limited(&mut r, 10).await.unwrap() {
            Some(Line::Text(t)) => assert_eq!(t, b"short"),
            _ => panic!("expected a line"),
        }
        assert!(read_line_limited(&mut r, 10).await.unwrap().is_none());
    }
}
