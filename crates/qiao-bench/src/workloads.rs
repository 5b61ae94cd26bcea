//! The realtime workloads of the design brief: idle connections, chat mix, fan-out, the
//! peers' 100-member room, connect storm and resync. Each builds its fixture through the
//! target's public API, connects the clients from worker processes, measures, verifies,
//! and prints a report (figures go to `docs/benchmarks.md`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::server::BoxError;
use crate::stats::{Latency, machine};
use crate::target::{Common, Person, Target};
use crate::traffic::{self, Class, Load, Room};
use crate::worker::ClientSpec;
use crate::workers::Workers;

/// Upper bounds that keep every run bounded on this machine.
const PEOPLE_MAX: usize = 60_000;
const SECONDS_MAX: f64 = 600.0;

fn check(people: usize, seconds: f64) -> Result<(), BoxError> {
    if people == 0 || people > PEOPLE_MAX {
        return Err(format!("between 1 and {PEOPLE_MAX} people").into());
    }
    if !(seconds > 0.0 && seconds <= SECONDS_MAX) {
        return Err(format!("seconds must be in (0, {SECONDS_MAX}]").into());
    }
    Ok(())
}

fn tag() -> String {
    format!("r{:x}", crate::worker::now_micros() % 0xFFFF_FFFF)
}

/// Moves every thread of this process to `cpu`, so the coordinator (fixtures, senders)
/// shares the load generator's core instead of taking the server's.
pub(crate) fn pin_self(cpu: Option<usize>) {
    if let Some(c) = cpu {
        let pid = std::process::id().to_string();
        let _ = std::process::Command::new("taskset")
            .args(["-a", "-cp", &c.to_string(), &pid])
            .stdout(std::process::Stdio::null())
            .status();
    }
}

/// Starts the target, creates `n` people and starts the workers.
async fn setup(common: &Common, n: usize) -> Result<(Target, Vec<Person>, Workers), BoxError> {
    pin_self(Common::cpu(&common.client_cpu));
    let target = Target::start(common).await?;
    eprintln!("creating {n} people on {}", target.name());
    let t0 = Instant::now();
    let people = target.people("bench", n, common.setup_concurrency).await?;
    eprintln!("  {n} people in {:.1} s", t0.elapsed().as_secs_f64());
    // Clients are spread over the nodes: at least one worker each.
    let min_workers = common.workers.unwrap_or(1).max(target.nodes());
    let workers =
        Workers::spawn(&target.urls(), target.protocol(), n, Some(min_workers), Common::cpu(&common.client_cpu))
            .await?;
    Ok((target, people, workers))
}

async fn connect_all(workers: &mut Workers, people: &[Person], concurrency: usize) -> Result<(), BoxError> {
    let t0 = Instant::now();
    let specs = people.iter().map(|p| ClientSpec { token: p.token.clone(), resume_from: None }).collect();
    let c = workers.connect(specs, concurrency, None).await?;
    eprintln!(
        "  {} clients connected in {:.1} s over {} workers (p99 {:.1} ms), {} failed {:?}",
        c.ok,
        t0.elapsed().as_secs_f64(),
        workers.len(),
        c.latency.ms(0.99),
        c.failed,
        c.errors
    );
    if c.failed > 0 {
        return Err(format!("{} clients could not connect", c.failed).into());
    }
    Ok(())
}

/// Makes rooms of `size` over people `range`, each member in exactly one; `senders` per room.
async fn rooms_of(
    target: &Target,
    people: &[Person],
    range: std::ops::Range<usize>,
    size: usize,
    senders: usize,
    label: &str,
    concurrency: usize,
) -> Result<Vec<Room>, BoxError> {
    let mut rooms = Vec::new();
    let members: Vec<usize> = range.collect();
    for (k, chunk) in members.chunks(size).enumerate() {
        if chunk.len() < size {
            break;
        }
        let who: Vec<Person> = chunk.iter().map(|&i| people[i].clone()).collect();
        let id = target.room(&format!("{label} {k}"), &who, concurrency).await?;
        rooms.push(Room { id, members: chunk.to_vec(), senders: chunk.iter().copied().take(senders.max(1)).collect() });
    }
    Ok(rooms)
}

fn header(workload: &str, target: &Target, detail: &str) {
    println!();
    let nodes =
        if target.nodes() > 1 { format!(", {} nodes on PostgreSQL + NATS", target.nodes()) } else { String::new() };
    println!("== {workload} on {}{nodes} ({}) — {detail}", target.name(), machine());
}

// ---------------------------------------------------------------------------------------
// idle connections

#[derive(clap::Args, Debug)]
pub struct IdleArgs {
    #[command(flatten)]
    pub common: Common,
    /// Authenticated connections to hold.
    #[arg(long, default_value_t = 19_000)]
    pub connections: usize,
    /// Seconds to hold them (heartbeats keep flowing) before measuring and checking.
    #[arg(long, default_value_t = 30.0)]
    pub hold: f64,
}

fn kernel_kib() -> (u64, u64) {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let slab = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("Slab:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let sockstat = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    let tcp_pages: u64 = sockstat
        .lines()
        .find(|l| l.starts_with("TCP:"))
        .and_then(|l| l.split_whitespace().skip_while(|w| *w != "mem").nth(1)?.parse().ok())
        .unwrap_or(0);
    (slab, tcp_pages * 4)
}

pub async fn idle(args: IdleArgs) -> Result<(), BoxError> {
    check(args.connections, args.hold)?;
    if args.connections < 2 {
        return Err("at least 2 connections".into());
    }
    let (target, people, mut workers) = setup(&args.common, args.connections).await?;
    // Everyone in a 10-person room, so connecting loads real memberships.
    rooms_of(&target, &people, 0..people.len(), 10, 1, "idle", args.common.setup_concurrency).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss0, _) = target.rss_kib();
    // The first half also warms what does not grow with connections (the database's page
    // cache, connection pools); the second half's growth is the cost of a connection.
    let half = args.connections / 2;
    connect_all(&mut workers, &people[..half], 500).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rss1, _) = target.rss_kib();
    let (slab1, tcp1) = kernel_kib();
    connect_all(&mut workers, &people[half..], 500).await?;
    workers.measure("idle").await?;
    eprintln!("  holding {} connections for {} s", args.connections, args.hold);
    tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
    let (rss2, peak) = target.rss_kib();
    let (slab2, tcp2) = kernel_kib();
    let report = workers.report(false).await?;
    let second = (args.connections - half) as f64;
    let user = rss2.saturating_sub(rss1) as f64 / second;
    let average = rss2.saturating_sub(rss0) as f64 / args.connections as f64;
    // Both ends of every loopback connection live in this kernel: half is the server's.
    let kernel = (slab2.saturating_sub(slab1) + tcp2.saturating_sub(tcp1)) as f64 / 2.0 / second;
    header(
        "idle-connections",
        &target,
        &format!("{} authenticated connections held {} s", args.connections, args.hold),
    );
    println!(
        "  server RSS {:.0} MiB before, {:.0} MiB with half connected, {:.0} MiB with all (peak {:.0})",
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0,
        rss2 as f64 / 1024.0,
        peak as f64 / 1024.0,
    );
    println!(
        "  per connection (second half): {user:.1} KiB server RSS + ≈ {kernel:.1} KiB kernel (half the slab and TCP \
         buffer growth) = {:.1} KiB; over all connections from the start: {average:.1} KiB RSS",
        user + kernel
    );
    println!("  connections dropped while idle: {} {:?}", report.lost, report.lost_reasons);
    workers.close().await?;
    workers.quit().await;
    target.stop()?;
    if report.lost > 0 {
        return Err("connections were dropped while idle".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// traffic workloads: chat mix, fan-out, the 100-member room

#[derive(clap::Args, Debug, Clone)]
pub struct TrafficArgs {
    /// Messages per second offered (several values: one run each, same fixture).
    #[arg(long, value_delimiter = ',')]
    pub rate: Vec<f64>,
    /// Seconds of load per rate.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Sends in flight beyond which the target counts as saturated (the run stops).
    #[arg(long, default_value_t = 2_000)]
    pub max_in_flight: usize,
}

async fn traffic_runs(
    name: &str,
    detail: &str,
    target: Target,
    mut workers: Workers,
    people: &[Person],
    classes: &[Class],
    t: &TrafficArgs,
) -> Result<(), BoxError> {
    let mut failed = None;
    for &rate in &t.rate {
        if !(rate > 0.0 && rate <= 100_000.0) {
            return Err("rates must be in (0, 100000]".into());
        }
        let load = Load { rate, seconds: t.seconds, max_in_flight: t.max_in_flight };
        let outcome = traffic::run(&target, &mut workers, people, classes, &load, &tag()).await?;
        header(name, &target, detail);
        if let Err(e) = traffic::report(name, &target, &outcome, &load) {
            failed = Some(e);
        }
        // Let the server settle between rates.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    workers.close().await?;
    workers.quit().await;
    target.stop()?;
    failed.map_or(Ok(()), Err)
}

#[derive(clap::Args, Debug)]
pub struct RoomArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub traffic: TrafficArgs,
    /// Members of the room, each connected once.
    #[arg(long, default_value_t = 100)]
    pub members: usize,
    /// Members who send, in turn.
    #[arg(long, default_value_t = 10)]
    pub senders: usize,
}

/// The peers' workload: one room, every member connected, a few members sending.
pub async fn room(mut args: RoomArgs) -> Result<(), BoxError> {
    if args.traffic.rate.is_empty() {
        args.traffic.rate = vec![3_000.0];
    }
    check(args.members, args.traffic.seconds)?;
    let (target, people, mut workers) = setup(&args.common, args.members).await?;
    let rooms =
        rooms_of(&target, &people, 0..args.members, args.members, args.senders, "room", args.common.setup_concurrency)
            .await?;
    connect_all(&mut workers, &people, 100).await?;
    let classes = [Class { label: format!("{}-member room", args.members), rooms, share: 1.0 }];
    let detail = format!("{} members all connected, {} senders", args.members, args.senders.min(args.members));
    traffic_runs("room", &detail, target, workers, &people, &classes, &args.traffic).await
}

#[derive(clap::Args, Debug)]
pub struct FanOutArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub traffic: TrafficArgs,
    /// Members of the room, each connected once.
    #[arg(long, default_value_t = 5_000)]
    pub members: usize,
    #[arg(long, default_value_t = 5)]
    pub senders: usize,
}

/// One large room: frames per second the server pushes out.
pub async fn fan_out(mut args: FanOutArgs) -> Result<(), BoxError> {
    if args.traffic.rate.is_empty() {
        args.traffic.rate = vec![30.0];
    }
    check(args.members, args.traffic.seconds)?;
    let (target, people, mut workers) = setup(&args.common, args.members).await?;
    let rooms = rooms_of(
        &target,
        &people,
        0..args.members,
        args.members,
        args.senders,
        "fan-out",
        args.common.setup_concurrency,
    )
    .await?;
    connect_all(&mut workers, &people, 500).await?;
    let classes = [Class { label: format!("{}-member room", args.members), rooms, share: 1.0 }];
    let detail = format!("one room of {} members, all connected, {} senders", args.members, args.senders);
    traffic_runs("fan-out", &detail, target, workers, &people, &classes, &args.traffic).await
}

#[derive(clap::Args, Debug)]
pub struct ChatMixArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub traffic: TrafficArgs,
    /// People, one connection each; everyone is in one room of each size.
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// Room sizes.
    #[arg(long, value_delimiter = ',', default_value = "10,100,5000")]
    pub sizes: Vec<usize>,
    /// Share of the messages going to rooms of each size. Default: every room equally
    /// likely, so a room of 5,000 talks as often as a room of 10 (1,000 rooms of 10, 100 of
    /// 100 and 2 of 5,000 then get about 91 %, 9 % and 0.2 % of the messages, and a third
    /// of the deliveries each).
    #[arg(long, value_delimiter = ',')]
    pub shares: Vec<f64>,
}

/// Everyone in a small, a medium and a large room; traffic split by share.
pub async fn chat_mix(mut args: ChatMixArgs) -> Result<(), BoxError> {
    if args.traffic.rate.is_empty() {
        args.traffic.rate = vec![2_000.0];
    }
    check(args.connections, args.traffic.seconds)?;
    let uniform = args.shares.is_empty();
    if (!uniform && args.sizes.len() != args.shares.len()) || args.sizes.iter().any(|&s| s == 0 || s > args.connections)
    {
        return Err("one share per room size; sizes between 1 and the connections".into());
    }
    let (target, people, mut workers) = setup(&args.common, args.connections).await?;
    let mut classes = Vec::new();
    for (k, &size) in args.sizes.iter().enumerate() {
        let t0 = Instant::now();
        // Every member of a room may send; they take turns.
        let rooms = rooms_of(
            &target,
            &people,
            0..args.connections,
            size,
            size,
            &format!("mix {size}"),
            args.common.setup_concurrency,
        )
        .await?;
        eprintln!("  {} rooms of {size} in {:.1} s", rooms.len(), t0.elapsed().as_secs_f64());
        let share = if uniform { rooms.len() as f64 } else { args.shares[k] };
        classes.push(Class { label: format!("{size}"), rooms, share });
    }
    connect_all(&mut workers, &people, 500).await?;
    let total: f64 = classes.iter().map(|c| c.share).sum();
    let detail = format!(
        "{} connections; rooms {} (everyone in one of each); messages to each size {}",
        args.connections,
        classes.iter().map(|c| format!("{}×{}", c.rooms.len(), c.label)).collect::<Vec<_>>().join(", "),
        classes.iter().map(|c| format!("{:.1} %", c.share * 100.0 / total)).collect::<Vec<_>>().join(" / "),
    );
    traffic_runs("chat-mix", &detail, target, workers, &people, &classes, &args.traffic).await
}

// ---------------------------------------------------------------------------------------
// connect storm

#[derive(clap::Args, Debug)]
pub struct StormArgs {
    #[command(flatten)]
    pub common: Common,
    /// Clients connecting at once.
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// Connection attempts in flight (over all workers).
    #[arg(long, default_value_t = 1_000)]
    pub concurrency: usize,
    /// Rooms of 10 everyone is in (loaded at connect).
    #[arg(long, default_value_t = 10)]
    pub room_size: usize,
}

/// Every client connects at once (a server restart, an office arriving at 9:00): how long
/// until all are authenticated and live.
pub async fn connect_storm(args: StormArgs) -> Result<(), BoxError> {
    check(args.connections, 1.0)?;
    let (target, people, mut workers) = setup(&args.common, args.connections).await?;
    rooms_of(&target, &people, 0..people.len(), args.room_size, 1, "storm", args.common.setup_concurrency).await?;
    let specs = people.iter().map(|p| ClientSpec { token: p.token.clone(), resume_from: None }).collect();
    let cpu0 = target.cpu();
    let t0 = Instant::now();
    let c = workers.connect(specs, args.concurrency, None).await?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = target.cpu() - cpu0;
    header(
        "connect-storm",
        &target,
        &format!("{} clients, {} connecting at a time", args.connections, args.concurrency),
    );
    println!(
        "  {} connected, {} failed in {secs:.2} s: {:.0} connections/s; connect → ready p50 {:.1} ms, p99 {:.1} ms, \
         max {:.1} ms; server CPU {:.2} s ({:.0} µs per connection){}",
        c.ok,
        c.failed,
        c.ok as f64 / secs,
        c.latency.ms(0.5),
        c.latency.ms(0.99),
        c.latency.ms(1.0),
        cpu.total(),
        cpu.total() * 1e6 / c.ok.max(1) as f64,
        if c.errors.is_empty() { String::new() } else { format!("; errors {:?}", c.errors) },
    );
    workers.close().await?;
    workers.quit().await;
    target.stop()?;
    if c.failed > 0 {
        return Err("some clients could not connect".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// resync

#[derive(clap::Args, Debug)]
pub struct ResyncArgs {
    #[command(flatten)]
    pub common: Common,
    /// Clients that go offline and come back.
    #[arg(long, default_value_t = 200)]
    pub clients: usize,
    /// Channels they are all in.
    #[arg(long, default_value_t = 20)]
    pub channels: usize,
    /// Messages sent while they are offline, spread evenly over the channels.
    #[arg(long, default_value_t = 1_000)]
    pub missed: usize,
    /// Clients reconnecting at a time.
    #[arg(long, default_value_t = 10)]
    pub concurrency: usize,
}

/// Clients miss messages across many channels, then reconnect with their last position:
/// time from starting to connect until the last missed message arrived, per client.
pub async fn resync(args: ResyncArgs) -> Result<(), BoxError> {
    check(args.clients, 1.0)?;
    if args.channels == 0 || args.missed == 0 || args.missed > 100_000 {
        return Err("channels must be positive, missed between 1 and 100000".into());
    }
    let (target, people, mut workers) = setup(&args.common, args.clients).await?;
    let mut rooms = Vec::new();
    for k in 0..args.channels {
        rooms.push(target.room(&format!("resync {k}"), &people, args.common.setup_concurrency).await?);
    }
    // Connect once to learn each client's position, then go offline.
    let specs: Vec<ClientSpec> =
        people.iter().map(|p| ClientSpec { token: p.token.clone(), resume_from: None }).collect();
    let first = workers.connect(specs, 100, None).await?;
    if first.failed > 0 {
        return Err(format!("{} clients could not connect", first.failed).into());
    }
    workers.close().await?;

    let tag = tag();
    let sender = target.sender(64)?;
    let t0 = Instant::now();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    let mut sends = Vec::new();
    for i in 0..args.missed {
        let (sender, gate) = (sender.clone(), gate.clone());
        let (who, room) = (people[i % people.len()].clone(), rooms[i % rooms.len()].clone());
        let body = format!("bench {tag} n={i}");
        let key = format!("{tag}-{i}");
        sends.push(tokio::spawn(async move {
            let _permit = gate.acquire().await;
            sender.send(&who, &room, body, &key).await
        }));
    }
    for s in sends {
        s.await??;
    }
    eprintln!("  {} messages sent over {} channels in {:.1} s", args.missed, args.channels, t0.elapsed().as_secs_f64());

    workers.measure(&tag).await?;
    let specs = people
        .iter()
        .zip(&first.heads)
        .map(|(p, h)| ClientSpec { token: p.token.clone(), resume_from: (!h.is_empty()).then(|| h.clone()) })
        .collect();
    let cpu0 = target.cpu();
    let client0 = workers.cpu_seconds();
    let t1 = Instant::now();
    let c = workers.connect(specs, args.concurrency, Some(args.missed as u64)).await?;
    // Wait for every client to finish catching up (bounded).
    let mut report = workers.report(false).await?;
    while report.complete.count() < c.ok as u64 && t1.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        report = workers.report(false).await?;
    }
    let secs = t1.elapsed().as_secs_f64();
    let cpu = target.cpu() - cpu0;
    let client_cpu = workers.cpu_seconds() - client0;
    let expected = (args.missed * c.ok) as u64;
    // Every client must have caught up on the same messages, in the same order, per channel.
    tokio::time::sleep(traffic::QUIET).await;
    let report = workers.report(true).await?;
    let per_room: HashMap<&str, traffic::Expect> = rooms
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let messages = args.missed.saturating_sub(k).div_ceil(rooms.len()) as u64;
            (r.as_str(), traffic::Expect::new(people.iter().map(|p| p.token.as_str()), messages))
        })
        .collect();
    let problems = traffic::check_views(&report.views, &per_room);
    header(
        "resync",
        &target,
        &format!(
            "{} clients each missed {} messages over {} channels; {} reconnect at a time",
            args.clients, args.missed, args.channels, args.concurrency
        ),
    );
    print_complete(&report.complete);
    println!(
        "  {} of {expected} missed messages delivered in {secs:.2} s; duplicates {}, gaps {}, out of order {}; \
         server CPU {:.2} s ({:.0} µs per client); load generator CPU {client_cpu:.2} s",
        report.total(),
        report.duplicates,
        report.gaps,
        report.out_of_order,
        cpu.total(),
        cpu.total() * 1e6 / c.ok.max(1) as f64
    );
    for p in &problems {
        println!("  not verified: {p}");
    }
    workers.close().await?;
    workers.quit().await;
    target.stop()?;
    if report.total() != expected
        || report.duplicates + report.gaps + report.out_of_order + report.unreadable > 0
        || c.failed > 0
        || !problems.is_empty()
    {
        return Err("resync verification failed".into());
    }
    Ok(())
}

fn print_complete(l: &Latency) {
    println!(
        "  time to catch up (connect → last missed message): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} clients",
        l.ms(0.5),
        l.ms(0.99),
        l.ms(1.0),
        l.count()
    );
}
