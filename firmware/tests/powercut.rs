//! Power-cut test: a workload runs once on a recording device — a format-1 spool is
//! converted at mount (migration), then batches of enqueues (group commits of 1–3 messages),
//! attempt records, removals and forced reclaims (the oldest segment's live mail copied
//! forward and the segment deleted), with bodies from 1 KiB to 1 MiB. Then, for cut points
//! spread over every program and erase it issued, the device contents after a power cut at
//! that point are rebuilt (hal's `Replay`), remounted and checked:
//!
//! - every enqueue that had returned is present and byte-identical, once;
//! - a batch of enqueues in flight appears whole or not at all;
//! - nothing partially written is visible, removed messages stay removed (none comes back
//!   from an older segment), recorded attempts stay recorded;
//! - a migration in flight loses and doubles nothing: every format-1 message is there once,
//!   with its state;
//! - no segment is reported damaged, and the spool still accepts new mail.
//!
//! Two models of what survives are checked, alternating between cut points: ordered writes
//! with the cut write torn in half (raw flash), and a volatile write cache where each write
//! since the last sync independently landed or not (a file image in the page cache).
//!
//! Cutting at *every* program/erase of the workload takes minutes in a debug build, so CI
//! checks `MAILBAG_POWERCUT_POINTS` points (default 2,400) spread evenly over the whole
//! workload; `MAILBAG_POWERCUT_POINTS=all` checks every one.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};

use mailbag::spool::{
    Access, Allocation, Barrier, CHUNK, Envelope, Flash, Limits, MessageId, Spool, v1,
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
    /// The mount that converts the format-1 spool.
    Migrate,
    /// One group commit of these messages: (id, length, seed).
    Enqueue(Vec<(MessageId, usize, u64)>),
    Update {
        id: MessageId,
        attempts: u32,
    },
    Remove {
        id: MessageId,
    },
    /// The oldest segment's live mail copied forward, the segment deleted.
    Reclaim,
}

fn size_for(r: &mut Rng) -> usize {
    match r.below(10) {
        0..=5 => 1024 + r.below(15 * 1024) as usize,
        6..=8 => 16 * 1024 + r.below(240 * 1024) as usize,
        _ => 256 * 1024 + r.below(768 * 1024 + 1) as usize,
    }
}

/// The format-1 messages the workload starts from: (length, seed, attempts).
const V1: [(usize, u64, u32); 4] = [
    (1024, 101, 0),
    (40_000, 102, 2),
    (3000, 103, 5),
    (300_000, 104, 1),
];

fn v1_id(i: usize) -> MessageId {
    MessageId((1 << 32) | i as u64)
}

fn v1_image() -> Vec<u8> {
    let bodies: Vec<Vec<u8>> = V1.iter().map(|&(n, s, _)| body(n, s)).collect();
    let fixtures: Vec<v1::Fixture<'_>> = V1
        .iter()
        .zip(&bodies)
        .map(|(&(_, _, a), b)| {
            (
                Envelope::new("old@outside.test", ["rcpt@office.test"]).unwrap(),
                &b[..],
                a,
                "451 4.4.1 primary unreachable",
            )
        })
        .collect();
    let geometry = Geometry::new(16, 16, 4096, BLOCKS).unwrap();
    v1::write_image(RamDevice::new(geometry), NOW, &fixtures)
        .unwrap()
        .image()
        .to_vec()
}

fn mount_rw(dev: RamDevice) -> (Flash<RamDevice>, Allocation<RamDevice>) {
    (
        Flash::new(dev, Barrier::BlockSwitch).unwrap(),
        Allocation::new(),
    )
}

/// Runs the workload on a recording device; returns the base image, the log and the ops.
fn record_workload() -> (Vec<u8>, Vec<LogEntry>, Vec<Op>) {
    let base_image = v1_image();
    let log = PowerCutLog::new();
    let dev = PowerCut::new(
        RamDevice::from_image(16, 16, 4096, base_image.clone()).unwrap(),
        None,
    )
    .with_log(log.clone());
    let mut flash: Flash<PowerCut<RamDevice>> = Flash::new(dev, Barrier::BlockSwitch).unwrap();
    let mut alloc = Allocation::new();
    let mut spool =
        Spool::mount(&mut alloc, &mut flash, Limits::default(), Access::ReadWrite).unwrap();
    assert_eq!(spool.usage().migrated as usize, V1.len());
    let mut ops = vec![Op::Migrate];
    log.mark(0);

    let mut r = Rng(0x6d61_696c_6261_6721);
    let mut live: Vec<(MessageId, usize, u32)> = V1
        .iter()
        .enumerate()
        .map(|(i, &(n, _, a))| (v1_id(i), n, a))
        .collect();
    let env = Envelope::new("sender@outside.test", ["rcpt@office.test"]).unwrap();
    while ops.len() < OPS {
        let live_bytes: usize = live.iter().map(|l| l.1).sum();
        let choice = r.below(100);
        let op = if ops.len() < 3 || live.len() < 2 || (choice < 45 && live_bytes < 4 << 20) {
            let n = 1 + r.below(3) as usize;
            let batch: Vec<(usize, u64)> = (0..n)
                .map(|k| {
                    // The extremes first, then a random mix.
                    let len = match (ops.len(), k) {
                        (1, 0) => 1024,
                        (2, 0) => 1 << 20,
                        _ => size_for(&mut r),
                    };
                    (len, r.next())
                })
                .collect();
            let ids = spool
                .with_writer(|w| {
                    batch
                        .iter()
                        .map(|&(len, seed)| {
                            let data = body(len, seed);
                            let mut p = w.begin(&env, 0).unwrap();
                            let full = len / CHUNK * CHUNK;
                            w.append(&mut p, &data[..full]).unwrap();
                            w.commit(p, &env, &data[full..], NOW).unwrap()
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap();
            let batch: Vec<(MessageId, usize, u64)> = ids
                .iter()
                .zip(&batch)
                .map(|(&id, &(len, seed))| (id, len, seed))
                .collect();
            for &(id, len, _) in &batch {
                live.push((id, len, 0));
            }
            Op::Enqueue(batch)
        } else if choice < 72 {
            let i = r.below(live.len() as u64) as usize;
            let mut meta = spool.meta(live[i].0).unwrap();
            meta.attempts += 1;
            meta.next_attempt_unix = NOW + 900 * u64::from(meta.attempts);
            meta.set_last_error("451 4.4.1 primary unreachable");
            spool.update(&meta).unwrap();
            live[i].2 = meta.attempts;
            Op::Update {
                id: live[i].0,
                attempts: meta.attempts,
            }
        } else if choice < 94 {
            // Mostly the oldest, as delivery would.
            let i = if r.below(3) == 0 {
                r.below(live.len() as u64) as usize
            } else {
                0
            };
            let (id, _, _) = live.remove(i);
            spool.remove(id).unwrap();
            Op::Remove { id }
        } else {
            spool
                .with_writer(|w| w.copy_forward(u64::MAX).unwrap())
                .unwrap();
            Op::Reclaim
        };
        ops.push(op);
        log.mark(ops.len() as u64 - 1);
    }
    let reclaims = ops.iter().filter(|o| matches!(o, Op::Reclaim)).count();
    assert!(reclaims >= 5, "{reclaims} reclaims in the workload");
    (base_image, log.entries(), ops)
}

/// What the spool must hold after ops `[0, done)` completed and op `done` was in flight:
/// id → (length, seed, attempts).
struct Expect {
    live: BTreeMap<MessageId, (usize, u64, u32)>,
    in_flight: Option<Op>,
}

fn expected(ops: &[Op], done: usize) -> Expect {
    let mut live = BTreeMap::new();
    for (i, &(n, s, a)) in V1.iter().enumerate() {
        // Migration never loses a message, cut or not: they are expected from the start.
        live.insert(v1_id(i), (n, s, a));
    }
    for op in &ops[..done] {
        match op {
            Op::Migrate | Op::Reclaim => {}
            Op::Enqueue(batch) => {
                for &(id, len, seed) in batch {
                    live.insert(id, (len, seed, 0));
                }
            }
            Op::Update { id, attempts } => {
                if let Some(e) = live.get_mut(id) {
                    e.2 = *attempts;
                }
            }
            Op::Remove { id } => {
                live.remove(id);
            }
        }
    }
    Expect {
        live,
        in_flight: ops.get(done).cloned(),
    }
}

/// Bodies of the workload, generated once, by seed.
struct Bodies(BTreeMap<u64, Vec<u8>>);
impl Bodies {
    fn of(ops: &[Op]) -> Self {
        let mut m = BTreeMap::new();
        for &(n, s, _) in &V1 {
            m.insert(s, body(n, s));
        }
        for op in ops {
            if let Op::Enqueue(batch) = op {
                for &(_, len, seed) in batch {
                    m.insert(seed, body(len, seed));
                }
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

    let listed: BTreeSet<MessageId> = spool.list().iter().map(|e| e.id).collect();
    assert_eq!(listed.len(), spool.len(), "{what}: an id listed twice");
    for id in exp.live.keys() {
        let removing = matches!(&exp.in_flight, Some(Op::Remove { id: r }) if r == id);
        assert!(
            listed.contains(id) || removing,
            "{what}: acknowledged message {id} lost"
        );
    }
    if let Some(Op::Enqueue(batch)) = &exp.in_flight {
        let present = batch.iter().filter(|b| listed.contains(&b.0)).count();
        assert!(
            present == 0 || present == batch.len(),
            "{what}: {present} of a batch of {} visible: a group commit is all or nothing",
            batch.len()
        );
    }
    for id in &listed {
        let meta = spool.meta(*id).unwrap();
        let mut got = Vec::with_capacity(meta.size as usize);
        spool
            .stream_body(*id, |c| got.extend_from_slice(c))
            .unwrap_or_else(|e| panic!("{what}: body of {id} unreadable: {e}"));
        let in_batch = match &exp.in_flight {
            Some(Op::Enqueue(batch)) => batch.iter().find(|b| b.0 == *id).map(|b| (b.1, b.2, 0)),
            _ => None,
        };
        let (len, seed, attempts) = match (exp.live.get(id), in_batch) {
            (Some(&e), _) => e,
            (None, Some(e)) => e,
            _ => {
                panic!("{what}: message {id} is listed but was never acknowledged (or was removed)")
            }
        };
        assert_eq!(got.len(), len, "{what}: {id} has the wrong length");
        assert!(got == bodies.0[&seed], "{what}: {id} is not byte-identical");
        let updating = matches!(&exp.in_flight, Some(Op::Update { id: u, attempts: a }) if u == id && *a == meta.attempts);
        assert!(
            meta.attempts == attempts || updating,
            "{what}: {id} has attempts {} not {attempts}",
            meta.attempts
        );
    }

    // The spool still takes mail.
    let env = Envelope::new("after@outside.test", ["rcpt@office.test"]).unwrap();
    let msg = b"Subject: after the cut\r\n\r\nstill here\r\n";
    let id = spool
        .with_writer(|w| {
            let p = w.begin(&env, 0).unwrap();
            w.commit(p, &env, msg, NOW).unwrap()
        })
        .unwrap();
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
        .flat_map(|o| match o {
            Op::Enqueue(b) => b.iter().map(|x| x.1).collect(),
            _ => Vec::new(),
        })
        .collect();
    let migration_points = cut_points
        .iter()
        .filter(|&&c| !entries[..c].iter().any(|e| matches!(e, LogEntry::Mark(_))))
        .count();
    eprintln!(
        "workload: {} ops ({} enqueued in {} batches, {} KiB..{} KiB; {} reclaims; migration of {} messages), \
         {} program/erase operations ({} during migration), checking {} cut points",
        ops.len(),
        sizes.len(),
        ops.iter().filter(|o| matches!(o, Op::Enqueue(_))).count(),
        sizes.iter().min().unwrap() / 1024,
        sizes.iter().max().unwrap() / 1024,
        ops.iter().filter(|o| matches!(o, Op::Reclaim)).count(),
        V1.len(),
        cut_points.len(),
        migration_points,
        wanted.min(cut_points.len())
    );
    assert!(ops.len() >= 200 && sizes.contains(&1024) && sizes.contains(&(1 << 20)));
    assert!(migration_points > 20, "the migration is cut too");

    let bodies = Bodies::of(&ops);
    let mut replay = Replay::new(&entries, base);
    // MAILBAG_POWERCUT_AT=N: check only the cut at log entry N (both models), to debug one;
    // with MAILBAG_POWERCUT_TRACE=ID (16 hex digits) also list that message's frames.
    if let Ok(at) = std::env::var("MAILBAG_POWERCUT_AT") {
        let cut: usize = at.parse().expect("MAILBAG_POWERCUT_AT: a log entry number");
        let done = entries[..cut]
            .iter()
            .filter(|e| matches!(e, LogEntry::Mark(_)))
            .count();
        eprintln!("op {done} in flight: {:?}", ops.get(done));
        if let Ok(id) = std::env::var("MAILBAG_POWERCUT_TRACE") {
            let id = MessageId(u64::from_str_radix(&id, 16).unwrap());
            let image = replay.crash_image(cut, CacheModel::WriteThrough, true, &mut |_| false);
            eprintln!("at the cut:");
            trace(&image, id);
            {
                let dev = RamDevice::from_image(16, 16, 4096, image.clone()).unwrap();
                let mut flash: Flash<RamDevice> = Flash::new(dev, Barrier::None).unwrap();
                let mut alloc = Allocation::new();
                let s = Spool::mount(&mut alloc, &mut flash, Limits::default(), Access::ReadOnly)
                    .unwrap();
                eprintln!(
                    "RO mount: {:?}; listed: {}",
                    s.usage(),
                    s.list().iter().any(|e| e.id == id)
                );
            }
            let before = entries[..cut]
                .iter()
                .rposition(|e| matches!(e, LogEntry::Mark(_)))
                .unwrap();
            let image = replay.crash_image(before, CacheModel::WriteThrough, false, &mut |_| false);
            eprintln!("before the op:");
            trace(&image, id);
        }
        for (model, tear) in [
            (CacheModel::WriteThrough, true),
            (CacheModel::Volatile, false),
        ] {
            let image = replay.crash_image(cut, model, tear, &mut |_| false);
            check(
                image,
                &ops,
                &bodies,
                done,
                &format!("cut at entry {cut} ({model:?})"),
            );
        }
        return;
    }
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
    let base = mailbag::spool::format(RamDevice::new(geometry), Barrier::BlockSwitch, NOW).unwrap();
    let base_image = base.image().to_vec();
    let log = PowerCutLog::new();
    let dev = PowerCut::new(base, None).with_log(log.clone());
    let mut flash: Flash<PowerCut<RamDevice>> = Flash::new(dev, Barrier::BlockSwitch).unwrap();
    let id = {
        let mut alloc = Allocation::new();
        let mut spool =
            Spool::mount(&mut alloc, &mut flash, Limits::default(), Access::ReadWrite).unwrap();
        let env = Envelope::new("s@outside.test", ["r@office.test"]).unwrap();
        let p = spool.begin(&env, 0).unwrap();
        spool
            .with_writer(|w| w.commit(p, &env, &body(5000, 1), NOW).unwrap())
            .unwrap()
    };
    let entries = log.entries();
    let mut replay = Replay::new(&entries, base_image);
    let image = replay.crash_image(entries.len(), CacheModel::Volatile, false, &mut |_| false);
    let dev = RamDevice::from_image(16, 16, 4096, image).unwrap();
    let (mut flash, mut alloc) = mount_rw(dev);
    let spool = Spool::mount(&mut alloc, &mut flash, Limits::default(), Access::ReadWrite).unwrap();
    assert_eq!(spool.len(), 1);
    assert_eq!(spool.list()[0].id, id);
    assert!(spool.meta(MessageId(id.0 + 1)).is_err());
}

/// Debug aid (MAILBAG_POWERCUT_AT with MAILBAG_POWERCUT_TRACE=ID): every frame in the
/// image's log that names `id`, and any frame that does not check.
fn trace(image: &[u8], id: MessageId) {
    use mailbag::spool::frame::{self, HEADER_LEN, Kind};
    let dev = RamDevice::from_image(16, 16, 4096, image.to_vec()).unwrap();
    let mut flash: Flash<RamDevice> = Flash::new(dev, Barrier::None).unwrap();
    let mut alloc = Allocation::new();
    let fs = littlefs2::fs::Filesystem::mount(&mut alloc, &mut flash).unwrap();
    let mut names = Vec::new();
    fs.read_dir_and_then(&littlefs2::path::PathBuf::try_from("/log").unwrap(), |d| {
        for e in d {
            let e = e?;
            let n = e.file_name().as_str().to_string();
            if n.len() == 8 {
                names.push((n, e.metadata().len()));
            }
        }
        Ok(())
    })
    .unwrap();
    names.sort();
    eprintln!("segments: {names:?}");
    for (n, len) in names {
        let p = littlefs2::path::PathBuf::try_from(format!("/log/{n}").as_str()).unwrap();
        let mut data = vec![0u8; len];
        littlefs2::fs::File::open_and_then(&fs, &p, |f| {
            let mut got = 0;
            while got < len {
                let k = f.read(&mut data[got..])?;
                if k == 0 {
                    break;
                }
                got += k;
            }
            Ok(())
        })
        .unwrap();
        let mut off = 0usize;
        while off + HEADER_LEN <= len {
            let raw: [u8; HEADER_LEN] = data[off..off + HEADER_LEN].try_into().unwrap();
            let Ok(h) = frame::parse_header(&raw) else {
                eprintln!("  {n} @{off}: bad header {:02x?}", &raw);
                break;
            };
            let rec = &data[off + HEADER_LEN..off + HEADER_LEN + h.rlen as usize];
            if frame::check(&h, &raw, rec).is_err() {
                eprintln!("  {n} @{off}: checksum fails {h:?}");
            }
            let named = match h.kind {
                Kind::Message => frame::decode::<frame::MessageRec>(rec)
                    .map(|m| (m.meta.id, format!("{:?}", m.body)))
                    .ok(),
                Kind::Chunk => frame::decode::<frame::ChunkRec>(rec)
                    .map(|c| (c.id, format!("chunk {}", c.seq)))
                    .ok(),
                Kind::State => frame::decode::<frame::StateRec>(rec)
                    .map(|c| (c.id, "state".into()))
                    .ok(),
                Kind::Done => frame::decode::<frame::DoneRec>(rec)
                    .map(|c| (c.id, "done".into()))
                    .ok(),
                Kind::Group => frame::decode::<frame::GroupRec>(rec)
                    .map(|c| (c.id, "group".into()))
                    .ok(),
            };
            if let Some((i, what)) = named {
                if i == id {
                    eprintln!("  {n} @{off}: {:?} {what}", h.kind);
                }
            }
            off += h.frame_len() as usize;
        }
    }
}
