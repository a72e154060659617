//! Observability and public accountability: Prometheus metrics derived from committed events
//! ([`metrics`]), the durable daily aggregates and the public quality indicators computed from
//! them ([`indicators`], rendered as an accessible bilingual page by [`page`]), and the
//! configuration of logs (`[log]`) and indicators (`[indicators]`).
//!
//! Nothing here runs inside the routing core: metrics and aggregates are fed by engine
//! subscribers, off the router's task.

pub mod errors;
pub mod indicators;
pub mod metrics;
pub mod page;
pub mod process;

use serde::{Deserialize, Serialize};

use crate::core::Timestamp;

/// `[log]`: how the server writes its logs (to stderr). The level comes from `RUST_LOG`
/// (default `info`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (one readable line per event, the default) or `json` (one JSON object per line,
    /// with the span fields such as `interaction_id` and `agent_id`).
    #[serde(default)]
    pub format: LogFormat,
}

/// A log format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[indicators]`: the public quality indicators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndicatorsConfig {
    /// The IANA time zone that decides which day an interaction belongs to (for example
    /// `Europe/Paris`); default `UTC`. Changing it applies to interactions counted from then on.
    #[serde(default = "default_time_zone")]
    pub time_zone: chrono_tz::Tz,
    /// The service's name shown as the page title (default: "Guichet").
    #[serde(default = "default_service_name")]
    pub service_name: String,
}

fn default_time_zone() -> chrono_tz::Tz {
    chrono_tz::UTC
}

fn default_service_name() -> String {
    "Guichet".into()
}

impl Default for IndicatorsConfig {
    fn default() -> Self {
        IndicatorsConfig {
            time_zone: default_time_zone(),
            service_name: default_service_name(),
        }
    }
}

impl IndicatorsConfig {
    /// The day of `at` in the configured time zone.
    pub fn date_of(&self, at: Timestamp) -> chrono::NaiveDate {
        use chrono::TimeZone;
        let utc = chrono::Utc
            .timestamp_millis_opt(i64::try_from(at.0).unwrap_or(i64::MAX))
            .single()
            .unwrap_or_default();
        utc.with_timezone(&self.time_zone).date_naive()
    }

    /// The day of `at` in the configured time zone, as `YYYY-MM-DD` (the aggregates' key).
    pub fn day_of(&self, at: Timestamp) -> String {
        self.date_of(at).format("%Y-%m-%d").to_string()
    }
}
