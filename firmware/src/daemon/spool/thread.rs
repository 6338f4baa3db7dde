//! The spool thread: owns the flash device and the mounted [`Spool`], and serves the SMTP
//! sessions' requests one at a time from a bounded channel.
//!
//! littlefs is single-threaded and its files are not `Send`, so one thread owns it all.
//! Requests are batched: after taking one request the thread drains whatever else is queued
//! (up to [`BATCH_MAX`]) and commits every message of the batch with **one** device sync
//! before answering any of them (group commit). Every sender still hears 250 only after its
//! message is durable.
//!
//! The admin page (a plain thread, not the runtime) sends [`Job`]s through
//! [`SpoolHandle::run_blocking`]: a bounded piece of work (a queue page, one chunk of a
//! body, a removal) run in the spool thread between the sessions' requests.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use mailbag_hal::Clock;
use tokio::sync::{mpsc, oneshot};

use crate::policy::{Capacity, QuotaError};
use crate::relay::{DomainKey, Held, due_lanes, lane_batch};
use crate::spool::open::AnyDevice;
use crate::spool::{
    Access, Allocation, Envelope, Flash, Limits, MessageId, MessageMeta, Pending, RcptStatus,
    Spool, SpoolError, fnv1a,
};

/// Requests queued for the spool thread before senders wait (back-pressure).
pub const QUEUE_DEPTH: usize = 64;
/// Most requests handled in one batch (one sync for all commits in it).
pub const BATCH_MAX: usize = 32;
/// Size of one body chunk handed to the spool thread.
pub const BODY_CHUNK: usize = 16 * 1024;

/// A body chunk buffer; sessions own one and lend it to the spool thread per append.
pub type Chunk = Box<heapless::Vec<u8, BODY_CHUNK>>;

/// How long an admin caller waits for its job before giving up (the job may still run).
pub const JOB_WAIT: Duration = Duration::from_secs(10);

/// Work run in the spool thread on the mounted spool; it sends its own result back.
pub type Job = Box<dyn for<'a> FnOnce(&mut Spool<'a, AnyDevice>) + Send>;

/// Where a commit's outcome goes.
type CommitReply = oneshot::Sender<Result<MessageId, SpoolError>>;

enum Request {
    Begin {
        envelope: Box<Envelope>,
        declared: u64,
        reply: oneshot::Sender<Result<Pending, SpoolError>>,
    },
    Append {
        pending: Pending,
        chunk: Chunk,
        reply: oneshot::Sender<(Pending, Chunk, Result<(), SpoolError>)>,
    },
    Commit {
        pending: Pending,
        envelope: Box<Envelope>,
        reply: oneshot::Sender<Result<MessageId, SpoolError>>,
    },
    Abort {
        pending: Pending,
    },
    Lanes {
        now_unix: u64,
        busy: Vec<DomainKey>,
        max: usize,
        reply: oneshot::Sender<Vec<DomainKey>>,
    },
    LaneDue {
        lane: DomainKey,
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
    Job(Job),
}

/// Counters the spool thread publishes after each batch, read by the RCPT-time capacity
/// check and the status page. (A mutex, not 64-bit atomics: 32-bit MIPS has none.)
#[derive(Debug, Default)]
pub struct Gauge(Mutex<GaugeValues>, Mutex<DomainBytes>);

/// Body bytes held per domain, by the domain of each message's first recipient (the
/// per-domain tiers' measure), keyed by [`fnv1a`] of the lower-case domain. One pass over
/// the index per batch today (O(messages held)); the new spool keeps these as counters.
#[derive(Debug, Default)]
pub struct DomainBytes(std::collections::HashMap<u64, u64>);

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

    fn update(&self, f: impl FnOnce(&mut GaugeValues)) {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Body bytes held for `domain` (lower-case), counted by first recipient.
    pub fn domain_bytes(&self, domain: &str) -> u64 {
        let map = self.1.lock().unwrap_or_else(PoisonError::into_inner);
        map.0.get(&fnv1a(domain)).copied().unwrap_or(0)
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
    tx: mpsc::Sender<Request>,
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

    /// Appends a chunk; hands the (emptied) chunk buffer back.
    pub async fn append(
        &self,
        pending: Pending,
        chunk: Chunk,
    ) -> (Option<Pending>, Chunk, Result<(), SpoolError>) {
        let (reply, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError(req)) = self
            .tx
            .send(Request::Append {
                pending,
                chunk,
                reply,
            })
            .await
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
                (Some(p), c, r)
            }
            // The thread died holding the buffer: a new one, once.
            Err(_) => (None, Box::default(), Err(gone())),
        }
    }

    /// Makes the message durable; returns its id only then.
    pub async fn commit(
        &self,
        pending: Pending,
        envelope: Envelope,
    ) -> Result<MessageId, SpoolError> {
        self.ask(|reply| Request::Commit {
            pending,
            envelope: Box::new(envelope),
            reply,
        })
        .await?
    }

    /// Drops a message being received.
    pub async fn abort(&self, pending: Pending) {
        let _ = self.tx.send(Request::Abort { pending }).await;
    }

    /// Lanes (recipient domains) with mail due at `now_unix`, longest-waiting first,
    /// leaving out `busy` ones; at most `max` (see [`crate::relay::queue`]).
    pub async fn lanes(&self, now_unix: u64, busy: Vec<DomainKey>, max: usize) -> Vec<DomainKey> {
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
    pub async fn lane_due(&self, lane: DomainKey, now_unix: u64, max: usize) -> Vec<MessageMeta> {
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

    /// Replaces a message's record durably.
    pub async fn update(&self, meta: MessageMeta) -> Result<(), SpoolError> {
        self.ask(|reply| Request::Update {
            meta: Box::new(meta),
            reply,
        })
        .await?
    }

    /// Removes a message durably.
    pub async fn remove(&self, id: MessageId) -> Result<(), SpoolError> {
        self.ask(|reply| Request::Remove { id, reply }).await?
    }

    /// Makes every held message (for `domain`, or all) due now; returns how many.
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
        let mut pending = self.begin(envelope.clone(), content.len() as u64).await?;
        for piece in content.chunks(BODY_CHUNK) {
            let mut chunk: Chunk = Box::default();
            // `piece` is at most BODY_CHUNK long.
            let _ = chunk.extend_from_slice(piece);
            let (p, _, r) = self.append(pending, chunk).await;
            match (p, r) {
                (Some(p), Ok(())) => pending = p,
                (Some(p), Err(e)) => {
                    self.abort(p).await;
                    return Err(e);
                }
                (None, r) => return Err(r.err().unwrap_or_else(gone)),
            }
        }
        self.commit(pending, envelope).await
    }

    /// Runs `f` in the spool thread, between other requests, and returns its result (the
    /// async twin of [`SpoolHandle::run_blocking`], for the daemon's own tasks).
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl for<'a> FnOnce(&mut Spool<'a, AnyDevice>) -> T + Send + 'static,
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
        f: impl for<'a> FnOnce(&mut Spool<'a, AnyDevice>) -> T + Send + 'static,
    ) -> Result<T, SpoolError> {
        let (reply, rx) = std::sync::mpsc::sync_channel(1);
        let job: Job = Box::new(move |spool| {
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

/// Mounts the spool on `dev` in a new thread. Returns once the mount (with recovery)
/// succeeded or failed. The thread ends when every [`SpoolHandle`] is dropped, after
/// finishing the requests already queued.
pub fn start(
    dev: AnyDevice,
    limits: Limits,
    clock: Arc<dyn Clock>,
) -> Result<(SpoolHandle, JoinHandle<()>), SpoolError> {
    let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
    let gauge = Arc::new(Gauge::default());
    gauge.update(|g| {
        g.max_messages = u64::from(limits.max_messages);
        g.max_bytes = limits.max_bytes;
    });
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    let g = Arc::clone(&gauge);
    let thread = std::thread::Builder::new()
        .name("spool".into())
        .spawn(move || serve(dev, limits, clock, rx, g, ready_tx))
        .map_err(|e| SpoolError::Io(format!("cannot start the spool thread: {e}")))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok((SpoolHandle { tx, gauge }, thread)),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err(SpoolError::Io("spool thread died while mounting".into())),
    }
}

fn serve(
    dev: AnyDevice,
    limits: Limits,
    clock: Arc<dyn Clock>,
    mut rx: mpsc::Receiver<Request>,
    gauge: Arc<Gauge>,
    ready: std::sync::mpsc::SyncSender<Result<(), SpoolError>>,
) {
    let barrier = dev.barrier();
    let mut flash = match Flash::new(dev, barrier) {
        Ok(f) => f,
        Err(e) => {
            let _ = ready.send(Err(SpoolError::NotASpool(e)));
            return;
        }
    };
    let mut alloc = Allocation::new();
    let mut spool = match Spool::mount(&mut alloc, &mut flash, limits, Access::ReadWrite) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let u = spool.usage();
    crate::log!(
        "spool mounted: {} messages, {} bytes held, {} damaged",
        u.messages,
        u.bytes,
        u.damaged
    );
    publish(&spool, &gauge);
    let _ = ready.send(Ok(()));

    let mut batch: Vec<Request> = Vec::with_capacity(BATCH_MAX);
    let mut committed: Vec<(CommitReply, Result<MessageId, SpoolError>)> =
        Vec::with_capacity(BATCH_MAX);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < BATCH_MAX {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        for req in batch.drain(..) {
            match req {
                Request::Begin {
                    envelope,
                    declared,
                    reply,
                } => {
                    let _ = reply.send(spool.begin(&envelope, declared));
                }
                Request::Append {
                    mut pending,
                    chunk,
                    reply,
                } => {
                    let r = spool.append(&mut pending, &chunk);
                    let _ = reply.send((pending, chunk, r));
                }
                Request::Commit {
                    pending,
                    envelope,
                    reply,
                } => {
                    let r = spool.commit_unsynced(pending, &envelope, clock.unix_seconds());
                    committed.push((reply, r));
                }
                Request::Abort { pending } => spool.abort(pending),
                Request::Lanes {
                    now_unix,
                    busy,
                    max,
                    reply,
                } => {
                    let _ = reply.send(due_lanes(held(&spool), now_unix, &busy, max));
                }
                Request::LaneDue {
                    lane,
                    now_unix,
                    max,
                    reply,
                } => {
                    let due = lane_batch(held(&spool), lane, now_unix, max)
                        .into_iter()
                        .filter_map(|id| spool.meta(id).ok())
                        .filter(|m| m.recipients.iter().any(|r| r.status == RcptStatus::Pending))
                        .collect();
                    let _ = reply.send(due);
                }
                Request::Body { id, offset, reply } => {
                    let mut buf = vec![0u8; BODY_CHUNK];
                    let r = spool.read_body(id, offset, &mut buf).map(|n| {
                        buf.truncate(n);
                        buf
                    });
                    let _ = reply.send(r);
                }
                Request::Update { meta, reply } => {
                    let _ = reply.send(spool.update(&meta));
                }
                Request::Remove { id, reply } => {
                    let _ = reply.send(spool.remove(id));
                }
                Request::Flush { domain, reply } => {
                    let key = domain.as_deref().map(|d| fnv1a(&d.to_ascii_lowercase()));
                    let n = spool.expedite(|e| key.is_none_or(|k| e.domains.contains(&k)));
                    let _ = reply.send(n);
                }
                Request::Job(job) => job(&mut spool),
            }
        }
        if !committed.is_empty() {
            // One sync makes every commit of the batch durable; only then answer.
            let synced = spool.sync();
            for (reply, r) in committed.drain(..) {
                let r = match (&synced, r) {
                    (Ok(()), Ok(id)) => {
                        gauge.update(|g| g.accepted += 1);
                        Ok(id)
                    }
                    (Err(e), Ok(_)) => Err(SpoolError::Io(e.to_string())),
                    (_, Err(e)) => Err(e),
                };
                let _ = reply.send(r);
            }
        }
        publish(&spool, &gauge);
    }
    let _ = spool.sync();
    crate::log!("spool closed");
}

fn publish<D: mailbag_hal::BlockDevice>(spool: &Spool<'_, D>, gauge: &Gauge) {
    let u = spool.usage();
    gauge.update(|g| {
        g.messages = u64::from(u.messages + u.in_flight);
        g.bytes = u.bytes + u.reserved;
    });
    let mut by_domain = gauge.1.lock().unwrap_or_else(PoisonError::into_inner);
    by_domain.0.clear();
    for e in spool.entries() {
        if let Some(d) = e.domains.first() {
            *by_domain.0.entry(*d).or_insert(0) += e.size;
        }
    }
}

/// The spool index as the delivery planner sees it: each message in the lane of its first
/// recipient domain.
fn held<'s>(spool: &'s Spool<'_, AnyDevice>) -> impl Iterator<Item = Held> + 's {
    spool.entries().iter().map(|e| Held {
        id: e.id,
        lane: DomainKey(e.domains.first().copied().unwrap_or(0)),
        received_unix: e.received_unix,
        next_attempt_unix: e.next_attempt_unix,
    })
}
