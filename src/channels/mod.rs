//! Channel adapters: each turns a real protocol (telephony gateway webhooks for calls, SMTP and
//! inbound-parse webhooks for email, SMS provider webhooks, the web chat over WebSocket) into
//! interactions and conversation messages in the engine, and contributes its HTTP routes to the
//! listener.

pub mod chat;
pub mod citizen;
pub mod email;
pub mod sms;
pub mod voice;

/// Counts a refusal of inbound traffic that HTTP status counts do not show (SMTP replies,
/// WebSocket close codes): `guichet_channel_refusals_total{channel, reason}`.
pub(crate) fn count_refusal(channel: &'static str, reason: &'static str) {
    metrics::counter!("guichet_channel_refusals_total", "channel" => channel, "reason" => reason)
        .increment(1);
}

/// Compares two shared secrets (a webhook token, a chat resume token) in time that does not
/// depend on where they differ.
pub(crate) fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_compare() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"ab"));
        assert!(same_secret(b"", b""));
    }
}
