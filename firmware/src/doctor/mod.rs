//! `mailbag doctor`: the installer's self-check. A wrong MX priority, a missing backup MX
//! record, an MTA-STS policy that leaves the backup out, a silo the firewall locks out or
//! a spool in RAM each defeat a backup MX silently, until the outage it was bought for.
//!
//! # Shape
//!
//! A pure core: [`evaluate`] turns [`Facts`] (DNS answers, SMTP replies, the loaded
//! firewall, spool figures — gathered by the daemon's I/O layer with its own resolver and
//! SMTP client) into a [`Report`], one [`Check`] per line with pass / warn / fail and, for
//! anything but a pass, the fix. Each rule lives with its tests, fed facts by hand:
//!
//! - [`mx`]: MX records present, the office preferred, the silos behind it in order, every
//!   MX host resolving and none an alias; the silo names resolving into the addresses the
//!   firewall admits;
//! - [`mta_sts`]: the `_mta-sts` record, the policy file (HTTP response parsed here), every
//!   MX host covered by an `mx:` pattern; TLS-RPT;
//! - [`service`]: the daemon, next hops and silos answering now (STARTTLS, ETRN), the
//!   loaded firewall against its rendering, the spool's place, room and days of mail.
//!
//! Nothing here does I/O, reads the clock or panics on any input. The rules exist only with
//! the `doctor` cargo feature (the facts' types always: the control socket's `stats`
//! answers in [`facts::SpoolUsage`]).

pub mod facts;
#[cfg(feature = "doctor")]
pub mod mta_sts;
#[cfg(feature = "doctor")]
pub mod mx;
#[cfg(feature = "doctor")]
pub mod report;
#[cfg(feature = "doctor")]
pub mod service;

pub use facts::Facts;
#[cfg(feature = "doctor")]
pub use report::{Check, Report, Status};

/// What a build without the `doctor` cargo feature (the router package) answers instead of
/// checking: `mailbag doctor`, rpcd's `check_setup` (LuCI's Check setup button) and the
/// admin page's.
pub const NOT_BUILT: &str = "this mailbag build has no setup check (the router package \
     leaves it out to save flash). Run `mailbag doctor` from a full build instead: copied to \
     /tmp on the router, or on a Linux machine with a copy of /etc/config/mailbag \
     (--config FILE); see \"Checking your setup\" in mailbag's README";

/// The checklist for `f`: the daemon, each domain's DNS, the silos, the next hops, the
/// firewall, the spool — in that order.
#[cfg(feature = "doctor")]
pub fn evaluate(f: &Facts) -> Report {
    let mut out = Vec::new();
    service::daemon(f, &mut out);
    for d in &f.domains {
        if !f.accepted.iter().any(|a| a.eq_ignore_ascii_case(&d.domain)) {
            out.push(Check::fail(
                "domain",
                format!(
                    "{} is not in policy.domains: mailbag refuses its mail",
                    d.domain
                ),
                format!("add {} to policy.domains", d.domain),
            ));
        }
        mx::domain(f, d, &mut out);
        mta_sts::domain(d, &mut out);
    }
    mx::silo_addresses(f, &mut out);
    service::silos(f, &mut out);
    service::next_hops(f, &mut out);
    service::firewall(f, &mut out);
    service::spool(&f.spool, &mut out);
    Report { checks: out }
}
