//! Spool operations on a RAM device: round trips, capacities, damage, recovery.

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
    for chunk in data.chunks(16 * 1024) {
        if let Err(e) = s.append(&mut p, chunk) {
            s.abort(p);
            return Err(e);
        }
    }
    s.commit(p, &env, NOW)
}

fn read_all(s: &Spool<'_, RamDevice>, id: MessageId) -> Vec<u8> {
    let mut out = Vec::new();
    s.stream_body(id, |c| out.extend_from_slice(c)).unwrap();
    out
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
        let ids: Vec<_> = s.entries().iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![a, b]);
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
fn empty_body_is_a_valid_message() {
    let (_, ()) = with(formatted(64), Limits::default(), |s| {
        let id = enqueue(s, "a@office.test", b"").unwrap();
        assert_eq!(read_all(s, id), b"");
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
    let (_, ()) = with(dev, limits, |s| assert_eq!(s.entries().len(), 1));
}

#[test]
fn per_domain_quota_names_the_domain_and_spares_others() {
    let limits = Limits {
        max_bytes_per_domain: 10_000,
        ..Limits::default()
    };
    let (_, ()) = with(formatted(128), limits, |s| {
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
}

#[test]
fn abort_and_interrupted_enqueue_leave_nothing() {
    let (dev, ()) = with(formatted(64), Limits::default(), |s| {
        let env = Envelope::new("s@x.test", ["a@office.test"]).unwrap();
        let mut p = s.begin(&env, 0).unwrap();
        s.append(&mut p, &body(10_000, 1)).unwrap();
        s.abort(p);
        assert_eq!(s.usage().reserved, 0);
        // A second one is "interrupted": the spool goes away without commit or abort.
        let mut p = s.begin(&env, 0).unwrap();
        s.append(&mut p, &body(10_000, 2)).unwrap();
        s.sync().unwrap();
        std::mem::forget(p);
    });
    let (_, ()) = with(dev, Limits::default(), |s| {
        assert!(s.entries().is_empty());
        assert_eq!(s.usage().damaged, 0);
        // The interrupted body was removed: the whole image holds no message files.
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
        let mut ids = Vec::new();
        // Commit order 3, 1, 4, 0, 2.
        for i in [3, 1, 4, 0, 2] {
            let p = pending[i].take().unwrap();
            ids.push(s.commit(p, &env, NOW).unwrap());
        }
        let listed: Vec<MessageId> = s.entries().iter().map(|e| e.id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(
            listed, sorted,
            "entries are listed oldest (lowest id) first"
        );
        for id in &ids {
            let mut meta = s.meta(*id).unwrap();
            meta.attempts = 1;
            s.update(&meta).unwrap();
        }
        for id in &ids {
            s.remove(*id).unwrap();
        }
        assert!(s.entries().is_empty());
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
        assert_eq!(s.entries().len(), 1);
        let meta = s.meta(a).unwrap();
        assert_eq!(meta.attempts, 3);
        assert_eq!(meta.next_attempt_unix, NOW + 900);
        assert_eq!(meta.recipients[0].status, RcptStatus::Failed);
        assert_eq!(meta.last_error.as_str(), "451 4.3.0 try later");
        assert_eq!(s.entries()[0].attempts, 3);
        assert!(matches!(s.remove(b), Err(SpoolError::NotFound)));
    });
}

#[test]
fn corrupted_record_is_moved_aside_not_lost_and_others_survive() {
    let (dev, (bad, good)) = with(formatted(64), Limits::default(), |s| {
        let bad = enqueue(s, "a@office.test", b"damaged one").unwrap();
        let good = enqueue(s, "b@office.test", b"healthy one").unwrap();
        let mut buf = vec![0u8; 1024];
        let meta = s.meta(bad).unwrap();
        let rec = record::encode(record::Kind::Message, &meta, &mut buf)
            .unwrap()
            .to_vec();
        let mut damaged = rec.clone();
        damaged[5] ^= 0x40;
        s.overwrite_for_test(&format!("/q/{bad}.m"), &damaged);
        (bad, good)
    });
    let (dev, ()) = with(dev, Limits::default(), |s| {
        let ids: Vec<_> = s.entries().iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![good]);
        assert_eq!(s.usage().damaged, 1);
        assert_eq!(read_all(s, good), b"healthy one");
        assert!(matches!(s.meta(bad), Err(SpoolError::NotFound)));
    });
    // Moved, not deleted: the damaged body is still on flash under /bad.
    let mut flash: Flash<RamDevice> = Flash::new(dev, Barrier::None).unwrap();
    let mut alloc = Allocation::new();
    let fs = littlefs2::fs::Filesystem::mount(&mut alloc, &mut flash).unwrap();
    let p = littlefs2::path::PathBuf::try_from(format!("/bad/{bad}.b").as_str()).unwrap();
    let data: heapless::Vec<u8, 64> = fs.read(&p).unwrap();
    assert_eq!(&data[..], b"damaged one");
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
        let mut h = s.header().clone();
        h.mounts += 1;
        let mut buf = [0u8; 256];
        let mut rec = record::encode(record::Kind::Header, &h, &mut buf)
            .unwrap()
            .to_vec();
        rec[1] = record::FORMAT_VERSION + 1;
        let n = rec.len() - 4;
        let crc = crc32(0, &rec[..n]);
        rec[n..].copy_from_slice(&crc.to_le_bytes());
        s.overwrite_for_test("/spool.hdr", &rec);
    });
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
        assert_eq!(s.entries().len(), 1);
        let env = Envelope::new("s@x.test", ["a@office.test"]).unwrap();
        assert!(matches!(s.begin(&env, 0), Err(SpoolError::ReadOnly)));
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
fn geometry_must_fit() {
    let dev = RamDevice::new(Geometry::new(16, 16, 65536, 8).unwrap());
    assert!(format(dev, Barrier::None, NOW).is_err());
    assert_eq!(ram(4).geometry().block_count, 4);
}
