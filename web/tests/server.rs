//! The tiny-http server on a real loopback socket: bounded bodies, malformed requests,
//! security headers, and that it keeps serving afterwards.
// Helpers outside #[test] fns unwrap too: a failed setup should fail the test loudly.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use mailbag_web::fake::FakeBackend;
use mailbag_web::http::BODY_MAX;
use mailbag_web::{App, WebConfig, WebServer};

fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may answer and close before it has read everything we send.
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn serves_page_with_security_headers_and_refuses_oversized_or_broken_requests() {
    let dir = std::env::temp_dir().join(format!("mailbag-web-server-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("shadow"), "root:!:19000::::::\n").unwrap();
    let backend = FakeBackend::demo(&dir.join("mailbag.toml"), 3).unwrap();
    let cfg = WebConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        shadow_path: dir.join("shadow"),
        workers: 2,
        ..WebConfig::default()
    };
    let server = WebServer::start(App::new(Box::new(backend), cfg)).unwrap();
    let addr = server.addr();
    assert!(addr.ip().is_loopback());

    let page = exchange(
        addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("Content-Security-Policy: default-src 'none'; script-src 'self'"));
    assert!(page.contains("X-Frame-Options: DENY"));
    assert!(page.contains("<script src=\"/static/app.js\" defer></script>"));

    let big = format!(
        "POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        BODY_MAX + 1
    );
    let mut req = big.into_bytes();
    req.extend(std::iter::repeat_n(b'a', BODY_MAX + 1));
    let r = exchange(addr, &req);
    assert!(r.starts_with("HTTP/1.1 413"), "{r}");

    // A locked root account (`!`) never logs in, even with an empty password.
    let body = r#"{"password":""}"#;
    let login = format!(
        "POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert!(exchange(addr, login.as_bytes()).starts_with("HTTP/1.1 403"));

    for junk in [
        &b"\x00\xff\r\n\r\n"[..],
        b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"DELETE /api/queue HTTP/1.1\r\nConnection: close\r\n\r\n",
    ] {
        let r = exchange(addr, junk);
        assert!(r.is_empty() || r.starts_with("HTTP/1.1 4"), "{r}");
    }
    let again = exchange(
        addr,
        b"GET /static/style.css HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        again.starts_with("HTTP/1.1 200") && again.contains("text/css"),
        "still serving: {again}"
    );

    server.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn keeps_accepting_after_an_idle_spell_longer_than_the_write_timeout() {
    let dir = std::env::temp_dir().join(format!("mailbag-web-idle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let backend = FakeBackend::demo(&dir.join("mailbag.toml"), 0).unwrap();
    let cfg = WebConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        shadow_path: dir.join("shadow"),
        workers: 1,
        write_timeout: Duration::from_millis(300),
        ..WebConfig::default()
    };
    let server = WebServer::start(App::new(Box::new(backend), cfg)).unwrap();
    let addr = server.addr();
    let get = b"GET /static/app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert!(exchange(addr, get).starts_with("HTTP/1.1 200"));
    // A receive timeout on the listener would make accept() fail here and tiny-http would
    // stop accepting for good; the send timeout must not.
    std::thread::sleep(Duration::from_millis(900));
    let again = exchange(addr, get);
    assert!(again.starts_with("HTTP/1.1 200"), "after idling: {again}");
    server.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}
