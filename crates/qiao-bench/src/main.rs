//! `qiao-bench`: load workloads against a Qiao server started as a separate process (pinned
//! to its own core when `taskset` is available), with figures for `docs/benchmarks.md`.
//!
//! Every workload is bounded in time and count, targets loopback only, and verifies what it
//! measured (no loss, no duplicates, order) before reporting.

mod client;
mod durable;
mod server;
mod stats;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "qiao-bench", about = "Load workloads for Qiao (loopback only)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Most messages per second acknowledged durably, with and without group commit.
    DurableSend(durable::Args),
    /// (internal) Run a Qiao server for a workload and report its address on stdout.
    #[command(hide = true)]
    ServerChild(server::ChildArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::DurableSend(args) => durable::run(args).await,
            Command::ServerChild(args) => server::child(args).await,
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
