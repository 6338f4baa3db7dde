//! The edge: loads renderings into the running firewall with `nft` / `iptables-restore`.
//!
//! Everything here runs external programs; what they are fed comes from the pure renderers.
//! Each load is one transaction ([`nft::set_update`], [`nft::live_load`],
//! [`iptables::fragment`]), so the kernel switches from the old rules to the new ones at once.
//! The persistent file (what fw4/fw3 load on their next reload) is written only after the live
//! load succeeded, and by rename, so a failed apply never leaves a broken file behind for the
//! next firewall restart.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::config::FirewallMode;
use super::iptables::{self, Family, Hooks};
use super::nft;
use super::ruleset::Ruleset;

/// What an apply changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Our rules were not loaded; they are now (sets, chain and hook rules in one go).
    Loaded,
    /// Our rules were loaded; only set elements / chain contents were replaced.
    Updated,
    /// Mode `off` and nothing of ours is loaded: nothing to do.
    NothingLoaded,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Loaded => "rules loaded",
            Self::Updated => "address sets updated in place (no reload)",
            Self::NothingLoaded => "mode off: nothing loaded",
        })
    }
}

/// Why an apply failed. The running firewall is unchanged when a load fails.
#[derive(Debug)]
pub enum ApplyError {
    /// A program could not be started (not installed?).
    Spawn(String, std::io::Error),
    /// A program refused the rules.
    Refused {
        /// The command line.
        cmd: String,
        /// Its standard error.
        stderr: String,
    },
    /// The zone's chain does not exist in the running firewall.
    NoZoneChain(String),
    /// Writing the persistent file failed (the live rules are already loaded).
    Write(PathBuf, std::io::Error),
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spawn(cmd, e) => write!(f, "cannot run {cmd}: {e}"),
            Self::Refused { cmd, stderr } => {
                write!(f, "{cmd} refused the rules: {}", stderr.trim())
            }
            Self::NoZoneChain(chain) => write!(
                f,
                "the running firewall has no chain {chain}: is the firewall (fw4/fw3) running, and is wan-zone the name of your WAN zone?"
            ),
            Self::Write(p, e) => write!(f, "rules loaded, but writing {} failed: {e}", p.display()),
        }
    }
}

impl std::error::Error for ApplyError {}

/// Loads `rules` into the fw4 table and stores the include at `file`.
pub fn apply_nft(rules: &Ruleset, file: &Path) -> Result<Outcome, ApplyError> {
    let outcome = load_nft(rules)?;
    write_atomic(file, &nft::include(rules))?;
    Ok(outcome)
}

/// Switches the running firewall to `rules` without writing any file: the daemon's
/// `open-when-primary-down` follower. fw4 (nft) when its table is there, else fw3
/// (iptables). One transaction per table, as [`apply_nft`] and [`apply_iptables`] do.
pub fn apply_live(rules: &Ruleset) -> Result<Outcome, ApplyError> {
    if output("nft", &["list", "table", "inet", "fw4"]).is_some() {
        return load_nft(rules);
    }
    let mut outcome = Outcome::NothingLoaded;
    for family in [Family::V4, Family::V6] {
        let step = load_iptables(rules, family)?;
        if step != Outcome::NothingLoaded {
            outcome = step;
        }
    }
    Ok(outcome)
}

fn load_nft(rules: &Ruleset) -> Result<Outcome, ApplyError> {
    let input = format!("input_{}", rules.zone());
    let listing = output("nft", &["list", "chain", "inet", "fw4", &input]);
    let outcome = match listing {
        Some(l) if nft::is_hooked(&l) => {
            run("nft", &["-f", "-"], &nft::set_update(rules))?;
            Outcome::Updated
        }
        _ if rules.mode() == FirewallMode::Off => Outcome::NothingLoaded,
        None => return Err(ApplyError::NoZoneChain(format!("inet fw4 {input}"))),
        Some(_) => {
            let forward = format!("forward_{}", rules.zone());
            if output("nft", &["list", "chain", "inet", "fw4", &forward]).is_none() {
                return Err(ApplyError::NoZoneChain(format!("inet fw4 {forward}")));
            }
            run("nft", &["-f", "-"], &nft::live_load(rules))?;
            Outcome::Loaded
        }
    };
    Ok(outcome)
}

/// Loads `rules` with iptables-restore and ip6tables-restore; stores the fragments at
/// `file4` and `file6` (for fw3's `config include` of type `restore`).
pub fn apply_iptables(rules: &Ruleset, file4: &Path, file6: &Path) -> Result<Outcome, ApplyError> {
    let mut outcome = Outcome::NothingLoaded;
    for (family, file) in [(Family::V4, file4), (Family::V6, file6)] {
        let step = load_iptables(rules, family)?;
        if step != Outcome::NothingLoaded {
            outcome = step;
        }
        write_atomic(file, &iptables::fragment(rules, family, Hooks::Insert))?;
    }
    Ok(outcome)
}

/// What the running firewall holds of mailbag's rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// `nft` (fw4) or `iptables` (fw3).
    pub backend: &'static str,
    /// Our chain is jumped to from the zone's input chain.
    pub hooked: bool,
    /// fw4 only: each of our sets with the elements loaded now (in [`nft::set_contents`]
    /// order; a set that does not exist is empty).
    pub sets: Vec<(&'static str, Vec<String>)>,
}

/// Reads what is loaded for `rules`' zone: fw4's sets when there is an fw4 table, else
/// whether fw3's hook chain jumps to us. An error when neither firewall is running.
pub fn loaded(rules: &Ruleset) -> Result<Loaded, String> {
    let input = format!("input_{}", rules.zone());
    if let Some(listing) = output("nft", &["list", "chain", "inet", "fw4", &input]) {
        let sets = nft::set_contents(rules)
            .iter()
            .map(|(set, _)| {
                let live = output("nft", &["list", "set", "inet", "fw4", set]).unwrap_or_default();
                (*set, nft::parse_elements(&live))
            })
            .collect();
        return Ok(Loaded {
            backend: "nft",
            hooked: nft::is_hooked(&listing),
            sets,
        });
    }
    let hook = format!("input_{}_rule", rules.zone());
    match output(Family::V4.list_cmd(), &["-S", &hook]) {
        Some(l) => Ok(Loaded {
            backend: "iptables",
            hooked: iptables::is_hooked(&l),
            sets: Vec::new(),
        }),
        None => Err(format!(
            "neither fw4 (nft chain inet fw4 {input}) nor fw3 (iptables chain {hook}) is running"
        )),
    }
}

fn load_iptables(rules: &Ruleset, family: Family) -> Result<Outcome, ApplyError> {
    let hook = format!("input_{}_rule", rules.zone());
    Ok(match output(family.list_cmd(), &["-S", &hook]) {
        Some(l) if iptables::is_hooked(&l) => {
            let update = iptables::fragment(rules, family, Hooks::Keep);
            run(family.restore_cmd(), &["--noflush"], &update)?;
            Outcome::Updated
        }
        _ if rules.mode() == FirewallMode::Off => Outcome::NothingLoaded,
        None => {
            return Err(ApplyError::NoZoneChain(format!(
                "{} {hook}",
                family.list_cmd()
            )));
        }
        // Redeclaring our chains empties them, so leftovers from before cannot duplicate.
        Some(_) => {
            let first = iptables::fragment(rules, family, Hooks::Insert);
            run(family.restore_cmd(), &["--noflush"], &first)?;
            Outcome::Loaded
        }
    })
}

/// Runs `program args` with `input` on stdin; error with its stderr if it fails.
fn run(program: &str, args: &[&str], input: &str) -> Result<(), ApplyError> {
    let cmd = format!("{program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ApplyError::Spawn(cmd.clone(), e))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A write error means the program exited early; its status and stderr say why.
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| ApplyError::Spawn(cmd.clone(), e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ApplyError::Refused {
            cmd,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// The standard output of `program args` if it exits 0.
fn output(program: &str, args: &[&str]) -> Option<String> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Writes `text` to `path` via a temporary file and rename, so readers see old or new.
fn write_atomic(path: &Path, text: &str) -> Result<(), ApplyError> {
    let err = |e| ApplyError::Write(path.to_path_buf(), e);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}
