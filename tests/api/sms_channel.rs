//! The SMS channel on the real server: signed provider webhooks open and continue a
//! conversation, a provider's retry and a bad signature store nothing, an agent answers over
//! gRPC and the reply reaches a local stand-in of the provider's REST API (also when the
//! stand-in was down, across a server restart), and STOP is honoured.

use crate::api_common;
use crate::notify_common;

use std::time::Duration;

use api_common::{config_with, next, Server, Workspace};
use guichet::api::proto as pb;
use notify_common::{free_port, twilio_signature, SmsProvider};
use pb::offer_update::Update;

const TOKEN: &str = "test-auth-token";
const ACCOUNT: &str = "AC0123456789abcdef";
const SERVICE: &str = "+33100000000";
const CITIZEN: &str = "+33612345678";

fn sms_config(ws: &Workspace, provider_port: u16) -> std::path::PathBuf {
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
"#
        ),
    )
}

/// Posts a webhook as the provider does, signed with `token`; returns status, content type and
/// body.
async fn post_sms(
    server: &Server,
    token: &str,
    sid: &str,
    from: &str,
    body: &str,
) -> (u16, String, String) {
    let url = format!("http://{}/sms/twilio", server.http_addr);
    let params = [
        ("MessageSid", sid),
        ("SmsSid", sid),
        ("AccountSid", ACCOUNT),
        ("From", from),
        ("To", SERVICE),
        ("Body", body),
        ("NumMedia", "0"),
        ("NumSegments", "1"),
    ];
    let signature = twilio_signature(token, &url, &params);
    let response = reqwest::Client::new()
        .post(&url)
        .header("X-Twilio-Signature", signature)
        .form(&params)
        .send()
        .await
        .expect("post the webhook");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, response.text().await.expect("body"))
}

/// Logs amelie in, waits for the SMS conversation's offer and accepts it; returns the
/// interaction id and the offered conversation's texts.
async fn accept_offer(server: &Server, token: &str) -> (String, Vec<String>) {
    let mut desk = server.desktop(token);
    desk.login(pb::LoginRequest::default())
        .await
        .expect("login");
    let mut offers = desk
        .offers(pb::OffersRequest::default())
        .await
        .expect("offers")
        .into_inner();
    let offer = loop {
        if let Some(Update::Offer(offer)) = next(&mut offers).await.update {
            break offer;
        }
    };
    let interaction = offer.interaction.expect("interaction");
    assert_eq!(interaction.channel, pb::Channel::Sms as i32);
    desk.accept(pb::InteractionAction {
        interaction_id: interaction.id.clone(),
        ..Default::default()
    })
    .await
    .expect("accept");
    let texts = offer.conversation.iter().map(|m| m.text.clone()).collect();
    (interaction.id, texts)
}

async fn reply(server: &Server, token: &str, interaction: &str, text: &str) -> String {
    server
        .desktop(token)
        .send_message(pb::SendMessageRequest {
            interaction_id: interaction.to_owned(),
            text: text.to_owned(),
            ..Default::default()
        })
        .await
        .expect("send message")
        .into_inner()
        .id
}

async fn conversation(
    server: &Server,
    token: &str,
    interaction: &str,
) -> Vec<pb::ConversationMessage> {
    server
        .desktop(token)
        .get_conversation(pb::GetConversationRequest {
            interaction_id: interaction.to_owned(),
            ..Default::default()
        })
        .await
        .expect("conversation")
        .into_inner()
        .messages
}

/// The outbox row of a message, read through the server's store (state, last error), on
/// either backend.
fn outbox_state(ws: &Workspace, message: &str) -> Option<(String, Option<String>)> {
    ws.with_store(|s| s.outbox_delivery(message))
        .ok()?
        .map(|d| (d.state.as_str().to_owned(), d.last_error))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_build_a_conversation_and_the_reply_reaches_the_provider() {
    let ws = Workspace::new();
    let provider = SmsProvider::start(0).await;
    let config = sms_config(&ws, provider.addr.port());
    let server = ws.start_with_config(&config);
    let (agent, _) = ws.token("agent", Some("amelie"));

    // A signed message opens the conversation; the answer is empty TwiML.
    let (status, content_type, body) =
        post_sms(&server, TOKEN, "SM0001", CITIZEN, "Bonjour, mon APL ?").await;
    assert_eq!(status, 200, "{body}");
    assert!(content_type.starts_with("text/xml"), "{content_type}");
    assert!(body.contains("<Response/>"), "{body}");
    // A second one joins it; a provider's retry of the first is ignored.
    assert_eq!(
        post_sms(&server, TOKEN, "SM0002", CITIZEN, "Dossier 42")
            .await
            .0,
        200
    );
    assert_eq!(
        post_sms(&server, TOKEN, "SM0001", CITIZEN, "Bonjour, mon APL ?")
            .await
            .0,
        200
    );
    // A bad signature is refused and stores nothing.
    let (status, _, body) = post_sms(&server, "wrong-token", "SM0003", CITIZEN, "forged").await;
    assert_eq!(status, 403);
    assert!(body.contains("X-Twilio-Signature"), "{body}");

    // A message to a number that is not ours, or without its id, is refused.
    let url = format!("http://{}/sms/twilio", server.http_addr);
    let unknown = [
        ("MessageSid", "SM0005"),
        ("From", CITIZEN),
        ("To", "+33999999999"),
        ("Body", "x"),
    ];
    let missing = [("From", CITIZEN), ("To", SERVICE), ("Body", "x")];
    // An id outside the proto's character set (a path, a space): 400, and not echoed.
    let bad_sid = [
        ("MessageSid", "SM/../etc passwd"),
        ("From", CITIZEN),
        ("To", SERVICE),
        ("Body", "x"),
    ];
    for (params, code) in [
        (&unknown[..], 404),
        (&missing[..], 400),
        (&bad_sid[..], 400),
    ] {
        let response = reqwest::Client::new()
            .post(&url)
            .header("X-Twilio-Signature", twilio_signature(TOKEN, &url, params))
            .form(params)
            .send()
            .await
            .expect("post");
        assert_eq!(response.status().as_u16(), code);
        let text = response.text().await.expect("body");
        assert!(
            !text.contains("passwd") && !text.contains("+33999999999"),
            "{text}"
        );
    }

    let (interaction, offered) = accept_offer(&server, &agent).await;
    assert_eq!(offered, ["Bonjour, mon APL ?", "Dossier 42"]);
    let messages = conversation(&server, &agent, &interaction).await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0].id, "sms:SM0001");
    assert_eq!(messages[0].from, CITIZEN);
    assert_eq!(messages[0].to, SERVICE);

    // The agent's reply goes to the provider's REST API with basic auth.
    let sent = reply(&server, &agent, &interaction, "Votre dossier est en cours.").await;
    let received = provider.wait_for(1).await;
    let request = &received[0];
    assert_eq!(
        request.path,
        format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json")
    );
    assert_eq!(request.auth, Some((ACCOUNT.to_owned(), TOKEN.to_owned())));
    assert_eq!(request.field("To"), Some(CITIZEN));
    assert_eq!(request.field("From"), Some(SERVICE));
    assert_eq!(request.field("Body"), Some("Votre dossier est en cours."));
    let (state, _) = notify_common::wait_for(Duration::from_secs(30), "delivered", || {
        outbox_state(&ws, &sent).filter(|(s, _)| s == "delivered")
    })
    .await;
    assert_eq!(state, "delivered");

    // A message from the citizen after the reply still joins the same conversation.
    assert_eq!(
        post_sms(&server, TOKEN, "SM0004", CITIZEN, "Merci").await.0,
        200
    );
    let messages = api_common::eventually(Duration::from_secs(20), "the third message", || {
        let server = &server;
        let agent = &agent;
        let interaction = &interaction;
        async move {
            let m = conversation(server, agent, interaction).await;
            (m.len() == 4).then_some(m)
        }
    })
    .await;
    assert_eq!(messages[3].text, "Merci");
    assert_eq!(provider.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_waits_for_the_provider_across_a_restart() {
    let ws = Workspace::new();
    // The provider is down: nothing listens on its port yet.
    let port = free_port();
    let config = sms_config(&ws, port);
    let mut server = ws.start_with_config(&config);
    let (agent, _) = ws.token("agent", Some("amelie"));
    assert_eq!(
        post_sms(&server, TOKEN, "SM1001", CITIZEN, "Allô ?")
            .await
            .0,
        200
    );
    let (interaction, _) = accept_offer(&server, &agent).await;
    let sent = reply(&server, &agent, &interaction, "Nous vous rappelons demain.").await;

    // It is retried, with the reason recorded.
    let (_, error) = notify_common::wait_for(Duration::from_secs(30), "a failed attempt", || {
        outbox_state(&ws, &sent).filter(|(s, e)| s == "pending" && e.is_some())
    })
    .await;
    assert!(error.unwrap_or_default().contains("SMS provider"));

    // The server dies; the provider comes back; the restarted server delivers the reply once.
    server.kill();
    let provider = SmsProvider::start(port).await;
    let _server = ws.start_with_config(&config);
    let received = provider.wait_for(1).await;
    assert_eq!(
        received[0].field("Body"),
        Some("Nous vous rappelons demain.")
    );
    assert_eq!(received[0].field("To"), Some(CITIZEN));
    notify_common::wait_for(Duration::from_secs(30), "delivered", || {
        outbox_state(&ws, &sent).filter(|(s, _)| s == "delivered")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(provider.received().len(), 1, "delivered once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_is_confirmed_once_and_silences_the_number() {
    let ws = Workspace::new();
    let provider = SmsProvider::start(0).await;
    let config = sms_config(&ws, provider.addr.port());
    let server = ws.start_with_config(&config);
    let (agent, _) = ws.token("agent", Some("amelie"));

    // STOP outside a conversation: confirmed in the webhook's answer, no interaction created.
    let other = "+33699999999";
    let (status, _, body) = post_sms(&server, TOKEN, "SM2000", other, "stop").await;
    assert_eq!(status, 200);
    assert!(body.contains("<Message>"), "{body}");
    // The provider's retry of it is not confirmed twice.
    let (_, _, body) = post_sms(&server, TOKEN, "SM2000", other, "stop").await;
    assert!(body.contains("<Response/>"), "{body}");

    // STOP inside an open conversation: it joins it, and the confirmation is sent by the outbox.
    assert_eq!(
        post_sms(&server, TOKEN, "SM2001", CITIZEN, "Bonjour")
            .await
            .0,
        200
    );
    let (interaction, _) = accept_offer(&server, &agent).await;
    let (status, _, body) = post_sms(&server, TOKEN, "SM2002", CITIZEN, "STOP").await;
    assert_eq!(status, 200);
    assert!(body.contains("<Response/>"), "{body}");
    let received = provider.wait_for(1).await;
    assert_eq!(received[0].field("To"), Some(CITIZEN));
    assert!(
        received[0]
            .field("Body")
            .unwrap_or_default()
            .contains("START"),
        "{received:?}"
    );
    let messages = conversation(&server, &agent, &interaction).await;
    let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert_eq!(texts[1], "STOP");

    // The agent's reply after STOP is not sent.
    let sent = reply(&server, &agent, &interaction, "Bien noté.").await;
    let (_, reason) = notify_common::wait_for(Duration::from_secs(30), "suppressed", || {
        outbox_state(&ws, &sent).filter(|(s, _)| s == "suppressed")
    })
    .await;
    assert!(reason.unwrap_or_default().contains("STOP"));

    // START opts back in: the next reply is sent.
    assert_eq!(
        post_sms(&server, TOKEN, "SM2003", CITIZEN, "START").await.0,
        200
    );
    provider.wait_for(2).await;
    reply(&server, &agent, &interaction, "Bon retour !").await;
    let received = provider.wait_for(3).await;
    assert_eq!(received[2].field("Body"), Some("Bon retour !"));
    assert_eq!(provider.received().len(), 3);
}
