use super::*;

const ID: u16 = 0xbeef;
const MX: u16 = 15;
const A: u16 = 1;
const AAAA: u16 = 28;

/// An uncompressed name on the wire.
fn wire(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// A response being built: header, the question (its name at offset 12), answers.
struct Msg(Vec<u8>);

impl Msg {
    fn new(qname: &str, qtype: u16) -> Self {
        Self::with(ID, 0x81, 0x80, qname, qtype)
    }

    fn with(id: u16, flags: u8, rcode: u8, qname: &str, qtype: u16) -> Self {
        let mut m = id.to_be_bytes().to_vec();
        m.extend_from_slice(&[flags, rcode, 0, 1, 0, 0, 0, 0, 0, 0]);
        m.extend_from_slice(&wire(qname));
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        Msg(m)
    }

    /// Appends an answer; `owner` is raw wire bytes (may be a pointer).
    fn rr(mut self, owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) -> Self {
        self.0.extend_from_slice(owner);
        self.0.extend_from_slice(&rtype.to_be_bytes());
        self.0.extend_from_slice(&1u16.to_be_bytes());
        self.0.extend_from_slice(&ttl.to_be_bytes());
        self.0
            .extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        self.0.extend_from_slice(rdata);
        let an = u16::from_be_bytes([self.0[6], self.0[7]]) + 1;
        self.0[6..8].copy_from_slice(&an.to_be_bytes());
        self
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// A pointer to `offset`.
fn ptr(offset: usize) -> [u8; 2] {
    [0xc0 | (offset >> 8) as u8, offset as u8]
}

fn mx_rdata(pref: u16, exchange: &[u8]) -> Vec<u8> {
    let mut d = pref.to_be_bytes().to_vec();
    d.extend_from_slice(exchange);
    d
}

fn mx(list: &[(u16, &str)]) -> Records {
    Records::Mx(
        list.iter()
            .map(|(p, n)| MxRecord::new(*p, n).unwrap())
            .collect(),
    )
}

fn addrs(list: &[&str]) -> Records {
    Records::Addrs(list.iter().map(|a| a.parse().unwrap()).collect())
}

fn q(name: &str, qtype: QType) -> Query {
    Query::new(ID, name, qtype).unwrap()
}

#[test]
fn query_is_a_recursive_question_in_class_in() {
    let got = q("Mail.Example.COM.", QType::Mx).encode();
    let mut want = vec![0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    want.extend_from_slice(b"\x04mail\x07example\x03com\x00\x00\x0f\x00\x01");
    assert_eq!(&got[..], &want[..]);
    assert_eq!(
        q("x.lan", QType::Aaaa).encode()[13..],
        *b"x\x03lan\x00\x00\x1c\x00\x01"
    );
}

#[test]
fn names_that_cannot_be_asked_are_refused() {
    let long_label = format!("{}.lan", "a".repeat(64));
    let long_name = ["abcdefghi"; 26].join("."); // 259 bytes
    let cases: &[(&str, NameError)] = &[
        ("", NameError::EmptyLabel),
        (".", NameError::EmptyLabel),
        ("a..lan", NameError::EmptyLabel),
        (&long_label, NameError::LabelTooLong),
        (&long_name, NameError::TooLong),
        ("a b.lan", NameError::BadByte),
        ("bücher.lan", NameError::BadByte),
    ];
    for (name, want) in cases {
        assert_eq!(Query::new(1, name, QType::A), Err(*want), "{name:?}");
    }
    let max_label = format!("{}.lan", "a".repeat(63));
    assert!(Query::new(1, &max_label, QType::A).is_ok());
    let max_name = ["a".repeat(63).as_str(); 4]
        .join(".")
        .chars()
        .skip(2)
        .collect::<String>();
    assert_eq!(max_name.len(), 253, "255 bytes on the wire");
    assert!(Query::new(1, &max_name, QType::A).is_ok());
}

#[test]
fn mx_answer_with_compressed_names() {
    // Owner: pointer to the question (offset 12). Exchange: "mx1" + pointer to it.
    let m = Msg::new("office.test", MX).rr(
        &ptr(12),
        MX,
        300,
        &mx_rdata(10, &[&b"\x03mx1"[..], &ptr(12)].concat()),
    );
    let m = m.rr(
        &ptr(12),
        MX,
        120,
        &mx_rdata(20, &[&b"\x03MX2"[..], &ptr(12)].concat()),
    );
    let a = q("Office.Test", QType::Mx).parse(&m.0).unwrap();
    assert_eq!(
        a.records,
        mx(&[(10, "mx1.office.test"), (20, "mx2.office.test")])
    );
    assert_eq!(a.ttl, 120, "the lowest TTL");
    assert_eq!(a.alias, None);
}

#[test]
fn null_mx_and_no_records() {
    let m = Msg::new("null.test", MX).rr(&ptr(12), MX, 60, &mx_rdata(0, &[0]));
    let a = q("null.test", QType::Mx).parse(&m.0).unwrap();
    assert_eq!(a.records, mx(&[(0, ".")]));
    let empty = Msg::new("bare.test", MX);
    let a = q("bare.test", QType::Mx).parse(&empty.0).unwrap();
    assert_eq!((a.records, a.ttl, a.alias), (mx(&[]), 0, None));
}

#[test]
fn addresses_of_the_asked_family() {
    let m = Msg::new("h.test", A)
        .rr(&ptr(12), A, 60, &[192, 0, 2, 1])
        .rr(&ptr(12), A, 60, &[192, 0, 2, 2]);
    let a = q("h.test", QType::A).parse(&m.0).unwrap();
    assert_eq!(a.records, addrs(&["192.0.2.1", "192.0.2.2"]));
    let six: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let m = Msg::new("h.test", AAAA).rr(&ptr(12), AAAA, 60, &six.octets());
    let a = q("h.test", QType::Aaaa).parse(&m.0).unwrap();
    assert_eq!(a.records, addrs(&["2001:db8::1"]));
    let bad = Msg::new("h.test", A).rr(&ptr(12), A, 60, &[192, 0, 2]);
    assert_eq!(
        q("h.test", QType::A).parse(&bad.0),
        Err(ResponseError::Malformed)
    );
}

#[test]
fn cnames_are_followed_within_the_answer() {
    let m = Msg::new("www.test", A)
        .rr(&ptr(12), TYPE_CNAME, 300, &wire("a.test"))
        .rr(&wire("a.test"), TYPE_CNAME, 30, &wire("b.test"))
        .rr(&wire("c.test"), A, 60, &[198, 51, 100, 9]) // unrelated: ignored
        .rr(&wire("b.test"), A, 60, &[192, 0, 2, 7]);
    let a = q("www.test", QType::A).parse(&m.0).unwrap();
    assert_eq!(a.records, addrs(&["192.0.2.7"]));
    assert_eq!(a.ttl, 30);
    let dangling = Msg::new("www.test", MX).rr(&ptr(12), TYPE_CNAME, 300, &wire("mail.other"));
    let a = q("www.test", QType::Mx).parse(&dangling.0).unwrap();
    assert_eq!(a.records, mx(&[]));
    assert_eq!(a.alias.as_deref(), Some("mail.other"), "ask again there");
    let looped = Msg::new("a.test", A)
        .rr(&ptr(12), TYPE_CNAME, 300, &wire("b.test"))
        .rr(&wire("b.test"), TYPE_CNAME, 300, &wire("a.test"));
    let a = q("a.test", QType::A).parse(&looped.0).unwrap();
    assert_eq!(a.records, addrs(&[]), "a CNAME loop ends, empty");
}

#[test]
fn txt_strings_are_joined_and_cnames_read_as_names() {
    let m = Msg::new("_mta-sts.office.test", 16)
        .rr(&ptr(12), 16, 300, b"\x08v=STSv1;\x05 id=7")
        .rr(&ptr(12), 16, 300, b"\x00");
    let a = q("_mta-sts.office.test", QType::Txt).parse(&m.0).unwrap();
    assert_eq!(
        a.records,
        Records::Txt(vec!["v=STSv1; id=7".into(), String::new()])
    );
    let cut = Msg::new("t.test", 16).rr(&ptr(12), 16, 300, b"\x09short");
    assert_eq!(
        q("t.test", QType::Txt).parse(&cut.0),
        Err(ResponseError::Malformed)
    );
    let m = Msg::new("backup.test", TYPE_CNAME).rr(&ptr(12), TYPE_CNAME, 60, &wire("silo.test"));
    let a = q("backup.test", QType::Cname).parse(&m.0).unwrap();
    assert_eq!(
        a.records,
        Records::Names(vec![Name::try_from("silo.test").unwrap()])
    );
    let none = Msg::new("host.test", TYPE_CNAME);
    let a = q("host.test", QType::Cname).parse(&none.0).unwrap();
    assert_eq!(a.records, Records::Names(vec![]), "not an alias");
}

#[test]
fn rcodes_map_to_permanent_or_temporary() {
    let with = |rcode: u8| Msg::with(ID, 0x81, 0x80 | rcode, "x.test", MX).0;
    let parse = |m: &[u8]| q("x.test", QType::Mx).parse(m);
    assert_eq!(
        parse(&with(3)),
        Err(ResponseError::Failed(DnsError::NotFound))
    );
    for rcode in [1, 2, 4, 5, 9] {
        assert_eq!(
            parse(&with(rcode)),
            Err(ResponseError::Failed(DnsError::Temporary)),
            "rcode {rcode}"
        );
    }
    // REFUSED without the question is believed (it can only make us retry) …
    let mut refused = ID.to_be_bytes().to_vec();
    refused.extend_from_slice(&[0x81, 0x85, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        parse(&refused),
        Err(ResponseError::Failed(DnsError::Temporary))
    );
    // … NXDOMAIN without it is not (it would bounce mail).
    refused[3] = 0x83;
    assert_eq!(parse(&refused), Err(ResponseError::NotOurs));
    let tc = Msg::with(ID, 0x83, 0x80, "x.test", MX).0;
    assert_eq!(parse(&tc), Err(ResponseError::Truncated));
}

#[test]
fn answers_to_other_questions_are_not_ours() {
    let parse = |m: &[u8]| q("x.test", QType::Mx).parse(m);
    let cases = [
        Msg::with(ID ^ 1, 0x81, 0x80, "x.test", MX).0,
        Msg::with(ID, 0x01, 0x80, "x.test", MX).0, // QR=0: a query
        Msg::with(ID, 0x91, 0x80, "x.test", MX).0, // OPCODE 2
        Msg::with(ID, 0x81, 0x80, "y.test", MX).0,
        Msg::with(ID, 0x81, 0x80, "x.test", A).0,
        Msg::with(ID, 0x81, 0x80, "x.test", MX).0[..11].to_vec(),
        Vec::new(),
    ];
    for (i, m) in cases.iter().enumerate() {
        assert_eq!(parse(m), Err(ResponseError::NotOurs), "case {i}");
    }
}

#[test]
fn pointer_loops_and_out_of_bounds_are_malformed() {
    let parse = |m: &[u8]| q("x.test", QType::A).parse(m);
    let base = Msg::new("x.test", A);
    let at = base.len();
    let cases = [
        // owner points at itself
        Msg::new("x.test", A).rr(&ptr(at), A, 1, &[1, 2, 3, 4]).0,
        // owner points forward (into its own rdata)
        Msg::new("x.test", A)
            .rr(&ptr(at + 12), A, 1, &[1, 2, 3, 4])
            .0,
        // a label, then a pointer back to that label: a loop through a backward step
        Msg::new("x.test", A)
            .rr(&[&b"\x01x"[..], &ptr(at)].concat(), A, 1, &[1, 2, 3, 4])
            .0,
        // pointer past the end
        Msg::new("x.test", A).rr(&ptr(4000), A, 1, &[1, 2, 3, 4]).0,
        // extended label type 0x40
        Msg::new("x.test", A)
            .rr(&[0x41, b'x', 0], A, 1, &[1, 2, 3, 4])
            .0,
        // a label with a dot in it
        Msg::new("x.test", A)
            .rr(b"\x03x.y\x00", A, 1, &[1, 2, 3, 4])
            .0,
    ];
    for (i, m) in cases.iter().enumerate() {
        assert_eq!(parse(m), Err(ResponseError::Malformed), "case {i}");
    }
    // RDLENGTH beyond the end.
    let mut long = Msg::new("x.test", A).rr(&ptr(12), A, 1, &[1, 2, 3, 4]).0;
    let n = long.len();
    long[n - 6..n - 4].copy_from_slice(&9u16.to_be_bytes());
    assert_eq!(parse(&long), Err(ResponseError::Malformed));
    // Every cut of a good answer is an error, never a panic or a shorter answer.
    let good = Msg::new("x.test", MX)
        .rr(
            &ptr(12),
            MX,
            300,
            &mx_rdata(10, &[&b"\x03mx1"[..], &ptr(12)].concat()),
        )
        .0;
    assert!(q("x.test", QType::Mx).parse(&good).is_ok());
    for cut in 0..good.len() {
        assert!(
            q("x.test", QType::Mx).parse(&good[..cut]).is_err(),
            "cut {cut}"
        );
    }
}

#[test]
fn records_beyond_the_cap_are_dropped() {
    let mut m = Msg::new("many.test", A);
    for i in 0..40u8 {
        m = m.rr(&ptr(12), A, 60, &[10, 0, 0, i]);
    }
    let a = q("many.test", QType::A).parse(&m.0).unwrap();
    assert!(matches!(a.records, Records::Addrs(v) if v.len() == RECORDS_MAX));
}

#[test]
fn servers_from_config_and_resolv_conf() {
    let ok = |t: &str| parse_server(t).map(|a| a.to_string());
    assert_eq!(ok("192.0.2.53").as_deref(), Some("192.0.2.53:53"));
    assert_eq!(ok(" 127.0.0.1:5353 ").as_deref(), Some("127.0.0.1:5353"));
    assert_eq!(ok("::1").as_deref(), Some("[::1]:53"));
    assert_eq!(ok("[::1]:5353").as_deref(), Some("[::1]:5353"));
    for bad in ["dns.lan", "127.0.0.1:0", "::1:53x", ""] {
        assert_eq!(ok(bad), None, "{bad:?}");
    }
    let conf = "# OpenWrt\nsearch lan\nnameserver 127.0.0.1\nnameserver ::1\n\
                nameserver fe80::1%eth0\nnameserver 192.0.2.1\nnameserver 192.0.2.2\n";
    let got: Vec<String> = resolv_conf_servers(conf)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(got, ["127.0.0.1:53", "[::1]:53", "192.0.2.1:53"]);
    assert!(resolv_conf_servers("options ndots:1\n").is_empty());
}

/// SplitMix64, for reproducible noise.
fn rng(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[test]
fn random_and_mutated_bytes_never_panic() {
    let seeds = [
        Msg::new("office.test", MX)
            .rr(
                &ptr(12),
                MX,
                300,
                &mx_rdata(10, &[&b"\x03mx1"[..], &ptr(12)].concat()),
            )
            .rr(
                &ptr(12),
                TYPE_CNAME,
                300,
                &[&b"\x01a"[..], &ptr(12)].concat(),
            )
            .0,
        Msg::new("office.test", A)
            .rr(&ptr(12), TYPE_CNAME, 300, &wire("b.test"))
            .rr(&wire("b.test"), A, 60, &[192, 0, 2, 7])
            .0,
    ];
    let queries = [
        q("office.test", QType::Mx),
        q("office.test", QType::A),
        q("office.test", QType::Txt),
        q("office.test", QType::Cname),
    ];
    let mut state = 7u64;
    let mut parsed = 0;
    for round in 0..20_000 {
        let r = rng(&mut state);
        let mut m = if round % 4 == 0 {
            // Pure noise behind a matching header.
            let len = (r % 600) as usize;
            let mut m: Vec<u8> = (0..len).map(|_| rng(&mut state) as u8).collect();
            if len >= 4 {
                m[..4].copy_from_slice(&[0xbe, 0xef, 0x81, 0x80]);
            }
            m
        } else {
            seeds[(r % 2) as usize].clone()
        };
        for _ in 0..(r >> 8) % 4 + 1 {
            if m.is_empty() {
                break;
            }
            let x = rng(&mut state);
            let i = (x % m.len() as u64) as usize;
            match (x >> 32) % 3 {
                0 => m[i] = (x >> 40) as u8,
                1 => m[i] ^= 1 << ((x >> 40) % 8),
                _ => m.truncate(i),
            }
        }
        for query in &queries {
            if query.parse(&m).is_ok() {
                parsed += 1;
            }
        }
    }
    assert!(
        parsed > 1000,
        "mutations still reach the record parser ({parsed})"
    );
}

#[test]
fn txt_strings_are_joined_per_record() {
    // A DNS blocklist's reason (RFC 5782 §2.1), split over two character-strings.
    let m = Msg::new("2.0.0.127.bl.test", 16)
        .rr(&ptr(12), 16, 300, b"\x0aListed in \x07bl.test")
        .rr(&ptr(12), 16, 300, b"\x00");
    let a = q("2.0.0.127.bl.test", QType::Txt).parse(&m.0).unwrap();
    assert_eq!(
        a.records,
        Records::Txt(vec!["Listed in bl.test".into(), String::new()])
    );
    let cut = Msg::new("t.test", 16).rr(&ptr(12), 16, 300, b"\x09short");
    assert_eq!(
        q("t.test", QType::Txt).parse(&cut.0),
        Err(ResponseError::Malformed)
    );
}
