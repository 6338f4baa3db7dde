//! Postfix's smtp-sink on loopback as a next hop: each message lands in a file of its own,
//! prefixed with the envelope (`X-Mail-Args:`, `X-Rcpt-Args:` lines).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A free loopback port (nothing listens on it once this returns).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// True if smtp-sink is installed; in CI its absence fails the test.
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

/// smtp-sink on `port`, dumping each message into `dir` (made writable for `nobody`);
/// killed (by its PID) when dropped.
pub struct Sink {
    child: Child,
    dir: PathBuf,
}

impl Sink {
    pub fn start(port: u16, dir: &Path) -> Sink {
        std::fs::create_dir_all(dir).unwrap();
        Command::new("chmod").arg("777").arg(dir).status().unwrap();
        let child = Command::new("smtp-sink")
            .current_dir(dir)
            .args([
                "-u",
                "nobody",
                "-d",
                "m.",
                &format!("127.0.0.1:{port}"),
                "64",
            ])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        Sink {
            child,
            dir: dir.to_path_buf(),
        }
    }

    /// Every message received so far, sorted.
    pub fn messages(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
            .collect();
        v.sort();
        v
    }

    /// Waits until at least `n` messages are there and their files stopped changing.
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
