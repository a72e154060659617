//! Conversations on the durable engine: a contact's first message creates the interaction and
//! later ones join it while it is open, committed together; messages come back in order from
//! the store after a restart, are found by id, and erasure removes their contents.

use crate::engine_common;

use engine_common::demo;
use guichet::core::{
    AgentId, Channel, Command, ContactId, EventKind, InteractionId, InteractionSpec, Message,
    MessageDirection, RouteError,
};
use guichet::engine::{Engine, EngineConfig, EngineError};

/// An SMS conversation between `+33600000001` and the service number.
fn sms_spec(n: u128) -> InteractionSpec {
    let mut spec = InteractionSpec::new(InteractionId::from_u128(n), Channel::Sms, "benefits");
    spec.external_ref = Some("sms:+33600000001:+33100000000".into());
    spec.contact = Some(ContactId::new("+33600000001"));
    spec
}

fn inbound(id: &str, text: &str) -> Message {
    let mut m = Message::new(id, MessageDirection::Inbound, text);
    m.from = "+33600000001".into();
    m.to = "+33100000000".into();
    m
}

#[tokio::test]
async fn messages_join_the_open_conversation_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = EngineConfig::new(dir.path());
    let (engine, _) = Engine::start(config.clone(), &demo()).await.expect("start");

    // The first message creates the interaction, with the message in the same commit.
    let first = engine
        .send(Command::OpenConversation {
            spec: sms_spec(1),
            message: inbound("sms:SM1", "Bonjour, ma demande d'aide au logement ?"),
        })
        .await
        .expect("open");
    let kinds: Vec<&str> = first.iter().map(|e| e.kind.name()).collect();
    assert_eq!(kinds, ["interaction_created", "message_added"]);

    // A second message with the same pair of numbers joins it (another spec id is ignored).
    let second = engine
        .send(Command::OpenConversation {
            spec: sms_spec(2),
            message: inbound("sms:SM2", "C'est pour un studio à Lyon."),
        })
        .await
        .expect("continue");
    assert_eq!(second.len(), 1);
    assert!(matches!(
        &second[0].kind,
        EventKind::MessageAdded { interaction, .. } if *interaction == InteractionId::from_u128(1)
    ));

    // A message for an interaction that does not exist is refused and nothing is stored.
    let refused = engine
        .send(Command::AddMessage {
            interaction: InteractionId::from_u128(99),
            message: inbound("sms:SM3", "lost?"),
        })
        .await;
    assert!(
        matches!(
            refused,
            Err(EngineError::Route(RouteError::UnknownInteraction(_)))
        ),
        "{refused:?}"
    );

    // The agent takes it and answers.
    let amelie = AgentId::new("amelie");
    engine
        .send(Command::Login {
            agent: amelie.clone(),
        })
        .await
        .expect("login");
    let id = InteractionId::from_u128(1);
    engine
        .send(Command::Accept {
            interaction: id,
            agent: amelie.clone(),
        })
        .await
        .expect("accept");
    let mut reply = Message::new("sms:R1", MessageDirection::Outbound, "Bonjour, oui.");
    reply.agent = Some(amelie.clone());
    engine
        .send(Command::AddMessage {
            interaction: id,
            message: reply,
        })
        .await
        .expect("reply");
    engine.shutdown().await;
    drop(engine);

    // After a restart: the conversation in order, found by message id, the interaction open.
    let (engine, report) = Engine::start(config.clone(), &demo())
        .await
        .expect("restart");
    assert_eq!(report.open_interactions, 1);
    let store = engine.store().clone();
    let conversation = store.conversation(id).expect("conversation");
    let texts: Vec<(&str, MessageDirection)> = conversation
        .iter()
        .map(|e| (e.message.text.as_str(), e.message.direction))
        .collect();
    assert_eq!(
        texts,
        [
            (
                "Bonjour, ma demande d'aide au logement ?",
                MessageDirection::Inbound
            ),
            ("C'est pour un studio à Lyon.", MessageDirection::Inbound),
            ("Bonjour, oui.", MessageDirection::Outbound),
        ]
    );
    assert_eq!(conversation[2].message.agent.as_ref(), Some(&amelie));
    assert_eq!(
        store.message_interaction("sms:SM2").expect("find"),
        Some(id)
    );
    assert_eq!(store.message_interaction("sms:SM3").expect("find"), None);
    let (_, spec) = store.interaction_spec(id).expect("spec").expect("known");
    assert_eq!(spec.channel, Channel::Sms);

    // Once it ends, the same numbers start a new conversation. (Agents come back logged out.)
    engine
        .send(Command::Login {
            agent: amelie.clone(),
        })
        .await
        .expect("login again");
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
        .send(Command::Logout { agent: amelie })
        .await
        .expect("logout ends wrap-up");
    let later = engine
        .send(Command::OpenConversation {
            spec: sms_spec(3),
            message: inbound("sms:SM4", "Encore une question."),
        })
        .await
        .expect("new conversation");
    assert_eq!(later[0].kind.name(), "interaction_created");
    engine
        .send(Command::Cancel {
            interaction: InteractionId::from_u128(3),
        })
        .await
        .expect("cancel");

    // Erasure (of a contact without open interactions) removes the texts and addresses, and the ids, of every message of the contact.
    engine
        .erase_contact(ContactId::new("+33600000001"))
        .await
        .expect("erase");
    for n in [1, 3] {
        for entry in store
            .conversation(InteractionId::from_u128(n))
            .expect("read")
        {
            assert!(entry.message.text.is_empty(), "{entry:?}");
            assert!(entry.message.from.is_empty(), "{entry:?}");
            assert!(entry.message.id.starts_with("erased:"), "{entry:?}");
        }
    }
    assert_eq!(store.message_interaction("sms:SM1").expect("find"), None);
    engine.shutdown().await;
}

#[tokio::test]
async fn follow_ups_reach_closed_interactions_and_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = EngineConfig::new(dir.path());
    let (engine, _) = Engine::start(config.clone(), &demo()).await.expect("start");
    let id = InteractionId::from_u128(1);
    engine
        .send(Command::OpenConversation {
            spec: sms_spec(1),
            message: inbound("sms:SM1", "Bonjour"),
        })
        .await
        .expect("open");
    engine
        .send(Command::Cancel { interaction: id })
        .await
        .expect("cancel: the interaction is closed");

    // An ordinary message is refused on a closed interaction...
    let closed = engine
        .send(Command::AddMessage {
            interaction: id,
            message: Message::new("sms:N1", MessageDirection::Outbound, "late"),
        })
        .await;
    assert!(
        matches!(
            closed,
            Err(EngineError::Route(RouteError::UnknownInteraction(_)))
        ),
        "{closed:?}"
    );
    // ...but Guichet's own follow-up is committed.
    let events = engine
        .follow_up(
            id,
            Message::new("sms:S1", MessageDirection::Outbound, "Votre avis ?"),
        )
        .await
        .expect("follow-up on a closed interaction");
    assert_eq!(events[0].kind.name(), "message_added");
    // Not an inbound message, nor an agent's, nor for an interaction never seen.
    let inbound_follow_up = engine.follow_up(id, inbound("sms:S2", "not ours")).await;
    assert!(
        matches!(
            inbound_follow_up,
            Err(EngineError::Route(RouteError::InvalidFollowUp(_)))
        ),
        "{inbound_follow_up:?}"
    );
    let mut by_agent = Message::new("sms:S3", MessageDirection::Outbound, "x");
    by_agent.agent = Some(AgentId::new("amelie"));
    assert!(matches!(
        engine.follow_up(id, by_agent).await,
        Err(EngineError::Route(RouteError::InvalidFollowUp(_)))
    ));
    assert!(matches!(
        engine
            .follow_up(
                InteractionId::from_u128(42),
                Message::new("sms:S4", MessageDirection::Outbound, "x"),
            )
            .await,
        Err(EngineError::Route(RouteError::UnknownInteraction(_)))
    ));
    engine.shutdown().await;
    drop(engine);

    // Recovery replays the follow-up of the closed interaction.
    let (engine, report) = Engine::start(config, &demo()).await.expect("restart");
    assert_eq!(report.open_interactions, 0);
    let texts: Vec<String> = engine
        .store()
        .conversation(id)
        .expect("conversation")
        .iter()
        .map(|e| e.message.text.clone())
        .collect();
    assert_eq!(texts, ["Bonjour", "Votre avis ?"]);
    engine.shutdown().await;
}
