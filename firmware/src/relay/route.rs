//! Routes: which next hops a recipient domain's mail goes to.
//!
//! # Contract
//!
//! - `relay.routes` entries are `DOMAIN = HOPS`: `"office.test = 10 mail.lan:25, 20
//!   backup.lan"` (a next-hop list as in `relay.next-hops`, comma-separated) or
//!   `"customer.test = mx"` (deliver by the domain's MX records). A domain written with a
//!   leading dot (`.office.test`) also covers its subdomains; an exact entry wins over a
//!   covering one, and the longest covering one wins among those.
//! - Any other domain goes to `relay.next-hops`, or by MX when that list is empty (the
//!   silo's usual setting: it delivers to each office's MX, itself excluded by the loop
//!   guard).
//! - Each route has a name ([`Route::name`]): routes with the same name share connections
//!   and the `max-per-hop` limit. Errors name the entry (`relay.routes[2]`).

use core::fmt;

use super::nexthop::{NEXT_HOPS_MAX, NextHops};
use crate::smtp::address::Domain;

/// Most `relay.routes` entries.
pub const ROUTES_MAX: usize = 64;

/// Where one domain's mail goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// These hosts, in preference order (boxed: parsed once at start-up).
    Hops(Box<NextHops>),
    /// The domain's MX records (RFC 5321 §5.1).
    Mx,
    /// Nowhere configured: the mail is held (an edge without `relay.next-hops`; delivering
    /// an office's own domain by MX would come back to the router itself).
    Unrouted,
}

/// The route chosen for one recipient domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route<'a> {
    /// Where.
    pub target: &'a Target,
    /// Which entry (`None`: the default).
    pub entry: Option<usize>,
}

impl Route<'_> {
    /// A stable name: routes with equal names share connections and limits.
    pub fn name(&self, domain: &str) -> String {
        match (self.target, self.entry) {
            (Target::Unrouted, _) => "unrouted".to_owned(),
            (Target::Mx, _) => format!("{MX_PREFIX}{}", domain.to_ascii_lowercase()),
            (Target::Hops(_), Some(i)) => format!("route:{i}"),
            (Target::Hops(_), None) => "next-hops".to_owned(),
        }
    }
}

/// How an MX route's name starts (`mx:example.com`).
const MX_PREFIX: &str = "mx:";

/// The domain of an MX route's name ([`Route::name`]); `None` for other routes. An MX
/// route serves one domain, whose MX records name its next hops.
pub fn mx_domain(name: &str) -> Option<&str> {
    name.strip_prefix(MX_PREFIX)
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    /// Lowercase, without the leading dot.
    domain: String,
    subdomains: bool,
    target: Target,
}

/// `relay.routes` and the default, parsed once at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routes {
    entries: Vec<Entry>,
    default: Target,
}

impl Default for Routes {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            default: Target::Mx,
        }
    }
}

/// A `relay.routes` entry that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteError {
    /// Position in the list (`None`: the list is too long).
    pub index: Option<usize>,
    /// The entry as written.
    pub text: String,
    /// What is wrong.
    pub why: String,
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "relay.routes[{i}] '{}': {}", self.text, self.why),
            None => write!(f, "relay.routes: {}", self.why),
        }
    }
}

impl std::error::Error for RouteError {}

impl Routes {
    /// Parse `relay.routes`; `default` is `relay.next-hops` (empty: deliver by MX).
    pub fn parse<S: AsRef<str>>(entries: &[S], default: NextHops) -> Result<Self, RouteError> {
        if entries.len() > ROUTES_MAX {
            return Err(RouteError {
                index: None,
                text: String::new(),
                why: format!("more than {ROUTES_MAX} routes"),
            });
        }
        let mut out = Vec::with_capacity(entries.len());
        for (index, text) in entries.iter().enumerate() {
            let text = text.as_ref();
            let err = |why: String| RouteError {
                index: Some(index),
                text: text.to_owned(),
                why,
            };
            let (domain, hops) = text
                .split_once('=')
                .ok_or_else(|| err("not 'DOMAIN = HOPS' or 'DOMAIN = mx'".into()))?;
            let domain = domain.trim().to_ascii_lowercase();
            let (subdomains, bare) = match domain.strip_prefix('.') {
                Some(rest) => (true, rest.to_owned()),
                None => (false, domain.clone()),
            };
            if !matches!(Domain::parse(&bare, false), Ok(Domain::Name(_))) {
                return Err(err(format!("'{domain}' is not a domain")));
            }
            if out
                .iter()
                .any(|e: &Entry| e.domain == bare && e.subdomains == subdomains)
            {
                return Err(err(format!("'{domain}' has a route already")));
            }
            let hops = hops.trim();
            let target = if hops.eq_ignore_ascii_case("mx") {
                Target::Mx
            } else {
                let list: Vec<&str> = hops.split(',').map(str::trim).collect();
                if list.len() > NEXT_HOPS_MAX {
                    return Err(err(format!("more than {NEXT_HOPS_MAX} next hops")));
                }
                let parsed = NextHops::parse(&list).map_err(|e| match e {
                    super::nexthop::NextHopError::Entry { text, why, .. } => {
                        err(format!("next hop '{text}': {why}"))
                    }
                    other => err(other.to_string()),
                })?;
                Target::Hops(Box::new(parsed))
            };
            out.push(Entry {
                domain: bare,
                subdomains,
                target,
            });
        }
        Ok(Self {
            entries: out,
            default: if default.is_empty() {
                Target::Mx
            } else {
                Target::Hops(Box::new(default))
            },
        })
    }

    /// The route for recipient domain `domain`.
    pub fn for_domain(&self, domain: &str) -> Route<'_> {
        let d = domain.trim_end_matches('.').to_ascii_lowercase();
        let covers = |e: &Entry| {
            e.subdomains
                && d.len() > e.domain.len()
                && d.ends_with(e.domain.as_str())
                && d.as_bytes()[d.len() - e.domain.len() - 1] == b'.'
        };
        let exact = self
            .entries
            .iter()
            .position(|e| e.domain == d && !e.subdomains);
        let chosen = exact.or_else(|| {
            self.entries
                .iter()
                .enumerate()
                .filter(|(_, e)| covers(e) || (e.subdomains && e.domain == d))
                .max_by_key(|(_, e)| e.domain.len())
                .map(|(i, _)| i)
        });
        match chosen {
            Some(i) => Route {
                target: &self.entries[i].target,
                entry: Some(i),
            },
            None => Route {
                target: &self.default,
                entry: None,
            },
        }
    }

    /// The default target (`relay.next-hops`, or MX).
    pub fn default_target(&self) -> &Target {
        &self.default
    }

    /// For the edge role: domains without a route or next hop are held rather than
    /// delivered by MX (the office's MX is the router itself). A silo keeps MX.
    pub fn hold_unrouted(mut self) -> Self {
        if self.default == Target::Mx {
            self.default = Target::Unrouted;
        }
        self
    }

    /// Every configured next-hop list with its route's name ([`Route::name`]), the default
    /// first: what the probe watches.
    pub fn named_hop_lists(&self) -> impl Iterator<Item = (String, &NextHops)> {
        let default = match &self.default {
            Target::Hops(h) => Some(("next-hops".to_owned(), &**h)),
            _ => None,
        };
        default
            .into_iter()
            .chain(
                self.entries
                    .iter()
                    .enumerate()
                    .filter_map(|(i, e)| match &e.target {
                        Target::Hops(h) => Some((format!("route:{i}"), &**h)),
                        _ => None,
                    }),
            )
    }

    /// True when some domain is delivered by its MX records (the default, or an entry).
    pub fn uses_mx(&self) -> bool {
        core::iter::once(&self.default)
            .chain(self.entries.iter().map(|e| &e.target))
            .any(|t| *t == Target::Mx)
    }

    /// Every configured next-hop list (the default first), for probes and the status page.
    pub fn hop_lists(&self) -> impl Iterator<Item = &NextHops> {
        core::iter::once(&self.default)
            .chain(self.entries.iter().map(|e| &e.target))
            .filter_map(|t| match t {
                Target::Hops(h) => Some(&**h),
                Target::Mx | Target::Unrouted => None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(entries: &[&str], default: &[&str]) -> Routes {
        Routes::parse(entries, NextHops::parse(default).unwrap()).unwrap()
    }

    fn first_host(r: Route<'_>) -> String {
        match r.target {
            Target::Hops(h) => h.ordered(0)[0].to_string(),
            Target::Mx => "mx".into(),
            Target::Unrouted => "held".into(),
        }
    }

    #[test]
    fn domains_pick_their_route_and_others_the_default() {
        let r = routes(
            &[
                "office.test = 10 mail.office.lan:25, 20 backup.lan",
                ".branch.test = 192.0.2.7:2525",
                "east.branch.test = mx",
                "Customer.Test = MX",
            ],
            &["exchange.lan"],
        );
        assert_eq!(
            first_host(r.for_domain("office.test")),
            "10 mail.office.lan:25"
        );
        assert_eq!(
            first_host(r.for_domain("OFFICE.test.")),
            "10 mail.office.lan:25"
        );
        // A dotted entry covers the domain and its subdomains; an exact one wins.
        assert_eq!(first_host(r.for_domain("branch.test")), "0 192.0.2.7:2525");
        assert_eq!(
            first_host(r.for_domain("west.branch.test")),
            "0 192.0.2.7:2525"
        );
        assert_eq!(first_host(r.for_domain("east.branch.test")), "mx");
        assert_eq!(
            first_host(r.for_domain("xbranch.test")),
            "0 exchange.lan:25"
        );
        assert_eq!(first_host(r.for_domain("customer.test")), "mx");
        assert_eq!(first_host(r.for_domain("other.test")), "0 exchange.lan:25");
        // Names: one per entry, one per MX domain, one for the default.
        assert_eq!(r.for_domain("office.test").name("office.test"), "route:0");
        assert_eq!(
            r.for_domain("customer.test").name("Customer.test"),
            "mx:customer.test"
        );
        assert_eq!(r.for_domain("x.test").name("x.test"), "next-hops");
        assert_eq!(r.hop_lists().count(), 3);
        // The probe's names are the routes' names.
        let names: Vec<String> = r.named_hop_lists().map(|(n, _)| n).collect();
        assert_eq!(names, ["next-hops", "route:0", "route:1"]);
        assert_eq!(
            r.for_domain("west.branch.test").name("west.branch.test"),
            "route:1"
        );
        // No default next hops: everything else goes by MX.
        let silo = routes(&[], &[]);
        assert_eq!(silo.for_domain("office.test").target, &Target::Mx);
        // An edge without next hops holds the mail instead; explicit MX routes stay.
        let edge = routes(&["customer.test = mx"], &[]).hold_unrouted();
        assert_eq!(edge.for_domain("office.test").target, &Target::Unrouted);
        assert_eq!(edge.for_domain("customer.test").target, &Target::Mx);
        let with_hops = routes(&[], &["exchange.lan"]).hold_unrouted();
        assert!(matches!(
            with_hops.for_domain("x.test").target,
            Target::Hops(_)
        ));
    }

    #[test]
    fn bad_entries_are_refused_with_their_position() {
        let err = |e: &[&str]| {
            Routes::parse(e, NextHops::default())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&["office.test mail.lan"]),
            "relay.routes[0] 'office.test mail.lan': not 'DOMAIN = HOPS' or 'DOMAIN = mx'"
        );
        assert!(err(&["a.test = mx", "not a domain = mx"]).starts_with("relay.routes[1]"));
        assert!(err(&["a.test = mail.lan:0"]).contains("next hop 'mail.lan:0'"));
        assert!(err(&["a.test = mx", "A.test = x.lan"]).contains("has a route already"));
        assert!(err(&["a.test = "]).contains("relay.routes[0]"));
        let many: Vec<String> = (0..=ROUTES_MAX)
            .map(|i| format!("d{i}.test = mx"))
            .collect();
        assert!(Routes::parse(&many, NextHops::default()).is_err());
    }
}
