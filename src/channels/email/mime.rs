//! Reading a received email: the MIME message (from SMTP, or whole from an inbound-parse
//! webhook) parsed with `mail-parser` into an [`InboundEmail`]: the sender, the text an agent
//! reads (HTML-only bodies reduced to text, every charset decoded to UTF-8), the attachments
//! (kept up to the size limit, listed beyond), and the threading headers.

use base64::Engine as _;
use mail_parser::{HeaderValue, MessageParser, MimeHeaders};
use sha2::{Digest, Sha256};

use crate::core::Attachment;

/// HTML bodies up to this size are kept beside the text (`meta["html"]`); larger ones only as
/// text.
pub const MAX_KEPT_HTML: usize = 64 * 1024;

/// A received email, channel-neutral: what SMTP and the webhook both hand to the intake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboundEmail {
    /// The Message-ID with its angle brackets, when the message has one.
    pub message_id: Option<String>,
    /// The sender's address, lowercased.
    pub from: String,
    /// The sender's display name.
    pub from_name: Option<String>,
    /// The recipient it was delivered to (one of the accepted addresses).
    pub to: String,
    /// The subject.
    pub subject: Option<String>,
    /// The text for the agent.
    pub text: String,
    /// The HTML body when there was one and it is small.
    pub html: Option<String>,
    /// The attachments.
    pub attachments: Vec<Attachment>,
    /// The In-Reply-To ids, with angle brackets.
    pub in_reply_to: Vec<String>,
    /// The References ids, with angle brackets, oldest first.
    pub references: Vec<String>,
    /// Sent by a machine (`Auto-Submitted` other than `no`, or `Precedence: bulk|list|junk`):
    /// never acknowledged, so that mail loops stop (RFC 3834).
    pub automatic: bool,
    /// A digest of the content, naming messages without a Message-ID so that a relay's retry is
    /// still recognised.
    pub fingerprint: String,
}

/// Normalises a message id to `<id>` (trimmed; brackets added when missing).
pub fn bracketed(id: &str) -> Option<String> {
    let id = id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    if id.is_empty() || id.contains(char::is_whitespace) {
        None
    } else {
        Some(format!("<{id}>"))
    }
}

/// Every message id in a header value (`<a@b> <c@d>`), bracketed.
pub fn ids_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        let Some(len) = rest[start..].find('>') else {
            break;
        };
        if let Some(id) = bracketed(&rest[start + 1..start + len]) {
            out.push(id);
        }
        rest = &rest[start + len + 1..];
    }
    if out.is_empty() {
        // Some clients write bare ids separated by spaces.
        out.extend(
            text.split(|c: char| c.is_whitespace() || c == ',')
                .filter(|w| w.contains('@'))
                .filter_map(bracketed),
        );
    }
    out
}

fn header_ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => ids_in(t),
        HeaderValue::TextList(list) => list.iter().filter_map(|t| bracketed(t)).collect(),
        _ => Vec::new(),
    }
}

/// Whether header values mark a message as sent by a machine.
pub fn is_automatic(auto_submitted: Option<&str>, precedence: Option<&str>) -> bool {
    let auto = auto_submitted
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| !v.is_empty() && !v.starts_with("no"));
    let bulk = precedence
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| matches!(v.as_str(), "bulk" | "list" | "junk"));
    auto || bulk
}

/// An attachment: its data kept (base64) when it is at most `limit` bytes, else only listed.
pub fn attachment(name: &str, content_type: &str, data: &[u8], limit: usize) -> Attachment {
    Attachment {
        name: name.to_owned(),
        content_type: content_type.to_owned(),
        size: data.len() as u64,
        data_base64: if data.len() <= limit {
            base64::engine::general_purpose::STANDARD.encode(data)
        } else {
            String::new()
        },
    }
}

/// HTML reduced to readable text (paragraphs and line breaks kept, tags dropped, entities
/// decoded).
pub fn html_to_text(html: &str) -> String {
    mail_parser::decoders::html::html_to_text(html)
        .trim()
        .to_owned()
}

/// Parses a whole MIME message delivered to `recipient`; `envelope_from` (SMTP `MAIL FROM`) is
/// the sender when the message has no From address. Fails with the reason when the message is
/// not a usable email.
pub fn parse(
    raw: &[u8],
    recipient: &str,
    envelope_from: Option<&str>,
    attachment_limit: usize,
) -> Result<InboundEmail, String> {
    let Some(msg) = MessageParser::default().parse(raw) else {
        return Err("no header found: this is not an RFC 5322 message".into());
    };
    let from_addr = msg.from().and_then(|a| a.first());
    let from = from_addr
        .and_then(|a| a.address())
        .or(envelope_from.filter(|f| !f.is_empty()))
        .map(|a| a.trim().to_ascii_lowercase())
        .filter(|a| a.contains('@'));
    let Some(from) = from else {
        return Err("no sender: the From header has no address".into());
    };
    let from_name = from_addr
        .and_then(|a| a.name())
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);

    let text_parts: Vec<String> = (0..msg.text_body_count())
        .filter_map(|i| msg.body_text(i))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    let html = msg
        .html_part(0)
        .filter(|p| p.is_text_html())
        .and_then(|p| p.text_contents())
        .filter(|h| h.len() <= MAX_KEPT_HTML)
        .map(str::to_owned);
    let mut text = text_parts.join("\n\n");
    if text.is_empty() {
        if let Some(h) = msg.html_part(0).and_then(|p| p.text_contents()) {
            text = html_to_text(h);
        }
    }

    let mut attachments = Vec::new();
    for (i, part) in msg.attachments().enumerate() {
        let content_type = part
            .content_type()
            .map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub),
                None => ct.ctype().to_owned(),
            })
            .unwrap_or_else(|| "application/octet-stream".into())
            .to_ascii_lowercase();
        let name = part
            .attachment_name()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("attachment-{}", i + 1));
        attachments.push(attachment(
            &name,
            &content_type,
            part.contents(),
            attachment_limit,
        ));
    }

    let message_id = msg.message_id().and_then(bracketed);
    let in_reply_to = header_ids(msg.in_reply_to());
    let references = header_ids(msg.references());
    let automatic = is_automatic(
        msg.header_raw("Auto-Submitted"),
        msg.header_raw("Precedence"),
    );
    Ok(InboundEmail {
        message_id,
        from,
        from_name,
        to: recipient.to_ascii_lowercase(),
        subject: msg
            .subject()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        text,
        html,
        attachments,
        in_reply_to,
        references,
        automatic,
        fingerprint: fingerprint(raw),
    })
}

/// The hex SHA-256 of `data`.
pub fn fingerprint(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_bracketed_and_split() {
        assert_eq!(ids_in("<a@b>  <c@d>"), vec!["<a@b>", "<c@d>"]);
        assert_eq!(ids_in("a@b c@d"), vec!["<a@b>", "<c@d>"]);
        assert_eq!(bracketed(" <x@y> ").as_deref(), Some("<x@y>"));
        assert_eq!(bracketed("<>"), None);
    }

    #[test]
    fn automatic_senders_are_recognised() {
        assert!(is_automatic(Some("auto-replied"), None));
        assert!(!is_automatic(Some("no"), None));
        assert!(is_automatic(None, Some("Bulk")));
        assert!(!is_automatic(None, Some("first-class")));
    }

    #[test]
    fn latin1_html_only_message_becomes_text() {
        let raw = b"From: =?ISO-8859-1?Q?Ren=E9?= <Rene@Example.org>\r\n\
Subject: =?ISO-8859-1?Q?Caf=E9?=\r\nMessage-ID: <m1@example.org>\r\n\
Content-Type: text/html; charset=ISO-8859-1\r\n\r\n<p>Bonjour, d\xe9j\xe0 vu</p>\r\n";
        let e = parse(raw, "Logement@Mairie.example", None, 1024).expect("parsed");
        assert_eq!(e.from, "rene@example.org");
        assert_eq!(e.from_name.as_deref(), Some("René"));
        assert_eq!(e.subject.as_deref(), Some("Café"));
        assert!(e.text.contains("Bonjour, déjà vu"), "{:?}", e.text);
        assert!(e.html.as_deref().is_some_and(|h| h.contains("<p>")));
        assert_eq!(e.message_id.as_deref(), Some("<m1@example.org>"));
        assert_eq!(e.to, "logement@mairie.example");
    }

    #[test]
    fn no_sender_is_refused() {
        let err = parse(b"Subject: x\r\n\r\nbody\r\n", "a@b", None, 10).unwrap_err();
        assert!(err.contains("From"), "{err}");
    }
}
