//! Delivery status notifications: bounces and delay warnings (RFC 3464, RFC 3462/6522).
//!
//! # Contract
//!
//! - [`write_dsn`] writes one `multipart/report; report-type=delivery-status` message: a
//!   human-readable `text/plain` part, a `message/delivery-status` part (Reporting-MTA,
//!   Arrival-Date, then per recipient Final-Recipient, Action `failed` or `delayed`,
//!   Status, Remote-MTA, Diagnostic-Code, Last-Attempt-Date, Will-Retry-Until), and the
//!   original message's **headers only** as `text/rfc822-headers`.
//! - **Backscatter-safe.** The only address a DSN goes to is the original *envelope*
//!   sender, passed in by the caller; header addresses (From:, Reply-To:) are never read.
//!   The null sender `<>` gets nothing: [`write_dsn`] returns `Ok(None)` and writes nothing
//!   (RFC 5321 §4.5.5: never answer a bounce with a bounce). The DSN itself goes out with
//!   the null sender.
//! - **Bounded.** The original is read through the caller's [`Read`] in [`READ_CHUNK`]
//!   pieces and only up to the end of its header section or [`HEADERS_MAX`] octets,
//!   whichever is first; the body is never read. Output is written to the caller's
//!   [`Write`] line by line (the spool's append, in the daemon).
//! - **Well-formed.** Every line ends with CRLF and has at most [`LINE_MAX`] octets: an
//!   original header line that is longer is cut, bare CR/LF in the original become line
//!   ends, and a copied line that could be taken for the MIME boundary is indented.
//!   Addresses with control characters are refused ([`DsnError::Address`]).

use core::fmt::{self, Write as _};
use std::io::{self, Read, Write};

use crate::smtp::received::Rfc5322Date;
use crate::spool::MessageId;

/// Longest line written, CRLF excluded (RFC 5322 §2.1.1).
pub const LINE_MAX: usize = 998;
/// Most octets of the original header section included.
pub const HEADERS_MAX: usize = 16 * 1024;
/// Read size when taking the original's headers.
pub const READ_CHUNK: usize = 1024;

/// What a DSN reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DsnKind {
    /// Delivery failed for good (`Action: failed`).
    Failure,
    /// Still trying (`Action: delayed`), until the given wall-clock second.
    Delay {
        /// When the message expires (`Will-Retry-Until`).
        until_unix: u64,
    },
}

/// One recipient's entry.
#[derive(Clone, Copy, Debug)]
pub struct DsnRecipient<'a> {
    /// The recipient address (envelope forward-path, no brackets).
    pub address: &'a str,
    /// RFC 3463 status, e.g. `(5, 1, 1)`.
    pub status: (u8, u16, u16),
    /// The next hop that answered, if any (`Remote-MTA: dns; …`).
    pub remote_mta: Option<&'a str>,
    /// That hop's reply, e.g. `550 5.1.1 user unknown` (`Diagnostic-Code: smtp; …`).
    pub smtp_reply: Option<&'a str>,
    /// Our own words for people, e.g. `connection timed out` or `message expired`.
    pub reason: &'a str,
    /// Wall-clock second of the last attempt.
    pub last_attempt_unix: u64,
}

/// The report as a whole.
#[derive(Clone, Copy, Debug)]
pub struct Report<'a> {
    /// Our host name (`smtp.hostname`).
    pub reporting_mta: &'a str,
    /// The original's queue id.
    pub queue_id: MessageId,
    /// When the original arrived.
    pub arrival_unix: u64,
    /// Now, for Date: and the Message-ID.
    pub now_unix: u64,
    /// Bounce or delay warning.
    pub kind: DsnKind,
    /// The recipients it is about (at least one).
    pub recipients: &'a [DsnRecipient<'a>],
}

/// Where to send the DSN: from the null sender to the original envelope sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DsnEnvelope {
    /// Always empty: the null reverse-path `<>`.
    pub sender: String,
    /// The original envelope sender.
    pub recipient: String,
}

/// Why no DSN was written.
#[derive(Debug)]
pub enum DsnError {
    /// An address or name contains control characters or is empty.
    Address,
    /// No recipients to report on.
    NoRecipients,
    /// Reading the original or writing the DSN failed.
    Io(io::Error),
}

impl fmt::Display for DsnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address => f.write_str("address unfit for a delivery report"),
            Self::NoRecipients => f.write_str("delivery report without recipients"),
            Self::Io(e) => write!(f, "delivery report: {e}"),
        }
    }
}

impl std::error::Error for DsnError {}

impl From<io::Error> for DsnError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Write the DSN for `report` about the message from `envelope_sender` (no brackets; empty
/// or `<>` for the null sender), reading the original's headers from `original`.
/// Returns the DSN's envelope, or `None` (nothing written) for the null sender.
pub fn write_dsn<R: Read, W: Write>(
    envelope_sender: &str,
    report: &Report<'_>,
    original: R,
    out: W,
) -> Result<Option<DsnEnvelope>, DsnError> {
    let sender = envelope_sender.trim();
    if sender.is_empty() || sender == "<>" {
        return Ok(None);
    }
    let texts = report.recipients.iter().flat_map(|r| {
        [
            r.address,
            r.reason,
            r.remote_mta.unwrap_or("x"),
            r.smtp_reply.unwrap_or("x"),
        ]
    });
    if [sender, report.reporting_mta]
        .into_iter()
        .chain(texts)
        .any(|t| t.is_empty() || t.chars().any(char::is_control))
    {
        return Err(DsnError::Address);
    }
    if report.recipients.is_empty() {
        return Err(DsnError::NoRecipients);
    }
    let mut w = Lines(out);
    let utf8 = !sender.is_ascii() || report.recipients.iter().any(|r| !r.address.is_ascii());
    let boundary = Boundary(report.queue_id, report.now_unix);
    let (subject, action) = match report.kind {
        DsnKind::Failure => ("Undelivered Mail Returned to Sender", "failed"),
        DsnKind::Delay { .. } => ("Delayed Mail (still being retried)", "delayed"),
    };
    let mta = report.reporting_mta;

    // RFC 5322 header; RFC 3834 Auto-Submitted keeps auto-responders from answering.
    w.line(format_args!(
        "From: Mail Delivery System <MAILER-DAEMON@{mta}>"
    ))?;
    w.line(format_args!("To: <{sender}>"))?;
    w.line(format_args!("Subject: {subject}"))?;
    w.line(format_args!("Date: {}", Rfc5322Date(report.now_unix)))?;
    w.line(format_args!(
        "Message-ID: <{}.{}.dsn@{mta}>",
        report.queue_id, report.now_unix
    ))?;
    w.line(format_args!("Auto-Submitted: auto-replied"))?;
    w.line(format_args!("MIME-Version: 1.0"))?;
    w.line(format_args!(
        "Content-Type: multipart/report; report-type=delivery-status;"
    ))?;
    w.line(format_args!("\tboundary=\"{boundary}\""))?;
    w.line(format_args!(""))?;
    w.line(format_args!("This is a MIME-encapsulated message."))?;
    w.line(format_args!(""))?;

    // Part 1: for people.
    let charset = if utf8 { "utf-8" } else { "us-ascii" };
    w.part(
        &boundary,
        format_args!("text/plain; charset={charset}"),
        "Notification",
    )?;
    w.line(format_args!("This is the mail system at host {mta}."))?;
    w.line(format_args!(""))?;
    match report.kind {
        DsnKind::Failure => {
            w.line(format_args!(
                "Your message could not be delivered to the recipients below."
            ))?;
            w.line(format_args!(
                "It has been given up on; nothing more will be tried."
            ))?;
        }
        DsnKind::Delay { until_unix } => {
            w.line(format_args!(
                "Your message has not been delivered yet to the recipients below."
            ))?;
            w.line(format_args!(
                "This is only a warning; delivery will be retried until {}.",
                Rfc5322Date(until_unix)
            ))?;
            w.line(format_args!("You do not need to send it again."))?;
        }
    }
    w.line(format_args!(""))?;
    for r in report.recipients {
        w.line(format_args!("<{}>: {}", r.address, r.reason))?;
        if let (Some(host), Some(reply)) = (r.remote_mta, r.smtp_reply) {
            w.line(format_args!("    {host} said: {reply}"))?;
        }
    }
    w.line(format_args!(""))?;

    // Part 2: for machines (RFC 3464 §2; RFC 6533 for UTF-8 addresses).
    let (report_type, addr_type) = if utf8 {
        ("message/global-delivery-status", "utf-8")
    } else {
        ("message/delivery-status", "rfc822")
    };
    w.part(&boundary, format_args!("{report_type}"), "Delivery report")?;
    w.line(format_args!("Reporting-MTA: dns; {mta}"))?;
    w.line(format_args!("X-Mailbag-Queue-ID: {}", report.queue_id))?;
    w.line(format_args!(
        "Arrival-Date: {}",
        Rfc5322Date(report.arrival_unix)
    ))?;
    for r in report.recipients {
        let (c, s, d) = r.status;
        w.line(format_args!(""))?;
        w.line(format_args!("Final-Recipient: {addr_type}; {}", r.address))?;
        w.line(format_args!("Action: {action}"))?;
        w.line(format_args!("Status: {c}.{s}.{d}"))?;
        if let Some(host) = r.remote_mta {
            w.line(format_args!("Remote-MTA: dns; {host}"))?;
        }
        if let Some(reply) = r.smtp_reply {
            w.line(format_args!("Diagnostic-Code: smtp; {reply}"))?;
        }
        w.line(format_args!(
            "Last-Attempt-Date: {}",
            Rfc5322Date(r.last_attempt_unix)
        ))?;
        if let DsnKind::Delay { until_unix } = report.kind {
            w.line(format_args!(
                "Will-Retry-Until: {}",
                Rfc5322Date(until_unix)
            ))?;
        }
    }
    w.line(format_args!(""))?;

    // Part 3: the original's headers, bounded.
    w.part(
        &boundary,
        format_args!("text/rfc822-headers"),
        "Undelivered Message Headers",
    )?;
    copy_headers(original, &mut w, &boundary)?;
    w.line(format_args!(""))?;
    w.line(format_args!("--{boundary}--"))?;
    w.0.flush()?;
    Ok(Some(DsnEnvelope {
        sender: String::new(),
        recipient: sender.into(),
    }))
}

/// The MIME boundary: unique per report and made of characters no header line starts with.
struct Boundary(MessageId, u64);

impl fmt::Display for Boundary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "=_mailbag_{}_{}", self.0, self.1)
    }
}

/// Writes CRLF-terminated lines of at most [`LINE_MAX`] octets.
struct Lines<W>(W);

impl<W: Write> Lines<W> {
    fn line(&mut self, text: fmt::Arguments<'_>) -> io::Result<()> {
        let mut buf: heapless::String<LINE_MAX> = heapless::String::new();
        // A line that would be longer is cut (write_fmt stops at the capacity); every
        // value formatted here is bounded well below it, so this only guards.
        let _ = buf.write_fmt(text);
        self.raw(buf.as_bytes())
    }

    /// A MIME part's boundary line and header, up to the empty line before its content.
    fn part(
        &mut self,
        boundary: &Boundary,
        content_type: fmt::Arguments<'_>,
        description: &str,
    ) -> io::Result<()> {
        self.line(format_args!("--{boundary}"))?;
        self.line(format_args!("Content-Type: {content_type}"))?;
        self.line(format_args!("Content-Description: {description}"))?;
        self.line(format_args!(""))
    }

    fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(&bytes[..bytes.len().min(LINE_MAX)])?;
        self.0.write_all(b"\r\n")
    }
}

/// Copy the original's header section (up to its first empty line), at most
/// [`HEADERS_MAX`] octets of it, line by line.
fn copy_headers<R: Read, W: Write>(
    mut original: R,
    w: &mut Lines<W>,
    boundary: &Boundary,
) -> Result<(), DsnError> {
    let mut chunk = [0u8; READ_CHUNK];
    let mut line: heapless::Vec<u8, LINE_MAX> = heapless::Vec::new();
    let mut taken = 0usize;
    let mut mark: heapless::String<64> = heapless::String::new();
    let _ = write!(mark, "--{boundary}");
    let emit = |w: &mut Lines<W>, line: &[u8]| -> io::Result<()> {
        if line.starts_with(mark.as_bytes()) {
            // Indented, it is a folded continuation and can never close the part.
            w.0.write_all(b" ")?;
        }
        w.raw(line)
    };
    'read: while taken < HEADERS_MAX {
        let want = READ_CHUNK.min(HEADERS_MAX - taken);
        let n = match original.read(&mut chunk[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        taken += n;
        for &b in &chunk[..n] {
            match b {
                b'\n' => {
                    if line.is_empty() {
                        break 'read; // The empty line: end of the header section.
                    }
                    emit(w, &line)?;
                    line.clear();
                }
                // CR is dropped: line ends are rewritten as CRLF; one in the middle of a
                // line (damage) would be a bare CR.
                b'\r' => {}
                // An over-long line is cut at LINE_MAX; the rest of it is dropped.
                _ => {
                    let _ = line.push(b);
                }
            }
        }
    }
    // A header section cut by HEADERS_MAX (or an original without a body) may end mid-line.
    if !line.is_empty() {
        emit(w, &line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_795_554_000; // Tue, 24 Nov 2026 21:00:00 +0000

    fn rcpt<'a>(address: &'a str, reply: Option<&'a str>) -> DsnRecipient<'a> {
        DsnRecipient {
            address,
            status: (5, 1, 1),
            remote_mta: reply.map(|_| "mail.example.com"),
            smtp_reply: reply,
            reason: "user unknown",
            last_attempt_unix: T + 60,
        }
    }

    fn report<'a>(kind: DsnKind, recipients: &'a [DsnRecipient<'a>]) -> Report<'a> {
        Report {
            reporting_mta: "mx.example.net",
            queue_id: MessageId(0x0000_0002_0000_00AB),
            arrival_unix: T,
            now_unix: T + 120,
            kind,
            recipients,
        }
    }

    const ORIGINAL: &[u8] = b"From: Alice <alice@sender.example>\r\nTo: u@example.com\r\n\
        Subject: quarterly report\r\nX-Long: folded\r\n\tcontinuation\r\n\r\n\
        SECRET BODY LINE\r\n";

    fn dsn(sender: &str, r: &Report<'_>, original: &[u8]) -> (Option<DsnEnvelope>, String) {
        let mut out = Vec::new();
        let env = write_dsn(sender, r, original, &mut out).unwrap();
        (env, String::from_utf8(out).unwrap())
    }

    /// Every line CRLF-terminated, no bare CR or LF, none longer than 998 octets.
    fn assert_wire_form(text: &str) {
        assert!(text.ends_with("\r\n"));
        for line in text.split("\r\n") {
            assert!(!line.contains('\r') && !line.contains('\n'), "{line:?}");
            assert!(line.len() <= LINE_MAX, "{} octets", line.len());
        }
    }

    #[test]
    fn bounce_has_the_three_rfc_3464_parts_and_no_body() {
        let rcpts = [rcpt(
            "u@example.com",
            Some("550 5.1.1 <u@example.com>: user unknown"),
        )];
        let (env, text) = dsn(
            "alice@sender.example",
            &report(DsnKind::Failure, &rcpts),
            ORIGINAL,
        );
        assert_eq!(
            env,
            Some(DsnEnvelope {
                sender: String::new(),
                recipient: "alice@sender.example".into()
            })
        );
        assert_wire_form(&text);
        for want in [
            "To: <alice@sender.example>\r\n",
            "Content-Type: multipart/report; report-type=delivery-status;\r\n",
            "Reporting-MTA: dns; mx.example.net\r\n",
            "Arrival-Date: Tue, 24 Nov 2026 21:00:00 +0000\r\n",
            "Final-Recipient: rfc822; u@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n",
            "Remote-MTA: dns; mail.example.com\r\n",
            "Diagnostic-Code: smtp; 550 5.1.1 <u@example.com>: user unknown\r\n",
            "Last-Attempt-Date: Tue, 24 Nov 2026 21:01:00 +0000\r\n",
            "Content-Type: text/rfc822-headers\r\n",
            "Subject: quarterly report\r\n",
            "X-Long: folded\r\n\tcontinuation\r\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert!(!text.contains("SECRET BODY"), "the body is never included");
    }

    #[test]
    fn the_null_sender_never_gets_a_bounce() {
        let rcpts = [rcpt("u@example.com", None)];
        for sender in ["", "<>", "  "] {
            let mut out = Vec::new();
            let env = write_dsn(
                sender,
                &report(DsnKind::Failure, &rcpts),
                ORIGINAL,
                &mut out,
            );
            assert!(env.unwrap().is_none());
            assert!(out.is_empty(), "nothing written for {sender:?}");
        }
    }

    #[test]
    fn delay_warning_says_delayed_and_until_when() {
        let rcpts = [DsnRecipient {
            status: (4, 4, 1),
            reason: "connection refused",
            ..rcpt("u@example.com", None)
        }];
        let kind = DsnKind::Delay {
            until_unix: T + 7 * 86_400,
        };
        let (_, text) = dsn("alice@sender.example", &report(kind, &rcpts), ORIGINAL);
        assert_wire_form(&text);
        assert!(text.contains("Action: delayed\r\nStatus: 4.4.1\r\n"));
        assert!(
            text.contains("Will-Retry-Until: Tue, 1 Dec 2026 21:00:00 +0000\r\n"),
            "{text}"
        );
        assert!(
            !text.contains("Diagnostic-Code"),
            "no SMTP reply, no Diagnostic-Code"
        );
        assert!(text.contains("Subject: Delayed Mail"));
    }

    /// Reads at most `limit` bytes then fails: proves the DSN never reads the body.
    struct Tripwire<'a> {
        data: &'a [u8],
        pos: usize,
        limit: usize,
    }

    impl Read for Tripwire<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            assert!(self.pos < self.limit, "read past the headers");
            let n = buf.len().min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    #[test]
    fn hostile_originals_are_bounded_and_cannot_break_the_mime_structure() {
        let rcpts = [rcpt("u@example.com", None)];
        let r = report(DsnKind::Failure, &rcpts);
        let boundary = Boundary(r.queue_id, r.now_unix).to_string();
        let mut original = Vec::new();
        original.extend_from_slice(format!("X-Evil: a\r\n--{boundary}--\r\n").as_bytes());
        original.extend_from_slice(b"X-Bare: one\ntwo\rthree\r\n");
        original.extend_from_slice(format!("X-Huge: {}\r\n", "h".repeat(5000)).as_bytes());
        // Endless headers, never a blank line: only HEADERS_MAX is read.
        while original.len() < 10 * HEADERS_MAX {
            original.extend_from_slice(b"X-Filler: yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n");
        }
        let src = Tripwire {
            data: &original,
            pos: 0,
            limit: HEADERS_MAX,
        };
        let mut out = Vec::new();
        write_dsn("a@sender.example", &r, src, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_wire_form(&text);
        assert_eq!(text.matches(&format!("\r\n--{boundary}--\r\n")).count(), 1);
        assert!(text.contains("X-Bare: one\r\ntwothree\r\n"));
        let headers = text
            .split("Undelivered Message Headers\r\n\r\n")
            .nth(1)
            .unwrap();
        assert!(headers.len() <= HEADERS_MAX + 200, "{}", headers.len());
    }

    #[test]
    fn addresses_with_control_characters_are_refused() {
        let rcpts = [rcpt("u@example.com", None)];
        let r = report(DsnKind::Failure, &rcpts);
        let e = write_dsn("a@b\r\nBcc: x@y", &r, ORIGINAL, Vec::new());
        assert!(matches!(e, Err(DsnError::Address)));
        let bad = [rcpt("u@example.com\nX: y", None)];
        let e = write_dsn(
            "a@b.example",
            &report(DsnKind::Failure, &bad),
            ORIGINAL,
            Vec::new(),
        );
        assert!(matches!(e, Err(DsnError::Address)));
        let e = write_dsn(
            "a@b.example",
            &report(DsnKind::Failure, &[]),
            ORIGINAL,
            Vec::new(),
        );
        assert!(matches!(e, Err(DsnError::NoRecipients)));
    }

    /// A real MIME parser (Python's `email` package) must read the report as RFC 3464 says.
    #[test]
    fn python_email_parser_reads_the_report() {
        let rcpts = [
            rcpt(
                "u@example.com",
                Some("550 5.1.1 <u@example.com>: user unknown"),
            ),
            DsnRecipient {
                status: (5, 4, 7),
                reason: "message expired after 7 days",
                ..rcpt("v@example.com", None)
            },
        ];
        let (_, text) = dsn(
            "alice@sender.example",
            &report(DsnKind::Failure, &rcpts),
            ORIGINAL,
        );
        let script = r#"
import email, sys
from email import policy
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=policy.compat32)
assert m.get_content_type() == "multipart/report", m.get_content_type()
assert m.get_param("report-type") == "delivery-status"
parts = m.get_payload()
assert [p.get_content_type() for p in parts] == ["text/plain", "message/delivery-status", "text/rfc822-headers"], [p.get_content_type() for p in parts]
blocks = parts[1].get_payload()
per_msg, rcpts = blocks[0], blocks[1:]
assert per_msg["Reporting-MTA"] == "dns; mx.example.net"
print(len(rcpts))
for r in rcpts:
    print(r["Final-Recipient"], "|", r["Action"], "|", r["Status"], "|", r.get("Diagnostic-Code"))
orig = email.message_from_string(parts[2].get_payload())
print(orig["Subject"])
"#;
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("python3 (see .ci/deps/relay.apt)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "2\n\
             rfc822; u@example.com | failed | 5.1.1 | smtp; 550 5.1.1 <u@example.com>: user unknown\n\
             rfc822; v@example.com | failed | 5.4.7 | None\n\
             quarterly report\n"
        );
    }
}
