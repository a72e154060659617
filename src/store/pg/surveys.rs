//! Satisfaction surveys on PostgreSQL: answers (and their share of the daily aggregates),
//! questions asked, sends, opt-outs and the scan of completed interactions. The same rules as
//! SQLite's (`surveys.rs`); only the statements are PostgreSQL's.

use postgres::types::ToSql;

use crate::core::{AgentId, ContactId, InteractionId, Timestamp};

use super::super::surveys::{
    answer_of, answer_question, checked_comment, completions, first_answer, question_of, sql,
    ANSWER_COLUMNS, QUESTION_COLUMNS,
};
use super::super::{
    AnswerRefusal, CompletedInteraction, StoreError, SurveyAnswer, SurveyQuestion, SurveySummary,
    SurveyVia,
};
use super::PgStore;

impl PgStore {
    /// Like [`SqliteStore::record_survey_answer`](super::super::SqliteStore::record_survey_answer).
    pub fn record_survey_answer(&self, answer: &SurveyAnswer, day: &str) -> Result<(), StoreError> {
        first_answer(self.record_answer(answer, day, None)?, answer)
    }

    fn record_answer(
        &self,
        answer: &SurveyAnswer,
        day: &str,
        question: Option<(&str, Option<&str>)>,
    ) -> Result<bool, StoreError> {
        let comment = checked_comment(answer)?;
        let err = |e| self.err(e);
        self.with_tx(|tx| {
            let inserted = tx
                .execute(
                    sql::INSERT_ANSWER,
                    &[
                        &answer.interaction.to_string(),
                        &answer.contact.as_ref().map(|c| c.as_str()),
                        &answer.agent.as_ref().map(|a| a.as_str()),
                        &answer.queue.as_str(),
                        &answer.channel.as_str(),
                        &i64::from(answer.score),
                        &comment,
                        &(answer.at.0 as i64),
                    ],
                )
                .map_err(err)?;
            if inserted == 0 {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO indicator_days (day, queue, channel, survey_answers, survey_score_total) \
                 VALUES ($1, $2, $3, 1, $4) ON CONFLICT (day, queue, channel) DO UPDATE SET \
                 survey_answers = indicator_days.survey_answers + 1, \
                 survey_score_total = indicator_days.survey_score_total + excluded.survey_score_total",
                &[
                    &day,
                    &answer.queue.as_str(),
                    &answer.channel.as_str(),
                    &i64::from(answer.score),
                ],
            )
            .map_err(err)?;
            if let Some((token, answer_message)) = question {
                tx.execute(
                    "UPDATE survey_questions SET answered_at = $2, answer_message = $3 WHERE token = $1",
                    &[&token, &(answer.at.0 as i64), &answer_message],
                )
                .map_err(err)?;
            }
            Ok(true)
        })
    }

    /// Like [`SqliteStore::survey_answer`](super::super::SqliteStore::survey_answer).
    pub fn survey_answer(
        &self,
        interaction: &InteractionId,
    ) -> Result<Option<SurveyAnswer>, StoreError> {
        let row = self
            .conn()
            .query_opt(
                &format!("SELECT {ANSWER_COLUMNS} FROM survey_answers WHERE interaction = $1"),
                &[&interaction.to_string()],
            )
            .map_err(|e| self.err(e))?;
        row.map(|r| answer_of(&r).map_err(|d| self.decode_err("survey_answers", d)))
            .transpose()
    }

    /// Like [`SqliteStore::survey_summary_by_agent`](super::super::SqliteStore::survey_summary_by_agent).
    pub fn survey_summary_by_agent(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(Option<AgentId>, SurveySummary)>, StoreError> {
        let rows = self
            .conn()
            .query(
                "SELECT agent, COUNT(*), SUM(score)::BIGINT FROM survey_answers \
                 WHERE at >= $1 AND at < $2 GROUP BY agent ORDER BY agent",
                &[&(from.0 as i64), &(to.0 as i64)],
            )
            .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get::<_, Option<String>>(0).map(AgentId::from),
                    SurveySummary {
                        answers: r.get::<_, i64>(1).max(0) as u64,
                        score_total: r.get::<_, Option<i64>>(2).unwrap_or(0).max(0) as u64,
                    },
                )
            })
            .collect())
    }

    /// Like [`SqliteStore::survey_comments`](super::super::SqliteStore::survey_comments).
    pub fn survey_comments(
        &self,
        from: Timestamp,
        to: Timestamp,
        agent: Option<&AgentId>,
        limit: usize,
    ) -> Result<Vec<SurveyAnswer>, StoreError> {
        let rows = self
            .conn()
            .query(
                &format!(
                    "SELECT {ANSWER_COLUMNS} FROM survey_answers WHERE at >= $1 AND at < $2 \
                     AND comment IS NOT NULL AND ($3::TEXT IS NULL OR agent = $3::TEXT) \
                     ORDER BY at DESC LIMIT $4"
                ),
                &[
                    &(from.0 as i64),
                    &(to.0 as i64),
                    &agent.map(|a| a.as_str()),
                    &(limit as i64),
                ],
            )
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| answer_of(r).map_err(|d| self.decode_err("survey_answers", d)))
            .collect()
    }

    /// Like [`SqliteStore::may_survey`](super::super::SqliteStore::may_survey).
    pub fn may_survey(
        &self,
        contact: &ContactId,
        now: Timestamp,
        period_ms: u64,
    ) -> Result<bool, StoreError> {
        let since = now.0.saturating_sub(period_ms) as i64;
        let row = self
            .conn()
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM survey_opt_out WHERE contact = $1), \
                 EXISTS (SELECT 1 FROM survey_sent WHERE contact = $1 AND at > $2)",
                &[&contact.as_str(), &since],
            )
            .map_err(|e| self.err(e))?;
        let opted_out: bool = row.get(0);
        let recent: bool = row.get(1);
        Ok(!opted_out && !recent)
    }

    /// Like [`SqliteStore::record_survey_sent`](super::super::SqliteStore::record_survey_sent).
    pub fn record_survey_sent(
        &self,
        contact: &ContactId,
        interaction: &InteractionId,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                sql::PUT_SENT,
                &[&contact.as_str(), &interaction.to_string(), &(at.0 as i64)],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Like [`SqliteStore::opt_out`](super::super::SqliteStore::opt_out).
    pub fn opt_out(&self, contact: &ContactId, at: Timestamp) -> Result<(), StoreError> {
        self.conn()
            .execute(sql::OPT_OUT, &[&contact.as_str(), &(at.0 as i64)])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Like [`SqliteStore::opt_in`](super::super::SqliteStore::opt_in).
    pub fn opt_in(&self, contact: &ContactId) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .execute(sql::OPT_IN, &[&contact.as_str()])
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    /// Like [`SqliteStore::has_opted_out`](super::super::SqliteStore::has_opted_out).
    pub fn has_opted_out(&self, contact: &ContactId) -> Result<bool, StoreError> {
        self.conn()
            .query_one(sql::OPTED_OUT, &[&contact.as_str()])
            .map(|r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Like [`SqliteStore::claim_survey_question`](super::super::SqliteStore::claim_survey_question).
    pub fn claim_survey_question(&self, q: &SurveyQuestion) -> Result<bool, StoreError> {
        let fence = self.config.fence.clone();
        let err = |e| self.err(e);
        self.with_tx(|tx| {
            // With high availability the claim is the leader's term's: a node whose term is over
            // claims nothing (and steps down); the question's row is then the one claim,
            // whichever leader asks.
            super::journal::fenced(tx, fence.as_ref(), self.target())?;
            let inserted = tx
                .execute(
                    sql::INSERT_QUESTION,
                    &[
                        &q.token,
                        &q.interaction.to_string(),
                        &q.contact.as_ref().map(|c| c.as_str()),
                        &q.agent.as_ref().map(|a| a.as_str()),
                        &q.queue.as_str(),
                        &q.channel.as_str(),
                        &q.via.as_str(),
                        &q.address,
                        &q.message,
                        &q.language,
                        &(q.asked_at.0 as i64),
                    ],
                )
                .map_err(err)?;
            if inserted == 0 {
                return Ok(false);
            }
            if let Some(contact) = &q.contact {
                tx.execute(
                    sql::PUT_SENT,
                    &[
                        &contact.as_str(),
                        &q.interaction.to_string(),
                        &(q.asked_at.0 as i64),
                    ],
                )
                .map_err(err)?;
            }
            Ok(true)
        })
    }

    fn survey_question_where(
        &self,
        clause: &str,
        args: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<SurveyQuestion>, StoreError> {
        let row = self
            .conn()
            .query_opt(
                &format!("SELECT {QUESTION_COLUMNS} FROM survey_questions WHERE {clause}"),
                args,
            )
            .map_err(|e| self.err(e))?;
        row.map(|r| question_of(&r).map_err(|d| self.decode_err("survey_questions", d)))
            .transpose()
    }

    /// Like [`SqliteStore::survey_question`](super::super::SqliteStore::survey_question).
    pub fn survey_question(&self, token: &str) -> Result<Option<SurveyQuestion>, StoreError> {
        self.survey_question_where(sql::BY_TOKEN, &[&token])
    }

    /// Like [`SqliteStore::survey_question_of`](super::super::SqliteStore::survey_question_of).
    pub fn survey_question_of(
        &self,
        interaction: InteractionId,
    ) -> Result<Option<SurveyQuestion>, StoreError> {
        self.survey_question_where(sql::BY_INTERACTION, &[&interaction.to_string()])
    }

    /// Like [`SqliteStore::survey_question_by_message`](super::super::SqliteStore::survey_question_by_message).
    pub fn survey_question_by_message(
        &self,
        message: &str,
    ) -> Result<Option<SurveyQuestion>, StoreError> {
        self.survey_question_where(sql::BY_MESSAGE, &[&message])
    }

    /// Like [`SqliteStore::survey_answered_by`](super::super::SqliteStore::survey_answered_by).
    pub fn survey_answered_by(&self, message: &str) -> Result<bool, StoreError> {
        Ok(self.survey_question_answered_by(message)?.is_some())
    }

    /// Like [`SqliteStore::survey_question_answered_by`](super::super::SqliteStore::survey_question_answered_by).
    pub fn survey_question_answered_by(
        &self,
        message: &str,
    ) -> Result<Option<SurveyQuestion>, StoreError> {
        self.survey_question_where(sql::BY_ANSWER_MESSAGE, &[&message])
    }

    /// Like [`SqliteStore::pending_survey_to`](super::super::SqliteStore::pending_survey_to).
    pub fn pending_survey_to(
        &self,
        via: SurveyVia,
        address: &str,
        since: Timestamp,
    ) -> Result<Option<SurveyQuestion>, StoreError> {
        self.survey_question_where(
            sql::PENDING_TO,
            &[&via.as_str(), &address, &(since.0 as i64)],
        )
    }

    /// Like [`SqliteStore::answer_survey`](super::super::SqliteStore::answer_survey).
    #[allow(clippy::too_many_arguments)]
    pub fn answer_survey(
        &self,
        token: &str,
        score: u8,
        comment: Option<&str>,
        answer_message: Option<&str>,
        at: Timestamp,
        not_before: Timestamp,
        day: &str,
    ) -> Result<Result<SurveyQuestion, AnswerRefusal>, StoreError> {
        let question = self.survey_question(token)?;
        answer_question(question, score, comment, at, not_before, |answer| {
            self.record_answer(answer, day, Some((token, answer_message)))
        })
    }

    /// Like [`SqliteStore::survey_completions`](super::super::SqliteStore::survey_completions).
    pub fn survey_completions(
        &self,
        limit: usize,
    ) -> Result<(Vec<CompletedInteraction>, u64), StoreError> {
        let mut conn = self.conn();
        let (checkpoint, end) = self.checkpoint_and_end(&mut conn, "survey_checkpoint")?;
        let rows = conn
            .query(
                sql::COMPLETIONS,
                &[&(checkpoint as i64), &(end as i64), &(limit as i64)],
            )
            .map_err(|e| self.err(e))?;
        let rows = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
        Ok(completions(rows, limit, checkpoint, end))
    }

    /// Like [`SqliteStore::set_survey_checkpoint`](super::super::SqliteStore::set_survey_checkpoint)
    /// (never moves back).
    pub fn set_survey_checkpoint(&self, seq: u64) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO meta (key, value) VALUES ('survey_checkpoint', $1) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value \
                 WHERE meta.value::NUMERIC < excluded.value::NUMERIC",
                &[&seq.to_string()],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}
