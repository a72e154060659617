//! Email out through the durable outbox, over real SMTP on loopback: an outbound message of an
//! email conversation reaches a local SMTP sink with the Message-ID derived from its id and the
//! In-Reply-To / References that thread it; a chat transcript marked `deliver_via = email` goes
//! by email too; a relay that is down gets the message once it is up, across an engine restart;
//! a recipient the relay refuses for good is marked failed, not retried.

use crate::notify_common;

use std::time::Duration;

use guichet::config::Config;
use guichet::core::{
    Attachment, Channel, Command, ContactId, InteractionId, InteractionSpec, Message,
    MessageDirection,
};
use guichet::engine::Engine;
use guichet::notify::{EmailRelayConfig, NotifyConfig, Outbox, SmtpTls};
use guichet::store::DeliveryState;
use notify_common::{free_port, wait_for, SmtpSink};

const SERVICE: &str = "aides@service.example";
const CITIZEN: &str = "jeanne@citizen.example";

fn config(dir: &std::path::Path, smtp_port: u16) -> Config {
    let mut config = Config::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/guichet.toml"
    )))
    .expect("demo config");
    config.store.data_dir = dir.to_owned();
    config.email.domain = "guichet.service.example".into();
    config.email.outbound = Some(EmailRelayConfig {
        relay_host: "127.0.0.1".into(),
        relay_port: Some(smtp_port),
        tls: SmtpTls::None,
        username: None,
        password: None,
        from_address: "contact@service.example".into(),
        from_name: Some("Allô Service Public".into()),
        timeout_secs: 10,
    });
    config.notify = NotifyConfig {
        retry_initial_ms: 200,
        retry_max_secs: 1,
        ..NotifyConfig::default()
    };
    config
}

async fn start(config: &Config) -> Engine {
    let (engine, _) = Engine::start(config.engine_config(), config)
        .await
        .expect("engine");
    Outbox::new(
        &engine,
        config.notify.clone(),
        config.email.outbound.as_ref(),
        &config.email.domain,
        config.sms.as_ref(),
    )
    .expect("outbox")
    .start();
    engine
}

/// The citizen's email, opening an interaction in `benefits`; returns its id.
async fn citizen_writes(engine: &Engine, from: &str) -> InteractionId {
    let id = InteractionId(ulid::Ulid::new());
    let mut spec = InteractionSpec::new(id, Channel::Email, "benefits");
    spec.contact = Some(ContactId::new(from));
    spec.external_ref = Some(format!("email:<{id}@citizen.example>").into());
    let mut message = Message::new(
        format!("email:<{id}@citizen.example>"),
        MessageDirection::Inbound,
        "Bonjour, où en est mon dossier ?",
    );
    message.from = from.into();
    message.to = SERVICE.into();
    message.subject = Some("Dossier APL".into());
    message
        .meta
        .insert("message_id".into(), format!("<{id}@citizen.example>"));
    message
        .meta
        .insert("references".into(), "<first@citizen.example>".into());
    engine
        .send(Command::OpenConversation { spec, message })
        .await
        .expect("open");
    id
}

/// An agent's reply as the desktop composes it (threaded under the citizen's message).
async fn answer(engine: &Engine, interaction: InteractionId, to: &str) -> String {
    let ulid = ulid::Ulid::new();
    let mut reply = Message::new(
        format!("email:{ulid}"),
        MessageDirection::Outbound,
        "Votre dossier est complet.\nCordialement.",
    );
    reply.from = SERVICE.into();
    reply.to = to.into();
    reply.subject = Some("Re: Dossier APL".into());
    reply.meta.insert(
        "in_reply_to".into(),
        format!("<{interaction}@citizen.example>"),
    );
    reply.meta.insert(
        "references".into(),
        format!("<first@citizen.example> <{interaction}@citizen.example>"),
    );
    reply.attachments.push(Attachment {
        name: "attestation.txt".into(),
        content_type: "text/plain".into(),
        size: 11,
        data_base64: "YXR0ZXN0YXRpb24=".into(),
    });
    let id = reply.id.clone();
    engine
        .send(Command::AddMessage {
            interaction,
            message: reply,
        })
        .await
        .expect("reply");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_reach_the_relay_threaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = SmtpSink::start(0).await;
    let config = config(dir.path(), sink.addr.port());
    let engine = start(&config).await;

    let interaction = citizen_writes(&engine, CITIZEN).await;
    let id = answer(&engine, interaction, CITIZEN).await;
    let mail = sink.wait_for(1).await.remove(0);
    let ulid = id.strip_prefix("email:").expect("prefix");
    assert_eq!(
        mail.header("Message-ID").as_deref(),
        Some(format!("<{ulid}@guichet.service.example>").as_str())
    );
    assert_eq!(
        mail.header("In-Reply-To").as_deref(),
        Some(format!("<{interaction}@citizen.example>").as_str())
    );
    assert_eq!(
        mail.header("References").as_deref(),
        Some(format!("<first@citizen.example> <{interaction}@citizen.example>").as_str())
    );
    assert_eq!(mail.header("Subject").as_deref(), Some("Re: Dossier APL"));
    assert!(mail.header("Date").is_some());
    assert!(mail.header("From").unwrap_or_default().contains(SERVICE));
    assert!(mail.header("To").unwrap_or_default().contains(CITIZEN));
    assert_eq!(mail.rcpt_to, [format!("<{CITIZEN}>")]);
    assert!(mail
        .header("Content-Type")
        .unwrap_or_default()
        .starts_with("multipart/mixed"));
    assert!(
        mail.data.contains("Votre dossier est complet."),
        "{}",
        mail.data
    );
    assert!(mail.data.contains("attestation.txt"), "{}", mail.data);

    let store = engine.store().clone();
    let delivery = wait_for(Duration::from_secs(10), "delivered", || {
        store
            .outbox_delivery(&id)
            .expect("read")
            .filter(|d| d.state == DeliveryState::Delivered)
    })
    .await;
    assert_eq!(delivery.attempts, 1);
    assert!(delivery.delivered_at.is_some());

    // A chat transcript asked by email goes to the address it names.
    let chat = InteractionId(ulid::Ulid::new());
    let mut spec = InteractionSpec::new(chat, Channel::Chat, "benefits");
    spec.external_ref = Some(format!("chat:{chat}").into());
    let mut hello = Message::new(
        format!("chat:{}", ulid::Ulid::new()),
        MessageDirection::Inbound,
        "hello",
    );
    hello.from = "Visiteur".into();
    engine
        .send(Command::OpenConversation {
            spec,
            message: hello,
        })
        .await
        .expect("chat");
    let mut live = Message::new(
        format!("chat:{}", ulid::Ulid::new()),
        MessageDirection::Outbound,
        "live line",
    );
    live.to = "Visiteur".into();
    let mut transcript = Message::new(
        format!("chat:{}", ulid::Ulid::new()),
        MessageDirection::Outbound,
        "Visiteur: hello\nAgent: live line",
    );
    transcript.to = "visiteur@citizen.example".into();
    transcript.subject = Some("Transcription".into());
    transcript.meta.insert("deliver_via".into(), "email".into());
    for message in [live, transcript] {
        engine
            .send(Command::AddMessage {
                interaction: chat,
                message,
            })
            .await
            .expect("chat message");
    }
    let mails = sink.wait_for(2).await;
    assert_eq!(mails[1].header("Subject").as_deref(), Some("Transcription"));
    assert_eq!(mails[1].rcpt_to, ["<visiteur@citizen.example>"]);
    // The live chat line is the chat hub's to deliver, not the outbox's.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.received().len(), 2);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_is_down_gets_the_reply_once_up_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let config = config(dir.path(), port);
    let engine = start(&config).await;
    let interaction = citizen_writes(&engine, CITIZEN).await;
    let id = answer(&engine, interaction, CITIZEN).await;

    let store = engine.store().clone();
    let pending = wait_for(Duration::from_secs(30), "two failed attempts", || {
        store
            .outbox_delivery(&id)
            .expect("read")
            .filter(|d| d.state == DeliveryState::Pending && d.attempts >= 2)
    })
    .await;
    assert!(pending.last_error.is_some());
    drop(store);
    engine.shutdown().await;
    drop(engine);

    let sink = SmtpSink::start(port).await;
    let engine = start(&config).await;
    let mail = sink.wait_for(1).await.remove(0);
    let ulid = id.strip_prefix("email:").expect("prefix");
    assert_eq!(
        mail.header("Message-ID").as_deref(),
        Some(format!("<{ulid}@guichet.service.example>").as_str())
    );
    let store = engine.store().clone();
    wait_for(Duration::from_secs(10), "delivered", || {
        store
            .outbox_delivery(&id)
            .expect("read")
            .filter(|d| d.state == DeliveryState::Delivered)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.received().len(), 1, "delivered once");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_recipient_is_marked_failed_not_retried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = SmtpSink::start(0).await;
    let config = config(dir.path(), sink.addr.port());
    let engine = start(&config).await;
    let interaction = citizen_writes(&engine, "nobody@citizen.example").await;
    let id = answer(&engine, interaction, "nobody@citizen.example").await;
    let store = engine.store().clone();
    let failed = wait_for(Duration::from_secs(30), "failed", || {
        store
            .outbox_delivery(&id)
            .expect("read")
            .filter(|d| d.state == DeliveryState::Failed)
    })
    .await;
    assert!(
        failed
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("550"),
        "{failed:?}"
    );
    // Not retried: the attempt count stays at one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = store.outbox_delivery(&id).expect("read").expect("row");
    assert_eq!(later.attempts, 1);
    assert_eq!(later.state, DeliveryState::Failed);
    engine.shutdown().await;
}
