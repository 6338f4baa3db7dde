//! `mailbag firewall render|apply`: preview and load the walled-garden rules.
//!
//! Reads the `[firewall]` table of the file given by `--config` (UCI or TOML, through the
//! daemon's own loader; the other tables are parsed but not validated here); without
//! `--config`, the defaults plus `--silo` options. `silo-dns` is
//! resolved with the system resolver; for `apply` a failed lookup keeps the last good
//! answer recorded in the previously written rules file.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Args;
use crate::config::{Config, ConfigError};
use crate::firewall::apply;
use crate::firewall::dns::{self, Resolver, SystemResolver};
use crate::firewall::iptables::{self, Family, Hooks};
use crate::firewall::{FirewallConfig, FirewallMode, Primary, Ruleset, SiloSet, nft, uci};

/// Default place of the fw3 IPv4 fragment written by `apply --backend iptables`.
const IPTABLES_FILE: &str = "/etc/mailbag/firewall.iptables";
/// Default place of the fw3 IPv6 fragment.
const IP6TABLES_FILE: &str = "/etc/mailbag/firewall.ip6tables";

/// Usage of this command group.
const USAGE: &str = "\
firewall render --format nft|uci|iptables [--family 4|6] [OPTIONS]
firewall apply [--backend nft|iptables] [--file PATH] [--file6 PATH] [--watch SECS [--rounds N]] [OPTIONS]
OPTIONS: --config FILE  --silo CIDR (repeatable)  --mode MODE  --primary up|down  --force";

/// What every subcommand reads from the arguments.
struct Settings {
    cfg: FirewallConfig,
    primary: Primary,
    force: bool,
}

/// Dispatches `firewall <sub>`.
pub fn run(args: &mut Args) -> Result<(), String> {
    match args.next_word().as_deref() {
        Some("render") => render(args),
        Some("apply") => apply_cmd(args),
        Some(other) => Err(format!("unknown firewall command '{other}'\n{USAGE}")),
        None => Err(format!("firewall needs a command\n{USAGE}")),
    }
}

fn render(args: &mut Args) -> Result<(), String> {
    let format = args
        .option("format")?
        .ok_or_else(|| format!("render needs --format\n{USAGE}"))?;
    let family = match args.option("family")?.as_deref() {
        None | Some("4") => Family::V4,
        Some("6") => Family::V6,
        Some(other) => return Err(format!("--family takes 4 or 6, not '{other}'")),
    };
    let s = settings(args)?;
    args.finish()?;
    let rules = build(&s, &SystemResolver, &[])?;
    let text = match format.as_str() {
        "nft" => nft::include(&rules),
        "uci" => uci::batch(&rules),
        "iptables" => iptables::fragment(&rules, family, Hooks::Insert),
        "ip6tables" => iptables::fragment(&rules, Family::V6, Hooks::Insert),
        other => return Err(format!("unknown format '{other}' (nft, uci, iptables)")),
    };
    print!("{text}");
    Ok(())
}

fn apply_cmd(args: &mut Args) -> Result<(), String> {
    let backend = args.option("backend")?.unwrap_or_else(|| "nft".into());
    let file = args.option("file")?.map(PathBuf::from);
    let file6 = args.option("file6")?.map(PathBuf::from);
    let watch = args
        .option("watch")?
        .map(|v| parse_number(&v, "--watch"))
        .transpose()?;
    let rounds = args
        .option("rounds")?
        .map(|v| parse_number(&v, "--rounds"))
        .transpose()?;
    let s = settings(args)?;
    args.finish()?;
    let (file, file6) = match backend.as_str() {
        "nft" => (file.unwrap_or_else(|| nft::INCLUDE_PATH.into()), None),
        "iptables" => (
            file.unwrap_or_else(|| IPTABLES_FILE.into()),
            Some(file6.unwrap_or_else(|| IP6TABLES_FILE.into())),
        ),
        other => return Err(format!("unknown backend '{other}' (nft, iptables)")),
    };
    let load = |rules: &Ruleset| match &file6 {
        None => apply::apply_nft(rules, &file),
        Some(f6) => apply::apply_iptables(rules, &file, f6),
    };
    let mut last_good = read_last_good(&file);
    let Some(interval) = watch else {
        let rules = build(&s, &SystemResolver, &last_good)?;
        let outcome = load(&rules).map_err(|e| e.to_string())?;
        println!("{outcome}");
        return Ok(());
    };
    // Watch mode: re-resolve silo-dns every interval; touch the firewall only on change.
    let interval = Duration::from_secs(interval.max(1));
    let mut applied: Option<Ruleset> = None;
    let mut round = 0u64;
    loop {
        match build(&s, &SystemResolver, &last_good) {
            Ok(rules) if applied.as_ref() != Some(&rules) => match load(&rules) {
                Ok(outcome) => {
                    println!("{outcome}");
                    last_good = rules.resolved().to_vec();
                    applied = Some(rules);
                }
                Err(e) => eprintln!("mailbag: {e}"),
            },
            Ok(_) => {}
            // The first round's errors are configuration errors: stop. Later ones are
            // transient (e.g. DNS answered nothing yet) and the old rules stay loaded.
            Err(e) if applied.is_none() => return Err(e),
            Err(e) => eprintln!("mailbag: {e}"),
        }
        round += 1;
        if rounds.is_some_and(|n| round >= n) {
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}

/// Reads `--config`, `--silo`, `--mode`, `--primary`, `--force`.
fn settings(args: &mut Args) -> Result<Settings, String> {
    let mut cfg = match args.option("config")? {
        Some(path) => match Config::read(path.as_ref()) {
            Ok(c) => c.firewall,
            Err(ConfigError::Io(_, e)) => return Err(format!("cannot read config {path}: {e}")),
            Err(e) => return Err(format!("config {path}: {e}")),
        },
        None => FirewallConfig::default(),
    };
    while let Some(c) = args.option("silo")? {
        cfg.silo.push(c);
    }
    if let Some(m) = args.option("mode")? {
        cfg.mode = match m.as_str() {
            "walled-garden" => FirewallMode::WalledGarden,
            "open-when-primary-down" => FirewallMode::OpenWhenPrimaryDown,
            "off" => FirewallMode::Off,
            other => {
                return Err(format!(
                    "unknown mode '{other}' (walled-garden, open-when-primary-down, off)"
                ));
            }
        };
    }
    let primary = match args.option("primary")? {
        Some(p) => p.parse()?,
        None => Primary::Up,
    };
    let force = args.flag("force");
    Ok(Settings {
        cfg,
        primary,
        force,
    })
}

/// Config CIDRs + `silo-dns` answer (or `last_good` on failure) → checked ruleset.
fn build(s: &Settings, resolver: &dyn Resolver, last_good: &[IpAddr]) -> Result<Ruleset, String> {
    let mut prefixes = SiloSet::parse(&s.cfg.silo)
        .map_err(|e| e.to_string())?
        .iter()
        .copied()
        .collect::<Vec<_>>();
    let mut resolved = Vec::new();
    if let Some(name) = &s.cfg.silo_dns {
        let lookup = dns::lookup(resolver, name, last_good);
        if let Some(why) = &lookup.failed {
            eprintln!(
                "mailbag: warning: {why}; using the last good addresses ({})",
                lookup.addrs.len()
            );
        }
        prefixes.extend(dns::prefixes(&lookup.addrs));
        resolved = lookup.addrs;
    }
    let silo = SiloSet::new(prefixes).map_err(|e| e.to_string())?;
    Ruleset::new(&s.cfg, silo, s.primary, s.force)
        .map(|r| r.with_resolved(resolved))
        .map_err(|e| e.to_string())
}

/// The fw4 rules for `cfg` as `firewall render --format nft` prints them (LuCI's preview),
/// with the primary as the daemon last saw it.
pub(super) fn render_nft(cfg: FirewallConfig, primary: Primary) -> Result<String, String> {
    let s = Settings {
        cfg,
        primary,
        force: false,
    };
    let last_good = read_last_good(Path::new(nft::INCLUDE_PATH));
    Ok(nft::include(&build(&s, &SystemResolver, &last_good)?))
}

/// `firewall apply` for `cfg` (LuCI's Apply): loads the rules, writes the include file.
pub(super) fn apply_nft(cfg: FirewallConfig, primary: Primary) -> Result<String, String> {
    let s = Settings {
        cfg,
        primary,
        force: false,
    };
    let file = Path::new(nft::INCLUDE_PATH);
    let rules = build(&s, &SystemResolver, &read_last_good(file))?;
    apply::apply_nft(&rules, file)
        .map(|o| o.to_string())
        .map_err(|e| e.to_string())
}

fn read_last_good(file: &Path) -> Vec<IpAddr> {
    std::fs::read_to_string(file)
        .map(|t| dns::parse_last_good(&t))
        .unwrap_or_default()
}

fn parse_number(v: &str, what: &str) -> Result<u64, String> {
    v.parse()
        .map_err(|_| format!("{what} takes a whole number, not '{v}'"))
}
