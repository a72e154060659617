//! What an offer carries, on the real server: the journaled offer event holds the interaction's
//! context for the desktop (contact, attributes, deadlines, wrap-up codes, the transfer's note;
//! never the conversation), the offer shows it, a restart replays it, and erasing the contact
//! scrubs it. And the request's one short reference: shown in the offer, found by `Get` (an
//! agent only for its own work) and by a supervisor's `ListWaiting` search.

use crate::api_common;

use api_common::{action, erase_contact_once_closed, next_offer, set_available, Workspace};
use guichet::api::proto as pb;

/// The journal rows of `kind` for `interaction`, as JSON (read through the store, on either
/// backend).
fn rows(ws: &Workspace, interaction: &str, kind: &str) -> Vec<serde_json::Value> {
    ws.journal_payloads(interaction, kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offer_event_carries_the_desktop_s_context_and_erasure_scrubs_it() {
    let ws = Workspace::new();
    let mut server = ws.start();
    let (sup_token, _) = ws.token("supervisor", None);
    let mut sup = server.supervisor(&sup_token);
    api_common::change_queue(&mut sup, "benefits", |queue| {
        queue.wrap_up_codes = vec!["informed".into(), "redirected".into()];
        queue.default_wrap_up_code = "informed".into();
    })
    .await;

    let (mut amelie, mut amelie_offers) = api_common::logged_in_agent(&ws, &server, "amelie").await;
    let mut create = api_common::spec("benefits", pb::Channel::Chat, "c-ctx", "chat:ctx-1");
    let spec = create.spec.as_mut().unwrap();
    spec.attributes = vec![pb::Attribute {
        key: "dossier".into(),
        value: "APL-4711".into(),
    }];
    create.message = Some(pb::InboundMessage {
        text: "Bonjour, une question sur mon APL".into(),
        from: "visitor".into(),
        ..Default::default()
    });
    let id = api_common::create_id(&ws, &server, create).await;
    let offer = next_offer(&mut amelie_offers).await;
    let shown = offer.interaction.as_ref().expect("interaction");
    assert_eq!(shown.id, id);
    assert_eq!(shown.contact, "c-ctx");
    assert_eq!(shown.attributes[0].value, "APL-4711");
    assert!(shown.sla_deadline_unix_ms > 0 && offer.deadline_unix_ms > 0);
    assert_eq!(offer.wrap_up_codes, ["informed", "redirected"]);
    assert_eq!(offer.default_wrap_up_code, "informed");
    assert_eq!(
        offer.conversation.len(),
        1,
        "the conversation comes with it"
    );

    // The journaled offer carries the context, never the conversation.
    let offered = rows(&ws, &id, "interaction_offered");
    let context = &offered[0]["context"];
    assert_eq!(context["spec"]["contact"], "c-ctx");
    assert_eq!(context["spec"]["attributes"]["dossier"], "APL-4711");
    assert_eq!(context["queue"], "benefits");
    assert_eq!(context["wrap_up_codes"][1], "redirected");
    assert_eq!(context["default_wrap_up_code"], "informed");
    assert!(context["sla_deadline"].as_u64().unwrap() > 0);
    let raw = offered[0].to_string();
    assert!(!raw.contains("question sur mon APL"), "{raw}");

    // Transferred with a note: the next offer's event carries the note.
    amelie.accept(action(&id)).await.expect("Accept");
    let (_chloe, mut chloe_offers) = api_common::logged_in_agent(&ws, &server, "chloe").await;
    amelie
        .transfer(pb::TransferRequest {
            interaction_id: id.clone(),
            to: Some(pb::transfer_request::To::Agent("chloe".into())),
            note: "Trop-perçu APL déjà vérifié".into(),
            ..Default::default()
        })
        .await
        .expect("Transfer");
    let offer = next_offer(&mut chloe_offers).await;
    assert_eq!(
        offer.transfer.as_ref().unwrap().note,
        "Trop-perçu APL déjà vérifié"
    );
    assert_eq!(offer.transfer.as_ref().unwrap().from_agent, "amelie");
    let offered = rows(&ws, &id, "interaction_offered");
    assert_eq!(offered.len(), 2);
    assert_eq!(offered[1]["context"]["transfer"]["by"], "amelie");
    assert_eq!(
        offered[1]["context"]["transfer"]["note"],
        "Trop-perçu APL déjà vérifié"
    );

    // A restart replays the events (the context does not change the router) and a
    // reconnecting desktop gets the note back from the router.
    server.terminate();
    let server = ws.start();
    let (chloe_token, _) = ws.token("agent", Some("chloe"));
    let mut chloe = server.desktop(&chloe_token);
    chloe
        .login(pb::LoginRequest::default())
        .await
        .expect("Login");
    let mut offers = chloe
        .offers(pb::OffersRequest::default())
        .await
        .expect("Offers")
        .into_inner();
    let pending = next_offer(&mut offers).await;
    assert_eq!(pending.interaction.as_ref().unwrap().id, id);
    assert_eq!(
        pending.transfer.as_ref().unwrap().note,
        "Trop-perçu APL déjà vérifié"
    );
    chloe
        .accept(action(&id))
        .await
        .expect("Accept after the restart");
    chloe
        .complete(pb::CompleteRequest {
            interaction_id: id.clone(),
            wrap_up_code: "informed".into(),
            ..Default::default()
        })
        .await
        .expect("Complete");
    // Available again: the wrap-up ends and the interaction is closed.
    set_available(&mut chloe).await;

    // Erasing the contact scrubs the offers' context too.
    erase_contact_once_closed(&ws, &server, "c-ctx").await;
    for row in rows(&ws, &id, "interaction_offered") {
        let raw = row.to_string();
        assert!(!raw.contains("c-ctx"), "{raw}");
        assert!(!raw.contains("APL-4711"), "{raw}");
        assert!(!raw.contains("Trop-perçu"), "{raw}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_short_reference_finds_the_request() {
    let ws = Workspace::new();
    let server = ws.start();
    let (integrator, _) = ws.token("integrator", None);
    let mut int = server.interactions(&integrator);
    let created = int
        .create(api_common::spec(
            "benefits",
            pb::Channel::Email,
            "zoe@example.org",
            "email:ref-1",
        ))
        .await
        .expect("Create")
        .into_inner()
        .interaction
        .expect("interaction");
    let reference = created.reference.clone();
    assert_eq!(reference.len(), 11, "{reference}");
    assert_eq!(&reference[5..6], "-");

    // `Get` takes it as the citizen may type it.
    for typed in [
        reference.clone(),
        reference.to_lowercase(),
        reference.replace('-', ""),
        format!(" {} ", reference.replace('-', " ")),
    ] {
        let got = int
            .get(pb::GetRequest {
                interaction_id: typed.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("Get {typed:?}: {e:?}"))
            .into_inner();
        assert_eq!(got.id, created.id);
        assert_eq!(got.reference, reference);
    }
    let bad = int
        .get(pb::GetRequest {
            interaction_id: "NOT-A-REF!".into(),
        })
        .await;
    api_common::assert_status(
        bad,
        tonic::Code::InvalidArgument,
        &["interaction id", "short reference"],
    );
    // The same reference with its first character changed names nothing open.
    let first = if reference.starts_with('0') { "1" } else { "0" };
    let other = format!("{first}{}", &reference[1..]);
    let missing = int
        .get(pb::GetRequest {
            interaction_id: other,
        })
        .await;
    api_common::assert_status(missing, tonic::Code::NotFound, &["reference"]);

    // A supervisor's search.
    let (sup_token, _) = ws.token("supervisor", None);
    let mut sup = server.supervisor(&sup_token);
    let found = sup
        .list_waiting(pb::ListWaitingRequest {
            reference: reference.to_lowercase(),
            ..Default::default()
        })
        .await
        .expect("ListWaiting by reference")
        .into_inner();
    assert_eq!(api_common::open(&found).len(), 1);
    assert_eq!(api_common::open(&found)[0].id, created.id);
    let bad = sup
        .list_waiting(pb::ListWaitingRequest {
            reference: "K7M2Q".into(),
            ..Default::default()
        })
        .await;
    api_common::assert_status(bad, tonic::Code::InvalidArgument, &["reference"]);

    // An agent finds it only once offered it.
    let (amelie_token, _) = ws.token("agent", Some("amelie"));
    let mut as_amelie = server.interactions(&amelie_token);
    let refused = as_amelie
        .get(pb::GetRequest {
            interaction_id: reference.clone(),
        })
        .await;
    api_common::assert_status(refused, tonic::Code::PermissionDenied, &["amelie"]);
    let (_desk, mut offers) = api_common::logged_in_agent(&ws, &server, "amelie").await;
    let offer = next_offer(&mut offers).await;
    assert_eq!(offer.interaction.as_ref().unwrap().reference, reference);
    let got = as_amelie
        .get(pb::GetRequest {
            interaction_id: reference.clone(),
        })
        .await
        .expect("Get by the offered agent")
        .into_inner();
    assert_eq!(got.id, created.id);
}
