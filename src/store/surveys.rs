//! Satisfaction surveys, store side: the questions sent (one per interaction, with the token
//! that answers it and where it was sent), the answers (score 1–5 and a free comment, tied to the
//! interaction, its agent, queue and channel), when each contact was last asked, and who opted
//! out. The survey module ([`crate::survey`]) calls [`SqliteStore::may_survey`] before asking,
//! [`SqliteStore::claim_survey_question`] to record the question (and that the contact was asked),
//! [`SqliteStore::answer_survey`] when the answer comes back and [`SqliteStore::opt_out`] on "STOP".
//!
//! Recording an answer also adds it to the day's indicator aggregates (in the same transaction),
//! so that the published satisfaction figures survive GDPR erasure, which removes the contact
//! from the answers (the score and comment stay, anonymous) and forgets when it was asked; the
//! opt-out is kept, so that erasure never makes the service ask again someone who said STOP.

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use crate::core::{AgentId, Channel, ContactId, InteractionId, QueueId, Timestamp};

use super::db::{checkpoint_and_end, SqliteStore};
use super::error::{SqlContext, StoreError};
use super::indicators::add_to_day;
use super::row::RowRead;

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

/// The SQL of schema version 7: the survey questions sent.
pub(crate) const V7_SQL: &str = "
CREATE TABLE survey_questions (
    token TEXT PRIMARY KEY,
    interaction TEXT NOT NULL UNIQUE,
    contact TEXT,
    agent TEXT,
    queue TEXT NOT NULL,
    channel TEXT NOT NULL,
    via TEXT NOT NULL,
    address TEXT,
    message TEXT NOT NULL,
    language TEXT NOT NULL,
    asked_at INTEGER NOT NULL,
    answered_at INTEGER,
    answer_message TEXT
);
CREATE INDEX survey_questions_address ON survey_questions (via, address, asked_at)
    WHERE address IS NOT NULL;
CREATE INDEX survey_questions_message ON survey_questions (message);
CREATE INDEX survey_questions_contact ON survey_questions (contact) WHERE contact IS NOT NULL;
CREATE INDEX survey_questions_answer ON survey_questions (answer_message)
    WHERE answer_message IS NOT NULL;
";

/// How a survey question reaches the contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SurveyVia {
    /// An SMS, answered by replying with the score.
    Sms,
    /// An email, answered by replying with the score or on the survey page.
    Email,
    /// In the chat widget, answered there.
    Chat,
}

impl SurveyVia {
    /// `sms`, `email` or `chat`.
    pub fn as_str(self) -> &'static str {
        match self {
            SurveyVia::Sms => "sms",
            SurveyVia::Email => "email",
            SurveyVia::Chat => "chat",
        }
    }

    pub(crate) fn parse(s: &str) -> SurveyVia {
        match s {
            "sms" => SurveyVia::Sms,
            "email" => SurveyVia::Email,
            _ => SurveyVia::Chat,
        }
    }
}

/// A survey question sent about one interaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyQuestion {
    /// The secret that answers it (in the survey page's URL).
    pub token: String,
    /// The interaction it is about (one question per interaction).
    pub interaction: InteractionId,
    /// The contact asked, if known.
    pub contact: Option<ContactId>,
    /// The agent who handled the interaction.
    pub agent: Option<AgentId>,
    /// The interaction's queue.
    pub queue: QueueId,
    /// The interaction's channel (a call's question goes by SMS: `via` says how).
    pub channel: Channel,
    /// How the question was sent.
    pub via: SurveyVia,
    /// The phone number or email address it was sent to (none in the chat widget).
    pub address: Option<String>,
    /// The id of the journaled message that carries it.
    pub message: String,
    /// The language it was asked in (`fr`, `en`).
    pub language: String,
    /// When it was asked.
    pub asked_at: Timestamp,
    /// When it was answered, if it was.
    pub answered_at: Option<Timestamp>,
}

/// The statements whose text both backends share (`$n` parameters, in the order they first
/// appear, which SQLite binds by position too).
pub(crate) mod sql {
    /// Records an answer, unless the interaction has one.
    pub const INSERT_ANSWER: &str = "INSERT INTO survey_answers \
         (interaction, contact, agent, queue, channel, score, comment, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (interaction) DO NOTHING";
    /// Records a question, unless the interaction has one.
    pub const INSERT_QUESTION: &str = "INSERT INTO survey_questions (token, interaction, \
         contact, agent, queue, channel, via, address, message, language, asked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (interaction) DO NOTHING";
    /// Records when a contact was asked about an interaction.
    pub const PUT_SENT: &str = "INSERT INTO survey_sent (contact, interaction, at) \
         VALUES ($1, $2, $3) ON CONFLICT (contact, interaction) DO UPDATE SET at = excluded.at";
    /// Records a contact's opt-out (the first one stays).
    pub const OPT_OUT: &str = "INSERT INTO survey_opt_out (contact, at) VALUES ($1, $2) \
         ON CONFLICT (contact) DO NOTHING";
    /// Removes a contact's opt-out.
    pub const OPT_IN: &str = "DELETE FROM survey_opt_out WHERE contact = $1";
    /// Whether a contact opted out.
    pub const OPTED_OUT: &str = "SELECT EXISTS (SELECT 1 FROM survey_opt_out WHERE contact = $1)";
    /// The completed interactions journaled in `($1, $2]`, at most `$3`.
    pub const COMPLETIONS: &str = "SELECT seq, at, interaction, agent FROM journal \
         WHERE seq > $1 AND seq <= $2 AND kind = 'interaction_completed' ORDER BY seq LIMIT $3";
    /// A question by its token (a `WHERE` clause).
    pub const BY_TOKEN: &str = "token = $1";
    /// A question by its interaction (a `WHERE` clause).
    pub const BY_INTERACTION: &str = "interaction = $1";
    /// A question by the message that carried it (a `WHERE` clause).
    pub const BY_MESSAGE: &str = "message = $1 LIMIT 1";
    /// A question by the message that answered it (a `WHERE` clause).
    pub const BY_ANSWER_MESSAGE: &str = "answer_message = $1 LIMIT 1";
    /// The newest unanswered question sent `$1` to `$2` since `$3` (a `WHERE` clause).
    pub const PENDING_TO: &str = "via = $1 AND address = $2 AND asked_at >= $3 \
         AND answered_at IS NULL ORDER BY asked_at DESC LIMIT 1";
}

pub(crate) const QUESTION_COLUMNS: &str =
    "token, interaction, contact, agent, queue, channel, via, \
     address, message, language, asked_at, answered_at";

pub(crate) const ANSWER_COLUMNS: &str =
    "interaction, contact, agent, queue, channel, score, comment, at";

/// The interaction a survey row is about, with its contact, agent, queue and channel: the five
/// columns from `first` on (in this order in both tables).
type About = (
    InteractionId,
    Option<ContactId>,
    Option<AgentId>,
    QueueId,
    Channel,
);

fn about_of<R: RowRead>(r: &R, first: usize) -> Result<About, R::Error> {
    let interaction: String = r.cell(first)?;
    let interaction = interaction
        .parse()
        .map_err(|e| R::invalid(first, format!("interaction id {interaction:?}"), e))?;
    let channel: String = r.cell(first + 4)?;
    Ok((
        interaction,
        r.cell::<Option<String>>(first + 1)?.map(ContactId::from),
        r.cell::<Option<String>>(first + 2)?.map(AgentId::from),
        QueueId::from(r.cell::<String>(first + 3)?),
        channel.parse().unwrap_or(Channel::Chat),
    ))
}

/// A [`SurveyAnswer`] from its row ([`ANSWER_COLUMNS`]), on either backend.
pub(crate) fn answer_of<R: RowRead>(r: &R) -> Result<SurveyAnswer, R::Error> {
    let (interaction, contact, agent, queue, channel) = about_of(r, 0)?;
    let score: i64 = r.cell(5)?;
    Ok(SurveyAnswer {
        interaction,
        contact,
        agent,
        queue,
        channel,
        score: u8::try_from(score).map_err(|e| R::invalid(5, format!("score {score}"), e))?,
        comment: r.cell(6)?,
        at: Timestamp(r.cell::<i64>(7)?.max(0) as u64),
    })
}

/// A [`SurveyQuestion`] from its row ([`QUESTION_COLUMNS`]), on either backend.
pub(crate) fn question_of<R: RowRead>(r: &R) -> Result<SurveyQuestion, R::Error> {
    let (interaction, contact, agent, queue, channel) = about_of(r, 1)?;
    let via: String = r.cell(6)?;
    Ok(SurveyQuestion {
        token: r.cell(0)?,
        interaction,
        contact,
        agent,
        queue,
        channel,
        via: SurveyVia::parse(&via),
        address: r.cell(7)?,
        message: r.cell(8)?,
        language: r.cell(9)?,
        asked_at: Timestamp(r.cell::<i64>(10)?.max(0) as u64),
        answered_at: r
            .cell::<Option<i64>>(11)?
            .map(|t| Timestamp(t.max(0) as u64)),
    })
}

/// The comment to store with `answer` (trimmed, cut to [`MAX_SURVEY_COMMENT_CHARS`], none
/// when empty); refused with [`StoreError::Invalid`] when the score is not 1 to 5.
pub(crate) fn checked_comment(answer: &SurveyAnswer) -> Result<Option<String>, StoreError> {
    if !(1..=5).contains(&answer.score) {
        return Err(StoreError::Invalid(format!(
            "survey score {} is out of range: give 1 (very dissatisfied) to 5 (very satisfied)",
            answer.score
        )));
    }
    Ok(answer
        .comment
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| c.chars().take(MAX_SURVEY_COMMENT_CHARS).collect::<String>()))
}

/// What `record_survey_answer` returns once the answer was `recorded` or not (the interaction
/// already had one).
pub(crate) fn first_answer(recorded: bool, answer: &SurveyAnswer) -> Result<(), StoreError> {
    if recorded {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "interaction {} already has a survey answer: only the first one counts",
            answer.interaction
        )))
    }
}

/// Answers `question` (the one of the token, if any) with `score` and `comment`, received at
/// `at`: refused (unknown token, already answered, asked before `not_before`) or recorded by
/// `record` (false: another answer came first), and then the question as answered.
pub(crate) fn answer_question(
    question: Option<SurveyQuestion>,
    score: u8,
    comment: Option<&str>,
    at: Timestamp,
    not_before: Timestamp,
    record: impl FnOnce(&SurveyAnswer) -> Result<bool, StoreError>,
) -> Result<Result<SurveyQuestion, AnswerRefusal>, StoreError> {
    let Some(question) = question else {
        return Ok(Err(AnswerRefusal::UnknownToken));
    };
    if question.answered_at.is_some() {
        return Ok(Err(AnswerRefusal::AlreadyAnswered));
    }
    if question.asked_at < not_before {
        return Ok(Err(AnswerRefusal::Expired));
    }
    let answer = SurveyAnswer {
        interaction: question.interaction,
        contact: question.contact.clone(),
        agent: question.agent.clone(),
        queue: question.queue.clone(),
        channel: question.channel,
        score,
        comment: comment.map(str::to_owned),
        at,
    };
    if !record(&answer)? {
        return Ok(Err(AnswerRefusal::AlreadyAnswered));
    }
    Ok(Ok(SurveyQuestion {
        answered_at: Some(at),
        ..question
    }))
}

/// The completed interactions among the journal rows `(seq, at, interaction, agent)` read
/// after `checkpoint` up to `end` (at most `limit` of them), with the checkpoint to store once
/// they are dealt with.
pub(crate) fn completions(
    rows: Vec<(i64, i64, Option<String>, Option<String>)>,
    limit: usize,
    checkpoint: u64,
    end: u64,
) -> (Vec<CompletedInteraction>, u64) {
    let next = match rows.last() {
        Some((seq, ..)) if rows.len() >= limit => (*seq).max(0) as u64,
        _ => end.max(checkpoint),
    };
    let found = rows
        .into_iter()
        .filter_map(|(seq, at, interaction, agent)| {
            Some(CompletedInteraction {
                seq: seq.max(0) as u64,
                at: Timestamp(at.max(0) as u64),
                interaction: interaction?.parse().ok()?,
                agent: AgentId::from(agent?),
            })
        })
        .collect();
    (found, next)
}

/// Why an answer was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerRefusal {
    /// No question has this token (mistyped link, or erased).
    UnknownToken,
    /// The question was already answered: only the first answer counts.
    AlreadyAnswered,
    /// The question is older than the answering period.
    Expired,
}

/// An interaction completed, as the survey dispatcher reads it from the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedInteraction {
    /// The journal row.
    pub seq: u64,
    /// When it was completed.
    pub at: Timestamp,
    /// The interaction.
    pub interaction: InteractionId,
    /// The agent who completed it.
    pub agent: AgentId,
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

impl SqliteStore {
    /// Records a satisfaction answer and adds it to the indicator aggregates of `day` (the day
    /// of `answer.at` in the indicators' time zone: pass
    /// `config.indicators.day_of(answer.at)`). Refused with [`StoreError::Invalid`] when the
    /// score is not 1 to 5 or the interaction already has an answer (nothing is changed then).
    pub fn record_survey_answer(&self, answer: &SurveyAnswer, day: &str) -> Result<(), StoreError> {
        first_answer(self.record_answer(answer, day, None)?, answer)
    }

    /// Inserts `answer`, adds it to the aggregates of `day` and marks the question of `token`
    /// (if any) answered, in one transaction; false (nothing changed) when the interaction
    /// already has an answer.
    fn record_answer(
        &self,
        answer: &SurveyAnswer,
        day: &str,
        question: Option<(&str, Option<&str>)>,
    ) -> Result<bool, StoreError> {
        let comment = checked_comment(answer)?;
        let path = self.path().to_owned();
        let mut conn = self.conn();
        // Immediate: the write lock is taken first, so that a commit of the journal in between
        // cannot make this transaction's read stale (SQLITE_BUSY_SNAPSHOT).
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(&path)?;
        let inserted = tx
            .execute(
                sql::INSERT_ANSWER,
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
            return Ok(false);
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
        if let Some((token, answer_message)) = question {
            tx.execute(
                "UPDATE survey_questions SET answered_at = ?2, answer_message = ?3 WHERE token = ?1",
                params![token, answer.at.0 as i64, answer_message],
            )
            .at(&path)?;
        }
        tx.commit().at(&path)?;
        Ok(true)
    }

    /// The answer recorded for an interaction, if any.
    pub fn survey_answer(
        &self,
        interaction: &InteractionId,
    ) -> Result<Option<SurveyAnswer>, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        let sql = format!("SELECT {ANSWER_COLUMNS} FROM survey_answers WHERE interaction = ?1");
        conn.query_row(&sql, params![interaction.to_string()], |r| answer_of(r))
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

    /// The newest answers with a comment received in `[from, to)` (of `agent` only, when
    /// given), at most `limit`.
    pub fn survey_comments(
        &self,
        from: Timestamp,
        to: Timestamp,
        agent: Option<&AgentId>,
        limit: usize,
    ) -> Result<Vec<SurveyAnswer>, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        let sql = format!(
            "SELECT {ANSWER_COLUMNS} FROM survey_answers WHERE at >= ?1 AND at < ?2 \
             AND comment IS NOT NULL AND (?3 IS NULL OR agent = ?3) ORDER BY at DESC LIMIT ?4"
        );
        let mut stmt = conn.prepare_cached(&sql).at(&path)?;
        let rows = stmt
            .query_map(
                params![
                    from.0 as i64,
                    to.0 as i64,
                    agent.map(|a| a.as_str()),
                    limit as i64
                ],
                |r| answer_of(r),
            )
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
            .query_row(sql::OPTED_OUT, params![contact.as_str()], |r| r.get(0))
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

    /// Records that `contact` was asked about `interaction` at `at` (for [`SqliteStore::may_survey`]).
    pub fn record_survey_sent(
        &self,
        contact: &ContactId,
        interaction: &InteractionId,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        conn.execute(
            sql::PUT_SENT,
            params![contact.as_str(), interaction.to_string(), at.0 as i64],
        )
        .at(&path)?;
        Ok(())
    }

    /// Records that `contact` does not want to be surveyed any more ("STOP"). Idempotent.
    pub fn opt_out(&self, contact: &ContactId, at: Timestamp) -> Result<(), StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        conn.execute(sql::OPT_OUT, params![contact.as_str(), at.0 as i64])
            .at(&path)?;
        Ok(())
    }

    /// Lets `contact` be surveyed again (it asked to). Returns whether it had opted out.
    pub fn opt_in(&self, contact: &ContactId) -> Result<bool, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        let n = conn
            .execute(sql::OPT_IN, params![contact.as_str()])
            .at(&path)?;
        Ok(n > 0)
    }

    /// Whether `contact` opted out of surveys.
    pub fn has_opted_out(&self, contact: &ContactId) -> Result<bool, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        conn.query_row(sql::OPTED_OUT, params![contact.as_str()], |r| r.get(0))
            .at(&path)
    }
}

impl SqliteStore {
    /// Records a question about to be sent, and that its contact was asked (for
    /// [`SqliteStore::may_survey`]), in one transaction. Returns false, changing nothing, when the
    /// interaction already has a question (another path asked first).
    pub fn claim_survey_question(&self, q: &SurveyQuestion) -> Result<bool, StoreError> {
        let path = self.path().to_owned();
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(&path)?;
        let inserted = tx
            .execute(
                sql::INSERT_QUESTION,
                params![
                    q.token,
                    q.interaction.to_string(),
                    q.contact.as_ref().map(|c| c.as_str()),
                    q.agent.as_ref().map(|a| a.as_str()),
                    q.queue.as_str(),
                    q.channel.as_str(),
                    q.via.as_str(),
                    q.address,
                    q.message,
                    q.language,
                    q.asked_at.0 as i64,
                ],
            )
            .at(&path)?;
        if inserted == 0 {
            return Ok(false);
        }
        if let Some(contact) = &q.contact {
            tx.execute(
                sql::PUT_SENT,
                params![
                    contact.as_str(),
                    q.interaction.to_string(),
                    q.asked_at.0 as i64
                ],
            )
            .at(&path)?;
        }
        tx.commit().at(&path)?;
        Ok(true)
    }

    fn survey_question_where(
        &self,
        clause: &str,
        args: impl rusqlite::Params,
    ) -> Result<Option<SurveyQuestion>, StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        let sql = format!("SELECT {QUESTION_COLUMNS} FROM survey_questions WHERE {clause}");
        let mut stmt = conn.prepare_cached(&sql).at(&path)?;
        stmt.query_row(args, |r| question_of(r))
            .optional()
            .at(&path)
    }

    /// The question answered by `token`.
    pub fn survey_question(&self, token: &str) -> Result<Option<SurveyQuestion>, StoreError> {
        self.survey_question_where(sql::BY_TOKEN, params![token])
    }

    /// The question sent about `interaction`, if any.
    pub fn survey_question_of(
        &self,
        interaction: InteractionId,
    ) -> Result<Option<SurveyQuestion>, StoreError> {
        self.survey_question_where(sql::BY_INTERACTION, params![interaction.to_string()])
    }

    /// The question carried by the journaled message `message` (an email reply names it).
    pub fn survey_question_by_message(
        &self,
        message: &str,
    ) -> Result<Option<SurveyQuestion>, StoreError> {
        self.survey_question_where(sql::BY_MESSAGE, params![message])
    }

    /// Whether the SMS or email `message` (its channel-prefixed id) was recorded as a survey
    /// answer (a provider's retry of it is then ignored).
    pub fn survey_answered_by(&self, message: &str) -> Result<bool, StoreError> {
        Ok(self.survey_question_answered_by(message)?.is_some())
    }

    /// The question that the SMS or email `message` answered, if any.
    pub fn survey_question_answered_by(
        &self,
        message: &str,
    ) -> Result<Option<SurveyQuestion>, StoreError> {
        self.survey_question_where(sql::BY_ANSWER_MESSAGE, params![message])
    }

    /// The newest unanswered question sent `via` to `address` at or after `since` (an SMS
    /// reply answers it).
    pub fn pending_survey_to(
        &self,
        via: SurveyVia,
        address: &str,
        since: Timestamp,
    ) -> Result<Option<SurveyQuestion>, StoreError> {
        self.survey_question_where(
            sql::PENDING_TO,
            params![via.as_str(), address, since.0 as i64],
        )
    }

    /// Records the answer to the question of `token`: the score (1–5) and comment go to
    /// `survey_answers` and to the indicator aggregates of `day` (pass
    /// `config.indicators.day_of(at)`), and the question is marked answered, in one
    /// transaction. A question asked before `not_before` has expired. Refused, changing
    /// nothing, with the reason when the token is unknown, already answered or expired; with
    /// [`StoreError::Invalid`] when the score is out of range. `answer_message` is the id of the
    /// SMS or email that carried the answer, so that a provider's retry of it is recognised
    /// ([`SqliteStore::survey_answered_by`]).
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

    /// The completed interactions journaled after the survey checkpoint (at most `limit`,
    /// oldest first), with the checkpoint to store once they are dealt with.
    pub fn survey_completions(
        &self,
        limit: usize,
    ) -> Result<(Vec<CompletedInteraction>, u64), StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        let (checkpoint, end) = checkpoint_and_end(&conn, "survey_checkpoint", &path)?;
        let end = end as i64;
        let mut stmt = conn.prepare_cached(sql::COMPLETIONS).at(&path)?;
        let rows: Vec<(i64, i64, Option<String>, Option<String>)> = stmt
            .query_map(params![checkpoint as i64, end, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .at(&path)?
            .collect::<Result<_, _>>()
            .at(&path)?;
        Ok(completions(rows, limit, checkpoint, end as u64))
    }

    /// Stores the survey dispatcher's checkpoint (never moves it back).
    pub fn set_survey_checkpoint(&self, seq: u64) -> Result<(), StoreError> {
        let path = self.path().to_owned();
        let conn = self.conn();
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('survey_checkpoint', ?1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value \
             WHERE CAST(value AS INTEGER) < CAST(excluded.value AS INTEGER)",
            params![seq.to_string()],
        )
        .at(&path)?;
        Ok(())
    }
}
