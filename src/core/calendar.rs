//! The service's working calendar: which days are worked (weekdays, holidays) in which time
//! zone, so that a delay announced in working days ("emails answered within 5 working days")
//! becomes a deadline.
//!
//! The rule, as French administrations count "J+5 ouvrés": a request received on day D is due
//! by the end (local midnight) of the N-th working day after D. Received on a Monday with 5
//! working days, it is due by the end of the next Monday; received on a Saturday, by the end of
//! the next Friday. The router applies it when an interaction is created (the deadline is then
//! journaled with the creation, so replay never needs the calendar).

use std::collections::BTreeSet;

use chrono::{Datelike, Days, NaiveDate, TimeZone, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::model::Timestamp;

/// Days looked at, at most, to find the N-th working day (ten years): a calendar without any
/// working day is refused by validation; this bounds the search if one got through.
const MAX_DAYS_SCANNED: u64 = 3660;

/// The working calendar: time zone, working weekdays and holidays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkCalendar {
    /// The IANA time zone days are counted in (default `UTC`).
    #[serde(default = "default_time_zone")]
    pub time_zone: Tz,
    /// The working weekdays (default Monday to Friday), as `mon`, `tue`, ...
    #[serde(default = "default_working_days", with = "weekdays")]
    pub working_days: Vec<Weekday>,
    /// Local dates that are not worked (public holidays, `YYYY-MM-DD`).
    #[serde(default)]
    pub holidays: BTreeSet<NaiveDate>,
}

fn default_time_zone() -> Tz {
    Tz::UTC
}

fn default_working_days() -> Vec<Weekday> {
    [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ]
    .into_iter()
    .collect()
}

impl Default for WorkCalendar {
    /// Monday to Friday in UTC, no holidays.
    fn default() -> Self {
        WorkCalendar {
            time_zone: default_time_zone(),
            working_days: default_working_days(),
            holidays: BTreeSet::new(),
        }
    }
}

impl WorkCalendar {
    /// Checks that some day is worked; the error says what to change.
    pub fn validate(&self) -> Result<(), String> {
        if self.working_days.is_empty() {
            return Err("working_days is empty: name the days worked, for example \
                        [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]"
                .into());
        }
        Ok(())
    }

    /// Whether `date` (local) is worked.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        self.working_days.contains(&date.weekday()) && !self.holidays.contains(&date)
    }

    /// The deadline of something received at `at` and due within `days` working days: the
    /// end (local midnight) of the `days`-th working day after the local day of `at`.
    pub fn deadline_after(&self, at: Timestamp, days: u32) -> Timestamp {
        let received = self
            .time_zone
            .timestamp_millis_opt(at.0 as i64)
            .single()
            .map(|t| t.date_naive())
            .unwrap_or_default();
        let mut day = received;
        let mut counted = 0;
        for _ in 0..MAX_DAYS_SCANNED {
            if counted >= days {
                break;
            }
            day = day + Days::new(1);
            if self.is_working_day(day) {
                counted += 1;
            }
        }
        let end = day + Days::new(1);
        let midnight = end.and_hms_opt(0, 0, 0).unwrap_or_default();
        // A midnight skipped by a daylight-saving change: the first instant after it.
        let local = self
            .time_zone
            .from_local_datetime(&midnight)
            .earliest()
            .or_else(|| {
                self.time_zone
                    .from_local_datetime(&(midnight + chrono::Duration::hours(1)))
                    .earliest()
            });
        match local {
            Some(t) => Timestamp(t.timestamp_millis().max(0) as u64),
            // Unreachable for real time zones; fall back to calendar days.
            None => Timestamp(at.0 + u64::from(days) * 86_400_000),
        }
    }
}

/// Weekdays written `mon` ... `sun`.
mod weekdays {
    use chrono::Weekday;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    const NAMES: [(&str, Weekday); 7] = [
        ("mon", Weekday::Mon),
        ("tue", Weekday::Tue),
        ("wed", Weekday::Wed),
        ("thu", Weekday::Thu),
        ("fri", Weekday::Fri),
        ("sat", Weekday::Sat),
        ("sun", Weekday::Sun),
    ];

    pub fn serialize<S: Serializer>(days: &[Weekday], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            NAMES
                .iter()
                .filter(|(_, d)| days.contains(d))
                .map(|(n, _)| *n),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Weekday>, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        names
            .iter()
            .map(|n| {
                let lower = n.to_ascii_lowercase();
                NAMES
                    .iter()
                    .find(|(name, _)| *name == lower)
                    .map(|(_, day)| *day)
                    .ok_or_else(|| {
                        D::Error::custom(format!(
                            "unknown day {n:?}: use mon, tue, wed, thu, fri, sat or sun"
                        ))
                    })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDateTime;

    fn at(tz: Tz, local: &str) -> Timestamp {
        let t = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M").expect("date");
        Timestamp(
            tz.from_local_datetime(&t)
                .single()
                .expect("local time")
                .timestamp_millis() as u64,
        )
    }

    #[test]
    fn five_working_days_end_at_midnight_of_the_fifth() {
        let paris = WorkCalendar {
            time_zone: chrono_tz::Europe::Paris,
            ..WorkCalendar::default()
        };
        let tz = paris.time_zone;
        // Monday 7 December 2026, 10:00: due by the end of Monday 14th.
        assert_eq!(
            paris.deadline_after(at(tz, "2026-12-07 10:00"), 5),
            at(tz, "2026-12-15 00:00")
        );
        // Saturday 12th: Monday to Friday, due by the end of Friday 18th.
        assert_eq!(
            paris.deadline_after(at(tz, "2026-12-12 15:30"), 5),
            at(tz, "2026-12-19 00:00")
        );
    }

    #[test]
    fn holidays_are_skipped_and_daylight_saving_is_local() {
        let mut cal = WorkCalendar {
            time_zone: chrono_tz::Europe::Paris,
            ..WorkCalendar::default()
        };
        cal.holidays
            .insert(NaiveDate::from_ymd_opt(2026, 12, 25).expect("date"));
        let tz = cal.time_zone;
        // Wednesday 23rd, 2 working days: Thursday 24th, (Friday 25th off), Monday 28th.
        assert_eq!(
            cal.deadline_after(at(tz, "2026-12-23 09:00"), 2),
            at(tz, "2026-12-29 00:00")
        );
        // Across the change to summer time (29 March 2026): still local midnight.
        assert_eq!(
            cal.deadline_after(at(tz, "2026-03-27 12:00"), 1),
            at(tz, "2026-03-31 00:00")
        );
    }

    #[test]
    fn days_are_read_by_name() {
        let cal: WorkCalendar = toml::from_str(
            "time_zone = \"Europe/Paris\"\nworking_days = [\"mon\", \"sat\"]\nholidays = [\"2026-05-01\"]",
        )
        .expect("parse");
        assert!(cal.is_working_day(NaiveDate::from_ymd_opt(2026, 12, 12).expect("sat")));
        assert!(!cal.is_working_day(NaiveDate::from_ymd_opt(2026, 12, 8).expect("tue")));
        let bad = toml::from_str::<WorkCalendar>("working_days = [\"someday\"]");
        assert!(bad.is_err_and(|e| e.to_string().contains("unknown day")));
        assert!(WorkCalendar {
            working_days: Vec::new(),
            ..WorkCalendar::default()
        }
        .validate()
        .is_err());
    }
}
