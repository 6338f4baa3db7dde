//! Fuzz the DNS response parser: arbitrary bytes as the answer to an MX, A or AAAA query.
//! Beyond "no panic": an accepted answer has records of the asked kind only, at most
//! `RECORDS_MAX` of them, and every MX exchange is a name the query side would accept.
//!
//! Input layout: byte 0 picks the question; the rest is the response. Bytes 1..=2 are
//! overwritten with the query id half of the time, so the fuzzer reaches past the header.
//!
//! Run: `cd firmware/fuzz && cargo +nightly fuzz run dns -- -max_total_time=300`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailbag::relay::dns::{QType, Query, RECORDS_MAX, Records};

fuzz_target!(|data: &[u8]| {
    let [pick, msg @ ..] = data else { return };
    let qtype = match pick % 3 {
        0 => QType::Mx,
        1 => QType::A,
        _ => QType::Aaaa,
    };
    let name = if pick & 4 == 0 { "office.test" } else { "a.b.c" };
    let query = Query::new(0x4d42, name, qtype).expect("valid name");
    let mut msg = msg.to_vec();
    if pick & 8 == 0 && msg.len() >= 2 {
        msg[..2].copy_from_slice(&0x4d42u16.to_be_bytes());
    }
    if let Ok(answer) = query.parse(&msg) {
        match (&answer.records, qtype) {
            (Records::Mx(list), QType::Mx) => {
                assert!(list.len() <= RECORDS_MAX);
                for mx in list {
                    let e = mx.exchange.as_str();
                    assert!(e == "." || Query::new(1, e, QType::A).is_ok(), "exchange {e:?}");
                }
            }
            (Records::Addrs(list), QType::A | QType::Aaaa) => {
                assert!(list.len() <= RECORDS_MAX);
                assert!(list.iter().all(|a| a.is_ipv4() == (qtype == QType::A)));
            }
            _ => panic!("records of another type"),
        }
    }
});
