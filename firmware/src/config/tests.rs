//! Format-level tests: TOML and UCI give the same model, UCI writes read back, the shipped
//! OpenWrt defaults load and validate.

use std::path::Path;

use super::*;

/// The same settings in both formats.
const SAME_TOML: &str = r#"
enabled = false
role = "silo"

[smtp]
hostname = "mx2.provider.example"
listen = ["0.0.0.0:25", "[::]:25"]
max-sessions = 64
max-message-size = 5242880
starttls = false
tls-cert = "/etc/mailbag/cert.pem"
tls-key = "/etc/mailbag/key.pem"

[policy]
domains = ["example.com", "example.org"]
recipients = ["it's@example.com"]

[spool]
path = "/dev/mtd5"
max-messages = 100

[relay]
next-hops = ["10 mail.example.com:25", "20 backup.example.com:2525"]
lifetime-days = 5
dns-servers = ["127.0.0.1:5353", "::1"]
upstream-silo = "silo.example.net:25"

[firewall]
mode = "open-when-primary-down"
silo = ["203.0.113.0/28", "2001:db8::/48"]
ports = [25, 587]
"#;

const SAME_UCI: &str = r#"
package mailbag

config mailbag 'main'
	option enabled 'no'
	option role silo

config smtp
	option hostname "mx2.provider.example"
	list listen '0.0.0.0:25'
	list listen '[::]:25'
	option max_sessions '64'
	option max_message_size 5242880
	option starttls 'off'
	option tls_cert '/etc/mailbag/cert.pem'
	option tls_key '/etc/mailbag/key.pem'

config policy 'policy'
	option domains 'example.com example.org'
	list recipients 'it'\''s@example.com'

config spool 'spool'
	option path /dev/mtd5
	option max_messages 100

config relay
	list next_hops '10 mail.example.com:25'
	list next_hops '20 backup.example.com:2525'
	option lifetime_days '5'
	list dns_servers '127.0.0.1:5353'
	list dns_servers '::1'
	option upstream_silo 'silo.example.net:25'

config firewall
	option mode 'open-when-primary-down'
	list silo '203.0.113.0/28'
	list silo '2001:db8::/48'
	option ports '25 587'
"#;

#[test]
fn toml_and_uci_give_the_same_config() {
    let from_toml = Config::parse(SAME_TOML, Format::Toml).unwrap();
    let from_uci = Config::parse(SAME_UCI, Format::Uci).unwrap();
    assert_eq!(from_toml, from_uci);
    // And they are not just both the default.
    assert_eq!(from_uci.role, Role::Silo);
    assert_eq!(from_uci.firewall.ports, [25, 587]);
    assert_eq!(from_uci.policy.recipients, ["it's@example.com"]);
    assert_eq!(from_uci.relay.dns_servers, ["127.0.0.1:5353", "::1"]);
    assert_eq!(
        from_uci.relay.probe_interval,
        RelayConfig::default().probe_interval
    );
}

#[test]
fn uci_written_reads_back_equal() {
    let mut configs = vec![
        Config::default(),
        Config::demo(Path::new("/tmp/state with 'quote'")),
        Config::parse(SAME_TOML, Format::Toml).unwrap(),
    ];
    // Empty lists whose default is not empty, and odd characters, survive too.
    let mut odd = Config::default();
    odd.smtp.listen.clear();
    odd.firewall.ports.clear();
    odd.smtp.tls_cert = Some(String::new());
    odd.relay.retry = "a \"b\" \\c\nd # e; f".into();
    configs.push(odd);
    for c in configs {
        let text = c.to_uci().unwrap();
        assert!(
            text.starts_with("package mailbag\n\nconfig mailbag 'main'\n"),
            "{text}"
        );
        let back = Config::parse(&text, Format::Uci).unwrap();
        assert_eq!(back, c, "{text}");
        // TOML round-trips as well.
        assert_eq!(
            Config::parse(&c.to_toml().unwrap(), Format::Toml).unwrap(),
            c
        );
    }
}

#[test]
fn written_uci_looks_like_uci_export() {
    let text = Config::demo(Path::new("state")).to_uci().unwrap();
    for line in [
        "config mailbag 'main'\n\toption enabled '1'\n",
        "config smtp 'smtp'\n",
        "\tlist listen '127.0.0.1:2525'\n",
        "\toption max_message_size '10485760'\n",
        "\toption starttls '1'\n",
        "\tlist domains 'example.test'\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[test]
fn shipped_openwrt_defaults_load_and_validate() {
    let text = include_str!("../../../openwrt-package/mailbag/files/mailbag.config");
    assert_eq!(
        Format::detect(Path::new("/etc/config/mailbag"), text),
        Format::Uci
    );
    let c = Config::parse(text, Format::Uci).unwrap();
    let report = c.validate();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert!(!c.enabled, "shipped disabled until configured");
    // Every commented default in the file is the model's default.
    let defaults = Config::default().to_uci().unwrap();
    for line in text.lines().filter_map(|l| l.trim().strip_prefix("# ")) {
        if line.starts_with("option ") || line.starts_with("list ") {
            let section = section_of(text, line);
            let d_section = section_text(&defaults, &section);
            // Example values (certificate paths, silo names) are not defaults.
            let example = line.contains("example") || line.contains("/etc/mailbag/");
            assert!(
                example || d_section.contains(&format!("\t{line}\n")),
                "commented default '{line}' in [{section}] differs from the model's default"
            );
        }
    }
}

/// The type of the section a line of `text` is in.
fn section_of(text: &str, line: &str) -> String {
    let mut kind = String::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("config ") {
            kind = rest.split_whitespace().next().unwrap_or("").to_string();
        }
        if l.trim().strip_prefix("# ") == Some(line) {
            return kind;
        }
    }
    panic!("{line} not found")
}

fn section_text<'a>(text: &'a str, kind: &str) -> &'a str {
    let start = text.find(&format!("config {kind} ")).unwrap();
    let rest = &text[start..];
    let end = rest[1..].find("\nconfig ").map_or(rest.len(), |e| e + 1);
    &rest[..end]
}

#[test]
fn format_detection() {
    let p = Path::new("/etc/config/mailbag");
    assert_eq!(Format::detect(p, "# c\n\nconfig smtp\n"), Format::Uci);
    assert_eq!(Format::detect(p, "package mailbag\n"), Format::Uci);
    assert_eq!(Format::detect(p, "role = 'edge'\n"), Format::Toml);
    assert_eq!(Format::detect(p, "[smtp]\n"), Format::Toml);
    assert_eq!(
        Format::detect(Path::new("m.toml"), "config smtp\n"),
        Format::Toml
    );
}

#[test]
fn load_reads_files_and_reports_errors_by_key_and_line() {
    let dir = std::env::temp_dir().join(format!("mailbag-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };

    let c = Config::load(&write("a.toml", SAME_TOML)).unwrap();
    assert_eq!(c, Config::load(&write("mailbag", SAME_UCI)).unwrap());

    let e = Config::load(&write("b.toml", "[smtp]\nmax-sessions = \"many\"\n")).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("line 2") && msg.contains("max-sessions"),
        "{msg}"
    );

    let e = Config::load(&write("c.toml", "[smtp]\nlisten-on = []\n")).unwrap_err();
    assert!(e.to_string().contains("unknown field `listen-on`"), "{e}");

    let e = Config::load(&write("d", "config smtp\n\toption max_sessions lots\n")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 2: smtp.max_sessions: 'lots' is not a number (0..=4294967295)"
    );

    let e = Config::load(&write("e", "config smtp\n\tlist listen 'x:25'\n")).unwrap_err();
    assert!(
        e.to_string()
            .contains("smtp.listen[0]: 'x:25' is not an address:port"),
        "{e}"
    );

    let e = Config::load(&write("f", "config smtp\n\toption 'x\n")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 2: unterminated ' (opened on this line)"
    );

    let e = Config::load(&dir.join("missing")).unwrap_err();
    assert!(matches!(e, ConfigError::Io(..)), "{e}");

    let big = write("big", &"#".repeat(MAX_CONFIG_BYTES as usize + 1));
    assert!(matches!(Config::load(&big), Err(ConfigError::TooLarge(_))));

    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn save_uci_writes_a_file_that_loads_equal_and_refuses_invalid_configs() {
    let dir = std::env::temp_dir().join(format!("mailbag-save-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mailbag");

    let mut c = Config::demo(Path::new("/srv/mailbag"));
    c.relay.upstream_silo = vec!["silo1.example.net:25".into(), "silo2.example.net:25".into()];
    c.save_uci(&path).unwrap();
    assert_eq!(Config::load(&path).unwrap(), c);
    assert!(!dir.join("mailbag.tmp").exists());

    let before = std::fs::read_to_string(&path).unwrap();
    let mut bad = c.clone();
    bad.relay.lifetime_days = 0;
    let e = bad.save_uci(&path).unwrap_err();
    assert!(e.to_string().contains("relay.lifetime-days"), "{e}");
    let mut huge = c.clone();
    huge.spool.size = u64::MAX;
    assert!(huge.to_uci().is_err(), "TOML/UCI integers are i64");
    assert!(matches!(huge.save_uci(&path), Err(ConfigError::Invalid(_))));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        before,
        "old file kept"
    );

    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn upstream_silos_are_a_list_in_preference_order_and_one_string_still_reads() {
    let toml = |v: &str| Config::parse(&format!("[relay]\nupstream-silo = {v}\n"), Format::Toml);
    assert_eq!(
        toml("\"s1.test:25\"").unwrap().relay.upstream_silo,
        ["s1.test:25"]
    );
    let two = toml("[\"s1.test:25\", \"s2.test:2525\"]").unwrap();
    assert_eq!(two.relay.upstream_silo, ["s1.test:25", "s2.test:2525"]);
    let uci =
        "config relay\n\tlist upstream_silo 's1.test:25'\n\tlist upstream_silo 's2.test:2525'\n";
    assert_eq!(Config::parse(uci, Format::Uci).unwrap(), two);
    let mut bad = two.clone();
    bad.relay.upstream_silo.push("nope".into());
    let r = bad.validate();
    assert!(
        r.errors.iter().any(|i| i.key == "relay.upstream-silo[2]"),
        "{:?}",
        r.errors
    );
}
