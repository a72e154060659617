//! Business hours in the tree's time zone: open, closed, holidays, across DST changes.

use crate::ivr_common;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Europe::Paris;
use ivr_common::{tree, utc};
use serde_json::{json, Value};

use guichet::ivr::model::{BusinessHoursNode, MinuteRange, TimeRange, TimeRangeError};
use guichet::ivr::{CallSession, Node, Outcome, Step};

fn office() -> Value {
    json!({
        "name": "hours",
        "languages": ["fr-FR"],
        "default_language": "fr-FR",
        "timezone": "Europe/Paris",
        "entry": "hours",
        "nodes": {
            "hours": {"type": "business_hours",
                      "schedule": {"mon": ["08:30-17:30"], "tue": ["08:30-17:30"], "wed": ["08:30-17:30"],
                                   "thu": ["08:30-17:30"], "fri": ["08:30-12:00", "13:30-17:30"],
                                   "sunday": ["02:00-03:30"]},
                      "holidays": ["2025-05-01", "2025-12-25"],
                      "open": "agents", "closed": "vm"},
            "agents": {"type": "queue", "queue": "general"},
            "vm": {"type": "voicemail", "prompt": {"text": {"fr-FR": "Laissez un message"}}, "queue": "general"}
        }
    })
}

/// Where a call placed at `at` ends: "open" or "closed".
fn route(value: Value, at: DateTime<Utc>) -> &'static str {
    let (_, step) = CallSession::start(Arc::new(tree(value)), "+33612345678", "+33100000000", at);
    match step {
        Step::Outcome(Outcome::Queue { .. }) => "open",
        Step::Outcome(Outcome::Voicemail { .. }) => "closed",
        other => panic!("unexpected step {other:?}"),
    }
}

fn hours_node(value: Value) -> BusinessHoursNode {
    match tree(value).nodes.remove("hours") {
        Some(Node::BusinessHours(b)) => b,
        other => panic!("expected business hours, got {other:?}"),
    }
}

#[test]
fn office_tree_is_valid() {
    assert_eq!(tree(office()).validate(), Ok(()));
}

#[test]
fn open_and_closed_follow_local_time_across_spring_dst_change() {
    // Friday 28 March 2025 is CET (UTC+1); Monday 31 March 2025 is CEST (UTC+2).
    // 07:00 UTC: 08:00 in Paris on Friday (closed), 09:00 on Monday (open).
    assert_eq!(route(office(), utc(2025, 3, 28, 7, 0)), "closed");
    assert_eq!(route(office(), utc(2025, 3, 31, 7, 0)), "open");
    // 07:45 UTC: 08:45 / 09:45, open on both days.
    assert_eq!(route(office(), utc(2025, 3, 28, 7, 45)), "open");
    assert_eq!(route(office(), utc(2025, 3, 31, 7, 45)), "open");
    // 15:45 UTC: 16:45 on Friday (open), 17:45 on Monday (closed).
    assert_eq!(route(office(), utc(2025, 3, 28, 15, 45)), "open");
    assert_eq!(route(office(), utc(2025, 3, 31, 15, 45)), "closed");
    // Friday lunch break: 12:15 CET.
    assert_eq!(route(office(), utc(2025, 3, 28, 11, 15)), "closed");
}

#[test]
fn the_night_of_the_change_uses_the_wall_clock() {
    // Sunday 30 March 2025: clocks jump from 02:00 to 03:00. Open 02:00-03:30 local.
    // 00:45 UTC = 01:45 CET (closed); 01:15 UTC = 03:15 CEST (open); 01:45 UTC = 03:45 (closed).
    assert_eq!(route(office(), utc(2025, 3, 30, 0, 45)), "closed");
    assert_eq!(route(office(), utc(2025, 3, 30, 1, 15)), "open");
    assert_eq!(route(office(), utc(2025, 3, 30, 1, 45)), "closed");
}

#[test]
fn open_and_closed_follow_local_time_across_autumn_dst_change() {
    // Friday 24 October 2025 is CEST (UTC+2); Monday 27 October 2025 is CET (UTC+1).
    // 16:15 UTC: 18:15 on Friday (closed), 17:15 on Monday (open).
    assert_eq!(route(office(), utc(2025, 10, 24, 16, 15)), "closed");
    assert_eq!(route(office(), utc(2025, 10, 27, 16, 15)), "open");
    // 06:45 UTC: 08:45 on Friday (open), 07:45 on Monday (closed).
    assert_eq!(route(office(), utc(2025, 10, 24, 6, 45)), "open");
    assert_eq!(route(office(), utc(2025, 10, 27, 6, 45)), "closed");
}

#[test]
fn holidays_are_closed_all_day() {
    // Thursday 1 May 2025, 10:00 in Paris: a weekday within hours, but a public holiday.
    assert_eq!(route(office(), utc(2025, 5, 1, 8, 0)), "closed");
    assert_eq!(route(office(), utc(2025, 5, 2, 8, 0)), "open");
}

#[test]
fn holidays_are_local_dates() {
    let mut v = office();
    let all_day = json!(["00:00-24:00"]);
    for day in ["mon", "tue", "wed", "thu", "fri", "sat"] {
        v["nodes"]["hours"]["schedule"][day] = all_day.clone();
    }
    // 22:30 UTC on 24 December is 23:30 in Paris (open); 23:30 UTC is already
    // 00:30 on the 25th in Paris, a holiday, although still the 24th in UTC.
    assert_eq!(route(v.clone(), utc(2025, 12, 24, 22, 30)), "open");
    assert_eq!(route(v, utc(2025, 12, 24, 23, 30)), "closed");
}

#[test]
fn weekends_without_ranges_are_closed() {
    // Saturday 29 March 2025, 11:00 in Paris.
    assert_eq!(route(office(), utc(2025, 3, 29, 10, 0)), "closed");
}

#[test]
fn is_open_checks_start_inclusive_end_exclusive() {
    let hours = hours_node(office());
    // Monday 31 March 2025 (CEST): 08:30 local is 06:30 UTC, 17:30 local is 15:30 UTC.
    assert!(!hours.is_open(Paris, utc(2025, 3, 31, 6, 29)));
    assert!(hours.is_open(Paris, utc(2025, 3, 31, 6, 30)));
    assert!(hours.is_open(Paris, utc(2025, 3, 31, 15, 29)));
    assert!(!hours.is_open(Paris, utc(2025, 3, 31, 15, 30)));
}

#[test]
fn time_ranges_parse() {
    let r = |s: &str| TimeRange(s.to_owned()).parse();
    assert_eq!(
        r("08:30-17:30"),
        Ok(MinuteRange {
            start: 510,
            end: 1050
        })
    );
    assert_eq!(
        r(" 8:30 - 12:00 "),
        Ok(MinuteRange {
            start: 510,
            end: 720
        })
    );
    assert_eq!(
        r("00:00-24:00"),
        Ok(MinuteRange {
            start: 0,
            end: 1440
        })
    );
    assert_eq!(r("17:30-08:30"), Err(TimeRangeError::NotIncreasing));
    assert_eq!(r("09:00-09:00"), Err(TimeRangeError::NotIncreasing));
    assert_eq!(r("24:00-24:00"), Err(TimeRangeError::OutOfRange));
    assert_eq!(r("09:60-10:00"), Err(TimeRangeError::OutOfRange));
    assert_eq!(r("24:30-24:45"), Err(TimeRangeError::OutOfRange));
    assert_eq!(r("9h-10h"), Err(TimeRangeError::Malformed));
    assert_eq!(r("0900-1000"), Err(TimeRangeError::Malformed));
    assert_eq!(r("09:0-10:00"), Err(TimeRangeError::Malformed));
    assert_eq!(r(""), Err(TimeRangeError::Malformed));
}
