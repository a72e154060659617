//! The supervisor console without a browser: every page under `/console/supervisor` is served by
//! the real binary with the console's policy, every view module the shell loads is served, every
//! text key the views use exists in French and in English, and, over gRPC-web on the HTTP
//! listener as the browser calls it, an agent's session is refused (`PERMISSION_DENIED`) on
//! every method of the Supervisor service while a supervisor's session is served.

use crate::api_common;

use std::collections::{BTreeSet, HashMap};

use api_common::*;
use prost::Message;

use guichet::api::proto as pb;

fn demo_passwords(ws: &Workspace) -> HashMap<String, String> {
    let text = std::fs::read_to_string(ws.data_dir().join("console-passwords.txt"))
        .expect("console-passwords.txt written by the first start");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_owned(), w.next()?.to_owned()))
        })
        .collect()
}

fn frame(message: &impl Message) -> Vec<u8> {
    let body = message.encode_to_vec();
    let mut out = vec![0u8];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// The gRPC status of a gRPC-web answer: in the headers (an error before any message) or in the
/// trailers frame.
fn status_of(headers: &reqwest::header::HeaderMap, body: &[u8]) -> Option<u32> {
    if let Some(v) = headers.get("grpc-status") {
        return v.to_str().ok()?.parse().ok();
    }
    let mut rest = body;
    while rest.len() >= 5 {
        let flag = rest[0];
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let data = rest.get(5..5 + len)?;
        if flag & 0x80 != 0 {
            let text = String::from_utf8_lossy(data);
            for line in text.split("\r\n") {
                if let Some(v) = line.strip_prefix("grpc-status:") {
                    return v.trim().parse().ok();
                }
            }
        }
        rest = &rest[5 + len..];
    }
    None
}

/// Every method of `guichet.v1.Supervisor`, from the descriptors the server is built with.
fn supervisor_methods() -> Vec<String> {
    let set = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).expect("descriptors");
    let methods: Vec<String> = set
        .file
        .iter()
        .flat_map(|f| f.service.iter())
        .filter(|s| s.name() == "Supervisor")
        .flat_map(|s| s.method.iter().map(|m| m.name().to_owned()))
        .collect();
    assert!(methods.len() > 20, "{methods:?}");
    methods
}

#[tokio::test]
async fn agents_are_refused_every_supervisor_call_and_supervisors_are_served() {
    let ws = Workspace::new();
    let server = ws.start();
    let passwords = demo_passwords(&ws);
    let http = reqwest::Client::builder()
        .http1_only()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .expect("client");
    let base = format!("http://{}", server.http_addr);
    let call = |method: String, body: Vec<u8>, session: Option<String>| {
        let mut request = http
            .post(format!("{base}/guichet.v1.{method}"))
            .header("content-type", "application/grpc-web+proto")
            .header("x-grpc-web", "1")
            .body(body);
        if let Some(s) = session {
            request = request.header("authorization", format!("Bearer {s}"));
        }
        request.send()
    };
    let mut sessions = HashMap::new();
    for login in ["david", "supervisor"] {
        let response = call(
            "Sessions/SignIn".into(),
            frame(&pb::SignInRequest {
                login: login.into(),
                password: passwords[login].clone(),
            }),
            None,
        )
        .await
        .expect("SignIn");
        let body = response.bytes().await.expect("body");
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        let signed = pb::SignInResponse::decode(&body[5..5 + len]).expect("SignInResponse");
        sessions.insert(login, signed.session);
    }

    // An agent's session: refused on every method, streams included, before anything happens.
    for method in supervisor_methods() {
        let response = call(
            format!("Supervisor/{method}"),
            vec![0, 0, 0, 0, 0],
            Some(sessions["david"].clone()),
        )
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"));
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("body");
        assert_eq!(
            status_of(&headers, &body),
            Some(7),
            "Supervisor/{method} must refuse an agent's session"
        );
    }
    // The console's pause and log-out go through AgentDesktop naming the agent: an agent's
    // session cannot act on a colleague that way either.
    let response = call(
        "AgentDesktop/Logout".into(),
        frame(&pb::LogoutRequest {
            agent_id: "amelie".into(),
        }),
        Some(sessions["david"].clone()),
    )
    .await
    .expect("Logout");
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body");
    assert_eq!(status_of(&headers, &body), Some(7));

    // A supervisor's session is served (the shell's first call, and a view's).
    for (method, body) in [
        (
            "ListQueues",
            frame(&pb::ListQueuesRequest {
                page_size: 1,
                ..Default::default()
            }),
        ),
        ("ListAgents", frame(&pb::ListAgentsRequest::default())),
        (
            "ListIvrVersions",
            frame(&pb::ListIvrVersionsRequest::default()),
        ),
    ] {
        let response = call(
            format!("Supervisor/{method}"),
            body,
            Some(sessions["supervisor"].clone()),
        )
        .await
        .expect("call");
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("body");
        assert_eq!(status_of(&headers, &body), Some(0), "{method}");
    }
}

#[tokio::test]
async fn every_supervisor_page_and_view_module_is_served() {
    let ws = Workspace::new();
    let server = ws.start();
    let base = format!("http://{}", server.http_addr);
    let client = reqwest::Client::new();
    for page in guichet::console::SUPERVISOR_PAGES {
        let response = client
            .get(format!("{base}/console/{page}"))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 200, "{page}");
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap_or_default()
            .to_owned();
        assert!(csp.contains("script-src 'self'"), "{page}");
        let body = response.text().await.expect("body");
        assert!(body.contains("/console/supervisor.js"), "{page}");
        assert!(!body.contains("<script>") && !body.contains("style="));
        // The shell names the view after the path: its module is served.
        let view = page.strip_prefix("supervisor/").unwrap_or("wallboard");
        let module = client
            .get(format!("{base}/console/sup-{view}.js"))
            .send()
            .await
            .expect("GET module");
        assert_eq!(module.status(), 200, "sup-{view}.js");
        assert!(module
            .text()
            .await
            .expect("module")
            .contains("export async function start"));
        // Every page links every other.
        for other in guichet::console::SUPERVISOR_PAGES {
            assert!(
                body.contains(&format!("href=\"/console/{other}\"")),
                "{page} -> {other}"
            );
        }
    }
}

/// The literal text keys (`"sup.…"`) a script uses.
fn keys_used(source: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in source.match_indices("\"sup.") {
        let rest = &source[i + 1..];
        let Some(end) = rest.find('"') else { continue };
        let key = &rest[..end];
        // Keys completed at run time ("sup.line.phase." + phase) are checked below.
        if !key.ends_with('.')
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._".contains(c))
        {
            out.insert(key.to_owned());
        }
    }
    out
}

#[test]
fn every_text_of_the_supervisor_console_exists_in_french_and_english() {
    let texts = guichet::console::asset("sup-texts.js").expect("sup-texts.js");
    let common = guichet::console::asset("i18n.js").expect("i18n.js");
    let (fr, en) = texts.split_once("\n  en: {").expect("an en block");
    let (common_fr, common_en) = common.split_once("\n  en: {").expect("an en block");
    let defined = |block: &str, key: &str| block.contains(&format!("\"{key}\":"));
    let mut used = BTreeSet::new();
    for module in [
        "supervisor.js",
        "sup-util.js",
        "sup-wallboard.js",
        "sup-agents.js",
        "sup-line.js",
        "sup-queues.js",
        "sup-ivr.js",
        "sup-satisfaction.js",
    ] {
        used.extend(keys_used(guichet::console::asset(module).expect(module)));
    }
    used.extend(keys_used(
        guichet::console::asset("supervisor").expect("page"),
    ));
    // The keys completed at run time.
    for suffix in ["2", "3", "4", "5"] {
        used.insert(format!("sup.line.phase.{suffix}"));
    }
    for view in [
        "wallboard",
        "agents",
        "line",
        "queues",
        "ivr",
        "satisfaction",
    ] {
        used.insert(format!("sup.nav.{view}"));
    }
    for level in ["warn", "alert"] {
        used.insert(format!("sup.wall.level.{level}"));
    }
    for name in [
        "most_competent",
        "longest_idle",
        "least_occupied",
        "round_robin",
    ] {
        used.insert(format!("sup.queues.strategy.{name}"));
    }
    for kind in ["none", "queue", "voicemail", "callback", "message"] {
        used.insert(format!("sup.queues.overflow.{kind}"));
    }
    assert!(used.len() > 150, "{}", used.len());
    let missing: Vec<_> = used
        .iter()
        .filter(|k| {
            !(defined(fr, k) || defined(common_fr, k)) || !(defined(en, k) || defined(common_en, k))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "texts missing in French or English: {missing:?}"
    );
}
