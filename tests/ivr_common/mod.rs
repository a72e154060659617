//! Helpers shared by the IVR integration tests.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};

use guichet::ivr::{GatherSpec, IvrTree, Outcome, Step, Utterance};

/// Parses a tree from a JSON value (panics in tests only).
pub fn tree(value: Value) -> IvrTree {
    serde_json::from_value(value).expect("test tree parses")
}

/// A text prompt in French and English.
pub fn text(fr: &str, en: &str) -> Value {
    json!({"text": {"fr-FR": fr, "en-GB": en}})
}

/// A UTC instant.
pub fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("valid instant")
}

/// A weekday morning in Paris, when nothing depends on the time.
pub fn now() -> DateTime<Utc> {
    utc(2025, 3, 28, 9, 0)
}

/// The texts spoken by a step, in order ("play:URL" for audio).
pub fn said(step: &Step) -> Vec<String> {
    step.prompts()
        .iter()
        .map(|u| match u {
            Utterance::Say { text, .. } => text.clone(),
            Utterance::Play { url } => format!("play:{url}"),
        })
        .collect()
}

/// The languages of the spoken utterances of a step.
pub fn languages(step: &Step) -> Vec<String> {
    step.prompts()
        .iter()
        .filter_map(|u| match u {
            Utterance::Say { language, .. } => Some(language.clone()),
            Utterance::Play { .. } => None,
        })
        .collect()
}

/// The gather of a prompt step.
pub fn gather(step: &Step) -> &GatherSpec {
    match step {
        Step::Prompt {
            gather: Some(g), ..
        } => g,
        other => panic!("expected a prompt step with a gather, got {other:?}"),
    }
}

/// The outcome of a step.
pub fn outcome(step: &Step) -> &Outcome {
    match step {
        Step::Outcome(o) => o,
        other => panic!("expected an outcome, got {other:?}"),
    }
}

/// Loads the demo tree shipped at the crate root.
pub fn demo_tree() -> IvrTree {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/ivr/demo_tree.json");
    let json = std::fs::read_to_string(path).expect("demo_tree.json is readable");
    IvrTree::from_json(&json).expect("demo_tree.json parses")
}
