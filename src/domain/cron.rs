//! Cron expressions as backup schedules are written (`schedule`, or one made from
//! `frequency`): five fields (minute, hour, day of month, month, day of week) with `*`, `?`,
//! lists, ranges, steps and month and weekday names, or a descriptor (`@hourly`, `@daily`,
//! `@midnight`, `@weekly`, `@monthly`, `@yearly`, `@annually`, `@every <duration>`), the
//! standard form the Go operator accepts. Times are UTC, as in the operator's container.
//!
//! As in classic cron, when both day fields are restricted a day matching either runs; when
//! one is `*` (or `?`) only the other restricts.

use k8s_openapi::jiff::Timestamp;
use k8s_openapi::jiff::civil::Date;
use k8s_openapi::jiff::tz::TimeZone;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error("{0:?} has {1} fields; a schedule has 5 (minute hour day-of-month month day-of-week)")]
    FieldCount(String, usize),
    #[error("{field} {part:?}: {why}")]
    Field {
        field: &'static str,
        part: String,
        why: String,
    },
    #[error(
        "unknown descriptor {0:?} (use @hourly, @daily, @weekly, @monthly, @yearly or @every <duration>)"
    )]
    Descriptor(String),
    #[error("@every {0:?}: not a duration of at least one second such as 90m or 1h")]
    Every(String),
}

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// The five fields, as bit sets (bit n: value n allowed).
    Fields {
        minutes: u64,
        hours: u64,
        days: u64,
        months: u64,
        weekdays: u64,
        /// Day of month or day of week was `*`/`?`: both must match (else either).
        any_day_field: bool,
    },
    /// `@every <duration>`: runs this many seconds apart, counted from the previous run.
    Every(i64),
}

struct Bounds {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: Bounds = Bounds {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Bounds = Bounds {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY: Bounds = Bounds {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Bounds = Bounds {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const WEEKDAY: Bounds = Bounds {
    name: "day of week",
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

impl Schedule {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Self, CronError> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix('@') {
            let expanded = match rest.to_ascii_lowercase().as_str() {
                "yearly" | "annually" => "0 0 1 1 *",
                "monthly" => "0 0 1 * *",
                "weekly" => "0 0 * * 0",
                "daily" | "midnight" => "0 0 * * *",
                "hourly" => "0 * * * *",
                other => {
                    let Some(duration) = other.strip_prefix("every ") else {
                        return Err(CronError::Descriptor(text.into()));
                    };
                    let nanos = crate::api::cluster::go_duration_nanos(duration.trim())
                        .filter(|n| *n >= 1_000_000_000)
                        .ok_or_else(|| CronError::Every(duration.trim().into()))?;
                    let seconds = i64::try_from(nanos / 1_000_000_000)
                        .map_err(|_| CronError::Every(duration.trim().into()))?;
                    return Ok(Self::Every(seconds));
                }
            };
            return Self::parse(expanded);
        }
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(CronError::FieldCount(text.into(), fields.len()));
        };
        let star = |f: &str| f.starts_with('*') || f.starts_with('?');
        Ok(Self::Fields {
            minutes: bits(minute, &MINUTE)?,
            hours: bits(hour, &HOUR)?,
            days: bits(day, &DAY)?,
            months: bits(month, &MONTH)?,
            weekdays: bits(weekday, &WEEKDAY)?,
            any_day_field: star(day) || star(weekday),
        })
    }

    /// The first time strictly after `after` that the schedule runs (whole minutes for the
    /// five fields); `None` when it never does within five years (`0 0 30 2 *`).
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let (minutes, hours, days, months, weekdays, any_day_field) = match *self {
            Self::Every(seconds) => {
                return Timestamp::from_second(after.as_second().checked_add(seconds)?).ok();
            }
            Self::Fields {
                minutes,
                hours,
                days,
                months,
                weekdays,
                any_day_field,
            } => (minutes, hours, days, months, weekdays, any_day_field),
        };
        let start = Timestamp::from_second((after.as_second().div_euclid(60) + 1) * 60).ok()?;
        let civil = start.to_zoned(TimeZone::UTC).datetime();
        let mut date: Date = civil.date();
        let (mut from_hour, mut from_minute) = (civil.hour(), civil.minute());
        let has = |set: u64, n: i8| n >= 0 && set & (1u64 << n) != 0;
        for _ in 0..(5 * 366) {
            let day_ok = has(days, date.day());
            let weekday_ok = has(weekdays, date.weekday().to_sunday_zero_offset());
            let day_matches = if any_day_field {
                day_ok && weekday_ok
            } else {
                day_ok || weekday_ok
            };
            if has(months, date.month()) && day_matches {
                for hour in from_hour..24 {
                    if !has(hours, hour) {
                        continue;
                    }
                    let first = if hour == from_hour { from_minute } else { 0 };
                    if let Some(minute) = (first..60).find(|m| has(minutes, *m)) {
                        return date
                            .at(hour, minute, 0, 0)
                            .to_zoned(TimeZone::UTC)
                            .ok()
                            .map(|z| z.timestamp());
                    }
                }
            }
            date = date.tomorrow().ok()?;
            (from_hour, from_minute) = (0, 0);
        }
        None
    }
}

/// The bit set of one field: a comma-separated list of `*`, `?`, `n`, `a-b`, each optionally
/// `/step` (`a/step` runs from `a` to the field's end).
fn bits(field: &str, bounds: &Bounds) -> Result<u64, CronError> {
    let mut set = 0u64;
    for part in field.split(',') {
        let wrong = |why: String| CronError::Field {
            field: bounds.name,
            part: part.into(),
            why,
        };
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| wrong(format!("step {step:?} is not a positive number")))?;
                (range, Some(step))
            }
            None => (part, None),
        };
        let (low, high) = if range == "*" || range == "?" {
            (bounds.min, bounds.max)
        } else if let Some((a, b)) = range.split_once('-') {
            (
                value(a, bounds).map_err(wrong)?,
                value(b, bounds).map_err(wrong)?,
            )
        } else {
            let a = value(range, bounds).map_err(wrong)?;
            (a, if step.is_some() { bounds.max } else { a })
        };
        if low > high {
            return Err(wrong(format!("{low} is after {high}")));
        }
        let step = step.unwrap_or(1);
        let mut n = low;
        while n <= high {
            set |= 1u64 << n;
            n += step;
        }
    }
    Ok(set)
}

/// One value of a field: a number within its bounds or (months, weekdays) a name.
fn value(text: &str, bounds: &Bounds) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(index) = bounds.names.iter().position(|n| *n == lower) {
        return Ok(bounds.min + u32::try_from(index).unwrap_or(0));
    }
    let n: u32 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if n < bounds.min || n > bounds.max {
        return Err(format!("{n} is outside {}-{}", bounds.min, bounds.max));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn next(expr: &str, after: &str) -> String {
        Schedule::parse(expr)
            .unwrap()
            .next_after(at(after))
            .map(|t| t.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn every_minute_runs_at_the_next_whole_minute() {
        assert_eq!(
            next("* * * * *", "2026-12-07T10:00:00Z"),
            "2026-12-07T10:01:00Z"
        );
        assert_eq!(
            next("* * * * *", "2026-12-07T10:00:59Z"),
            "2026-12-07T10:01:00Z"
        );
    }

    #[test]
    fn steps_ranges_lists_and_names() {
        assert_eq!(
            next("7/15 * * * *", "2026-12-07T10:08:00Z"),
            "2026-12-07T10:22:00Z"
        );
        assert_eq!(
            next("0 1/6 * * *", "2026-12-07T10:00:00Z"),
            "2026-12-07T13:00:00Z"
        );
        assert_eq!(
            next("30 2 * * *", "2026-12-07T10:00:00Z"),
            "2026-12-08T02:30:00Z"
        );
        assert_eq!(
            next("0 0 1 jan *", "2026-12-07T10:00:00Z"),
            "2027-01-01T00:00:00Z"
        );
        // 2026-12-07 is a Monday.
        assert_eq!(
            next("0 9 * * sat,SUN", "2026-12-07T10:00:00Z"),
            "2026-12-12T09:00:00Z"
        );
        assert_eq!(
            next("0 9 * * 1-5", "2026-12-07T10:00:00Z"),
            "2026-12-08T09:00:00Z"
        );
        assert_eq!(
            next("@daily", "2026-12-31T23:59:00Z"),
            "2027-01-01T00:00:00Z"
        );
        assert_eq!(
            next("@every 90m", "2026-12-07T10:00:30Z"),
            "2026-12-07T11:30:30Z"
        );
    }

    #[test]
    fn both_day_fields_restricted_means_either() {
        // The 15th (a Tuesday) or any Friday, whichever comes first.
        assert_eq!(
            next("0 0 15 * fri", "2026-12-07T10:00:00Z"),
            "2026-12-11T00:00:00Z"
        );
        assert_eq!(
            next("0 0 15 * *", "2026-12-07T10:00:00Z"),
            "2026-12-15T00:00:00Z"
        );
        assert_eq!(next("0 0 30 2 *", "2026-12-07T10:00:00Z"), "");
    }

    #[test]
    fn mistakes_are_named() {
        for (expr, says) in [
            ("* * * *", "has 4 fields"),
            ("60 * * * *", "minute \"60\": 60 is outside 0-59"),
            ("* * * foo *", "month \"foo\""),
            ("*/0 * * * *", "step \"0\""),
            ("5-1 * * * *", "5 is after 1"),
            ("@fortnightly", "unknown descriptor"),
            ("@every 10ms", "@every"),
        ] {
            let err = Schedule::parse(expr).unwrap_err().to_string();
            assert!(err.contains(says), "{expr}: {err}");
        }
    }
}
