//! The methods of the store interface that the PostgreSQL backend does not carry yet: each
//! fails with [`StoreError::Invalid`] naming the part and pointing at `docs/storage.md`, so that
//! a server on PostgreSQL refuses that one request clearly instead of half-serving it.

use std::sync::Arc;

use crate::core::{AgentId, ContactId, InteractionId, Message, Timestamp};

use super::super::{
    AnswerRefusal, CompletedInteraction, Delivery, DeliveryState, StoreError, SurveyAnswer,
    SurveyQuestion, SurveySummary, SurveyVia,
};
use super::PgStore;

macro_rules! unported {
    ($part:literal: $( fn $name:ident(&self $(, $arg:ident : $ty:ty)* $(,)?) -> $ret:ty; )*) => {
        impl PgStore {
            $(
                #[doc = concat!("Not on PostgreSQL in this version (", $part, "): fails with a clear error.")]
                #[allow(unused_variables)]
                pub fn $name(&self $(, $arg: $ty)*) -> $ret {
                    Err(self.not_ported($part))
                }
            )*
        }
    };
}

unported! { "surveys":
    fn record_survey_answer(&self, answer: &SurveyAnswer, day: &str) -> Result<(), StoreError>;
    fn survey_answer(&self, interaction: &InteractionId) -> Result<Option<SurveyAnswer>, StoreError>;
    fn survey_summary_by_agent(&self, from: Timestamp, to: Timestamp) -> Result<Vec<(Option<AgentId>, SurveySummary)>, StoreError>;
    fn survey_comments(&self, from: Timestamp, to: Timestamp, agent: Option<&AgentId>, limit: usize) -> Result<Vec<SurveyAnswer>, StoreError>;
    fn may_survey(&self, contact: &ContactId, now: Timestamp, period_ms: u64) -> Result<bool, StoreError>;
    fn record_survey_sent(&self, contact: &ContactId, interaction: &InteractionId, at: Timestamp) -> Result<(), StoreError>;
    fn opt_out(&self, contact: &ContactId, at: Timestamp) -> Result<(), StoreError>;
    fn opt_in(&self, contact: &ContactId) -> Result<bool, StoreError>;
    fn has_opted_out(&self, contact: &ContactId) -> Result<bool, StoreError>;
    fn claim_survey_question(&self, q: &SurveyQuestion) -> Result<bool, StoreError>;
    fn survey_question(&self, token: &str) -> Result<Option<SurveyQuestion>, StoreError>;
    fn survey_question_of(&self, interaction: InteractionId) -> Result<Option<SurveyQuestion>, StoreError>;
    fn survey_question_by_message(&self, message: &str) -> Result<Option<SurveyQuestion>, StoreError>;
    fn survey_answered_by(&self, message: &str) -> Result<bool, StoreError>;
    fn survey_question_answered_by(&self, message: &str) -> Result<Option<SurveyQuestion>, StoreError>;
    fn pending_survey_to(&self, via: SurveyVia, address: &str, since: Timestamp) -> Result<Option<SurveyQuestion>, StoreError>;
    fn answer_survey(&self, token: &str, score: u8, comment: Option<&str>, answer_message: Option<&str>, at: Timestamp, not_before: Timestamp, day: &str) -> Result<Result<SurveyQuestion, AnswerRefusal>, StoreError>;
    fn survey_completions(&self, limit: usize) -> Result<(Vec<CompletedInteraction>, u64), StoreError>;
    fn set_survey_checkpoint(&self, seq: u64) -> Result<(), StoreError>;
}

unported! { "outbox":
    fn outbox_ingest(&self, limit: usize) -> Result<(usize, bool), StoreError>;
    fn outbox_due(&self, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError>;
    fn outbox_delivery(&self, message: &str) -> Result<Option<Delivery>, StoreError>;
    fn outbox_next_due(&self) -> Result<Option<Timestamp>, StoreError>;
    fn outbox_message(&self, seq: u64) -> Result<Option<Arc<Message>>, StoreError>;
    fn outbox_record(&self, message: &str, state: DeliveryState, attempts: u32, next_attempt_at: Timestamp, last_error: Option<&str>, delivered: Option<(Timestamp, Option<&str>)>) -> Result<(), StoreError>;
}
