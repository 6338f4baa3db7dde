//! `mailbag spool format|inspect` and `--version`, run as a user would.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mailbag::spool::{Access, Allocation, Barrier, Envelope, Flash, Limits, Spool};
use mailbag_hal::FileDevice;

fn mailbag(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailbag"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mailbag-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn put(image: &Path, sender: &str, rcpts: &[&str], body: &[u8]) {
    let dev = FileDevice::open(image, 4096).unwrap();
    let mut flash = Flash::new(dev, Barrier::BlockSwitch).unwrap();
    let mut alloc = Allocation::new();
    let mut spool =
        Spool::mount(&mut alloc, &mut flash, Limits::default(), Access::ReadWrite).unwrap();
    let env = Envelope::new(sender, rcpts.iter().copied()).unwrap();
    let mut p = spool.begin(&env, 0).unwrap();
    spool.append(&mut p, body).unwrap();
    let id = spool.commit(p, &env, 1_764_000_000).unwrap();
    let mut meta = spool.meta(id).unwrap();
    meta.attempts = 4;
    meta.set_last_error("421 4.4.2 mail.office.test: connection timed out");
    spool.update(&meta).unwrap();
}

#[test]
fn version_is_printed() {
    let o = mailbag(&["--version"]);
    assert!(o.status.success());
    assert_eq!(
        text(&o).trim(),
        format!("mailbag {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn format_then_inspect_lists_messages_without_changing_the_image() {
    let dir = tmpdir("inspect");
    let img = dir.join("spool.img");
    let img_s = img.to_str().unwrap();
    let o = mailbag(&["spool", "format", img_s, "--size", "2M"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 2 << 20);

    let o = mailbag(&["spool", "inspect", img_s]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("0 messages"), "{}", text(&o));

    put(
        &img,
        "boss@partner.test",
        &["alice@office.test", "bob@office.test"],
        &vec![b'x'; 3000],
    );
    put(&img, "", &["postmaster@office.test"], b"bounce");
    let before = std::fs::read(&img).unwrap();

    let o = mailbag(&["spool", "inspect", img_s]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("2 messages"), "{out}");
    assert!(
        out.contains("boss@partner.test -> alice@office.test, bob@office.test"),
        "{out}"
    );
    assert!(out.contains("<> -> postmaster@office.test"), "{out}");
    assert!(out.contains("2.9 KiB"), "{out}");
    assert!(
        out.contains("last error: 421 4.4.2 mail.office.test: connection timed out"),
        "{out}"
    );
    let row = out.lines().find(|l| l.contains("boss@")).unwrap();
    assert!(
        row.split_whitespace().nth(4) == Some("4"),
        "attempts column: {row}"
    );

    let o = mailbag(&["spool", "inspect", "--json", img_s]);
    let out = text(&o);
    assert!(out.contains("\"sender\":\"boss@partner.test\""), "{out}");
    assert!(out.contains("\"attempts\":4"), "{out}");

    assert_eq!(
        std::fs::read(&img).unwrap(),
        before,
        "inspect must not write the image"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_gets_clear_errors_and_touches_nothing() {
    let dir = tmpdir("bad");
    let img = dir.join("spool.img");
    let img_s = img.to_str().unwrap();

    let o = mailbag(&["spool", "format", img_s]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--size"), "{}", text(&o));

    let o = mailbag(&["spool", "format", img_s, "--size", "lots"]);
    assert!(text(&o).contains("not a size"), "{}", text(&o));
    assert!(!img.exists());

    assert!(
        mailbag(&["spool", "format", img_s, "--size", "1M"])
            .status
            .success()
    );
    let before = std::fs::read(&img).unwrap();
    let o = mailbag(&["spool", "format", img_s, "--size", "1M"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "formatting over an existing image must fail"
    );
    assert_eq!(std::fs::read(&img).unwrap(), before);

    let junk = dir.join("junk.img");
    std::fs::write(&junk, vec![0x5au8; 1 << 20]).unwrap();
    let o = mailbag(&["spool", "inspect", junk.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("not a mailbag spool"), "{}", text(&o));
    assert_eq!(std::fs::read(&junk).unwrap(), vec![0x5au8; 1 << 20]);

    let o = mailbag(&[
        "spool",
        "inspect",
        dir.join("missing.img").to_str().unwrap(),
    ]);
    assert!(text(&o).contains("cannot read"), "{}", text(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn queue_list_and_show_read_the_configured_spool() {
    let dir = tmpdir("queue");
    let img = dir.join("spool.img");
    assert!(
        mailbag(&["spool", "format", img.to_str().unwrap(), "--size", "1M"])
            .status
            .success()
    );
    put(
        &img,
        "boss@partner.test",
        &["alice@office.test"],
        b"Subject: hi\r\n\r\nbell\x07 and text\r\n",
    );
    let cfg = dir.join("mailbag.toml");
    std::fs::write(&cfg, format!("[spool]\npath = \"{}\"\n", img.display())).unwrap();

    let o = mailbag(&["queue", "list", "--config", cfg.to_str().unwrap()]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let id = out
        .lines()
        .find(|l| l.contains("boss@partner.test"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();

    let o = mailbag(&["queue", "show", "--spool", img.to_str().unwrap(), &id]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("sender:      boss@partner.test"), "{out}");
    assert!(
        out.contains("recipient:   alice@office.test (Pending)"),
        "{out}"
    );
    assert!(out.contains("attempts:    4"), "{out}");
    assert!(out.contains("Subject: hi"), "{out}");
    assert!(
        out.contains("bell\\x07 and text"),
        "control characters are escaped: {out}"
    );
    assert!(!out.contains('\x07'));

    let o = mailbag(&[
        "queue",
        "show",
        "--spool",
        img.to_str().unwrap(),
        "00000000DEADBEEF",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("no such message"), "{}", text(&o));
    let o = mailbag(&[
        "queue",
        "show",
        "--spool",
        img.to_str().unwrap(),
        "nonsense",
    ]);
    assert!(text(&o).contains("not a message id"), "{}", text(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}
