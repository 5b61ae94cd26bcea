//! Durable send: how many messages per second the server acknowledges once they are on
//! disk, with group commit and without it (batch size 1), measured in the same run. Each
//! configuration ends with the server killed (SIGKILL) while sends are in flight and started
//! again on the same database: every acknowledged message must be there, once, gap-free per
//! conversation, and nothing else but sends the kill cut off. (A killed process leaves the
//! page cache intact, so this checks acknowledgement after commit and recovery, not fsync.)

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::{self, Api};
use crate::server::{self, BoxError, ChildArgs, Server};
use crate::stats::{Latency, machine};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `sqlite` (a fresh file in a temporary directory), or a PostgreSQL admin URL on which a
    /// fresh database is created for each configuration.
    #[arg(long, default_value = "sqlite")]
    pub database: String,
    /// Concurrent senders, each a signed-in person sending in a closed loop.
    #[arg(long, default_value_t = 128)]
    pub senders: usize,
    /// Conversations the senders spread over.
    #[arg(long, default_value_t = 16)]
    pub conversations: usize,
    /// Seconds of load per configuration (bounded).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Group-commit batch limits to compare; 1 means one commit (one fsync) per message.
    #[arg(long, value_delimiter = ',', default_value = "512,1")]
    pub batches: Vec<usize>,
    /// CPU to pin the server to; `none` leaves it unpinned.
    #[arg(long, default_value = "0")]
    pub server_cpu: String,
    /// Qiao's `db_commit_gap_ms`: least time between two commits while writes keep arriving.
    #[arg(long, default_value_t = 1)]
    pub commit_gap_ms: u64,
}

struct Outcome {
    batch: usize,
    acked: u64,
    /// Sends that failed before the kill (a failed run).
    errors: u64,
    /// Sends in flight when the server was killed (unanswered; each may or may not be stored).
    cut: u64,
    /// Whether PostgreSQL's CPU is in `server_cpu`.
    with_database: bool,
    seconds: f64,
    latency: Latency,
    server_cpu: f64,
    rss_peak_kib: u64,
}

pub async fn run(args: Args) -> Result<(), BoxError> {
    if args.senders == 0 || args.conversations == 0 || args.seconds == 0 || args.seconds > 600 {
        return Err("senders and conversations must be positive; seconds 1 to 600".into());
    }
    let cpu = args.server_cpu.parse::<usize>().ok();
    let mut outcomes = Vec::new();
    for &batch in &args.batches {
        outcomes.push(one(&args, batch, cpu).await?);
    }
    println!();
    println!(
        "durable-send on {} ({}), {} senders over {} conversations, {} s each",
        engine(&args.database),
        machine(),
        args.senders,
        args.conversations,
        args.seconds
    );
    let cpu = if outcomes.iter().all(|o| o.with_database) { "server + PostgreSQL CPU" } else { "server CPU" };
    // Closed loop: each sender waits for its answer, so these are service times per request.
    println!(
        "| max batch | acked msgs/s | request p50 ms | request p99 ms | errors | cut off by the kill | {cpu} s / 1k msgs | server RSS peak MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for o in &outcomes {
        let rate = o.acked as f64 / o.seconds;
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {} | {} | {:.3} | {:.0} |",
            o.batch,
            rate,
            o.latency.ms(0.5),
            o.latency.ms(0.99),
            o.errors,
            o.cut,
            o.server_cpu / (o.acked.max(1) as f64 / 1000.0),
            o.rss_peak_kib as f64 / 1024.0
        );
    }
    if let (Some(grouped), Some(single)) =
        (outcomes.iter().find(|o| o.batch > 1), outcomes.iter().find(|o| o.batch == 1))
    {
        let ratio =
            (grouped.acked as f64 / grouped.seconds) / (single.acked as f64 / single.seconds).max(f64::MIN_POSITIVE);
        println!("group commit / one commit per message: {ratio:.1}×");
    }
    let failed: u64 = outcomes.iter().map(|o| o.errors).sum();
    if failed > 0 {
        return Err(format!("{failed} sends failed before the kill").into());
    }
    Ok(())
}

fn engine(database: &str) -> &'static str {
    if database.starts_with("postgres") { "PostgreSQL" } else { "SQLite" }
}

async fn one(args: &Args, batch: usize, cpu: Option<usize>) -> Result<Outcome, BoxError> {
    let dir = tempfile::tempdir()?;
    if args.database != "sqlite" {
        // Loopback only, checked before a database is created there.
        crate::target::loopback_port(&args.database, 5432)?;
    }
    let database = if args.database == "sqlite" {
        format!("sqlite:{}", dir.path().join("qiao.db").display())
    } else {
        qiao_store::testing::TestDb::postgres_on(&args.database).await?.url.clone()
    };
    let child = ChildArgs {
        database,
        data_dir: dir.path().to_owned(),
        max_batch: batch,
        read_connections: 8,
        flush_ms: 4,
        // (A batch of one is always full, so it is never paced.)
        commit_gap_ms: args.commit_gap_ms,
        resume_memory_mb: qiao::Config::defaults().realtime_resume_memory_mb,
        bus: String::new(),
        file_store: String::new(),
    };
    let postgres_pid = match args.database.as_str() {
        "sqlite" => None,
        url => crate::target::postgres_pid(url)?,
    };
    let with_database = postgres_pid.is_some();
    let cpu_now = |server: &Server| server.cpu_seconds() + postgres_pid.map_or(0.0, server::tree_cpu_seconds);
    let server = Server::start(&child, cpu)?;
    eprintln!(
        "max batch {batch}: server pid {} at {} (pinned to CPU {:?})",
        server.ready.pid, server.ready.url, server.pinned
    );
    let http =
        reqwest::Client::builder().pool_max_idle_per_host(args.senders * 2).timeout(Duration::from_secs(60)).build()?;
    let owner =
        client::owner(&server.ready.url, server.ready.setup_token.as_deref().ok_or("no setup token")?, &http).await?;
    let senders = client::people(&owner, "sender", args.senders).await?;
    let ids: Vec<String> = senders.iter().map(|(id, _)| id.clone()).collect();
    let mut conversations = Vec::new();
    for c in 0..args.conversations {
        conversations.push(client::channel(&owner, &format!("负载频道 {c}"), &ids).await?);
    }
    let conversations = Arc::new(conversations);

    server.reset_rss_peak();
    let cpu_before = cpu_now(&server);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for (n, (_, api)) in senders.into_iter().enumerate() {
        let conversations = conversations.clone();
        tasks.push(tokio::spawn(sender(n, api, conversations, deadline)));
    }
    tokio::time::sleep_until(deadline.into()).await;
    let seconds = started.elapsed().as_secs_f64();
    let server_cpu = cpu_now(&server) - cpu_before;
    let (_, rss_peak_kib) = server.rss_kib();
    // Acknowledged means committed: kill the server as a crash would, with sends in flight.
    server.kill()?;
    let mut latency = Latency::new();
    let (mut acked, mut errors, mut cut) = (Vec::new(), 0u64, HashSet::new());
    for t in tasks {
        let s = t.await?;
        latency.merge(&s.latency);
        acked.extend(s.acked);
        errors += s.errors;
        cut.extend(s.cut);
    }
    // Start it again on the same database and read everything back there.
    let server = Server::start(&child, cpu)?;
    let owner = Api { base: server.ready.url.clone(), ..owner };
    verify(&owner, &conversations, &acked, &cut).await?;
    server.stop()?;
    Ok(Outcome {
        batch,
        acked: acked.len() as u64,
        errors,
        cut: cut.len() as u64,
        with_database,
        seconds,
        latency,
        server_cpu,
        rss_peak_kib,
    })
}

/// What one sender did.
struct Sent {
    latency: Latency,
    /// (conversation, message id, key) of each acknowledged message.
    acked: Vec<(String, String, String)>,
    /// Sends that failed before the deadline.
    errors: u64,
    /// Keys of sends the kill at the deadline cut off.
    cut: Vec<String>,
}

/// One sender: sends until the deadline (when the server is killed), one message at a time.
async fn sender(n: usize, api: Api, conversations: Arc<Vec<String>>, deadline: Instant) -> Sent {
    let mut latency = Latency::new();
    let (mut ok, mut errors, mut cut) = (Vec::new(), 0, Vec::new());
    let mut i = 0usize;
    while Instant::now() < deadline {
        let c = &conversations[(n + i) % conversations.len()];
        let key = format!("s{n}-{i}");
        let t0 = Instant::now();
        match api
            .post_ok(
                &format!("/api/v1/conversations/{c}/messages"),
                json!({"body": format!("消息 {i} from sender {n}"), "client_key": key}),
            )
            .await
        {
            Ok(m) => {
                latency.record(t0.elapsed());
                ok.push((c.clone(), m["id"].as_str().unwrap_or_default().to_owned(), key));
            }
            Err(_) if Instant::now() >= deadline => cut.push(key),
            Err(_) => errors += 1,
        }
        i += 1;
    }
    Sent { latency, acked: ok, errors, cut }
}

/// Reads every conversation back: every acknowledged message is there exactly once, the only
/// others are sends the kill cut off, and sequence numbers are gap-free and increasing.
async fn verify(
    owner: &Api,
    conversations: &[String],
    acked: &[(String, String, String)],
    cut: &HashSet<String>,
) -> Result<(), BoxError> {
    let mut unanswered = 0;
    let mut stored = HashSet::new();
    for c in conversations {
        let history = client::history(owner, c).await?;
        for w in history.windows(2) {
            if w[1].0 != w[0].0 + 1 {
                return Err(format!("conversation {c}: sequence jumps from {} to {}", w[0].0, w[1].0).into());
            }
        }
        for (_, id, key) in history {
            if !stored.insert((c.clone(), id.clone())) {
                return Err(format!("message {id} stored twice").into());
            }
            if cut.contains(&key) {
                unanswered += 1;
            }
        }
    }
    for (c, id, _) in acked {
        if !stored.contains(&(c.clone(), id.clone())) {
            return Err(format!("acknowledged message {id} is missing from {c}").into());
        }
    }
    if stored.len() != acked.len() + unanswered {
        return Err(format!(
            "{} messages stored but {} acknowledged and {unanswered} cut off by the kill",
            stored.len(),
            acked.len()
        )
        .into());
    }
    eprintln!(
        "verified after a kill under load and a restart: {} acknowledged messages, each once, gap-free per \
         conversation; {unanswered} of {} sends cut off by the kill were stored",
        acked.len(),
        cut.len()
    );
    Ok(())
}
