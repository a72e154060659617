//! Session state: survives serde_json between webhook requests and resumes where it stopped.

use crate::ivr_common;

use std::sync::Arc;

use ivr_common::{now, outcome, said, text, tree};
use serde_json::json;

use guichet::ivr::{
    CallSession, Fault, Input, IvrTree, NodeId, Outcome, ResumeError, SessionState, Step,
};

fn menu_tree(version: u32) -> Arc<IvrTree> {
    let mut t = tree(json!({
        "name": "state", "languages": ["fr-FR", "en-GB"], "default_language": "fr-FR",
        "timezone": "Europe/Paris", "entry": "lang",
        "nodes": {
            "lang": {"type": "menu", "prompt": text("1 français, 2 English", "1 français, 2 English"),
                     "options": {"1": "topics", "2": "en"}, "on_fail": "topics"},
            "en": {"type": "set_language", "language": "en-GB", "next": "skill"},
            "skill": {"type": "set_requirement", "skill": "lang:en", "min_level": 3, "next": "topics"},
            "topics": {"type": "menu", "prompt": text("1 logement", "1 housing"),
                       "options": {"1": "prio"}, "on_fail": "topics_fail"},
            "prio": {"type": "set_priority", "priority": 7, "next": "attr"},
            "attr": {"type": "set_attribute", "key": "topic", "value": "housing", "next": "q"},
            "q": {"type": "queue", "queue": "benefits"},
            "topics_fail": {"type": "hangup"}
        }
    }));
    t.version = version;
    Arc::new(t)
}

/// Serialises the state to JSON text and back, as a webhook handler storing it would.
fn through_json(state: &SessionState) -> SessionState {
    let text = serde_json::to_string(state).expect("state serialises");
    serde_json::from_str(&text).expect("state deserialises")
}

#[test]
fn state_round_trips_through_json_and_resumes() {
    let t = menu_tree(3);
    assert_eq!(t.validate(), Ok(()));
    let (mut call, _) = CallSession::start(
        Arc::clone(&t),
        "+44 20 7946 0000",
        "+33 1 00 00 00 00",
        now(),
    );
    call.input(Input::Digits("2".into()), now());
    call.input(Input::Digits("9".into()), now()); // one invalid attempt at `topics`

    let stored = through_json(call.state());
    assert_eq!(&stored, call.state());
    assert_eq!(stored.tree_name, "state");
    assert_eq!(stored.tree_version, 3);
    assert_eq!(stored.current, Some(NodeId::from("topics")));
    assert_eq!(stored.language, "en-GB");
    assert_eq!(stored.retries, 1);

    let value = serde_json::to_value(&stored).expect("state serialises");
    assert_eq!(value["current"], "topics");
    assert_eq!(
        value["requirements"],
        json!([{"skill": "lang:en", "min_level": 3}])
    );
    assert!(value.get("tree").is_none(), "the tree itself is not stored");

    let mut resumed = CallSession::resume(Arc::clone(&t), stored).expect("resumes");
    let from_resumed = resumed.input(Input::Digits("1".into()), now());
    let from_original = call.input(Input::Digits("1".into()), now());
    assert_eq!(from_resumed, from_original);
    match outcome(&from_resumed) {
        Outcome::Queue { queue, context, .. } => {
            assert_eq!(queue, "benefits");
            assert_eq!(context.priority, Some(7));
            assert_eq!(context.language, "en-GB");
            assert_eq!(context.attributes["topic"], "housing");
        }
        other => panic!("expected a queue, got {other:?}"),
    }
}

#[test]
fn retry_count_survives_a_resume() {
    let t = menu_tree(1);
    let (mut call, _) = CallSession::start(Arc::clone(&t), "+33612345678", "+33100000000", now());
    call.input(Input::Digits("1".into()), now());
    for _ in 0..2 {
        let state = through_json(call.state());
        call = CallSession::resume(Arc::clone(&t), state).expect("resumes");
        let step = call.input(Input::NoInput, now());
        assert_eq!(said(&step), vec!["1 logement"]);
    }
    let state = through_json(call.state());
    let mut call = CallSession::resume(t, state).expect("resumes");
    let step = call.input(Input::NoInput, now());
    assert_eq!(
        outcome(&step),
        &Outcome::Hangup {
            prompts: vec![],
            fault: None
        }
    );
}

#[test]
fn resume_refuses_another_tree_version() {
    let (call, _) = CallSession::start(menu_tree(1), "+33612345678", "+33100000000", now());
    let err = CallSession::resume(menu_tree(2), call.state().clone())
        .expect_err("version 2 is not the call's tree");
    assert_eq!(
        err,
        ResumeError::TreeMismatch {
            state_tree: "state".into(),
            state_version: 1,
            tree: "state".into(),
            version: 2
        }
    );
}

#[test]
fn resume_refuses_a_state_that_does_not_fit_the_tree() {
    let (call, _) = CallSession::start(menu_tree(1), "+33612345678", "+33100000000", now());
    let mut state = call.state().clone();
    state.current = Some(NodeId::from("nope"));
    assert!(matches!(
        CallSession::resume(menu_tree(1), state.clone()),
        Err(ResumeError::UnknownNode { .. })
    ));
    state.current = Some(NodeId::from("prio"));
    assert!(matches!(
        CallSession::resume(menu_tree(1), state.clone()),
        Err(ResumeError::NotWaitingForInput { .. })
    ));
    state.current = Some(NodeId::from("lang"));
    state.language = "xx-XX".into();
    assert!(matches!(
        CallSession::resume(menu_tree(1), state),
        Err(ResumeError::UnknownLanguage { .. })
    ));
}

#[test]
fn a_finished_call_resumes_as_finished() {
    let t = menu_tree(1);
    let (mut call, _) = CallSession::start(Arc::clone(&t), "+33612345678", "+33100000000", now());
    call.input(Input::Digits("1".into()), now());
    call.input(Input::Digits("1".into()), now());
    assert!(call.is_finished());
    let state = through_json(call.state());
    assert_eq!(state.current, None);
    let mut call = CallSession::resume(t, state).expect("resumes");
    let step = call.input(Input::Digits("1".into()), now());
    assert!(matches!(
        outcome(&step),
        Outcome::Hangup {
            fault: Some(Fault::Finished),
            ..
        }
    ));
}

#[test]
fn steps_and_inputs_serialise() {
    let (mut call, first) = CallSession::start(menu_tree(1), "+33612345678", "+33100000000", now());
    let text = serde_json::to_string(&first).expect("step serialises");
    let back: Step = serde_json::from_str(&text).expect("step deserialises");
    assert_eq!(back, first);

    let input: Input = serde_json::from_value(json!({"type": "digits", "value": "1"}))
        .expect("input deserialises");
    call.input(input, now());
    let last = call.input(Input::Digits("1".into()), now());
    let value = serde_json::to_value(&last).expect("step serialises");
    assert_eq!(value["step"], "outcome");
    assert_eq!(value["outcome"], "queue");
    assert_eq!(value["queue"], "benefits");
    let back: Step = serde_json::from_value(value).expect("step deserialises");
    assert_eq!(back, last);
}
