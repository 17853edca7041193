//! When windows open: a standard 5-field crontab line read in an IANA time
//! zone.
//!
//! The cron line is matched against local wall-clock time, then each local
//! time is turned into an instant by these rules, which are also those of
//! Vixie cron and cronie:
//!
//! - a local time that does not exist (the hour skipped when clocks go
//!   forward) opens at the first instant after the gap (02:30 on the spring
//!   change in New York opens at 03:00 EDT);
//! - a local time that happens twice (the hour repeated when clocks go back)
//!   opens once, at its first occurrence.
//!
//! Instants are computed afresh from the zone each time, so no UTC offset is
//! ever carried over from one opening to the next (tokio-cron-scheduler#107).

use std::fmt;

use chrono::{
    DateTime, Duration as ChronoDuration, LocalResult, NaiveDateTime, TimeZone, Timelike as _, Utc,
};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("expected 5 fields (minute hour day-of-month month day-of-week), found {found}")]
    FieldCount { found: usize },
    #[error("not a valid crontab line: {reason}")]
    Invalid { reason: String },
    #[error("never fires: no date matches it")]
    NeverFires,
    #[error("unknown time zone \"{0}\"")]
    UnknownZone(String),
}

/// A parsed crontab line bound to its time zone.
#[derive(Clone)]
pub struct Schedule {
    expr: String,
    cron: Cron,
    zone: Tz,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?} in {})", self.expr, self.zone)
    }
}

/// How far past a local time we look back, so that a time repeated in the
/// autumn fold is not missed when "now" sits inside the fold.
const LOOKBACK_HOURS: i64 = 3;

pub fn parse_zone(name: &str) -> Result<Tz, ScheduleError> {
    name.parse::<Tz>()
        .map_err(|_| ScheduleError::UnknownZone(name.to_string()))
}

impl Schedule {
    /// Parses a standard 5-field crontab line (or an `@daily`-style
    /// nickname) and checks that it fires at least once after `reference`.
    pub fn parse(expr: &str, zone: Tz, reference: DateTime<Utc>) -> Result<Self, ScheduleError> {
        let trimmed = expr.trim();
        let fields = trimmed.split_whitespace().count();
        if !trimmed.starts_with('@') && fields != 5 {
            return Err(ScheduleError::FieldCount { found: fields });
        }
        if trimmed.eq_ignore_ascii_case("@reboot") {
            return Err(ScheduleError::Invalid {
                reason: "@reboot is not a time; windows need a schedule".into(),
            });
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let cron = parser.parse(trimmed).map_err(|e| ScheduleError::Invalid {
            reason: e.to_string(),
        })?;
        let schedule = Schedule {
            expr: trimmed.to_string(),
            cron,
            zone,
        };
        if schedule.next_after(reference).is_none() {
            return Err(ScheduleError::NeverFires);
        }
        Ok(schedule)
    }

    pub fn expr(&self) -> &str {
        &self.expr
    }

    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The first opening strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.openings_after(after).next()
    }

    /// The most recent opening at or before `at`.
    pub fn previous_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local =
            at.with_timezone(&self.zone).naive_local() + ChronoDuration::hours(LOOKBACK_HOURS);
        // croner keeps the cursor's sub-seconds; openings are whole minutes.
        let mut cursor = local
            .and_utc()
            .with_nanosecond(0)
            .unwrap_or(local.and_utc());
        for _ in 0..10_000 {
            let prev = self.cron.find_previous_occurrence(&cursor, false).ok()?;
            let instant = self.resolve(prev.naive_utc());
            if instant <= at {
                return Some(instant);
            }
            cursor = prev;
        }
        None
    }

    /// Every opening strictly after `after`, in order, each once.
    pub fn openings_after(&self, after: DateTime<Utc>) -> Openings<'_> {
        let start =
            after.with_timezone(&self.zone).naive_local() - ChronoDuration::hours(LOOKBACK_HOURS);
        // croner keeps the cursor's sub-seconds; openings are whole minutes.
        let start = start.and_utc();
        Openings {
            schedule: self,
            after,
            cursor: start.with_nanosecond(0).unwrap_or(start),
            last: None,
        }
    }

    /// Turns a local wall-clock time into an instant (rules in the module doc).
    fn resolve(&self, local: NaiveDateTime) -> DateTime<Utc> {
        match self.zone.from_local_datetime(&local) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
            LocalResult::None => {
                // In a gap: walk forward to the first local time that exists.
                // Gaps are at most a few hours and transitions fall on whole
                // minutes, so this ends quickly.
                let mut probe = local;
                for _ in 0..(48 * 60) {
                    probe += ChronoDuration::minutes(1);
                    let probe_floor = probe
                        .date()
                        .and_hms_opt(
                            chrono::Timelike::hour(&probe),
                            chrono::Timelike::minute(&probe),
                            0,
                        )
                        .unwrap_or(probe);
                    if let Some(t) = self.zone.from_local_datetime(&probe_floor).earliest() {
                        return t.with_timezone(&Utc);
                    }
                }
                // Not reachable with real zone data; fall back to the
                // pre-gap offset rather than panicking.
                Utc.from_utc_datetime(&local)
            }
        }
    }
}

/// Iterator over a schedule's openings; see [`Schedule::openings_after`].
pub struct Openings<'a> {
    schedule: &'a Schedule,
    after: DateTime<Utc>,
    cursor: DateTime<Utc>,
    last: Option<DateTime<Utc>>,
}

impl Iterator for Openings<'_> {
    type Item = DateTime<Utc>;

    fn next(&mut self) -> Option<DateTime<Utc>> {
        // The cursor walks local wall-clock time (kept in a UTC value, which
        // has no DST); resolved instants never go backwards under our rules,
        // so skipping repeats and past instants is enough.
        loop {
            let local = self
                .schedule
                .cron
                .find_next_occurrence(&self.cursor, false)
                .ok()?;
            self.cursor = local;
            let instant = self.schedule.resolve(local.naive_utc());
            if instant <= self.after || Some(instant) == self.last {
                continue;
            }
            self.last = Some(instant);
            return Some(instant);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn sched(expr: &str, zone: &str) -> Schedule {
        Schedule::parse(expr, parse_zone(zone).unwrap(), utc("2026-01-01T00:00:00Z")).unwrap()
    }

    #[test]
    fn openings_are_whole_minutes_whatever_the_sub_seconds_of_now() {
        let s = sched("0 2 * * *", "UTC");
        let now = utc("2026-11-25T23:24:38.844721862Z");
        assert_eq!(s.next_after(now), Some(utc("2026-11-26T02:00:00Z")));
        assert_eq!(
            s.previous_at_or_before(now),
            Some(utc("2026-11-25T02:00:00Z"))
        );
        // Strictly after: an opening at this very second is not the next one.
        let at = utc("2026-11-26T02:00:00.5Z");
        assert_eq!(s.next_after(at), Some(utc("2026-11-27T02:00:00Z")));
        assert_eq!(
            s.previous_at_or_before(at),
            Some(utc("2026-11-26T02:00:00Z"))
        );
    }

    #[test]
    fn rejects_six_fields_and_garbage() {
        let tz = parse_zone("UTC").unwrap();
        let t = utc("2026-01-01T00:00:00Z");
        assert_eq!(
            Schedule::parse("0 0 2 * * *", tz, t).unwrap_err(),
            ScheduleError::FieldCount { found: 6 }
        );
        assert!(matches!(
            Schedule::parse("61 2 * * *", tz, t).unwrap_err(),
            ScheduleError::Invalid { .. }
        ));
    }

    #[test]
    fn february_thirtieth_never_fires() {
        let tz = parse_zone("UTC").unwrap();
        assert_eq!(
            Schedule::parse("0 2 30 2 *", tz, utc("2026-01-01T00:00:00Z")).unwrap_err(),
            ScheduleError::NeverFires
        );
    }

    #[test]
    fn new_york_spring_gap_opens_when_the_gap_ends() {
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
        let s = sched("30 2 * * *", "America/New_York");
        let got: Vec<_> = s
            .openings_after(utc("2026-03-07T00:00:00Z"))
            .take(3)
            .collect();
        assert_eq!(
            got,
            vec![
                utc("2026-03-07T07:30:00Z"), // 02:30 EST
                utc("2026-03-08T07:00:00Z"), // 02:30 does not exist: 03:00 EDT
                utc("2026-03-09T06:30:00Z"), // 02:30 EDT
            ]
        );
    }

    #[test]
    fn new_york_autumn_fold_opens_once() {
        // 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice.
        let s = sched("30 1 * * *", "America/New_York");
        let got: Vec<_> = s
            .openings_after(utc("2026-10-31T00:00:00Z"))
            .take(3)
            .collect();
        assert_eq!(
            got,
            vec![
                utc("2026-10-31T05:30:00Z"), // 01:30 EDT
                utc("2026-11-01T05:30:00Z"), // first 01:30 (EDT) only
                utc("2026-11-02T06:30:00Z"), // 01:30 EST
            ]
        );
        // Asked from inside the repeated hour, the window does not reopen.
        assert_eq!(
            s.next_after(utc("2026-11-01T06:10:00Z")),
            Some(utc("2026-11-02T06:30:00Z"))
        );
    }

    #[test]
    fn berlin_changes_keep_local_time() {
        // Spring 2026-03-29 02:00 CET -> 03:00 CEST; autumn 2026-10-25 03:00 -> 02:00.
        let s = sched("0 4 * * *", "Europe/Berlin");
        let spring: Vec<_> = s
            .openings_after(utc("2026-03-28T00:00:00Z"))
            .take(2)
            .collect();
        assert_eq!(
            spring,
            vec![utc("2026-03-28T03:00:00Z"), utc("2026-03-29T02:00:00Z")]
        );
        let autumn: Vec<_> = s
            .openings_after(utc("2026-10-24T00:00:00Z"))
            .take(2)
            .collect();
        assert_eq!(
            autumn,
            vec![utc("2026-10-24T02:00:00Z"), utc("2026-10-25T03:00:00Z")]
        );
    }

    #[test]
    fn hourly_across_the_fold_runs_each_instant_once() {
        let s = sched("0 * * * *", "America/New_York");
        let got: Vec<_> = s
            .openings_after(utc("2026-11-01T04:30:00Z"))
            .take(4)
            .collect();
        // 01:00 EDT, 01:00 EST is the same wall time: once; then 02:00 EST...
        assert_eq!(
            got,
            vec![
                utc("2026-11-01T05:00:00Z"),
                utc("2026-11-01T07:00:00Z"),
                utc("2026-11-01T08:00:00Z"),
                utc("2026-11-01T09:00:00Z"),
            ]
        );
    }

    #[test]
    fn previous_opening() {
        let s = sched("0 2 * * 2", "Europe/Berlin");
        assert_eq!(
            s.previous_at_or_before(utc("2026-11-25T12:00:00Z")),
            Some(utc("2026-11-24T01:00:00Z"))
        );
    }
}
