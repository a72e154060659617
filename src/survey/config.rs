//! `[surveys]`: the survey task's configuration section, with its defaults and `validate()`.

use serde::{Deserialize, Serialize};

use crate::core::QueueId;

/// `[surveys]`: satisfaction surveys after completed interactions. Asking and taking the answers
/// is [`crate::survey`]'s; the store side (questions, answers, who was asked when, opt-outs) is
/// in [`crate::store::Store::claim_survey_question`] and neighbours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurveysConfig {
    /// Whether surveys are sent at all (default false).
    #[serde(default)]
    pub enabled: bool,
    /// The queues whose completed interactions are surveyed; empty: every queue.
    #[serde(default)]
    pub queues: Vec<QueueId>,
    /// A contact is asked at most once in this many days (default 30).
    #[serde(default = "default_period_days")]
    pub period_days: u32,
    /// A question can be answered for this many days after it was sent (default 7).
    #[serde(default = "default_answer_days")]
    pub answer_days: u32,
    /// Interactions completed longer ago than this many hours are not surveyed (after a long
    /// stop, or when surveys are switched on); default 24.
    #[serde(default = "default_catch_up_hours")]
    pub catch_up_hours: u32,
    /// The prefixes (international format) of mobile numbers: a call's survey goes by SMS only
    /// to a caller whose number starts with one of them. Default: French mobiles
    /// (`+336`, `+337`).
    #[serde(default = "default_mobile_prefixes")]
    pub mobile_prefixes: Vec<String>,
    /// The number a call's survey SMS is sent from; default: the first of `[sms] numbers`.
    #[serde(default)]
    pub sms_from: Option<String>,
}

fn is_international(number: &str) -> bool {
    number
        .strip_prefix('+')
        .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
}

fn default_period_days() -> u32 {
    30
}

fn default_answer_days() -> u32 {
    7
}

fn default_catch_up_hours() -> u32 {
    24
}

fn default_mobile_prefixes() -> Vec<String> {
    vec!["+336".into(), "+337".into()]
}

impl Default for SurveysConfig {
    fn default() -> Self {
        SurveysConfig {
            enabled: false,
            queues: Vec::new(),
            period_days: default_period_days(),
            answer_days: default_answer_days(),
            catch_up_hours: default_catch_up_hours(),
            mobile_prefixes: default_mobile_prefixes(),
            sms_from: None,
        }
    }
}

impl SurveysConfig {
    /// Whether interactions completed in `queue` are surveyed.
    pub fn enabled_for(&self, queue: &QueueId) -> bool {
        self.enabled && (self.queues.is_empty() || self.queues.contains(queue))
    }

    /// The period as milliseconds, for [`crate::store::Store::may_survey`].
    pub fn period_ms(&self) -> u64 {
        u64::from(self.period_days) * 86_400_000
    }

    /// Checks the values; the error says what to change.
    pub fn validate(&self) -> Result<(), String> {
        if self.answer_days == 0 {
            return Err(
                "answer_days must be at least 1: how many days a question can be answered".into(),
            );
        }
        if let Some(p) = self.mobile_prefixes.iter().find(|p| !is_international(p)) {
            return Err(format!(
                "mobile_prefixes: {p:?} is not an international prefix: write it as + and digits (\"+336\")"
            ));
        }
        if let Some(n) = self.sms_from.as_deref().filter(|n| !is_international(n)) {
            return Err(format!(
                "sms_from: {n:?} is not a number in international format: write it as + and digits"
            ));
        }
        Ok(())
    }

    /// How long a question can be answered, in milliseconds.
    pub fn answer_ms(&self) -> u64 {
        u64::from(self.answer_days) * 86_400_000
    }

    /// How old a completion may be and still be surveyed, in milliseconds.
    pub fn catch_up_ms(&self) -> u64 {
        u64::from(self.catch_up_hours) * 3_600_000
    }

    /// Whether `number` (international format, spaces ignored) is a mobile number.
    pub fn is_mobile(&self, number: &str) -> bool {
        let number: String = number.chars().filter(|c| !c.is_whitespace()).collect();
        self.mobile_prefixes
            .iter()
            .any(|p| !p.is_empty() && number.starts_with(p.as_str()))
    }
}
