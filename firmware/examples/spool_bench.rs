//! Spool benchmark on a file image with real fsync (`tests/bench/spool.sh` runs it in release
//! mode). Prints one row per (message size, barrier): messages per second, and the bytes and
//! syncs that reached the device per message (write amplification); then the mount time
//! (the log replayed) with 1,000 / 10,000 / 50,000 messages of 4 KiB held.

use std::path::PathBuf;
use std::time::Instant;

use mailbag::spool::{Access, Allocation, Barrier, CHUNK, Envelope, Flash, Limits, Spool, format};
use mailbag_hal::FileDevice;

fn run(
    dir: &std::path::Path,
    size: usize,
    count: usize,
    batch: usize,
    barrier: Barrier,
) -> (f64, f64, f64, f64) {
    let path = dir.join(format!("bench-{size}-{barrier:?}.img"));
    let _ = std::fs::remove_file(&path);
    let image = (64u64 << 20)
        .max((size * count * 2) as u64)
        .next_multiple_of(4096);
    let dev = FileDevice::create(&path, image, 4096).expect("create image");
    let dev = format(dev, barrier, 0).expect("format");
    let mut flash = Flash::new(dev, barrier).expect("flash");
    let handle_stats = flash.handle();
    let mut alloc = Allocation::new();
    let mut spool = Spool::mount(
        &mut alloc,
        &mut flash,
        Limits {
            max_messages: 100_000,
            ..Limits::default()
        },
        Access::ReadWrite,
    )
    .expect("mount");
    let body: Vec<u8> = (0..size)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789\r\n"[i % 38])
        .collect();
    let env = Envelope::new("sender@outside.test", ["rcpt@office.test"]).expect("envelope");
    let before = handle_stats.stats();
    let t = Instant::now();
    let full = size / CHUNK * CHUNK;
    let mut left = count;
    // As the daemon does: full chunks stream in, the last piece goes with the commit, and
    // one sync (group commit) covers a batch of `batch` messages.
    spool
        .run(|w| {
            for _ in 0..left.min(batch) {
                let mut p = w.begin(&env, 0).expect("begin");
                w.append(&mut p, &body[..full]).expect("append");
                w.commit(p, &env, &body[full..], 0).expect("commit");
            }
            left -= left.min(batch);
            w.sync().expect("sync");
            if left == 0 {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        })
        .expect("enqueue");
    let secs = t.elapsed().as_secs_f64();
    let after = handle_stats.stats();
    drop(spool);
    let _ = std::fs::remove_file(&path);
    let n = count as f64;
    let written = (after.programmed - before.programmed) as f64 / n;
    let syncs = (after.syncs - before.syncs) as f64 / n;
    (n / secs, written, written / size as f64, syncs)
}

/// Fills an image with `held` 4 KiB messages (batches of 10, as concurrent sessions would
/// commit them), then times a mount.
fn mount_time(dir: &std::path::Path, held: usize) -> (f64, u64) {
    let path = dir.join(format!("bench-mount-{held}.img"));
    let _ = std::fs::remove_file(&path);
    let image = ((held as u64 * 5000) + (64 << 20)).next_multiple_of(1 << 20);
    let dev = FileDevice::create(&path, image, 4096).expect("create image");
    let dev = format(dev, Barrier::BlockSwitch, 0).expect("format");
    let limits = Limits {
        max_messages: held as u32 + 10,
        ..Limits::default()
    };
    let body: Vec<u8> = (0..4096)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789\r\n"[i % 38])
        .collect();
    let env = Envelope::new("sender@outside.test", ["rcpt@office.test"]).expect("envelope");
    let mut flash = Flash::new(dev, Barrier::BlockSwitch).expect("flash");
    {
        let mut alloc = Allocation::new();
        let mut spool =
            Spool::mount(&mut alloc, &mut flash, limits, Access::ReadWrite).expect("mount");
        let mut left = held;
        spool
            .run(|w| {
                for _ in 0..left.min(10) {
                    let p = w.begin(&env, 0).expect("begin");
                    w.commit(p, &env, &body, 0).expect("commit");
                }
                left -= left.min(10);
                w.sync().expect("sync");
                if left == 0 {
                    std::ops::ControlFlow::Break(())
                } else {
                    std::ops::ControlFlow::Continue(())
                }
            })
            .expect("fill");
    }
    drop(flash);
    let dev = FileDevice::open(&path, 4096).expect("open");
    let mut flash = Flash::new(dev, Barrier::BlockSwitch).expect("flash");
    let mut alloc = Allocation::new();
    let t = Instant::now();
    let spool = Spool::mount(&mut alloc, &mut flash, limits, Access::ReadWrite).expect("mount");
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(spool.len(), held);
    let read = spool.usage().flash.read;
    drop(spool);
    let _ = std::fs::remove_file(&path);
    (secs, read)
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    println!(
        "spool enqueue on a file image with fdatasync, in {}",
        dir.display()
    );
    println!(
        "{:>9} {:>6} {:>6} {:>12} {:>9} {:>10} {:>14} {:>7} {:>11}",
        "size", "msgs", "batch", "barrier", "msg/s", "MB/s", "dev bytes/msg", "ampl.", "syncs/msg"
    );
    for (size, count) in [(4 * 1024, 2000), (100 * 1024, 200)] {
        for (batch, barrier) in [
            (1, Barrier::BlockSwitch),
            (10, Barrier::BlockSwitch),
            (1, Barrier::None),
        ] {
            let (rate, written, ampl, syncs) = run(&dir, size, count, batch, barrier);
            println!(
                "{:>8}K {:>6} {:>6} {:>12} {:>9.1} {:>10.2} {:>14.0} {:>7.2} {:>11.1}",
                size / 1024,
                count,
                batch,
                format!("{barrier:?}"),
                rate,
                rate * size as f64 / 1e6,
                written,
                ampl,
                syncs
            );
        }
    }
    println!();
    println!("mount (log replay) with 4 KiB messages held:");
    println!("{:>9} {:>10} {:>12}", "held", "mount s", "MB read");
    for held in [1_000, 10_000, 50_000] {
        let (secs, read) = mount_time(&dir, held);
        println!("{held:>9} {secs:>10.3} {:>12.1}", read as f64 / 1e6);
    }
}
