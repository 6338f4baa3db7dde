//! What the LED shows (`monitor.led`): off while nothing is held, on while mail is held,
//! blinking while a next hop is down. The daemon sets it through `mailbag_hal::Led` only
//! when this answer changes.

use mailbag_hal::LedMode;

/// Blink half-period while a next hop is down (milliseconds).
pub const BLINK_MS: u32 = 500;

/// The LED's state for `held` messages and whether any next hop is down.
pub fn mode(held: u64, next_hop_down: bool) -> LedMode {
    if next_hop_down {
        LedMode::Blink {
            on_ms: BLINK_MS,
            off_ms: BLINK_MS,
        }
    } else if held > 0 {
        LedMode::On
    } else {
        LedMode::Off
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_on_blink() {
        assert_eq!(mode(0, false), LedMode::Off);
        assert_eq!(mode(3, false), LedMode::On);
        assert!(matches!(mode(0, true), LedMode::Blink { .. }));
        assert!(matches!(mode(3, true), LedMode::Blink { .. }));
    }
}
