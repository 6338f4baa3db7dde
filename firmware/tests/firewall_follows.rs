//! `firewall.mode = "open-when-primary-down"` with the real daemon: in a network namespace
//! of its own (the "router", with an fw4-like nftables table) mailbag runs on port 25 and
//! delivers to a primary (Postfix's smtp-sink) on the router's loopback. From a second
//! namespace (an "outsider", not the silo) port 25 is dropped while the primary answers,
//! reachable within a few probe intervals after it stops, and dropped again once it is back.
//!
//! Needs root, `ip`, `nft`, `python3` and `smtp-sink`; skips otherwise unless
//! `MAILBAG_REQUIRE_NETNS=1` (CI).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon, tmpdir};

const ROUTER: &str = "10.78.2.1";
const OUTSIDER: &str = "10.78.2.2";
const PRIMARY_PORT: u16 = 2526;

/// fw4's table with the chains mailbag hooks into, the WAN link `ra`, and an old
/// Allow-SMTP rule (so our rule not matching would show as an open port).
const SCAFFOLD: &str = "table inet fw4\nflush table inet fw4\ntable inet fw4 {\n\
\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\
\t\tiifname \"lo\" accept\n\t\tct state established,related accept\n\
\t\tiifname \"ra\" jump input_wan\n\t}\n\
\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n\
\t\tiifname \"ra\" jump forward_wan\n\t}\n\
\tchain input_wan {\n\t\ttcp dport 25 accept comment \"the installer's old Allow-SMTP\"\n\
\t\tjump reject_from_wan\n\t}\n\
\tchain forward_wan {\n\t\tjump reject_from_wan\n\t}\n\
\tchain reject_from_wan {\n\t\treject\n\t}\n}\n";

fn sh(cmd: &[&str]) -> Output {
    Command::new(cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn ok(cmd: &[&str]) -> String {
    let out = sh(cmd);
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two namespaces joined by a veth pair; removed on drop.
struct Net {
    router: String,
    outsider: String,
}

impl Net {
    fn new() -> Option<Net> {
        let skip = |why: &str| {
            if std::env::var("MAILBAG_REQUIRE_NETNS").is_ok_and(|v| v == "1") {
                panic!("network namespace test cannot run: {why}");
            }
            eprintln!("SKIPPED: {why}");
            None
        };
        for tool in ["ip", "nft", "python3", "smtp-sink"] {
            let found = sh(&["sh", "-c", &format!("command -v {tool}")])
                .status
                .success();
            if !found {
                return skip(&format!("{tool} is not installed"));
            }
        }
        let tag = format!("mbff{}", std::process::id());
        let net = Net {
            router: format!("{tag}r"),
            outsider: format!("{tag}o"),
        };
        if !sh(&["ip", "netns", "add", &net.router]).status.success() {
            return skip("cannot create a network namespace (not root?)");
        }
        ok(&["ip", "netns", "add", &net.outsider]);
        let (r, o) = (&net.router, &net.outsider);
        ok(&[
            "ip", "-n", r, "link", "add", "ra", "type", "veth", "peer", "name", "ar", "netns", o,
        ]);
        for (ns, dev, addr) in [(r, "ra", ROUTER), (o, "ar", OUTSIDER)] {
            ok(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                dev,
            ]);
            ok(&["ip", "-n", ns, "link", "set", dev, "up"]);
            ok(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        Some(net)
    }

    fn exec(&self, ns: &str, cmd: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", ns];
        full.extend_from_slice(cmd);
        ok(&full)
    }

    /// The primary: smtp-sink on the router's loopback (stopped by its PID).
    fn primary(&self, dir: &std::path::Path) -> Child {
        std::fs::create_dir_all(dir).unwrap();
        Command::new("chmod").arg("777").arg(dir).status().unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.router,
                "smtp-sink",
                "-u",
                "nobody",
                "-d",
                "m.",
            ])
            .arg(format!("127.0.0.1:{PRIMARY_PORT}"))
            .arg("16")
            .current_dir(dir)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        child
    }

    /// Whether the outsider's TCP connect to the router's port 25 completes within 1 s.
    fn outsider_reaches_25(&self) -> bool {
        let probe = format!(
            "import socket\ns = socket.socket()\ns.settimeout(1)\ntry:\n    s.connect(('{ROUTER}', 25)); print('o')\nexcept OSError:\n    print('x')\n"
        );
        self.exec(&self.outsider, &["python3", "-c", &probe]).trim() == "o"
    }

    /// Waits until the outsider's view of port 25 is `open`; returns how long it took.
    fn wait_port(&self, open: bool, limit: Duration) -> Duration {
        let start = Instant::now();
        while self.outsider_reaches_25() != open {
            assert!(
                start.elapsed() < limit,
                "port 25 still {} for the outsider after {limit:?}",
                if open { "closed" } else { "open" }
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        start.elapsed()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.router, &self.outsider] {
            let _ = sh(&["ip", "netns", "del", ns]);
        }
    }
}

#[test]
fn port_25_opens_while_the_primary_is_down_and_closes_when_it_returns() {
    let Some(net) = Net::new() else {
        return;
    };
    let dir = tmpdir("fwfollow");
    let scaffold = dir.join("fw4.nft");
    std::fs::write(&scaffold, SCAFFOLD).unwrap();
    net.exec(&net.router, &["nft", "-f", scaffold.to_str().unwrap()]);
    let cfg = dir.join("mailbag.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"role = "edge"
[smtp]
hostname = "mx.office.test"
listen = ["0.0.0.0:25"]
[policy]
domains = ["office.test"]
[spool]
path = "{spool}"
size = 8388608
[relay]
next-hops = ["127.0.0.1:{PRIMARY_PORT}"]
probe-interval = 1
[firewall]
mode = "open-when-primary-down"
silo = ["10.78.1.0/24"]
[web]
listen = []
[daemon]
control-socket = ""
[monitor]
down-after = 2
"#,
            spool = dir.join("spool.img").display()
        ),
    )
    .unwrap();
    // The installer's apply: the walled garden (the primary assumed up).
    let include = dir.join("50-mailbag.nft");
    net.exec(
        &net.router,
        &[
            env!("CARGO_BIN_EXE_mailbag"),
            "firewall",
            "apply",
            "--config",
            cfg.to_str().unwrap(),
            "--file",
            include.to_str().unwrap(),
        ],
    );
    let mut primary = net.primary(&dir.join("primary"));
    let mut d = Daemon::start_in_netns(&net.router, &dir);
    d.wait_log("firewall follows the primary (up)", Duration::from_secs(15));
    assert!(
        !net.outsider_reaches_25(),
        "walled garden while the primary answers"
    );

    // The primary stops: within down-after (2) probe intervals (1 s) the port opens.
    let _ = primary.kill();
    let _ = primary.wait();
    let took = net.wait_port(true, Duration::from_secs(10));
    d.wait_log(
        "firewall follows the primary (down): port 25 open to all",
        Duration::from_secs(2),
    );
    eprintln!("port 25 opened {took:?} after the primary stopped");

    // It returns: closed again at the first answer.
    let mut primary = net.primary(&dir.join("primary"));
    let took = net.wait_port(false, Duration::from_secs(10));
    eprintln!("port 25 closed {took:?} after the primary returned");
    d.wait_log(
        "firewall follows the primary (up): port 25 only from the silo",
        Duration::from_secs(2),
    );
    // The page's Apply and the nft sets agree: the open set is empty again.
    let set = net.exec(
        &net.router,
        &["nft", "list", "set", "inet", "fw4", "mailbag_open"],
    );
    assert!(!set.contains("elements"), "{set}");
    d.stop();
    let _ = primary.kill();
    let _ = primary.wait();
}
