//! Fair routing through the gRPC API against the real server: identical agents share the work
//! evenly under `longest_idle` and `most_competent` (calls and chats, no wrap-up), and an
//! interaction declined by the only agent able to take it is offered to that agent again after
//! the queue's `reoffer_after_secs`, with no other command.

use crate::api_common;

use std::collections::BTreeMap;
use std::time::Duration;

use api_common::{eventually, spec, Authed, Workspace};
use guichet::api::proto as pb;
use pb::agent_desktop_client::AgentDesktopClient;
use pb::interactions_client::InteractionsClient;

const AGENTS: [&str; 4] = ["fair1", "fair2", "fair3", "fair4"];

/// Three queues served by four identical agents (and by nobody else), without wrap-up; and a
/// queue only `fair1` serves, re-offering after 2 s.
const EXTRA: &str = r#"
[[queues]]
id = "fair_idle"
channels = ["voice"]
requirements = [{ skill = "fair", min_level = 1 }]
strategy = "longest_idle"
wrap_up_secs = 0

[[queues]]
id = "fair_competent"
channels = ["voice"]
requirements = [{ skill = "fair", min_level = 1 }]
strategy = "most_competent"
wrap_up_secs = 0

[[queues]]
id = "fair_chat"
channels = ["chat"]
requirements = [{ skill = "fair", min_level = 1 }]
strategy = "longest_idle"
wrap_up_secs = 0

[[queues]]
id = "fair_solo"
channels = ["voice"]
requirements = [{ skill = "fair_solo", min_level = 1 }]
wrap_up_secs = 0
offer_timeout_secs = 60
reoffer_after_secs = 2
max_misses = 0

[[agents]]
id = "fair1"
skills = { fair = 3, fair_solo = 2 }
capacity = { voice = 1, email = 0, sms = 0, chat = 3 }

[[agents]]
id = "fair2"
skills = { fair = 3 }
capacity = { voice = 1, email = 0, sms = 0, chat = 3 }

[[agents]]
id = "fair3"
skills = { fair = 3 }
capacity = { voice = 1, email = 0, sms = 0, chat = 3 }

[[agents]]
id = "fair4"
skills = { fair = 3 }
capacity = { voice = 1, email = 0, sms = 0, chat = 3 }
"#;

/// Each agent logged in, one after the other (as people arrive in the morning).
async fn log_in(
    ws: &Workspace,
    server: &api_common::Server,
) -> BTreeMap<String, AgentDesktopClient<Authed>> {
    let mut desks = BTreeMap::new();
    for id in AGENTS {
        let (token, _) = ws.token("agent", Some(id));
        let mut desk = server.desktop(&token);
        desk.login(pb::LoginRequest::default())
            .await
            .expect("Login");
        desks.insert(id.to_owned(), desk);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    desks
}

/// Creates `n` interactions one at a time in `queue`; each is accepted and completed by the agent
/// it is offered to before the next arrives. Returns how many each agent handled.
async fn sequential(
    int: &mut InteractionsClient<Authed>,
    desks: &mut BTreeMap<String, AgentDesktopClient<Authed>>,
    queue: &str,
    channel: pb::Channel,
    n: usize,
) -> BTreeMap<String, usize> {
    let mut handled: BTreeMap<String, usize> = AGENTS.iter().map(|a| (a.to_string(), 0)).collect();
    for i in 0..n {
        let created = int
            .create(spec(
                queue,
                channel,
                &format!("c-{queue}-{i}"),
                &format!("{queue}-{i}"),
            ))
            .await
            .expect("Create")
            .into_inner()
            .interaction
            .expect("interaction");
        assert_eq!(created.phase, pb::Phase::Offered as i32, "{created:?}");
        let agent = created.agent.clone();
        let desk = desks
            .get_mut(&agent)
            .unwrap_or_else(|| panic!("offered to {agent}, not one of the four"));
        desk.accept(pb::InteractionAction {
            agent_id: agent.clone(),
            interaction_id: created.id.clone(),
        })
        .await
        .expect("Accept");
        desk.complete(pb::CompleteRequest {
            agent_id: agent.clone(),
            interaction_id: created.id.clone(),
            wrap_up_code: "answered".into(),
            notes: String::new(),
        })
        .await
        .expect("Complete");
        *handled.entry(agent).or_default() += 1;
    }
    handled
}

fn assert_even(handled: &BTreeMap<String, usize>, what: &str) {
    for (agent, n) in handled {
        assert!(
            (8..=12).contains(n),
            "{what}: {agent} handled {n} of 40, not 10 ± 2: {handled:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_agents_share_forty_sequential_calls_and_chats_evenly() {
    let ws = Workspace::new();
    let server = ws.server().with(EXTRA).start();
    let (int_token, _) = ws.token("integrator", None);
    let mut int = server.interactions(&int_token);
    let mut desks = log_in(&ws, &server).await;

    let idle = sequential(&mut int, &mut desks, "fair_idle", pb::Channel::Voice, 40).await;
    assert_even(&idle, "longest_idle, calls");
    let competent = sequential(
        &mut int,
        &mut desks,
        "fair_competent",
        pb::Channel::Voice,
        40,
    )
    .await;
    assert_even(&competent, "most_competent among equals, calls");
    let chats = sequential(&mut int, &mut desks, "fair_chat", pb::Channel::Chat, 40).await;
    assert_even(&chats, "longest_idle, chats with capacity 3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_call_is_offered_again_to_the_only_agent_after_the_delay() {
    let ws = Workspace::new();
    let server = ws.server().with(EXTRA).start();
    let (int_token, _) = ws.token("integrator", None);
    let (sup_token, _) = ws.token("supervisor", None);
    let mut int = server.interactions(&int_token);
    let mut sup = server.supervisor(&sup_token);
    let (token, _) = ws.token("agent", Some("fair1"));
    let mut desk = server.desktop(&token);
    desk.login(pb::LoginRequest::default())
        .await
        .expect("Login");

    let created = int
        .create(spec("fair_solo", pb::Channel::Voice, "c-solo", "solo-1"))
        .await
        .expect("Create")
        .into_inner()
        .interaction
        .expect("interaction");
    assert_eq!(created.agent, "fair1", "{created:?}");
    let id = created.id.clone();
    for round in 0..2 {
        let before_decline = unix_ms();
        let declined = desk
            .decline(pb::InteractionAction {
                agent_id: "fair1".into(),
                interaction_id: id.clone(),
            })
            .await
            .expect("Decline")
            .into_inner();
        assert_eq!(declined.phase, pb::Phase::Waiting as i32, "{declined:?}");
        let why = sup
            .explain(pb::ExplainRequest {
                interaction_id: id.clone(),
            })
            .await
            .expect("Explain")
            .into_inner();
        assert_eq!(why.declined_by, vec!["fair1".to_owned()]);
        assert!(
            why.text.contains("declined by fair1") && why.text.contains("again after 2 s"),
            "{}",
            why.text
        );
        // No other command: the router's own timer offers it to fair1 again.
        let again = eventually(Duration::from_secs(20), "the call offered again", || {
            let mut int = int.clone();
            let id = id.clone();
            async move {
                let view = int
                    .get(pb::GetRequest { interaction_id: id })
                    .await
                    .expect("Get")
                    .into_inner();
                (view.phase == pb::Phase::Offered as i32).then_some(view)
            }
        })
        .await;
        assert_eq!(again.agent, "fair1", "round {round}: {again:?}");
        // Offered again when its 60 s offer began: at least 2 s after the decline.
        let waited = again.offer_deadline_unix_ms - 60_000 - before_decline;
        assert!(
            (2_000..20_000).contains(&waited),
            "round {round}: offered again {waited} ms after the decline"
        );
    }
    let accepted = desk
        .accept(pb::InteractionAction {
            agent_id: "fair1".into(),
            interaction_id: id.clone(),
        })
        .await
        .expect("Accept")
        .into_inner();
    assert_eq!(accepted.phase, pb::Phase::Assigned as i32);
}

/// The machine's clock (the server's too) in Unix milliseconds.
fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
