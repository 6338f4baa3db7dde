//! Shared helpers for whole-daemon tests: serve the daemon in this process on a listener
//! bound to `127.0.0.1:0` ([`Served`], through `daemon::serve`), or start `mailbag run` as
//! a process ([`Daemon`], for signals and `kill -9`), with a config in a temporary
//! directory; talk SMTP, read the spool back.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailbag::config::{Config, RunSettings};
use mailbag::daemon::{Handles, Listeners, Wiring, serve};
use mailbag::spool::open::load_copy;
use mailbag::spool::{Access, Allocation, Flash, Limits, Spool};
use mailbag_hal::{Clock, SystemClock};

pub mod clamd;
pub mod dnsmasq;
pub mod postfix;
pub mod protect;
pub mod sink;
pub mod webhook;

/// A running daemon, killed (by its PID) when dropped.
pub struct Daemon {
    pub child: Option<Child>,
    pub port: u16,
    /// Every SMTP listener address the daemon reported.
    pub listening: Arc<Mutex<Vec<std::net::SocketAddr>>>,
    pub dir: PathBuf,
    pub log: Arc<Mutex<String>>,
}

pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mailbag-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes a config for a daemon in `dir` (port 0: the kernel picks) with `extra` TOML
/// appended to the `[smtp]` table (which listens on 127.0.0.1 unless `extra` sets `listen`).
pub fn write_config(dir: &Path, smtp_extra: &str) -> PathBuf {
    write_config_with(dir, smtp_extra, &["office.test", "example.test"], "")
}

/// Like [`write_config`], with the accepted `domains` and extra tables (e.g. `[relay]`)
/// appended at the end. The control socket is `dir/control.sock`.
pub fn write_config_with(dir: &Path, smtp_extra: &str, domains: &[&str], tables: &str) -> PathBuf {
    write_config_policy(dir, smtp_extra, domains, "", tables)
}

/// Like [`write_config_with`], with more `[policy]` keys (`policy_extra`, TOML lines).
pub fn write_config_policy(
    dir: &Path,
    smtp_extra: &str,
    domains: &[&str],
    policy_extra: &str,
    tables: &str,
) -> PathBuf {
    let smtp_extra = if smtp_extra.contains("listen") {
        smtp_extra.to_string()
    } else {
        format!("listen = [\"127.0.0.1:0\"]\n{smtp_extra}")
    };
    let cfg = format!(
        r#"role = "edge"
[smtp]
hostname = "mx.office.test"
{smtp_extra}
[policy]
domains = [{domains}]
{policy_extra}
[spool]
path = "{}"
size = 33554432
max-bytes = 30000000
[firewall]
mode = "off"
[web]
listen = []
[daemon]
control-socket = "{}"
{tables}
"#,
        dir.join("spool.img").display(),
        dir.join("control.sock").display(),
        domains = domains
            .iter()
            .map(|d| format!("\"{d}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let path = dir.join("mailbag.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

/// The daemon served in this process (`daemon::serve`) from `dir/mailbag.toml`, on a
/// listener bound to `127.0.0.1:0`; stopped when dropped.
pub struct Served {
    pub addr: std::net::SocketAddr,
    pub port: u16,
    pub dir: PathBuf,
    handles: Option<Handles>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl Served {
    /// Serves `dir/mailbag.toml` on the system clock.
    pub fn start(dir: &Path) -> Served {
        Self::start_with(dir, Arc::new(SystemClock::new()))
    }

    /// Serves `dir/mailbag.toml` with `clock` (a manual one moves time by hand).
    pub fn start_with(dir: &Path, clock: Arc<dyn Clock>) -> Served {
        let config_file = dir.join("mailbag.toml");
        let settings = RunSettings::new_checked(Config::load(&config_file).unwrap()).unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (handles_tx, handles_rx) = tokio::sync::oneshot::channel();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let state_dir = dir.to_path_buf();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(l.local_addr().unwrap()).unwrap();
                let wiring = Wiring {
                    settings,
                    clock,
                    state_dir,
                    config_file: Some(config_file),
                    sighup_reloads: false,
                    handles: Some(handles_tx),
                };
                let stop = async {
                    let _ = stop_rx.await;
                };
                serve(wiring, Listeners { smtp: vec![l] }, stop).await
            })
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        let handles = handles_rx.blocking_recv().ok();
        assert!(handles.is_some(), "the daemon did not start");
        Served {
            addr,
            port: addr.port(),
            dir: dir.to_path_buf(),
            handles,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// The running subsystems' handles.
    pub fn handles(&self) -> &Handles {
        self.handles.as_ref().unwrap()
    }

    /// Stops the daemon (what SIGTERM does) and waits until `serve` returned.
    pub fn stop(&mut self) {
        self.handles = None;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let r = t.join().expect("the daemon's thread panicked");
            assert_eq!(r, Ok(()), "serve failed");
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.handles = None;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Daemon {
    /// Starts `mailbag run --config` in `dir` and waits until it listens.
    pub fn start(dir: &Path) -> Daemon {
        Self::spawn(Command::new(env!("CARGO_BIN_EXE_mailbag")), dir)
    }

    /// Like [`Daemon::start`], inside network namespace `ns` (`ip netns exec` execs the
    /// daemon, so the child's PID is the daemon's).
    pub fn start_in_netns(ns: &str, dir: &Path) -> Daemon {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_mailbag")]);
        Self::spawn(cmd, dir)
    }

    fn spawn(mut cmd: Command, dir: &Path) -> Daemon {
        let mut child = cmd
            .args(["run", "--config"])
            .arg(dir.join("mailbag.toml"))
            .arg("--state-dir")
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let listening = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        // Informational lines come on stdout, warnings on stderr (`err: ` in the log here).
        let stdout: Box<dyn Read + Send> = Box::new(child.stdout.take().unwrap());
        let stderr: Box<dyn Read + Send> = Box::new(child.stderr.take().unwrap());
        for (stream, tag) in [(stdout, ""), (stderr, "err: ")] {
            let (l, seen, tx) = (Arc::clone(&log), Arc::clone(&listening), tx.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(a) = line.split("smtp listening on ").nth(1) {
                        let addr: std::net::SocketAddr = a.trim().parse().unwrap();
                        seen.lock().unwrap().push(addr);
                        if addr.is_ipv4() {
                            let _ = tx.send(addr.port());
                        }
                    }
                    let mut l = l.lock().unwrap();
                    l.push_str(tag);
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let port = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                panic!("daemon did not start:\n{}", log.lock().unwrap());
            }
        };
        // Give any further listeners a moment to be reported.
        std::thread::sleep(Duration::from_millis(100));
        Daemon {
            child: Some(child),
            port,
            listening,
            dir: dir.to_path_buf(),
            log,
        }
    }

    /// Waits until the daemon's log contains `what`; fails the test after `limit`.
    pub fn wait_log(&self, what: &str, limit: Duration) {
        let start = Instant::now();
        while !self.log.lock().unwrap().contains(what) {
            assert!(
                start.elapsed() < limit,
                "no '{what}' in the log:\n{}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = c.try_wait() {
                    // The log is read by another thread: let it catch up with the exit.
                    let read = Instant::now();
                    while !self.log.lock().unwrap().contains("stopped")
                        && read.elapsed() < Duration::from_secs(2)
                    {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    let log = self.log.lock().unwrap().clone();
                    assert!(status.success(), "daemon exited with {status}:\n{log}");
                    // A clean stop closes the spool itself, not by giving up on it.
                    assert!(
                        log.contains("spool closed") && !log.contains("still busy after"),
                        "the spool thread did not finish on stop:\n{log}"
                    );
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            panic!("daemon did not stop within 30 s");
        }
    }

    /// SIGKILL (a crash).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Peak resident set size (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Every message in the spool image at `path`: (sender, recipients, body).
pub fn spool_messages(path: &Path) -> Vec<(String, Vec<String>, Vec<u8>)> {
    let dev = load_copy(path).unwrap();
    let barrier = dev.barrier();
    let mut flash = Flash::new(dev, barrier).unwrap();
    let mut alloc = Allocation::new();
    let spool = Spool::mount(&mut alloc, &mut flash, Limits::default(), Access::ReadWrite).unwrap();
    assert_eq!(spool.usage().damaged, 0);
    spool
        .list()
        .iter()
        .map(|e| {
            let m = spool.meta(e.id).unwrap();
            let mut body = Vec::new();
            spool
                .stream_body(e.id, |c| body.extend_from_slice(c))
                .unwrap();
            (
                m.sender.to_string(),
                m.recipients.iter().map(|r| r.address.to_string()).collect(),
                body,
            )
        })
        .collect()
}

/// A minimal SMTP client for tests: reads replies (multi-line aware).
pub struct Client {
    pub r: BufReader<TcpStream>,
    pub w: TcpStream,
}

impl Client {
    pub fn connect(addr: &str) -> std::io::Result<(Client, String)> {
        let s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let w = s.try_clone()?;
        let mut c = Client {
            r: BufReader::new(s),
            w,
        };
        let greeting = c.reply()?;
        Ok((c, greeting))
    }

    pub fn reply(&mut self) -> std::io::Result<String> {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            if self.r.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return Ok(all);
            }
        }
    }

    pub fn cmd(&mut self, line: &str) -> std::io::Result<String> {
        self.w.write_all(format!("{line}\r\n").as_bytes())?;
        self.reply()
    }

    /// MAIL, RCPT and DATA, each asserted accepted; the content is the caller's to send.
    pub fn start_data(&mut self, from: &str, to: &str) {
        for (c, want) in [
            (format!("MAIL FROM:<{from}>"), "250"),
            (format!("RCPT TO:<{to}>"), "250"),
            ("DATA".into(), "354"),
        ] {
            let r = self.cmd(&c).unwrap();
            assert!(r.starts_with(want), "{c}: {r}");
        }
    }

    /// Sends one message; returns the final reply to the content.
    pub fn send(&mut self, from: &str, to: &str, data: &[u8]) -> std::io::Result<String> {
        for (c, want) in [
            (format!("MAIL FROM:<{from}>"), "250"),
            (format!("RCPT TO:<{to}>"), "250"),
            ("DATA".into(), "354"),
        ] {
            let r = self.cmd(&c)?;
            if !r.starts_with(want) {
                return Ok(r);
            }
        }
        self.w.write_all(data)?;
        self.w.write_all(b".\r\n")?;
        self.reply()
    }

    pub fn read_to_end(&mut self) -> String {
        let mut s = String::new();
        let _ = self.r.read_to_string(&mut s);
        s
    }
}
