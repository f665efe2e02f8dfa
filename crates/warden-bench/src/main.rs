//! `warden-bench`: revocation benchmarks (see the library docs).
//!
//! ```text
//! warden-bench revocation --rounds 200 --propagated-rounds 100
//! warden-bench fanout --sessions 1000 --bystanders 100 --toggles 20 --json
//! warden-bench callers --sessions 1000 [--max-caller-sessions 0]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use warden_bench::callers::{self, CallersConfig};
use warden_bench::fanout::{self, Database, FanoutConfig};
use warden_bench::procs::Binaries;
use warden_bench::revocation::{self, RevocationConfig};
use warden_bench::{BenchError, Result};

#[derive(Debug, Parser)]
#[command(name = "warden-bench", about = "Warden revocation benchmarks")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Revocation latency across three replicas on PostgreSQL.
    Revocation(RevocationArgs),
    /// list_changed fan-out to many live sessions.
    Fanout(FanoutArgs),
    /// Memory and upstream connections of per-caller upstream sessions.
    Callers(CallersArgs),
}

#[derive(Debug, Args)]
struct CallersArgs {
    #[command(flatten)]
    common: Common,
    /// Live sessions, each making one tools/call.
    #[arg(long, default_value_t = 1000)]
    sessions: usize,
    /// Warden's `upstream_max_caller_sessions` (0: one shared session).
    #[arg(long, default_value_t = 1000)]
    max_caller_sessions: usize,
    /// Sessions opened at the same time.
    #[arg(long, default_value_t = 32)]
    open_concurrency: usize,
}

#[derive(Debug, Args)]
struct Common {
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// The `warden` binary (default: beside this one).
    #[arg(long)]
    warden_bin: Option<PathBuf>,
    /// The `warden-demo-upstream` binary (default: beside this one).
    #[arg(long)]
    upstream_bin: Option<PathBuf>,
    /// RUST_LOG of the Warden processes.
    #[arg(long, default_value = "warn")]
    warden_log: String,
    /// Keep the run directory (process logs) after a successful run.
    #[arg(long)]
    keep_logs: bool,
}

#[derive(Debug, Args)]
struct RevocationArgs {
    #[command(flatten)]
    common: Common,
    /// Measured disables with the default write.
    #[arg(long, default_value_t = 200)]
    rounds: usize,
    /// Measured disables with `?wait=propagated`.
    #[arg(long, default_value_t = 100)]
    propagated_rounds: usize,
    /// Closed-loop `tools/call` clients on each of B and C.
    #[arg(long, default_value_t = 2)]
    clients_per_replica: usize,
    /// Load before the first measured round, in seconds.
    #[arg(long, default_value_t = 2)]
    warmup_secs: u64,
    /// Hard bound on the measured part, in seconds.
    #[arg(long, default_value_t = 600)]
    max_secs: u64,
}

#[derive(Debug, Args)]
struct FanoutArgs {
    #[command(flatten)]
    common: Common,
    /// Live sessions whose tools change.
    #[arg(long, default_value_t = 1000)]
    sessions: usize,
    /// Live sessions of another org, whose tools do not change.
    #[arg(long, default_value_t = 100)]
    bystanders: usize,
    /// Grant writes (alternately disable, enable).
    #[arg(long, default_value_t = 20)]
    toggles: usize,
    #[arg(long, value_enum, default_value_t = Database::Sqlite)]
    database: Database,
    /// Sessions opened at once during setup.
    #[arg(long, default_value_t = 32)]
    open_concurrency: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("warden-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = run(cli) => outcome,
            _ = tokio::signal::ctrl_c() => Err(BenchError::Interrupted),
        }
    });
    // Children are killed as their handles drop, PostgreSQL is stopped.
    drop(runtime);
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("warden-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the table or the JSON report, and writes `--json-out`.
fn emit(common: &Common, report: &impl serde::Serialize, table: &str) -> Result<()> {
    let json = serde_json::to_string_pretty(report)?;
    if let Some(path) = &common.json_out {
        std::fs::write(path, format!("{json}\n"))?;
    }
    if common.json {
        println!("{json}");
    } else {
        print!("{table}");
    }
    Ok(())
}

/// Runs the benchmark; `Ok(false)` when it ran but broke a correctness promise.
async fn run(cli: Cli) -> Result<bool> {
    match cli.bench {
        Bench::Revocation(args) => {
            let bins = Binaries::locate(
                args.common.warden_bin.clone(),
                args.common.upstream_bin.clone(),
            )?;
            let config = RevocationConfig {
                rounds: args.rounds,
                propagated_rounds: args.propagated_rounds,
                clients_per_replica: args.clients_per_replica,
                warmup: Duration::from_secs(args.warmup_secs),
                round_timeout: Duration::from_secs(10),
                max_duration: Duration::from_secs(args.max_secs),
                log_filter: args.common.warden_log.clone(),
                keep_logs: args.common.keep_logs,
            };
            let report = revocation::run(&config, &bins).await?;
            emit(&args.common, &report, &report.to_table())?;
            Ok(report.modes.iter().all(|m| m.timeouts == 0))
        }
        Bench::Callers(args) => {
            let bins = Binaries::locate(
                args.common.warden_bin.clone(),
                args.common.upstream_bin.clone(),
            )?;
            let config = CallersConfig {
                sessions: args.sessions,
                max_caller_sessions: args.max_caller_sessions,
                open_concurrency: args.open_concurrency,
                log_filter: args.common.warden_log.clone(),
                keep_logs: args.common.keep_logs,
            };
            let report = callers::run(&config, &bins).await?;
            emit(&args.common, &report, &report.to_table())?;
            Ok(report.calls_failed == 0)
        }
        Bench::Fanout(args) => {
            let bins = Binaries::locate(
                args.common.warden_bin.clone(),
                args.common.upstream_bin.clone(),
            )?;
            let config = FanoutConfig {
                sessions: args.sessions,
                bystanders: args.bystanders,
                toggles: args.toggles,
                database: args.database,
                open_concurrency: args.open_concurrency,
                toggle_timeout: Duration::from_secs(10),
                quiet: Duration::from_millis(300),
                log_filter: args.common.warden_log.clone(),
                keep_logs: args.common.keep_logs,
            };
            let report = fanout::run(&config, &bins).await?;
            emit(&args.common, &report, &report.to_table())?;
            Ok(report.correct())
        }
    }
}
