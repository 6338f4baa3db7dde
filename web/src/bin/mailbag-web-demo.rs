//! Serves the admin page over the fake backend, for the browser tests and for a look.
//!
//! `mailbag-web-demo --shadow FILE --config FILE [--listen ADDR] [--messages N] [--token-file FILE]`
//! prints `listening on http://ADDR/` once bound, then serves until killed.

// Only `mailbag-hal` may hold unsafe code (its two audited MTD ioctls).
#![forbid(unsafe_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use mailbag_web::fake::FakeBackend;
use mailbag_web::{App, WebConfig, WebServer};

const USAGE: &str = "usage: mailbag-web-demo --shadow FILE --config FILE [--listen ADDR] [--messages N] [--token-file FILE]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mailbag-web-demo: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
    let (mut shadow, mut config, mut token_file) = (None, None, None);
    let mut messages = 200usize;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = value()?.parse()?,
            "--shadow" => shadow = Some(PathBuf::from(value()?)),
            "--config" => config = Some(PathBuf::from(value()?)),
            "--messages" => messages = value()?.parse()?,
            "--token-file" => token_file = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let shadow = shadow.ok_or("--shadow is required")?;
    let config = config.ok_or("--config is required")?;
    let api_token = match token_file {
        Some(p) => Some(std::fs::read_to_string(p)?.trim().to_owned()),
        None => None,
    };
    let backend = FakeBackend::demo(&config, messages)?;
    let app = App::new(
        Box::new(backend),
        WebConfig {
            listen,
            shadow_path: shadow,
            api_token,
            ..WebConfig::default()
        },
    );
    let server = WebServer::start(app)?;
    println!("listening on http://{}/", server.addr());
    std::io::stdout().flush()?;
    server.join()?;
    Ok(())
}
