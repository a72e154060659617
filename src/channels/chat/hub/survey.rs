//! The chat hub's satisfaction survey: a completed chat held open for the survey question,
//! whether the survey is asked in the widget, and the question asked again to a visitor who
//! reconnects after it (or given to one who was away when it came).

use crate::core::InteractionId;

use super::super::protocol::ServerFrame;
use super::{
    ChatHub, Outbox, Outgoing, State, Surveyed, MAX_SURVEYED, SURVEY_RESUMABLE, SURVEY_WAIT,
};

impl ChatHub {
    /// Whether the visitor of `interaction` is connected (or its completed chat is waiting for
    /// the survey question): the survey is then asked in the widget.
    pub fn visitor_present(&self, interaction: InteractionId) -> bool {
        let state = self.lock();
        state
            .session_of(interaction)
            .is_some_and(|s| s.socket.is_some())
    }

    /// Whether the visitor of `interaction` left the widget without ending the chat (a page
    /// reload, a network change) and may still resume it, within the grace period: a survey
    /// question asked in the widget is then given on resume.
    pub fn visitor_may_resume(&self, interaction: InteractionId) -> bool {
        let state = self.lock();
        state
            .session_of(interaction)
            .is_some_and(|s| s.socket.is_none())
    }

    /// No survey question will come for `interaction` (the contact was asked recently, opted
    /// out, or the question failed): a chat held open for it ends now.
    pub fn no_survey(&self, interaction: InteractionId) {
        let mut state = self.lock();
        let Some(session) = state.by_interaction.get(&interaction).cloned() else {
            return;
        };
        if let Some(reason) = state
            .sessions
            .get(&session)
            .filter(|s| s.awaiting_survey)
            .map(|s| s.ending.unwrap_or("agent"))
        {
            state.finish(&session, reason);
        }
    }

    /// Keeps a completed chat's session open for the survey question when surveys are on for
    /// its queue, the visitor connected or within the grace period of a resume (then given the
    /// question when it resumes, even after the session ended); the session is finished when
    /// the question comes or after [`SURVEY_WAIT`]. Whether it holds.
    pub(super) fn hold_for_survey(
        &self,
        state: &mut State,
        session: &str,
        reason: &'static str,
    ) -> bool {
        let Some(s) = state.sessions.get_mut(session) else {
            return false;
        };
        if s.awaiting_survey {
            return true;
        }
        if !self.inner.surveys.enabled_for(&s.queue) {
            return false;
        }
        s.awaiting_survey = true;
        let hub = self.clone();
        let session = session.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(SURVEY_WAIT).await;
            let mut state = hub.lock();
            if state
                .sessions
                .get(&session)
                .is_some_and(|s| s.awaiting_survey)
            {
                state.finish(&session, reason);
            }
        });
        true
    }

    /// Keeps an ended chat's survey question for a visitor who reconnects, for
    /// [`SURVEY_RESUMABLE`].
    pub(super) fn keep_surveyed(&self, state: &mut State, session: &str, asked: Surveyed) {
        if state.surveyed.len() >= MAX_SURVEYED {
            return;
        }
        state.surveyed.insert(session.to_owned(), asked);
        let hub = self.clone();
        let session = session.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(SURVEY_RESUMABLE).await;
            hub.lock().surveyed.remove(&session);
        });
    }

    /// A visitor reconnecting to a chat that ended with a survey question: it is given the
    /// conversation after `after`, the question again and the end. `None`: no such chat.
    pub(super) async fn resume_surveyed(
        &self,
        outbox: &Outbox,
        session: &str,
        token: &str,
        after: u64,
    ) -> Option<Result<String, ServerFrame>> {
        let (interaction, question, reason) = {
            let state = self.lock();
            let s = state.surveyed.get(session)?;
            if !crate::channels::same_secret(s.token.as_bytes(), token.as_bytes()) {
                return None;
            }
            (s.interaction, s.question.clone(), s.reason)
        };
        let history = match self.history(interaction, after).await {
            Ok(history) => history,
            Err(e) => {
                tracing::warn!(session, "chat history not read: {e}");
                Vec::new()
            }
        };
        for frame in [
            ServerFrame::Resumed {
                session: session.to_owned(),
                agent: None,
                history,
            },
            question,
            ServerFrame::Ended {
                reason: reason.to_owned(),
            },
        ] {
            let _ = outbox.try_send(Outgoing::Frame(frame));
        }
        let _ = outbox.try_send(Outgoing::Close(1000, "chat ended"));
        tracing::info!(session, "chat resumed for its survey question");
        Some(Ok(session.to_owned()))
    }
}
