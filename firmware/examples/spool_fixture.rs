//! Writes the spool image used by the endianness test: `spool_fixture OUT.img`.
//!
//! Run it on a big-endian target (e.g. `mips-unknown-linux-gnu` under qemu-mips-static, see
//! `tests/fixtures/README.md`) to produce `tests/fixtures/spool-mips-be.img`; the test
//! `endianness.rs` builds the same image natively and checks both read the same.

use std::path::Path;

use mailbag::spool::{Access, Allocation, Barrier, Envelope, Flash, Limits, Spool, format};
use mailbag_hal::FileDevice;

/// Wall-clock time baked into the fixture.
pub const FIXTURE_TIME: u64 = 1_764_000_000;

/// The messages the fixture holds after [`build`]: (recipient, body, attempts, last error).
pub fn fixture_messages() -> Vec<(&'static str, Vec<u8>, u32, &'static str)> {
    let big: Vec<u8> = (0..70_000u32).flat_map(|i| i.to_be_bytes()).collect();
    vec![
        (
            "alice@office.test",
            b"Subject: one\r\n\r\nfirst\r\n".to_vec(),
            0,
            "",
        ),
        ("bob@office.test", big, 2, "451 4.4.1 primary unreachable"),
    ]
}

/// Creates a 1 MiB spool image at `out` with the fixture's content.
pub fn build(out: &Path) {
    let dev = FileDevice::create(out, 1 << 20, 4096).expect("create image");
    let dev = format(dev, Barrier::BlockSwitch, FIXTURE_TIME).expect("format");
    let mut flash = Flash::new(dev, Barrier::BlockSwitch).expect("flash");
    let mut alloc = Allocation::new();
    let mut spool =
        Spool::mount(&mut alloc, &mut flash, Limits::default(), Access::ReadWrite).expect("mount");
    // One message that is removed again, so the image also holds a deletion.
    let env = Envelope::new("gone@outside.test", ["x@office.test"]).expect("envelope");
    let mut p = spool.begin(&env, 0).expect("begin");
    spool.append(&mut p, b"removed").expect("append");
    let gone = spool.commit(p, &env, FIXTURE_TIME).expect("commit");
    for (i, (rcpt, body, attempts, err)) in fixture_messages().into_iter().enumerate() {
        let env = Envelope::new("sender@outside.test", [rcpt]).expect("envelope");
        let mut p = spool.begin(&env, 0).expect("begin");
        let id = if i == 0 {
            // A small body stored inside its message frame.
            spool
                .with_writer(|w| w.commit(p, &env, &body, FIXTURE_TIME + 60))
                .expect("writer")
                .expect("commit")
        } else {
            // A larger one streamed as chunk frames.
            spool.append(&mut p, &body).expect("append");
            spool.commit(p, &env, FIXTURE_TIME + 60).expect("commit")
        };
        if attempts > 0 {
            let mut meta = spool.meta(id).expect("meta");
            meta.attempts = attempts;
            meta.next_attempt_unix = FIXTURE_TIME + 1800;
            meta.set_last_error(err);
            spool.update(&meta).expect("update");
        }
    }
    spool.remove(gone).expect("remove");
}

#[allow(dead_code)]
fn main() {
    let out = std::env::args()
        .nth(1)
        .expect("usage: spool_fixture OUT.img");
    build(Path::new(&out));
    println!(
        "wrote {out} ({} endian)",
        if cfg!(target_endian = "big") {
            "big"
        } else {
            "little"
        }
    );
}
