//! `warden-loadgen`: closed-loop load for MCP `tools/call` (or `tools/list`)
//! over Streamable HTTP; prints p50/p90/p99 latency and throughput.
//!
//! ```text
//! warden-loadgen --url http://127.0.0.1:8080/mcp --token wk_... \
//!     --tool demo__echo --args '{"text":"hi"}' --concurrency 32 --duration 10s --warmup 2s
//! ```
//!
//! Token mode (instead of `--token`): each worker is a distinct person with
//! an RS256 JWT minted from the bench harness's private key, as an identity
//! provider would issue it:
//!
//! ```text
//! warden-loadgen --url http://127.0.0.1:8080/mcp --jwt-key idp.pem --jwt-kid bench \
//!     --jwt-issuer http://127.0.0.1:9000 --jwt-audience http://127.0.0.1:8080/mcp ...
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use serde_json::{json, Value};
use warden_loadgen::jwt::Minter;
use warden_loadgen::{open_idle_sessions, parse_duration, run, LoadError, RunConfig};

#[derive(Debug, Parser)]
#[command(
    name = "warden-loadgen",
    about = "Load generator for MCP tools/call over Streamable HTTP"
)]
struct Args {
    /// MCP endpoint, e.g. http://127.0.0.1:8080/mcp
    #[arg(long)]
    url: String,
    /// Bearer token sent on every request.
    #[arg(long, env = "WARDEN_LOADGEN_TOKEN")]
    token: Option<String>,
    /// Tool to call (ignored with --list).
    #[arg(long, default_value = "echo")]
    tool: String,
    /// Tool arguments as a JSON object.
    #[arg(long, default_value = r#"{"text":"hello"}"#)]
    args: String,
    /// Send tools/list instead of tools/call.
    #[arg(long)]
    list: bool,
    /// Concurrent workers, each with its own session.
    #[arg(long, short = 'c', default_value_t = 1)]
    concurrency: usize,
    /// Measured run length (e.g. 10s); default 10s unless --requests is given.
    #[arg(long)]
    duration: Option<String>,
    /// Total measured requests across workers (instead of --duration).
    #[arg(long, short = 'n')]
    requests: Option<u64>,
    /// Unmeasured warm-up before measuring.
    #[arg(long, default_value = "1s")]
    warmup: String,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Instead of load: open this many sessions, report, and hold them idle
    /// for --hold (for memory measurements).
    #[arg(long)]
    open_sessions: Option<usize>,
    /// How long to hold idle sessions open.
    #[arg(long, default_value = "30s")]
    hold: String,
    /// Token mode: mint an RS256 JWT per worker (subject `bench-<i>`) with
    /// this RSA private key (PEM) instead of sending --token.
    #[arg(long, conflicts_with = "token", requires_all = ["jwt_issuer", "jwt_audience"])]
    jwt_key: Option<PathBuf>,
    /// The `kid` of the minted tokens (the harness's JWKS names the key so).
    #[arg(long, default_value = "bench")]
    jwt_kid: String,
    /// The `iss` of the minted tokens (the registered provider's issuer).
    #[arg(long)]
    jwt_issuer: Option<String>,
    /// The `aud` of the minted tokens (Warden's resource, e.g. {public_url}/mcp).
    #[arg(long)]
    jwt_audience: Option<String>,
    /// The `scope` claim.
    #[arg(long, default_value = "mcp")]
    jwt_scope: String,
    /// Token lifetime in seconds (longer than the run).
    #[arg(long, default_value_t = 3600)]
    jwt_ttl_s: u64,
}

impl Args {
    /// Token mode's per-worker tokens (none without --jwt-key).
    fn worker_tokens(&self, workers: usize) -> Result<Vec<String>, LoadError> {
        let Some(path) = &self.jwt_key else {
            return Ok(Vec::new());
        };
        let pem = std::fs::read(path)
            .map_err(|e| LoadError::Token(format!("{}: {e}", path.display())))?;
        let minter = Minter::new(
            &pem,
            &self.jwt_kid,
            self.jwt_issuer.as_deref().unwrap_or_default(),
            self.jwt_audience.as_deref().unwrap_or_default(),
            &self.jwt_scope,
            self.jwt_ttl_s,
        )?;
        (0..workers.max(1))
            .map(|i| minter.mint(&format!("bench-{i}")))
            .collect()
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match real_main(args).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("warden-loadgen: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn real_main(args: Args) -> Result<ExitCode, LoadError> {
    let worker_tokens = args.worker_tokens(args.concurrency)?;
    let token = worker_tokens
        .first()
        .cloned()
        .or_else(|| args.token.clone());
    if let Some(count) = args.open_sessions {
        let hold = parse_duration(&args.hold)?;
        let sessions =
            open_idle_sessions(&args.url, token.as_deref(), count, args.concurrency.max(1)).await?;
        // The caller waits for this line before measuring.
        println!("OPENED {}", sessions.len());
        tokio::time::sleep(hold).await;
        drop(sessions);
        return Ok(ExitCode::SUCCESS);
    }

    let tool_args: Value =
        serde_json::from_str(&args.args).map_err(|e| LoadError::Args(e.to_string()))?;
    if !tool_args.is_object() {
        return Err(LoadError::Args("must be a JSON object".to_string()));
    }
    let (method, params) = if args.list {
        ("tools/list", json!({}))
    } else {
        (
            "tools/call",
            json!({"name": args.tool, "arguments": tool_args}),
        )
    };
    let duration = match (&args.duration, args.requests) {
        (Some(d), _) => Some(parse_duration(d)?),
        (None, Some(_)) => None,
        (None, None) => Some(parse_duration("10s")?),
    };
    let summary = run(RunConfig {
        url: args.url.clone(),
        token,
        worker_tokens,
        method,
        params,
        concurrency: args.concurrency.max(1),
        duration,
        requests: args.requests,
        warmup: parse_duration(&args.warmup)?,
    })
    .await?;

    if args.json {
        println!("{}", serde_json::to_string(&summary).unwrap_or_default());
    } else {
        println!("target      {} ({method})", args.url);
        println!("concurrency {}", args.concurrency.max(1));
        println!(
            "requests    {} ok, {} errors in {:.2} s",
            summary.requests, summary.errors, summary.seconds
        );
        println!("throughput  {:.0} req/s", summary.throughput_rps);
        println!(
            "latency     p50 {} us  p90 {} us  p99 {} us  max {} us  mean {:.0} us",
            summary.p50_us, summary.p90_us, summary.p99_us, summary.max_us, summary.mean_us
        );
    }
    Ok(if summary.errors > 0 && summary.requests == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
