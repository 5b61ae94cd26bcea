//! The server a realtime workload runs against: Qiao (a child server process started here)
//! or a Matrix homeserver already running (Synapse, set up by `scripts/synapse`). Both are
//! driven through their public client APIs only, with the same fixtures and the same load.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::client::{self, Api};
use crate::server::{self, BoxError, ChildArgs, Server};

/// Options shared by every realtime workload.
#[derive(clap::Args, Clone, Debug)]
pub struct Common {
    /// `qiao`, or `matrix` to drive the homeserver set up by `scripts/synapse start DIR`.
    #[arg(long, default_value = "qiao")]
    pub target: String,
    /// With `--target matrix`: the directory given to `scripts/synapse start`.
    #[arg(long)]
    pub synapse_dir: Option<PathBuf>,
    /// Qiao's database: `sqlite` (a fresh file), or a PostgreSQL admin URL on which a fresh
    /// database is created.
    #[arg(long, default_value = "sqlite")]
    pub database: String,
    /// CPU the Qiao server is pinned to (`none`: unpinned).
    #[arg(long, default_value = "0")]
    pub server_cpu: String,
    /// CPU the load generator's processes are pinned to (`none`: unpinned).
    #[arg(long, default_value = "1")]
    pub client_cpu: String,
    /// Worker processes holding the clients (each from its own 127.0.0.x address).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Qiao's `realtime_flush_ms`: shortest time between two writes to a busy connection.
    #[arg(long, default_value_t = 4)]
    pub flush_ms: u64,
    /// Qiao's `db_commit_gap_ms`: least time between two commits while writes keep arriving.
    #[arg(long, default_value_t = 1)]
    pub commit_gap_ms: u64,
    /// Qiao's `realtime_resume_memory_mb`: recent events kept in memory for resumes (0: resumes
    /// read the event log).
    #[arg(long, default_value_t = 32)]
    pub resume_memory_mb: usize,
    /// Requests in flight while building fixtures (people, rooms).
    #[arg(long, default_value_t = 32)]
    pub setup_concurrency: usize,
    /// Qiao nodes (cluster mode beyond 1: needs `--database postgres://…`; a `nats-server`
    /// is started on a loopback port). Clients and sends are spread over the nodes, and
    /// every node is pinned to `--server-cpu`.
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
}

impl Common {
    pub fn cpu(s: &str) -> Option<usize> {
        s.parse().ok()
    }
}

/// A person signed in once; one client (device) each.
#[derive(Clone, Debug)]
pub struct Person {
    pub id: String,
    pub token: String,
}

/// CPU seconds used so far by the server and, when separate, its database.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu {
    pub server: f64,
    /// PostgreSQL's (the postmaster and its backends), when the target uses it.
    pub database: f64,
    /// The cluster's NATS server, when several Qiao nodes share one.
    pub bus: f64,
}

impl Cpu {
    /// Everything the target used: server, database and bus.
    pub fn total(&self) -> f64 {
        self.server + self.database + self.bus
    }
}

impl std::ops::Sub for Cpu {
    type Output = Cpu;
    fn sub(self, o: Cpu) -> Cpu {
        Cpu { server: self.server - o.server, database: self.database - o.database, bus: self.bus - o.bus }
    }
}

/// The port of a URL whose host must be this machine's loopback (every workload stays on
/// loopback); `None` for a URL with no host (a PostgreSQL Unix socket). `default` is the
/// scheme's port.
pub fn loopback_port(url: &str, default: u16) -> Result<Option<u16>, BoxError> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    // Connection parameters that name another host or port would go around the check.
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    if query.split('&').any(|kv| matches!(kv.split('=').next(), Some("host" | "hostaddr" | "port"))) {
        return Err(format!("{url}: give the host and port in the URL itself (loopback), not as parameters").into());
    }
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.is_empty() {
        return Ok(None);
    }
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => {
            let (h, p) = v6.split_once(']').ok_or("bad IPv6 address in URL")?;
            (h, p.strip_prefix(':'))
        }
        None => match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        },
    };
    let loopback =
        host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(format!("{url}: benchmarks run on loopback only (127.0.0.1, ::1 or localhost)").into());
    }
    Ok(Some(match port {
        Some(p) => p.parse().map_err(|_| format!("{url}: bad port"))?,
        None => default,
    }))
}

pub enum Target {
    /// One or more nodes (`servers[0]` serves the fixtures), with their bus when several.
    Qiao {
        servers: Vec<Server>,
        owner: Api,
        nats: Option<Nats>,
        /// The PostgreSQL server's postmaster, when the database is PostgreSQL on this machine.
        postgres_pid: Option<u32>,
        _dir: tempfile::TempDir,
    },
    Matrix(Matrix),
}

pub struct Matrix {
    pub url: String,
    pub synapse_pid: u32,
    pub postgres_pid: Option<u32>,
    http: reqwest::Client,
    /// Distinguishes this run's accounts on a homeserver that outlives runs.
    run: String,
}

impl Target {
    pub async fn start(common: &Common) -> Result<Target, BoxError> {
        match common.target.as_str() {
            "qiao" => {
                let dir = tempfile::tempdir()?;
                let (database, postgres_pid) = if common.database == "sqlite" {
                    (format!("sqlite:{}", dir.path().join("qiao.db").display()), None)
                } else {
                    // Checked (loopback only) before anything is created there.
                    let pid = postgres_pid(&common.database)?;
                    (qiao_store::testing::TestDb::postgres_on(&common.database).await?.url.clone(), pid)
                };
                if common.nodes == 0 || common.nodes > 8 {
                    return Err("--nodes must be between 1 and 8".into());
                }
                if common.nodes > 1 && common.database == "sqlite" {
                    return Err("several nodes need --database postgres://… (an admin URL)".into());
                }
                let nats = if common.nodes > 1 { Some(Nats::start()?) } else { None };
                let mut servers = Vec::new();
                for n in 0..common.nodes {
                    let data_dir = dir.path().join(format!("node{n}"));
                    std::fs::create_dir_all(&data_dir)?;
                    let child = ChildArgs {
                        database: database.clone(),
                        data_dir,
                        max_batch: 512,
                        read_connections: 8,
                        flush_ms: common.flush_ms,
                        commit_gap_ms: common.commit_gap_ms,
                        resume_memory_mb: common.resume_memory_mb,
                        bus: nats.as_ref().map(|n| n.url.clone()).unwrap_or_default(),
                        // Several nodes share one file directory (as on a shared filesystem).
                        file_store: if common.nodes > 1 {
                            dir.path().join("files").display().to_string()
                        } else {
                            String::new()
                        },
                    };
                    let server = Server::start(&child, Common::cpu(&common.server_cpu))?;
                    eprintln!("Qiao: pid {} at {} (CPU {:?})", server.ready.pid, server.ready.url, server.pinned);
                    servers.push(server);
                }
                let http = setup_http();
                // Each node issues a new setup link at start: the last one is valid.
                let token = servers.last().and_then(|s| s.ready.setup_token.clone()).ok_or("no setup token")?;
                let owner = client::owner(&servers[0].ready.url, &token, &http).await?;
                Ok(Target::Qiao { servers, owner, nats, postgres_pid, _dir: dir })
            }
            "matrix" => {
                let dir = common.synapse_dir.as_ref().ok_or("--target matrix needs --synapse-dir")?;
                let read = |f: &str| std::fs::read_to_string(dir.join(f)).map(|s| s.trim().to_owned());
                let url = read("url").map_err(|e| format!("{}/url: {e} (run scripts/synapse start)", dir.display()))?;
                loopback_port(&url, 80)?;
                let synapse_pid: u32 = read("synapse.pid")?.parse()?;
                if !std::path::Path::new(&format!("/proc/{synapse_pid}")).exists() {
                    return Err(format!("Synapse (pid {synapse_pid}) is not running: scripts/synapse start").into());
                }
                let postgres_pid = read("pg/data/postmaster.pid")
                    .ok()
                    .and_then(|s| s.lines().next().and_then(|l| l.trim().parse().ok()));
                let run = format!("{:x}", std::process::id() ^ (crate::worker::now_micros() as u32));
                eprintln!("Synapse: pid {synapse_pid} at {url}, PostgreSQL pid {postgres_pid:?}");
                Ok(Target::Matrix(Matrix { url, synapse_pid, postgres_pid, http: setup_http(), run }))
            }
            other => Err(format!("unknown target {other:?}: use qiao or matrix").into()),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Target::Qiao { .. } => "Qiao",
            Target::Matrix(_) => "Synapse",
        }
    }

    /// Every node's URL (clients and sends are spread over them).
    pub fn urls(&self) -> Vec<String> {
        match self {
            Target::Qiao { servers, .. } => servers.iter().map(|s| s.ready.url.clone()).collect(),
            Target::Matrix(m) => vec![m.url.clone()],
        }
    }

    pub fn nodes(&self) -> usize {
        self.urls().len()
    }

    pub fn protocol(&self) -> &'static str {
        match self {
            Target::Qiao { .. } => "qiao",
            Target::Matrix(_) => "matrix",
        }
    }

    /// Creates `n` people and signs each in, `concurrency` requests at a time.
    pub async fn people(&self, prefix: &str, n: usize, concurrency: usize) -> Result<Vec<Person>, BoxError> {
        let gate = Arc::new(Semaphore::new(concurrency.max(1)));
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let gate = gate.clone();
            let fut = self.person(format!("{prefix}{i}"), i);
            tasks.push(async move {
                let _permit = gate.acquire().await;
                fut.await
            });
        }
        let mut out = Vec::with_capacity(n);
        // Run them concurrently on this task set.
        let handles: Vec<_> = tasks.into_iter().map(tokio::spawn).collect();
        for (i, h) in handles.into_iter().enumerate() {
            out.push(h.await??);
            if (i + 1) % 2000 == 0 {
                eprintln!("  {} of {n} people", i + 1);
            }
        }
        Ok(out)
    }

    fn person(&self, username: String, i: usize) -> impl Future<Output = Result<Person, BoxError>> + Send + 'static {
        enum Via {
            Qiao(Api),
            Matrix(reqwest::Client, String, String),
        }
        let via = match self {
            Target::Qiao { owner, .. } => Via::Qiao(owner.clone()),
            Target::Matrix(m) => Via::Matrix(m.http.clone(), m.url.clone(), m.run.clone()),
        };
        async move {
            match via {
                Via::Qiao(owner) => {
                    let created = owner
                        .post_ok(
                            "/api/v1/users",
                            json!({"username": username, "display_name": format!("负载 {i}"), "password": "bench-password"}),
                        )
                        .await?;
                    let id = created["user"]["id"].as_str().ok_or("no id")?.to_owned();
                    let anon = Api { token: String::new(), ..owner.clone() };
                    let signed = anon
                        .post_ok(
                            "/api/v1/auth/sign-in",
                            json!({"login": username, "password": "bench-password", "mode": "bearer"}),
                        )
                        .await?;
                    Ok(Person { id, token: signed["token"].as_str().ok_or("no token")?.to_owned() })
                }
                Via::Matrix(http, url, run) => {
                    let body = json!({
                        "username": format!("{username}_{run}"),
                        "password": "bench-password",
                        "auth": {"type": "m.login.dummy"},
                        "inhibit_login": false,
                    });
                    let v = matrix_call(&http, reqwest::Method::POST, &url, "/_matrix/client/v3/register", "", body)
                        .await?;
                    Ok(Person {
                        id: v["user_id"].as_str().ok_or("no user_id")?.to_owned(),
                        token: v["access_token"].as_str().ok_or("no access_token")?.to_owned(),
                    })
                }
            }
        }
    }

    /// Creates a room holding `members` (all of them, the first one as creator on Matrix).
    pub async fn room(&self, name: &str, members: &[Person], concurrency: usize) -> Result<String, BoxError> {
        match self {
            Target::Qiao { owner, .. } => {
                let ids: Vec<String> = members.iter().map(|p| p.id.clone()).collect();
                client::channel(owner, name, &ids).await
            }
            Target::Matrix(m) => {
                let creator = members.first().ok_or("a room needs members")?;
                let v = matrix_call(
                    &m.http,
                    reqwest::Method::POST,
                    &m.url,
                    "/_matrix/client/v3/createRoom",
                    &creator.token,
                    json!({"name": name, "preset": "public_chat"}),
                )
                .await?;
                let room = v["room_id"].as_str().ok_or("no room_id")?.to_owned();
                let gate = Arc::new(Semaphore::new(concurrency.max(1)));
                let mut joins = Vec::new();
                for p in &members[1..] {
                    let (gate, http, url, token) = (gate.clone(), m.http.clone(), m.url.clone(), p.token.clone());
                    let path = format!("/_matrix/client/v3/join/{}", encode(&room));
                    joins.push(tokio::spawn(async move {
                        let _permit = gate.acquire().await;
                        matrix_call(&http, reqwest::Method::POST, &url, &path, &token, json!({})).await
                    }));
                }
                for j in joins {
                    j.await??;
                }
                Ok(room)
            }
        }
    }

    /// A cheap handle that sends messages as anyone.
    pub fn sender(&self, in_flight: usize) -> Result<Sender, BoxError> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(in_flight)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Sender { http, urls: self.urls().into(), matrix: matches!(self, Target::Matrix(_)) })
    }

    pub fn cpu(&self) -> Cpu {
        match self {
            Target::Qiao { servers, nats, postgres_pid, .. } => Cpu {
                server: servers.iter().map(Server::cpu_seconds).sum(),
                database: postgres_pid.map_or(0.0, server::tree_cpu_seconds),
                bus: nats.as_ref().map_or(0.0, |n| server::process_cpu_seconds(n.child.id())),
            },
            Target::Matrix(m) => Cpu {
                server: server::process_cpu_seconds(m.synapse_pid),
                database: m.postgres_pid.map_or(0.0, server::tree_cpu_seconds),
                bus: 0.0,
            },
        }
    }

    /// Starts the peak of [`Target::rss_kib`] again from now.
    pub fn reset_rss_peak(&self) {
        match self {
            Target::Qiao { servers, .. } => servers.iter().for_each(Server::reset_rss_peak),
            Target::Matrix(m) => server::reset_rss_peak(m.synapse_pid),
        }
    }

    /// The server's resident memory now and at its peak (since [`Target::reset_rss_peak`]), in
    /// KiB; with several nodes, the sum of their peaks.
    pub fn rss_kib(&self) -> (u64, u64) {
        match self {
            Target::Qiao { servers, .. } => {
                servers.iter().map(Server::rss_kib).fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
            }
            Target::Matrix(m) => server::process_rss_kib(m.synapse_pid),
        }
    }

    pub fn stop(self) -> Result<(), BoxError> {
        match self {
            Target::Qiao { servers, nats, .. } => {
                for s in servers {
                    s.stop()?;
                }
                drop(nats);
                Ok(())
            }
            Target::Matrix(_) => Ok(()),
        }
    }
}

fn setup_http() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(256).timeout(Duration::from_secs(120)).build().unwrap_or_default()
}

/// Percent-encodes a path segment (Matrix room ids hold `!` and `:`).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn matrix_call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    path: &str,
    token: &str,
    body: Value,
) -> Result<Value, BoxError> {
    let mut rb = http.request(method, format!("{url}{path}")).json(&body);
    if !token.is_empty() {
        rb = rb.bearer_auth(token);
    }
    let res = rb.send().await?;
    let status = res.status();
    let bytes = res.bytes().await?;
    if !status.is_success() {
        return Err(format!("{path}: {status} {}", String::from_utf8_lossy(&bytes)).into());
    }
    Ok(serde_json::from_slice(&bytes)?)
}

/// Sends messages over the target's HTTP API.
#[derive(Clone)]
pub struct Sender {
    http: reqwest::Client,
    urls: Arc<[String]>,
    matrix: bool,
}

impl Sender {
    /// Sends `body` to `room` as `who`; `key` makes the send idempotent.
    pub async fn send(&self, who: &Person, room: &str, body: String, key: &str) -> Result<(), BoxError> {
        // With several nodes, each person always sends through the same one.
        let url = &self.urls[who.token.bytes().map(usize::from).sum::<usize>() % self.urls.len()];
        let res = if self.matrix {
            let path = format!("{url}/_matrix/client/v3/rooms/{}/send/m.room.message/{key}", encode(room));
            self.http.put(path).bearer_auth(&who.token).json(&json!({"msgtype": "m.text", "body": body})).send().await?
        } else {
            let path = format!("{url}/api/v1/conversations/{room}/messages");
            self.http.post(path).bearer_auth(&who.token).json(&json!({"body": body, "client_key": key})).send().await?
        };
        let status = res.status();
        let bytes = res.bytes().await?;
        if !status.is_success() {
            return Err(format!("send: {status} {}", String::from_utf8_lossy(&bytes)).into());
        }
        Ok(())
    }
}

/// The postmaster of the PostgreSQL server at `url` (which must be on loopback), so that its
/// CPU counts with the server's as Synapse's database does; `None` (with a warning) if it is
/// not found.
pub fn postgres_pid(url: &str) -> Result<Option<u32>, BoxError> {
    let Some(port) = loopback_port(url, 5432)? else { return Ok(None) };
    let pid = server::postmaster_on(port);
    if pid.is_none() {
        eprintln!("warning: no PostgreSQL server found on port {port}: its CPU is not counted");
    }
    Ok(pid)
}

/// A `nats-server` for a cluster run, on a free loopback port; stopped when dropped.
pub struct Nats {
    child: std::process::Child,
    pub url: String,
}

impl Nats {
    fn start() -> Result<Nats, BoxError> {
        let bin = std::env::var_os("QIAO_TEST_NATS_SERVER")
            .map(PathBuf::from)
            .or_else(|| {
                ["/usr/sbin/nats-server", "/usr/bin/nats-server"].iter().map(PathBuf::from).find(|p| p.exists())
            })
            .ok_or("nats-server is missing: apt-get install nats-server (scripts/test installs it)")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = server::unpinned(&bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                eprintln!("NATS: pid {} on 127.0.0.1:{port}", child.id());
                return Ok(Nats { child, url: format!("nats://127.0.0.1:{port}") });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Err("nats-server did not start".into())
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::loopback_port;

    #[test]
    fn only_loopback_urls_are_accepted() {
        assert_eq!(loopback_port("http://127.0.0.1:8008", 80).unwrap(), Some(8008));
        assert_eq!(loopback_port("postgres://u:p@localhost/db", 5432).unwrap(), Some(5432));
        assert_eq!(loopback_port("postgres://u@[::1]:5433/db?sslmode=disable", 5432).unwrap(), Some(5433));
        assert_eq!(loopback_port("http://127.0.0.9", 80).unwrap(), Some(80));
        // A Unix socket has no host in the URL itself.
        assert_eq!(loopback_port("postgres://u@/db", 5432).unwrap(), None);
        // Parameters naming another host or port are refused.
        for sneaky in [
            "postgres://u@127.0.0.1/db?host=10.0.0.5",
            "postgresql:///db?hostaddr=10.0.0.5",
            "postgres://u@localhost/db?sslmode=disable&port=6000",
        ] {
            assert!(loopback_port(sneaky, 5432).is_err(), "{sneaky}");
        }
        for far in ["http://10.0.0.5:8008", "postgres://u@db.example.com/db", "http://[2001:db8::1]:80"] {
            assert!(loopback_port(far, 80).is_err(), "{far}");
        }
        assert!(loopback_port("http://127.0.0.1:http", 80).is_err());
    }
}
