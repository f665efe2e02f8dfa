//! `warden-loadgen`: closed-loop load for MCP `tools/call` (or `tools/list`)
//! over Streamable HTTP; prints p50/p90/p99 latency and throughput.
//!
//! ```text
//! warden-loadgen --url http://127.0.0.1:8080/mcp --token wk_... \
//!     --tool demo__echo --args '{"text":"hi"}' --concurrency 32 --duration 10s --warmup 2s
//! ```

use std::process::ExitCode;

use clap::Parser;
use serde_json::{json, Value};
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
    if let Some(count) = args.open_sessions {
        let hold = parse_duration(&args.hold)?;
        let sessions = open_idle_sessions(
            &args.url,
            args.token.as_deref(),
            count,
            args.concurrency.max(1),
        )
        .await?;
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
        token: args.token.clone(),
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
