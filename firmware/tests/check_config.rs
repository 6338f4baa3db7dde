//! `mailbag check-config`, run as the init script and an admin would run it.

#![allow(clippy::unwrap_used)] // a test: a failed step should panic

use std::path::PathBuf;
use std::process::Command;

fn check(text: &str, name: &str) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!("mailbag-check-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mailbag"))
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap(), text)
}

#[test]
fn shipped_defaults_are_ok() {
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../openwrt-package/mailbag/files/mailbag.config");
    let (code, out) = check(&std::fs::read_to_string(shipped).unwrap(), "shipped");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("ok: role=edge enabled=false domains=1"),
        "{out}"
    );
    assert!(out.contains("firewall=walled-garden"), "{out}");
}

#[test]
fn every_invalid_value_is_listed_and_exit_is_2() {
    let (code, out) = check(
        "config smtp\n\tlist listen '127.0.0.1:25'\n\tlist listen 'x:25'\n\
         config relay\n\toption lifetime_days '31'\n",
        "invalid",
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("2 error(s)"), "{out}");
    assert!(
        out.contains("smtp.listen[1]: 'x:25' is not an address:port"),
        "{out}"
    );
    assert!(
        out.contains("relay.lifetime_days: 31 is out of range 1..=30"),
        "UCI spelling: {out}"
    );
}

#[test]
fn syntax_and_unknown_options_name_the_line() {
    let (code, out) = check("config smtp\n\n\toption max_sesions '4'\n", "typo");
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("line 3: smtp.max_sesions: unknown field `max_sesions`"),
        "{out}"
    );
    assert!(
        out.contains("`max_sessions`"),
        "suggests the right spelling: {out}"
    );

    let (code, out) = check("[relay]\nlifetime-days = \"a week\"\n", "bad.toml");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("line 2"), "{out}");

    let (code, out) = check("[relay]\nlifetime-days = 0\n", "zero.toml");
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("relay.lifetime-days: 0 is out of range"),
        "TOML spelling: {out}"
    );

    let (code, out) = check("", "empty.toml");
    assert_eq!(code, 0, "an empty file is the defaults: {out}");
}

#[test]
fn protection_settings_are_checked_by_key() {
    let (code, out) = check(
        "config policy\n\tlist domains 'office.test'\n\tlist trusted '10.0.0.0/33'\n\
         \tlist dnsbl 'zen spamhaus'\n\tlist domain_rules 'office.test: accept-when=sometimes'\n\
         \tlist domain_rules 'other.test: max-bytes=500M'\n\
         config scan\n\toption clamd 'clamd.lan'\n\toption infected 'quarantine'\n",
        "mailbag",
    );
    assert_eq!(code, 2, "{out}");
    for key in [
        "policy.trusted",
        "policy.dnsbl[0]",
        "policy.domain_rules[0]: accept-when=sometimes",
        "policy.domain_rules[1]: 'other.test' is not in policy.domains",
        "scan.clamd",
        "scan.infected",
    ] {
        assert!(out.contains(key), "{key} in {out}");
    }
    let (code, out) = check(
        "config policy\n\tlist domains 'office.test'\n\toption verify_recipients '1'\n\
         \tlist domain_rules 'office.test: accept-when=next-hop-down max-message-size=50M max-bytes=500M'\n\
         config scan\n\toption clamd '/var/run/clamav/clamd.ctl'\n\toption infected 'repackage'\n\
         config relay\n\tlist next_hops '192.168.1.10:25'\n",
        "mailbag",
    );
    assert_eq!(code, 0, "{out}");
}
