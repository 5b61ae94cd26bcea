//! A connection after the upgrade, split in two. The write side is shared by the
//! connection's task and the dispatcher: a frame for a connection that is idle is written by
//! the dispatcher itself, at once, without waking the connection's task (its wake-up, its
//! poll and tungstenite's copy of the frame were a fifth of the server's time per delivery
//! in a large room); a busy connection's frames queue and leave together, written by its
//! task. The read side is where tungstenite reads the client's frames.
//!
//! Every byte written goes through [`Link`], under the rule its queue keeps: nothing is
//! written directly while the task holds frames it took or writes frames of its own, so
//! frames never overtake one another.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};

use super::dispatcher::Out;
use super::outbox::{Outbox, Refused};

/// The upgraded connection.
pub type Io = TokioIo<hyper::upgrade::Upgraded>;

/// A connection's queue and the write side of its socket.
pub struct Link {
    pub queue: Arc<Outbox<Out>>,
    /// `None` for a link with no socket (the dispatcher's unit tests): everything queues.
    writer: Option<Mutex<WriteHalf<Io>>>,
    /// The shortest time between two writes to one connection (`realtime_flush_ms`).
    gap: Duration,
}

impl Link {
    pub fn new(writer: WriteHalf<Io>, limit: usize, gap: Duration) -> Arc<Link> {
        Arc::new(Link { queue: Outbox::new(limit), writer: Some(Mutex::new(writer)), gap })
    }

    /// A link whose frames only queue.
    #[cfg(test)]
    pub fn detached(limit: usize) -> Arc<Link> {
        Arc::new(Link { queue: Outbox::new(limit), writer: None, gap: Duration::ZERO })
    }

    /// Hands on several frames for one connection: written together if it is idle, queued
    /// one by one otherwise (each counts against the queue's limit).
    pub fn push_frames(&self, frames: Vec<Bytes>) -> Result<(), Refused> {
        if self.writer.is_none() {
            return frames.into_iter().try_for_each(|f| self.queue.push(Out::Frame(f)));
        }
        let items = frames.into_iter().map(Out::Frame).collect();
        self.queue.push_all_or_write(items, self.gap, |items| {
            let len = items.iter().map(|i| if let Out::Frame(f) = i { f.len() } else { 0 }).sum();
            let mut all = Vec::with_capacity(len);
            for item in &items {
                if let Out::Frame(f) = item {
                    all.extend_from_slice(f);
                }
            }
            self.try_write(Bytes::from(all)).map(Out::Frame)
        })
    }

    /// Hands a frame on: written now if the connection is idle, queued otherwise.
    pub fn push(&self, out: Out) -> Result<(), Refused> {
        match (out, &self.writer) {
            (Out::Frame(frame), Some(_)) => self.queue.push_or_write(Out::Frame(frame), self.gap, |out| match out {
                Out::Frame(frame) => self.try_write(frame).map(Out::Frame),
                other => Some(other),
            }),
            (out, _) => self.queue.push(out),
        }
    }

    /// Writes what the socket takes now, without waiting; returns the rest (`None`: all of it
    /// went). A failed socket also returns the frame: the task meets the error when it writes.
    fn try_write(&self, frame: Bytes) -> Option<Bytes> {
        let Some(writer) = &self.writer else { return Some(frame) };
        let mut half = writer.lock().unwrap_or_else(|p| p.into_inner());
        // Outside tokio's cooperative budget: the dispatcher writes to thousands of sockets in
        // one turn, and a spent budget would make every write after the 128th look blocked.
        let write = std::future::poll_fn(|cx| Pin::new(&mut *half).poll_write(cx, &frame));
        let mut write = std::pin::pin!(tokio::task::unconstrained(write));
        match write.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(n)) if n >= frame.len() => None,
            Poll::Ready(Ok(n)) => Some(frame.slice(n..)),
            Poll::Ready(Err(_)) | Poll::Pending => Some(frame),
        }
    }

    /// Writes all of `bytes`, waiting for the socket as needed. Only the connection's task
    /// calls this, between [`Outbox::begin_write`] (or a pop) and [`Outbox::end_write`].
    pub async fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        let Some(writer) = &self.writer else { return Ok(()) };
        let mut done = 0;
        std::future::poll_fn(|cx| {
            while done < bytes.len() {
                let mut half = writer.lock().unwrap_or_else(|p| p.into_inner());
                match Pin::new(&mut *half).poll_write(cx, &bytes[done..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => done += n,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            Poll::Ready(Ok(()))
        })
        .await
    }

    /// Ends the write side (a FIN after everything written), waiting at most `limit`.
    pub async fn shutdown(&self, limit: Duration) {
        let Some(writer) = &self.writer else { return };
        let shut = std::future::poll_fn(|cx| {
            let mut half = writer.lock().unwrap_or_else(|p| p.into_inner());
            Pin::new(&mut *half).poll_shutdown(cx)
        });
        let _ = tokio::time::timeout(limit, shut).await;
    }

    /// Writes frames of the task's own (ready, catch-up, errors, pings, close), in order with
    /// the dispatcher's: the rest of a direct write cut short goes first. A write that fails,
    /// or is given up half-way (its future dropped by a timeout), breaks the stream off:
    /// nothing is written after a partial frame.
    pub async fn write_own(&self, bytes: &[u8]) -> io::Result<()> {
        if !self.queue.writable() {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let rest = self.queue.begin_write();
        let mut writing = Writing { queue: &self.queue, done: false };
        if let Some(Out::Frame(rest)) = rest {
            self.write_all(&rest).await?;
        }
        self.write_all(bytes).await?;
        writing.done = true;
        Ok(())
    }
}

/// The end of a write of the task's own: finished, or broken off.
struct Writing<'a> {
    queue: &'a Outbox<Out>,
    done: bool,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        if self.done {
            self.queue.end_write();
        } else {
            self.queue.break_off();
        }
    }
}

/// The read side, as tungstenite wants a stream: what tungstenite would write (its answers
/// to pings and closes) is dropped, since every write goes through [`Link`] — the task sends
/// those answers itself.
pub struct ReadSide(pub ReadHalf<Io>);

impl AsyncRead for ReadSide {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ReadSide {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
