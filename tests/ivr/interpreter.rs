//! Interpreter: menu walks, retries, no input, conditions, collect, callback, defences.

use crate::ivr_common;

use std::collections::BTreeMap;
use std::sync::Arc;

use ivr_common::{gather, languages, now, outcome, said, text, tree};
use serde_json::{json, Value};

use guichet::ivr::interpreter::{MAX_STEPS_PER_TURN, MAX_TURNS_PER_CALL};
use guichet::ivr::{
    CallSession, Fault, Input, IvrTree, NodeId, Outcome, Prompt, Requirement, Step, Utterance,
};

/// Welcome, a language menu, then a topic menu leading to queues.
fn two_level() -> Value {
    json!({
        "name": "walk",
        "languages": ["fr-FR", "en-GB"],
        "default_language": "fr-FR",
        "timezone": "Europe/Paris",
        "entry": "welcome",
        "nodes": {
            "welcome": {"type": "say", "prompt": text("Bienvenue", "Welcome"), "next": "lang"},
            "lang": {"type": "menu", "prompt": text("Français 1, English 2", "English 2, français 1"),
                     "options": {"1": "set_fr", "2": "set_en"}, "on_fail": "set_fr"},
            "set_fr": {"type": "set_language", "language": "fr-FR", "next": "req_fr"},
            "req_fr": {"type": "set_requirement", "skill": "lang:fr", "min_level": 1, "next": "topics"},
            "set_en": {"type": "set_language", "language": "en-GB", "next": "req_en"},
            "req_en": {"type": "set_requirement", "skill": "lang:en", "min_level": 2, "next": "topics"},
            "topics": {"type": "menu", "prompt": text("Logement 1, impôts 2", "Housing 1, tax 2"),
                       "options": {"1": "housing", "2": "tax"},
                       "speech": {"logement": "housing", "housing": "housing",
                                  "impôt sur le revenu": "tax", "impôt": "housing"},
                       "invalid_prompt": text("Choix invalide", "Invalid choice"),
                       "max_retries": 2, "timeout_secs": 7, "on_fail": "operator"},
            "housing": {"type": "set_attribute", "key": "topic", "value": "housing", "next": "need_housing"},
            "need_housing": {"type": "set_requirement", "skill": "benefits:housing", "min_level": 3, "next": "urgent"},
            "urgent": {"type": "set_priority", "priority": 5, "next": "q_benefits"},
            "q_benefits": {"type": "queue", "queue": "benefits"},
            "tax": {"type": "set_requirement", "skill": "tax:income", "min_level": 2, "next": "q_tax"},
            "q_tax": {"type": "queue", "queue": "tax"},
            "operator": {"type": "queue", "queue": "general"}
        }
    })
}

fn start(value: Value, from: &str) -> (CallSession, Step) {
    let t: IvrTree = tree(value);
    CallSession::start(Arc::new(t), from, "+33 1 00 00 00 00", now())
}

fn digits(d: &str) -> Input {
    Input::Digits(d.to_owned())
}

fn req(skill: &str, level: u8) -> Requirement {
    Requirement::new(skill, level)
}

#[test]
fn two_level_menu_in_english_reaches_queue_with_context() {
    assert_eq!(tree(two_level()).validate(), Ok(()));
    let (mut call, step) = start(two_level(), "+44 20 7946 0000");
    assert_eq!(said(&step), vec!["Bienvenue", "Français 1, English 2"]);
    assert_eq!(languages(&step), vec!["fr-FR", "fr-FR"]);
    let g = gather(&step);
    assert_eq!(g.num_digits, Some(1));
    assert_eq!(g.finish_on_key, "", "menus must let # be a key");
    assert_eq!(g.timeout_secs, 5);
    assert!(!g.speech);
    assert_eq!(call.current_node(), Some(&NodeId::from("lang")));

    let step = call.input(digits("2"), now());
    assert_eq!(said(&step), vec!["Housing 1, tax 2"]);
    assert_eq!(languages(&step), vec!["en-GB"]);
    assert_eq!(gather(&step).timeout_secs, 7);
    assert!(gather(&step).speech, "the topic menu has speech keywords");

    let step = call.input(digits("1"), now());
    match outcome(&step) {
        Outcome::Queue {
            queue,
            context,
            prompts,
        } => {
            assert_eq!(queue, "benefits");
            assert!(prompts.is_empty());
            assert_eq!(context.language, "en-GB");
            assert_eq!(context.caller, "+442079460000");
            assert_eq!(context.called, "+33100000000");
            assert_eq!(
                context.attributes,
                BTreeMap::from([("topic".to_owned(), "housing".to_owned())])
            );
            assert_eq!(
                context.requirements,
                vec![req("lang:en", 2), req("benefits:housing", 3)]
            );
            assert_eq!(context.priority, Some(5));
        }
        other => panic!("expected a queue outcome, got {other:?}"),
    }
    assert!(call.is_finished());
}

#[test]
fn two_level_menu_in_french_reaches_tax_queue() {
    let (mut call, _) = start(two_level(), "+33612345678");
    let step = call.input(digits("1"), now());
    assert_eq!(said(&step), vec!["Logement 1, impôts 2"]);
    let step = call.input(digits("2"), now());
    match outcome(&step) {
        Outcome::Queue { queue, context, .. } => {
            assert_eq!(queue, "tax");
            assert_eq!(context.language, "fr-FR");
            assert_eq!(
                context.requirements,
                vec![req("lang:fr", 1), req("tax:income", 2)]
            );
            assert_eq!(context.priority, None);
            assert!(context.attributes.is_empty());
        }
        other => panic!("expected a queue outcome, got {other:?}"),
    }
}

#[test]
fn invalid_input_replays_menu_then_goes_to_on_fail() {
    let (mut call, _) = start(two_level(), "+33612345678");
    call.input(digits("1"), now());
    // max_retries = 2: two replays, the third failure goes to on_fail.
    for attempt in 1..=2 {
        let step = call.input(digits("9"), now());
        assert_eq!(
            said(&step),
            vec!["Choix invalide", "Logement 1, impôts 2"],
            "replay {attempt}"
        );
        assert_eq!(call.state().retries, attempt);
    }
    let step = call.input(digits("12"), now());
    match outcome(&step) {
        Outcome::Queue { queue, .. } => assert_eq!(queue, "general"),
        other => panic!("expected on_fail's queue, got {other:?}"),
    }
}

#[test]
fn no_input_replays_menu_without_invalid_prompt() {
    let (mut call, _) = start(two_level(), "+33612345678");
    call.input(digits("1"), now());
    let step = call.input(Input::NoInput, now());
    assert_eq!(said(&step), vec!["Logement 1, impôts 2"]);
    // An empty Digits field (Twilio after a timeout) counts as no input; retries are shared
    // with invalid input.
    let step = call.input(digits(""), now());
    assert_eq!(said(&step), vec!["Logement 1, impôts 2"]);
    let step = call.input(digits("7"), now());
    match outcome(&step) {
        Outcome::Queue { queue, .. } => assert_eq!(queue, "general"),
        other => panic!("expected on_fail's queue, got {other:?}"),
    }
}

#[test]
fn no_input_goes_to_on_no_input_when_set() {
    let mut v = two_level();
    v["nodes"]["topics"]["on_no_input"] = json!("tax");
    let (mut call, _) = start(v, "+33612345678");
    call.input(digits("1"), now());
    let step = call.input(Input::NoInput, now());
    match outcome(&step) {
        Outcome::Queue { queue, .. } => assert_eq!(queue, "tax"),
        other => panic!("expected the no-input target, got {other:?}"),
    }
}

#[test]
fn retries_reset_when_a_menu_is_entered_again() {
    let mut v = two_level();
    v["nodes"]["topics"]["options"]["*"] = json!("topics");
    let (mut call, _) = start(v, "+33612345678");
    call.input(digits("1"), now());
    call.input(digits("9"), now());
    call.input(digits("9"), now());
    assert_eq!(call.state().retries, 2);
    let step = call.input(digits("*"), now());
    assert_eq!(said(&step), vec!["Logement 1, impôts 2"]);
    assert_eq!(call.state().retries, 0);
}

#[test]
fn speech_keywords_choose_the_longest_match() {
    let (mut call, _) = start(two_level(), "+33612345678");
    call.input(digits("1"), now());
    let step = call.input(
        Input::Speech("C'est pour mon Impôt sur le revenu.".into()),
        now(),
    );
    match outcome(&step) {
        Outcome::Queue { queue, .. } => assert_eq!(queue, "tax"),
        other => panic!("expected tax, got {other:?}"),
    }

    let (mut call, _) = start(two_level(), "+33612345678");
    call.input(digits("1"), now());
    let step = call.input(Input::Speech("je ne sais pas".into()), now());
    assert_eq!(said(&step), vec!["Choix invalide", "Logement 1, impôts 2"]);
}

fn prefix_tree() -> Value {
    json!({
        "name": "prefix",
        "languages": ["fr-FR"],
        "default_language": "fr-FR",
        "timezone": "Europe/Paris",
        "entry": "route",
        "nodes": {
            "route": {"type": "condition", "rules": [
                {"when": {"caller_starts_with": "+33 1"}, "goto": "paris"},
                {"when": {"all": [{"caller_starts_with": "+33"},
                                  {"not": {"caller_equals": "+33 6 00 00 00 00"}}]}, "goto": "france"}
            ], "otherwise": "abroad"},
            "paris": {"type": "queue", "queue": "paris"},
            "france": {"type": "queue", "queue": "france"},
            "abroad": {"type": "queue", "queue": "abroad"}
        }
    })
}

fn queue_of(step: &Step) -> &str {
    match outcome(step) {
        Outcome::Queue { queue, .. } => queue,
        other => panic!("expected a queue, got {other:?}"),
    }
}

#[test]
fn condition_on_caller_prefix() {
    assert_eq!(tree(prefix_tree()).validate(), Ok(()));
    let (_, step) = start(prefix_tree(), "+33 1 45 67 89 00");
    assert_eq!(queue_of(&step), "paris");
    let (_, step) = start(prefix_tree(), "+33612345678");
    assert_eq!(queue_of(&step), "france");
    let (_, step) = start(prefix_tree(), "+33600000000");
    assert_eq!(queue_of(&step), "abroad");
    let (_, step) = start(prefix_tree(), "+4420794600");
    assert_eq!(queue_of(&step), "abroad");
}

fn collect_tree() -> Value {
    json!({
        "name": "collect",
        "languages": ["fr-FR"],
        "default_language": "fr-FR",
        "timezone": "Europe/Paris",
        "entry": "ask",
        "nodes": {
            "ask": {"type": "collect", "prompt": {"text": {"fr-FR": "Votre numéro"}},
                    "attribute": "file_number", "min_digits": 4, "max_digits": 6,
                    "invalid_prompt": {"text": {"fr-FR": "Numéro invalide"}},
                    "max_retries": 1, "next": "check", "on_fail": "fallback"},
            "check": {"type": "condition", "rules": [
                {"when": {"attribute_one_of": {"key": "file_number", "values": ["1234", "99999"]}}, "goto": "vip"}
            ], "otherwise": "normal"},
            "vip": {"type": "queue", "queue": "vip"},
            "normal": {"type": "queue", "queue": "normal"},
            "fallback": {"type": "queue", "queue": "fallback"}
        }
    })
}

#[test]
fn collect_stores_digits_in_attribute() {
    assert_eq!(tree(collect_tree()).validate(), Ok(()));
    let (mut call, step) = start(collect_tree(), "+33612345678");
    let g = gather(&step);
    assert_eq!(g.num_digits, Some(6));
    assert_eq!(g.finish_on_key, "#");
    let step = call.input(digits("1234#"), now());
    match outcome(&step) {
        Outcome::Queue { queue, context, .. } => {
            assert_eq!(queue, "vip");
            assert_eq!(context.attributes["file_number"], "1234");
        }
        other => panic!("expected a queue, got {other:?}"),
    }
}

#[test]
fn collect_rejects_bad_lengths_then_fails() {
    let (mut call, _) = start(collect_tree(), "+33612345678");
    let step = call.input(digits("12"), now());
    assert_eq!(said(&step), vec!["Numéro invalide", "Votre numéro"]);
    let step = call.input(digits("12a4"), now());
    assert_eq!(queue_of(&step), "fallback");

    let (mut call, _) = start(collect_tree(), "+33612345678");
    let step = call.input(Input::Speech("5 5 5 5 5".into()), now());
    assert_eq!(queue_of(&step), "normal");
}

fn callback_tree() -> Value {
    json!({
        "name": "callback",
        "languages": ["fr-FR"],
        "default_language": "fr-FR",
        "timezone": "Europe/Paris",
        "entry": "offer",
        "nodes": {
            "offer": {"type": "callback_offer", "prompt": {"text": {"fr-FR": "Tapez 1 pour être rappelé"}},
                      "queue": "callbacks", "confirmation": {"text": {"fr-FR": "C'est noté"}},
                      "declined": "bye"},
            "bye": {"type": "hangup", "prompt": {"text": {"fr-FR": "Au revoir"}}}
        }
    })
}

#[test]
fn callback_offer_accepted_or_declined() {
    assert_eq!(tree(callback_tree()).validate(), Ok(()));
    let (mut call, step) = start(callback_tree(), "+33 6 12 34 56 78");
    assert_eq!(gather(&step).num_digits, Some(1));
    let step = call.input(digits("1"), now());
    match outcome(&step) {
        Outcome::Callback {
            queue,
            number,
            prompts,
            ..
        } => {
            assert_eq!(queue, "callbacks");
            assert_eq!(number, "+33612345678");
            assert_eq!(
                prompts,
                &vec![Utterance::Say {
                    text: "C'est noté".into(),
                    language: "fr-FR".into()
                }]
            );
        }
        other => panic!("expected a callback, got {other:?}"),
    }

    let (mut call, _) = start(callback_tree(), "+33612345678");
    let step = call.input(Input::NoInput, now());
    match outcome(&step) {
        Outcome::Hangup { prompts, fault } => {
            assert_eq!(fault, &None);
            assert_eq!(prompts.len(), 1);
        }
        other => panic!("expected a hang-up, got {other:?}"),
    }
}

#[test]
fn step_cap_stops_a_loop_in_an_unvalidated_tree() {
    let v = json!({
        "name": "spin", "languages": ["fr-FR"], "default_language": "fr-FR",
        "timezone": "Europe/Paris", "entry": "a",
        "nodes": {
            "a": {"type": "say", "prompt": {"text": {"fr-FR": "a"}}, "next": "b"},
            "b": {"type": "set_attribute", "key": "k", "value": "v", "next": "a"}
        }
    });
    assert!(tree(v.clone()).validate().is_err());
    let (call, step) = start(v, "+33612345678");
    assert_eq!(
        outcome(&step),
        &Outcome::Hangup {
            prompts: vec![],
            fault: Some(Fault::StepLimit {
                limit: MAX_STEPS_PER_TURN
            })
        }
    );
    assert!(call.is_finished());
}

#[test]
fn missing_node_hangs_up_with_a_fault() {
    let v = json!({
        "name": "broken", "languages": ["fr-FR"], "default_language": "fr-FR",
        "timezone": "Europe/Paris", "entry": "a",
        "nodes": {"a": {"type": "say", "prompt": {"text": {"fr-FR": "a"}}, "next": "gone"}}
    });
    let (_, step) = start(v, "+33612345678");
    assert!(matches!(
        outcome(&step),
        Outcome::Hangup { fault: Some(Fault::UnknownNode { node }), .. } if node.as_str() == "gone"
    ));
}

#[test]
fn input_after_the_end_is_refused() {
    let (mut call, _) = start(prefix_tree(), "+33145678900");
    let step = call.input(digits("1"), now());
    assert_eq!(
        outcome(&step),
        &Outcome::Hangup {
            prompts: vec![],
            fault: Some(Fault::Finished)
        }
    );
}

#[test]
fn turn_cap_ends_endless_menus() {
    let mut v = two_level();
    v["nodes"]["lang"]["options"]["*"] = json!("lang");
    let (mut call, _) = start(v, "+33612345678");
    for _ in 0..MAX_TURNS_PER_CALL {
        let step = call.input(digits("*"), now());
        assert!(matches!(step, Step::Prompt { .. }));
    }
    let step = call.input(digits("*"), now());
    assert!(matches!(
        outcome(&step),
        Outcome::Hangup {
            fault: Some(Fault::TurnLimit { .. }),
            ..
        }
    ));
}

#[test]
fn prompts_fall_back_to_the_default_language_and_play_audio() {
    let v = json!({
        "name": "fallback", "languages": ["fr-FR", "en-GB"], "default_language": "fr-FR",
        "timezone": "Europe/Paris", "entry": "en",
        "nodes": {
            "en": {"type": "set_language", "language": "en-GB", "next": "hello"},
            "hello": {"type": "say", "prompt": {"text": {"fr-FR": "Bonjour"}}, "next": "jingle"},
            "jingle": {"type": "say", "prompt": {"audio": {"fr-FR": "https://media.example.org/jingle.mp3"}}, "next": "music"},
            "music": {"type": "play", "url": "https://media.example.org/music.mp3", "next": "q"},
            "q": {"type": "queue", "queue": "general"}
        }
    });
    let (_, step) = start(v, "+33612345678");
    assert_eq!(
        step.prompts(),
        &[
            Utterance::Say {
                text: "Bonjour".into(),
                language: "fr-FR".into()
            },
            Utterance::Play {
                url: "https://media.example.org/jingle.mp3".into()
            },
            Utterance::Play {
                url: "https://media.example.org/music.mp3".into()
            },
        ]
    );
}

#[test]
fn terminals_carry_their_prompts() {
    let v = json!({
        "name": "ends", "languages": ["fr-FR"], "default_language": "fr-FR",
        "timezone": "Europe/Paris", "entry": "menu",
        "nodes": {
            "menu": {"type": "menu", "prompt": {"text": {"fr-FR": "Menu"}},
                     "options": {"1": "vm", "2": "xfer"}, "on_fail": "menu_bye"},
            "vm": {"type": "voicemail", "prompt": {"text": {"fr-FR": "Après le bip"}}, "queue": "general"},
            "xfer": {"type": "transfer", "number": "sip:accueil@pbx.example.org",
                     "prompt": {"text": {"fr-FR": "Transfert"}}},
            "menu_bye": {"type": "hangup"}
        }
    });
    assert_eq!(tree(v.clone()).validate(), Ok(()));
    let (mut call, _) = start(v.clone(), "+33612345678");
    let step = call.input(digits("1"), now());
    match outcome(&step) {
        Outcome::Voicemail {
            queue,
            max_length_secs,
            prompts,
            ..
        } => {
            assert_eq!(queue, "general");
            assert_eq!(*max_length_secs, 120);
            assert_eq!(prompts.len(), 1);
        }
        other => panic!("expected voicemail, got {other:?}"),
    }
    let (mut call, _) = start(v, "+33612345678");
    let step = call.input(digits("2"), now());
    match outcome(&step) {
        Outcome::Transfer { number, .. } => assert_eq!(number, "sip:accueil@pbx.example.org"),
        other => panic!("expected a transfer, got {other:?}"),
    }
}

#[test]
fn prompt_text_picks_language_then_default() {
    let prompt = Prompt::Text(BTreeMap::from([
        ("fr-FR".to_owned(), "Bonjour".to_owned()),
        ("en-GB".to_owned(), "Hello".to_owned()),
    ]));
    assert_eq!(prompt.text("en-GB", "fr-FR"), Some("Hello"));
    assert_eq!(prompt.text("de-DE", "fr-FR"), Some("Bonjour"));
    assert_eq!(
        Prompt::text_in("fr-FR", "Salut").text("en-GB", "es-ES"),
        None
    );
    let audio = Prompt::Audio(BTreeMap::from([(
        "fr-FR".to_owned(),
        "https://m.example.org/a.wav".to_owned(),
    )]));
    assert_eq!(audio.text("fr-FR", "fr-FR"), None);
}
