//! Postfix's smtp-sink as a next hop on loopback, started and stopped by PID.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// smtp-sink on `port`, dumping each message into `dir` (made writable for `nobody`).
pub struct Sink {
    child: Child,
    dir: PathBuf,
    /// `-D` mode: one file, transactions appended in the order they completed.
    log: Option<PathBuf>,
}

impl Sink {
    pub fn start(port: u16, dir: &Path) -> Sink {
        Self::start_with(port, dir, &[])
    }

    /// With more smtp-sink options, e.g. `["-r", "rcpt"]` to answer RCPT with 4xx.
    pub fn start_with(port: u16, dir: &Path, extra: &[&str]) -> Sink {
        let mut args = vec!["-d", "m."];
        args.extend_from_slice(extra);
        Self::spawn(port, dir, &args, None)
    }

    /// A sink that appends every transaction to one file as it completes (`-D`), so the
    /// order of arrival is known exactly ([`Sink::messages`] is then in arrival order).
    pub fn start_ordered(port: u16, dir: &Path) -> Sink {
        let log = dir.join("all.txt");
        Self::spawn(port, dir, &["-D", log.to_str().unwrap()], Some(log.clone()))
    }

    fn spawn(port: u16, dir: &Path, args: &[&str], log: Option<PathBuf>) -> Sink {
        std::fs::create_dir_all(dir).unwrap();
        Command::new("chmod").arg("777").arg(dir).status().unwrap();
        let child = Command::new("smtp-sink")
            .current_dir(dir)
            .args(["-u", "nobody"])
            .args(args)
            .args([&format!("127.0.0.1:{port}"), "64"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        Sink {
            child,
            dir: dir.to_path_buf(),
            log,
        }
    }

    pub fn messages(&self) -> Vec<String> {
        if let Some(log) = &self.log {
            let all = std::fs::read_to_string(log).unwrap_or_default();
            return all
                .split("X-Client-Addr: ")
                .filter(|m| !m.is_empty())
                .map(|m| format!("X-Client-Addr: {m}"))
                .collect();
        }
        let mut v: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
            .collect();
        v.sort();
        v
    }

    /// Stops the sink (by its PID); the dumps stay.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits until at least `n` messages are there and their files stopped changing
    /// (smtp-sink writes a dump while the message arrives).
    pub fn wait_for(&self, n: usize, limit: Duration) -> Vec<String> {
        let start = Instant::now();
        loop {
            let m = self.messages();
            if m.len() >= n {
                std::thread::sleep(Duration::from_millis(300));
                let again = self.messages();
                if again == m {
                    return m;
                }
            }
            if start.elapsed() > limit {
                return m;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn subject_of(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .map(str::to_string)
}

pub fn require_sink() -> bool {
    let ok = Command::new("sh")
        .arg("-c")
        .arg("command -v smtp-sink")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "smtp-sink is required in CI"
        );
        eprintln!("skipped: smtp-sink not installed");
    }
    ok
}
