//! The configuration file after the first start, and defaults that agree, against the real
//! binary: the server warns when the file and the database differ, `guichet apply` shows the
//! differences (dry run) and applies them live, removing nothing without `--prune`; a queue
//! made over gRPC equals the same queue from the file, and the proto comments state the
//! defaults the server uses; a token for an unknown agent is refused; ForceAssign to an offline
//! agent is refused, to a paused one the interaction waits for that agent and Explain says so.

use crate::api_common;

use std::path::Path;
use std::process::{Command, Output};

use api_common::{config_with, logged_in_agent, spec, Workspace, GUICHET};
use guichet::api::proto as pb;
use guichet::config::Config;
use tonic::Code;

fn apply(ws: &Workspace, file: &Path, addr: std::net::SocketAddr, extra: &[&str]) -> Output {
    Command::new(GUICHET)
        .arg("apply")
        .arg(file)
        .arg("--grpc-addr")
        .arg(addr.to_string())
        .arg("--token-file")
        .arg(ws.data_dir().join("admin.token"))
        .args(extra)
        .output()
        .expect("run guichet apply")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_shows_the_differences_then_makes_them_live_and_removes_nothing_without_prune() {
    let ws = Workspace::new();
    let file = config_with(ws.path(), "");
    let server = ws.start_with_config(&file);
    // Right after seeding, the file and the server agree.
    let out = apply(&ws, &file, server.addr, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("already matches the file"),
        "{}",
        text(&out)
    );

    // The file now adds an agent, changes a queue's timeout and no longer lists david.
    let original = std::fs::read_to_string(&file).unwrap();
    let edited = original
        .replace(
            "id = \"tax\"\n",
            "id = \"tax\"\noffer_timeout_secs = 45\n",
        )
        .replace(
            "[[agents]]\nid = \"david\"",
            "[[agents]]\nid = \"zoe\"\nname = \"Zoé Petit\"\nskills = { general = 2 }\n\n[[agents]]\nid = \"david-removed\"",
        );
    assert_ne!(edited, original);
    // (david-removed is added, david is only in the database.)
    std::fs::write(&file, edited).unwrap();
    // And its IVR tree says something new.
    let tree_file = ws.path().join("ivr/demo_tree.json");
    let tree = std::fs::read_to_string(&tree_file).unwrap();
    let changed = tree.replacen("Bienvenue au service", "Bonjour et bienvenue au service", 1);
    assert_ne!(tree, changed);
    std::fs::write(&tree_file, changed).unwrap();

    let out = apply(&ws, &file, server.addr, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains("~ queue tax: offer_timeout_secs: 20 -> 45"),
        "{shown}"
    );
    assert!(shown.contains("+ agent zoe (new)"), "{shown}");
    assert!(!shown.contains("- agent david"), "{shown}");
    assert!(
        shown.contains("~ IVR tree accueil-service-public: the file differs from active version 1"),
        "{shown}"
    );
    assert!(shown.contains("dry run: nothing changed"), "{shown}");
    let admin = ws.admin_token();
    let mut sup = server.supervisor(&admin);
    let agents = sup
        .list_agents(pb::ListAgentsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .agents;
    assert!(!agents.iter().any(|a| a.agent.as_ref().unwrap().id == "zoe"));

    let out = apply(&ws, &file, server.addr, &["--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("change(s) applied"), "{}", text(&out));
    let agents = sup
        .list_agents(pb::ListAgentsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .agents;
    let ids: Vec<&str> = agents
        .iter()
        .map(|a| a.agent.as_ref().unwrap().id.as_str())
        .collect();
    assert!(ids.contains(&"zoe") && ids.contains(&"david"), "{ids:?}");
    let queues = sup
        .list_queues(pb::ListQueuesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .queues;
    let tax = queues.iter().find(|q| q.id == "tax").unwrap();
    assert_eq!(tax.offer_timeout_secs, 45);
    let versions = sup
        .list_ivr_versions(pb::ListIvrVersionsRequest {
            name: "accueil-service-public".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .versions;
    let last = versions.last().unwrap();
    assert_eq!((last.version, last.active), (2, true));
    assert!(last.comment.starts_with("guichet apply "), "{last:?}");
    assert_eq!(last.author, "first admin token (admin token)");
    // Live at once: an agent token for zoe is accepted now.
    ws.token("agent", Some("zoe"));

    // Applied: nothing left to do; the server started again with the file does not warn.
    let out = apply(&ws, &file, server.addr, &[]);
    assert!(
        text(&out).contains("already matches the file"),
        "{}",
        text(&out)
    );

    // With --prune, david goes.
    let out = apply(&ws, &file, server.addr, &["--prune"]);
    assert!(
        text(&out).contains("- agent david (not in the file)"),
        "{}",
        text(&out)
    );
    let out = apply(&ws, &file, server.addr, &["--prune", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    let agents = sup
        .list_agents(pb::ListAgentsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .agents;
    assert!(!agents
        .iter()
        .any(|a| a.agent.as_ref().unwrap().id == "david"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_warns_at_start_when_the_file_and_the_database_differ() {
    let ws = Workspace::new();
    let file = config_with(ws.path(), "");
    let mut server = ws.start_with_config(&file);
    assert!(
        !server.banner.iter().any(|l| l.starts_with("warning:")),
        "{:?}",
        server.banner
    );
    server.terminate();
    let edited = std::fs::read_to_string(&file)
        .unwrap()
        .replace("id = \"tax\"\n", "id = \"tax\"\noffer_timeout_secs = 45\n");
    std::fs::write(&file, edited).unwrap();
    let server = ws.start_with_config(&file);
    let warning = server
        .banner
        .iter()
        .find(|l| l.starts_with("warning:"))
        .unwrap_or_else(|| panic!("no warning in {:?}", server.banner));
    assert!(warning.contains("1 queue(s) or agent(s)"), "{warning}");
    assert!(warning.contains("guichet apply"), "{warning}");
    assert!(
        ws.log_text()
            .contains("~ queue tax: offer_timeout_secs: 20 -> 45"),
        "{}",
        ws.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_made_over_grpc_get_the_file_defaults_and_the_proto_says_them() {
    let ws = Workspace::new();
    let server = ws.start();
    let admin = ws.admin_token();
    let mut sup = server.supervisor(&admin);
    let made = sup
        .upsert_queue(pb::UpsertQueueRequest {
            queue: Some(pb::Queue {
                id: "bare".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("UpsertQueue")
        .into_inner();
    let listed = sup
        .list_queues(pb::ListQueuesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .queues
        .into_iter()
        .find(|q| q.id == "bare")
        .expect("listed");
    assert_eq!(made, listed);
    let from_file = Config::from_toml("[[queues]]\nid = \"bare\"\n", Path::new("f.toml"))
        .unwrap()
        .queues
        .remove(0);
    let over_grpc = guichet::api::convert::queue_config(&listed).unwrap();
    assert_eq!(over_grpc, from_file, "gRPC and file defaults agree");
    assert_eq!(over_grpc.max_misses, 3);
    assert!(over_grpc.public);

    let agent = sup
        .upsert_agent(pb::UpsertAgentRequest {
            agent: Some(pb::Agent {
                id: "bare-agent".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("UpsertAgent")
        .into_inner();
    let from_file = Config::from_toml("[[agents]]\nid = \"bare-agent\"\n", Path::new("f.toml"))
        .unwrap()
        .agents
        .remove(0);
    assert_eq!(
        guichet::api::convert::agent_config(agent.agent.as_ref().unwrap()).unwrap(),
        from_file
    );

    // The proto comments state these defaults.
    let common = include_str!("../../proto/guichet/v1/common.proto");
    let q = &from_file_queue();
    let cap = guichet::core::AgentConfig::new("x").capacity;
    for needle in [
        format!(
            "Absent: the default, voice {}, email {}, SMS {}, chat {}.",
            cap.voice, cap.email, cap.sms, cap.chat
        ),
        format!("(0: the default, {})", q.offer_timeout_secs),
        format!(
            "(absent: the\n  // default, {}; 0 never pauses)",
            q.max_misses
        ),
        format!("(absent: the default, {})", q.last_agent_bonus),
        format!(
            "voice {} s, email {} s (5 days), SMS {} s (4 h), chat {} s",
            q.sla_target_secs.voice,
            q.sla_target_secs.email,
            q.sla_target_secs.sms,
            q.sla_target_secs.chat
        ),
        "optional bool public = 19;".to_owned(),
        format!(
            "(time zone, default {};",
            guichet::core::WorkCalendar::default().time_zone.name()
        ),
    ] {
        assert!(
            common.contains(&needle),
            "common.proto does not say {needle:?}"
        );
    }
    let supervisor = include_str!("../../proto/guichet/v1/supervisor.proto");
    let tz = guichet::obs::IndicatorsConfig::default().time_zone;
    assert!(
        supervisor.contains(&format!(
            "[indicators] time zone,\n// {} by default)",
            tz.name()
        )),
        "supervisor.proto does not state the indicators' default time zone {tz}"
    );
}

fn from_file_queue() -> guichet::core::QueueConfig {
    Config::from_toml("[[queues]]\nid = \"q\"\n", Path::new("f.toml"))
        .unwrap()
        .queues
        .remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_name_existing_agents_and_force_assign_respects_their_state() {
    let ws = Workspace::new();
    let server = ws.start();
    let out = Command::new(GUICHET)
        .args(["token", "create", "--role", "agent", "--agent", "nobody"])
        .arg("--config")
        .arg(api_common::demo_config())
        .arg("--data-dir")
        .arg(ws.data_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("agent \"nobody\" does not exist") && stderr.contains("amelie"),
        "{stderr}"
    );

    let (sup_token, _) = ws.token("supervisor", None);
    let (int_token, _) = ws.token("integrator", None);
    let mut sup = server.supervisor(&sup_token);
    let mut int = server.interactions(&int_token);
    // Amelie logs in and pauses before the chat arrives: nobody can take it.
    let (mut desk, _offers) = logged_in_agent(&ws, &server, "amelie").await;
    desk.set_state(pb::SetStateRequest {
        agent_id: "amelie".into(),
        state: pb::agent_state::Kind::Paused as i32,
        pause_reason: "lunch".into(),
    })
    .await
    .expect("pause");
    let created = int
        .create(spec(
            "general",
            pb::Channel::Chat,
            "visitor-1",
            "ext-force-1",
        ))
        .await
        .expect("Create")
        .into_inner()
        .interaction
        .unwrap();

    // Offline: refused with the reason.
    let refused = sup
        .force_assign(pb::ForceAssignRequest {
            interaction_id: created.id.clone(),
            agent_id: "bruno".into(),
        })
        .await
        .expect_err("bruno is offline");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("bruno is offline"),
        "{}",
        refused.message()
    );

    // Paused: it waits for her alone, and Explain says so.
    sup.force_assign(pb::ForceAssignRequest {
        interaction_id: created.id.clone(),
        agent_id: "amelie".into(),
    })
    .await
    .expect("ForceAssign to a paused agent");
    let explained = sup
        .explain(pb::ExplainRequest {
            interaction_id: created.id.clone(),
        })
        .await
        .expect("Explain")
        .into_inner();
    assert!(
        explained.text.contains("waiting for agent amelie alone")
            && explained.text.contains("paused (lunch)"),
        "{}",
        explained.text
    );
}
