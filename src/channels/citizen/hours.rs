//! A queue's opening hours for the chat and SMS channels, written like the IVR's
//! `business_hours` node (the same weekday keys and `HH:MM-HH:MM` ranges), in a time zone, and
//! evaluated by the same function.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::ivr::model::{is_open_at, Day, TimeRange};

/// Opening hours: open inside the ranges of the current weekday, closed on holidays and on
/// days without an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpeningHours {
    /// The IANA time zone the hours are read in (default `Europe/Paris`).
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Opening ranges per weekday (`mon = ["08:30-12:00", "13:30-17:30"]`).
    #[serde(default)]
    pub schedule: BTreeMap<Day, Vec<TimeRange>>,
    /// Local dates on which the queue is closed all day (`YYYY-MM-DD`).
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
}

fn default_time_zone() -> String {
    "Europe/Paris".into()
}

const DAYS: [Day; 7] = [
    Day::Mon,
    Day::Tue,
    Day::Wed,
    Day::Thu,
    Day::Fri,
    Day::Sat,
    Day::Sun,
];

impl OpeningHours {
    /// Checks the hours; the message says what to fix.
    pub fn validate(&self) -> Result<(), String> {
        self.tz()?;
        for (day, ranges) in &self.schedule {
            if ranges.len() > 24 {
                return Err(format!("{day:?}: at most 24 ranges a day"));
            }
            for r in ranges {
                r.parse().map_err(|e| format!("{:?}: {e}", r.0))?;
            }
        }
        if self.holidays.len() > 1000 {
            return Err("at most 1000 holidays".into());
        }
        Ok(())
    }

    fn tz(&self) -> Result<Tz, String> {
        self.time_zone
            .parse::<Tz>()
            .map_err(|_| format!("time_zone {:?} is not an IANA time zone", self.time_zone))
    }

    /// Whether the queue is open at `at` (Unix milliseconds).
    pub fn is_open_at(&self, at: crate::core::Timestamp) -> bool {
        let now = i64::try_from(at.0)
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or_default();
        self.is_open(now)
    }

    /// Whether the queue is open at `now`.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        let Ok(tz) = self.tz() else {
            return true;
        };
        is_open_at(&self.schedule, &self.holidays, tz, now)
    }

    /// The hours as lines for people, one per open weekday (`lundi : 08:30–12:00, 13:30–17:30`),
    /// in `language` (`fr` or `en`).
    pub fn lines(&self, language: &str) -> Vec<String> {
        DAYS.iter()
            .filter_map(|day| {
                let ranges = self.schedule.get(day).filter(|r| !r.is_empty())?;
                let ranges: Vec<String> = ranges.iter().map(|r| r.0.replace('-', "–")).collect();
                let sep = if language == "en" { ": " } else { " : " };
                Some(format!(
                    "{}{sep}{}",
                    day_name(*day, language),
                    ranges.join(", ")
                ))
            })
            .collect()
    }
}

fn day_name(day: Day, language: &str) -> &'static str {
    let en = language == "en";
    match day {
        Day::Mon if en => "Monday",
        Day::Tue if en => "Tuesday",
        Day::Wed if en => "Wednesday",
        Day::Thu if en => "Thursday",
        Day::Fri if en => "Friday",
        Day::Sat if en => "Saturday",
        Day::Sun if en => "Sunday",
        Day::Mon => "lundi",
        Day::Tue => "mardi",
        Day::Wed => "mercredi",
        Day::Thu => "jeudi",
        Day::Fri => "vendredi",
        Day::Sat => "samedi",
        Day::Sun => "dimanche",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn hours() -> OpeningHours {
        toml::from_str(
            r#"time_zone = "Europe/Paris"
               schedule = { mon = ["08:30-12:00", "13:30-17:30"], fri = ["09:00-12:00"] }
               holidays = ["2026-12-25"]"#,
        )
        .expect("hours parse")
    }

    #[test]
    fn open_inside_the_ranges_of_the_day_in_its_time_zone() {
        let h = hours();
        h.validate().expect("valid");
        // Monday 7 December 2026, 09:00 in Paris is 08:00 UTC.
        assert!(h.is_open(Utc.with_ymd_and_hms(2026, 12, 7, 8, 0, 0).unwrap()));
        assert!(!h.is_open(Utc.with_ymd_and_hms(2026, 12, 7, 11, 30, 0).unwrap()));
        // Tuesday: no entry.
        assert!(!h.is_open(Utc.with_ymd_and_hms(2026, 12, 8, 9, 0, 0).unwrap()));
        // Friday 25 December: a holiday.
        assert!(!h.is_open(Utc.with_ymd_and_hms(2026, 12, 25, 9, 0, 0).unwrap()));
        assert_eq!(
            h.lines("fr"),
            vec!["lundi : 08:30–12:00, 13:30–17:30", "vendredi : 09:00–12:00"]
        );
        assert_eq!(h.lines("en")[1], "Friday: 09:00–12:00");
    }

    #[test]
    fn bad_hours_say_what_to_fix() {
        let mut h = hours();
        h.time_zone = "Mars/Olympus".into();
        assert!(h.validate().unwrap_err().contains("time_zone"));
        let mut h = hours();
        h.schedule
            .insert(Day::Sun, vec![TimeRange("18:00-09:00".into())]);
        assert!(h.validate().unwrap_err().contains("start must be before"));
    }
}
