//! Embeds the routing core: loads the demo configuration, logs agents in, routes a few
//! interactions and prints each decision with its explanation.
//!
//! Run with `cargo run --example route_demo`.

use std::path::Path;

use guichet::config::Config;
use guichet::core::{
    Channel, Command, EventKind, InteractionId, InteractionSpec, Requirement, Router, Timestamp,
};

fn main() -> anyhow::Result<()> {
    let config = Config::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/guichet.toml"
    )))?;
    let mut router = Router::new();
    let mut now = Timestamp::from_secs(1_767_254_400); // 2026-01-01 08:00 UTC
    for command in config.seed_commands() {
        router.handle(now, command)?;
    }
    for agent in &config.agents {
        router.handle(
            now,
            Command::Login {
                agent: agent.id.clone(),
            },
        )?;
    }

    let requests = [
        (Channel::Voice, "benefits", Some("lang:en")),
        (Channel::Voice, "tax", None),
        (Channel::Chat, "benefits", None),
        (Channel::Email, "general", None),
        (Channel::Voice, "benefits", None),
        (Channel::Voice, "benefits", None),
    ];
    for (n, (channel, queue, language)) in requests.into_iter().enumerate() {
        now = now.plus_secs(5);
        let mut spec =
            InteractionSpec::new(InteractionId::from_u128(n as u128 + 1), channel, queue);
        if let Some(lang) = language {
            spec.requirements.push(Requirement::new(lang, 2));
        }
        let id = spec.id;
        let events = router.handle(now, Command::CreateInteraction { spec })?;
        let offered = events.iter().find_map(|e| match &e.kind {
            EventKind::InteractionOffered { agent, .. } => Some(agent.clone()),
            _ => None,
        });
        let explanation = router.explain(&id).map(|e| e.summary).unwrap_or_default();
        match offered {
            Some(agent) => {
                println!("{channel:>5} in {queue:<8} -> {agent:<6} | {explanation}");
                router.handle(
                    now,
                    Command::Accept {
                        interaction: id,
                        agent,
                    },
                )?;
            }
            None => println!("{channel:>5} in {queue:<8} -> waits  | {explanation}"),
        }
    }
    println!(
        "\n{} open, {} waiting; next timer at {:?}",
        router.open_count(),
        router.waiting_count(),
        router.next_deadline()
    );
    Ok(())
}
