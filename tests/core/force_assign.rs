//! Forcing an interaction onto one agent (a supervisor's ForceAssign, an agent's transfer to a
//! colleague): refused when the agent is offline, waiting for that agent alone when paused,
//! and the explanation says so.

use guichet::core::{
    AgentConfig, Channel, Command, InteractionId, InteractionPhase, InteractionSpec, QueueConfig,
    RequestedState, RouteError, Router, Timestamp, TransferTarget,
};

const T0: Timestamp = Timestamp::from_secs(1_700_000_000);

fn ok(router: &mut Router, command: Command) {
    router
        .handle(T0, command.clone())
        .unwrap_or_else(|e| panic!("{command:?} refused: {e}"));
}

#[test]
fn force_assign_refuses_an_offline_agent_and_waits_for_a_paused_one() {
    let mut router = Router::new();
    ok(
        &mut router,
        Command::UpsertQueue {
            config: QueueConfig::new("q"),
        },
    );
    for agent in ["paula", "otto"] {
        ok(
            &mut router,
            Command::UpsertAgent {
                config: AgentConfig::new(agent),
            },
        );
    }
    ok(
        &mut router,
        Command::Login {
            agent: "paula".into(),
        },
    );
    ok(
        &mut router,
        Command::SetState {
            agent: "paula".into(),
            state: RequestedState::Paused {
                reason: "lunch".into(),
            },
        },
    );
    let id = InteractionId(ulid::Ulid::from_parts(1, 1));
    ok(
        &mut router,
        Command::CreateInteraction {
            spec: InteractionSpec::new(id, Channel::Chat, "q"),
        },
    );

    let before = router.snapshot();
    let refused = router
        .handle(
            T0,
            Command::Transfer {
                interaction: id,
                to: TransferTarget::Agent {
                    agent: "otto".into(),
                },
                by: None,
                note: None,
            },
        )
        .expect_err("otto is offline");
    assert_eq!(refused, RouteError::TargetOffline("otto".into()));
    assert!(refused.to_string().contains("otto is offline"));
    assert_eq!(before, router.snapshot(), "nothing changed");

    ok(
        &mut router,
        Command::Transfer {
            interaction: id,
            to: TransferTarget::Agent {
                agent: "paula".into(),
            },
            by: None,
            note: None,
        },
    );
    let explained = router.explain(&id).expect("open");
    assert_eq!(explained.interaction.phase, InteractionPhase::Waiting);
    assert!(
        explained.summary.contains("waiting for agent paula alone")
            && explained.summary.contains("paused (lunch)"),
        "{}",
        explained.summary
    );
    // Back from lunch: it is offered to her.
    ok(
        &mut router,
        Command::SetState {
            agent: "paula".into(),
            state: RequestedState::Available,
        },
    );
    assert_eq!(
        router
            .interaction(&id)
            .and_then(|v| v.phase.agent().cloned()),
        Some("paula".into())
    );
}
