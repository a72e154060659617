//! jambonz rendering, checked field by field.

use crate::ivr_common;

use std::sync::Arc;

use ivr_common::{now, text, tree};
use serde_json::{json, Value};

use guichet::ivr::{
    render_jambonz, render_jambonz_with, CallSession, DialTarget, Input, JambonzLanguage,
    JambonzSpeech, RejectReason, StreamAuth, Transcription, Verb,
};

fn array(value: &Value) -> &Vec<Value> {
    value.as_array().expect("a JSON array")
}

/// Google for speech in and out, a chosen French voice, Microsoft for English speech.
fn speech() -> JambonzSpeech {
    let mut speech = JambonzSpeech {
        tts_vendor: Some("google".into()),
        stt_vendor: Some("google".into()),
        ..JambonzSpeech::default()
    };
    speech.languages.insert(
        "fr-FR".into(),
        JambonzLanguage {
            tts_voice: Some("fr-FR-Neural2-A".into()),
            ..JambonzLanguage::default()
        },
    );
    speech.languages.insert(
        "en-GB".into(),
        JambonzLanguage {
            tts_vendor: Some("microsoft".into()),
            tts_voice: Some("en-GB-SoniaNeural".into()),
            stt_vendor: Some("microsoft".into()),
        },
    );
    speech
}

/// jambonz refuses a `synthesizer` or `recognizer` without a `vendor`: with no vendor
/// configured the objects are left out and the application's defaults apply.
#[test]
fn without_vendors_no_synthesizer_or_recognizer_is_sent() {
    let out = render_jambonz(&[
        Verb::say("Bonjour", Some("fr-FR")),
        Verb::Gather {
            action_url: "/g".into(),
            num_digits: Some(1),
            finish_on_key: String::new(),
            timeout_secs: 6,
            speech: true,
            language: Some("fr-FR".into()),
            prompts: vec![Verb::say("Dites impôts", Some("fr-FR"))],
        },
    ]);
    let verbs = array(&out);
    assert_eq!(verbs[0], json!({"verb": "say", "text": "Bonjour"}));
    assert!(verbs[1].get("recognizer").is_none());
    assert_eq!(verbs[1]["say"], json!({"text": "Dites impôts"}));
}

#[test]
fn language_settings_override_the_default_vendor() {
    let speech = speech();
    let out = render_jambonz_with(
        &[
            Verb::say("Hello", Some("en-GB")),
            Verb::say("Hallo", Some("de-DE")),
            Verb::say("Hi", None),
        ],
        &speech,
    );
    let verbs = array(&out);
    assert_eq!(
        verbs[0]["synthesizer"],
        json!({"vendor": "microsoft", "language": "en-GB", "voice": "en-GB-SoniaNeural"})
    );
    // A language without settings of its own: the default vendor, its default voice.
    assert_eq!(
        verbs[1]["synthesizer"],
        json!({"vendor": "google", "language": "de-DE"})
    );
    assert_eq!(verbs[2]["synthesizer"], json!({"vendor": "google"}));
    assert!(speech.validate().is_ok());
    let blank = JambonzSpeech {
        tts_vendor: Some(" ".into()),
        ..JambonzSpeech::default()
    };
    assert!(blank.validate().is_err());
}

#[test]
fn menu_step_renders_gather_with_nested_say_and_redirect() {
    let t = tree(json!({
        "name": "t", "languages": ["fr-FR", "en-GB"], "default_language": "fr-FR",
        "timezone": "Europe/Paris", "entry": "hello",
        "nodes": {
            "hello": {"type": "say", "prompt": text("Bonjour.", "Hello."), "next": "menu"},
            "menu": {"type": "menu", "prompt": text("Pour les impôts, tapez 1.", "For tax, press 1."),
                     "options": {"1": "q"}, "on_fail": "q"},
            "q": {"type": "queue", "queue": "tax"}
        }
    }));
    let (_, step) = CallSession::start(Arc::new(t), "+33612345678", "+33100000000", now());
    let out = render_jambonz_with(&step.to_verbs("/voice/jambonz/ivr?call=abc"), &speech());
    let verbs = array(&out);
    assert_eq!(verbs.len(), 2);

    let gather = &verbs[0];
    assert_eq!(gather["verb"], "gather");
    assert_eq!(gather["actionHook"], "/voice/jambonz/ivr?call=abc");
    assert_eq!(gather["input"], json!(["digits"]));
    assert_eq!(gather["numDigits"], 1);
    assert_eq!(gather["timeout"], 5);
    assert_eq!(gather["dtmfBargein"], true);
    assert!(
        gather.get("finishOnKey").is_none(),
        "no finish key in menus"
    );
    assert!(gather.get("recognizer").is_none());
    // Two French sentences are joined into the single say jambonz can nest.
    assert_eq!(
        gather["say"],
        json!({"text": "Bonjour. Pour les impôts, tapez 1.", "synthesizer": {"vendor": "google", "language": "fr-FR", "voice": "fr-FR-Neural2-A"}})
    );
    assert!(gather["say"].get("verb").is_none());

    assert_eq!(
        verbs[1],
        json!({"verb": "redirect", "actionHook": "/voice/jambonz/ivr?call=abc&no_input=1"})
    );
}

#[test]
fn collect_step_has_finish_key_and_digit_count() {
    let t = tree(json!({
        "name": "t", "languages": ["fr-FR"], "default_language": "fr-FR",
        "timezone": "Europe/Paris", "entry": "ask",
        "nodes": {
            "ask": {"type": "collect", "prompt": {"text": {"fr-FR": "Numéro ?"}}, "attribute": "n",
                    "min_digits": 4, "max_digits": 8, "timeout_secs": 10, "next": "q", "on_fail": "q"},
            "q": {"type": "queue", "queue": "general"}
        }
    }));
    let (_, step) = CallSession::start(Arc::new(t), "+33612345678", "+33100000000", now());
    let out = render_jambonz(&step.to_verbs("/c"));
    let gather = &array(&out)[0];
    assert_eq!(gather["numDigits"], 8);
    assert_eq!(gather["finishOnKey"], "#");
    assert_eq!(gather["timeout"], 10);
}

#[test]
fn speech_gather_lists_both_inputs_and_the_recognizer_language() {
    let out = render_jambonz_with(
        &[Verb::Gather {
            action_url: "/g".into(),
            num_digits: Some(1),
            finish_on_key: String::new(),
            timeout_secs: 6,
            speech: true,
            language: Some("en-GB".into()),
            prompts: vec![Verb::Play {
                url: "https://m.example.org/menu.wav".into(),
                loop_count: 1,
            }],
        }],
        &speech(),
    );
    let gather = &array(&out)[0];
    assert_eq!(gather["input"], json!(["digits", "speech"]));
    assert_eq!(
        gather["recognizer"],
        json!({"vendor": "microsoft", "language": "en-GB"})
    );
    assert_eq!(gather["bargein"], true);
    assert_eq!(
        gather["play"],
        json!({"url": "https://m.example.org/menu.wav"})
    );
    assert!(gather.get("say").is_none());
}

#[test]
fn mixed_prompts_are_played_before_the_gather_and_the_last_is_nested() {
    let out = render_jambonz_with(
        &[Verb::Gather {
            action_url: "/g".into(),
            num_digits: Some(1),
            finish_on_key: String::new(),
            timeout_secs: 5,
            speech: false,
            language: None,
            prompts: vec![
                Verb::say("Bienvenue", Some("fr-FR")),
                Verb::Play {
                    url: "https://m.example.org/jingle.wav".into(),
                    loop_count: 1,
                },
                Verb::say("For English, press 2", Some("en-GB")),
            ],
        }],
        &speech(),
    );
    let verbs = array(&out);
    assert_eq!(verbs.len(), 3);
    assert_eq!(
        verbs[0],
        json!({"verb": "say", "text": "Bienvenue", "synthesizer": {"vendor": "google", "language": "fr-FR", "voice": "fr-FR-Neural2-A"}})
    );
    assert_eq!(
        verbs[1],
        json!({"verb": "play", "url": "https://m.example.org/jingle.wav"})
    );
    assert_eq!(verbs[2]["verb"], "gather");
    assert_eq!(
        verbs[2]["say"],
        json!({"text": "For English, press 2", "synthesizer": {"vendor": "microsoft", "language": "en-GB", "voice": "en-GB-SoniaNeural"}})
    );
}

#[test]
fn simple_verbs_use_jambonz_field_names() {
    let out = render_jambonz_with(
        &[
            Verb::Say {
                text: "Veuillez patienter".into(),
                language: Some("fr-FR".into()),
                loop_count: 2,
            },
            Verb::Play {
                url: "https://m.example.org/hold.mp3".into(),
                loop_count: 0,
            },
            Verb::Pause { secs: 3 },
            Verb::Redirect {
                url: "/hold".into(),
            },
            Verb::Hangup,
            Verb::Reject {
                reason: RejectReason::Busy,
            },
            Verb::Reject {
                reason: RejectReason::Rejected,
            },
        ],
        &speech(),
    );
    let verbs = array(&out);
    assert_eq!(
        verbs[0],
        json!({"verb": "say", "text": "Veuillez patienter", "loop": 2,
               "synthesizer": {"vendor": "google", "language": "fr-FR", "voice": "fr-FR-Neural2-A"}})
    );
    assert_eq!(
        verbs[1],
        json!({"verb": "play", "url": "https://m.example.org/hold.mp3", "loop": "forever"})
    );
    assert_eq!(verbs[2], json!({"verb": "pause", "length": 3}));
    assert_eq!(verbs[3], json!({"verb": "redirect", "actionHook": "/hold"}));
    assert_eq!(verbs[4], json!({"verb": "hangup"}));
    assert_eq!(
        verbs[5],
        json!({"verb": "sip:decline", "status": 486, "reason": "Busy Here"})
    );
    assert_eq!(verbs[6]["status"], 603);
}

#[test]
fn dial_lists_phone_and_sip_targets() {
    let out = render_jambonz(&[Verb::Dial {
        targets: vec![
            DialTarget::Phone("+33140000000".into()),
            DialTarget::Sip("sip:agent-7@pbx.example.org".into()),
        ],
        caller_id: Some("+33100000000".into()),
        timeout_secs: 25,
        action_url: Some("/dial-done".into()),
        answer_on_bridge: true,
    }]);
    let dial = &array(&out)[0];
    assert_eq!(dial["verb"], "dial");
    assert_eq!(
        dial["target"],
        json!([{"type": "phone", "number": "+33140000000"},
               {"type": "sip", "sipUri": "sip:agent-7@pbx.example.org"}])
    );
    assert_eq!(dial["callerId"], "+33100000000");
    assert_eq!(dial["timeout"], 25);
    assert_eq!(dial["answerOnBridge"], true);
    assert_eq!(dial["actionHook"], "/dial-done");

    let out = render_jambonz(&[Verb::Dial {
        targets: vec![DialTarget::from_address("sip:accueil@pbx.example.org")],
        caller_id: None,
        timeout_secs: 30,
        action_url: None,
        answer_on_bridge: false,
    }]);
    let dial = &array(&out)[0];
    assert!(dial.get("callerId").is_none());
    assert!(dial.get("actionHook").is_none());
    assert_eq!(dial["answerOnBridge"], false);
    assert_eq!(dial["target"][0]["type"], "sip");
}

#[test]
fn record_becomes_listen() {
    let out = render_jambonz(&[
        Verb::Record {
            action_url: "/voicemail/done".into(),
            max_length_secs: 120,
            play_beep: true,
            finish_on_key: "#".into(),
            stream_url: Some("wss://guichet.example.org/voicemail/stream".into()),
            stream_auth: Some(StreamAuth {
                username: "guichet".into(),
                password: "p4ss".into(),
            }),
            transcription: Some(Transcription {
                hook: "/voicemail/text".into(),
                language: "fr-FR".into(),
            }),
        },
        Verb::Record {
            action_url: "wss://guichet.example.org/vm".into(),
            max_length_secs: 30,
            play_beep: false,
            finish_on_key: String::new(),
            stream_url: None,
            stream_auth: None,
            transcription: None,
        },
    ]);
    let verbs = array(&out);
    assert_eq!(
        verbs[0],
        json!({"verb": "listen", "url": "wss://guichet.example.org/voicemail/stream",
               "actionHook": "/voicemail/done", "maxLength": 120, "playBeep": true,
               "finishOnKey": "#", "mixType": "mono", "sampleRate": 8000,
               "disableBidirectionalAudio": true,
               "wsAuth": {"username": "guichet", "password": "p4ss"},
               "transcribe": {"transcriptionHook": "/voicemail/text"}})
    );
    assert_eq!(verbs[1]["url"], "wss://guichet.example.org/vm");
    assert!(verbs[1].get("finishOnKey").is_none());
    assert!(verbs[1].get("wsAuth").is_none());
}

#[test]
fn transfer_outcome_renders_say_then_dial() {
    let t = tree(json!({
        "name": "t", "languages": ["fr-FR"], "default_language": "fr-FR",
        "timezone": "Europe/Paris", "entry": "menu",
        "nodes": {
            "menu": {"type": "menu", "prompt": {"text": {"fr-FR": "Tapez 0"}},
                     "options": {"0": "x"}, "on_fail": "x"},
            "x": {"type": "transfer", "number": "+33 1 40 00 00 00",
                  "prompt": {"text": {"fr-FR": "Transfert en cours"}}}
        }
    }));
    let (mut call, _) = CallSession::start(Arc::new(t), "+33612345678", "+33100000000", now());
    let step = call.input(Input::Digits("0".into()), now());
    let out = render_jambonz(&step.to_verbs("/after-dial"));
    let verbs = array(&out);
    assert_eq!(verbs.len(), 2);
    assert_eq!(verbs[0]["verb"], "say");
    assert_eq!(verbs[0]["text"], "Transfert en cours");
    assert_eq!(verbs[1]["verb"], "dial");
    assert_eq!(
        verbs[1]["target"],
        json!([{"type": "phone", "number": "+33140000000"}])
    );
    assert_eq!(verbs[1]["actionHook"], "/after-dial");
    assert_eq!(verbs[1]["answerOnBridge"], true);
    assert_eq!(verbs[1]["timeout"], 30);
}
