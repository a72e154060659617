//! The phone channel end to end on the real server: Twilio-style, jambonz-style and generic SIP
//! calls walked through a two-level menu to a queue, bridged to the agent who accepts (with the
//! gateway's REST API stood in for locally), hang-ups while waiting and after answering, IVR
//! versions changed mid-call, and the refusals bad requests get.

mod api_common;
mod voice_common;

use std::time::Duration;

use api_common::{next, Server, Workspace};
use guichet::api::proto as pb;
use pb::offer_update::Update;
use serde_json::json;
use tonic::Code;
use voice_common::*;

struct Setup {
    _ws: Workspace,
    server: Server,
    standin: StandIn,
    base: String,
    client: reqwest::Client,
    sup_token: String,
    amelie_token: String,
}

async fn setup() -> Setup {
    let ws = Workspace::new();
    let standin = StandIn::start().await;
    let config = write_config(&ws.log().with_file_name("conf"), &standin.url);
    let server = Server::start_with_config(&ws.data_dir(), &ws.log(), &config);
    let (sup_token, _) = ws.token("supervisor", None);
    let (amelie_token, _) = ws.token("agent", Some("amelie"));
    let base = format!("http://{}", server.http_addr);
    Setup {
        _ws: ws,
        server,
        standin,
        base,
        client: reqwest::Client::new(),
        sup_token,
        amelie_token,
    }
}

impl Setup {
    /// Logs amelie in and opens her offer stream.
    async fn amelie_ready(&self) -> tonic::Streaming<pb::OfferUpdate> {
        let mut desk = self.server.desktop(&self.amelie_token);
        desk.login(pb::LoginRequest::default())
            .await
            .expect("Login");
        desk.offers(pb::OffersRequest::default())
            .await
            .expect("Offers")
            .into_inner()
    }

    async fn waiting_count(&self) -> usize {
        let mut sup = self.server.supervisor(&self.sup_token);
        let lines = sup
            .list_waiting(pb::ListWaitingRequest::default())
            .await
            .expect("ListWaiting")
            .into_inner();
        lines
            .lines
            .iter()
            .map(|l| l.waiting.len() + l.in_progress.len())
            .sum()
    }

    async fn agent_state(&self) -> i32 {
        let mut sup = self.server.supervisor(&self.sup_token);
        let agents = sup
            .list_agents(pb::ListAgentsRequest {})
            .await
            .expect("ListAgents")
            .into_inner()
            .agents;
        agents
            .into_iter()
            .find(|a| a.agent.as_ref().is_some_and(|a| a.id == "amelie"))
            .and_then(|a| a.state)
            .expect("amelie")
            .kind
    }
}

async fn next_offer(stream: &mut tonic::Streaming<pb::OfferUpdate>) -> pb::Offer {
    match next(stream).await.update {
        Some(Update::Offer(offer)) => offer,
        other => panic!("expected an offer, got {other:?}"),
    }
}

/// The `action` of the first Gather, the target of the last Redirect.
fn gather_action(verbs: &[Twiml]) -> String {
    verbs
        .iter()
        .find(|v| v.name == "Gather")
        .and_then(|g| g.attr("action"))
        .unwrap_or_else(|| panic!("no Gather in {verbs:?}"))
        .to_owned()
}

fn redirect(verbs: &[Twiml]) -> String {
    verbs
        .iter()
        .rev()
        .find(|v| v.name == "Redirect")
        .map(|r| r.text.clone())
        .unwrap_or_else(|| panic!("no Redirect in {verbs:?}"))
}

fn said(verbs: &[Twiml]) -> String {
    let mut out = String::new();
    for v in verbs {
        if v.name == "Say" {
            out.push_str(&v.text);
            out.push(' ');
        }
        out.push_str(&said(&v.children));
    }
    out
}

/// Walks a Twilio call from `incoming` through the two menus to the queue; returns the
/// Redirect to the hold loop.
async fn twilio_walk(s: &Setup, sid: &str, from: &str) -> String {
    let incoming = format!("{}/voice/twilio/incoming", s.base);
    let call = [
        ("CallSid", sid),
        ("From", from),
        ("To", NUMBER),
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
    ];
    let (status, xml) = twilio_post(&s.client, &incoming, &call).await;
    assert_eq!(status, 200, "{xml}");
    let verbs = parse_twiml(&xml);
    assert_eq!(names(&verbs), ["Gather", "Redirect"], "{xml}");
    assert!(said(&verbs).contains("Menu v1"), "{xml}");
    assert_eq!(verbs[0].attr("numDigits"), Some("1"));

    // The gateway retries the first request: same answer, nothing new.
    let (_, again) = twilio_post(&s.client, &incoming, &call).await;
    assert_eq!(again, xml, "a retried incoming call gets the same TwiML");

    let (status, xml) = twilio_post(
        &s.client,
        &gather_action(&verbs),
        &[("CallSid", sid), ("Digits", "1")],
    )
    .await;
    assert_eq!(status, 200, "{xml}");
    let verbs = parse_twiml(&xml);
    assert_eq!(names(&verbs), ["Gather", "Redirect"], "{xml}");
    assert!(said(&verbs).contains("Logement"), "{xml}");

    let (status, xml) = twilio_post(
        &s.client,
        &gather_action(&verbs),
        &[("CallSid", sid), ("Digits", "1")],
    )
    .await;
    assert_eq!(status, 200, "{xml}");
    let verbs = parse_twiml(&xml);
    assert_eq!(names(&verbs), ["Say", "Redirect"], "{xml}");
    assert!(said(&verbs).contains("Un conseiller"), "{xml}");
    redirect(&verbs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_call_walks_the_menus_queues_and_is_bridged_to_the_accepting_agent() {
    let s = setup().await;
    let hold_url = twilio_walk(&s, "CA0001", "+33611111111").await;

    // The hold loop: position announced, silence while listening for the callback key.
    let (status, xml) = twilio_post(&s.client, &hold_url, &[("CallSid", "CA0001")]).await;
    assert_eq!(status, 200, "{xml}");
    let verbs = parse_twiml(&xml);
    assert_eq!(names(&verbs), ["Say", "Gather", "Redirect"], "{xml}");
    assert!(said(&verbs).contains("Vous êtes premier"), "{xml}");
    assert_eq!(verbs[1].children[0].name, "Pause");
    // The retried queue step created one interaction only.
    assert_eq!(s.waiting_count().await, 1);

    // Amelie logs in: the call is offered to her; she accepts.
    let mut offers = s.amelie_ready().await;
    let offer = next_offer(&mut offers).await;
    let interaction = offer.interaction.expect("interaction");
    assert_eq!(interaction.external_ref, "CA0001");
    assert!(interaction
        .attributes
        .iter()
        .any(|a| a.key == "topic" && a.value == "housing"));
    let mut desk = s.server.desktop(&s.amelie_token);
    desk.accept(pb::InteractionAction {
        agent_id: String::new(),
        interaction_id: interaction.id.clone(),
    })
    .await
    .expect("Accept");

    // Guichet redirects the waiting call at once through the REST API...
    let update = s.standin.wait_for("/Calls/CA0001.json").await;
    assert_eq!(update.method, "POST");
    assert_eq!(
        update.path,
        format!("/2010-04-01/Accounts/{TWILIO_SID}/Calls/CA0001.json")
    );
    assert!(update.authorization.starts_with("Basic "));
    let form: Vec<(String, String)> = form_urlencoded::parse(update.body.as_bytes())
        .into_owned()
        .collect();
    let twiml = &form
        .iter()
        .find(|(k, _)| k == "Twiml")
        .expect("Twiml field")
        .1;
    let dial = parse_twiml(twiml);
    assert_eq!(names(&dial), ["Dial"]);
    assert_eq!(dial[0].children[0].name, "Number");
    assert_eq!(dial[0].children[0].text, "+33170000001");

    // ...and a hold poll already in flight gets the same dial.
    let (_, xml) = twilio_post(&s.client, &hold_url, &[("CallSid", "CA0001")]).await;
    let verbs = parse_twiml(&xml);
    assert_eq!(names(&verbs), ["Dial"], "{xml}");
    assert_eq!(verbs[0].children[0].text, "+33170000001");

    // The caller hangs up after talking: completed, the agent goes to wrap-up.
    let status_url = format!("{}/voice/twilio/status", s.base);
    let (status, _) = twilio_post(
        &s.client,
        &status_url,
        &[
            ("CallSid", "CA0001"),
            ("CallStatus", "completed"),
            ("CallDuration", "42"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(s.agent_state().await, pb::agent_state::Kind::WrapUp as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_hanging_up_while_waiting_is_abandoned_and_the_offer_withdrawn() {
    let s = setup().await;
    let mut offers = s.amelie_ready().await;
    let hold_url = twilio_walk(&s, "CA0002", "+33622222222").await;
    let offer = next_offer(&mut offers).await;
    let id = offer.interaction.expect("interaction").id;

    let status_url = format!("{}/voice/twilio/status", s.base);
    let (status, _) = twilio_post(
        &s.client,
        &status_url,
        &[("CallSid", "CA0002"), ("CallStatus", "completed")],
    )
    .await;
    assert_eq!(status, 200);
    match next(&mut offers).await.update {
        Some(Update::Withdrawn(w)) => {
            assert_eq!(w.interaction_id, id);
            assert_eq!(w.reason, "abandoned");
        }
        other => panic!("expected the offer withdrawn, got {other:?}"),
    }
    assert_eq!(s.waiting_count().await, 0);
    // A late hold poll just hangs up.
    let (_, xml) = twilio_post(&s.client, &hold_url, &[("CallSid", "CA0002")]).await;
    assert_eq!(names(&parse_twiml(&xml)), ["Hangup"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_key_while_waiting_keeps_the_place_and_the_gateway_calls_back() {
    let s = setup().await;
    let hold_url = twilio_walk(&s, "CA0003", "+33633333333").await;
    let (_, xml) = twilio_post(&s.client, &hold_url, &[("CallSid", "CA0003")]).await;
    let verbs = parse_twiml(&xml);
    let (_, xml) = twilio_post(
        &s.client,
        &gather_action(&verbs),
        &[("CallSid", "CA0003"), ("Digits", "9")],
    )
    .await;
    let verbs = parse_twiml(&xml);
    assert_eq!(names(&verbs), ["Say", "Hangup"], "{xml}");
    assert!(said(&verbs).contains("rappellera"));
    // The caller's hang-up does not abandon the request.
    let status_url = format!("{}/voice/twilio/status", s.base);
    twilio_post(
        &s.client,
        &status_url,
        &[("CallSid", "CA0003"), ("CallStatus", "completed")],
    )
    .await;
    assert_eq!(s.waiting_count().await, 1);

    let mut offers = s.amelie_ready().await;
    let offer = next_offer(&mut offers).await;
    let mut desk = s.server.desktop(&s.amelie_token);
    desk.accept(pb::InteractionAction {
        agent_id: String::new(),
        interaction_id: offer.interaction.expect("interaction").id,
    })
    .await
    .expect("Accept");
    let originate = s
        .standin
        .wait_for(&format!("/Accounts/{TWILIO_SID}/Calls.json"))
        .await;
    let form: Vec<(String, String)> = form_urlencoded::parse(originate.body.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("To").as_deref(), Some("+33633333333"));
    assert_eq!(get("From").as_deref(), Some(NUMBER));
    assert!(get("Twiml")
        .expect("Twiml")
        .contains("<Number>+33170000001</Number>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jambonz_call_walks_the_menus_and_is_bridged_through_live_call_control() {
    let s = setup().await;
    let post = |path: &str, body: serde_json::Value| {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", s.base)
        };
        let client = s.client.clone();
        async move { json_post(&client, &url, "jambonz-signature", JAMBONZ_SECRET, &body).await }
    };
    let first = json!({"call_sid": "jb-1", "call_id": "x@y", "account_sid": JAMBONZ_SID,
        "direction": "inbound", "from": "+33644444444", "to": NUMBER, "call_status": "trying",
        "sip": {"headers": {}, "method": "INVITE"}});
    let (status, verbs) = post("/voice/jambonz/incoming", first.clone()).await;
    assert_eq!(status, 200, "{verbs}");
    assert_eq!(verbs[0]["verb"], "gather", "{verbs}");
    assert!(verbs[0]["say"]["text"]
        .as_str()
        .unwrap()
        .contains("Menu v1"));
    assert_eq!(verbs[1]["verb"], "redirect");
    let (_, again) = post("/voice/jambonz/incoming", first).await;
    assert_eq!(again, verbs, "a retried first request gets the same verbs");

    let hook = verbs[0]["actionHook"].as_str().unwrap().to_owned();
    let (_, verbs) = post(
        &hook,
        json!({"call_sid": "jb-1", "digits": "1", "reason": "dtmfDetected"}),
    )
    .await;
    assert!(
        verbs[0]["say"]["text"]
            .as_str()
            .unwrap()
            .contains("Logement"),
        "{verbs}"
    );
    let hook = verbs[0]["actionHook"].as_str().unwrap().to_owned();
    let (_, verbs) = post(
        &hook,
        json!({"call_sid": "jb-1", "digits": "1", "reason": "dtmfDetected"}),
    )
    .await;
    assert_eq!(verbs[0]["verb"], "say", "{verbs}");
    assert_eq!(verbs[1]["verb"], "redirect", "{verbs}");
    let hold = verbs[1]["actionHook"].as_str().unwrap().to_owned();
    let (_, verbs) = post(&hold, json!({"call_sid": "jb-1"})).await;
    let kinds: Vec<&str> = verbs
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["verb"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["say", "pause", "gather", "redirect"], "{verbs}");

    let mut offers = s.amelie_ready().await;
    let offer = next_offer(&mut offers).await;
    let mut desk = s.server.desktop(&s.amelie_token);
    desk.accept(pb::InteractionAction {
        agent_id: String::new(),
        interaction_id: offer.interaction.expect("interaction").id,
    })
    .await
    .expect("Accept");
    let update = s.standin.wait_for("/Calls/jb-1").await;
    assert_eq!(update.method, "PUT");
    assert_eq!(
        update.path,
        format!("/v1/Accounts/{JAMBONZ_SID}/Calls/jb-1")
    );
    assert_eq!(update.authorization, format!("Bearer {JAMBONZ_KEY}"));
    let body: serde_json::Value = serde_json::from_str(&update.body).unwrap();
    let call_hook = body["call_hook"]["url"].as_str().unwrap().to_owned();
    // jambonz fetches the hook: a dial to the agent's device.
    let (_, verbs) = post(&call_hook, json!({"call_sid": "jb-1"})).await;
    assert_eq!(verbs[0]["verb"], "dial", "{verbs}");
    assert_eq!(verbs[0]["target"][0]["type"], "phone");
    assert_eq!(verbs[0]["target"][0]["number"], "+33170000001");

    let (status, _) = post(
        "/voice/jambonz/status",
        json!({"call_sid": "jb-1", "call_status": "completed"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(s.agent_state().await, pb::agent_state::Kind::WrapUp as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_sip_events_walk_the_menus_and_bridge() {
    let s = setup().await;
    let url = format!("{}/voice/sip/events", s.base);
    let post = |body: serde_json::Value| {
        let client = s.client.clone();
        let url = url.clone();
        async move { json_post(&client, &url, "guichet-signature", SIP_SECRET, &body).await }
    };
    let (status, answer) = post(json!({"event": "call.incoming", "call_id": "fs-1",
        "from": "+33655555555", "to": NUMBER, "headers": {"X-Foo": "bar"}}))
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["actions"][0]["action"], "collect", "{answer}");
    assert_eq!(answer["actions"][1]["action"], "continue");
    let turn = answer["turn"].clone();
    let (_, answer) =
        post(json!({"event": "call.input", "call_id": "fs-1", "digits": "1", "turn": turn})).await;
    assert!(
        answer["actions"][0]["prompts"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Logement"),
        "{answer}"
    );
    let turn = answer["turn"].clone();
    let (_, answer) =
        post(json!({"event": "call.input", "call_id": "fs-1", "digits": "1", "turn": turn})).await;
    assert_eq!(answer["actions"][0]["action"], "say", "{answer}");
    assert_eq!(answer["actions"][1]["action"], "continue", "{answer}");
    let (_, answer) = post(json!({"event": "call.continue", "call_id": "fs-1"})).await;
    assert_eq!(answer["actions"][1]["action"], "collect", "{answer}");

    let mut offers = s.amelie_ready().await;
    let offer = next_offer(&mut offers).await;
    let mut desk = s.server.desktop(&s.amelie_token);
    desk.accept(pb::InteractionAction {
        agent_id: String::new(),
        interaction_id: offer.interaction.expect("interaction").id,
    })
    .await
    .expect("Accept");
    let pushed = s.standin.wait_for("/sip-control").await;
    let body: serde_json::Value = serde_json::from_str(&pushed.body).unwrap();
    assert_eq!(body["event"], "call.actions");
    assert_eq!(body["call_id"], "fs-1");
    assert_eq!(body["actions"][0]["action"], "bridge");
    assert_eq!(body["actions"][0]["targets"][0]["number"], "+33170000001");

    let (status, _) =
        post(json!({"event": "call.hangup", "call_id": "fs-1", "cause": "NORMAL_CLEARING"})).await;
    assert_eq!(status, 200);
    assert_eq!(s.agent_state().await, pb::agent_state::Kind::WrapUp as i32);

    // A bad signature is refused.
    let response = s
        .client
        .post(&url)
        .header("content-type", "application/json")
        .header("guichet-signature", "t=1,v1=00")
        .body(
            json!({"event": "call.incoming", "call_id": "fs-2", "from": "1", "to": NUMBER})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_ivr_version_applies_to_new_calls_while_calls_in_progress_keep_theirs() {
    let s = setup().await;
    let mut sup = s.server.supervisor(&s.sup_token);
    let incoming = format!("{}/voice/twilio/incoming", s.base);
    let (_, xml) = twilio_post(
        &s.client,
        &incoming,
        &[
            ("CallSid", "CA0100"),
            ("From", "+33666666666"),
            ("To", NUMBER),
        ],
    )
    .await;
    let first = parse_twiml(&xml);
    assert!(said(&first).contains("Menu v1"));

    // Version 2 changes the main prompt and the housing menu's key.
    let v2 = tree_json("v2").replace(
        r#""options": {"1": "topic"}"#,
        r#""options": {"5": "topic"}"#,
    );
    let put = sup
        .put_ivr_version(pb::PutIvrVersionRequest {
            tree_json: v2,
            activate: true,
        })
        .await
        .expect("PutIvrVersion")
        .into_inner();
    assert_eq!(
        (put.name.as_str(), put.version, put.active),
        ("test-tree", 2, true)
    );

    // The call in progress finishes on version 1 (key 1 still queues it).
    let (_, xml) = twilio_post(
        &s.client,
        &gather_action(&first),
        &[("CallSid", "CA0100"), ("Digits", "1")],
    )
    .await;
    let verbs = parse_twiml(&xml);
    let (_, xml) = twilio_post(
        &s.client,
        &gather_action(&verbs),
        &[("CallSid", "CA0100"), ("Digits", "1")],
    )
    .await;
    assert_eq!(names(&parse_twiml(&xml)), ["Say", "Redirect"], "{xml}");

    // A new call starts on version 2.
    let (_, xml) = twilio_post(
        &s.client,
        &incoming,
        &[
            ("CallSid", "CA0101"),
            ("From", "+33677777777"),
            ("To", NUMBER),
        ],
    )
    .await;
    assert!(said(&parse_twiml(&xml)).contains("Menu v2"), "{xml}");

    let list = sup
        .list_ivr_versions(pb::ListIvrVersionsRequest {
            name: "test-tree".into(),
        })
        .await
        .expect("ListIvrVersions")
        .into_inner()
        .versions;
    let summary: Vec<(u32, bool)> = list.iter().map(|v| (v.version, v.active)).collect();
    assert_eq!(summary, [(1, false), (2, true)]);

    // Rolling back makes version 1 answer again.
    let back = sup
        .rollback_ivr(pb::RollbackIvrRequest {
            name: "test-tree".into(),
        })
        .await
        .expect("RollbackIvr")
        .into_inner();
    assert_eq!(back.version, 1);
    let (_, xml) = twilio_post(
        &s.client,
        &incoming,
        &[
            ("CallSid", "CA0102"),
            ("From", "+33688888888"),
            ("To", NUMBER),
        ],
    )
    .await;
    assert!(said(&parse_twiml(&xml)).contains("Menu v1"), "{xml}");
    let again = sup
        .activate_ivr_version(pb::ActivateIvrVersionRequest {
            name: "test-tree".into(),
            version: 2,
        })
        .await
        .expect("ActivateIvrVersion")
        .into_inner();
    assert!(again.active);

    // An invalid tree is refused with the node and the reason.
    let broken = tree_json("v3").replace(
        r#""on_fail": "bye"},
    "housing""#,
        r#""on_fail": "nowhere"},
    "housing""#,
    );
    assert!(broken.contains("nowhere"));
    let err = sup
        .put_ivr_version(pb::PutIvrVersionRequest {
            tree_json: broken.clone(),
            activate: true,
        })
        .await
        .expect_err("an invalid tree is refused");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("node `main`"), "{}", err.message());
    assert!(err.message().contains("nowhere"), "{}", err.message());
    let checked = sup
        .validate_ivr_tree(pb::ValidateIvrTreeRequest { tree_json: broken })
        .await
        .expect("ValidateIvrTree")
        .into_inner();
    assert!(!checked.valid);
    assert_eq!(checked.problems[0].node, "main");
    let unchanged = sup
        .list_ivr_versions(pb::ListIvrVersionsRequest {
            name: "test-tree".into(),
        })
        .await
        .expect("ListIvrVersions")
        .into_inner()
        .versions;
    assert_eq!(unchanged.len(), 2, "nothing stored for the refused tree");

    // Agents cannot change trees.
    let mut as_agent = s.server.supervisor(&s.amelie_token);
    let denied = as_agent
        .list_ivr_versions(pb::ListIvrVersionsRequest::default())
        .await
        .expect_err("agents are refused");
    assert_eq!(denied.code(), Code::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_4xx_a_spoken_fallback_and_create_nothing() {
    let s = setup().await;
    let incoming = format!("{}/voice/twilio/incoming", s.base);

    // Tampered: signed for another number.
    let params = [
        ("AccountSid", TWILIO_SID),
        ("CallSid", "CA0200"),
        ("From", "+33600000000"),
        ("To", NUMBER),
    ];
    let signature = twilio_sign(TWILIO_TOKEN, &incoming, &params);
    let mut tampered = params;
    tampered[3].1 = "+33999999999";
    let response = s
        .client
        .post(&incoming)
        .header("X-Twilio-Signature", &signature)
        .form(&tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = s.client.post(&incoming).form(&params).send().await.unwrap();
    assert_eq!(response.status(), 403, "no signature");

    // Unknown number: 404 and an apology.
    let (status, xml) = twilio_post(
        &s.client,
        &incoming,
        &[
            ("CallSid", "CA0201"),
            ("From", "+33600000000"),
            ("To", "+33999999999"),
        ],
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(names(&parse_twiml(&xml)), ["Say", "Hangup"]);

    // Missing field.
    let (status, xml) = twilio_post(
        &s.client,
        &incoming,
        &[("From", "+33600000000"), ("To", NUMBER)],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(names(&parse_twiml(&xml)), ["Say", "Hangup"]);
    let (status, xml) = twilio_post(
        &s.client,
        &incoming,
        &[("CallSid", "CA0202"), ("From", "+33600000000")],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(names(&parse_twiml(&xml)), ["Say", "Hangup"]);

    // Input for a call never seen.
    let input = format!("{}/voice/twilio/input?t=1", s.base);
    let (status, _) =
        twilio_post(&s.client, &input, &[("CallSid", "CA0203"), ("Digits", "1")]).await;
    assert_eq!(status, 404);

    // Over the body limit (1 MiB in the demo configuration).
    // (its own client: the server closes a connection whose body it did not read)
    let big = "x".repeat(2 << 20);
    let (status, xml) = twilio_post(
        &reqwest::Client::new(),
        &incoming,
        &[
            ("CallSid", "CA0204"),
            ("From", "+336"),
            ("To", NUMBER),
            ("Junk", &big),
        ],
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(names(&parse_twiml(&xml)), ["Say", "Hangup"]);

    // jambonz: bad signature, missing call_sid.
    let jb = format!("{}/voice/jambonz/incoming", s.base);
    let response = s
        .client
        .post(&jb)
        .header("jambonz-signature", "t=1,v1=abcd")
        .body(json!({"call_sid": "jb-9", "from": "1", "to": NUMBER}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let (status, verbs) = json_post(
        &s.client,
        &jb,
        "jambonz-signature",
        JAMBONZ_SECRET,
        &json!({"from": "1", "to": NUMBER}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(verbs[0]["verb"], "say");
    assert_eq!(verbs[1]["verb"], "hangup");

    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(s.waiting_count().await, 0, "nothing was created");
    let log = s._ws.log_text();
    assert!(
        log.contains("X-Twilio-Signature does not match"),
        "refusals are logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_call_survives_a_server_restart() {
    let mut s = setup().await;
    let hold_url = twilio_walk(&s, "CA0300", "+33699999999").await;
    assert_eq!(s.waiting_count().await, 1);

    // Killed mid-call, restarted on the same data: the call is picked up from its interaction.
    s.server.kill();
    let config = s._ws.log().with_file_name("conf").join("guichet.toml");
    s.server = Server::start_with_config(&s._ws.data_dir(), &s._ws.log(), &config);
    s.base = format!("http://{}", s.server.http_addr);
    let hold_url = hold_url.replace(&hold_url[..hold_url.find("/voice").unwrap()], &s.base);
    let (status, xml) = twilio_post(&s.client, &hold_url, &[("CallSid", "CA0300")]).await;
    assert_eq!(status, 200, "{xml}");
    let verbs = parse_twiml(&xml);
    assert_eq!(names(&verbs), ["Say", "Gather", "Redirect"], "{xml}");
    assert_eq!(s.waiting_count().await, 1, "still one interaction");

    // A retried incoming request after the restart does not create a second one.
    let incoming = format!("{}/voice/twilio/incoming", s.base);
    let (status, _) = twilio_post(
        &s.client,
        &incoming,
        &[
            ("CallSid", "CA0300"),
            ("From", "+33699999999"),
            ("To", NUMBER),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(s.waiting_count().await, 1, "still one interaction");

    let status_url = format!("{}/voice/twilio/status", s.base);
    twilio_post(
        &s.client,
        &status_url,
        &[("CallSid", "CA0300"), ("CallStatus", "completed")],
    )
    .await;
    assert_eq!(s.waiting_count().await, 0, "abandoned after the restart");
}
