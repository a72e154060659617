//! Warm transfer of a call on the real server, Twilio's REST API stood in for locally: the
//! call moves into a conference room when its agent consults a colleague, the colleague is
//! dialled into the room when it accepts, the first agent leaves the room when the transfer
//! completes (and the room's end completes the call), a cancelled consultation hangs up the
//! colleague's leg and leaves the call with the first agent; the first agent hears of the
//! colleague's answer on its desktop; a jambonz call is refused naming its gateway.

use crate::api_common;
use crate::voice_common;

use api_common::next;
use guichet::api::proto as pb;
use pb::offer_update::Update;
use tonic::Code;
use voice_common::*;

type Desk = pb::agent_desktop_client::AgentDesktopClient<api_common::Authed>;

fn form(body: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

fn field(body: &str, name: &str) -> String {
    form(body)
        .into_iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .1
}

/// The `<Conference>` of a TwiML document: its room and attributes.
fn conference(twiml: &str) -> Twiml {
    let verbs = parse_twiml(twiml);
    let dial = verbs
        .iter()
        .find(|v| v.name == "Dial")
        .unwrap_or_else(|| panic!("no Dial in {twiml}"));
    dial.children
        .iter()
        .find(|c| c.name == "Conference")
        .unwrap_or_else(|| panic!("no Conference in {twiml}"))
        .clone()
}

/// The requests the stand-in received from index `from` on.
fn since(s: &Setup, from: usize) -> Vec<Received> {
    s.standin.received.lock().unwrap()[from..].to_vec()
}

/// Waits (10 s) until the stand-in received, from index `from` on, a `method` request whose
/// path ends with `suffix`.
async fn wait_request(s: &Setup, from: usize, method: &str, suffix: &str) -> Received {
    for _ in 0..200 {
        if let Some(r) = since(s, from)
            .into_iter()
            .find(|r| r.method == method && r.path.ends_with(suffix))
        {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "no {method} …{suffix} after request {from}: {:?}",
        since(s, from)
    );
}

async fn desk_of(s: &Setup, agent: &str) -> (Desk, tonic::Streaming<pb::OfferUpdate>) {
    let (token, _) = s.ws.token("agent", Some(agent));
    let mut desk = s.server.desktop(&token);
    desk.login(pb::LoginRequest::default())
        .await
        .expect("Login");
    let offers = desk
        .offers(pb::OffersRequest::default())
        .await
        .expect("Offers")
        .into_inner();
    (desk, offers)
}

fn action(id: &str) -> pb::InteractionAction {
    pb::InteractionAction {
        agent_id: String::new(),
        interaction_id: id.to_owned(),
    }
}

/// Calls the test number as `sid`, takes the menus to the benefits queue, lets amelie accept
/// (Guichet bridges the call with a live update); returns amelie's desktop, its stream, the
/// interaction id and the bridge's dial action URL.
async fn answered_call(
    s: &Setup,
    sid: &str,
) -> (Desk, tonic::Streaming<pb::OfferUpdate>, String, String) {
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
    let (mut desk, mut offers) = desk_of(s, "amelie").await;
    let id = loop {
        if let Some(Update::Offer(o)) = next(&mut offers).await.update {
            break o.interaction.expect("interaction").id;
        }
    };
    desk.accept(action(&id)).await.expect("Accept");
    let bridge = s.standin.wait_for(&format!("/Calls/{sid}.json")).await;
    let dial = parse_twiml(&field(&bridge.body, "Twiml"));
    let dial_action = first_attr(&dial, "Dial", "action");
    (desk, offers, id, dial_action)
}

fn consult_chloe(id: &str) -> pb::StartConsultRequest {
    pb::StartConsultRequest {
        interaction_id: id.to_owned(),
        to: Some(pb::start_consult_request::To::Agent("chloe".into())),
        note: "question on housing benefits".into(),
        ..Default::default()
    }
}

/// The next consultation notice on the first agent's stream (a `consult` update).
async fn next_notice(offers: &mut tonic::Streaming<pb::OfferUpdate>) -> pb::ConsultNotice {
    for _ in 0..20 {
        if let Some(Update::Consult(n)) = next(offers).await.update {
            return n;
        }
    }
    panic!("no notice on the stream");
}

/// Starts the consultation from amelie, checks the call moved into its room (the agent's leg
/// redirected, the caller's dial action answered with the room); returns the room's name and
/// the caller's room action URL.
async fn into_room(s: &Setup, desk: &mut Desk, sid: &str, id: &str, dial_action: &str) -> String {
    let before = s.standin.received.lock().unwrap().len();
    desk.start_consult(consult_chloe(id))
        .await
        .expect("StartConsult on a Twilio call");
    let list = wait_request(s, before, "GET", "/Calls.json").await;
    let query = form(&list.query);
    assert!(
        query.contains(&("ParentCallSid".into(), sid.into())),
        "{query:?}"
    );
    assert!(
        query.contains(&("Status".into(), "in-progress".into())),
        "{query:?}"
    );
    let moved = wait_request(
        s,
        before,
        "POST",
        &format!("/Calls/{STANDIN_AGENT_LEG}.json"),
    )
    .await;
    assert!(moved.authorization.starts_with("Basic "));
    let agent_room = conference(&field(&moved.body, "Twiml"));
    let room = format!("guichet-{id}");
    assert_eq!(agent_room.text.trim(), room);
    assert_eq!(agent_room.attr("endConferenceOnExit"), Some("true"));

    // The caller's dial to amelie ended (her leg left it): the caller joins the room.
    let (status, xml) = twilio_post(
        &s.client,
        dial_action,
        &[("CallSid", sid), ("DialCallStatus", "completed")],
    )
    .await;
    assert_eq!(status, 200);
    let caller_room = conference(&xml);
    assert_eq!(caller_room.text.trim(), room);
    assert_eq!(caller_room.attr("endConferenceOnExit"), Some("true"));
    first_attr(&parse_twiml(&xml), "Dial", "action")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twilio_call_is_warm_transferred_through_a_conference_room() {
    let s = setup().await;
    let sid = "CAWARMT1";
    let (mut amelie, mut amelie_offers, id, dial_action) = answered_call(&s, sid).await;
    let (mut chloe, mut chloe_offers) = desk_of(&s, "chloe").await;
    let room_action = into_room(&s, &mut amelie, sid, &id, &dial_action).await;

    // chloe is offered the consultation with amelie's note, accepts, and is dialled into the room.
    let offer = loop {
        if let Some(Update::Offer(o)) = next(&mut chloe_offers).await.update {
            break o;
        }
    };
    assert_eq!(offer.interaction.as_ref().expect("interaction").id, id);
    let before = s.standin.received.lock().unwrap().len();
    chloe
        .accept(action(&id))
        .await
        .expect("Accept the consultation");
    let placed = wait_request(&s, before, "POST", "/Calls.json").await;
    assert_eq!(field(&placed.body, "To"), "+33170000003");
    assert_eq!(field(&placed.body, "From"), NUMBER);
    let chloe_room = conference(&field(&placed.body, "Twiml"));
    assert_eq!(chloe_room.text.trim(), format!("guichet-{id}"));
    assert_eq!(chloe_room.attr("endConferenceOnExit"), Some("false"));
    // amelie hears of it on her desktop.
    let notice = next_notice(&mut amelie_offers).await;
    assert_eq!(notice.kind, "consult_accepted");
    assert_eq!(notice.interaction_id, id);
    assert_eq!(notice.agent_id, "chloe");

    // amelie completes the transfer: chloe's leg now closes the room, amelie's leaves it.
    let before = s.standin.received.lock().unwrap().len();
    amelie
        .complete_transfer(action(&id))
        .await
        .expect("CompleteTransfer");
    let kicked = wait_request(
        &s,
        before,
        "DELETE",
        &format!("/Conferences/{STANDIN_CONFERENCE}/Participants/{STANDIN_AGENT_LEG}.json"),
    )
    .await;
    assert!(kicked.authorization.starts_with("Basic "));
    let requests = since(&s, before);
    let lookup = requests
        .iter()
        .find(|r| r.method == "GET" && r.path.ends_with("/Conferences.json"))
        .expect("the room looked up");
    assert!(form(&lookup.query).contains(&("FriendlyName".into(), format!("guichet-{id}"))));
    let updates: Vec<(String, String)> = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("/Participants/"))
        .map(|r| {
            (
                r.path.rsplit('/').next().unwrap_or("").to_owned(),
                field(&r.body, "EndConferenceOnExit"),
            )
        })
        .collect();
    assert_eq!(
        updates,
        [
            (format!("{STANDIN_NEW_CALL}.json"), "true".to_owned()),
            (format!("{STANDIN_AGENT_LEG}.json"), "false".to_owned()),
        ]
    );
    let kick_at = requests
        .iter()
        .position(|r| r.method == "DELETE")
        .expect("kick");
    let last_update = requests
        .iter()
        .rposition(|r| r.path.contains("/Participants/") && r.method == "POST")
        .expect("updates");
    assert!(last_update < kick_at, "the kick comes after both updates");

    // chloe holds the call; when the room closes, the call is completed (chloe in wrap-up).
    let (status, xml) = twilio_post(&s.client, &room_action, &[("CallSid", sid)]).await;
    assert_eq!(status, 200);
    assert_eq!(names(&parse_twiml(&xml)), ["Hangup"]);
    let completed = s.ws.journal_payloads(&id, "interaction_completed");
    assert_eq!(completed.len(), 1, "{completed:?}");
    let assigned = s.ws.journal_payloads(&id, "consult_completed");
    assert_eq!(assigned[0]["to"], "chloe", "{assigned:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_or_declined_consultation_leaves_the_call_with_the_first_agent() {
    let s = setup().await;
    let sid = "CAWARMT2";
    let (mut amelie, mut amelie_offers, id, dial_action) = answered_call(&s, sid).await;
    let (mut chloe, mut chloe_offers) = desk_of(&s, "chloe").await;
    let room_action = into_room(&s, &mut amelie, sid, &id, &dial_action).await;

    // chloe declines: nothing was dialled, amelie is told.
    while !matches!(next(&mut chloe_offers).await.update, Some(Update::Offer(_))) {}
    let before = s.standin.received.lock().unwrap().len();
    chloe
        .decline(action(&id))
        .await
        .expect("Decline the consultation");
    let notice = next_notice(&mut amelie_offers).await;
    assert_eq!(notice.kind, "consult_declined");
    assert_eq!(notice.agent_id, "chloe");

    // A second consultation: the call is already in its room (no second move); chloe accepts,
    // is dialled in, then amelie cancels: chloe's leg is hung up.
    amelie
        .start_consult(consult_chloe(&id))
        .await
        .expect("StartConsult again");
    while !matches!(next(&mut chloe_offers).await.update, Some(Update::Offer(_))) {}
    chloe.accept(action(&id)).await.expect("Accept");
    wait_request(&s, before, "POST", "/Calls.json").await;
    amelie
        .cancel_consult(action(&id))
        .await
        .expect("CancelConsult");
    let hung_up = wait_request(
        &s,
        before,
        "POST",
        &format!("/Calls/{STANDIN_NEW_CALL}.json"),
    )
    .await;
    assert_eq!(
        names(&parse_twiml(&field(&hung_up.body, "Twiml"))),
        ["Hangup"]
    );
    let requests = since(&s, before);
    assert!(
        !requests.iter().any(|r| r
            .path
            .ends_with(&format!("/Calls/{STANDIN_AGENT_LEG}.json"))
            || r.method == "DELETE"),
        "amelie stays in the room: {requests:?}"
    );

    // amelie still holds the call: completing it hangs the caller up.
    let before = s.standin.received.lock().unwrap().len();
    amelie
        .complete(pb::CompleteRequest {
            interaction_id: id.clone(),
            ..Default::default()
        })
        .await
        .expect("Complete");
    let hang_up = wait_request(&s, before, "POST", &format!("/Calls/{sid}.json")).await;
    assert_eq!(
        names(&parse_twiml(&field(&hang_up.body, "Twiml"))),
        ["Hangup"]
    );
    let (status, _) = twilio_post(&s.client, &room_action, &[("CallSid", sid)]).await;
    assert_eq!(status, 200);
    assert_eq!(s.ws.journal_payloads(&id, "interaction_completed").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jambonz_call_is_not_warm_transferred_and_the_gateway_is_named() {
    let s = setup().await;
    jambonz_call_through_menu(&s, "jb-warm").await;
    let (mut desk, mut offers) = desk_of(&s, "amelie").await;
    let id = loop {
        if let Some(Update::Offer(o)) = next(&mut offers).await.update {
            break o.interaction.expect("interaction").id;
        }
    };
    desk.accept(action(&id)).await.expect("Accept");
    s.standin.wait_for("/Calls/jb-warm").await;
    let refused = desk
        .start_consult(consult_chloe(&id))
        .await
        .expect_err("a jambonz call");
    assert_eq!(refused.code(), Code::Unimplemented, "{refused:?}");
    assert!(refused.message().contains("jambonz"), "{refused:?}");
    assert!(refused.message().contains("Transfer"), "{refused:?}");
}
