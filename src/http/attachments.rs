//! Attachment downloads: the files a contact sent (stored email attachments, MMS media,
//! voicemail recordings), opened by an agent's desktop through a short-lived signed link.
//!
//! This module owns the links and the route that serves them:
//! - [`AttachmentLinks`] signs `GET /attachments/{interaction}/{message}/{index}?expires=&sig=`:
//!   HMAC-SHA256 over the path and the expiry (unix seconds) with the `attachment_links` secret
//!   of the database (made by schema version 8), so that a link works after a restart and on
//!   any node sharing the database. `{message}` is a short hash of the message id (message ids
//!   hold `@`, `<` and `>`). The gRPC API hands links out only in answers that passed its role
//!   checks (an agent's offers and conversations): the link is the credential, like a survey
//!   token, and it lives `[server] attachment_link_secs` (15 minutes by default).
//! - The route answers 200 with the file, or 206 with one byte range (`Range: bytes=a-b`,
//!   `a-`, `-n`; several ranges get the whole file), 416 for a range outside the file, 403
//!   (without detail) for an expired, tampered or malformed link, 404 for a file that is not
//!   there (over the size limit when it arrived, or purged with its interaction), 502 when a
//!   gateway does not give a remote file.
//! - Stored files are served from the journal. Remote ones (a voicemail's `recording_url`, an
//!   MMS's `media_url_N`) are fetched by Guichet, with the account's credentials when the URL
//!   is under a configured Twilio-style REST base (`[voice.twilio] api_base`, `[sms]
//!   base_url`), so that agents never see the account's password; at most
//!   [`MAX_REMOTE_BYTES`] are fetched.
//!
//! Content types the browser would run (HTML, SVG, scripts) are served as
//! `application/octet-stream` to download, and every answer carries `nosniff`, a sandboxing
//! `Content-Security-Policy` and `Cache-Control: private, no-store`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::error::HttpError;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::core::{InteractionId, Message};
use crate::engine::Engine;
use crate::store::{Store, StoreError, ATTACHMENT_LINKS};

/// The most bytes fetched from a gateway for one remote file (502 beyond).
pub const MAX_REMOTE_BYTES: usize = 32 * 1024 * 1024;

/// How long fetching a remote file may take.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(30);

/// Signs and checks attachment links. Cheap to clone.
#[derive(Clone)]
pub struct AttachmentLinks {
    key: Arc<[u8]>,
    base: Arc<str>,
    lifetime_secs: u64,
}

impl std::fmt::Debug for AttachmentLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachmentLinks")
            .field("base", &self.base)
            .field("lifetime_secs", &self.lifetime_secs)
            .finish_non_exhaustive()
    }
}

/// One signed link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The absolute URL.
    pub url: String,
    /// When it stops working, unix seconds.
    pub expires: u64,
}

/// Where an attachment's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Kept in the journal (base64).
    Stored(String),
    /// At a gateway's URL.
    Remote(String),
}

impl AttachmentLinks {
    /// Links under `base` (the HTTP listener as the agents' browsers reach it, no trailing
    /// slash) signed with `key`, valid `lifetime_secs`.
    pub fn new(key: Vec<u8>, base: &str, lifetime_secs: u64) -> AttachmentLinks {
        AttachmentLinks {
            key: key.into(),
            base: base.trim_end_matches('/').into(),
            lifetime_secs,
        }
    }

    /// Links signed with the database's `attachment_links` secret.
    pub fn from_store(
        store: &Store,
        base: &str,
        lifetime_secs: u64,
    ) -> Result<AttachmentLinks, StoreError> {
        Ok(AttachmentLinks::new(
            store.signing_secret(ATTACHMENT_LINKS)?,
            base,
            lifetime_secs,
        ))
    }

    /// The link to attachment `index` of message `message_id` of `interaction`, valid from
    /// `now` (unix seconds) for the configured lifetime.
    pub fn link(
        &self,
        interaction: InteractionId,
        message_id: &str,
        index: usize,
        now: u64,
    ) -> Link {
        let path = format!(
            "/attachments/{interaction}/{}/{index}",
            message_key(message_id)
        );
        let expires = now.saturating_add(self.lifetime_secs);
        let sig = self.signature(&path, expires);
        Link {
            url: format!("{}{path}?expires={expires}&sig={sig}", self.base),
            expires,
        }
    }

    /// The link as [`AttachmentLinks::link`] makes it, now.
    pub fn link_now(&self, interaction: InteractionId, message_id: &str, index: usize) -> Link {
        self.link(interaction, message_id, index, unix_now())
    }

    fn mac(&self, path: &str, expires: u64) -> Hmac<Sha256> {
        // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(path.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    fn signature(&self, path: &str, expires: u64) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(self.mac(path, expires).finalize().into_bytes())
    }

    /// Whether `sig` signs `path` until `expires`, and `now` is before it (constant-time
    /// comparison).
    pub fn check(&self, path: &str, expires: u64, sig: &str, now: u64) -> bool {
        if now >= expires {
            return false;
        }
        let Ok(sig) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sig) else {
            return false;
        };
        self.mac(path, expires).verify_slice(&sig).is_ok()
    }
}

/// The short name of a message in a link: 16 hex digits of the SHA-256 of its id.
pub fn message_key(message_id: &str) -> String {
    let digest = Sha256::digest(message_id.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Where attachment `index` of `message` is: its stored content, else the gateway's URL (a
/// voicemail's `recording_url`, an MMS's `media_url_N`); `None` when it was only listed.
pub fn source(message: &Message, index: usize) -> Option<Source> {
    let attachment = message.attachments.get(index)?;
    if !attachment.data_base64.is_empty() {
        return Some(Source::Stored(attachment.data_base64.clone()));
    }
    let remote = match message.meta.get("recording_url") {
        Some(url) if index == 0 => Some(url),
        _ => message.meta.get(&format!("media_url_{index}")),
    };
    remote
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .map(|u| Source::Remote(u.clone()))
}

/// The current time in unix seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A REST base URL and the basic-auth credentials its files need.
#[derive(Debug, Clone)]
struct Credentials {
    base: String,
    user: String,
    password: String,
}

#[derive(Clone)]
struct AttachmentState {
    engine: Engine,
    links: AttachmentLinks,
    credentials: Arc<[Credentials]>,
    client: reqwest::Client,
}

/// The route `GET /attachments/{interaction}/{message}/{index}`.
pub fn routes(engine: &Engine, config: &Config, links: AttachmentLinks) -> Router {
    let mut credentials = Vec::new();
    if let Some(t) = &config.voice.twilio {
        credentials.push(Credentials {
            base: t.api_base.trim_end_matches('/').to_owned(),
            user: t.account_sid.clone(),
            password: t.auth_token.clone(),
        });
    }
    if let Some(s) = &config.sms {
        credentials.push(Credentials {
            base: s.base_url.trim_end_matches('/').to_owned(),
            user: s.account_sid.clone(),
            password: s.auth_token.clone(),
        });
    }
    let client = reqwest::Client::builder()
        .timeout(REMOTE_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()
        .unwrap_or_default();
    Router::new()
        .route(
            "/attachments/{interaction}/{message}/{index}",
            get(download),
        )
        .with_state(AttachmentState {
            engine: engine.clone(),
            links,
            credentials: credentials.into(),
            client,
        })
}

#[derive(Debug, Deserialize)]
struct LinkQuery {
    expires: Option<String>,
    sig: Option<String>,
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        format!("{text}\n"),
    )
        .into_response()
}

fn forbidden() -> Response {
    plain(StatusCode::FORBIDDEN, "forbidden")
}

async fn download(
    State(state): State<AttachmentState>,
    Path((interaction, message, index)): Path<(String, String, String)>,
    Query(query): Query<LinkQuery>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/attachments/{interaction}/{message}/{index}");
    let expires = query.expires.as_deref().and_then(|e| e.parse::<u64>().ok());
    let (Some(expires), Some(sig)) = (expires, query.sig.as_deref()) else {
        return forbidden();
    };
    if !state.links.check(&path, expires, sig, unix_now()) {
        return forbidden();
    }
    // Signed by us: the parts are ours, but stay careful.
    let (Ok(id), Ok(index)) = (interaction.parse::<InteractionId>(), index.parse::<usize>()) else {
        return forbidden();
    };
    let read = state.engine.store().run(move |s| s.conversation(id)).await;
    let conversation = match read {
        Ok(c) => c,
        Err(e) => return HttpError::from(e).into_response(),
    };
    let Some(entry) = conversation
        .iter()
        .find(|e| message_key(&e.message.id) == message)
    else {
        return plain(StatusCode::NOT_FOUND, "this file is no longer kept");
    };
    let Some(attachment) = entry.message.attachments.get(index) else {
        return plain(StatusCode::NOT_FOUND, "no such file");
    };
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let data = match source(&entry.message, index) {
        None => {
            return plain(
                StatusCode::NOT_FOUND,
                "this file was over the size limit when it arrived and was not kept",
            )
        }
        Some(Source::Stored(b64)) => match base64::engine::general_purpose::STANDARD.decode(b64) {
            Ok(d) => d,
            Err(_) => return plain(StatusCode::NOT_FOUND, "this file is damaged"),
        },
        Some(Source::Remote(url)) => match fetch(&state, &url).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(interaction = %id, "attachment fetch failed: {e}");
                return plain(StatusCode::BAD_GATEWAY, "the gateway did not give the file");
            }
        },
    };
    serve_bytes(
        data,
        &attachment.content_type,
        &attachment.name,
        range.as_deref(),
    )
}

/// Fetches a remote file, with the credentials of the REST base it is under.
async fn fetch(state: &AttachmentState, url: &str) -> Result<Vec<u8>, String> {
    let mut request = state.client.get(url);
    if let Some(c) = state
        .credentials
        .iter()
        .find(|c| url.starts_with(&format!("{}/", c.base)))
    {
        request = request.basic_auth(&c.user, Some(&c.password));
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if !response.status().is_success() {
        return Err(format!("the gateway answered {}", response.status()));
    }
    let mut data = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        if data.len() + chunk.len() > MAX_REMOTE_BYTES {
            return Err(format!("the file is larger than {MAX_REMOTE_BYTES} bytes"));
        }
        data.extend_from_slice(&chunk);
    }
    Ok(data)
}

/// What a `Range` header asks of a file of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAsk {
    /// The whole file (no header, one that is not understood, or several ranges).
    Whole,
    /// Bytes `start..=end`.
    Part(u64, u64),
    /// A range outside the file (416).
    Unsatisfiable,
}

/// Reads a `Range` header for a file of `len` bytes.
pub fn parse_range(header: Option<&str>, len: u64) -> RangeAsk {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        let Ok(n) = last.parse::<u64>() else {
            return RangeAsk::Whole;
        };
        if n == 0 || len == 0 {
            return RangeAsk::Unsatisfiable;
        }
        return RangeAsk::Part(len.saturating_sub(n), len - 1);
    }
    let Ok(start) = first.parse::<u64>() else {
        return RangeAsk::Whole;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match last.parse::<u64>() {
            Ok(e) if e >= start => e,
            _ => return RangeAsk::Whole,
        }
    };
    if start >= len {
        return RangeAsk::Unsatisfiable;
    }
    RangeAsk::Part(start, end.min(len - 1))
}

/// The content type to serve: the declared one when a browser shows it safely, else
/// `application/octet-stream`.
fn safe_content_type(declared: &str) -> &str {
    let essence = declared.split(';').next().unwrap_or_default().trim();
    let lower = essence.to_ascii_lowercase();
    let safe = lower.starts_with("audio/")
        || lower.starts_with("video/")
        || matches!(
            lower.as_str(),
            "image/png"
                | "image/jpeg"
                | "image/gif"
                | "image/webp"
                | "application/pdf"
                | "text/plain"
                | "text/csv"
        );
    if safe && HeaderValue::from_str(declared).is_ok() {
        declared
    } else {
        "application/octet-stream"
    }
}

/// `Content-Disposition`: inline for what a browser shows safely, attachment otherwise; the
/// name in ASCII (`filename`) and in UTF-8 (`filename*`).
fn disposition(name: &str, inline: bool) -> String {
    let ascii: String = name
        .chars()
        .take(200)
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    format!(
        "{}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}",
        if inline { "inline" } else { "attachment" }
    )
}

fn serve_bytes(data: Vec<u8>, content_type: &str, name: &str, range: Option<&str>) -> Response {
    let len = data.len() as u64;
    let content_type = safe_content_type(content_type).to_owned();
    let inline = content_type != "application/octet-stream";
    let mut headers = HeaderMap::new();
    let mut set = |k: header::HeaderName, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(k, v);
        }
    };
    set(header::CONTENT_TYPE, content_type);
    set(header::CONTENT_DISPOSITION, disposition(name, inline));
    set(header::ACCEPT_RANGES, "bytes".into());
    set(header::CACHE_CONTROL, "private, no-store".into());
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff".into());
    set(header::CONTENT_SECURITY_POLICY, "sandbox".into());
    match parse_range(range, len) {
        RangeAsk::Whole => (StatusCode::OK, headers, data).into_response(),
        RangeAsk::Part(start, end) => {
            set(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
            // start <= end < len = data.len(): the slice is in bounds.
            let part = data[start as usize..=end as usize].to_vec();
            (StatusCode::PARTIAL_CONTENT, headers, part).into_response()
        }
        RangeAsk::Unsatisfiable => {
            set(header::CONTENT_RANGE, format!("bytes */{len}"));
            (StatusCode::RANGE_NOT_SATISFIABLE, headers).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_read_as_rfc_9110_says() {
        assert_eq!(parse_range(None, 10), RangeAsk::Whole);
        assert_eq!(parse_range(Some("bytes=0-3"), 10), RangeAsk::Part(0, 3));
        assert_eq!(parse_range(Some("bytes=4-"), 10), RangeAsk::Part(4, 9));
        assert_eq!(parse_range(Some("bytes=-3"), 10), RangeAsk::Part(7, 9));
        assert_eq!(parse_range(Some("bytes=-30"), 10), RangeAsk::Part(0, 9));
        assert_eq!(parse_range(Some("bytes=5-100"), 10), RangeAsk::Part(5, 9));
        assert_eq!(parse_range(Some("bytes=10-"), 10), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), RangeAsk::Whole);
        assert_eq!(parse_range(Some("bytes=5-2"), 10), RangeAsk::Whole);
        assert_eq!(parse_range(Some("items=0-1"), 10), RangeAsk::Whole);
        assert_eq!(parse_range(Some("bytes=0-0"), 0), RangeAsk::Unsatisfiable);
    }

    #[test]
    fn links_check_their_path_expiry_and_signature() {
        let links = AttachmentLinks::new(vec![7; 32], "http://h/", 60);
        let id = InteractionId::generate();
        let link = links.link(id, "email:<a@b>", 0, 1_000);
        assert_eq!(link.expires, 1_060);
        let rest = link.url.strip_prefix("http://h").unwrap();
        let (path, query) = rest.split_once('?').unwrap();
        let sig = query.split("sig=").nth(1).unwrap();
        assert!(links.check(path, 1_060, sig, 1_059));
        assert!(!links.check(path, 1_060, sig, 1_060), "expired");
        assert!(!links.check(path, 1_061, sig, 1_000), "expiry changed");
        let other = path.replace("/0", "/1");
        assert!(!links.check(&other, 1_060, sig, 1_000), "path changed");
        let stranger = AttachmentLinks::new(vec![8; 32], "http://h", 60);
        assert!(!stranger.check(path, 1_060, sig, 1_000), "other key");
    }

    #[test]
    fn browsers_run_nothing_served() {
        assert_eq!(safe_content_type("text/html"), "application/octet-stream");
        assert_eq!(
            safe_content_type("image/svg+xml"),
            "application/octet-stream"
        );
        assert_eq!(safe_content_type("audio/mpeg"), "audio/mpeg");
        assert_eq!(
            disposition("re\"çu.pdf", true),
            "inline; filename=\"re__u.pdf\"; filename*=UTF-8''re%22%C3%A7u.pdf"
        );
    }
}
