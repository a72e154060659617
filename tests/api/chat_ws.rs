//! The web chat on the real server: a visitor over a WebSocket (tokio-tungstenite) while an
//! agent answers over gRPC (offer stream, Accept, SendMessage, SetTyping, Complete): lines both
//! ways, typing both ways, the transcript, frames refused (too big, not the protocol, wrong
//! origin), abandonment after the grace period, and resuming the same conversation.

use crate::api_common;

use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use api_common::{logged_in_agent, next, Server, Workspace, STREAM_LIMIT};
use guichet::api::proto as pb;
use pb::offer_update::Update;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The demo configuration with a 2-second grace period (tests wait for it to pass).
fn config_with_short_grace(ws: &Workspace) -> PathBuf {
    let demo = std::fs::read_to_string(api_common::demo_config()).expect("demo config");
    assert!(
        demo.contains("grace_secs = 30"),
        "the demo config sets [chat] grace_secs"
    );
    // Chats start before the agent signs in (they wait for one).
    let text = demo.replace("grace_secs = 30", "grace_secs = 2")
        + "\n[citizen]\nunstaffed_chats = \"wait\"\n";
    let path = ws.data_dir().with_file_name("chat.toml");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
    std::fs::write(&path, text).expect("write config");
    path
}

async fn connect(server: &Server) -> Socket {
    let url = format!("ws://{}/chat/ws", server.http_addr);
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("WebSocket connect");
    socket
}

async fn send(socket: &mut Socket, frame: Value) {
    socket
        .send(WsMessage::Text(frame.to_string().into()))
        .await
        .expect("send frame");
}

/// The next frame of `kind`, skipping others; fails on an `error` frame of another kind.
async fn until(socket: &mut Socket, kind: &str) -> Value {
    let deadline = tokio::time::Instant::now() + STREAM_LIMIT;
    loop {
        let msg = tokio::time::timeout_at(deadline, socket.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} frame within {STREAM_LIMIT:?}"))
            .unwrap_or_else(|| panic!("socket ended before a {kind} frame"))
            .expect("read frame");
        let WsMessage::Text(text) = msg else {
            if let WsMessage::Close(c) = &msg {
                panic!("socket closed ({c:?}) before a {kind} frame");
            }
            continue;
        };
        let frame: Value = serde_json::from_str(text.as_str()).expect("JSON frame");
        if frame["type"] == kind {
            return frame;
        }
        if frame["type"] == "error" {
            panic!("error frame while waiting for {kind}: {frame}");
        }
    }
}

/// Reads until the server closes: the error frame seen before, and the close code.
async fn closed_with(socket: &mut Socket) -> (Value, u16) {
    let mut error = Value::Null;
    loop {
        let msg = tokio::time::timeout(STREAM_LIMIT, socket.next())
            .await
            .expect("the server closes the socket")
            .expect("a close frame")
            .expect("read frame");
        match msg {
            WsMessage::Text(text) => {
                let frame: Value = serde_json::from_str(text.as_str()).expect("JSON frame");
                if frame["type"] == "error" {
                    error = frame;
                }
            }
            WsMessage::Close(Some(frame)) => return (error, u16::from(frame.code)),
            WsMessage::Close(None) => return (error, 0),
            _ => {}
        }
    }
}

/// The next offer-stream update matching `pick`, skipping others.
async fn update<T>(
    stream: &mut tonic::Streaming<pb::OfferUpdate>,
    mut pick: impl FnMut(&Update) -> Option<T>,
) -> T {
    loop {
        let u = next(stream).await;
        if let Some(found) = u.update.as_ref().and_then(&mut pick) {
            return found;
        }
    }
}

async fn start_chat(socket: &mut Socket, name: &str) -> Value {
    send(
        socket,
        json!({"type": "start", "name": name, "email": "ana@example.org", "language": "en"}),
    )
    .await;
    until(socket, "started").await
}

/// A server on the demo configuration with satisfaction surveys on (chats wait for an agent).
fn with_surveys(ws: &Workspace) -> Server {
    ws.server()
        .with("[surveys]\nenabled = true\n\n[citizen]\nunstaffed_chats = \"wait\"\n")
        .start()
}

/// A visitor (`name`) who sends the `line` frame, offered to the agent and accepted by it: the
/// visitor's socket (once the agent joined), its `started` frame and the interaction's id.
async fn accepted_chat(
    server: &Server,
    desk: &mut pb::agent_desktop_client::AgentDesktopClient<api_common::Authed>,
    offers: &mut tonic::Streaming<pb::OfferUpdate>,
    name: &str,
    line: Value,
) -> (Socket, Value, String) {
    let mut socket = connect(server).await;
    let started = start_chat(&mut socket, name).await;
    send(&mut socket, line).await;
    until(&mut socket, "queued").await;
    let reference = update(offers, |u| match u {
        Update::Offer(o) => o.interaction.as_ref().map(|i| i.id.clone()),
        _ => None,
    })
    .await;
    desk.accept(pb::InteractionAction {
        interaction_id: reference.clone(),
        ..Default::default()
    })
    .await
    .expect("Accept");
    until(&mut socket, "agent_joined").await;
    (socket, started, reference)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitor_and_agent_chat_with_typing_and_transcript() {
    let ws = Workspace::new();
    let server = ws.start_with_config(&config_with_short_grace(&ws));
    let (mut desk, mut offers) = logged_in_agent(&ws, &server, "david").await;

    let mut socket = connect(&server).await;
    let started = start_chat(&mut socket, "Ana").await;
    assert!(started["session"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(started["resume_token"].as_str().map(str::len), Some(64));

    send(
        &mut socket,
        json!({"type": "message", "text": "Hello, my benefits?", "client_id": "c1"}),
    )
    .await;
    let ack = until(&mut socket, "ack").await;
    assert_eq!(ack["client_id"], "c1");
    let first_id = ack["id"].as_str().expect("message id").to_owned();
    assert!(first_id.starts_with("chat:"));
    let queued = until(&mut socket, "queued").await;
    let shown = queued["reference"].as_str().expect("reference").to_owned();

    // The offer carries the conversation, and the short reference the visitor was shown.
    let offer = update(&mut offers, |u| match u {
        Update::Offer(o) => Some(o.clone()),
        _ => None,
    })
    .await;
    let interaction = offer.interaction.as_ref().expect("interaction");
    assert_eq!(interaction.reference, shown);
    assert_eq!(shown.len(), 11, "a short reference: {shown}");
    let reference = interaction.id.clone();
    assert_eq!(offer.conversation.len(), 1);
    assert_eq!(offer.conversation[0].text, "Hello, my benefits?");
    assert_eq!(offer.conversation[0].from, "Ana");

    desk.accept(pb::InteractionAction {
        interaction_id: reference.clone(),
        ..Default::default()
    })
    .await
    .expect("Accept");
    let joined = until(&mut socket, "agent_joined").await;
    assert_eq!(joined["agent"], "David N'Diaye");

    // Typing, visitor to agent.
    send(&mut socket, json!({"type": "typing", "typing": true})).await;
    let notice = update(&mut offers, |u| match u {
        Update::Typing(t) => Some(t.clone()),
        _ => None,
    })
    .await;
    assert_eq!(notice.interaction_id, reference);
    assert!(notice.typing);

    // Typing, agent to visitor.
    let delivered = desk
        .set_typing(pb::SetTypingRequest {
            interaction_id: reference.clone(),
            typing: true,
            ..Default::default()
        })
        .await
        .expect("SetTyping")
        .into_inner()
        .delivered;
    assert!(delivered);
    let typing = until(&mut socket, "agent_typing").await;
    assert_eq!(typing["typing"], true);

    // The agent's reply reaches the visitor.
    desk.send_message(pb::SendMessageRequest {
        interaction_id: reference.clone(),
        text: "Hello Ana, how can I help?".into(),
        ..Default::default()
    })
    .await
    .expect("SendMessage");
    let line = until(&mut socket, "message").await;
    assert_eq!(line["text"], "Hello Ana, how can I help?");
    assert_eq!(line["from"], "David N'Diaye");

    // A line sent again with the same client id is acknowledged again, not stored twice.
    send(
        &mut socket,
        json!({"type": "message", "text": "Hello, my benefits?", "client_id": "c1"}),
    )
    .await;
    let again = until(&mut socket, "ack").await;
    assert_eq!(again["id"], first_id.as_str());

    send(
        &mut socket,
        json!({"type": "transcript", "email": "ana@example.org"}),
    )
    .await;
    let requested = until(&mut socket, "transcript_requested").await;
    assert_eq!(requested["email"], "ana@example.org");

    // The agent completes: the visitor's chat ends, the transcript went in first.
    desk.complete(pb::CompleteRequest {
        interaction_id: reference.clone(),
        wrap_up_code: "answered".into(),
        ..Default::default()
    })
    .await
    .expect("Complete");
    let ended = until(&mut socket, "ended").await;
    assert_eq!(ended["reason"], "agent");

    let conversation = desk
        .get_conversation(pb::GetConversationRequest {
            interaction_id: reference.clone(),
            ..Default::default()
        })
        .await
        .expect("GetConversation in wrap-up")
        .into_inner()
        .messages;
    let texts: Vec<&str> = conversation.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(conversation.len(), 3, "{texts:?}");
    let transcript = &conversation[2];
    assert_eq!(transcript.direction, "outbound");
    assert_eq!(transcript.to, "ana@example.org");
    assert!(transcript.subject.starts_with("Transcript of your chat"));
    assert!(transcript.text.contains("Ana:\n  Hello, my benefits?"));
    assert!(transcript
        .text
        .contains("David N'Diaye:\n  Hello Ana, how can I help?"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_and_origins_are_refused_and_nothing_is_stored() {
    let ws = Workspace::new();
    let server = ws.start_with_config(&config_with_short_grace(&ws));

    // Too big: an error frame, then close code 1009.
    let mut socket = connect(&server).await;
    let started = start_chat(&mut socket, "Bob").await;
    let big = "x".repeat(20_000);
    send(
        &mut socket,
        json!({"type": "message", "text": big, "client_id": "big"}),
    )
    .await;
    let (error, code) = closed_with(&mut socket).await;
    assert_eq!(error["code"], "too_big", "{error}");
    assert_eq!(code, 1009);

    // Far over the limit, the WebSocket library stops reading it: refused the same way.
    let mut huge = connect(&server).await;
    start_chat(&mut huge, "Huge").await;
    let _ = huge.send(WsMessage::Text("y".repeat(300_000).into())).await;
    let (error, code) = closed_with(&mut huge).await;
    assert_eq!(error["code"], "too_big", "{error}");
    assert_eq!(code, 1009);

    // Nothing was stored: resuming the session replays no line.
    let mut socket = connect(&server).await;
    send(
        &mut socket,
        json!({"type": "resume", "session": started["session"], "token": started["resume_token"]}),
    )
    .await;
    let resumed = until(&mut socket, "resumed").await;
    assert_eq!(resumed["history"], json!([]));

    // Not the protocol: an error frame, then close code 1008.
    send(&mut socket, json!({"type": "shout", "text": "hi"})).await;
    let (error, code) = closed_with(&mut socket).await;
    assert_eq!(error["code"], "bad_frame", "{error}");
    assert_eq!(code, 1008);

    let mut socket = connect(&server).await;
    socket
        .send(WsMessage::Text("hello there".into()))
        .await
        .expect("send");
    let (error, code) = closed_with(&mut socket).await;
    assert_eq!(error["code"], "bad_frame");
    assert_eq!(code, 1008);

    // A wrong resume token is refused.
    let mut socket = connect(&server).await;
    send(
        &mut socket,
        json!({"type": "resume", "session": started["session"], "token": "0".repeat(64)}),
    )
    .await;
    let (error, code) = closed_with(&mut socket).await;
    assert_eq!(error["code"], "unknown_session");
    assert_eq!(code, 1008);

    // A page from another site may not open the chat.
    let mut request = format!("ws://{}/chat/ws", server.http_addr)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "origin",
        "https://evil.example".parse().expect("header value"),
    );
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 403)
        }
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }

    let log = ws.log_text();
    assert!(log.contains("chat frame refused"), "{log}");
    assert!(log.contains("origin not allowed"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_within_grace_keeps_the_interaction_and_leaving_abandons() {
    let ws = Workspace::new();
    let server = ws.start_with_config(&config_with_short_grace(&ws));
    let (_desk, mut offers) = logged_in_agent(&ws, &server, "david").await;

    let mut socket = connect(&server).await;
    let started = start_chat(&mut socket, "Chloé").await;
    send(
        &mut socket,
        json!({"type": "message", "text": "First line", "client_id": "a"}),
    )
    .await;
    let shown = until(&mut socket, "queued").await["reference"]
        .as_str()
        .expect("reference")
        .to_owned();
    let (offered, offered_reference) = update(&mut offers, |u| match u {
        Update::Offer(o) => o
            .interaction
            .as_ref()
            .map(|i| (i.id.clone(), i.reference.clone())),
        _ => None,
    })
    .await;
    assert_eq!(offered_reference, shown);
    let reference = offered;

    // The visitor's page reloads: resumed with the same conversation.
    drop(socket);
    let mut socket = connect(&server).await;
    send(
        &mut socket,
        json!({"type": "resume", "session": started["session"], "token": started["resume_token"]}),
    )
    .await;
    let resumed = until(&mut socket, "resumed").await;
    assert_eq!(resumed["history"][0]["text"], "First line");
    assert_eq!(resumed["history"][0]["from"], "visitor");
    send(
        &mut socket,
        json!({"type": "message", "text": "Second line", "client_id": "b"}),
    )
    .await;
    until(&mut socket, "ack").await;
    let message = update(&mut offers, |u| match u {
        Update::Message(m) => Some(m.clone()),
        _ => None,
    })
    .await;
    assert_eq!(message.interaction_id, reference, "same interaction");
    assert_eq!(message.text, "Second line");

    // The visitor leaves for good: after the grace period the chat is abandoned and the offer
    // withdrawn from the agent.
    drop(socket);
    let withdrawn = tokio::time::timeout(Duration::from_secs(30), async {
        update(&mut offers, |u| match u {
            Update::Withdrawn(w) => Some(w.clone()),
            _ => None,
        })
        .await
    })
    .await
    .expect("withdrawn after the grace period");
    assert_eq!(withdrawn.interaction_id, reference);
    assert_eq!(withdrawn.reason, "abandoned");

    // The session is gone.
    let mut socket = connect(&server).await;
    send(
        &mut socket,
        json!({"type": "resume", "session": started["session"], "token": started["resume_token"]}),
    )
    .await;
    let (error, _) = closed_with(&mut socket).await;
    assert_eq!(error["code"], "unknown_session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitor_leaving_after_the_answer_completes_the_chat() {
    let ws = Workspace::new();
    let server = ws.start_with_config(&config_with_short_grace(&ws));
    let (mut desk, mut offers) = logged_in_agent(&ws, &server, "david").await;

    let (socket, _, _) = accepted_chat(
        &server,
        &mut desk,
        &mut offers,
        "Dan",
        json!({"type": "message", "text": "Hi"}),
    )
    .await;
    drop(socket);

    // After the grace period the chat is completed without the agent: it is in wrap-up.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = desk
            .login(pb::LoginRequest::default())
            .await
            .expect("agent status")
            .into_inner();
        if status.state.as_ref().map(|s| s.kind) == Some(pb::agent_state::Kind::WrapUp as i32) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the chat was not completed: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chats_left_open_by_a_crash_end_after_the_grace_period() {
    let ws = Workspace::new();
    let config = config_with_short_grace(&ws);
    let mut server = ws.start_with_config(&config);
    let mut socket = connect(&server).await;
    start_chat(&mut socket, "Eve").await;
    send(&mut socket, json!({"type": "message", "text": "Anyone?"})).await;
    let reference = until(&mut socket, "queued").await["reference"]
        .as_str()
        .expect("reference")
        .to_owned();
    server.kill();
    drop(socket);

    // The session died with the process: nobody can resume it, so the chat is abandoned once
    // the grace period has passed after the restart. The short reference the visitor was
    // shown finds the chat with `Get` after the restart too.
    let server = ws.start_with_config(&config);
    let mut int = server.interactions(&ws.admin_token());
    let get = pb::GetRequest {
        interaction_id: reference.clone(),
    };
    int.get(get.clone()).await.expect("open after the restart");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match int.get(get.clone()).await {
            Err(status) if status.code() == tonic::Code::NotFound => break,
            Ok(_) => {}
            Err(status) => panic!("Get failed: {status:?}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the orphaned chat {reference} was not ended"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_survey_is_asked_in_the_widget_and_answered_on_its_page() {
    let ws = Workspace::new();
    let server = with_surveys(&ws);
    let (mut desk, mut offers) = logged_in_agent(&ws, &server, "david").await;

    let (mut socket, started, reference) = accepted_chat(
        &server,
        &mut desk,
        &mut offers,
        "Ana",
        json!({"type": "message", "text": "Hello"}),
    )
    .await;
    desk.complete(pb::CompleteRequest {
        interaction_id: reference.clone(),
        wrap_up_code: "answered".into(),
        ..Default::default()
    })
    .await
    .expect("Complete");

    // The question comes in the widget, in the chat's language, before the end.
    let survey = until(&mut socket, "survey").await;
    let question = survey["question"].as_str().expect("question");
    assert!(question.starts_with("Are you satisfied"), "{survey}");
    let url = survey["url"].as_str().expect("url").to_owned();
    let token = survey["token"].as_str().expect("token");
    assert!(url.ends_with(&format!("/survey/{token}")), "{survey}");
    let ended = until(&mut socket, "ended").await;
    assert_eq!(ended["reason"], "agent");

    // The page reloads before the answer: the visitor reconnecting is asked the question again.
    drop(socket);
    let mut again = connect(&server).await;
    send(
        &mut again,
        json!({"type": "resume", "session": started["session"], "token": started["resume_token"]}),
    )
    .await;
    let resumed = until(&mut again, "resumed").await;
    assert_eq!(resumed["history"][0]["text"], "Hello", "{resumed}");
    let asked_again = until(&mut again, "survey").await;
    assert_eq!(asked_again, survey);
    assert_eq!(until(&mut again, "ended").await["reason"], "agent");
    // A wrong token is not.
    let mut stranger = connect(&server).await;
    send(
        &mut stranger,
        json!({"type": "resume", "session": started["session"], "token": "not-the-token"}),
    )
    .await;
    let (error, _) = closed_with(&mut stranger).await;
    assert_eq!(error["code"], "unknown_session", "{error}");

    // The widget posts the answer to the page and reads JSON.
    let response = reqwest::Client::new()
        .post(&url)
        .header("Accept", "application/json")
        .form(&[("score", "5"), ("comment", "Quick and kind")])
        .send()
        .await
        .expect("POST the answer");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["status"], "recorded");
    let interaction: guichet::core::InteractionId = reference.parse().expect("interaction id");
    let stored = ws
        .with_store(|s| s.survey_answer(&interaction))
        .expect("read the answer")
        .expect("the answer is stored");
    let (score, agent, channel) = (
        stored.score,
        stored
            .agent
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default(),
        stored.channel.as_str().to_owned(),
    );
    assert_eq!(
        (score, agent.as_str(), channel.as_str()),
        (5, "david", "chat")
    );
}

/// A visitor away when the chat is completed (the page reloading, no email address given) is
/// asked the survey question in the widget when it resumes, then told the chat ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_away_at_the_completion_is_asked_the_survey_on_resume() {
    let ws = Workspace::new();
    let server = with_surveys(&ws);
    let (mut desk, mut offers) = logged_in_agent(&ws, &server, "david").await;

    let (socket, started, reference) = accepted_chat(
        &server,
        &mut desk,
        &mut offers,
        "Ana",
        json!({"type": "message", "text": "Hello"}),
    )
    .await;

    // The page reloads: the socket goes away without ending the chat, and the agent completes
    // it meanwhile.
    drop(socket);
    tokio::time::sleep(Duration::from_millis(500)).await;
    desk.complete(pb::CompleteRequest {
        interaction_id: reference.clone(),
        wrap_up_code: "answered".into(),
        ..Default::default()
    })
    .await
    .expect("Complete");
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut again = connect(&server).await;
    send(
        &mut again,
        json!({"type": "resume", "session": started["session"], "token": started["resume_token"]}),
    )
    .await;
    let resumed = until(&mut again, "resumed").await;
    assert_eq!(resumed["history"][0]["text"], "Hello", "{resumed}");
    let survey = until(&mut again, "survey").await;
    let question = survey["question"].as_str().expect("question");
    assert!(question.starts_with("Are you satisfied"), "{survey}");
    assert_eq!(until(&mut again, "ended").await["reason"], "agent");
}

/// The agent's lines, each once: a visitor who reconnects says which line it shows last
/// (`after`) and gets exactly the lines it has not had, none twice, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_visitor_gets_exactly_the_lines_it_missed() {
    let ws = Workspace::new();
    let server = ws.start_with_config(&config_with_short_grace(&ws));
    let (mut desk, mut offers) = logged_in_agent(&ws, &server, "david").await;

    let (mut socket, started, reference) = accepted_chat(
        &server,
        &mut desk,
        &mut offers,
        "Inès",
        json!({"type": "message", "text": "Bonjour", "client_id": "a"}),
    )
    .await;
    let say = |text: String| {
        let mut desk = desk.clone();
        let interaction_id = reference.clone();
        async move {
            desk.send_message(pb::SendMessageRequest {
                interaction_id,
                text,
                ..Default::default()
            })
            .await
            .expect("SendMessage");
        }
    };
    say("line 1".into()).await;
    say("line 2".into()).await;
    let one = until(&mut socket, "message").await;
    let two = until(&mut socket, "message").await;
    assert_eq!(
        (one["text"].as_str(), two["text"].as_str()),
        (Some("line 1"), Some("line 2"))
    );
    let (seq1, seq2) = (
        one["seq"].as_u64().expect("seq"),
        two["seq"].as_u64().expect("seq"),
    );
    assert!(seq1 > 0 && seq2 > seq1, "lines numbered in journal order");

    // The connection drops; the agent goes on writing meanwhile.
    drop(socket);
    for i in 3..=5 {
        say(format!("line {i}")).await;
    }
    let mut socket = connect(&server).await;
    send(
        &mut socket,
        json!({"type": "resume", "session": started["session"],
               "token": started["resume_token"], "after": seq2}),
    )
    .await;
    let resumed = until(&mut socket, "resumed").await;
    let texts: Vec<&str> = resumed["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|l| l["text"].as_str())
        .collect();
    assert_eq!(
        texts,
        ["line 3", "line 4", "line 5"],
        "only the lines missed"
    );
    let last = resumed["history"][2]["seq"].as_u64().expect("seq");

    // Live lines go on after the replay, none twice.
    say("line 6".into()).await;
    let six = until(&mut socket, "message").await;
    assert_eq!(six["text"], "line 6");
    assert!(six["seq"].as_u64().expect("seq") > last);

    // A page that reloaded shows nothing: without `after`, the whole conversation.
    drop(socket);
    let mut socket = connect(&server).await;
    send(
        &mut socket,
        json!({"type": "resume", "session": started["session"], "token": started["resume_token"]}),
    )
    .await;
    let resumed = until(&mut socket, "resumed").await;
    let texts: Vec<&str> = resumed["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|l| l["text"].as_str())
        .collect();
    assert_eq!(
        texts,
        ["Bonjour", "line 1", "line 2", "line 3", "line 4", "line 5", "line 6"]
    );
    // The visitor's line carries its client id: a widget still waiting for its ack knows it.
    assert_eq!(resumed["history"][0]["client_id"], "a");
    assert!(resumed["history"][1].get("client_id").is_none());
}
