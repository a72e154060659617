//! Colleagues and myself, on the real server: an agent lists the colleagues of its queues
//! (name and state only) and reads the satisfaction answers about its own work; it may not look
//! at another agent's.

use crate::api_common;

use std::time::Duration;

use api_common::Workspace;
use guichet::api::proto as pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_sees_its_queues_colleagues_and_only_its_own_answers() {
    let ws = Workspace::new();
    let server = ws.server().with("[surveys]\nenabled = true\n").start();
    let (sup_token, _) = ws.token("supervisor", None);
    let mut sup = server.supervisor(&sup_token);
    // Felix serves no queue of amelie's: not a colleague.
    sup.upsert_agent(pb::UpsertAgentRequest {
        agent: Some(pb::Agent {
            id: "felix".into(),
            name: "Félix".into(),
            skills: vec![pb::SkillLevel {
                skill: "tax:income".into(),
                level: 1,
            }],
            ..Default::default()
        }),
    })
    .await
    .expect("UpsertAgent");

    let (mut amelie, mut offers) = api_common::logged_in_agent(&ws, &server, "amelie").await;
    let (_chloe, _) = api_common::logged_in_agent(&ws, &server, "chloe").await;
    let listed = amelie
        .list_colleagues(pb::ListColleaguesRequest::default())
        .await
        .expect("ListColleagues")
        .into_inner();
    assert!(listed.queues.contains(&"benefits".to_owned()), "{listed:?}");
    assert!(!listed.queues.contains(&"tax".to_owned()), "{listed:?}");
    let ids: Vec<&str> = listed
        .colleagues
        .iter()
        .map(|c| c.agent_id.as_str())
        .collect();
    assert!(!ids.contains(&"amelie"), "not its own colleague: {ids:?}");
    assert!(!ids.contains(&"felix"), "no shared queue: {ids:?}");
    let chloe = listed
        .colleagues
        .iter()
        .find(|c| c.agent_id == "chloe")
        .expect("chloe shares benefits");
    assert_eq!(
        chloe.state.as_ref().map(|s| s.kind),
        Some(pb::agent_state::Kind::Available as i32)
    );
    assert!(chloe.shared_queues.contains(&"benefits".to_owned()));
    assert!(!chloe.name.is_empty());
    let bruno = listed
        .colleagues
        .iter()
        .find(|c| c.agent_id == "bruno")
        .expect("bruno shares general");
    assert_eq!(
        bruno.state.as_ref().map(|s| s.kind),
        Some(pb::agent_state::Kind::Offline as i32)
    );
    assert!(!bruno.shared_queues.contains(&"benefits".to_owned()));

    // Another agent's colleagues or answers: refused.
    let refused = amelie
        .list_colleagues(pb::ListColleaguesRequest {
            agent_id: "chloe".into(),
        })
        .await;
    api_common::assert_status(refused, tonic::Code::PermissionDenied, &["amelie"]);
    let refused = amelie
        .get_my_satisfaction(pb::GetMySatisfactionRequest {
            agent_id: "chloe".into(),
            ..Default::default()
        })
        .await;
    api_common::assert_status(refused, tonic::Code::PermissionDenied, &["amelie"]);
    let none = amelie
        .get_my_satisfaction(pb::GetMySatisfactionRequest::default())
        .await
        .expect("GetMySatisfaction")
        .into_inner();
    assert_eq!(none.answers, 0);

    // An SMS amelie handles, answered on the survey page.
    let (integrator, _) = ws.token("integrator", None);
    let mut create = api_common::spec("benefits", pb::Channel::Sms, "+33611111111", "sms:sat-1");
    create.spec.as_mut().unwrap().attributes = vec![
        pb::Attribute {
            key: "sms_from".into(),
            value: "+33611111111".into(),
        },
        pb::Attribute {
            key: "sms_to".into(),
            value: "+33100000000".into(),
        },
    ];
    let created = server
        .interactions(&integrator)
        .create(create)
        .await
        .expect("Create")
        .into_inner()
        .interaction
        .expect("interaction");
    let id = offered_id(&mut offers).await;
    amelie
        .accept(api_common::action(&id))
        .await
        .expect("Accept");
    amelie
        .complete(pb::CompleteRequest {
            interaction_id: id.clone(),
            wrap_up_code: "informed".into(),
            ..Default::default()
        })
        .await
        .expect("Complete");
    let token: String = api_common::eventually(
        Duration::from_secs(20),
        "the survey question is recorded",
        || {
            let interaction: guichet::core::InteractionId = id.parse().expect("interaction id");
            let token = ws
                .with_store(|s| s.survey_question_of(interaction))
                .expect("read the survey question")
                .map(|q| q.token);
            async move { token }
        },
    )
    .await;
    let url = format!("http://{}/survey/{token}", server.http_addr);
    let response = reqwest::Client::new()
        .post(&url)
        .header("Accept", "application/json")
        .form(&[("score", "4"), ("comment", "Clair et rapide")])
        .send()
        .await
        .expect("POST the answer");
    assert_eq!(response.status(), 200);

    let mine = amelie
        .get_my_satisfaction(pb::GetMySatisfactionRequest::default())
        .await
        .expect("GetMySatisfaction")
        .into_inner();
    assert_eq!(mine.answers, 1);
    assert!((mine.average - 4.0).abs() < 1e-9);
    assert_eq!(mine.comments.len(), 1);
    assert_eq!(mine.comments[0].comment, "Clair et rapide");
    assert_eq!(mine.comments[0].interaction_id, id);
    assert_eq!(mine.comments[0].reference, created.reference);
    // Chloe's own answers do not include amelie's.
    let (chloe_token, _) = ws.token("agent", Some("chloe"));
    let theirs = server
        .desktop(&chloe_token)
        .get_my_satisfaction(pb::GetMySatisfactionRequest::default())
        .await
        .expect("GetMySatisfaction for chloe")
        .into_inner();
    assert_eq!(theirs.answers, 0);
    assert!(theirs.comments.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_reads_its_own_figures_of_the_day_and_a_restart_keeps_them() {
    let ws = Workspace::new();
    let mut server = ws.start();
    let (mut amelie, mut offers) = api_common::logged_in_agent(&ws, &server, "amelie").await;
    let nothing = amelie
        .get_my_day(pb::GetMyDayRequest::default())
        .await
        .expect("GetMyDay")
        .into_inner();
    assert_eq!((nothing.offered, nothing.handled), (0, 0));
    assert_eq!(nothing.average_handling_secs, None, "absent, not 0");
    // The day is the service's (the demo's `[indicators] time_zone`), not UTC's: between
    // midnight in Paris and midnight UTC they differ.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let today = chrono::DateTime::from_timestamp(secs as i64, 0)
        .expect("a date")
        .with_timezone(&chrono_tz::Europe::Paris)
        .format("%Y-%m-%d")
        .to_string();
    assert_eq!(nothing.day, today);

    // One offer declined (then withdrawn by its creator), one handled for about a second.
    let (integrator, _) = ws.token("integrator", None);
    let mut api = server.interactions(&integrator);
    api.create(api_common::spec(
        "benefits",
        pb::Channel::Sms,
        "+33611111111",
        "sms:day-1",
    ))
    .await
    .expect("Create");
    let first = offered_id(&mut offers).await;
    amelie
        .decline(pb::InteractionAction {
            agent_id: String::new(),
            interaction_id: first.clone(),
        })
        .await
        .expect("Decline");
    api.cancel(pb::CancelRequest {
        interaction_id: first,
    })
    .await
    .expect("Cancel");
    api.create(api_common::spec(
        "benefits",
        pb::Channel::Sms,
        "+33622222222",
        "sms:day-2",
    ))
    .await
    .expect("Create");
    let second = offered_id(&mut offers).await;
    amelie
        .accept(pb::InteractionAction {
            agent_id: String::new(),
            interaction_id: second.clone(),
        })
        .await
        .expect("Accept");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    amelie
        .complete(pb::CompleteRequest {
            interaction_id: second,
            wrap_up_code: "informed".into(),
            ..Default::default()
        })
        .await
        .expect("Complete");
    // Back from the wrap-up at once.
    amelie
        .set_state(pb::SetStateRequest {
            state: pb::agent_state::Kind::Available as i32,
            ..Default::default()
        })
        .await
        .expect("SetState");
    let day = amelie
        .get_my_day(pb::GetMyDayRequest::default())
        .await
        .expect("GetMyDay")
        .into_inner();
    assert_eq!(day.agent_id, "amelie");
    assert_eq!(
        (day.offered, day.accepted, day.declined, day.missed),
        (2, 1, 1, 0),
        "{day:?}"
    );
    assert_eq!((day.handled, day.transferred), (1, 0), "{day:?}");
    let handling = day.average_handling_secs.expect("one timed completion");
    assert!((1.0..60.0).contains(&handling), "{day:?}");
    assert!(day.average_wrap_up_secs.is_some(), "{day:?}");

    // Another agent's figures: refused; a supervisor reads them.
    let refused = amelie
        .get_my_day(pb::GetMyDayRequest {
            agent_id: "chloe".into(),
        })
        .await;
    api_common::assert_status(refused, tonic::Code::PermissionDenied, &["amelie"]);
    let (sup_token, _) = ws.token("supervisor", None);
    let read = server
        .desktop(&sup_token)
        .get_my_day(pb::GetMyDayRequest {
            agent_id: "amelie".into(),
        })
        .await
        .expect("GetMyDay by a supervisor")
        .into_inner();
    assert_eq!(read, day);
    let unknown = server
        .desktop(&sup_token)
        .get_my_day(pb::GetMyDayRequest {
            agent_id: "nobody".into(),
        })
        .await;
    api_common::assert_status(unknown, tonic::Code::NotFound, &["nobody"]);

    // A restart neither resets nor double-counts the day.
    drop(offers);
    server.kill();
    let server = ws.start();
    let (token, _) = ws.token("agent", Some("amelie"));
    let after = server
        .desktop(&token)
        .get_my_day(pb::GetMyDayRequest::default())
        .await
        .expect("GetMyDay after a restart")
        .into_inner();
    assert_eq!(after, day);
}

/// The next offer on the stream: its interaction id.
async fn offered_id(offers: &mut tonic::Streaming<pb::OfferUpdate>) -> String {
    let offer = api_common::next_offer(offers).await;
    offer.interaction.expect("interaction").id
}
