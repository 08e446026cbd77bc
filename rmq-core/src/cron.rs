//! Cron schedules: the policy a `#[rmq::task(cron = ...)]` attribute or
//! [`Broker::set_schedule`](crate::Broker::set_schedule) gives, and the
//! schedule math (next occurrences in a time zone).
//!
//! Occurrences are UTC instants (ms since the epoch). Expressions are
//! evaluated in the schedule's IANA time zone by `croner`, whose rules at
//! daylight-saving transitions are documented (OCPS / Vixie cron): in a
//! spring-forward gap a fixed-time occurrence (`0 30 2 * * *`) runs at the
//! first instant after the gap and interval occurrences inside the gap do
//! not exist; in a fall-back overlap a fixed-time occurrence runs once (the
//! first pass) and interval occurrences run in both passes. Keyed by UTC
//! instant, the two passes of a repeated wall-clock hour are different
//! occurrences with different job ids.
//!
//! The math runs in Rust with a [`CronClock`] that tests may shift; whether
//! an occurrence is due is decided by the Redis server clock inside the
//! `lua/cron.lua` script (shifted by the same offset).

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;

/// Most occurrences one tick lists (and so fires with [`CatchUp::All`]);
/// a longer backlog takes several ticks, back to back.
pub const MAX_OCCURRENCES_PER_TICK: usize = 1000;

/// How late an occurrence may fire under [`CatchUp::None`]: later than this
/// it counts as missed (a worker that was down) and is skipped.
pub const ON_TIME_GRACE: Duration = Duration::from_secs(60);

/// When and how a periodic task fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CronPolicy {
    /// The cron expression: 5 fields (minute first) or 6 (second first).
    pub expression: &'static str,
    /// The IANA time zone the expression is read in (`"UTC"` by default).
    pub tz: &'static str,
    /// What an occurrence does while the previous run is still queued or
    /// running.
    pub overlap: Overlap,
    /// Which missed occurrences fire after a downtime.
    pub catch_up: CatchUp,
    /// The payload of every run, as JSON (`cron_payload = ...`); `None` for
    /// a task without payload arguments.
    pub payload: Option<&'static str>,
}

impl CronPolicy {
    /// The payload of every run as JSON: `cron_payload`, or `{}`.
    pub fn payload_json(&self) -> &'static str {
        self.payload.unwrap_or("{}")
    }
}

/// What an occurrence does while the previous run of its schedule is still
/// queued or running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Overlap {
    /// Skipped (the default): at most one run of a schedule at a time.
    #[default]
    Skip,
    /// Enqueued anyway: runs may overlap.
    Allow,
}

/// Which occurrences fire when several are due at once (no worker ran the
/// schedule for a while).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CatchUp {
    /// Only an occurrence that is at most [`ON_TIME_GRACE`] late; missed
    /// ones are skipped.
    None,
    /// The latest missed occurrence fires once (the default).
    #[default]
    One,
    /// Every missed occurrence no older than `within` fires, oldest first.
    All {
        /// How far back missed occurrences still fire.
        within: Duration,
    },
}

impl Overlap {
    /// `skip` or `allow`.
    pub fn as_str(self) -> &'static str {
        match self {
            Overlap::Skip => "skip",
            Overlap::Allow => "allow",
        }
    }
}

impl FromStr for Overlap {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "skip" => Ok(Overlap::Skip),
            "allow" => Ok(Overlap::Allow),
            other => Err(format!(
                "unknown overlap policy `{other}`; expected `skip` or `allow`"
            )),
        }
    }
}

impl std::fmt::Display for CatchUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CatchUp::None => f.write_str("none"),
            CatchUp::One => f.write_str("one"),
            CatchUp::All { within } => write!(f, "all:{}", within.as_millis()),
        }
    }
}

impl FromStr for CatchUp {
    type Err = String;

    /// `none`, `one` or `all:<ms>`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(CatchUp::None),
            "one" => Ok(CatchUp::One),
            other => match other.strip_prefix("all:").map(str::parse::<u64>) {
                Some(Ok(ms)) if ms > 0 => Ok(CatchUp::All {
                    within: Duration::from_millis(ms),
                }),
                _ => Err(format!(
                    "unknown catch-up policy `{other}`; expected `none`, `one` or `all:<ms>`"
                )),
            },
        }
    }
}

/// A parsed cron expression in its time zone.
#[derive(Clone, Debug)]
pub struct Expression {
    cron: Cron,
    tz: Tz,
}

/// The parser every schedule uses: 5 or 6 fields (seconds optional), day of
/// month and day of week combined with OR as in Vixie cron.
fn parser() -> CronParser {
    CronParser::builder().seconds(Seconds::Optional).build()
}

impl Expression {
    /// Parses `expression` in time zone `tz` (an IANA name such as
    /// `Europe/Berlin`, or `UTC`).
    pub fn parse(expression: &str, tz: &str) -> Result<Expression, String> {
        let tz = Tz::from_str(tz).map_err(|_| {
            format!("unknown time zone `{tz}`: use an IANA name such as `Europe/Berlin` or `UTC`")
        })?;
        let cron = parser()
            .parse(expression)
            .map_err(|e| format!("invalid cron expression `{expression}`: {e}"))?;
        Ok(Expression { cron, tz })
    }

    /// The first occurrence strictly after `after_ms`.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let start = self.at(after_ms)?;
        self.cron
            .find_next_occurrence(&start, false)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    /// Occurrences from `first_ms` (included, taken as an occurrence) on:
    /// every one up to `until_ms`, then one more, at most
    /// [`MAX_OCCURRENCES_PER_TICK`] + 1 in all. The list a tick passes to
    /// `lua/cron.lua`, which fires the due ones and keeps the first
    /// future one as the next fire time.
    pub fn occurrences(&self, first_ms: i64, until_ms: i64) -> Vec<i64> {
        let mut out = vec![first_ms];
        let mut last = first_ms;
        while last <= until_ms && out.len() <= MAX_OCCURRENCES_PER_TICK {
            match self.next_after(last) {
                Some(next) if next > last => {
                    out.push(next);
                    last = next;
                }
                _ => break,
            }
        }
        out
    }

    fn at(&self, ms: i64) -> Option<DateTime<Tz>> {
        Utc.timestamp_millis_opt(ms)
            .single()
            .map(|t| t.with_timezone(&self.tz))
    }
}

/// The clock the schedule math reads: the Redis server clock, shifted by
/// `offset_ms` (zero in production). A test that shifts it runs a
/// schedule as if it were another date (a daylight-saving night) while due
/// times still come from Redis `TIME` (plus the same offset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CronClock {
    /// Added to the server time.
    pub offset_ms: i64,
}

impl CronClock {
    /// The server clock as it is.
    pub const SERVER: CronClock = CronClock { offset_ms: 0 };

    /// A clock that reads `virtual_ms` when the server clock reads
    /// `server_ms`.
    pub fn shifted(server_ms: i64, virtual_ms: i64) -> CronClock {
        CronClock {
            offset_ms: virtual_ms - server_ms,
        }
    }
}

/// The fields a schedule `N` keeps in its topic's cron hash besides `N`
/// itself (its next fire instant).
pub const FIELD_SUFFIXES: [&str; 5] = [":spec", ":payload", ":last", ":last_id", ":paused"];

/// A schedule's name must fit a job id (`cron:<name>:<instant>`) and the
/// fields of the topic's cron hash: no braces or whitespace, and no name
/// ending in a field suffix (`a:spec` would be the definition of `a`).
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 200 {
        return Err("a schedule name must be 1 to 200 bytes long".to_owned());
    }
    if let Some(c) = name
        .chars()
        .find(|c| *c == '{' || *c == '}' || c.is_whitespace())
    {
        return Err(format!(
            "a schedule name must not contain {c:?} (it is part of job ids `cron:<name>:<instant>`)"
        ));
    }
    if let Some(suffix) = FIELD_SUFFIXES.iter().find(|s| name.ends_with(*s)) {
        return Err(format!(
            "a schedule name must not end in `{suffix}` (the cron hash keeps `<name>{suffix}` beside each schedule)"
        ));
    }
    Ok(())
}

/// The job id of the occurrence of schedule `name` at `instant_ms` (UTC).
pub fn occurrence_id(name: &str, instant_ms: i64) -> String {
    format!("cron:{name}:{instant_ms}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    fn utc(ms: i64) -> String {
        Utc.timestamp_millis_opt(ms)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }

    fn following(expr: &Expression, from: &str, n: usize) -> Vec<String> {
        let mut at = ms(from);
        (0..n)
            .map(|_| {
                at = expr.next_after(at).unwrap();
                utc(at)
            })
            .collect()
    }

    #[test]
    fn five_and_six_fields() {
        let five = Expression::parse("*/15 * * * *", "UTC").unwrap();
        assert_eq!(
            following(&five, "2026-01-01T00:00:00Z", 2),
            ["2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z"]
        );
        let six = Expression::parse("*/20 * * * * *", "UTC").unwrap();
        assert_eq!(
            following(&six, "2026-01-01T00:00:00Z", 2),
            ["2026-01-01T00:00:20Z", "2026-01-01T00:00:40Z"]
        );
        assert!(Expression::parse("61 * * * *", "UTC").is_err());
        assert!(Expression::parse("* * * * *", "Mars/Olympus").is_err());
    }

    #[test]
    fn spring_forward_in_berlin() {
        // 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC).
        let fixed = Expression::parse("0 30 2 * * *", "Europe/Berlin").unwrap();
        assert_eq!(
            following(&fixed, "2026-03-28T12:00:00Z", 3),
            [
                "2026-03-29T01:00:00Z", // 02:30 does not exist: 03:00 CEST
                "2026-03-30T00:30:00Z", // 02:30 CEST
                "2026-03-31T00:30:00Z",
            ]
        );
        let every = Expression::parse("0 */30 * * * *", "Europe/Berlin").unwrap();
        assert_eq!(
            following(&every, "2026-03-29T00:00:00Z", 4),
            [
                "2026-03-29T00:30:00Z", // 01:30 CET
                "2026-03-29T01:00:00Z", // 03:00 CEST (02:00 and 02:30 do not exist)
                "2026-03-29T01:30:00Z",
                "2026-03-29T02:00:00Z",
            ]
        );
    }

    #[test]
    fn fall_back_in_berlin() {
        // 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC).
        let fixed = Expression::parse("0 30 2 * * *", "Europe/Berlin").unwrap();
        assert_eq!(
            following(&fixed, "2026-10-24T12:00:00Z", 2),
            [
                "2026-10-25T00:30:00Z", // 02:30 CEST, once
                "2026-10-26T01:30:00Z", // 02:30 CET the next day
            ]
        );
        let every = Expression::parse("0 */30 * * * *", "Europe/Berlin").unwrap();
        assert_eq!(
            following(&every, "2026-10-24T23:45:00Z", 5),
            [
                "2026-10-25T00:00:00Z", // 02:00 CEST
                "2026-10-25T00:30:00Z", // 02:30 CEST
                "2026-10-25T01:00:00Z", // 02:00 CET, the second pass
                "2026-10-25T01:30:00Z", // 02:30 CET
                "2026-10-25T02:00:00Z", // 03:00 CET
            ]
        );
    }

    #[test]
    fn occurrences_end_with_one_after_the_horizon() {
        let every = Expression::parse("* * * * * *", "UTC").unwrap();
        let first = ms("2026-01-01T00:00:00Z");
        let list = every.occurrences(first, first + 2_500);
        assert_eq!(list, [first, first + 1000, first + 2000, first + 3000]);
        let long = every.occurrences(first, first + 10_000_000);
        assert_eq!(long.len(), MAX_OCCURRENCES_PER_TICK + 1);
    }

    #[test]
    fn policies_round_trip_as_text() {
        for catch_up in [
            CatchUp::None,
            CatchUp::One,
            CatchUp::All {
                within: Duration::from_secs(3600),
            },
        ] {
            assert_eq!(catch_up.to_string().parse::<CatchUp>(), Ok(catch_up));
        }
        assert_eq!("allow".parse::<Overlap>(), Ok(Overlap::Allow));
        assert!(check_name("nightly-report").is_ok());
        assert!(check_name("orders:v2").is_ok());
        assert!(check_name("a:spec").is_err());
        assert!(check_name("a b").is_err());
    }
}
