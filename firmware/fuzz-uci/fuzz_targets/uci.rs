//! Fuzzes the UCI reader: any text either fails with an error or gives a `Config`, never a
//! panic; and a `Config` read from UCI writes back to UCI that reads back equal.
//!
//! Run: `cd firmware/fuzz-uci && cargo +nightly fuzz run uci -- -max_total_time=60`

#![no_main]

use libfuzzer_sys::fuzz_target;
use mailbag::config::{Config, Format};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = mailbag::config::uci::parse(&text);
    if let Ok(config) = Config::parse(&text, Format::Uci) {
        let _ = config.validate();
        let written = config.to_uci().expect("every model value is writable as UCI");
        let back = Config::parse(&written, Format::Uci).expect("written UCI reads back");
        assert_eq!(back, config, "round trip changed the config:\n{written}");
    }
});
