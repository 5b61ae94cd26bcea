//! The single writer: group commit with per-operation failure isolation.
//!
//! Operations queue on a channel. The writer takes everything queued (up to `max_batch`),
//! opens one transaction, locks the stream head, runs the operations in order, and commits
//! once. If an operation fails, the transaction is rolled back, that operation alone gets
//! its error, and the batch is replayed without it; the others never see the failure. After
//! the commit the batch's events go to the sink in position order, and only then are the
//! callers answered.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Instant;

use qiao_domain::event::{Audience, Event, EventData, encode_frame};
use qiao_domain::{Error, Millis, Result};
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, PgConnection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use crate::conn::{Conn, Db, exec, q};
use crate::{Engine, EventSink};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

type Output = Box<dyn Any + Send>;
type Op = Box<dyn for<'t> Fn(&'t mut Tx) -> BoxFuture<'t, Result<Output>> + Send + Sync>;

pub(crate) struct Job {
    op: Op,
    reply: oneshot::Sender<Result<Output>>,
}

impl Job {
    pub(crate) fn new<T, F>(op: F, reply: oneshot::Sender<Result<Output>>) -> Job
    where
        T: Send + 'static,
        F: for<'t> Fn(&'t mut Tx) -> BoxFuture<'t, Result<T>> + Send + Sync + 'static,
    {
        Job { op: erase(op), reply }
    }
}

fn erase<T, F>(op: F) -> Op
where
    T: Send + 'static,
    F: for<'t> Fn(&'t mut Tx) -> BoxFuture<'t, Result<T>> + Send + Sync + 'static,
{
    Box::new(move |tx: &mut Tx| {
        let fut = op(tx);
        Box::pin(async move { fut.await.map(|v| Box::new(v) as Output) })
    })
}

pub(crate) enum Msg {
    Job(Job),
    Close(oneshot::Sender<()>),
}

pub(crate) enum WriterConn {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

/// Reopens the writer connection after it breaks (PostgreSQL restarts, network blips).
pub(crate) enum Connector {
    Sqlite(SqliteConnectOptions),
    Pg(PgConnectOptions),
}

impl Connector {
    pub(crate) fn new(url: &str) -> Result<Connector> {
        Ok(match Engine::from_url(url)? {
            Engine::Sqlite(path) => Connector::Sqlite(
                crate::sqlite_options(&path).journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Full),
            ),
            Engine::Postgres => Connector::Pg(
                PgConnectOptions::from_str(url)
                    .map_err(|e| Error::invalid("database", "is not a valid PostgreSQL URL").with_source(e))?,
            ),
        })
    }

    async fn connect(&self) -> Result<WriterConn> {
        Ok(match self {
            Connector::Sqlite(o) => WriterConn::Sqlite(o.connect().await.map_err(Error::unavailable)?),
            Connector::Pg(o) => WriterConn::Pg(o.connect().await.map_err(Error::unavailable)?),
        })
    }
}

/// The writer's transaction, handed to each operation of a batch.
pub struct Tx {
    conn: WriterConn,
    /// Stream position before this transaction.
    base_pos: i64,
    /// Position of the last event appended so far.
    pos: i64,
    events: Vec<Event>,
}

impl Db for Tx {
    fn conn(&mut self) -> Conn<'_> {
        match &mut self.conn {
            WriterConn::Sqlite(c) => Conn::Sqlite(c),
            WriterConn::Pg(c) => Conn::Pg(c),
        }
    }
}

impl Tx {
    /// Records a committed-to-be event at the next stream position and returns that
    /// position. The event reaches subscribers only if the transaction commits.
    pub async fn append_event(
        &mut self,
        audience: Audience,
        seq: Option<i64>,
        data: &EventData,
        at: Millis,
    ) -> Result<i64> {
        let pos = self.pos + 1;
        let frame = encode_frame(pos, at, &audience, seq, data);
        let (conversation_id, user_id) = match audience {
            Audience::Conversation(c) => (Some(c.0), None),
            Audience::User(u) => (None, Some(u.0)),
            Audience::Staff | Audience::Everyone => (None, None),
        };
        exec!(
            self,
            sqlx::query(
                "INSERT INTO events (pos, audience, conversation_id, user_id, seq, kind, frame, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            )
            .bind(pos)
            .bind(audience.kind())
            .bind(conversation_id)
            .bind(user_id)
            .bind(seq)
            .bind(data.name())
            .bind(frame.as_str())
            .bind(at)
        )?;
        self.pos = pos;
        self.events.push(Event { pos, audience, seq, frame: frame.into() });
        Ok(pos)
    }

    async fn begin(mut conn: WriterConn) -> std::result::Result<Tx, (WriterConn, Error)> {
        let begin = match &mut conn {
            WriterConn::Sqlite(c) => sqlx::raw_sql("BEGIN IMMEDIATE").execute(c).await.map(drop),
            WriterConn::Pg(c) => sqlx::raw_sql("BEGIN").execute(c).await.map(drop),
        };
        if let Err(e) = begin {
            return Err((conn, Error::unavailable(e)));
        }
        let mut tx = Tx { conn, base_pos: 0, pos: 0, events: Vec::new() };
        // Locking the head row first serialises writer transactions across nodes, which
        // makes positions follow commit order.
        match q!(
            &mut tx,
            fetch_one,
            sqlx::query_as::<_, (i64,)>("UPDATE stream_head SET pos = pos WHERE id = 1 RETURNING pos")
        ) {
            Ok((pos,)) => {
                tx.base_pos = pos;
                tx.pos = pos;
                Ok(tx)
            }
            Err(e) => match tx.rollback().await {
                Ok(conn) => Err((conn, e)),
                Err(conn) => Err((conn, e)),
            },
        }
    }

    async fn commit(mut self) -> std::result::Result<(WriterConn, Vec<Event>), (WriterConn, Error)> {
        if self.pos != self.base_pos {
            let pos = self.pos;
            if let Err(e) = exec!(&mut self, sqlx::query("UPDATE stream_head SET pos = $1 WHERE id = 1").bind(pos)) {
                return match self.rollback().await {
                    Ok(conn) | Err(conn) => Err((conn, e)),
                };
            }
        }
        let result = match &mut self.conn {
            WriterConn::Sqlite(c) => sqlx::raw_sql("COMMIT").execute(c).await.map(drop),
            WriterConn::Pg(c) => sqlx::raw_sql("COMMIT").execute(c).await.map(drop),
        };
        match result {
            Ok(_) => Ok((self.conn, self.events)),
            Err(e) => {
                let e = crate::db_err(e);
                match self.rollback().await {
                    Ok(conn) | Err(conn) => Err((conn, e)),
                }
            }
        }
    }

    /// Rolls back; `Err` carries a connection that should be replaced.
    async fn rollback(mut self) -> std::result::Result<WriterConn, WriterConn> {
        let result = match &mut self.conn {
            WriterConn::Sqlite(c) => sqlx::raw_sql("ROLLBACK").execute(c).await.map(drop),
            WriterConn::Pg(c) => sqlx::raw_sql("ROLLBACK").execute(c).await.map(drop),
        };
        match result {
            Ok(_) => Ok(self.conn),
            Err(e) => {
                tracing::warn!(error = %e, "rollback failed; reconnecting the writer");
                Err(self.conn)
            }
        }
    }
}

pub(crate) struct Writer {
    conn: Option<WriterConn>,
    connector: Connector,
    sink: EventSink,
    max_batch: usize,
}

impl Writer {
    pub(crate) fn new(conn: WriterConn, connector: Connector, sink: EventSink, max_batch: usize) -> Writer {
        Writer { conn: Some(conn), connector, sink, max_batch }
    }

    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut closing = None;
        while closing.is_none() {
            let Some(first) = rx.recv().await else { break };
            let mut jobs = Vec::new();
            match first {
                Msg::Job(j) => jobs.push(j),
                Msg::Close(done) => closing = Some(done),
            }
            while closing.is_none() && jobs.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(Msg::Job(j)) => jobs.push(j),
                    Ok(Msg::Close(done)) => closing = Some(done),
                    Err(_) => break,
                }
            }
            if !jobs.is_empty() {
                self.run_batch(jobs).await;
            }
        }
        rx.close();
        while let Ok(msg) = rx.try_recv() {
            match msg {
                Msg::Job(j) => {
                    let _ = j.reply.send(Err(Error::unavailable("the store is shutting down")));
                }
                Msg::Close(done) => {
                    let _ = done.send(());
                }
            }
        }
        if let Some(conn) = self.conn.take() {
            let _ = match conn {
                WriterConn::Sqlite(c) => c.close().await,
                WriterConn::Pg(c) => c.close().await,
            };
        }
        if let Some(done) = closing {
            let _ = done.send(());
        }
    }

    async fn connection(&mut self) -> Result<WriterConn> {
        match self.conn.take() {
            Some(c) => Ok(c),
            None => self.connector.connect().await,
        }
    }

    async fn run_batch(&mut self, mut jobs: Vec<Job>) {
        let started = Instant::now();
        metrics::histogram!("qiao_store_batch_ops").record(jobs.len() as f64);
        while !jobs.is_empty() {
            let conn = match self.connection().await {
                Ok(c) => c,
                Err(e) => return fail_all(jobs, &e),
            };
            let mut tx = match Tx::begin(conn).await {
                Ok(tx) => tx,
                Err((_broken, e)) => {
                    // Drop the connection; the next batch reconnects.
                    return fail_all(jobs, &e);
                }
            };
            let mut outputs = Vec::with_capacity(jobs.len());
            let mut failed = None;
            for (i, job) in jobs.iter().enumerate() {
                match (job.op)(&mut tx).await {
                    Ok(out) => outputs.push(out),
                    Err(e) => {
                        failed = Some((i, e));
                        break;
                    }
                }
            }
            match failed {
                None => match tx.commit().await {
                    Ok((conn, events)) => {
                        self.conn = Some(conn);
                        if !events.is_empty() {
                            (self.sink)(events);
                        }
                        for (job, out) in jobs.into_iter().zip(outputs) {
                            let _ = job.reply.send(Ok(out));
                        }
                        metrics::histogram!("qiao_store_commit_seconds").record(started.elapsed().as_secs_f64());
                        return;
                    }
                    Err((conn, e)) => {
                        tracing::error!(error = %e, "group commit failed");
                        self.conn = Some(conn);
                        return fail_all(jobs, &e);
                    }
                },
                Some((i, e)) => {
                    match tx.rollback().await {
                        Ok(conn) => self.conn = Some(conn),
                        Err(_broken) => {}
                    }
                    let job = jobs.remove(i);
                    if e.code == qiao_domain::ErrorCode::Internal {
                        tracing::error!(error = %e, "write operation failed");
                    }
                    let _ = job.reply.send(Err(e));
                    metrics::counter!("qiao_store_batch_replays_total").increment(1);
                }
            }
        }
    }
}

fn fail_all(jobs: Vec<Job>, e: &Error) {
    metrics::counter!("qiao_store_failed_batches_total").increment(1);
    for job in jobs {
        let _ = job
            .reply
            .send(Err(Error::unavailable(e.to_string()).with_message("The database is unavailable; retry shortly.")));
    }
}
