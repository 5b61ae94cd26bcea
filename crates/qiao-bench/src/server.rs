//! The server under test, as a child process of this binary (`server-child`), optionally
//! pinned to one CPU; its CPU time and memory are read from /proc.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(clap::Args, Clone, Debug)]
pub struct ChildArgs {
    /// Database URL (`sqlite:<path>` or `postgres://…`).
    #[arg(long)]
    pub database: String,
    #[arg(long)]
    pub data_dir: PathBuf,
    #[arg(long, default_value_t = 512)]
    pub max_batch: usize,
    #[arg(long, default_value_t = 8)]
    pub read_connections: u32,
    /// The server's `realtime_flush_ms` (see `qiao serve --help`).
    #[arg(long, default_value_t = 4)]
    pub flush_ms: u64,
    /// The server's `db_commit_gap_ms` (see `qiao serve --help`).
    #[arg(long, default_value_t = 1)]
    pub commit_gap_ms: u64,
    /// The server's `realtime_resume_memory_mb` (0: resumes always read the event log).
    #[arg(long, default_value_t = 32)]
    pub resume_memory_mb: usize,
    /// Cluster mode: the NATS URL every node shares (empty: a single node).
    #[arg(long, default_value = "")]
    pub bus: String,
    /// The server's `file_store` (empty: its data directory; several nodes share one).
    #[arg(long, default_value = "")]
    pub file_store: String,
}

/// What the child prints once it listens.
#[derive(Serialize, Deserialize, Debug)]
pub struct ChildReady {
    pub url: String,
    pub setup_token: Option<String>,
    pub pid: u32,
}

/// Runs the server in this process (the child side).
pub async fn child(args: ChildArgs) -> Result<(), BoxError> {
    let mut config = qiao::Config::defaults();
    config.listen = "127.0.0.1:0".parse()?;
    config.database = qiao::config::Secret(args.database.clone());
    config.data_dir = args.data_dir.clone();
    config.db_max_batch = args.max_batch;
    config.db_read_connections = args.read_connections;
    config.realtime_flush_ms = args.flush_ms;
    config.db_commit_gap_ms = args.commit_gap_ms;
    config.realtime_resume_memory_mb = args.resume_memory_mb;
    config.bus = qiao::config::Secret(args.bus.clone());
    config.file_store = args.file_store.clone();
    // The workloads measure messaging, not password hashing or anti-spam limits.
    config.password_memory_kib = 64;
    config.password_iterations = 1;
    config.message_rate_per_second = 1e9;
    config.message_burst = 1e9;
    (config.action_rate_per_second, config.action_burst) = (1e9, 1e9);
    (config.search_rate_per_second, config.search_burst) = (1e9, 1e9);
    config.log_level = "warn".into();
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let stdin_closed = async {
        // The parent closes our stdin to stop us.
        let _ = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                line.clear();
            }
        })
        .await;
    };
    qiao::serve_with(config, listener, stdin_closed, |ready| {
        let msg = ChildReady {
            url: format!("http://{}", ready.addr),
            setup_token: ready.setup_token,
            pid: std::process::id(),
        };
        println!("{}", serde_json::to_string(&msg).unwrap_or_default());
    })
    .await
    .map_err(|e| e.to_string().into())
}

fn has_taskset() -> bool {
    Command::new("taskset").arg("--version").output().is_ok()
}

/// A command for `program` free to run on every online CPU: the coordinator pins itself to
/// the load generator's core before it starts servers, and children inherit that.
pub fn unpinned(program: &std::path::Path) -> Command {
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").map(|s| s.trim().to_owned());
    match online {
        Ok(cpus) if !cpus.is_empty() && has_taskset() => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(cpus).arg(program);
            cmd
        }
        _ => Command::new(program),
    }
}

/// How long a server child may take to open its database and listen.
const START_TIMEOUT: Duration = Duration::from_secs(300);

/// A running server child.
pub struct Server {
    child: Child,
    pub ready: ChildReady,
    pub pinned: Option<usize>,
}

impl Server {
    /// Starts a server child; pins it to `cpu` when `taskset` is available, or else lets it
    /// run on every CPU (the coordinator may have pinned itself to the load generator's).
    pub fn start(args: &ChildArgs, cpu: Option<usize>) -> Result<Server, BoxError> {
        let exe = std::env::current_exe()?;
        let pin = cpu.filter(|_| has_taskset());
        let mut cmd = match pin {
            Some(c) => {
                let mut cmd = Command::new("taskset");
                cmd.arg("-c").arg(c.to_string()).arg(&exe);
                cmd
            }
            None => unpinned(&exe),
        };
        cmd.arg("server-child")
            .arg("--database")
            .arg(&args.database)
            .arg("--data-dir")
            .arg(&args.data_dir)
            .arg("--max-batch")
            .arg(args.max_batch.to_string())
            .arg("--read-connections")
            .arg(args.read_connections.to_string())
            .arg("--flush-ms")
            .arg(args.flush_ms.to_string())
            .arg("--commit-gap-ms")
            .arg(args.commit_gap_ms.to_string())
            .arg("--resume-memory-mb")
            .arg(args.resume_memory_mb.to_string())
            .arg("--bus")
            .arg(&args.bus)
            .arg("--file-store")
            .arg(&args.file_store)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        // Bounded: a server that never says it listens fails the run instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line).map(|_| line);
            let _ = tx.send(read);
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(read) => read?,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("the server did not start within {} s", START_TIMEOUT.as_secs()).into());
            }
        };
        let ready: ChildReady = match serde_json::from_str(line.trim()) {
            Ok(r) => r,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("the server did not start: {e}: {line:?}").into());
            }
        };
        Ok(Server { child, ready, pinned: pin })
    }

    /// Kills the server at once (SIGKILL: no graceful shutdown), as a crash would; an error if
    /// it had already exited (it crashed during the run).
    pub fn kill(mut self) -> Result<(), BoxError> {
        if let Some(status) = self.child.try_wait()? {
            return Err(format!("the server exited during the run ({status})").into());
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// CPU seconds (user + system) the server has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        process_cpu_seconds(self.ready.pid)
    }

    /// Resident memory now and at its peak, in KiB.
    pub fn rss_kib(&self) -> (u64, u64) {
        process_rss_kib(self.ready.pid)
    }

    /// Starts the peak of [`Server::rss_kib`] again from now.
    pub fn reset_rss_peak(&self) {
        reset_rss_peak(self.ready.pid);
    }

    /// Stops the server gracefully (it finishes queued writes) and waits for it.
    pub fn stop(mut self) -> Result<(), BoxError> {
        drop(self.child.stdin.take());
        for _ in 0..300 {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.child.kill()?;
        Ok(())
    }
}

impl Drop for Server {
    /// A server left behind by a failed run is killed (its data directory is about to go).
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A process's `/proc/PID/stat` fields after its name (which is in parentheses and may hold
/// spaces): field N of stat(5) is at index N - 3.
fn stat_fields(pid: u32) -> Vec<String> {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return Vec::new() };
    stat.rsplit_once(')').map_or("", |(_, r)| r).split_whitespace().map(str::to_owned).collect()
}

/// CPU seconds (user + system) a process has used so far.
pub fn process_cpu_seconds(pid: u32) -> f64 {
    let fields = stat_fields(pid);
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15.
    (ticks(11) + ticks(12)) / clock_ticks()
}

/// CPU seconds used by a process and its direct children (PostgreSQL's backends are
/// children of the postmaster), including children that exited and were reaped.
pub fn tree_cpu_seconds(pid: u32) -> f64 {
    let fields = stat_fields(pid);
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // cutime and cstime (fields 16 and 17): children the process waited for.
    let mut total = process_cpu_seconds(pid) + (ticks(13) + ticks(14)) / clock_ticks();
    let Ok(dir) = std::fs::read_dir("/proc") else { return total };
    for entry in dir.flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        // ppid is field 4.
        if stat_fields(child).get(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            total += process_cpu_seconds(child);
        }
    }
    total
}

/// The PostgreSQL server (postmaster) listening on `port` on this machine, if any: a
/// `postgres` process whose parent is not one, whose data directory (its working directory)
/// has a `postmaster.pid` naming that port (its fourth line).
pub fn postmaster_on(port: u16) -> Option<u32> {
    let comm = |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if comm(pid).trim() != "postgres" {
            continue;
        }
        let parent = stat_fields(pid).get(1).and_then(|p| p.parse::<u32>().ok());
        if parent.is_some_and(|p| comm(p).trim() == "postgres") {
            continue;
        }
        let Ok(lock) = std::fs::read_to_string(format!("/proc/{pid}/cwd/postmaster.pid")) else { continue };
        if lock.lines().nth(3).and_then(|l| l.trim().parse::<u16>().ok()) == Some(port) {
            return Some(pid);
        }
    }
    None
}

/// Makes a process's peak resident memory (VmHWM) start again from now, so that a
/// measurement's peak is its own, not that of the fixtures or an earlier run.
pub fn reset_rss_peak(pid: u32) {
    // "5" resets the peak (proc(5), clear_refs); a failure leaves the lifetime peak.
    if std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_err() {
        eprintln!("warning: could not reset the peak memory of pid {pid}: RSS peaks are since its start");
    }
}

/// Resident memory of a process now and at its peak, in KiB.
pub fn process_rss_kib(pid: u32) -> (u64, u64) {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return (0, 0) };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    // USER_HZ is 100 on every Linux this runs on; `getconf` confirms when present.
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}
