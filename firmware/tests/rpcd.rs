//! `mailbag rpcd`, LuCI's rpcd exec plugin (`/usr/libexec/rpcd/luci.mailbag`), against a
//! running daemon: `list` names the methods, every `call` answers one JSON object read by a
//! real JSON parser (status, a queue page, a message with a hostile subject, the log, and
//! the flush/bounce/delete actions through the control socket), bad arguments are refused,
//! and a stopped daemon is an `{"error"}` answer. A build without the setup check (the
//! router package's) answers `check_setup` with an `{"error"}` saying so.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::sink::free_port;
use common::{Client, Daemon, tmpdir, write_config_with};
use serde_json::Value;

/// `mailbag rpcd --config DIR/mailbag.toml ARGS` with `input` on stdin: (exit code, stdout).
fn rpcd(dir: &Path, args: &[&str], input: &str) -> (i32, String) {
    rpcd_with(&dir.join("mailbag.toml"), args, input)
}

/// `mailbag rpcd --config CONFIG ARGS` with `input` on stdin: (exit code, stdout).
fn rpcd_with(config: &Path, args: &[&str], input: &str) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailbag"))
        .arg("rpcd")
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

/// `call METHOD` with JSON `args`; the answer parsed.
fn call(dir: &Path, method: &str, args: &str) -> Value {
    let (code, out) = rpcd(dir, &["call", method], args);
    assert_eq!(code, 0, "{method} {args}: {out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{method}: {e}: {out}"))
}

fn send(c: &mut Client, to: &str, data: &str) -> String {
    assert!(
        c.cmd("MAIL FROM:<alice@sender.test>")
            .unwrap()
            .starts_with("250")
    );
    assert!(
        c.cmd(&format!("RCPT TO:<{to}>"))
            .unwrap()
            .starts_with("250")
    );
    assert!(c.cmd("DATA").unwrap().starts_with("354"));
    c.w.write_all(data.as_bytes()).unwrap();
    c.w.write_all(b".\r\n").unwrap();
    let r = c.reply().unwrap();
    assert!(r.starts_with("250"), "{r}");
    r.trim().rsplit(' ').next().unwrap().to_string()
}

#[test]
fn the_rpcd_plugin_answers_from_a_running_daemon() {
    let dir = tmpdir("rpcd");
    // The next hop never answers and the probe waits an hour: mail stays held.
    let hop = free_port();
    write_config_with(
        &dir,
        "",
        &["office.test"],
        // Nothing answers DNS (port 9): the setup check's lookups fail at once.
        &format!(
            "[relay]\nnext-hops = [\"127.0.0.1:{hop}\"]\nprobe-interval = 3600\n\
             dns-servers = [\"127.0.0.1:9\"]\n"
        ),
    );

    // list: exactly the plugin's methods, each with an argument object.
    let (code, out) = rpcd(&dir, &["list"], "");
    assert_eq!(code, 0);
    let list: Value = serde_json::from_str(&out).unwrap();
    let mut names: Vec<&str> = list
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "bounce",
            "check_setup",
            "delete",
            "firewall_apply",
            "firewall_preview",
            "flush",
            "log",
            "message",
            "queue",
            "status"
        ]
    );
    assert_eq!(list["message"]["id"], "str");

    // No daemon yet: an answer LuCI can show, not a failure of the plugin.
    let v = call(&dir, "status", "");
    assert!(
        v["error"].as_str().unwrap().contains("is mailbag running?"),
        "{v}"
    );

    let mut d = Daemon::start(&dir);
    let (mut c, _) = Client::connect(&d.addr()).unwrap();
    assert!(c.cmd("EHLO client.test").unwrap().starts_with("250"));
    let first = send(
        &mut c,
        "bob@office.test",
        "Subject: <script>alert(1)</script>\r\n =?utf-8?q?folded?=\r\nX-Test: 1\r\n\r\nhello \"world\"\r\n",
    );
    let second = send(
        &mut c,
        "carol@office.test",
        "Subject: second\r\n\r\nbody two\r\n",
    );

    let v = call(&dir, "status", "{}");
    assert_eq!(v["queue_depth"], 2, "{v}");
    assert_eq!(v["role"], "edge");
    assert_eq!(v["primary"]["up"], false);
    assert_eq!(v["domains"][0], "office.test");
    assert!(v["spool_free_bytes"].as_u64().unwrap() > 0);

    // The setup check, as `mailbag doctor --json` would answer it (a build without the
    // doctor feature says it has none).
    #[cfg(feature = "doctor")]
    {
        let v = call(&dir, "check_setup", "{}");
        let checks = v["checks"].as_array().unwrap_or_else(|| panic!("{v}"));
        let line = |id: &str| {
            checks
                .iter()
                .find(|c| c["id"] == id)
                .cloned()
                .unwrap_or_else(|| panic!("no {id} in {v}"))
        };
        assert_eq!(line("daemon")["status"], "pass", "{v}");
        assert_eq!(line("next-hop")["status"], "fail", "nothing answers: {v}");
        assert!(line("next-hop")["fix"].is_string());
        assert_eq!(v["ok"], false);
    }
    #[cfg(not(feature = "doctor"))]
    {
        let v = call(&dir, "check_setup", "{}");
        assert!(
            v["error"].as_str().unwrap().contains("no setup check"),
            "{v}"
        );
    }

    let v = call(&dir, "queue", r#"{"offset":0,"limit":1}"#);
    assert_eq!(v["total"], 2, "{v}");
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], first.as_str(), "oldest first");
    assert_eq!(
        rows[0]["subject"],
        "<script>alert(1)</script> =?utf-8?q?folded?="
    );
    assert_eq!(rows[0]["recipients"][0], "bob@office.test");
    let v = call(&dir, "queue", r#"{"offset":1}"#);
    assert_eq!(v["rows"][0]["id"], second.as_str());

    let v = call(&dir, "message", &format!(r#"{{"id":"{first}"}}"#));
    assert_eq!(v["sender"], "alice@sender.test", "{v}");
    assert_eq!(v["recipient_status"][0]["status"], "pending");
    assert!(
        v["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h[0] == "X-Test" && h[1] == "1"),
        "{v}"
    );
    assert!(
        v["preview"]
            .as_str()
            .unwrap()
            .starts_with("hello \"world\""),
        "{v}"
    );
    let v = call(&dir, "message", r#"{"id":"00000000000000AA"}"#);
    assert!(v["error"].as_str().unwrap().contains("no message"), "{v}");

    let v = call(&dir, "flush", "{}");
    assert!(
        v["result"].as_str().unwrap().contains("2 held message(s)"),
        "{v}"
    );
    let v = call(&dir, "bounce", &format!(r#"{{"id":"{second}"}}"#));
    assert!(v["result"].as_str().unwrap().starts_with("bounced"), "{v}");
    let v = call(&dir, "delete", &format!(r#"{{"id":"{first}"}}"#));
    assert!(v["result"].as_str().unwrap().starts_with("deleted"), "{v}");
    let v = call(&dir, "queue", "{}");
    // The bounce's own failure notice to alice@sender.test is all that is held now.
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(v["rows"][0]["recipients"][0], "alice@sender.test");

    let v = call(&dir, "log", r#"{"limit":10}"#);
    let kinds: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for k in ["flushed", "bounced", "deleted"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }

    // Protocol misuse: non-zero exit, nothing sent to the daemon.
    for (method, args) in [
        ("delete", r#"{"id":"1 bounce 2"}"#),
        ("message", "{}"),
        ("queue", r#"{"limit":"lots"}"#),
        ("status", "[1,2]"),
        ("nosuch", "{}"),
    ] {
        let (code, _) = rpcd(&dir, &["call", method], args);
        assert_eq!(code, 2, "{method} {args}");
    }
    d.stop();
}

/// The router package's build (no `doctor` feature): LuCI's Check setup button gets one
/// `{"error"}` line saying the setup check is not in this build and how to run it, and
/// `mailbag doctor` says the same and exits 2 (could not run) — never a checklist, never an
/// unknown method. Runs without the `doctor` feature: `--no-default-features`, as the feed
/// builds it (the daemon test above needs `--features toml-config` for its configuration).
#[test]
#[cfg(not(feature = "doctor"))]
fn the_router_build_says_it_has_no_setup_check() {
    // The configuration the package installs as /etc/config/mailbag (UCI).
    let config = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../openwrt-package/mailbag/files/mailbag.config");

    let (code, out) = rpcd_with(&config, &["list"], "");
    assert_eq!(code, 0);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert!(
        list.get("check_setup").is_some(),
        "LuCI declares it: {list}"
    );

    let (code, out) = rpcd_with(&config, &["call", "check_setup"], "{}");
    assert_eq!(code, 0, "an answer LuCI shows, not a plugin failure: {out}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let why = v["error"].as_str().unwrap_or_else(|| panic!("{v}"));
    assert!(why.contains("has no setup check"), "{why}");
    assert!(why.contains("mailbag doctor"), "{why}");
    assert!(v.get("checks").is_none(), "{v}");

    let o = Command::new(env!("CARGO_BIN_EXE_mailbag"))
        .args(["doctor", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("has no setup check"), "{err}");
}
