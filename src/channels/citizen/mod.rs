//! The citizen's side of every channel: where a request stands and keeping its sender informed.
//!
//! This module owns the `[citizen]` configuration ([`CitizenConfig`]: opening hours of the
//! queues that take chats and SMS, the SMS acknowledgement), the reference shown to citizens
//! ([`reference`]), the wording of an expected delay next to the announced one
//! ([`expected_delay`]) and the notices sent when a request is moved to another service or its
//! announced delay is exceeded ([`notices`]). The public pages every deployment has (the
//! accessibility statement, the favicon) are in [`crate::http::public`].
//!
//! The expected wait itself is defined once, in [`crate::core::Pace`], and read through
//! [`crate::engine::Engine::expected_wait_ms`].

pub mod hours;
pub mod notices;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::core::{AnnouncedDelay, InteractionId};

pub use hours::OpeningHours;

/// `[citizen]`: what citizens are told about where their request stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CitizenConfig {
    /// Opening hours per queue (`[citizen.hours.general]`), for the chat widget and SMS: when a
    /// queue is closed, the widget shows its hours instead of starting a chat and an SMS is
    /// answered with them. A queue without an entry is always open.
    #[serde(default)]
    pub hours: BTreeMap<String, OpeningHours>,
    /// Whether a new SMS conversation is acknowledged by SMS with its reference and the delay
    /// to expect (default false).
    #[serde(default)]
    pub sms_acknowledgement: bool,
    /// Seconds between two checks for requests past their announced delay (1 to 3600,
    /// default 60).
    #[serde(default = "default_late_check_secs")]
    pub late_check_secs: u64,
    /// What a chat started while no agent able to take it is signed in does: `message` (the
    /// default: the widget offers to leave a message answered by email) or `wait` (the chat
    /// starts and waits).
    #[serde(default)]
    pub unstaffed_chats: UnstaffedChats,
}

/// What a chat started while nobody is signed in to its queue does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnstaffedChats {
    /// Not started: the visitor may leave a message, answered by email.
    #[default]
    Message,
    /// Started: it waits for an agent to sign in.
    Wait,
}

fn default_late_check_secs() -> u64 {
    60
}

impl Default for CitizenConfig {
    fn default() -> Self {
        CitizenConfig {
            hours: BTreeMap::new(),
            sms_acknowledgement: false,
            late_check_secs: default_late_check_secs(),
            unstaffed_chats: UnstaffedChats::default(),
        }
    }
}

impl CitizenConfig {
    /// Checks the settings; the message says what to fix.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=3600).contains(&self.late_check_secs) {
            return Err("late_check_secs must be between 1 and 3600".into());
        }
        if self.hours.len() > 1000 {
            return Err("hours may list at most 1000 queues".into());
        }
        for (queue, hours) in &self.hours {
            hours
                .validate()
                .map_err(|e| format!("hours.{queue}: {e}"))?;
        }
        Ok(())
    }

    /// The opening hours of `queue`, if it has some.
    pub fn hours_of(&self, queue: &str) -> Option<&OpeningHours> {
        self.hours.get(queue)
    }
}

/// The reference citizens are given for `interaction` (in acknowledgements, notices, the chat
/// and the survey page). Every citizen-facing text goes through this one function.
pub fn reference(interaction: InteractionId) -> String {
    interaction.reference().to_string()
}

/// What an acknowledgement tells about delays: the delay announced for `channel` in `queue`,
/// and the expected one when known and worth saying ([`expected_delay`], from the place of
/// `interaction` in line; never without an announced delay). Both none when the router cannot
/// be read.
pub async fn acknowledged_delays(
    engine: &crate::engine::Engine,
    queue: &crate::core::QueueId,
    channel: crate::core::Channel,
    interaction: InteractionId,
) -> (Option<AnnouncedDelay>, Option<u64>) {
    let q = queue.clone();
    let (announced, position) = engine
        .read(move |r| {
            let delay = r.queue(&q).map(|q| q.config.announced_delay(channel));
            let position = r
                .waiting_in_queue(&q)
                .iter()
                .position(|i| *i == interaction)
                .map(|p| p + 1);
            (delay, position)
        })
        .await
        .unwrap_or((None, None));
    let expected = expected_delay(
        announced,
        position.and_then(|p| engine.expected_wait_ms(queue, p)),
    )
    .filter(|_| announced.is_some());
    (announced, expected)
}

/// The expected delay, in seconds, when it differs enough from the announced one to be worth
/// saying: known, and at least a quarter longer or shorter than the announced delay (a delay
/// announced in working days counts as that many days of 24 hours).
pub fn expected_delay(announced: Option<AnnouncedDelay>, expected_ms: Option<u64>) -> Option<u64> {
    let expected = expected_ms?.div_ceil(1000);
    let announced = match announced {
        Some(AnnouncedDelay::Secs(s)) => s,
        Some(AnnouncedDelay::WorkingDays(d)) => u64::from(d) * 86_400,
        None => return Some(expected),
    };
    let differs = expected.saturating_mul(4) >= announced.saturating_mul(5)
        || expected.saturating_mul(4) <= announced.saturating_mul(3);
    differs.then_some(expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_delay_is_said_when_it_differs_by_a_quarter() {
        let a = Some(AnnouncedDelay::Secs(3600));
        assert_eq!(expected_delay(a, None), None);
        assert_eq!(expected_delay(a, Some(3_600_000)), None);
        assert_eq!(expected_delay(a, Some(4_000_000)), None);
        assert_eq!(expected_delay(a, Some(4_500_000)), Some(4500));
        assert_eq!(expected_delay(a, Some(2_700_000)), Some(2700));
        assert_eq!(expected_delay(None, Some(60_000)), Some(60));
        let days = Some(AnnouncedDelay::WorkingDays(1));
        assert_eq!(expected_delay(days, Some(200_000_000)), Some(200_000));
    }
}
