//! Spool enqueue benchmark on a file image with real fsync (`tests/bench/spool.sh` runs it
//! in release mode). Prints one row per (message size, barrier): messages per second, and
//! the bytes and syncs that reached the device per message (write amplification).

use std::path::PathBuf;
use std::time::Instant;

use mailbag::spool::{Access, Allocation, Barrier, Envelope, Flash, Limits, Spool, format};
use mailbag_hal::FileDevice;

fn run(dir: &std::path::Path, size: usize, count: usize, barrier: Barrier) -> (f64, f64, f64, f64) {
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
    for _ in 0..count {
        let mut p = spool.begin(&env, 0).expect("begin");
        for chunk in body.chunks(16 * 1024) {
            spool.append(&mut p, chunk).expect("append");
        }
        spool.commit(p, &env, 0).expect("commit");
    }
    let secs = t.elapsed().as_secs_f64();
    let after = handle_stats.stats();
    drop(spool);
    let _ = std::fs::remove_file(&path);
    let n = count as f64;
    let written = (after.programmed - before.programmed) as f64 / n;
    let syncs = (after.syncs - before.syncs) as f64 / n;
    (n / secs, written, written / size as f64, syncs)
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    println!(
        "spool enqueue on a file image with fdatasync, in {}",
        dir.display()
    );
    println!(
        "{:>9} {:>6} {:>12} {:>9} {:>10} {:>14} {:>7} {:>11}",
        "size", "msgs", "barrier", "msg/s", "MB/s", "dev bytes/msg", "ampl.", "syncs/msg"
    );
    for (size, count) in [(4 * 1024, 400), (100 * 1024, 120)] {
        for barrier in [Barrier::BlockSwitch, Barrier::None] {
            let (rate, written, ampl, syncs) = run(&dir, size, count, barrier);
            println!(
                "{:>8}K {:>6} {:>12} {:>9.1} {:>10.2} {:>14.0} {:>7.2} {:>11.1}",
                size / 1024,
                count,
                format!("{barrier:?}"),
                rate,
                rate * size as f64 / 1e6,
                written,
                ampl,
                syncs
            );
        }
    }
}
