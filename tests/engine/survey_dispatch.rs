//! The survey task on the durable engine, in process: it catches up on completions committed
//! before it started (a restart), asks each surveyed interaction once, commits the question of
//! a question recorded before a crash with its recorded token (never a second one), and skips
//! queues that are not surveyed.

use crate::engine_common;

use std::time::Duration;

use engine_common::demo;
use guichet::core::{
    AgentId, Channel, Command, ContactId, InteractionId, InteractionSpec, Message,
    MessageDirection, RequestedState,
};
use guichet::engine::{Clock, Engine, EngineConfig, StartContext, SystemClock};
use guichet::store::{SurveyQuestion, SurveyVia};
use guichet::survey::{Surveys, SURVEY_TOKEN};

const CITIZEN: &str = "+33612345678";
const SERVICE: &str = "+33100000000";

/// An SMS conversation in `queue`, answered and completed by amelie.
async fn completed_sms(engine: &Engine, n: u128, queue: &str) -> InteractionId {
    let id = InteractionId::from_u128(n);
    let mut spec = InteractionSpec::new(id, Channel::Sms, queue);
    spec.contact = Some(ContactId::new(CITIZEN));
    spec.external_ref = Some(format!("sms:{CITIZEN}:{SERVICE}:{n}").into());
    spec.attributes = [("sms_from", CITIZEN), ("sms_to", SERVICE)]
        .into_iter()
        .collect();
    let mut first = Message::new(format!("sms:SM{n}"), MessageDirection::Inbound, "Bonjour");
    first.from = CITIZEN.into();
    first.to = SERVICE.into();
    engine
        .send(Command::OpenConversation {
            spec,
            message: first,
        })
        .await
        .expect("open");
    let amelie = AgentId::new("amelie");
    engine
        .send(Command::Accept {
            interaction: id,
            agent: amelie.clone(),
        })
        .await
        .expect("accept");
    engine
        .send(Command::Complete {
            interaction: id,
            agent: Some(amelie.clone()),
            wrap_up_code: None,
            notes: None,
        })
        .await
        .expect("complete");
    engine
        .send(Command::SetState {
            agent: amelie,
            state: RequestedState::Available,
        })
        .await
        .expect("available again");
    id
}

/// The survey questions journaled in the conversation of `id`: their tokens.
fn questions_in(engine: &Engine, id: InteractionId) -> Vec<String> {
    engine
        .store()
        .conversation(id)
        .expect("conversation")
        .iter()
        .filter_map(|e| e.message.meta.get(SURVEY_TOKEN).cloned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_survey_task_catches_up_and_never_asks_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = demo();
    config.surveys.enabled = true;
    config.surveys.queues = vec!["benefits".into()];
    config.surveys.period_days = 0;
    let (engine, _) = Engine::start(EngineConfig::new(dir.path()), &config)
        .await
        .expect("start");
    engine
        .send(Command::Login {
            agent: AgentId::new("amelie"),
        })
        .await
        .expect("login");

    // Completed while no survey task runs (as before a restart).
    let plain = completed_sms(&engine, 1, "benefits").await;
    let not_surveyed = completed_sms(&engine, 2, "general").await;
    let crashed = completed_sms(&engine, 3, "benefits").await;
    // A question recorded just before a crash, its message never committed.
    let recorded = SurveyQuestion {
        token: "recorded-token".into(),
        interaction: crashed,
        contact: Some(ContactId::new(CITIZEN)),
        agent: Some(AgentId::new("amelie")),
        queue: "benefits".into(),
        channel: Channel::Sms,
        via: SurveyVia::Sms,
        address: Some(CITIZEN.into()),
        message: "sms:recorded-message".into(),
        language: "fr,en".into(),
        asked_at: SystemClock.now(),
        answered_at: None,
    };
    assert!(engine
        .store()
        .claim_survey_question(&recorded)
        .expect("claim"));

    let surveys = Surveys::new(
        &StartContext::standalone(engine.clone(), "http://guichet.example"),
        config.surveys.clone(),
        config.indicators.clone(),
        config.survey_outlets(),
    );
    let task = surveys.start(None).expect("surveys are enabled");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while questions_in(&engine, plain).is_empty() || questions_in(&engine, crashed).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the survey task did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The recorded question is committed with its own token and message id.
    assert_eq!(questions_in(&engine, crashed), ["recorded-token"]);
    let message = engine
        .store()
        .conversation(crashed)
        .expect("conversation")
        .last()
        .map(|e| e.message.clone())
        .expect("question");
    assert_eq!(message.id, "sms:recorded-message");
    assert!(message
        .text
        .contains("http://guichet.example/survey/recorded-token"));
    assert_eq!(message.to, CITIZEN);
    assert_eq!(message.from, SERVICE);
    // The other queue is not surveyed.
    assert!(questions_in(&engine, not_surveyed).is_empty());

    // A second task (a restart: the first one stops) asks nothing again. One task runs per
    // server: two at once could both commit a question recorded by one of them.
    task.abort();
    let _ = task.await;
    let again = Surveys::new(
        &StartContext::standalone(engine.clone(), "http://guichet.example"),
        config.surveys.clone(),
        config.indicators.clone(),
        config.survey_outlets(),
    );
    let second = again.start(None).expect("enabled");
    let later = completed_sms(&engine, 4, "benefits").await;
    while questions_in(&engine, later).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new completion was not surveyed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for id in [plain, crashed, later] {
        assert_eq!(questions_in(&engine, id).len(), 1, "asked once: {id}");
    }
    engine.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), second).await;
}
