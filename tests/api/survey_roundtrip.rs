//! Satisfaction surveys on the real server, end to end over loopback: an interaction completed
//! over gRPC is followed by one question by the contact's channel, and the answer comes back.
//! - SMS: the question reaches a local stand-in of the provider's REST API; the citizen's SMS
//!   reply (a signed webhook) is recorded as the answer, thanked in the TwiML, and a provider's
//!   retry of it is ignored; a second completion within the period asks nothing.
//! - Email: the question reaches a local SMTP relay, threaded under the citizen's mail; the
//!   citizen's reply sent over SMTP is the answer; the page then says it was answered.
//! - Calls: a caller with a mobile number is asked by SMS; a landline is not.
//! - The survey page: the form, a bad score (400 with the form and the error), the answer with
//!   the opt-out box, a second answer (409), an unknown token (404); the opted-out contact is
//!   not asked again.
//! - STOP by SMS opts the number out of surveys.
//! - One email at completion: the agent's reply, the completion notice and the survey link
//!   reach the citizen as one email, also when the server is killed before it was sent.
//!
//! Answers are read back from the server's database and from `/indicators`.

use crate::api_common;
use crate::notify_common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use api_common::{config_with, logged_in_agent, next, Server, Workspace};
use guichet::api::proto as pb;
use notify_common::{twilio_signature, SmsProvider, SmtpSink};
use pb::offer_update::Update;

const TOKEN: &str = "test-auth-token";
const ACCOUNT: &str = "AC0123456789abcdef";
const SERVICE: &str = "+33100000000";
const CITIZEN: &str = "+33612345678";
const BENEFITS: &str = "logement@service-public.example";
const DOMAIN: &str = "guichet.service-public.example";
const LIMIT: Duration = Duration::from_secs(30);

/// The demo configuration with SMS through the stand-in on `provider_port`, outbound mail to the
/// sink on `smtp_port` (if any), surveys on for `benefits`, and `extra`.
fn survey_config(
    ws: &Workspace,
    provider_port: u16,
    smtp_port: Option<u16>,
    extra: &str,
) -> PathBuf {
    let mail = smtp_port.map_or_else(String::new, |port| {
        format!(
            "[email.outbound]\nrelay_host = \"127.0.0.1\"\nrelay_port = {port}\ntls = \"none\"\n\
             from_address = \"{BENEFITS}\"\n"
        )
    });
    config_with(
        ws.path(),
        &format!(
            r#"
[sms]
base_url = "http://127.0.0.1:{provider_port}"
account_sid = "{ACCOUNT}"
auth_token = "{TOKEN}"
numbers = [{{ number = "{SERVICE}", queue = "benefits" }}]

[notify]
retry_initial_ms = 200
retry_max_secs = 1

{mail}

[surveys]
enabled = true
queues = ["benefits"]
{extra}
"#
        ),
    )
}

/// Posts an SMS webhook signed as the provider does; status and body.
async fn post_sms(server: &Server, sid: &str, from: &str, body: &str) -> (u16, String) {
    let url = format!("http://{}/sms/twilio", server.http_addr);
    let params = [
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT),
        ("From", from),
        ("To", SERVICE),
        ("Body", body),
        ("NumMedia", "0"),
    ];
    let signature = twilio_signature(TOKEN, &url, &params);
    let response = reqwest::Client::new()
        .post(&url)
        .header("X-Twilio-Signature", signature)
        .form(&params)
        .send()
        .await
        .expect("post the webhook");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// Waits for the next offer, accepts it, answers with `text` (unless empty) and completes it;
/// returns the interaction id.
async fn handle_next(
    desk: &mut pb::agent_desktop_client::AgentDesktopClient<api_common::Authed>,
    offers: &mut tonic::Streaming<pb::OfferUpdate>,
    text: &str,
) -> String {
    let offer = loop {
        if let Some(Update::Offer(offer)) = next(offers).await.update {
            break offer;
        }
    };
    let id = offer.interaction.expect("interaction").id;
    desk.accept(pb::InteractionAction {
        interaction_id: id.clone(),
        ..Default::default()
    })
    .await
    .expect("Accept");
    if !text.is_empty() {
        desk.send_message(pb::SendMessageRequest {
            interaction_id: id.clone(),
            text: text.to_owned(),
            ..Default::default()
        })
        .await
        .expect("SendMessage");
    }
    desk.complete(pb::CompleteRequest {
        interaction_id: id.clone(),
        wrap_up_code: "answered".into(),
        ..Default::default()
    })
    .await
    .expect("Complete");
    // Done with the wrap-up at once: available for the next offer.
    desk.set_state(pb::SetStateRequest {
        state: pb::agent_state::Kind::Available as i32,
        ..Default::default()
    })
    .await
    .expect("SetState available");
    id
}

/// The survey question recorded for an interaction: token, via, address (read through the
/// store, on either backend).
fn question(ws: &Workspace, interaction: &str) -> Option<(String, String, Option<String>)> {
    let interaction: guichet::core::InteractionId = interaction.parse().expect("interaction id");
    ws.with_store(|s| s.survey_question_of(interaction))
        .expect("read survey_questions")
        .map(|q| (q.token, q.via.as_str().to_owned(), q.address))
}

/// The answer recorded for an interaction: score, comment, agent, channel.
fn answer(ws: &Workspace, interaction: &str) -> Option<(u8, Option<String>, String, String)> {
    let interaction: guichet::core::InteractionId = interaction.parse().expect("interaction id");
    ws.with_store(|s| s.survey_answer(&interaction))
        .expect("read survey_answers")
        .map(|a| {
            (
                a.score,
                a.comment,
                a.agent.map(|g| g.as_str().to_owned()).unwrap_or_default(),
                a.channel.as_str().to_owned(),
            )
        })
}

/// Waits until the survey task has dealt with the completion of `interaction` (its checkpoint
/// passed the completion's journal row).
async fn surveyed_or_skipped(ws: &Workspace, interaction: &str) {
    let id: guichet::core::InteractionId = interaction.parse().expect("interaction id");
    notify_common::wait_for(LIMIT, "the survey task passes the completion", || {
        let completed = !ws
            .journal_payloads(interaction, "interaction_completed")
            .is_empty();
        // Completions after the survey checkpoint: the task has not dealt with them yet.
        let (pending, _) = ws
            .with_store(|s| s.survey_completions(10_000))
            .expect("read the survey checkpoint");
        (completed && pending.iter().all(|c| c.interaction != id)).then_some(())
    })
    .await;
}

async fn indicators(server: &Server) -> serde_json::Value {
    reqwest::get(format!("http://{}/indicators", server.http_addr))
        .await
        .expect("GET /indicators")
        .json()
        .await
        .expect("indicators JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_survey_round_trip() {
    let ws = Workspace::new();
    let provider = SmsProvider::start(0).await;
    let config = survey_config(&ws, provider.addr.port(), None, "");
    let server = ws.start_with_config(&config);
    let (mut desk, mut offers) = logged_in_agent(&ws, &server, "amelie").await;

    let (status, _) = post_sms(&server, "SM0001", CITIZEN, "Où en est mon dossier ?").await;
    assert_eq!(status, 200);
    let id = handle_next(&mut desk, &mut offers, "Il est validé.").await;

    // The agent's reply, then the survey question, reach the provider stand-in.
    let sent = provider.wait_for(2).await;
    let q = &sent[1];
    assert_eq!(q.field("To"), Some(CITIZEN));
    assert_eq!(q.field("From"), Some(SERVICE));
    let body = q.field("Body").expect("Body");
    assert!(
        body.contains("1") && body.contains("5") && body.contains("STOP"),
        "{body}"
    );
    let (token, via, address) = question(&ws, &id).expect("question recorded");
    assert_eq!((via.as_str(), address.as_deref()), ("sms", Some(CITIZEN)));
    assert!(body.contains(&format!("/survey/{token}")), "{body}");

    // The citizen's reply is the answer, thanked in the webhook's answer.
    let (status, twiml) = post_sms(&server, "SM0002", CITIZEN, "4 très bien, merci").await;
    assert_eq!(status, 200);
    assert!(
        twiml.contains("<Message>") && twiml.contains("Merci"),
        "{twiml}"
    );
    assert_eq!(
        answer(&ws, &id),
        Some((
            4,
            Some("très bien, merci".into()),
            "amelie".into(),
            "sms".into()
        ))
    );
    // A provider's retry of the same SMS changes nothing and opens nothing.
    let (status, twiml) = post_sms(&server, "SM0002", CITIZEN, "4 très bien, merci").await;
    assert_eq!(status, 200);
    assert!(!twiml.contains("<Message>"), "{twiml}");
    let created = ws
        .journal()
        .iter()
        .filter(|r| r.kind == "interaction_created")
        .count();
    assert_eq!(created, 1, "the answer opened no conversation");

    // Supervisors see it per agent, with the comment; an agent token may not look.
    let (supervisor, _) = ws.token("supervisor", None);
    let satisfaction = server
        .supervisor(&supervisor)
        .get_satisfaction(pb::GetSatisfactionRequest::default())
        .await
        .expect("GetSatisfaction")
        .into_inner();
    assert_eq!(satisfaction.answers, 1);
    assert_eq!(satisfaction.agents.len(), 1);
    assert_eq!(satisfaction.agents[0].agent_id, "amelie");
    assert_eq!(satisfaction.agents[0].average, 4.0);
    assert_eq!(satisfaction.comments.len(), 1);
    assert_eq!(satisfaction.comments[0].comment, "très bien, merci");
    assert_eq!(satisfaction.comments[0].interaction_id, id);
    let (agent_token, _) = ws.token("agent", Some("amelie"));
    let denied = server
        .supervisor(&agent_token)
        .get_satisfaction(pb::GetSatisfactionRequest::default())
        .await
        .expect_err("agents may not read satisfaction");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);

    // The public indicators count it.
    let report = indicators(&server).await;
    assert_eq!(report["total"]["satisfaction_answers"], 1, "{report}");
    assert_eq!(report["total"]["satisfaction_average"], 4.0, "{report}");

    // A second conversation completed within the period: no second question.
    let (status, _) = post_sms(&server, "SM0003", CITIZEN, "Autre question").await;
    assert_eq!(status, 200);
    let second = handle_next(&mut desk, &mut offers, "Voici.").await;
    surveyed_or_skipped(&ws, &second).await;
    assert_eq!(
        question(&ws, &second),
        None,
        "not asked twice in the period"
    );
    // Now a digit is a message: no question waits for an answer.
    let (status, twiml) = post_sms(&server, "SM0004", CITIZEN, "3").await;
    assert_eq!(status, 200);
    assert!(!twiml.contains("<Message>"), "{twiml}");
    provider.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_by_sms_opts_out_of_surveys_and_calls_are_asked_by_sms_on_mobiles() {
    let ws = Workspace::new();
    let provider = SmsProvider::start(0).await;
    let config = survey_config(&ws, provider.addr.port(), None, "period_days = 0");
    let server = ws.start_with_config(&config);
    let (mut desk, mut offers) = logged_in_agent(&ws, &server, "amelie").await;
    let (integrator, _) = ws.token("integrator", None);
    let mut api = server.interactions(&integrator);
    let call = |caller: &str| pb::CreateRequest {
        spec: Some(pb::InteractionSpec {
            channel: pb::Channel::Voice as i32,
            queue: "benefits".into(),
            contact: caller.into(),
            attributes: vec![
                pb::Attribute {
                    key: "caller".into(),
                    value: caller.into(),
                },
                pb::Attribute {
                    key: "language".into(),
                    value: "en".into(),
                },
            ],
            ..Default::default()
        }),
        ..Default::default()
    };

    // A call from a mobile: asked by SMS, in the call's language, from the service number.
    api.create(call(CITIZEN)).await.expect("Create");
    let first = handle_next(&mut desk, &mut offers, "").await;
    let sent = provider.wait_for(1).await;
    assert_eq!(sent[0].field("To"), Some(CITIZEN));
    assert_eq!(sent[0].field("From"), Some(SERVICE));
    let body = sent[0].field("Body").expect("Body");
    // In the call's language, naming the request's short reference.
    assert!(body.starts_with("Request "), "{body}");
    assert!(body.contains(": are you satisfied"), "{body}");
    let (status, twiml) = post_sms(&server, "SM0100", CITIZEN, "5").await;
    assert_eq!(status, 200);
    assert!(twiml.contains("Thank you"), "{twiml}");
    assert_eq!(
        answer(&ws, &first).map(|a| (a.0, a.3)),
        Some((5, "voice".into()))
    );

    // A landline is not asked.
    let landline = "+33144556677";
    api.create(call(landline)).await.expect("Create");
    let second = handle_next(&mut desk, &mut offers, "").await;
    surveyed_or_skipped(&ws, &second).await;
    assert_eq!(question(&ws, &second), None);

    // STOP opts the number out of surveys: its next call is not followed by a question.
    let (status, twiml) = post_sms(&server, "SM0101", CITIZEN, "STOP").await;
    assert_eq!(status, 200);
    assert!(twiml.contains("<Message>"), "STOP is confirmed: {twiml}");
    api.create(call(CITIZEN)).await.expect("Create");
    let third = handle_next(&mut desk, &mut offers, "").await;
    surveyed_or_skipped(&ws, &third).await;
    assert_eq!(question(&ws, &third), None, "opted out by STOP");
    assert_eq!(
        provider.received().len(),
        1,
        "only the first question was sent"
    );
    provider.stop();
}

fn transport(addr: SocketAddr) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
        .port(addr.port())
        .timeout(Some(Duration::from_secs(30)))
        .build()
}

async fn send_mail(addr: SocketAddr, from: &str, raw: &str) -> String {
    let envelope = Envelope::new(
        Some(from.parse().expect("from")),
        vec![BENEFITS.parse().expect("to")],
    )
    .expect("envelope");
    let response = transport(addr)
        .send_raw(&envelope, raw.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("SMTP send failed: {e}"));
    response.message().collect::<Vec<_>>().join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_survey_round_trip_over_smtp() {
    let ws = Workspace::new();
    let provider = SmsProvider::start(0).await;
    let sink = SmtpSink::start(0).await;
    let config = survey_config(&ws, provider.addr.port(), Some(sink.addr.port()), "");
    // Each email on its own: the question is answered by replying to it.
    unbundled(&config);
    let server = ws.start_with_config(&config);
    let smtp = server.smtp_addr.expect("the demo config listens for SMTP");
    let (mut desk, mut offers) = logged_in_agent(&ws, &server, "amelie").await;

    let reply = send_mail(
        smtp,
        "jeanne@example.org",
        &format!(
            "From: Jeanne <jeanne@example.org>\r\nTo: {BENEFITS}\r\nSubject: Aide au logement\r\n\
             Message-ID: <q1@example.org>\r\nDate: Sun, 6 Dec 2026 09:00:00 +0100\r\n\r\n\
             Bonjour, où en est mon dossier ?\r\n"
        ),
    )
    .await;
    assert!(reply.contains("created interaction"), "{reply}");
    let id = handle_next(&mut desk, &mut offers, "Votre dossier est validé.").await;

    // Acknowledgement, reply, completion notice and the survey question reach the relay.
    let mails = sink.wait_for(4).await;
    let survey = mails
        .iter()
        .find(|m| m.data.contains("/survey/"))
        .unwrap_or_else(|| panic!("no survey question among {mails:#?}"));
    assert_eq!(survey.rcpt_to.len(), 1);
    assert!(
        survey.rcpt_to[0].contains("jeanne@example.org"),
        "{:?}",
        survey.rcpt_to
    );
    let subject = survey.header("Subject").expect("Subject");
    assert!(subject.contains("Votre avis"), "{subject}");
    assert_eq!(
        survey.header("In-Reply-To").as_deref(),
        Some("<q1@example.org>"),
        "threaded under the citizen's mail"
    );
    let survey_id = survey.header("Message-ID").expect("Message-ID");
    assert!(survey_id.ends_with(&format!("@{DOMAIN}>")), "{survey_id}");
    let (token, via, _) = question(&ws, &id).expect("question recorded");
    assert_eq!(via, "email");

    // The citizen replies to the question over SMTP: that is the answer.
    let reply = send_mail(
        smtp,
        "jeanne@example.org",
        &format!(
            "From: Jeanne <jeanne@example.org>\r\nTo: {BENEFITS}\r\nSubject: Re: {subject}\r\n\
             Message-ID: <a1@example.org>\r\nIn-Reply-To: {survey_id}\r\nReferences: \
             <q1@example.org> {survey_id}\r\nDate: Sun, 6 Dec 2026 10:00:00 +0100\r\n\r\n\
             5 parfait, merci\r\n\r\nLe 6 déc. 2026, Guichet a écrit :\r\n> Votre demande\r\n"
        ),
    )
    .await;
    assert!(reply.contains("survey_answer"), "{reply}");
    assert_eq!(
        answer(&ws, &id),
        Some((
            5,
            Some("parfait, merci".into()),
            "amelie".into(),
            "email".into()
        ))
    );
    // A relay's retry of the same reply is not counted twice, nor opens anything.
    let again = send_mail(
        smtp,
        "jeanne@example.org",
        &format!(
            "From: jeanne@example.org\r\nTo: {BENEFITS}\r\nSubject: Re: avis\r\n\
             Message-ID: <a1@example.org>\r\nIn-Reply-To: {survey_id}\r\n\r\n5 parfait, merci\r\n"
        ),
    )
    .await;
    assert!(again.contains("Already received"), "{again}");
    let created = ws
        .journal()
        .iter()
        .filter(|r| r.kind == "interaction_created")
        .count();
    assert_eq!(created, 1);

    // The page says it was answered.
    let page = reqwest::get(format!("http://{}/survey/{token}", server.http_addr))
        .await
        .expect("GET the page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("déjà répondu"), "{html}");
    sink.stop();
    provider.stop();
}

/// Turns `[notify] email_bundle_ms` off in the configuration file `config`.
fn unbundled(config: &std::path::Path) {
    let text = std::fs::read_to_string(config).expect("read the config");
    let text = text.replacen(
        "retry_max_secs = 1\n",
        "retry_max_secs = 1\nemail_bundle_ms = 0\n",
        1,
    );
    assert!(text.contains("email_bundle_ms = 0"), "{text}");
    std::fs::write(config, text).expect("write the config");
}

/// The outbox rows of `interaction`: message id, state, last error (its outbound messages'
/// deliveries, read through the store, on either backend).
fn deliveries(ws: &Workspace, interaction: &str) -> Vec<(String, String, Option<String>)> {
    let sent: Vec<String> = ws
        .journal()
        .into_iter()
        .filter(|r| r.kind == "message_added" && r.interaction.as_deref() == Some(interaction))
        .filter_map(|r| r.message)
        .collect();
    ws.with_store(|s| {
        sent.iter()
            .filter_map(|m| s.outbox_delivery(m).expect("read the outbox"))
            .map(|d| (d.message, d.state.as_str().to_owned(), d.last_error))
            .collect()
    })
}

/// The citizen's first mail, its acknowledgement received; then the offer answered with
/// `text` and completed.
async fn mail_answered_and_completed(
    ws: &Workspace,
    server: &Server,
    sink: &SmtpSink,
    text: &str,
) -> String {
    let smtp = server.smtp_addr.expect("the demo config listens for SMTP");
    let (mut desk, mut offers) = logged_in_agent(ws, server, "amelie").await;
    let reply = send_mail(
        smtp,
        "jeanne@example.org",
        &format!(
            "From: Jeanne <jeanne@example.org>\r\nTo: {BENEFITS}\r\nSubject: Aide au logement\r\n\
             Message-ID: <q1@example.org>\r\nDate: Sun, 6 Dec 2026 09:00:00 +0100\r\n\r\n\
             Bonjour, où en est mon dossier ?\r\n"
        ),
    )
    .await;
    assert!(reply.contains("created interaction"), "{reply}");
    // The acknowledgement is never held.
    let ack = sink.wait_for(1).await;
    assert!(
        ack[0].data.contains("We have received"),
        "{:?}",
        ack[0].data
    );
    handle_next(&mut desk, &mut offers, text).await
}

/// Checks that the one email after the acknowledgement carries the reply, the completion notice
/// and the survey link, threaded under the citizen's mail, written by a person.
fn assert_one_email(mails: &[notify_common::Mail], ws: &Workspace, id: &str) {
    assert_eq!(
        mails.len(),
        2,
        "the acknowledgement and one email: {mails:#?}"
    );
    let mail = &mails[1];
    assert!(
        mail.rcpt_to[0].contains("jeanne@example.org"),
        "{:?}",
        mail.rcpt_to
    );
    let parsed = guichet::channels::email::mime::parse(
        mail.data.as_bytes(),
        "jeanne@example.org",
        None,
        1 << 20,
    )
    .expect("a readable email");
    let body = parsed.text;
    assert!(
        body.contains("Votre dossier est valid"),
        "the reply: {body}"
    );
    assert!(
        body.contains("a été traitée") || body.contains("est traitée"),
        "the notice: {body}"
    );
    assert!(body.contains("has been dealt with"), "the notice: {body}");
    let (token, via, _) = question(ws, id).expect("question recorded");
    assert_eq!(via, "email");
    assert!(
        body.contains(&format!("/survey/{token}")),
        "the survey link: {body}"
    );
    assert_eq!(
        mail.header("In-Reply-To").as_deref(),
        Some("<q1@example.org>"),
        "threaded under the citizen's mail"
    );
    assert!(
        mail.header("Auto-Submitted").is_none(),
        "a person's reply, not automatic"
    );
    let subject = mail.header("Subject").expect("Subject");
    assert!(
        !subject.contains("Votre avis"),
        "the reply's subject: {subject}"
    );
    // Every message of the interaction is recorded delivered; two of them within the reply.
    let rows = deliveries(ws, id);
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(
        rows.iter().all(|(_, state, _)| state == "delivered"),
        "{rows:?}"
    );
    let within = rows
        .iter()
        .filter(|(_, _, e)| {
            e.as_deref()
                .is_some_and(|e| e.starts_with("sent in one email with"))
        })
        .count();
    assert_eq!(within, 2, "{rows:?}");
}

/// Waits until every delivery of `interaction` left the pending state.
async fn all_sent(ws: &Workspace, interaction: &str, rows: usize) {
    notify_common::wait_for(LIMIT, "every delivery recorded", || {
        let found = deliveries(ws, interaction);
        (found.len() >= rows && found.iter().all(|(_, state, _)| state != "pending")).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_email_at_completion_carries_the_reply_the_notice_and_the_survey() {
    let ws = Workspace::new();
    let provider = SmsProvider::start(0).await;
    let sink = SmtpSink::start(0).await;
    let config = survey_config(&ws, provider.addr.port(), Some(sink.addr.port()), "");
    let server = ws.start_with_config(&config);
    let id = mail_answered_and_completed(&ws, &server, &sink, "Votre dossier est validé.").await;
    all_sent(&ws, &id, 4).await;
    assert_one_email(&sink.received(), &ws, &id);

    // The survey page of the link works.
    let (token, _, _) = question(&ws, &id).expect("question recorded");
    let page = reqwest::get(format!("http://{}/survey/{token}", server.http_addr))
        .await
        .expect("GET the page");
    assert_eq!(page.status(), 200);
    sink.stop();
    provider.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_then_a_completion_10_s_later_still_make_one_email() {
    let ws = Workspace::new();
    let provider = SmsProvider::start(0).await;
    let sink = SmtpSink::start(0).await;
    let config = survey_config(&ws, provider.addr.port(), Some(sink.addr.port()), "");
    let server = ws.start_with_config(&config);
    let smtp = server.smtp_addr.expect("the demo config listens for SMTP");
    let (mut desk, mut offers) = logged_in_agent(&ws, &server, "amelie").await;
    let reply = send_mail(
        smtp,
        "jeanne@example.org",
        &format!(
            "From: Jeanne <jeanne@example.org>\r\nTo: {BENEFITS}\r\nSubject: Aide au logement\r\n\
             Message-ID: <q1@example.org>\r\nDate: Sun, 6 Dec 2026 09:00:00 +0100\r\n\r\n\
             Bonjour, où en est mon dossier ?\r\n"
        ),
    )
    .await;
    assert!(reply.contains("created interaction"), "{reply}");
    sink.wait_for(1).await;
    let offer = loop {
        if let Some(Update::Offer(offer)) = next(&mut offers).await.update {
            break offer;
        }
    };
    let id = offer.interaction.expect("interaction").id;
    desk.accept(pb::InteractionAction {
        interaction_id: id.clone(),
        ..Default::default()
    })
    .await
    .expect("Accept");
    desk.send_message(pb::SendMessageRequest {
        interaction_id: id.clone(),
        text: "Votre dossier est validé.".into(),
        ..Default::default()
    })
    .await
    .expect("SendMessage");
    // Well past `email_bundle_ms` (3 s): the reply waits for the completion.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(sink.received().len(), 1, "only the acknowledgement so far");
    desk.complete(pb::CompleteRequest {
        interaction_id: id.clone(),
        wrap_up_code: "answered".into(),
        ..Default::default()
    })
    .await
    .expect("Complete");
    all_sent(&ws, &id, 4).await;
    assert_one_email(&sink.received(), &ws, &id);
    drop(server);
    sink.stop();
    provider.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_one_email_survives_a_crash_before_it_is_sent() {
    let ws = Workspace::new();
    let provider = SmsProvider::start(0).await;
    let sink = SmtpSink::start(0).await;
    let config = survey_config(&ws, provider.addr.port(), Some(sink.addr.port()), "");
    // Held long enough to kill the server before it goes.
    let text = std::fs::read_to_string(&config).expect("read the config");
    std::fs::write(
        &config,
        text.replacen(
            "retry_max_secs = 1\n",
            "retry_max_secs = 1\nemail_bundle_ms = 8000\n",
            1,
        ),
    )
    .expect("write the config");
    let mut server = ws.start_with_config(&config);
    let id = mail_answered_and_completed(&ws, &server, &sink, "Votre dossier est validé.").await;
    // The reply, the notice and the question are committed and pending: then the server dies.
    notify_common::wait_for(LIMIT, "three emails pending", || {
        let rows = deliveries(&ws, &id);
        (rows.iter().filter(|(_, s, _)| s == "pending").count() == 3).then_some(())
    })
    .await;
    server.kill();
    assert_eq!(
        sink.received().len(),
        1,
        "only the acknowledgement went before the crash"
    );

    // Restarted: the pending emails go when due, as one.
    let server = ws.start_with_config(&config);
    all_sent(&ws, &id, 4).await;
    assert_one_email(&sink.received(), &ws, &id);
    drop(server);
    sink.stop();
    provider.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_survey_page_takes_one_answer_and_the_opt_out() {
    let ws = Workspace::new();
    let provider = SmsProvider::start(0).await;
    let config = survey_config(&ws, provider.addr.port(), None, "period_days = 0");
    let server = ws.start_with_config(&config);
    let (mut desk, mut offers) = logged_in_agent(&ws, &server, "amelie").await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.http_addr);

    let (status, _) = post_sms(&server, "SM0200", CITIZEN, "Bonjour").await;
    assert_eq!(status, 200);
    let id = handle_next(&mut desk, &mut offers, "Bonjour !").await;
    provider.wait_for(2).await;
    let (token, _, _) = question(&ws, &id).expect("question recorded");
    let url = format!("{base}/survey/{token}");

    // The form: a fieldset with a legend, five labelled choices, a comment, the opt-out box.
    let page = http
        .get(&url)
        .header("Accept-Language", "en-GB,en;q=0.9")
        .send()
        .await
        .expect("GET");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(
        html.contains("<html lang=\"en\">"),
        "the visitor's language"
    );
    assert!(html.contains("<fieldset><legend>"));
    for n in 1..=5 {
        assert!(
            html.contains(&format!("<label for=\"score-{n}\">")),
            "{html}"
        );
    }
    assert!(html.contains("name=\"comment\"") && html.contains("name=\"opt_out\""));

    // A score out of range: 400, the form again with the error.
    let bad = http
        .post(&url)
        .form(&[("score", "9"), ("lang", "fr")])
        .send()
        .await
        .expect("POST");
    assert_eq!(bad.status(), 400);
    let html = bad.text().await.expect("html");
    assert!(
        html.contains("role=\"alert\"") && html.contains("<fieldset>"),
        "{html}"
    );
    assert_eq!(answer(&ws, &id), None);

    // The answer, with the opt-out; JSON for a client that asks for it.
    let ok = http
        .post(&url)
        .header("Accept", "application/json")
        .form(&[
            ("score", "2"),
            ("comment", "Trop d'attente"),
            ("opt_out", "1"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("*")
    );
    let body: serde_json::Value = ok.json().await.expect("JSON");
    assert_eq!(body["status"], "recorded");
    assert_eq!(body["opted_out"], true);
    assert_eq!(
        answer(&ws, &id),
        Some((
            2,
            Some("Trop d'attente".into()),
            "amelie".into(),
            "sms".into()
        ))
    );

    // Only the first answer counts; an unknown token is not found.
    let twice = http
        .post(&url)
        .form(&[("score", "5")])
        .send()
        .await
        .expect("POST");
    assert_eq!(twice.status(), 409);
    let unknown = http
        .get(format!("{base}/survey/not-a-token"))
        .send()
        .await
        .expect("GET");
    assert_eq!(unknown.status(), 404);

    // Opted out on the page: the next conversation is not followed by a question.
    let (status, _) = post_sms(&server, "SM0201", CITIZEN, "Encore moi").await;
    assert_eq!(status, 200);
    let second = handle_next(&mut desk, &mut offers, "Oui ?").await;
    surveyed_or_skipped(&ws, &second).await;
    assert_eq!(question(&ws, &second), None, "the contact opted out");
    provider.stop();
}
