//! Power-cut test: a workload of enqueue / update / remove operations with bodies from
//! 1 KiB to 1 MiB runs once on a recording device; then, for cut points spread over every
//! program and erase it issued, the device contents after a power cut at that point are
//! rebuilt (hal's `Replay`), remounted and checked:
//!
//! - every enqueue that had returned is present and byte-identical;
//! - nothing partially written is visible (only the operation in flight may or may not
//!   have happened, and then completely);
//! - removed messages stay removed, recorded attempts stay recorded;
//! - no message is reported damaged, and the spool still accepts new mail.
//!
//! Two models of what survives are checked, alternating between cut points: ordered writes
//! with the cut write torn in half (raw flash), and a volatile write cache where each write
//! since the last sync independently landed or not (a file image in the page cache).
//!
//! Cutting at *every* program/erase of the workload (about 10,000 points here) takes several
//! minutes in a debug build, so CI checks `MAILBAG_POWERCUT_POINTS` points (default 2,400)
//! spread evenly over the whole workload; `MAILBAG_POWERCUT_POINTS=all` checks every one.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;

use mailbag::spool::{
    Access, Allocation, Barrier, Envelope, Flash, Limits, MessageId, Spool, SpoolError, format,
};
use mailbag_hal::{CacheModel, Geometry, LogEntry, PowerCut, PowerCutLog, RamDevice, Replay};

const BLOCKS: u32 = 2048; // 8 MiB
const OPS: usize = 240;
const NOW: u64 = 1_700_000_000;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn body(len: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        v.extend_from_slice(&r.next().to_le_bytes());
    }
    v.truncate(len);
    v
}

#[derive(Clone, Debug)]
enum Op {
    Enqueue {
        id: MessageId,
        len: usize,
        seed: u64,
    },
    Update {
        id: MessageId,
        attempts: u32,
    },
    Remove {
        id: MessageId,
    },
}

fn size_for(r: &mut Rng) -> usize {
    match r.below(10) {
        0..=5 => 1024 + r.below(15 * 1024) as usize,
        6..=8 => 16 * 1024 + r.below(240 * 1024) as usize,
        _ => 256 * 1024 + r.below(768 * 1024 + 1) as usize,
    }
}

fn mount_rw(dev: RamDevice) -> (Flash<RamDevice>, Allocation<RamDevice>) {
    (
        Flash::new(dev, Barrier::BlockSwitch).unwrap(),
        Allocation::new(),
    )
}

/// Runs the workload on a recording device; returns the base image, the log and the ops.
fn record_workload() -> (Vec<u8>, Vec<LogEntry>, Vec<Op>) {
    let geometry = Geometry::new(16, 16, 4096, BLOCKS).unwrap();
    let base = format(RamDevice::new(geometry), Barrier::BlockSwitch, NOW).unwrap();
    let base_image = base.image().to_vec();
    let log = PowerCutLog::new();
    let dev = PowerCut::new(base, None).with_log(log.clone());
    let mut flash: Flash<PowerCut<RamDevice>> = Flash::new(dev, Barrier::BlockSwitch).unwrap();
    let mut alloc = Allocation::new();
    let mut spool =
        Spool::mount(&mut alloc, &mut flash, Limits::default(), Access::ReadWrite).unwrap();

    let mut r = Rng(0x6d61_696c_6261_6721);
    let mut ops = Vec::new();
    let mut live: Vec<(MessageId, usize, u32)> = Vec::new();
    while ops.len() < OPS {
        let live_bytes: usize = live.iter().map(|l| l.1).sum();
        let choice = r.below(100);
        if live.len() < 2 || (choice < 50 && live_bytes < 4 << 20) {
            // The extremes first, then a random mix.
            let len = match ops.len() {
                0 => 1024,
                1 => 1 << 20,
                _ => size_for(&mut r),
            };
            let seed = r.next();
            let env = Envelope::new("sender@outside.test", ["rcpt@office.test"]).unwrap();
            let data = body(len, seed);
            let mut p = spool.begin(&env, 0).unwrap();
            for chunk in data.chunks(16 * 1024) {
                spool.append(&mut p, chunk).unwrap();
            }
            let id = spool.commit(p, &env, NOW).unwrap();
            live.push((id, len, 0));
            ops.push(Op::Enqueue { id, len, seed });
        } else if choice < 80 {
            let i = r.below(live.len() as u64) as usize;
            let mut meta = spool.meta(live[i].0).unwrap();
            meta.attempts += 1;
            meta.next_attempt_unix = NOW + 900 * u64::from(meta.attempts);
            meta.set_last_error("451 4.4.1 primary unreachable");
            spool.update(&meta).unwrap();
            live[i].2 = meta.attempts;
            ops.push(Op::Update {
                id: live[i].0,
                attempts: meta.attempts,
            });
        } else {
            // Mostly the oldest, as delivery would.
            let i = if r.below(3) == 0 {
                r.below(live.len() as u64) as usize
            } else {
                0
            };
            let (id, _, _) = live.remove(i);
            spool.remove(id).unwrap();
            ops.push(Op::Remove { id });
        }
        log.mark(ops.len() as u64 - 1);
    }
    (base_image, log.entries(), ops)
}

/// What the spool must hold after ops `[0, done)` completed and op `done` was in flight.
struct Expect {
    live: BTreeMap<MessageId, (usize, u64, u32)>,
    in_flight: Option<Op>,
}

fn expected(ops: &[Op], done: usize) -> Expect {
    let mut live = BTreeMap::new();
    for op in &ops[..done] {
        match *op {
            Op::Enqueue { id, len, seed } => {
                live.insert(id, (len, seed, 0));
            }
            Op::Update { id, attempts } => {
                if let Some(e) = live.get_mut(&id) {
                    e.2 = attempts;
                }
            }
            Op::Remove { id } => {
                live.remove(&id);
            }
        }
    }
    Expect {
        live,
        in_flight: ops.get(done).cloned(),
    }
}

/// Bodies of the workload, generated once.
struct Bodies(BTreeMap<u64, Vec<u8>>);
impl Bodies {
    fn of(ops: &[Op]) -> Self {
        let mut m = BTreeMap::new();
        for op in ops {
            if let Op::Enqueue { len, seed, .. } = *op {
                m.insert(seed, body(len, seed));
            }
        }
        Bodies(m)
    }
}

fn check(image: Vec<u8>, ops: &[Op], bodies: &Bodies, done: usize, what: &str) {
    let exp = expected(ops, done);
    let dev = RamDevice::from_image(16, 16, 4096, image).unwrap();
    let (mut flash, mut alloc) = mount_rw(dev);
    let mut spool = Spool::mount(&mut alloc, &mut flash, Limits::default(), Access::ReadWrite)
        .unwrap_or_else(|e| panic!("{what}: remount failed: {e}"));
    assert_eq!(
        spool.usage().damaged,
        0,
        "{what}: a power cut must not look like damage; in flight {:?}",
        exp.in_flight
    );

    let listed: Vec<MessageId> = spool.entries().iter().map(|e| e.id).collect();
    for id in exp.live.keys() {
        let removing = matches!(exp.in_flight, Some(Op::Remove { id: r }) if r == *id);
        assert!(
            listed.contains(id) || removing,
            "{what}: acknowledged message {id} lost"
        );
    }
    for id in &listed {
        let meta = spool.meta(*id).unwrap();
        let mut got = Vec::with_capacity(meta.size as usize);
        spool
            .stream_body(*id, |c| got.extend_from_slice(c))
            .unwrap_or_else(|e| panic!("{what}: body of {id} unreadable: {e}"));
        let (len, seed, attempts) = match (exp.live.get(id), &exp.in_flight) {
            (Some(&e), _) => e,
            (None, Some(Op::Enqueue { id: f, len, seed })) if f == id => (*len, *seed, 0),
            _ => {
                panic!("{what}: message {id} is listed but was never acknowledged (or was removed)")
            }
        };
        assert_eq!(got.len(), len, "{what}: {id} has the wrong length");
        assert!(got == bodies.0[&seed], "{what}: {id} is not byte-identical");
        let updating = matches!(exp.in_flight, Some(Op::Update { id: u, attempts: a }) if u == *id && a == meta.attempts);
        assert!(
            meta.attempts == attempts || updating,
            "{what}: {id} has attempts {} not {attempts}",
            meta.attempts
        );
    }

    // The spool still takes mail.
    let env = Envelope::new("after@outside.test", ["rcpt@office.test"]).unwrap();
    let mut p = spool.begin(&env, 0).unwrap();
    let msg = b"Subject: after the cut\r\n\r\nstill here\r\n";
    spool.append(&mut p, msg).unwrap();
    let id = spool.commit(p, &env, NOW).unwrap();
    let mut got = Vec::new();
    spool.stream_body(id, |c| got.extend_from_slice(c)).unwrap();
    assert_eq!(got, msg, "{what}: new mail after the cut");
}

#[test]
fn every_acknowledged_message_survives_power_cuts() {
    let (base, entries, ops) = record_workload();
    let cut_points: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, LogEntry::Program { .. } | LogEntry::Erase { .. }))
        .map(|(i, _)| i)
        .collect();
    let wanted = match std::env::var("MAILBAG_POWERCUT_POINTS").as_deref() {
        Ok("all") => cut_points.len(),
        Ok(n) => n
            .parse()
            .expect("MAILBAG_POWERCUT_POINTS: a number or 'all'"),
        Err(_) => 2400,
    };
    let step = (cut_points.len() as f64 / wanted.min(cut_points.len()) as f64).max(1.0);
    let sizes: Vec<usize> = ops
        .iter()
        .filter_map(|o| {
            if let Op::Enqueue { len, .. } = o {
                Some(*len)
            } else {
                None
            }
        })
        .collect();
    eprintln!(
        "workload: {} ops ({} enqueues, {} KiB..{} KiB), {} program/erase operations, checking {} cut points",
        ops.len(),
        sizes.len(),
        sizes.iter().min().unwrap() / 1024,
        sizes.iter().max().unwrap() / 1024,
        cut_points.len(),
        wanted.min(cut_points.len())
    );
    assert!(ops.len() >= 200 && sizes.contains(&1024) && sizes.contains(&(1 << 20)));

    let bodies = Bodies::of(&ops);
    let mut replay = Replay::new(&entries, base);
    let mut rng = Rng(42);
    let mut checked = 0usize;
    let mut x = 0.0f64;
    while (x as usize) < cut_points.len() {
        let cut = cut_points[x as usize];
        x += step;
        // Ops whose "returned" mark precedes the cut are complete.
        let done = entries[..cut]
            .iter()
            .filter(|e| matches!(e, LogEntry::Mark(_)))
            .count();
        let (model, tear) = if checked.is_multiple_of(2) {
            (CacheModel::WriteThrough, true)
        } else {
            (CacheModel::Volatile, false)
        };
        let image = replay.crash_image(cut, model, tear, &mut |_| rng.next() & 1 == 0);
        check(
            image,
            &ops,
            &bodies,
            done,
            &format!("cut at entry {cut} ({model:?}, op {done})"),
        );
        checked += 1;
    }
    // A cut after everything, too.
    let image = replay.crash_image(entries.len(), CacheModel::Volatile, false, &mut |_| false);
    check(image, &ops, &bodies, ops.len(), "after the workload");
    eprintln!("{checked} cut points checked");
}

#[test]
fn a_spool_left_without_sync_loses_nothing_it_acknowledged() {
    // Sanity for the model itself: a cut right after a commit keeps that message even if
    // nothing unsynced lands.
    let geometry = Geometry::new(16, 16, 4096, 64).unwrap();
    let base = format(RamDevice::new(geometry), Barrier::BlockSwitch, NOW).unwrap();
    let base_image = base.image().to_vec();
    let log = PowerCutLog::new();
    let dev = PowerCut::new(base, None).with_log(log.clone());
    let mut flash: Flash<PowerCut<RamDevice>> = Flash::new(dev, Barrier::BlockSwitch).unwrap();
    let id = {
        let mut alloc = Allocation::new();
        let mut spool =
            Spool::mount(&mut alloc, &mut flash, Limits::default(), Access::ReadWrite).unwrap();
        let env = Envelope::new("s@outside.test", ["r@office.test"]).unwrap();
        let mut p = spool.begin(&env, 0).unwrap();
        spool.append(&mut p, &body(5000, 1)).unwrap();
        spool.commit(p, &env, NOW).unwrap()
    };
    let entries = log.entries();
    let mut replay = Replay::new(&entries, base_image);
    let image = replay.crash_image(entries.len(), CacheModel::Volatile, false, &mut |_| false);
    let dev = RamDevice::from_image(16, 16, 4096, image).unwrap();
    let (mut flash, mut alloc) = mount_rw(dev);
    let spool = Spool::mount(&mut alloc, &mut flash, Limits::default(), Access::ReadWrite).unwrap();
    assert_eq!(spool.entries().len(), 1);
    assert_eq!(spool.entries()[0].id, id);
    assert!(matches!(
        spool.meta(MessageId(id.0 + 1)),
        Err(SpoolError::NotFound)
    ));
}
