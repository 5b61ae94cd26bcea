//! `qiao-bench`: load workloads against a Qiao server started as a separate process (pinned
//! to its own core when `taskset` is available), with figures for `docs/benchmarks.md`.
//!
//! Every workload is bounded in time and count, targets loopback only, and verifies what it
//! measured (no loss, no duplicates, order) before reporting.

mod client;
mod durable;
mod search;
mod server;
mod stats;
mod target;
mod traffic;
mod worker;
mod workers;
mod workloads;

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
    /// Search over a generated corpus (half Chinese) while messages keep arriving.
    Search(search::Args),
    /// Memory per authenticated, idle realtime connection, with many held at once.
    Idle(workloads::IdleArgs),
    /// Everyone in a small, a medium and a large room; open-loop traffic split over them.
    ChatMix(workloads::ChatMixArgs),
    /// One large room: frames per second pushed to its members.
    FanOut(workloads::FanOutArgs),
    /// One room (100 members, 10 senders by default): the peers' published workload.
    Room(workloads::RoomArgs),
    /// Every client connecting at once.
    ConnectStorm(workloads::StormArgs),
    /// Clients reconnecting after missing messages over many channels.
    Resync(workloads::ResyncArgs),
    /// (internal) Run a Qiao server for a workload and report its address on stdout.
    #[command(hide = true)]
    ServerChild(server::ChildArgs),
    /// (internal) Hold realtime clients for the coordinator (JSON lines on stdin/stdout).
    #[command(hide = true)]
    WsWorker(worker::WorkerArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A worker is pinned to one core with its siblings: one thread avoids needless contention.
    let runtime = match cli.command {
        Command::WsWorker(_) => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        _ => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
    }
    .expect("tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::DurableSend(args) => durable::run(args).await,
            Command::Search(args) => search::run(args).await,
            Command::Idle(args) => workloads::idle(args).await,
            Command::ChatMix(args) => workloads::chat_mix(args).await,
            Command::FanOut(args) => workloads::fan_out(args).await,
            Command::Room(args) => workloads::room(args).await,
            Command::ConnectStorm(args) => workloads::connect_storm(args).await,
            Command::Resync(args) => workloads::resync(args).await,
            Command::ServerChild(args) => server::child(args).await,
            Command::WsWorker(args) => worker::run(args).await,
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
