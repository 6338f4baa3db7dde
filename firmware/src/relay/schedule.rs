//! The retry schedule: when to try a held message again, when to warn, when to give up.
//!
//! # Contract
//!
//! - `relay.retry` is parsed once, at start-up, by [`RetrySchedule::parse`]; a bad string is
//!   a [`ScheduleError`] naming the part that is wrong. The grammar is a comma-separated
//!   list of *phases* `<interval> for <span>` ending in the open-ended `[then] <interval>`:
//!   `"10m"`, `"15m for 2h, then 30m"`, `"5m for 30m, 15m for 2h, then 1h"`. Phases are
//!   consecutive: in the last example the message is tried every 5 minutes during its first
//!   30 minutes, every 15 minutes for the 2 hours after that, then hourly.
//! - The interval that applies is chosen by the message's *age* when an attempt ends, not by
//!   the attempt count, so a late or extra attempt (ETRN, a returning next hop) never shifts
//!   the schedule's phases.
//! - [`RetryPolicy::next_attempt`] never returns a time after the expiry: the last attempt
//!   happens exactly at `first_seen + lifetime`, and after it the answer is `None` (bounce).
//! - Pure arithmetic on `embassy_time` values; saturating, never panics, no allocation after
//!   parsing (at most [`PHASES_MAX`] phases).

use core::fmt;

use embassy_time::{Duration, Instant};

use super::config::RelayConfig;

/// Most `<interval> for <span>` phases in one schedule.
pub const PHASES_MAX: usize = 8;
/// Shortest retry interval: retrying faster only hammers a next hop that is down.
pub const MIN_INTERVAL: Duration = Duration::from_secs(60);
/// Default message lifetime in days (Postfix's `maximal_queue_lifetime` is 5, RFC 5321
/// §4.5.4.1 asks for at least 4–5 days).
pub const DEFAULT_LIFETIME_DAYS: u32 = 7;
/// Longest lifetime in days.
pub const LIFETIME_DAYS_MAX: u32 = 30;
/// Default delay-warning age in hours (0 = no warning).
pub const DEFAULT_DELAY_WARNING_HOURS: u32 = 4;

const SECS_PER_DAY: u64 = 24 * 60 * 60;

/// Why a `relay.retry` string (or the lifetime next to it) was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScheduleError {
    /// Nothing but blanks.
    Empty,
    /// `part` is not a duration such as `15m`, `2h`, `1d` or `90s`.
    Duration {
        /// The offending text.
        part: String,
    },
    /// An interval shorter than [`MIN_INTERVAL`].
    TooShort {
        /// The offending text.
        part: String,
    },
    /// A phase other than the last lacks `for <span>`, or the last one has it.
    Phase {
        /// The offending phase.
        part: String,
    },
    /// More than [`PHASES_MAX`] phases.
    TooManyPhases,
    /// `lifetime-days` outside `1..=LIFETIME_DAYS_MAX`.
    Lifetime(u32),
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty retry schedule; e.g. '15m for 2h, then 30m'"),
            Self::Duration { part } => write!(
                f,
                "'{part}' is not a duration (a number and s, m, h or d, e.g. '15m')"
            ),
            Self::TooShort { part } => write!(
                f,
                "'{part}' is shorter than the minimum retry interval of {}s",
                MIN_INTERVAL.as_secs()
            ),
            Self::Phase { part } => write!(
                f,
                "'{part}': every phase but the last needs '<interval> for <span>', and the \
                 last is 'then <interval>'"
            ),
            Self::TooManyPhases => write!(f, "more than {PHASES_MAX} retry phases"),
            Self::Lifetime(d) => {
                write!(f, "lifetime of {d} days is outside 1..={LIFETIME_DAYS_MAX}")
            }
        }
    }
}

impl std::error::Error for ScheduleError {}

/// One `<interval> for <span>` phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Phase {
    interval: Duration,
    /// Message age at which this phase ends (the spans summed up to here).
    ends_at_age: Duration,
}

/// A parsed `relay.retry` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule {
    phases: heapless::Vec<Phase, PHASES_MAX>,
    /// Interval after the last phase, forever.
    then: Duration,
}

impl RetrySchedule {
    /// Parse `"15m for 2h, then 30m"` and friends (see the module docs).
    pub fn parse(text: &str) -> Result<Self, ScheduleError> {
        if text.trim().is_empty() {
            return Err(ScheduleError::Empty);
        }
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        let (last, phases_text) = parts.split_last().ok_or(ScheduleError::Empty)?;
        let mut phases = heapless::Vec::new();
        let mut age = Duration::from_secs(0);
        for part in phases_text {
            let phase = || ScheduleError::Phase {
                part: (*part).into(),
            };
            let (interval, span) = split_word(part, "for").ok_or_else(phase)?;
            let interval = parse_interval(&interval)?;
            let span = parse_duration(&span)?;
            age = age.checked_add(span).unwrap_or(Duration::MAX);
            phases
                .push(Phase {
                    interval,
                    ends_at_age: age,
                })
                .map_err(|_| ScheduleError::TooManyPhases)?;
        }
        let then_text = strip_word(last, "then").unwrap_or(last);
        if split_word(then_text, "for").is_some() {
            return Err(ScheduleError::Phase {
                part: (*last).into(),
            });
        }
        let then = parse_interval(then_text)?;
        Ok(Self { phases, then })
    }

    /// The interval to wait after an attempt that ended when the message was `age` old.
    pub fn interval_at(&self, age: Duration) -> Duration {
        self.phases
            .iter()
            .find(|p| age < p.ends_at_age)
            .map_or(self.then, |p| p.interval)
    }
}

/// The whole retry policy of `[relay]`: schedule, lifetime, delay warning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// When to retry.
    pub schedule: RetrySchedule,
    /// Age at which undeliverable mail is bounced.
    pub lifetime: Duration,
    /// Age at which the sender is told the message is delayed (`None`: never).
    pub delay_warning: Option<Duration>,
}

impl RetryPolicy {
    /// Check `[relay]` once at start-up.
    pub fn from_config(cfg: &RelayConfig) -> Result<Self, ScheduleError> {
        if !(1..=LIFETIME_DAYS_MAX).contains(&cfg.lifetime_days) {
            return Err(ScheduleError::Lifetime(cfg.lifetime_days));
        }
        let lifetime = Duration::from_secs(u64::from(cfg.lifetime_days) * SECS_PER_DAY);
        let delay_warning = match cfg.delay_warning_hours {
            0 => None,
            h => Some(Duration::from_secs(u64::from(h) * 3600)).filter(|d| *d < lifetime),
        };
        Ok(Self {
            schedule: RetrySchedule::parse(&cfg.retry)?,
            lifetime,
            delay_warning,
        })
    }

    /// When the message first seen at `first_seen` is bounced.
    pub fn expiry(&self, first_seen: Instant) -> Instant {
        first_seen.saturating_add(self.lifetime)
    }

    /// When to send the delay warning, if ever.
    pub fn warn_at(&self, first_seen: Instant) -> Option<Instant> {
        self.delay_warning.map(|d| first_seen.saturating_add(d))
    }

    /// When to try next, after `attempts` attempts of which the last ended at `now`.
    /// `attempts == 0`: at once. `None`: the lifetime is over — bounce, do not retry.
    pub fn next_attempt(
        &self,
        attempts: u32,
        first_seen: Instant,
        now: Instant,
    ) -> Option<Instant> {
        let expiry = self.expiry(first_seen);
        if now >= expiry {
            return None;
        }
        if attempts == 0 {
            return Some(now.max(first_seen));
        }
        let age = now.saturating_duration_since(first_seen);
        Some(
            now.saturating_add(self.schedule.interval_at(age))
                .min(expiry),
        )
    }
}

/// `"<a> <word> <b>"` → `(a, b)`, the word matched case-insensitively as a whole word;
/// blanks inside `a` and `b` are normalised to one space.
fn split_word(text: &str, word: &str) -> Option<(String, String)> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let pos = words.iter().position(|w| w.eq_ignore_ascii_case(word))?;
    let (before, after) = (words[..pos].join(" "), words[pos + 1..].join(" "));
    (!before.is_empty() && !after.is_empty()).then_some((before, after))
}

fn strip_word<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let (head, rest) = text.split_once(char::is_whitespace)?;
    head.eq_ignore_ascii_case(word).then(|| rest.trim())
}

fn parse_interval(text: &str) -> Result<Duration, ScheduleError> {
    let d = parse_duration(text)?;
    if d < MIN_INTERVAL {
        return Err(ScheduleError::TooShort { part: text.into() });
    }
    Ok(d)
}

/// `15m`, `2 h`, `1d`, `90s`: one number and one unit.
fn parse_duration(text: &str) -> Result<Duration, ScheduleError> {
    let bad = || ScheduleError::Duration { part: text.into() };
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let unit_secs = match unit.trim().to_ascii_lowercase().as_str() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => SECS_PER_DAY,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(unit_secs).ok_or_else(bad)?;
    if secs == 0 || secs > u64::from(LIFETIME_DAYS_MAX) * SECS_PER_DAY {
        return Err(bad());
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60;

    fn policy(retry: &str, days: u32, warn_hours: u32) -> RetryPolicy {
        RetryPolicy::from_config(&RelayConfig {
            retry: retry.into(),
            lifetime_days: days,
            delay_warning_hours: warn_hours,
            ..RelayConfig::default()
        })
        .unwrap()
    }

    /// Every attempt a message gets, as minutes of age, driving `next_attempt` like the
    /// scheduler will: attempt, then ask. Bounded by the lifetime (no sleeping).
    fn attempts(p: &RetryPolicy) -> Vec<u64> {
        let first = Instant::from_secs(1_000);
        let mut at = Vec::new();
        let mut n = 0;
        while let Some(t) = p.next_attempt(
            n,
            first,
            at.last()
                .map_or(first, |&m| first + Duration::from_secs(m * MIN)),
        ) {
            at.push((t - first).as_secs() / MIN);
            n += 1;
            assert!(n < 100_000, "runaway schedule");
        }
        at
    }

    #[test]
    fn default_schedule_over_thirty_days_has_exact_count_and_spacing() {
        let p = policy("15m for 2h, then 30m", 30, 4);
        let at = attempts(&p);
        // 0,15,…,105 (8 attempts) in the first two hours, then every 30 minutes up to and
        // including the 30-day mark: (43200 - 120) / 30 + 1 = 1437.
        assert_eq!(at.len(), 8 + 1437);
        assert_eq!(&at[..10], &[0, 15, 30, 45, 60, 75, 90, 105, 120, 150]);
        assert!(at.windows(2).take(8).all(|w| w[1] - w[0] == 15));
        assert!(at.windows(2).skip(8).all(|w| w[1] - w[0] == 30));
        assert_eq!(at.last(), Some(&(30 * 24 * 60)), "last try at the expiry");
    }

    #[test]
    fn three_phase_schedule_and_a_plain_interval() {
        let p = policy("5m for 30m, 15m for 2h, then 1h", 1, 0);
        let at = attempts(&p);
        assert_eq!(&at[..8], &[0, 5, 10, 15, 20, 25, 30, 45]);
        // 15-minute phase runs from age 30m to 2h30m; hourly after.
        assert!(at.contains(&135) && at.contains(&150) && at.contains(&210));
        assert!(!at.contains(&165));
        assert_eq!(at.last(), Some(&1440));
        let p = policy("10m", 1, 0);
        let at = attempts(&p);
        assert_eq!(at.len(), 1440 / 10 + 1);
        assert!(at.windows(2).all(|w| w[1] - w[0] == 10));
    }

    #[test]
    fn late_attempts_keep_the_phases_by_age() {
        let p = policy("15m for 2h, then 30m", 7, 4);
        let first = Instant::from_secs(0);
        // An ETRN-triggered attempt at 1h59m still gets the 15-minute interval…
        let t = p
            .next_attempt(3, first, Instant::from_secs(119 * MIN))
            .unwrap();
        assert_eq!(t.as_secs(), 134 * MIN);
        // …one at 2h gets 30 minutes, whatever the attempt count.
        let t = p
            .next_attempt(99, first, Instant::from_secs(120 * MIN))
            .unwrap();
        assert_eq!(t.as_secs(), 150 * MIN);
    }

    #[test]
    fn lifetime_expiry_and_delay_warning() {
        let p = policy("15m for 2h, then 30m", 7, 4);
        let first = Instant::from_secs(500);
        assert_eq!(p.expiry(first).as_secs(), 500 + 7 * SECS_PER_DAY);
        assert_eq!(p.warn_at(first).map(|t| t.as_secs()), Some(500 + 4 * 3600));
        assert_eq!(p.next_attempt(5, first, p.expiry(first)), None);
        assert_eq!(policy("1h", 7, 0).warn_at(first), None, "0 = no warning");
        assert_eq!(
            policy("1h", 1, 24).warn_at(first),
            None,
            "not before expiry"
        );
        let defaults = RetryPolicy::from_config(&RelayConfig::default()).unwrap();
        assert_eq!(
            defaults.lifetime.as_secs(),
            u64::from(DEFAULT_LIFETIME_DAYS) * SECS_PER_DAY
        );
        assert_eq!(
            defaults.delay_warning.map(|d| d.as_secs()),
            Some(u64::from(DEFAULT_DELAY_WARNING_HOURS) * 3600)
        );
    }

    #[test]
    fn bad_schedules_name_the_bad_part() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("15x for 2h, then 30m", "'15x'"),
            ("15m for 2h", "'15m for 2h'"),
            ("15m, then 30m", "'15m'"),
            ("15m for soon, then 30m", "'soon'"),
            ("15m for 2h, then 10s", "'10s' is shorter"),
            ("0m", "'0m'"),
            ("m", "'m'"),
            ("99999999999999999999m", "not a duration"),
        ];
        for (text, want) in cases {
            let e = RetrySchedule::parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let many = ["1m for 1m"; PHASES_MAX + 1].join(", ") + ", then 1h";
        assert_eq!(
            RetrySchedule::parse(&many),
            Err(ScheduleError::TooManyPhases)
        );
        for days in [0, 31] {
            let cfg = RelayConfig {
                lifetime_days: days,
                ..RelayConfig::default()
            };
            assert_eq!(
                RetryPolicy::from_config(&cfg),
                Err(ScheduleError::Lifetime(days))
            );
        }
    }

    #[test]
    fn spelling_variants_parse() {
        let a = RetrySchedule::parse("15m for 2h, then 30m").unwrap();
        assert_eq!(
            RetrySchedule::parse(" 15 min FOR 2 hours ,  Then 30 minutes ").unwrap(),
            a
        );
        assert_eq!(RetrySchedule::parse("15m for 2h, 30m").unwrap(), a);
    }
}
