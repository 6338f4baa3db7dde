//! The start of a stored message, read for display: its header fields and Subject. Used by
//! the control socket's `message`/`queue` views and the admin page's queue.
//!
//! Bounded: at most the bytes asked for are read ([`HEAD_MAX`] for a subject); fields are
//! unfolded, not decoded (RFC 2047 words stay as written).

use crate::spool::{SpoolError, SpoolRead};

/// Bytes of a body read to find its Subject header.
pub const HEAD_MAX: usize = 4096;
/// Longest subject kept for display (bytes).
pub const SUBJECT_MAX: usize = 998;

/// The raw (unfolded, not decoded) Subject header from the start of the body.
pub fn read_subject(
    spool: &impl SpoolRead,
    id: crate::spool::MessageId,
) -> Result<String, SpoolError> {
    Ok(subject_of(&read_head(spool, id, HEAD_MAX)?))
}

/// The first `max` bytes of a message (fewer if it is shorter).
pub fn read_head(
    spool: &impl SpoolRead,
    id: crate::spool::MessageId,
    max: usize,
) -> Result<Vec<u8>, SpoolError> {
    let mut head = vec![0u8; max];
    let mut n = 0;
    while n < max {
        let got = spool.read_body(id, n as u64, &mut head[n..])?;
        if got == 0 {
            break;
        }
        n += got;
    }
    head.truncate(n);
    Ok(head)
}

/// The header fields of a header block (up to the first empty line, or all of `head`),
/// unfolded, lossy UTF-8, at most `max` of them; and where the body starts in `head`.
pub fn headers_of(head: &[u8], max: usize) -> (Vec<(String, String)>, usize) {
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut at = 0;
    while at < head.len() {
        let end = head[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(head.len(), |i| at + i + 1);
        let raw = &head[at..end];
        at = end;
        let line = String::from_utf8_lossy(raw);
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return (fields, at);
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim_start());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            if fields.len() == max {
                continue;
            }
            fields.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    (fields, at)
}

/// Finds `Subject:` in a header block (stops at the first empty line), unfolding
/// continuation lines; lossy UTF-8, cut to [`SUBJECT_MAX`].
pub fn subject_of(head: &[u8]) -> String {
    let text = String::from_utf8_lossy(head);
    let mut found: Option<String> = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let folded = line.starts_with([' ', '\t']);
        match (&mut found, folded) {
            (Some(s), true) => s.push_str(line),
            (Some(_), false) => break,
            (None, false) => {
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("subject") {
                        found = Some(value.trim_start().to_owned());
                    }
                }
            }
            (None, true) => {}
        }
    }
    let mut s = found.unwrap_or_default();
    if s.len() > SUBJECT_MAX {
        let mut cut = SUBJECT_MAX;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::{headers_of, subject_of};

    #[test]
    fn finds_the_subject_unfolded_and_stops_at_the_body() {
        let head = b"From: a@b\r\nSubject: hello\r\n  world\r\nTo: c@d\r\n\r\nSubject: body\r\n";
        assert_eq!(subject_of(head), "hello  world");
        assert_eq!(subject_of(b"From: a@b\r\n\r\nSubject: no\r\n"), "");
        assert_eq!(subject_of(b"subject: <b>x</b>\n\n"), "<b>x</b>");
    }

    #[test]
    fn header_fields_unfolded_and_the_body_start() {
        let msg = b"From: a@b\r\nSubject: one\r\n two\r\nX: 1\r\n\r\nbody\r\n";
        let (fields, body) = headers_of(msg, 10);
        assert_eq!(
            fields,
            vec![
                ("From".into(), "a@b".into()),
                ("Subject".into(), "one two".into()),
                ("X".into(), "1".into())
            ]
        );
        assert_eq!(&msg[body..], b"body\r\n");
        assert_eq!(headers_of(msg, 1).0.len(), 1);
    }
}
