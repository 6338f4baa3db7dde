use super::*;

/// Everything a scan reported, owned.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    headers: Vec<(usize, String, String)>,
    parts: Vec<(usize, String, Vec<String>)>,
    content: Vec<u8>,
}

impl Visitor for Seen {
    fn header(&mut self, depth: usize, name: &str, value: &str) {
        self.headers.push((depth, name.into(), value.into()));
    }
    fn part(&mut self, part: Part<'_>) {
        let names = part.head.names().iter().map(|n| n.to_string()).collect();
        self.parts.push((part.depth, part.head.mime.clone(), names));
    }
    fn content(&mut self, bytes: &[u8]) {
        self.content.extend_from_slice(bytes);
    }
}

fn scan_in(msg: &[u8], chunk: usize, opts: Options) -> (Seen, bool, bool) {
    let mut s = Scanner::new(opts);
    let mut seen = Seen::default();
    for piece in msg.chunks(chunk.max(1)) {
        s.feed(piece, &mut seen);
    }
    s.finish(&mut seen);
    (seen, s.truncated(), s.too_deep())
}

const ALL: Options = Options {
    descend_messages: true,
    content: true,
};

const NESTED: &str = "From: a@b.example\r\nSubject: nested\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\npreamble --outer not a boundary\r\n\
--outer\r\nContent-Type: text/plain\r\n\r\nhello\r\n\
--outer\r\nContent-Type: multipart/related;\r\n\tboundary=inner\r\n\r\n\
--inner\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment;\r\n\
\x20filename*0*=utf-8''%73%63%72%65%65%6E; filename*1=\".scr\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
TVo=\r\n--inner--\r\n--outer\r\nContent-Type: application/pdf; name=report.pdf\r\n\r\n%PDF\r\n\
--outer--\r\nepilogue\r\n";

#[test]
fn nested_multiparts_report_every_leaf_with_decoded_names() {
    let (seen, truncated, deep) = scan_in(NESTED.as_bytes(), usize::MAX, ALL);
    assert!(!truncated && !deep);
    assert_eq!(
        seen.parts,
        vec![
            (1, "text/plain".into(), vec![]),
            (
                2,
                "application/octet-stream".into(),
                vec!["screen.scr".into()]
            ),
            (1, "application/pdf".into(), vec!["report.pdf".into()]),
        ]
    );
    assert_eq!(seen.content, b"hello\nMZ%PDF\n");
    assert_eq!(seen.headers[1], (0, "Subject".into(), "nested".into()));
    assert!(seen.headers.contains(&(
        1,
        "Content-Type".into(),
        "multipart/related; boundary=inner".into()
    )));
}

#[test]
fn any_split_gives_the_same_result() {
    let whole = scan_in(NESTED.as_bytes(), usize::MAX, ALL);
    for chunk in [1, 2, 3, 7, 64] {
        assert_eq!(
            scan_in(NESTED.as_bytes(), chunk, ALL),
            whole,
            "chunk {chunk}"
        );
    }
}

#[test]
fn structure_only_scans_skip_content() {
    let opts = Options {
        descend_messages: false,
        content: false,
    };
    let (seen, ..) = scan_in(NESTED.as_bytes(), 5, opts);
    assert_eq!(seen.parts.len(), 3);
    assert!(seen.content.is_empty());
}

#[test]
fn nesting_past_the_limit_is_flagged_and_not_followed() {
    let mut m = String::new();
    for i in 0..DEPTH_MAX + 2 {
        m.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"
        ));
    }
    m.push_str("Content-Disposition: attachment; filename=deep.scr\r\n\r\nx\r\n");
    let (seen, _, deep) = scan_in(m.as_bytes(), usize::MAX, ALL);
    assert!(deep);
    assert!(
        seen.parts.iter().all(|p| p.2.is_empty()),
        "{:?}",
        seen.parts
    );
    let mut ok = String::new();
    for i in 0..DEPTH_MAX {
        ok.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"
        ));
    }
    ok.push_str("Content-Disposition: attachment; filename=deep.scr\r\n\r\nx\r\n");
    let (seen, _, deep) = scan_in(ok.as_bytes(), usize::MAX, ALL);
    assert!(!deep);
    assert_eq!(seen.parts[0].2, ["deep.scr"]);
}

#[test]
fn forwarded_messages_are_scanned_inside() {
    let m = "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n\
Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\
Content-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n\
Content-Type: application/x-msdownload; name=\"=?utf-8?Q?setup=2Epif?=\"\r\n\r\nMZ\r\n--i--\r\n--o--\r\n";
    let (seen, ..) = scan_in(m.as_bytes(), usize::MAX, ALL);
    assert_eq!(seen.parts[0].1, "message/rfc822");
    assert_eq!(
        seen.parts[1],
        (
            2,
            "application/x-msdownload".into(),
            vec!["setup.pif".into()]
        )
    );
    assert!(
        seen.headers
            .contains(&(2, "Subject".into(), "inner".into()))
    );
    let flat = Options {
        descend_messages: false,
        content: false,
    };
    assert_eq!(scan_in(m.as_bytes(), usize::MAX, flat).0.parts.len(), 1);
}

#[test]
fn long_headers_are_cut_and_long_lines_do_not_fake_boundaries() {
    let mut m = format!("X-Long: {}\r\n", "a".repeat(HEADER_MAX * 2));
    m.push_str("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n");
    // A body line longer than LINE_MAX whose later piece starts with the boundary.
    m.push_str(&"x".repeat(LINE_MAX - 1));
    m.push_str("--b--\r\n--b\r\nContent-Disposition: attachment; filename=second.pdf\r\n\r\ny\r\n--b--\r\n");
    let (seen, truncated, _) = scan_in(m.as_bytes(), usize::MAX, ALL);
    assert!(truncated);
    assert!(seen.headers[0].2.len() < HEADER_MAX);
    let names: Vec<_> = seen.parts.iter().map(|p| p.2.clone()).collect();
    assert_eq!(names, vec![vec![], vec!["second.pdf".to_string()]]);
}

#[test]
fn random_fragment_soup_never_panics() {
    const PIECES: [&str; 15] = [
        "Content-Type: multipart/mixed; boundary=a\r\n",
        "Content-Type: multipart/alternative; boundary=\"b\"\r\n",
        "Content-Type: message/rfc822\r\n",
        "Content-Transfer-Encoding: base64\r\n",
        "Content-Transfer-Encoding: quoted-printable\r\n",
        "Content-Disposition: attachment; filename*0*=x''%ZZ; filename*9=\"\r\n",
        "\r\n",
        "--a\r\n",
        "--b\r\n",
        "--a--\r\n",
        "QUJD=\r\n",
        "=E2=82=\r\n",
        " folded\r\n",
        "Subject: =?utf-8?B?w6k=?=\r\n",
        "\u{0}\u{ff}==??=\n",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..2000 {
        let mut msg = Vec::new();
        for _ in 0..(seed % 80) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            msg.extend_from_slice(PIECES[(seed % PIECES.len() as u64) as usize].as_bytes());
        }
        let (seen, ..) = scan_in(&msg, (seed % 13) as usize + 1, ALL);
        assert!(seen.content.len() <= msg.len() * 2);
    }
}
