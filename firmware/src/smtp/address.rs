//! Addresses: the one checked constructor from untrusted path text to a typed [`Mailbox`].
//!
//! `MAIL FROM:<…>` and `RCPT TO:<…>` arguments go through [`ReversePath::parse`] and
//! [`Mailbox::parse_forward`] (both over one grammar, RFC 5321 §4.1.2, extended for UTF-8 by
//! RFC 6531 §3.3). Past them, code never re-checks syntax: a [`Mailbox`] has a well-formed
//! local part of at most [`LOCAL_PART_MAX`] octets and a well-formed, ASCII-lowercased
//! [`Domain`] of at most [`DOMAIN_MAX`] octets. Whether a syntactically valid address is
//! *acceptable* (our domain? a relay trick?) is the policy's question, not this module's.

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::limits::{DOMAIN_MAX, LOCAL_PART_MAX, PATH_MAX};

/// Why a path was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressError {
    /// Not `<…>`, or the brackets do not close.
    Syntax,
    /// Longer than RFC 5321 §4.5.3.1 allows.
    TooLong,
    /// Non-ASCII without the SMTPUTF8 parameter (RFC 6531 §3.4).
    NonAscii,
    /// `<>` where a recipient is required.
    NullPath,
    /// A source route `<@relay:user@domain>` in a forward-path (a relay attempt).
    SourceRoute,
    /// More than one unquoted `@`, as in `user@other@domain` (a relay attempt).
    ExtraAt,
    /// No `@domain` part.
    NoDomain,
    /// The local part is neither a dot-string nor a quoted string.
    LocalPart,
    /// The domain is neither a host name nor an address literal.
    Domain,
}

impl AddressError {
    /// Forms whose only purpose is relaying through us; RCPT answers them with 550 5.7.1
    /// rather than a syntax error, so the relay attempt is named as such.
    pub fn is_relay_attempt(self) -> bool {
        matches!(self, Self::SourceRoute | Self::ExtraAt)
    }
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Syntax => "address must be enclosed in <>",
            Self::TooLong => "address too long",
            Self::NonAscii => "non-ASCII address without SMTPUTF8",
            Self::NullPath => "null address not allowed here",
            Self::SourceRoute => "source routes are not accepted",
            Self::ExtraAt => "more than one @ in address",
            Self::NoDomain => "address has no domain",
            Self::LocalPart => "bad local part",
            Self::Domain => "bad domain",
        })
    }
}

impl std::error::Error for AddressError {}

/// The part after `@`: a host name (ASCII-lowercased) or an address literal.
#[derive(Clone, Debug, PartialEq, Eq)]
// Fixed-capacity values by design (no heap, DESIGN.md buffer invariant); the size
// difference is the price of never allocating.
#[allow(clippy::large_enum_variant)]
pub enum Domain {
    /// A host name; with SMTPUTF8 it may contain U-labels (RFC 6531 §3.3).
    Name(heapless::String<DOMAIN_MAX>),
    /// `[192.0.2.1]` or `[IPv6:2001:db8::1]` (RFC 5321 §4.1.3).
    Literal(IpAddr),
}

impl Domain {
    /// Parse a domain or address literal. Host names are ASCII-lowercased; non-ASCII is only
    /// allowed when `utf8` (it is never case-folded, so a look-alike never equals ASCII).
    pub fn parse(text: &str, utf8: bool) -> Result<Self, AddressError> {
        if text.len() > DOMAIN_MAX {
            return Err(AddressError::TooLong);
        }
        if let Some(inner) = text.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(AddressError::Domain)?;
            return parse_literal(inner).map(Self::Literal);
        }
        if text.is_empty() || text.split('.').any(|label| !is_label(label, utf8)) {
            return Err(AddressError::Domain);
        }
        let mut name = heapless::String::new();
        for c in text.chars() {
            name.push(c.to_ascii_lowercase())
                .map_err(|_| AddressError::TooLong)?;
        }
        Ok(Self::Name(name))
    }

    /// The host name, if this is one.
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Name(n) => Some(n),
            Self::Literal(_) => None,
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(n) => f.write_str(n),
            Self::Literal(IpAddr::V4(a)) => write!(f, "[{a}]"),
            Self::Literal(IpAddr::V6(a)) => write!(f, "[IPv6:{a}]"),
        }
    }
}

/// A well-formed `local-part@domain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    /// As received, quotes included when quoted (case is kept: RFC 5321 §2.4).
    local: heapless::String<LOCAL_PART_MAX>,
    domain: Domain,
}

impl Mailbox {
    /// Parse an RCPT forward-path `<local@domain>` (RFC 5321 §4.1.2 `Forward-path`).
    /// `text` is the path alone (the `<…>`); `utf8` says whether SMTPUTF8 was given.
    pub fn parse_forward(text: &str, utf8: bool) -> Result<Self, AddressError> {
        match parse_path(text, utf8)? {
            Path::Null => Err(AddressError::NullPath),
            Path::Mailbox { routed: true, .. } => Err(AddressError::SourceRoute),
            Path::Mailbox { mailbox, .. } => Ok(mailbox),
        }
    }

    /// Parse a bare `local@domain` (no brackets), as found in configuration.
    pub fn parse_bare(text: &str, utf8: bool) -> Result<Self, AddressError> {
        parse_mailbox(text, utf8)
    }

    /// The local part exactly as sent (quoted local parts keep their quotes).
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The domain.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// True for `"quoted string"@domain` local parts.
    pub fn is_quoted(&self) -> bool {
        self.local.starts_with('"')
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// A MAIL FROM reverse-path: a mailbox, or `<>` for bounces (RFC 5321 §4.5.5).
#[derive(Clone, Debug, PartialEq, Eq)]
// Fixed-capacity values by design (no heap, DESIGN.md buffer invariant); the size
// difference is the price of never allocating.
#[allow(clippy::large_enum_variant)]
pub enum ReversePath {
    /// `<>`: the null sender.
    Null,
    /// A sender mailbox (any source route was dropped, as RFC 5321 §4.1.1.2 asks).
    Mailbox(Mailbox),
}

impl ReversePath {
    /// Parse `<>` or `<[route:]local@domain>`.
    pub fn parse(text: &str, utf8: bool) -> Result<Self, AddressError> {
        Ok(match parse_path(text, utf8)? {
            Path::Null => Self::Null,
            Path::Mailbox { mailbox, .. } => Self::Mailbox(mailbox),
        })
    }
}

impl fmt::Display for ReversePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("<>"),
            Self::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

/// Split `<path> params` into the path (brackets included) and the rest (leading space
/// removed). A `>` inside a quoted local part does not close the path.
pub fn split_path(arg: &str) -> Result<(&str, &str), AddressError> {
    if !arg.starts_with('<') {
        return Err(AddressError::Syntax);
    }
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in arg.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => {
                let (path, rest) = arg.split_at(i + 1);
                return match rest.strip_prefix(' ') {
                    Some(params) => Ok((path, params)),
                    None if rest.is_empty() => Ok((path, rest)),
                    None => Err(AddressError::Syntax),
                };
            }
            _ => {}
        }
    }
    Err(AddressError::Syntax)
}

// Fixed-capacity values by design (no heap, DESIGN.md buffer invariant); the size
// difference is the price of never allocating.
#[allow(clippy::large_enum_variant)]
enum Path {
    Null,
    Mailbox { routed: bool, mailbox: Mailbox },
}

fn parse_path(text: &str, utf8: bool) -> Result<Path, AddressError> {
    if text.len() > PATH_MAX {
        return Err(AddressError::TooLong);
    }
    if !utf8 && !text.is_ascii() {
        return Err(AddressError::NonAscii);
    }
    let inner = text
        .strip_prefix('<')
        .and_then(|t| t.strip_suffix('>'))
        .ok_or(AddressError::Syntax)?;
    if inner.is_empty() {
        return Ok(Path::Null);
    }
    // A-d-l = At-domain *( "," At-domain ) ":" (RFC 5321 §4.1.2).
    let (routed, mailbox) = match inner.strip_prefix('@') {
        Some(_) => {
            let (route, mailbox) = inner.split_once(':').ok_or(AddressError::Syntax)?;
            for hop in route.split(',') {
                let hop = hop.strip_prefix('@').ok_or(AddressError::Syntax)?;
                Domain::parse(hop, utf8)?;
            }
            (true, mailbox)
        }
        None => (false, inner),
    };
    Ok(Path::Mailbox {
        routed,
        mailbox: parse_mailbox(mailbox, utf8)?,
    })
}

fn parse_mailbox(text: &str, utf8: bool) -> Result<Mailbox, AddressError> {
    if !utf8 && !text.is_ascii() {
        return Err(AddressError::NonAscii);
    }
    let (local, domain) = if text.starts_with('"') {
        let end = quoted_end(text).ok_or(AddressError::LocalPart)?;
        let (local, rest) = text.split_at(end);
        (local, rest.strip_prefix('@').ok_or(AddressError::NoDomain)?)
    } else {
        let (local, domain) = text.split_once('@').ok_or(AddressError::NoDomain)?;
        if domain.contains('@') {
            return Err(AddressError::ExtraAt);
        }
        if !is_dot_string(local, utf8) {
            return Err(AddressError::LocalPart);
        }
        (local, domain)
    };
    if domain.contains('@') {
        return Err(AddressError::ExtraAt);
    }
    let local = heapless::String::try_from(local).map_err(|_| AddressError::TooLong)?;
    Ok(Mailbox {
        local,
        domain: Domain::parse(domain, utf8)?,
    })
}

/// Byte index just past the closing quote of a leading quoted string (RFC 5321 §4.1.2
/// `Quoted-string`: qtextSMTP and `\` quoted-pairSMTP, printable ASCII only).
fn quoted_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return (i > 1).then_some(i + 1),
            b'\\' if bytes.get(i + 1).is_some_and(|b| (32..=126).contains(b)) => i += 2,
            32..=126 => i += 1,
            _ => return None,
        }
    }
    None
}

/// RFC 5321 `Dot-string`: atoms of atext separated by single dots.
fn is_dot_string(text: &str, utf8: bool) -> bool {
    !text.is_empty()
        && text
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(|c| is_atext(c, utf8)))
}

/// RFC 5322 atext; RFC 6531 §3.3 adds UTF8-non-ascii.
fn is_atext(c: char, utf8: bool) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || (utf8 && !c.is_ascii())
}

/// One label of a host name: letters, digits, hyphens (not at either end), at most 63
/// octets; U-labels (non-ASCII) only with SMTPUTF8.
fn is_label(label: &str, utf8: bool) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || c == '-'
                || (utf8 && !c.is_ascii() && !c.is_control() && !c.is_whitespace())
        })
}

fn parse_literal(inner: &str) -> Result<IpAddr, AddressError> {
    if let Some(v6) = inner
        .strip_prefix("IPv6:")
        .or_else(|| inner.strip_prefix("ipv6:"))
    {
        return v6
            .parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| AddressError::Domain);
    }
    inner
        .parse::<Ipv4Addr>()
        .map(IpAddr::V4)
        .map_err(|_| AddressError::Domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(text: &str) -> Result<Mailbox, AddressError> {
        Mailbox::parse_forward(text, false)
    }

    #[test]
    fn plain_address_parses_and_domain_is_lowercased() {
        let m = fwd("<User.Name+tag@Example.COM>").unwrap();
        assert_eq!(m.local(), "User.Name+tag");
        assert_eq!(m.domain().name(), Some("example.com"));
        assert_eq!(m.to_string(), "User.Name+tag@example.com");
    }

    #[test]
    fn null_path_is_a_sender_but_not_a_recipient() {
        assert_eq!(ReversePath::parse("<>", false), Ok(ReversePath::Null));
        assert_eq!(fwd("<>"), Err(AddressError::NullPath));
    }

    #[test]
    fn source_route_is_dropped_from_sender_and_refused_for_recipient() {
        let from = ReversePath::parse("<@relay.example,@b.example:a@c.example>", false).unwrap();
        assert_eq!(from.to_string(), "<a@c.example>");
        assert_eq!(
            fwd("<@a.example:b@c.example>"),
            Err(AddressError::SourceRoute)
        );
    }

    #[test]
    fn malformed_paths_are_refused_with_a_reason() {
        let cases: &[(&str, AddressError)] = &[
            ("a@b.example", AddressError::Syntax),
            ("<a@b.example", AddressError::Syntax),
            ("<user@other@example.com>", AddressError::ExtraAt),
            ("<postmaster>", AddressError::NoDomain),
            ("<.a@b.example>", AddressError::LocalPart),
            ("<a..b@b.example>", AddressError::LocalPart),
            ("<a b@b.example>", AddressError::LocalPart),
            ("<a@b.example.>", AddressError::Domain),
            ("<a@-b.example>", AddressError::Domain),
            ("<a@b_c.example>", AddressError::Domain),
            ("<a@[300.1.1.1]>", AddressError::Domain),
            ("<ü@b.example>", AddressError::NonAscii),
        ];
        for (text, want) in cases {
            assert_eq!(fwd(text), Err(*want), "{text}");
        }
        let long_local = format!("<{}@b.example>", "a".repeat(LOCAL_PART_MAX + 1));
        assert_eq!(fwd(&long_local), Err(AddressError::TooLong));
    }

    #[test]
    fn quoted_local_parts_and_literals_parse_for_the_policy_to_judge() {
        let m = fwd("<\"a@b\\\" c\"@example.com>").unwrap();
        assert!(m.is_quoted());
        let m = fwd("<a@[IPv6:2001:db8::1]>").unwrap();
        assert_eq!(m.domain().to_string(), "[IPv6:2001:db8::1]");
        assert_eq!(m.domain().name(), None);
    }

    #[test]
    fn utf8_addresses_need_smtputf8_and_are_not_case_folded() {
        let m = Mailbox::parse_forward("<jürgen@ÉXAMPLE.com>", true).unwrap();
        assert_eq!(m.domain().name(), Some("Éxample.com"));
    }

    #[test]
    fn split_path_finds_the_closing_bracket_outside_quotes() {
        assert_eq!(split_path("<a@b> SIZE=10"), Ok(("<a@b>", "SIZE=10")));
        assert_eq!(split_path("<\"x>y\"@b>"), Ok(("<\"x>y\"@b>", "")));
        assert_eq!(split_path("<a@b>junk"), Err(AddressError::Syntax));
    }
}
