//! Satisfaction surveys, store side: the answers (score 1–5 and a free comment, tied to the
//! interaction, its agent, queue and channel), when each contact was last asked, and who opted
//! out. Sending the question is the notify module's job; it calls [`Store::may_survey`] before
//! asking, [`Store::record_survey_sent`] once asked, [`Store::record_survey_answer`] when the
//! answer comes back and [`Store::opt_out`] on "STOP".
//!
//! Recording an answer also adds it to the day's indicator aggregates (in the same transaction),
//! so that the published satisfaction figures survive GDPR erasure, which removes the contact
//! from the answers (the score and comment stay, anonymous) and forgets when it was asked; the
//! opt-out is kept, so that erasure never makes the service ask again someone who said STOP.

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use crate::core::{AgentId, Channel, ContactId, InteractionId, QueueId, Timestamp};

use super::db::Store;
use super::error::{SqlContext, StoreError};
use super::indicators::add_to_day;

/// A satisfaction answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyAnswer {
    /// The interaction the survey was about (one answer per interaction).
    pub interaction: InteractionId,
    /// The contact who answered, if known.
    pub contact: Option<ContactId>,
    /// The agent who handled the interaction.
    pub agent: Option<AgentId>,
    /// The interaction's queue.
    pub queue: QueueId,
    /// The interaction's channel.
    pub channel: Channel,
    /// The score, 1 (very dissatisfied) to 5 (very satisfied).
    pub score: u8,
    /// The free comment, if any.
    pub comment: Option<String>,
    /// When the answer was received.
    pub at: Timestamp,
}

/// The longest comment kept, in characters; longer ones are cut.
pub const MAX_SURVEY_COMMENT_CHARS: usize = 2000;

/// Satisfaction answers summed over a set of rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SurveySummary {
    /// Answers.
    pub answers: u64,
    /// The sum of their scores.
    pub score_total: u64,
}

impl SurveySummary {
    /// The average score, `None` without answers.
    pub fn average(&self) -> Option<f64> {
        (self.answers > 0).then(|| self.score_total as f64 / self.answers as f64)
    }
}

impl Store {
    /// Records a satisfaction answer and adds it to the indicator aggregates of `day` (the day
    /// of `answer.at` in the indicators' time zone: pass
    /// `config.indicators.day_of(answer.at)`). Refused with [`StoreError::Invalid`] when the
    /// score is not 1 to 5 or the interaction already has an answer (nothing is changed then).
    pub fn record_survey_answer(&self, answer: &SurveyAnswer, day: &str) -> Result<(), StoreError> {
        if !(1..=5).contains(&answer.score) {
            return Err(StoreError::Invalid(format!(
                "survey score {} is out of range: give 1 (very dissatisfied) to 5 (very satisfied)",
                answer.score
            )));
        }
        let comment = answer
            .comment
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(|c| c.chars().take(MAX_SURVEY_COMMENT_CHARS).collect::<String>());
        let path = self.path().to_owned();
        let mut conn = self.conn();
        // Immediate: the write lock is taken first, so that a commit of the journal in between
        // cannot make this transaction's read stale (SQLITE_BUSY_SNAPSHOT).
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(&path)?;
        let inserted = tx
            .execute(
                "INSERT INTO survey_answers \
                 (interaction, contact, agent, queue, channel, score, comment, at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (interaction) DO NOTHING",
                params![
                    answer.interaction.to_string(),
                    answer.contact.as_ref().map(|c| c.as_str()),
                    answer.agent.as_ref().map(|a| a.as_str()),
                    answer.queue.as_str(),
                    answer.channel.as_str(),
                    answer.score,
                    comment,
                    answer.at.0 as i64,
                ],
            )
            .at(&path)?;
        if inserted == 0 {
            return Err(StoreError::Invalid(format!(
                "interaction {} already has a survey answer: only the first one counts",
                answer.interaction
            )));
        }
        add_to_day(
            &tx,
            (day, answer.queue.as_str(), answer.channel.as_str()),
            &[
                ("survey_answers", 1),
                ("survey_score_total", i64::from(answer.score)),
            ],
        )
        .at(&path)?;
        tx.commit().at(&path)
    }

    /// The answer recorded for an interaction, if any.
    pub fn survey_answer(
        &self,
        interaction: &InteractionId,
    ) -> Result<Option<SurveyAnswer>, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        conn.query_row(
            "SELECT contact, agent, queue, channel, score, comment, at FROM survey_answers \
             WHERE interaction = ?1",
            params![interaction.to_string()],
            |r| {
                let channel: String = r.get(3)?;
                Ok(SurveyAnswer {
                    interaction: *interaction,
                    contact: r.get::<_, Option<String>>(0)?.map(ContactId::from),
                    agent: r.get::<_, Option<String>>(1)?.map(AgentId::from),
                    queue: QueueId::from(r.get::<_, String>(2)?),
                    channel: channel.parse().unwrap_or(Channel::Chat),
                    score: r.get(4)?,
                    comment: r.get(5)?,
                    at: Timestamp(r.get::<_, i64>(6)?.max(0) as u64),
                })
            },
        )
        .optional()
        .at(&path)
    }

    /// The answers received in `[from, to)`, per agent (`None`: answers without an agent).
    pub fn survey_summary_by_agent(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(Option<AgentId>, SurveySummary)>, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT agent, COUNT(*), SUM(score) FROM survey_answers \
                 WHERE at >= ?1 AND at < ?2 GROUP BY agent ORDER BY agent",
            )
            .at(&path)?;
        let rows = stmt
            .query_map(params![from.0 as i64, to.0 as i64], |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?.map(AgentId::from),
                    SurveySummary {
                        answers: r.get::<_, i64>(1)?.max(0) as u64,
                        score_total: r.get::<_, i64>(2)?.max(0) as u64,
                    },
                ))
            })
            .at(&path)?;
        rows.collect::<Result<Vec<_>, _>>().at(&path)
    }

    /// Whether `contact` may be asked a survey question at `now`: it has not opted out, and was
    /// not asked within the last `period_ms` milliseconds.
    pub fn may_survey(
        &self,
        contact: &ContactId,
        now: Timestamp,
        period_ms: u64,
    ) -> Result<bool, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        let opted_out: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM survey_opt_out WHERE contact = ?1)",
                params![contact.as_str()],
                |r| r.get(0),
            )
            .at(&path)?;
        if opted_out {
            return Ok(false);
        }
        let since = now.0.saturating_sub(period_ms) as i64;
        let recent: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM survey_sent WHERE contact = ?1 AND at > ?2)",
                params![contact.as_str(), since],
                |r| r.get(0),
            )
            .at(&path)?;
        Ok(!recent)
    }

    /// Records that `contact` was asked about `interaction` at `at` (for [`Store::may_survey`]).
    pub fn record_survey_sent(
        &self,
        contact: &ContactId,
        interaction: &InteractionId,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        conn.execute(
            "INSERT INTO survey_sent (contact, interaction, at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (contact, interaction) DO UPDATE SET at = excluded.at",
            params![contact.as_str(), interaction.to_string(), at.0 as i64],
        )
        .at(&path)?;
        Ok(())
    }

    /// Records that `contact` does not want to be surveyed any more ("STOP"). Idempotent.
    pub fn opt_out(&self, contact: &ContactId, at: Timestamp) -> Result<(), StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        conn.execute(
            "INSERT INTO survey_opt_out (contact, at) VALUES (?1, ?2) \
             ON CONFLICT (contact) DO NOTHING",
            params![contact.as_str(), at.0 as i64],
        )
        .at(&path)?;
        Ok(())
    }

    /// Lets `contact` be surveyed again (it asked to). Returns whether it had opted out.
    pub fn opt_in(&self, contact: &ContactId) -> Result<bool, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        let n = conn
            .execute(
                "DELETE FROM survey_opt_out WHERE contact = ?1",
                params![contact.as_str()],
            )
            .at(&path)?;
        Ok(n > 0)
    }

    /// Whether `contact` opted out of surveys.
    pub fn has_opted_out(&self, contact: &ContactId) -> Result<bool, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM survey_opt_out WHERE contact = ?1)",
            params![contact.as_str()],
            |r| r.get(0),
        )
        .at(&path)
    }
}

/// Removes the contact from its survey answers and forgets when it was asked (GDPR erasure,
/// inside the erasure's transaction). The opt-out stays.
pub(crate) fn erase_contact(
    tx: &rusqlite::Connection,
    contact: &ContactId,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE survey_answers SET contact = NULL WHERE contact = ?1",
        params![contact.as_str()],
    )?;
    tx.execute(
        "DELETE FROM survey_sent WHERE contact = ?1",
        params![contact.as_str()],
    )?;
    Ok(())
}
