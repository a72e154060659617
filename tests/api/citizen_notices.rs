//! Keeping citizens informed, on the real server over loopback: an SMS conversation moved to
//! another service sends the citizen one SMS naming the new service and the reference (once,
//! also across a restart); an email past its announced delay gets one email saying so; an SMS
//! acknowledgement names the reference; the chat widget's page is in the asked language with
//! its topics' labels, and a message left in it becomes an email request.

use crate::api_common;
use crate::notify_common;

use std::time::Duration;

use api_common::{config_with, eventually, waiting, Server, Workspace};
use guichet::api::proto as pb;
use notify_common::{twilio_signature, SmsProvider, SmtpSink};

const TOKEN: &str = "test-auth-token";
const ACCOUNT: &str = "AC0123456789abcdef";
const SERVICE: &str = "+33100000000";
const CITIZEN: &str = "+33612345678";
const BENEFITS: &str = "logement@service-public.example";
const LIMIT: Duration = Duration::from_secs(30);

async fn post_sms(server: &Server, sid: &str, body: &str) -> u16 {
    let url = format!("http://{}/sms/twilio", server.http_addr);
    let params = [
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT),
        ("From", CITIZEN),
        ("To", SERVICE),
        ("Body", body),
        ("NumMedia", "0"),
    ];
    reqwest::Client::new()
        .post(&url)
        .header("X-Twilio-Signature", twilio_signature(TOKEN, &url, &params))
        .form(&params)
        .send()
        .await
        .expect("post the webhook")
        .status()
        .as_u16()
}

/// Changes queue `id` with `change`, through the supervisor API (the proto fields 21 and 22).
async fn change_queue(server: &Server, token: &str, id: &str, change: impl FnOnce(&mut pb::Queue)) {
    let back = api_common::change_queue(&mut server.supervisor(token), id, change).await;
    assert_eq!(back.id, id);
}

/// The reference citizens are given: the first 12 characters of the interaction id.
/// The request's short reference, as citizens are given it (`K7M2Q-X9D4A`).
fn reference(id: &str) -> String {
    id.parse::<guichet::core::InteractionId>()
        .expect("an interaction id")
        .reference()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_moved_to_another_service_tells_the_citizen_once() {
    let ws = Workspace::new();
    let provider = SmsProvider::start(0).await;
    let config = config_with(
        ws.path(),
        &format!(
            r#"
[sms]
base_url = "http://127.0.0.1:{}"
account_sid = "{ACCOUNT}"
auth_token = "{TOKEN}"
numbers = [{{ number = "{SERVICE}", queue = "general" }}]

[notify]
retry_initial_ms = 200
retry_max_secs = 1

[citizen]
sms_acknowledgement = true
late_check_secs = 1
"#,
            provider.addr.port()
        ),
    );
    let mut server = ws.start_with_config(&config);
    let admin = ws.admin_token();
    change_queue(&server, &admin, "benefits", |q| q.inform_moved = true).await;
    let listed = server
        .supervisor(&admin)
        .list_queues(pb::ListQueuesRequest::default())
        .await
        .expect("ListQueues")
        .into_inner();
    assert!(listed
        .queues
        .iter()
        .any(|q| q.id == "benefits" && q.inform_moved));
    assert!(listed.queues.iter().all(|q| !q.inform_late));

    assert_eq!(post_sms(&server, "SM1001", "Bonjour, mon APL ?").await, 200);
    // The acknowledgement names the reference.
    let first = provider.wait_for(1).await;
    let id = eventually(LIMIT, "the SMS waiting", || {
        let mut sup = server.supervisor(&admin);
        async move {
            let resp = sup
                .list_waiting(pb::ListWaitingRequest::default())
                .await
                .ok()?
                .into_inner();
            waiting(&resp)
                .into_iter()
                .find(|i| i.channel == pb::Channel::Sms as i32)
                .map(|i| i.id)
        }
    })
    .await;
    let ack = first[0].field("Body").unwrap_or_default().to_owned();
    assert!(ack.contains(&reference(&id)), "{ack}");
    assert_eq!(first[0].field("To"), Some(CITIZEN));

    // The reception passes it to the housing benefits service: one SMS names the service and
    // the reference.
    server
        .supervisor(&admin)
        .r#move(pb::MoveRequest {
            interaction_id: id.clone(),
            queue: "benefits".into(),
        })
        .await
        .expect("Move");
    let sent = provider.wait_for(2).await;
    let notice = sent[1].field("Body").unwrap_or_default().to_owned();
    assert!(
        notice.contains("Aides au logement / Housing benefits"),
        "{notice}"
    );
    assert!(notice.contains(&reference(&id)), "{notice}");
    assert_eq!(sent[1].field("To"), Some(CITIZEN));
    assert_eq!(sent[1].field("From"), Some(SERVICE));

    // Moved back to the reception (which does not inform of moves): nothing more. A restart
    // hands the notices' view what it had not checkpointed: still nothing more.
    server
        .supervisor(&admin)
        .r#move(pb::MoveRequest {
            interaction_id: id.clone(),
            queue: "general".into(),
        })
        .await
        .expect("Move back");
    server.terminate();
    let server = ws.start_with_config(&config);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(provider.received().len(), 2, "{:?}", provider.received());
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_past_its_announced_delay_gets_one_message() {
    let ws = Workspace::new();
    let sink = SmtpSink::start(0).await;
    let config = config_with(
        ws.path(),
        &format!(
            "[email.outbound]\nrelay_host = \"127.0.0.1\"\nrelay_port = {}\ntls = \"none\"\n\
             from_address = \"{BENEFITS}\"\n\n[citizen]\nlate_check_secs = 1\n",
            sink.addr.port()
        ),
    );
    let mut server = ws.start_with_config(&config);
    let admin = ws.admin_token();
    // Benefits answers emails within 2 seconds, and says so when it does not.
    change_queue(&server, &admin, "benefits", |q| {
        q.inform_late = true;
        let mut targets = q.sla_target_secs.unwrap_or_default();
        targets.email = 2;
        q.sla_target_secs = Some(targets);
        q.sla_working_days = None;
    })
    .await;

    let smtp = server.smtp_addr.expect("the demo config listens for SMTP");
    let raw = "From: Jeanne <jeanne@example.org>\r\nTo: logement@service-public.example\r\n\
               Subject: Mon dossier APL\r\nMessage-ID: <late.1@example.org>\r\n\r\n\
               Bonjour, où en est mon dossier ?\r\n";
    send_mail(smtp, raw).await;
    // The acknowledgement, then, past the 2 seconds, the late notice, threaded under the
    // citizen's message.
    let mails = sink.wait_for(2).await;
    let late: Vec<_> = mails
        .iter()
        .filter(|m| {
            m.header("Subject")
                .is_some_and(|s| s.contains("Taking longer than announced"))
        })
        .collect();
    assert_eq!(late.len(), 1, "{mails:?}");
    let late = late[0];
    assert!(late
        .rcpt_to
        .iter()
        .any(|r| r.contains("jeanne@example.org")));
    assert_eq!(
        late.header("In-Reply-To").as_deref(),
        Some("<late.1@example.org>")
    );
    let ack = &mails[0];
    let subject = ack.header("Subject").unwrap_or_default();
    let reference = subject
        .trim_start_matches("[#")
        .split(']')
        .next()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(reference.len(), 11, "{subject}");
    assert!(late.data.contains(&reference), "{}", late.data);

    // Once: not again at the next checks, nor after a restart (the request is still waiting).
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.terminate();
    let server = ws.start_with_config(&config);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(sink.received().len(), 2, "{:?}", sink.received());
    drop(server);
}

async fn send_mail(addr: std::net::SocketAddr, raw: &str) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let stream = tokio::net::TcpStream::connect(addr).await.expect("SMTP");
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut expect = async |code: &str| {
        // A reply may span lines ("250-..."): read up to its last line.
        loop {
            let line = lines.next_line().await.expect("read").expect("a reply");
            assert!(line.starts_with(code), "expected {code}, got {line}");
            if line.as_bytes().get(3) != Some(&b'-') {
                return;
            }
        }
    };
    expect("220").await;
    for (cmd, code) in [
        ("EHLO test.example\r\n".to_owned(), "250"),
        ("MAIL FROM:<jeanne@example.org>\r\n".to_owned(), "250"),
        (format!("RCPT TO:<{BENEFITS}>\r\n"), "250"),
        ("DATA\r\n".to_owned(), "354"),
    ] {
        write.write_all(cmd.as_bytes()).await.expect("write");
        expect(code).await;
    }
    write
        .write_all(format!("{raw}.\r\n").as_bytes())
        .await
        .expect("write");
    expect("250").await;
    write.write_all(b"QUIT\r\n").await.expect("write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_page_speaks_the_asked_language_and_takes_messages() {
    let ws = Workspace::new();
    let sink = SmtpSink::start(0).await;
    let config = config_with(
        ws.path(),
        &format!(
            "[email.outbound]\nrelay_host = \"127.0.0.1\"\nrelay_port = {}\ntls = \"none\"\n\
             from_address = \"{BENEFITS}\"\n\n[citizen.hours.general]\ntime_zone = \"Europe/Paris\"\n\
             schedule = {{ mon = [\"08:30-12:00\"] }}\nholidays = []\n",
            sink.addr.port()
        ),
    );
    let server = ws.start_with_config(&config);
    let base = format!("http://{}", server.http_addr);
    let http = reqwest::Client::new();
    let page = http
        .get(format!("{base}/chat/widget?lang=en"))
        .send()
        .await
        .expect("widget")
        .text()
        .await
        .expect("body");
    assert!(page.contains("<html lang=\"en\">"), "lang follows ?lang=");
    assert!(page.contains("<title>Chat with an advisor</title>"));
    assert!(
        page.contains(">Income tax</option>"),
        "the topic's English label"
    );
    assert!(page.contains("<option value=\"\" selected>Choose a topic</option>"));
    assert!(page.contains("name=\"description\"") && page.contains("rel=\"icon\""));
    assert!(!page.contains("{{"), "every placeholder filled");
    let fr = http
        .get(format!("{base}/chat/widget?lang=fr"))
        .send()
        .await
        .expect("widget")
        .text()
        .await
        .expect("body");
    assert!(fr.contains("<html lang=\"fr\">") && fr.contains(">Impôts</option>"));

    // A message left in the widget (as a browser without JavaScript posts it).
    let form = [
        ("name", "Jeanne"),
        ("email", "jeanne@example.org"),
        ("topic", ""),
        ("first", "Bonjour, quels sont vos horaires ?"),
        ("lang", "fr"),
    ];
    let response = http
        .post(format!("{base}/chat/message"))
        .form(&form)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);
    let body = response.text().await.expect("body");
    assert!(body.contains("<title>Message envoyé</title>"), "{body}");
    assert!(body.contains("référence"), "{body}");
    let bad = http
        .post(format!("{base}/chat/message"))
        .form(&[
            ("name", "Jeanne"),
            ("email", "not an address"),
            ("first", "x"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status(), 400);
    let bad = bad.text().await.expect("body");
    assert!(
        bad.contains("<title>Erreur : message non envoyé</title>"),
        "{bad}"
    );

    // The accessibility statement and the favicon.
    let statement = http
        .get(format!("{base}/accessibility?lang=en"))
        .send()
        .await
        .expect("statement");
    assert_eq!(statement.status(), 200);
    let statement = statement.text().await.expect("body");
    assert!(statement.contains("Accessibility statement") && statement.contains("RGAA"));
    let icon = http
        .get(format!("{base}/favicon.ico"))
        .send()
        .await
        .expect("favicon");
    assert_eq!(icon.status(), 200);
    assert_eq!(
        icon.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("image/svg+xml")
    );
    drop(sink);
}
