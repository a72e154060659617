//! Validation rules: a valid tree passes; each kind of problem is reported at its node.

use crate::ivr_common;

use ivr_common::{text, tree};
use serde_json::{json, Value};

use guichet::ivr::model::TimeRangeError;
use guichet::ivr::validate::{MAX_NODES, MAX_PROMPT_CHARS};
use guichet::ivr::{IvrTree, KnownQueues, Node, NodeId, Problem, ValidationErrors};

/// A small valid tree: menu -> queue, failing to a hang-up.
fn base() -> Value {
    json!({
        "name": "test",
        "languages": ["fr-FR", "en-GB"],
        "default_language": "fr-FR",
        "timezone": "Europe/Paris",
        "entry": "menu",
        "nodes": {
            "menu": {"type": "menu", "prompt": text("Tapez 1", "Press 1"),
                     "options": {"1": "queue"}, "on_fail": "bye"},
            "queue": {"type": "queue", "queue": "general"},
            "bye": {"type": "hangup", "prompt": text("Au revoir", "Goodbye")}
        }
    })
}

fn errors(value: Value) -> ValidationErrors {
    tree(value)
        .validate()
        .expect_err("the tree should be rejected")
}

fn at<'a>(errs: &'a ValidationErrors, node: &'a str) -> Vec<&'a Problem> {
    errs.for_node(node).collect()
}

fn tree_level(errs: &ValidationErrors) -> Vec<&Problem> {
    errs.iter()
        .filter(|e| e.node.is_none())
        .map(|e| &e.reason)
        .collect()
}

#[test]
fn valid_tree_passes() {
    assert_eq!(tree(base()).validate(), Ok(()));
}

#[test]
fn entry_must_exist() {
    let mut v = base();
    v["entry"] = json!("nowhere");
    let errs = errors(v);
    assert!(tree_level(&errs)
        .iter()
        .any(|p| matches!(p, Problem::MissingEntry { entry } if entry.as_str() == "nowhere")));
    let shown = errs.to_string();
    assert!(
        shown.contains("entry node `nowhere` does not exist"),
        "{shown}"
    );
}

#[test]
fn every_target_must_exist() {
    let mut v = base();
    v["nodes"]["menu"]["options"]["2"] = json!("missing");
    let errs = errors(v);
    assert!(at(&errs, "menu").iter().any(|p| matches!(p,
        Problem::UnknownTarget { field, target } if field == "options.2" && target.as_str() == "missing")));
    // The missing node is reported once, not as a dead end upstream.
    assert!(!at(&errs, "menu")
        .iter()
        .any(|p| matches!(p, Problem::DeadEnd)));
    let shown = errs.to_string();
    assert!(
        shown.contains("node `menu`: `options.2` points to node `missing`, which does not exist"),
        "{shown}"
    );
}

#[test]
fn an_unreachable_node_is_a_warning_not_an_error() {
    let mut v = base();
    v["nodes"]["orphan"] = json!({"type": "queue", "queue": "tax"});
    let t = tree(v);
    assert_eq!(
        t.validate(),
        Ok(()),
        "a supervisor can cut a branch off quickly"
    );
    let checked = t.check(None);
    assert!(checked.errors.is_empty());
    assert_eq!(checked.warnings.len(), 1);
    assert_eq!(
        checked.warnings[0].node.as_ref().map(|n| n.as_str()),
        Some("orphan")
    );
    assert_eq!(checked.warnings[0].reason, Problem::Unreachable);
    assert!(checked.warnings[0]
        .to_string()
        .contains("node `orphan`: the node cannot be reached"));
}

#[test]
fn queues_named_by_a_tree_must_exist_and_take_calls() {
    let mut v = base();
    v["nodes"]["queue"] = json!({"type": "queue", "queue": "taxes"});
    v["nodes"]["vm"] = json!({"type": "voicemail", "queue": "mail_only",
                              "prompt": text("Message", "Message")});
    v["nodes"]["menu"]["options"]["2"] = json!("vm");
    let known = KnownQueues::new([
        ("general".to_owned(), true),
        ("mail_only".to_owned(), false),
    ]);
    // Without the router's queues the tree is valid; with them it is refused at both nodes.
    assert_eq!(tree(v.clone()).validate(), Ok(()));
    let errs = tree(v).validate_with(&known).expect_err("unknown queue");
    assert_eq!(
        at(&errs, "queue"),
        vec![&Problem::UnknownQueue {
            field: "queue".into(),
            queue: "taxes".into()
        }]
    );
    assert!(matches!(
        at(&errs, "vm")[..],
        [Problem::QueueWithoutVoice { .. }]
    ));
    let shown = errs.to_string();
    assert!(
        shown.contains("node `queue`: `queue` names queue `taxes`, which does not exist"),
        "{shown}"
    );
    assert_eq!(tree(base()).validate_with(&known), Ok(Vec::new()));
}

#[test]
fn every_node_must_reach_a_terminal() {
    let mut v = base();
    // Two menus sending the caller back and forth with no way out: input is taken, so it is
    // not an input-less loop, but nothing ever ends the call.
    v["nodes"]["menu"]["options"]["2"] = json!("trap_a");
    v["nodes"]["trap_a"] = json!({"type": "menu", "prompt": text("A", "A"),
                                   "options": {"1": "trap_b"}, "on_fail": "trap_b"});
    v["nodes"]["trap_b"] = json!({"type": "menu", "prompt": text("B", "B"),
                                   "options": {"1": "trap_a"}, "on_fail": "trap_a"});
    let errs = errors(v);
    assert_eq!(at(&errs, "trap_a"), vec![&Problem::DeadEnd]);
    assert_eq!(at(&errs, "trap_b"), vec![&Problem::DeadEnd]);
    assert!(at(&errs, "menu").is_empty());
}

#[test]
fn loop_without_input_is_rejected() {
    let mut v = base();
    v["nodes"]["menu"]["options"]["2"] = json!("say_a");
    v["nodes"]["say_a"] = json!({"type": "say", "prompt": text("A", "A"), "next": "check"});
    v["nodes"]["check"] = json!({"type": "condition",
        "rules": [{"when": {"attribute_exists": "x"}, "goto": "queue"}],
        "otherwise": "say_a"});
    let errs = errors(v);
    let problems = at(&errs, "check");
    assert_eq!(
        problems,
        vec![&Problem::InputlessLoop {
            nodes: vec![NodeId::from("check"), NodeId::from("say_a")]
        }]
    );
    assert!(errs
        .to_string()
        .contains("loop without caller input through `check` -> `say_a`"));
}

#[test]
fn self_loop_without_input_is_rejected() {
    let mut v = base();
    v["nodes"]["menu"]["options"]["2"] = json!("spin");
    v["nodes"]["spin"] = json!({"type": "condition",
        "rules": [{"when": {"language_equals": "en-GB"}, "goto": "queue"}],
        "otherwise": "spin"});
    let errs = errors(v);
    assert!(at(&errs, "spin")
        .iter()
        .any(|p| matches!(p, Problem::InputlessLoop { nodes } if nodes.len() == 1)));
}

#[test]
fn loop_through_a_menu_is_allowed() {
    let mut v = base();
    v["nodes"]["menu"]["options"]["9"] = json!("again");
    v["nodes"]["again"] = json!({"type": "say", "prompt": text("Encore", "Again"), "next": "menu"});
    v["nodes"]["menu"]["options"]["*"] = json!("menu");
    assert_eq!(tree(v).validate(), Ok(()));
}

#[test]
fn prompts_need_every_language() {
    let mut v = base();
    v["nodes"]["menu"]["prompt"] = json!({"text": {"fr-FR": "Tapez 1"}});
    v["nodes"]["bye"]["prompt"] = json!({"text": {"fr-FR": "Au revoir", "en-GB": "  "}});
    let errs = errors(v);
    assert!(at(&errs, "menu").iter().any(|p| matches!(p,
        Problem::MissingPromptLanguage { field, language } if field == "prompt" && language == "en-GB")));
    assert!(at(&errs, "bye").iter().any(|p| matches!(p,
        Problem::EmptyPrompt { language, .. } if language == "en-GB")));
}

#[test]
fn prompt_languages_must_be_configured() {
    let mut v = base();
    v["nodes"]["menu"]["prompt"]["text"]["de-DE"] = json!("Drücken Sie 1");
    let errs = errors(v);
    assert!(at(&errs, "menu").iter().any(|p| matches!(p,
        Problem::UnknownPromptLanguage { language, .. } if language == "de-DE")));
}

#[test]
fn audio_prompts_need_every_language_or_a_single_default() {
    let mut v = base();
    v["nodes"]["menu"]["prompt"] =
        json!({"audio": {"fr-FR": "https://media.example.org/menu.wav"}});
    assert_eq!(
        tree(v.clone()).validate(),
        Ok(()),
        "a single default URL is enough"
    );

    v["nodes"]["menu"]["prompt"] =
        json!({"audio": {"en-GB": "https://media.example.org/menu.wav"}});
    let errs = errors(v.clone());
    assert!(at(&errs, "menu").iter().any(|p| matches!(p,
        Problem::MissingPromptLanguage { language, .. } if language == "fr-FR")));

    v["nodes"]["menu"]["prompt"] = json!({"audio": {
        "fr-FR": "https://media.example.org/fr.wav", "en-GB": "ftp://media.example.org/en.wav"}});
    let errs = errors(v);
    assert!(at(&errs, "menu").iter().any(|p| matches!(p,
        Problem::InvalidUrl { field, .. } if field == "prompt.en-GB")));
}

#[test]
fn prompt_length_is_bounded() {
    let mut v = base();
    let long = "a".repeat(MAX_PROMPT_CHARS + 1);
    v["nodes"]["menu"]["prompt"] = text(&long, "Press 1");
    let errs = errors(v);
    assert!(at(&errs, "menu").iter().any(|p| matches!(p,
        Problem::PromptTooLong { language, len, .. } if language == "fr-FR" && *len == MAX_PROMPT_CHARS + 1)));
}

#[test]
fn node_count_is_bounded() {
    let mut v = base();
    for i in 0..MAX_NODES {
        v["nodes"][format!("q{i}")] = json!({"type": "queue", "queue": "general"});
    }
    let errs = errors(v);
    assert_eq!(
        tree_level(&errs),
        vec![&Problem::TooManyNodes {
            count: MAX_NODES + 3,
            max: MAX_NODES
        }]
    );
    assert_eq!(errs.len(), 1, "no other check runs on an oversized tree");
}

#[test]
fn time_zone_must_be_iana() {
    let mut v = base();
    v["timezone"] = json!("Paris/France");
    let errs = errors(v);
    assert!(tree_level(&errs).iter().any(|p| matches!(p,
        Problem::InvalidTimezone { timezone } if timezone == "Paris/France")));
}

#[test]
fn time_ranges_must_be_valid() {
    let mut v = base();
    v["entry"] = json!("hours");
    v["nodes"]["hours"] = json!({"type": "business_hours",
        "schedule": {"mon": ["08:30-17:30", "18:00-09:00"], "tue": ["8h30-12h"], "wed": ["08:00-25:00"],
                     "thu": ["00:00-24:00"]},
        "open": "menu", "closed": "bye"});
    let errs = errors(v);
    let problems = at(&errs, "hours");
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems.iter().any(|p| matches!(p,
        Problem::InvalidTimeRange { day, error: TimeRangeError::NotIncreasing, .. } if day == "mon")));
    assert!(problems.iter().any(|p| matches!(p,
        Problem::InvalidTimeRange { day, error: TimeRangeError::Malformed, .. } if day == "tue")));
    assert!(problems.iter().any(|p| matches!(p,
        Problem::InvalidTimeRange { day, error: TimeRangeError::OutOfRange, .. } if day == "wed")));
}

#[test]
fn skill_levels_are_one_to_five() {
    let mut v = base();
    v["nodes"]["menu"]["options"]["1"] = json!("need");
    v["nodes"]["need"] =
        json!({"type": "set_requirement", "skill": "tax:income", "min_level": 6, "next": "queue"});
    let errs = errors(v.clone());
    assert_eq!(
        at(&errs, "need"),
        vec![&Problem::SkillLevelOutOfRange {
            skill: "tax:income".into(),
            level: 6
        }]
    );
    v["nodes"]["need"]["min_level"] = json!(0);
    assert!(!errors(v.clone()).is_empty());
    v["nodes"]["need"]["min_level"] = json!(5);
    assert_eq!(tree(v).validate(), Ok(()));
}

#[test]
fn menu_keys_are_single_dtmf_keys() {
    let mut v = base();
    v["nodes"]["menu"]["options"]["12"] = json!("queue");
    v["nodes"]["menu"]["options"]["a"] = json!("queue");
    v["nodes"]["menu"]["options"]["#"] = json!("queue");
    let errs = errors(v);
    let keys: Vec<&str> = at(&errs, "menu")
        .iter()
        .filter_map(|p| match p {
            Problem::InvalidKey { key, .. } => Some(key.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(keys, vec!["12", "a"]);
}

#[test]
fn menu_needs_options() {
    let mut v = base();
    v["nodes"]["menu"]["options"] = json!({});
    let errs = errors(v);
    assert!(at(&errs, "menu").contains(&&Problem::EmptyMenu));
}

#[test]
fn languages_must_be_listed_and_include_the_default() {
    let mut v = base();
    v["languages"] = json!([]);
    let errs = errors(v);
    assert!(tree_level(&errs).contains(&&Problem::NoLanguages));

    let mut v = base();
    v["default_language"] = json!("de-DE");
    let errs = errors(v);
    assert!(tree_level(&errs).iter().any(|p| matches!(p,
        Problem::DefaultLanguageNotListed { language } if language == "de-DE")));

    let mut v = base();
    v["languages"] = json!(["fr-FR", "en-GB", "fr-FR"]);
    let errs = errors(v);
    assert!(tree_level(&errs)
        .iter()
        .any(|p| matches!(p, Problem::DuplicateLanguage { .. })));
}

#[test]
fn set_language_must_name_a_configured_language() {
    let mut v = base();
    v["nodes"]["menu"]["options"]["1"] = json!("lang");
    v["nodes"]["lang"] = json!({"type": "set_language", "language": "es-ES", "next": "queue"});
    let errs = errors(v);
    assert!(at(&errs, "lang").iter().any(|p| matches!(p,
        Problem::UnknownLanguage { language, .. } if language == "es-ES")));
}

#[test]
fn names_and_ranges_are_checked() {
    let mut v = base();
    v["nodes"]["queue"]["queue"] = json!("");
    v["nodes"]["menu"]["timeout_secs"] = json!(0);
    v["nodes"]["menu"]["options"]["2"] = json!("xfer");
    v["nodes"]["xfer"] = json!({"type": "transfer", "number": "call me maybe"});
    let errs = errors(v);
    assert!(at(&errs, "queue")
        .iter()
        .any(|p| matches!(p, Problem::EmptyField { field } if field == "queue")));
    assert!(at(&errs, "menu").iter().any(|p| matches!(p,
        Problem::OutOfRange { field, value: 0, .. } if field == "timeout_secs")));
    assert_eq!(at(&errs, "xfer"), vec![&Problem::InvalidTransferNumber]);
}

#[test]
fn all_problems_are_collected_at_once() {
    let mut v = base();
    v["timezone"] = json!("Mars/Olympus");
    v["nodes"]["menu"]["options"]["2"] = json!("missing");
    v["nodes"]["orphan"] = json!({"type": "hangup"});
    v["nodes"]["queue"]["queue"] = json!("bad name!");
    v["nodes"]["menu"]["timeout_secs"] = json!(0);
    let errs = errors(v);
    // The unreachable `orphan` is only a warning.
    assert_eq!(errs.len(), 4, "{errs}");
    // Tree-level problems come first, then nodes in id order.
    assert_eq!(errs.errors[0].node, None);
    let shown = errs.to_string();
    assert!(
        shown.starts_with("IVR tree `test` has 4 problems:"),
        "{shown}"
    );
    assert!(
        shown.contains("- tree: time zone `Mars/Olympus` is unknown"),
        "{shown}"
    );
}

#[test]
fn unknown_fields_are_rejected_when_parsing() {
    let mut v = base();
    v["nodes"]["queue"]["qeueu"] = json!("typo");
    assert!(serde_json::from_value::<IvrTree>(v).is_err());
    let mut v = base();
    v["nodes"]["queue"]["type"] = json!("enqueue");
    assert!(serde_json::from_value::<IvrTree>(v).is_err());
}

#[test]
fn defaults_apply_when_fields_are_omitted() {
    let t = tree(base());
    match t.node("menu") {
        Some(Node::Menu(m)) => {
            assert_eq!(m.timeout_secs, 5);
            assert_eq!(m.max_retries, 2);
            assert!(m.on_no_input.is_none());
        }
        other => panic!("expected a menu, got {other:?}"),
    }
    assert_eq!(t.version, 0);
}
