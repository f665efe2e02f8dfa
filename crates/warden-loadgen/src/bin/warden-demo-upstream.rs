//! `warden-demo-upstream`: the `warden-demo` MCP server as a standalone process,
//! for benchmarks and tests. Prints `LISTENING <port>` once it accepts.
//!
//! ```text
//! warden-demo-upstream --listen 127.0.0.1:0 --extra-tools 50
//! ```

use std::process::ExitCode;

use clap::Parser;
use warden_demo::{serve_with, DemoOptions};

#[derive(Debug, Parser)]
#[command(
    name = "warden-demo-upstream",
    about = "Standalone warden-demo MCP server"
)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Generated `tool_NNN` tools to add to the catalog.
    #[arg(long, default_value_t = 0)]
    extra_tools: usize,
    /// serverInfo.name
    #[arg(long, default_value = "warden-demo")]
    name: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(err) => {
            eprintln!(
                "warden-demo-upstream: cannot listen on {}: {err}",
                args.listen
            );
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("LISTENING {}", addr.port()),
        Err(err) => {
            eprintln!("warden-demo-upstream: {err}");
            return ExitCode::FAILURE;
        }
    }
    let options = DemoOptions {
        name: args.name,
        extra_tools: args.extra_tools,
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match serve_with(listener, options, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("warden-demo-upstream: {err}");
            ExitCode::FAILURE
        }
    }
}
