//! TwiML rendering, checked by parsing the output with roxmltree.

use crate::ivr_common;

use std::sync::Arc;

use ivr_common::{now, text, tree};
use roxmltree::{Document, Node};
use serde_json::json;

use guichet::ivr::verbs::no_input_url;
use guichet::ivr::{
    outcome_verbs, render_twiml, CallContext, CallSession, DialTarget, Outcome, RejectReason,
    Utterance, Verb,
};

fn children<'a, 'i>(node: Node<'a, 'i>) -> Vec<Node<'a, 'i>> {
    node.children().filter(|n| n.is_element()).collect()
}

fn names(node: Node<'_, '_>) -> Vec<String> {
    children(node)
        .iter()
        .map(|n| n.tag_name().name().to_owned())
        .collect()
}

fn context() -> CallContext {
    CallContext {
        caller: "+33612345678".into(),
        called: "+33100000000".into(),
        language: "fr-FR".into(),
        attributes: Default::default(),
        requirements: vec![],
        priority: None,
    }
}

#[test]
fn document_has_declaration_and_response_root() {
    let xml = render_twiml(&[Verb::Hangup]);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    let doc = Document::parse(&xml).expect("valid XML");
    assert_eq!(doc.root_element().tag_name().name(), "Response");
    assert_eq!(names(doc.root_element()), vec!["Hangup"]);
    assert_eq!(
        render_twiml(&[]),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>"
    );
}

#[test]
fn menu_step_renders_gather_with_nested_say_and_no_input_redirect() {
    let t = tree(json!({
        "name": "t", "languages": ["fr-FR", "en-GB"], "default_language": "fr-FR",
        "timezone": "Europe/Paris", "entry": "hello",
        "nodes": {
            "hello": {"type": "say", "prompt": text("Bonjour", "Hello"), "next": "menu"},
            "menu": {"type": "menu", "prompt": text("Pour les impôts, tapez 1.", "For tax, press 1."),
                     "options": {"1": "q"}, "on_fail": "q"},
            "q": {"type": "queue", "queue": "tax"}
        }
    }));
    let (_, step) = CallSession::start(Arc::new(t), "+33612345678", "+33100000000", now());
    let action = "/voice/twilio/ivr?call=CA123&turn=1";
    let xml = render_twiml(&step.to_verbs(action));
    let doc = Document::parse(&xml).expect("valid XML");
    let root = doc.root_element();
    assert_eq!(names(root), vec!["Gather", "Redirect"]);

    let gather = children(root)[0];
    assert_eq!(gather.attribute("input"), Some("dtmf"));
    assert_eq!(gather.attribute("action"), Some(action));
    assert_eq!(gather.attribute("method"), Some("POST"));
    assert_eq!(gather.attribute("numDigits"), Some("1"));
    assert_eq!(gather.attribute("timeout"), Some("5"));
    assert_eq!(gather.attribute("finishOnKey"), Some(""));
    assert_eq!(gather.attribute("language"), None);
    let says = children(gather);
    assert_eq!(names(gather), vec!["Say", "Say"]);
    assert_eq!(says[0].text(), Some("Bonjour"));
    assert_eq!(says[1].text(), Some("Pour les impôts, tapez 1."));
    assert_eq!(says[1].attribute("language"), Some("fr-FR"));
    assert_eq!(says[1].attribute("loop"), None);

    let redirect = children(root)[1];
    assert_eq!(redirect.attribute("method"), Some("POST"));
    assert_eq!(redirect.text(), Some(no_input_url(action).as_str()));
    assert_eq!(
        redirect.text(),
        Some("/voice/twilio/ivr?call=CA123&turn=1&no_input=1")
    );
}

#[test]
fn text_and_attributes_are_escaped() {
    let nasty = "Tom & Jerry <3 \"quoted\" 'single' > end";
    let verbs = vec![Verb::Gather {
        action_url: "/ivr?a=1&b=\"2\"&c='3'<>".into(),
        num_digits: Some(4),
        finish_on_key: "#".into(),
        timeout_secs: 8,
        speech: true,
        language: Some("en-GB".into()),
        prompts: vec![Verb::say(nasty, Some("en-GB"))],
    }];
    let xml = render_twiml(&verbs);
    assert!(xml.contains("Tom &amp; Jerry &lt;3"), "{xml}");
    assert!(
        xml.contains("action=\"/ivr?a=1&amp;b=&quot;2&quot;&amp;c=&apos;3&apos;&lt;&gt;\""),
        "{xml}"
    );
    let doc = Document::parse(&xml).expect("valid XML");
    let gather = children(doc.root_element())[0];
    assert_eq!(gather.attribute("action"), Some("/ivr?a=1&b=\"2\"&c='3'<>"));
    assert_eq!(gather.attribute("input"), Some("dtmf speech"));
    assert_eq!(gather.attribute("language"), Some("en-GB"));
    assert_eq!(gather.attribute("finishOnKey"), Some("#"));
    assert_eq!(gather.attribute("numDigits"), Some("4"));
    assert_eq!(children(gather)[0].text(), Some(nasty));
}

#[test]
fn characters_xml_cannot_carry_are_dropped() {
    let xml = render_twiml(&[Verb::say("a\u{1}b\u{FFFF}c\td", None)]);
    let doc = Document::parse(&xml).expect("valid XML");
    assert_eq!(children(doc.root_element())[0].text(), Some("abc\td"));
}

#[test]
fn every_verb_renders_with_its_attributes() {
    let verbs = vec![
        Verb::Say {
            text: "Bienvenue".into(),
            language: Some("fr-FR".into()),
            loop_count: 2,
        },
        Verb::say("   ", None),
        Verb::Play {
            url: "https://media.example.org/hold.mp3?x=1&y=2".into(),
            loop_count: 0,
        },
        Verb::Pause { secs: 2 },
        Verb::Redirect {
            url: "/voice/hold".into(),
        },
        Verb::Dial {
            targets: vec![
                DialTarget::Phone("+33140000000".into()),
                DialTarget::Sip("sip:agent-7@pbx.example.org;transport=tls".into()),
            ],
            caller_id: Some("+33100000000".into()),
            timeout_secs: 20,
            action_url: Some("/voice/dial-done".into()),
            answer_on_bridge: true,
        },
        Verb::Record {
            action_url: "/voice/voicemail".into(),
            max_length_secs: 90,
            play_beep: true,
            finish_on_key: "#".into(),
            stream_url: Some("wss://ignored.example.org".into()),
            stream_auth: None,
            transcription: None,
        },
        Verb::Reject {
            reason: RejectReason::Busy,
        },
        Verb::Hangup,
    ];
    let xml = render_twiml(&verbs);
    let doc = Document::parse(&xml).expect("valid XML");
    let root = doc.root_element();
    assert_eq!(
        names(root),
        vec!["Say", "Play", "Pause", "Redirect", "Dial", "Record", "Reject", "Hangup"],
        "an empty Say is skipped"
    );
    let v = children(root);
    assert_eq!(v[0].attribute("loop"), Some("2"));
    assert_eq!(v[0].attribute("language"), Some("fr-FR"));
    assert_eq!(v[1].attribute("loop"), Some("0"));
    assert_eq!(
        v[1].text(),
        Some("https://media.example.org/hold.mp3?x=1&y=2")
    );
    assert_eq!(v[2].attribute("length"), Some("2"));
    assert_eq!(v[3].text(), Some("/voice/hold"));

    let dial = v[4];
    assert_eq!(dial.attribute("callerId"), Some("+33100000000"));
    assert_eq!(dial.attribute("timeout"), Some("20"));
    assert_eq!(dial.attribute("action"), Some("/voice/dial-done"));
    assert_eq!(dial.attribute("method"), Some("POST"));
    assert_eq!(dial.attribute("answerOnBridge"), Some("true"));
    assert_eq!(names(dial), vec!["Number", "Sip"]);
    assert_eq!(children(dial)[0].text(), Some("+33140000000"));
    assert_eq!(
        children(dial)[1].text(),
        Some("sip:agent-7@pbx.example.org;transport=tls")
    );

    let record = v[5];
    assert_eq!(record.attribute("action"), Some("/voice/voicemail"));
    assert_eq!(record.attribute("maxLength"), Some("90"));
    assert_eq!(record.attribute("playBeep"), Some("true"));
    assert_eq!(record.attribute("finishOnKey"), Some("#"));
    assert_eq!(v[6].attribute("reason"), Some("busy"));
}

#[test]
fn gather_only_nests_say_play_and_pause() {
    let xml = render_twiml(&[Verb::Gather {
        action_url: "/a".into(),
        num_digits: None,
        finish_on_key: "#".into(),
        timeout_secs: 5,
        speech: false,
        language: None,
        prompts: vec![
            Verb::Play {
                url: "https://m.example.org/a.wav".into(),
                loop_count: 1,
            },
            Verb::Hangup,
            Verb::Pause { secs: 1 },
            Verb::Redirect { url: "/x".into() },
        ],
    }]);
    let doc = Document::parse(&xml).expect("valid XML");
    let gather = children(doc.root_element())[0];
    assert_eq!(names(gather), vec!["Play", "Pause"]);
    assert_eq!(gather.attribute("numDigits"), None);
}

#[test]
fn outcomes_render_as_expected() {
    let bye = Utterance::Say {
        text: "Au revoir".into(),
        language: "fr-FR".into(),
    };
    let hangup = Outcome::Hangup {
        prompts: vec![bye.clone()],
        fault: None,
    };
    let doc_xml = render_twiml(&outcome_verbs(&hangup, "/next"));
    let doc = Document::parse(&doc_xml).expect("valid XML");
    assert_eq!(names(doc.root_element()), vec!["Say", "Hangup"]);

    let transfer = Outcome::Transfer {
        number: "+33 1 40 00 00 00".into(),
        context: context(),
        prompts: vec![],
    };
    let doc_xml = render_twiml(&outcome_verbs(&transfer, "/dial-done"));
    let doc = Document::parse(&doc_xml).expect("valid XML");
    let dial = children(doc.root_element())[0];
    assert_eq!(dial.tag_name().name(), "Dial");
    assert_eq!(dial.attribute("action"), Some("/dial-done"));
    assert_eq!(children(dial)[0].tag_name().name(), "Number");
    assert_eq!(children(dial)[0].text(), Some("+33140000000"));

    let voicemail = Outcome::Voicemail {
        queue: "general".into(),
        max_length_secs: 60,
        context: context(),
        prompts: vec![bye],
    };
    let doc_xml = render_twiml(&outcome_verbs(&voicemail, "/recorded"));
    let doc = Document::parse(&doc_xml).expect("valid XML");
    assert_eq!(names(doc.root_element()), vec!["Say", "Record", "Hangup"]);
    assert_eq!(
        children(doc.root_element())[1].attribute("maxLength"),
        Some("60")
    );

    let queue = Outcome::Queue {
        queue: "tax".into(),
        context: context(),
        prompts: vec![],
    };
    let doc_xml = render_twiml(&outcome_verbs(&queue, "/enqueue"));
    let doc = Document::parse(&doc_xml).expect("valid XML");
    assert_eq!(names(doc.root_element()), vec!["Redirect"]);
    assert_eq!(children(doc.root_element())[0].text(), Some("/enqueue"));
}
