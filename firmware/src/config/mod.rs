//! One configuration model, read from TOML or UCI (`/etc/config/mailbag`).
//!
//! Contract: [`Config::load`] returns a model that parsed *and* validated, or every error
//! found, each naming its key (and, for syntax/type errors, its line). TOML and UCI give
//! the identical [`Config`] for the same settings; [`Config::to_uci`] writes a file that
//! reads back equal. Input is bounded: files over [`MAX_CONFIG_BYTES`] are refused.
//!
//! UCI layout: `config mailbag 'main'` holds the top-level options (`enabled`, `role`);
//! `config smtp`, `config policy`, `config scan`, `config spool`, `config relay`,
//! `config firewall`, `config web`, `config daemon`, `config notify`, `config monitor` hold
//! their sections; option names use `_` for the model's `-`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::firewall::{FirewallConfig, FirewallMode};
use crate::monitor::{MonitorConfig, NotifyConfig};
use crate::policy::{PolicyConfig, ScanConfig};
use crate::relay::RelayConfig;
use crate::smtp::SmtpConfig;
use crate::spool::SpoolConfig;

mod build;
mod daemon;
pub mod keys;
pub mod run;
pub mod uci;
mod uci_read;
mod uci_write;
pub mod validate;
mod web;

pub use daemon::{DEFAULT_CONTROL_SOCKET, DaemonConfig};
pub use run::{RunSettings, SpoolPlace, StartTls};
pub use uci_read::UciError;
pub use uci_write::WriteError;
pub use validate::{Issue, Report};
pub use web::WebConfig;

/// File name, in the state directory, of the demo's password file.
pub const DEMO_SHADOW: &str = "shadow.demo";

/// Why a router build refuses a TOML file.
#[cfg(not(feature = "toml-config"))]
const NO_TOML: &str = "this mailbag reads UCI only (built without the toml-config feature); \
     write the settings as UCI (/etc/config/mailbag)";

/// Largest configuration file read (a full UCI file is a few KiB).
pub const MAX_CONFIG_BYTES: u64 = 256 * 1024;

/// Where this instance runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The office router: delivers to the primary on the LAN.
    #[default]
    Edge,
    /// The provider's remote secondary MX.
    Silo,
}

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Whether the init script starts the service (UCI `option enabled`); the daemon
    /// itself runs whatever it is given.
    pub enabled: bool,
    /// Edge or silo.
    pub role: Role,
    /// `[smtp]`.
    pub smtp: SmtpConfig,
    /// `[policy]`.
    pub policy: PolicyConfig,
    /// `[scan]`.
    pub scan: ScanConfig,
    /// `[spool]`.
    pub spool: SpoolConfig,
    /// `[relay]`.
    pub relay: RelayConfig,
    /// `[firewall]`.
    pub firewall: FirewallConfig,
    /// `[web]`.
    pub web: WebConfig,
    /// `[daemon]`.
    pub daemon: DaemonConfig,
    /// `[notify]`.
    pub notify: NotifyConfig,
    /// `[monitor]`.
    pub monitor: MonitorConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            role: Role::default(),
            smtp: SmtpConfig::default(),
            policy: PolicyConfig::default(),
            scan: ScanConfig::default(),
            spool: SpoolConfig::default(),
            relay: RelayConfig::default(),
            firewall: FirewallConfig::default(),
            web: WebConfig::default(),
            daemon: DaemonConfig::default(),
            notify: NotifyConfig::default(),
            monitor: MonitorConfig::default(),
        }
    }
}

/// The two file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// TOML (`*.toml`).
    Toml,
    /// UCI (`/etc/config/mailbag`).
    Uci,
}

impl Format {
    /// `*.toml` is TOML; otherwise a file whose first statement is `package`/`config` is
    /// UCI, anything else TOML.
    pub fn detect(path: &Path, text: &str) -> Format {
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
        {
            return Format::Toml;
        }
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .and_then(|l| l.split_whitespace().next());
        match first {
            Some("package" | "config" | "p" | "c") | None => Format::Uci,
            Some(_) => Format::Toml,
        }
    }
}

/// Why a configuration could not be used.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read.
    Io(PathBuf, std::io::Error),
    /// The file is larger than [`MAX_CONFIG_BYTES`].
    TooLarge(PathBuf),
    /// TOML syntax or a value of the wrong type (the message shows line and key).
    Toml(String),
    /// UCI syntax.
    UciSyntax(uci::ParseError),
    /// A UCI value of the wrong type or an unknown option/section.
    Uci(UciError),
    /// Parsed, but failed validation (each issue names its key).
    Invalid(Vec<Issue>),
    /// The model could not be written as UCI.
    Write(WriteError),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            ConfigError::TooLarge(p) => write!(
                f,
                "{}: larger than {MAX_CONFIG_BYTES} bytes; not a config file?",
                p.display()
            ),
            ConfigError::Toml(msg) => f.write_str(msg.trim_end()),
            ConfigError::UciSyntax(e) => write!(f, "{e}"),
            ConfigError::Uci(e) => write!(f, "{e}"),
            ConfigError::Invalid(issues) => {
                for (i, issue) in issues.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, "{issue}")?;
                }
                Ok(())
            }
            ConfigError::Write(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads, parses and validates a config file (format by [`Format::detect`]).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let (config, _) = Self::load_with_report(path)?;
        Ok(config)
    }

    /// Reads and parses a config file (format by [`Format::detect`]) without validating
    /// it: for commands that use one table (`firewall`), which check their own values.
    /// Every command reads its file through here, so UCI and TOML work everywhere.
    pub fn read(path: &Path) -> Result<Config, ConfigError> {
        Ok(Self::read_format(path)?.0)
    }

    fn read_format(path: &Path) -> Result<(Config, Format), ConfigError> {
        let text = read_bounded(path)?;
        let format = Format::detect(path, &text);
        Ok((Self::parse(&text, format)?, format))
    }

    /// Like [`Config::load`], also returning the validation report (its warnings).
    pub fn load_with_report(path: &Path) -> Result<(Config, Report), ConfigError> {
        let (config, format) = Self::read_format(path)?;
        let mut report = config.validate();
        if format == Format::Uci {
            // Name keys as the file spells them (`relay.lifetime_days`).
            for issue in report.errors.iter_mut().chain(report.warnings.iter_mut()) {
                issue.key = issue.key.replace('-', "_");
            }
        }
        if report.errors.is_empty() {
            Ok((config, report))
        } else {
            Err(ConfigError::Invalid(report.errors))
        }
    }

    /// Parses text in the given format (no validation).
    pub fn parse(text: &str, format: Format) -> Result<Config, ConfigError> {
        match format {
            #[cfg(feature = "toml-config")]
            Format::Toml => toml::from_str(text).map_err(|e| ConfigError::Toml(e.to_string())),
            #[cfg(not(feature = "toml-config"))]
            Format::Toml => Err(ConfigError::Toml(NO_TOML.into())),
            Format::Uci => {
                let pkg = uci::parse(text).map_err(ConfigError::UciSyntax)?;
                uci_read::from_package(&pkg).map_err(ConfigError::Uci)
            }
        }
    }

    /// Checks values the types cannot: addresses, domains, sizes, ranges.
    pub fn validate(&self) -> Report {
        validate::check(self)
    }

    /// The model as a UCI file (`config mailbag 'main'` plus one section per table).
    /// Fails only for values UCI/TOML cannot carry (sizes above `i64::MAX`), which
    /// validation rejects.
    #[cfg(feature = "web")]
    pub fn to_uci(&self) -> Result<String, ConfigError> {
        uci_write::to_uci(self).map_err(ConfigError::Write)
    }

    /// Saves the model as UCI at `path` (what the web page does), only if it validates.
    /// Atomic: written to `path.tmp`, fsynced, renamed over `path`, directory fsynced, so
    /// a power cut leaves either the old file or the new one.
    #[cfg(feature = "web")]
    pub fn save_uci(&self, path: &Path) -> Result<(), ConfigError> {
        let report = self.validate();
        if !report.errors.is_empty() {
            return Err(ConfigError::Invalid(report.errors));
        }
        write_atomic(path, &self.to_uci()?)
    }

    /// Saves the model as TOML at `path`, only if it validates; atomic like
    /// [`Config::save_uci`].
    pub fn save_toml(&self, path: &Path) -> Result<(), ConfigError> {
        let report = self.validate();
        if !report.errors.is_empty() {
            return Err(ConfigError::Invalid(report.errors));
        }
        write_atomic(path, &self.to_toml()?)
    }

    /// The model as TOML.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        #[cfg(feature = "toml-config")]
        return toml::to_string(self).map_err(|e| ConfigError::Write(WriteError(e.to_string())));
        #[cfg(not(feature = "toml-config"))]
        Err(ConfigError::Write(WriteError(NO_TOML.into())))
    }

    /// The built-in demo: loopback listeners on unprivileged ports, a 16 MiB spool image
    /// under `state_dir`, domain `example.test`, next hop `127.0.0.1:2526`, no firewall
    /// rules, the admin page (in builds that have it) on `127.0.0.1:8080` with the password file
    /// `state_dir/shadow.demo` (the daemon creates it: `root` / `demo`), and the control
    /// socket `state_dir/control.sock`. `mailbag run` uses it when no `--config` is given.
    pub fn demo(state_dir: &Path) -> Config {
        let mut c = Config::default();
        c.smtp.hostname = "mailbag.example.test".into();
        c.smtp.listen = vec!["127.0.0.1:2525".into()];
        c.smtp.max_message_size = 10 * 1024 * 1024;
        c.policy.domains = vec!["example.test".into()];
        c.spool.path = state_dir.join("spool.img").to_string_lossy().into_owned();
        c.spool.size = 16 * 1024 * 1024;
        c.relay.next_hops = vec!["127.0.0.1:2526".into()];
        c.firewall.mode = FirewallMode::Off;
        // A build without the page (the router's) has no page to offer.
        if cfg!(feature = "web") {
            c.web.listen = vec!["127.0.0.1:8080".into()];
        }
        c.web.shadow = state_dir.join(DEMO_SHADOW).to_string_lossy().into_owned();
        c.daemon.control_socket = state_dir
            .join("control.sock")
            .to_string_lossy()
            .into_owned();
        c
    }

    /// One line for logs and `check-config`.
    pub fn summary(&self) -> String {
        let role = match self.role {
            Role::Edge => "edge",
            Role::Silo => "silo",
        };
        // The mode's config spelling (`walled-garden`), as the user wrote it.
        let mode = crate::firewall::ruleset::mode_name(self.firewall.mode);
        format!(
            "role={role} enabled={} domains={} listen={} next-hops={} spool={} ({} bytes) lifetime={}d firewall={mode}",
            self.enabled,
            self.policy.domains.len(),
            self.smtp.listen.join(","),
            self.relay.next_hops.len(),
            self.spool.path,
            self.spool.size,
            self.relay.lifetime_days,
        )
    }
}

/// Writes `path.tmp`, fsyncs it, renames it over `path` and fsyncs the directory, so a
/// power cut leaves either the old file or the new one.
fn write_atomic(path: &Path, text: &str) -> Result<(), ConfigError> {
    let io = |e| ConfigError::Io(path.to_path_buf(), e);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(())
}

fn read_bounded(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read as _;
    let io = |e| ConfigError::Io(path.to_path_buf(), e);
    let file = std::fs::File::open(path).map_err(io)?;
    let mut text = String::new();
    // Read one byte past the limit to tell "exactly at the limit" from "over it".
    let n = file
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(io)? as u64;
    if n > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge(path.to_path_buf()));
    }
    Ok(text)
}

#[cfg(test)]
#[cfg(all(feature = "web", feature = "toml-config"))]
mod tests;
