//! A stored [`Verdict`] applied at delivery, without rewriting the body on flash (the
//! way the Received header is written before the content): the host sends
//! [`Wrapping::prefix`], the stored body, then [`Wrapping::suffix`].
//!
//! - Spam scoring on: `X-Spam-Flag: YES` (when flagged), `X-Spam-Score`, `X-Spam-Status`
//!   go first ([`super::spam::spam_headers`]).
//! - A message accepted to be *repackaged* (clamd found a virus, `scan.infected =
//!   "repackage"`) becomes a new message from the postmaster whose subject and text name
//!   the virus, with the original attached as `application/octet-stream` so no mail client
//!   shows it inline. Its boundary carries the message id and the body's CRC-32, which
//!   the body cannot contain (it would have to hold its own checksum).

use std::fmt::Write as _;

use crate::smtp::received::Rfc5322Date;
use crate::spool::{MessageId, message::Verdict};

/// What goes around the stored body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wrapping {
    /// Sent before the body (CRLF-terminated lines).
    pub prefix: String,
    /// Sent after it.
    pub suffix: String,
}

impl Wrapping {
    /// Bytes added to the message.
    pub fn len(&self) -> u64 {
        (self.prefix.len() + self.suffix.len()) as u64
    }

    /// Nothing to add.
    pub fn is_empty(&self) -> bool {
        self.prefix.is_empty() && self.suffix.is_empty()
    }
}

/// The wrapping for a message with `verdict` (none: nothing).
pub fn wrapping(
    verdict: Option<&Verdict>,
    id: MessageId,
    body_crc: u32,
    hostname: &str,
    now_unix: u64,
) -> Wrapping {
    let Some(v) = verdict else {
        return Wrapping::default();
    };
    let mut prefix = super::spam::spam_headers(v.spam_score, v.spam_threshold, &v.spam_rules);
    if v.virus.is_empty() {
        return Wrapping {
            prefix,
            suffix: String::new(),
        };
    }
    let boundary = format!("=_mailbag-virus-{id}-{body_crc:08x}");
    let virus = v.virus.as_str();
    let _ = write!(
        prefix,
        "From: Mail Delivery System <postmaster@{hostname}>\r\n\
         Subject: [virus] message {id} contained {virus}\r\n\
         Date: {date}\r\n\
         Message-ID: <{id}.virus@{hostname}>\r\n\
         Auto-Submitted: auto-generated\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\
         \r\n\
         This is a MIME-formatted message.\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         \r\n\
         The message {id} for you contained the virus {virus}\r\n\
         (found by the virus scanner of {hostname}).\r\n\
         \r\n\
         It is attached, unchanged, as a file. Do not open it unless you know it is safe.\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: application/octet-stream; name=\"infected-message-{id}.eml\"\r\n\
         Content-Disposition: attachment; filename=\"infected-message-{id}.eml\"\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         \r\n",
        date = Rfc5322Date(now_unix),
    );
    Wrapping {
        prefix,
        suffix: format!("\r\n--{boundary}--\r\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(score: u16, threshold: u16, virus: &str) -> Verdict {
        Verdict {
            spam_score: score,
            spam_threshold: threshold,
            spam_rules: "HELO_IP_LITERAL".into(),
            virus: virus.into(),
        }
    }

    #[test]
    fn no_verdict_no_wrapping_and_spam_headers_first() {
        assert!(wrapping(None, MessageId(1), 0, "mx.test", 0).is_empty());
        let w = wrapping(Some(&verdict(3, 5, "")), MessageId(1), 0, "mx.test", 0);
        assert!(w.prefix.starts_with("X-Spam-Score: 3\r\n"));
        assert!(w.suffix.is_empty());
    }

    #[test]
    fn a_repackaged_message_names_the_virus_and_attaches_the_original() {
        let w = wrapping(
            Some(&verdict(0, 0, "Eicar-Test-Signature")),
            MessageId(0x2A),
            0xDEAD_BEEF,
            "mx.test",
            1_795_554_000,
        );
        let whole = format!("{}Received: x\r\n\r\nX5O!P%@AP\r\n{}", w.prefix, w.suffix);
        let mut names = Vec::new();
        struct V<'a>(&'a mut Vec<(String, Vec<String>)>);
        impl mailbag_mime::Visitor for V<'_> {
            fn part(&mut self, p: mailbag_mime::Part<'_>) {
                let names = p.head.names().iter().map(|n| n.to_string()).collect();
                self.0.push((p.head.mime.clone(), names));
            }
        }
        let mut s = mailbag_mime::Scanner::new(mailbag_mime::Options::default());
        s.feed(whole.as_bytes(), &mut V(&mut names));
        s.finish(&mut V(&mut names));
        assert_eq!(
            names,
            vec![
                ("text/plain".into(), vec![]),
                (
                    "application/octet-stream".into(),
                    vec!["infected-message-000000000000002A.eml".into()]
                )
            ]
        );
        assert!(w.prefix.contains(
            "Subject: [virus] message 000000000000002A contained Eicar-Test-Signature\r\n"
        ));
        assert!(
            w.prefix
                .contains("boundary=\"=_mailbag-virus-000000000000002A-deadbeef\"")
        );
        assert!(
            w.prefix
                .contains("Date: Tue, 24 Nov 2026 21:00:00 +0000\r\n")
        );
    }
}
