//! How fast the notify outbox drains: N outbound SMS committed on the durable engine, delivered
//! one after another to a local stand-in of the provider's `Messages.json` API over loopback HTTP.
//!
//! `cargo run --release --example outbox_throughput -- 2000`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use guichet::channels::sms::{SmsConfig, SmsNumber};
use guichet::config::Config;
use guichet::core::{
    Channel, Command, ContactId, InteractionId, InteractionSpec, Message, MessageDirection,
};
use guichet::engine::Engine;
use guichet::notify::{NotifyConfig, Outbox};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1000);
    let count = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let counter = count.clone();
    let app = axum::Router::new().route(
        "/2010-04-01/Accounts/{account}/Messages.json",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                (
                    axum::http::StatusCode::CREATED,
                    axum::Json(serde_json::json!({"sid": "SM1", "status": "queued"})),
                )
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir()?;
    let mut config = Config::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/guichet.toml"
    )))?;
    config.store.data_dir = dir.path().to_owned();
    config.sms = Some(SmsConfig {
        base_url: format!("http://127.0.0.1:{port}"),
        account_sid: "AC1".into(),
        auth_token: "t".into(),
        numbers: vec![SmsNumber {
            number: "+33100000000".into(),
            queue: "benefits".into(),
        }],
        opt_out_reply: "stop".into(),
        opt_in_reply: "start".into(),
        timeout_secs: 10,
    });
    config.notify = NotifyConfig::default();
    let (engine, _) = Engine::start(config.engine_config(), config.seed()).await?;

    // The conversations exist before the clock starts.
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let id = InteractionId(ulid::Ulid::new());
        let from = format!("+336{i:08}");
        let mut spec = InteractionSpec::new(id, Channel::Sms, "benefits");
        spec.contact = Some(ContactId::new(&from));
        spec.external_ref = Some(format!("sms:{from}:+33100000000").into());
        let mut m = Message::new(format!("sms:IN{i}"), MessageDirection::Inbound, "bonjour");
        m.from = from.clone();
        m.to = "+33100000000".into();
        engine
            .send(Command::OpenConversation { spec, message: m })
            .await?;
        ids.push((id, from));
    }
    Outbox::new(
        &engine,
        config.notify.clone(),
        config.email.outbound.as_ref(),
        &config.email.domain,
        config.sms.as_ref(),
    )?
    .start();

    let started = Instant::now();
    for (i, (id, from)) in ids.into_iter().enumerate() {
        let mut m = Message::new(
            format!("sms:OUT{i}"),
            MessageDirection::Outbound,
            "Votre dossier est en cours.",
        );
        m.from = "+33100000000".into();
        m.to = from;
        engine
            .send(Command::AddMessage {
                interaction: id,
                message: m,
            })
            .await?;
    }
    let committed = started.elapsed();
    while count.load(Ordering::SeqCst) < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let delivered = started.elapsed();
    println!(
        "{n} SMS: committed in {:.1} ms, all delivered to the stand-in after {:.1} ms \
         ({:.0} deliveries/s, {:.2} ms each)",
        committed.as_secs_f64() * 1e3,
        delivered.as_secs_f64() * 1e3,
        n as f64 / delivered.as_secs_f64(),
        delivered.as_secs_f64() * 1e3 / n as f64
    );
    engine.shutdown().await;
    Ok(())
}
