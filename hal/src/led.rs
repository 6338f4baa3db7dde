//! [`Led`]: one LED of the Linux LED class (`/sys/class/leds/NAME`), driven by writing its
//! `trigger` and `brightness` attributes (the kernel's Documentation/leds/leds-class.rst).
//!
//! - Off: trigger `none`, brightness `0`. On: trigger `default-on`. Blinking: trigger
//!   `timer`, then `delay_on` / `delay_off` in milliseconds (the kernel creates those two
//!   files when the timer trigger is selected).
//! - [`Led::at`] takes any directory laid out like the class (tests use a plain
//!   directory); [`Led::open`] the named LED under [`LEDS_DIR`].
//! - The triggers the kernel offers are read once at open (the `trigger` file lists them,
//!   the active one in brackets); a mode whose trigger is missing (no `ledtrig-timer`
//!   module, say) is refused with an error naming it, and the LED is left as it was.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Where the kernel's LED class lives.
pub const LEDS_DIR: &str = "/sys/class/leds";

/// What an LED shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LedMode {
    /// Dark.
    Off,
    /// Lit.
    On,
    /// Blinking (the kernel's timer trigger).
    Blink {
        /// Milliseconds lit.
        on_ms: u32,
        /// Milliseconds dark.
        off_ms: u32,
    },
}

/// One LED.
#[derive(Debug)]
pub struct Led {
    dir: PathBuf,
    triggers: Vec<String>,
}

impl Led {
    /// The LED `name` under [`LEDS_DIR`]; the name must be a single path component.
    pub fn open(name: &str) -> io::Result<Self> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("'{name}' is not an LED name"),
            ));
        }
        Self::at(Path::new(LEDS_DIR).join(name))
    }

    /// The LED whose attributes are in `dir`.
    pub fn at(dir: PathBuf) -> io::Result<Self> {
        let text = fs::read_to_string(dir.join("trigger"))
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        let triggers = text
            .split_whitespace()
            .map(|t| t.trim_matches(['[', ']']).to_owned())
            .collect();
        Ok(Self { dir, triggers })
    }

    /// Shows `mode`.
    pub fn set(&self, mode: LedMode) -> io::Result<()> {
        match mode {
            LedMode::Off => {
                self.trigger("none")?;
                self.write("brightness", "0")
            }
            LedMode::On => self.trigger("default-on"),
            LedMode::Blink { on_ms, off_ms } => {
                self.trigger("timer")?;
                self.write("delay_on", &on_ms.to_string())?;
                self.write("delay_off", &off_ms.to_string())
            }
        }
    }

    fn trigger(&self, name: &str) -> io::Result<()> {
        if !self.triggers.iter().any(|t| t == name) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{}: the kernel offers no '{name}' trigger (ledtrig-{name} not loaded?)",
                    self.dir.display()
                ),
            ));
        }
        self.write("trigger", name)
    }

    fn write(&self, attr: &str, value: &str) -> io::Result<()> {
        let path = self.dir.join(attr);
        fs::write(&path, value)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code
    use super::*;

    /// A directory like `/sys/class/leds/NAME` before anything was written.
    fn fake_led(name: &str, triggers: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mailbag-led-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("trigger"), triggers).unwrap();
        fs::write(dir.join("brightness"), "0\n").unwrap();
        fs::write(dir.join("max_brightness"), "255\n").unwrap();
        dir
    }

    fn read(dir: &Path, attr: &str) -> String {
        fs::read_to_string(dir.join(attr)).unwrap()
    }

    #[test]
    fn off_on_and_blink_write_the_class_attributes() {
        let dir = fake_led("a", "[none] rc-feedback timer default-on heartbeat\n");
        let led = Led::at(dir.clone()).unwrap();
        led.set(LedMode::On).unwrap();
        assert_eq!(read(&dir, "trigger"), "default-on");
        led.set(LedMode::Blink {
            on_ms: 500,
            off_ms: 250,
        })
        .unwrap();
        assert_eq!(
            (
                read(&dir, "trigger"),
                read(&dir, "delay_on"),
                read(&dir, "delay_off")
            ),
            ("timer".into(), "500".into(), "250".into())
        );
        led.set(LedMode::Off).unwrap();
        assert_eq!(
            (read(&dir, "trigger"), read(&dir, "brightness")),
            ("none".into(), "0".into())
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_missing_trigger_or_led_is_named() {
        let dir = fake_led("b", "[none] default-on\n");
        let led = Led::at(dir.clone()).unwrap();
        let e = led
            .set(LedMode::Blink {
                on_ms: 1,
                off_ms: 1,
            })
            .unwrap_err();
        assert!(e.to_string().contains("no 'timer' trigger"), "{e}");
        assert_eq!(
            read(&dir, "trigger"),
            "[none] default-on\n",
            "left as it was"
        );
        assert!(Led::open("../x").is_err());
        let e = Led::at(dir.join("nope")).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        fs::remove_dir_all(dir).unwrap();
    }
}
