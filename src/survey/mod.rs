//! Satisfaction surveys: after an interaction is completed, one question to its contact by its
//! channel; the answers taken back and tied to the interaction and its agent.
//!
//! - **Asking** (`dispatch.rs`, started by [`Surveys::start`]): follows the journal's
//!   `interaction_completed` rows from a checkpoint, so that a restart neither loses nor
//!   repeats a question. For each interaction of a queue that `[surveys]` enables, it finds how
//!   to reach the contact: an SMS conversation by SMS, an email by a reply in its thread, a
//!   chat in the widget while the visitor is still there (else by email when the visitor gave
//!   an address), a call by SMS when the caller's number is a mobile one (`mobile_prefixes`)
//!   and `[sms]` is configured. A contact asked within `period_days`, or who opted out, is not
//!   asked. The question is recorded with a random token, then committed as a follow-up
//!   message ([`crate::core::Command::FollowUp`]) that the notify outbox delivers (SMS, email)
//!   or the chat hub shows.
//! - **Answers**: an SMS reply that starts with a score ([`Surveys::answer_sms`], called by the
//!   SMS channel), an email reply to the question ([`Surveys::answer_email`], called by the
//!   email intake), the page `/survey/{token}` (`src/http/survey.rs`), which the chat widget
//!   also posts to. One answer per interaction; a question can be answered for `answer_days`.
//! - **Opting out**: STOP by SMS (the SMS channel records it for surveys too) and the page's
//!   "do not ask me again" box ([`Surveys::opt_out`]).

mod config;
mod dispatch;
pub mod text;

use std::sync::Arc;

use thiserror::Error;
use tokio::task::JoinHandle;

use crate::core::{ContactId, InteractionId};
use crate::engine::{Clock, Engine, StartContext, SystemClock};
use crate::obs::IndicatorsConfig;
use crate::store::{AnswerRefusal, Store, StoreError, SurveyQuestion, SurveyVia};

pub use config::SurveysConfig;
pub use text::{parse_answer, ParsedAnswer};

/// The meta key of a survey question's message that holds its token.
pub const SURVEY_TOKEN: &str = "survey_token";
/// The meta key of a survey question's message that holds the survey page's URL.
pub const SURVEY_URL: &str = "survey_url";

/// Why an answer was not recorded.
#[derive(Debug, Error)]
pub enum AnswerError {
    /// No question has this token.
    #[error("this survey link is not valid: check that the whole address was copied")]
    UnknownToken,
    /// Already answered.
    #[error("this survey was already answered: only the first answer counts")]
    AlreadyAnswered,
    /// Too late.
    #[error("this survey is closed: answers are taken for {days} days after the question")]
    Expired {
        /// `[surveys] answer_days`.
        days: u32,
    },
    /// The score is not 1 to 5.
    #[error(
        "the score must be a whole number from 1 (not at all satisfied) to 5 (very satisfied)"
    )]
    InvalidScore,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The request a survey rates, as its page names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatedRequest {
    /// The service (the queue's display name, else its id).
    pub service: String,
    /// The local date the request was made.
    pub date: chrono::NaiveDate,
    /// The reference the citizen was given.
    pub reference: String,
}

/// How survey questions can leave besides the chat widget (from the `[sms]`, `[surveys]` and
/// `[email.outbound]` sections).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outlets {
    /// The number calls' surveys are sent from (`[surveys] sms_from`, else the first of `[sms]
    /// numbers`); none without `[sms]`: calls are not surveyed.
    pub sms_from: Option<String>,
    /// Whether `[email.outbound]` is configured (chats fall back to email only then).
    pub email: bool,
}

/// The web chat as the survey task sees it. The chat hub implements it; a trait, so that the
/// survey task does not depend on the chat channel.
pub trait ChatVisitors: Send + Sync + 'static {
    /// Whether the visitor of `interaction` is still in the widget (asked there, then).
    fn visitor_present(&self, interaction: InteractionId) -> bool;
    /// Whether the visitor of `interaction` left the widget a moment ago and may resume the
    /// chat (a question asked there is then given on resume).
    fn visitor_may_resume(&self, interaction: InteractionId) -> bool;
    /// No question will come for `interaction`: a chat held open for it may end.
    fn no_survey(&self, interaction: InteractionId);
}

struct Inner {
    engine: Engine,
    config: SurveysConfig,
    indicators: IndicatorsConfig,
    /// The HTTP listener's URL as contacts see it (no trailing slash).
    public_base: String,
    /// The number calls' surveys are sent from, when SMS is configured.
    sms_from: Option<String>,
    /// Whether `[email.outbound]` is configured (chats fall back to email only then).
    email_out: bool,
    clock: Arc<dyn Clock>,
}

/// Satisfaction surveys: asking after completion and taking the answers. Cheap to clone.
#[derive(Clone)]
pub struct Surveys {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Surveys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Surveys")
            .field("config", &self.inner.config)
            .field("public_base", &self.inner.public_base)
            .finish()
    }
}

impl Surveys {
    /// Surveys for `config` (`[surveys]`); the survey page's links start with the context's
    /// public URL, dates are local to `indicators`' time zone, and `outlets` says how questions
    /// can leave by SMS and email.
    pub fn new(
        cx: &StartContext,
        config: SurveysConfig,
        indicators: IndicatorsConfig,
        outlets: Outlets,
    ) -> Surveys {
        Surveys::with_clock(cx, config, indicators, outlets, Arc::new(SystemClock))
    }

    /// [`Surveys::new`] on another clock (simulations, tests).
    pub fn with_clock(
        cx: &StartContext,
        config: SurveysConfig,
        indicators: IndicatorsConfig,
        outlets: Outlets,
        clock: Arc<dyn Clock>,
    ) -> Surveys {
        Surveys {
            inner: Arc::new(Inner {
                engine: cx.engine.clone(),
                config,
                indicators,
                public_base: cx.public_base.trim_end_matches('/').to_owned(),
                sms_from: outlets.sms_from,
                email_out: outlets.email,
                clock,
            }),
        }
    }

    /// `[surveys]`.
    pub fn config(&self) -> &SurveysConfig {
        &self.inner.config
    }

    /// The survey page of `token`.
    pub fn page_url(&self, token: &str) -> String {
        format!("{}/survey/{token}", self.inner.public_base)
    }

    /// Starts asking after completions, when `[surveys] enabled`; `chat` lets chats be asked
    /// in the widget. Ends when the engine stops.
    pub fn start(&self, chat: Option<Arc<dyn ChatVisitors>>) -> Option<JoinHandle<()>> {
        if !self.inner.config.enabled {
            return None;
        }
        Some(dispatch::spawn(self.clone(), chat))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.inner.engine.store().run(f).await
    }

    /// What the survey page says the rated request was: its service (the queue's display
    /// name), the local date it was made (`[indicators] time_zone`) and its reference.
    pub async fn rated_request(&self, question: &SurveyQuestion) -> RatedRequest {
        let queue = question.queue.clone();
        let service = self
            .inner
            .engine
            .read(move |r| {
                r.queue(&queue)
                    .map(|q| q.config.name.clone())
                    .filter(|n| !n.trim().is_empty())
            })
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| question.queue.to_string());
        let created_ms = question.interaction.0.timestamp_ms();
        let date = i64::try_from(created_ms)
            .ok()
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|d| {
                d.with_timezone(&self.inner.indicators.time_zone)
                    .date_naive()
            })
            .unwrap_or_default();
        RatedRequest {
            service,
            date,
            reference: crate::channels::citizen::reference(question.interaction),
        }
    }

    /// The question of `token`, if any.
    pub async fn question(&self, token: &str) -> Result<Option<SurveyQuestion>, StoreError> {
        let token = token.to_owned();
        self.blocking(move |s| s.survey_question(&token)).await
    }

    /// Records the answer to the question of `token`: `score` 1 to 5 and an optional comment.
    pub async fn answer(
        &self,
        token: &str,
        score: u8,
        comment: Option<String>,
    ) -> Result<SurveyQuestion, AnswerError> {
        self.answer_with(token, score, comment, None).await
    }

    /// Records `parsed`, received as the SMS or email `message_id`, as the answer to
    /// `question`.
    async fn answer_by_message(
        &self,
        question: &SurveyQuestion,
        parsed: ParsedAnswer,
        message_id: &str,
    ) -> Result<SurveyQuestion, AnswerError> {
        self.answer_with(
            &question.token,
            parsed.score,
            parsed.comment,
            Some(message_id.to_owned()),
        )
        .await
    }

    async fn answer_with(
        &self,
        token: &str,
        score: u8,
        comment: Option<String>,
        answer_message: Option<String>,
    ) -> Result<SurveyQuestion, AnswerError> {
        if !(1..=5).contains(&score) {
            return Err(AnswerError::InvalidScore);
        }
        let now = self.inner.clock.now();
        let day = self.inner.indicators.day_of(now);
        let not_before =
            crate::core::Timestamp(now.0.saturating_sub(self.inner.config.answer_ms()));
        let token = token.to_owned();
        let recorded = self
            .blocking(move |s| {
                s.answer_survey(
                    &token,
                    score,
                    comment.as_deref(),
                    answer_message.as_deref(),
                    now,
                    not_before,
                    &day,
                )
            })
            .await?;
        match recorded {
            Ok(question) => {
                metrics::counter!(
                    "guichet_survey_answers_total",
                    "queue" => question.queue.to_string(),
                    "channel" => question.channel.as_str(),
                    "via" => question.via.as_str()
                )
                .increment(1);
                tracing::info!(
                    interaction_id = %question.interaction,
                    score,
                    via = question.via.as_str(),
                    "survey answered"
                );
                Ok(question)
            }
            Err(AnswerRefusal::UnknownToken) => Err(AnswerError::UnknownToken),
            Err(AnswerRefusal::AlreadyAnswered) => Err(AnswerError::AlreadyAnswered),
            Err(AnswerRefusal::Expired) => Err(AnswerError::Expired {
                days: self.inner.config.answer_days,
            }),
        }
    }

    /// The SMS `message_id` (`sms:<MessageSid>`) from `from`: when it starts with a score and a
    /// question sent to that number by SMS is waiting for its answer, records it and returns
    /// the question; `None` when the SMS is not a survey answer (it is then a message for the
    /// service).
    pub async fn answer_sms(
        &self,
        message_id: &str,
        from: &str,
        text: &str,
    ) -> Result<Option<SurveyQuestion>, AnswerError> {
        let Some(parsed) = parse_answer(text) else {
            return Ok(None);
        };
        let now = self.inner.clock.now();
        let since = crate::core::Timestamp(now.0.saturating_sub(self.inner.config.answer_ms()));
        let number = from.to_owned();
        let Some(question) = self
            .blocking(move |s| s.pending_survey_to(SurveyVia::Sms, &number, since))
            .await?
        else {
            return Ok(None);
        };
        self.answer_by_message(&question, parsed, message_id)
            .await
            .map(Some)
    }

    /// The email `message_id` (`email:<Message-ID>`) whose In-Reply-To or References name
    /// `message_ids` (bare Message-IDs, without angle brackets): when one of them is a survey
    /// question sent by email and the text starts with a score, records the answer and returns
    /// the question; `None` otherwise. `domain` is `[email] domain` (Guichet's Message-IDs are
    /// `<ULID@domain>`).
    pub async fn answer_email(
        &self,
        message_id: &str,
        message_ids: &[String],
        domain: &str,
        text: &str,
    ) -> Result<Option<SurveyQuestion>, AnswerError> {
        let Some(parsed) = parse_answer(text) else {
            return Ok(None);
        };
        let candidates: Vec<String> = message_ids
            .iter()
            .filter_map(|mid| {
                let (local, d) = mid.rsplit_once('@')?;
                d.eq_ignore_ascii_case(domain)
                    .then(|| format!("email:{local}"))
            })
            .collect();
        if candidates.is_empty() {
            return Ok(None);
        }
        let found = self
            .blocking(move |s| {
                for c in &candidates {
                    if let Some(q) = s.survey_question_by_message(c)? {
                        return Ok(Some(q));
                    }
                }
                Ok(None)
            })
            .await?;
        let Some(question) = found else {
            return Ok(None);
        };
        if question.via != SurveyVia::Email {
            return Ok(None);
        }
        self.answer_by_message(&question, parsed, message_id)
            .await
            .map(Some)
    }

    /// Whether the SMS or email `message_id` was already recorded as a survey answer.
    pub async fn answered_by(&self, message_id: &str) -> Result<bool, StoreError> {
        let id = message_id.to_owned();
        self.blocking(move |s| s.survey_answered_by(&id)).await
    }

    /// The question answered by the SMS or email `message_id`, if any.
    pub async fn question_answered_by(
        &self,
        message_id: &str,
    ) -> Result<Option<SurveyQuestion>, StoreError> {
        let id = message_id.to_owned();
        self.blocking(move |s| s.survey_question_answered_by(&id))
            .await
    }

    /// Lets `contact` be surveyed again (it sent START); whether it had opted out.
    pub async fn opt_in(&self, contact: ContactId) -> Result<bool, StoreError> {
        self.blocking(move |s| s.opt_in(&contact)).await
    }

    /// Records that `contact` does not want to be surveyed any more.
    pub async fn opt_out(&self, contact: ContactId) -> Result<(), StoreError> {
        let now = self.inner.clock.now();
        self.blocking(move |s| s.opt_out(&contact, now)).await?;
        tracing::info!("survey opt-out recorded");
        Ok(())
    }
}

/// A new survey token: 128 random bits, URL-safe base64 (22 characters).
fn new_token() -> String {
    use base64::Engine as _;
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
