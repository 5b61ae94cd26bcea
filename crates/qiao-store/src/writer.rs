//! The single writer: group commit with per-operation failure isolation.
//!
//! Operations queue on a channel. The writer takes everything queued (up to `max_batch`),
//! opens one transaction, locks the stream head, runs the operations in order, and commits
//! once. If an operation fails, the transaction is rolled back, that operation alone gets
//! its error, and the batch is replayed without it; the others never see the failure. After
//! the commit the batch's events go to the sink in position order, and only then are the
//! callers answered.
//!
//! A commit costs about the same whatever it holds (an fsync, and the ~20 pages it touches
//! written to the WAL whole), so under steady load the writer lets a batch gather: while
//! writes arrive during commits, commits start at least `commit_gap` apart ([`pace`]; tokio's
//! timer rounds that up to the next millisecond). A lone caller, whose next write can only
//! come after its answer, waits only if other writes happened to queue meanwhile (once, for
//! at most the gap).

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Instant;

use qiao_domain::event::{Audience, Event, EventData, encode_frame};
use qiao_domain::message::Message;
use qiao_domain::{Error, Millis, Result};
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use crate::conn::{Conn, Db, exec, q, value_rows};
use crate::messages::{self, NewMessage};
use crate::{Engine, EventSink};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

type Output = Box<dyn Any + Send>;
type Op = Box<dyn for<'t> Fn(&'t mut Tx) -> BoxFuture<'t, Result<Output>> + Send + Sync>;

/// Queued work: a general operation, or a plain message send (data, so that consecutive
/// sends can be written with one multi-row statement).
pub(crate) enum Job {
    Op { op: Op, reply: oneshot::Sender<Result<Output>> },
    Send { draft: NewMessage, reply: oneshot::Sender<Result<Option<Message>>> },
}

impl Job {
    pub(crate) fn new<T, F>(op: F, reply: oneshot::Sender<Result<Output>>) -> Job
    where
        T: Send + 'static,
        F: for<'t> Fn(&'t mut Tx) -> BoxFuture<'t, Result<T>> + Send + Sync + 'static,
    {
        Job::Op { op: erase(op), reply }
    }

    /// Whether nobody waits for the answer any more (the request timed out or was dropped):
    /// its caller was told to retry, so the write must not happen behind its back.
    fn abandoned(&self) -> bool {
        match self {
            Job::Op { reply, .. } => reply.is_closed(),
            Job::Send { reply, .. } => reply.is_closed(),
        }
    }

    fn fail(self, e: Error) {
        match self {
            Job::Op { reply, .. } => {
                let _ = reply.send(Err(e));
            }
            Job::Send { reply, .. } => {
                let _ = reply.send(Err(e));
            }
        }
    }
}

/// What a job produced, held until the commit.
enum Done {
    Op(Output),
    Send(Option<Box<Message>>),
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

/// Rows per multi-row insert (messages, events). Every count up to it is its own prepared
/// statement, so a batch of n sends is one statement, not one per power of four.
pub(crate) const ROWS_PER_STATEMENT: usize = 64;

/// Prepared statements the writer's connection keeps: the multi-row inserts of every row
/// count, plus every other statement the writer runs.
pub(crate) const WRITER_STATEMENTS: usize = 512;

/// Reopens the writer connection after it breaks (PostgreSQL restarts, network blips).
pub(crate) enum Connector {
    Sqlite(SqliteConnectOptions),
    Pg(PgConnectOptions),
}

impl Connector {
    pub(crate) fn new(url: &str) -> Result<Connector> {
        Ok(match Engine::from_url(url)? {
            Engine::Sqlite(path) => Connector::Sqlite(crate::sqlite_writer_options(&path)),
            Engine::Postgres => Connector::Pg(pg_writer_options(
                PgConnectOptions::from_str(url)
                    .map_err(|e| Error::invalid("database", "is not a valid PostgreSQL URL").with_source(e))?,
            )),
        })
    }

    async fn connect(&self) -> Result<WriterConn> {
        Ok(match self {
            Connector::Sqlite(o) => WriterConn::Sqlite(o.connect().await.map_err(Error::unavailable)?),
            Connector::Pg(o) => WriterConn::Pg(o.connect().await.map_err(Error::unavailable)?),
        })
    }
}

/// The writer's PostgreSQL session. Every writer transaction holds the stream head's row
/// lock, which the other nodes' writers wait for: if this node vanishes mid-transaction (a
/// machine or network failure, no TCP reset), PostgreSQL must end the transaction soon
/// rather than when TCP keepalive notices, hours later. A batch never pauses between
/// statements for anywhere near this long.
pub(crate) fn pg_writer_options(opts: PgConnectOptions) -> PgConnectOptions {
    opts.options([("idle_in_transaction_session_timeout", "10s")]).statement_cache_capacity(WRITER_STATEMENTS)
}

/// The writer's transaction, handed to each operation of a batch.
pub struct Tx {
    conn: WriterConn,
    /// Whether the transaction has begun. On SQLite it begins with the batch's first
    /// statement ([`Tx::open`], or a send's insert): each call to SQLite's thread is a hand-off
    /// between threads, and beginning on its own was one per commit.
    open: bool,
    /// Stream position before this transaction.
    base_pos: i64,
    /// Position of the last event appended so far.
    pos: i64,
    /// Events appended so far, with their commit time; logged at commit.
    events: Vec<(Event, Millis)>,
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
        self.pos = pos;
        // Written to the log in one multi-row insert just before the commit.
        let event = Event { pos, audience, seq, frame: frame.into(), data: std::sync::Arc::new(data.clone()) };
        self.events.push((event, at));
        Ok(pos)
    }

    /// Writes the transaction's events to the log, one multi-row insert per
    /// [`ROWS_PER_STATEMENT`]. With `then_commit` (SQLite), the last insert, the stream head's
    /// update and `COMMIT` go to SQLite's thread as one call: each call is a round trip
    /// between the runtime and that thread, and a commit used to make a dozen.
    async fn flush_events(&mut self, then_commit: bool) -> Result<()> {
        let events = std::mem::take(&mut self.events);
        let head = self.pos;
        let mut rest: &[(Event, Millis)] = &events;
        while !rest.is_empty() {
            let n = rest.len().min(ROWS_PER_STATEMENT);
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            let last = rest.is_empty() && then_commit;
            let mut sql = format!(
                "INSERT INTO events (pos, audience, conversation_id, user_id, seq, kind, frame, created_at) VALUES {}",
                value_rows(self.dialect(), n, 8)
            );
            if last {
                // SQLite only (anonymous parameters, bound in order).
                sql.push_str("; UPDATE stream_head SET pos = ? WHERE id = 1; COMMIT");
            }
            // Only placeholders are spliced in.
            exec!(self, {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                for (e, at) in chunk {
                    let (conversation_id, user_id) = match e.audience {
                        Audience::Conversation(c) => (Some(c.0), None),
                        Audience::User(u) => (None, Some(u.0)),
                        Audience::Staff | Audience::Everyone => (None, None),
                    };
                    query = query
                        .bind(e.pos)
                        .bind(e.audience.kind())
                        .bind(conversation_id)
                        .bind(user_id)
                        .bind(e.seq)
                        .bind(e.data.name())
                        .bind(std::str::from_utf8(&e.frame).unwrap_or_default())
                        .bind(*at);
                }
                if last { query.bind(head) } else { query }
            })?;
        }
        self.events = events;
        Ok(())
    }

    /// A transaction on `conn`: begun at once on PostgreSQL, by the first statement on SQLite.
    async fn begin(mut conn: WriterConn) -> std::result::Result<Tx, (WriterConn, Error)> {
        let c = match &mut conn {
            WriterConn::Sqlite(_) => return Ok(Tx { conn, open: false, base_pos: 0, pos: 0, events: Vec::new() }),
            WriterConn::Pg(c) => c,
        };
        if let Err(e) = sqlx::raw_sql("BEGIN").execute(c).await {
            // The caller drops the connection, ending whatever BEGIN started.
            return Err((conn, Error::unavailable(e)));
        }
        let mut tx = Tx { conn, open: true, base_pos: 0, pos: 0, events: Vec::new() };
        // PostgreSQL: locking the head row first serialises writer transactions across nodes,
        // which makes positions follow commit order.
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

    /// Begins the SQLite transaction if no statement has yet: the caller drops the connection
    /// on failure, like a failed [`Tx::begin`].
    async fn open(&mut self) -> Result<()> {
        if self.open {
            return Ok(());
        }
        let WriterConn::Sqlite(c) = &mut self.conn else { return Ok(()) };
        // BEGIN IMMEDIATE already takes the write lock: a plain read of the head is enough
        // (and dirties no page).
        let (pos,) = sqlx::query_as::<_, (i64,)>("BEGIN IMMEDIATE; SELECT pos FROM stream_head WHERE id = 1")
            .fetch_one(c)
            .await
            .map_err(Error::unavailable)?;
        self.opened(pos);
        Ok(())
    }

    fn opened(&mut self, pos: i64) {
        self.open = true;
        self.base_pos = pos;
        self.pos = pos;
    }

    /// Inserts plain messages ([`messages::insert_many`]); on SQLite before the transaction
    /// has begun, the first statement also begins it. `Err((false, _))`: it did not begin.
    async fn insert_sends(
        &mut self,
        drafts: &[&NewMessage],
    ) -> std::result::Result<Vec<Option<Message>>, (bool, Error)> {
        let mut stored = Vec::with_capacity(drafts.len());
        let mut rest = drafts;
        if let (false, WriterConn::Sqlite(c)) = (self.open, &mut self.conn) {
            let (first, tail) = drafts.split_at(drafts.len().min(ROWS_PER_STATEMENT));
            match messages::open_and_insert(c, first).await {
                Ok((pos, inserted)) => {
                    self.opened(pos);
                    stored = inserted;
                    rest = tail;
                }
                Err((Some(pos), e)) => {
                    // Begun: the caller rolls back.
                    self.opened(pos);
                    return Err((true, e));
                }
                Err((None, e)) => return Err((false, e)),
            }
        }
        if !rest.is_empty() {
            stored.extend(messages::insert_many(self, rest).await.map_err(|e| (true, e))?);
        }
        Ok(stored)
    }

    /// Commits; on failure, the connection back if its rollback worked (none when it did not:
    /// the next batch reconnects instead of failing on a dead one).
    async fn commit(mut self) -> std::result::Result<(WriterConn, Vec<Event>), (Option<WriterConn>, Error)> {
        if !self.open {
            // Nothing ran.
            return Ok(self.committed());
        }
        let sqlite = matches!(self.conn, WriterConn::Sqlite(_));
        if self.pos != self.base_pos {
            // On SQLite the last insert also moves the head and commits.
            if let Err(e) = self.flush_events(sqlite).await {
                return Err((self.rollback().await.ok(), e));
            }
            if sqlite {
                return Ok(self.committed());
            }
            let pos = self.pos;
            if let Err(e) = exec!(&mut self, sqlx::query("UPDATE stream_head SET pos = $1 WHERE id = 1").bind(pos)) {
                return Err((self.rollback().await.ok(), e));
            }
        }
        let result = match &mut self.conn {
            WriterConn::Sqlite(c) => sqlx::raw_sql("COMMIT").execute(c).await.map(drop),
            WriterConn::Pg(c) => sqlx::raw_sql("COMMIT").execute(c).await.map(drop),
        };
        match result {
            Ok(_) => Ok(self.committed()),
            Err(e) => {
                let e = crate::db_err(e);
                Err((self.rollback().await.ok(), e))
            }
        }
    }

    /// The connection and the events of a committed transaction.
    fn committed(self) -> (WriterConn, Vec<Event>) {
        (self.conn, self.events.into_iter().map(|(e, _)| e).collect())
    }

    /// Rolls back; `Err` carries a connection that should be replaced.
    async fn rollback(mut self) -> std::result::Result<WriterConn, WriterConn> {
        if !self.open {
            return Ok(self.conn);
        }
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
    commit_gap: std::time::Duration,
}

/// When the next commit may start, given when the last one started, whether it was full, and
/// whether writes were already queued when it ended: not before `gap` after the last start if
/// they were and it was not full (the writer is busy, and waiting gathers more into one
/// commit), at once otherwise (a write arriving into an idle writer, a caller waiting for its
/// answer before the next, or a backlog that fills batches without waiting).
pub(crate) fn pace(
    started: tokio::time::Instant,
    gap: std::time::Duration,
    full: bool,
    queued: bool,
) -> Option<tokio::time::Instant> {
    (queued && !full && !gap.is_zero()).then(|| started + gap)
}

impl Writer {
    pub(crate) fn new(
        conn: WriterConn,
        connector: Connector,
        sink: EventSink,
        max_batch: usize,
        commit_gap: std::time::Duration,
    ) -> Writer {
        Writer { conn: Some(conn), connector, sink, max_batch, commit_gap }
    }

    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut closing = None;
        let mut next_start = None;
        while closing.is_none() {
            let Some(first) = rx.recv().await else { break };
            let at = next_start.take();
            // (A commit that took longer than the gap, or a close, does not wait: a timer
            // registration costs a turn of the runtime even when its time has passed.)
            if let (Some(at), Msg::Job(_)) = (at, &first)
                && at > tokio::time::Instant::now()
            {
                tokio::time::sleep_until(at).await;
            }
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
            let queued = jobs.len();
            jobs.retain(|j| !j.abandoned());
            if jobs.len() < queued {
                metrics::counter!("qiao_store_abandoned_writes_total").increment((queued - jobs.len()) as u64);
            }
            if !jobs.is_empty() {
                let started = tokio::time::Instant::now();
                let full = jobs.len() >= self.max_batch;
                self.run_batch(jobs).await;
                next_start = pace(started, self.commit_gap, full, !rx.is_empty());
            }
        }
        rx.close();
        while let Ok(msg) = rx.try_recv() {
            match msg {
                Msg::Job(j) => j.fail(Error::unavailable("the store is shutting down")),
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
        // Consecutive sends share one statement until that fails; then they go one by one.
        let mut grouped = true;
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
            let (outputs, failed) = run_jobs(&mut tx, &jobs, grouped).await;
            match failed {
                None => match tx.commit().await {
                    Ok((conn, events)) => {
                        self.conn = Some(conn);
                        if !events.is_empty() {
                            (self.sink)(events);
                        }
                        for (job, out) in jobs.into_iter().zip(outputs) {
                            match (job, out) {
                                (Job::Op { reply, .. }, Done::Op(out)) => {
                                    let _ = reply.send(Ok(out));
                                }
                                (Job::Send { reply, .. }, Done::Send(message)) => {
                                    let _ = reply.send(Ok(message.map(|m| *m)));
                                }
                                (job, _) => job.fail(Error::internal("writer result mismatch")),
                            }
                        }
                        metrics::histogram!("qiao_store_commit_seconds").record(started.elapsed().as_secs_f64());
                        return;
                    }
                    Err((conn, e)) => {
                        tracing::error!(error = %e, "group commit failed");
                        self.conn = conn;
                        return fail_all(jobs, &e);
                    }
                },
                Some(failure) => {
                    match tx.rollback().await {
                        Ok(conn) => self.conn = Some(conn),
                        Err(_broken) => {}
                    }
                    match failure {
                        Failure::Begin(e) => {
                            // Drop the connection (and whatever the failed statement began);
                            // the next batch reconnects.
                            self.conn = None;
                            return fail_all(jobs, &e);
                        }
                        Failure::Group => {
                            metrics::counter!("qiao_store_batch_replays_total").increment(1);
                            grouped = false;
                        }
                        // The connection failed under this job (the database restarting):
                        // not the job's fault, and no use replaying on it.
                        Failure::Job(_, e) if e.code == qiao_domain::ErrorCode::Unavailable => {
                            self.conn = None;
                            return fail_all(jobs, &e);
                        }
                        Failure::Job(i, e) => {
                            metrics::counter!("qiao_store_batch_replays_total").increment(1);
                            if e.code == qiao_domain::ErrorCode::Internal {
                                tracing::error!(error = %e, "write operation failed");
                            }
                            jobs.remove(i).fail(e);
                        }
                    }
                }
            }
        }
    }
}

/// Why a batch attempt stopped.
enum Failure {
    /// The transaction did not begin: the database is unavailable.
    Begin(Error),
    /// This job failed; the batch is replayed without it.
    Job(usize, Error),
    /// A grouped send statement failed; the batch is replayed with sends one by one.
    Group,
}

/// Runs every job of a batch in `tx`, in order.
async fn run_jobs(tx: &mut Tx, jobs: &[Job], grouped: bool) -> (Vec<Done>, Option<Failure>) {
    let mut outputs = Vec::with_capacity(jobs.len());
    let mut i = 0;
    while i < jobs.len() {
        match &jobs[i] {
            Job::Op { op, .. } => {
                if let Err(e) = tx.open().await {
                    return (outputs, Some(Failure::Begin(e)));
                }
                match op(tx).await {
                    Ok(out) => {
                        outputs.push(Done::Op(out));
                        i += 1;
                    }
                    Err(e) => return (outputs, Some(Failure::Job(i, e))),
                }
            }
            Job::Send { .. } => {
                let run = jobs[i..].iter().take_while(|j| matches!(j, Job::Send { .. })).count();
                let end = if grouped { i + run } else { i + 1 };
                let drafts: Vec<&NewMessage> = jobs[i..end]
                    .iter()
                    .filter_map(|j| match j {
                        Job::Send { draft, .. } => Some(draft),
                        Job::Op { .. } => None,
                    })
                    .collect();
                match tx.insert_sends(&drafts).await {
                    Ok(stored) => {
                        for (draft, message) in drafts.iter().zip(stored) {
                            if let Some(m) = &message {
                                let data = EventData::MessageCreated { message: m.clone(), thread: None };
                                let appended = tx
                                    .append_event(
                                        Audience::Conversation(m.conversation_id),
                                        Some(m.seq),
                                        &data,
                                        draft.at,
                                    )
                                    .await;
                                if let Err(e) = appended {
                                    return (outputs, Some(Failure::Job(i, e)));
                                }
                            }
                            outputs.push(Done::Send(message.map(Box::new)));
                        }
                        i = end;
                    }
                    Err((false, e)) => return (outputs, Some(Failure::Begin(e))),
                    Err((true, _)) if end - i > 1 => return (outputs, Some(Failure::Group)),
                    Err((true, e)) => return (outputs, Some(Failure::Job(i, e))),
                }
            }
        }
    }
    (outputs, None)
}

fn fail_all(jobs: Vec<Job>, e: &Error) {
    metrics::counter!("qiao_store_failed_batches_total").increment(1);
    for job in jobs {
        job.fail(Error::unavailable(e.to_string()).with_message("The database is unavailable; retry shortly."));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::pace;

    #[test]
    fn a_busy_writer_waits_out_the_gap_and_an_idle_one_never_does() {
        let started = tokio::time::Instant::now();
        let gap = Duration::from_millis(2);
        assert_eq!(pace(started, gap, false, true), Some(started + gap));
        // Nothing queued when the commit ended: the next write is taken as it comes.
        assert_eq!(pace(started, gap, false, false), None);
        // A full batch: waiting cannot make the next one larger, only the backlog slower.
        assert_eq!(pace(started, gap, true, true), None);
        // No gap configured: commits follow one another as before.
        assert_eq!(pace(started, Duration::ZERO, false, true), None);
    }
}
