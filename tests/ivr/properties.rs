//! Properties over random inputs: the interpreter never faults on a valid tree and always
//! ends within its bounds; state survives serde at any point; TwiML escaping round-trips.

use crate::ivr_common;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use ivr_common::demo_tree;
use proptest::prelude::*;

use guichet::ivr::interpreter::MAX_TURNS_PER_CALL;
use guichet::ivr::{render_twiml, CallSession, Input, Outcome, SessionState, Step, Verb};

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        "[0-9*#]{0,3}".prop_map(Input::Digits),
        Just(Input::NoInput),
        prop::sample::select(vec!["impôts", "housing", "bonjour", "", "1", "tax please"])
            .prop_map(|s| Input::Speech(s.to_owned())),
        "[0-9]{7}#".prop_map(Input::Digits),
    ]
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // 2025-01-01 to 2027-01-01.
    (1_735_689_600i64..1_798_761_600i64).prop_map(|secs| {
        Utc.timestamp_opt(secs, 0)
            .single()
            .unwrap_or_else(|| Utc.timestamp_opt(0, 0).unwrap())
    })
}

fn check_step(step: &Step) -> Result<bool, TestCaseError> {
    match step {
        Step::Prompt { gather, prompts } => {
            prop_assert!(gather.is_some(), "the interpreter always gathers");
            prop_assert!(
                !prompts.is_empty(),
                "every input node of the demo has a prompt"
            );
            Ok(false)
        }
        Step::Outcome(Outcome::Hangup { fault, .. }) => {
            prop_assert!(fault.is_none(), "a valid tree never faults: {fault:?}");
            Ok(true)
        }
        Step::Outcome(_) => Ok(true),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn demo_calls_end_cleanly_whatever_the_caller_does(
        at in instant(),
        inputs in prop::collection::vec(input(), 0..40),
    ) {
        let tree = Arc::new(demo_tree());
        let (mut call, step) = CallSession::start(Arc::clone(&tree), "+33612345678", "+33100000000", at);
        let mut done = check_step(&step)?;
        for input in inputs {
            if done {
                break;
            }
            // Store and resume between every request, as the webhook handler does.
            let text = serde_json::to_string(call.state()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let state: SessionState = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&state, call.state());
            call = CallSession::resume(Arc::clone(&tree), state).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let step = call.input(input, at);
            done = check_step(&step)?;
            prop_assert_eq!(done, call.is_finished());
        }
        prop_assert!(call.state().turns <= MAX_TURNS_PER_CALL);
    }

    #[test]
    fn twiml_text_and_attributes_round_trip(text in "\\PC*", url in "\\PC*") {
        let verbs = vec![
            Verb::say(text.clone(), Some("fr-FR")),
            Verb::Redirect { url: url.clone() },
            Verb::Gather {
                action_url: url.clone(),
                num_digits: Some(1),
                finish_on_key: String::new(),
                timeout_secs: 5,
                speech: false,
                language: None,
                prompts: vec![],
            },
        ];
        let xml = render_twiml(&verbs);
        let doc = roxmltree::Document::parse(&xml).map_err(|e| TestCaseError::fail(format!("{e}: {xml}")))?;
        let elements: Vec<_> = doc.root_element().children().filter(|n| n.is_element()).collect();
        let has_say = !text.trim().is_empty();
        let offset = usize::from(has_say);
        if has_say {
            prop_assert_eq!(elements[0].text().unwrap_or(""), text.as_str());
        }
        prop_assert_eq!(elements[offset].text().unwrap_or(""), url.as_str());
        prop_assert_eq!(elements[offset + 1].attribute("action"), Some(url.as_str()));
    }
}
