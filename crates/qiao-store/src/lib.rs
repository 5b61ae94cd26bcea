//! The storage boundary. Everything Qiao keeps lives behind this crate, on SQLite (embedded,
//! the default) or PostgreSQL (cluster mode), with the same SQL text on both wherever the
//! dialects agree.
//!
//! * Reads take a pooled connection: [`Store::reader`].
//! * Every write goes through one writer task per process: [`Store::write`] queues an
//!   operation; the writer runs queued operations together in one transaction (group
//!   commit, one fsync for the batch), then publishes the batch's events, then answers
//!   each caller. An operation is therefore acknowledged only once it is durable, and
//!   nothing is published that was not committed.
//! * Each aggregate has a module of plain functions taking `&mut dyn Db` (a reader or the
//!   writer's [`Tx`]); the conformance suite in `tests/` runs every one on both engines.

mod conn;
mod migrate;
mod writer;

pub mod audit;
pub mod conversations;
pub mod departments;
pub mod drafts;
pub mod events;
pub mod files;
pub mod members;
pub mod messages;
pub mod nodes;
pub mod org;
pub mod presence;
pub mod sessions;
pub mod testing;
pub mod threads;
pub mod users;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qiao_domain::event::Event;
use qiao_domain::{Error, Result};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, PgPool, Postgres, Sqlite, SqlitePool};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use conn::{Conn, Db, Dialect, db_err};
pub use migrate::MIGRATION_VERSIONS;
pub use writer::{BoxFuture, Tx};

/// Receives each committed batch's events, in position order, right after the commit.
pub type EventSink = Arc<dyn Fn(Vec<Event>) + Send + Sync>;

/// An [`EventSink`] that drops everything (admin commands, tests).
pub fn discard_events() -> EventSink {
    Arc::new(|_| {})
}

/// How to reach the database.
#[derive(Clone)]
pub struct StoreConfig {
    /// `sqlite:<path>` or `postgres://user:password@host/db`.
    pub url: String,
    /// Size of the read pool.
    pub read_connections: u32,
    /// Most operations one group commit may hold.
    pub max_batch: usize,
    /// Least time between the starts of two commits while writes keep arriving during
    /// commits (zero: commit as soon as the previous one ends). See `writer::pace`.
    pub commit_gap: std::time::Duration,
    /// Queued write operations before callers wait (backpressure).
    pub queue: usize,
}

impl StoreConfig {
    pub fn new(url: impl Into<String>) -> Self {
        StoreConfig {
            url: url.into(),
            read_connections: 4,
            max_batch: 512,
            commit_gap: std::time::Duration::ZERO,
            queue: 8192,
        }
    }
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &redact_url(&self.url))
            .field("read_connections", &self.read_connections)
            .field("max_batch", &self.max_batch)
            .field("commit_gap", &self.commit_gap)
            .field("queue", &self.queue)
            .finish()
    }
}

/// A database URL with any password replaced by `***`, safe for logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(parts) => parts,
        None => return url.to_owned(),
    };
    let user = auth.split_once(':').map_or(auth, |(u, _)| u);
    let mut out = format!("{scheme}://{user}:***@{host}");
    // Passwords can also travel as a query parameter.
    if let Some(idx) = out.find("password=") {
        let end = out[idx..].find('&').map_or(out.len(), |e| idx + e);
        out.replace_range(idx..end, "password=***");
    }
    out
}

/// Which engine a URL names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite(PathBuf),
    Postgres,
}

impl Engine {
    pub fn from_url(url: &str) -> Result<Engine> {
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() || path == ":memory:" {
                return Err(Error::invalid(
                    "database",
                    "SQLite needs a file path (sqlite:/path/to/qiao.db); in-memory databases are not supported",
                ));
            }
            return Ok(Engine::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Engine::Postgres);
        }
        Err(Error::invalid("database", "must start with sqlite: or postgres://"))
    }
}

enum ReadPool {
    Sqlite(SqlitePool),
    Pg(PgPool),
}

struct Inner {
    read: ReadPool,
    writer: mpsc::Sender<writer::Msg>,
    writer_task: Mutex<Option<JoinHandle<()>>>,
    /// SQLite only: copies the WAL into the database off the writer's path.
    checkpointer: Mutex<Option<JoinHandle<()>>>,
    dialect: Dialect,
    read_connections: u32,
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// A pooled read connection.
pub struct Reader(ReaderConn);

enum ReaderConn {
    Sqlite(PoolConnection<Sqlite>),
    Pg(PoolConnection<Postgres>),
}

impl Db for Reader {
    fn conn(&mut self) -> Conn<'_> {
        match &mut self.0 {
            ReaderConn::Sqlite(c) => Conn::Sqlite(c),
            ReaderConn::Pg(c) => Conn::Pg(c),
        }
    }
}

/// A read transaction on a pooled read connection: every read through it sees the database
/// as of its first read (SQLite's WAL snapshot; PostgreSQL's `REPEATABLE READ`), so several
/// reads agree with each other. Dropped without [`Snapshot::end`], it is rolled back.
pub struct Snapshot(SnapshotTx);

enum SnapshotTx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Pg(sqlx::Transaction<'static, Postgres>),
}

impl Db for Snapshot {
    fn conn(&mut self) -> Conn<'_> {
        match &mut self.0 {
            SnapshotTx::Sqlite(t) => Conn::Sqlite(t),
            SnapshotTx::Pg(t) => Conn::Pg(t),
        }
    }
}

impl Snapshot {
    /// Ends the transaction (it wrote nothing).
    pub async fn end(self) -> Result<()> {
        match self.0 {
            SnapshotTx::Sqlite(t) => t.commit().await,
            SnapshotTx::Pg(t) => t.commit().await,
        }
        .map_err(db_err)
    }
}

impl Store {
    /// Connects, applies pending migrations and starts the writer.
    pub async fn open(config: &StoreConfig, sink: EventSink) -> Result<Store> {
        let engine = Engine::from_url(&config.url)?;
        let (read, writer_conn, checkpoints, dialect) = match engine {
            Engine::Sqlite(path) => {
                let (read, conn) = open_sqlite(&path, config.read_connections).await?;
                let checkpoints = sqlite_checkpointer_options(&path).connect().await.map_err(db_err)?;
                (ReadPool::Sqlite(read), writer::WriterConn::Sqlite(conn), Some(checkpoints), Dialect::Sqlite)
            }
            Engine::Postgres => {
                let (read, conn) = open_postgres(&config.url, config.read_connections).await?;
                (ReadPool::Pg(read), writer::WriterConn::Pg(conn), None, Dialect::Postgres)
            }
        };
        let reconnect = writer::Connector::new(&config.url)?;
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let task = tokio::spawn(
            writer::Writer::new(writer_conn, reconnect, sink, config.max_batch.max(1), config.commit_gap).run(rx),
        );
        let checkpointer = checkpoints.map(|conn| tokio::spawn(run_checkpoints(conn)));
        let store = Store {
            inner: Arc::new(Inner {
                read,
                writer: tx,
                writer_task: Mutex::new(Some(task)),
                checkpointer: Mutex::new(checkpointer),
                dialect,
                read_connections: config.read_connections.max(1),
            }),
        };
        if let Err(e) = store.refresh_search_keys().await {
            tracing::warn!(error = %e, "could not update the search keys; will try at the next start");
        }
        Ok(store)
    }

    /// Rewrites the search keys of people (`users::search_key`) and of conversations
    /// (`conversations::search_key`) that an older version built differently, or did not
    /// build; a read of both tables when none did.
    async fn refresh_search_keys(&self) -> Result<()> {
        /// A row whose key is stale: its id, the key stored and the key it gets.
        #[derive(Clone)]
        enum Stale {
            Person(qiao_domain::UserId, String, String),
            Conversation(qiao_domain::ConversationId, String, String),
        }
        let people = users::stale_search_keys(&mut self.reader().await?).await?;
        let conversations = conversations::stale_search_keys(&mut self.reader().await?).await?;
        if !people.is_empty() || !conversations.is_empty() {
            tracing::info!(people = people.len(), conversations = conversations.len(), "updating search keys");
        }
        let stale: Vec<Stale> = people
            .into_iter()
            .map(|(id, stored, key)| Stale::Person(id, stored, key))
            .chain(conversations.into_iter().map(|(id, stored, key)| Stale::Conversation(id, stored, key)))
            .collect();
        for chunk in stale.chunks(500) {
            let chunk = chunk.to_vec();
            self.write(move |tx| {
                let chunk = chunk.clone();
                Box::pin(async move {
                    for row in &chunk {
                        match row {
                            Stale::Person(id, stored, key) => users::set_search_key(tx, *id, key, Some(stored)).await?,
                            Stale::Conversation(id, stored, key) => {
                                conversations::set_search_key(tx, *id, key, Some(stored)).await?
                            }
                        }
                    }
                    Ok(())
                })
            })
            .await?;
        }
        Ok(())
    }

    /// How many read connections the pool holds (work that holds one for long takes turns
    /// below this, so requests still get one).
    pub fn read_connections(&self) -> u32 {
        self.inner.read_connections
    }

    pub fn dialect(&self) -> Dialect {
        self.inner.dialect
    }

    /// A read connection from the pool.
    pub async fn reader(&self) -> Result<Reader> {
        Ok(Reader(match &self.inner.read {
            ReadPool::Sqlite(p) => ReaderConn::Sqlite(p.acquire().await.map_err(db_err)?),
            ReadPool::Pg(p) => ReaderConn::Pg(p.acquire().await.map_err(db_err)?),
        }))
    }

    /// A read connection holding one snapshot of the database for several reads.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        Ok(Snapshot(match &self.inner.read {
            ReadPool::Sqlite(p) => SnapshotTx::Sqlite(p.begin().await.map_err(db_err)?),
            ReadPool::Pg(p) => {
                let mut tx = p.begin().await.map_err(db_err)?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                SnapshotTx::Pg(tx)
            }
        }))
    }

    /// Runs `op` in the writer's next group commit and returns its result once the batch is
    /// durable and its events are published.
    ///
    /// `op` may run more than once (if another operation in its batch fails, the batch is
    /// rolled back and replayed without it), so it must have no effect outside `tx` and
    /// should take owned copies of its inputs. Ids and timestamps belong outside `op`.
    pub async fn write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> Fn(&'t mut Tx) -> BoxFuture<'t, Result<T>> + Send + Sync + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = writer::Job::new(op, reply);
        self.inner
            .writer
            .send(writer::Msg::Job(job))
            .await
            .map_err(|_| Error::unavailable("the store is shutting down"))?;
        let out = answer.await.map_err(|_| Error::unavailable("the writer stopped"))??;
        out.downcast::<T>().map(|b| *b).map_err(|_| Error::internal("writer returned an unexpected type"))
    }

    /// Sends a plain message (no thread): stored at its conversation's next sequence number
    /// if the sender is still a member and the conversation open (`None` otherwise), with its
    /// `message.created` event. Consecutive sends share one statement in the group commit.
    pub async fn send(&self, draft: messages::NewMessage) -> Result<Option<qiao_domain::message::Message>> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .writer
            .send(writer::Msg::Job(writer::Job::Send { draft, reply }))
            .await
            .map_err(|_| Error::unavailable("the store is shutting down"))?;
        answer.await.map_err(|_| Error::unavailable("the writer stopped"))?
    }

    /// Waits until every write queued before this call has committed or failed: the writer
    /// takes its queue in order, and this is a write that changes nothing. (A write that
    /// failed on a unique key may have met a row its own batch had not committed yet.)
    pub async fn settled(&self) -> Result<()> {
        self.write(|_tx| Box::pin(async { Ok(()) })).await
    }

    /// Checks that the database answers and the writer is running.
    pub async fn ping(&self) -> Result<()> {
        if self.inner.writer.is_closed() {
            return Err(Error::unavailable("the writer stopped"));
        }
        // Answered within two seconds: a probe must see 503 while the database is away, not
        // wait out the pool's ten-second acquire timeout.
        let ping = async {
            let mut r = self.reader().await?;
            conn::exec!(&mut r, sqlx::query("SELECT 1"))?;
            Ok(())
        };
        tokio::time::timeout(std::time::Duration::from_secs(2), ping)
            .await
            .unwrap_or_else(|_| Err(Error::unavailable("the database did not answer within 2 s")))
    }

    /// Finishes queued writes, stops the writer and closes the pools. Later calls fail with
    /// `unavailable`.
    /// Write operations waiting in the writer's queue (not the batch being written).
    pub fn queued_writes(&self) -> usize {
        self.inner.writer.max_capacity() - self.inner.writer.capacity()
    }

    pub async fn close(&self) {
        let (done, wait) = oneshot::channel();
        if self.inner.writer.send(writer::Msg::Close(done)).await.is_ok() {
            let _ = wait.await;
        }
        let task = self.inner.writer_task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
        let checkpointer = self.inner.checkpointer.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = checkpointer {
            task.abort();
            let _ = task.await;
        }
        match &self.inner.read {
            ReadPool::Sqlite(p) => p.close().await,
            ReadPool::Pg(p) => p.close().await,
        }
    }
}

/// Page cache of the writer connection (KiB). Its cache stays valid across commits, so it keeps
/// the hot b-tree pages of every insert.
const WRITER_CACHE_KIB: u32 = 16_384;
/// Page cache of each read connection (KiB). In WAL mode a reader drops its whole cache when
/// another connection has committed, so under write load a large one is refilled, not reused;
/// and each reader caches its own copy of the same pages, so this is paid once per reader.
const READER_CACHE_KIB: u32 = 2_048;

fn sqlite_options(path: &Path, cache_kib: u32) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
        // Negative: a size in KiB rather than in pages.
        .pragma("cache_size", format!("-{cache_kib}"))
        .pragma("temp_store", "memory")
        // SQLite runs on its own thread and hands rows over a channel; with sqlx's default of
        // 50 slots, reading a resume's thousand events costs hundreds of thread hand-offs.
        .row_buffer_size(4096)
}

/// The writer's connection: WAL, and synchronous=FULL so a commit is on disk before it is
/// acknowledged. The WAL is copied into the database by [`run_checkpoints`] on another
/// connection; the writer checkpoints itself only if the log grows past
/// [`WRITER_AUTOCHECKPOINT_PAGES`] (the checkpointer fell behind).
pub(crate) fn sqlite_writer_options(path: &Path) -> SqliteConnectOptions {
    sqlite_options(path, WRITER_CACHE_KIB)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .pragma("wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES.to_string())
        .statement_cache_capacity(writer::WRITER_STATEMENTS)
}

/// WAL pages after which the writer checkpoints in its own commit (SQLite's default is 1,000:
/// under load a checkpoint — the log's pages written into the database file and that file
/// synced — every fraction of a second, each holding up every commit queued behind it).
const WRITER_AUTOCHECKPOINT_PAGES: u32 = 8_192;
/// How often the checkpointer copies the WAL into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// The checkpointer's connection. synchronous=FULL: a checkpoint syncs the log before copying
/// it and the database after, so the log is never reused before its pages are durable.
fn sqlite_checkpointer_options(path: &Path) -> SqliteConnectOptions {
    // A small page cache: it copies pages from the log, it does not read the tables.
    sqlite_options(path, 1_024).synchronous(SqliteSynchronous::Full)
}

/// Copies committed WAL pages into the database file while the writer goes on committing (a
/// passive checkpoint never blocks the writer or readers). Runs until the store closes.
async fn run_checkpoints(mut conn: sqlx::SqliteConnection) {
    let mut failing = false;
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&mut conn).await {
            Ok(_) => failing = false,
            // The writer's own checkpoints take over meanwhile; say so once per failing spell.
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
            }
            Err(_) => {}
        }
    }
}

async fn open_sqlite(path: &Path, readers: u32) -> Result<(SqlitePool, sqlx::SqliteConnection)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::unavailable(e).with_message(format!("cannot create the data directory {}", dir.display()))
        })?;
    }
    let writer_opts = sqlite_writer_options(path).create_if_missing(true);
    let cannot_open = |e: Error| e.with_message(format!("cannot open the database {}", path.display()));
    migrate::run_sqlite(writer_opts.clone()).await.map_err(cannot_open)?;
    let writer = writer_opts.connect().await.map_err(|e| cannot_open(Error::unavailable(e)))?;
    let read = SqlitePoolOptions::new()
        .max_connections(readers.max(1))
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(sqlite_options(path, READER_CACHE_KIB).read_only(true))
        .await
        .map_err(db_err)?;
    Ok((read, writer))
}

async fn open_postgres(url: &str, readers: u32) -> Result<(PgPool, sqlx::PgConnection)> {
    let opts = PgConnectOptions::from_str(url)
        .map_err(|e| Error::invalid("database", "is not a valid PostgreSQL URL").with_source(e.to_string()))?;
    let cannot_connect = |e: Error| e.with_message(format!("cannot connect to PostgreSQL at {}", redact_url(url)));
    migrate::run_postgres(opts.clone()).await.map_err(cannot_connect)?;
    let writer =
        writer::pg_writer_options(opts.clone()).connect().await.map_err(|e| cannot_connect(Error::unavailable(e)))?;
    let read = PgPoolOptions::new()
        .max_connections(readers.max(1))
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(opts)
        .await
        .map_err(db_err)?;
    Ok((read, writer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact_url("postgres://qiao:s3cret@db:5432/qiao"), "postgres://qiao:***@db:5432/qiao");
        assert_eq!(redact_url("postgres://qiao@db/qiao"), "postgres://qiao:***@db/qiao");
        assert_eq!(redact_url("sqlite:./qiao-data/qiao.db"), "sqlite:./qiao-data/qiao.db");
        assert!(!redact_url("postgres://u:p@h/db?password=zzz").contains("zzz"));
    }

    #[test]
    fn engines_from_urls() {
        assert_eq!(Engine::from_url("sqlite:./x.db").unwrap(), Engine::Sqlite("./x.db".into()));
        assert_eq!(Engine::from_url("sqlite:///tmp/x.db").unwrap(), Engine::Sqlite("/tmp/x.db".into()));
        assert_eq!(Engine::from_url("postgres://h/db").unwrap(), Engine::Postgres);
        assert!(Engine::from_url("sqlite::memory:").is_err());
        assert!(Engine::from_url("mysql://h/db").is_err());
    }

    async fn cache_kib(conn: &mut sqlx::SqliteConnection) -> i64 {
        let (size,): (i64,) = sqlx::query_as("PRAGMA cache_size").fetch_one(conn).await.unwrap();
        -size
    }

    #[tokio::test]
    async fn readers_keep_a_small_page_cache_and_the_writer_a_large_one() {
        let dir = tempfile::tempdir().unwrap();
        let (read, mut writer) = open_sqlite(&dir.path().join("q.db"), 3).await.unwrap();
        assert_eq!(cache_kib(&mut writer).await, i64::from(WRITER_CACHE_KIB));
        let mut reader = read.acquire().await.unwrap();
        assert_eq!(cache_kib(&mut reader).await, i64::from(READER_CACHE_KIB));
    }

    #[tokio::test]
    async fn the_checkpointer_moves_committed_pages_into_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let (_read, mut writer) = open_sqlite(&path, 1).await.unwrap();
        let (pages,): (i64,) = sqlx::query_as("PRAGMA wal_autocheckpoint").fetch_one(&mut writer).await.unwrap();
        assert_eq!(pages, i64::from(WRITER_AUTOCHECKPOINT_PAGES));
        sqlx::query("CREATE TABLE filler (b BLOB)").execute(&mut writer).await.unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        // ~1 MiB over 16 commits: far below the writer's own checkpoint threshold, so only the
        // checkpointer can bring it into the database file.
        for _ in 0..16 {
            sqlx::query("INSERT INTO filler VALUES (zeroblob(65536))").execute(&mut writer).await.unwrap();
        }
        let conn = sqlite_checkpointer_options(&path).connect().await.unwrap();
        let task = tokio::spawn(run_checkpoints(conn));
        let mut grown = false;
        for _ in 0..100 {
            if std::fs::metadata(&path).unwrap().len() >= before + (1 << 20) {
                grown = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        task.abort();
        assert!(grown, "the database file did not receive the WAL's pages");
    }
}
