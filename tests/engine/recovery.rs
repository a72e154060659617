//! Recovery: live configuration changes survive a restart and the configuration file seeds the
//! database only once; recovery from a snapshot plus the journal's tail gives back exactly the
//! state the engine had.

use crate::engine_common;

use std::collections::BTreeMap;
use std::sync::Arc;

use engine_common::{demo, spec, spec_on, ManualClock};
use guichet::config::Config;
use guichet::core::{
    AgentConfig, AgentView, Channel, Command, Event, EventKind, InteractionId, InteractionView,
    QueueView, RequestedState, Router, Timestamp, TransferTarget,
};
use guichet::engine::{Engine, EngineConfig};
use guichet::store::Store;

#[tokio::test]
async fn live_skill_and_queue_changes_survive_restarts_and_the_file_seeds_only_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = EngineConfig::new(dir.path());
    let (engine, report) = Engine::start(config.clone(), &demo()).await.expect("start");
    assert!(report.seeded);

    // Amélie leaves housing benefits for tax; the tax queue gets a longer offer timeout and a
    // new requirement; a queue that the file does not know is created.
    let skills: BTreeMap<_, _> = [("tax:income".into(), 4), ("lang:fr".into(), 5)].into();
    engine
        .send(Command::SetAgentSkills {
            agent: "amelie".into(),
            skills: skills.clone(),
        })
        .await
        .expect("skills");
    let mut tax = engine
        .read(|r| r.queue(&"tax".into()))
        .await
        .expect("read")
        .expect("tax queue")
        .config;
    tax.offer_timeout_secs = 45;
    tax.requirements
        .push(guichet::core::Requirement::new("lang:fr", 3));
    engine
        .send(Command::UpsertQueue {
            config: tax.clone(),
        })
        .await
        .expect("queue");
    let extra = guichet::core::QueueConfig::new("housing-en")
        .requiring("benefits:housing", 1)
        .requiring("lang:en", 2);
    engine
        .send(Command::UpsertQueue {
            config: extra.clone(),
        })
        .await
        .expect("new queue");
    engine.shutdown().await;
    drop(engine);

    // Restart with the same file, then with a file that changed meanwhile: neither is applied.
    let mut edited = demo();
    edited.agents[0].skills = [("benefits:housing".into(), 5)].into();
    edited
        .agents
        .push(AgentConfig::new("zoe").with_skill("general", 2));
    edited.queues.retain(|q| q.id.as_str() != "tax");
    for (round, seed) in [demo(), edited].into_iter().enumerate() {
        let n = 10 * round as u128;
        let (engine, report) = Engine::start(config.clone(), &seed).await.expect("restart");
        assert!(!report.seeded);
        let (amelie, tax_now, extra_now, zoe) = engine
            .read(|r| {
                (
                    r.agent(&"amelie".into()),
                    r.queue(&"tax".into()),
                    r.queue(&"housing-en".into()),
                    r.agent(&"zoe".into()),
                )
            })
            .await
            .expect("read");
        assert_eq!(amelie.expect("amelie").config.skills, skills);
        assert_eq!(tax_now.expect("tax").config, tax);
        assert_eq!(extra_now.expect("housing-en").config, extra);
        assert!(zoe.is_none(), "the edited file was applied");

        // Routing uses the live skills: a housing call does not go to Amélie any more, a tax
        // call does.
        if round > 0 {
            // The tax call of the first round was offered to Amélie: back in its queue.
            engine
                .send(Command::Cancel {
                    interaction: guichet::core::InteractionId::from_u128(2),
                })
                .await
                .expect("cancel");
        }
        engine
            .send(Command::Login {
                agent: "amelie".into(),
            })
            .await
            .expect("login");
        let housing = engine
            .send(Command::CreateInteraction {
                spec: spec(n + 1, "benefits"),
            })
            .await
            .expect("housing call");
        assert!(
            !housing
                .iter()
                .any(|e| matches!(&e.kind, EventKind::InteractionOffered { .. })),
            "{housing:?}"
        );
        let tax_call = engine
            .send(Command::CreateInteraction {
                spec: spec(n + 2, "tax"),
            })
            .await
            .expect("tax call");
        assert!(tax_call.iter().any(|e| matches!(
            &e.kind,
            EventKind::InteractionOffered { agent, .. } if agent.as_str() == "amelie"
        )));
        engine.shutdown().await;
    }
}

/// Everything a supervisor compares: interactions, waiting orders, agents, queues, next timer.
#[derive(Debug, PartialEq)]
struct State {
    interactions: Vec<InteractionView>,
    waiting: Vec<Vec<InteractionId>>,
    agents: Vec<AgentView>,
    queues: Vec<QueueView>,
    next_deadline: Option<Timestamp>,
}

fn state_of(r: &Router) -> State {
    let queues = r.queues();
    State {
        interactions: r.interactions(),
        waiting: queues
            .iter()
            .map(|q| r.waiting_in_queue(&q.config.id))
            .collect(),
        agents: r.agents(),
        queues,
        next_deadline: r.next_deadline(),
    }
}

async fn send_ok(engine: &Engine, command: Command) -> Vec<Event> {
    engine.send(command).await.expect("command")
}

/// A varied day: logins, creations on every channel, accepts, declines, completions with wrap-up,
/// priority changes, transfers, and everybody logged out at the end (a restart logs agents out,
/// so the state before and after can be compared as is).
async fn workload(engine: &Engine) {
    let agents = ["amelie", "bruno", "chloe", "david", "emma"];
    for agent in agents {
        send_ok(
            engine,
            Command::Login {
                agent: agent.into(),
            },
        )
        .await;
    }
    let routes = [
        (Channel::Voice, "benefits"),
        (Channel::Email, "tax"),
        (Channel::Chat, "general"),
        (Channel::Sms, "benefits"),
        (Channel::Email, "general"),
        (Channel::Voice, "tax"),
    ];
    let mut offered: Vec<(InteractionId, String)> = Vec::new();
    for n in 1..=150u128 {
        let (channel, queue) = routes[n as usize % routes.len()];
        let mut s = spec_on(n, channel, queue);
        if n % 7 == 0 {
            s.priority = Some(5);
        }
        for event in send_ok(engine, Command::CreateInteraction { spec: s }).await {
            if let EventKind::InteractionOffered {
                interaction, agent, ..
            } = event.kind
            {
                offered.push((interaction, agent.as_str().to_owned()));
            }
        }
        if n % 10 == 0 {
            for (i, (interaction, agent)) in std::mem::take(&mut offered).into_iter().enumerate() {
                let events = match i % 4 {
                    0 => {
                        send_ok(
                            engine,
                            Command::Decline {
                                interaction,
                                agent: agent.as_str().into(),
                            },
                        )
                        .await
                    }
                    1 => {
                        let mut events = send_ok(
                            engine,
                            Command::Accept {
                                interaction,
                                agent: agent.as_str().into(),
                            },
                        )
                        .await;
                        if n % 20 == 0 {
                            events.extend(
                                send_ok(
                                    engine,
                                    Command::Transfer {
                                        interaction,
                                        to: TransferTarget::Queue {
                                            queue: "general".into(),
                                        },
                                        by: Some(agent.as_str().into()),
                                        note: None,
                                    },
                                )
                                .await,
                            );
                        }
                        events
                    }
                    _ => {
                        send_ok(
                            engine,
                            Command::Accept {
                                interaction,
                                agent: agent.as_str().into(),
                            },
                        )
                        .await;
                        send_ok(
                            engine,
                            Command::Complete {
                                interaction,
                                agent: Some(agent.as_str().into()),
                                wrap_up_code: Some(format!("code-{n}")),
                                notes: None,
                            },
                        )
                        .await
                    }
                };
                for event in events {
                    if let EventKind::InteractionOffered {
                        interaction, agent, ..
                    } = event.kind
                    {
                        offered.push((interaction, agent.as_str().to_owned()));
                    }
                }
            }
            send_ok(
                engine,
                Command::ChangePriority {
                    interaction: InteractionId::from_u128(n - 3),
                    priority: 9,
                },
            )
            .await;
            send_ok(
                engine,
                Command::SetState {
                    agent: agents[(n / 10) as usize % agents.len()].into(),
                    state: RequestedState::Available,
                },
            )
            .await;
        }
    }
    for agent in agents {
        send_ok(
            engine,
            Command::Logout {
                agent: agent.into(),
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_from_a_snapshot_gives_back_the_same_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = EngineConfig::new(dir.path());
    config.store.snapshot_every = 16;
    // A clock that does not move: no escalation step or wrap-up end can fall between the state
    // taken before shutdown and the one after restart.
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_767_254_400)));
    let seed: Config = demo();
    let (engine, _) = Engine::start_with_clock(config.clone(), &seed, clock.clone())
        .await
        .expect("start");
    let mut rx = engine.subscribe();
    workload(&engine).await;
    let before = engine.read(state_of).await.expect("read");
    assert!(
        before.interactions.len() > 50,
        "{}",
        before.interactions.len()
    );
    assert!(before
        .interactions
        .iter()
        .any(|i| matches!(i.phase, guichet::core::InteractionPhase::Assigned { .. })));
    engine.shutdown().await;
    let mut last_seq = 0;
    let mut kinds = std::collections::BTreeSet::new();
    while let Ok(batch) = rx.try_recv() {
        last_seq = batch.seq;
        kinds.extend(batch.events.iter().map(|e| e.kind.name()));
    }
    for kind in [
        "offer_accepted",
        "offer_declined",
        "interaction_completed",
        "interaction_moved",
        "priority_changed",
    ] {
        assert!(kinds.contains(kind), "no {kind} in the workload: {kinds:?}");
    }
    drop(engine);

    for _ in 0..2 {
        let (engine, report) = Engine::start_with_clock(config.clone(), &seed, clock.clone())
            .await
            .expect("restart");
        assert!(report.from_snapshot, "{report:?}");
        assert!(
            report.replayed < last_seq / 4,
            "replayed {} of {last_seq}",
            report.replayed
        );
        assert_eq!(report.open_interactions, before.interactions.len());
        let after = engine.read(state_of).await.expect("read");
        assert_eq!(after, before);
        engine.shutdown().await;
    }

    // The whole journal, replayed from the start without any snapshot, agrees too.
    let store = Store::open(&config.store).expect("open");
    let mut full = Router::new();
    let replayed = store
        .replay(0, |_, event| {
            full.apply(&event).expect("apply");
            Ok(())
        })
        .expect("replay");
    assert_eq!(replayed, last_seq);
    assert_eq!(state_of(&full), before);
}
