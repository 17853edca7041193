//! When a window runs: its openings in its own zone, and the misfire
//! policy. Pure functions of the config and an instant, so tests put the
//! daemon at any DST change or clock jump without waiting.

use chrono::{DateTime, Duration, Utc};

use crate::config::{Config, Window};

/// What to do with a window's opening at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not yet: the alarm fired early (the clock went back).
    Early,
    /// Run now, until `deadline` (the window's end).
    Run {
        deadline: DateTime<Utc>,
        /// How late the start is (zero when on time).
        late: Duration,
    },
    /// Do not run; record the window as missed, and why.
    Missed { reason: String },
    /// Its run had started (the journal exists) and the window closed
    /// before it could resume: report the run from its journal (`reason`
    /// for a journal that holds no run after all).
    Interrupted { reason: String },
}

/// Slack for an alarm that fires a moment after its instant.
const ON_TIME: Duration = Duration::seconds(5);

fn std_to_chrono(d: std::time::Duration) -> Duration {
    Duration::from_std(d).unwrap_or(Duration::MAX)
}

/// The window's end for this opening.
pub fn end_of(window: &Window, opening: DateTime<Utc>) -> DateTime<Utc> {
    opening + std_to_chrono(window.duration)
}

/// The misfire policy: on time, or late but while the window is still open
/// and no later than `latest_start` after its opening; else missed. A run
/// that had started before a crash or restart (`resuming`: its journal
/// exists) goes on while the window is open, however late: devices left
/// mid-change must be brought to a known state; once the window has closed,
/// it is `Interrupted`, not missed.
pub fn decide(
    window: &Window,
    opening: DateTime<Utc>,
    now: DateTime<Utc>,
    resuming: bool,
) -> Decision {
    let end = end_of(window, opening);
    if now < opening {
        return Decision::Early;
    }
    let late = now - opening;
    let fmt = |d: Duration| {
        humantime::format_duration(std::time::Duration::from_secs(d.num_seconds().max(0) as u64))
            .to_string()
    };
    if now >= end {
        let reason = format!(
            "the window closed at {} before it could start (nightshift was down, suspended or the clock jumped; {} late)",
            end.with_timezone(&window.zone())
                .format("%a %Y-%m-%d %H:%M %Z"),
            fmt(late)
        );
        return if resuming {
            Decision::Interrupted { reason }
        } else {
            Decision::Missed { reason }
        };
    }
    if late > std_to_chrono(window.latest_start) + ON_TIME && !resuming {
        return Decision::Missed {
            reason: format!(
                "{} late, more than latest_start ({}): a change must not start this late in its window",
                fmt(late),
                humantime::format_duration(window.latest_start)
            ),
        };
    }
    Decision::Run {
        deadline: end,
        late: if late > ON_TIME {
            late
        } else {
            Duration::zero()
        },
    }
}

/// The run id of an opening: a restart within the window resumes it.
pub fn run_id(window: &str, opening: DateTime<Utc>) -> String {
    format!("{window}-{}", opening.format("%Y%m%dT%H%MZ"))
}

/// A moment the daemon must wake up for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// A window opens.
    Open {
        window: String,
        opening: DateTime<Utc>,
    },
    /// Prove the stored credentials ahead of a window.
    CheckCredentials {
        window: String,
        opening: DateTime<Utc>,
    },
    /// Make the change plan for an opening (`plan_lead` before it).
    Plan {
        window: String,
        opening: DateTime<Utc>,
    },
}

/// Every window's next opening after `now` and its credential check, plus
/// an opening that is in progress now (at or before `now`, window still
/// open) so a daemon that starts late can still decide on it.
pub fn wakes(
    config: &Config,
    now: DateTime<Utc>,
    lead: std::time::Duration,
) -> Vec<(DateTime<Utc>, Wake)> {
    let lead = std_to_chrono(lead);
    let mut out = Vec::new();
    for w in &config.windows {
        if let Some(current) = w.schedule.previous_at_or_before(now)
            && end_of(w, current) > now
        {
            out.push((
                current,
                Wake::Open {
                    window: w.name.clone(),
                    opening: current,
                },
            ));
        }
        if let Some(next) = w.schedule.next_after(now) {
            out.push((
                next,
                Wake::Open {
                    window: w.name.clone(),
                    opening: next,
                },
            ));
            if let Some(plan) = w.plan_lead.map(|p| next - std_to_chrono(p))
                && plan > now
            {
                out.push((
                    plan,
                    Wake::Plan {
                        window: w.name.clone(),
                        opening: next,
                    },
                ));
            }
            let check = next - lead;
            if check > now {
                out.push((
                    check,
                    Wake::CheckCredentials {
                        window: w.name.clone(),
                        opening: next,
                    },
                ));
            }
        }
    }
    out.sort_by_key(|a| a.0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{Schedule, parse_zone};

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn window(expr: &str, zone: &str, minutes: u64, latest: u64) -> Window {
        Window {
            name: "w".into(),
            schedule: Schedule::parse(expr, parse_zone(zone).unwrap(), utc("2026-01-01T00:00:00Z"))
                .unwrap(),
            duration: std::time::Duration::from_secs(minutes * 60),
            latest_start: std::time::Duration::from_secs(latest * 60),
            plan_lead: None,
            jobs: vec!["j".into()],
        }
    }

    /// The openings the daemon arms, one after another from `from`, as it
    /// re-arms after each firing.
    fn armed(w: &Window, from: &str, n: usize) -> Vec<DateTime<Utc>> {
        let mut now = utc(from);
        let mut out = Vec::new();
        for _ in 0..n {
            let next = w.schedule.next_after(now).unwrap();
            out.push(next);
            now = next;
        }
        out
    }

    #[test]
    fn openings_follow_local_time_across_dst_in_two_zones() {
        // Berlin 02:30 daily: 2026-03-29 has no 02:30 (clocks jump 02:00 -> 03:00):
        // it opens when the gap ends, 03:00 CEST; then 02:30 CEST again.
        let berlin = window("30 2 * * *", "Europe/Berlin", 60, 30);
        assert_eq!(
            armed(&berlin, "2026-03-27T12:00:00Z", 4),
            [
                utc("2026-03-28T01:30:00Z"),
                utc("2026-03-29T01:00:00Z"),
                utc("2026-03-30T00:30:00Z"),
                utc("2026-03-31T00:30:00Z")
            ]
        );
        // Autumn: 02:30 occurs twice on 2026-10-25; it opens once, at the first.
        assert_eq!(
            armed(&berlin, "2026-10-23T12:00:00Z", 4),
            [
                utc("2026-10-24T00:30:00Z"),
                utc("2026-10-25T00:30:00Z"),
                utc("2026-10-26T01:30:00Z"),
                utc("2026-10-27T01:30:00Z")
            ]
        );
        // New York 03:30 daily: the day after the spring change it is 03:30 EDT
        // (07:30 UTC), not 08:30 UTC as a scheduler keeping the old offset would fire (#107).
        let ny = window("30 3 * * *", "America/New_York", 60, 30);
        assert_eq!(
            armed(&ny, "2026-03-06T12:00:00Z", 3),
            [
                utc("2026-03-07T08:30:00Z"),
                utc("2026-03-08T07:30:00Z"),
                utc("2026-03-09T07:30:00Z")
            ]
        );
        // New York 01:30 on 2026-11-01 (fold): once, at 01:30 EDT.
        let fold = window("30 1 * * *", "America/New_York", 60, 30);
        assert_eq!(
            armed(&fold, "2026-10-31T12:00:00Z", 3),
            [
                utc("2026-11-01T05:30:00Z"),
                utc("2026-11-02T06:30:00Z"),
                utc("2026-11-03T06:30:00Z")
            ]
        );
    }

    #[test]
    fn the_misfire_policy() {
        let w = window("0 2 * * *", "UTC", 120, 60);
        let opening = utc("2026-11-26T02:00:00Z");
        let end = utc("2026-11-26T04:00:00Z");
        // On time (a moment late is on time).
        assert_eq!(
            decide(&w, opening, utc("2026-11-26T02:00:03Z"), false),
            Decision::Run {
                deadline: end,
                late: Duration::zero()
            }
        );
        // Late inside latest_start: runs, until the window's end.
        assert_eq!(
            decide(&w, opening, utc("2026-11-26T02:40:00Z"), false),
            Decision::Run {
                deadline: end,
                late: Duration::minutes(40)
            }
        );
        // Later than latest_start: missed, though the window is still open.
        let Decision::Missed { reason } = decide(&w, opening, utc("2026-11-26T03:10:00Z"), false)
        else {
            panic!()
        };
        assert!(
            reason.contains("1h 10m late, more than latest_start (1h)"),
            "{reason}"
        );
        // A clock jump past the whole window: missed.
        let Decision::Missed { reason } = decide(&w, opening, utc("2026-11-26T09:00:00Z"), false)
        else {
            panic!()
        };
        assert!(
            reason.contains("closed at Thu 2026-11-26 04:00 UTC"),
            "{reason}"
        );
        // Resuming an interrupted run: past latest_start it still goes on,
        // until the window's end; once the window closed, the run is
        // reported from its journal, not recorded as missed.
        assert_eq!(
            decide(&w, opening, utc("2026-11-26T03:10:00Z"), true),
            Decision::Run {
                deadline: end,
                late: Duration::minutes(70)
            }
        );
        assert!(matches!(
            decide(&w, opening, utc("2026-11-26T04:00:00Z"), true),
            Decision::Interrupted { .. }
        ));
        // Fired early (the clock went back): not yet.
        assert_eq!(
            decide(&w, opening, utc("2026-11-26T01:59:00Z"), false),
            Decision::Early
        );
    }
}
