//! A spool image written by a big-endian build (MIPS, under qemu-mips-static) reads the
//! same on this machine, holds the same content as the image this build writes itself,
//! and takes new mail here; a format-1 image written on big-endian MIPS by mailbag before
//! the log is converted here with nothing lost. (The two images are not byte-identical: littlefs seeds its
//! block allocator with a CRC hashed in native byte order, so blocks are placed
//! differently; what is stored, and how it is encoded, is the same.)

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "../examples/spool_fixture.rs"]
#[allow(dead_code)]
mod fixture;

use std::path::Path;

use mailbag::spool::open::load_copy;
use mailbag::spool::{Access, Allocation, Flash, Limits, Spool};

fn read_back(path: &Path) -> Vec<(String, String, Vec<u8>, u32, String)> {
    read_back_as(path, Access::ReadOnly)
}

/// Mounts a copy in RAM (read-write converts a format-1 image there).
fn read_back_as(path: &Path, access: Access) -> Vec<(String, String, Vec<u8>, u32, String)> {
    let dev = load_copy(path).unwrap();
    let barrier = dev.barrier();
    let mut flash = Flash::new(dev, barrier).unwrap();
    let mut alloc = Allocation::new();
    let spool = Spool::mount(&mut alloc, &mut flash, Limits::default(), access).unwrap();
    spool
        .list()
        .iter()
        .map(|e| {
            let meta = spool.meta(e.id).unwrap();
            let mut body = Vec::new();
            spool
                .stream_body(e.id, |c| body.extend_from_slice(c))
                .unwrap();
            (
                meta.sender.to_string(),
                meta.recipients[0].address.to_string(),
                body,
                meta.attempts,
                meta.last_error.to_string(),
            )
        })
        .collect()
}

fn expected() -> Vec<(String, String, Vec<u8>, u32, String)> {
    fixture::fixture_messages()
        .into_iter()
        .map(|(r, b, a, e)| {
            (
                "sender@outside.test".to_string(),
                r.to_string(),
                b,
                a,
                e.to_string(),
            )
        })
        .collect()
}

fn big_endian_image() -> std::path::PathBuf {
    // Produced in CI by the qemu-user run (tests/qemu-user/run.sh) when available, else the
    // committed fixture made the same way.
    if let Some(p) = std::env::var_os("MAILBAG_BE_SPOOL_IMAGE") {
        return p.into();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spool-mips-be.img")
}

#[test]
fn big_endian_spool_reads_correctly_here() {
    let path = big_endian_image();
    assert_eq!(read_back(&path), expected());
}

#[test]
fn a_format_1_image_from_big_endian_mips_is_converted_here_whole() {
    let v1 = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spool-v1-mips-be.img");
    // Read-only, format 1 is refused with advice; read-write (on a copy) converts it.
    let dev = load_copy(&v1).unwrap();
    let barrier = dev.barrier();
    let mut flash = Flash::new(dev, barrier).unwrap();
    let mut alloc = Allocation::new();
    let refused = Spool::mount(&mut alloc, &mut flash, Limits::default(), Access::ReadOnly);
    assert!(refused.err().unwrap().to_string().contains("spool migrate"));
    assert_eq!(read_back_as(&v1, Access::ReadWrite), expected());
}

#[test]
fn this_build_writes_the_same_content_as_the_big_endian_build() {
    let dir = std::env::temp_dir().join(format!("mailbag-endian-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let native = dir.join("native.img");
    let _ = std::fs::remove_file(&native);
    fixture::build(&native);
    assert_eq!(read_back(&native), read_back(&big_endian_image()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn big_endian_spool_takes_new_mail_here() {
    let dev = load_copy(&big_endian_image()).unwrap();
    let barrier = dev.barrier();
    let mut flash = Flash::new(dev, barrier).unwrap();
    let mut alloc = Allocation::new();
    let mut spool =
        Spool::mount(&mut alloc, &mut flash, Limits::default(), Access::ReadWrite).unwrap();
    let env = mailbag::spool::Envelope::new("x@outside.test", ["y@office.test"]).unwrap();
    let mut p = spool.begin(&env, 0).unwrap();
    spool.append(&mut p, b"written on x86_64").unwrap();
    let id = spool.commit(p, &env, 1).unwrap();
    assert_eq!(spool.len(), 3);
    let mut body = Vec::new();
    spool
        .stream_body(id, |c| body.extend_from_slice(c))
        .unwrap();
    assert_eq!(body, b"written on x86_64");
}
