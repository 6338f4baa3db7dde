//! Helpers for the protection tests: SMTP from a chosen loopback address, swaks.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
#![allow(dead_code)]

use std::io::BufReader;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use super::Client;

/// Connects to `addr` from `local` (any 127.0.0.0/8 address works on Linux loopback);
/// returns the client and the greeting.
pub fn connect_from(local: &str, addr: &str) -> std::io::Result<(Client, String)> {
    let s = socket_from(local, addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let w = s.try_clone()?;
    let mut c = Client {
        r: BufReader::new(s),
        w,
    };
    let greeting = c.reply()?;
    Ok((c, greeting))
}

/// A TCP connection to `addr` whose source address is `local`.
pub fn socket_from(local: &str, addr: &str) -> std::io::Result<TcpStream> {
    let local: IpAddr = local.parse().unwrap();
    let addr: SocketAddr = addr.parse().unwrap();
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    sock.bind(&SocketAddr::new(local, 0).into())?;
    sock.connect(&addr.into())?;
    Ok(sock.into())
}

/// Runs swaks against the daemon; returns its whole transcript (stdout and stderr).
pub fn swaks(server: &str, args: &[&str]) -> String {
    let out = Command::new("swaks")
        .args(["--server", server, "--timeout", "60"])
        .args(args)
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn require_swaks() -> bool {
    let ok = Command::new("sh")
        .arg("-c")
        .arg("command -v swaks")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "swaks is required in CI");
        eprintln!("skipped: swaks not installed");
    }
    ok
}

/// The reply lines (`<~ 554 ...`) of a swaks transcript that answer the final dot.
pub fn final_reply(transcript: &str) -> String {
    let lines: Vec<&str> = transcript.lines().collect();
    let dot = lines
        .iter()
        .rposition(|l| l.trim_end() == "~> ." || l.trim_end() == " -> .");
    match dot {
        Some(i) => lines[i + 1..]
            .iter()
            .find(|l| l.starts_with("<-") || l.starts_with("<**") || l.starts_with("<~"))
            .map(|l| l.to_string())
            .unwrap_or_default(),
        None => String::new(),
    }
}
