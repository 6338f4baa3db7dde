//! The spool thread: owns the flash device and the mounted [`Spool`], and serves the
//! handles' requests from a bounded channel.
//!
//! littlefs is single-threaded and its files are not `Send`, so one thread owns it all,
//! and keeps the log's head segment open for its whole life ([`Spool::run`]: bodies stream
//! into an open file). Requests are batched: after taking one the thread drains whatever
//! else is queued (up to [`BATCH_MAX`]), handles them, and if the batch committed any
//! message makes everything it wrote durable with **one** group commit
//! ([`crate::spool::Writer::sync`]) before answering those commits. Delivery state and
//! removals that arrive without a commit wait for the next one, or for a tick at most
//! [`STATE_WAIT`] later. Every sender still hears 250 only after its message is durable.
//!
//! The admin page (a plain thread, not the runtime) sends jobs through
//! [`SpoolHandle::run_blocking`]: a bounded piece of work (a queue page, one chunk of a
//! body, a removal) run in the spool thread between the sessions' requests.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mailbag_hal::Clock;
use tokio::sync::{mpsc, oneshot};

use super::handle::{
    BODY_CHUNK, Chunk, Gauge, MessageSlot, QUEUE_DEPTH, Request, SpoolHandle, SpoolWriter,
};
use crate::relay::Lane;
use crate::spool::open::AnyDevice;
use crate::spool::{
    Access, Allocation, Flash, Limits, MessageId, Pending, RcptStatus, Spool, SpoolError, Usage,
};

/// Most requests handled in one batch (one sync for all commits in it).
pub const BATCH_MAX: usize = 32;
/// Longest a delivery state or removal waits for a group commit when no message commits.
pub const STATE_WAIT: Duration = Duration::from_millis(200);

/// Where a commit's outcome goes once its batch is durable.
type CommitReply = oneshot::Sender<(Chunk, Result<MessageId, SpoolError>)>;

/// Mounts the spool on `dev` in a new thread. Returns once the mount (with recovery and,
/// for a format-1 spool, migration) succeeded or failed. The thread ends when every
/// [`SpoolHandle`] is dropped, after finishing the requests already queued.
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
    let started = Instant::now();
    let mut spool = match Spool::mount(&mut alloc, &mut flash, limits, Access::ReadWrite) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let u = spool.usage();
    crate::log!(
        "spool mounted in {} ms: {} messages, {} bytes held in {} segments{}{}",
        started.elapsed().as_millis(),
        u.messages,
        u.bytes,
        u.segments,
        if u.migrated > 0 {
            format!(", {} converted from format 1", u.migrated)
        } else {
            String::new()
        },
        if u.damaged > 0 {
            format!(", {} damaged segments", u.damaged)
        } else {
            String::new()
        }
    );
    publish(&u, &gauge);
    gauge.set_domain_bytes(spool.domain_bytes());
    let _ = ready.send(Ok(()));

    let mut batch: Vec<Request> = Vec::with_capacity(BATCH_MAX);
    let mut committed: Vec<(CommitReply, Chunk, Result<MessageId, SpoolError>)> =
        Vec::with_capacity(BATCH_MAX);
    let mut state_since: Option<Instant> = None;
    // A timer for waiting on the channel at most until state frames are due for a commit.
    let timer = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build();
    let mut closed = false;
    let r = loop {
        let r = spool.run(|w| {
            let waiting = state_since.filter(|_| w.is_dirty());
            let first = match (waiting, &timer) {
                (Some(since), Ok(rt)) => {
                    let left = STATE_WAIT.saturating_sub(since.elapsed());
                    match rt.block_on(async { tokio::time::timeout(left, rx.recv()).await }) {
                        Ok(Some(r)) => Some(r),
                        Ok(None) => None,
                        Err(_) => Some(Request::Tick),
                    }
                }
                _ => rx.blocking_recv(),
            };
            let Some(first) = first else {
                closed = true;
                return ControlFlow::Break(());
            };
            batch.push(first);
            while batch.len() < BATCH_MAX {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            let mut tick = false;
            for req in batch.drain(..) {
                if let Request::Tick = req {
                    tick = true;
                    continue;
                }
                handle(w, req, &mut committed, clock.as_ref());
            }
            if !committed.is_empty() {
                // One sync makes every commit of the batch durable; only then answer.
                let synced = w.sync();
                state_since = None;
                // Published before the senders hear 250: their next RCPT (the per-domain
                // tiers, the spool's fill) must already count what was just committed.
                publish(&w.usage(), &gauge);
                gauge.set_domain_bytes(w.domain_bytes());
                for (reply, tail, r) in committed.drain(..) {
                    let r = match (&synced, r) {
                        (Ok(()), Ok(id)) => {
                            gauge.update(|g| g.accepted += 1);
                            Ok(id)
                        }
                        (Err(e), Ok(_)) => Err(SpoolError::Io(e.to_string())),
                        (_, Err(e)) => Err(e),
                    };
                    let _ = reply.send((tail, r));
                }
            } else if w.is_dirty() {
                let since = *state_since.get_or_insert_with(Instant::now);
                if tick && since.elapsed() >= STATE_WAIT {
                    if let Err(e) = w.sync() {
                        crate::log!("spool: could not write delivery state: {e}");
                    }
                    state_since = None;
                }
            }
            publish(&w.usage(), &gauge);
            gauge.set_domain_bytes(w.domain_bytes());
            ControlFlow::Continue(())
        });
        match r {
            Err(e) if !closed => {
                // The head segment could not be opened or rolled (an I/O error, flash full):
                // requests in that batch got an error; keep serving, and try again.
                crate::log!("spool: {e}; retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            r => break r,
        }
    };
    let f = spool.usage().flash;
    let stats = format!(
        "{} bytes programmed, {} bytes erased, {} syncs since start",
        f.programmed, f.erased, f.syncs
    );
    match r {
        Ok(()) => crate::log!("spool closed: {stats}"),
        Err(e) => crate::log!("spool stopped: {e}; {stats}"),
    }
}

fn handle(
    w: &mut SpoolWriter<'_, '_, '_>,
    req: Request,
    committed: &mut Vec<(CommitReply, Chunk, Result<MessageId, SpoolError>)>,
    clock: &dyn Clock,
) {
    match req {
        Request::Begin {
            envelope,
            declared,
            reply,
        } => {
            let _ = reply.send(w.begin(&envelope, declared));
        }
        Request::Append { slot, chunk, reply } => {
            let (pending, r) = match begun(w, slot) {
                Ok(mut p) => {
                    let r = w.append(&mut p, &chunk);
                    (Some(p), r)
                }
                Err(e) => (None, Err(e)),
            };
            let _ = reply.send((pending, chunk, r));
        }
        Request::Commit {
            slot,
            tail,
            envelope,
            reply,
        } => {
            let r =
                begun(w, slot).and_then(|p| w.commit(p, &envelope, &tail, clock.unix_seconds()));
            committed.push((reply, tail, r));
        }
        Request::Abort { pending } => w.abort(pending),
        Request::Lanes {
            now_unix,
            busy,
            max,
            reply,
        } => {
            let busy: Vec<u16> = busy.iter().map(|l| l.0).collect();
            let lanes = w.due_lanes(now_unix, &busy, max);
            let _ = reply.send(lanes.into_iter().map(Lane).collect());
        }
        Request::LaneDue {
            lane,
            now_unix,
            max,
            reply,
        } => {
            let due = w
                .lane_due(lane.0, now_unix, max)
                .into_iter()
                .filter_map(|id| match w.meta(id) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        crate::log!("spool: message {id} cannot be read: {e}");
                        None
                    }
                })
                .filter(|m| m.recipients.iter().any(|r| r.status == RcptStatus::Pending))
                .collect();
            let _ = reply.send(due);
        }
        Request::Body { id, offset, reply } => {
            let mut buf = vec![0u8; BODY_CHUNK];
            let r = w.read_body(id, offset, &mut buf).map(|n| {
                buf.truncate(n);
                buf
            });
            let _ = reply.send(r);
        }
        Request::Update { meta, reply } => {
            let _ = reply.send(w.update(&meta));
        }
        Request::Remove { id, reply } => {
            let _ = reply.send(w.remove(id));
        }
        Request::Flush { domain, reply } => {
            let _ = reply.send(w.expedite(domain.as_deref()));
        }
        Request::Tick => {}
        Request::Job(job) => job(w),
    }
}

/// The message of `slot`, begun now if it is new.
fn begun(w: &mut SpoolWriter<'_, '_, '_>, slot: MessageSlot) -> Result<Pending, SpoolError> {
    match slot {
        MessageSlot::Begun(p) => Ok(p),
        MessageSlot::New { envelope, declared } => w.begin(&envelope, declared),
    }
}

fn publish(u: &Usage, gauge: &Gauge) {
    gauge.update(|g| {
        g.messages = u64::from(u.messages + u.in_flight);
        g.bytes = u.bytes + u.reserved;
    });
}
