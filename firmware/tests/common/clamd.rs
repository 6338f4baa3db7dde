//! A real clamd (Debian's clamav-daemon) on loopback, with a signature database made
//! offline by the test: `sigtool --md5` of the EICAR test file, so no network and no
//! freshclam. Started and stopped by PID.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The EICAR anti-virus test file (68 bytes, harmless by design).
pub const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

pub fn require_clamd() -> bool {
    let ok = ["clamd", "sigtool"].iter().all(|t| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {t}"))
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "clamd and sigtool are required in CI (.ci/deps/protect.apt)"
        );
        eprintln!("skipped: clamd/sigtool not installed");
    }
    ok
}

pub struct Clamd {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub dir: PathBuf,
}

impl Drop for Clamd {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Clamd {
    /// clamd on 127.0.0.1 and a free port, knowing only the EICAR file's MD5 (the name
    /// it reports is `eicar.com.UNOFFICIAL`).
    pub fn start(dir: &Path) -> Clamd {
        let db = dir.join("clamdb");
        std::fs::create_dir_all(&db).unwrap();
        let sample = dir.join("eicar.com");
        std::fs::write(&sample, EICAR).unwrap();
        let out = Command::new("sigtool")
            .arg("--md5")
            .arg(&sample)
            .output()
            .unwrap();
        assert!(out.status.success(), "sigtool: {out:?}");
        std::fs::write(db.join("eicar.hdb"), &out.stdout).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.join("clamd.conf");
        std::fs::write(
            &conf,
            format!(
                "Foreground yes\nLogFile {}\nDatabaseDirectory {}\nTCPSocket {port}\nTCPAddr 127.0.0.1\nStreamMaxLength 50M\n",
                dir.join("clamd.log").display(),
                db.display()
            ),
        )
        .unwrap();
        let child = Command::new("clamd")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let start = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "clamd did not listen on {addr}: {}",
                std::fs::read_to_string(dir.join("clamd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Clamd {
            child: Some(child),
            addr,
            dir: dir.to_path_buf(),
        }
    }

    /// Stops clamd (by its PID).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
