//! The APIs end to end on the real server: an agent's day (offer, accept, complete with notes,
//! history on the next offer from the same contact, decline, transfer), a supervisor's live
//! changes (skills, priority, explanations, statistics), an integrator's event stream, and the
//! statuses that bad requests get.

use crate::api_common;

use std::time::Duration;

use tonic::Code;

use api_common::{assert_status, next, skip_on_postgres, spec, waiting, Workspace, STREAM_LIMIT};
use guichet::api::proto as pb;
use pb::offer_update::Update;

const SUPERVISOR: &str = "supervisor";
const INTEGRATOR: &str = "integrator";

/// The next offer on an offer stream (fails on a withdrawal or nothing).
async fn next_offer(stream: &mut tonic::Streaming<pb::OfferUpdate>) -> pb::Offer {
    match next(stream).await.update {
        Some(Update::Offer(offer)) => offer,
        other => panic!("expected an offer, got {other:?}"),
    }
}

fn id_of(resp: &pb::CreateResponse) -> String {
    resp.interaction.as_ref().expect("interaction").id.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_day_offer_accept_complete_history_decline_transfer() {
    let ws = Workspace::new();
    let server = ws.start();
    let (sup_token, _) = ws.token(SUPERVISOR, None);
    let (int_token, _) = ws.token(INTEGRATOR, None);
    let (amelie_token, _) = ws.token("agent", Some("amelie"));
    let mut sup = server.supervisor(&sup_token);
    let mut int = server.interactions(&int_token);
    let mut desk = server.desktop(&amelie_token);

    // No after-contact work in benefits, so that amelie takes the next offer at once.
    let mut sent = None;
    let upserted = api_common::change_queue(&mut sup, "benefits", |q| {
        q.wrap_up_secs = 0;
        sent = Some(q.clone());
    })
    .await;
    let benefits = sent.expect("the queue sent");
    assert_eq!(
        upserted, benefits,
        "a queue round-trips through UpsertQueue"
    );

    let status = desk
        .login(pb::LoginRequest::default())
        .await
        .expect("Login")
        .into_inner();
    assert_eq!(
        status.state.expect("state").kind,
        pb::agent_state::Kind::Available as i32
    );
    // The time of the change is the router's, so that every desktop shows the same.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    assert!(
        (now_ms - 60_000..=now_ms + 1_000).contains(&status.state_since_unix_ms),
        "{}",
        status.state_since_unix_ms
    );
    let mut offers = desk
        .offers(pb::OffersRequest::default())
        .await
        .expect("Offers")
        .into_inner();

    // An integrator creates a call; creating it again with the same reference is harmless.
    let contact = "+33611111111";
    let first = int
        .create(spec("benefits", pb::Channel::Voice, contact, "call-1"))
        .await
        .expect("Create")
        .into_inner();
    assert!(first.created);
    let id1 = id_of(&first);
    let again = int
        .create(spec("benefits", pb::Channel::Voice, contact, "call-1"))
        .await
        .expect("Create again")
        .into_inner();
    assert!(!again.created, "same external_ref: not created again");
    assert_eq!(id_of(&again), id1, "same external_ref: same interaction");

    // The offer arrives, with why and until when.
    let offer = next_offer(&mut offers).await;
    let offered = offer.interaction.as_ref().expect("interaction");
    assert_eq!(offered.id, id1);
    assert_eq!(offered.phase, pb::Phase::Offered as i32);
    assert_eq!(offered.agent, "amelie");
    assert_eq!(offered.external_ref, "call-1");
    assert!(
        offer.deadline_unix_ms > offered.created_at_unix_ms,
        "deadline {} after creation {}",
        offer.deadline_unix_ms,
        offered.created_at_unix_ms
    );
    assert_eq!(offered.offer_deadline_unix_ms, offer.deadline_unix_ms);
    let decision = offer.decision.as_ref().expect("decision");
    assert!(!decision.rule.is_empty(), "{decision:?}");
    assert!(decision.candidates >= 1, "{decision:?}");
    assert!(decision.text.contains("amelie"), "{decision:?}");
    assert!(offer.history.is_empty(), "a new contact has no history");

    // Accept, then complete with a wrap-up code and notes.
    let accepted = desk
        .accept(pb::InteractionAction {
            agent_id: String::new(),
            interaction_id: id1.clone(),
        })
        .await
        .expect("Accept")
        .into_inner();
    assert_eq!(accepted.phase, pb::Phase::Assigned as i32);
    assert_eq!(accepted.agent, "amelie");
    let notes = "Asked about APL; form sent by post.";
    let completed = desk
        .complete(pb::CompleteRequest {
            agent_id: "amelie".into(),
            interaction_id: id1.clone(),
            wrap_up_code: "answered".into(),
            notes: notes.into(),
        })
        .await
        .expect("Complete")
        .into_inner();
    assert!(
        completed.phase == pb::Phase::Ended as i32 || completed.phase == pb::Phase::WrapUp as i32,
        "{completed:?}"
    );

    // The same contact calls again: the offer shows the first call with its notes.
    let second = int
        .create(spec("benefits", pb::Channel::Voice, contact, "call-2"))
        .await
        .expect("Create second")
        .into_inner();
    assert!(second.created);
    let id2 = id_of(&second);
    let offer = next_offer(&mut offers).await;
    assert_eq!(offer.interaction.as_ref().expect("interaction").id, id2);
    let past = offer
        .history
        .iter()
        .find(|h| h.interaction_id == id1)
        .unwrap_or_else(|| panic!("first call missing from history {:?}", offer.history));
    assert_eq!(past.wrap_up_code, "answered");
    assert_eq!(past.notes, notes);
    assert_eq!(past.agent, "amelie");
    assert_eq!(past.outcome, "completed");
    assert_eq!(past.queue, "benefits");
    assert_eq!(past.channel, pb::Channel::Voice as i32);
    assert!(past.ended_at_unix_ms >= past.created_at_unix_ms);
    assert!(
        offer.history.iter().all(|h| h.interaction_id != id2),
        "the offered interaction is not its own history"
    );

    // Declining puts it back in line (for someone else) and withdraws it from the stream.
    let declined = desk
        .decline(pb::InteractionAction {
            agent_id: String::new(),
            interaction_id: id2.clone(),
        })
        .await
        .expect("Decline")
        .into_inner();
    assert_eq!(declined.phase, pb::Phase::Waiting as i32, "{declined:?}");
    match next(&mut offers).await.update {
        Some(Update::Withdrawn(w)) => {
            assert_eq!(w.interaction_id, id2);
            assert_eq!(w.reason, "declined");
        }
        other => panic!("expected a withdrawal, got {other:?}"),
    }
    let line = sup
        .list_waiting(pb::ListWaitingRequest {
            queues: vec!["benefits".into()],
            ..Default::default()
        })
        .await
        .expect("ListWaiting")
        .into_inner();
    assert_eq!(
        waiting(&line).iter().map(|i| &i.id).collect::<Vec<_>>(),
        vec![&id2]
    );
    let why = sup
        .explain(pb::ExplainRequest {
            interaction_id: id2.clone(),
        })
        .await
        .expect("Explain")
        .into_inner();
    assert_eq!(why.declined_by, vec!["amelie".to_owned()]);

    // A third call, accepted then transferred to the general queue.
    let third = int
        .create(spec(
            "benefits",
            pb::Channel::Voice,
            "+33622222222",
            "call-3",
        ))
        .await
        .expect("Create third")
        .into_inner();
    let id3 = id_of(&third);
    let offer = next_offer(&mut offers).await;
    assert_eq!(offer.interaction.as_ref().expect("interaction").id, id3);
    desk.accept(pb::InteractionAction {
        agent_id: String::new(),
        interaction_id: id3.clone(),
    })
    .await
    .expect("Accept third");
    let moved = desk
        .transfer(pb::TransferRequest {
            agent_id: String::new(),
            interaction_id: id3.clone(),
            to: Some(pb::transfer_request::To::Queue("general".into())),
            note: String::new(),
        })
        .await
        .expect("Transfer")
        .into_inner();
    assert_eq!(moved.queue, "general", "{moved:?}");
    let now = int
        .get(pb::GetRequest {
            interaction_id: id3.clone(),
        })
        .await
        .expect("Get")
        .into_inner();
    assert_eq!(now.queue, "general");
    assert_ne!(
        now.agent, "amelie",
        "the transferring agent does not get it back"
    );
    let status = desk
        .set_state(pb::SetStateRequest {
            agent_id: String::new(),
            state: pb::agent_state::Kind::Paused as i32,
            pause_reason: "lunch".into(),
        })
        .await
        .expect("SetState paused")
        .into_inner();
    let state = status.state.expect("state");
    assert_eq!(state.kind, pb::agent_state::Kind::Paused as i32);
    assert_eq!(state.pause_reason, "lunch");
    assert!(status.work.is_empty(), "{:?}", status.work);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisor_live_changes_stats_and_events() {
    let ws = Workspace::new();
    let server = ws.start();
    let (sup_token, _) = ws.token(SUPERVISOR, None);
    let (int_token, _) = ws.token(INTEGRATOR, None);
    let (bruno_token, _) = ws.token("agent", Some("bruno"));
    let mut sup = server.supervisor(&sup_token);
    let mut int = server.interactions(&int_token);
    let mut desk = server.desktop(&bruno_token);

    let mut stats = sup
        .watch_stats(pb::WatchStatsRequest {
            queues: vec!["benefits".into()],
            interval_ms: 100,
        })
        .await
        .expect("WatchStats")
        .into_inner();
    let mut tax_events = int
        .watch_events(pb::WatchEventsRequest {
            queues: vec!["tax".into()],
            interaction_ids: vec![],
        })
        .await
        .expect("WatchEvents")
        .into_inner();

    // Bruno (no housing skill) logs in: benefits calls wait.
    desk.login(pb::LoginRequest::default())
        .await
        .expect("Login");
    let mut offers = desk
        .offers(pb::OffersRequest::default())
        .await
        .expect("Offers")
        .into_inner();
    let mut ids = Vec::new();
    for n in 1..=3 {
        let created = int
            .create(spec(
                "benefits",
                pb::Channel::Voice,
                &format!("+3361000000{n}"),
                &format!("s-{n}"),
            ))
            .await
            .expect("Create")
            .into_inner();
        ids.push(id_of(&created));
        // Distinct enqueue times, so that the order below does not rest on id ties.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let line = |resp: pb::ListWaitingResponse| -> Vec<String> {
        waiting(&resp).into_iter().map(|i| i.id).collect()
    };
    let benefits_only = pb::ListWaitingRequest {
        queues: vec!["benefits".into()],
        ..Default::default()
    };
    let listed = sup
        .list_waiting(benefits_only.clone())
        .await
        .expect("ListWaiting")
        .into_inner();
    let enqueued: Vec<i64> = waiting(&listed)
        .iter()
        .map(|i| i.enqueued_at_unix_ms)
        .collect();
    assert!(enqueued.windows(2).all(|w| w[0] <= w[1]), "{enqueued:?}");
    assert_eq!(line(listed), ids, "first come, first served");

    // Explain: three agents qualify (amelie, chloe, emma), none is free.
    let why = sup
        .explain(pb::ExplainRequest {
            interaction_id: ids[0].clone(),
        })
        .await
        .expect("Explain")
        .into_inner();
    assert_eq!(why.interaction.as_ref().expect("interaction").id, ids[0]);
    assert_eq!(why.eligible_agents, 3, "{why:?}");
    assert_eq!(why.free_agents, 0, "{why:?}");
    assert!(
        why.alternatives.iter().any(|set| set
            .requirements
            .iter()
            .any(|r| r.skill == "benefits:housing" && r.min_level == 2)),
        "{why:?}"
    );
    assert!(!why.text.is_empty());

    // Reprioritise the last one: it goes ahead.
    let raised = sup
        .reprioritise(pb::ReprioritiseRequest {
            interaction_id: ids[2].clone(),
            priority: 5,
        })
        .await
        .expect("Reprioritise")
        .into_inner();
    assert_eq!(raised.priority, 5);
    let listed = sup
        .list_waiting(benefits_only.clone())
        .await
        .expect("ListWaiting")
        .into_inner();
    assert_eq!(
        line(listed),
        vec![ids[2].clone(), ids[0].clone(), ids[1].clone()]
    );

    // Give bruno the housing skill, live: he is offered the first in line at once.
    let mut skills = vec![
        pb::SkillLevel {
            skill: "tax:income".into(),
            level: 5,
        },
        pb::SkillLevel {
            skill: "general".into(),
            level: 2,
        },
        pb::SkillLevel {
            skill: "benefits:housing".into(),
            level: 4,
        },
    ];
    let status = sup
        .set_agent_skills(pb::SetAgentSkillsRequest {
            agent_id: "bruno".into(),
            skills: skills.clone(),
        })
        .await
        .expect("SetAgentSkills")
        .into_inner();
    let mut got = status.agent.expect("agent").skills;
    got.sort_by(|a, b| a.skill.cmp(&b.skill));
    skills.sort_by(|a, b| a.skill.cmp(&b.skill));
    assert_eq!(got, skills);
    let agents = sup
        .list_agents(pb::ListAgentsRequest::default())
        .await
        .expect("ListAgents")
        .into_inner()
        .agents;
    let bruno = agents
        .iter()
        .find_map(|a| a.agent.as_ref().filter(|c| c.id == "bruno"))
        .expect("bruno listed");
    assert!(
        bruno
            .skills
            .iter()
            .any(|s| s.skill == "benefits:housing" && s.level == 4),
        "{bruno:?}"
    );
    let offer = next_offer(&mut offers).await;
    assert_eq!(offer.interaction.as_ref().expect("interaction").id, ids[2]);
    desk.accept(pb::InteractionAction {
        agent_id: String::new(),
        interaction_id: ids[2].clone(),
    })
    .await
    .expect("Accept");

    // Statistics count the answer.
    let deadline = tokio::time::Instant::now() + STREAM_LIMIT;
    let benefits_stats = loop {
        let update = next(&mut stats).await;
        let q = update
            .queues
            .iter()
            .find(|q| q.queue == "benefits")
            .expect("benefits stats")
            .clone();
        assert_eq!(update.queues.len(), 1, "only the queue asked for");
        if q.answered_today >= 1 {
            break q;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "answered_today never counted the answer: {q:?}"
        );
    };
    assert_eq!(benefits_stats.answered_today, 1);
    assert_eq!(benefits_stats.answered_within_target_today, 1);
    assert_eq!(benefits_stats.waiting, 2);
    assert_eq!(benefits_stats.in_progress, 1);
    assert_eq!(benefits_stats.service_level_today, Some(1.0));
    // Per channel, the same figures, adding up to the queue's.
    let by_channel = &benefits_stats.today_by_channel;
    assert!(!by_channel.is_empty(), "{benefits_stats:?}");
    let sum = |f: fn(&pb::ChannelDayStats) -> u32| by_channel.iter().map(f).sum::<u32>();
    assert_eq!(sum(|c| c.answered_today), benefits_stats.answered_today);
    assert_eq!(sum(|c| c.abandoned_today), benefits_stats.abandoned_today);
    let answered = by_channel
        .iter()
        .find(|c| c.answered_today == 1)
        .expect("the answered channel");
    assert_eq!(answered.service_level_today, Some(1.0), "{answered:?}");
    assert!(
        by_channel.windows(2).all(|w| w[0].channel < w[1].channel),
        "in channel order"
    );

    // The tax-filtered event stream sees the tax creation, and nothing of benefits.
    let benefits4 = int
        .create(spec("benefits", pb::Channel::Email, "x@example.org", "s-4"))
        .await
        .expect("Create benefits")
        .into_inner();
    let tax = int
        .create(spec("tax", pb::Channel::Voice, "+33633333333", "t-1"))
        .await
        .expect("Create tax")
        .into_inner();
    let tax_id = id_of(&tax);
    let event = next(&mut tax_events).await;
    assert_eq!(event.queue, "tax", "{event:?}");
    assert_eq!(event.kind, "interaction_created", "{event:?}");
    assert_eq!(event.interaction_id, tax_id);
    assert!(event.seq > 0);
    assert!(event.details_json.contains("t-1"), "{}", event.details_json);
    assert_ne!(event.interaction_id, id_of(&benefits4));

    // Move a waiting one to another queue.
    let moved = sup
        .r#move(pb::MoveRequest {
            interaction_id: ids[0].clone(),
            queue: "general".into(),
        })
        .await
        .expect("Move")
        .into_inner();
    assert_eq!(moved.queue, "general");
    let event_ids: Vec<String> = {
        // The event stream of one interaction sees its move.
        let mut one = int
            .watch_events(pb::WatchEventsRequest {
                queues: vec![],
                interaction_ids: vec![ids[1].clone()],
            })
            .await
            .expect("WatchEvents by id")
            .into_inner();
        sup.r#move(pb::MoveRequest {
            interaction_id: ids[1].clone(),
            queue: "general".into(),
        })
        .await
        .expect("Move second");
        let e = next(&mut one).await;
        assert_eq!(e.kind, "interaction_moved", "{e:?}");
        assert_eq!(e.queue, "general");
        vec![e.interaction_id]
    };
    assert_eq!(event_ids, vec![ids[1].clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_clear_statuses() {
    let ws = Workspace::new();
    let server = ws.start();
    let (sup_token, _) = ws.token(SUPERVISOR, None);
    let (int_token, _) = ws.token(INTEGRATOR, None);
    let mut sup = server.supervisor(&sup_token);
    let mut int = server.interactions(&int_token);
    let mut desk = server.desktop(&sup_token);
    let unknown_id = "01ARZ3NDEKTSV4RRFFQ69G5FAV".to_owned();
    use Code::{InvalidArgument, NotFound};

    // INVALID_ARGUMENT, naming the field.
    assert_status(
        int.get(pb::GetRequest {
            interaction_id: "not-an-id".into(),
        })
        .await,
        InvalidArgument,
        &["interaction_id"],
    );
    assert_status(
        sup.reprioritise(pb::ReprioritiseRequest {
            interaction_id: "xyz".into(),
            priority: 1,
        })
        .await,
        InvalidArgument,
        &["interaction_id"],
    );
    assert_status(
        desk.accept(pb::InteractionAction {
            agent_id: "amelie".into(),
            interaction_id: String::new(),
        })
        .await,
        InvalidArgument,
        &["interaction_id"],
    );
    assert_status(
        sup.set_agent_skills(pb::SetAgentSkillsRequest {
            agent_id: "amelie".into(),
            skills: vec![pb::SkillLevel {
                skill: "general".into(),
                level: 9,
            }],
        })
        .await,
        InvalidArgument,
        &["level", "9"],
    );
    let mut no_queue = spec("", pb::Channel::Voice, "+33600000000", "");
    assert_status(
        int.create(no_queue.clone()).await,
        InvalidArgument,
        &["spec.queue"],
    );
    for channel in [0, 42] {
        no_queue.spec.as_mut().expect("spec").queue = "benefits".into();
        no_queue.spec.as_mut().expect("spec").channel = channel;
        assert_status(
            int.create(no_queue.clone()).await,
            InvalidArgument,
            &["spec.channel"],
        );
    }
    let mut high = spec("benefits", pb::Channel::Voice, "", "");
    high.spec.as_mut().expect("spec").requirements = vec![pb::Requirement {
        skill: "lang:fr".into(),
        min_level: 9,
    }];
    assert_status(int.create(high).await, InvalidArgument, &["min_level", "9"]);
    assert_status(
        int.create(pb::CreateRequest {
            spec: None,
            message: None,
        })
        .await,
        InvalidArgument,
        &["spec"],
    );
    assert_status(
        desk.set_state(pb::SetStateRequest {
            agent_id: "amelie".into(),
            state: pb::agent_state::Kind::Paused as i32,
            pause_reason: String::new(),
        })
        .await,
        InvalidArgument,
        &["pause_reason"],
    );
    assert_status(
        desk.login(pb::LoginRequest {
            agent_id: "amelie".into(),
            device: "call me maybe".into(),
        })
        .await,
        InvalidArgument,
        &["device"],
    );
    // The tax queue takes no SMS.
    let status = assert_status(
        int.create(spec("tax", pb::Channel::Sms, "+33600000000", ""))
            .await,
        InvalidArgument,
        &[],
    );
    assert!(
        status.message().to_lowercase().contains("sms"),
        "{status:?}"
    );

    // NOT_FOUND for what does not exist.
    assert_status(
        sup.set_agent_skills(pb::SetAgentSkillsRequest {
            agent_id: "nobody".into(),
            skills: vec![],
        })
        .await,
        NotFound,
        &["nobody"],
    );
    assert_status(
        int.create(spec("nowhere", pb::Channel::Voice, "", ""))
            .await,
        NotFound,
        &["nowhere"],
    );
    assert_status(
        sup.list_waiting(pb::ListWaitingRequest {
            queues: vec!["nowhere".into()],
            ..Default::default()
        })
        .await,
        NotFound,
        &["nowhere"],
    );
    assert_status(
        sup.reprioritise(pb::ReprioritiseRequest {
            interaction_id: unknown_id.clone(),
            priority: 3,
        })
        .await,
        NotFound,
        &[],
    );
    assert_status(
        sup.explain(pb::ExplainRequest {
            interaction_id: unknown_id.clone(),
        })
        .await,
        NotFound,
        &[],
    );
    assert_status(
        int.cancel(pb::CancelRequest {
            interaction_id: unknown_id.clone(),
        })
        .await,
        NotFound,
        &[],
    );
    assert_status(
        desk.login(pb::LoginRequest {
            agent_id: "nobody".into(),
            device: String::new(),
        })
        .await,
        NotFound,
        &["nobody"],
    );
    assert_status(
        desk.offers(pb::OffersRequest {
            agent_id: "nobody".into(),
        })
        .await,
        NotFound,
        &[],
    );
    let waiting_one = int
        .create(spec(
            "benefits",
            pb::Channel::Email,
            "q@example.org",
            "ok-1",
        ))
        .await
        .expect("a good creation")
        .into_inner();
    assert_status(
        sup.r#move(pb::MoveRequest {
            interaction_id: id_of(&waiting_one),
            queue: "nowhere".into(),
        })
        .await,
        NotFound,
        &["nowhere"],
    );

    // None of the refused calls left anything behind.
    let all = sup
        .list_waiting(pb::ListWaitingRequest::default())
        .await
        .expect("ListWaiting")
        .into_inner();
    let open: Vec<_> = api_common::open(&all).into_iter().map(|i| i.id).collect();
    assert_eq!(open, vec![id_of(&waiting_one)]);
    let agents = sup
        .list_agents(pb::ListAgentsRequest::default())
        .await
        .expect("ListAgents")
        .into_inner()
        .agents;
    assert!(agents
        .iter()
        .all(|a| a.state.as_ref().expect("state").kind == pb::agent_state::Kind::Offline as i32));
    let amelie = agents
        .iter()
        .find_map(|a| a.agent.as_ref().filter(|c| c.id == "amelie"))
        .expect("amelie");
    assert!(amelie.skills.iter().all(|s| s.level <= 5));
}

/// A call that fails inside the store answers `INTERNAL` with an error id and nothing else; the
/// server's log line with that id holds the details.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failure_answers_an_error_id_that_the_log_explains() {
    if skip_on_postgres("a table dropped from guichet.db") {
        return;
    }
    let ws = Workspace::new();
    let server = ws.start();
    let (sup_token, _) = ws.token(SUPERVISOR, None);
    // Break the store from outside, as a damaged database would be.
    let db = rusqlite::Connection::open(ws.data_dir().join("guichet.db")).expect("open the db");
    db.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    db.execute_batch("DROP TABLE survey_answers")
        .expect("drop a table");
    drop(db);

    let status = server
        .supervisor(&sup_token)
        .get_satisfaction(pb::GetSatisfactionRequest::default())
        .await
        .expect_err("the read must fail");
    assert_eq!(status.code(), Code::Internal);
    let message = status.message();
    assert!(
        !message.contains("survey_answers"),
        "details leaked: {message}"
    );
    assert!(!message.contains(".db"), "a path leaked: {message}");
    let id = message
        .strip_prefix("internal error ")
        .and_then(|rest| rest.split(':').next())
        .expect("an error id in the message");
    assert_eq!(id.len(), 12, "{message}");

    let deadline = std::time::Instant::now() + STREAM_LIMIT;
    loop {
        let log = ws.log_text();
        if let Some(line) = log.lines().find(|l| l.contains(id)) {
            assert!(
                line.contains("no such table"),
                "the log line lacks details: {line}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no log line with the error id {id}:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
