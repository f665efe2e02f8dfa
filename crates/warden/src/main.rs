//! `warden`: the MCP gateway binary. `warden serve` runs the gateway and its
//! admin API; `warden migrate` prepares a database; the other subcommands
//! are a client of the admin API.

mod cli;
mod config;
mod demo;
mod error;
mod listen;
mod serve;
mod telemetry;
mod workers;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Subcommand};

/// The proxy path allocates per message; mimalloc cut malloc's share of
/// the gateway's CPU under load (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use config::{Config, ServeFlags};

#[derive(Debug, clap::Parser)]
#[command(
    name = "warden",
    version,
    about = "Warden: the MCP gateway that governs which assistants, agents and keys may use which MCP servers and tools."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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

/// The command line: the derived tree, with the admin connection options
/// (`--url`, `--token`, `--json`) on the admin subcommands only.
fn command() -> clap::Command {
    cli::with_connection_args(Cli::command())
}

fn main() -> ExitCode {
    let matches = command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.format(&mut command()).exit(),
    };
    // The connection options exist only on the admin subcommands.
    let admin = match (&cli.command, matches.subcommand()) {
        (Command::Admin(_), Some((_, m))) => match cli::AdminConnection::from_arg_matches(m) {
            Ok(conn) => Some(conn),
            Err(e) => e.format(&mut command()).exit(),
        },
        _ => None,
    };
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
            Command::Admin(cmd) => match &admin {
                Some(conn) => cli::run_with(cmd, conn).await,
                None => Err(error::WardenError::BadArgument(
                    "missing admin connection options".into(),
                )),
            },
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `path: what lacks a help line` for every subcommand and argument.
    fn missing_help(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        for sub in cmd.get_subcommands() {
            let path = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() {
                out.push(format!("{path}: subcommand"));
            }
            for arg in sub.get_arguments() {
                let id = arg.get_id().as_str();
                if !matches!(id, "help" | "version") && arg.get_help().is_none() {
                    out.push(format!("{path}: {id}"));
                }
            }
            missing_help(sub, &path, out);
        }
    }

    #[test]
    fn every_subcommand_and_argument_has_a_help_line() {
        let mut missing = Vec::new();
        missing_help(&command(), "warden", &mut missing);
        assert!(missing.is_empty(), "no help:\n{}", missing.join("\n"));
    }

    fn long_options(cmd: &clap::Command) -> Vec<String> {
        cmd.get_arguments()
            .filter_map(|a| a.get_long().map(str::to_owned))
            .collect()
    }

    #[test]
    fn admin_connection_options_belong_to_the_admin_subcommands_only() {
        let cmd = command();
        for name in ["serve", "migrate"] {
            let sub = cmd.find_subcommand(name).unwrap();
            let longs = long_options(sub);
            for admin_only in ["url", "token", "json"] {
                assert!(
                    !longs.iter().any(|l| l == admin_only),
                    "{name} has --{admin_only}"
                );
            }
        }
        assert!(long_options(&cmd).iter().all(|l| l != "token"));
        // Adding the options leaves each group's own help line alone.
        let about = |name: &str| {
            cmd.find_subcommand(name)
                .and_then(|c| c.get_about())
                .map(ToString::to_string)
        };
        assert_eq!(about("org").as_deref(), Some("Organizations"));
        assert_eq!(
            about("key").as_deref(),
            Some("Keys clients authenticate with")
        );
        for argv in [
            "warden key list acme --json --url http://x:1 --token t",
            "warden key --json list acme",
            "warden explain acme --key 1 --server s --tool t --json",
        ] {
            let m = command()
                .try_get_matches_from(argv.split_whitespace())
                .unwrap_or_else(|e| panic!("{argv}: {e}"));
            let conn = cli::AdminConnection::from_arg_matches(m.subcommand().unwrap().1).unwrap();
            assert!(conn.json, "{argv}");
        }
        let err = command()
            .try_get_matches_from(["warden", "serve", "--token", "t"])
            .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
        let m = command()
            .try_get_matches_from(["warden", "serve", "--demo"])
            .unwrap();
        assert!(Cli::from_arg_matches(&m).is_ok());
    }
}
