//! Configuration: one typed struct. Each setting comes from (highest precedence first) a
//! command-line flag, a `QIAO_*` environment variable, the TOML file given by `--config`,
//! or its default. `qiao serve --help` lists every setting; `qiao serve --print-config`
//! shows the effective values (secrets redacted).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A value that must not be printed (database URLs carry passwords).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&qiao_store::redact_url(&self.0))
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&qiao_store::redact_url(&self.0))
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

/// Declares every setting once: the layer struct (all optional, parsed from flags, env and
/// the file), the resolved struct, and the merge with defaults.
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident : $ty:ty = $default:expr, shown as $shown:literal, env = $env:literal;
    )*) => {
        /// Settings as given by one source; unset fields fall through to the next.
        #[derive(Clone, Debug, Default, Deserialize, clap::Args)]
        #[serde(deny_unknown_fields)]
        pub struct Layer {
            $(
                $(#[doc = $doc])*
                #[arg(long, env = $env, long_help = concat!($($doc, "\n",)* "\nDefault: ", $shown, "."))]
                #[serde(default)]
                pub $name: Option<$ty>,
            )*
        }

        /// The effective configuration.
        #[derive(Clone, Debug, Serialize)]
        pub struct Config {
            $( $(#[doc = $doc])* pub $name: $ty, )*
        }

        impl Layer {
            /// `self` where set, else `lower`.
            pub fn over(self, lower: Layer) -> Layer {
                Layer { $( $name: self.$name.or(lower.$name), )* }
            }

            fn resolve_defaults(self) -> Config {
                Config { $( $name: self.$name.unwrap_or_else(|| $default), )* }
            }
        }
    };
}

settings! {
    /// Address to listen on.
    listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8080)), shown as "127.0.0.1:8080", env = "QIAO_LISTEN";
    /// Directory for the SQLite database and local files.
    data_dir: PathBuf = PathBuf::from("./qiao-data"), shown as "./qiao-data", env = "QIAO_DATA_DIR";
    /// Database URL: `sqlite:<path>` (default: `<data-dir>/qiao.db`) or
    /// `postgres://user:password@host/db` for cluster mode.
    database: Secret = Secret(String::new()), shown as "sqlite:<data-dir>/qiao.db", env = "QIAO_DATABASE";
    /// The URL people use to reach Qiao (for links Qiao prints); default `http://<listen>`.
    public_url: String = String::new(), shown as "http://<listen>", env = "QIAO_PUBLIC_URL";
    /// Name given to the organisation when it is first created.
    org_name: String = "Qiao".to_owned(), shown as "Qiao", env = "QIAO_ORG_NAME";
    /// Log format.
    log_format: LogFormat = LogFormat::Text, shown as "text", env = "QIAO_LOG_FORMAT";
    /// Log filter, e.g. `info` or `qiao=debug,info`.
    log_level: String = "info".to_owned(), shown as "info", env = "QIAO_LOG_LEVEL";
    /// Read connections to the database.
    db_read_connections: u32 = 8, shown as "8", env = "QIAO_DB_READ_CONNECTIONS";
    /// Most write operations committed together in one transaction.
    db_max_batch: usize = 512, shown as "512", env = "QIAO_DB_MAX_BATCH";
    /// Least milliseconds between the starts of two commits while writes keep arriving (0:
    /// none). Each commit costs an fsync and a fixed amount of writing, so under load fewer,
    /// larger commits cost far less per write; a write with nothing else queued never waits.
    db_commit_gap_ms: u64 = 1, shown as "1", env = "QIAO_DB_COMMIT_GAP_MS";
    /// Largest accepted JSON request body, in bytes.
    max_body_bytes: usize = 1024 * 1024, shown as "1048576", env = "QIAO_MAX_BODY_BYTES";
    /// Seconds before a request is abandoned with `unavailable`.
    request_timeout_secs: u64 = 30, shown as "30", env = "QIAO_REQUEST_TIMEOUT_SECS";
    /// Seconds requests still running (uploads, slow downloads) may take to finish once
    /// shutdown starts; then they are cut off and the server stops.
    shutdown_grace_secs: u64 = 20, shown as "20", env = "QIAO_SHUTDOWN_GRACE_SECS";
    /// Days a session lasts without being used.
    session_idle_days: u32 = 30, shown as "30", env = "QIAO_SESSION_IDLE_DAYS";
    /// Most sessions (devices) per person; the least recently used ends beyond it.
    max_sessions_per_user: usize = 50, shown as "50", env = "QIAO_MAX_SESSIONS_PER_USER";
    /// Argon2id memory per password hash, in KiB (OWASP: 19456).
    password_memory_kib: u32 = 19 * 1024, shown as "19456", env = "QIAO_PASSWORD_MEMORY_KIB";
    /// Argon2id passes per password hash (OWASP: 2).
    password_iterations: u32 = 2, shown as "2", env = "QIAO_PASSWORD_ITERATIONS";
    /// Password hashes computed at once (default: the number of CPUs).
    password_concurrency: usize = std::thread::available_parallelism().map_or(1, |n| n.get()), shown as "the number of CPUs", env = "QIAO_PASSWORD_CONCURRENCY";
    /// Failed sign-ins for one account within the lockout window before it is locked.
    login_max_failures_per_account: u32 = 5, shown as "5", env = "QIAO_LOGIN_MAX_FAILURES_PER_ACCOUNT";
    /// Failed sign-ins from one address within the lockout window before it is locked.
    login_max_failures_per_address: u32 = 20, shown as "20", env = "QIAO_LOGIN_MAX_FAILURES_PER_ADDRESS";
    /// Minutes of the failure window and of the lockout.
    login_lockout_minutes: u64 = 15, shown as "15", env = "QIAO_LOGIN_LOCKOUT_MINUTES";
    /// Trust `X-Forwarded-For` for client addresses (only behind your own reverse proxy).
    trust_forwarded_for: bool = false, shown as "false", env = "QIAO_TRUST_FORWARDED_FOR";
    /// Mark cookies `Secure` (default: when the public URL is https).
    cookie_secure: bool = false, shown as "true when public_url is https", env = "QIAO_COOKIE_SECURE";
    /// Messages and reactions one person may send per second, sustained.
    message_rate_per_second: f64 = 20.0, shown as "20", env = "QIAO_MESSAGE_RATE_PER_SECOND";
    /// Messages and reactions one person may send in a burst.
    message_burst: f64 = 100.0, shown as "100", env = "QIAO_MESSAGE_BURST";
    /// Other writes one person may repeat per second, sustained: creating channels, DMs and
    /// group DMs (organisation admins are exempt), uploading files, editing their profile,
    /// following threads, marking unread.
    action_rate_per_second: f64 = 5.0, shown as "5", env = "QIAO_ACTION_RATE_PER_SECOND";
    /// Those writes one person may make in a burst.
    action_burst: f64 = 100.0, shown as "100", env = "QIAO_ACTION_BURST";
    /// Searches one person may run per second, sustained.
    search_rate_per_second: f64 = 50.0, shown as "50", env = "QIAO_SEARCH_RATE_PER_SECOND";
    /// Searches one person may run in a burst.
    search_burst: f64 = 1000.0, shown as "1000", env = "QIAO_SEARCH_BURST";
    /// Kernel send buffer per connection, in KiB (bounds memory held for clients that read
    /// slowly; 0 leaves the kernel's automatic sizing).
    socket_send_buffer_kib: usize = 1024, shown as "1024", env = "QIAO_SOCKET_SEND_BUFFER_KIB";
    /// Frames queued for one realtime connection before it is dropped as too slow (it resumes).
    realtime_queue: usize = 1024, shown as "1024", env = "QIAO_REALTIME_QUEUE";
    /// Most events a reconnecting client is sent to catch up; further behind, it reloads.
    realtime_resume_window: i64 = 10_000, shown as "10000", env = "QIAO_REALTIME_RESUME_WINDOW";
    /// KiB of missed events a reconnecting client is sent at most (held until it has read
    /// them); more, and it reloads.
    realtime_resume_max_kib: usize = 16_384, shown as "16384", env = "QIAO_REALTIME_RESUME_MAX_KIB";
    /// MiB of the latest committed events kept in memory, so that clients reconnecting after
    /// a short gap catch up without reading the event log (0: always read the log).
    realtime_resume_memory_mb: usize = 32, shown as "32", env = "QIAO_REALTIME_RESUME_MEMORY_MB";
    /// Seconds between the server's pings on realtime connections (three silent ones close it).
    realtime_heartbeat_secs: u64 = 25, shown as "25", env = "QIAO_REALTIME_HEARTBEAT_SECS";
    /// Milliseconds a busy realtime connection waits between writes, so frames arriving
    /// meanwhile leave in one write (a connection receiving rarely is never delayed; 0 writes
    /// every frame at once).
    realtime_flush_ms: u64 = 4, shown as "4", env = "QIAO_REALTIME_FLUSH_MS";
    /// Seconds a person's last device may be gone before they show as offline (a page reload
    /// does not flicker).
    presence_offline_grace_secs: u64 = 10, shown as "10", env = "QIAO_PRESENCE_OFFLINE_GRACE_SECS";
    /// Cluster mode: seconds another node may stay silent on the bus before the people
    /// connected to it count as gone (it died).
    presence_node_timeout_secs: u64 = 15, shown as "15", env = "QIAO_PRESENCE_NODE_TIMEOUT_SECS";
    /// Days of committed events kept for clients resuming after a disconnect.
    event_retention_days: u32 = 7, shown as "7", env = "QIAO_EVENT_RETENTION_DAYS";
    /// Largest file one upload may be, in MiB.
    max_upload_mb: u64 = 100, shown as "100", env = "QIAO_MAX_UPLOAD_MB";
    /// Storage each person's files may take, in MiB.
    file_quota_mb: u64 = 10_240, shown as "10240", env = "QIAO_FILE_QUOTA_MB";
    /// Hours an uploaded file may wait to be sent in a message; housekeeping then deletes it
    /// (it no longer counts toward its uploader's quota).
    unsent_upload_expiry_hours: u64 = 24, shown as "24", env = "QIAO_UNSENT_UPLOAD_EXPIRY_HOURS";
    /// Where file bytes are kept: empty for `<data_dir>/files`, an absolute directory path
    /// (in a cluster: one every node mounts), or `s3://bucket[/prefix]` for S3-compatible
    /// storage (credentials and region from the `AWS_*` environment variables).
    file_store: String = String::new(), shown as "<data_dir>/files", env = "QIAO_FILE_STORE";
    /// For `file_store = s3://…` on a service other than AWS (MinIO, Ceph, …): its URL.
    file_store_endpoint: String = String::new(), shown as "AWS", env = "QIAO_FILE_STORE_ENDPOINT";
    /// Cluster mode: the NATS server(s) every node shares, e.g. `nats://10.0.0.5:4222`
    /// (comma-separated for a NATS cluster). Empty on a single node. Needs PostgreSQL.
    bus: Secret = Secret(String::new()), shown as "none (single node)", env = "QIAO_BUS";
    /// Subject prefix on the bus (subjects also carry the database's identity, so clusters
    /// sharing one NATS server stay apart).
    bus_subject: String = "qiao".to_owned(), shown as "qiao", env = "QIAO_BUS_SUBJECT";
}

/// A configuration problem, reported before anything starts.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Layer {
    /// Reads a TOML file of settings.
    pub fn from_file(path: &Path) -> Result<Layer, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read the configuration file {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| ConfigError(format!("invalid configuration file {}: {e}", path.display())))
    }

    /// Applies defaults (including those derived from other settings) and checks values.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let cookie_secure_set = self.cookie_secure.is_some();
        let mut c = self.resolve_defaults();
        if c.database.0.is_empty() {
            c.database = Secret(format!("sqlite:{}", c.data_dir.join("qiao.db").display()));
        }
        let engine =
            qiao_store::Engine::from_url(&c.database.0).map_err(|e| ConfigError(format!("database: {}", e.message)))?;
        if !c.bus.0.is_empty() && engine != qiao_store::Engine::Postgres {
            return Err(ConfigError(
                "bus is set (cluster mode) but the database is SQLite, which only one node can use: \
                 give every node the same database = postgres://…, or remove bus for a single node"
                    .into(),
            ));
        }
        if !c.bus.0.is_empty()
            && !c.bus.0.split(',').all(|u| u.trim().starts_with("nats://") || u.trim().starts_with("tls://"))
        {
            return Err(ConfigError("bus must be nats://host:port (several separated by commas)".into()));
        }
        if c.public_url.is_empty() {
            c.public_url = format!("http://{}", c.listen);
        }
        c.public_url = c.public_url.trim_end_matches('/').to_owned();
        if !(c.public_url.starts_with("http://") || c.public_url.starts_with("https://")) {
            return Err(ConfigError("public_url must start with http:// or https://".into()));
        }
        if !cookie_secure_set {
            c.cookie_secure = c.public_url.starts_with("https://");
        }
        let checks: [(bool, &str); 13] = [
            (c.db_read_connections >= 1, "db_read_connections must be at least 1"),
            (
                c.db_max_batch >= 1 && c.db_commit_gap_ms <= 100,
                "db_max_batch must be at least 1 and db_commit_gap_ms at most 100",
            ),
            (c.max_body_bytes >= 1024, "max_body_bytes must be at least 1024"),
            (
                c.request_timeout_secs >= 1 && c.shutdown_grace_secs >= 1,
                "request_timeout_secs and shutdown_grace_secs must be at least 1",
            ),
            (c.session_idle_days >= 1, "session_idle_days must be at least 1"),
            (c.password_memory_kib >= 8, "password_memory_kib must be at least 8"),
            (
                c.password_iterations >= 1 && c.password_concurrency >= 1,
                "password_iterations and password_concurrency must be at least 1",
            ),
            (
                c.max_sessions_per_user >= 1 && c.event_retention_days >= 1,
                "max_sessions_per_user and event_retention_days must be at least 1",
            ),
            (
                c.max_upload_mb >= 1
                    && c.max_upload_mb <= 1 << 20
                    && c.file_quota_mb >= 1
                    && (1..=24 * 365).contains(&c.unsent_upload_expiry_hours)
                    && (c.file_store.is_empty() || c.file_store.starts_with("s3://") || c.file_store.starts_with('/')),
                "max_upload_mb must be between 1 and 1048576, file_quota_mb at least 1, unsent_upload_expiry_hours \
                 between 1 and 8760, file_store empty, an absolute directory or s3://bucket",
            ),
            (
                c.realtime_queue >= 16
                    && c.presence_node_timeout_secs >= 2
                    && c.realtime_resume_window >= 1
                    && (1..=1 << 20).contains(&c.realtime_resume_max_kib)
                    && c.realtime_heartbeat_secs >= 1
                    && c.realtime_flush_ms <= 1000
                    && c.realtime_resume_memory_mb <= 1 << 20,
                "realtime_queue must be at least 16, realtime_resume_window and realtime_heartbeat_secs at least 1, \
                 realtime_resume_max_kib between 1 and 1048576, \
                 realtime_flush_ms at most 1000, realtime_resume_memory_mb at most 1048576, \
                 presence_node_timeout_secs at least 2",
            ),
            (
                c.message_rate_per_second > 0.0 && c.message_burst >= 1.0,
                "message_rate_per_second must be positive and message_burst at least 1",
            ),
            (
                c.action_rate_per_second > 0.0 && c.action_burst >= 1.0,
                "action_rate_per_second must be positive and action_burst at least 1",
            ),
            (
                c.search_rate_per_second > 0.0 && c.search_burst >= 1.0,
                "search_rate_per_second must be positive and search_burst at least 1",
            ),
        ];
        if let Some((_, msg)) = checks.iter().find(|(ok, _)| !ok) {
            return Err(ConfigError((*msg).into()));
        }
        Ok(c)
    }
}

impl Config {
    /// Defaults only (tests adjust fields from here).
    pub fn defaults() -> Config {
        Layer::default().resolve().unwrap_or_else(|e| panic!("the defaults are invalid: {e}"))
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// The effective settings as TOML (the database password redacted).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_ones() {
        let c = Config::defaults();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("./qiao-data"));
        assert_eq!(c.database.0, "sqlite:./qiao-data/qiao.db");
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
        assert!(!c.cookie_secure);
    }

    #[test]
    fn layers_take_precedence_in_order() {
        let file: Layer =
            toml::from_str("listen = \"127.0.0.1:9000\"\norg_name = \"From file\"\nlog_level = \"debug\"").unwrap();
        let flags = Layer { org_name: Some("From flags".into()), ..Layer::default() };
        let c = flags.over(file).resolve().unwrap();
        assert_eq!(c.org_name, "From flags");
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.public_url, "http://127.0.0.1:9000");
    }

    #[test]
    fn unknown_and_invalid_settings_are_refused() {
        assert!(toml::from_str::<Layer>("lisen = \"x\"").is_err());
        let bad = Layer { database: Some(Secret("mysql://x".into())), ..Layer::default() };
        assert!(bad.resolve().is_err());
        let bad = Layer { public_url: Some("ftp://x".into()), ..Layer::default() };
        assert!(bad.resolve().is_err());
        let bad = Layer { db_read_connections: Some(0), ..Layer::default() };
        assert!(bad.resolve().is_err());
        let sqlite_cluster = Layer { bus: Some(Secret("nats://127.0.0.1:4222".into())), ..Layer::default() };
        assert!(sqlite_cluster.resolve().unwrap_err().0.contains("SQLite"));
        let pg = Some(Secret("postgres://db/qiao".into()));
        let bad_bus = Layer { bus: Some(Secret("http://x".into())), database: pg.clone(), ..Layer::default() };
        assert!(bad_bus.resolve().is_err());
        let ok = Layer { bus: Some(Secret("nats://a:4222, nats://b:4222".into())), database: pg, ..Layer::default() };
        assert!(ok.resolve().is_ok());
        let relative = Layer { file_store: Some("files".into()), ..Layer::default() };
        assert!(relative.resolve().is_err());
    }

    #[test]
    fn https_public_urls_make_cookies_secure() {
        let c = Layer { public_url: Some("https://chat.example.com/".into()), ..Layer::default() }.resolve().unwrap();
        assert!(c.cookie_secure);
        assert_eq!(c.public_url, "https://chat.example.com");
    }

    #[test]
    fn secrets_are_redacted_everywhere() {
        let c = Layer { database: Some(Secret("postgres://qiao:hunter2@db/qiao".into())), ..Layer::default() }
            .resolve()
            .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!c.to_toml().contains("hunter2"));
    }
}
