//! The demo tree shipped at the crate root: loads, validates and routes realistic calls.

use crate::ivr_common;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ivr_common::{demo_tree, gather, outcome, said, utc};

use guichet::ivr::{
    render_jambonz, render_twiml, CallSession, Input, IvrRegistry, Outcome, Requirement, Step,
};

fn open_time() -> DateTime<Utc> {
    // Tuesday 14 October 2025, 10:00 in Paris.
    utc(2025, 10, 14, 8, 0)
}

fn press(call: &mut CallSession, keys: &str, at: DateTime<Utc>) -> Step {
    call.input(Input::Digits(keys.to_owned()), at)
}

fn req(skill: &str, level: u8) -> Requirement {
    Requirement::new(skill, level)
}

#[test]
fn demo_tree_loads_and_validates() {
    let tree = demo_tree();
    if let Err(errors) = tree.validate() {
        panic!("{errors}");
    }
    assert_eq!(tree.languages, vec!["fr-FR", "en-GB"]);
    let mut registry = IvrRegistry::new();
    assert_eq!(registry.put_draft(tree), Ok(1));
}

#[test]
fn demo_english_caller_reaches_tax_queue() {
    let at = open_time();
    let (mut call, step) = CallSession::start(
        Arc::new(demo_tree()),
        "+44 20 7946 0000",
        "+33 1 00 00 00 00",
        at,
    );
    assert_eq!(said(&step).len(), 2, "welcome then the language menu");
    let step = press(&mut call, "2", at);
    assert!(said(&step)[0].starts_with("For housing and social benefits"));
    let step = press(&mut call, "2", at);
    match outcome(&step) {
        Outcome::Queue {
            queue,
            context,
            prompts,
        } => {
            assert_eq!(queue, "tax");
            assert_eq!(context.language, "en-GB");
            assert_eq!(
                context.requirements,
                vec![req("lang:en", 2), req("tax:income", 2)]
            );
            assert_eq!(context.attributes["topic"], "tax");
            assert_eq!(context.priority, None);
            assert_eq!(prompts.len(), 1, "the hold message");
        }
        other => panic!("expected the tax queue, got {other:?}"),
    }
}

#[test]
fn demo_french_caller_gives_file_number_for_housing() {
    let at = open_time();
    let (mut call, _) =
        CallSession::start(Arc::new(demo_tree()), "+33612345678", "+33100000000", at);
    press(&mut call, "1", at);
    let step = press(&mut call, "1", at);
    assert_eq!(gather(&step).num_digits, Some(7));
    let step = press(&mut call, "1234567", at);
    match outcome(&step) {
        Outcome::Queue { queue, context, .. } => {
            assert_eq!(queue, "benefits");
            assert_eq!(context.attributes["file_number"], "1234567");
            assert_eq!(context.attributes["topic"], "benefits");
            assert_eq!(
                context.requirements,
                vec![req("lang:fr", 1), req("benefits:housing", 2)]
            );
        }
        other => panic!("expected the benefits queue, got {other:?}"),
    }
}

#[test]
fn demo_speech_and_partner_priority() {
    let at = open_time();
    let (mut call, _) = CallSession::start(
        Arc::new(demo_tree()),
        "+33 1 40 00 12 34",
        "+33100000000",
        at,
    );
    press(&mut call, "1", at);
    let step = call.input(Input::Speech("C'est pour mes impôts".into()), at);
    match outcome(&step) {
        Outcome::Queue { queue, context, .. } => {
            assert_eq!(queue, "tax");
            assert_eq!(context.priority, Some(10));
        }
        other => panic!("expected the tax queue, got {other:?}"),
    }
}

#[test]
fn demo_closed_offers_voicemail_and_callback() {
    // Saturday 18 October 2025, 11:00 in Paris.
    let at = utc(2025, 10, 18, 9, 0);
    let (mut call, step) =
        CallSession::start(Arc::new(demo_tree()), "+33612345678", "+33100000000", at);
    let texts = said(&step);
    assert!(texts[0].starts_with("Nos services sont fermés"));
    assert!(texts[1].starts_with("Pour laisser un message"));
    let step = press(&mut call, "1", at);
    match outcome(&step) {
        Outcome::Voicemail {
            queue,
            max_length_secs,
            ..
        } => {
            assert_eq!(queue, "general");
            assert_eq!(*max_length_secs, 120);
        }
        other => panic!("expected voicemail, got {other:?}"),
    }

    let (mut call, _) =
        CallSession::start(Arc::new(demo_tree()), "+33612345678", "+33100000000", at);
    press(&mut call, "2", at);
    let step = press(&mut call, "1", at);
    assert!(
        matches!(outcome(&step), Outcome::Callback { queue, number, .. }
        if queue == "general" && number == "+33612345678")
    );
}

#[test]
fn demo_is_closed_on_bastille_day() {
    // Monday 14 July 2025, 10:00 in Paris.
    let (_, step) = CallSession::start(
        Arc::new(demo_tree()),
        "+33612345678",
        "+33100000000",
        utc(2025, 7, 14, 8, 0),
    );
    assert!(said(&step)[0].starts_with("Nos services sont fermés"));
}

#[test]
fn demo_first_step_renders_for_both_gateways() {
    let (_, step) = CallSession::start(
        Arc::new(demo_tree()),
        "+33612345678",
        "+33100000000",
        open_time(),
    );
    let verbs = step.to_verbs("/voice/ivr?call=CA1");
    let xml = render_twiml(&verbs);
    let doc = roxmltree::Document::parse(&xml).expect("valid TwiML");
    let tags: Vec<&str> = doc
        .root_element()
        .children()
        .filter(|n| n.is_element())
        .map(|n| n.tag_name().name())
        .collect();
    assert_eq!(tags, vec!["Gather", "Redirect"]);
    let json = render_jambonz(&verbs);
    assert_eq!(json[0]["verb"], "gather");
    assert!(json[0]["say"]["text"]
        .as_str()
        .is_some_and(|t| t.starts_with("Bienvenue")));
}
