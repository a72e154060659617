//! The warm (consultative) transfer through the agent desktop API, on the real server over
//! loopback: a chat consulted, declined, consulted again, accepted and handed over; the
//! consulted agent sees the conversation but cannot write to the visitor until it holds the
//! chat; the handover survives a restart; a consulted agent's reconnecting desktop gets the
//! consultation back, and the holder hears of the colleague's answers; calls not connected
//! through a gateway and bad requests are refused with clear statuses.

use crate::api_common;

use api_common::{
    action, assert_status, erase_contact_once_closed, next, next_offer, next_withdrawn,
    set_available, Workspace,
};
use guichet::api::proto as pb;
use pb::offer_update::Update;
use tonic::Code;

fn consult(id: &str, to: pb::start_consult_request::To, note: &str) -> pb::StartConsultRequest {
    pb::StartConsultRequest {
        agent_id: String::new(),
        interaction_id: id.to_owned(),
        to: Some(to),
        note: note.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_is_consulted_then_handed_over_to_the_consulted_agent() {
    let ws = Workspace::new();
    let mut server = ws.start();
    let (mut amelie, mut amelie_offers) = api_common::logged_in_agent(&ws, &server, "amelie").await;
    let id = api_common::create_chat(
        &ws,
        &server,
        "c-warm",
        "chat:warm-1",
        "Bonjour, mon APL a baissé",
    )
    .await;
    let offer = next_offer(&mut amelie_offers).await;
    assert_eq!(offer.interaction.as_ref().unwrap().id, id);
    amelie.accept(action(&id)).await.expect("Accept");
    let (mut chloe, mut chloe_offers) = api_common::logged_in_agent(&ws, &server, "chloe").await;

    // Bad requests: no target, an unknown colleague, oneself, nothing to complete or cancel.
    assert_status(
        amelie
            .start_consult(pb::StartConsultRequest {
                interaction_id: id.clone(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        &["queue or agent"],
    );
    assert_status(
        amelie
            .start_consult(consult(
                &id,
                pb::start_consult_request::To::Agent("nobody".into()),
                "",
            ))
            .await,
        Code::NotFound,
        &["nobody"],
    );
    assert_status(
        amelie
            .start_consult(consult(
                &id,
                pb::start_consult_request::To::Agent("amelie".into()),
                "",
            ))
            .await,
        Code::FailedPrecondition,
        &["already has it"],
    );
    assert_status(
        amelie.complete_transfer(action(&id)).await,
        Code::FailedPrecondition,
        &["no consultation"],
    );
    // Only the agent holding it may consult.
    assert_status(
        chloe
            .start_consult(consult(
                &id,
                pb::start_consult_request::To::Agent("amelie".into()),
                "",
            ))
            .await,
        Code::FailedPrecondition,
        &["accept it"],
    );

    // Consulted, chloe declines: amelie still holds it.
    let shown = amelie
        .start_consult(consult(
            &id,
            pb::start_consult_request::To::Agent("chloe".into()),
            "APL en baisse, dossier vérifié",
        ))
        .await
        .expect("StartConsult")
        .into_inner();
    let c = shown.consult.as_ref().expect("the consultation");
    assert_eq!(
        (c.agent.as_str(), c.from_agent.as_str(), c.accepted),
        ("chloe", "amelie", false)
    );
    let offer = next_offer(&mut chloe_offers).await;
    let seen = offer.interaction.as_ref().unwrap();
    assert_eq!(seen.id, id);
    assert_eq!(seen.agent, "amelie", "the interaction stays with amelie");
    assert_eq!(seen.contact, "c-warm");
    assert_eq!(
        seen.consult.as_ref().unwrap().note,
        "APL en baisse, dossier vérifié"
    );
    assert!(offer.deadline_unix_ms > 0);
    assert_eq!(offer.conversation.len(), 1, "the conversation so far");
    assert_eq!(offer.conversation[0].text, "Bonjour, mon APL a baissé");
    chloe
        .decline(action(&id))
        .await
        .expect("Decline the consultation");
    assert_eq!(
        next_withdrawn(&mut chloe_offers).await.reason,
        "consult_declined"
    );

    // Consulted again; completing before chloe accepted is refused; chloe reads the
    // conversation but may not write to the visitor.
    amelie
        .start_consult(consult(
            &id,
            pb::start_consult_request::To::Agent("chloe".into()),
            "2e essai",
        ))
        .await
        .expect("StartConsult again");
    next_offer(&mut chloe_offers).await;
    assert_status(
        amelie.complete_transfer(action(&id)).await,
        Code::FailedPrecondition,
        &["not accepted", "chloe"],
    );
    let accepted = chloe
        .accept(action(&id))
        .await
        .expect("Accept the consultation")
        .into_inner();
    assert!(accepted.consult.as_ref().unwrap().accepted);
    let conversation = chloe
        .get_conversation(pb::GetConversationRequest {
            interaction_id: id.clone(),
            ..Default::default()
        })
        .await
        .expect("the consulted agent reads the conversation")
        .into_inner();
    assert_eq!(conversation.messages.len(), 1);
    assert_status(
        chloe
            .send_message(pb::SendMessageRequest {
                interaction_id: id.clone(),
                text: "Bonjour".into(),
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
        &["chloe"],
    );

    // Amelie completes the transfer: chloe holds the chat, with the note, and continues it.
    let moved = amelie
        .complete_transfer(action(&id))
        .await
        .expect("CompleteTransfer")
        .into_inner();
    assert_eq!(moved.agent, "chloe");
    assert_eq!(moved.phase, pb::Phase::Assigned as i32);
    assert!(moved.consult.is_none());
    assert_eq!(
        next_withdrawn(&mut amelie_offers).await.reason,
        "transferred"
    );
    chloe
        .send_message(pb::SendMessageRequest {
            interaction_id: id.clone(),
            text: "Bonjour, je reprends votre demande.".into(),
            ..Default::default()
        })
        .await
        .expect("chloe writes to the visitor");
    assert_status(
        amelie
            .send_message(pb::SendMessageRequest {
                interaction_id: id.clone(),
                text: "encore moi".into(),
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
        &["amelie"],
    );

    // A restart replays the handover.
    server.terminate();
    let server = ws.start();
    let (chloe_token, _) = ws.token("agent", Some("chloe"));
    let mut chloe = server.desktop(&chloe_token);
    let done = chloe
        .complete(pb::CompleteRequest {
            interaction_id: id.clone(),
            ..Default::default()
        })
        .await
        .expect("chloe completes it after the restart")
        .into_inner();
    assert_eq!(done.agent, "chloe");

    // Erasing the contact scrubs the consultations' notes from the journal.
    assert!(consult_rows(&ws, &id)
        .iter()
        .any(|r| r.contains("dossier vérifié")));
    chloe
        .login(pb::LoginRequest::default())
        .await
        .expect("Login");
    set_available(&mut chloe).await;
    erase_contact_once_closed(&ws, &server, "c-warm").await;
    let rows = consult_rows(&ws, &id);
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert!(
            !row.contains("dossier vérifié")
                && !row.contains("2e essai")
                && !row.contains("c-warm"),
            "{row}"
        );
    }
}

/// The `consult_offered` journal rows of `interaction`, as stored (on either backend).
fn consult_rows(ws: &Workspace, interaction: &str) -> Vec<String> {
    ws.journal_payloads(interaction, "consult_offered")
        .iter()
        .map(|payload| payload.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consultation_is_cancelled_ends_when_the_holder_completes_and_calls_are_refused() {
    let ws = Workspace::new();
    let server = ws.start();
    let (mut amelie, mut amelie_offers) = api_common::logged_in_agent(&ws, &server, "amelie").await;
    let (integrator, _) = ws.token("integrator", None);
    let id = server
        .interactions(&integrator)
        .create(api_common::spec(
            "benefits",
            pb::Channel::Chat,
            "c-warm2",
            "chat:warm-2",
        ))
        .await
        .expect("Create")
        .into_inner()
        .interaction
        .expect("interaction")
        .id;
    next_offer(&mut amelie_offers).await;
    amelie.accept(action(&id)).await.expect("Accept");
    let (_chloe, mut chloe_offers) = api_common::logged_in_agent(&ws, &server, "chloe").await;

    // To a queue: its first available agent (chloe, amelie being the one asking).
    amelie
        .start_consult(consult(
            &id,
            pb::start_consult_request::To::Queue("benefits".into()),
            "",
        ))
        .await
        .expect("StartConsult to a queue");
    let offer = next_offer(&mut chloe_offers).await;
    assert_eq!(offer.interaction.unwrap().consult.unwrap().agent, "chloe");
    assert_status(
        amelie
            .start_consult(consult(
                &id,
                pb::start_consult_request::To::Agent("chloe".into()),
                "",
            ))
            .await,
        Code::FailedPrecondition,
        &["already in consultation"],
    );
    let kept = amelie
        .cancel_consult(action(&id))
        .await
        .expect("CancelConsult")
        .into_inner();
    assert!(kept.consult.is_none());
    assert_eq!(kept.agent, "amelie");
    assert_eq!(
        next_withdrawn(&mut chloe_offers).await.reason,
        "consult_cancelled"
    );

    // Completing the interaction ends a consultation in progress.
    amelie
        .start_consult(consult(
            &id,
            pb::start_consult_request::To::Agent("chloe".into()),
            "",
        ))
        .await
        .expect("StartConsult");
    next_offer(&mut chloe_offers).await;
    amelie
        .complete(pb::CompleteRequest {
            interaction_id: id.clone(),
            ..Default::default()
        })
        .await
        .expect("Complete");
    assert_eq!(
        next_withdrawn(&mut chloe_offers).await.reason,
        "consult_closed"
    );

    // A call not connected through a gateway (created through the API): said so; calls on
    // Twilio are warm-transferred through a conference (tests/api/voice_warm_transfer.rs).
    let call = server
        .interactions(&integrator)
        .create(api_common::spec(
            "benefits",
            pb::Channel::Voice,
            "c-warm3",
            "call:warm-3",
        ))
        .await
        .expect("Create a call")
        .into_inner()
        .interaction
        .expect("interaction")
        .id;
    let holder = api_common::eventually(
        std::time::Duration::from_secs(10),
        "the call is offered",
        || {
            let mut sup = server.supervisor(&ws.admin_token());
            let call = call.clone();
            async move {
                let resp = sup
                    .list_waiting(pb::ListWaitingRequest::default())
                    .await
                    .ok()?;
                api_common::open(&resp.into_inner())
                    .into_iter()
                    .find(|i| i.id == call && !i.agent.is_empty())
                    .map(|i| i.agent)
            }
        },
    )
    .await;
    let (token, _) = ws.token("agent", Some(&holder));
    let mut desk = server.desktop(&token);
    desk.accept(action(&call)).await.expect("Accept the call");
    assert_status(
        desk.start_consult(consult(
            &call,
            pb::start_consult_request::To::Agent("chloe".into()),
            "",
        ))
        .await,
        Code::FailedPrecondition,
        &["not connected", "Transfer"],
    );
}

/// The next update that is an offer or a held interaction, and which.
async fn next_work(offers: &mut tonic::Streaming<pb::OfferUpdate>) -> (&'static str, pb::Offer) {
    loop {
        match next(offers).await.update {
            Some(Update::Offer(o)) => return ("offer", o),
            Some(Update::Held(o)) => return ("held", o),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consulted_agent_s_reconnecting_desktop_gets_the_consultation_back_and_the_holder_hears_of_answers(
) {
    let ws = Workspace::new();
    let server = ws.start();
    let (mut amelie, mut amelie_offers) = api_common::logged_in_agent(&ws, &server, "amelie").await;
    let id = api_common::create_chat(
        &ws,
        &server,
        "c-warm-r",
        "chat:warm-r",
        "Bonjour, question sur mon APL",
    )
    .await;
    next_offer(&mut amelie_offers).await;
    amelie.accept(action(&id)).await.expect("Accept");
    let (mut chloe, chloe_offers) = api_common::logged_in_agent(&ws, &server, "chloe").await;
    amelie
        .start_consult(consult(
            &id,
            pb::start_consult_request::To::Agent("chloe".into()),
            "APL: à vérifier",
        ))
        .await
        .expect("StartConsult");

    // chloe's desktop drops and reconnects: the consultation offer comes back, with its
    // deadline, the note and the conversation.
    drop(chloe_offers);
    let mut chloe_offers = chloe
        .offers(pb::OffersRequest::default())
        .await
        .expect("Offers again")
        .into_inner();
    let (kind, offer) = next_work(&mut chloe_offers).await;
    assert_eq!(kind, "offer");
    let seen = offer.interaction.as_ref().expect("interaction");
    assert_eq!(seen.id, id);
    assert!(offer.deadline_unix_ms > 0);
    let c = seen.consult.as_ref().expect("the consultation");
    assert_eq!(
        (c.agent.as_str(), c.note.as_str()),
        ("chloe", "APL: à vérifier")
    );
    assert!(
        offer
            .conversation
            .iter()
            .any(|m| m.text.contains("question sur mon APL")),
        "{offer:?}"
    );

    // Accepted, then reconnected again: held, and amelie heard of the accept.
    chloe
        .accept(action(&id))
        .await
        .expect("Accept the consultation");
    let notice = loop {
        if let Some(Update::Consult(n)) = next(&mut amelie_offers).await.update {
            break n;
        }
    };
    assert_eq!(
        (
            notice.kind.as_str(),
            notice.agent_id.as_str(),
            notice.interaction_id.as_str()
        ),
        ("consult_accepted", "chloe", id.as_str())
    );
    drop(chloe_offers);
    let mut chloe_offers = chloe
        .offers(pb::OffersRequest::default())
        .await
        .expect("Offers again")
        .into_inner();
    let (kind, held) = next_work(&mut chloe_offers).await;
    assert_eq!(kind, "held");
    let seen = held.interaction.as_ref().expect("interaction");
    assert_eq!(seen.id, id);
    assert!(seen.consult.as_ref().expect("consultation").accepted);
    assert_eq!(seen.agent, "amelie", "amelie still holds it");

    // Cancelled, then a second consultation that chloe declines: amelie hears of it.
    amelie
        .cancel_consult(action(&id))
        .await
        .expect("CancelConsult");
    amelie
        .start_consult(consult(
            &id,
            pb::start_consult_request::To::Agent("chloe".into()),
            "",
        ))
        .await
        .expect("StartConsult again");
    next_work(&mut chloe_offers).await;
    chloe
        .decline(action(&id))
        .await
        .expect("Decline the consultation");
    let notice = loop {
        if let Some(Update::Consult(n)) = next(&mut amelie_offers).await.update {
            break n;
        }
    };
    assert_eq!(notice.kind, "consult_declined");
}
