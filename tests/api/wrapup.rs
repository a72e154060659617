//! An agent's work on the real server, Twilio's REST API stood in for locally: a call the
//! caller hung up is still completed by its agent with a wrap-up code and notes (journaled),
//! completing a call still in progress hangs it up through the gateway's live call update, a
//! queue's wrap-up codes are offered, checked and defaulted, and a desktop that reconnects gets
//! back everything its agent holds with its context (and may `Get` it).

use crate::api_common;
use crate::voice_common;

use api_common::{next, Workspace};
use guichet::api::proto as pb;
use pb::offer_update::Update;
use voice_common::*;

/// Calls the test number as `sid`, takes the menus to the benefits queue, lets amelie accept
/// the offer (Guichet bridges the call); returns amelie's desktop and the interaction id.
async fn answered_call(
    s: &Setup,
    sid: &str,
) -> (
    pb::agent_desktop_client::AgentDesktopClient<api_common::Authed>,
    String,
) {
    let incoming = format!("{}/voice/twilio/incoming", s.base);
    let call = [
        ("CallSid", sid),
        ("From", "+33611111111"),
        ("To", NUMBER),
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
    ];
    let (_, xml) = twilio_post(&s.client, &incoming, &call).await;
    let mut verbs = parse_twiml(&xml);
    for _ in 0..2 {
        let action = first_attr(&verbs, "Gather", "action");
        let (_, xml) = twilio_post(&s.client, &action, &[("CallSid", sid), ("Digits", "1")]).await;
        verbs = parse_twiml(&xml);
    }
    let (token, _) = s.ws.token("agent", Some("amelie"));
    let mut desk = s.server.desktop(&token);
    desk.login(pb::LoginRequest::default())
        .await
        .expect("Login");
    let mut offers = desk
        .offers(pb::OffersRequest::default())
        .await
        .expect("Offers")
        .into_inner();
    let id = loop {
        if let Some(Update::Offer(o)) = next(&mut offers).await.update {
            break o.interaction.expect("interaction").id;
        }
    };
    desk.accept(pb::InteractionAction {
        agent_id: String::new(),
        interaction_id: id.clone(),
    })
    .await
    .expect("Accept");
    s.standin.wait_for(&format!("/Calls/{sid}.json")).await;
    (desk, id)
}

/// The journal rows of `kind` for `interaction`, as JSON (read through the store, on either
/// backend).
fn rows(ws: &Workspace, interaction: &str, kind: &str) -> Vec<serde_json::Value> {
    ws.journal_payloads(interaction, kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_the_caller_hung_up_is_completed_with_a_code_and_notes() {
    let s = setup().await;
    let (mut desk, id) = answered_call(&s, "CAWRAP1").await;
    let status_url = format!("{}/voice/twilio/status", s.base);
    let (status, _) = twilio_post(
        &s.client,
        &status_url,
        &[("CallSid", "CAWRAP1"), ("CallStatus", "completed")],
    )
    .await;
    assert_eq!(status, 200);

    // The caller is gone; the agent still completes the call, with its outcome.
    let done = desk
        .complete(pb::CompleteRequest {
            interaction_id: id.clone(),
            wrap_up_code: "informed".into(),
            notes: "Dossier APL en cours, rappeler lundi".into(),
            ..Default::default()
        })
        .await
        .expect("Complete after the caller hung up")
        .into_inner();
    assert_eq!(done.id, id);
    let ended = rows(&s.ws, &id, "wrap_up_ended");
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0]["wrap_up_code"], "informed");
    assert_eq!(ended[0]["notes"], "Dossier APL en cours, rappeler lundi");

    // The agent is free again, and the next agent's history of the caller shows the outcome.
    let (sup, _) = s.ws.token("supervisor", None);
    let agents = s
        .server
        .supervisor(&sup)
        .list_agents(pb::ListAgentsRequest::default())
        .await
        .expect("ListAgents")
        .into_inner()
        .agents;
    let amelie = agents
        .iter()
        .find(|a| a.agent.as_ref().is_some_and(|a| a.id == "amelie"))
        .expect("amelie");
    assert_eq!(
        amelie.state.as_ref().unwrap().kind,
        pb::agent_state::Kind::Available as i32
    );
    // Completing it again: it is closed.
    let again = desk
        .complete(pb::CompleteRequest {
            interaction_id: id.clone(),
            wrap_up_code: "informed".into(),
            ..Default::default()
        })
        .await;
    assert!(again.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completing_a_live_call_hangs_it_up_through_the_gateway() {
    let s = setup().await;
    let (mut desk, id) = answered_call(&s, "CAWRAP2").await;
    let before = s.standin.received.lock().unwrap().len();
    desk.complete(pb::CompleteRequest {
        interaction_id: id.clone(),
        wrap_up_code: "informed".into(),
        ..Default::default()
    })
    .await
    .expect("Complete during the call");
    let requests = s.standin.received.lock().unwrap().clone();
    let hang_up = requests[before..]
        .iter()
        .find(|r| r.path.ends_with("/Calls/CAWRAP2.json"))
        .expect("a live call update after the bridge");
    assert_eq!(hang_up.method, "POST");
    assert!(hang_up.authorization.starts_with("Basic "));
    let form: Vec<(String, String)> = form_urlencoded::parse(hang_up.body.as_bytes())
        .into_owned()
        .collect();
    let twiml = &form.iter().find(|(k, _)| k == "Twiml").expect("Twiml").1;
    assert_eq!(names(&parse_twiml(twiml)), ["Hangup"]);
    let completed = rows(&s.ws, &id, "interaction_completed");
    assert_eq!(completed[0]["wrap_up_code"], "informed");

    // The gateway's status callback that follows changes nothing.
    let status_url = format!("{}/voice/twilio/status", s.base);
    let (status, _) = twilio_post(
        &s.client,
        &status_url,
        &[("CallSid", "CAWRAP2"), ("CallStatus", "completed")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(rows(&s.ws, &id, "interaction_completed").len(), 1);
}

/// The benefits queue as listed.
async fn benefits(
    sup: &mut pb::supervisor_client::SupervisorClient<api_common::Authed>,
) -> pb::Queue {
    sup.list_queues(pb::ListQueuesRequest::default())
        .await
        .expect("ListQueues")
        .into_inner()
        .queues
        .into_iter()
        .find(|q| q.id == "benefits")
        .expect("benefits")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_s_wrap_up_codes_are_offered_checked_and_defaulted() {
    let ws = Workspace::new();
    let mut server = ws.start();
    let (sup_token, _) = ws.token("supervisor", None);
    let mut sup = server.supervisor(&sup_token);

    // A default that is not one of the codes is refused, saying what to fix.
    let mut queue = benefits(&mut sup).await;
    queue.wrap_up_codes = vec!["informed".into(), "redirected".into()];
    queue.default_wrap_up_code = "unknown".into();
    let refused = sup
        .upsert_queue(pb::UpsertQueueRequest {
            queue: Some(queue.clone()),
        })
        .await;
    api_common::assert_status(
        refused,
        tonic::Code::InvalidArgument,
        &["default_wrap_up_code", "wrap_up_codes"],
    );
    queue.default_wrap_up_code = "informed".into();
    queue.wrap_up_secs = 1;
    let stored = sup
        .upsert_queue(pb::UpsertQueueRequest {
            queue: Some(queue.clone()),
        })
        .await
        .expect("UpsertQueue")
        .into_inner();
    assert_eq!(stored.wrap_up_codes, ["informed", "redirected"]);
    assert_eq!(stored.default_wrap_up_code, "informed");

    // The offer carries them; Complete checks the code.
    let (mut desk, mut offers) = api_common::logged_in_agent(&ws, &server, "amelie").await;
    let (integrator, _) = ws.token("integrator", None);
    let created = server
        .interactions(&integrator)
        .create(api_common::spec(
            "benefits",
            pb::Channel::Chat,
            "c-wrap",
            "chat:wrap-1",
        ))
        .await
        .expect("Create")
        .into_inner();
    let id = created.interaction.expect("interaction").id;
    let offer = loop {
        if let Some(Update::Offer(o)) = next(&mut offers).await.update {
            break o;
        }
    };
    assert_eq!(offer.wrap_up_codes, ["informed", "redirected"]);
    assert_eq!(offer.default_wrap_up_code, "informed");
    desk.accept(pb::InteractionAction {
        agent_id: String::new(),
        interaction_id: id.clone(),
    })
    .await
    .expect("Accept");
    let bad = desk
        .complete(pb::CompleteRequest {
            interaction_id: id.clone(),
            wrap_up_code: "solved it".into(),
            ..Default::default()
        })
        .await;
    api_common::assert_status(
        bad,
        tonic::Code::InvalidArgument,
        &["informed, redirected", "notes"],
    );
    // Completed without a code: the wrap-up's end records the queue's default.
    desk.complete(pb::CompleteRequest {
        interaction_id: id.clone(),
        notes: "Pas de code choisi".into(),
        ..Default::default()
    })
    .await
    .expect("Complete without a code");
    let ended = api_common::eventually(
        std::time::Duration::from_secs(20),
        "the wrap-up ends",
        || {
            let rows = rows(&ws, &id, "wrap_up_ended");
            async move { rows.into_iter().next() }
        },
    )
    .await;
    assert_eq!(ended["wrap_up_code"], "informed");

    // Journaled: the codes are still there after a restart.
    server.terminate();
    let server = ws.start();
    let mut sup = server.supervisor(&sup_token);
    let queue = benefits(&mut sup).await;
    assert_eq!(queue.wrap_up_codes, ["informed", "redirected"]);
    assert_eq!(queue.default_wrap_up_code, "informed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_desktop_gets_back_everything_its_agent_holds() {
    let ws = Workspace::new();
    let server = ws.start();
    let (token, _) = ws.token("agent", Some("amelie"));
    let (mut desk, mut offers) = api_common::logged_in_agent(&ws, &server, "amelie").await;
    let (integrator, _) = ws.token("integrator", None);
    let mut api = server.interactions(&integrator);
    let create = |n: &str| {
        let mut request = api_common::spec("benefits", pb::Channel::Chat, "c-back", n);
        if let Some(spec) = request.spec.as_mut() {
            spec.attributes = vec![pb::Attribute {
                key: "dossier".into(),
                value: "APL-42".into(),
            }];
        }
        request.message = Some(pb::InboundMessage {
            from: "Jeanne".into(),
            to: "guichet".into(),
            text: format!("Bonjour ({n})"),
            ..Default::default()
        });
        request
    };
    let first = api
        .create(create("chat:back-1"))
        .await
        .expect("Create")
        .into_inner();
    let first = first.interaction.expect("interaction").id;
    let offered = loop {
        if let Some(Update::Offer(o)) = next(&mut offers).await.update {
            break o.interaction.expect("interaction").id;
        }
    };
    assert_eq!(offered, first);
    desk.accept(pb::InteractionAction {
        agent_id: String::new(),
        interaction_id: first.clone(),
    })
    .await
    .expect("Accept");
    let second = api
        .create(create("chat:back-2"))
        .await
        .expect("Create")
        .into_inner();
    let second = second.interaction.expect("interaction").id;
    loop {
        if let Some(Update::Offer(o)) = next(&mut offers).await.update {
            assert_eq!(o.interaction.expect("interaction").id, second);
            break;
        }
    }

    // The desktop loses its connection and comes back.
    drop(offers);
    let mut desk2 = server.desktop(&token);
    let mut offers = desk2
        .offers(pb::OffersRequest::default())
        .await
        .expect("Offers again")
        .into_inner();
    let held = match next(&mut offers).await.update {
        Some(Update::Held(h)) => h,
        other => panic!("expected the held interaction first, got {other:?}"),
    };
    let interaction = held.interaction.as_ref().expect("interaction");
    assert_eq!(interaction.id, first);
    assert_eq!(interaction.contact, "c-back");
    assert!(interaction
        .attributes
        .iter()
        .any(|a| a.key == "dossier" && a.value == "APL-42"));
    assert!(interaction.sla_deadline_unix_ms > 0);
    assert_eq!(held.conversation[0].text, "Bonjour (chat:back-1)");
    match next(&mut offers).await.update {
        Some(Update::Offer(o)) => {
            assert_eq!(o.interaction.expect("interaction").id, second);
            assert!(o.deadline_unix_ms > 0);
        }
        other => panic!("expected the pending offer, got {other:?}"),
    }

    // In wrap-up, the held interaction comes back with the wrap-up's end as its deadline.
    desk2
        .complete(pb::CompleteRequest {
            interaction_id: first.clone(),
            wrap_up_code: "answered".into(),
            ..Default::default()
        })
        .await
        .expect("Complete");
    drop(offers);
    let mut offers = desk2
        .offers(pb::OffersRequest::default())
        .await
        .expect("Offers a third time")
        .into_inner();
    match next(&mut offers).await.update {
        Some(Update::Held(h)) => {
            assert_eq!(h.interaction.as_ref().unwrap().id, first);
            assert!(h.deadline_unix_ms > 0, "the end of the wrap-up");
        }
        other => panic!("expected the interaction in wrap-up, got {other:?}"),
    }

    // The agent may Get what it is offered or holds, not another agent's work.
    let mut own = server.interactions(&token);
    let got = own
        .get(pb::GetRequest {
            interaction_id: second.clone(),
        })
        .await
        .expect("Get an offered interaction")
        .into_inner();
    assert_eq!(got.id, second);
    let (bruno, _) = ws.token("agent", Some("bruno"));
    let refused = server
        .interactions(&bruno)
        .get(pb::GetRequest {
            interaction_id: second.clone(),
        })
        .await;
    api_common::assert_status(refused, tonic::Code::PermissionDenied, &["bruno", &second]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_s_note_is_shown_to_the_receiving_agent() {
    let ws = Workspace::new();
    let server = ws.start();
    let (mut amelie, mut amelie_offers) = api_common::logged_in_agent(&ws, &server, "amelie").await;
    let (integrator, _) = ws.token("integrator", None);
    let created = server
        .interactions(&integrator)
        .create(api_common::spec(
            "benefits",
            pb::Channel::Chat,
            "c-transfer",
            "chat:transfer-1",
        ))
        .await
        .expect("Create")
        .into_inner();
    let id = created.interaction.expect("interaction").id;
    let offer = loop {
        if let Some(Update::Offer(o)) = next(&mut amelie_offers).await.update {
            break o;
        }
    };
    assert!(offer.transfer.is_none(), "not transferred yet");
    amelie
        .accept(pb::InteractionAction {
            agent_id: String::new(),
            interaction_id: id.clone(),
        })
        .await
        .expect("Accept");
    let (_chloe, mut chloe_offers) = api_common::logged_in_agent(&ws, &server, "chloe").await;
    // Too long a note is refused before anything moves.
    let long = amelie
        .transfer(pb::TransferRequest {
            interaction_id: id.clone(),
            to: Some(pb::transfer_request::To::Agent("chloe".into())),
            note: "x".repeat(3000),
            ..Default::default()
        })
        .await;
    api_common::assert_status(long, tonic::Code::InvalidArgument, &["note", "KiB"]);
    amelie
        .transfer(pb::TransferRequest {
            interaction_id: id.clone(),
            to: Some(pb::transfer_request::To::Agent("chloe".into())),
            note: "Question sur un trop-perçu APL, dossier déjà vérifié".into(),
            ..Default::default()
        })
        .await
        .expect("Transfer with a note");
    let offer = loop {
        if let Some(Update::Offer(o)) = next(&mut chloe_offers).await.update {
            break o;
        }
    };
    assert_eq!(offer.interaction.as_ref().unwrap().id, id);
    let transfer = offer.transfer.expect("the transfer's note");
    assert_eq!(transfer.from_agent, "amelie");
    assert_eq!(
        transfer.note,
        "Question sur un trop-perçu APL, dossier déjà vérifié"
    );
    assert!(transfer.at_unix_ms > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completing_a_live_jambonz_call_hangs_it_up_through_its_rest_api() {
    let s = setup().await;
    jambonz_call_through_menu(&s, "jb-wrap").await;
    let (token, _) = s.ws.token("agent", Some("amelie"));
    let mut desk = s.server.desktop(&token);
    desk.login(pb::LoginRequest::default())
        .await
        .expect("Login");
    let mut offers = desk
        .offers(pb::OffersRequest::default())
        .await
        .expect("Offers")
        .into_inner();
    let id = loop {
        if let Some(Update::Offer(o)) = next(&mut offers).await.update {
            break o.interaction.expect("interaction").id;
        }
    };
    desk.accept(pb::InteractionAction {
        agent_id: String::new(),
        interaction_id: id.clone(),
    })
    .await
    .expect("Accept");
    s.standin.wait_for("/Calls/jb-wrap").await;
    let before = s.standin.received.lock().unwrap().len();

    desk.complete(pb::CompleteRequest {
        interaction_id: id.clone(),
        wrap_up_code: "informed".into(),
        ..Default::default()
    })
    .await
    .expect("Complete during the jambonz call");
    let requests = s.standin.received.lock().unwrap().clone();
    let hang_up = requests[before..]
        .iter()
        .find(|r| r.path.ends_with("/Calls/jb-wrap"))
        .expect("a live call update to jambonz");
    assert_eq!(hang_up.method, "PUT");
    assert_eq!(hang_up.authorization, format!("Bearer {JAMBONZ_KEY}"));
    let body: serde_json::Value = serde_json::from_str(&hang_up.body).expect("JSON body");
    assert_eq!(body["call_status"], "completed");
    assert_eq!(
        rows(&s.ws, &id, "interaction_completed")[0]["wrap_up_code"],
        "informed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_wrap_up_time_a_hung_up_call_closes_with_the_default_code_only() {
    let s = setup().await;
    let (sup_token, _) = s.ws.token("supervisor", None);
    let mut sup = s.server.supervisor(&sup_token);
    let mut queue = benefits(&mut sup).await;
    queue.wrap_up_codes = vec!["informed".into(), "redirected".into()];
    queue.default_wrap_up_code = "redirected".into();
    queue.wrap_up_secs = 0;
    sup.upsert_queue(pb::UpsertQueueRequest { queue: Some(queue) })
        .await
        .expect("UpsertQueue");
    let (mut desk, id) = answered_call(&s, "CAWRAP0").await;
    let (status, _) = twilio_post(
        &s.client,
        &format!("{}/voice/twilio/status", s.base),
        &[("CallSid", "CAWRAP0"), ("CallStatus", "completed")],
    )
    .await;
    assert_eq!(status, 200);

    // Closed at the hang-up with the queue's default code, no wrap-up, nothing else.
    let completed = api_common::eventually(
        std::time::Duration::from_secs(20),
        "the hung-up call is completed",
        || {
            let rows = rows(&s.ws, &id, "interaction_completed");
            async move { rows.into_iter().next() }
        },
    )
    .await;
    assert_eq!(completed["wrap_up_code"], "redirected");
    assert!(completed["wrap_up_until"].is_null(), "{completed}");
    assert!(rows(&s.ws, &id, "wrap_up_ended").is_empty());
    let (integrator, _) = s.ws.token("integrator", None);
    let gone = s
        .server
        .interactions(&integrator)
        .get(pb::GetRequest {
            interaction_id: id.clone(),
        })
        .await;
    api_common::assert_status(gone, tonic::Code::NotFound, &[&id]);
    // The agent's Complete afterwards finds it closed; the code stays the default.
    let late = desk
        .complete(pb::CompleteRequest {
            interaction_id: id.clone(),
            wrap_up_code: "informed".into(),
            ..Default::default()
        })
        .await;
    assert!(late.is_err());
    assert_eq!(rows(&s.ws, &id, "interaction_completed").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_gateway_s_rest_api_a_live_call_is_refused_hang_up_first() {
    // Generic SIP without `control_url`: no way to hang up from the server.
    let ws = Workspace::new();
    let standin = StandIn::start().await;
    let config = write_config(&ws.log().with_file_name("conf"), &standin.url);
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replace(
        &format!("control_url = \"{}/sip-control\"\n", standin.url),
        "",
    );
    std::fs::write(&config, text).expect("config");
    let server = ws.start_with_config(&config);
    let client = reqwest::Client::new();
    let url = format!("http://{}/voice/sip/events", server.http_addr);
    let post = |body: serde_json::Value| {
        let client = client.clone();
        let url = url.clone();
        async move { json_post(&client, &url, "guichet-signature", SIP_SECRET, &body).await }
    };
    let (_, mut answer) = post(serde_json::json!({"event": "call.incoming",
        "call_id": "fs-wrap", "from": "+33655555555", "to": NUMBER}))
    .await;
    for _ in 0..2 {
        let turn = answer["turn"].clone();
        answer = post(
            serde_json::json!({"event": "call.input", "call_id": "fs-wrap",
            "digits": "1", "turn": turn}),
        )
        .await
        .1;
    }
    let (mut desk, mut offers) = api_common::logged_in_agent(&ws, &server, "amelie").await;
    let id = loop {
        if let Some(Update::Offer(o)) = next(&mut offers).await.update {
            break o.interaction.expect("interaction").id;
        }
    };
    desk.accept(pb::InteractionAction {
        agent_id: String::new(),
        interaction_id: id.clone(),
    })
    .await
    .expect("Accept");
    // The gateway's next event gets the bridge to the agent.
    let (_, answer) =
        post(serde_json::json!({"event": "call.continue", "call_id": "fs-wrap"})).await;
    assert_eq!(answer["actions"][0]["action"], "bridge", "{answer}");

    let refused = desk
        .complete(pb::CompleteRequest {
            interaction_id: id.clone(),
            wrap_up_code: "informed".into(),
            ..Default::default()
        })
        .await;
    api_common::assert_status(
        refused,
        tonic::Code::FailedPrecondition,
        &["sip", "hang up first, then complete"],
    );
    assert!(rows(&ws, &id, "interaction_completed").is_empty());

    // Hung up on the phone: now it completes.
    let (status, _) = post(
        serde_json::json!({"event": "call.hangup", "call_id": "fs-wrap",
        "cause": "NORMAL_CLEARING"}),
    )
    .await;
    assert_eq!(status, 200);
    desk.complete(pb::CompleteRequest {
        interaction_id: id.clone(),
        wrap_up_code: "informed".into(),
        ..Default::default()
    })
    .await
    .expect("Complete after the hang-up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_survey_sms_goes_out_only_after_the_call_has_ended() {
    let ws = Workspace::new();
    let standin = StandIn::start().await;
    let config = write_config(&ws.log().with_file_name("conf"), &standin.url);
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!(
        "\n[surveys]\nenabled = true\n\n[sms]\nbase_url = \"{}\"\naccount_sid = \"ACsms\"\n\
         auth_token = \"sms-token\"\nnumbers = [{{ number = \"+33100000099\", queue = \"benefits\" }}]\n\n\
         [notify]\nretry_initial_ms = 200\nretry_max_secs = 1\n",
        standin.url
    ));
    std::fs::write(&config, text).expect("config");
    let server = ws.start_with_config(&config);
    let s = Setup {
        base: format!("http://{}", server.http_addr),
        ws,
        server,
        standin,
        client: reqwest::Client::new(),
    };
    let (mut desk, id) = answered_call(&s, "CASURVEY").await;
    let sms_sent =
        |requests: &[Received]| requests.iter().position(|r| r.path.contains("/Messages"));
    // While the call is live, no question.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sms_sent(&s.standin.received.lock().unwrap()), None);

    desk.complete(pb::CompleteRequest {
        interaction_id: id.clone(),
        wrap_up_code: "informed".into(),
        ..Default::default()
    })
    .await
    .expect("Complete during the call");
    let sms = api_common::eventually(
        std::time::Duration::from_secs(20),
        "the survey SMS is sent",
        || {
            let requests = s.standin.received.lock().unwrap().clone();
            async move { sms_sent(&requests).map(|at| (at, requests)) }
        },
    )
    .await;
    let (at, requests) = sms;
    let hang_up = requests
        .iter()
        .rposition(|r| r.path.ends_with("/Calls/CASURVEY.json"))
        .expect("the hang-up");
    assert!(hang_up < at, "the question went out before the call ended");
    let form: Vec<(String, String)> = form_urlencoded::parse(requests[at].body.as_bytes())
        .into_owned()
        .collect();
    let body = &form.iter().find(|(k, _)| k == "Body").expect("Body").1;
    let parsed: guichet::core::InteractionId = id.parse().expect("id");
    assert!(
        body.contains(&parsed.reference().to_string()),
        "the question names the request: {body}"
    );
    assert_eq!(
        form.iter()
            .find(|(k, _)| k == "To")
            .map(|(_, v)| v.as_str()),
        Some("+33611111111")
    );
}
