//! The coordinator's side of the worker processes: spawning them (pinned to the load
//! generator's core), spreading clients over them, and merging what they report.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::server::{self, BoxError};
use crate::stats::Latency;
use crate::worker::{Answer, ClientSpec, Cmd, Report};

/// Most clients one worker holds: a process may have ~20,000 open files here, and one
/// 127.0.0.x address has ~28,000 ephemeral ports.
pub const PER_WORKER_MAX: usize = 8_000;

/// Longest a worker may take to answer a command.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(600);

struct Proc {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    pid: u32,
}

pub struct Workers {
    procs: Vec<Proc>,
}

/// What connecting a set of clients gave.
pub struct Connected {
    pub ok: usize,
    pub failed: usize,
    pub latency: Latency,
    /// Per client, in the order given: where it could resume from (empty if it failed).
    pub heads: Vec<String>,
    pub errors: Vec<String>,
}

/// Reports of every worker, merged.
pub struct Merged {
    pub received: HashMap<String, u64>,
    pub duplicates: u64,
    pub gaps: u64,
    pub out_of_order: u64,
    pub latency: Latency,
    pub complete: Latency,
    pub lost: u64,
    pub lost_reasons: Vec<String>,
    pub unreadable: u64,
    /// From `report(true)`: every worker's views ([`crate::worker::View5`]).
    pub views: Vec<crate::worker::View5>,
}

impl Merged {
    pub fn total(&self) -> u64 {
        self.received.values().sum()
    }
}

impl Workers {
    /// Starts enough workers for `clients` (at least `min`), each bound to 127.0.0.(2+i).
    /// Worker `i` connects its clients to `urls[i % urls.len()]`.
    pub async fn spawn(
        urls: &[String],
        protocol: &str,
        clients: usize,
        min: Option<usize>,
        cpu: Option<usize>,
    ) -> Result<Workers, BoxError> {
        let n = clients.div_ceil(PER_WORKER_MAX).max(min.unwrap_or(1)).max(1);
        if n > 200 {
            return Err("too many workers".into());
        }
        let exe = std::env::current_exe()?;
        let pin = cpu.filter(|_| std::process::Command::new("taskset").arg("--version").output().is_ok());
        let mut procs = Vec::with_capacity(n);
        for i in 0..n {
            let mut cmd = match pin {
                Some(c) => {
                    let mut cmd = Command::new("taskset");
                    cmd.arg("-c").arg(c.to_string()).arg(&exe);
                    cmd
                }
                None => Command::new(&exe),
            };
            cmd.arg("ws-worker")
                .arg("--url")
                .arg(&urls[i % urls.len()])
                .arg("--bind")
                .arg(format!("127.0.0.{}", 2 + i))
                .arg("--protocol")
                .arg(protocol)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true);
            let mut child = cmd.spawn()?;
            let stdin = child.stdin.take().ok_or("no stdin")?;
            let lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
            let pid = child.id().ok_or("worker exited")?;
            procs.push(Proc { child, stdin, lines, pid });
        }
        Ok(Workers { procs })
    }

    pub fn len(&self) -> usize {
        self.procs.len()
    }

    async fn send(p: &mut Proc, cmd: &Cmd) -> Result<(), BoxError> {
        let mut line = serde_json::to_vec(cmd)?;
        line.push(b'\n');
        p.stdin.write_all(&line).await?;
        p.stdin.flush().await?;
        Ok(())
    }

    async fn answer(p: &mut Proc) -> Result<Answer, BoxError> {
        // Bounded: connecting 8,000 clients takes seconds, a hung worker must not hang the run.
        let line = tokio::time::timeout(ANSWER_TIMEOUT, p.lines.next_line())
            .await
            .map_err(|_| format!("worker {} did not answer within {} s", p.pid, ANSWER_TIMEOUT.as_secs()))??
            .ok_or("a worker exited")?;
        Ok(serde_json::from_str(&line)?)
    }

    /// Sends each worker its command, then collects every answer (they work in parallel).
    async fn all(&mut self, cmds: Vec<Cmd>) -> Result<Vec<Answer>, BoxError> {
        for (p, c) in self.procs.iter_mut().zip(&cmds) {
            Self::send(p, c).await?;
        }
        let mut out = Vec::with_capacity(cmds.len());
        for p in &mut self.procs {
            out.push(Self::answer(p).await?);
        }
        Ok(out)
    }

    /// Connects clients spread round-robin over the workers, `concurrency` connecting at a
    /// time in all.
    pub async fn connect(
        &mut self,
        clients: Vec<ClientSpec>,
        concurrency: usize,
        complete_after: Option<u64>,
    ) -> Result<Connected, BoxError> {
        let n = self.procs.len();
        let total = clients.len();
        let mut split: Vec<Vec<ClientSpec>> = (0..n).map(|_| Vec::new()).collect();
        for (i, c) in clients.into_iter().enumerate() {
            split[i % n].push(c);
        }
        let per = concurrency.div_ceil(n).max(1);
        let cmds =
            split.into_iter().map(|clients| Cmd::Connect { clients, concurrency: per, complete_after }).collect();
        let answers = self.all(cmds).await?;
        let mut out = Connected {
            ok: 0,
            failed: 0,
            latency: Latency::new(),
            heads: vec![String::new(); total],
            errors: Vec::new(),
        };
        for (w, a) in answers.into_iter().enumerate() {
            let Answer::Connected { ok, failed, connect_us, heads, errors } = a else {
                return Err("unexpected worker answer".into());
            };
            out.ok += ok;
            out.failed += failed;
            out.latency.add_samples(&connect_us);
            for (j, h) in heads.into_iter().enumerate() {
                if let Some(slot) = out.heads.get_mut(j * n + w) {
                    *slot = h;
                }
            }
            out.errors.extend(errors);
        }
        Ok(out)
    }

    pub async fn measure(&mut self, tag: &str) -> Result<(), BoxError> {
        let cmds = (0..self.procs.len()).map(|_| Cmd::Measure { tag: tag.to_owned() }).collect();
        self.all(cmds).await.map(drop)
    }

    /// Merged counts; with `views`, also what each conversation's clients received (larger:
    /// for the final check).
    pub async fn report(&mut self, views: bool) -> Result<Merged, BoxError> {
        let answers = self.all((0..self.procs.len()).map(|_| Cmd::Report { views }).collect()).await?;
        let mut m = Merged {
            received: HashMap::new(),
            duplicates: 0,
            gaps: 0,
            out_of_order: 0,
            latency: Latency::new(),
            complete: Latency::new(),
            lost: 0,
            lost_reasons: Vec::new(),
            unreadable: 0,
            views: Vec::new(),
        };
        for a in answers {
            let Answer::Report(r) = a else { return Err("unexpected worker answer".into()) };
            let Report {
                received,
                duplicates,
                gaps,
                out_of_order,
                latency,
                complete,
                lost,
                lost_reasons,
                unreadable,
                views,
            } = r;
            m.views.extend(views);
            for (k, v) in received {
                *m.received.entry(k).or_default() += v;
            }
            m.duplicates += duplicates;
            m.gaps += gaps;
            m.out_of_order += out_of_order;
            m.latency.add_samples(&latency);
            m.complete.add_samples(&complete);
            m.lost += lost;
            m.lost_reasons.extend(lost_reasons);
            m.unreadable += unreadable;
        }
        Ok(m)
    }

    /// Closes every client (the workers stay up).
    pub async fn close(&mut self) -> Result<(), BoxError> {
        self.all((0..self.procs.len()).map(|_| Cmd::Close).collect()).await.map(drop)
    }

    /// CPU seconds the load generator has used so far: the workers and this process (which
    /// builds the fixtures and sends the messages).
    pub fn cpu_seconds(&self) -> f64 {
        let workers: f64 = self.procs.iter().map(|p| server::process_cpu_seconds(p.pid)).sum();
        workers + server::process_cpu_seconds(std::process::id())
    }

    /// Stops the workers.
    pub async fn quit(mut self) {
        for p in &mut self.procs {
            let _ = Self::send(p, &Cmd::Quit).await;
        }
        for p in &mut self.procs {
            let _ = tokio::time::timeout(Duration::from_secs(10), p.child.wait()).await;
        }
    }
}
