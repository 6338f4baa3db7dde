//! The checklist: one line per check, pass / warn / fail, each problem with its fix; as
//! text for people and as JSON for scripts (through [`crate::json`]: the router build has
//! no JSON library).

use core::fmt::{self, Write as _};

use crate::json::{Obj, array};

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// As it should be.
    Pass,
    /// Works, but something is missing or risky.
    Warn,
    /// Mail will be lost, delayed or refused as it stands.
    Fail,
}

impl Status {
    /// `pass`, `warn`, `fail`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }
}

/// One line of the checklist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// Stable identifier of the rule (`mx.order`, `mta-sts.mx`, …), for scripts.
    pub id: &'static str,
    /// The outcome.
    pub status: Status,
    /// What was found, in one sentence.
    pub text: String,
    /// What to change, when it is not a pass.
    pub fix: Option<String>,
}

impl Check {
    /// A pass.
    pub fn pass(id: &'static str, text: impl Into<String>) -> Self {
        Self {
            id,
            status: Status::Pass,
            text: text.into(),
            fix: None,
        }
    }

    /// A warning with its fix.
    pub fn warn(id: &'static str, text: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            id,
            status: Status::Warn,
            text: text.into(),
            fix: Some(fix.into()),
        }
    }

    /// A failure with its fix.
    pub fn fail(id: &'static str, text: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            id,
            status: Status::Fail,
            text: text.into(),
            fix: Some(fix.into()),
        }
    }
}

/// The whole checklist.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Checks in the order they were made.
    pub checks: Vec<Check>,
}

impl Report {
    /// How many checks came out `status`.
    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// True when no check failed (warnings allowed): the command exits 0.
    pub fn ok(&self) -> bool {
        self.count(Status::Fail) == 0
    }

    /// One line per check (`[pass] …`, `[WARN] …`, `[FAIL] …`), fixes indented under their
    /// line, then the totals.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let tag = match c.status {
                Status::Pass => "[pass]",
                Status::Warn => "[WARN]",
                Status::Fail => "[FAIL]",
            };
            let _ = writeln!(out, "{tag} {}", c.text);
            if let Some(fix) = &c.fix {
                let _ = writeln!(out, "       fix: {fix}");
            }
        }
        let _ = write!(out, "{self}");
        out
    }

    /// `{"checks":[{"id","status","text","fix"}…],"passed":n,"warnings":n,"failed":n,"ok":b}`
    /// (`fix` is `null` on a pass).
    pub fn json(&self) -> String {
        let checks = array(self.checks.iter().map(|c| {
            Obj::new()
                .str("id", c.id)
                .str("status", c.status.name())
                .str("text", &c.text)
                .opt_str("fix", c.fix.as_deref())
                .finish()
        }));
        Obj::new()
            .raw("checks", &checks)
            .num("passed", self.count(Status::Pass) as u64)
            .num("warnings", self.count(Status::Warn) as u64)
            .num("failed", self.count(Status::Fail) as u64)
            .bool("ok", self.ok())
            .finish()
    }
}

impl fmt::Display for Report {
    /// The totals line: `12 passed, 1 warning, 2 failed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (p, w, x) = (
            self.count(Status::Pass),
            self.count(Status::Warn),
            self.count(Status::Fail),
        );
        writeln!(
            f,
            "{p} passed, {w} warning{}, {x} failed",
            if w == 1 { "" } else { "s" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        Report {
            checks: vec![
                Check::pass("mx.present", "MX of office.test: 10 edge.office.test"),
                Check::warn("tls-rpt", "no TLS-RPT record", "add one"),
                Check::fail("mx.order", "silo preferred", "swap the preferences"),
            ],
        }
    }

    #[test]
    fn text_shows_each_line_its_fix_and_the_totals() {
        let t = sample().text();
        assert_eq!(
            t,
            "[pass] MX of office.test: 10 edge.office.test\n\
             [WARN] no TLS-RPT record\n       fix: add one\n\
             [FAIL] silo preferred\n       fix: swap the preferences\n\
             1 passed, 1 warning, 1 failed\n"
        );
        assert!(!sample().ok());
    }

    #[test]
    fn json_carries_every_check_and_the_verdict() {
        let v: serde_json::Value = serde_json::from_str(&sample().json()).unwrap();
        assert_eq!(v["checks"][1]["status"], "warn");
        assert_eq!(v["checks"][2]["fix"], "swap the preferences");
        assert!(v["checks"][0]["fix"].is_null(), "a pass has no fix");
        assert_eq!(
            (v["failed"].as_u64(), v["ok"].as_bool()),
            (Some(1), Some(false))
        );
        let odd = Report {
            checks: vec![Check::fail("x", "a \"quoted\" \\ path\n\u{1}é", "fix")],
        };
        let v: serde_json::Value = serde_json::from_str(&odd.json()).unwrap();
        assert_eq!(v["checks"][0]["text"], "a \"quoted\" \\ path\n\u{1}é");
        let clean = Report {
            checks: vec![Check::pass("x", "fine")],
        };
        assert!(clean.ok());
        assert!(clean.text().ends_with("1 passed, 0 warnings, 0 failed\n"));
    }
}
