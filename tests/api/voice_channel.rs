//! The phone channel end to end on the real server: Twilio-style, jambonz-style and generic SIP
//! calls walked through a two-level menu to a queue, bridged to the agent who accepts (with the
//! gateway's REST API stood in for locally), hang-ups while waiting and after answering, IVR
//! versions changed mid-call, and the refusals bad requests get.

use crate::api_common;
use crate::voice_common;

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
    setup_with_window(None).await
}

/// [`setup`], with `[voice] persist_window_ms` set when given.
async fn setup_with_window(window_ms: Option<u64>) -> Setup {
    let ws = Workspace::new();
    let standin = StandIn::start().await;
    let config = write_config(&ws.log().with_file_name("conf"), &standin.url);
    if let Some(ms) = window_ms {
        let text = std::fs::read_to_string(&config).expect("config");
        let text = text.replacen(
            "[[voice.trees]]",
            &format!("[voice]\npersist_window_ms = {ms}\n\n[[voice.trees]]"),
            1,
        );
        std::fs::write(&config, text).expect("config");
    }
    let server = ws.start_with_config(&config);
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
            .list_agents(pb::ListAgentsRequest::default())
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
            ..Default::default()
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
            ..Default::default()
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
            ..Default::default()
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
            ..Default::default()
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
    s.server = s._ws.start_with_config(&config);
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

/// `url` with its scheme, host and port replaced by `base` (the restarted server's address).
fn rebase(url: &str, base: &str) -> String {
    let path = url.find("/voice").map_or(url, |i| &url[i..]);
    format!("{base}{path}")
}

impl Setup {
    /// Restarts the server on the same data directory: gracefully (SIGTERM) or by a crash
    /// (SIGKILL).
    fn restart(&mut self, graceful: bool) {
        if graceful {
            assert!(self.server.terminate().success(), "graceful stop");
        } else {
            self.server.kill();
        }
        let config = self._ws.log().with_file_name("conf").join("guichet.toml");
        self.server = self._ws.start_with_config(&config);
        self.base = format!("http://{}", self.server.http_addr);
    }

    /// The saved IVR state of a call, read through the store beside the running server (on
    /// either backend).
    fn saved_state(&self, call: &str) -> Option<String> {
        self._ws
            .with_store(|s| s.voice_session(call))
            .expect("read the call's state")
    }
}

/// Walks a Twilio call (with `From` and `To` on every request, as Twilio sends them) to the
/// second menu; returns that answer.
async fn twilio_to_second_menu(s: &Setup, sid: &str, from: &str) -> Vec<Twiml> {
    let incoming = format!("{}/voice/twilio/incoming", s.base);
    let call = [("CallSid", sid), ("From", from), ("To", NUMBER)];
    let (_, xml) = twilio_post(&s.client, &incoming, &call).await;
    let verbs = parse_twiml(&xml);
    let (status, xml) = twilio_post(
        &s.client,
        &gather_action(&verbs),
        &[
            ("CallSid", sid),
            ("From", from),
            ("To", NUMBER),
            ("Digits", "1"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{xml}");
    let verbs = parse_twiml(&xml);
    assert!(said(&verbs).contains("Logement"), "{xml}");
    assert!(gather_action(&verbs).ends_with("?t=2"), "{xml}");
    verbs
}

/// Version 2 of the test tree: the housing menu takes 5 instead of 1.
async fn activate_v2(s: &Setup) {
    let v2 = tree_json("v2").replace(
        r#""options": {"1": "topic"}"#,
        r#""options": {"5": "topic"}"#,
    );
    s.server
        .supervisor(&s.sup_token)
        .put_ivr_version(pb::PutIvrVersionRequest {
            tree_json: v2,
            activate: true,
            ..Default::default()
        })
        .await
        .expect("PutIvrVersion");
}

/// After the restart, the call answers the second menu: it carries on at that node of tree
/// version 1 (even though version 2 is now active), with its turn, and is queued with what
/// its IVR learnt.
async fn continue_after_restart(s: &Setup, sid: &str, from: &str, second_menu: &[Twiml]) {
    activate_v2(s).await;
    let action = rebase(&gather_action(second_menu), &s.base);

    // A gateway retry of the previous turn gets the answer it got before the restart.
    let (status, xml) = twilio_post(
        &s.client,
        &action.replace("?t=2", "?t=1"),
        &[
            ("CallSid", sid),
            ("From", from),
            ("To", NUMBER),
            ("Digits", "1"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{xml}");
    assert!(said(&parse_twiml(&xml)).contains("Logement"), "{xml}");

    // The answer to the second menu: key 1 of version 1 queues the call.
    let (status, xml) = twilio_post(
        &s.client,
        &action,
        &[
            ("CallSid", sid),
            ("From", from),
            ("To", NUMBER),
            ("Digits", "1"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{xml}");
    let verbs = parse_twiml(&xml);
    assert_eq!(names(&verbs), ["Say", "Redirect"], "{xml}");
    assert!(said(&verbs).contains("Un conseiller"), "{xml}");
    assert!(
        redirect(&verbs).ends_with("?t=3"),
        "the turn goes on: {xml}"
    );
    let (status, xml) = twilio_post(
        &s.client,
        &redirect(&verbs),
        &[("CallSid", sid), ("From", from), ("To", NUMBER)],
    )
    .await;
    assert_eq!(status, 200, "{xml}");
    assert_eq!(s.waiting_count().await, 1);

    let mut sup = s.server.supervisor(&s.sup_token);
    let lines = sup
        .list_waiting(pb::ListWaitingRequest::default())
        .await
        .expect("ListWaiting")
        .into_inner();
    let waiting = api_common::open(&lines);
    let queued = waiting
        .iter()
        .find(|i| i.external_ref == sid)
        .expect("the call is queued");
    let attr = |k: &str| {
        queued
            .attributes
            .iter()
            .find(|a| a.key == k)
            .map(|a| a.value.clone())
    };
    assert_eq!(attr("topic").as_deref(), Some("housing"));
    assert_eq!(attr("language").as_deref(), Some("fr-FR"));
    assert_eq!(attr("caller").as_deref(), Some(from));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_a_menu_carries_on_after_a_graceful_restart() {
    // A long write-behind window: the state is written by the graceful stop itself.
    let mut s = setup_with_window(Some(1000)).await;
    let second_menu = twilio_to_second_menu(&s, "CA0400", "+33640000000").await;
    s.restart(true);
    assert!(
        s.saved_state("twilio:CA0400").is_some(),
        "the graceful stop wrote the call's IVR state"
    );
    continue_after_restart(&s, "CA0400", "+33640000000", &second_menu).await;
    // Queued: the saved state goes (within the window).
    api_common::eventually(Duration::from_secs(10), "the IVR state removed", || async {
        s.saved_state("twilio:CA0400").is_none().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_a_menu_carries_on_after_a_crash() {
    let mut s = setup().await;
    let second_menu = twilio_to_second_menu(&s, "CA0401", "+33640000001").await;
    // The write-behind window passes (the state at the second menu is turn 2), then a crash.
    api_common::eventually(Duration::from_secs(10), "the IVR state written", || async {
        s.saved_state("twilio:CA0401")
            .filter(|state| state.contains(r#""turn":2"#))
    })
    .await;
    s.restart(false);
    continue_after_restart(&s, "CA0401", "+33640000001", &second_menu).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_menu_answer_for_a_call_whose_state_was_lost_restarts_the_tree_with_an_apology() {
    let s = setup().await;
    // A call in a menu whose state a crash lost within the write-behind window looks like
    // this: an answer to a menu, for a call the server knows nothing of.
    let url = format!("{}/voice/twilio/input?t=2", s.base);
    let (status, xml) = twilio_post(
        &s.client,
        &url,
        &[
            ("CallSid", "CA0402"),
            ("From", "+33640000002"),
            ("To", NUMBER),
            ("Digits", "1"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{xml}");
    let verbs = parse_twiml(&xml);
    assert_eq!(names(&verbs), ["Say", "Gather", "Redirect"], "{xml}");
    assert!(said(&verbs[..1]).contains("perdu le fil"), "{xml}");
    assert!(said(&verbs).contains("Menu v1"), "the tree's entry: {xml}");

    // The call then goes on as any other.
    let (status, xml) = twilio_post(
        &s.client,
        &gather_action(&verbs),
        &[("CallSid", "CA0402"), ("Digits", "1")],
    )
    .await;
    assert_eq!(status, 200, "{xml}");
    assert!(said(&parse_twiml(&xml)).contains("Logement"), "{xml}");
    assert!(s
        ._ws
        .log_text()
        .contains("IVR state was lost (crash): restarting it at the tree's entry"));

    // Without the dialled number (the generic API's events need not carry it), the call is
    // unknown: 404 with the spoken apology, as before.
    let (status, xml) =
        twilio_post(&s.client, &url, &[("CallSid", "CA0403"), ("Digits", "1")]).await;
    assert_eq!(status, 404, "{xml}");
    assert_eq!(s.waiting_count().await, 0, "nothing created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voicemail_is_the_first_message_of_its_interaction() {
    let s = setup().await;
    // Version 2: key 3 of the main menu leaves a voicemail for the benefits queue.
    let v2 = tree_json("v2")
        .replace(
            r#""options": {"1": "housing", "2": "bye"}"#,
            r#""options": {"1": "housing", "2": "bye", "3": "vm"}"#,
        )
        .replace(
            r#""q": {"type": "queue", "queue": "benefits"},"#,
            r#""q": {"type": "queue", "queue": "benefits"},
    "vm": {"type": "voicemail", "prompt": {"text": {"fr-FR": "Laissez votre message."}}, "queue": "benefits"},"#,
        );
    s.server
        .supervisor(&s.sup_token)
        .put_ivr_version(pb::PutIvrVersionRequest {
            tree_json: v2,
            activate: true,
            ..Default::default()
        })
        .await
        .expect("PutIvrVersion");

    let sid = "CA0500";
    let incoming = format!("{}/voice/twilio/incoming", s.base);
    let call = [("CallSid", sid), ("From", "+33650000000"), ("To", NUMBER)];
    let (_, xml) = twilio_post(&s.client, &incoming, &call).await;
    let verbs = parse_twiml(&xml);
    let (_, xml) = twilio_post(
        &s.client,
        &gather_action(&verbs),
        &[("CallSid", sid), ("Digits", "3")],
    )
    .await;
    let verbs = parse_twiml(&xml);
    assert_eq!(names(&verbs), ["Say", "Record", "Hangup"], "{xml}");
    let action = verbs[1].attr("action").expect("Record action").to_owned();
    let recording = [
        ("CallSid", sid),
        (
            "RecordingUrl",
            "https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/RE1",
        ),
        ("RecordingDuration", "14"),
        (
            "TranscriptionText",
            "Bonjour, je rappelle pour mon dossier logement.",
        ),
    ];
    let (status, xml) = twilio_post(&s.client, &action, &recording).await;
    assert_eq!(status, 200, "{xml}");
    assert!(said(&parse_twiml(&xml)).contains("Votre message est enregistré"));
    // The gateway retries: still one interaction, one message.
    let (status, _) = twilio_post(&s.client, &action, &recording).await;
    assert_eq!(status, 200);
    assert_eq!(s.waiting_count().await, 1);

    let check = |messages: &[pb::ConversationMessage]| {
        assert_eq!(messages.len(), 1, "{messages:?}");
        let m = &messages[0];
        assert_eq!(m.direction, "inbound");
        assert_eq!(m.text, "Bonjour, je rappelle pour mon dossier logement.");
        assert_eq!(m.from, "+33650000000");
        assert_eq!(m.id, format!("voice:twilio:{sid}:voicemail"));
        assert!(
            m.meta["recording_url"].ends_with("/Recordings/RE1"),
            "{m:?}"
        );
        assert_eq!(m.meta["recording_duration"], "14");
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].content_type, "audio/wav");
        assert!(
            !m.attachments[0].stored,
            "the recording stays at the gateway"
        );
    };
    let mut offers = s.amelie_ready().await;
    let offer = next_offer(&mut offers).await;
    check(&offer.conversation);
    let interaction = offer.interaction.expect("interaction");
    assert!(interaction
        .attributes
        .iter()
        .any(|a| a.key == "recording_url" && a.value.ends_with("/Recordings/RE1")));
    let mut desk = s.server.desktop(&s.amelie_token);
    desk.accept(pb::InteractionAction {
        agent_id: String::new(),
        interaction_id: interaction.id.clone(),
    })
    .await
    .expect("Accept");
    let conversation = desk
        .get_conversation(pb::GetConversationRequest {
            interaction_id: interaction.id.clone(),
            ..Default::default()
        })
        .await
        .expect("GetConversation")
        .into_inner();
    check(&conversation.messages);
}
