//! Fuzzes the UCI reader: any text either fails with an error or gives a `Config`, never a
//! panic; and a `Config` read from UCI that validates writes back to UCI that reads back
//! equal (unvalidated ones may fail to write, e.g. sizes above i64::MAX, but not panic).
//!
//! Run: `cd firmware/fuzz-uci && cargo +nightly fuzz run --fuzz-dir . uci corpus/uci --
//! -dict=uci.dict -max_total_time=60`

#![no_main]

use libfuzzer_sys::fuzz_target;
use mailbag::config::{Config, Format};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = mailbag::config::uci::parse(&text);
    if let Ok(config) = Config::parse(&text, Format::Uci) {
        let valid = config.validate().errors.is_empty();
        let Ok(written) = config.to_uci() else {
            assert!(!valid, "a valid config failed to write");
            return;
        };
        let back = Config::parse(&written, Format::Uci).expect("written UCI reads back");
        assert_eq!(back, config, "round trip changed the config:\n{written}");
    }
});
