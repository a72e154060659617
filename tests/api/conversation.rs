//! Conversations over gRPC on the real server: an integrator's message creates an email
//! interaction; the agent's offer carries it; a second message joins it and reaches the agent's
//! stream; the agent's reply is threaded under the contact's message; retries and bad requests
//! record nothing.

use crate::api_common;

use tonic::Code;

use api_common::{assert_status, next, spec, Workspace};
use guichet::api::proto as pb;
use pb::offer_update::Update;

fn with_message(mut req: pb::CreateRequest, id: &str, text: &str) -> pb::CreateRequest {
    req.message = Some(pb::InboundMessage {
        id: id.to_owned(),
        from: "citoyen@example.org".into(),
        to: "contact@service.example".into(),
        subject: "Dossier APL".into(),
        text: text.to_owned(),
    });
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_reach_the_agent_and_replies_thread_under_them() {
    let ws = Workspace::new();
    let server = ws.start();
    let (int_token, _) = ws.token("integrator", None);
    let (amelie_token, _) = ws.token("agent", Some("amelie"));
    let (bruno_token, _) = ws.token("agent", Some("bruno"));
    let mut int = server.interactions(&int_token);
    let mut desk = server.desktop(&amelie_token);

    desk.login(pb::LoginRequest::default())
        .await
        .expect("Login");
    let mut offers = desk
        .offers(pb::OffersRequest::default())
        .await
        .expect("Offers")
        .into_inner();

    let first = with_message(
        spec(
            "benefits",
            pb::Channel::Email,
            "citoyen@example.org",
            "form-1",
        ),
        "m1",
        "Bonjour, où en est mon dossier ?",
    );
    let created = int
        .create(first.clone())
        .await
        .expect("Create")
        .into_inner();
    assert!(created.created);
    let id = created.interaction.expect("interaction").id;

    // The offer carries the conversation so far.
    let offer = match next(&mut offers).await.update {
        Some(Update::Offer(o)) => o,
        other => panic!("expected an offer, got {other:?}"),
    };
    assert_eq!(offer.interaction.as_ref().expect("interaction").id, id);
    let texts: Vec<&str> = offer.conversation.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["Bonjour, où en est mon dossier ?"]);
    assert_eq!(offer.conversation[0].direction, "inbound");
    assert_eq!(offer.conversation[0].id, "api:m1");

    // The same message again (a retry) is not recorded twice.
    let again = int.create(first).await.expect("retry").into_inner();
    assert!(!again.created);
    assert_eq!(again.interaction.expect("interaction").id, id);

    // Writing before accepting is refused.
    let early = desk
        .send_message(pb::SendMessageRequest {
            interaction_id: id.clone(),
            text: "Bonjour".into(),
            ..Default::default()
        })
        .await;
    assert_status(early, Code::PermissionDenied, &["accept it"]);

    desk.accept(pb::InteractionAction {
        interaction_id: id.clone(),
        ..Default::default()
    })
    .await
    .expect("Accept");

    // A second message for the same reference joins the conversation and reaches the agent.
    let second = with_message(
        spec(
            "benefits",
            pb::Channel::Email,
            "citoyen@example.org",
            "form-1",
        ),
        "m2",
        "J'ajoute mon avis d'imposition.",
    );
    let joined = int.create(second).await.expect("second").into_inner();
    assert!(!joined.created);
    match next(&mut offers).await.update {
        Some(Update::Message(m)) => {
            assert_eq!(m.interaction_id, id);
            assert_eq!(m.text, "J'ajoute mon avis d'imposition.");
        }
        other => panic!("expected a message, got {other:?}"),
    }

    // The agent answers: addressed to the contact, from the service, subject "Re: ...".
    let reply = desk
        .send_message(pb::SendMessageRequest {
            interaction_id: id.clone(),
            text: "Bonjour, votre dossier est complet.".into(),
            ..Default::default()
        })
        .await
        .expect("SendMessage")
        .into_inner();
    assert_eq!(reply.direction, "outbound");
    assert_eq!(reply.to, "citoyen@example.org");
    assert_eq!(reply.from, "contact@service.example");
    assert_eq!(reply.subject, "Re: Dossier APL");
    assert_eq!(reply.agent, "amelie");
    assert!(reply.id.starts_with("email:"), "{}", reply.id);
    // Its own message comes back on the stream, as other desktops of the agent need it.
    match next(&mut offers).await.update {
        Some(Update::Message(m)) => assert_eq!(m.id, reply.id),
        other => panic!("expected the reply, got {other:?}"),
    }

    let conversation = desk
        .get_conversation(pb::GetConversationRequest {
            interaction_id: id.clone(),
            ..Default::default()
        })
        .await
        .expect("GetConversation")
        .into_inner();
    let order: Vec<(&str, &str)> = conversation
        .messages
        .iter()
        .map(|m| (m.direction.as_str(), m.text.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            ("inbound", "Bonjour, où en est mon dossier ?"),
            ("inbound", "J'ajoute mon avis d'imposition."),
            ("outbound", "Bonjour, votre dossier est complet."),
        ]
    );

    // Another agent may neither read nor write in it; empty texts and unknown ids are refused.
    let mut bruno = server.desktop(&bruno_token);
    let foreign = bruno
        .get_conversation(pb::GetConversationRequest {
            interaction_id: id.clone(),
            ..Default::default()
        })
        .await;
    assert_status(foreign, Code::PermissionDenied, &["does not handle"]);
    let empty = desk
        .send_message(pb::SendMessageRequest {
            interaction_id: id.clone(),
            text: "   ".into(),
            ..Default::default()
        })
        .await;
    assert_status(empty, Code::InvalidArgument, &["text is empty"]);
    let unknown = desk
        .send_message(pb::SendMessageRequest {
            interaction_id: "01ARZ3NDEKTSV4RRFFQ69G5FAV".into(),
            text: "Bonjour".into(),
            ..Default::default()
        })
        .await;
    assert_status(unknown, Code::NotFound, &["no open interaction"]);
    let blank = with_message(
        spec(
            "benefits",
            pb::Channel::Email,
            "citoyen@example.org",
            "form-2",
        ),
        "m3",
        " ",
    );
    assert_status(
        int.create(blank).await,
        Code::InvalidArgument,
        &["message.text is empty"],
    );
}
