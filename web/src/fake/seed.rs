//! Demo content for the fake backend: a few hand-made messages (hostile subjects, an HTML
//! mail with attachments, a binary-junk subject) and any number of generated ones.

use super::FakeMessage;
use crate::backend::MessageId;

/// Hostile values the browser test looks for, rendered as text.
pub const HOSTILE_SUBJECT: &str = "<script>window.__pwned=1</script>Invoice";
/// A subject that tries to break out of an attribute.
pub const HOSTILE_ATTR: &str = "\"><img src=x onerror=\"window.__pwned=2\">";
/// The id of the HTML mail with attachments.
pub const HTML_MAIL_ID: &str = "m-html-0001";

fn id(s: &str) -> MessageId {
    // Seed ids are literals spelled within MessageId's alphabet.
    MessageId::parse(s).unwrap_or_else(|| unreachable!("bad seed id {s}"))
}

fn plain(from: &str, to: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{}@demo>\r\n\r\n{body}\r\n",
        subject.len()
    )
    .into_bytes()
}

/// The hand-made messages.
pub fn special(now: u64) -> Vec<FakeMessage> {
    let html = format!(
        "From: \"Billing\" <billing@vendor.example>\r\nTo: alice@example.com\r\nSubject: =?utf-8?Q?Your_statement_=E2=82=AC?=\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><h1>Statement</h1><script>window.__pwned=3</script>\
<img src=x onerror=\"window.__pwned=4\"><p>Total: 42 EUR</p></body></html>\r\n--b1\r\n\
Content-Type: application/pdf; name=\"statement.pdf\"\r\nContent-Disposition: attachment; filename=\"statement.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1\r\nContent-Type: image/png\r\n\
Content-Disposition: attachment; filename=\"<img src=x onerror=alert(1)>.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
iVBORw0KGgo=\r\n--b1--\r\n",
        "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoK".repeat(4)
    );
    let junk_subject: String = "\u{0}\u{7}\u{1b}[31m"
        .chars()
        .chain(std::iter::repeat_n('\u{202e}', 3))
        .chain("A".repeat(600).chars())
        .collect();
    vec![
        FakeMessage::new(
            id("m-hostile-0001"),
            now - 7200,
            "eve@evil.example",
            &["alice@example.com"],
            HOSTILE_SUBJECT,
            3,
            Some("421 4.3.2 primary down"),
        )
        .with_raw(plain(
            "eve@evil.example",
            "alice@example.com",
            HOSTILE_SUBJECT,
            "Please open <script>alert(1)</script>",
        )),
        FakeMessage::new(
            id("m-hostile-0002"),
            now - 5400,
            "\"><svg onload=alert(1)>@evil.example",
            &["bob@example.com"],
            HOSTILE_ATTR,
            2,
            Some("connection refused"),
        )
        .with_raw(plain(
            "x@evil.example",
            "bob@example.com",
            HOSTILE_ATTR,
            "attr break",
        )),
        FakeMessage::new(
            id(HTML_MAIL_ID),
            now - 3600,
            "billing@vendor.example",
            &["alice@example.com", "finance@example.org"],
            "=?utf-8?Q?Your_statement_=E2=82=AC?=",
            1,
            Some("timeout after DATA"),
        )
        .with_raw(html.into_bytes()),
        FakeMessage::new(
            id("m-junk-0001"),
            now - 1800,
            "noise@example.net",
            &["carol@example.org"],
            &junk_subject,
            0,
            None,
        ),
    ]
}

/// `n` generated messages spread over a few domains and ages.
pub fn generated(now: u64, n: usize) -> Vec<FakeMessage> {
    const DOMAINS: [&str; 3] = ["example.com", "example.org", "branch.example.net"];
    const SENDERS: [&str; 4] = [
        "news@shop.example",
        "ceo@partner.example",
        "noreply@bank.example",
        "",
    ];
    (0..n)
        .map(|i| {
            let rcpt = format!("user{}@{}", i % 50, DOMAINS[i % DOMAINS.len()]);
            let mut m = FakeMessage::new(
                id(&format!("m{:06}", i + 1)),
                now.saturating_sub(60 + (i as u64 * 37) % 86_400),
                SENDERS[i % SENDERS.len()],
                &[rcpt.as_str()],
                &format!("Report #{} for {}", i + 1, DOMAINS[i % DOMAINS.len()]),
                (i % 7) as u32,
                (i % 3 == 0).then_some("451 4.4.1 next hop not responding"),
            );
            m.size = 800 + (i as u64 * 7919) % 4000;
            m
        })
        .collect()
}
