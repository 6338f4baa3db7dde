//! `mailbag firewall render` as an installer runs it: config files, bad input, refusals.
//! No root needed: rendering is pure.

// Test harness code: a failed setup step should stop the test loudly, so unwrap is right.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

const MAILBAG: &str = env!("CARGO_BIN_EXE_mailbag");

fn mailbag(args: &[&str]) -> Output {
    Command::new(MAILBAG).args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn config(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("mbfwcli{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn empty_silo_in_walled_garden_is_refused_unless_forced() {
    let o = mailbag(&["firewall", "render", "--format", "nft"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("blocks ALL inbound mail"),
        "{}",
        stderr(&o)
    );
    assert!(o.stdout.is_empty(), "nothing rendered when refused");
    let o = mailbag(&["firewall", "render", "--format", "nft", "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("set mailbag_silo4 {"));
}

#[test]
fn config_file_firewall_table_is_read_and_other_tables_ignored() {
    let path = config(
        "ok.toml",
        "role = \"edge\"\n[smtp]\nlisten = [\"whatever\"]\n[firewall]\nmode = \"walled-garden\"\n\
         silo = [\"203.0.113.9/28\", \"203.0.113.0/28\", \"::ffff:198.51.100.7\"]\n\
         ports = [587, 25]\nwan-zone = \"wan\"\n",
    );
    let o = mailbag(&["firewall", "render", "--format", "nft", "--config", &path]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("elements = { 198.51.100.7, 203.0.113.0/28 }"),
        "{text}"
    );
    assert!(text.contains("elements = { 25, 587 }"), "{text}");
    // Same input, different order and redundancy: byte-identical output.
    let shuffled = config(
        "shuffled.toml",
        "[firewall]\nsilo = [\"198.51.100.7\", \"203.0.113.0/28\", \"203.0.113.1\"]\nports = [25, 587, 25]\n",
    );
    let o2 = mailbag(&[
        "firewall", "render", "--format", "nft", "--config", &shuffled,
    ]);
    assert_eq!(o.stdout, o2.stdout);
}

/// The package's own UCI file, as the fw4 include and the init script pass it: the same
/// loader as the daemon's (a TOML-only reader failed on it and left the rules unapplied).
#[test]
fn the_packaged_uci_file_is_read() {
    let shipped = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../openwrt-package/mailbag/files/mailbag.config"
    );
    let o = mailbag(&["firewall", "render", "--format", "nft", "--config", shipped]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("elements = { 203.0.113.0/28 }"), "{text}");
    // A UCI file with the mode set off renders no filtering rules, like the daemon reads it.
    let off = config(
        "off-uci",
        "config mailbag 'main'\n\toption role 'edge'\nconfig firewall 'firewall'\n\toption mode 'off'\n",
    );
    let o = mailbag(&["firewall", "render", "--format", "nft", "--config", &off]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("203.0.113"));
}

#[test]
fn bad_values_are_named_in_the_error() {
    for (toml, needle) in [
        (
            "[firewall]\nsilo = [\"192.0.2.0/24\", \"192.0.2.999\"]\n",
            "'192.0.2.999'",
        ),
        (
            "[firewall]\nsilo = [\"192.0.2.1\"]\nwan-zone = \"wan;x\"\n",
            "'wan;x'",
        ),
        (
            "[firewall]\nsilo = [\"192.0.2.1\"]\nsilo-dns = \"bad name\"\n",
            "'bad name'",
        ),
        (
            "[firewall]\nsilo = [\"192.0.2.1\"]\nportz = [25]\n",
            "portz",
        ),
        ("[firewall]\nmode = \"sometimes\"\n", "sometimes"),
    ] {
        let path = config("bad.toml", toml);
        let o = mailbag(&["firewall", "render", "--format", "nft", "--config", &path]);
        assert_eq!(o.status.code(), Some(2), "{toml}");
        assert!(stderr(&o).contains(needle), "{toml}: {}", stderr(&o));
    }
    let o = mailbag(&[
        "firewall",
        "render",
        "--format",
        "pf",
        "--silo",
        "192.0.2.1",
    ]);
    assert!(stderr(&o).contains("unknown format 'pf'"));
    let o = mailbag(&[
        "firewall",
        "render",
        "--format",
        "nft",
        "--silo",
        "10.0.0.0/8x",
    ]);
    assert!(stderr(&o).contains("'10.0.0.0/8x'"));
    let o = mailbag(&[
        "firewall",
        "render",
        "--format",
        "nft",
        "--config",
        "/nonexistent/x.toml",
    ]);
    assert!(stderr(&o).contains("cannot read config /nonexistent/x.toml"));
}

#[test]
fn uci_and_iptables_formats_render() {
    let args = [
        "--silo",
        "192.0.2.0/24",
        "--silo",
        "2001:db8::/32",
        "--mode",
        "open-when-primary-down",
        "--primary",
        "down",
    ];
    let run = |format: &str, extra: &[&str]| {
        let mut a = vec!["firewall", "render", "--format", format];
        a.extend_from_slice(&args);
        a.extend_from_slice(extra);
        let o = mailbag(&a);
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let uci = run("uci", &[]);
    assert!(uci.contains("add_list firewall.mailbag_silo4.entry='192.0.2.0/24'"));
    assert!(uci.contains("set firewall.mailbag_smtp_open.enabled='1'"));
    let v4 = run("iptables", &[]);
    assert!(v4.contains("-A MAILBAG_SILO -s 192.0.2.0/24 -j ACCEPT") && !v4.contains("2001:db8"));
    let v6 = run("iptables", &["--family", "6"]);
    assert!(v6.contains("-A MAILBAG_SILO -s 2001:db8::/32 -j ACCEPT") && !v6.contains("192.0.2"));
    assert!(v6.contains("-A MAILBAG_OPEN"));
}
