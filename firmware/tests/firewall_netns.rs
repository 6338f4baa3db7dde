//! Behaviour of the rendered firewall rules, proven with real packets in network namespaces.
//!
//! Each test builds its own namespaces — a "router" with the rules and TCP listeners on
//! 25, 465 and 2525, a "silo" and an "attacker", each with IPv4 and IPv6 addresses on a veth
//! link to the router (plus, for the port-forward test, a "primary" on the router's LAN side)
//! — and removes them on drop. The router has no fw4/fw3, so the tests load
//! a minimal scaffold with the same table, chain names and include point as fw4 (or fw3's
//! `input_wan_rule` hook chains), and `mailbag firewall render|apply` does the rest.
//!
//! Needs root, `ip`, `nft`, `iptables-restore`, `ip6tables-restore` and `python3` (listener and
//! probes). Where they are missing the tests print why and skip, unless
//! `MAILBAG_REQUIRE_NETNS=1` (set it in CI) turns the skip into a failure. The skip message
//! is visible with `cargo test -- --nocapture` (or `--show-output`).

// Test harness code: a failed setup step should stop the test loudly, so unwrap is right.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mailbag::firewall::{FirewallConfig, FirewallMode, Primary, Ruleset, SiloSet, iptables, nft};

const MAILBAG: &str = env!("CARGO_BIN_EXE_mailbag");

/// Silo addresses (two per family, so the silo set can move between them) and the attacker's.
const SILO4_A: &str = "10.77.1.2";
const SILO4_B: &str = "10.77.1.3";
const SILO6_A: &str = "fd77:1::2";
const SILO6_B: &str = "fd77:1::3";
const ATTACKER4: &str = "10.77.2.2";
const ATTACKER6: &str = "fd77:2::2";
/// The router's address on each link.
const ROUTER_S4: &str = "10.77.1.1";
const ROUTER_S6: &str = "fd77:1::1";
const ROUTER_A4: &str = "10.77.2.1";
const ROUTER_A6: &str = "fd77:2::1";

/// Listener and prober, run with `ip netns exec`. `probe` prints one line per attempt:
/// `o` connected, `t` timed out (dropped), `r` refused/unreachable (rejected).
const HELPER: &str = r#"
import socket, sys, time, selectors
if sys.argv[1] == "listen":
    sel = selectors.DefaultSelector()
    for p in sys.argv[2].split(","):
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::", int(p))); s.listen(128); s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    print("ready", flush=True)
    deadline = time.time() + float(sys.argv[3])
    while time.time() < deadline:
        for key, _ in sel.select(0.2):
            try:
                c, _ = key.fileobj.accept(); c.close()
            except OSError:
                pass
elif sys.argv[1] == "burst":
    # A new non-blocking connect every GAP seconds for DURATION seconds; each attempt
    # counts as o (connected), r (refused) or t (no answer within 0.3 s). Bounded: at
    # most 512 attempts in flight, all closed before the counts are printed.
    src, dst, port, duration, gap = sys.argv[2:7]
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    sel = selectors.DefaultSelector()
    counts = {"o": 0, "t": 0, "r": 0}
    pending = {}
    end = time.time() + float(duration)
    nxt = 0.0
    print("started", flush=True)
    while time.time() < end or pending:
        now = time.time()
        if now < end and now >= nxt and len(pending) < 512:
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setblocking(False)
            s.bind((src, 0))
            s.connect_ex((dst, int(port)))
            sel.register(s, selectors.EVENT_WRITE)
            pending[s] = now
            nxt = now + float(gap)
        for key, _ in sel.select(0.002):
            s = key.fileobj
            e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            counts["o" if e == 0 else "r"] += 1
            sel.unregister(s); s.close(); del pending[s]
        for s, t0 in list(pending.items()):
            if time.time() - t0 > 0.3:
                counts["t"] += 1
                sel.unregister(s); s.close(); del pending[s]
    print("o=%d t=%d r=%d" % (counts["o"], counts["t"], counts["r"]), flush=True)
else:
    src, dst, port, timeout, count, gap = sys.argv[2:8]
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    for _ in range(int(count)):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(float(timeout))
        try:
            s.bind((src, 0)); s.connect((dst, int(port))); r = "o"
        except socket.timeout:
            r = "t"
        except OSError:
            r = "r"
        finally:
            s.close()
        print(r, flush=True)
        time.sleep(float(gap))
"#;

/// A fw4-like table: same name, chain names and include point as fw4's ruleset template,
/// with an unrelated service on 2525, an "Allow-SMTP" rule from before mailbag (so any
/// moment our rules do not match would show as an open port 25), and fw4's default reject.
fn fw4_scaffold(include_dir: Option<&Path>) -> String {
    let include = include_dir
        .map(|d| format!("\tinclude \"{}/*.nft\"\n", d.display()))
        .unwrap_or_default();
    format!(
        "table inet fw4\nflush table inet fw4\ntable inet fw4 {{\n{include}\
         \tchain input {{\n\t\ttype filter hook input priority filter; policy drop;\n\
         \t\tiifname \"lo\" accept\n\t\tct state established,related accept\n\
         \t\tiifname {{ \"rs\", \"ra\" }} jump input_wan\n\
         \t\tiifname \"rl\" accept comment \"the lan zone\"\n\t}}\n\
         \tchain forward {{\n\t\ttype filter hook forward priority filter; policy drop;\n\
         \t\tct state established,related accept\n\
         \t\tiifname {{ \"rs\", \"ra\" }} jump forward_wan\n\t}}\n\
         \tchain input_wan {{\n\t\tmeta l4proto {{ icmp, ipv6-icmp }} accept\n\
         \t\ttcp dport 2525 accept comment \"an unrelated service\"\n\
         \t\ttcp dport {{ 25, 465 }} accept comment \"the installer's old Allow-SMTP\"\n\
         \t\tjump reject_from_wan\n\t}}\n\
         \tchain forward_wan {{\n\t\tct status dnat accept\n\t\tjump reject_from_wan\n\t}}\n\
         \tchain reject_from_wan {{\n\t\treject\n\t}}\n}}\n"
    )
}

/// fw3-like chains: INPUT → zone_wan_input → input_wan_rule (user hook), then 2525, an old
/// Allow-SMTP rule, reject.
fn fw3_scaffold(v6: bool) -> String {
    let icmp = if v6 { "ipv6-icmp" } else { "icmp" };
    format!(
        "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         :zone_wan_input - [0:0]\n:input_wan_rule - [0:0]\n:forwarding_wan_rule - [0:0]\n\
         -A INPUT -i lo -j ACCEPT\n\
         -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
         -A INPUT -i rs -j zone_wan_input\n-A INPUT -i ra -j zone_wan_input\n\
         -A FORWARD -j forwarding_wan_rule\n\
         -A zone_wan_input -j input_wan_rule\n-A zone_wan_input -p {icmp} -j ACCEPT\n\
         -A zone_wan_input -p tcp --dport 2525 -j ACCEPT\n\
         -A zone_wan_input -p tcp -m multiport --dports 25,465 -j ACCEPT\n\
         -A zone_wan_input -p tcp -j REJECT --reject-with tcp-reset\nCOMMIT\n"
    )
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Three namespaces and a listener; removed on drop.
struct Net {
    router: String,
    silo: String,
    attacker: String,
    dir: PathBuf,
    listeners: Vec<Child>,
    lan: Option<String>,
}

fn skip(why: &str) -> Option<Net> {
    if std::env::var("MAILBAG_REQUIRE_NETNS").is_ok_and(|v| v == "1") {
        panic!("network namespace test cannot run: {why}");
    }
    eprintln!("SKIPPED: {why} (needs root, iproute2, nftables, iptables, python3)");
    None
}

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
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Net {
    fn new() -> Option<Self> {
        for tool in [
            "ip",
            "nft",
            "iptables-restore",
            "ip6tables-restore",
            "python3",
        ] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success());
            if !found {
                return skip(&format!("{tool} is not installed"));
            }
        }
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("mbfw{}x{n}", std::process::id());
        let dir = std::env::temp_dir().join(&tag);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("helper.py"), HELPER).unwrap();
        let net = Net {
            router: format!("{tag}r"),
            silo: format!("{tag}s"),
            attacker: format!("{tag}a"),
            dir,
            listeners: Vec::new(),
            lan: None,
        };
        if !sh(&["ip", "netns", "add", &net.router]).status.success() {
            return skip("cannot create a network namespace (not root?)");
        }
        for ns in [&net.silo, &net.attacker] {
            ok(&["ip", "netns", "add", ns]);
        }
        for ns in [&net.router, &net.silo, &net.attacker] {
            net.no_dad(ns);
        }
        let (r, s, a) = (&net.router, &net.silo, &net.attacker);
        ok(&[
            "ip", "-n", r, "link", "add", "rs", "type", "veth", "peer", "name", "sr", "netns", s,
        ]);
        ok(&[
            "ip", "-n", r, "link", "add", "ra", "type", "veth", "peer", "name", "ar", "netns", a,
        ]);
        for (ns, dev, addrs) in [
            (
                r,
                "rs",
                vec![format!("{ROUTER_S4}/24"), format!("{ROUTER_S6}/64")],
            ),
            (
                r,
                "ra",
                vec![format!("{ROUTER_A4}/24"), format!("{ROUTER_A6}/64")],
            ),
            (
                s,
                "sr",
                vec![
                    format!("{SILO4_A}/24"),
                    format!("{SILO4_B}/24"),
                    format!("{SILO6_A}/64"),
                    format!("{SILO6_B}/64"),
                ],
            ),
            (
                a,
                "ar",
                vec![format!("{ATTACKER4}/24"), format!("{ATTACKER6}/64")],
            ),
        ] {
            for addr in addrs {
                let mut cmd = vec!["ip", "-n", ns, "addr", "add", &addr, "dev", dev];
                if addr.contains(':') {
                    cmd.push("nodad"); // no duplicate-address-detection wait
                }
                ok(&cmd);
            }
            ok(&["ip", "-n", ns, "link", "set", dev, "up"]);
            ok(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        Some(net)
    }

    /// Skips IPv6 duplicate address detection for links made later in `ns`: a tentative
    /// link-local address delays neighbour discovery (and so forwarding) by a second or two.
    fn no_dad(&self, ns: &str) {
        self.exec_ok(
            ns,
            &[
                "sysctl",
                "-qw",
                "net.ipv6.conf.default.accept_dad=0",
                "net.ipv6.conf.all.accept_dad=0",
            ],
        );
    }

    fn exec(&self, ns: &str, cmd: &[&str]) -> Output {
        let mut full = vec!["ip", "netns", "exec", ns];
        full.extend_from_slice(cmd);
        sh(&full)
    }

    fn exec_ok(&self, ns: &str, cmd: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", ns];
        full.extend_from_slice(cmd);
        ok(&full)
    }

    fn exec_stdin(&self, ns: &str, cmd: &[&str], input: &str) -> Output {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(cmd)
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
        child.wait_with_output().unwrap()
    }

    fn helper(&self) -> String {
        self.dir.join("helper.py").display().to_string()
    }

    /// Starts the router's listener on 25, 465 and 2525 (bounded lifetime: 120 s).
    fn listen(&mut self) {
        self.listen_in(&self.router.clone());
    }

    /// Adds a "primary" namespace on the router's LAN side (10.77.3.2, fd77:3::2) with the
    /// listener in it instead of on the router; the router forwards.
    fn add_primary_on_lan(&mut self) -> String {
        let lan = self.router.replace("r", "p");
        ok(&["ip", "netns", "add", &lan]);
        self.lan = Some(lan.clone());
        self.no_dad(&lan);
        let r = self.router.clone();
        ok(&[
            "ip", "-n", &r, "link", "add", "rl", "type", "veth", "peer", "name", "lr", "netns",
            &lan,
        ]);
        ok(&["ip", "-n", &r, "addr", "add", "10.77.3.1/24", "dev", "rl"]);
        ok(&[
            "ip",
            "-n",
            &r,
            "addr",
            "add",
            "fd77:3::1/64",
            "dev",
            "rl",
            "nodad",
        ]);
        ok(&["ip", "-n", &lan, "addr", "add", "10.77.3.2/24", "dev", "lr"]);
        ok(&[
            "ip",
            "-n",
            &lan,
            "addr",
            "add",
            "fd77:3::2/64",
            "dev",
            "lr",
            "nodad",
        ]);
        for (ns, dev) in [(&r, "rl"), (&lan, "lr"), (&lan, "lo")] {
            ok(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        ok(&[
            "ip",
            "-n",
            &lan,
            "route",
            "add",
            "default",
            "via",
            "10.77.3.1",
        ]);
        ok(&[
            "ip",
            "-n",
            &lan,
            "-6",
            "route",
            "add",
            "default",
            "via",
            "fd77:3::1",
        ]);
        self.exec_ok(&r, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        self.exec_ok(&r, &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
        self.listen_in(&lan);
        lan
    }

    fn listen_in(&mut self, ns: &str) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "python3", &self.helper(), "listen"])
            .args(["25,465,2525", "120"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        self.listeners.push(child);
    }

    /// One connection attempt (1 s timeout): 'o', 't' or 'r'.
    fn probe(&self, ns: &str, src: &str, dst: &str, port: u16) -> char {
        let out = self.exec_ok(
            ns,
            &[
                "python3",
                &self.helper(),
                "probe",
                src,
                dst,
                &port.to_string(),
                "1",
                "1",
                "0",
            ],
        );
        out.trim().chars().next().unwrap_or('?')
    }

    /// Starts a connection attempt every 5 ms for `secs` seconds, in the background.
    fn burst(&self, ns: &str, src: &str, dst: &str, port: u16, secs: f32) -> Burst {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "python3", &self.helper(), "burst"])
            .args([src, dst, &port.to_string(), &secs.to_string(), "0.005"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        assert_eq!(first.trim(), "started");
        Burst { child, reader }
    }

    /// Runs `mailbag ARGS` inside the router namespace.
    fn mailbag(&self, args: &[&str]) -> Output {
        let mut cmd = vec![MAILBAG];
        cmd.extend_from_slice(args);
        self.exec(&self.router, &cmd)
    }

    fn write_config(&self, name: &str, mode: &str, silo: &[&str]) -> String {
        let list: Vec<String> = silo.iter().map(|s| format!("\"{s}\"")).collect();
        let path = self.dir.join(name);
        std::fs::write(
            &path,
            format!(
                "role = \"edge\"\n[smtp]\n[firewall]\nmode = \"{mode}\"\nports = [25, 465]\nsilo = [{}]\n",
                list.join(", ")
            ),
        )
        .unwrap();
        path.display().to_string()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for mut l in self.listeners.drain(..) {
            let _ = l.kill();
            let _ = l.wait();
        }
        for ns in [&self.router, &self.silo, &self.attacker]
            .into_iter()
            .chain(&self.lan)
        {
            let _ = sh(&["ip", "netns", "del", ns]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A background burst of connection attempts.
struct Burst {
    child: Child,
    reader: BufReader<std::process::ChildStdout>,
}

/// How a burst's attempts ended.
#[derive(Debug)]
struct Counts {
    connected: u32,
    timed_out: u32,
    refused: u32,
}

impl Burst {
    fn still_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn finish(mut self) -> Counts {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert!(self.child.wait().unwrap().success());
        let n = |k: &str| -> u32 {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("bad burst output {line:?}"))
        };
        Counts {
            connected: n("o="),
            timed_out: n("t="),
            refused: n("r="),
        }
    }
}

/// While both bursts run, applies `configs` in turn (bounded); returns how many applies ran.
fn apply_while_probing(bursts: &mut [&mut Burst], mut apply: impl FnMut(usize)) -> usize {
    let mut n = 0;
    while n < 200 && bursts.iter_mut().all(|b| b.still_running()) {
        apply(n);
        n += 1;
    }
    n
}

/// Many set changes ran during the bursts, and not one attacker attempt got through or was
/// even answered: every SYN was dropped.
fn assert_no_window(applies: usize, v4: &Counts, v6: &Counts) {
    assert!(applies >= 10, "only {applies} applies ran during the probe");
    assert_eq!(
        v4.connected + v6.connected,
        0,
        "attacker got in: {v4:?} {v6:?}"
    );
    assert!(v4.timed_out > 200 && v6.timed_out > 200, "{v4:?} {v6:?}");
    assert_eq!(
        v4.refused + v6.refused,
        0,
        "dropped, not rejected: {v4:?} {v6:?}"
    );
}

fn out_text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Asserts what silo (address A) and attacker see on 25 and 465, both families, and on 2525.
fn assert_walled(net: &Net, attacker_expect: char) {
    for (src, dst) in [(SILO4_A, ROUTER_S4), (SILO6_A, ROUTER_S6)] {
        for port in [25, 465] {
            assert_eq!(
                net.probe(&net.silo, src, dst, port),
                'o',
                "silo {src} -> {dst}:{port}"
            );
        }
    }
    for (src, dst) in [(ATTACKER4, ROUTER_A4), (ATTACKER6, ROUTER_A6)] {
        for port in [25, 465] {
            assert_eq!(
                net.probe(&net.attacker, src, dst, port),
                attacker_expect,
                "attacker {src} -> {dst}:{port}"
            );
        }
        assert_eq!(
            net.probe(&net.attacker, src, dst, 2525),
            'o',
            "other ports unaffected"
        );
    }
}

fn ruleset(mode: FirewallMode, silo: &[&str], primary: Primary) -> Ruleset {
    let cfg = FirewallConfig {
        mode,
        ports: vec![25, 465, 587],
        ..FirewallConfig::default()
    };
    Ruleset::new(&cfg, SiloSet::parse(silo).unwrap(), primary, true).unwrap()
}

#[test]
fn every_rendering_passes_nft_and_iptables_restore_checks() {
    let Some(net) = Net::new() else { return };
    let r = &net.router;
    let silos: [&[&str]; 3] = [
        &["192.0.2.0/24", "2001:db8::/32", "::ffff:198.51.100.9"],
        &["192.0.2.7"],
        &[],
    ];
    let mut variants = Vec::new();
    for mode in [
        FirewallMode::WalledGarden,
        FirewallMode::OpenWhenPrimaryDown,
        FirewallMode::Off,
    ] {
        for primary in [Primary::Up, Primary::Down] {
            for silo in silos {
                variants.push(ruleset(mode, silo, primary));
            }
        }
    }
    // The include, loaded exactly where fw4 loads /etc/nftables.d/*.nft.
    let inc = net.dir.join("inc");
    std::fs::create_dir_all(&inc).unwrap();
    let scaffold = net.dir.join("fw4.nft");
    std::fs::write(&scaffold, fw4_scaffold(Some(&inc))).unwrap();
    let empty = net.dir.join("fw4-empty.nft");
    std::fs::write(&empty, fw4_scaffold(None)).unwrap();
    for rules in &variants {
        std::fs::write(inc.join("50-mailbag.nft"), nft::include(rules)).unwrap();
        let o = net.exec(r, &["nft", "-c", "-f", &scaffold.display().to_string()]);
        assert!(
            o.status.success(),
            "nft -c include {rules:?}: {}",
            out_text(&o)
        );
    }
    // The live-load and set-update scripts against a running table.
    net.exec_ok(r, &["nft", "-f", &empty.display().to_string()]);
    for rules in &variants {
        let o = net.exec_stdin(r, &["nft", "-c", "-f", "-"], &nft::live_load(rules));
        assert!(o.status.success(), "nft -c live load: {}", out_text(&o));
    }
    std::fs::write(inc.join("50-mailbag.nft"), nft::include(&variants[0])).unwrap();
    net.exec_ok(r, &["nft", "-f", &scaffold.display().to_string()]);
    for rules in &variants {
        let o = net.exec_stdin(r, &["nft", "-c", "-f", "-"], &nft::live_load(rules));
        assert!(
            o.status.success(),
            "nft -c live load over existing sets: {}",
            out_text(&o)
        );
        let o = net.exec_stdin(r, &["nft", "-c", "-f", "-"], &nft::set_update(rules));
        assert!(o.status.success(), "nft -c set update: {}", out_text(&o));
    }
    // iptables fragments (first load and update) on fw3-like chains.
    for (family, v6) in [(iptables::Family::V4, false), (iptables::Family::V6, true)] {
        let o = net.exec_stdin(r, &[family.restore_cmd()], &fw3_scaffold(v6));
        assert!(o.status.success(), "fw3 scaffold: {}", out_text(&o));
        for rules in &variants {
            for hooks in [iptables::Hooks::Insert, iptables::Hooks::Keep] {
                let frag = iptables::fragment(rules, family, hooks);
                let o = net.exec_stdin(r, &[family.restore_cmd(), "--test", "--noflush"], &frag);
                assert!(
                    o.status.success(),
                    "{} --test: {}\n{frag}",
                    family.restore_cmd(),
                    out_text(&o)
                );
            }
        }
    }
    // And the CLI's own output is what was checked.
    let cli = net.mailbag(&[
        "firewall",
        "render",
        "--format",
        "nft",
        "--silo",
        "192.0.2.7",
    ]);
    assert!(cli.status.success());
    assert_eq!(
        String::from_utf8_lossy(&cli.stdout),
        nft::include(
            &Ruleset::new(
                &FirewallConfig::default(),
                SiloSet::parse(&["192.0.2.7"]).unwrap(),
                Primary::Up,
                false
            )
            .unwrap()
        )
    );
}

#[test]
fn nft_silo_gets_in_attacker_does_not_and_set_changes_never_open_a_window() {
    let Some(mut net) = Net::new() else { return };
    net.listen();
    let r = net.router.clone();
    // Install like an installer would: render into the include dir, then (re)load "fw4".
    let inc = net.dir.join("nftables.d");
    std::fs::create_dir_all(&inc).unwrap();
    let include = inc.join("50-mailbag.nft");
    let cfg_a = net.write_config("a.toml", "walled-garden", &[SILO4_A, SILO6_A]);
    let rendered = net.mailbag(&["firewall", "render", "--format", "nft", "--config", &cfg_a]);
    assert!(rendered.status.success(), "{}", out_text(&rendered));
    std::fs::write(&include, &rendered.stdout).unwrap();
    let scaffold = net.dir.join("fw4.nft");
    std::fs::write(&scaffold, fw4_scaffold(Some(&inc))).unwrap();
    net.exec_ok(&r, &["nft", "-f", &scaffold.display().to_string()]);

    // Port 25 was open to all before; now the attacker's SYNs are dropped ('t').
    assert_walled(&net, 't');
    assert_eq!(
        net.probe(&net.silo, SILO4_B, ROUTER_S4, 25),
        't',
        "B not in the set yet"
    );

    // Move the silo set from address A to B (both families) and back, several times, while
    // the attacker probes port 25 back to back.
    let cfg_b = net.write_config("b.toml", "walled-garden", &[SILO4_B, SILO6_B]);
    let handles_before = net.exec_ok(
        &r,
        &["nft", "-a", "list", "chain", "inet", "fw4", "input_wan"],
    );
    let mut attacker = net.burst(&net.attacker, ATTACKER4, ROUTER_A4, 25, 3.0);
    let mut attacker6 = net.burst(&net.attacker, ATTACKER6, ROUTER_A6, 465, 3.0);
    let started = Instant::now();
    let include_s = include.display().to_string();
    let applies = apply_while_probing(&mut [&mut attacker, &mut attacker6], |i| {
        // Ends on B: an odd number of applies is forced below.
        let cfg = if i % 2 == 0 { &cfg_b } else { &cfg_a };
        let o = net.mailbag(&["firewall", "apply", "--config", cfg, "--file", &include_s]);
        assert!(o.status.success(), "{}", out_text(&o));
        assert!(
            out_text(&o).contains("updated in place"),
            "{}",
            out_text(&o)
        );
    });
    let per_apply = started.elapsed() / applies.max(1) as u32;
    if applies % 2 == 0 {
        let o = net.mailbag(&[
            "firewall", "apply", "--config", &cfg_b, "--file", &include_s,
        ]);
        assert!(o.status.success());
    }
    let (seen4, seen6) = (attacker.finish(), attacker6.finish());
    eprintln!("{applies} set changes, {per_apply:?} each; attacker v4 {seen4:?}, v6 {seen6:?}");
    assert_no_window(applies, &seen4, &seen6);

    // No reload: the hook rules kept their handles; the sets hold B now.
    let handles_after = net.exec_ok(
        &r,
        &["nft", "-a", "list", "chain", "inet", "fw4", "input_wan"],
    );
    assert_eq!(handles_before, handles_after);
    assert_eq!(net.probe(&net.silo, SILO4_B, ROUTER_S4, 25), 'o');
    assert_eq!(net.probe(&net.silo, SILO6_B, ROUTER_S6, 25), 'o');
    assert_eq!(net.probe(&net.silo, SILO4_A, ROUTER_S4, 25), 't');
    assert_eq!(net.probe(&net.silo, SILO6_A, ROUTER_S6, 465), 't');
    // The include on disk holds the new set too, so the next fw4 reload keeps it.
    let on_disk = std::fs::read_to_string(&include).unwrap();
    assert!(
        on_disk.contains(SILO4_B) && !on_disk.contains(SILO4_A),
        "{on_disk}"
    );
    net.exec_ok(&r, &["nft", "-f", &scaffold.display().to_string()]);
    assert_eq!(
        net.probe(&net.silo, SILO4_B, ROUTER_S4, 25),
        'o',
        "after a full reload"
    );
    // fw4's reload (`flush table`) keeps set elements and merges the file's in, so A is
    // back; the post-reload apply (fw4 script include, see docs) removes it again.
    let o = net.mailbag(&[
        "firewall",
        "apply",
        "--config",
        &cfg_b,
        "--file",
        &include.display().to_string(),
    ]);
    assert!(
        out_text(&o).contains("updated in place"),
        "{}",
        out_text(&o)
    );
    assert_eq!(
        net.probe(&net.silo, SILO4_A, ROUTER_S4, 25),
        't',
        "stale element removed"
    );
    assert_eq!(net.probe(&net.silo, SILO4_B, ROUTER_S4, 25), 'o');

    // The change is seen from the attacker's side too: add it, then take it out again.
    let cfg_att = net.write_config(
        "att.toml",
        "walled-garden",
        &[SILO4_B, ATTACKER4, ATTACKER6],
    );
    let inc_s = include.display().to_string();
    assert!(
        net.mailbag(&["firewall", "apply", "--config", &cfg_att, "--file", &inc_s])
            .status
            .success()
    );
    assert_eq!(net.probe(&net.attacker, ATTACKER4, ROUTER_A4, 25), 'o');
    assert_eq!(net.probe(&net.attacker, ATTACKER6, ROUTER_A6, 25), 'o');
    assert!(
        net.mailbag(&["firewall", "apply", "--config", &cfg_b, "--file", &inc_s])
            .status
            .success()
    );
    assert_eq!(net.probe(&net.attacker, ATTACKER4, ROUTER_A4, 25), 't');
    assert_eq!(net.probe(&net.attacker, ATTACKER6, ROUTER_A6, 25), 't');
}

#[test]
fn nft_apply_loads_into_a_running_fw4_and_open_when_primary_down_switches_both_ways() {
    let Some(mut net) = Net::new() else { return };
    net.listen();
    let r = net.router.clone();
    let scaffold = net.dir.join("fw4.nft");
    std::fs::write(&scaffold, fw4_scaffold(None)).unwrap();
    net.exec_ok(&r, &["nft", "-f", &scaffold.display().to_string()]);
    assert_eq!(
        net.probe(&net.attacker, ATTACKER4, ROUTER_A4, 25),
        'o',
        "open before mailbag"
    );

    let cfg = net.write_config("o.toml", "open-when-primary-down", &[SILO4_A, SILO6_A]);
    let file = net
        .dir
        .join("etc/nftables.d/50-mailbag.nft")
        .display()
        .to_string();
    let apply = |primary: &str| {
        let o = net.mailbag(&[
            "firewall",
            "apply",
            "--config",
            &cfg,
            "--file",
            &file,
            "--primary",
            primary,
        ]);
        assert!(o.status.success(), "{}", out_text(&o));
        out_text(&o)
    };
    assert!(apply("up").contains("rules loaded"));
    assert_walled(&net, 't');
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains("open to all now: no")
    );

    assert!(apply("down").contains("updated in place"));
    assert_eq!(net.probe(&net.attacker, ATTACKER4, ROUTER_A4, 25), 'o');
    assert_eq!(net.probe(&net.attacker, ATTACKER6, ROUTER_A6, 465), 'o');
    assert_eq!(net.probe(&net.silo, SILO4_A, ROUTER_S4, 25), 'o');

    assert!(apply("up").contains("updated in place"));
    assert_walled(&net, 't');

    // Mode off: the sets empty out and the firewall's own rules apply again.
    let off = net.write_config("off.toml", "off", &[]);
    let o = net.mailbag(&["firewall", "apply", "--config", &off, "--file", &file]);
    assert!(o.status.success(), "{}", out_text(&o));
    assert_eq!(net.probe(&net.attacker, ATTACKER4, ROUTER_A4, 25), 'o');
    assert_eq!(
        net.probe(&net.attacker, ATTACKER4, ROUTER_A4, 587),
        'r',
        "not listed: rejected"
    );

    // A wrong zone name is caught against the running firewall, not half-applied.
    net.exec_ok(&r, &["nft", "-f", &scaffold.display().to_string()]);
    let lan = net.dir.join("lan.toml");
    std::fs::write(
        &lan,
        "[firewall]\nwan-zone = \"wan2\"\nsilo = [\"192.0.2.1\"]\n",
    )
    .unwrap();
    let o = net.mailbag(&[
        "firewall",
        "apply",
        "--config",
        &lan.display().to_string(),
        "--file",
        &file,
    ]);
    assert!(!o.status.success());
    assert!(out_text(&o).contains("input_wan2"), "{}", out_text(&o));
}

#[test]
fn iptables_silo_gets_in_attacker_does_not_and_changes_are_atomic() {
    let Some(mut net) = Net::new() else { return };
    net.listen();
    let r = net.router.clone();
    for (cmd, v6) in [("iptables-restore", false), ("ip6tables-restore", true)] {
        let o = net.exec_stdin(&r, &[cmd], &fw3_scaffold(v6));
        assert!(o.status.success(), "{}", out_text(&o));
    }
    let f4 = net.dir.join("firewall.iptables").display().to_string();
    let f6 = net.dir.join("firewall.ip6tables").display().to_string();
    let apply = |cfg: &str, primary: &str| {
        let o = net.mailbag(&[
            "firewall",
            "apply",
            "--backend",
            "iptables",
            "--config",
            cfg,
            "--file",
            &f4,
            "--file6",
            &f6,
            "--primary",
            primary,
        ]);
        assert!(o.status.success(), "{}", out_text(&o));
        out_text(&o)
    };
    let cfg_a = net.write_config("a.toml", "open-when-primary-down", &[SILO4_A, SILO6_A]);
    let cfg_b = net.write_config("b.toml", "open-when-primary-down", &[SILO4_B, SILO6_B]);
    assert!(apply(&cfg_a, "up").contains("rules loaded"));
    assert_walled(&net, 't');

    let mut attacker = net.burst(&net.attacker, ATTACKER4, ROUTER_A4, 25, 3.0);
    let mut attacker6 = net.burst(&net.attacker, ATTACKER6, ROUTER_A6, 465, 3.0);
    let applies = apply_while_probing(&mut [&mut attacker, &mut attacker6], |i| {
        let cfg = if i % 2 == 0 { &cfg_b } else { &cfg_a };
        assert!(apply(cfg, "up").contains("updated in place"));
    });
    if applies % 2 == 0 {
        apply(&cfg_b, "up");
    }
    let (seen4, seen6) = (attacker.finish(), attacker6.finish());
    eprintln!("iptables: {applies} set changes; attacker v4 {seen4:?}, v6 {seen6:?}");
    assert_no_window(applies, &seen4, &seen6);
    assert_eq!(net.probe(&net.silo, SILO4_B, ROUTER_S4, 25), 'o');
    assert_eq!(net.probe(&net.silo, SILO6_B, ROUTER_S6, 25), 'o');
    assert_eq!(net.probe(&net.silo, SILO4_A, ROUTER_S4, 25), 't');
    // The hook rule was not duplicated by the updates.
    let hooks = net.exec_ok(&r, &["iptables", "-S", "input_wan_rule"]);
    assert_eq!(hooks.matches("MAILBAG_PORTS").count(), 1, "{hooks}");

    assert!(apply(&cfg_b, "down").contains("updated in place"));
    assert_eq!(net.probe(&net.attacker, ATTACKER4, ROUTER_A4, 25), 'o');
    assert_eq!(net.probe(&net.attacker, ATTACKER6, ROUTER_A6, 25), 'o');
    apply(&cfg_b, "up");
    assert_eq!(net.probe(&net.attacker, ATTACKER4, ROUTER_A4, 25), 't');
    assert_eq!(net.probe(&net.attacker, ATTACKER6, ROUTER_A6, 25), 't');
    assert_eq!(net.probe(&net.attacker, ATTACKER4, ROUTER_A4, 2525), 'o');
    // The stored fragment is what fw3 would load after a restart: it passes --test there.
    let stored = std::fs::read_to_string(&f4).unwrap();
    assert!(stored.contains(SILO4_B) && stored.contains("-I input_wan_rule 1"));
}

#[test]
fn silo_dns_is_resolved_and_a_failed_lookup_keeps_the_last_good_set() {
    let Some(mut net) = Net::new() else { return };
    net.listen();
    let r = net.router.clone();
    // `ip netns exec` bind-mounts /etc/netns/<ns>/* over /etc, so the router gets its own
    // hosts file and a resolver pointing at a closed loopback port (fails at once).
    let etc = PathBuf::from("/etc/netns").join(&r);
    std::fs::create_dir_all(&etc).unwrap();
    struct RmDir(PathBuf);
    impl Drop for RmDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = RmDir(etc.clone());
    std::fs::write(
        etc.join("resolv.conf"),
        "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
    )
    .unwrap();
    std::fs::write(
        etc.join("hosts"),
        format!("127.0.0.1 localhost\n{SILO4_A} silo.mailbag.test\n{SILO6_A} silo.mailbag.test\n"),
    )
    .unwrap();
    let scaffold = net.dir.join("fw4.nft");
    std::fs::write(&scaffold, fw4_scaffold(None)).unwrap();
    net.exec_ok(&r, &["nft", "-f", &scaffold.display().to_string()]);
    let cfg = net.dir.join("dns.toml");
    std::fs::write(&cfg, "[firewall]\nsilo-dns = \"silo.mailbag.test\"\n").unwrap();
    let cfg = cfg.display().to_string();
    let file = net.dir.join("50-mailbag.nft").display().to_string();

    let o = net.mailbag(&["firewall", "apply", "--config", &cfg, "--file", &file]);
    assert!(o.status.success(), "{}", out_text(&o));
    assert_eq!(net.probe(&net.silo, SILO4_A, ROUTER_S4, 25), 'o');
    assert_eq!(net.probe(&net.silo, SILO6_A, ROUTER_S6, 25), 'o');
    assert_eq!(net.probe(&net.attacker, ATTACKER4, ROUTER_A4, 25), 't');

    // The name disappears: the lookup fails, the last good set stays, with a warning.
    std::fs::write(etc.join("hosts"), "127.0.0.1 localhost\n").unwrap();
    let t = Instant::now();
    let o = net.mailbag(&["firewall", "apply", "--config", &cfg, "--file", &file]);
    assert!(o.status.success(), "{}", out_text(&o));
    assert!(
        out_text(&o).contains("using the last good addresses (2)"),
        "{}",
        out_text(&o)
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(net.probe(&net.silo, SILO4_A, ROUTER_S4, 25), 'o');
    assert_eq!(net.probe(&net.silo, SILO6_A, ROUTER_S6, 25), 'o');

    // It comes back with a new address: watch mode picks it up and moves the set.
    std::fs::write(
        etc.join("hosts"),
        format!("127.0.0.1 localhost\n{SILO4_B} silo.mailbag.test\n"),
    )
    .unwrap();
    let o = net.mailbag(&[
        "firewall", "apply", "--config", &cfg, "--file", &file, "--watch", "1", "--rounds", "1",
    ]);
    assert!(o.status.success(), "{}", out_text(&o));
    assert_eq!(net.probe(&net.silo, SILO4_B, ROUTER_S4, 25), 'o');
    assert_eq!(net.probe(&net.silo, SILO4_A, ROUTER_S4, 25), 't');
}

#[test]
fn nft_guards_a_primary_behind_a_port_forward() {
    let Some(mut net) = Net::new() else { return };
    net.listen(); // 2525 stays a service on the router itself
    net.add_primary_on_lan();
    let r = net.router.clone();
    // fw4 with a port forward (redirect) of 25 and 465 to the primary on the LAN.
    let inc = net.dir.join("nftables.d");
    std::fs::create_dir_all(&inc).unwrap();
    let cfg = net.write_config("a.toml", "walled-garden", &[SILO4_A, SILO6_A]);
    let o = net.mailbag(&["firewall", "render", "--format", "nft", "--config", &cfg]);
    assert!(o.status.success(), "{}", out_text(&o));
    std::fs::write(inc.join("50-mailbag.nft"), &o.stdout).unwrap();
    let scaffold = format!(
        "{}table inet fw4 {{\n\tchain dstnat {{\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\
         \t\tiifname {{ \"rs\", \"ra\" }} jump dstnat_wan\n\t}}\n\
         \tchain dstnat_wan {{\n\
         \t\tmeta nfproto ipv4 tcp dport {{ 25, 465 }} dnat ip to 10.77.3.2\n\
         \t\tmeta nfproto ipv6 tcp dport {{ 25, 465 }} dnat ip6 to fd77:3::2\n\t}}\n}}\n",
        fw4_scaffold(Some(&inc))
    );
    let path = net.dir.join("fw4.nft");
    std::fs::write(&path, scaffold).unwrap();
    net.exec_ok(&r, &["nft", "-f", &path.display().to_string()]);

    // Forwarded to the primary for the silo; dropped for the attacker; 2525 still local.
    assert_walled(&net, 't');
    // The drops happened in the forward path, not on the router's own input.
    let counters = net.exec_ok(&r, &["nft", "list", "chain", "inet", "fw4", "mailbag_smtp"]);
    assert!(!counters.contains("counter packets 0 "), "{counters}");

    // Without mailbag's rules the port forward is open to anyone: the guard is what stops it.
    net.exec_ok(&r, &["nft", "flush", "set", "inet", "fw4", "mailbag_ports"]);
    assert_eq!(net.probe(&net.attacker, ATTACKER4, ROUTER_A4, 25), 'o');
    assert_eq!(net.probe(&net.attacker, ATTACKER6, ROUTER_A6, 25), 'o');
}

/// `mailbag doctor`'s firewall line against a running fw4: rules loaded and current pass;
/// a silo set left behind by a configuration change, or rules lost to a firewall reload
/// without the include, fail with the fix.
#[test]
#[cfg(feature = "doctor")]
fn doctor_compares_the_loaded_rules_with_the_configuration() {
    let Some(net) = Net::new() else { return };
    let r = net.router.clone();
    let scaffold = net.dir.join("fw4.nft");
    std::fs::write(&scaffold, fw4_scaffold(None)).unwrap();
    net.exec_ok(&r, &["nft", "-f", &scaffold.display().to_string()]);
    let file = net.dir.join("50-mailbag.nft").display().to_string();
    let config = |name: &str, silo: &[&str]| {
        let list: Vec<String> = silo.iter().map(|s| format!("\"{s}\"")).collect();
        let path = net.dir.join(name);
        std::fs::write(
            &path,
            format!(
                "role = \"edge\"\n[smtp]\nhostname = \"edge.office.test\"\n\
                 [policy]\ndomains = [\"office.test\"]\n\
                 [spool]\npath = \"{}\"\n\
                 [relay]\nnext-hops = [\"127.0.0.1:2\"]\ndns-servers = [\"127.0.0.1:9\"]\n\
                 [firewall]\nmode = \"walled-garden\"\nports = [25, 465]\nsilo = [{}]\n\
                 [web]\nlisten = []\n[daemon]\ncontrol-socket = \"\"\n",
                net.dir.join("spool.img").display(),
                list.join(", ")
            ),
        )
        .unwrap();
        path.display().to_string()
    };
    let firewall_line = |cfg: &str| {
        let o = net.mailbag(&["doctor", "--json", "--config", cfg]);
        assert_eq!(
            o.status.code(),
            Some(1),
            "other checks fail here: {}",
            out_text(&o)
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let c = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "firewall")
            .cloned()
            .unwrap_or_else(|| panic!("no firewall line: {v}"));
        let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
        (s("status"), s("text"), s("fix"))
    };
    let apply = |cfg: &str| {
        let o = net.mailbag(&["firewall", "apply", "--config", cfg, "--file", &file]);
        assert!(o.status.success(), "{}", out_text(&o));
    };

    let a = config("a.toml", &[SILO4_A, SILO6_A]);
    let (status, text, fix) = firewall_line(&a);
    assert_eq!(status, "fail");
    assert!(
        text.starts_with("mailbag's firewall rules are not loaded"),
        "{text}"
    );
    assert_eq!(fix, "run `mailbag firewall apply`");

    apply(&a);
    let (status, text, _) = firewall_line(&a);
    assert_eq!(status, "pass", "{text}");
    assert_eq!(
        text,
        format!("firewall rules loaded (nft), silo set current: {SILO4_A}, {SILO6_A}")
    );

    // The silo moved in the configuration, the loaded set did not follow.
    let b = config("b.toml", &[SILO4_B, SILO6_A]);
    let (status, text, fix) = firewall_line(&b);
    assert_eq!(status, "fail");
    assert_eq!(
        text,
        format!(
            "the loaded set mailbag_silo4 holds [{SILO4_A}], the configuration says [{SILO4_B}]: the firewall is not current"
        )
    );
    assert!(fix.starts_with("run `mailbag firewall apply`"));
    apply(&b);
    assert_eq!(firewall_line(&b).0, "pass");

    // A firewall reload without the include loses the rules.
    net.exec_ok(&r, &["nft", "-f", &scaffold.display().to_string()]);
    let (status, text, _) = firewall_line(&b);
    assert_eq!(status, "fail");
    assert!(text.contains("not loaded"), "{text}");
}
