//! The inbound email channel on the real server over loopback: messages sent with lettre's SMTP
//! transport (multipart/alternative with an attachment, HTML-only in ISO-8859-1) become
//! conversations, acknowledged with the reference and the queue's announced delay; the agent
//! answers over gRPC with threading headers; the citizen's replies (by In-Reply-To or by the
//! `[#REFERENCE]` subject tag) join the interaction; a reply after completion opens a new one
//! linked to it; the agent's reply and the acknowledgement reach a local SMTP relay with their
//! threading headers; refusals (unknown recipient, too big, malformed) store nothing; and the
//! inbound-parse webhook (SendGrid and Mailgun fields) feeds the same pipeline.

use crate::api_common;
use crate::notify_common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use api_common::{eventually, next, Workspace};
use guichet::api::proto as pb;
use pb::offer_update::Update;

const BENEFITS: &str = "logement@service-public.example";
const TAX: &str = "impots@service-public.example";
const DOMAIN: &str = "guichet.service-public.example";
const LIMIT: Duration = Duration::from_secs(20);

fn transport(addr: SocketAddr) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
        .port(addr.port())
        .timeout(Some(Duration::from_secs(30)))
        .build()
}

/// Sends `raw` with lettre; the server's reply text.
async fn send(addr: SocketAddr, from: &str, to: &str, raw: &[u8]) -> String {
    let envelope = Envelope::new(
        Some(from.parse().expect("from")),
        vec![to.parse().expect("to")],
    )
    .expect("envelope");
    let response = transport(addr)
        .send_raw(&envelope, raw)
        .await
        .unwrap_or_else(|e| panic!("SMTP send failed: {e}"));
    response.message().collect::<Vec<_>>().join(" ")
}

/// The interaction id in a `250 ... interaction <ID>` reply.
/// The short reference shown to the citizen for interaction `id`.
fn pb_reference(id: &str) -> String {
    let id: guichet::core::InteractionId = id.parse().expect("interaction id");
    id.reference().to_string()
}

fn interaction_in(reply: &str) -> String {
    reply
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .trim_end_matches(')')
        .to_owned()
}

/// Every stored message of an interaction: (id, message JSON), in order (read through the
/// store, on either backend).
fn messages(ws: &Workspace, interaction: &str) -> Vec<(String, serde_json::Value)> {
    ws.journal()
        .into_iter()
        .filter(|r| r.kind == "message_added" && r.interaction.as_deref() == Some(interaction))
        .map(|r| (r.message.unwrap_or_default(), r.payload["message"].clone()))
        .collect()
}

fn count(ws: &Workspace, kind: &str) -> i64 {
    ws.journal().iter().filter(|r| r.kind == kind).count() as i64
}

fn created_payload(ws: &Workspace, interaction: &str) -> String {
    ws.journal_payloads(interaction, "interaction_created")
        .first()
        .expect("interaction_created row")
        .to_string()
}

fn meta<'a>(m: &'a serde_json::Value, key: &str) -> &'a str {
    m["meta"][key].as_str().unwrap_or_default()
}

fn multipart_with_attachment(message_id: &str) -> String {
    format!(
        "From: Jeanne Citoyenne <Jeanne@Example.ORG>\r\n\
To: {BENEFITS}\r\n\
Subject: Demande d'aide au logement\r\n\
Message-ID: {message_id}\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=\"inner\"\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Bonjour, je voudrais savoir où en est mon dossier.\r\n\
.Une ligne qui commence par un point.\r\n\
--inner\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>Bonjour, je voudrais savoir o&ugrave; en est mon dossier.</p>\r\n\
--inner--\r\n\
--outer\r\n\
Content-Type: application/pdf; name=\"avis.pdf\"\r\n\
Content-Disposition: attachment; filename=\"avis.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK\r\n\
--outer--\r\n"
    )
}

async fn next_offer(stream: &mut tonic::Streaming<pb::OfferUpdate>) -> pb::Offer {
    loop {
        match next(stream).await.update {
            Some(Update::Offer(offer)) => return offer,
            Some(Update::Message(_)) => continue,
            other => panic!("expected an offer, got {other:?}"),
        }
    }
}

/// The next conversation message pushed on the offer stream.
async fn next_message(stream: &mut tonic::Streaming<pb::OfferUpdate>) -> pb::ConversationMessage {
    loop {
        match next(stream).await.update {
            Some(Update::Message(m)) => return m,
            Some(Update::Offer(_)) => continue,
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_become_threaded_acknowledged_conversations() {
    let ws = Workspace::new();
    // Outbound mail goes to a local SMTP sink standing in for the service's relay.
    let sink = notify_common::SmtpSink::start(0).await;
    let config = api_common::config_with(
        ws.path(),
        &format!(
            "[email.outbound]\nrelay_host = \"127.0.0.1\"\nrelay_port = {}\ntls = \"none\"\n\
             from_address = \"{BENEFITS}\"\n",
            sink.addr.port()
        ),
    );
    let server = ws.start_with_config(&config);
    let smtp = server.smtp_addr.expect("the demo config listens for SMTP");
    let (token, _) = ws.token("agent", Some("amelie"));
    let mut desk = server.desktop(&token);
    desk.login(pb::LoginRequest::default())
        .await
        .expect("Login");
    let mut offers = desk
        .offers(pb::OffersRequest::default())
        .await
        .expect("Offers")
        .into_inner();

    // 1. A multipart/alternative message with a PDF, sent by lettre.
    let m1 = "<m1.4711@example.org>";
    let reply = send(
        smtp,
        "jeanne@example.org",
        BENEFITS,
        multipart_with_attachment(m1).as_bytes(),
    )
    .await;
    assert!(reply.contains("created interaction"), "{reply}");
    let id = interaction_in(&reply);

    let offer = next_offer(&mut offers).await;
    let offered = offer.interaction.as_ref().expect("interaction");
    assert_eq!(offered.id, id);
    let first = &offer.conversation[0];
    assert_eq!(first.direction, "inbound");
    assert_eq!(first.from, "jeanne@example.org", "sender lowercased");
    assert_eq!(first.to, BENEFITS);
    assert_eq!(first.subject, "Demande d'aide au logement");
    assert!(
        first.text.contains("où en est mon dossier"),
        "{:?}",
        first.text
    );
    assert!(
        first
            .text
            .contains("\n.Une ligne qui commence par un point."),
        "dot-unstuffing keeps one dot: {:?}",
        first.text
    );
    assert_eq!(first.attachments.len(), 1);
    assert_eq!(first.attachments[0].name, "avis.pdf");
    assert_eq!(first.attachments[0].content_type, "application/pdf");
    assert!(first.attachments[0].stored && first.attachments[0].size > 20);

    // The acknowledgement, committed for the notify module: reference, delay, threading.
    let ack = next_message(&mut offers).await;
    assert_eq!(ack.direction, "outbound");
    assert!(ack.agent.is_empty(), "Guichet's own message");
    assert_eq!(ack.to, "jeanne@example.org");
    assert_eq!(ack.from, BENEFITS);
    let reference = pb_reference(&id);
    assert!(
        ack.subject.starts_with(&format!("[#{reference}]")),
        "{}",
        ack.subject
    );
    assert!(
        ack.text.contains("sous 5 jours ouvrés") && ack.text.contains("within 5 working days"),
        "{}",
        ack.text
    );
    let stored = messages(&ws, &id);
    assert_eq!(stored.len(), 2);
    assert_eq!(meta(&stored[0].1, "message_id"), m1);
    assert!(meta(&stored[0].1, "html").contains("<p>"));
    assert_eq!(stored[0].0, "email:m1.4711@example.org");
    assert_eq!(meta(&stored[1].1, "in_reply_to"), m1);
    assert_eq!(meta(&stored[1].1, "auto_submitted"), "auto-replied");

    // A relay's retry of the same Message-ID is ignored.
    let again = send(
        smtp,
        "jeanne@example.org",
        BENEFITS,
        multipart_with_attachment(m1).as_bytes(),
    )
    .await;
    assert!(again.contains("Already received"), "{again}");
    assert_eq!(messages(&ws, &id).len(), 2);

    // 2. The agent accepts and replies: the reply threads under the citizen's message.
    desk.accept(pb::InteractionAction {
        interaction_id: id.clone(),
        ..Default::default()
    })
    .await
    .expect("Accept");
    let sent = desk
        .send_message(pb::SendMessageRequest {
            interaction_id: id.clone(),
            text: "Votre dossier est en cours d'instruction.".into(),
            ..Default::default()
        })
        .await
        .expect("SendMessage")
        .into_inner();
    assert_eq!(sent.subject, "Re: Demande d'aide au logement");
    let stored = messages(&ws, &id);
    let (reply_id, reply_msg) = stored.last().expect("the reply");
    assert_eq!(reply_id, &sent.id);
    assert_eq!(meta(reply_msg, "in_reply_to"), m1);
    assert_eq!(meta(reply_msg, "references"), m1);
    // The relay receives it with the headers that thread it in the citizen's mail client.
    let reply_ulid = reply_id.strip_prefix("email:").expect("email id");
    let reply_header = format!("<{reply_ulid}@{DOMAIN}>");
    let relayed = notify_common::wait_for(LIMIT, "the reply at the relay", || {
        sink.received()
            .into_iter()
            .find(|m| m.header("Message-ID").as_deref() == Some(reply_header.as_str()))
    })
    .await;
    assert_eq!(relayed.header("In-Reply-To").as_deref(), Some(m1));
    assert_eq!(relayed.header("References").as_deref(), Some(m1));
    assert_eq!(relayed.rcpt_to, ["<jeanne@example.org>"]);
    assert!(
        relayed.data.contains("en cours d'instruction"),
        "{}",
        relayed.data
    );
    // The acknowledgement went out too, threaded under the citizen's first message.
    let acks: Vec<_> = sink
        .received()
        .into_iter()
        .filter(|m| m.header("In-Reply-To").as_deref() == Some(m1))
        .collect();
    assert!(acks.len() >= 2, "acknowledgement and reply: {acks:?}");

    // 3. The citizen answers the agent's reply (its Message-ID as notify sends it).
    let ulid = reply_id.strip_prefix("email:").expect("email id");
    let answer = format!(
        "From: jeanne@example.org\r\nTo: {BENEFITS}\r\nSubject: Re: Demande d'aide au logement\r\n\
Message-ID: <m2@example.org>\r\nIn-Reply-To: <{ulid}@{DOMAIN}>\r\nReferences: {m1} <{ulid}@{DOMAIN}>\r\n\
\r\nMerci, voici mon numéro de dossier : 1234.\r\n"
    );
    let r = send(smtp, "jeanne@example.org", BENEFITS, answer.as_bytes()).await;
    assert!(r.contains(&format!("added interaction {id}")), "{r}");
    let pushed = loop {
        // The agent's own reply comes first on the stream.
        let m = next_message(&mut offers).await;
        if m.direction == "inbound" {
            break m;
        }
    };
    assert_eq!(pushed.interaction_id, id);
    assert!(pushed.text.contains("1234"));

    // 4. Only the reference tag in the subject (a new mail, no threading headers).
    let tagged = format!(
        "From: jeanne@example.org\r\nTo: {BENEFITS}\r\nSubject: Complement [#{reference}]\r\n\
Message-ID: <m3@example.org>\r\n\r\nJ'oubliais : mon adresse a change.\r\n"
    );
    let r = send(smtp, "jeanne@example.org", BENEFITS, tagged.as_bytes()).await;
    assert!(r.contains(&format!("added interaction {id}")), "{r}");

    // 5. Completed: a notice is committed during wrap-up (benefits has 30 s of wrap-up).
    desk.complete(pb::CompleteRequest {
        interaction_id: id.clone(),
        wrap_up_code: "answered".into(),
        ..Default::default()
    })
    .await
    .expect("Complete");
    eventually(LIMIT, "the completion notice", || {
        let found = messages(&ws, &id)
            .iter()
            .any(|(_, m)| meta(m, "notice") == "completed");
        async move { found.then_some(()) }
    })
    .await;

    // 6. A reply after completion opens a new interaction linked to the closed one.
    let late = format!(
        "From: jeanne@example.org\r\nTo: {BENEFITS}\r\nSubject: Re: Demande d'aide au logement\r\n\
Message-ID: <m4@example.org>\r\nIn-Reply-To: {m1}\r\n\r\nUne derniere question.\r\n"
    );
    let r = send(smtp, "jeanne@example.org", BENEFITS, late.as_bytes()).await;
    assert!(r.contains("created interaction"), "{r}");
    let linked = interaction_in(&r);
    assert_ne!(linked, id);
    let created = created_payload(&ws, &linked);
    assert!(
        created.contains("linked_to") && created.contains(&id),
        "{created}"
    );
    assert!(created.contains("benefits"), "same queue: {created}");
    let new_messages = messages(&ws, &linked);
    assert_eq!(new_messages.len(), 2, "the message and its acknowledgement");
    assert!(meta(&new_messages[1].1, "notice") == "acknowledgement");
    // Another reply to the closed case joins the open follow-up instead of opening a third.
    let later = late.replace("<m4@example.org>", "<m4b@example.org>");
    let r = send(smtp, "jeanne@example.org", BENEFITS, later.as_bytes()).await;
    assert!(r.contains(&format!("added interaction {linked}")), "{r}");

    // 7. HTML-only, ISO-8859-1, to the tax address: decoded and reduced to text.
    let latin1: Vec<u8> = [
        b"From: =?ISO-8859-1?Q?Ren=E9_Dupr=E9?= <rene@example.org>\r\nTo: ".as_slice(),
        TAX.as_bytes(),
        b"\r\nSubject: =?ISO-8859-1?Q?Imp=F4t_d=E9j=E0_pay=E9?=\r\nMessage-ID: <m5@example.org>\r\n\
MIME-Version: 1.0\r\nContent-Type: text/html; charset=ISO-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
<html><body><p>J'ai d\xe9j\xe0 pay\xe9 mon imp\xf4t.</p><p>Merci&nbsp;!</p></body></html>\r\n"
            .as_slice(),
    ]
    .concat();
    let r = send(smtp, "rene@example.org", TAX, &latin1).await;
    assert!(r.contains("created interaction"), "{r}");
    let tax = interaction_in(&r);
    let stored = messages(&ws, &tax);
    let text = stored[0].1["text"].as_str().unwrap_or_default();
    assert!(text.contains("J'ai déjà payé mon impôt."), "{text:?}");
    assert!(!text.contains("<p>"), "{text:?}");
    assert_eq!(stored[0].1["subject"], "Impôt déjà payé");
    assert!(created_payload(&ws, &tax).contains("tax"));
}

/// A raw SMTP session, to see every reply code.
struct Raw {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (r, w) = stream.into_split();
        let mut raw = Raw {
            reader: BufReader::new(r),
            writer: w,
        };
        let greeting = raw.reply().await;
        assert!(greeting.starts_with("220 "), "{greeting}");
        raw
    }

    /// The whole (possibly multi-line) reply.
    async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            tokio::time::timeout(LIMIT, self.reader.read_line(&mut line))
                .await
                .expect("reply in time")
                .expect("read");
            assert!(!line.is_empty(), "connection closed; got {all:?}");
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    async fn cmd(&mut self, line: &str) -> String {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .expect("write");
        self.reply().await
    }

    async fn data(&mut self, body: &[u8]) -> String {
        let go = self.cmd("DATA").await;
        assert!(go.starts_with("354"), "{go}");
        self.writer.write_all(body).await.expect("write body");
        self.writer
            .write_all(b"\r\n.\r\n")
            .await
            .expect("write end");
        self.reply().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_clear_and_store_nothing() {
    let ws = Workspace::new();
    let server = ws.start();
    let smtp = server.smtp_addr.expect("SMTP");
    let mut s = Raw::connect(smtp).await;

    assert!(s
        .cmd("MAIL FROM:<a@example.org>")
        .await
        .starts_with("503 5.5.1"));
    let ehlo = s.cmd("EHLO client.example").await;
    assert!(
        ehlo.contains("250-SIZE 10485760") && ehlo.contains("8BITMIME"),
        "{ehlo}"
    );
    assert!(s.cmd("NOOP").await.starts_with("250"));
    assert!(
        s.cmd("RCPT TO:<x@y>").await.starts_with("503"),
        "RCPT before MAIL"
    );

    // Unknown recipient: 550 5.1.1 at RCPT.
    assert!(s.cmd("MAIL FROM:<a@example.org>").await.starts_with("250"));
    let unknown = s.cmd("RCPT TO:<nobody@elsewhere.example>").await;
    assert!(unknown.starts_with("550 5.1.1"), "{unknown}");
    assert!(
        s.cmd("DATA").await.starts_with("554 5.5.1"),
        "no valid recipient"
    );
    assert!(s.cmd("RSET").await.starts_with("250"));

    // Announced size over the limit: 552 5.3.4 at MAIL.
    let big = s.cmd("MAIL FROM:<a@example.org> SIZE=20000000").await;
    assert!(big.starts_with("552 5.3.4"), "{big}");

    // A message over the limit without SIZE: 552 5.3.4 after DATA.
    assert!(s.cmd("MAIL FROM:<a@example.org>").await.starts_with("250"));
    assert!(s
        .cmd(&format!("RCPT TO:<{BENEFITS}>"))
        .await
        .starts_with("250"));
    let line = "x".repeat(998);
    let mut body = String::from("From: a@example.org\r\nSubject: big\r\n\r\n");
    while body.len() <= 10_485_760 {
        body.push_str(&line);
        body.push_str("\r\n");
    }
    let r = s.data(body.as_bytes()).await;
    assert!(r.starts_with("552 5.3.4"), "{r}");

    // Malformed: no sender anywhere (null envelope sender, no From header).
    assert!(s.cmd("MAIL FROM:<>").await.starts_with("250"));
    assert!(s
        .cmd(&format!("RCPT TO:<{BENEFITS}>"))
        .await
        .starts_with("250"));
    let r = s.data(b"Subject: who am I\r\n\r\nno sender\r\n").await;
    assert!(r.starts_with("554 5.6.0") && r.contains("From"), "{r}");

    assert!(s.cmd("STARTTLS").await.starts_with("502"));
    assert!(s.cmd("QUIT").await.starts_with("221"));

    assert_eq!(count(&ws, "interaction_created"), 0, "nothing stored");
    assert_eq!(count(&ws, "message_added"), 0, "nothing stored");
    let log = ws.log_text();
    assert!(
        log.contains("unknown recipient") && log.contains("message too big"),
        "{log}"
    );
    // And a metric.
    let metrics = reqwest::get(format!("http://{}/metrics", server.http_addr))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    for reason in ["unknown_recipient", "too_big"] {
        let line =
            format!("guichet_channel_refusals_total{{channel=\"email\",reason=\"{reason}\"}}");
        assert!(metrics.contains(&line), "{line} missing in:\n{metrics}");
    }
}

/// The demo configuration with the webhook's secret set.
fn config_with_webhook(dir: &Path) -> std::path::PathBuf {
    let demo = std::fs::read_to_string(api_common::demo_config()).expect("demo config");
    let text = demo.replace(
        "# webhook_token = \"a-long-random-secret\"",
        "webhook_token = \"test-secret-0123456789\"",
    );
    assert_ne!(
        text, demo,
        "the demo config has the commented webhook_token line"
    );
    let path = dir.join("guichet-webhook.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn multipart_body(
    boundary: &str,
    fields: &[(&str, &str)],
    file: Option<(&str, &str, &[u8])>,
) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    if let Some((name, file_name, data)) = file {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\n\
Content-Type: text/plain\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_parse_webhook_feeds_the_same_pipeline() {
    let ws = Workspace::new();
    let config = config_with_webhook(ws.log().parent().expect("workspace"));
    let server = ws.start_with_config(&config);
    let url = format!("http://{}/email/inbound", server.http_addr);
    let http = reqwest::Client::new();

    // No secret, then a wrong one: 401, nothing stored.
    let r = http.post(&url).body("x").send().await.expect("post");
    assert_eq!(r.status(), 401);
    let r = http
        .post(format!("{url}?token=wrong-secret-000000"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("from=a%40b.c")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);

    // SendGrid Inbound Parse (parsed fields, one attachment), secret in the URL.
    let boundary = "xYzZY";
    let body = multipart_body(
        boundary,
        &[
            ("from", "Paul <Paul@Example.net>"),
            ("to", BENEFITS),
            ("subject", "Question APL"),
            ("text", "Bonjour, une question sur l'APL."),
            ("html", "<p>Bonjour, une question sur l'APL.</p>"),
            (
                "headers",
                "Message-ID: <sg1@example.net>\nFrom: Paul <Paul@Example.net>\n",
            ),
            (
                "envelope",
                &format!("{{\"to\":[\"{BENEFITS}\"],\"from\":\"paul@example.net\"}}"),
            ),
            ("attachments", "1"),
        ],
        Some(("attachment1", "note.txt", b"bonjour")),
    );
    let r = http
        .post(format!("{url}?token=test-secret-0123456789"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.expect("JSON");
    assert_eq!(v["outcome"], "created");
    let id = v["interaction_id"].as_str().expect("id").to_owned();
    let stored = messages(&ws, &id);
    assert_eq!(stored[0].0, "email:sg1@example.net");
    assert_eq!(stored[0].1["from"], "paul@example.net");
    assert_eq!(stored[0].1["attachments"][0]["name"], "note.txt");
    assert_eq!(stored[1].1["meta"]["notice"], "acknowledgement");

    // Mailgun with the whole MIME message, basic auth, replying to the first: same interaction.
    let mime = format!(
        "From: paul@example.net\r\nTo: {BENEFITS}\r\nSubject: Re: Question APL\r\nMessage-ID: <mg2@example.net>\r\n\
In-Reply-To: <sg1@example.net>\r\n\r\nEt une autre precision.\r\n"
    );
    let r = http
        .post(&url)
        .basic_auth("api", Some("test-secret-0123456789"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "recipient={}&sender=paul%40example.net&body-mime={}",
            BENEFITS.replace('@', "%40"),
            urlencode(&mime)
        ))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.expect("JSON");
    assert_eq!(v["outcome"], "added");
    assert_eq!(v["interaction_id"], id.as_str());

    // Unknown recipient: 406, nothing stored.
    let before = count(&ws, "message_added");
    let r = http
        .post(format!("{url}?token=test-secret-0123456789"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("recipient=nobody%40elsewhere.example&from=a%40b.c&body-plain=hi")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 406);
    let text = r.text().await.expect("text");
    assert!(text.contains("no such recipient"), "{text}");
    assert_eq!(count(&ws, "message_added"), before);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
