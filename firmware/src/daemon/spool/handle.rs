//! [`SpoolHandle`]: the typed async API to the spool thread, and the [`Gauge`] it publishes.
//!
//! Every request is one message on a bounded channel ([`QUEUE_DEPTH`]); a full channel
//! makes the sender wait (back-pressure). Replies come on a oneshot. What each request
//! promises:
//!
//! - [`SpoolHandle::commit`] answers only after the batch holding the message is durable:
//!   the sender may then be told 250;
//! - [`SpoolHandle::update`] and [`SpoolHandle::remove`] answer at once; their frames join
//!   the next group commit (a crash before it repeats a delivery attempt, it never loses
//!   mail: delivery is at-least-once);
//! - everything else reads, or changes only RAM ([`SpoolHandle::flush`]).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::policy::{Capacity, QuotaError};
use crate::relay::Lane;
use crate::spool::open::AnyDevice;
use crate::spool::{Envelope, MessageId, MessageMeta, Pending, SpoolError, Writer};

/// Requests queued for the spool thread before senders wait (back-pressure).
pub const QUEUE_DEPTH: usize = 64;
/// Size of one body chunk handed to the spool thread: the spool's chunk size, so a chunk
/// is written as one frame and a body of one chunk or less is stored with its record.
pub const BODY_CHUNK: usize = crate::spool::CHUNK;

/// A body chunk buffer; sessions own one and lend it to the spool thread per append.
pub type Chunk = Box<heapless::Vec<u8, BODY_CHUNK>>;

/// How long an admin caller waits for its job before giving up (the job may still run).
pub const JOB_WAIT: Duration = Duration::from_secs(10);

/// The spool as a job sees it: reads and changes, between the sessions' requests.
pub type SpoolWriter<'f, 'b, 'a> = Writer<'f, 'b, 'a, AnyDevice>;

/// Work run in the spool thread; it sends its own result back.
pub type SpoolJob = Box<dyn for<'f, 'b, 'a> FnOnce(&mut SpoolWriter<'f, 'b, 'a>) + Send>;

/// A message on its way into the spool: not begun yet — the spool begins it together with
/// its first chunk or its commit, one request instead of two — or begun.
pub enum MessageSlot {
    /// Not begun: the envelope and the SIZE= the sender declared (0 if none).
    New {
        /// The envelope.
        envelope: Box<Envelope>,
        /// Declared size.
        declared: u64,
    },
    /// Begun (its slot and id are taken).
    Begun(Pending),
}

pub(super) enum Request {
    Begin {
        envelope: Box<Envelope>,
        declared: u64,
        reply: oneshot::Sender<Result<Pending, SpoolError>>,
    },
    Append {
        slot: MessageSlot,
        chunk: Chunk,
        reply: oneshot::Sender<(Option<Pending>, Chunk, Result<(), SpoolError>)>,
    },
    Commit {
        slot: MessageSlot,
        tail: Chunk,
        envelope: Box<Envelope>,
        reply: oneshot::Sender<(Chunk, Result<MessageId, SpoolError>)>,
    },
    Abort {
        pending: Pending,
    },
    Lanes {
        now_unix: u64,
        busy: Vec<Lane>,
        max: usize,
        reply: oneshot::Sender<Vec<Lane>>,
    },
    LaneDue {
        lane: Lane,
        now_unix: u64,
        max: usize,
        reply: oneshot::Sender<Vec<MessageMeta>>,
    },
    Body {
        id: MessageId,
        offset: u64,
        reply: oneshot::Sender<Result<Vec<u8>, SpoolError>>,
    },
    Update {
        meta: Box<MessageMeta>,
        reply: oneshot::Sender<Result<(), SpoolError>>,
    },
    Remove {
        id: MessageId,
        reply: oneshot::Sender<Result<(), SpoolError>>,
    },
    Flush {
        domain: Option<String>,
        reply: oneshot::Sender<usize>,
    },
    /// Time passed (made by the thread itself): state frames waiting for a group commit get
    /// one.
    Tick,
    Job(SpoolJob),
}

/// Counters the spool thread publishes after each batch, read by the RCPT-time capacity
/// check and the status page. (A mutex, not 64-bit atomics: 32-bit MIPS has none.)
#[derive(Debug, Default)]
pub struct Gauge(
    Mutex<GaugeValues>,
    Mutex<std::collections::HashMap<u32, u64>>,
);

/// A snapshot of [`Gauge`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GaugeValues {
    /// Messages held or being received.
    pub messages: u64,
    /// Body bytes held or being received.
    pub bytes: u64,
    /// Configured message limit.
    pub max_messages: u64,
    /// Configured byte limit.
    pub max_bytes: u64,
    /// Messages accepted since start.
    pub accepted: u64,
}

impl Gauge {
    /// The current values.
    pub fn get(&self) -> GaugeValues {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn update(&self, f: impl FnOnce(&mut GaugeValues)) {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Body bytes held for `domain`, counted by each message's first recipient (what the
    /// per-domain `max-bytes` tiers measure).
    pub fn domain_bytes(&self, domain: &str) -> u64 {
        let map = self.1.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&crate::spool::domain_key(domain))
            .copied()
            .unwrap_or(0)
    }

    /// Replaces the per-domain bytes (O(domains held), once per batch).
    pub(super) fn set_domain_bytes(&self, each: impl Iterator<Item = (u32, u64)>) {
        let mut map = self.1.lock().unwrap_or_else(PoisonError::into_inner);
        map.clear();
        map.extend(each);
    }
}

/// RCPT-time capacity check from the published gauge (never blocks).
#[derive(Clone, Debug)]
pub struct GaugeCapacity(pub Arc<Gauge>);

impl Capacity for GaugeCapacity {
    fn space_for(&self, _domain: &str, size: u64) -> Result<(), QuotaError> {
        let g = self.0.get();
        if g.messages >= g.max_messages || g.bytes.saturating_add(size) > g.max_bytes {
            return Err(QuotaError::SpoolFull);
        }
        Ok(())
    }
}

/// The async side: cloned into every session.
#[derive(Clone)]
pub struct SpoolHandle {
    pub(super) tx: mpsc::Sender<Request>,
    /// Published counters.
    pub gauge: Arc<Gauge>,
}

fn gone() -> SpoolError {
    SpoolError::Io("spool thread stopped".into())
}

impl SpoolHandle {
    /// Sends the request `make` builds around its reply channel and waits for the answer.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, SpoolError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    }

    /// Starts a message.
    pub async fn begin(&self, envelope: Envelope, declared: u64) -> Result<Pending, SpoolError> {
        self.ask(|reply| Request::Begin {
            envelope: Box::new(envelope),
            declared,
            reply,
        })
        .await?
    }

    /// Appends a full chunk ([`BODY_CHUNK`] bytes; only the tail given to
    /// [`SpoolHandle::commit`] may be shorter), beginning the message first if it is new;
    /// hands the (emptied) buffer back, with the begun message unless beginning failed.
    pub async fn append(
        &self,
        slot: MessageSlot,
        chunk: Chunk,
    ) -> (Option<Pending>, Chunk, Result<(), SpoolError>) {
        let (reply, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError(req)) =
            self.tx.send(Request::Append { slot, chunk, reply }).await
        {
            // The thread is gone; nothing was written.
            let chunk = match req {
                Request::Append { mut chunk, .. } => {
                    chunk.clear();
                    chunk
                }
                _ => Box::default(),
            };
            return (None, chunk, Err(gone()));
        }
        match rx.await {
            Ok((p, mut c, r)) => {
                c.clear();
                (p, c, r)
            }
            // The thread died holding the buffer: a new one, once.
            Err(_) => (None, Box::default(), Err(gone())),
        }
    }

    /// Commits the message (beginning it first if it is new) with the last piece of its
    /// body (`tail`, possibly empty); the id comes back only once the message is durable.
    /// Hands the (emptied) buffer back.
    pub async fn commit(
        &self,
        slot: MessageSlot,
        tail: Chunk,
        envelope: Envelope,
    ) -> (Chunk, Result<MessageId, SpoolError>) {
        let (reply, rx) = oneshot::channel();
        let req = Request::Commit {
            slot,
            tail,
            envelope: Box::new(envelope),
            reply,
        };
        if self.tx.send(req).await.is_err() {
            return (Box::default(), Err(gone()));
        }
        match rx.await {
            Ok((mut c, r)) => {
                c.clear();
                (c, r)
            }
            Err(_) => (Box::default(), Err(gone())),
        }
    }

    /// Drops a message being received.
    pub async fn abort(&self, pending: Pending) {
        let _ = self.tx.send(Request::Abort { pending }).await;
    }

    /// Lanes (recipient domains) with mail due at `now_unix`, longest-waiting first,
    /// leaving out `busy` ones; at most `max` (see [`crate::relay::queue`]).
    pub async fn lanes(&self, now_unix: u64, busy: Vec<Lane>, max: usize) -> Vec<Lane> {
        self.ask(|reply| Request::Lanes {
            now_unix,
            busy,
            max,
            reply,
        })
        .await
        .unwrap_or_default()
    }

    /// Up to `max` due messages of `lane`, oldest first, with pending recipients.
    pub async fn lane_due(&self, lane: Lane, now_unix: u64, max: usize) -> Vec<MessageMeta> {
        self.ask(|reply| Request::LaneDue {
            lane,
            now_unix,
            max,
            reply,
        })
        .await
        .unwrap_or_default()
    }

    /// Up to [`BODY_CHUNK`] body bytes of `id` at `offset` (empty at the end).
    pub async fn body(&self, id: MessageId, offset: u64) -> Result<Vec<u8>, SpoolError> {
        self.ask(|reply| Request::Body { id, offset, reply })
            .await?
    }

    /// Records a delivery attempt (durable with the next group commit).
    pub async fn update(&self, meta: MessageMeta) -> Result<(), SpoolError> {
        self.ask(|reply| Request::Update {
            meta: Box::new(meta),
            reply,
        })
        .await?
    }

    /// Removes a message (durable with the next group commit).
    pub async fn remove(&self, id: MessageId) -> Result<(), SpoolError> {
        self.ask(|reply| Request::Remove { id, reply }).await?
    }

    /// Makes every held message (whose first recipient is in `domain`, or all) due now;
    /// returns how many were waiting.
    pub async fn flush(&self, domain: Option<String>) -> usize {
        self.ask(|reply| Request::Flush { domain, reply })
            .await
            .unwrap_or(0)
    }

    /// Stores a whole (small) message, e.g. a bounce, durably.
    pub async fn enqueue(
        &self,
        envelope: Envelope,
        content: &[u8],
    ) -> Result<MessageId, SpoolError> {
        let mut slot = MessageSlot::New {
            envelope: Box::new(envelope.clone()),
            declared: content.len() as u64,
        };
        let mut pieces = content.chunks(BODY_CHUNK).peekable();
        let mut tail: Chunk = Box::default();
        while let Some(piece) = pieces.next() {
            // `piece` is at most BODY_CHUNK long.
            let _ = tail.extend_from_slice(piece);
            if pieces.peek().is_none() && piece.len() < BODY_CHUNK {
                break;
            }
            let (p, c, r) = self.append(slot, tail).await;
            tail = c;
            match (p, r) {
                (Some(p), Ok(())) => slot = MessageSlot::Begun(p),
                (Some(p), Err(e)) => {
                    self.abort(p).await;
                    return Err(e);
                }
                (None, r) => return Err(r.err().unwrap_or_else(gone)),
            }
        }
        self.commit(slot, tail, envelope).await.1
    }

    /// Runs `f` in the spool thread, between other requests, and returns its result (the
    /// async twin of [`SpoolHandle::run_blocking`], for the daemon's own tasks).
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl for<'f, 'b, 'a> FnOnce(&mut SpoolWriter<'f, 'b, 'a>) -> T + Send + 'static,
    ) -> Result<T, SpoolError> {
        self.ask(|reply| {
            Request::Job(Box::new(move |spool| {
                let _ = reply.send(f(spool));
            }))
        })
        .await
    }

    /// Runs `f` in the spool thread and waits (at most [`JOB_WAIT`]) for its result.
    /// For plain threads (the web server's workers) only: it blocks, and must never be
    /// called from a thread of the tokio runtime.
    pub fn run_blocking<T: Send + 'static>(
        &self,
        f: impl for<'f, 'b, 'a> FnOnce(&mut SpoolWriter<'f, 'b, 'a>) -> T + Send + 'static,
    ) -> Result<T, SpoolError> {
        let (reply, rx) = std::sync::mpsc::sync_channel(1);
        let job: SpoolJob = Box::new(move |spool| {
            let _ = reply.send(f(spool));
        });
        self.tx
            .blocking_send(Request::Job(job))
            .map_err(|_| gone())?;
        rx.recv_timeout(JOB_WAIT).map_err(|e| match e {
            std::sync::mpsc::RecvTimeoutError::Timeout => {
                SpoolError::Io("the spool is busy; try again".into())
            }
            std::sync::mpsc::RecvTimeoutError::Disconnected => gone(),
        })
    }
}
