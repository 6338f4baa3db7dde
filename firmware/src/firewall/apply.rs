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
            Self::Refused { cmd, stderr } => write!(f, "{cmd} refused the rules: {}", stderr.trim()),
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
    let loaded = succeeds("nft", &["list", "chain", "inet", "fw4", nft::CHAIN]);
    let outcome = if loaded {
        run("nft", &["-f", "-"], &nft::set_update(rules))?;
        Outcome::Updated
    } else if rules.mode() == FirewallMode::Off {
        Outcome::NothingLoaded
    } else {
        for chain in [format!("input_{}", rules.zone()), format!("forward_{}", rules.zone())] {
            if !succeeds("nft", &["list", "chain", "inet", "fw4", &chain]) {
                return Err(ApplyError::NoZoneChain(format!("inet fw4 {chain}")));
            }
        }
        run("nft", &["-f", "-"], &nft::live_load(rules))?;
        Outcome::Loaded
    };
    write_atomic(file, &nft::include(rules))?;
    Ok(outcome)
}

/// Loads `rules` with iptables-restore and ip6tables-restore; stores the fragments at
/// `file4` and `file6` (for fw3's `config include` of type `restore`).
pub fn apply_iptables(rules: &Ruleset, file4: &Path, file6: &Path) -> Result<Outcome, ApplyError> {
    let mut outcome = Outcome::NothingLoaded;
    for (family, file) in [(Family::V4, file4), (Family::V6, file6)] {
        let loaded = succeeds(family.list_cmd(), &["-S", iptables::CHAIN]);
        let step = if loaded {
            run(family.restore_cmd(), &["--noflush"], &iptables::fragment(rules, family, Hooks::Keep))?;
            Outcome::Updated
        } else if rules.mode() == FirewallMode::Off {
            Outcome::NothingLoaded
        } else {
            let chain = format!("input_{}_rule", rules.zone());
            if !succeeds(family.list_cmd(), &["-S", &chain]) {
                return Err(ApplyError::NoZoneChain(format!("{} {chain}", family.list_cmd())));
            }
            run(family.restore_cmd(), &["--noflush"], &iptables::fragment(rules, family, Hooks::Insert))?;
            Outcome::Loaded
        };
        if step != Outcome::NothingLoaded {
            outcome = step;
        }
        write_atomic(file, &iptables::fragment(rules, family, Hooks::Insert))?;
    }
    Ok(outcome)
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

/// True if `program args` exits 0 (used to ask whether a chain exists).
fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
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
