//! Channel adapters: each turns a real protocol (telephony gateway webhooks for calls, SMTP and
//! inbound-parse webhooks for email, SMS provider webhooks, the web chat over WebSocket) into
//! interactions and conversation messages in the engine, and contributes its HTTP routes to the
//! listener.

pub mod chat;
pub mod email;
pub mod sms;
pub mod voice;

/// Counts a refusal of inbound traffic that HTTP status counts do not show (SMTP replies,
/// WebSocket close codes): `guichet_channel_refusals_total{channel, reason}`.
pub(crate) fn count_refusal(channel: &'static str, reason: &'static str) {
    metrics::counter!("guichet_channel_refusals_total", "channel" => channel, "reason" => reason)
        .increment(1);
}
