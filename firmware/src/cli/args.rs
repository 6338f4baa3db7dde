//! A tiny argument cursor (no parser crate: keeps the router binary small).

use std::ffi::OsString;
use std::path::PathBuf;

/// Remaining command-line arguments, consumed front to back.
pub struct Args {
    rest: std::collections::VecDeque<OsString>,
}

impl Args {
    /// Wraps the arguments after the program name.
    pub fn new(argv: Vec<OsString>) -> Self {
        Self { rest: argv.into() }
    }

    /// The next argument as UTF-8 text, if any.
    pub fn next_word(&mut self) -> Option<String> {
        self.rest
            .pop_front()
            .map(|s| s.to_string_lossy().into_owned())
    }

    /// The next positional argument as a path, or an error naming what was expected.
    pub fn path(&mut self, what: &str) -> Result<PathBuf, String> {
        match self.rest.front() {
            Some(a) if !a.to_string_lossy().starts_with("--") => {
                Ok(self.rest.pop_front().map(PathBuf::from).unwrap_or_default())
            }
            _ => Err(format!("missing {what}")),
        }
    }

    /// Removes `--name VALUE` (or `--name=VALUE`) wherever it is and returns VALUE.
    pub fn option(&mut self, name: &str) -> Result<Option<String>, String> {
        let flag = format!("--{name}");
        let prefix = format!("--{name}=");
        for i in 0..self.rest.len() {
            let a = self.rest[i].to_string_lossy().into_owned();
            if let Some(v) = a.strip_prefix(&prefix) {
                self.rest.remove(i);
                return Ok(Some(v.to_string()));
            }
            if a == flag {
                self.rest.remove(i);
                return match self.rest.remove(i) {
                    Some(v) => Ok(Some(v.to_string_lossy().into_owned())),
                    None => Err(format!("{flag} needs a value")),
                };
            }
        }
        Ok(None)
    }

    /// Removes a boolean `--name` flag wherever it is; true if it was present.
    pub fn flag(&mut self, name: &str) -> bool {
        let flag = format!("--{name}");
        match self.rest.iter().position(|a| a.to_string_lossy() == flag) {
            Some(i) => {
                self.rest.remove(i);
                true
            }
            None => false,
        }
    }

    /// Errors if arguments are left over.
    pub fn finish(&self) -> Result<(), String> {
        match self.rest.front() {
            None => Ok(()),
            Some(a) => Err(format!("unexpected argument '{}'", a.to_string_lossy())),
        }
    }
}

/// Parses sizes like `8M`, `512K`, `1G`, `65536`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1024),
        Some((i, 'M' | 'm')) => (&s[..i], 1024 * 1024),
        Some((i, 'G' | 'g')) => (&s[..i], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("'{s}' is not a size (examples: 8M, 512K, 1048576)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Args {
        Args::new(v.iter().map(OsString::from).collect())
    }

    #[test]
    fn options_and_flags_anywhere() {
        let mut a = args(&["img", "--size", "8M", "--force"]);
        assert_eq!(a.option("size").unwrap().as_deref(), Some("8M"));
        assert!(a.flag("force"));
        assert_eq!(a.path("image").unwrap(), PathBuf::from("img"));
        a.finish().unwrap();
        let mut a = args(&["--size"]);
        assert!(a.option("size").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8M").unwrap(), 8 << 20);
        assert_eq!(parse_size("512k").unwrap(), 512 << 10);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("eight").is_err());
        assert!(parse_size("99999999999999G").is_err());
    }
}
