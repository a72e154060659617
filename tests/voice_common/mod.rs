//! Shared pieces of the phone-channel tests: a configuration with every gateway, a two-level
//! test tree, a stand-in for the gateways' REST APIs, request signing and TwiML parsing.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use hmac::{Hmac, Mac};

/// The number the test tree answers.
pub const NUMBER: &str = "+33100000001";
/// Twilio-style account and secret.
pub const TWILIO_SID: &str = "ACtest0000";
pub const TWILIO_TOKEN: &str = "twilio-auth-token";
/// jambonz-style account and secret.
pub const JAMBONZ_SID: &str = "jb-account";
pub const JAMBONZ_SECRET: &str = "jambonz-webhook-secret";
pub const JAMBONZ_KEY: &str = "jambonz-api-key";
/// Generic SIP API secret.
pub const SIP_SECRET: &str = "sip-secret-0123456789";

/// The test tree: main menu (1: housing menu, 2: goodbye), housing menu (1: queue benefits).
/// `label` goes into the main prompt, to tell versions apart.
pub fn tree_json(label: &str) -> String {
    format!(
        r#"{{
  "name": "test-tree",
  "languages": ["fr-FR"],
  "default_language": "fr-FR",
  "timezone": "Europe/Paris",
  "entry": "main",
  "nodes": {{
    "main": {{"type": "menu", "prompt": {{"text": {{"fr-FR": "Menu {label}. Logement, tapez 1. Pour raccrocher, tapez 2."}}}},
             "options": {{"1": "housing", "2": "bye"}}, "on_fail": "bye"}},
    "housing": {{"type": "menu", "prompt": {{"text": {{"fr-FR": "Logement. Pour un conseiller, tapez 1."}}}},
                "options": {{"1": "topic"}}, "on_fail": "bye"}},
    "topic": {{"type": "set_attribute", "key": "topic", "value": "housing", "next": "req"}},
    "req": {{"type": "set_requirement", "skill": "lang:fr", "min_level": 1, "next": "hold_msg"}},
    "hold_msg": {{"type": "say", "prompt": {{"text": {{"fr-FR": "Un conseiller va vous répondre."}}}}, "next": "q"}},
    "q": {{"type": "queue", "queue": "benefits"}},
    "bye": {{"type": "hangup", "prompt": {{"text": {{"fr-FR": "Au revoir."}}}}}}
  }}
}}"#
    )
}

/// Writes the configuration (the demo's queues and agents, plus `[voice]` with every gateway
/// pointing its REST API at `standin`) and the test tree into `dir`; returns the file.
pub fn write_config(dir: &Path, standin: &str) -> PathBuf {
    let demo =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/guichet.toml"))
            .expect("demo config");
    let marker = "# ---------------------------------------------------------------- phone channel";
    let base = demo.split(marker).next().expect("demo text");
    std::fs::create_dir_all(dir).expect("config dir");
    std::fs::write(dir.join("tree.json"), tree_json("v1")).expect("tree");
    let text = format!(
        r#"{base}
[[voice.trees]]
file = "tree.json"

[[voice.numbers]]
number = "{NUMBER}"
tree = "test-tree"

[voice.hold]
poll_secs = 1
announce_every_secs = 1
callback_key = "9"

[voice.twilio]
account_sid = "{TWILIO_SID}"
auth_token = "{TWILIO_TOKEN}"
api_base = "{standin}"

[voice.jambonz]
account_sid = "{JAMBONZ_SID}"
webhook_secret = "{JAMBONZ_SECRET}"
api_key = "{JAMBONZ_KEY}"
api_base = "{standin}"

[voice.sip]
secret = "{SIP_SECRET}"
control_url = "{standin}/sip-control"
"#
    );
    let file = dir.join("guichet.toml");
    std::fs::write(&file, text).expect("config");
    file
}

/// The agent's leg of a bridged call, as the stand-in lists it (`GET .../Calls.json`).
pub const STANDIN_AGENT_LEG: &str = "CAagentleg0001";
/// The sid the stand-in gives a call placed through `POST .../Calls.json`.
pub const STANDIN_NEW_CALL: &str = "CAplaced0001";
/// The conference the stand-in lists (`GET .../Conferences.json`).
pub const STANDIN_CONFERENCE: &str = "CFroom0001";

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub query: String,
    pub authorization: String,
    pub body: String,
}

/// A local HTTP server standing in for the gateways' REST APIs: records every request and
/// answers 200 with JSON: Twilio's call list (one leg, [`STANDIN_AGENT_LEG`]), conference list
/// ([`STANDIN_CONFERENCE`]) and placed call ([`STANDIN_NEW_CALL`]) as Twilio shapes them, `{}`
/// otherwise.
pub struct StandIn {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl StandIn {
    pub async fn start() -> StandIn {
        use axum::body::Bytes;
        use axum::http::{HeaderMap, Method, Uri};
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = Arc::clone(&received);
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let log = Arc::clone(&log);
                async move {
                    let twilio = uri.path().starts_with("/2010-04-01/");
                    let answer = match (method.as_str(), twilio) {
                        ("GET", true) if uri.path().ends_with("/Calls.json") => {
                            format!(r#"{{"calls": [{{"sid": "{STANDIN_AGENT_LEG}", "status": "in-progress"}}]}}"#)
                        }
                        ("GET", true) if uri.path().ends_with("/Conferences.json") => {
                            format!(r#"{{"conferences": [{{"sid": "{STANDIN_CONFERENCE}", "status": "in-progress"}}]}}"#)
                        }
                        ("POST", true) if uri.path().ends_with("/Calls.json") => {
                            format!(r#"{{"sid": "{STANDIN_NEW_CALL}", "status": "queued"}}"#)
                        }
                        _ => "{}".to_owned(),
                    };
                    log.lock().unwrap().push(Received {
                        method: method.to_string(),
                        path: uri.path().to_owned(),
                        query: uri.query().unwrap_or("").to_owned(),
                        authorization: headers
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned(),
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                    ([("content-type", "application/json")], answer)
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind stand-in");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        StandIn { url, received }
    }

    /// Waits (up to 10 s) for a request whose path contains `needle`.
    pub async fn wait_for(&self, needle: &str) -> Received {
        for _ in 0..200 {
            if let Some(r) = self
                .received
                .lock()
                .unwrap()
                .iter()
                .find(|r| r.path.contains(needle))
            {
                return r.clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "the stand-in never received a request to {needle}: {:?}",
            self.received.lock().unwrap()
        );
    }
}

/// Twilio's signature, computed as Twilio's helper libraries do: the URL, then each POST
/// parameter's name and value, sorted by name; HMAC-SHA1 with the auth token; base64.
pub fn twilio_sign(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted: Vec<&(&str, &str)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// `t=<now>,v1=<hex HMAC-SHA256 of "t.body">`.
pub fn timestamped_sign(secret: &str, body: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

/// Posts a signed Twilio-style webhook to `url`; returns (status, body).
pub async fn twilio_post(
    client: &reqwest::Client,
    url: &str,
    params: &[(&str, &str)],
) -> (u16, String) {
    let mut all: Vec<(&str, &str)> = vec![("AccountSid", TWILIO_SID), ("ApiVersion", "2010-04-01")];
    all.extend_from_slice(params);
    let signature = twilio_sign(TWILIO_TOKEN, url, &all);
    let response = client
        .post(url)
        .header("X-Twilio-Signature", signature)
        .form(&all)
        .send()
        .await
        .expect("webhook");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// Posts a signed JSON webhook (jambonz or SIP style) with `header` carrying the signature.
pub async fn json_post(
    client: &reqwest::Client,
    url: &str,
    header: &str,
    secret: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let text = body.to_string();
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header(header, timestamped_sign(secret, &text))
        .body(text)
        .send()
        .await
        .expect("webhook");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text}"));
    (status, value)
}

/// A TwiML verb: its name, attributes, text, and nested verbs.
#[derive(Debug, Clone)]
pub struct Twiml {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Twiml>,
}

impl Twiml {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a TwiML document (it must be well-formed XML with a `Response` root) into its verbs.
pub fn parse_twiml(xml: &str) -> Vec<Twiml> {
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("bad XML ({e}): {xml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "Response", "{xml}");
    fn convert(node: roxmltree::Node) -> Twiml {
        Twiml {
            name: node.tag_name().name().to_owned(),
            attrs: node
                .attributes()
                .map(|a| (a.name().to_owned(), a.value().to_owned()))
                .collect(),
            text: node.text().unwrap_or("").to_owned(),
            children: node
                .children()
                .filter(|c| c.is_element())
                .map(convert)
                .collect(),
        }
    }
    root.children()
        .filter(|c| c.is_element())
        .map(convert)
        .collect()
}

/// The verb names of a TwiML answer.
pub fn names(verbs: &[Twiml]) -> Vec<&str> {
    verbs.iter().map(|v| v.name.as_str()).collect()
}

/// A server on the test configuration with the gateways' REST stand-in beside it.
pub struct Setup {
    pub ws: crate::api_common::Workspace,
    pub server: crate::api_common::Server,
    pub standin: StandIn,
    /// The HTTP listener's base URL.
    pub base: String,
    pub client: reqwest::Client,
}

/// Starts the stand-in and a server whose configuration points the gateways at it.
pub async fn setup() -> Setup {
    let ws = crate::api_common::Workspace::new();
    let standin = StandIn::start().await;
    let config = write_config(&ws.log().with_file_name("conf"), &standin.url);
    let server = crate::api_common::Server::start_with_config(&ws.data_dir(), &ws.log(), &config);
    let base = format!("http://{}", server.http_addr);
    Setup {
        ws,
        server,
        standin,
        base,
        client: reqwest::Client::new(),
    }
}

/// A jambonz call `call_sid` from +33644444444 to the demo number, led through the phone menu
/// (digit 1, twice) to its queue, where it waits for an agent.
pub async fn jambonz_call_through_menu(s: &Setup, call_sid: &str) {
    let post = |path: &str, body: serde_json::Value| {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", s.base)
        };
        let client = s.client.clone();
        async move { json_post(&client, &url, "jambonz-signature", JAMBONZ_SECRET, &body).await }
    };
    let first = serde_json::json!({"call_sid": call_sid, "call_id": "x@y",
        "account_sid": JAMBONZ_SID, "direction": "inbound", "from": "+33644444444",
        "to": NUMBER, "call_status": "trying", "sip": {"headers": {}, "method": "INVITE"}});
    let (_, mut verbs) = post("/voice/jambonz/incoming", first).await;
    for _ in 0..2 {
        let hook = verbs[0]["actionHook"].as_str().expect("gather").to_owned();
        verbs = post(
            &hook,
            serde_json::json!({"call_sid": call_sid, "digits": "1", "reason": "dtmfDetected"}),
        )
        .await
        .1;
    }
}

/// The attribute `attr` of the first verb named `name`, failing the test when there is none.
pub fn first_attr(verbs: &[Twiml], name: &str, attr: &str) -> String {
    verbs
        .iter()
        .find(|v| v.name == name)
        .and_then(|v| v.attr(attr))
        .unwrap_or_else(|| panic!("no {name} {attr} in {verbs:?}"))
        .to_owned()
}
