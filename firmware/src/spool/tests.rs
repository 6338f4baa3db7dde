//! Spool operations on a RAM device: round trips, capacities, damage, recovery, reclaim,
//! migration from format 1.

use std::ops::ControlFlow;

use mailbag_hal::{BlockDevice, Geometry, RamDevice};

use super::*;

const NOW: u64 = 1_700_000_000;

fn ram(blocks: u32) -> RamDevice {
    RamDevice::new(Geometry::new(16, 16, 4096, blocks).unwrap())
}

fn formatted(blocks: u32) -> RamDevice {
    format(ram(blocks), Barrier::BlockSwitch, NOW).unwrap()
}

/// Mounts `dev`, runs `f`, unmounts, and hands the device back.
fn with<R>(
    dev: RamDevice,
    limits: Limits,
    f: impl FnOnce(&mut Spool<'_, RamDevice>) -> R,
) -> (RamDevice, R) {
    let mut flash: Flash<RamDevice> = Flash::new(dev, Barrier::BlockSwitch).unwrap();
    let r = {
        let mut alloc = Allocation::new();
        let mut spool = Spool::mount(&mut alloc, &mut flash, limits, Access::ReadWrite).unwrap();
        f(&mut spool)
    };
    (flash.into_device().unwrap(), r)
}

fn try_mount(dev: RamDevice, access: Access) -> (RamDevice, Result<Usage, SpoolError>) {
    let mut flash: Flash<RamDevice> = Flash::new(dev, Barrier::BlockSwitch).unwrap();
    let r = {
        let mut alloc = Allocation::new();
        Spool::mount(&mut alloc, &mut flash, Limits::default(), access).map(|s| s.usage())
    };
    (flash.into_device().unwrap(), r)
}

fn body(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn enqueue(s: &mut Spool<'_, RamDevice>, rcpt: &str, data: &[u8]) -> Result<MessageId, SpoolError> {
    let env = Envelope::new("sender@outside.test", [rcpt]).unwrap();
    let mut p = s.begin(&env, 0)?;
    for chunk in data.chunks(CHUNK) {
        if let Err(e) = s.append(&mut p, chunk) {
            s.abort(p);
            return Err(e);
        }
    }
    s.commit(p, &env, NOW)
}

fn ids(s: &Spool<'_, RamDevice>) -> Vec<MessageId> {
    s.list().iter().map(|e| e.id).collect()
}

fn read_all(s: &Spool<'_, RamDevice>, id: MessageId) -> Vec<u8> {
    let mut out = Vec::new();
    s.stream_body(id, |c| out.extend_from_slice(c)).unwrap();
    out
}

/// The littlefs files of an image (name, size), for tests that look under the log.
fn files(dev: RamDevice, dir: &str) -> (RamDevice, Vec<(String, usize)>) {
    let mut flash: Flash<RamDevice> = Flash::new(dev, Barrier::None).unwrap();
    let mut out = Vec::new();
    {
        let mut alloc = Allocation::new();
        let fs = littlefs2::fs::Filesystem::mount(&mut alloc, &mut flash).unwrap();
        let p = littlefs2::path::PathBuf::try_from(dir).unwrap();
        fs.read_dir_and_then(&p, |d| {
            for e in d {
                let e = e?;
                let n = e.file_name().as_str().to_string();
                if n != "." && n != ".." {
                    out.push((n, e.metadata().len()));
                }
            }
            Ok(())
        })
        .unwrap();
    }
    (flash.into_device().unwrap(), out)
}

#[test]
fn enqueue_streams_and_reads_back_byte_identical_after_remount() {
    let dev = formatted(256);
    let big = body(100_000, 7);
    let (dev, (a, b)) = with(dev, Limits::default(), |s| {
        let a = enqueue(s, "alice@office.test", b"Subject: hi\r\n\r\nhello\r\n").unwrap();
        let b = enqueue(s, "bob@office.test", &big).unwrap();
        (a, b)
    });
    let (_, ()) = with(dev, Limits::default(), |s| {
        assert_eq!(ids(s), vec![a, b]);
        assert_eq!(read_all(s, a), b"Subject: hi\r\n\r\nhello\r\n");
        assert_eq!(read_all(s, b), big);
        let meta = s.meta(b).unwrap();
        assert_eq!(meta.size, 100_000);
        assert_eq!(meta.sender.as_str(), "sender@outside.test");
        assert_eq!(meta.recipients[0].address.as_str(), "bob@office.test");
        assert_eq!(meta.received_unix, NOW);
        assert_eq!(s.usage().bytes, 100_000 + 22);
        // A new mount never reuses an id.
        let c = enqueue(s, "carol@office.test", b"x").unwrap();
        assert!(c > b && c.0 >> 32 == 2, "{c}");
    });
}

#[test]
fn a_batch_of_commits_is_durable_only_after_its_sync_and_invisible_before() {
    let (dev, ids) = with(formatted(128), Limits::default(), |s| {
        s.run(|w| {
            let env = Envelope::new("s@x.test", ["a@office.test"]).unwrap();
            let mut got = Vec::new();
            for i in 0..3u8 {
                let p = w.begin(&env, 0).unwrap();
                got.push(w.commit(p, &env, &body(500, i), NOW).unwrap());
                // Not durable yet: not readable, not due.
                assert!(w.meta(got[i as usize]).is_err());
                assert!(
                    w.lane_due(index::lane_of(domain_key("office.test")), NOW, 9)
                        .is_empty()
                );
            }
            assert!(w.is_dirty());
            w.sync().unwrap();
            for (i, id) in got.iter().enumerate() {
                let mut out = Vec::new();
                w.stream_body(*id, |c| out.extend_from_slice(c)).unwrap();
                assert_eq!(out, body(500, i as u8));
            }
            let lane = index::lane_of(domain_key("office.test"));
            assert_eq!(w.lane_due(lane, NOW, 9), got);
            ControlFlow::Break(got)
        })
        .unwrap()
    });
    let (_, ()) = with(dev, Limits::default(), |s| {
        let listed: Vec<MessageId> = s.list().iter().map(|e| e.id).collect();
        assert_eq!(listed, ids);
    });
}

#[test]
fn one_sync_per_batch_whatever_its_size() {
    // The group commit: 20 messages in one batch cost the same device syncs as one.
    let (_, (one, twenty)) = with(formatted(512), Limits::default(), |s| {
        let env = Envelope::new("s@x.test", ["a@office.test"]).unwrap();
        let batch = |s: &mut Spool<'_, RamDevice>, n: usize| {
            let before = s.usage().flash.syncs;
            s.with_writer(|w| {
                for i in 0..n {
                    let p = w.begin(&env, 0).unwrap();
                    w.commit(p, &env, &body(4096, i as u8), NOW).unwrap();
                }
            })
            .unwrap();
            s.usage().flash.syncs - before
        };
        batch(s, 1); // the first write of a mount may relocate metadata
        (batch(s, 1), batch(s, 20))
    });
    assert!(one <= 2, "{one} syncs for one message");
    assert_eq!(one, twenty, "a batch of 20 syncs like a batch of 1");
}

#[test]
fn empty_body_is_a_valid_message() {
    let (_, ()) = with(formatted(64), Limits::default(), |s| {
        let id = enqueue(s, "a@office.test", b"").unwrap();
        assert_eq!(read_all(s, id), b"");
    });
}

#[test]
fn a_body_of_any_size_up_to_many_chunks_round_trips() {
    // Inline, exactly one chunk, a chunk list, and past GROUP chunks (group frames).
    let sizes = [
        1,
        CHUNK - 1,
        CHUNK,
        CHUNK + 1,
        3 * CHUNK,
        (frame::GROUP + 3) * CHUNK + 17,
    ];
    let (dev, stored) = with(formatted(2048), Limits::default(), |s| {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| (enqueue(s, "a@office.test", &body(n, i as u8)).unwrap(), n))
            .collect::<Vec<_>>()
    });
    let (_, ()) = with(dev, Limits::default(), |s| {
        for (i, &(id, n)) in stored.iter().enumerate() {
            assert_eq!(read_all(s, id), body(n, i as u8), "size {n}");
            // Reads at any offset stop at a chunk boundary and continue correctly.
            let mut buf = vec![0u8; 100];
            let start = (n as u64).saturating_sub(50);
            let (mut off, mut got) = (start, Vec::new());
            loop {
                let k = s.read_body(id, off, &mut buf).unwrap();
                if k == 0 {
                    break;
                }
                assert!(k as u64 <= CHUNK as u64 - off % CHUNK as u64);
                got.extend_from_slice(&buf[..k]);
                off += k as u64;
            }
            assert_eq!(got, &body(n, i as u8)[start as usize..]);
        }
    });
}

#[test]
fn only_a_bodys_last_chunk_may_be_short() {
    let (_, ()) = with(formatted(64), Limits::default(), |s| {
        let env = Envelope::new("s@x.test", ["a@office.test"]).unwrap();
        let mut p = s.begin(&env, 0).unwrap();
        s.append(&mut p, b"short").unwrap();
        assert!(s.append(&mut p, b"more").is_err());
        let id = s.commit(p, &env, NOW).unwrap();
        assert_eq!(read_all(s, id), b"short");
    });
}

#[test]
fn message_count_limit_is_a_capacity_error() {
    let limits = Limits {
        max_messages: 2,
        ..Limits::default()
    };
    let (_, ()) = with(formatted(64), limits, |s| {
        enqueue(s, "a@office.test", b"1").unwrap();
        let env = Envelope::new("s@x.test", ["a@office.test"]).unwrap();
        let p = s.begin(&env, 0).unwrap();
        // The one being received counts too.
        let err = s.begin(&env, 0).unwrap_err();
        assert!(matches!(err, SpoolError::TooManyMessages) && err.is_capacity());
        s.abort(p);
        enqueue(s, "a@office.test", b"2").unwrap();
        assert!(matches!(
            enqueue(s, "a@office.test", b"3"),
            Err(SpoolError::TooManyMessages)
        ));
    });
}

#[test]
fn byte_limit_is_checked_up_front_and_while_streaming() {
    let limits = Limits {
        max_bytes: 50_000,
        ..Limits::default()
    };
    let (dev, ()) = with(formatted(128), limits, |s| {
        let env = Envelope::new("s@x.test", ["a@office.test"]).unwrap();
        assert!(matches!(s.begin(&env, 60_000), Err(SpoolError::Full)));
        enqueue(s, "a@office.test", &body(30_000, 1)).unwrap();
        assert!(matches!(
            enqueue(s, "a@office.test", &body(30_000, 2)),
            Err(SpoolError::Full)
        ));
        let u = s.usage();
        assert_eq!(
            (u.messages, u.bytes, u.in_flight, u.reserved),
            (1, 30_000, 0, 0)
        );
    });
    // The refused message left nothing behind.
    let (_, ()) = with(dev, limits, |s| assert_eq!(s.len(), 1));
}

#[test]
fn per_domain_quota_names_the_domain_and_spares_others() {
    let limits = Limits {
        max_bytes_per_domain: 10_000,
        ..Limits::default()
    };
    let (dev, ()) = with(formatted(128), limits, |s| {
        enqueue(s, "a@full.test", &body(8_000, 1)).unwrap();
        let env = Envelope::new("s@x.test", ["b@FULL.test"]).unwrap();
        match s.begin(&env, 5_000) {
            Err(SpoolError::DomainQuota(d)) => assert_eq!(d, "full.test"),
            other => panic!("expected a quota error, got {other:?}"),
        }
        assert!(matches!(
            enqueue(s, "b@full.test", &body(5_000, 2)),
            Err(SpoolError::DomainQuota(_))
        ));
        enqueue(s, "b@other.test", &body(9_000, 3)).unwrap();
    });
    // The count is rebuilt at mount.
    let (_, ()) = with(dev, limits, |s| {
        assert!(matches!(
            enqueue(s, "c@full.test", &body(5_000, 4)),
            Err(SpoolError::DomainQuota(_))
        ));
        enqueue(s, "c@full.test", &body(1_000, 4)).unwrap();
    });
}

#[test]
fn abort_and_interrupted_enqueue_leave_nothing() {
    let (dev, ()) = with(formatted(64), Limits::default(), |s| {
        let env = Envelope::new("s@x.test", ["a@office.test"]).unwrap();
        let mut p = s.begin(&env, 0).unwrap();
        s.append(&mut p, &body(CHUNK, 1)).unwrap();
        s.abort(p);
        assert_eq!(s.usage().reserved, 0);
        // A second one is "interrupted": the spool goes away without commit or abort.
        let mut p = s.begin(&env, 0).unwrap();
        s.append(&mut p, &body(CHUNK, 2)).unwrap();
        std::mem::forget(p);
    });
    let (_, ()) = with(dev, Limits::default(), |s| {
        assert!(s.is_empty());
        assert_eq!(s.usage().damaged, 0);
        let id = enqueue(s, "a@office.test", b"ok").unwrap();
        assert_eq!(read_all(s, id), b"ok");
    });
}

#[test]
fn messages_committed_out_of_order_stay_reachable() {
    // Concurrent sessions: ids are handed out at begin, commits come in any order.
    let dev = formatted(64);
    let (_, ()) = with(dev, Limits::default(), |s| {
        let env = Envelope::new("sender@outside.test", ["a@office.test"]).unwrap();
        let mut pending = Vec::new();
        for i in 0..5u8 {
            let mut p = s.begin(&env, 0).unwrap();
            s.append(&mut p, &body(100, i)).unwrap();
            pending.push(Some(p));
        }
        let mut got = Vec::new();
        // Commit order 3, 1, 4, 0, 2.
        for i in [3, 1, 4, 0, 2] {
            let p = pending[i].take().unwrap();
            got.push(s.commit(p, &env, NOW).unwrap());
        }
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(ids(s), sorted, "listed oldest (lowest id) first");
        let lane = index::lane_of(domain_key("office.test"));
        let due = s.with_writer(|w| w.lane_due(lane, NOW, 10)).unwrap();
        assert_eq!(due, sorted, "delivered oldest first");
        for id in &got {
            let mut meta = s.meta(*id).unwrap();
            meta.attempts = 1;
            s.update(&meta).unwrap();
        }
        for id in &got {
            s.remove(*id).unwrap();
        }
        assert!(s.is_empty());
    });
}

#[test]
fn update_and_remove_persist() {
    let dev = formatted(64);
    let (dev, (a, b)) = with(dev, Limits::default(), |s| {
        let a = enqueue(s, "a@office.test", b"one").unwrap();
        let b = enqueue(s, "b@office.test", b"two").unwrap();
        let mut meta = s.meta(a).unwrap();
        meta.attempts = 3;
        meta.next_attempt_unix = NOW + 900;
        meta.recipients[0].status = RcptStatus::Failed;
        meta.set_last_error("451 4.3.0 try later");
        s.update(&meta).unwrap();
        s.remove(b).unwrap();
        assert!(matches!(s.meta(b), Err(SpoolError::NotFound)));
        (a, b)
    });
    let (_, ()) = with(dev, Limits::default(), |s| {
        assert_eq!(s.len(), 1);
        let meta = s.meta(a).unwrap();
        assert_eq!(meta.attempts, 3);
        assert_eq!(meta.next_attempt_unix, NOW + 900);
        assert_eq!(meta.recipients[0].status, RcptStatus::Failed);
        assert_eq!(meta.last_error.as_str(), "451 4.3.0 try later");
        assert_eq!(s.list()[0].attempts, 3);
        assert!(matches!(s.remove(b), Err(SpoolError::NotFound)));
        // Not due before its time, due after it.
        let lane = index::lane_of(domain_key("office.test"));
        let due = s
            .with_writer(|w| (w.lane_due(lane, NOW, 5), w.lane_due(lane, NOW + 900, 5)))
            .unwrap();
        assert_eq!(due, (vec![], vec![a]));
    });
}

#[test]
fn an_attempt_recorded_before_its_sync_is_what_the_next_read_sees() {
    // State frames ride the next group commit; a read in between (the admin page, a
    // second action) must see the new state, or it would write the old one back.
    let (_, ()) = with(formatted(64), Limits::default(), |s| {
        let id = enqueue(s, "a@office.test", b"one").unwrap();
        s.run(|w| {
            let mut m = w.meta(id).unwrap();
            m.attempts = 2;
            m.set_last_error("451 try later");
            w.update(&m).unwrap();
            assert!(w.is_dirty(), "not synced yet");
            let again = w.meta(id).unwrap();
            assert_eq!(
                (again.attempts, again.last_error.as_str()),
                (2, "451 try later")
            );
            ControlFlow::Break(())
        })
        .unwrap();
        assert_eq!(s.meta(id).unwrap().attempts, 2);
    });
}

#[test]
fn a_flush_makes_held_mail_due_without_writing_flash() {
    let (_, ()) = with(formatted(64), Limits::default(), |s| {
        let a = enqueue(s, "a@office.test", b"one").unwrap();
        let b = enqueue(s, "b@branch.test", b"two").unwrap();
        for id in [a, b] {
            let mut meta = s.meta(id).unwrap();
            meta.next_attempt_unix = NOW + 3600;
            s.update(&meta).unwrap();
        }
        let before = s.usage().flash.programmed;
        assert_eq!(s.expedite(Some("branch.test")), 1);
        assert_eq!(s.usage().flash.programmed, before);
        let lane = |d| index::lane_of(domain_key(d));
        let due = s
            .with_writer(|w| {
                (
                    w.lane_due(lane("office.test"), NOW, 5),
                    w.lane_due(lane("branch.test"), NOW, 5),
                )
            })
            .unwrap();
        assert_eq!(due, (vec![], vec![b]));
        assert_eq!(s.expedite(None), 2);
    });
}

/// Flips a byte inside frame data of segment `seg` at `off` (damage littlefs cannot see).
fn damage(dev: RamDevice, seg: &str, off: usize) -> RamDevice {
    let mut flash: Flash<RamDevice> = Flash::new(dev, Barrier::None).unwrap();
    {
        let mut alloc = Allocation::new();
        let fs = littlefs2::fs::Filesystem::mount(&mut alloc, &mut flash).unwrap();
        let p = littlefs2::path::PathBuf::try_from(format!("/log/{seg}").as_str()).unwrap();
        let mut data: Vec<u8> = Vec::new();
        littlefs2::fs::File::open_and_then(&fs, &p, |f| {
            let mut buf = [0u8; 4096];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                data.extend_from_slice(&buf[..n]);
            }
            Ok(())
        })
        .unwrap();
        data[off] ^= 0x40;
        fs.write(&p, &data).unwrap();
    }
    flash.into_device().unwrap()
}

#[test]
fn a_damaged_frame_loses_only_what_follows_it_in_its_segment() {
    let (dev, (a, b, c)) = with(formatted(128), Limits::default(), |s| {
        let a = enqueue(s, "a@office.test", b"first").unwrap();
        let b = enqueue(s, "b@office.test", b"second").unwrap();
        (a, b, enqueue(s, "c@office.test", b"third").unwrap())
    });
    let (dev, segs) = files(dev, "/log");
    assert_eq!(segs.len(), 1);
    // Damage the second message's record: the first stays, the rest of the segment is
    // unreadable (never guessed at).
    let (dev, (_, len_a)) = with(dev, Limits::default(), |s| {
        let loc = s.with_writer(|w| w.loc_of(b)).unwrap().unwrap();
        (a, loc.off as usize)
    });
    let dev = damage(dev, &segs[0].0, len_a + 20);
    // The damaged segment is the newest: it reads as an interrupted write and is cut.
    let (_, ()) = with(dev, Limits::default(), |s| {
        assert_eq!(ids(s), vec![a]);
        assert_eq!(read_all(s, a), b"first");
        assert!(s.meta(c).is_err());
    });
}

#[test]
fn damage_in_an_older_segment_is_counted_and_the_rest_of_the_log_survives() {
    let (dev, (stored, locs)) = with(formatted(256), Limits::default(), |s| {
        let stored: Vec<MessageId> = (0..40u8)
            .map(|i| enqueue(s, "a@office.test", &body(1000, i)).unwrap())
            .collect();
        let locs: Vec<frame::Loc> = stored
            .iter()
            .map(|id| s.with_writer(|w| w.loc_of(*id)).unwrap().unwrap())
            .collect();
        (stored, locs)
    });
    let first = locs[0].seg;
    assert!(
        locs.iter().any(|l| l.seg > first + 1),
        "the log spans several segments"
    );
    // Flip the kind byte of the fifth frame of the oldest segment.
    let dev = damage(dev, &format!("{first:08x}"), locs[4].off as usize + 1);
    let (_, ()) = with(dev, Limits::default(), |s| {
        assert_eq!(s.usage().damaged, 1);
        let expect: Vec<MessageId> = stored
            .iter()
            .zip(&locs)
            .enumerate()
            .filter(|(i, (_, l))| *i < 4 || l.seg != first)
            .map(|(_, (id, _))| *id)
            .collect();
        assert_eq!(ids(s), expect);
        for (i, id) in stored.iter().enumerate() {
            if expect.contains(id) {
                assert_eq!(read_all(s, *id), body(1000, i as u8));
            }
        }
    });
}

#[test]
fn delivered_mail_frees_its_segments_oldest_first() {
    let (dev, ()) = with(formatted(512), Limits::default(), |s| {
        let mut held = Vec::new();
        for i in 0..40u8 {
            held.push(enqueue(s, "a@office.test", &body(20_000, i)).unwrap());
        }
        let before = s.usage();
        assert!(before.segments >= 8, "{before:?}");
        for id in held.drain(..35) {
            s.remove(id).unwrap();
        }
        let after = s.usage();
        assert!(
            after.segments < before.segments / 2,
            "{} segments before, {} after",
            before.segments,
            after.segments
        );
        assert!(after.log_bytes < before.log_bytes / 2);
        for (i, id) in held.iter().enumerate() {
            assert_eq!(read_all(s, *id), body(20_000, 35 + i as u8));
        }
    });
    let (_, ()) = with(dev, Limits::default(), |s| assert_eq!(s.len(), 5));
}

#[test]
fn one_old_message_does_not_pin_flash_it_is_copied_forward() {
    // 2 MiB device: a message held while far more mail passes through must not stop the
    // log from being reclaimed.
    let (dev, (old, usage)) = with(formatted(512), Limits::default(), |s| {
        let old = enqueue(s, "stuck@office.test", &body(30_000, 99)).unwrap();
        let mut meta = s.meta(old).unwrap();
        meta.attempts = 7;
        meta.set_last_error("451 still down");
        s.update(&meta).unwrap();
        for i in 0..400u32 {
            let id = enqueue(s, "a@office.test", &body(20_000, i as u8)).unwrap();
            s.remove(id).unwrap();
        }
        (old, s.usage())
    });
    assert!(
        usage.log_bytes < 1 << 20,
        "8 MB passed through a 2 MiB device: {usage:?}"
    );
    let (_, ()) = with(dev, Limits::default(), |s| {
        assert_eq!(ids(s), vec![old]);
        assert_eq!(read_all(s, old), body(30_000, 99));
        let meta = s.meta(old).unwrap();
        assert_eq!(meta.attempts, 7, "its state was copied with it");
        assert_eq!(meta.last_error.as_str(), "451 still down");
    });
}

/// Reads `id`'s body piece by piece, as delivery does.
fn read_in_pieces(s: &Spool<'_, RamDevice>, id: MessageId) -> Vec<u8> {
    let (mut buf, mut off, mut got) = (vec![0u8; CHUNK], 0u64, Vec::new());
    loop {
        let k = s.read_body(id, off, &mut buf).unwrap();
        if k == 0 {
            return got;
        }
        got.extend_from_slice(&buf[..k]);
        off += k as u64;
    }
}

#[test]
fn bodies_read_in_pieces_stay_right_after_their_mail_is_copied_forward() {
    // Delivery reads a body a piece at a time, and the spool remembers where the last few
    // bodies' chunks are: after a copy-forward moved them and their old segment was
    // deleted and reused, a piece must come from the new place.
    let (_, ()) = with(formatted(512), Limits::default(), |s| {
        let kept: Vec<(MessageId, Vec<u8>)> = (0..3u8)
            .map(|i| {
                let data = body(3 * CHUNK + 100 * usize::from(i) + 7, 50 + i);
                (enqueue(s, "held@office.test", &data).unwrap(), data)
            })
            .collect();
        for (id, data) in &kept {
            assert_eq!(&read_in_pieces(s, *id), data);
        }
        for round in 0..6u32 {
            // Mail passing through fills segments; then the held mail is moved to the head
            // and the old segments deleted.
            for i in 0..40u32 {
                let id = enqueue(s, "a@office.test", &body(20_000, (round * 40 + i) as u8));
                s.remove(id.unwrap()).unwrap();
            }
            s.with_writer(|w| w.copy_forward(u64::MAX).unwrap())
                .unwrap();
            for (id, data) in &kept {
                assert_eq!(&read_in_pieces(s, *id), data, "round {round}");
            }
        }
    });
}

#[test]
fn foreign_images_are_refused_untouched() {
    // Random bytes: no filesystem at all.
    let mut dev = ram(64);
    for (i, b) in dev.image_mut().iter_mut().enumerate() {
        *b = (i * 7 + 3) as u8;
    }
    let before = dev.image().to_vec();
    let (dev, r) = try_mount(dev, Access::ReadWrite);
    assert!(matches!(r, Err(SpoolError::NotASpool(_))), "{r:?}");
    assert_eq!(
        dev.image(),
        &before[..],
        "a refused image must not be written"
    );

    // A littlefs filesystem that is not a spool.
    let mut flash: Flash<RamDevice, { flash::FORMAT_BLOCKS }> =
        Flash::new(ram(64), Barrier::None).unwrap();
    littlefs2::fs::Filesystem::format(&mut flash).unwrap();
    let dev = flash.into_device().unwrap();
    let before = dev.image().to_vec();
    let (dev, r) = try_mount(dev, Access::ReadWrite);
    let err = r.unwrap_err();
    assert!(err.to_string().contains("not a mailbag spool"), "{err}");
    assert_eq!(dev.image(), &before[..]);
}

#[test]
fn newer_format_is_refused_untouched() {
    let (dev, ()) = with(formatted(64), Limits::default(), |s| {
        enqueue(s, "a@office.test", b"x").unwrap();
    });
    // Rewrite the header as format 3.
    let mut flash: Flash<RamDevice> = Flash::new(dev, Barrier::None).unwrap();
    {
        let mut alloc = Allocation::new();
        let fs = littlefs2::fs::Filesystem::mount(&mut alloc, &mut flash).unwrap();
        let p = littlefs2::path::PathBuf::try_from("/spool.hdr").unwrap();
        let mut rec: heapless::Vec<u8, 256> = fs.read(&p).unwrap();
        rec[1] = record::FORMAT_VERSION + 1;
        let n = rec.len() - 4;
        let crc = crc32(0, &rec[..n]);
        rec[n..].copy_from_slice(&crc.to_le_bytes());
        fs.write(&p, &rec).unwrap();
    }
    let dev = flash.into_device().unwrap();
    let before = dev.image().to_vec();
    let (dev, r) = try_mount(dev, Access::ReadWrite);
    let err = r.unwrap_err();
    assert!(
        matches!(err, SpoolError::NewerFormat(v) if v == record::FORMAT_VERSION + 1),
        "{err}"
    );
    assert!(err.to_string().contains("newer mailbag"));
    assert_eq!(dev.image(), &before[..]);
}

#[test]
fn read_only_mount_writes_nothing() {
    let (dev, _) = with(formatted(64), Limits::default(), |s| {
        enqueue(s, "a@office.test", b"x").unwrap()
    });
    let before = dev.image().to_vec();
    let mut flash: Flash<RamDevice> = Flash::new(dev, Barrier::BlockSwitch).unwrap();
    {
        let mut alloc = Allocation::new();
        let mut s =
            Spool::mount(&mut alloc, &mut flash, Limits::default(), Access::ReadOnly).unwrap();
        assert_eq!(s.len(), 1);
        let env = Envelope::new("s@x.test", ["a@office.test"]).unwrap();
        assert!(matches!(s.begin(&env, 0), Err(SpoolError::ReadOnly)));
        assert!(matches!(s.with_writer(|_| ()), Err(SpoolError::ReadOnly)));
    }
    assert_eq!(flash.into_device().unwrap().image(), &before[..]);
}

#[test]
fn a_larger_device_grows_the_spool() {
    let (dev, id) = with(formatted(32), Limits::default(), |s| {
        enqueue(s, "a@office.test", b"kept").unwrap()
    });
    let mut image = dev.image().to_vec();
    image.resize(128 * 4096, 0xff);
    let bigger = RamDevice::from_image(16, 16, 4096, image).unwrap();
    let (_, ()) = with(bigger, Limits::default(), |s| {
        assert_eq!(s.header().block_count, 128);
        assert_eq!(read_all(s, id), b"kept");
        // More than the old 32 blocks' worth fits now.
        enqueue(s, "a@office.test", &body(300_000, 9)).unwrap();
    });
}

#[test]
fn device_full_is_a_capacity_error_and_the_spool_recovers() {
    let (dev, ()) = with(formatted(32), Limits::default(), |s| {
        let mut stored = Vec::new();
        let err = loop {
            match enqueue(s, "a@office.test", &body(20_000, stored.len() as u8)) {
                Ok(id) => stored.push(id),
                Err(e) => break e,
            }
            assert!(
                stored.len() < 100,
                "a 128 KiB device cannot hold 100 x 20 KB"
            );
        };
        assert!(err.is_capacity(), "{err}");
        assert!(!stored.is_empty());
        // Everything acknowledged is intact, and removing one makes room again.
        for (i, id) in stored.iter().enumerate() {
            assert_eq!(read_all(s, *id), body(20_000, i as u8));
        }
        s.remove(stored[0]).unwrap();
        enqueue(s, "a@office.test", &body(10_000, 0)).unwrap();
    });
    let (_, r) = try_mount(dev, Access::ReadWrite);
    assert!(r.is_ok());
}

#[test]
fn a_format_1_spool_is_converted_at_mount_with_ids_and_state() {
    let env = |r: &str| Envelope::new("sender@outside.test", [r]).unwrap();
    let big = body(3 * CHUNK + 5, 3);
    let msgs: Vec<v1::Fixture<'_>> = vec![
        (env("a@office.test"), b"small one", 0, ""),
        (
            env("b@office.test"),
            &big,
            4,
            "451 4.4.1 primary unreachable",
        ),
    ];
    let dev = v1::write_image(ram(256), NOW, &msgs).unwrap();
    // Read-only, it is refused (and untouched): it must be converted first.
    let before = dev.image().to_vec();
    let (dev, r) = try_mount(dev, Access::ReadOnly);
    assert!(matches!(r, Err(SpoolError::NeedsMigration)), "{r:?}");
    assert_eq!(dev.image(), &before[..]);

    let (dev, listed) = with(dev, Limits::default(), |s| {
        assert_eq!(s.usage().migrated, 2);
        assert_eq!(s.header().mounts, 2);
        let l = ids(s);
        assert_eq!(l, vec![MessageId(1 << 32), MessageId((1 << 32) | 1)]);
        assert_eq!(read_all(s, l[0]), b"small one");
        assert_eq!(read_all(s, l[1]), big);
        let meta = s.meta(l[1]).unwrap();
        assert_eq!(meta.attempts, 4);
        assert_eq!(meta.last_error.as_str(), "451 4.4.1 primary unreachable");
        // New mail gets ids above the old ones.
        let n = enqueue(s, "c@office.test", b"new").unwrap();
        assert!(n > l[1]);
        l
    });
    // The old queue is gone; a second mount converts nothing and finds the same mail.
    let (dev, q) = files(dev, "/");
    assert!(!q.iter().any(|(n, _)| n == "q"), "{q:?}");
    let (_, ()) = with(dev, Limits::default(), |s| {
        assert_eq!(s.usage().migrated, 0);
        assert_eq!(&ids(s)[..2], &listed[..]);
    });
}

#[test]
fn geometry_must_fit() {
    let dev = RamDevice::new(Geometry::new(16, 16, 65536, 8).unwrap());
    assert!(format(dev, Barrier::None, NOW).is_err());
    assert_eq!(ram(4).geometry().block_count, 4);
}
