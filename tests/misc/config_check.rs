//! The demo configuration and `guichet check-config`, run as a real process.

use std::path::Path;
use std::process::Command;

use guichet::config::{Config, ConfigError};
use guichet::core::{Command as RouterCommand, Router, Timestamp};

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/guichet.toml");

#[test]
fn the_demo_configuration_seeds_a_router() {
    let config = Config::load(Path::new(DEMO)).expect("demo config is valid");
    let mut router = Router::new();
    for command in config.seed_commands() {
        router.handle(Timestamp(0), command).expect("seed command");
    }
    assert_eq!(router.queues().len(), 3);
    assert_eq!(router.agents().len(), 5);
    router
        .handle(
            Timestamp(0),
            RouterCommand::Login {
                agent: "amelie".into(),
            },
        )
        .expect("login");
}

#[test]
fn a_syntax_error_names_the_line_and_column() {
    let text = "[[queues]]\nid = \"x\"\nstrategy = \"fastest\"\n";
    let err = Config::from_toml(text, Path::new("q.toml")).unwrap_err();
    match err {
        ConfigError::Parse {
            line,
            column,
            message,
            ..
        } => {
            assert_eq!((line, column), (3, 12));
            assert!(message.contains("most_competent"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn an_invalid_queue_names_the_queue() {
    let text = "[[queues]]\nid = \"tax\"\nrequirements = [{ skill = \"tax\", min_level = 9 }]\n";
    let config = Config::from_toml(text, Path::new("q.toml")).unwrap();
    let err = config
        .validate(Path::new("q.toml"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "q.toml: queue tax: skill tax: level 9 is outside 1..=5"
    );
}

#[test]
fn queues_may_refer_to_each_other_in_any_order() {
    let text = r#"
[[queues]]
id = "a"
overflow = { after_secs = 60, action = "queue", queue = "b" }
[[queues]]
id = "b"
escalation = [{ after_secs = 30, action = "widen_to", queue = "a" }]
"#;
    let config = Config::from_toml(text, Path::new("q.toml")).unwrap();
    config.validate(Path::new("q.toml")).expect("valid");
}

#[test]
fn duplicate_ids_are_refused() {
    let text = "[[agents]]\nid = \"x\"\n[[agents]]\nid = \"x\"\n";
    let config = Config::from_toml(text, Path::new("a.toml")).unwrap();
    let err = config
        .validate(Path::new("a.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("agent x: defined twice"), "{err}");
}

#[test]
fn check_config_command_exits_zero_on_the_demo_and_one_with_a_precise_error() {
    let bin = env!("CARGO_BIN_EXE_guichet");
    let ok = Command::new(bin)
        .args(["check-config", DEMO])
        .output()
        .unwrap();
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("3 queue(s), 5 agent(s)"));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[agents]]\nid = \"x\"\ncapacity = { voice = 1, fax = 2 }\n",
    )
    .unwrap();
    let out = Command::new(bin)
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml:3:"), "{stderr}");
    assert!(stderr.contains("unknown field `fax`"), "{stderr}");
}

#[test]
fn chat_settings_are_checked() {
    let demo = Config::load(Path::new(DEMO)).expect("demo config");
    assert_eq!(demo.chat.grace_secs, 30);
    assert_eq!(
        demo.chat.topics.get("logement").map(String::as_str),
        Some("benefits")
    );
    for (text, words) in [
        ("[chat]\nmax_frame_bytes = 10\n", "max_frame_bytes"),
        ("[chat]\ngrace_secs = 100000\n", "grace_secs"),
        (
            "[chat]\nallowed_origins = [\"example.org\"]\n",
            "allowed_origins",
        ),
        ("[chat]\ndefault_language = \"de\"\n", "default_language"),
    ] {
        let config = Config::from_toml(text, Path::new("c.toml")).expect("parses");
        let err = config
            .validate(Path::new("c.toml"))
            .expect_err(text)
            .to_string();
        assert!(err.contains("[chat]") && err.contains(words), "{err}");
    }
    let err =
        Config::from_toml("[chat]\ngrace = 3\n", Path::new("c.toml")).expect_err("unknown key");
    assert!(err.to_string().contains("grace"), "{err}");
}

#[test]
fn a_calendar_without_working_days_is_refused() {
    let text = "[calendar]\nworking_days = []\n";
    let config = Config::from_toml(text, Path::new("c.toml")).unwrap();
    let err = config
        .validate(Path::new("c.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[calendar]") && err.contains("working_days"),
        "{err}"
    );
    let text = "[calendar]\nworking_days = [\"mon\", \"funday\"]\n";
    let err = Config::from_toml(text, Path::new("c.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown day \"funday\""), "{err}");
}

#[test]
fn check_config_reports_every_reference_problem_at_once_with_where_it_is() {
    let bin = env!("CARGO_BIN_EXE_guichet");
    let dir = tempfile::tempdir().unwrap();
    let demo = std::fs::read_to_string(DEMO).unwrap();
    // The demo, with its tree sending tax calls to a queue that does not exist, a number bound
    // to an unknown tree, a tree file that is missing, and a chat topic naming no queue.
    let tree = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/ivr/demo_tree.json"),
    )
    .unwrap()
    .replace(r#""queue": "tax""#, r#""queue": "taxes""#);
    std::fs::create_dir_all(dir.path().join("ivr")).unwrap();
    std::fs::write(dir.path().join("ivr/demo_tree.json"), tree).unwrap();
    let text = demo
        .replace(
            "topics = { logement = \"benefits\", impots = \"tax\", autre = \"general\" }",
            "topics = { logement = \"benefits\", impots = \"impots\", autre = \"general\" }",
        )
        .replace(
            "[voice.hold]",
            "[[voice.trees]]\nfile = \"ivr/missing.json\"\n\n[[voice.numbers]]\nnumber = \"+33 1 99 99 99 99\"\ntree = \"accueil\"\n\n[voice.hold]",
        );
    let file = dir.path().join("guichet.toml");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(bin)
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("4 problems:"), "{stderr}");
    for expected in [
        "[[voice.trees]] #1 (ivr/demo_tree.json), tree `accueil-service-public`: node `queue_tax`: `queue` names queue `taxes`, which does not exist",
        "[[voice.trees]] #2 (ivr/missing.json): cannot read the tree file",
        "[[voice.numbers]] #2 (+33 1 99 99 99 99): names tree `accueil`, which no [[voice.trees]] file defines",
        "[chat] topics.impots: names queue `impots`, which this file does not define",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
    // The same file is refused by the server at start, with the same list.
    let data = dir.path().join("data");
    let out = Command::new(bin)
        .arg("serve")
        .arg("--config")
        .arg(&file)
        .arg("--data-dir")
        .arg(&data)
        .args([
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--smtp-addr",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("4 problems:"), "{stderr}");
}

#[test]
fn settings_queue_and_agent_problems_are_all_listed() {
    let text = "[server]\ngrpc_addr = \"nowhere\"\n\n[[queues]]\nid = \"tax\"\nrequirements = [{ skill = \"tax\", min_level = 9 }]\n\n[[agents]]\nid = \"x\"\n[[agents]]\nid = \"x\"\n";
    let config = Config::from_toml(text, Path::new("m.toml")).unwrap();
    match config.validate(Path::new("m.toml")).unwrap_err() {
        ConfigError::Several { problems, .. } => {
            let whats: Vec<&str> = problems.iter().map(|(w, _)| w.as_str()).collect();
            assert_eq!(
                whats,
                ["[server] grpc_addr", "agent x", "queue tax"],
                "{problems:?}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn overrides(vars: &[(&str, &str)]) -> Vec<guichet::config::env::Override> {
    guichet::config::env::overrides_from(
        vars.iter()
            .map(|(name, value)| (name.to_string(), value.to_string())),
    )
}

#[test]
fn environment_variables_override_keys_of_the_file() {
    let text = std::fs::read_to_string(DEMO).unwrap();
    let config = Config::from_toml_with(
        &text,
        Path::new(DEMO),
        &overrides(&[
            ("GUICHET_SERVER__HTTP_ADDR", "0.0.0.0:8081"),
            ("GUICHET_CHAT__GRACE_SECS", "45"),
            ("GUICHET_EMAIL__INBOUND__LISTEN", "0.0.0.0:25"),
            ("GUICHET_VOICE__HOLD__CALLBACK_KEY", "7"),
            ("GUICHET_VOICE__TWILIO__ACCOUNT_SID", "AC0123"),
            ("GUICHET_VOICE__TWILIO__AUTH_TOKEN", "123456"),
            ("GUICHET_TEST_SOMETHING", "not an override"),
        ]),
    )
    .expect("overridden demo config");
    assert_eq!(config.server.http_addr, "0.0.0.0:8081");
    assert_eq!(config.chat.grace_secs, 45);
    let inbound = config.email.inbound.as_ref().expect("[email.inbound]");
    assert_eq!(inbound.listen, "0.0.0.0:25");
    assert_eq!(config.voice.hold.callback_key, "7");
    // A number-looking secret on a key the file does not set is still a string.
    let twilio = config
        .voice
        .twilio
        .as_ref()
        .expect("[voice.twilio] from the environment");
    assert_eq!(twilio.auth_token, "123456");
    // Everything else is the file's.
    assert_eq!(config.queues.len(), 3);
    assert_eq!(config.chat.default_queue, "general");
}

#[test]
fn a_wrong_override_names_its_variable_and_not_its_value() {
    let text = std::fs::read_to_string(DEMO).unwrap();
    for (name, value) in [
        ("GUICHET_SERVER__HTTP_ADRESS", "secret-value-1"),
        ("GUICHET_CHAT__GRACE_SECS", "secret-value-2"),
        ("GUICHET_QUEUES__ID", "secret-value-3"),
        ("GUICHET_CALENDAR__WORKING_DAYS", "secret-value-4"),
    ] {
        let err = Config::from_toml_with(&text, Path::new(DEMO), &overrides(&[(name, value)]))
            .expect_err(name);
        let message = err.to_string();
        assert!(message.contains(name), "{message}");
        assert!(!message.contains("secret-value"), "{message}");
    }
}

#[test]
fn check_config_applies_the_environment_too() {
    let bin = env!("CARGO_BIN_EXE_guichet");
    let out = Command::new(bin)
        .arg("check-config")
        .arg(DEMO)
        .env("GUICHET_CHAT__MAX_FRAME_BYTES", "10")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("max_frame_bytes"), "{stderr}");
    let ok = Command::new(bin)
        .arg("check-config")
        .arg(DEMO)
        .env("GUICHET_CHAT__GRACE_SECS", "40")
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn trusted_proxies_must_be_addresses_or_ranges() {
    let ok = "[limits]\nmax_per_address = 200\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n";
    let config = Config::from_toml(ok, Path::new("c.toml")).expect("parses");
    config.validate(Path::new("c.toml")).expect("valid");
    let many: Vec<String> = (0..65).map(|i| format!("\"10.0.{i}.1\"")).collect();
    for (text, words) in [
        (
            "[limits]\ntrusted_proxies = [\"10.0.0.1\", \"proxy.internal.example\"]\n".to_string(),
            "entry 2",
        ),
        (
            "[limits]\ntrusted_proxies = [\"10.0.0.0/40\"]\n".to_string(),
            "entry 1",
        ),
        (
            format!("[limits]\ntrusted_proxies = [{}]\n", many.join(",")),
            "at most 64",
        ),
    ] {
        let config = Config::from_toml(&text, Path::new("c.toml")).expect("parses");
        let err = config
            .validate(Path::new("c.toml"))
            .expect_err(&text)
            .to_string();
        assert!(
            err.contains("[limits] trusted_proxies") && err.contains(words),
            "{err}"
        );
        assert!(!err.contains("proxy.internal"), "not echoed: {err}");
    }
}
