//! Embeds the durable engine in-process, as an integrator would: starts an [`Engine`] on a data
//! directory with the demo configuration, subscribes to committed events, logs two agents in,
//! creates a few interactions with different requirements, prints each assignment with the
//! router's explanation, accepts and completes them, and shuts down.
//!
//! Run with `cargo run --example embed` (a fresh temporary directory), or
//! `cargo run --example embed -- ./data-embed` to keep the database and see what a restart
//! recovers on the next run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use guichet::config::Config;
use guichet::core::{
    AgentId, Channel, Command, EventKind, InteractionId, InteractionSpec, RequestedState,
    Requirement,
};
use guichet::engine::{Engine, EngineError};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/guichet.toml"
    )))?;
    // A directory given on the command line is kept; otherwise a temporary one is used.
    let temp = tempfile::tempdir()?;
    let data_dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| temp.path().to_owned());

    let mut engine_config = config.engine_config();
    engine_config.store.data_dir = data_dir.clone();
    let (engine, report) = Engine::start(engine_config, &config).await?;
    println!(
        "engine started on {}: {} (replayed {} events{}), {} open interactions",
        data_dir.display(),
        if report.seeded {
            "new database, seeded from config/guichet.toml"
        } else {
            "existing database, configuration file ignored"
        },
        report.replayed,
        if report.from_snapshot {
            " after a snapshot"
        } else {
            ""
        },
        report.open_interactions,
    );

    // What an agent desktop or a statistics feed would do: follow committed events. The stream
    // ends when the engine shuts down.
    let mut events = engine.subscribe();
    let follower = tokio::spawn(async move {
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut last_seq = 0;
        loop {
            match events.recv().await {
                Ok(batch) => {
                    last_seq = batch.seq;
                    for event in batch.events.iter() {
                        *counts.entry(event.kind.name()).or_default() += 1;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    println!("subscriber: missed {n} batches (too slow)");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
        (counts, last_seq)
    });

    // After a restart every agent is logged out: log the two agents in.
    let amelie = AgentId::new("amelie");
    let bruno = AgentId::new("bruno");
    for agent in [&amelie, &bruno] {
        engine
            .send(Command::Login {
                agent: agent.clone(),
            })
            .await?;
    }

    // Three contacts with different requirements.
    let requests = [
        // A housing-benefits call: Amélie holds benefits:housing at 5, Bruno not at all.
        (Channel::Voice, "benefits", None),
        // An income-tax email: Bruno's specialty.
        (Channel::Email, "tax", None),
        // A general chat in English at level 3: of the two logged in, only Amélie speaks
        // English that well, and she is on a call (voice is exclusive), so it waits for her.
        (Channel::Chat, "general", Some(("lang:en", 3))),
    ];
    let mut assigned: Vec<(InteractionId, AgentId)> = Vec::new();
    let mut waiting: Vec<InteractionId> = Vec::new();
    for (channel, queue, requirement) in requests {
        let id = InteractionId::generate();
        let mut spec = InteractionSpec::new(id, channel, queue);
        spec.external_ref = Some(format!("embed-{id}").into());
        if let Some((skill, level)) = requirement {
            spec.requirements.push(Requirement::new(skill, level));
        }
        // The reply comes once the creation is committed: it survives a crash from here on.
        let created = match engine.send(Command::CreateInteraction { spec }).await {
            Ok(events) => events,
            Err(EngineError::Overloaded) => {
                // Not with this little traffic; a server answers "retry" (HTTP 503, UNAVAILABLE).
                println!("engine overloaded: retry later");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let offer = created.iter().find_map(|e| match &e.kind {
            EventKind::InteractionOffered {
                agent, decision, ..
            } => Some((agent.clone(), decision.clone())),
            _ => None,
        });
        let explanation = engine.read(move |r| r.explain(&id)).await?;
        let summary = explanation.map(|e| e.summary).unwrap_or_default();
        match offer {
            Some((agent, decision)) => {
                println!(
                    "{channel:>5} in {queue:<8} -> {agent:<6} rule {}, score {}, {} candidate(s) | {summary}",
                    decision.rule, decision.score, decision.candidates
                );
                assigned.push((id, agent));
            }
            None => {
                println!("{channel:>5} in {queue:<8} -> waits  | {summary}");
                waiting.push(id);
            }
        }
    }

    // The agents accept and complete what they were offered. Completing starts the queue's
    // wrap-up; the agent ends it early by making itself available, and then takes the next
    // interaction waiting for it.
    while let Some((id, agent)) = assigned.pop() {
        engine
            .send(Command::Accept {
                interaction: id,
                agent: agent.clone(),
            })
            .await?;
        engine
            .send(Command::Complete {
                interaction: id,
                agent: Some(agent.clone()),
                wrap_up_code: Some("answered".into()),
                notes: None,
            })
            .await?;
        let freed = engine
            .send(Command::SetState {
                agent: agent.clone(),
                state: RequestedState::Available,
            })
            .await?;
        println!("{agent} completed {id}");
        for event in &freed {
            if let EventKind::InteractionOffered {
                interaction,
                agent,
                decision,
                ..
            } = &event.kind
            {
                let summary = engine
                    .read({
                        let id = *interaction;
                        move |r| r.explain(&id).map(|e| e.summary)
                    })
                    .await?
                    .unwrap_or_default();
                println!(
                    "   then {interaction} -> {agent} by rule {} | {summary}",
                    decision.rule
                );
                waiting.retain(|w| w != interaction);
                assigned.push((*interaction, agent.clone()));
            }
        }
    }

    let (open, waiting_now) = engine.read(|r| (r.open_count(), r.waiting_count())).await?;
    println!("{open} interaction(s) open (wrap-ups and earlier runs), {waiting_now} waiting");

    engine.shutdown().await;
    let (counts, last_seq) = follower.await?;
    println!("subscriber saw events up to seq {last_seq}: {counts:?}");
    if !waiting.is_empty() {
        println!("still waiting: {waiting:?}");
    }
    Ok(())
}
