//! Attachment downloads on the real server over loopback: an email attachment sent over SMTP is
//! offered with a signed link and downloaded byte for byte, a `Range` request is answered 206,
//! an expired, tampered or unsigned link is refused 403, a link still works after a restart
//! (its key is in the database); MMS media behind the provider's credentials are proxied; and
//! a database of schema version 7 (tests/fixtures/schema_v7_attachments.db, written by the previous
//! version) opens upgraded, its stored attachment downloadable.

use crate::api_common;
use crate::notify_common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use sha2::Sha256;

use api_common::{config_with, next, Workspace};
use guichet::api::proto as pb;
use notify_common::twilio_signature;
use pb::offer_update::Update;

const BENEFITS: &str = "logement@service-public.example";
/// The PDF of the test email, decoded.
const PDF: &[u8] = b"%PDF-1.4\n%\xc7\xec\x8f\xa2\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n";

async fn send_email(addr: SocketAddr, message_id: &str) {
    let raw = format!(
        "From: Jeanne <jeanne@example.org>\r\nTo: {BENEFITS}\r\nSubject: Mon avis\r\n\
Message-ID: {message_id}\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nVoici mon avis.\r\n--b\r\n\
Content-Type: application/pdf; name=\"avis.pdf\"\r\n\
Content-Disposition: attachment; filename=\"avis.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
        base64::engine::general_purpose::STANDARD.encode(PDF)
    );
    let envelope = Envelope::new(
        Some("jeanne@example.org".parse().expect("from")),
        vec![BENEFITS.parse().expect("to")],
    )
    .expect("envelope");
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
        .port(addr.port())
        .timeout(Some(Duration::from_secs(30)))
        .build()
        .send_raw(&envelope, raw.as_bytes())
        .await
        .expect("SMTP send");
}

async fn next_offer(stream: &mut tonic::Streaming<pb::OfferUpdate>) -> pb::Offer {
    loop {
        match next(stream).await.update {
            Some(Update::Offer(offer)) => return offer,
            Some(_) => continue,
            None => panic!("empty update"),
        }
    }
}

async fn get(url: &str, range: Option<&str>) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(r) = range {
        request = request.header("range", r);
    }
    let response = request.send().await.expect("GET the link");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.bytes().await.expect("body").to_vec(),
    )
}

/// The link's secret, read from the store as another node would.
fn secret(ws: &Workspace) -> Vec<u8> {
    ws.with_store(|s| s.signing_secret(guichet::store::ATTACHMENT_LINKS))
        .expect("the attachment_links secret")
}

/// `url` re-signed with `key` to expire at `expires` (unix seconds).
fn resigned(url: &str, key: &[u8], expires: u64) -> String {
    let (base, _) = url.split_once('?').expect("query");
    let path = &base[base.find("/attachments/").expect("path")..];
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("key");
    mac.update(format!("{path}\n{expires}").as_bytes());
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{base}?expires={expires}&sig={sig}")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_attachment_downloads_through_its_signed_link() {
    let ws = Workspace::new();
    let mut server = ws.start();
    let (mut _desk, mut offers) = api_common::logged_in_agent(&ws, &server, "amelie").await;
    send_email(server.smtp_addr.expect("SMTP"), "<att-1@example.org>").await;
    let offer = next_offer(&mut offers).await;
    let info = &offer.conversation[0].attachments[0];
    assert_eq!(info.name, "avis.pdf");
    assert!(info.stored);
    assert!(
        info.url
            .starts_with(&format!("http://{}/attachments/", server.http_addr)),
        "{}",
        info.url
    );
    let expires_ms = info.url_expires_unix_ms;
    let left = expires_ms / 1000 - now() as i64;
    assert!(
        (800..=900).contains(&left),
        "15 minutes by default: {left} s"
    );

    // Byte for byte, with the headers a browser needs.
    let (status, headers, body) = get(&info.url, None).await;
    assert_eq!(status, 200);
    assert_eq!(body, PDF);
    assert_eq!(headers["content-type"], "application/pdf");
    assert_eq!(headers["accept-ranges"], "bytes");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("filename=\"avis.pdf\""));

    // A range: 206 with the part; one outside the file: 416.
    let (status, headers, body) = get(&info.url, Some("bytes=2-7")).await;
    assert_eq!(status, 206);
    assert_eq!(body, &PDF[2..=7]);
    assert_eq!(
        headers["content-range"],
        format!("bytes 2-7/{}", PDF.len()).as_str()
    );
    let (status, _, body) = get(&info.url, Some("bytes=-4")).await;
    assert_eq!((status, body.as_slice()), (206, &PDF[PDF.len() - 4..]));
    let (status, headers, _) = get(&info.url, Some("bytes=9999-")).await;
    assert_eq!(status, 416);
    assert_eq!(
        headers["content-range"],
        format!("bytes */{}", PDF.len()).as_str()
    );

    // Tampered: another file, another expiry, another signature, none: 403 without detail.
    let tampered_index = info.url.replacen("/0?", "/1?", 1);
    let later = info.url.replace(
        &format!("expires={}", expires_ms / 1000),
        &format!("expires={}", expires_ms / 1000 + 3600),
    );
    let (unsigned, _) = info.url.split_once('?').unwrap();
    let mut bad_sig = info.url.clone();
    let last = bad_sig.pop().unwrap();
    bad_sig.push(if last == 'A' { 'B' } else { 'A' });
    for url in [&tampered_index, &later, &unsigned.to_owned(), &bad_sig] {
        let (status, _, body) = get(url, None).await;
        assert_eq!(status, 403, "{url}");
        assert_eq!(body, b"forbidden\n");
    }
    // Signed with the database's key: valid until it expires, then refused.
    let key = secret(&ws);
    let (status, _, _) = get(&resigned(&info.url, &key, now() + 60), None).await;
    assert_eq!(status, 200, "the test signs as the server does");
    let (status, _, body) = get(&resigned(&info.url, &key, now() - 1), None).await;
    assert_eq!((status, body.as_slice()), (403, b"forbidden\n".as_slice()));

    // After a restart the link still works: its key is in the database.
    server.terminate();
    let server = ws.start();
    let (status, _, body) = get(
        &info
            .url
            .replace(&server_addr_of(&info.url), &server.http_addr.to_string()),
        None,
    )
    .await;
    assert_eq!((status, body.as_slice()), (200, PDF));
}

/// The `host:port` of a link.
fn server_addr_of(url: &str) -> String {
    url.trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

const ACCOUNT: &str = "AC0123456789abcdef";
const TOKEN: &str = "test-auth-token";
const SERVICE: &str = "+33100000000";

/// A stand-in of the provider's media store: answers the one media path to basic auth
/// `ACCOUNT:TOKEN` only, and records the authorizations it saw.
async fn media_store(bytes: &'static [u8]) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    use axum::http::{HeaderMap, StatusCode};
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/2010-04-01/Accounts/{account}/Messages/MM1/Media/ME1",
        axum::routing::get(move |headers: HeaderMap| {
            let log = log.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                log.lock().unwrap().push(auth.clone());
                let expected = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"))
                );
                if auth == expected {
                    (StatusCode::OK, [("content-type", "image/jpeg")], bytes).into_response()
                } else {
                    StatusCode::UNAUTHORIZED.into_response()
                }
            }
        }),
    );
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mms_media_behind_the_account_credentials_are_proxied() {
    const JPEG: &[u8] = b"\xff\xd8\xff\xe0 not really a picture \xff\xd9";
    let (media, seen) = media_store(JPEG).await;
    let ws = Workspace::new();
    let config = config_with(
        ws.path(),
        &format!(
            "[sms]\nbase_url = \"http://{media}\"\naccount_sid = \"{ACCOUNT}\"\n\
             auth_token = \"{TOKEN}\"\nnumbers = [{{ number = \"{SERVICE}\", queue = \"benefits\" }}]\n"
        ),
    );
    let server = ws.start_with_config(&config);
    let (_desk, mut offers) = api_common::logged_in_agent(&ws, &server, "amelie").await;
    let url = format!("http://{}/sms/twilio", server.http_addr);
    let media_url = format!("http://{media}/2010-04-01/Accounts/{ACCOUNT}/Messages/MM1/Media/ME1");
    let params = [
        ("MessageSid", "MM1"),
        ("AccountSid", ACCOUNT),
        ("From", "+33612345678"),
        ("To", SERVICE),
        ("Body", "La photo de mon courrier"),
        ("NumMedia", "1"),
        ("MediaUrl0", media_url.as_str()),
        ("MediaContentType0", "image/jpeg"),
    ];
    let response = reqwest::Client::new()
        .post(&url)
        .header("X-Twilio-Signature", twilio_signature(TOKEN, &url, &params))
        .form(&params)
        .send()
        .await
        .expect("webhook");
    assert!(response.status().is_success(), "{:?}", response.status());
    let offer = next_offer(&mut offers).await;
    let info = &offer.conversation[0].attachments[0];
    assert_eq!(info.content_type, "image/jpeg");
    assert!(!info.stored, "MMS media stay at the provider");
    assert!(!info.url.contains(TOKEN) && !info.url.contains(ACCOUNT));
    // Without the credentials the provider refuses; through the link the agent gets the file.
    let (status, _, _) = get(&media_url, None).await;
    assert_eq!(status, 401);
    let (status, headers, body) = get(&info.url, None).await;
    assert_eq!((status, body.as_slice()), (200, JPEG));
    assert_eq!(headers["content-type"], "image/jpeg");
    let (status, _, body) = get(&info.url, Some("bytes=0-3")).await;
    assert_eq!((status, body.as_slice()), (206, &JPEG[..4]));
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .filter(|a| a.starts_with("Basic "))
            .count()
            >= 2
    );
}

/// The fixture's one open interaction and its attachment (written by `guichet serve` at schema
/// version 7 from an email with a PDF sent over SMTP).
const FIXTURE_INTERACTION: &str = "01M977B6Q77SFP1FGM799TA3MD";
const FIXTURE_PDF: &[u8] = b"%PDF-1.4 fixture attachment bytes 0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_7_database_opens_upgraded_and_its_attachments_download() {
    if api_common::skip_on_postgres("a version 7 guichet.db fixture") {
        return;
    }
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.data_dir()).unwrap();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/schema_v7_attachments.db"),
        ws.data_dir().join("guichet.db"),
    )
    .expect("copy the fixture");
    let server = ws.start();
    {
        let conn = rusqlite::Connection::open(ws.data_dir().join("guichet.db")).unwrap();
        let version: String = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(version, guichet::store::SCHEMA_VERSION.to_string());
    }
    assert_eq!(secret(&ws).len(), 32, "the migration made the link key");
    let (_desk, mut offers) = api_common::logged_in_agent(&ws, &server, "amelie").await;
    let offer = next_offer(&mut offers).await;
    assert_eq!(offer.interaction.as_ref().unwrap().id, FIXTURE_INTERACTION);
    let info = &offer.conversation[0].attachments[0];
    let (status, _, body) = get(&info.url, None).await;
    assert_eq!((status, body.as_slice()), (200, FIXTURE_PDF));
}
