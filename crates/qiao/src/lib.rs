//! The `qiao` binary's library half: configuration, and [`serve`], the one entry point that
//! turns a configuration, a bound listener and a shutdown signal into a running server.
//! Tests call it directly (several servers per process, on port 0).

pub mod config;

/// The process allocator of every binary that embeds the server (`qiao`, `qiao-bench`, the
/// tests): the gateway allocates and frees many small buffers per delivery, where glibc's
/// malloc spent ~10 % of the server core in the room benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use qiao_api::{ApiConfig, AppState};
use qiao_domain::Error;
use qiao_service::crypto::PasswordParams;
use qiao_service::throttle::ThrottleConfig;
use qiao_service::{ServiceConfig, Services};
use qiao_store::{Engine, Store, StoreConfig};
use tokio::net::TcpListener;

pub use config::{Config, ConfigError, Layer};

/// What a started server reports once it accepts connections.
#[derive(Clone, Debug)]
pub struct Ready {
    pub addr: SocketAddr,
    pub public_url: String,
    /// While the organisation has no owner: the one-time setup link.
    pub setup_link: Option<String>,
    /// The token inside `setup_link`.
    pub setup_token: Option<String>,
}

/// The process-wide Prometheus recorder (metrics macros need one global recorder).
fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Fixed buckets: cheaper to record than the default summaries, and aggregatable.
            let latency = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
            let sizes = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency)
                .and_then(|b| b.set_buckets(&sizes))
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok().map(|_| handle)
        })
        .clone()
}

pub fn store_config(config: &Config) -> StoreConfig {
    StoreConfig {
        url: config.database.0.clone(),
        read_connections: config.db_read_connections,
        max_batch: config.db_max_batch,
        commit_gap: Duration::from_millis(config.db_commit_gap_ms),
        queue: 8192,
    }
}

pub fn service_config(config: &Config) -> ServiceConfig {
    let lockout = Duration::from_secs(config.login_lockout_minutes.max(1) * 60);
    ServiceConfig {
        session_idle_ttl: Duration::from_secs(u64::from(config.session_idle_days) * 24 * 3600),
        max_sessions_per_user: config.max_sessions_per_user,
        password: PasswordParams {
            memory_kib: config.password_memory_kib,
            iterations: config.password_iterations,
            concurrency: config.password_concurrency,
        },
        throttle: ThrottleConfig {
            account_failures: config.login_max_failures_per_account,
            address_failures: config.login_max_failures_per_address,
            window: lockout,
            lockout,
            ..ThrottleConfig::default()
        },
        event_retention: Duration::from_secs(u64::from(config.event_retention_days) * 24 * 3600),
        message_rate: qiao_service::ratelimit::RateConfig {
            per_second: config.message_rate_per_second,
            burst: config.message_burst,
        },
        action_rate: qiao_service::ratelimit::RateConfig {
            per_second: config.action_rate_per_second,
            burst: config.action_burst,
        },
        search_rate: qiao_service::ratelimit::RateConfig {
            per_second: config.search_rate_per_second,
            burst: config.search_burst,
        },
        files: qiao_service::files::FileConfig {
            max_upload_bytes: config.max_upload_mb << 20,
            quota_bytes: config.file_quota_mb << 20,
            unsent_expiry: Duration::from_secs(config.unsent_upload_expiry_hours * 3600),
            ..Default::default()
        },
        ..ServiceConfig::default()
    }
}

pub fn realtime_config(config: &Config) -> qiao_api::gateway::GatewayConfig {
    let mut r = qiao_api::gateway::GatewayConfig::default();
    r.dispatcher.queue = config.realtime_queue;
    r.resume = qiao_service::realtime::ResumeLimits {
        events: config.realtime_resume_window,
        bytes: config.realtime_resume_max_kib * 1024,
    };
    r.heartbeat = Duration::from_secs(config.realtime_heartbeat_secs);
    r.flush_interval = Duration::from_millis(config.realtime_flush_ms);
    r.dispatcher.presence.offline_grace = Duration::from_secs(config.presence_offline_grace_secs);
    r.dispatcher.presence.node_timeout = Duration::from_secs(config.presence_node_timeout_secs);
    // Snapshots (the node's heartbeat) come often enough that a live node is never timed out.
    r.dispatcher.presence_snapshot = (r.dispatcher.presence.node_timeout / 3).min(Duration::from_secs(5));
    r
}

/// Opens the store with an event hub and the services on top of it.
pub async fn open_services(config: &Config) -> Result<(Store, Services), Error> {
    let hub = qiao_bus::Hub::new(4096).with_recent(config.realtime_resume_memory_mb << 20);
    let sink = hub.clone();
    let store = Store::open(&store_config(config), std::sync::Arc::new(move |events| sink.publish(events))).await?;
    let blobs = if config.file_store.is_empty() || config.file_store.starts_with('/') {
        let dir = if config.file_store.is_empty() {
            config.data_dir.join("files")
        } else {
            PathBuf::from(&config.file_store)
        };
        qiao_media::BlobStore::local(&dir)
            .map_err(|e| Error::unavailable(e).with_message(format!("cannot use {} for files", dir.display())))?
    } else {
        qiao_media::BlobStore::s3(&config.file_store, Some(config.file_store_endpoint.as_str()))
            .map_err(|e| Error::unavailable(e).with_message(format!("cannot use {} for files", config.file_store)))?
    };
    let search_dir = config.data_dir.join("search");
    let (search, replaced) = qiao_search::SearchIndex::open_or_replace(&search_dir).map_err(|e| {
        Error::unavailable(e.to_string()).with_message(format!(
            "cannot open the search index in {} (is another Qiao using this data directory? {e})",
            search_dir.display()
        ))
    })?;
    if let Some(why) = replaced {
        tracing::warn!(error = %why, dir = %search_dir.display(), "the search index could not be read; rebuilding it from the messages");
    }
    let services = Services::new(store.clone(), hub, service_config(config), blobs, std::sync::Arc::new(search));
    Ok((store, services))
}

/// Holds an exclusive lock beside a SQLite database for as long as the server (or an admin
/// command) runs: two servers on one SQLite file would each believe they are the only writer,
/// and a command writing beside a running server would append events it never hears of.
pub struct SqliteLock(#[allow(dead_code)] std::fs::File);

/// The lock of the configured SQLite database (`None` on PostgreSQL), for an admin command:
/// refused, saying what to do instead, while a server runs on it.
pub fn lock_for_admin(config: &Config, instead: &str) -> Result<Option<SqliteLock>, Error> {
    match Engine::from_url(&config.database.0)? {
        Engine::Sqlite(path) => lock_sqlite(&path).map_err(|e| match e.code {
            qiao_domain::ErrorCode::Conflict => {
                e.with_message(format!("a Qiao server is running on the SQLite database {}: {instead}", path.display()))
            }
            _ => e,
        }),
        Engine::Postgres => Ok(None),
    }
}

fn lock_sqlite(db: &std::path::Path) -> Result<Option<SqliteLock>, Error> {
    let mut path = PathBuf::from(db);
    path.as_mut_os_string().push(".lock");
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::unavailable(e).with_message(format!("cannot create the data directory {}", dir.display()))
        })?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::unavailable(e).with_message(format!("cannot open {}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(SqliteLock(file))),
        Err(_) => Err(Error::new(qiao_domain::ErrorCode::Conflict).with_message(format!(
            "another Qiao server is already using the SQLite database {} (lock file {}). \
             Several nodes need PostgreSQL: --database postgres://…",
            db.display(),
            path.display()
        ))),
    }
}

/// Runs the server until `shutdown` resolves, printing the start-up banner.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    serve_with(config, listener, shutdown, |ready| print_banner(&ready)).await
}

/// Runs the server until `shutdown` resolves; `on_ready` is called once it accepts
/// connections.
pub async fn serve_with(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(Ready),
) -> Result<(), Error> {
    let _lock = match Engine::from_url(&config.database.0)? {
        Engine::Sqlite(path) => lock_sqlite(&path)?,
        Engine::Postgres => None,
    };
    let metrics = metrics_handle();
    let (store, services) = open_services(&config).await?;
    let mut cluster = Cluster::join(&config, &store, &services.hub).await?;
    let boot = services.bootstrap(&config.org_name).await?;
    // The bus subjects carry the database's identity, so that clusters sharing a NATS server
    // never hear each other.
    cluster.follow(&config, &store, &services.hub, &boot.org.root_department_id.to_string()).await?;

    let api_config = ApiConfig {
        max_body_bytes: config.max_body_bytes,
        cookie_secure: config.cookie_secure,
        trust_forwarded_for: config.trust_forwarded_for,
        request_timeout: config.request_timeout(),
        realtime: realtime_config(&config),
    };
    let state = AppState::new(services.clone(), api_config, metrics);
    let gateway = state.gateway.clone();
    let requests = state.clone();
    let app = qiao_api::router(state);
    match services.forget_claims_of_earlier_runs().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(claims = n, "forgot blob claims an earlier run left"),
        Err(e) => {
            tracing::warn!(error = %e, "forgetting an earlier run's blob claims failed (they expire by themselves)")
        }
    }
    let maintenance = tokio::spawn(maintain(services.clone()));
    let (stop_indexer, indexer_stopped) = tokio::sync::oneshot::channel();
    let indexer = tokio::spawn(qiao_service::search::run_indexer(
        store.clone(),
        services.hub.clone(),
        services.search.clone(),
        indexer_stopped,
    ));

    let addr = listener.local_addr().map_err(Error::unavailable)?;
    let public_url = config.public_url.clone();
    let setup_link = boot.setup_token.as_ref().map(|t| format!("{public_url}/setup#token={t}"));
    tracing::info!(%addr, database = %config.database, "qiao is ready");
    on_ready(Ready { addr, public_url, setup_link, setup_token: boot.setup_token });

    // WebSockets are not HTTP requests the server waits for: tell their clients to go and
    // come back (they resume) as soon as shutdown starts.
    let (draining, drain_started) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        let _ = draining.send(());
        gateway.shutdown().await;
    };
    // Requests still running when shutdown starts get a grace period, not forever: an upload
    // may take an hour, a download read slowly longer.
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let deadline = async move {
        if drain_started.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let send_buffer = config.socket_send_buffer_kib * 1024;
    let listener = axum::serve::ListenerExt::tap_io(listener, move |tcp: &mut tokio::net::TcpStream| {
        // Small frames should leave at once; a client that does not read should not make the
        // kernel hold megabytes for it.
        let _ = tcp.set_nodelay(true);
        if send_buffer > 0 {
            let _ = socket2::SockRef::from(&*tcp).set_send_buffer_size(send_buffer);
        }
    });
    let serving = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .into_future();
    let served = tokio::select! {
        served = serving => served,
        () = deadline => {
            tracing::warn!(grace_secs = grace.as_secs(), "requests still running after the shutdown grace; cutting them off");
            requests.cut_off_requests();
            Ok(())
        }
    };
    maintenance.abort();
    tracing::info!("shutting down: finishing queued writes");
    // The indexer commits what it has (what it misses, it catches up at the next start).
    let _ = stop_indexer.send(());
    let mut indexer = indexer;
    if tokio::time::timeout(Duration::from_secs(10), &mut indexer).await.is_err() {
        // Mid-rebuild, say: stopping it returns its read connection, which closing the store
        // waits for. It goes on from its last commit at the next start.
        tracing::warn!("the search indexer did not stop within 10 s; stopping it");
        indexer.abort();
    }
    cluster.leave().await;
    if tokio::time::timeout(STORE_CLOSE_GRACE, store.close()).await.is_err() {
        // The database is crash-safe: what was not acknowledged is retried by its clients.
        tracing::warn!("the store did not close within {} s; exiting anyway", STORE_CLOSE_GRACE.as_secs());
    }
    served.map_err(Error::unavailable)
}

/// This node's part in a cluster: on PostgreSQL (where other nodes may write), the task
/// that fills gaps in the event stream from the store, and the bus link when one is set.
struct Cluster {
    link: Option<qiao_bus::nats::Link>,
    stop_follower: Option<tokio::sync::oneshot::Sender<()>>,
    follower: Option<tokio::task::JoinHandle<()>>,
    /// This node's entry in the `nodes` table, kept fresh by `heartbeat`.
    registry: Option<(Store, String, tokio::task::JoinHandle<()>)>,
}

/// How long shutdown waits for queued writes to finish and connections to come back.
const STORE_CLOSE_GRACE: Duration = Duration::from_secs(30);

/// How often a node refreshes its registry entry, and how long one counts as live.
const NODE_HEARTBEAT: Duration = Duration::from_secs(5);
const NODE_LIVE: Duration = Duration::from_secs(20);

impl Cluster {
    /// Starts live delivery after what the store holds now (clients catch up from it) and, on
    /// PostgreSQL, registers the node (refusing to run beside nodes it could not work with).
    async fn join(config: &Config, store: &Store, hub: &qiao_bus::Hub) -> Result<Cluster, Error> {
        let head = qiao_store::events::head(&mut store.reader().await?).await?;
        hub.start_after(head);
        let mut cluster = Cluster { link: None, stop_follower: None, follower: None, registry: None };
        if store.dialect() == qiao_store::Dialect::Postgres {
            cluster.registry = Some(register(config, store, hub).await?);
        }
        Ok(cluster)
    }

    /// Joins the bus (when set) and starts the gap filler, which completes the stream from
    /// the store: on PostgreSQL whatever the bus did not bring, on SQLite whatever a commit
    /// that failed to report itself did not publish.
    async fn follow(&mut self, config: &Config, store: &Store, hub: &qiao_bus::Hub, db_id: &str) -> Result<(), Error> {
        if !config.bus.0.is_empty() {
            let prefix = format!("{}.{db_id}", config.bus_subject);
            let link = qiao_bus::nats::connect(hub, &config.bus.0, &prefix)
                .await
                .map_err(|e| Error::unavailable(e.clone()).with_message(e))?;
            tracing::info!(node = %hub.node(), bus = %config.bus, "joined the cluster's event bus");
            self.link = Some(link);
        }
        // Without a bus, other nodes' events still arrive, read from the store (slower, and
        // without presence or typing across nodes).
        let poll = if config.bus.0.is_empty() && store.dialect() == qiao_store::Dialect::Postgres {
            Duration::from_millis(100)
        } else {
            Duration::from_millis(250)
        };
        let (stop, stopped) = tokio::sync::oneshot::channel();
        self.follower =
            Some(tokio::spawn(qiao_service::cluster::follow_store(store.clone(), hub.clone(), poll, stopped)));
        self.stop_follower = Some(stop);
        Ok(())
    }

    async fn leave(mut self) {
        if let Some((store, id, heartbeat)) = self.registry.take() {
            heartbeat.abort();
            let stale = qiao_service::now() - qiao_service::millis(NODE_LIVE);
            let gone = store.write(move |tx| {
                let id = id.clone();
                Box::pin(async move { qiao_store::nodes::remove(tx, &id, stale).await })
            });
            if let Err(e) = gone.await {
                tracing::warn!(error = %e, "could not remove this node from the registry (it expires)");
            }
        }
        if let Some(stop) = self.stop_follower.take() {
            let _ = stop.send(());
        }
        if let Some(f) = self.follower.take() {
            let _ = f.await;
        }
        if let Some(link) = self.link.take() {
            link.close().await;
        }
    }
}

impl Drop for Cluster {
    /// A start that failed half way must not leave tasks behind (tests run several servers
    /// in one process).
    fn drop(&mut self) {
        if let Some((_, _, heartbeat)) = &self.registry {
            heartbeat.abort();
        }
        if let Some(f) = &self.follower {
            f.abort();
        }
    }
}

/// Checks that this node may join the nodes running on the database, registers it, and
/// keeps its entry fresh.
async fn register(
    config: &Config,
    store: &Store,
    hub: &qiao_bus::Hub,
) -> Result<(Store, String, tokio::task::JoinHandle<()>), Error> {
    let now = qiao_service::now();
    let host =
        std::fs::read_to_string("/proc/sys/kernel/hostname").map_or_else(|_| "unknown".into(), |h| h.trim().to_owned());
    let data_dir = std::path::absolute(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone());
    let me = qiao_store::nodes::Node {
        id: hub.node().to_string(),
        host,
        data_dir: data_dir.display().to_string(),
        bus: !config.bus.0.is_empty(),
        shared_files: !config.file_store.is_empty(),
        version: format!(
            "{}+schema{}",
            env!("CARGO_PKG_VERSION"),
            qiao_store::MIGRATION_VERSIONS.last().copied().unwrap_or_default()
        ),
        started_at: now,
        seen_at: now,
    };
    // A row in the way that names this node's data directory on another host is most likely
    // this node's own last run in another container, killed a moment ago: it goes stale
    // within NODE_LIVE, so wait for that rather than refuse (a live node keeps it fresh).
    let waiting_until = std::time::Instant::now() + NODE_LIVE + NODE_HEARTBEAT;
    loop {
        // Checked and registered in one writer transaction (serialised with every other
        // node's by the stream head), so two nodes starting at once cannot both pass.
        let entry = me.clone();
        let since = qiao_service::now() - qiao_service::millis(NODE_LIVE);
        let refused = store
            .write(move |tx| {
                let entry = entry.clone();
                Box::pin(async move {
                    let others = qiao_store::nodes::live(tx, since).await?;
                    if let Some(why) = qiao_service::cluster::refusal(&entry, &others) {
                        let mine = others.iter().all(|o| o.id == entry.id || o.data_dir == entry.data_dir);
                        return Ok(Some((why, mine)));
                    }
                    qiao_store::nodes::register(tx, &entry).await?;
                    Ok(None)
                })
            })
            .await?;
        match refused {
            None => break,
            Some((_, true)) if std::time::Instant::now() < waiting_until => {
                tracing::info!(
                    "a node with this data directory on another host was seen moments ago (this node's last run?); \
                     waiting for its entry to go stale"
                );
                tokio::time::sleep(NODE_HEARTBEAT).await;
            }
            Some((why, _)) => return Err(Error::new(qiao_domain::ErrorCode::Conflict).with_message(why)),
        }
    }
    let (s, id) = (store.clone(), me.id.clone());
    let heartbeat = tokio::spawn(async move {
        let mut every = tokio::time::interval(NODE_HEARTBEAT);
        every.tick().await;
        loop {
            every.tick().await;
            let mut entry = me.clone();
            entry.seen_at = qiao_service::now();
            let refreshed = s
                .write(move |tx| {
                    let entry = entry.clone();
                    Box::pin(async move {
                        if !qiao_store::nodes::heartbeat(tx, &entry.id, entry.seen_at).await? {
                            qiao_store::nodes::register(tx, &entry).await?;
                        }
                        Ok(())
                    })
                })
                .await;
            if let Err(e) = refreshed {
                tracing::warn!(error = %e, "refreshing this node's registry entry failed");
            }
        }
    });
    Ok((store.clone(), id, heartbeat))
}

/// Housekeeping every ten minutes, the first ten minutes after start (nodes restarting
/// together must not all sweep at once while clients reconnect).
async fn maintain(services: Services) {
    let period = Duration::from_secs(600);
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        every.tick().await;
        match services.sweep().await {
            Ok(s) => tracing::debug!(
                sessions = s.sessions,
                events = s.events,
                files = s.files,
                temporary = s.temporary,
                "housekeeping"
            ),
            Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
        }
    }
}

fn print_banner(ready: &Ready) {
    println!("Qiao {} is ready at {}", env!("CARGO_PKG_VERSION"), ready.public_url);
    if let Some(link) = &ready.setup_link {
        println!();
        println!("The organisation has no owner yet. Open this one-time link to create the first owner");
        println!("(valid for 24 hours; a new one is printed at each start until it is used):");
        println!();
        println!("    {link}");
        println!();
        if let Some(token) = &ready.setup_token {
            println!("Or from a script:");
            println!(
                "    curl -X POST {}/api/v1/setup -H 'content-type: application/json' \\\n      -d '{{\"token\":\"{token}\",\"username\":\"admin\",\"display_name\":\"Admin\",\"password\":\"<at least 8 characters>\",\"mode\":\"bearer\"}}'",
                ready.public_url
            );
            println!("    or: qiao admin create-owner --username admin --display-name Admin --password-stdin");
        }
    }
}
