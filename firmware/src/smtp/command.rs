//! Command lines → typed [`Command`]s (RFC 5321 §4.1.1, RFC 1870, RFC 6152, RFC 6531,
//! RFC 3207, RFC 1985).
//!
//! Input is one line without its CRLF, already bounded by the line receiver. Verbs are
//! case-insensitive (RFC 5321 §2.4). The reverse-path is parsed here because its SMTPUTF8
//! parameter is on the same line; the forward-path is handed on raw, because whether it may
//! be UTF-8 depends on the MAIL command before it.

use core::fmt;

use super::address::{AddressError, ReversePath, split_path};

/// A parsed command line.
#[derive(Debug, PartialEq, Eq)]
// Fixed-capacity values by design (no heap, DESIGN.md buffer invariant); the size
// difference is the price of never allocating.
#[allow(clippy::large_enum_variant)]
pub enum Command<'a> {
    /// `HELO domain` (RFC 5321 §4.1.1.1).
    Helo(&'a str),
    /// `EHLO domain` (RFC 5321 §4.1.1.1).
    Ehlo(&'a str),
    /// `MAIL FROM:<path> [params]` (RFC 5321 §4.1.1.2).
    Mail(ReversePath, MailParams),
    /// `RCPT TO:<path>` (RFC 5321 §4.1.1.3); the path is still raw text.
    Rcpt(&'a str),
    /// `DATA` (RFC 5321 §4.1.1.4).
    Data,
    /// `RSET` (RFC 5321 §4.1.1.5).
    Rset,
    /// `VRFY string` (RFC 5321 §4.1.1.6).
    Vrfy,
    /// `HELP [string]` (RFC 5321 §4.1.1.8).
    Help,
    /// `NOOP [string]` (RFC 5321 §4.1.1.9).
    Noop,
    /// `QUIT` (RFC 5321 §4.1.1.10).
    Quit,
    /// `STARTTLS` (RFC 3207 §4).
    StartTls,
    /// `ETRN node` (RFC 1985 §3): `domain`, `@domain` or `#queue`.
    Etrn(&'a str),
    /// `XBEACON line`: a router's heartbeat (mailbag's own private-use command, RFC 5321
    /// §4.1.5); printable ASCII and spaces, at most `BEACON_ARG_MAX` bytes.
    Beacon(&'a str),
}

/// Message body type declared with `BODY=` (RFC 6152 §2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BodyType {
    /// `BODY=7BIT` or nothing.
    #[default]
    SevenBit,
    /// `BODY=8BITMIME`.
    EightBitMime,
}

/// The MAIL FROM parameters we support.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MailParams {
    /// `SIZE=n`: the client's estimate in octets (RFC 1870 §5).
    pub size: Option<u64>,
    /// `BODY=`.
    pub body: BodyType,
    /// `SMTPUTF8` (RFC 6531 §3.4): addresses and headers may be UTF-8.
    pub smtputf8: bool,
}

/// Why a line is not a command we can run; each maps to one reply in the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// Not a verb we know: 500 5.5.1 (RFC 5321 §4.2.4).
    Unknown,
    /// A verb we know but do not offer (EXPN, TURN, …): 502 5.5.1.
    NotImplemented,
    /// Arguments malformed: 501 5.5.4 (RFC 5321 §4.3.2).
    Syntax(&'static str),
    /// The MAIL path did not parse: 501 5.1.7 / 553 5.6.7.
    Address(AddressError),
    /// The RCPT path did not parse: 501 5.1.3 / 553 5.6.7, or 550 5.7.1 for relay tricks.
    RcptAddress(AddressError),
    /// A MAIL parameter we do not know: 555 5.5.4 (RFC 5321 §4.1.1.11).
    UnknownParam,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown => f.write_str("command unrecognized"),
            Self::NotImplemented => f.write_str("command not implemented"),
            Self::Syntax(why) => f.write_str(why),
            Self::Address(e) | Self::RcptAddress(e) => write!(f, "{e}"),
            Self::UnknownParam => f.write_str("parameter not recognized"),
        }
    }
}

impl std::error::Error for CommandError {}

impl<'a> Command<'a> {
    /// Parse one command line (CRLF already removed).
    pub fn parse(line: &'a [u8]) -> Result<Self, CommandError> {
        let line = core::str::from_utf8(line).map_err(|_| CommandError::Syntax("not UTF-8"))?;
        let (verb, arg) = match line.split_once(' ') {
            Some((verb, arg)) => (verb, arg.trim_matches(' ')),
            None => (line, ""),
        };
        let is = |name: &str| verb.eq_ignore_ascii_case(name);
        if is("HELO") {
            Ok(Self::Helo(helo_name(arg)?))
        } else if is("EHLO") {
            Ok(Self::Ehlo(helo_name(arg)?))
        } else if is("MAIL") {
            parse_mail(arg)
        } else if is("RCPT") {
            let path =
                strip_keyword(arg, "TO:").ok_or(CommandError::Syntax("expected TO:<address>"))?;
            let (path, params) = split_path(path).map_err(CommandError::RcptAddress)?;
            // RCPT extensions (DSN NOTIFY=, ORCPT=) are not advertised (RFC 5321 §4.1.1.11).
            if params.is_empty() {
                Ok(Self::Rcpt(path))
            } else {
                Err(CommandError::UnknownParam)
            }
        } else if is("DATA") {
            no_arg(arg, Self::Data)
        } else if is("RSET") {
            no_arg(arg, Self::Rset)
        } else if is("QUIT") {
            no_arg(arg, Self::Quit)
        } else if is("STARTTLS") {
            no_arg(arg, Self::StartTls)
        } else if is("NOOP") {
            Ok(Self::Noop)
        } else if is("HELP") {
            Ok(Self::Help)
        } else if is("VRFY") {
            if arg.is_empty() {
                Err(CommandError::Syntax("VRFY needs an argument"))
            } else {
                Ok(Self::Vrfy)
            }
        } else if is("ETRN") {
            etrn_node(arg).map(Self::Etrn)
        } else if is("XBEACON") {
            let ok = !arg.is_empty()
                && arg.len() <= super::limits::BEACON_ARG_MAX
                && arg.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
            if ok {
                Ok(Self::Beacon(arg))
            } else {
                Err(CommandError::Syntax("XBEACON needs a beacon line"))
            }
        } else if [
            "EXPN", "TURN", "SEND", "SOML", "SAML", "BDAT", "AUTH", "ATRN",
        ]
        .iter()
        .any(|v| is(v))
        {
            Err(CommandError::NotImplemented)
        } else {
            Err(CommandError::Unknown)
        }
    }
}

fn no_arg<'a>(arg: &str, cmd: Command<'a>) -> Result<Command<'a>, CommandError> {
    if arg.is_empty() {
        Ok(cmd)
    } else {
        Err(CommandError::Syntax("no arguments allowed"))
    }
}

/// `FROM:` / `TO:` case-insensitively, then optional spaces (many clients send
/// `MAIL FROM: <a@b>`; RFC 5321 forbids the space but rejecting it only loses mail).
fn strip_keyword<'a>(arg: &'a str, keyword: &str) -> Option<&'a str> {
    let head = arg.get(..keyword.len())?;
    head.eq_ignore_ascii_case(keyword)
        .then(|| arg[keyword.len()..].trim_start_matches(' '))
}

/// The HELO/EHLO argument. It goes into our Received header, so it is limited to the
/// characters of host names and address literals (letters, digits, `.-_:[]`): no `(` to
/// forge a comment, no `;` to end the trace tokens early, no quotes or spaces.
fn helo_name(arg: &str) -> Result<&str, CommandError> {
    let ok = !arg.is_empty()
        && arg.len() <= super::limits::DOMAIN_MAX
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b));
    if ok {
        Ok(arg)
    } else {
        Err(CommandError::Syntax("HELO/EHLO needs a host name"))
    }
}

fn etrn_node(arg: &str) -> Result<&str, CommandError> {
    let name = arg
        .strip_prefix('@')
        .or_else(|| arg.strip_prefix('#'))
        .unwrap_or(arg);
    let ok = !name.is_empty()
        && arg.len() <= super::limits::ETRN_ARG_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    if ok {
        Ok(arg)
    } else {
        Err(CommandError::Syntax("ETRN needs a node name"))
    }
}

fn parse_mail(arg: &str) -> Result<Command<'_>, CommandError> {
    let path =
        strip_keyword(arg, "FROM:").ok_or(CommandError::Syntax("expected FROM:<address>"))?;
    let (path, params) = split_path(path).map_err(CommandError::Address)?;
    let mut out = MailParams::default();
    for param in params.split(' ').filter(|p| !p.is_empty()) {
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (param, None),
        };
        let is = |name: &str| key.eq_ignore_ascii_case(name);
        match value {
            Some(v) if is("SIZE") => {
                // RFC 1870 §6: size-value = 1*20DIGIT.
                let ok = !v.is_empty() && v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit());
                out.size = Some(if ok {
                    v.parse().unwrap_or(u64::MAX)
                } else {
                    return Err(CommandError::Syntax("bad SIZE value"));
                });
            }
            Some(v) if is("BODY") => {
                out.body = if v.eq_ignore_ascii_case("8BITMIME") {
                    BodyType::EightBitMime
                } else if v.eq_ignore_ascii_case("7BIT") {
                    BodyType::SevenBit
                } else {
                    return Err(CommandError::Syntax("BODY must be 7BIT or 8BITMIME"));
                };
            }
            None if is("SMTPUTF8") => out.smtputf8 = true,
            _ => return Err(CommandError::UnknownParam),
        }
    }
    let from = ReversePath::parse(path, out.smtputf8).map_err(CommandError::Address)?;
    Ok(Command::Mail(from, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command<'_>, CommandError> {
        Command::parse(line.as_bytes())
    }

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(
            parse("ehlo client.example"),
            Ok(Command::Ehlo("client.example"))
        );
        assert_eq!(parse("QuIt"), Ok(Command::Quit));
        assert_eq!(
            parse("rcpt to:<a@b.example>"),
            Ok(Command::Rcpt("<a@b.example>"))
        );
    }

    #[test]
    fn mail_parameters_are_parsed() {
        let Ok(Command::Mail(from, params)) =
            parse("MAIL FROM:<ö@b.example> SIZE=1000 BODY=8BITMIME SMTPUTF8")
        else {
            panic!("MAIL did not parse");
        };
        assert_eq!(from.to_string(), "<ö@b.example>");
        assert_eq!(params.size, Some(1000));
        assert_eq!(params.body, BodyType::EightBitMime);
        assert!(params.smtputf8);
    }

    #[test]
    fn bad_lines_are_refused_with_the_right_error() {
        assert_eq!(
            parse("MAIL FROM:<a@b.example> FOO=1"),
            Err(CommandError::UnknownParam)
        );
        assert_eq!(
            parse("MAIL FROM:<a@b.example> SIZE=x"),
            Err(CommandError::Syntax("bad SIZE value"))
        );
        assert_eq!(
            parse("MAIL TO:<a@b.example>"),
            Err(CommandError::Syntax("expected FROM:<address>"))
        );
        assert_eq!(
            parse("MAIL FROM:<ö@b.example>"),
            Err(CommandError::Address(AddressError::NonAscii))
        );
        assert_eq!(
            parse("DATA now"),
            Err(CommandError::Syntax("no arguments allowed"))
        );
        assert_eq!(
            parse("EHLO"),
            Err(CommandError::Syntax("HELO/EHLO needs a host name"))
        );
        for bad in ["EHLO a(b)", "EHLO a;b", "EHLO \"a\"", "EHLO a b"] {
            assert_eq!(
                parse(bad),
                Err(CommandError::Syntax("HELO/EHLO needs a host name")),
                "{bad}"
            );
        }
        assert_eq!(
            parse("EHLO [IPv6:2001:db8::1]"),
            Ok(Command::Ehlo("[IPv6:2001:db8::1]"))
        );
        assert_eq!(parse("EXPN staff"), Err(CommandError::NotImplemented));
        assert_eq!(parse("WIBBLE"), Err(CommandError::Unknown));
        assert_eq!(
            parse("RCPT TO:<a@b.example> NOTIFY=NEVER"),
            Err(CommandError::UnknownParam)
        );
    }

    #[test]
    fn etrn_accepts_domain_at_domain_and_queue_names() {
        assert_eq!(parse("ETRN example.com"), Ok(Command::Etrn("example.com")));
        assert_eq!(
            parse("ETRN @example.com"),
            Ok(Command::Etrn("@example.com"))
        );
        assert_eq!(parse("ETRN #queue1"), Ok(Command::Etrn("#queue1")));
        assert!(parse("ETRN").is_err());
        assert_eq!(
            parse("XBEACON v1 router=a"),
            Ok(Command::Beacon("v1 router=a"))
        );
        assert!(parse("XBEACON").is_err());
        assert!(parse(&format!("XBEACON {}", "x".repeat(401))).is_err());
    }
}
