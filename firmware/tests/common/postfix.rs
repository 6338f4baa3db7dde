//! A private Postfix instance (`postfix -c DIR`, its own main.cf/master.cf and queue;
//! the system's Postfix is not touched) as the office's primary: it knows the recipients
//! it is given and refuses every other with 550 5.1.1; accepted mail is discarded.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub fn require_postfix() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let ok = root
        && Command::new("sh")
            .arg("-c")
            .arg("command -v postfix")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "postfix (run as root) is required in CI (.ci/deps/smtp.apt)"
        );
        eprintln!("skipped: postfix not installed or not root");
    }
    ok
}

pub struct Primary {
    pub etc: PathBuf,
    pub port: u16,
    running: bool,
}

impl Drop for Primary {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Primary {
    /// Postfix on 127.0.0.1:`port` for `domain`, knowing `users` (local parts) only.
    pub fn start(dir: &Path, port: u16, domain: &str, users: &[&str]) -> Primary {
        let etc = dir.join("etc");
        let queue = dir.join("queue");
        let data = dir.join("data");
        for d in [&etc, &queue, &data] {
            std::fs::create_dir_all(d).unwrap();
        }
        let _ = Command::new("chown").arg("postfix").arg(&data).status();
        let known = users
            .iter()
            .map(|u| format!("{u}@{domain}=ok"))
            .collect::<Vec<_>>()
            .join(", ");
        std::fs::write(
            etc.join("main.cf"),
            format!(
                "compatibility_level = 3.6\nqueue_directory = {q}\ndata_directory = {d}\n\
mail_owner = postfix\nsetgid_group = postdrop\nmyhostname = primary.{domain}\n\
inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\nmydestination =\nmynetworks = 127.0.0.0/8\n\
relay_domains = {domain}\nrelay_recipient_maps = inline:{{ {known} }}\n\
transport_maps = inline:{{ {domain}=discard: }}\nlocal_recipient_maps =\n\
alias_maps =\nalias_database =\nbiff = no\nsmtpd_tls_security_level =\n\
smtp_tls_security_level =\nmaillog_file_prefixes = {dir}\nmaillog_file = {log}\n",
                q = queue.display(),
                d = data.display(),
                log = dir.join("maillog").display(),
                dir = dir.display(),
            ),
        )
        .unwrap();
        std::fs::write(
            etc.join("master.cf"),
            format!(
                "127.0.0.1:{port} inet n - n - - smtpd\n\
pickup unix n - n 60 1 pickup\ncleanup unix n - n - 0 cleanup\nqmgr unix n - n 300 1 qmgr\n\
rewrite unix - - n - - trivial-rewrite\nbounce unix - - n - 0 bounce\ndefer unix - - n - 0 bounce\n\
trace unix - - n - 0 bounce\nverify unix - - n - 1 verify\nproxymap unix - - n - - proxymap\n\
proxywrite unix - - n - 1 proxymap\nsmtp unix - - n - - smtp\nrelay unix - - n - - smtp\n\
showq unix n - n - - showq\nerror unix - - n - - error\nretry unix - - n - - error\n\
discard unix - - n - - discard\nanvil unix - - n - 1 anvil\nscache unix - - n - 1 scache\n\
postlog unix-dgram n - n - 1 postlogd\n"
            ),
        )
        .unwrap();
        let mut p = Primary {
            etc,
            port,
            running: false,
        };
        p.begin();
        p
    }

    fn begin(&mut self) {
        let out = Command::new("postfix")
            .arg("-c")
            .arg(&self.etc)
            .arg("start")
            .output()
            .unwrap();
        assert!(out.status.success(), "postfix start: {out:?}");
        self.running = true;
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "postfix did not listen"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `postfix -c DIR stop`, then waits until the port is closed.
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(&self.etc)
            .arg("stop")
            .output();
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            && start.elapsed() < Duration::from_secs(20)
        {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
