//! Every role boundary of the gRPC APIs tried with the wrong token, on the real server: a missing
//! or bad token is UNAUTHENTICATED, a good token outside its role is PERMISSION_DENIED, and
//! neither changes any state. A revoked token stops working within the cache delay. Health
//! checking and reflection answer without a token.

use crate::api_common;

use std::time::Duration;

use tokio_stream::StreamExt;
use tonic::Code;

use api_common::{assert_status, eventually, spec, waiting, Bearer, Workspace};
use guichet::api::proto as pb;
use pb::agent_desktop_client::AgentDesktopClient;
use pb::interactions_client::InteractionsClient;
use pb::supervisor_client::SupervisorClient;

/// What a supervisor sees of the state: every agent's status and every open interaction.
async fn snapshot(
    sup: &mut SupervisorClient<api_common::Authed>,
) -> (Vec<pb::AgentStatus>, pb::ListWaitingResponse) {
    let mut agents = sup
        .list_agents(pb::ListAgentsRequest::default())
        .await
        .expect("ListAgents")
        .into_inner()
        .agents;
    agents.sort_by(|a, b| {
        a.agent
            .as_ref()
            .map(|x| x.id.clone())
            .cmp(&b.agent.as_ref().map(|x| x.id.clone()))
    });
    // Idle times move on their own; the rest must not.
    for a in &mut agents {
        a.idle_since_unix_ms = 0;
    }
    let lines = sup
        .list_waiting(pb::ListWaitingRequest::default())
        .await
        .expect("ListWaiting")
        .into_inner();
    (agents, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tokens_are_refused_and_change_nothing() {
    let ws = Workspace::new();
    let server = ws.start();
    let admin = ws.admin_token();
    let (supervisor, _) = ws.token("supervisor", None);
    let (integrator, _) = ws.token("integrator", None);
    let (amelie, _) = ws.token("agent", Some("amelie"));

    let mut sup = server.supervisor(&supervisor);
    // Some state to protect: one interaction waiting (nobody is logged in).
    let created = server
        .interactions(&integrator)
        .create(spec(
            "benefits",
            pb::Channel::Email,
            "a@example.org",
            "auth-1",
        ))
        .await
        .expect("integrator creates")
        .into_inner();
    assert!(created.created);
    let id = created.interaction.expect("interaction").id;
    let before = snapshot(&mut sup).await;
    assert_eq!(waiting(&before.1).len(), 1);

    // --- No token, or a bad one: UNAUTHENTICATED, on every service.
    let bad_headers = [
        Bearer::none(),
        Bearer::token("nope"),
        Bearer::token("gch_0000000000000000000000000000000000000000000"),
        Bearer::raw("Basic dXNlcjpwYXNz"),
        Bearer::raw(&admin), // the secret without "Bearer "
    ];
    for bearer in bad_headers {
        let mut s = SupervisorClient::with_interceptor(server.channel(), bearer.clone());
        assert_status(
            s.list_agents(pb::ListAgentsRequest::default()).await,
            Code::Unauthenticated,
            &[],
        );
        assert_status(
            s.set_agent_skills(pb::SetAgentSkillsRequest {
                agent_id: "bruno".into(),
                skills: vec![],
            })
            .await,
            Code::Unauthenticated,
            &[],
        );
        let mut i = InteractionsClient::with_interceptor(server.channel(), bearer.clone());
        assert_status(
            i.create(spec(
                "benefits",
                pb::Channel::Email,
                "b@example.org",
                "auth-x",
            ))
            .await,
            Code::Unauthenticated,
            &[],
        );
        assert_status(
            i.cancel(pb::CancelRequest {
                interaction_id: id.clone(),
            })
            .await,
            Code::Unauthenticated,
            &[],
        );
        let mut d = AgentDesktopClient::with_interceptor(server.channel(), bearer.clone());
        assert_status(
            d.login(pb::LoginRequest {
                agent_id: "amelie".into(),
                device: String::new(),
            })
            .await,
            Code::Unauthenticated,
            &[],
        );
        assert_status(
            d.offers(pb::OffersRequest {
                agent_id: "amelie".into(),
            })
            .await,
            Code::Unauthenticated,
            &[],
        );
    }

    // --- An agent token on Supervisor or Interactions: PERMISSION_DENIED.
    let mut as_agent_sup = server.supervisor(&amelie);
    assert_status(
        as_agent_sup
            .list_agents(pb::ListAgentsRequest::default())
            .await,
        Code::PermissionDenied,
        &[],
    );
    assert_status(
        as_agent_sup
            .set_agent_skills(pb::SetAgentSkillsRequest {
                agent_id: "amelie".into(),
                skills: vec![pb::SkillLevel {
                    skill: "tax:income".into(),
                    level: 5,
                }],
            })
            .await,
        Code::PermissionDenied,
        &[],
    );
    assert_status(
        as_agent_sup
            .reprioritise(pb::ReprioritiseRequest {
                interaction_id: id.clone(),
                priority: 9,
            })
            .await,
        Code::PermissionDenied,
        &[],
    );
    assert_status(
        as_agent_sup
            .remove_queue(pb::RemoveQueueRequest {
                queue_id: "tax".into(),
            })
            .await,
        Code::PermissionDenied,
        &[],
    );
    let mut as_agent_int = server.interactions(&amelie);
    assert_status(
        as_agent_int
            .create(spec(
                "benefits",
                pb::Channel::Email,
                "c@example.org",
                "auth-2",
            ))
            .await,
        Code::PermissionDenied,
        &[],
    );
    assert_status(
        as_agent_int
            .cancel(pb::CancelRequest {
                interaction_id: id.clone(),
            })
            .await,
        Code::PermissionDenied,
        &[],
    );
    assert_status(
        as_agent_int
            .watch_events(pb::WatchEventsRequest::default())
            .await,
        Code::PermissionDenied,
        &[],
    );

    // --- An agent token acting on another agent: PERMISSION_DENIED.
    let mut desk = server.desktop(&amelie);
    assert_status(
        desk.login(pb::LoginRequest {
            agent_id: "bruno".into(),
            device: String::new(),
        })
        .await,
        Code::PermissionDenied,
        &["bruno"],
    );
    assert_status(
        desk.set_state(pb::SetStateRequest {
            agent_id: "bruno".into(),
            state: pb::agent_state::Kind::Available as i32,
            pause_reason: String::new(),
        })
        .await,
        Code::PermissionDenied,
        &[],
    );
    assert_status(
        desk.set_device(pb::SetDeviceRequest {
            agent_id: "bruno".into(),
            device: "+33199999999".into(),
        })
        .await,
        Code::PermissionDenied,
        &[],
    );
    assert_status(
        desk.offers(pb::OffersRequest {
            agent_id: "bruno".into(),
        })
        .await,
        Code::PermissionDenied,
        &[],
    );
    assert_status(
        desk.accept(pb::InteractionAction {
            agent_id: "bruno".into(),
            interaction_id: id.clone(),
        })
        .await,
        Code::PermissionDenied,
        &[],
    );

    // --- An integrator token on AgentDesktop: PERMISSION_DENIED, with or without an agent id.
    let mut as_integrator = server.desktop(&integrator);
    for agent_id in ["amelie", ""] {
        assert_status(
            as_integrator
                .login(pb::LoginRequest {
                    agent_id: agent_id.into(),
                    device: String::new(),
                })
                .await,
            Code::PermissionDenied,
            &[],
        );
    }
    assert_status(
        as_integrator
            .set_device(pb::SetDeviceRequest {
                agent_id: "amelie".into(),
                device: "+33199999999".into(),
            })
            .await,
        Code::PermissionDenied,
        &[],
    );
    // ... and on Supervisor.
    assert_status(
        server
            .supervisor(&integrator)
            .list_waiting(pb::ListWaitingRequest::default())
            .await,
        Code::PermissionDenied,
        &[],
    );

    // None of that changed anything.
    let after = snapshot(&mut sup).await;
    assert_eq!(before, after, "a refused call changed the state");

    // The right tokens do work (so the refusals above were about the tokens).
    let status = server
        .desktop(&amelie)
        .login(pb::LoginRequest::default())
        .await
        .expect("amelie logs herself in")
        .into_inner();
    assert_eq!(status.agent.expect("agent").id, "amelie");
    server
        .desktop(&supervisor)
        .set_device(pb::SetDeviceRequest {
            agent_id: "bruno".into(),
            device: "+33199999999".into(),
        })
        .await
        .expect("a supervisor acts for any agent");
    server
        .supervisor(&admin)
        .list_agents(pb::ListAgentsRequest::default())
        .await
        .expect("admin is a supervisor too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_token_stops_working() {
    let ws = Workspace::new();
    let server = ws.start();
    let (integrator, id) = ws.token("integrator", None);
    let mut client = server.interactions(&integrator);
    // A valid id that does not exist: NOT_FOUND proves the call got past authentication.
    let unknown = pb::GetRequest {
        interaction_id: "01ARZ3NDEKTSV4RRFFQ69G5FAV".into(),
    };
    assert_status(client.get(unknown.clone()).await, Code::NotFound, &[]);
    ws.revoke(&id);
    // The interceptor caches a verified token for 5 s: the revocation shows within that delay
    // (15 s allowed here for a loaded machine).
    eventually(Duration::from_secs(15), "revoked token refused", || {
        let mut client = client.clone();
        let req = unknown.clone();
        async move {
            match client.get(req).await {
                Err(s) if s.code() == Code::Unauthenticated => Some(()),
                Err(s) if s.code() == Code::NotFound => None,
                other => panic!("unexpected answer with a revoked token: {other:?}"),
            }
        }
    })
    .await;
    // And it stays refused.
    assert_status(client.get(unknown).await, Code::Unauthenticated, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_need_no_token() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    let ws = Workspace::new();
    let server = ws.start();
    let mut health = HealthClient::new(server.channel());
    for service in [
        "",
        "guichet.v1.AgentDesktop",
        "guichet.v1.Supervisor",
        "guichet.v1.Interactions",
        "guichet.v1.Sessions",
    ] {
        let reply = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("health check of {service:?}: {e:?}"))
            .into_inner();
        assert_eq!(
            reply.status,
            ServingStatus::Serving as i32,
            "service {service:?}"
        );
    }

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let mut reflection = ServerReflectionClient::new(server.channel());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection call")
        .into_inner();
    let reply = tokio::time::timeout(api_common::STREAM_LIMIT, replies.next())
        .await
        .expect("a reflection reply in time")
        .expect("a reflection reply")
        .expect("reflection ok");
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("unexpected reflection reply {reply:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "guichet.v1.AgentDesktop",
        "guichet.v1.Supervisor",
        "guichet.v1.Interactions",
        "guichet.v1.Sessions",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from reflection: {names:?}"
        );
    }
}
