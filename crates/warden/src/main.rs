//! `warden`: the MCP gateway binary. `warden serve` runs the gateway and its
//! admin API; `warden migrate` prepares a database; the other subcommands
//! are a client of the admin API.

mod cli;
mod config;
mod demo;
mod error;
mod serve;
mod telemetry;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The proxy path allocates per message; mimalloc cut malloc's share of
/// the gateway's CPU under load (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use config::{Config, ServeFlags};

#[derive(Debug, Parser)]
#[command(
    name = "warden",
    version,
    about = "Warden: the MCP gateway that governs which assistants, agents and keys may use which MCP servers and tools."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    admin: cli::AdminConnection,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (MCP at /mcp) and the admin API (/admin/v1).
    Serve(ServeFlags),
    /// Create or upgrade the database schema, then exit.
    Migrate {
        /// Database URL (env WARDEN_DATABASE_URL; default sqlite://warden.db).
        #[arg(
            long,
            env = "WARDEN_DATABASE_URL",
            default_value = "sqlite://warden.db"
        )]
        database_url: String,
    },
    #[command(flatten)]
    Admin(cli::AdminCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(flags) => {
                let config = Config::load(&flags)?;
                serve::run(config, flags.demo).await
            }
            Command::Migrate { database_url } => {
                warden_store::Store::migrate(&database_url).await?;
                println!("migrated {}", warden_store::redact_url(&database_url));
                Ok(())
            }
            Command::Admin(cmd) => cli::run_with(cmd, &cli.admin).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
