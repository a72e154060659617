//! Property-based fuzzing of every parser that faces the outside: webhook signature headers
//! (jambonz / generic SIP and Twilio), form bodies, JSON webhook bodies, MIME messages, chat
//! frames, IVR tree JSON, survey answers, configuration files, bearer tokens, API
//! identifiers and proxies' `X-Forwarded-For` headers. Each must answer (accept or refuse) without panicking, on inputs shaped like
//! the real thing and on garbage. Bounded in `cargo test` (64 cases each, inputs of a few
//! kilobytes, a 5-second hang guard per case); a longer run:
//! `GUICHET_FUZZ_CASES=20000 cargo test --release --test misc -- fuzz_parsers::`.
//! (SMTP commands are fuzzed in `src/channels/email/smtp.rs`, whose parser is private.)

use std::path::Path;

use proptest::prelude::*;

use guichet::api::auth::plausible_token;
use guichet::api::limits;
use guichet::channels::chat::protocol::ClientFrame;
use guichet::channels::email::mime;
use guichet::channels::voice::sign::{
    parse_timestamped, timestamped_signature, timestamped_valid, TwilioSigner,
    MAX_SIGNATURE_ENTRIES,
};
use guichet::config::Config;
use guichet::ivr::IvrTree;
use guichet::listen::clients::TrustedProxies;

fn config() -> ProptestConfig {
    let cases = std::env::var("GUICHET_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        timeout: 5_000,
        ..ProptestConfig::default()
    }
}

/// Text shaped like `t=...,v1=...` headers, with noise.
fn signature_header() -> impl Strategy<Value = String> {
    let entry = prop_oneof![
        "t=-?[0-9]{0,12}",
        "v1=[0-9a-f]{0,70}",
        "v1=[0-9a-fA-F]{64}",
        "[a-z0-9]{0,4}=[ -~]{0,20}",
        "[ -~]{0,30}",
    ];
    prop::collection::vec(entry, 0..16).prop_map(|parts| parts.join(","))
}

/// Bytes shaped like an email: headers, maybe multipart, with noise.
fn email() -> impl Strategy<Value = Vec<u8>> {
    let header = prop_oneof![
        "From: [ -~]{0,40}",
        "Subject: [ -~]{0,60}",
        "Content-Type: (text/plain|text/html|multipart/mixed; boundary=\"b\")(; charset=[a-z0-9-]{0,12})?",
        "Content-Transfer-Encoding: (base64|quoted-printable|7bit|8bit|x-[a-z]{0,5})",
        "Message-ID: <[ -~]{0,30}>",
        "In-Reply-To: [ -~]{0,40}",
        "[A-Za-z-]{1,12}: [ -~]{0,30}",
    ];
    let body = prop_oneof![
        "[ -~\n]{0,400}",
        "--b\r\nContent-Type: text/plain\r\n\r\n[ -~]{0,80}\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"[ -~]{0,20}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n[A-Za-z0-9+/=]{0,120}\r\n--b--",
        prop::collection::vec(any::<u8>(), 0..400)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ];
    (prop::collection::vec(header, 0..8), body).prop_map(|(headers, body)| {
        let mut raw = headers.join("\r\n");
        raw.push_str("\r\n\r\n");
        raw.push_str(&body);
        raw.into_bytes()
    })
}

/// JSON values of bounded depth, shaped like webhook bodies and IVR trees.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        "[ -~]{0,20}".prop_map(serde_json::Value::String),
        prop::sample::select(vec![
            "incoming", "menu", "say", "queue", "hangup", "main", "fr-FR", "start", "message",
        ])
        .prop_map(|s| serde_json::Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "type",
                    "name",
                    "entry",
                    "nodes",
                    "prompt",
                    "text",
                    "options",
                    "next",
                    "call_sid",
                    "from",
                    "to",
                    "digits",
                    "speech",
                    "queue",
                    "languages",
                    "default_language",
                    "timezone",
                    "reason",
                    "session",
                    "token",
                    "x",
                ])
                .prop_map(str::to_owned),
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn signature_headers_never_panic_and_never_hash_oversized_ones(
        header in signature_header(),
        body in prop::collection::vec(any::<u8>(), 0..256),
        now in 0i64..4_000_000_000,
    ) {
        let parsed = parse_timestamped(&header);
        if header.len() > 1024 || header.split(',').count() > MAX_SIGNATURE_ENTRIES {
            prop_assert!(parsed.is_err());
        }
        let _ = timestamped_valid("secret", &header, &body, now);
    }

    #[test]
    fn a_real_signature_is_found_among_noise(
        noise in prop::collection::vec("v1=[0-9a-f]{64}", 0..6),
        body in prop::collection::vec(any::<u8>(), 0..256),
        t in 1_000_000_000i64..2_000_000_000,
        at in 0usize..7,
    ) {
        let good = timestamped_signature("secret", t, &body);
        let (_, v1) = good.split_once(",v1=").unwrap_or_default();
        let mut entries: Vec<String> = noise;
        entries.insert(at.min(entries.len()), format!("v1={v1}"));
        let header = format!("t={t},{}", entries.join(","));
        prop_assert_eq!(timestamped_valid("secret", &header, &body, t), Ok(()));
    }

    #[test]
    fn twilio_signatures_and_forms_never_panic(
        signature in "[ -~]{0,80}",
        form in "[ -~]{0,300}",
        url in "(https?://)?[a-z.:0-9\\[\\]]{0,30}(/[ -~]{0,20})?",
    ) {
        let params: Vec<(String, String)> = form_urlencoded::parse(form.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let signer = TwilioSigner::new("token");
        let _ = signer.valid(&url, &params, &signature);
    }

    #[test]
    fn mime_messages_never_panic(raw in email(), recipient in "[a-z]{1,8}@[a-z]{1,8}\\.example") {
        if let Ok(parsed) = mime::parse(&raw, &recipient, Some("a@b.example"), 1024) {
            prop_assert!(parsed.attachments.iter().all(|a| a.data_base64.len() <= 2048));
        }
    }

    #[test]
    fn chat_frames_never_panic(value in json(), text in "[ -~]{0,200}") {
        let _ = serde_json::from_str::<ClientFrame>(&value.to_string());
        let _ = serde_json::from_str::<ClientFrame>(&text);
    }

    #[test]
    fn ivr_trees_never_panic(value in json()) {
        if let Ok(tree) = IvrTree::from_json(&value.to_string()) {
            let _ = tree.validate();
        }
    }

    #[test]
    fn survey_answers_never_panic(text in "[ -~\n\t€éà]{0,200}") {
        if let Some(answer) = guichet::survey::parse_answer(&text) {
            prop_assert!((1..=5).contains(&answer.score));
        }
    }

    #[test]
    fn config_files_never_panic(
        lines in prop::collection::vec(
            prop_oneof![
                "\\[(server|limits|chat|voice|email|email\\.inbound|sms|store)\\]",
                "\\[\\[(queues|agents)\\]\\]",
                "[a-z_]{1,20} = [0-9]{1,20}",
                "[a-z_]{1,20} = \"[ -~]{0,20}\"",
                "[ -~]{0,40}",
            ],
            0..20,
        ),
    ) {
        let text = lines.join("\n");
        if let Ok(config) = Config::from_toml(&text, Path::new("fuzz.toml")) {
            let _ = config.validate(Path::new("fuzz.toml"));
        }
    }

    #[test]
    fn tokens_and_identifiers_are_checked_without_panic(text in "[ -~\u{0}é]{0,100}") {
        let _ = plausible_token(&text);
        if let Err(e) = limits::id("agent_id", &text) {
            prop_assert!(!text.is_empty());
            prop_assert!(text.len() < 6 || !e.message().contains(text.as_str()));
        }
    }

    #[test]
    fn forwarded_headers_never_panic_and_name_only_an_address_a_hop_wrote(
        entries in prop::collection::vec(
            prop_oneof![
                "10\\.0\\.[0-9]{1,2}\\.[0-9]{1,2}",
                "203\\.0\\.113\\.[0-9]{1,2}",
                "\\[?2001:db8::[0-9a-f]{1,4}\\]?(:[0-9]{1,5})?",
                "[ -~]{0,30}",
            ],
            0..40,
        ),
        from_proxy in any::<bool>(),
    ) {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".to_string()]).expect("list");
        let peer: std::net::IpAddr = if from_proxy { "10.0.0.1" } else { "198.51.100.7" }
            .parse()
            .expect("address");
        let mut headers = axum::http::HeaderMap::new();
        if let Ok(value) = entries.join(",").parse() {
            headers.insert("x-forwarded-for", value);
        }
        let client = proxies.client(peer, &headers);
        if !from_proxy {
            prop_assert_eq!(client, peer);
        } else if client != peer {
            let written = |e: &String| {
                let e = e.trim();
                e.parse::<std::net::IpAddr>().ok() == Some(client)
                    || e.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()) == Some(client)
            };
            prop_assert!(entries.iter().any(written));
        }
    }
}
