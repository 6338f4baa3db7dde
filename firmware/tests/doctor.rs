//! `mailbag doctor` against real DNS, SMTP and HTTPS peers: dnsmasq serves a correct zone
//! and one zone per classic mistake (wrong MX priority, missing backup MX, an MX pointing
//! at a CNAME, an MTA-STS policy that leaves the backup out); a Python HTTPS server with
//! a test CA serves the MTA-STS policies on port 443; a mailbag silo answers ETRN; Postfix's
//! smtp-sink is the office's server; the edge's daemon runs. A correct setup passes clean
//! (exit 0); each mistake is one failed line with its fix (exit 1). Configuration mistakes
//! too: a silo name that does not resolve, a silo the firewall would lock out, and an
//! MTA-STS certificate the doctor does not trust.

#![cfg(feature = "doctor")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::dnsmasq::{Dnsmasq, require_dnsmasq};
use common::sink::{Sink, free_port, require_sink};
use common::{Daemon, tmpdir, write_config_with};
use serde_json::Value;

const MAILBAG: &str = env!("CARGO_BIN_EXE_mailbag");
/// Where `mta-sts.*.test` resolve: the HTTPS server's address (port 443, as MTA-STS says).
const HTTPS_IP: &str = "127.0.0.44";
const DOMAINS: [&str; 5] = [
    "good.test",
    "prio.test",
    "nobackup.test",
    "cname.test",
    "sts.test",
];

/// A policy-serving HTTPS server: `ip`, cert, key, then `host=policy-file` pairs. HTTP/1.0,
/// `text/plain`, 404 for anything else.
const HTTPS: &str = r#"
import http.server, ssl, sys
ip, cert, key = sys.argv[1:4]
policies = {}
for spec in sys.argv[4:]:
    host, path = spec.split("=", 1)
    policies[host] = open(path, "rb").read()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = policies.get((self.headers.get("Host") or "").split(":")[0])
        if self.path != "/.well-known/mta-sts.txt" or body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
srv = http.server.ThreadingHTTPServer((ip, 443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("ready", flush=True)
srv.serve_forever()
"#;

struct Https(Child);

impl Drop for Https {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A test CA and a certificate for every `mta-sts.DOMAIN`, as PEM files in `dir`; returns
/// the CA file.
fn certificates(dir: &Path) -> PathBuf {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let names: Vec<String> = DOMAINS.iter().map(|d| format!("mta-sts.{d}")).collect();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(names)
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem()).unwrap();
    dir.join("ca.pem")
}

fn https(dir: &Path) -> Https {
    let policy = |name: &str, mx: &[&str]| {
        let lines: String = mx.iter().map(|m| format!("mx: {m}\r\n")).collect();
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!("version: STSv1\r\nmode: enforce\r\n{lines}max_age: 86400\r\n"),
        )
        .unwrap();
        format!("mta-sts.{name}={}", path.display())
    };
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(HTTPS)
        .arg(HTTPS_IP)
        .arg(dir.join("cert.pem"))
        .arg(dir.join("key.pem"))
        .arg(policy(
            "good.test",
            &["edge.office.test", "*.provider.test"],
        ))
        // The mistake: only the office is listed, not the silo.
        .arg(policy("sts.test", &["edge.office.test"]))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "the HTTPS server did not start");
    Https(child)
}

fn zone() -> Vec<String> {
    let mut r: Vec<String> = [
        "--host-record=edge.office.test,127.0.0.11",
        "--host-record=silo1.provider.test,127.0.0.1",
        "--mx-host=good.test,edge.office.test,10",
        "--mx-host=good.test,silo1.provider.test,20",
        "--txt-record=_mta-sts.good.test,v=STSv1; id=20250101",
        // Wrong priority: the silo ahead of the office.
        "--mx-host=prio.test,silo1.provider.test,10",
        "--mx-host=prio.test,edge.office.test,20",
        // No backup MX at all.
        "--mx-host=nobackup.test,edge.office.test,10",
        // The backup MX is an alias of the silo.
        "--mx-host=cname.test,edge.office.test,10",
        "--mx-host=cname.test,backup.cname.test,20",
        "--cname=backup.cname.test,silo1.provider.test",
        // MTA-STS policy without the backup.
        "--mx-host=sts.test,edge.office.test,10",
        "--mx-host=sts.test,silo1.provider.test,20",
        "--txt-record=_mta-sts.sts.test,v=STSv1; id=1",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    for d in DOMAINS {
        r.push(format!("--host-record=mta-sts.{d},{HTTPS_IP}"));
        r.push(format!(
            "--txt-record=_smtp._tls.{d},v=TLSRPTv1; rua=mailto:tls@{d}"
        ));
    }
    r
}

/// `mailbag doctor --config CFG ARGS…`: exit code, stdout.
fn doctor(cfg: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(MAILBAG)
        .arg("doctor")
        .arg("--config")
        .arg(cfg)
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.stderr.is_empty(),
        "nothing on stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap(), text)
}

/// The failed and warned lines of a `--json` run.
fn problems(v: &Value) -> Vec<(String, String, String, String)> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] != "pass")
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("status"), s("id"), s("text"), s("fix"))
        })
        .collect()
}

fn json(cfg: &Path, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, text) = doctor(cfg, &all);
    (code, serde_json::from_str(&text).unwrap())
}

/// Writes the edge's config (spool under the target dir: `/tmp` is RAM, and the doctor
/// says so).
fn edge_config(dir: &Path, spool_dir: &Path, relay: &str, firewall: &str) -> PathBuf {
    let cfg = write_config_with(dir, "", &DOMAINS, relay);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("mx.office.test", "edge.office.test")
        .replace(
            &dir.join("spool.img").display().to_string(),
            &spool_dir.join("spool.img").display().to_string(),
        )
        .replace("mode = \"off\"", firewall);
    std::fs::write(&cfg, text).unwrap();
    cfg
}

#[test]
fn doctor_passes_a_correct_setup_and_names_each_mistake_with_its_fix() {
    if !require_dnsmasq() || !require_sink() {
        return;
    }
    if TcpListener::bind((HTTPS_IP, 443)).is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{HTTPS_IP}:443 must be bindable in CI"
        );
        eprintln!("skipped: cannot listen on {HTTPS_IP}:443 (not root, or in use)");
        return;
    }
    let dir = tmpdir("doctor");
    let ca = certificates(&dir);
    let _https = https(&dir);
    let dns = Dnsmasq::start(&zone());
    let exchange = free_port();
    let _sink = Sink::start(exchange, &dir.join("office"));

    // The provider's silo, accepting every test domain (ETRN too).
    let silo_dir = dir.join("silo");
    std::fs::create_dir_all(&silo_dir).unwrap();
    let cfg = write_config_with(
        &silo_dir,
        "",
        &DOMAINS,
        &format!(
            "[relay]\nprobe-interval = 3600\ndns-servers = [\"{}\"]\n",
            dns.addr
        ),
    );
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("role = \"edge\"", "role = \"silo\"")
        .replace("mx.office.test", "silo1.provider.test");
    std::fs::write(&cfg, text).unwrap();
    let silo = Daemon::start(&silo_dir);

    // The edge, with its spool on disk.
    let edge_dir = dir.join("edge");
    std::fs::create_dir_all(&edge_dir).unwrap();
    let spool_dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("doctor-{}", std::process::id()));
    assert!(
        !spool_dir.starts_with("/tmp") && !spool_dir.starts_with("/var"),
        "this test keeps a spool under cargo's target directory, and the doctor rightly fails \
         a spool in /tmp or /var (RAM on OpenWrt): run it from a checkout outside those"
    );
    std::fs::create_dir_all(&spool_dir).unwrap();
    let relay = |silo_entry: &str| {
        format!(
            "[relay]\nnext-hops = [\"127.0.0.1:{exchange}\"]\nupstream-silo = [\"{silo_entry}\"]\n\
             dns-servers = [\"{}\"]\n",
            dns.addr
        )
    };
    let silo_entry = format!("silo1.provider.test:{}", silo.port);
    let good = edge_config(&edge_dir, &spool_dir, &relay(&silo_entry), "mode = \"off\"");
    let _edge = Daemon::start(&edge_dir);
    let ca_arg = ["--ca-file", ca.to_str().unwrap()];

    // A correct setup passes clean.
    let (code, text) = doctor(&good, &[&ca_arg[..], &["good.test"]].concat());
    assert_eq!(code, 0, "{text}");
    assert!(
        !text.contains("[FAIL]") && !text.contains("[WARN]"),
        "{text}"
    );
    for want in [
        "MX of good.test: 10 edge.office.test, 20 silo1.provider.test",
        "this router (edge.office.test) is the preferred MX of good.test (10)",
        "backup MX of good.test: silo1.provider.test (20)",
        "the MTA-STS policy of good.test (mode enforce) covers every MX host",
        "good.test has a TLS-RPT record",
        "the silo silo1.provider.test answers and accepts ETRN for good.test",
        &format!("the next hop 127.0.0.1:{exchange} (relay.next-hops) answers SMTP"),
        "the daemon is running",
    ] {
        assert!(text.contains(want), "missing '{want}' in:\n{text}");
    }
    println!("--- a correct setup ---\n{text}");

    // Each zone mistake: one failed line, with its fix.
    let cases: [(&str, &str, &str, &str); 4] = [
        (
            "prio.test",
            "mx.office",
            "wrong MX priority for prio.test: silo1.provider.test (10) is preferred over this router edge.office.test (20)",
            "give edge.office.test the lowest number",
        ),
        (
            "nobackup.test",
            "mx.backup",
            "missing backup MX: the silo silo1.provider.test is not an MX of nobackup.test",
            "add `nobackup.test. IN MX 20 silo1.provider.test.`",
        ),
        (
            "cname.test",
            "mx.host",
            "MX host backup.cname.test of cname.test is an alias (CNAME to silo1.provider.test)",
            "point the MX record at silo1.provider.test itself",
        ),
        (
            "sts.test",
            "mta-sts",
            "the MTA-STS policy of sts.test (mode enforce) does not list the MX host silo1.provider.test",
            "add `mx: silo1.provider.test` to https://mta-sts.sts.test/.well-known/mta-sts.txt",
        ),
    ];
    for (domain, id, text, fix) in cases {
        let (code, v) = json(&good, &[&ca_arg[..], &[domain]].concat());
        assert_eq!(code, 1, "{domain}: exit status 1 on a failure");
        assert_eq!(v["ok"], false);
        let p = problems(&v);
        assert_eq!(p.len(), 1, "{domain}: exactly one problem: {p:#?}");
        assert_eq!((p[0].0.as_str(), p[0].1.as_str()), ("fail", id), "{domain}");
        assert!(p[0].2.starts_with(text), "{domain}: {}", p[0].2);
        assert!(p[0].3.starts_with(fix), "{domain}: {}", p[0].3);
    }
    let (_, text) = doctor(&good, &[&ca_arg[..], &["prio.test"]].concat());
    println!("--- a wrong priority ---\n{text}");

    // Without the test CA, the policy's certificate is not trusted: MTA-STS cannot be read.
    let (code, v) = json(&good, &["good.test"]);
    assert_eq!(code, 1);
    let p = problems(&v);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(
        p[0].2.contains("cannot fetch it") && p[0].2.contains("certificate"),
        "{}",
        p[0].2
    );

    // A silo name that does not resolve.
    let bad_silo = edge_config(
        &edge_dir,
        &spool_dir,
        &relay("silo9.provider.test:25"),
        "mode = \"off\"",
    );
    let (code, v) = json(&bad_silo, &[&ca_arg[..], &["good.test"]].concat());
    assert_eq!(code, 1);
    let p = problems(&v);
    let addr = p.iter().find(|p| p.1 == "silo.address").unwrap();
    assert!(
        addr.2.starts_with(
            "the silo name silo9.provider.test (relay.upstream-silo) does not resolve"
        ),
        "{}",
        addr.2
    );
    assert!(
        addr.3
            .contains("correct relay.upstream-silo ('silo9.provider.test:25')")
    );

    // A silo the walled garden would lock out (its name resolves to 127.0.0.1).
    let locked = edge_config(
        &edge_dir,
        &spool_dir,
        &relay(&silo_entry),
        "mode = \"walled-garden\"\nsilo = [\"192.0.2.0/24\"]",
    );
    let (code, v) = json(&locked, &[&ca_arg[..], &["good.test"]].concat());
    assert_eq!(code, 1);
    let p = problems(&v);
    let addr = p.iter().find(|p| p.1 == "silo.address").unwrap();
    assert_eq!(
        addr.2,
        "the silo silo1.provider.test resolves to 127.0.0.1, which the firewall does not admit: the walled garden locks it out"
    );
    assert!(addr.3.starts_with("add 127.0.0.1 to firewall.silo"));

    drop(dns);
    let _ = std::fs::remove_dir_all(&spool_dir);
    std::fs::remove_dir_all(&dir).unwrap();
}
