//! A webhook receiver on loopback: Python's http.server answering every POST with 204 and
//! appending its body (one line per request) to a file; started and stopped by PID.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const SERVER: &str = r#"
import http.server, sys
out = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(min(n, 65536)).decode("utf-8", "replace")
        with open(out, "a") as f:
            f.write(self.path + " " + self.headers.get("Content-Type", "") + " " + body + "\n")
        self.send_response(204)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"#;

pub struct Webhook {
    child: Child,
    pub out: PathBuf,
}

impl Webhook {
    pub fn start(port: u16, dir: &Path) -> Webhook {
        std::fs::create_dir_all(dir).unwrap();
        let script = dir.join("webhook.py");
        std::fs::write(&script, SERVER).unwrap();
        let out = dir.join("posts.txt");
        let child = Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .arg(&out)
            .spawn()
            .unwrap();
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "webhook server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Webhook { child, out }
    }

    /// Every POST so far: `PATH CONTENT-TYPE BODY`.
    pub fn posts(&self) -> Vec<String> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Waits until a POST contains `what`.
    pub fn wait_for(&self, what: &str, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Some(p) = self.posts().into_iter().find(|p| p.contains(what)) {
                return p;
            }
            assert!(
                start.elapsed() < limit,
                "no POST with '{what}': {:?}",
                self.posts()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
