//! `POST /email/inbound`: mail delivered by an inbound-parse webhook (SendGrid Inbound Parse,
//! Mailgun routes), authenticated by the shared secret `[email.inbound] webhook_token` (as
//! `?token=` or the basic-auth password), and stored through the same intake as SMTP.
//!
//! The whole MIME message is used when the vendor sends it (SendGrid `email`, Mailgun
//! `body-mime`): it keeps the Message-ID and threading headers. Otherwise the parsed fields are
//! read: `from`, `to` / `recipient` / `envelope`, `subject`, `text` / `body-plain`, `html` /
//! `body-html`, the headers (SendGrid `headers`, a raw block; Mailgun `message-headers`, a
//! JSON list of pairs) and every uploaded file as an attachment.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use base64::Engine as _;
use mail_parser::MessageParser;
use tracing::warn;

use super::intake::{Intake, Refusal};
use super::mime::{self, InboundEmail};

/// The route, with its state.
pub fn routes(intake: Arc<Intake>) -> Router {
    Router::new()
        .route("/email/inbound", post(inbound))
        .with_state(intake)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// Whether the request carries the configured secret.
fn authorised(token: &str, query: &BTreeMap<String, String>, headers: &HeaderMap) -> bool {
    if query
        .get("token")
        .is_some_and(|t| crate::channels::same_secret(t.as_bytes(), token.as_bytes()))
    {
        return true;
    }
    let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    base64::engine::general_purpose::STANDARD
        .decode(basic.trim())
        .ok()
        .and_then(|d| String::from_utf8(d).ok())
        .and_then(|d| {
            d.split_once(':')
                .map(|(_, p)| crate::channels::same_secret(p.as_bytes(), token.as_bytes()))
        })
        .unwrap_or(false)
}

/// An uploaded file.
struct Upload {
    name: String,
    content_type: String,
    data: Vec<u8>,
}

/// The form's text fields and files.
#[derive(Default)]
struct Fields {
    text: BTreeMap<String, String>,
    files: Vec<Upload>,
}

impl Fields {
    fn get(&self, names: &[&str]) -> Option<&str> {
        names
            .iter()
            .find_map(|n| self.text.get(*n))
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }
}

async fn read_fields(request: Request) -> Result<Fields, Response> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mut fields = Fields::default();
    if content_type.starts_with("multipart/form-data") {
        let mut form = Multipart::from_request(request, &())
            .await
            .map_err(IntoResponse::into_response)?;
        loop {
            let field = match form.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return Err(error(e.status(), format!("bad multipart body: {e}"))),
            };
            let name = field.name().unwrap_or_default().to_owned();
            let file_name = field.file_name().map(str::to_owned);
            let ctype = field.content_type().map(str::to_owned);
            let data = field
                .bytes()
                .await
                .map_err(|e| error(e.status(), format!("bad multipart field {name:?}: {e}")))?;
            match file_name {
                Some(file) => fields.files.push(Upload {
                    name: file,
                    content_type: ctype.unwrap_or_else(|| "application/octet-stream".into()),
                    data: data.to_vec(),
                }),
                None => {
                    fields
                        .text
                        .insert(name, String::from_utf8_lossy(&data).into_owned());
                }
            }
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let Form(pairs) = Form::<Vec<(String, String)>>::from_request(request, &())
            .await
            .map_err(IntoResponse::into_response)?;
        fields.text.extend(pairs);
    } else {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send multipart/form-data or application/x-www-form-urlencoded, as SendGrid \
             Inbound Parse and Mailgun routes do",
        ));
    }
    Ok(fields)
}

/// Every address in a header-like list (`A <a@b>, c@d`), lowercased.
fn addresses(text: &str) -> Vec<String> {
    text.split(',')
        .filter_map(|part| {
            let part = part.trim();
            let addr = match (part.rfind('<'), part.rfind('>')) {
                (Some(s), Some(e)) if s < e => &part[s + 1..e],
                _ => part,
            };
            let addr = addr.trim().trim_matches('"').to_ascii_lowercase();
            addr.contains('@').then_some(addr)
        })
        .collect()
}

/// The candidate recipients: the envelope's first (SendGrid `envelope`, Mailgun `recipient`),
/// then the To and Cc headers.
fn recipients(fields: &Fields) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(envelope) = fields.get(&["envelope"]) {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(envelope) {
            if let Some(list) = value.get("to").and_then(|t| t.as_array()) {
                out.extend(list.iter().filter_map(|v| v.as_str()).flat_map(addresses));
            }
        }
    }
    for name in ["recipient", "to", "To", "cc", "Cc"] {
        if let Some(v) = fields.get(&[name]) {
            out.extend(addresses(v));
        }
    }
    out
}

/// The raw header block of the message: SendGrid `headers`, or Mailgun `message-headers`.
fn header_block(fields: &Fields) -> String {
    if let Some(h) = fields.get(&["headers"]) {
        return h.to_owned();
    }
    if let Some(json) = fields.get(&["message-headers"]) {
        if let Ok(pairs) = serde_json::from_str::<Vec<(String, String)>>(json) {
            return pairs.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
        }
    }
    String::new()
}

/// The email described by the form's fields (no whole MIME message given).
fn from_fields(fields: &Fields, recipient: &str, limit: usize) -> Result<InboundEmail, String> {
    let block = header_block(fields);
    let mut raw_headers = block.replace("\r\n", "\n").replace('\n', "\r\n");
    if !raw_headers.ends_with("\r\n") {
        raw_headers.push_str("\r\n");
    }
    raw_headers.push_str("\r\n");
    let parsed = MessageParser::default().parse(raw_headers.as_bytes());
    let from_field = fields
        .get(&["from", "From", "sender"])
        .map(addresses)
        .and_then(|a| a.into_iter().next());
    let from = from_field
        .or_else(|| {
            parsed
                .as_ref()
                .and_then(|m| m.from())
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .map(str::to_ascii_lowercase)
        })
        .ok_or("no sender: the from field has no address")?;
    let from_name = parsed
        .as_ref()
        .and_then(|m| m.from())
        .and_then(|a| a.first())
        .and_then(|a| a.name())
        .map(str::to_owned);
    let html = fields.get(&["html", "body-html", "stripped-html"]);
    let text = match fields.get(&["text", "body-plain", "stripped-text"]) {
        Some(t) => t.trim().to_owned(),
        None => html.map(mime::html_to_text).unwrap_or_default(),
    };
    let limit_attachment = |u: &Upload| mime::attachment(&u.name, &u.content_type, &u.data, limit);
    let header_ids = |name: &str| {
        parsed
            .as_ref()
            .and_then(|m| m.header_raw(name))
            .map(mime::ids_in)
            .unwrap_or_default()
    };
    let mut fingerprint_input = block.clone().into_bytes();
    for part in [
        fields.get(&["from"]),
        fields.get(&["subject"]),
        Some(text.as_str()),
    ] {
        fingerprint_input.extend_from_slice(part.unwrap_or_default().as_bytes());
        fingerprint_input.push(0);
    }
    Ok(InboundEmail {
        message_id: parsed
            .as_ref()
            .and_then(|m| m.message_id())
            .and_then(mime::bracketed),
        from,
        from_name,
        to: recipient.to_owned(),
        subject: fields
            .get(&["subject", "Subject"])
            .map(|s| s.trim().to_owned()),
        text,
        html: html
            .filter(|h| h.len() <= mime::MAX_KEPT_HTML)
            .map(str::to_owned),
        attachments: fields.files.iter().map(limit_attachment).collect(),
        in_reply_to: header_ids("In-Reply-To"),
        references: header_ids("References"),
        automatic: mime::is_automatic(
            parsed.as_ref().and_then(|m| m.header_raw("Auto-Submitted")),
            parsed.as_ref().and_then(|m| m.header_raw("Precedence")),
        ),
        fingerprint: mime::fingerprint(&fingerprint_input),
    })
}

async fn inbound(
    State(intake): State<Arc<Intake>>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let Some(token) = intake.config().webhook_token.as_deref() else {
        return error(
            StatusCode::FORBIDDEN,
            "the inbound-parse webhook is disabled: set [email.inbound] webhook_token",
        );
    };
    if !authorised(token, &query, &headers) {
        warn!("email webhook refused: missing or wrong token");
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong secret: give [email.inbound] webhook_token as ?token= or as the \
             basic-auth password",
        );
    }
    let fields = match read_fields(request).await {
        Ok(f) => f,
        Err(response) => {
            warn!(status = %response.status(), "email webhook refused: unreadable body");
            return response;
        }
    };
    let candidates = recipients(&fields);
    let Some((recipient, queue)) = candidates
        .iter()
        .find_map(|r| intake.queue_for(r).ok().map(|q| (r.clone(), q)))
    else {
        let refusal = Refusal::UnknownRecipient(if candidates.is_empty() {
            "(no recipient given)".into()
        } else {
            candidates.join(", ")
        });
        warn!("email webhook refused: {refusal}");
        return error(StatusCode::NOT_ACCEPTABLE, refusal.to_string());
    };
    let config = intake.config();
    let raw = fields.get(&["email", "body-mime"]);
    let size = raw.map_or_else(
        || {
            fields.text.values().map(String::len).sum::<usize>()
                + fields.files.iter().map(|f| f.data.len()).sum::<usize>()
        },
        str::len,
    );
    if size > config.max_message_bytes {
        let refusal = Refusal::TooBig {
            limit: config.max_message_bytes,
        };
        warn!(%recipient, "email webhook refused: {refusal}");
        return error(StatusCode::PAYLOAD_TOO_LARGE, refusal.to_string());
    }
    let parsed = match raw {
        Some(raw) => {
            let sender = fields.get(&["sender"]);
            mime::parse(
                raw.as_bytes(),
                &recipient,
                sender,
                config.max_attachment_bytes,
            )
        }
        None => from_fields(&fields, &recipient, config.max_attachment_bytes),
    };
    let email = match parsed {
        Ok(e) => e,
        Err(reason) => {
            let refusal = Refusal::Malformed(reason);
            warn!(%recipient, "email webhook refused: {refusal}");
            return error(StatusCode::NOT_ACCEPTABLE, refusal.to_string());
        }
    };
    match intake.deliver(email, queue).await {
        Ok(outcome) => (
            StatusCode::OK,
            Json(serde_json::json!({
                "interaction_id": outcome.interaction().to_string(),
                "outcome": outcome.as_str(),
            })),
        )
            .into_response(),
        Err(refusal) => {
            warn!(%recipient, "email webhook refused: {refusal}");
            let status = match refusal {
                Refusal::Temporary(_) => StatusCode::SERVICE_UNAVAILABLE,
                Refusal::TooBig { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::NOT_ACCEPTABLE,
            };
            let mut response = error(status, refusal.to_string());
            if status == StatusCode::SERVICE_UNAVAILABLE {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("30"));
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_read_from_header_lists() {
        assert_eq!(
            addresses("\"Doe, J\" <J@X.org>, b@y.fr, nobody"),
            vec!["j@x.org".to_owned(), "b@y.fr".to_owned()]
        );
    }

    #[test]
    fn mailgun_fields_make_an_email() {
        let mut fields = Fields::default();
        for (k, v) in [
            ("recipient", "logement@mairie.example"),
            ("sender", "jean@example.org"),
            ("from", "Jean <jean@example.org>"),
            ("subject", "Dossier"),
            ("body-html", "<p>Bonjour <b>vous</b></p>"),
            (
                "message-headers",
                r#"[["Message-Id", "<abc@mail.example>"], ["In-Reply-To", "<x@guichet>"]]"#,
            ),
        ] {
            fields.text.insert(k.into(), v.into());
        }
        assert_eq!(recipients(&fields)[0], "logement@mairie.example");
        let e = from_fields(&fields, "logement@mairie.example", 100).expect("email");
        assert_eq!(e.from, "jean@example.org");
        assert_eq!(e.message_id.as_deref(), Some("<abc@mail.example>"));
        assert_eq!(e.in_reply_to, vec!["<x@guichet>".to_owned()]);
        assert!(e.text.contains("Bonjour"), "{:?}", e.text);
    }
}
