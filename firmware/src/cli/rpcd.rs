//! `mailbag rpcd list` / `mailbag rpcd call METHOD`: rpcd's exec-plugin protocol, so that
//! `/usr/libexec/rpcd/luci.mailbag` (which runs this) gives LuCI the ubus object
//! `luci.mailbag`. `list` prints the methods and their arguments as JSON; `call` reads the
//! arguments (one JSON object) from stdin and prints one JSON object.
//!
//! The queue views and actions go to the running daemon's control socket (named by
//! `--config FILE`, default `/etc/config/mailbag`); the firewall methods run here, as
//! `mailbag firewall render|apply` would (rpcd runs plugins as root), and so does
//! `check_setup` (`mailbag doctor --json`). Failures are answered
//! as `{"error": "…"}` so LuCI can show them; the exit status is 0 unless the protocol
//! itself was misused (unknown method, bad arguments: 2).

use std::io::Read as _;
use std::path::PathBuf;

use super::Args;
use super::control::request_json;
use crate::config::Config;
use crate::firewall::{FirewallMode, Primary};
use crate::json::{Field, Obj, parse_flat};
use crate::spool::MessageId;

/// Default configuration (the router's UCI file).
const DEFAULT_CONFIG: &str = "/etc/config/mailbag";

/// Every method with its arguments, as `list` prints them (rpcd's types: "str", numbers
/// for integers). The LuCI views and the rpcd ACL name exactly these.
pub const METHODS: &[(&str, &[(&str, &str)])] = &[
    ("status", &[]),
    ("queue", &[("offset", "0"), ("limit", "50")]),
    ("message", &[("id", "\"str\"")]),
    ("log", &[("limit", "100")]),
    ("flush", &[("domain", "\"str\"")]),
    ("delete", &[("id", "\"str\"")]),
    ("bounce", &[("id", "\"str\"")]),
    ("firewall_preview", &[]),
    ("firewall_apply", &[]),
    ("check_setup", &[]),
];

/// Runs `rpcd list|call METHOD [--config FILE]`.
pub fn run(args: &mut Args) -> Result<(), String> {
    let config = args
        .option("config")?
        .unwrap_or_else(|| DEFAULT_CONFIG.to_string());
    match args.next_word().as_deref() {
        Some("list") => {
            args.finish()?;
            println!("{}", list());
            Ok(())
        }
        Some("call") => {
            let method = args.next_word().ok_or("rpcd call needs a method")?;
            args.finish()?;
            let mut input = String::new();
            std::io::stdin()
                .take(crate::json::FLAT_MAX as u64 + 1)
                .read_to_string(&mut input)
                .map_err(|e| format!("reading the arguments: {e}"))?;
            let fields = parse_flat(&input)?;
            let reply = call(&method, &fields, &PathBuf::from(config))?;
            println!("{reply}");
            Ok(())
        }
        _ => Err("usage: mailbag rpcd [--config FILE] list | call METHOD".into()),
    }
}

/// The `list` answer.
pub fn list() -> String {
    let mut out = String::from("{");
    for (i, (name, params)) in METHODS.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("\"{name}\":{{"));
        for (j, (p, ty)) in params.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str(&format!("\"{p}\":{ty}"));
        }
        out.push('}');
    }
    out.push('}');
    out
}

fn field<'a>(fields: &'a [Field], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|f| f.name == name)
        .map(|f| f.value.as_str())
}

fn id_arg(fields: &[Field]) -> Result<MessageId, String> {
    let id = field(fields, "id").ok_or("argument 'id' missing")?;
    id.parse().map_err(|_| {
        format!(
            "'{}' is not a message id",
            id.chars().take(64).collect::<String>()
        )
    })
}

fn number_arg(fields: &[Field], name: &str, default: usize) -> Result<usize, String> {
    field(fields, name).map_or(Ok(default), |v| {
        v.parse()
            .map_err(|_| format!("argument '{name}' is not a whole number"))
    })
}

/// Answers one call; `Err` only for protocol misuse (unknown method, bad argument).
pub fn call(method: &str, fields: &[Field], config: &std::path::Path) -> Result<String, String> {
    let line = match method {
        "status" => "status".to_string(),
        "queue" => format!(
            "queue {} {}",
            number_arg(fields, "offset", 0)?,
            number_arg(fields, "limit", 50)?
        ),
        "message" => format!("message {}", id_arg(fields)?),
        "log" => format!("log {}", number_arg(fields, "limit", 100)?),
        "flush" => match field(fields, "domain").filter(|d| !d.is_empty()) {
            Some(d)
                if d.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c)) =>
            {
                format!("flush {d}")
            }
            Some(d) => return Err(format!("'{d}' is not a domain name")),
            None => "flush".to_string(),
        },
        "delete" => format!("delete {}", id_arg(fields)?),
        "bounce" => format!("bounce {}", id_arg(fields)?),
        "firewall_preview" => {
            return Ok(firewall(config, |c| {
                let mode = crate::firewall::ruleset::mode_name(c.firewall.mode);
                super::firewall::render_nft(c.firewall.clone(), primary_of(&c))
                    .map(|rules| Obj::new().str("mode", mode).str("rules", &rules).finish())
            }));
        }
        "firewall_apply" => {
            return Ok(firewall(config, |c| {
                super::firewall::apply_nft(c.firewall.clone(), primary_of(&c))
                    .map(|text| Obj::new().str("result", &text).finish())
            }));
        }
        "check_setup" => {
            // `mailbag doctor --json`, run here (rpcd runs plugins as root).
            #[cfg(feature = "doctor")]
            return Ok(match Config::load(config) {
                Ok(c) => super::doctor::check_config(&c, &Default::default())
                    .map_or_else(|e| error(&e), |r| r.json()),
                Err(e) => error(&format!("{}: {e}", config.display())),
            });
            #[cfg(not(feature = "doctor"))]
            return Ok(error(crate::doctor::NOT_BUILT));
        }
        other => return Err(format!("unknown method '{other}'")),
    };
    let socket = match Config::read(config) {
        Ok(c) if c.daemon.control_socket.is_empty() => {
            return Ok(error(
                "the control socket is disabled (daemon.control_socket is empty)",
            ));
        }
        Ok(c) => PathBuf::from(c.daemon.control_socket),
        Err(e) => return Ok(error(&format!("{}: {e}", config.display()))),
    };
    Ok(match request_json(&socket, &line) {
        // The views answer JSON; the actions a sentence.
        Ok(text) if text.starts_with('{') => text,
        Ok(text) => Obj::new().str("result", &text).finish(),
        Err(e) => error(&e),
    })
}

/// The primary as the running daemon sees it, for `open-when-primary-down`: LuCI's Apply
/// must not close port 25 while the primary is down (the daemon would reopen it only at its
/// next change). Up (walled) in the other modes, and when the daemon does not answer.
fn primary_of(c: &Config) -> Primary {
    if c.firewall.mode != FirewallMode::OpenWhenPrimaryDown || c.daemon.control_socket.is_empty() {
        return Primary::Up;
    }
    request_json(std::path::Path::new(&c.daemon.control_socket), "status")
        .map_or(Primary::Up, |status| primary_in_status(&status))
}

/// Reads `"primary":{…,"up":false,…}` in the daemon's `status` view.
fn primary_in_status(status: &str) -> Primary {
    let down = status.find("\"primary\":{").is_some_and(|at| {
        let rest = &status[at..];
        let object = &rest[..rest.find('}').unwrap_or(rest.len())];
        object.contains("\"up\":false")
    });
    if down { Primary::Down } else { Primary::Up }
}

fn firewall(config: &std::path::Path, f: impl FnOnce(Config) -> Result<String, String>) -> String {
    match Config::read(config) {
        Ok(c) => f(c).unwrap_or_else(|e| error(&e)),
        Err(e) => error(&format!("{}: {e}", config.display())),
    }
}

fn error(text: &str) -> String {
    Obj::new().str("error", text).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_primary_is_read_from_the_daemons_status() {
        let down = r#"{"role":"edge","primary":{"next_hops":["10.0.0.2:25"],"up":false,"since":5},"upstream":[{"up":true}]}"#;
        let up = r#"{"role":"edge","primary":{"next_hops":["10.0.0.2:25"],"up":true,"since":5},"upstream":[{"up":false}]}"#;
        assert_eq!(primary_in_status(down), Primary::Down);
        // An upstream silo that is down is not the primary.
        assert_eq!(primary_in_status(up), Primary::Up);
        assert_eq!(primary_in_status("{}"), Primary::Up);
    }

    #[test]
    fn list_is_json_with_every_method() {
        let l = list();
        assert!(l.starts_with("{\"status\":{}"), "{l}");
        assert!(l.contains("\"queue\":{\"offset\":0,\"limit\":50}"), "{l}");
        assert!(l.contains("\"message\":{\"id\":\"str\"}"), "{l}");
        for (m, _) in METHODS {
            assert!(l.contains(&format!("\"{m}\":")), "{m}");
        }
    }

    #[test]
    fn bad_arguments_are_refused_before_any_request() {
        let cfg = std::path::Path::new("/nonexistent");
        let f = |n: &str, v: &str| {
            vec![Field {
                name: n.into(),
                value: v.into(),
            }]
        };
        assert!(
            call("message", &[], cfg)
                .unwrap_err()
                .contains("'id' missing")
        );
        assert!(call("delete", &f("id", "1 bounce x"), cfg).is_err());
        assert!(call("flush", &f("domain", "a.com\nbounce"), cfg).is_err());
        assert!(call("queue", &f("limit", "-1"), cfg).is_err());
        assert!(
            call("nope", &[], cfg)
                .unwrap_err()
                .contains("unknown method")
        );
        // A missing config is an answer, not a protocol error.
        assert!(call("status", &[], cfg).unwrap().contains("\"error\""));
    }
}
