//! Fuzz the streaming MIME scanner as the inbound path and the admin page use it:
//! arbitrary bytes as a message, fed in two pieces split where byte 0 says. Beyond "no
//! panic": the result does not depend on the split, and a blocked name is one the block
//! list really blocks.
//!
//! Run: `cd firmware/fuzz && cargo +nightly fuzz run mime -- -max_total_time=300`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailbag::policy::content::{BlockList, BodyScan};

fuzz_target!(|data: &[u8]| {
    let [pick, msg @ ..] = data else { return };
    let block = BlockList::new(&["scr", "pif"]);
    let split = usize::from(*pick).min(msg.len());
    let mut a = BodyScan::new(block.clone());
    a.feed(&msg[..split]);
    a.feed(&msg[split..]);
    let a = a.finish();
    let mut b = BodyScan::new(block.clone());
    b.feed(msg);
    let b = b.finish();
    assert_eq!(a, b, "the split changed the result");
    if let Some(name) = &a.blocked {
        assert!(block.blocks(name), "{name:?}");
    }
});
